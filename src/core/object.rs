//! The one identity of an object across tfdrift: kind, namespace and name.

use std::fmt;

/// An object's identity. `namespace` is empty for a manifest that leaves it to
/// `kubectl apply -n`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectId {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        ObjectId {
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for ObjectId {
    /// `Kind/namespace/name`, as logs and errors name an object.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}
