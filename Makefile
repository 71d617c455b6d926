# The README's commands. `make demo` and `make test` are all a new machine needs
# (Python 3.11 and Java 17). Everything installs into .venv from requirements.lock.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
export RECASSETS_HOME ?= $(CURDIR)/.recassets
export DAGSTER_HOME ?= $(RECASSETS_HOME)/dagster

DEMO_ARGS := $(if $(MOVIELENS),--movielens $(MOVIELENS)) $(if $(DAYS),--days $(DAYS)) $(if $(EVENTS),--events-per-day $(EVENTS)) $(if $(USERS),--users $(USERS)) $(if $(ITEMS),--items $(ITEMS))

.PHONY: install demo test dev lint lock bench clean-home graph deploy-check

install: $(VENV)/.installed

# PyPI ships pyspark only as a 450 MB sdist, and the file host here sends no cache headers
# (no max-age, ETag or Last-Modified), so whenever uv's entry for it goes stale uv downloads and
# builds it again and keeps another 1.4 GB revision: 43 of them filled the disk and failed a CI
# run. The wheel is built once per machine into a wheelhouse uv reads with --find-links (uv
# prefers a wheel to an sdist of the same version), built in a scratch folder and moved into
# place whole, so a failed build leaves no wheel behind; a new pin replaces the old wheel.
WHEELHOUSE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/recassets/wheels
PYSPARK_VERSION := $(shell sed -n 's/^pyspark==//p' requirements.lock)
PYSPARK_WHEEL := $(WHEELHOUSE)/pyspark-$(PYSPARK_VERSION)-py2.py3-none-any.whl

$(PYSPARK_WHEEL):
	mkdir -p $(WHEELHOUSE)
	scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && \
		$(PYTHON) -m pip wheel -q --no-deps --no-cache-dir -w "$$scratch" pyspark==$(PYSPARK_VERSION) && \
		rm -f $(WHEELHOUSE)/pyspark-*.whl && mv "$$scratch"/pyspark-$(PYSPARK_VERSION)-*.whl $@

# uv installs the lock in about a minute from a warm cache (~/.cache/uv) and never downloads
# a wheel twice. --compile-bytecode writes the .pyc files at install, as pip does and uv does
# not by default: without them every process compiles what it imports from source, and where
# PYTHONDONTWRITEBYTECODE is set (CI images, this machine) it does so in every process again
# (torch, torchrec, Feast and Dagster: importing the serving code took 44 s instead of 12).
# overrides.txt keeps torchrec's declared CUDA fbgemm-gpu out of a CPU install; the check after
# it fails the install if both fbgemm wheels ever end up side by side.
$(VENV)/.installed: requirements.lock overrides.txt pyproject.toml | $(PYSPARK_WHEEL)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(BIN)/pip install -q uv==0.13.8
	$(UV) pip install -q --python $(BIN)/python -r requirements.lock --override overrides.txt \
		--find-links $(WHEELHOUSE) --compile-bytecode
	$(UV) pip install -q --python $(BIN)/python --no-deps -e .
ifeq ($(GPU),1)
	$(UV) pip uninstall -q --python $(BIN)/python fbgemm-gpu-cpu faiss-cpu
	$(UV) pip install -q --python $(BIN)/python --no-deps --compile-bytecode fbgemm-gpu==1.9.0 \
		faiss-gpu-cu12==1.14.1.post1
else
	@! $(UV) pip show -q --python $(BIN)/python fbgemm-gpu 2>/dev/null || \
		{ echo "fbgemm-gpu (CUDA) is installed beside fbgemm-gpu-cpu: remove .venv and reinstall"; exit 1; }
endif
	touch $@

demo: install
	$(BIN)/recassets demo $(DEMO_ARGS)

# The suite runs in TEST_WORKERS processes (pytest-xdist), each module whole in one of them,
# the slowest modules first (tests/conftest.py): 31 minutes on two cores, not 45 in one
# process (2026-12-06). Two by default: the pair peaked at 15 GB of memory (each worker has its own Spark
# JVM, and the Dagster runs, servers and daemons its tests start). TEST_WORKERS=0 runs the
# suite in this process. The 25 slowest tests are listed at the end: where CI's time goes.
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -q --durations=25 -n $(TEST_WORKERS) --dist loadfile \
		--no-loadscope-reorder $(PYTEST_ARGS)

# The deployment checks alone (docs/deploy.md, "What is validated here"); `make test` runs them too.
deploy-check: install
	$(BIN)/python -m pytest -q tests/deploy $(PYTEST_ARGS)

# `recassets init` writes the instance's dagster.yaml (recassets/instance.py DAGSTER_YAML): one
# writer per Delta table (pools), run retries, no telemetry; the same file the CLI's runs use.
dev: install
	$(BIN)/recassets init
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# pyright type-checks the library ([tool.pyright] in pyproject.toml). The wheel bundles pyright and
# its Node.js comes from a wheel too; PYRIGHT_PYTHON_IGNORE_WARNINGS skips the wrapper's lookup of
# the newest release on PyPI, so the check reads nothing from the network.
LINT_PATHS := recassets assets resources sensors serving support tests benchmarks typings definitions.py
lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	PYRIGHT_PYTHON_IGNORE_WARNINGS=1 $(BIN)/pyright

# Re-resolve the pins after editing pyproject.toml. deploy/serving.lock, what the bento installs
# (deploy/serving.in: no Spark, Dagster or Great Expectations), is resolved second, constrained
# by requirements.lock, so its pins are the main lock's pins (tests/deploy/test_serving_lock.py).
lock:
	$(UV) pip compile -q pyproject.toml --extra dev --override overrides.txt --python-version 3.11 -o requirements.lock
	$(UV) pip compile -q deploy/serving.in -c requirements.lock --override overrides.txt --python-version 3.11 -o deploy/serving.lock

# Each prints its figures beside a baseline measured in the same run (docs/benchmarks.md).
# serve_ranking and serve_http time the bento built in RECASSETS_HOME: `make demo` first.
bench: install
	$(BIN)/python -m benchmarks.ingest
	$(BIN)/python -m benchmarks.features
	$(BIN)/python -m benchmarks.backfill --dense-days 30 --sparse-days 60
	$(BIN)/python -m benchmarks.quality_range
	$(BIN)/python -m benchmarks.online_features
	$(BIN)/python -m benchmarks.serve_index
	$(BIN)/python -m benchmarks.serve_ranking
	$(BIN)/python -m benchmarks.serve_http
	$(BIN)/python -m benchmarks.freshness

# Rewrite the asset graph (docs/asset-graph.md and README.md's embedded copy) from definitions.py;
# tests/dagster/test_asset_graph.py fails when they are stale.
graph: install
	$(BIN)/python -m support.asset_graph

clean-home:
	rm -rf $(RECASSETS_HOME)
