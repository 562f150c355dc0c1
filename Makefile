# The two commands a user needs: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test bench lint ui prefect-ui serve clean-data

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the pinned dependencies

demo: $(STAMP)  ## run the pipeline end to end on the built-in world
	$(BIN)/cem demo

test: $(STAMP)  ## run the whole test suite
	$(BIN)/python -m pytest

bench: $(STAMP)  ## run the benchmarks (minutes; figures go to BENCHMARKS.md by hand)
	$(BIN)/python bench/bench_simulate.py
	$(BIN)/python bench/bench_features_pit.py
	$(BIN)/python bench/bench_train.py   # every model on ~1M snapshots vs a bare lightgbm fit (about 25 min)
	$(BIN)/python bench/bench_hillstrom.py   # uplift on the real Hillstrom test vs two-model LightGBM
	$(BIN)/python bench/bench_real.py   # every configs/sources mapping on its full dataset vs LightGBM on raw columns
	$(BIN)/python bench/bench_service.py write
	$(BIN)/python bench/bench_service.py load --data-dir data   # needs `make demo` first
	$(BIN)/python bench/bench_score.py   # 1M-customer batch scoring (about 30 min with setup)

ui: $(STAMP)  ## MLflow UI on http://127.0.0.1:5000 (compare runs side by side)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/data/mlflow/mlflow.db \
		--host 127.0.0.1 --port 5000

serve: $(STAMP)  ## scoring service + reps' page on http://127.0.0.1:8000 (after `make demo`)
	$(BIN)/cem tokens
	$(BIN)/cem serve --host 127.0.0.1 --port 8000

prefect-ui: $(STAMP)  ## Prefect server + UI on http://127.0.0.1:4200; then export PREFECT_API_URL
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

lint: $(STAMP)
	$(BIN)/ruff check .

clean-data:
	rm -rf data/raw data/truth data/clean data/quarantine
