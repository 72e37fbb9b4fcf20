//! Saying what drifted and who did it: the baseline record, the field-level diff of two
//! fingerprints, and attribution from `managedFields`.

pub mod attribution;
pub mod diff;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use serde_json::Value;

/// How values appear in an explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// As they are (the user's own manifest and record).
    Shown,
    /// Env values and ConfigMap data said to have changed, never shown: intent read from
    /// Terraform state, where they may be secrets.
    Redacted,
}

/// One line for an event or a report: what changed from `intent` to `live` (two canonical
/// fingerprints of `kind`, rules already applied) and who changed it, bounded by `limit`;
/// `no_writer` says why nobody is named when `managedFields` names nobody.
pub fn describe(
    kind: &str,
    intent: &Value,
    live: &Value,
    managed: &[ManagedFieldsEntry],
    values: Values,
    limit: usize,
    no_writer: &str,
) -> String {
    let changes = diff::diff(intent, live);
    describe_changes(
        &changes,
        attribution::Paths::Fingerprint(kind),
        managed,
        values,
        limit,
        no_writer,
    )
}

/// [`describe`] of changes found already (by the comparison of intent known in full).
pub fn describe_changes(
    changes: &[diff::Change],
    paths: attribution::Paths<'_>,
    managed: &[ManagedFieldsEntry],
    values: Values,
    limit: usize,
    no_writer: &str,
) -> String {
    let summary = match values {
        Values::Shown => diff::summary(changes, limit),
        Values::Redacted => diff::summary_redacted(changes, limit),
    };
    let writers = attribution::writers_of(paths, managed, changes);
    let by: Vec<String> = writers.iter().take(3).map(ToString::to_string).collect();
    if by.is_empty() {
        format!("{summary} ({no_writer})")
    } else {
        format!("{summary} (changed by {})", by.join(", "))
    }
}
