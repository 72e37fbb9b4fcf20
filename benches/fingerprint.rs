//! Fingerprint + hash of a realistic Deployment: 3 containers with env, ports, resources.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;

fn deployment() -> Deployment {
    let container = |name: &str, image: &str, port: i32| {
        json!({
            "name": name,
            "image": image,
            "args": ["--listen", format!(":{port}"), "--log-level=info"],
            "env": [
                {"name": "LOG_LEVEL", "value": "info"},
                {"name": "REGION", "value": "eu-west-1"},
                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "FEATURES", "valueFrom": {"configMapKeyRef": {"name": "flags", "key": "features"}}}
            ],
            "ports": [{"containerPort": port, "name": "http"}, {"containerPort": port + 1, "name": "metrics"}],
            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}, {"name": "tmp", "mountPath": "/tmp"}]
        })
    };
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "frontend"}},
                "spec": {
                    "serviceAccountName": "web",
                    "containers": [
                        container("web", "registry.example.com/shop/web:2.14.1", 8080),
                        container("sidecar", "envoyproxy/envoy:v1.31.0", 9901),
                        container("log-shipper", "fluent/fluent-bit:3.1", 2020)
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": "web"}}, {"name": "tmp", "emptyDir": {}}]
                }
            }
        }
    }))
    .expect("valid Deployment")
}

fn bench(c: &mut Criterion) {
    let d = deployment();
    c.bench_function("fingerprint+sha256 of a 3-container Deployment", |b| {
        b.iter(|| tfdrift::core::fingerprint::hash(black_box(&d)).expect("hashable"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
