# Two entry points for newcomers:
#   make demo   creates .venv, installs the package, runs motion transfer on the bundled sample
#   make test   creates .venv, installs the package with its test tools, runs the test suite
#   make test-fast   the same without the long end-to-end tests (marked slow), for quick checks
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast install lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch/torchvision first, pinned, so pip never pulls a different multi-GB build.
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e ".[dev,onnx]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" bash samples/demo.sh

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -n 2 --durations=10

lint: $(STAMP)
	$(BIN)/ruff check vid2vid_app tests bench samples
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) demo_out .pytest_cache
