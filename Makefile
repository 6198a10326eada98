# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[ioc,test,bench]'
	$(PY) -m pip install --quiet --no-deps 'ophyd-epicsrs>=0.13'  # pins ophyd==1.6.*: see pyproject
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m pvflow demo

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
