# neuromod: one command to set up and run.  `make test` and `make demo` build .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo bench lint venv clean docs

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: the pinned CPU wheel; an unpinned torch would resolve a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev,dask,docs]"
	touch $(STAMP)

NOTEBOOKS := $(wildcard notebooks/*.ipynb)

# two worker processes (pytest-xdist), each test file whole on one worker: the suite is CPU-bound and brian2
# compiles per worker (own cache directory), so two workers roughly halve the wall time on 2 cores
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --maxprocesses=2 --dist loadfile --durations=15 --doctest-modules \
		tests neuromod $(if $(NOTEBOOKS),--nbmake $(NOTEBOOKS))

demo: $(STAMP)
	$(BIN)/neuromod run task-switching --overwrite

# the documentation site: HTML in docs/_build/html (the notebooks executed in quick mode; warnings are errors)
docs: $(STAMP)
	NEUROMOD_QUICK=1 $(BIN)/sphinx-build -b html -W --keep-going docs docs/_build/html

bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check neuromod tests benchmarks analysis
	$(BIN)/ruff format --check neuromod tests benchmarks analysis

clean:
	rm -rf $(VENV) build *.egg-info docs/_build docs/api/generated docs/notebooks docs/jupyter_execute
