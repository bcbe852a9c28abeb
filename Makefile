# Two commands on a fresh clone:
#   make run    install the gateway into .venv and serve it with gunicorn
#   make test   install it with the test tools and run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test schemas clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip setuptools wheel

$(VENV)/.run-installed: $(BIN)/python setup.cfg setup.py
	$(BIN)/python -m pip install -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.run-installed
	$(BIN)/python -m pip install -e '.[test]'
	touch $@

run: $(VENV)/.run-installed
	$(BIN)/gunicorn -c deploy/gunicorn.conf.py ollama_gateway.wsgi:app

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Regenerate the bundled schemas from OpenAI's spec: make schemas SPEC=path/to/openapi.yaml
schemas: $(BIN)/python
	$(BIN)/python -m pip install -e '.[schemagen]'
	$(BIN)/python schemas/generate.py $(SPEC)

clean:
	rm -rf $(VENV) build dist app/*.egg-info
