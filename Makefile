# The two commands of the README:
#   make study   set everything up, run every notebook of the study with papermill on the
#                embedded dataset (outputs saved in place), then build the book
#   make test    set everything up, lint (ruff), then run the test suite (what .ci/run calls)
#   make study-long  the main methods at twice the epochs, recorded for the results chapter
#   make study-tune  the learning rates, chosen on the tuning split (never on validation), recorded
#   make study-motion  the motion pairs at 8 frames on the motion preset, recorded with logits
#   make study-controls  notebook 03's inflation controls and the instruction-set check, recorded
#   make explore serve the prediction explorer (book/05_explorer.ipynb, as a Voila web app) on
#                127.0.0.1:$(PORT) for a browser; needs the runs of `make study`
# Set-up is idempotent: a rerun only reinstalls when pyproject.toml or constraints.txt changed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist
PORT ?= 8866
PROFILES := book/params

# the book's notebooks, in the table of contents' order (_toc.yml is the one list of them)
NOTEBOOKS := $(shell sed -n 's/^ *- file: \([0-9][0-9]_[a-z0-9_]*\)$$/\1/p' _toc.yml)

.PHONY: setup study study-long study-tune study-motion study-controls notebooks book test clean-book explore \
	fashion-mnist chromium

setup: $(STAMP) fashion-mnist

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "evitvid needs Python 3.11, found " + sys.version.split()[0])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Fashion-MNIST (the embedded dataset's nouns) from Debian's package; without root or apt
# the loader falls back to torchvision's download, which needs internet.
fashion-mnist:
	@if [ -d $(FASHION_MNIST) ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	else echo "note: cannot install dataset-fashion-mnist (no apt-get/root); torchvision's download will be tried"; fi

# Debian's Chromium, which the browser tests drive (tests/test_explorer_browser.py, tests/test_book.py;
# through Playwright, with the system browser: Playwright's own browser download is never used);
# installed by `make test` only. Without root or apt those tests are skipped, naming the reason.
chromium:
	@if command -v chromium >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "note: cannot install chromium (no apt-get/root); the browser tests (explorer, book) will be skipped"; fi

# -n (nitpicky): a reference to a missing target is a warning, and --warningiserror fails on it.
book: setup
	$(VENV)/bin/jb build book -n --warningiserror --keep-going

# Every run of the study trains first (`python -m evitvid study`: the pretraining, each method
# and seed, parallel_runs at a time; the embedded dataset is generated beside the pretraining,
# which reads no video); each notebook then runs in place and reads them: its committed
# outputs are those of this command's last run. Finished runs in runs/ are reused (nothing
# trained twice) when this code computed them; runs that other code, CPU kernels or memory
# layout computed are trained again (--retrain-stale).
notebooks: setup
	@echo "== training every run of the study ($$(date +%H:%M:%S))"
	$(PY) -m evitvid study --profile $(PROFILES)/cpu.yaml --retrain-stale
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb ($$(date +%H:%M:%S))"; \
		$(VENV)/bin/papermill book/$$nb.ipynb book/$$nb.ipynb --cwd book --kernel python3 --log-output \
			--no-progress-bar || exit 1; \
	done
	@echo "== notebooks done ($$(date +%H:%M:%S))"

study: notebooks book

# What the budget of `make study` trades: the main methods at twice the epochs
# (book/params/cpu_long.yaml), about 35 minutes more on 2 cores, their learning curves recorded in
# book/recorded/cpu_long/ (committed), which the results chapter sets beside the default runs; run
# `make study` afterwards to show a new record in the book.
study-long: setup
	$(PY) -m evitvid study --profile $(PROFILES)/cpu_long.yaml --record book/recorded/cpu_long --retrain-stale

# The pairs that only a direction of motion tells apart, where they can be learnt: the methods the
# order-dependent claims compare at 8 frames per clip on the embedded dataset's motion preset
# (book/params/cpu_motion.yaml), about 50 minutes on 2 cores. Their learning curves and validation
# logits go to book/recorded/cpu_motion/ (committed), which the results chapter reads.
study-motion: setup
	$(PY) -m evitvid study --profile $(PROFILES)/cpu_motion.yaml --record book/recorded/cpu_motion --record-runs \
		--retrain-stale

# What make study leaves out to fit its budget, beside the 3D runs it shares with it: the
# inflations that break or keep I3D's time symmetry (notebook 03's controls) and the run that
# checks another instruction set (book/params/cpu_controls.yaml), about 45 minutes on 2 cores
# without AVX-512. Their learning curves and validation logits go to book/recorded/cpu_controls/
# (committed), which notebooks 03 and 04 read.
study-controls: setup
	$(PY) -m evitvid study --profile $(PROFILES)/cpu_controls.yaml --record book/recorded/cpu_controls --record-runs \
		--retrain-stale

# The learning rate of each method and the frames per clip, chosen on the tuning split (a fifth
# of the training videos, whole; never the validation split the verdicts read): the main methods
# of cpu.yaml at each rate of book/params/cpu_tune.yaml's lr_grid, one seed, at 4 frames
# (cpu_tune.yaml) and at 2 (cpu_tune_2_frames.yaml): 7 methods x 4 rates x 2 frame counts = 56
# runs, two at a time, about 45 minutes on 2 cores (plus make study's image pretraining when it is
# not in runs/ yet). Each frame count's learning curves go to a folder of book/recorded/cpu_tune/
# (committed), and the command prints the frame count and each method's best rate
# (study.read_tuning, tuned_frames, tuned_rates): write them as cpu.yaml's num_frames and lr, then
# run make study-long and make study again.
TUNING := book/recorded/cpu_tune
study-tune: setup
	$(PY) -m evitvid study --profile $(PROFILES)/cpu_tune.yaml --record $(TUNING)/4_frames --retrain-stale
	$(PY) -m evitvid study --profile $(PROFILES)/cpu_tune_2_frames.yaml --record $(TUNING)/2_frames --retrain-stale

# The 25 slowest tests are listed at the end: where CI's time goes, for keeping it under 20 minutes.
test: setup chromium
	$(VENV)/bin/ruff check evitvid tests
	$(PY) -m pytest -q --durations=25

# The prediction explorer as a web page (Voila: the notebook's widgets, no code) on this machine
# only. It reads the runs of `make study` and trains nothing: missing ones are named first. The
# template evitvid (evitvid/explorer/jupyter/voila/templates/) is Voila's lab template without the
# stylesheets it links from a CDN: the page asks for nothing outside this machine.
explore: setup
	@test -x $(VENV)/bin/voila || { echo "explore: voila is not installed in $(VENV) (it is pinned in pyproject.toml: rerun make setup)"; exit 2; }
	@$(PY) -c 'import sys; from evitvid.explorer import check_inputs; sys.exit(check_inputs("$(PROFILES)/cpu.yaml"))'
	@echo "== prediction explorer: open http://127.0.0.1:$(PORT)/ in a browser (ready a few seconds after it opens; Ctrl+C stops the server)"
	JUPYTER_PATH=$(CURDIR)/evitvid/explorer/jupyter$${JUPYTER_PATH:+:$$JUPYTER_PATH} \
		$(VENV)/bin/voila book/05_explorer.ipynb --template=evitvid --no-browser --Voila.ip=127.0.0.1 --port=$(PORT) \
		--Voila.port_retries=0 --show_tracebacks=True

clean-book:
	rm -rf book/_build
