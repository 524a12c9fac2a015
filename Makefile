# The two README commands: `make test` and `make demo`. Both build the venv
# from nothing when it is missing, then install the project into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: test demo install bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test,plot]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest -q -n auto --dist loadfile tests

demo: $(STAMP)
	$(VENV)/bin/rebalance demo --out $(DEMO_OUT)

bench: $(STAMP)
	$(PY) bench/stats_bench.py
	$(PY) bench/tfdata_bench.py
	$(PY) bench/loss_bench.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
