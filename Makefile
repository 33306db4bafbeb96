# Two entry points (README): `make run` (the main job) and `make test` (the whole suite).
# Both do all the set-up first and are idempotent: stamps skip work already done.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .stamps
APT_PACKAGES := iproute2 busybox isc-dhcp-client kea-dhcp4-server dnsutils tcpdump curl \
                snmp snmpd ser2net openssh-server openssh-client socat chromium dnsmasq-base \
                fonts-dejavu-core sip-tester
# chromium + fonts-dejavu-core: `hil report pdf` prints the HTML report to a searchable PDF.
# sip-tester: SIPp, the independent SIP peer of the check-sync tests (sim agent and client).
# `make test` leaves out tests marked slow (soaks: the 100,000-packet fuzz, the 500-case
# exploration, competing labgrid runs...); `make test-slow` runs those, `make test-all` both.
PYTEST_ARGS ?=
PYTEST_MARK ?= not slow

.PHONY: setup run test test-slow test-all soak lint
setup: $(STAMPS)/apt $(STAMPS)/venv $(STAMPS)/allure $(STAMPS)/labgrid

$(STAMPS):
	mkdir -p $(STAMPS)

$(STAMPS)/apt: Makefile | $(STAMPS)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@command -v npm >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends nodejs npm; }
	touch $@

$(STAMPS)/venv: pyproject.toml | $(STAMPS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# The Allure HTML report generator (npm package `allure`, 3.x), local to the checkout.
$(STAMPS)/allure: $(STAMPS)/apt | $(STAMPS)
	test -x .tools/node_modules/.bin/allure || \
	  npm install --prefix .tools --no-audit --no-fund --loglevel=error allure@3
	touch $@

# labgrid (lab scale) in a virtual environment of its own: it replaces pyserial with its fork.
$(STAMPS)/labgrid: | $(STAMPS)
	test -x .venv-labgrid/bin/labgrid-client || { python3 -m venv .venv-labgrid && \
	  .venv-labgrid/bin/pip install -q 'labgrid==26.0.1'; }
	touch $@

lint: setup
	$(VENV)/bin/ruff check framework tests testcases benchmarks conftest.py
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache --no-logo

# The whole test suite. pytest's exit code 5 (nothing collected) is a failure of intent.
test: setup lint
	@$(PY) -m pytest tests -m "$(PYTEST_MARK)" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; \
	exit $$rc

test-slow:
	$(MAKE) test PYTEST_MARK="slow"

test-all:
	$(MAKE) test PYTEST_MARK=""

# The flakiness soak alone: 200 consecutive faithful cases, 0 failed and 0 broken.
soak: setup
	$(PY) -m pytest tests/faults/test_soak.py -m slow -s

# The main job: the full case matrix on the simulated rig.
run: setup
	$(VENV)/bin/hil run
