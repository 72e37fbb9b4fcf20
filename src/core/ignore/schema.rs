//! The shape of each kind's canonical fingerprint, as the drift diff shows it (the pod
//! template flattened into the top level), so that an ignore path naming a field no
//! fingerprint has is reported instead of silently matching nothing.
//!
//! It mirrors the `*Fingerprint` structs in `src/core/fingerprint/`; a test walks every fixture
//! through it, so a field added there and not here fails the build's tests.

use super::path::Step;

#[derive(Debug)]
pub enum Node {
    /// A scalar.
    Leaf,
    /// Free-form (a volume source as the server stores it): anything below is accepted.
    Free,
    /// A map with user keys (`labels[app]`).
    Map(&'static Node),
    /// A list (`containers[web]`, `command[0]`).
    List(&'static Node),
    Struct(&'static [(&'static str, &'static Node)]),
}

static LEAF: Node = Node::Leaf;
static FREE: Node = Node::Free;
static STRINGS: Node = Node::List(&LEAF);
static STRING_MAP: Node = Node::Map(&LEAF);
static REF: Node = Node::Struct(&[("name", &LEAF), ("optional", &LEAF)]);
static KEY_REF: Node = Node::Struct(&[("name", &LEAF), ("key", &LEAF), ("optional", &LEAF)]);
// The source variants' fields are hashed in snake case (serde renames only the variants):
// the spelling is part of every existing spec-hash, so it stays.
static ENV_SOURCE: Node = Node::Struct(&[
    ("configMapKeyRef", &KEY_REF),
    ("secretKeyRef", &KEY_REF),
    (
        "fieldRef",
        &Node::Struct(&[("api_version", &LEAF), ("field_path", &LEAF)]),
    ),
    (
        "resourceFieldRef",
        &Node::Struct(&[
            ("container_name", &LEAF),
            ("resource", &LEAF),
            ("divisor", &LEAF),
        ]),
    ),
]);
static ENV: Node = Node::Struct(&[
    ("name", &LEAF),
    ("value", &LEAF),
    ("valueFrom", &ENV_SOURCE),
]);
static ENV_FROM: Node = Node::Struct(&[
    ("prefix", &LEAF),
    ("configMapRef", &REF),
    ("secretRef", &REF),
]);
static CONTAINER_PORT: Node = Node::Struct(&[
    ("containerPort", &LEAF),
    ("protocol", &LEAF),
    ("name", &LEAF),
    ("hostPort", &LEAF),
    ("hostIp", &LEAF),
]);
static RESOURCES: Node = Node::Struct(&[("limits", &STRING_MAP), ("requests", &STRING_MAP)]);
static MOUNT: Node = Node::Struct(&[
    ("name", &LEAF),
    ("mountPath", &LEAF),
    ("readOnly", &LEAF),
    ("subPath", &LEAF),
    ("subPathExpr", &LEAF),
    ("mountPropagation", &LEAF),
]);
static CONTAINER: Node = Node::Struct(&[
    ("name", &LEAF),
    ("image", &LEAF),
    ("imagePullPolicy", &LEAF),
    ("command", &STRINGS),
    ("args", &STRINGS),
    ("env", &Node::List(&ENV)),
    ("envFrom", &Node::List(&ENV_FROM)),
    ("ports", &Node::List(&CONTAINER_PORT)),
    ("resources", &RESOURCES),
    ("volumeMounts", &Node::List(&MOUNT)),
]);
static CONTAINERS: Node = Node::List(&CONTAINER);
static VOLUMES: Node = Node::List(&Node::Struct(&[("name", &LEAF), ("source", &FREE)]));

/// A workload's fields followed by the pod template's, flattened as the diff shows them.
macro_rules! workload {
    ($($field:literal: $node:expr,)*) => {
        Node::Struct(&[
            $(($field, $node),)*
            ("labels", &STRING_MAP),
            ("serviceAccountName", &LEAF),
            ("nodeSelector", &STRING_MAP),
            ("initContainers", &CONTAINERS),
            ("containers", &CONTAINERS),
            ("volumes", &VOLUMES),
        ])
    };
}

static DEPLOYMENT: Node = workload!("replicas": &LEAF,);
static STATEFULSET: Node = workload!("replicas": &LEAF, "serviceName": &LEAF,);
static DAEMONSET: Node = workload!();
static SERVICE: Node = Node::Struct(&[
    ("type", &LEAF),
    ("selector", &STRING_MAP),
    (
        "ports",
        &Node::List(&Node::Struct(&[
            ("port", &LEAF),
            ("protocol", &LEAF),
            ("name", &LEAF),
            ("targetPort", &LEAF),
            ("appProtocol", &LEAF),
        ])),
    ),
    ("headless", &LEAF),
    ("externalName", &LEAF),
    ("sessionAffinity", &LEAF),
    ("sessionAffinityTimeoutSeconds", &LEAF),
    ("externalTrafficPolicy", &LEAF),
    ("loadBalancerSourceRanges", &STRINGS),
    ("externalIps", &STRINGS),
]);
static CONFIGMAP: Node = Node::Struct(&[("data", &STRING_MAP), ("binaryData", &STRING_MAP)]);

/// The fingerprint shape of `kind`, if it is a supported kind.
pub fn of(kind: &str) -> Option<&'static Node> {
    Some(match kind {
        "Deployment" => &DEPLOYMENT,
        "StatefulSet" => &STATEFULSET,
        "DaemonSet" => &DAEMONSET,
        "Service" => &SERVICE,
        "ConfigMap" => &CONFIGMAP,
        _ => return None,
    })
}

/// Where a valid path applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// From the top of the fingerprint (`replicas`, `containers[*].resources`).
    Top,
    /// Wherever its first field occurs (`env[BUILD_ID]`: in every container).
    Anywhere,
}

/// Whether `steps` names something in `root`: from the top, else somewhere below it.
/// The error says where the path stops making sense.
pub fn locate(root: &'static Node, steps: &[Step]) -> Result<Anchor, String> {
    let from_top = follow(root, steps);
    if from_top.is_ok() {
        return Ok(Anchor::Top);
    }
    if matches!(steps.first(), Some(Step::Field(f)) if !top_fields(root).contains(&f.as_str()))
        && occurs_below(root, steps)
    {
        return Ok(Anchor::Anywhere);
    }
    from_top.map(|()| Anchor::Top)
}

fn top_fields(node: &Node) -> Vec<&'static str> {
    match node {
        Node::Struct(fields) => fields.iter().map(|(name, _)| *name).collect(),
        _ => Vec::new(),
    }
}

fn follow(node: &'static Node, steps: &[Step]) -> Result<(), String> {
    let Some((first, rest)) = steps.split_first() else {
        return Ok(());
    };
    match (node, first) {
        (Node::Free, _) => Ok(()),
        (Node::Struct(fields), Step::Field(name)) => match fields.iter().find(|(f, _)| f == name) {
            Some((_, child)) => follow(child, rest),
            None => Err(format!(
                "no field `{name}` here (known: {})",
                top_fields(node).join(", ")
            )),
        },
        (Node::Map(inner) | Node::List(inner), Step::Select(_)) => follow(inner, rest),
        (Node::Map(_) | Node::List(_), Step::Field(name)) => Err(format!(
            "`{name}` follows a list or map without choosing entries (use `[key]` or `[*]` first)"
        )),
        (Node::Struct(_), Step::Select(_)) => {
            Err("`[…]` follows a field that is neither a list nor a map".to_owned())
        }
        (Node::Leaf, _) => Err("a path goes on past a single value".to_owned()),
    }
}

fn occurs_below(node: &'static Node, steps: &[Step]) -> bool {
    let children: Vec<&'static Node> = match node {
        Node::Struct(fields) => fields.iter().map(|(_, n)| *n).collect(),
        Node::Map(inner) | Node::List(inner) => vec![*inner],
        Node::Leaf | Node::Free => return false,
    };
    children.into_iter().any(|child| {
        let here = !matches!(child, Node::Free) && follow(child, steps).is_ok();
        here || occurs_below(child, steps)
    })
}

/// Whether `value` has the shape `node` describes (for tests of this module against
/// real fingerprints).
#[cfg(test)]
pub fn conforms(node: &Node, value: &serde_json::Value, at: &str) -> Result<(), String> {
    use serde_json::Value;
    match (node, value) {
        (Node::Free, _) => Ok(()),
        (Node::Leaf, v) if !v.is_object() && !v.is_array() => Ok(()),
        (Node::Map(inner), Value::Object(map)) => map
            .iter()
            .try_for_each(|(k, v)| conforms(inner, v, &format!("{at}[{k}]"))),
        (Node::List(inner), Value::Array(items)) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| conforms(inner, v, &format!("{at}[{i}]"))),
        (Node::Struct(fields), Value::Object(map)) => {
            map.iter()
                .try_for_each(|(k, v)| match fields.iter().find(|(f, _)| f == k) {
                    Some((_, child)) => conforms(child, v, &format!("{at}.{k}")),
                    None => Err(format!("{at}.{k} is not in the schema")),
                })
        }
        _ => Err(format!("{at} has another shape than the schema says")),
    }
}
