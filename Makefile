# Two commands a new user needs: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := runs/demo

.PHONY: demo test lint baseline clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: reinstall only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

# Trains the ring8 recipe; leaves runs/demo/samples.png and runs/demo/training.png.
demo: $(VENV)/.installed
	$(BIN)/gan-tricks fit --config recipes/ring8.yaml --name demo --overwrite true
	$(BIN)/gan-tricks evaluate $(DEMO_DIR)/checkpoints/last.ckpt
	@echo "pictures: $(DEMO_DIR)/samples.png $(DEMO_DIR)/training.png"

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n 2 -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The plain-GAN baseline table of the README (5 seeds on ring8 and grid25).
baseline: $(VENV)/.installed
	$(BIN)/python benchmarks/baseline.py --out docs/results/baseline.md

clean:
	rm -rf runs .pytest_cache
