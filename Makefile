# sf-models-bridge: the two commands of the README, and their set-up.
#
#   make demo   installs what is missing, builds, starts the mock Salesforce and the Pingora
#               gateway on conf/demo.toml, and prints a curl line
#   make test   installs what is missing and runs every test, Pingora included
#   make bench  the micro-benchmarks and the end-to-end load benchmark (not part of make test)
#   make sdk-setup  the official OpenAI (and Anthropic) SDKs that tests/sdk.rs drives, from PyPI
#               and npm at the pinned versions (a dependency of make test)
#   make prometheus-setup  Prometheus, which tests/dashboard.rs runs to prove every query of
#               dashboards/sfbridge.json (a dependency of make test)

SHELL := /bin/bash
CARGO ?= cargo
# The addresses conf/demo.toml names (salesforce.api_base and token_url; server.listen).
DEMO_MOCK_ADDR := 127.0.0.1:9090
DEMO_GATEWAY_ADDR := 127.0.0.1:8080
# The SDK tests' Python (CPython 3.11 or newer) and where their virtualenv and npm project live;
# tests/sdk.rs looks for both at these paths.
SDK_PYTHON ?= python3
SDK_VENV := target/sdk-venv
SDK_PY_REQUIREMENTS := tests/sdk/python/requirements.txt
SDK_NODE := tests/sdk/node

.PHONY: demo test bench bench-setup setup sdk-setup prometheus-setup lint

# Pingora's zlib-ng is built with CMake; the Tower/axum side needs none of it.
setup:
	@command -v cargo >/dev/null || { echo "cargo is required: https://rustup.rs"; exit 1; }
	@command -v cmake >/dev/null || { \
		echo "installing cmake (needed by Pingora)"; \
		if command -v apt-get >/dev/null; then \
			SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
			$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq cmake >/dev/null; \
		elif command -v brew >/dev/null; then brew install cmake; \
		else echo "please install cmake"; exit 1; fi; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || { echo "installing rustfmt"; rustup component add rustfmt; }
	@$(CARGO) clippy --version >/dev/null 2>&1 || { echo "installing clippy"; rustup component add clippy; }

# The official SDKs for tests/sdk.rs: a virtualenv with the pins of $(SDK_PY_REQUIREMENTS), and
# `npm ci` of $(SDK_NODE)/package-lock.json. Each side is skipped while its stamp holds the
# checksum of its pin file, so a second run costs nothing; a changed pin reinstalls that side.
# Nothing is downloaded but those packages, from PyPI and the npm registry: wheels only, no install
# scripts, and no bytecode compiled up front (Python compiles the few modules a test imports).
sdk-setup:
	@set -euo pipefail; \
	want=$$(cksum < $(SDK_PY_REQUIREMENTS)); \
	if [ "$$(cat $(SDK_VENV)/.sdk-setup 2>/dev/null)" = "$$want" ] && $(SDK_VENV)/bin/python -c '' 2>/dev/null; then \
		echo "sdk-setup: Python SDKs up to date in $(SDK_VENV)"; \
	else \
		$(SDK_PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
			echo "sdk-setup: $(SDK_PYTHON) must be CPython 3.11 or newer (set SDK_PYTHON=...)"; exit 1; }; \
		echo "sdk-setup: installing the Python SDKs into $(SDK_VENV)"; \
		rm -rf $(SDK_VENV); \
		$(SDK_PYTHON) -m venv $(SDK_VENV); \
		$(SDK_VENV)/bin/python -m pip install --quiet --no-input --disable-pip-version-check \
			--only-binary=:all: --no-compile -r $(SDK_PY_REQUIREMENTS); \
		echo "$$want" > $(SDK_VENV)/.sdk-setup; \
	fi
	@set -euo pipefail; \
	want=$$(cksum < $(SDK_NODE)/package-lock.json); \
	if [ "$$(cat $(SDK_NODE)/node_modules/.sdk-setup 2>/dev/null)" = "$$want" ]; then \
		echo "sdk-setup: Node SDKs up to date in $(SDK_NODE)/node_modules"; \
	else \
		command -v npm >/dev/null || { \
			echo "sdk-setup: installing Node.js and npm"; \
			if command -v apt-get >/dev/null; then \
				SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
				$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nodejs npm >/dev/null; \
			elif command -v brew >/dev/null; then brew install node; \
			else echo "please install Node.js 20 or newer"; exit 1; fi; }; \
		node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || { \
			echo "sdk-setup: Node.js 20 or newer is required, found $$(node --version)"; exit 1; }; \
		echo "sdk-setup: installing the Node SDKs into $(SDK_NODE)/node_modules"; \
		(cd $(SDK_NODE) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error); \
		echo "$$want" > $(SDK_NODE)/node_modules/.sdk-setup; \
	fi

# tests/dashboard.rs starts its own Prometheus (Debian's `prometheus` package: /usr/bin/prometheus)
# to scrape a bridge and evaluate every panel of dashboards/sfbridge.json. Recommends are left out
# (the node exporter), and the package's own service is stopped and disabled where systemd runs it:
# the test needs only the binary, and the service would hold :9090, the demo mock's port.
prometheus-setup:
	@command -v prometheus >/dev/null || { \
		echo "installing prometheus (tests/dashboard.rs runs it)"; \
		if command -v apt-get >/dev/null; then \
			SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
			$$SUDO apt-get update -qq && \
			$$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
			if command -v systemctl >/dev/null && systemctl is-enabled prometheus >/dev/null 2>&1; then \
				$$SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true; fi; \
		elif command -v brew >/dev/null; then brew install prometheus; \
		else echo "please install prometheus (or set PROMETHEUS to its binary)"; exit 1; fi; }

test: setup sdk-setup prometheus-setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --all-features -- -D warnings
	$(CARGO) build --all-targets --all-features
	$(CARGO) test --all-features --no-fail-fast

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --all-features -- -D warnings

demo: setup
	$(CARGO) build --release --features pingora --example mock_salesforce --example pingora_gateway
	@set -euo pipefail; \
	target=$${CARGO_TARGET_DIR:-target}; \
	"$$target/release/examples/mock_salesforce" --listen $(DEMO_MOCK_ADDR) & mock=$$!; \
	trap 'kill $$mock 2>/dev/null; wait $$mock 2>/dev/null' EXIT; \
	for _ in $$(seq 50); do (exec 3<>/dev/tcp/$${DEMO_MOCK_ADDR%:*}/$${DEMO_MOCK_ADDR#*:}) 2>/dev/null && break; sleep 0.1; done; \
	echo; \
	echo "Mock Salesforce on $(DEMO_MOCK_ADDR); gateway on $(DEMO_GATEWAY_ADDR). Try:"; \
	echo; \
	echo "  curl -s http://$(DEMO_GATEWAY_ADDR)/v1/chat/completions -H 'content-type: application/json' \\"; \
	echo "    -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'"; \
	echo; \
	echo "Ctrl-C stops both."; \
	"$$target/release/examples/pingora_gateway" --config conf/demo.toml

# wrk is the load generator of the end-to-end benchmark (Debian/Ubuntu: the `wrk` package); nginx
# the baseline the benchmarks measure the bridge against (the `nginx` package: the benchmarks start
# their own nginx with a conf of theirs; Debian's service, which a systemd host starts on port 80
# at install, is stopped and disabled again).
bench-setup: setup
	@command -v wrk >/dev/null || { \
		echo "installing wrk (the load generator of make bench)"; \
		if command -v apt-get >/dev/null; then \
			SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
			$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wrk >/dev/null; \
		elif command -v brew >/dev/null; then brew install wrk; \
		else echo "please install wrk"; exit 1; fi; }
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { \
		echo "installing nginx (the load and streams benchmarks' baseline)"; \
		if command -v apt-get >/dev/null; then \
			SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
			$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nginx >/dev/null; \
			if [ -d /run/systemd/system ]; then $$SUDO systemctl disable --now nginx >/dev/null 2>&1 || true; fi; \
		elif command -v brew >/dev/null; then brew install nginx; \
		else echo "please install nginx"; exit 1; fi; }

# Micro-benchmarks (criterion, ~1 min), then the load benchmark (~2 min) and the streams benchmark
# (~2 min), which write their tables into BENCHMARKS.md. Knobs: BENCH_SECS, BENCH_ROUNDS,
# BENCH_PORT_BASE, BENCH_OUT (see benches/load.rs), BENCH_STREAM_* (see benches/streams.rs).
bench: bench-setup
	$(CARGO) build --release --features pingora --example mock_salesforce --example axum_app \
		--example pingora_gateway --example passthrough_proxy
	$(CARGO) bench --features pingora --bench core
	[ "$$(ulimit -n)" -ge 4096 ] || ulimit -n 4096 2>/dev/null || true; \
		$(CARGO) bench --features pingora --bench load && \
		$(CARGO) bench --features pingora --bench streams
