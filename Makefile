# Groundwork. The two commands a newcomer needs:
#   make demo   install everything, start the local mesh, make a few requests
#   make test   lint, type-check and run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install demo up down status test lint typecheck tools pytest proto clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# xds-protos ships an old copy of opentelemetry/proto/*; whichever wheel is
	@# installed last owns those files. Put opentelemetry-proto's own back.
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps \
	  "opentelemetry-proto==$$($(BIN)/python -c 'from importlib.metadata import version; print(version("opentelemetry-proto"))')"
	$(BIN)/python -c 'from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope'
	@rm -f $(VENV)/.installed-* && touch $@

demo: install
	$(BIN)/groundwork up
	$(BIN)/groundwork demo

up: install
	$(BIN)/groundwork up

down:
	$(BIN)/groundwork down

status:
	$(BIN)/groundwork status

test: lint typecheck tools pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy services envoy loadtest tests proto/generate.py

# Go programs the tests run for real (Jaeger), built once per pinned version and
# cached in ~/.cache/groundwork: minutes the first time, nothing after.
tools: install
	$(BIN)/python -m tests.infra.gobuild all

# Two lanes at once (unit+e2e, integration), each its own pytest process and log
# in build/test-logs/ (tests/lanes.py); `$(BIN)/pytest` alone runs them in turn.
pytest: install
	$(BIN)/python -m tests.lanes

# Regenerate proto/gen from proto/ (messages, gRPC stubs, .pyi stubs, descriptor set).
proto: install
	$(BIN)/python proto/generate.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
