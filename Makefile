# Two commands on a fresh machine: `make demo` runs the main job, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/perkrank demo

test: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/pytest

clean:
	rm -rf $(VENV) var build *.egg-info
