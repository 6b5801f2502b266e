# The README's two commands: `make demo` and `make test`. Both set up .venv first.
VENV  ?= .venv
STORE ?= .kgchat-demo
PYTHON ?= python3

.PHONY: demo test setup system-deps bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	# The CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/kgchat --store $(STORE) demo

system-deps:
	./.ci/install-system-deps

test: $(VENV)/.installed system-deps
	$(VENV)/bin/python -m pytest -q

bench: $(VENV)/.installed
	$(VENV)/bin/python -m bench.store

clean:
	rm -rf $(STORE) .pytest_cache
