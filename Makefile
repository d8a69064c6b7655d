# Imier: the README's commands. Every target sets up what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-fast demo bench fuzz lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not integration and not slow"

demo: $(STAMP)
	$(BIN)/python -m imier.demo

bench: $(STAMP)
	$(BIN)/python -m bench.run

fuzz: $(STAMP)
	IMIER_FUZZ_EXAMPLES=100000 $(BIN)/python -m pytest -q -p no:cacheprovider --timeout=0 tests/test_fuzz.py
	@if $(BIN)/python -c "import atheris" 2>/dev/null; then \
		$(BIN)/python tests/fuzz_atheris.py -atheris_runs=100000; \
	else echo "atheris is not installed: coverage-guided fuzzing skipped ($(BIN)/pip install atheris)"; fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy --strict src/imier

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
