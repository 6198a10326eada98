# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-upstream bench bench-scale fuzz install clean

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
	# the client's socket tests once more on the I/O loop of systems without epoll (select, as
	# on Windows): connect, read, write backlog, monitor floods, reconnection, search (~30 s)
	PVFLOW_IO_LOOP=select $(PY) -m pytest -q tests/integration/test_ca_softioc.py \
	    tests/integration/test_pva_softioc.py tests/integration/test_ca_monitor.py \
	    tests/pva/test_monitor_flow.py tests/ca/test_search.py \
	    -k "not ten_thousand and not silent_server"

# ophyd's and ophyd-async's own test suites on pvflow (sdists downloaded once into .cache/).
test-upstream: $(STAMP)
	$(PY) -m tests.upstream.run

bench: $(STAMP)
	$(PY) -m benchmarks
	$(PY) -m benchmarks.device_connect
	$(PY) -m benchmarks.pyepics_script
	$(PY) -m benchmarks.detector_fps
	$(PY) -m benchmarks.writer
	$(PY) -m benchmarks.detector_save

# Facility scale (about 15 minutes): fresh connect+read of 10k-100k PVs over 1 and 20 IOCs
# against libca, epicsrs and p4p (scale.png), an IOC restart under 100k monitors, and 10k
# monitors at 10 Hz next to pyepics and p4p.
bench-scale: $(STAMP)
	$(PY) -m benchmarks.scale --plot scale.png
	$(PY) -m benchmarks.scale_reconnect
	$(PY) -m benchmarks.scale_monitor

# Every decoder under atheris for FUZZ_SECONDS each (default 60); new finds join fuzz/corpus,
# which tests/test_fuzz_corpus.py replays in the normal suite.
fuzz: $(STAMP)
	$(PY) -m pip install --quiet -e '.[fuzz]'
	$(PY) -m fuzz

clean:
	rm -rf $(VENV) .pytest_cache
