//! Bounded text for events, annotations and notes: API fields have length limits, and a
//! user's value must never make a message unbounded.

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` itself when it fits in `limit` bytes, otherwise its prefix and `…`, `limit` bytes
/// at most in all.
pub fn bounded(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_owned();
    }
    let room = limit.saturating_sub('…'.len_utf8());
    format!("{}…", prefix(s, room))
}

/// `lines` joined with `; `, at most about `limit` bytes: the rest is counted, `… and N more`.
pub fn join_bounded(lines: &[String], limit: usize) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let sep = if out.is_empty() { "" } else { "; " };
        if out.len() + sep.len() + line.len() > limit {
            out.push_str(&format!("{sep}… and {} more", lines.len() - i));
            break;
        }
        out.push_str(sep);
        out.push_str(line);
    }
    out
}

/// An error and its causes, each said once: `cannot read x: No such file`. Our errors never
/// repeat their cause in their own message; a cause whose text the message before it already
/// holds (a library's error that prints its source) is left out.
pub fn chain(error: &(dyn std::error::Error + '_)) -> String {
    let mut out = error.to_string();
    let mut last = out.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !last.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        last = text;
        source = cause.source();
    }
    out
}

/// Characters of a user's value that [`quote`] shows.
const QUOTE_LIMIT: usize = 80;

/// `"value"` quoted, cut to a bounded length on a character boundary.
pub fn quote(raw: &str) -> String {
    if raw.chars().count() <= QUOTE_LIMIT {
        format!("{raw:?}")
    } else {
        let head: String = raw.chars().take(QUOTE_LIMIT).collect();
        format!("{head:?}… ({} bytes)", raw.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_land_on_character_boundaries() {
        assert_eq!(prefix("héllo", 2), "h");
        assert_eq!(prefix("web", 10), "web");
        assert!(bounded(&"é".repeat(2000), 1024).len() <= 1024);
        assert_eq!(bounded("short", 1024), "short");
        assert!(bounded("abcdef", 4).ends_with('…'));
        assert_eq!(quote("a"), "\"a\"");
        assert!(quote(&"é".repeat(100)).ends_with("(200 bytes)"));
    }

    #[test]
    fn a_chain_says_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] Middle);
        #[derive(Debug, thiserror::Error)]
        #[error("a library's message: inner")]
        struct Middle(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("inner")]
        struct Inner;
        assert_eq!(
            chain(&Outer(Middle(Inner))),
            "outer: a library's message: inner"
        );
    }

    #[test]
    fn joins_count_what_does_not_fit() {
        let lines: Vec<String> = (0..10).map(|i| format!("line {i}")).collect();
        let out = join_bounded(&lines, 20);
        assert!(out.starts_with("line 0; line 1"), "{out}");
        assert!(out.ends_with("… and 8 more"), "{out}");
    }
}
