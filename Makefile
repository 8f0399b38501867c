# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install data demo test bench clean

# Fashion-MNIST comes from Debian's dataset-fashion-mnist package; DATA_DIR=... uses a folder of
# its idx files instead (`make demo DATA_DIR=~/fashion-mnist`).
FASHION_MNIST := /usr/share/datasets/fashion-mnist
DATA_DIR ?=

# torchattacks (test-only cross-check), clean-fid (FID: only its torchvision-free Inception and
# resize modules are used) and robustbench (test-only: its DMWideResNet module, loaded from its file, takes
# our exported checkpoints strictly) go in without deps: their torchvision cannot import beside the CPU wheel.
# torch: the CPU wheel (2.13.0, on disk on the project's machines) unless a GPU is present.
$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install -q 'torch<=2.14.1'; \
	else $(BIN)/pip install -q torch==2.13.0; fi
	$(BIN)/pip install -q -e '.[train,study,dev]'
	$(BIN)/pip install -q --no-deps torchattacks==3.5.1 clean-fid==0.1.35 robustbench==1.1.1
	touch $(STAMP)

install: $(STAMP)

# Checked before the (slow) install, so a machine without the data stops within seconds: as root
# on Debian the package is installed, otherwise one line says what to run.
data:
ifeq ($(DATA_DIR),)
	@if ! ls $(FASHION_MNIST)/train-images-idx3-ubyte* >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Fashion-MNIST: apt-get install dataset-fashion-mnist"; \
	    apt-get update -q && apt-get install -y -q dataset-fashion-mnist; \
	  else \
	    echo "error: Fashion-MNIST is not installed: run 'sudo apt-get install dataset-fashion-mnist', or pass a folder of its idx files: make demo DATA_DIR=DIR (robustscale demo --data-dir DIR)" >&2; \
	    exit 2; \
	  fi; \
	fi
endif

demo: data install
	$(BIN)/robustscale demo $(if $(DATA_DIR),--data-dir $(DATA_DIR))

test: data install
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: install
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) demo-out test-artifacts
