# The two commands: `make demo` (set up, run the gateway on its embedded demo)
# and `make test` (set up, run the whole test suite). Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup browser lint bench clean lock

demo: $(STAMP)
	$(VENV)/bin/spikegate serve

test: $(STAMP) browser
	$(PY) -m pytest

setup: $(STAMP)

# Headless Chromium for the dashboard test (tests/service/test_dashboard.py skips
# without it): Debian's packages, installed when running as root and missing.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "browser: chromium + chromium-driver missing (not root): the dashboard test skips"; \
	  fi; \
	fi

# Peers (reference decoders and frameworks) are test oracles only: the
# `peers` extra. torch is pinned to the CPU build first so nothing pulls CUDA.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0 torchvision==0.28.0
	$(PY) -m pip install --quiet -e '.[dev,peers,bench]'
	# Sinabs (peer of the sinabs profile) pins nir<=1.0.4 and its chip SDK (samna);
	# its layers and NIR importer need neither, so it goes in without its pins.
	$(PY) -m pip install --quiet --no-deps sinabs==3.1.3 pbr==7.1.3
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy spikegate drivers models service

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# Pin the image's runtime dependencies from a clean venv of the package alone.
lock:
	rm -rf /tmp/spikegate-lock && $(PYTHON) -m venv /tmp/spikegate-lock
	/tmp/spikegate-lock/bin/pip install --quiet .
	(echo "# Runtime dependencies of the image, pinned: regenerate with \`make lock\`."; \
	 /tmp/spikegate-lock/bin/pip freeze --exclude spikegate) > deploy/requirements.lock
