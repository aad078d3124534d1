# The README's two commands: `make demo` and `make test`. Each sets everything up first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_EPOCHS ?= 30

.PHONY: setup test lint demo bench bench-accuracy clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: its CPU wheel is on disk here; a bare `torch` would pull a CUDA build.
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy src

# The three reference models and the baselines on the bundled ETTh1 (hourly, 7 variables),
# lookback 10, horizon 1, batch 32, $(DEMO_EPOCHS) epochs (early stopping on validation).
demo: setup
	$(VENV)/bin/lstmcast compare etth1 \
		--models simple,stacked,bidirectional,linear,mean,repeat_last \
		--lookback 10 --horizon 1 --epochs $(DEMO_EPOCHS) --out runs/demo

# Speed against the peers. They live in their own venv, never in the project's dependencies.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp
$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BENCH_VENV)/bin/python -m pip install -q --disable-pip-version-check -e . lightning "darts[torch]" tensorflow-cpu
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/speed.py --memory-rows 10000000

bench-accuracy: setup
	$(PY) benchmarks/accuracy.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
