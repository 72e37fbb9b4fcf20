#!/usr/bin/env bash
# config/default with the operator's image set to IMAGE, through a throwaway overlay (what
# `kustomize edit set image` would write) rendered by kubectl's built-in kustomize.
#   hack/deploy.sh render|apply|delete IMAGE
# IMAGE: name:tag, name@sha256:<digest> or name:tag@sha256:<digest> (the digest wins).
set -euo pipefail
cd "$(dirname "$0")/.."

action=${1:?usage: hack/deploy.sh render|apply|delete IMAGE}
img=${2:?usage: hack/deploy.sh render|apply|delete IMAGE}
case $action in render | apply | delete) ;; *) echo "deploy: unknown action $action" >&2; exit 2 ;; esac

# Split IMAGE; a colon before the last slash is a registry port, not a tag.
name=$img digest='' tag=''
if [[ $name == *@* ]]; then digest=${name#*@} name=${name%%@*}; fi
if [[ ${name##*/} == *:* ]]; then tag=${name##*:} name=${name%:*}; fi
if [[ -n $digest && ! $digest =~ ^sha256:[0-9a-f]{64}$ ]]; then
  echo "deploy: $img: a digest is sha256: and 64 hex digits" >&2
  exit 2
fi
[[ -n $digest || -n $tag ]] || tag=latest
want=$name${digest:+@$digest}
[[ -n $digest ]] || want=$name:$tag

# The image config/manager gives the Deployment, which the overlay replaces.
current=$(awk '$1 == "newName:" { print $2; exit }' config/manager/kustomization.yaml)

# Under target/ (ignored by git): kustomize takes a base by relative path only.
mkdir -p target
overlay=$(mktemp -d target/deploy.XXXXXX)
trap 'rm -rf "$overlay"' EXIT
cat >"$overlay/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../config/default
images:
- name: ${current:-tfdrift}
  newName: $name
EOF
if [[ -n $digest ]]; then
  echo "  digest: $digest" >>"$overlay/kustomization.yaml"
else
  echo "  newTag: \"$tag\"" >>"$overlay/kustomization.yaml"
fi

kubectl kustomize "$overlay" >"$overlay/rendered.yaml"
# Deploy nothing but the image asked for.
if ! awk -v want="$want" '$1 == "image:" && $2 == want { found = 1 } END { exit !found }' \
  "$overlay/rendered.yaml"; then
  echo "deploy: the rendered Deployment does not run $want:" >&2
  grep -n 'image:' "$overlay/rendered.yaml" >&2 || true
  exit 1
fi

case $action in
render) cat "$overlay/rendered.yaml" ;;
apply) kubectl apply -f "$overlay/rendered.yaml" ;;
delete) kubectl delete -f "$overlay/rendered.yaml" --ignore-not-found ;;
esac
