//! Scalars normalised as the API server normalises them: quantities by value, int-or-string
//! by what it holds, numbers by value, base64 by its bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::core::fingerprint::Quantity;
use crate::core::schema::Scalar;

/// The zero of its type, which Go's `omitempty` does not store: `null`, `""`, `0`, `false`,
/// `[]`, `{}`.
pub fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

/// Whether `intent` and `live`, both of scalar kind `kind`, are the same value.
pub fn scalar_eq(kind: Scalar, intent: &Value, live: &Value) -> bool {
    match kind {
        Scalar::Quantity => match (quantity(intent), quantity(live)) {
            (Some(a), Some(b)) => a == b,
            _ => json_scalar_eq(intent, live),
        },
        Scalar::IntOrString => match (integer(intent), integer(live)) {
            (Some(a), Some(b)) => a == b,
            _ => text(intent) == text(live),
        },
        Scalar::Integer | Scalar::Number => match (number(intent), number(live)) {
            (Some(a), Some(b)) => a == b,
            _ => json_scalar_eq(intent, live),
        },
        Scalar::Boolean => match (boolean(intent), boolean(live)) {
            (Some(a), Some(b)) => a == b,
            _ => json_scalar_eq(intent, live),
        },
        Scalar::Bytes => match (bytes(intent), bytes(live)) {
            (Some(a), Some(b)) => a == b,
            _ => json_scalar_eq(intent, live),
        },
        // A string field given a number or a bool (HCL or YAML without quotes) holds its text.
        Scalar::String => text(intent) == text(live),
    }
}

/// JSON scalars without a schema: numbers by value, zeros equal to each other's absence is
/// decided by the caller.
pub fn json_scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn quantity(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s).ok(),
        Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    }
}

fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    STANDARD.decode(v.as_str()?.trim()).ok()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_compare_as_the_server_stores_them() {
        assert!(scalar_eq(Scalar::Quantity, &json!("1000m"), &json!("1")));
        assert!(scalar_eq(Scalar::Quantity, &json!("0.5"), &json!("500m")));
        assert!(!scalar_eq(Scalar::Quantity, &json!("1Gi"), &json!("1G")));
        assert!(scalar_eq(Scalar::IntOrString, &json!("8080"), &json!(8080)));
        assert!(!scalar_eq(Scalar::IntOrString, &json!("http"), &json!(80)));
        assert!(scalar_eq(Scalar::IntOrString, &json!("25%"), &json!("25%")));
        assert!(scalar_eq(Scalar::Integer, &json!("30"), &json!(30)));
        assert!(scalar_eq(Scalar::Number, &json!(1), &json!(1.0)));
        assert!(scalar_eq(Scalar::String, &json!(100), &json!("100")));
        assert!(scalar_eq(Scalar::String, &json!(true), &json!("true")));
        assert!(!scalar_eq(Scalar::String, &json!("a"), &json!("b")));
        assert!(scalar_eq(Scalar::Bytes, &json!("aGk="), &json!(" aGk=")));
        assert!(is_zero(&json!(0)) && is_zero(&json!("")) && is_zero(&json!({})));
        assert!(!is_zero(&json!(" ")) && !is_zero(&json!([0])));
    }
}
