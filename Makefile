# Two commands: `make run` (set up, index corpus/, serve the app) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test setup index browser clean scheduler worker

run: index
	@if [ -f app.py ]; then \
	  $(BIN)/streamlit run app.py --server.headless true --server.address 127.0.0.1 --server.fileWatcherType none --client.toolbarMode minimal --browser.gatherUsageStats false; \
	else echo "The index is built; the app (app.py) is not in this checkout yet: ask with python -m qa ask."; fi

test: setup browser
	$(BIN)/python -m pytest

setup: $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m qa.onnx_model  # export the bundled model to ONNX once (qa/onnx_model.py)
	rm -f $(VENV)/.installed-* && touch $@

index: setup
	$(BIN)/python -m ingest corpus --index index

# Headless Chromium for the end-to-end test, from Debian's packages (browser downloads are impossible here).
# As root, or with password-less sudo; otherwise it says how, and the e2e test skips (or fails when CI is set).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo"; \
	  else echo "chromium is not installed and this is not root: install it with 'sudo apt-get install chromium'"; exit 0; fi; \
	  echo "installing chromium for the end-to-end test"; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# A Dask cluster for `python -m ingest --cluster tcp://HOST:8786` (README, "Ingest on a cluster"). Dask has no
# authentication: bind to a private network only. HOST is the address to listen on (default 127.0.0.1).
scheduler: setup
	$(BIN)/python -m distributed.cli.dask_scheduler --host $(or $(HOST),127.0.0.1) --port $(or $(PORT),8786) --no-dashboard --dashboard-address $(or $(HOST),127.0.0.1):0

# On each worker machine, in a checkout of the same commit: make worker SCHEDULER=tcp://HOST:8786 [HOST=this machine's address]
worker: setup
	@test -n "$(SCHEDULER)" || { echo "name the scheduler: make worker SCHEDULER=tcp://HOST:8786"; exit 2; }
	$(BIN)/python -m distributed.cli.dask_worker $(SCHEDULER) --host $(or $(HOST),127.0.0.1) --no-dashboard --dashboard-address $(or $(HOST),127.0.0.1):0

clean:
	rm -rf index test-artifacts .pytest_cache
