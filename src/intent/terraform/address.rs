//! Terraform addresses as `terraform state list` prints them, so that a user can paste one
//! back into `terraform state show` or an ignore rule.

use serde_json::Value;
use unicode_general_category::{GeneralCategory, get_general_category};

/// The `[key]` suffix of an instance: `[0]` for `count`, `["blue"]` for `for_each`.
pub fn index(key: &Value) -> Option<String> {
    match key {
        Value::Number(n) => Some(format!("[{n}]")),
        Value::String(s) => Some(format!("[{}]", hcl_quoted(s))),
        _ => None,
    }
}

/// `s` as an HCL quoted string, as Terraform writes an instance key: backslash escapes for
/// quotes, backslashes and line breaks, template introducers (`${`, `%{`) doubled, and every
/// character Go does not call printable as `\uXXXX` (`\UXXXXXXXX` beyond the BMP).
pub fn hcl_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' | '%' => {
                out.push(c);
                if chars.peek() == Some(&'{') {
                    out.push(c);
                }
            }
            c if !is_print(c) => {
                let n = u32::from(c);
                if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
fn is_print(c: char) -> bool {
    use GeneralCategory as G;
    c == ' '
        || !matches!(
            get_general_category(c),
            G::SpaceSeparator
                | G::LineSeparator
                | G::ParagraphSeparator
                | G::Control
                | G::Format
                | G::Surrogate
                | G::PrivateUse
                | G::Unassigned
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `terraform state list` (1.11) printed for these keys.
    #[test]
    fn keys_are_quoted_as_terraform_prints_them() {
        for (key, printed) in [
            ("blue", r#""blue""#),
            ("", r#""""#),
            ("a${b}", r#""a$${b}""#),
            ("p%{x}", r#""p%%{x}""#),
            ("$x", r#""$x""#),
            ("%", r#""%""#),
            ("tab\there", r#""tab\there""#),
            ("nbsp\u{a0}x", r#""nbsp\u00a0x""#),
            ("zwj\u{200d}x", r#""zwj\u200dx""#),
            ("quote\"q", r#""quote\"q""#),
            ("back\\s", r#""back\\s""#),
            ("emoji😀", "\"emoji😀\""),
            ("ctl\u{7}", r#""ctl\u0007""#),
            ("priv\u{e000}", r#""priv\ue000""#),
            ("unassigned\u{378}", r#""unassigned\u0378""#),
            ("plane\u{f0000}", r#""plane\U000f0000""#),
        ] {
            assert_eq!(hcl_quoted(key), printed, "{key:?}");
        }
        assert_eq!(index(&Value::from(3)).as_deref(), Some("[3]"));
        assert_eq!(index(&Value::Null), None);
    }
}
