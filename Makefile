# One command sets up and runs the demo, one sets up and runs the tests:
#   make demo
#   make test
PYTHON ?= python3
VENV   ?= .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.deps-installed

.PHONY: setup build demo test bench clean

setup: $(STAMP)

$(STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q -r requirements-dev.txt
	touch $@

# Incremental (ninja) build of safesvd/_C into python/safesvd/.
build: $(STAMP)
	$(VPY) setup.py -q build_ext --inplace

demo: build
	PYTHONPATH=python $(VPY) -m safesvd demo

test: build
	PYTHONPATH=python $(VPY) -m pytest -q tests

bench: build
	$(VPY) -m pip install -q matplotlib==3.9.2
	PYTHONPATH=python $(VPY) bench/bench_engine.py
	PYTHONPATH=python $(VPY) bench/bench_backward.py

clean:
	rm -rf build python/safesvd/*.so $(VENV)
