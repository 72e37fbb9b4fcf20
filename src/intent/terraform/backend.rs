//! Terraform's `kubernetes` backend, as its Secrets and Leases hold a state: which state a
//! Secret is a part of and where, the parts reassembled, whether a lock is held. Pure: the
//! operator's state watch feeds it what it lists.

use std::fmt;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::{Resource, ResourceExt};

use super::ReadError;

/// The labels the backend sets on every state Secret.
pub const SELECTOR: &str = "tfstate=true";
pub const WORKSPACE_LABEL: &str = "tfstateWorkspace";
pub const SUFFIX_LABEL: &str = "tfstateSecretSuffix";
/// Largest state read, compressed (all parts together).
pub const MAX_COMPRESSED: usize = 64 * 1024 * 1024;
/// One state of the backend: `tfstate-<workspace>-<suffix>` in `namespace`; or, with the
/// workspace [`HELM_WORKSPACE`], a Helm release (`suffix` its name), which the operator
/// keeps beside the states as another source of intent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateId {
    pub namespace: String,
    pub workspace: String,
    pub suffix: String,
}

/// The workspace of a Helm release's [`StateId`]: no Terraform workspace can be named so
/// (its Secret's name could not hold the parentheses).
pub const HELM_WORKSPACE: &str = "(helm)";

impl Ord for StateId {
    /// Terraform states before Helm releases: when both name an object, the state decides.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |s: &StateId| {
            (
                s.is_helm(),
                s.namespace.clone(),
                s.workspace.clone(),
                s.suffix.clone(),
            )
        };
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for StateId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for StateId {
    /// `<namespace>/<workspace>/<suffix>`, the value of `tfdrift.jin.dev/terraform-workspace`;
    /// `helm:<namespace>/<release>` for a Helm release.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_helm() {
            return write!(f, "helm:{}/{}", self.namespace, self.suffix);
        }
        write!(f, "{}/{}/{}", self.namespace, self.workspace, self.suffix)
    }
}

impl StateId {
    /// The id of Helm release `name` in `namespace`.
    pub fn helm(namespace: &str, name: &str) -> StateId {
        StateId {
            namespace: namespace.to_owned(),
            workspace: HELM_WORKSPACE.to_owned(),
            suffix: name.to_owned(),
        }
    }

    /// Whether this is a Helm release, not a Terraform state.
    pub fn is_helm(&self) -> bool {
        self.workspace == HELM_WORKSPACE
    }

    /// The `namespace`, `workspace`, `suffix` labels of its metrics.
    pub fn labels(&self) -> [&str; 3] {
        [&self.namespace, &self.workspace, &self.suffix]
    }

    pub fn secret_name(&self) -> String {
        format!("tfstate-{}-{}", self.workspace, self.suffix)
    }
}

/// One Secret of a state: which part it is and its bytes (gzip, compressed) until the
/// state is read; the next read lists the state's Secrets again rather than keep a copy
/// of every state in memory between changes.
pub struct Part {
    pub state: StateId,
    pub index: usize,
    pub data: Option<Vec<u8>>,
    pub reference: ObjectReference,
}

/// Why a state was not read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("part {0} of the state is missing")]
    MissingPart(usize),
    #[error("larger than {} MiB compressed; refused", MAX_COMPRESSED >> 20)]
    TooLarge,
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("reading the state stopped unexpectedly")]
    Aborted,
}

impl StateError {
    pub fn reason(&self) -> &'static str {
        match self {
            StateError::MissingPart(_) => "missing_part",
            StateError::TooLarge => "too_large",
            StateError::Read(ReadError::State(_)) => "undecodable",
            StateError::Aborted => "aborted",
        }
    }
}

/// The part index a Secret's name gives: `…-part-<i>`, the first part has none.
pub fn part_index(secret_name: &str, name: &str) -> Option<usize> {
    if name == secret_name {
        return Some(0);
    }
    name.strip_prefix(secret_name)?
        .strip_prefix("-part-")?
        .parse()
        .ok()
        .filter(|&i| i > 0)
}

/// The parts of `state` reassembled in order.
pub fn reassemble(parts: &[&Part]) -> Result<Vec<u8>, StateError> {
    let mut sorted: Vec<&&Part> = parts.iter().collect();
    sorted.sort_by_key(|p| p.index);
    let mut out = Vec::new();
    for (expected, part) in sorted.iter().enumerate() {
        if part.index != expected {
            return Err(StateError::MissingPart(expected));
        }
        let data = part
            .data
            .as_deref()
            .ok_or(StateError::MissingPart(expected))?;
        if out.len() + data.len() > MAX_COMPRESSED {
            return Err(StateError::TooLarge);
        }
        out.extend_from_slice(data);
    }
    Ok(out)
}

/// Held ⇔ the Lease has a holder (the backend also sets a lock-info annotation).
pub fn is_held(lease: &Lease) -> bool {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .is_some_and(|h| !h.is_empty())
}

/// The state a lock Lease guards, from the backend's labels.
pub fn state_of_lease(lease: &Lease) -> Option<StateId> {
    let labels = lease.labels();
    Some(StateId {
        namespace: lease.namespace().unwrap_or_default(),
        workspace: labels.get(WORKSPACE_LABEL)?.clone(),
        suffix: labels.get(SUFFIX_LABEL)?.clone(),
    })
}

/// The part a state Secret holds, `None` for a Secret without the backend's labels.
pub fn part_of(secret: &Secret) -> Option<Part> {
    let labels = secret.labels();
    let state = StateId {
        namespace: secret.namespace().unwrap_or_default(),
        workspace: labels.get(WORKSPACE_LABEL)?.clone(),
        suffix: labels.get(SUFFIX_LABEL)?.clone(),
    };
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get("tfstate"))
        .map(|b| b.0.clone())
        .unwrap_or_default();
    let data = Some(data);
    // Only the backend's own names: a copy carrying the same labels is not a part.
    let index = part_index(&state.secret_name(), &secret.name_any())?;
    Some(Part {
        index,
        state,
        data,
        reference: secret.object_ref(&()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_ordered_by_the_index_in_their_name() {
        let base = "tfstate-default-app";
        assert_eq!(part_index(base, "tfstate-default-app"), Some(0));
        assert_eq!(part_index(base, "tfstate-default-app-part-1"), Some(1));
        assert_eq!(part_index(base, "tfstate-default-app-part-12"), Some(12));
        assert_eq!(part_index(base, "tfstate-default-app-backup"), None);
        assert_eq!(
            part_index("tfstate-default-app-part-2", "tfstate-default-app-part-2"),
            Some(0)
        );
        let state = StateId {
            namespace: "ns".into(),
            workspace: "default".into(),
            suffix: "app".into(),
        };
        let part = |index: usize, data: &[u8]| Part {
            state: state.clone(),
            index,
            data: Some(data.to_vec()),
            reference: ObjectReference::default(),
        };
        let (a, b, c) = (part(0, b"ab"), part(1, b"cd"), part(2, b"ef"));
        assert_eq!(reassemble(&[&c, &a, &b]).unwrap(), b"abcdef");
        assert!(matches!(
            reassemble(&[&a, &c]),
            Err(StateError::MissingPart(1))
        ));
        // A part whose bytes were dropped after a read is listed again, never guessed.
        let dropped = Part {
            data: None,
            ..part(1, b"")
        };
        assert!(matches!(
            reassemble(&[&a, &dropped, &c]),
            Err(StateError::MissingPart(1))
        ));
    }
}
