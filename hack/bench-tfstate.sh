#!/usr/bin/env bash
# Times `tfdrift hash --tfstate` on a synthetic state of N instances (default 10000, about
# 40 MB of JSON: the typed Deployments, Services and ConfigMaps of tests/tfstate/ repeated
# under new names) against `terraform state pull` of the same state from a local backend,
# and reports each one's wall time and peak RSS.
#   hack/bench-tfstate.sh [TFDRIFT_BINARY]     (default target/release/tfdrift)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/tfdrift}
n=${BENCH_TFSTATE_N:-10000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$n" "$work/terraform.tfstate" <<'PY'
import copy, json, sys
n, out = int(sys.argv[1]), sys.argv[2]
src = json.load(open("tests/tfstate/fixtures.tfstate"))
typed = [r for r in src["resources"] if r["type"] in (
    "kubernetes_deployment_v1", "kubernetes_service_v1", "kubernetes_config_map_v1")]
resources = []
for i in range(n):
    r = copy.deepcopy(typed[i % len(typed)])
    r.pop("module", None)
    r["name"] = f"{r['name']}_{i}"
    for inst in r["instances"]:
        inst.pop("index_key", None)
        inst["attributes"]["metadata"][0]["name"] = f"obj-{i}"
    resources.append(r)
src["resources"] = resources
json.dump(src, open(out, "w"), indent=2)
PY
size=$(du -m "$work/terraform.tfstate" | cut -f1)
echo "state: $n instances, ${size} MB"

measure() {
  local label=$1; shift
  /usr/bin/time -o "$work/time" -f "$label: %e s wall, %M KiB peak RSS" "$@" >/dev/null 2>&1
  cat "$work/time"
}
measure "tfdrift hash --tfstate" "$bin" hash --tfstate "$work/terraform.tfstate"
if command -v terraform >/dev/null; then
  (cd "$work" && terraform init -input=false >/dev/null 2>&1 &&
    measure "terraform state pull" terraform state pull)
else
  echo "terraform not on PATH: no comparison"
fi
