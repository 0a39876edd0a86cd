# Two commands on a fresh machine with only python3 and make: `make demo` and `make test`.
#
# Our own environments install from uv.lock (every package pinned, with hashes), so every machine
# runs the versions the suite was tested with. pyproject.toml keeps lower bounds for users.
# uv itself is pinned and installed into .tools/ with pip, the one thing python3 brings.
PYTHON     ?= python3
UV_VERSION := 0.13.9
TOOLS      := .tools
UV         := $(TOOLS)/bin/uv
VENV       := .venv
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.installed
LATEST     := .venv-latest
export UV_PYTHON_DOWNLOADS := never

.PHONY: install demo test test-fast test-latest bench lint lock image clean

install: $(STAMP)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet uv==$(UV_VERSION)

# Every extra: the suite exercises the gRPC exporter, the database instrumentations, Dask and the
# network demo. --locked fails when pyproject.toml and uv.lock disagree (run `make lock`).
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --all-extras --python $(PYTHON) --quiet
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p out
	$(BIN)/tracekit demo --report out/report.html $(DEMO_ARGS)

# The full suite: what CI runs.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The edit loop: leaves out tests marked slow (demo runs, Chromium, subprocess apps, long searches).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# The suite against the newest releases pyproject.toml admits, in a venv of its own: drift shows
# the day a release breaks us, before it reaches a user.
test-latest: $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(LATEST)
	$(UV) pip install --quiet --python $(LATEST)/bin/python --upgrade --resolution highest -e '.[grpc,db,dask,netdemo,test,bench,dev]'
	$(LATEST)/bin/python -m pytest $(PYTEST_ARGS)

# Refresh the lock after changing dependencies in pyproject.toml.
lock: $(UV)
	$(UV) lock --python $(PYTHON)

bench: $(STAMP)
	$(BIN)/python -m bench

# The demo image tracekit-demo:0.1.0 (podman or docker; ENGINE=, BASE=, IMAGE= as in the script).
image:
	demo_app/image/build.sh

# Style and types: mypy reads its settings (files, strict modules) from pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check tracekit demo_app tests bench
	$(BIN)/ruff format --check tracekit demo_app tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(LATEST) $(TOOLS) build *.egg-info
