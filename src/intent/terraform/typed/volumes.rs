//! Volume sources as the provider's own expanders send them.

use serde_json::Value;

use super::TypedError;
use super::expand::{Expander, blocks};

/// A projected volume's `sources`: the provider sends one projection per source, and of one
/// `sources` block its secrets first, then config maps, downward API, service-account tokens
/// (`expandProjectedSources`), however many a block holds.
pub fn projected_sources(exp: &mut Expander<'_>, value: &Value) -> Result<Value, TypedError> {
    let Some(projection) = exp.schema.def("io.k8s.api.core.v1.VolumeProjection") else {
        return Ok(value.clone());
    };
    let mut out = Vec::new();
    for (i, source) in blocks(value).enumerate() {
        exp.state_path.push(i.to_string());
        for (attr, field) in [
            ("secret", "secret"),
            ("config_map", "configMap"),
            ("downward_api", "downwardAPI"),
            ("service_account_token", "serviceAccountToken"),
        ] {
            let Some(node) = exp.schema.field(projection, field).map(|f| f.node) else {
                continue;
            };
            let Some(items) = source.get(attr) else {
                continue;
            };
            exp.state_path.push(attr.to_owned());
            exp.path.push(field.to_owned());
            for (j, item) in blocks(items).enumerate() {
                exp.state_path.push(j.to_string());
                let converted = exp.structure(item, node)?;
                exp.state_path.pop();
                out.push(serde_json::json!({ field: converted }));
            }
            exp.path.pop();
            exp.state_path.pop();
        }
        exp.state_path.pop();
    }
    Ok(Value::Array(out))
}
