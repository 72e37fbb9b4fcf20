#!/usr/bin/env bash
# Starts a local control plane (etcd + kube-apiserver, no nodes) for demos and manual
# trials, the same way the integration tests do (tests/integration/support.rs).
#
#   hack/local-cluster.sh start DIR   # prints the kubeconfig path; processes run in the background
#   hack/local-cluster.sh stop DIR
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

case "$cmd" in
stop)
  for p in apiserver etcd; do
    [[ -f "$dir/$p.pid" ]] && kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
  done
  exit 0
  ;;
start) ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac

assets=$("$(dirname "$0")/envtest.sh")
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token,admin,admin,\"system:masters\"" > "$dir/tokens.csv"
[[ -f "$dir/sa.key" ]] || openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
openssl rsa -pubout -in "$dir/sa.key" -out "$dir/sa.pub" 2>/dev/null

minor=$("$assets/kube-apiserver" --version | sed -E 's/.*v1\.([0-9]+).*/\1/')
extra=()
# Before 1.24 an unauthenticated HTTP port listened on 8080 unless disabled.
((minor < 24)) && extra+=(--insecure-port 0)
etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
ETCD_UNSUPPORTED_ARCH=$(uname -m) "$assets/etcd" --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "default=http://127.0.0.1:$peer_port" --log-level warn >"$dir/etcd.log" 2>&1 &
echo $! > "$dir/etcd.pid"
"$assets/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" "${extra[@]}" \
  --cert-dir "$dir/certs" --token-auth-file "$dir/tokens.csv" --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$dir/sa.pub" --service-account-signing-key-file "$dir/sa.key" \
  --service-cluster-ip-range 10.0.0.0/24 --endpoint-reconciler-type none \
  --enable-priority-and-fairness=false --profiling=false >"$dir/kube-apiserver.log" 2>&1 &
echo $! > "$dir/apiserver.pid"

cat > "$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:$api_port", insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: "$token"}
contexts:
- name: local
  context: {cluster: local, user: admin, namespace: default}
current-context: local
KC
for _ in $(seq 1 300); do
  if KUBECONFIG="$dir/kubeconfig" kubectl get --raw /readyz >/dev/null 2>&1; then
    echo "$dir/kubeconfig"
    exit 0
  fi
  sleep 0.2
done
echo "kube-apiserver did not become ready; see $dir/kube-apiserver.log" >&2
exit 1
