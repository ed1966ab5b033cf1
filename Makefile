# nackcast: reliable multicast pre-positioning for CDNs.
#
# The two commands a newcomer needs:
#   make demo   primary sender and receivers on lo distribute a sample channel
#   make test   unit, fuzz-seed and loopback integration tests (no root needed)
# The fast loop while editing: make test-short (no real processes, seconds).

SHELL        := /bin/bash
GO           ?= go
TOOLS        := $(CURDIR)/.tools/bin
BIN          := $(CURDIR)/bin
SERVICES     := sender backup receiver nackctl
# The release version stamped into the binaries (-version, GetStatus,
# nackcast_build_info): git describe, or nothing without git or tags, and
# the binaries then report their module version or "devel".
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null)
LDFLAGS      := -s -w $(if $(VERSION),-X github.com/nackcast/nackcast/pkg/version.Version=$(VERSION))
export PATH  := $(TOOLS):$(PATH)

BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION            := v1.9.4
GOLANGCI_LINT_VERSION      := v2.15.0

# make fuzz: executions per fuzz target (a count, never a duration: see
# scripts/fuzz.sh).
FUZZ_EXECS ?= 300000
SOAK ?= 5m

# The last released API: buf breaking compares proto/ with this image.
# make api-baseline rewrites it when an API version is released.
API_BASELINE := proto/released/nackcast-v1.binpb

.DEFAULT_GOAL := help

# The variables that help texts name, shown with their values.
HELP_VARS := API_BASELINE FUZZ_EXECS SOAK IMAGE

.PHONY: help
help: ## show this help
	@awk -v tty="$$([ -t 1 ] && echo 1)" -v vars='$(foreach v,$(HELP_VARS),$(v)=$($(v)))' \
		'BEGIN { FS = ":[^#]*## "; n = split(vars, kv, " "); for (i = 1; i <= n; i++) { eq = index(kv[i], "="); val["$$(" substr(kv[i], 1, eq - 1) ")"] = substr(kv[i], eq + 1) } } \
		/^[a-zA-Z0-9_.-]+:[^=]*## / { t[++m] = $$1; h[m] = $$2; if (length($$1) > w) w = length($$1) } \
		END { for (i = 1; i <= m; i++) { for (k in val) { while ((p = index(h[i], k)) > 0) h[i] = substr(h[i], 1, p - 1) val[k] substr(h[i], p + length(k)) } \
			if (tty) printf "  \033[36m%-*s\033[0m  %s\n", w, t[i], h[i]; else printf "  %-*s  %s\n", w, t[i], h[i] } }' $(MAKEFILE_LIST)

.PHONY: tools
tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc ## install pinned code generation tools into .tools/bin

.PHONY: tools-grpcurl
tools-grpcurl: $(TOOLS)/grpcurl ## install the pinned grpcurl into .tools/bin (make test then checks nackctl's JSON against it)

$(TOOLS)/buf:
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(TOOLS)/grpcurl:
	GOBIN=$(TOOLS) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
$(TOOLS)/golangci-lint:
	GOBIN=$(TOOLS) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.PHONY: generate
generate: tools ## regenerate Go code from proto/ (buf, local plugins)
	buf lint
	buf generate

.PHONY: check-generate
check-generate: generate ## fail if the committed generated code is stale
	@git diff --exit-code -- pkg/gen || { echo "generated code is stale: run make generate and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- pkg/gen)" || { git status --porcelain -- pkg/gen; echo "untracked generated files: run make generate and commit"; exit 1; }

.PHONY: check-breaking
check-breaking: tools ## buf breaking-change check of proto/ against the last released API ($(API_BASELINE))
	buf breaking --against $(API_BASELINE)

.PHONY: check-breaking-selftest
check-breaking-selftest: tools ## prove check-breaking can fail: a copy of the API with a field removed must be refused
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cp -r proto buf.yaml "$$tmp/" && \
	sed -i '/^  string receiver_id = 1;$$/d' "$$tmp/proto/nackcast/v1/sender.proto" && \
	if cmp -s proto/nackcast/v1/sender.proto "$$tmp/proto/nackcast/v1/sender.proto"; then echo "selftest: the breaking edit did not apply"; exit 1; fi && \
	if (cd "$$tmp" && buf breaking --against $(CURDIR)/$(API_BASELINE)) >"$$tmp/out" 2>&1; then \
		echo "check-breaking passed an API with a field removed: it cannot fail"; exit 1; \
	fi && \
	if ! grep -q 'receiver_id' "$$tmp/out"; then cat "$$tmp/out"; echo "selftest: buf failed for another reason"; exit 1; fi && \
	echo "check-breaking refuses a removed field:" && sed 's/^/  /' "$$tmp/out"

.PHONY: api-baseline
api-baseline: tools ## on an API release: record proto/ as the released API that check-breaking compares against
	buf build -o $(API_BASELINE)

.PHONY: lint
lint: tools $(TOOLS)/golangci-lint ## gofmt, buf lint and format, go vet, golangci-lint (.golangci.yml)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	buf lint
	buf format -d --exit-code
	$(GO) vet ./...
	golangci-lint run ./...

.PHONY: build
build: ## build the service binaries into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ $(addprefix ./services/,$(SERVICES))

.PHONY: test
test: build ## unit, fuzz-seed and loopback integration tests with real processes (no root)
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 600s ./...

.PHONY: test-race
test-race: ## every test under the race detector; the end-to-end suites build the service binaries with -race too
	$(GO) test -race -count=1 -timeout 1500s ./...

.PHONY: test-short
test-short: ## the fast loop: unit and fuzz-seed tests, no real processes or sockets suites (seconds)
	$(GO) test -short -count=1 ./...

.PHONY: pyclient
pyclient: build ## generate a Python client from proto/ and call a real sender with it (Debian's python3-grpc-tools)
	scripts/pyclient.sh

.PHONY: modcheck
modcheck: ## prove a release imports into another Go module: a module proxy made from the newest v* tag (or HEAD), a fresh module that requires it and builds
	$(GO) run ./scripts/modcheck

.PHONY: test-deploy
test-deploy: ## render and check the Kubernetes manifests (module deploy/k8s)
	cd deploy/k8s && $(GO) test -count=1 ./...

MONITORING := deploy/helm/nackcast/files

.PHONY: test-monitoring
test-monitoring: ## alert rules: promtool check and unit tests (deploy/monitoring); a real Prometheus scraping a cloud of real processes (Debian's prometheus package)
	promtool check rules $(MONITORING)/alerts.yaml
	cd deploy/monitoring && promtool test rules alerts_test.yaml
	$(GO) test -count=1 -timeout 300s -run 'TestMonitoringNamesExist|TestMetricNames' ./scripts/metricdoc
	$(GO) test -count=1 -timeout 300s -run 'TestPrometheusScrapesCloud|TestMetricsForDashboards' -v ./pkg/e2e

.PHONY: test-netns
test-netns: build ## tests across network namespaces (root, iproute2, nftables)
	NACKCAST_NETNS=1 $(GO) test -count=1 -timeout 600s -run 'Netns' -v ./pkg/netlab ./pkg/e2e

# Every fuzz target: package:target pairs.
FUZZ_TARGETS := \
	./pkg/wire:FuzzParse \
	./pkg/chunks:FuzzUnmarshalBitmap \
	./pkg/chunks:FuzzNormalize \
	./pkg/manifest:FuzzFromProto \
	./pkg/manifest:FuzzValidatePath \
	./pkg/sender:FuzzNackRequest \
	./pkg/pktauth:FuzzOpen \
	./pkg/pktauth:FuzzParseKeys

.PHONY: fuzz
fuzz: ## explore every fuzz target for FUZZ_EXECS executions each; the seed corpora in testdata/fuzz run in make test
	scripts/fuzz.sh $(FUZZ_EXECS) $(FUZZ_TARGETS)

.PHONY: sim
sim: ## the deterministic protocol simulator over SEEDS random seeds (default 10000); a failure prints its seed
	$(GO) test -count=1 -timeout 3600s -run 'TestSimSeeds' ./pkg/sim -sim.seeds=$(or $(SEEDS),10000) -v

.PHONY: demo
demo: build ## run the main job on the embedded default and verify every receiver
	$(GO) run ./scripts/demo -bin $(BIN)

.PHONY: demo-failover
demo-failover: build ## kill the primary mid-transfer, watch the backup take over and hand back, verify
	$(GO) run ./scripts/demo -bin $(BIN) -failover -large 256Mi -rate 40M

.PHONY: bench
bench: build ## side-by-side benchmark (root: netns lab, sender veth segments GSO; nackcast vs uftp, udpcast, raw ceilings, unicast; 5 interleaved reps; BENCH_FLAGS=...), NACK implosion, micro-benchmarks
	@if [ "$$(id -u)" != 0 ]; then echo "make bench: the namespace comparison needs root (network namespaces, nftables); running the loopback benchmark of nackcast alone"; fi
	$(GO) run ./scripts/bench -bin $(BIN) $(BENCH_FLAGS)
	$(GO) run ./scripts/implosion -bin $(BIN)
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/wire ./pkg/chunks ./pkg/scheduler ./pkg/fec ./pkg/pktauth ./pkg/sender

.PHONY: soak
soak: build ## bounded soak (SOAK=5m): loss, publishes, receiver and primary kills; then verified copies and no goroutine/fd leak
	$(GO) run ./scripts/soak -bin $(BIN) -for $(SOAK)

.PHONY: dev-certs
dev-certs: build ## a development CA and certificates for mutual TLS in certs/ (offline; reuses an existing CA)
	$(BIN)/nackctl dev-certs -out certs -certs primary:sender,backup:backup,receiver-1:receiver,receiver-2:receiver,receiver-3:receiver,admin:admin

.PHONY: docs
docs: ## regenerate the README's configuration tables from the real flags and its metric table from the registered metrics
	$(GO) run ./scripts/flagdoc
	$(GO) run ./scripts/metricdoc
	$(GO) test ./pkg/app -run TestEnvNames -update

IMAGE ?= nackcast:dev
# The image's binaries: static, for Linux on the Docker engine's
# architecture, whatever the host's GOOS is. They go to their own
# directory, the build context, so that a plain `docker build` without it
# stops at once (see deploy/docker/Dockerfile).
IMAGE_DIR := $(BIN)/image
IMAGE_GOARCH ?= $(shell docker version -f '{{.Server.Arch}}' 2>/dev/null || $(GO) env GOARCH)

.PHONY: image
image: ## build the container image FROM scratch: static linux binaries into bin/image/, then docker build (offline)
	rm -rf $(IMAGE_DIR) && mkdir -p $(IMAGE_DIR)/nackcast
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_GOARCH) $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(IMAGE_DIR)/nackcast/ $(addprefix ./services/,$(SERVICES))
	cp -R deploy/docker/rootfs $(IMAGE_DIR)/rootfs && find $(IMAGE_DIR)/rootfs -name .keep -delete
	echo "nackcast $(VERSION) GOOS=linux GOARCH=$(IMAGE_GOARCH) CGO_ENABLED=0, built by make image" >$(IMAGE_DIR)/BUILT_BY_MAKE_IMAGE
	docker build -f deploy/docker/Dockerfile -t $(IMAGE) \
		--build-arg VERSION=$(or $(VERSION),unknown) \
		--build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
		--build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) \
		$(IMAGE_DIR)

COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_FILE := deploy/compose/docker-compose.yml
# Where make compose-up puts the cloud's CA and admin certificate for
# nackctl on the host.
COMPOSE_CERTS := certs/compose
COMPOSE_TLS := -tls-ca $(COMPOSE_CERTS)/ca.pem -tls-cert $(COMPOSE_CERTS)/admin.pem -tls-key $(COMPOSE_CERTS)/admin.key

.PHONY: compose-up
compose-up: image build ## start the Compose cloud (primary, backup, three receivers) with a sample channel; nackctl's certificates in certs/compose/
	$(COMPOSE) -f $(COMPOSE_FILE) -p nackcast up -d
	rm -rf $(COMPOSE_CERTS) && mkdir -p $(COMPOSE_CERTS)
	docker cp "$$(docker ps -aq --filter label=com.docker.compose.project=nackcast --filter label=com.docker.compose.service=certs | head -n1)":/certs/. $(COMPOSE_CERTS)/
	@echo
	@echo "The cloud runs mutual TLS; its CA and the admin certificate are in $(COMPOSE_CERTS)/. Watch it:"
	@echo "  bin/nackctl $(COMPOSE_TLS) watch -until-complete 127.0.0.1:7101 127.0.0.1:7102 127.0.0.1:7103"
	@echo "or set them once for every nackctl command:"
	@echo "  export NACKCAST_TLS_CA=$(COMPOSE_CERTS)/ca.pem NACKCAST_TLS_CERT=$(COMPOSE_CERTS)/admin.pem NACKCAST_TLS_KEY=$(COMPOSE_CERTS)/admin.key"

.PHONY: compose-down
compose-down: ## stop the Compose cloud and delete its volumes and certs/compose/
	$(COMPOSE) -f $(COMPOSE_FILE) -p nackcast down -v --remove-orphans
	rm -rf $(COMPOSE_CERTS)

.PHONY: compose-e2e
compose-e2e: build ## Compose end-to-end drill: distribute, verify, fail over, hand back (needs Docker)
	timeout --foreground 900 scripts/compose-e2e.sh

.PHONY: doccheck
doccheck: ## run every command block of README.md, deploy/README.md and deploy/k8s/README.md in a fresh clone of HEAD (scripts/doccheck)
	$(GO) run ./scripts/doccheck $(DOCCHECK_FLAGS)

.PHONY: clean
clean: ## remove build outputs
	rm -rf $(BIN)
