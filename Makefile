# minsheng: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
export MINSHENG_DATABASE_URL ?= sqlite:///var/minsheng.db

.PHONY: demo test lint install lock lock-upgrade serve seed screenshots bench clean

# Installs exactly the versions in requirements.lock (what CI tested, checked by hash), then the project itself.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.lock
	$(PIP) install -q --no-deps -e .
	@$(PIP) check >/dev/null || { $(PIP) check; echo "requirements.lock does not satisfy pyproject.toml: run 'make lock'"; exit 1; }
	touch $(STAMP)

install: $(STAMP)

# Re-resolve requirements.lock from pyproject.toml (runtime + test + dev extras, Python 3.11 on Linux, with
# hashes), keeping the pinned versions that still fit; `make lock-upgrade` moves every pin to the newest release.
# requirements-runtime.lock is its runtime part (same versions), for production installs (docs/DEPLOY.md).
LOCK_ARGS = --python-version 3.11 --python-platform linux --generate-hashes --custom-compile-command 'make lock' -q
LOCK_CMD = $(VENV)/bin/uv pip compile pyproject.toml --extra test --extra dev $(LOCK_ARGS) -o requirements.lock
RUNTIME_LOCK_CMD = $(VENV)/bin/uv pip compile pyproject.toml -c requirements.lock $(LOCK_ARGS) \
	-o requirements-runtime.lock

$(VENV)/bin/uv:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q uv

lock: $(VENV)/bin/uv
	$(LOCK_CMD)
	$(RUNTIME_LOCK_CMD)

lock-upgrade: $(VENV)/bin/uv
	$(LOCK_CMD) --upgrade
	$(RUNTIME_LOCK_CMD)

demo: $(STAMP)
	$(VENV)/bin/minsheng demo seed --if-empty
	$(VENV)/bin/minsheng serve --host 127.0.0.1 --port 8000

seed: $(STAMP)
	$(VENV)/bin/minsheng demo seed --reset

serve: $(STAMP)
	$(VENV)/bin/minsheng serve --host 127.0.0.1 --port 8000

# Browser tests need Debian's chromium, and screenshots and PDF reports need a Chinese font (fonts-noto-cjk);
# PDF reports (WeasyPrint) need Pango (libpangoft2-1.0-0): a fresh machine has none of them. Install what
# is missing when we are allowed to.
chromium:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	  dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing="$$missing fonts-noto-cjk"; \
	  dpkg -s libpangoft2-1.0-0 >/dev/null 2>&1 || missing="$$missing libpangoft2-1.0-0"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	    else echo "missing:$$missing (sudo apt-get install$$missing): browser tests skip or show empty boxes"; fi; fi

test: $(STAMP) chromium
	$(VENV)/bin/pytest -q -n 2 --dist loadfile --durations=40

lint: $(STAMP)
	$(VENV)/bin/ruff check minsheng tests bench
	$(VENV)/bin/ruff format --check minsheng tests bench
	$(VENV)/bin/mypy minsheng
	$(VENV)/bin/lint-imports --no-cache

screenshots: $(STAMP) chromium
	$(PY) -m tests.e2e.screenshots

bench: $(STAMP)
	$(PY) bench/intake.py --quick

clean:
	rm -rf $(VENV) var
