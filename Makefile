# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Each creates or updates the virtual environment .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# On a machine without an NVIDIA GPU, pin the CPU wheel of torch first so that the
# project's `torch>=2.4` requirement is already met and no multi-GB CUDA build is pulled.
TORCH_PIN := $(shell command -v nvidia-smi >/dev/null 2>&1 && echo "torch" || echo "torch==2.13.0")
DEMO_OUT ?= demo-out

.PHONY: venv demo test bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_PIN)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/rankkit demo --out $(DEMO_OUT)

test: venv
	$(BIN)/python -m pytest -q

bench: venv
	for b in analysis/benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_OUT) build dist *.egg-info
