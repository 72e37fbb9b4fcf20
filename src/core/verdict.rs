//! The verdict table (README.md, "Read the verdicts") as pure functions: from an object's
//! annotations and its live hash to the verdict, the annotations it should carry, and
//! whether an event is due.

use std::collections::BTreeMap;

use crate::core::contract;
use crate::core::contract::EventType;
use crate::core::fingerprint::is_hash;
use crate::core::text::quote;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    InSync,
    Drifted,
    BaselineMissing,
    /// The spec-hash annotation as found (untrimmed).
    InvalidBaseline(String),
}

impl Verdict {
    /// Value of the `tfdrift.jin.dev/drifted` annotation.
    pub fn drifted_value(&self) -> &'static str {
        match self {
            Verdict::InSync => "false",
            Verdict::Drifted => "true",
            Verdict::BaselineMissing | Verdict::InvalidBaseline(_) => "unknown",
        }
    }

    /// Bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::InSync => "in_sync",
            Verdict::Drifted => "drifted",
            Verdict::BaselineMissing => "baseline_missing",
            Verdict::InvalidBaseline(_) => "invalid_baseline",
        }
    }
}

/// Decides the verdict. The spec-hash is accepted with surrounding whitespace and in
/// upper case (compared case-insensitively); anything else that is not 64 hex
/// characters is an invalid baseline. `record_agrees`: the baseline record taken at the
/// spec-hash, under the ignore rules live is hashed with, equals live — in sync although
/// the spec-hash was computed under fewer rules (an HPA `tfdrift hash` did not see).
pub fn decide(spec_hash: Option<&str>, live_hash: &str, record_agrees: bool) -> Verdict {
    match spec_hash {
        None => Verdict::BaselineMissing,
        Some(raw) => {
            let normalised = raw.trim().to_ascii_lowercase();
            if !is_hash(&normalised) {
                Verdict::InvalidBaseline(raw.to_owned())
            } else if normalised == live_hash || record_agrees {
                Verdict::InSync
            } else {
                Verdict::Drifted
            }
        }
    }
}

/// The merge patch of `metadata.annotations` that takes `current` to what `verdict`
/// requires: only keys whose value changes, `None` meaning "remove". Empty when nothing
/// changes, which is the steady state.
pub fn annotation_patch(
    current: &BTreeMap<String, String>,
    verdict: &Verdict,
    live_hash: &str,
    now_rfc3339: impl FnOnce() -> String,
) -> BTreeMap<&'static str, Option<String>> {
    let mut desired: BTreeMap<&'static str, Option<String>> = BTreeMap::new();
    desired.insert(contract::DRIFTED, Some(verdict.drifted_value().to_owned()));
    desired.insert(contract::LIVE_HASH, Some(live_hash.to_owned()));
    let drifted_at = match verdict {
        // Kept from first detection: a resync or a second drifting edit does not move it.
        Verdict::Drifted => Some(
            current
                .get(contract::DRIFTED_AT)
                .filter(|_| current.get(contract::DRIFTED).map(String::as_str) == Some("true"))
                .cloned()
                .unwrap_or_else(now_rfc3339),
        ),
        _ => None,
    };
    desired.insert(contract::DRIFTED_AT, drifted_at);
    if *verdict != Verdict::Drifted {
        desired.insert(contract::DRIFT_SUMMARY, None);
    }
    desired
        .into_iter()
        .filter(|(k, v)| current.get(*k) != v.as_ref())
        .collect()
}

/// The patch that removes the operator's annotations (opt-out); empty if none are set.
pub fn cleanup_patch(current: &BTreeMap<String, String>) -> BTreeMap<&'static str, Option<String>> {
    contract::OPERATOR_ANNOTATIONS
        .into_iter()
        .filter(|k| current.contains_key(*k))
        .map(|k| (k, None))
        .collect()
}

/// The event a verdict calls for, given the verdict reported before (`None` when unknown:
/// fall back on the `drifted` annotation, which survives restarts and leader changes).
pub fn event_for(
    verdict: &Verdict,
    previous: Option<&Verdict>,
    previous_annotation: Option<&str>,
) -> Option<(&'static str, EventType, String)> {
    let transition = match previous {
        Some(prev) => match (prev, verdict) {
            (Verdict::Drifted, Verdict::Drifted)
            | (Verdict::BaselineMissing, Verdict::BaselineMissing) => false,
            (Verdict::InvalidBaseline(a), Verdict::InvalidBaseline(b)) => a != b,
            (_, Verdict::InSync) => *prev == Verdict::Drifted,
            _ => prev != verdict,
        },
        None => match verdict {
            Verdict::InSync => previous_annotation == Some("true"),
            Verdict::Drifted => previous_annotation != Some("true"),
            Verdict::BaselineMissing | Verdict::InvalidBaseline(_) => {
                previous_annotation != Some("unknown")
            }
        },
    };
    if !transition {
        return None;
    }
    Some(match verdict {
        Verdict::Drifted => (
            contract::reason::DRIFT_DETECTED,
            EventType::Warning,
            "live state no longer matches tfdrift.jin.dev/spec-hash".to_owned(),
        ),
        Verdict::InSync => (
            contract::reason::DRIFT_RESOLVED,
            EventType::Normal,
            "live state matches tfdrift.jin.dev/spec-hash again".to_owned(),
        ),
        Verdict::BaselineMissing => (
            contract::reason::BASELINE_MISSING,
            EventType::Warning,
            concat!(
                "opted in but has no tfdrift.jin.dev/spec-hash annotation; ",
                "compute it with `tfdrift hash`"
            )
            .to_owned(),
        ),
        Verdict::InvalidBaseline(raw) => (
            contract::reason::INVALID_BASELINE,
            EventType::Warning,
            format!(
                "tfdrift.jin.dev/spec-hash {} is not 64 hex characters; compute it with `tfdrift hash`",
                quote(raw)
            ),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const OTHER: &str = "f123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn decides_every_row_of_the_table() {
        assert_eq!(decide(Some(H), H, false), Verdict::InSync);
        assert_eq!(decide(Some(OTHER), H, false), Verdict::Drifted);
        assert_eq!(decide(None, H, false), Verdict::BaselineMissing);
        assert_eq!(decide(Some(OTHER), H, true), Verdict::InSync);
        assert_eq!(decide(None, H, true), Verdict::BaselineMissing);
        assert_eq!(
            decide(Some(&format!("  {}\n", H.to_uppercase())), H, false),
            Verdict::InSync
        );
        for bad in [
            "",
            " ",
            "abc",
            &H[1..],
            &format!("{H}0"),
            &H.replace('0', "g"),
            &format!("v2:{H}"),
        ] {
            assert_eq!(
                decide(Some(bad), H, false),
                Verdict::InvalidBaseline(bad.to_string()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn steady_state_needs_no_patch() {
        let current = ann(&[(contract::DRIFTED, "false"), (contract::LIVE_HASH, H)]);
        assert!(annotation_patch(&current, &Verdict::InSync, H, || unreachable!()).is_empty());
        let drifted = ann(&[
            (contract::DRIFTED, "true"),
            (contract::LIVE_HASH, OTHER),
            (contract::DRIFTED_AT, "t0"),
        ]);
        assert!(annotation_patch(&drifted, &Verdict::Drifted, OTHER, || unreachable!()).is_empty());
    }

    #[test]
    fn drifted_at_is_kept_from_first_detection_and_removed_on_resolve() {
        let first = annotation_patch(
            &ann(&[(contract::DRIFTED, "false")]),
            &Verdict::Drifted,
            OTHER,
            || "t1".into(),
        );
        assert_eq!(
            first.get(contract::DRIFTED_AT),
            Some(&Some("t1".to_string()))
        );
        let drifted = ann(&[
            (contract::DRIFTED, "true"),
            (contract::LIVE_HASH, OTHER),
            (contract::DRIFTED_AT, "t0"),
        ]);
        let second = annotation_patch(&drifted, &Verdict::Drifted, "another", || "t2".into());
        assert_eq!(second.len(), 1, "only live-hash changes: {second:?}");
        let resolved = annotation_patch(&drifted, &Verdict::InSync, H, || unreachable!());
        assert_eq!(resolved.get(contract::DRIFTED_AT), Some(&None));
        assert_eq!(resolved.get(contract::DRIFTED), Some(&Some("false".into())));
    }

    #[test]
    fn events_only_on_transitions() {
        let d = Verdict::Drifted;
        assert!(event_for(&d, None, Some("false")).is_some());
        assert!(
            event_for(&d, None, Some("true")).is_none(),
            "restart while drifted: no repeat"
        );
        assert!(event_for(&d, Some(&Verdict::Drifted), None).is_none());
        assert!(event_for(&Verdict::InSync, Some(&d), None).is_some());
        assert!(
            event_for(&Verdict::InSync, None, None).is_none(),
            "first sight in sync: quiet"
        );
        assert!(event_for(&Verdict::InSync, Some(&Verdict::BaselineMissing), None).is_none());
        let bad = |s: &str| Verdict::InvalidBaseline(s.into());
        assert!(event_for(&bad("x"), Some(&bad("x")), None).is_none());
        assert!(event_for(&bad("y"), Some(&bad("x")), None).is_some());
        assert!(event_for(&Verdict::BaselineMissing, Some(&bad("x")), None).is_some());
        assert!(event_for(&Verdict::BaselineMissing, None, Some("unknown")).is_none());
    }

    #[test]
    fn bad_values_are_quoted_truncated() {
        let huge = "x".repeat(200_000);
        let (_, _, msg) = event_for(&Verdict::InvalidBaseline(huge), None, None).unwrap();
        assert!(msg.len() < 400, "{}", msg.len());
        assert!(msg.contains("200000 bytes"));
        assert_eq!(
            quote("é".repeat(100).as_str())
                .chars()
                .filter(|c| *c == 'é')
                .count(),
            80
        );
    }

    #[test]
    fn cleanup_removes_only_what_is_there() {
        let current = ann(&[(contract::DRIFTED, "true"), (contract::SPEC_HASH, H)]);
        let patch = cleanup_patch(&current);
        assert_eq!(patch.len(), 1);
        assert_eq!(patch.get(contract::DRIFTED), Some(&None));
    }
}
