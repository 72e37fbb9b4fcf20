//! Reading manifests for `tfdrift hash`: JSON or YAML, one object, many YAML documents,
//! or a `kind: List` (what `kubectl get -o json` prints).
//!
//! Input is bounded before it is parsed: a size cap here and serde-saphyr's budget
//! (events, aliases, anchors, nesting) against alias bombs and deep nesting.

use serde_json::Value;

/// Largest input accepted (bytes). Real manifests are kilobytes; a `kubectl get -o json`
/// of a large namespace is a few megabytes.
pub const MAX_INPUT_BYTES: usize = 64 * 1024 * 1024;

/// Deepest JSON nesting accepted; Kubernetes objects are well under 30 levels.
const MAX_DEPTH: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("input is {size} bytes, more than the {MAX_INPUT_BYTES}-byte limit")]
    TooLarge { size: usize },
    #[error("input is not UTF-8 text")]
    NotUtf8,
    #[error("input is not valid JSON")]
    Json(#[source] serde_json::Error),
    #[error("input is not valid YAML")]
    Yaml(#[source] Box<serde_saphyr::Error>),
    #[error("document {index}: nested deeper than {MAX_DEPTH} levels")]
    TooDeep { index: usize },
    #[error("document {index}: {why}")]
    Invalid { index: usize, why: String },
    #[error("input holds no documents")]
    Empty,
}

/// The syntax the input was written in; `--annotate` answers in the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

/// One object from the input. `index` is its 1-based document number; `item` its
/// 0-based position inside a `kind: List`.
#[derive(Debug, Clone)]
pub struct Document {
    pub index: usize,
    pub item: Option<usize>,
    pub value: Value,
}

impl Document {
    /// "document 2" or "document 1, item 3" for messages.
    pub fn position(&self) -> String {
        match self.item {
            None => format!("document {}", self.index),
            Some(item) => format!("document {}, item {}", self.index, item + 1),
        }
    }
}

/// The parsed input: its format, its top-level documents (as written, Lists intact) and
/// every object in them (Lists flattened).
#[derive(Debug)]
pub struct Manifests {
    pub format: Format,
    pub documents: Vec<Value>,
}

impl Manifests {
    pub fn parse(input: &[u8]) -> Result<Self, ManifestError> {
        if input.len() > MAX_INPUT_BYTES {
            return Err(ManifestError::TooLarge { size: input.len() });
        }
        let text = std::str::from_utf8(input).map_err(|_| ManifestError::NotUtf8)?;
        let trimmed = text.trim_start_matches('\u{feff}').trim_start();
        let (format, documents) = if trimmed.starts_with('{') || trimmed.starts_with('[') {
            let docs = serde_json::Deserializer::from_str(trimmed)
                .into_iter::<Value>()
                .collect::<Result<Vec<_>, _>>()
                .map_err(ManifestError::Json)?;
            (Format::Json, docs)
        } else {
            let docs: Vec<Value> = serde_saphyr::from_multiple(trimmed)
                .map_err(|e| ManifestError::Yaml(Box::new(e)))?;
            (Format::Yaml, docs)
        };
        // `---` with nothing after it is an empty document, not an error.
        let documents: Vec<Value> = documents.into_iter().filter(|d| !d.is_null()).collect();
        if documents.is_empty() {
            return Err(ManifestError::Empty);
        }
        for (i, doc) in documents.iter().enumerate() {
            if depth(doc) > MAX_DEPTH {
                return Err(ManifestError::TooDeep { index: i + 1 });
            }
        }
        Ok(Manifests { format, documents })
    }

    /// Every object, with `kind: List` documents opened up.
    pub fn objects(&self) -> Result<Vec<Document>, ManifestError> {
        let mut out = Vec::new();
        for (i, value) in self.documents.iter().enumerate() {
            let index = i + 1;
            let invalid = |why: &str| ManifestError::Invalid {
                index,
                why: why.to_owned(),
            };
            let obj = value
                .as_object()
                .ok_or_else(|| invalid("is not an object (a mapping with apiVersion and kind)"))?;
            if is_list(value) {
                let items = obj
                    .get("items")
                    .and_then(Value::as_array)
                    .ok_or_else(|| invalid("is a List without an items array"))?;
                for (item, v) in items.iter().enumerate() {
                    if !v.is_object() {
                        return Err(ManifestError::Invalid {
                            index,
                            why: format!("item {} is not an object", item + 1),
                        });
                    }
                    out.push(Document {
                        index,
                        item: Some(item),
                        value: v.clone(),
                    });
                }
            } else {
                out.push(Document {
                    index,
                    item: None,
                    value: value.clone(),
                });
            }
        }
        Ok(out)
    }

    /// The documents rendered back in the input's format.
    pub fn render(&self) -> Result<String, RenderError> {
        match self.format {
            Format::Json => {
                let mut out = String::new();
                for doc in &self.documents {
                    out.push_str(&serde_json::to_string_pretty(doc).map_err(RenderError::Json)?);
                    out.push('\n');
                }
                Ok(out)
            }
            Format::Yaml => {
                let mut out = String::new();
                for (i, doc) in self.documents.iter().enumerate() {
                    if i > 0 {
                        out.push_str("---\n");
                    }
                    out.push_str(
                        &serde_saphyr::to_string(doc)
                            .map_err(|e| RenderError::Yaml(Box::new(e)))?,
                    );
                }
                Ok(out)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot render JSON")]
    Json(#[source] serde_json::Error),
    #[error("cannot render YAML")]
    Yaml(#[source] Box<serde_saphyr::SerializeError>),
}

/// `kind: List` or any `…List` kind with items, as `kubectl get -o json` prints.
pub fn is_list(value: &Value) -> bool {
    value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k == "List" || (k.ends_with("List") && value.get("items").is_some()))
}

fn depth(value: &Value) -> usize {
    // Iterative so that a hostile input cannot overflow the stack here.
    let mut max = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            Value::Object(m) => stack.extend(m.values().map(|c| (c, d + 1))),
            Value::Array(a) => stack.extend(a.iter().map(|c| (c, d + 1))),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_multi_doc_skips_empty_documents() {
        let m = Manifests::parse(
            b"---\napiVersion: v1\nkind: ConfigMap\n---\n---\napiVersion: v1\nkind: Service\n",
        )
        .unwrap();
        assert_eq!(m.format, Format::Yaml);
        assert_eq!(m.objects().unwrap().len(), 2);
    }

    #[test]
    fn json_list_is_flattened() {
        let list = br#"{"kind":"List","apiVersion":"v1",
            "items":[{"kind":"ConfigMap"},{"kind":"Service"}]}"#;
        let m = Manifests::parse(list).unwrap();
        let objs = m.objects().unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1].position(), "document 1, item 2");
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(matches!(Manifests::parse(b""), Err(ManifestError::Empty)));
        assert!(matches!(
            Manifests::parse(b"  \n"),
            Err(ManifestError::Empty)
        ));
        assert!(matches!(
            Manifests::parse(b"{\"a\":"),
            Err(ManifestError::Json(_))
        ));
        assert!(matches!(
            Manifests::parse(b"a: [1, 2"),
            Err(ManifestError::Yaml(_))
        ));
        assert!(matches!(
            Manifests::parse(&[0xff, 0xfe, 0x00]),
            Err(ManifestError::NotUtf8)
        ));
        let m = Manifests::parse(b"- 1\n- 2\n").unwrap();
        assert!(matches!(
            m.objects(),
            Err(ManifestError::Invalid { index: 1, .. })
        ));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}{}", "[".repeat(120), "]".repeat(120));
        // serde_json's own recursion limit (128) or ours: either way an error, no crash.
        assert!(Manifests::parse(deep.as_bytes()).is_err());
    }
}
