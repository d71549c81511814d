# The whole set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch==2.13.0 first: a CPU build that this machine keeps on local disk; an unpinned torch
# would pull a multi-GB CUDA build. pyproject.toml only asks for torch>=2.4.
# constraints.txt: the versions CI passed with, so a new release upstream (Beam 2.78 tightened
# type-hint checks) cannot turn main red overnight; the code is kept working on the newest too.
TORCH ?= torch==2.13.0

.PHONY: demo test test-shared lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -c constraints.txt -e ".[pipeline,pretrain,report,gcp,dask,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m bertprep.demo --output demo-run

# test: everything that runs on the repo alone (the data it needs is bundled under corpus/).
# test-shared: the tests marked `shared`, which read the full ../shared/corpora beside the clone.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not shared"

test-shared: $(STAMP)
	@test -d ../shared/corpora || { echo "make test-shared needs ../shared/corpora beside the clone" >&2; exit 1; }
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m shared

lint: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) demo-run build dist *.egg-info
