# The two commands of the README:
#   make study   set everything up, run every notebook of the study with papermill on the
#                embedded dataset (outputs saved in place), then build the book
#   make test    set everything up, then run the test suite (what .ci/run calls)
# Set-up is idempotent: a rerun only reinstalls when pyproject.toml or constraints.txt changed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist

NOTEBOOKS := 00_data 01_frame_averaging 02_image_pretraining 03_3d_inflated 04_results 05_explorer 06_performance

.PHONY: setup study notebooks book test clean-book

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

book: setup
	$(VENV)/bin/jb build book --warningiserror --keep-going

# Each notebook runs in place: its committed outputs are those of this command's last run.
# Finished runs in runs/ are reused (nothing trained twice); `rm -rf runs` to start over.
notebooks: setup
	$(PY) -m evitvid synth --preset default
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb ($$(date +%H:%M:%S))"; \
		$(VENV)/bin/papermill book/$$nb.ipynb book/$$nb.ipynb --cwd book --kernel python3 --log-output \
			--no-progress-bar || exit 1; \
	done
	@echo "== notebooks done ($$(date +%H:%M:%S))"

study: notebooks book

test: setup
	$(PY) -m pytest -q

clean-book:
	rm -rf book/_build
