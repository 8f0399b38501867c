# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast bench clean

# torchattacks (test-only cross-check) and clean-fid (FID: only its torchvision-free Inception and
# resize modules are used) go in without deps: their torchvision cannot import beside the CPU wheel.
# torch: the CPU wheel (2.13.0, on disk on the project's machines) unless a GPU is present.
$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install -q 'torch<=2.14.1'; \
	else $(BIN)/pip install -q torch==2.13.0; fi
	$(BIN)/pip install -q -e '.[train,study,dev]'
	$(BIN)/pip install -q --no-deps torchattacks==3.5.1 clean-fid==0.1.35
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/robustscale demo

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: install
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) demo-out test-artifacts
