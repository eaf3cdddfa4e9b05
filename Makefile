# Driftless developer targets. `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

GO        ?= go
BIN       ?= bin/driftless
DEV_BIN   ?= bin/driftless-dev
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
# The commit time: every file in the image and the image itself carry it, so that the same
# commit builds the same image digest.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
IMAGE_REPO ?= ghcr.io/driftless-dev/driftless
ARCH       ?= $(shell $(GO) env GOARCH)
DIST       ?= dist
RELEASE_FLAGS = -dist $(DIST) -repo $(IMAGE_REPO) -version $(VERSION) -commit $(COMMIT)
LDFLAGS   := -X github.com/driftless-dev/driftless/cmd/driftless/app.version=$(VERSION) -X github.com/driftless-dev/driftless/cmd/driftless/app.commit=$(COMMIT)
# Test packages run one at a time: each starts its own control plane on 2 cores.
TEST_FLAGS ?= -count=1 -timeout 25m -p 1
BENCH      ?= .
BENCH_FLAGS ?= -run '^$$' -bench '$(BENCH)' -benchmem -timeout 30m

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/driftless.
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/driftless

.PHONY: image
image: ## Build the container image without a Docker engine: $(DIST)/image (OCI layout), $(DIST)/driftless-image.tar; prints the digest.
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./hack/release image $(RELEASE_FLAGS) -arch $(ARCH)

.PHONY: release
release: image ## Build the image and $(DIST)/install.yaml (image pinned by digest) and $(DIST)/SHA256SUMS.
	$(GO) run ./hack/release manifests $(RELEASE_FLAGS)

.PHONY: envtest
envtest: ## Build (once) and cache kube-apiserver, kubectl and etcd for the tests.
	@hack/control-plane.sh >/dev/null

.PHONY: test
test: envtest ## Run every test, against a real control plane and Git server.
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh --print)" $(GO) test $(TEST_FLAGS) ./...

.PHONY: bench
bench: envtest ## Run the benchmarks (see docs/benchmarks.md for the method).
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh --print)" $(GO) test $(BENCH_FLAGS) ./...

.PHONY: lint
lint: ## gofmt and go vet.
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 30s).
	@for target in "config/v1alpha1 FuzzDecode" "webhook FuzzAdmissionReview" "webhook FuzzScanAgreesWithDecode" "policy FuzzEvaluate" "reconciler/render FuzzRenderYAML" "reconciler FuzzDecodeInventory" "reconciler FuzzDecodeStatus"; do \
	  set -- $$target; echo "== $$2 ($$1)"; \
	  $(GO) test ./$$1 -run '^$$' -fuzz "^$$2$$" -fuzztime $${FUZZTIME:-30s}; \
	done

CONTROLLER_GEN ?= $(GO) run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0

.PHONY: generate
generate: ## Regenerate the deepcopy functions of config/v1alpha1 (controller-gen).
	$(CONTROLLER_GEN) object paths=./config/v1alpha1

.PHONY: manifests
manifests: generate build ## Regenerate config/crd, config/webhook/manifests.yaml and config/default/self-protection.yaml.
	$(CONTROLLER_GEN) crd paths=./config/v1alpha1 output:crd:artifacts:config=config/crd/bases
	$(BIN) manifests webhook --config config/default/driftless.yaml > config/webhook/manifests.yaml
	$(BIN) manifests self-protection --config config/default/driftless.yaml > config/default/self-protection.yaml

.PHONY: run
run: build ## Run driftless run against the current kubeconfig (CONFIG, CERT_DIR).
	$(BIN) run --config $${CONFIG:-config/default/driftless.yaml} --cert-dir $${CERT_DIR:-/tmp/driftless-certs} --log-development

.PHONY: build-dev
build-dev: ## Build bin/driftless-dev, the local playground (test/playground; not shipped).
	$(GO) build -o $(DEV_BIN) ./test/playground/cmd/driftless-dev

.PHONY: dev
dev: build build-dev envtest ## A local playground left running: control plane, Git repo, guard, reconciler, personas.
	$(DEV_BIN) --driftless $(BIN)

.PHONY: demo
demo: build build-dev envtest ## The incident story end to end on a local control plane (bin/driftless-dev --demo).
	$(DEV_BIN) --driftless $(BIN) --demo
