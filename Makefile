# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-upstream bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet 'torch==2.13.0'  # CPU build; before badger-opt (xopt, botorch) pulls CUDA
	$(PY) -m pip install --quiet -e '.[ioc,bluesky,badger,test,bench]'
	$(PY) -m pip install --quiet --no-deps 'ophyd-epicsrs>=0.13'  # pins ophyd==1.6.*: see pyproject
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m pvflow demo

test: $(STAMP) test-upstream
	$(PY) -m pytest

# ophyd's and ophyd-async's own test suites on pvflow (sdists downloaded once into .cache/).
test-upstream: $(STAMP)
	$(PY) -m tests.upstream.run

bench: $(STAMP)
	$(PY) -m benchmarks
	$(PY) -m benchmarks.device_connect
	$(PY) -m benchmarks.detector_fps
	$(PY) -m benchmarks.writer
	$(PY) -m benchmarks.detector_save

clean:
	rm -rf $(VENV) .pytest_cache
