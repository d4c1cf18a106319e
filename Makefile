# The two commands of the quick start, and the steps they share.
#   make serve   run Ostinato on its embedded default (SQLite file, in-process broker)
#   make test    run the whole test suite (PostgreSQL and Redis tests skip locally when absent)
# Both create .venv and install the locked dependencies first (uv, from PyPI).

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: serve test install bench clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "uv>=0.13,<0.14"
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python -r requirements.lock
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/ostinato serve --load examples/jobs.json

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis ostinato.db
