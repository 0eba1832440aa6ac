# `make demo` runs the main job, `make test` the tests; each creates .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-matrix bench-targets clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	rm -rf *.egg-info  # stale metadata beside the sources would shadow the installed entry points
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/zoo list 'resnet*'
	$(BIN)/zoo info resnet50
	$(BIN)/zoo build resnet50+cls10 --freeze=layer4

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

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
