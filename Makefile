# The two README commands: `make test` and `make demo`. Both build the venv
# from nothing when it is missing, then install the project into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: test test-engines demo install bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test,plot]'
	touch $(STAMP)

install: $(STAMP)

# A test that timed out (pytest-timeout, pyproject.toml) is rerun once.
RERUN_HUNG := --reruns 1 --only-rerun Timeout

test: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest -q -n auto --dist loadfile $(RERUN_HUNG) tests

# The Flink and Spark tests, in a venv of their own Beam release (see requirements-engines.txt):
# the venv, then the job servers' jars fetched with Maven, then the tests.
ENGINES_VENV ?= .venv-engines
ENGINES_PY := $(ENGINES_VENV)/bin/python
ENGINES_STAMP := $(ENGINES_VENV)/.installed

$(ENGINES_STAMP): requirements-engines.txt pyproject.toml
	$(PYTHON) -m venv $(ENGINES_VENV)
	$(ENGINES_PY) -m pip install --quiet --upgrade pip
	$(ENGINES_PY) -m pip install --quiet -r requirements-engines.txt .
	touch $(ENGINES_STAMP)

test-engines: $(ENGINES_STAMP)
	PYTHONPATH=$(CURDIR) $(ENGINES_PY) -m pipelines.jobs.engines
	TF_CPP_MIN_LOG_LEVEL=2 PYTHONPATH=$(CURDIR) $(ENGINES_PY) -m pytest -q $(RERUN_HUNG) tests/test_pipelines_engines.py

demo: $(STAMP)
	$(VENV)/bin/rebalance demo --out $(DEMO_OUT)

bench: $(STAMP)
	$(PY) bench/stats_bench.py
	$(PY) bench/tfdata_bench.py
	$(PY) bench/loss_bench.py

clean:
	rm -rf $(VENV) $(ENGINES_VENV) $(DEMO_OUT) .pytest_cache
