//! The one identity of an object across tfdrift: group, kind, namespace and name.

use std::fmt;

/// An object's identity. `namespace` is empty for a cluster-scoped object, and for a
/// manifest that leaves it to `kubectl apply -n`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    /// The API group, `""` for the core group.
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectId {
    /// An object of a kind the built-in kind table knows by name alone (the kinds tfdrift
    /// fingerprints); its group is that table's first group for the kind.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        let group = crate::core::kind::BUILTIN
            .iter()
            .find(|k| k.kind == kind)
            .map(|k| k.group)
            .unwrap_or_default();
        ObjectId::in_group(group, kind, namespace, name)
    }

    pub fn in_group(group: &str, kind: &str, namespace: &str, name: &str) -> Self {
        ObjectId {
            group: group.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The kind as a reader can tell it apart: `Deployment`, or `Ingress.extensions` and
    /// `Widget.example.com` where the kind alone names another group's kind or none the
    /// built-in table knows.
    pub fn qualified_kind(&self) -> String {
        let canonical = crate::core::kind::BUILTIN
            .iter()
            .find(|k| k.kind == self.kind)
            .map(|k| k.group);
        if canonical == Some(self.group.as_str()) {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

impl fmt::Display for ObjectId {
    /// `Kind/namespace/name`, or `Kind/name` for a cluster-scoped object, as logs, errors and
    /// reports name an object.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.qualified_kind();
        if self.namespace.is_empty() {
            write!(f, "{kind}/{}", self.name)
        } else {
            write!(f, "{kind}/{}/{}", self.namespace, self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tell_groups_and_scopes_apart() {
        assert_eq!(
            ObjectId::new("Deployment", "ns", "web").to_string(),
            "Deployment/ns/web"
        );
        assert_eq!(ObjectId::new("Deployment", "ns", "web").group, "apps");
        assert_eq!(
            ObjectId::in_group("rbac.authorization.k8s.io", "ClusterRole", "", "view").to_string(),
            "ClusterRole/view"
        );
        assert_eq!(
            ObjectId::in_group("extensions", "Ingress", "ns", "i").to_string(),
            "Ingress.extensions/ns/i"
        );
        assert_eq!(
            ObjectId::in_group("example.com", "Widget", "ns", "w").to_string(),
            "Widget.example.com/ns/w"
        );
    }
}
