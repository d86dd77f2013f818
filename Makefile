# Two commands a new user needs: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := runs/demo

.PHONY: demo test lint docs baseline bench-r3gan bench-new-tricks bench-new-tricks-stacked bench-repairs bench-approximate-r1 bench-ablation bench-ablation-stacked bench-tricks bench-tricks-stacked bench-monitors bench-zoo bench-speed bench-gpu bench-ddp wheel-check clean

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

# Why the toolkit exists, in about 3 minutes after the install: ring8 plain and with the tricks
# side by side (runs/demo/plain_vs_tricks.png), a failing run caught by a detector and its
# report page (runs/demo/failing/report.html); the paths are printed at the end.
demo: $(VENV)/.installed
	$(BIN)/python -m gan_tricks.experiments.demo --out $(DEMO_DIR)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n 2 -q

# R3GAN's recipe on stacked digits, 3 seeds, 10,000 iterations each (about 15 min on 2 cores).
bench-r3gan: $(VENV)/.installed
	$(BIN)/python benchmarks/recipes.py --recipes recipes/r3gan_stacked_digits.yaml --seeds 3 \
		--jobs 2 --runs-root runs/bench_r3gan --out docs/results/r3gan_stacked_digits.md \
		--title "R3GAN's recipe on stacked digits (10,000 iterations)"

# The tricks since 2021 on grid25 beside R1 and the plain GAN, 3 seeds, 4,000 iterations each.
NEW_TRICKS = recipes/grid25.yaml,recipes/tricks/r1.yaml,recipes/tricks/approximate_r1.yaml,$\
	recipes/tricks/gradient_normalization.yaml,recipes/tricks/cosine_schedules.yaml
bench-new-tricks: $(VENV)/.installed
	$(BIN)/python benchmarks/recipes.py --recipes $(NEW_TRICKS) --seeds 3 --jobs 2 \
		--baseline recipes/grid25.yaml --runs-root runs/bench_new_tricks \
		--out docs/results/new_tricks_grid25.md \
		--title "The tricks since 2021 on grid25 (4,000 iterations)" -- --trainer.max_steps 4000

# The tricks since 2021 as overlays of the plain stacked-digits DCGAN (the stacked-digits
# table's protocol: 3 seeds, 2,500 iterations), and what approximate R1 costs against R1.
NEW_STACKED = recipes/stacked_digits.yaml,benchmarks/overlays/stacked_digits/r1.yaml,$\
	benchmarks/overlays/stacked_digits/approximate_r1.yaml,$\
	benchmarks/overlays/stacked_digits/adaptive_pseudo_augment.yaml,$\
	benchmarks/overlays/stacked_digits/gradient_normalization.yaml
bench-new-tricks-stacked: $(VENV)/.installed
	$(BIN)/python benchmarks/recipes.py --on recipes/stacked_digits.yaml --recipes $(NEW_STACKED) \
		--seeds 3 --jobs 2 --baseline recipes/stacked_digits.yaml \
		--runs-root runs/bench_new_tricks_stacked --out docs/results/new_tricks_stacked_digits.md \
		--title "The tricks since 2021 on stacked digits (2,500 iterations)" \
		-- --trainer.max_steps 2500
bench-approximate-r1: $(VENV)/.installed
	$(BIN)/python benchmarks/step_options.py --steps 300 --rounds 3 --groups "approximate R1" \
		--out docs/results/approximate_r1_cost

# Spectral norm and DRAGAN on grid25: the catalogue's recipes against the settings their papers
# use, to tell the trick from its recipe (3 seeds, 4,000 iterations each).
REPAIRS = $(shell ls benchmarks/overlays/grid25_repairs/*.yaml | paste -sd, -)
bench-repairs: $(VENV)/.installed
	$(BIN)/python benchmarks/recipes.py --on recipes/grid25.yaml --recipes $(REPAIRS) --seeds 3 \
		--jobs 2 --runs-root runs/bench_repairs \
		--out docs/results/grid25_repairs.md \
		--title "Spectral norm and DRAGAN on grid25, recipe against paper (4,000 iterations)" \
		-- --trainer.max_steps 4000

# The wheel installed into a fresh virtual environment outside the repository, its packaged
# recipes run by name (what CI checks after the tests).
wheel-check: $(VENV)/.installed
	.ci/wheel_check

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The API reference from the docstrings (mkdocs + mkdocstrings), offline, into site/; any
# warning (a docstring that names a parameter the signature lacks, a broken link) fails it.
docs: $(VENV)/.installed-dev
	$(BIN)/mkdocs build --strict --quiet

# The plain-GAN baseline table of the README (5 seeds on ring8 and grid25).
baseline: $(VENV)/.installed
	$(BIN)/python benchmarks/recipes.py --recipes recipes/ring8.yaml,recipes/grid25.yaml \
		--seeds 5 --runs-root runs/baseline --out docs/results/baseline.md --title "Plain-GAN baseline"

# Every trick recipe on grid25, 3 seeds, 4,000 iterations each (about 35 min on 2 cores).
TRICK_RECIPES = recipes/grid25.yaml,$(shell grep -l Toy2D recipes/tricks/*.yaml | paste -sd, -)
bench-tricks: $(VENV)/.installed
	$(BIN)/python benchmarks/recipes.py --recipes $(TRICK_RECIPES) --seeds 3 \
		--baseline recipes/grid25.yaml --runs-root runs/bench_tricks \
		--out docs/results/tricks_grid25.md --title "Every trick on grid25 (4,000 iterations)" \
		-- --trainer.max_steps 4000

# The image tricks on stacked digits: each overlay of benchmarks/overlays/stacked_digits/ on the
# plain DCGAN, 3 seeds, 2,500 iterations each (about an hour on 2 cores).
STACKED_OVERLAYS = $(shell ls benchmarks/overlays/stacked_digits/*.yaml | paste -sd, -)
bench-tricks-stacked: $(VENV)/.installed
	$(BIN)/python benchmarks/recipes.py --on recipes/stacked_digits.yaml \
		--recipes recipes/stacked_digits.yaml,$(STACKED_OVERLAYS) --seeds 3 \
		--baseline recipes/stacked_digits.yaml --runs-root runs/bench_tricks_stacked \
		--out docs/results/tricks_stacked_digits.md \
		--title "The image tricks on stacked digits (2,500 iterations)" \
		-- --trainer.max_steps 2500

# The cost of every failure detector at once on the digits recipe, in one run: the detectors
# are off in every other block of 100 iterations (about 3 min; run nothing else meanwhile).
bench-monitors: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/detector_overhead.py --config recipes/digits.yaml \
		--overlay benchmarks/overlays/monitors/all_detectors.yaml --steps 3000 --block 100

# The failure zoo: every recipe of recipes/failures/ and the healthy controls, 3 seeds, with
# every detector and the quality probe; scores recall, delay and false alarms (about 50 min).
bench-zoo: $(VENV)/.installed
	$(BIN)/python benchmarks/failure_zoo.py --seeds 3 --out docs/results/failure_zoo.md

# The grid25 ablation of the README: six tricks one at a time and all together, 5 seeds,
# 4,000 iterations each, two runs at a time (about an hour on 2 cores; resumable).
bench-ablation: $(VENV)/.installed
	$(BIN)/gan-tricks ablate --config recipes/grid25.yaml \
		--tricks r1,label_smoothing,lecam,generator_ema,experience_replay,packing \
		--seeds 5 --budget 4000 --jobs 2 --out docs/results/ablation_grid25

# Stacked digits: the plain DCGAN, the three best single tricks at 2,500 iterations and all three
# together, 3 seeds at the recipe's 5,000 iterations (about 40 minutes on 2 cores; resumable).
bench-ablation-stacked: $(VENV)/.installed
	$(BIN)/gan-tricks ablate --config recipes/stacked_digits.yaml \
		--tricks sparse_gradients,diffaugment,packing --seeds 3 --jobs 2 \
		--out docs/results/ablation_stacked_digits

# Speed, each writing docs/results/<name>.md and .json; run nothing else meanwhile: the
# toolkit step and the engine in a hand-written loop against that loop in lockstep (about
# 12 min), channels_last, torch.compile and lazy R1 (about 8 min), data loading against step
# time (about 3 min), the whole fit process against a plain script (about 3 min).
bench-speed: $(VENV)/.installed
	$(BIN)/python benchmarks/step_overhead.py --steps 300 --rounds 5 --out docs/results/step_overhead
	$(BIN)/python benchmarks/step_options.py --steps 300 --rounds 3 --out docs/results/step_options
	$(BIN)/python benchmarks/data_loading.py --out docs/results/data_loading
	$(BIN)/python benchmarks/process_overhead.py --steps 1,600 --rounds 3 --out docs/results/process_overhead
	$(BIN)/python benchmarks/command_startup.py --repeats 5 --out docs/results/command_startup

# On a machine with a CUDA GPU (about 3 min): images per second at 32-true, bf16-mixed and
# 16-mixed, with and without lazy R1, channels_last and torch.compile, and R1 under autocast
# against the fp32 R1.
bench-gpu: $(VENV)/.installed
	$(BIN)/python benchmarks/gpu_throughput.py --out docs/results/gpu_throughput

# DDP on this machine: 1 process against 2 (about 4 min) and every recipe on 2 processes
# (about 12 min).
bench-ddp: $(VENV)/.installed
	$(BIN)/python benchmarks/ddp_scaling.py --steps 300 --rounds 2 --out docs/results/ddp_scaling
	$(BIN)/python benchmarks/ddp_recipes.py --steps 4 --out docs/results/ddp_recipes

clean:
	rm -rf runs site .pytest_cache
