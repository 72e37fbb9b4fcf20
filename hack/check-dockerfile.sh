#!/usr/bin/env bash
# Proves without a Docker engine that the Dockerfile's build stage builds: replays it from
# exactly the files it copies (after .dockerignore) in a clean directory, running the cargo
# command written in the Dockerfile (hack/check_dockerfile.py says what it follows).
# The cache mounts are directories under $TFDRIFT_DOCKER_CHECK_DIR (default
# ~/.cache/tfdrift/docker-check), kept between runs so that a rerun is incremental; never
# target/ of the work tree. Runs under `nice -n 10`: a release build is long on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

work=${TFDRIFT_DOCKER_CHECK_DIR:-$HOME/.cache/tfdrift/docker-check}
commit=$(git rev-parse --verify -q HEAD || echo unknown)
exec nice -n 10 python3 hack/check_dockerfile.py --work "$work" \
  --build-arg TFDRIFT_GIT_COMMIT="$commit" "$@"
