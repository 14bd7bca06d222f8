# Mesh: `make run` starts it on the embedded default, `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install run test lint unit integration e2e clients browser chaos bench bench-quick clean flower deploy-check k8s-render

$(STAMP): pyproject.toml constraints.txt meshclient/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ./meshclient -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/mesh serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The unit and integration tests. The end-to-end tests on `mesh serve`, the fault drills, the
# clients' end-to-end suite and the console's browser tests take minutes of their own
# (`make e2e`, `make chaos`, `make clients`, `make browser`; CI runs all five).
test: lint
	$(BIN)/pytest -q -m "not drill and not clients and not browser" --ignore=tests/e2e

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e -m "not drill and not clients and not browser"

# The clients' features end to end on `mesh serve`: the Python client and the CLI, idempotent
# submits across a Redis restart, a cancel against a counting model server, 1,000 waiting
# clients, an event stream across a Redis restart.
clients: $(STAMP)
	$(BIN)/pytest -q -m clients

# The console in Debian's headless Chromium (apt-get install chromium), on `mesh serve`.
browser: $(STAMP)
	$(BIN)/pytest -q -m browser

# The fault drills: killed workers, Redis and Postgres restarts and outages, a wiped Redis,
# a provider down, and `mesh serve` stopped, doubled and its Redis killed.
chaos: $(STAMP)
	$(BIN)/pytest -q -m drill

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

# Flower, Celery's live view, on Mesh's broker: MESH_REDIS_URL, or with none set the embedded
# Redis of a running `make run` (its socket is recorded next to its data). It refuses at once
# when that broker does not answer. http://127.0.0.1:$(FLOWER_PORT), this machine only.
FLOWER_PORT ?= 5555
flower: $(STAMP)
	@broker="$${MESH_REDIS_URL:-}"; \
	settings="$${MESH_DATA_DIR:-.mesh}/redis.db.settings"; \
	if [ -z "$$broker" ] && [ -f "$$settings" ]; then \
	  broker="unix://$$($(BIN)/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["unixsocket"])' "$$settings")"; \
	fi; \
	if [ -z "$$broker" ]; then echo "No Mesh is running here: start make run first (or set MESH_REDIS_URL)." >&2; exit 2; fi; \
	if ! $(BIN)/python -c 'import redis, sys; redis.Redis.from_url(sys.argv[1], socket_timeout=2).ping()' "$$broker" 2>/dev/null; then \
	  if [ -z "$${MESH_REDIS_URL:-}" ]; then echo "The embedded Redis in $${MESH_DATA_DIR:-.mesh} is not running: start make run first." >&2; \
	  else echo "Cannot reach MESH_REDIS_URL ($$broker)." >&2; fi; \
	  exit 2; \
	fi; \
	echo "Flower on http://127.0.0.1:$(FLOWER_PORT) (this machine only) for $$broker"; \
	exec $(BIN)/celery --broker "$$(echo "$$broker" | sed 's|^unix://|redis+socket://|')" flower --address=127.0.0.1 --port=$(FLOWER_PORT)

# The Dockerfiles, compose.yaml, k8s/ and the Prometheus rules, checked offline (tests/deploy).
deploy-check: $(STAMP)
	$(BIN)/pytest -q tests/deploy

# Print a Kubernetes overlay rendered: make k8s-render OVERLAY=prod
OVERLAY ?= dev
k8s-render: $(STAMP)
	@if command -v kubectl >/dev/null 2>&1; then kubectl kustomize k8s/overlays/$(OVERLAY); \
	else $(BIN)/python -m tests.deploy.kustomize k8s/overlays/$(OVERLAY); fi

clean:
	rm -rf $(VENV) .mesh .pytest_cache .ruff_cache
