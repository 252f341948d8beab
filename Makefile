# reviewapp — `make run` (the demo) and `make test` (the whole suite) on a fresh machine.
# Only Python 3.11+ is needed up front; everything else is installed by these targets.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8000
# pytest-xdist processes: both cores by default.
TEST_WORKERS ?= 2

.PHONY: run test lint bench load browser brokers clean-data help mutation

help:
	@echo "make run    - start reviewapp with a demo on http://127.0.0.1:$(PORT) (Ctrl-C stops it)"
	@echo "make test   - run the whole test suite against real PostgreSQL, Celery and Chromium"
	@echo "make lint   - ruff, and import-linter's check of DESIGN.md's one-way layers ([tool.importlinter])"
	@echo "make mutation - mutmut over the case and appeal services against the review tests (not part of make test)"
	@echo "make bench  - ingestion, grouping, review, Forum matching and exports, as ratios to COPY (python -m bench --help)"
	@echo "make load   - everyone at once: a locust scenario against the real stack; writes docs/performance.md (LOAD_ARGS)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "reviewapp needs Python 3.11+ ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV) || { scripts/ensure-os-packages python3-venv && $(PYTHON) -m venv $(VENV); }

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

run: $(STAMP)
	REVIEWAPP_DEMO=1 PORT=$(PORT) PYTHONUNBUFFERED=1 $(BIN)/python manage.py runstack

browser:
	@scripts/ensure-os-packages chromium

# The broker fault tests start private redis-server and rabbitmq-server instances (tests/reliability/brokers.py);
# installing them starts neither package's own service.
brokers:
	@scripts/ensure-os-packages redis-server rabbitmq-server

test: $(STAMP) browser brokers
	$(BIN)/python manage.py check --fail-level WARNING
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

# mutmut over reviewapp/cases/services/*.py and appeals/services.py ([tool.mutmut] in pyproject.toml), each
# mutant against the claim, decision and appeal-review tests on the real PostgreSQL of DATABASE_URL. One mutant
# at a time: the mutants share one reused test database. MUTANTS='appeals.services.x_appeal_decide__mutmut_*'
# narrows the run; `$(BIN)/mutmut results` lists the survivors afterwards.
mutation: $(STAMP)
	@test -n "$$DATABASE_URL" || { echo "make mutation needs DATABASE_URL (a real PostgreSQL)"; exit 1; }
	$(BIN)/mutmut run --max-children 1 $(MUTANTS)
	$(BIN)/mutmut results

# Prints rates and ratios; never fails on a missed goal. BENCH_ARGS="--flags 20000", "--mode stack", "--mode export",
# "--profile" or "--memory".
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# locust --headless against the real stack on its own fresh database, a few minutes; rewrites the results section of
# docs/performance.md and exits 1 when a request failed. LOAD_ARGS="--users 20 --run-time 3m", "--no-doc" or "--keep".
load: $(STAMP)
	$(BIN)/python -m bench.load $(LOAD_ARGS)

clean-data:
	rm -rf .data
