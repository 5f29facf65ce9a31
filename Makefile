# Two commands that work on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format fuzz bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first and pinned: a bare `torch` requirement makes pip fetch a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lucidae demo --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check lucidae tests benchmarks
	$(BIN)/ruff format --check lucidae tests benchmarks
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format lucidae tests benchmarks
	$(BIN)/ruff check --fix lucidae tests benchmarks

# Property tests with many more examples than CI runs (2,000 each; the statistics say how many ran and passed).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -m fuzz --hypothesis-show-statistics tests

bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) runs build *.egg-info
