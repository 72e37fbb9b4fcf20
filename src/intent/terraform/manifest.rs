//! `kubernetes_manifest`: the intent is its `manifest` (what the user wrote), with the values
//! the provider converts by the kind's schema converted alike (an HCL number where the API
//! wants a string is sent as the string), compared on the paths the manifest sets except its
//! `computed_fields`.

use serde_json::{Map, Value};

use crate::core::ignore::Path;

/// The default `computed_fields`: the provider leaves labels and annotations to the cluster.
pub const DEFAULT_COMPUTED: [&str; 2] = ["metadata.annotations", "metadata.labels"];

/// Why a `kubernetes_manifest` instance has no intent.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("kubernetes_manifest without a manifest value")]
    NoManifest,
}

/// What a `kubernetes_manifest` instance intends.
pub struct Manifest {
    pub object: Value,
    /// Paths not compared (`computed_fields`).
    pub computed: Vec<Path>,
}

/// The intent of a `kubernetes_manifest` instance's attributes.
pub fn read(attrs: &Value) -> Result<Manifest, ManifestError> {
    let manifest = attrs
        .pointer("/manifest/value")
        .filter(|m| m.is_object())
        .ok_or(ManifestError::NoManifest)?;
    // `object.type` records the type every value was converted to; `manifest.type` what
    // the user wrote.
    let mut object = match attrs.pointer("/object/type") {
        Some(ty) => converted(manifest, ty),
        None => manifest.clone(),
    };
    // The namespace is in the manifest for every namespaced kind (the provider refuses a
    // plan without it); the applied object confirms it.
    if object.pointer("/metadata/namespace").is_none()
        && let Some(ns) = attrs
            .pointer("/object/value/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        && let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("namespace".into(), Value::from(ns));
    }
    let computed = match attrs.get("computed_fields") {
        Some(Value::Array(fields)) => fields
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|f| Path::parse(&hcl_path(f)).ok())
            .collect(),
        _ => DEFAULT_COMPUTED
            .iter()
            .filter_map(|f| Path::parse(f).ok())
            .collect(),
    };
    Ok(Manifest { object, computed })
}

/// A `computed_fields` entry (an HCL traversal: `spec.replicas`, `metadata.annotations["a.b/c"]`,
/// `x[0]`) in the syntax of ignore paths (`metadata.annotations[a.b/c]`).
fn hcl_path(field: &str) -> String {
    field.replace("[\"", "[").replace("\"]", "]")
}

/// `value` converted as the provider converts it to `ty` (a cty type in JSON): a number or a
/// bool where the type is `string` becomes its text.
fn converted(value: &Value, ty: &Value) -> Value {
    match (value, ty) {
        (Value::Number(n), Value::String(t)) if t == "string" => Value::from(go_float_text(n)),
        (Value::Bool(b), Value::String(t)) if t == "string" => Value::from(b.to_string()),
        (Value::Object(map), Value::Array(t)) => {
            let (kind, inner) = (t.first().and_then(Value::as_str), t.get(1));
            let mut out = Map::new();
            for (k, v) in map {
                let child = match (kind, inner) {
                    (Some("object"), Some(Value::Object(attrs))) => attrs.get(k),
                    (Some("map"), Some(elem)) => Some(elem),
                    _ => None,
                };
                out.insert(
                    k.clone(),
                    child.map_or_else(|| v.clone(), |c| converted(v, c)),
                );
            }
            Value::Object(out)
        }
        (Value::Array(items), Value::Array(t)) => {
            let (kind, inner) = (t.first().and_then(Value::as_str), t.get(1));
            Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let child = match (kind, inner) {
                            (Some("tuple"), Some(Value::Array(types))) => types.get(i),
                            (Some("list" | "set"), Some(elem)) => Some(elem),
                            _ => None,
                        };
                        child.map_or_else(|| v.clone(), |c| converted(v, c))
                    })
                    .collect(),
            )
        }
        _ => value.clone(),
    }
}

/// A number as Go's `big.Float.Text('g', 10)` writes it: at most 10 significant digits, the
/// exponent form below 1e-4 and from 1e10 (`100`, `0.25`, `1.073741824e+10`).
pub fn go_float_text(n: &serde_json::Number) -> String {
    let Some(x) = n.as_f64() else {
        return n.to_string();
    };
    if x == 0.0 {
        return "0".to_owned();
    }
    // Rounded to 10 significant digits, in scientific form: `d.ddddddddde±x`.
    let sci = format!("{x:.9e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return n.to_string();
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let sign = if negative { "-" } else { "" };
    if !(-4..10).contains(&exp) {
        let (head, tail) = digits.split_at(1);
        let frac = if tail.is_empty() {
            String::new()
        } else {
            format!(".{tail}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{head}{frac}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1;
    if point <= 0 {
        let zeros = "0".repeat(usize::try_from(-point).unwrap_or(0));
        format!("{sign}0.{zeros}{digits}")
    } else {
        let point = usize::try_from(point).unwrap_or(0);
        if digits.len() <= point {
            format!("{sign}{digits}{}", "0".repeat(point - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..point], &digits[point..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_written_as_go_writes_them() {
        for (n, text) in [
            (json!(100), "100"),
            (json!(2), "2"),
            (json!(0.25), "0.25"),
            (json!(10737418240_u64), "1.073741824e+10"),
            (json!(10000000000_u64), "1e+10"),
            (json!(1234567890), "1234567890"),
            (json!(0.0001), "0.0001"),
            (json!(0.00001), "1e-05"),
            (json!(-3.5), "-3.5"),
            (json!(0), "0"),
        ] {
            let Value::Number(n) = n else { unreachable!() };
            assert_eq!(go_float_text(&n), text);
        }
    }

    #[test]
    fn values_follow_the_types_the_provider_converted_them_to() {
        let attrs = json!({
            "manifest": {"value": {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "n", "labels": {"version": 2}},
                "data": {"max_items": 100, "enabled": true}}},
            "object": {"type": ["object", {"apiVersion": "string", "kind": "string",
                "metadata": ["object", {"name": "string", "namespace": "string", "labels": ["map", "string"]}],
                "data": ["map", "string"]}]},
            "computed_fields": null
        });
        let m = read(&attrs).unwrap();
        assert_eq!(
            m.object["data"],
            json!({"max_items": "100", "enabled": "true"})
        );
        assert_eq!(m.object["metadata"]["labels"]["version"], "2");
        assert_eq!(m.computed.len(), 2);
    }
}
