# anomstream: `make demo` and `make test` do all the set-up on a fresh Python 3.11 machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest
TEST_TIMEOUT ?= 900

.DEFAULT_GOAL := help
.PHONY: help install demo test test-unit test-tansu test-kafka lint kafka bench bench-nab bench-skab bench-plant bench-throughput bench-memory clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "anomstream needs Python >= 3.11, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# setuptools says how editable installs work as a UserWarning on every install: not for users
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install --quiet -e ".[dev,train,embedded]"
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install anomstream with its dev and training tools

demo: $(STAMP) ## embedded broker + worker + synthetic plant with injected anomalies (60 s; FORMAT=influx|telegraf-json)
	$(BIN)/anomstream demo $(if $(FORMAT),--format $(FORMAT))

lint: $(STAMP) ## ruff, mypy and the import contract (pyproject.toml, [tool.importlinter])
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint test-unit test-tansu test-kafka ## lint, unit tier, integration on Tansu, then on Apache Kafka

test-unit: $(STAMP) ## unit tier: no broker
	$(PYTEST) -q -m "not integration and not reliability" --timeout=$(TEST_TIMEOUT) --doctest-modules tests detectors

test-tansu: $(STAMP) ## integration and reliability tiers on the embedded Tansu broker
	ANOMSTREAM_TEST_BROKER=tansu $(PYTEST) -q -m "integration or reliability" --timeout=$(TEST_TIMEOUT) tests

test-kafka: $(STAMP) ## integration and reliability tiers on Apache Kafka (KRaft), if java 17+ and mvn exist
	@if reason=$$($(BIN)/python -m harness.brokers check 2>&1); then \
		echo "Kafka lane: $$reason"; \
		$(MAKE) --no-print-directory kafka && \
		ANOMSTREAM_TEST_BROKER=kafka $(PYTEST) -q -m "integration or reliability" --timeout=$(TEST_TIMEOUT) tests; \
	elif [ -n "$$ANOMSTREAM_REQUIRE_KAFKA" ]; then \
		echo "Kafka lane required but unavailable: $$reason"; exit 1; \
	else \
		echo "Kafka lane skipped: $$reason"; \
	fi

kafka: $(STAMP) ## fetch Apache Kafka's jars from Maven Central into the cache (once)
	$(BIN)/python -m harness.brokers fetch

bench: bench-nab bench-skab bench-plant bench-throughput bench-memory ## all benchmarks

bench-nab: $(STAMP) ## NAB v1.1 with the stream's detector suite, beside the published scoreboard (DATA=dir)
	$(BIN)/python -m bench.nab.runner $${DATA:+--data $$DATA}

bench-skab: $(STAMP) ## SKAB valve1: train on each file's first 400 rows, score the rest (DATA=dir)
	$(BIN)/python -m bench.skab.runner $${DATA:+--data $$DATA}

bench-plant: $(STAMP) ## a fleet with operating modes, 5 seeds: train, detect, events against the labels (SEEDS=1,2)
	$(BIN)/python -m bench.plant.runner $${SEEDS:+--seeds $$SEEDS}

bench-throughput: $(STAMP) ## throughput and latency of the worker (BROKER=kafka|tansu|host:port)
	$(BIN)/python -m bench.throughput --broker $${BROKER:-kafka}

bench-memory: $(STAMP) ## RSS and state size with 10,000 sources x 8 signals (BROKER=...)
	$(BIN)/python -m bench.memory --broker $${BROKER:-kafka}

clean: ## remove the virtualenv and local state
	rm -rf $(VENV) .anomstream .mypy_cache .ruff_cache .pytest_cache
