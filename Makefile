# Watchkeeper: `make run` for the all-in-one demo, `make test` for every suite on real services.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVICES := deploy/local/services
STAMP := $(VENV)/.installed
# The console and the wall screen (web/, Vite): rebuilt when a source or the lockfile changes.
WEB_BUILT := web/dist/.built
WEB_SOURCES := $(shell find web/src web/console web/screen -type f 2>/dev/null) \
               web/package.json web/package-lock.json web/vite.config.js

.PHONY: install run test test-unit lab services-start services-stop bench clean

install: $(STAMP) $(WEB_BUILT)
	$(BIN)/python -m collectors.capture.kernels.build --if-stale
	$(BIN)/python -m collectors.capture.kernels.warm
	$(BIN)/python -m watchkeeper.compiled_build
	@# Our modules' bytecode: an editable install writes none, so a process that may not
	@# write it (another user, PYTHONDONTWRITEBYTECODE) would compile ~200 modules per start.
	$(BIN)/python -m compileall -q -j 0 app alerting api collectors detectors playbooks reports watchkeeper

$(WEB_BUILT): $(WEB_SOURCES)
	cd web && npm ci --no-audit --no-fund && npm run build
	touch $(WEB_BUILT)

$(STAMP): pyproject.toml deploy/local/debian-packages.txt
	deploy/local/install-debs
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,rdkafka,compiled]'
	touch $(STAMP)

run: install
	$(BIN)/watchkeeper run --demo

services-start:
	$(SERVICES) start

services-stop:
	$(SERVICES) stop

test-unit: install
	$(BIN)/python -m pytest tests/unit -q

# Every suite: first the attack lab on its own (timing-sensitive: detection deadlines are
# measured, so nothing else competes for the two cores), then the real Kafka and
# Elasticsearch are started, every other suite runs against them, and they are stopped again.
test: install
	deploy/local/install-debs deploy/local/lab-packages.txt
	mkdir -p test-reports
	status=0; \
	WATCHKEEPER_REQUIRE_SERVICES=1 $(BIN)/python -m pytest tests/lab -q -s \
	  --junitxml=test-reports/lab-junit.xml || status=$$?; \
	$(SERVICES) stop --wipe || status=$$?; \
	$(SERVICES) start || status=$$?; \
	WATCHKEEPER_REQUIRE_SERVICES=1 $(BIN)/python -m pytest tests -q --ignore=tests/lab \
	  --junitxml=test-reports/junit.xml || status=$$?; \
	$(SERVICES) stop; exit $$status

# Attack lab: hosts in network namespaces, real services and attack tools (needs root).
lab: install
	deploy/local/install-debs deploy/local/lab-packages.txt
	mkdir -p test-reports
	WATCHKEEPER_REQUIRE_SERVICES=1 $(BIN)/python -m pytest tests/lab -q -s \
	  --junitxml=test-reports/lab-junit.xml

bench: install
	deploy/local/install-debs deploy/local/bench-packages.txt
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/capture.py
	$(BIN)/python bench/hostile.py

clean:
	rm -rf $(VENV) test-reports .pytest_cache web/dist web/node_modules
