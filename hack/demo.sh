#!/usr/bin/env bash
# `make demo`: on a fresh machine, a local control plane (etcd + kube-apiserver, no
# nodes), the samples applied, the operator running, a drift made with kubectl, and the
# Warning event it produces. Everything is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${DEMO_DIR:-$PWD/target/demo}
bin=target/debug/tfdrift
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

wait_for() { # wait_for DESCRIPTION COMMAND... (polls for up to 60 s)
  local what=$1; shift
  for _ in $(seq 1 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "timed out waiting for $what" >&2
  return 1
}

say "building tfdrift"
cargo build --locked --quiet

say "starting a local control plane in $dir"
hack/local-cluster.sh stop "$dir" 2>/dev/null || true
rm -rf "$dir"
export KUBECONFIG
KUBECONFIG=$(hack/local-cluster.sh start "$dir")
op_pid=
cleanup() {
  [[ -n "$op_pid" ]] && kill "$op_pid" 2>/dev/null && wait "$op_pid" 2>/dev/null
  hack/local-cluster.sh stop "$dir"
}
trap cleanup EXIT

kubectl create namespace infra

say "applying the samples (config/samples: opted-in Deployments and a Service with their spec-hash, one Deployment with an HPA)"
kubectl create namespace demo
kubectl apply -k config/samples -n demo

say "running: tfdrift run (logs in $dir/operator.log)"
"$bin" run --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 \
  --terraform-state-namespace infra >"$dir/operator.log" 2>&1 &
op_pid=$!
verdict() { kubectl get "$1" -n demo -o jsonpath='{.metadata.annotations.tfdrift\.jin\.dev/drifted}'; }
in_sync() { [[ $(verdict deployment/web) == false && $(verdict service/web) == false ]]; }
wait_for "the first verdicts" in_sync
kubectl get deployment/web service/web -n demo \
  -o custom-columns='KIND:.kind,NAME:.metadata.name,DRIFTED:.metadata.annotations.tfdrift\.jin\.dev/drifted'

say "drifting: kubectl set image deployment/web web=nginx:1.28 (a 2 a.m. hot-fix)"
# managedFields times have one-second resolution: a change in the very second of the
# operator's own last write could not be attributed (README, "What changed").
sleep 1
kubectl set image deployment/web web=nginx:1.28 -n demo
drifted() { [[ $(verdict deployment/web) == true ]]; }
wait_for "the drift verdict" drifted
kubectl get deployment/web -n demo \
  -o custom-columns='NAME:.metadata.name,DRIFTED:.metadata.annotations.tfdrift\.jin\.dev/drifted,SINCE:.metadata.annotations.tfdrift\.jin\.dev/drifted-at'

say "kubectl get events -n demo --field-selector reason=DriftDetected"
event() { [[ -n $(kubectl get events -n demo --field-selector reason=DriftDetected -o name) ]]; }
wait_for "the DriftDetected event" event
kubectl get events -n demo --field-selector reason=DriftDetected

say "scaling deployment/api as its HPA would (kubectl scale, the same write): not drift"
kubectl scale deployment/api --replicas=6 -n demo
ignored() { [[ $(kubectl get deployment/api -n demo -o jsonpath='{.metadata.annotations.tfdrift\.jin\.dev/ignored}') == *replicas* ]]; }
wait_for "the ignore rules on deployment/api" ignored
kubectl get deployment/api -n demo \
  -o custom-columns='NAME:.metadata.name,REPLICAS:.spec.replicas,DRIFTED:.metadata.annotations.tfdrift\.jin\.dev/drifted,IGNORED:.metadata.annotations.tfdrift\.jin\.dev/ignored'

say "putting it back: the drift resolves"
kubectl set image deployment/web web=nginx:1.27 -n demo
resolved() { [[ $(verdict deployment/web) == false ]]; }
wait_for "DriftResolved" resolved
kubectl get events -n demo --field-selector reason=DriftResolved
say "Terraform: a state in Terraform's kubernetes backend names an object that has no label and no annotation"
if ! command -v terraform >/dev/null; then
  echo "terraform is not on PATH: skipping this part"
else
  tf="$dir/terraform"
  mkdir -p "$tf"
  # The object as the provider created it (tests/fixtures' deploy-quantities-env, no label).
  sed '/labels: {tfdrift.jin.dev\/enabled: "true"}/d' \
    tests/fixtures/kube-apiserver-v1.20.2/deploy-quantities-env/manifest.yaml |
    kubectl apply -n demo -f -
  # What the provider's expander also sends (its schema defaults), as it created it.
  kubectl patch deployment/deploy-quantities-env -n demo --type merge \
    -p '{"spec":{"template":{"spec":{"automountServiceAccountToken":true,"enableServiceLinks":true}}}}'
  # The project's state fixture, moved to the demo namespace, with the object's uid (as
  # Terraform recorded it when it created the object).
  uid=$(kubectl get deployment/deploy-quantities-env -n demo -o jsonpath='{.metadata.uid}')
  sed -e 's/"fixtures"/"demo"/g' -e 's/"terraform_version": "[^"]*"/"terraform_version": "1.5.0"/' \
    -e "s/0b0c0d0e-0000-4000-8000-000000000001/$uid/" \
    tests/tfstate/fixtures.tfstate >"$tf/state.json"
  printf '%s\n' 'terraform {' '  backend "kubernetes" {' '    secret_suffix = "app"' \
    '    namespace     = "infra"' "    config_path   = \"$KUBECONFIG\"" '    insecure      = true' \
    '  }' '}' >"$tf/main.tf"
  (cd "$tf" && export TF_CLI_CONFIG_FILE=/dev/null &&
    terraform init -input=false -no-color >/dev/null && terraform state push -no-color state.json &&
    # The fixture's second instance naming this Deployment (a case of hash --tfstate's).
    terraform state rm -no-color kubernetes_deployment.legacy >/dev/null)
  kubectl get secrets -n infra -l tfstate=true
  address() { kubectl get deployment/deploy-quantities-env -n demo -o jsonpath='{.metadata.annotations.tfdrift\.jin\.dev/terraform-address}'; }
  named() { [[ -n $(address) ]]; }
  wait_for "the state's verdict" named
  kubectl get deployment/deploy-quantities-env -n demo \
    -o custom-columns='NAME:.metadata.name,DRIFTED:.metadata.annotations.tfdrift\.jin\.dev/drifted,ADDRESS:.metadata.annotations.tfdrift\.jin\.dev/terraform-address'
  say "kubectl set image deployment/deploy-quantities-env api=ghcr.io/example/api:2.5.0"
  sleep 1
  kubectl set image deployment/deploy-quantities-env api=ghcr.io/example/api:2.5.0 -n demo
  tf_event() { kubectl get events -n demo --field-selector reason=DriftDetected,involvedObject.name=deploy-quantities-env -o name | grep -q .; }
  wait_for "the DriftDetected event naming the address" tf_event
  kubectl get events -n demo --field-selector reason=DriftDetected,involvedObject.name=deploy-quantities-env
  say "what the state names but the cluster lacks: kubectl get events -n infra"
  # awk, not head: head would end the pipe early and, under pipefail, the demo with it.
  kubectl get events -n infra --field-selector reason=TerraformResourceMissing | awk 'NR <= 4'

  say "any kind a state names: a Role Terraform manages (a second state, suffix rbac)"
  kubectl apply -f hack/demo-role.yaml
  uid=$(kubectl get role/config-editor -n demo -o jsonpath='{.metadata.uid}')
  rbac="$dir/terraform-rbac"
  mkdir -p "$rbac"
  sed "s/ROLE_UID/$uid/" hack/demo-role.tfstate >"$rbac/state.json"
  sed 's/secret_suffix = "app"/secret_suffix = "rbac"/' "$tf/main.tf" >"$rbac/main.tf"
  (cd "$rbac" && export TF_CLI_CONFIG_FILE=/dev/null &&
    terraform init -input=false -no-color >/dev/null && terraform state push -no-color state.json)
  # Its verdict is no annotation (tfdrift never patches RBAC objects); once the watch has
  # listed it, it has been judged.
  listed() { grep -q 'named objects listed.*rbac.authorization.k8s.io/v1 Role' "$dir/operator.log"; }
  wait_for "the watch of Roles" listed
  say "widening it by hand: kubectl patch role/config-editor (adds escalate to its first rule)"
  kubectl patch role/config-editor -n demo --type json \
    -p '[{"op": "add", "path": "/rules/0/verbs/-", "value": "escalate"}]'
  role_event() { kubectl get events -n demo --field-selector reason=DriftDetected,involvedObject.name=config-editor -o name | grep -q .; }
  wait_for "the DriftDetected event on the Role" role_event
  kubectl get events -n demo --field-selector reason=DriftDetected,involvedObject.name=config-editor \
    -o custom-columns='KIND:.involvedObject.kind,NAME:.involvedObject.name,MESSAGE:.message'
fi

say "done; stopping the operator and the control plane"
