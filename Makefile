# Two commands on a fresh clone:
#   make run    install the gateway into .venv and serve it with gunicorn
#   make test   install it with the test tools and run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test bench schemas clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip setuptools wheel

$(VENV)/.run-installed: $(BIN)/python setup.cfg setup.py
	$(BIN)/python -m pip install -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.run-installed tests/js/package-lock.json | system-tools
	$(BIN)/python -m pip install -e '.[test,matrix]'
	cd tests/js && npm ci --no-audit --no-fund
	# instructor pins jiter<0.15, which would hold the openai SDK above back by
	# dozens of releases: it gets a venv of its own (tests/integration/instructor_probe.py).
	$(PYTHON) -m venv $(VENV)/instructor
	$(VENV)/instructor/bin/python -m pip install -q 'instructor>=1.7'
	touch $@

# What the integration tests run for real, as command:Debian-package pairs.
# Checked on every `make test`; the missing ones are installed with apt-get when
# we may (root, or sudo without a password), else named here and the tests that
# need them fail naming them too.
SYSTEM_TOOLS := nginx:nginx systemd-analyze:systemd wrk:wrk redis-server:redis-server tinyproxy:tinyproxy openssl:openssl chromium:chromium

.PHONY: system-tools
system-tools:
	@PATH="$$PATH:/usr/sbin:/sbin"; missing=; \
	for pair in $(SYSTEM_TOOLS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	[ -n "$$missing" ] || exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "make: not root and no password-less sudo; please apt-get install$$missing" >&2; exit 0; fi; \
	command -v apt-get >/dev/null 2>&1 || { echo "make: no apt-get; please install$$missing" >&2; exit 0; }; \
	echo "make: apt-get install$$missing"; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends$$missing >/dev/null

run: $(VENV)/.run-installed
	$(BIN)/gunicorn -c deploy/gunicorn.conf.py ollama_gateway.wsgi:app

# The oldest Python the package admits, for tox's "oldest" environment (the
# dependency matrix in setup.cfg): python3.8 on PATH, else one under pyenv.
PYTHON_OLDEST ?= $(shell for p in $$(command -v python3.8) $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.8*/bin/python3.8; do \
	"$$p" -c "" >/dev/null 2>&1 && echo "$$p" && break; done)

# The suite on the newest dependencies (.venv), then on the oldest ones.
test: $(VENV)/.test-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(BIN)/tox -e oldest $(if $(PYTHON_OLDEST),--discover $(PYTHON_OLDEST)) -- $(PYTEST_ARGS)

# The benchmark (tests/perf/, about two minutes): the gateway under
# gunicorn with the deploy config against a fast fake Ollama, driven by wrk.
# Prints a Markdown table; all figures go to build/perf/bench.json, a plot of them to build/perf/bench.svg.
# Options: make bench BENCH_ARGS="--duration 3 --out path.json"
BENCH_ARGS ?=
bench: $(VENV)/.run-installed
	@$(MAKE) --no-print-directory system-tools SYSTEM_TOOLS=wrk:wrk
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python tests/perf/bench.py $(BENCH_ARGS)

# Regenerate the bundled schemas from OpenAI's spec: make schemas SPEC=path/to/openapi.yaml
schemas: $(BIN)/python
	$(BIN)/python -m pip install -e '.[schemagen]'
	$(BIN)/python schemas/generate.py $(SPEC)

clean:
	rm -rf $(VENV) .tox build dist app/*.egg-info
