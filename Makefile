# `make demo` runs the main job, `make test` the tests; each creates .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-matrix bench-targets gpu-check clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	rm -rf *.egg-info  # stale metadata beside the sources would shadow the installed entry points
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

DEMO ?= build/demo

# The main job in a minute or two on 2 cores: list, build, fine-tune on an image folder, evaluate, predict.
demo: $(STAMP)
	$(BIN)/zoo list 'resnet*'
	$(BIN)/zoo build resnet18+cls2 --freeze=layer3 --img-size 64
	$(BIN)/python examples/draw_shapes.py $(DEMO)/shapes --per-class 48 --size 64
	$(BIN)/zoo train resnet18+cls2 $(DEMO)/shapes -o $(DEMO)/shapes.safetensors --force \
		--freeze layer3 --img-size 64 --epochs 3 -b 16 --lr 0.01 --fast
	$(BIN)/zoo eval $(DEMO)/shapes.safetensors $(DEMO)/shapes --out $(DEMO)
	$(BIN)/zoo predict $(DEMO)/shapes.safetensors '$(DEMO)/shapes/val/red/*.png' --top-k 1

# pytest exits 5 when it collects nothing: that is a broken suite, reported as such.
test: $(STAMP)
	@$(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: $(STAMP)
	$(BIN)/python benchmarks/startup.py

bench-matrix: $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,bench]'
	$(BIN)/python benchmarks/run_matrix.py

bench-targets: $(STAMP)
	$(BIN)/python benchmarks/targets.py

# On a machine with a GPU, with the torch found there (no venv): zoo installed beside it without its
# dependencies, then the CUDA tests and the GPU benchmarks (benchmarks/gpu_check.py) in about six minutes.
# On a CPU, `make gpu-check GPU_CHECK_ARGS="--device cpu --quick"` checks the script itself.
GPU_SITE ?= build/gpu-site
gpu-check:
	$(PYTHON) -m pip install --quiet --no-deps --no-build-isolation --upgrade --target $(GPU_SITE) .
	PYTHONPATH=$(abspath $(GPU_SITE)) $(PYTHON) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
