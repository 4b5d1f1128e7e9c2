# paysync: the two commands of the README, and what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# test files run in this many pytest-xdist workers sharing one broker; 0 runs them in one process
TEST_WORKERS ?= 3

.PHONY: demo test bootstrap jars kafka-start kafka-stop lint clean stripe-mock

demo: bootstrap jars
	$(BIN)/paysync demo

test: bootstrap jars stripe-mock
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

bootstrap: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

jars: bootstrap
	$(BIN)/python -c "from ops.broker import BrokerConfig, ensure_jars; print('kafka jars in', ensure_jars(BrokerConfig().jars_dir))"

kafka-start: jars
	$(BIN)/paysync kafka start

kafka-stop: bootstrap
	$(BIN)/paysync kafka stop

lint: bootstrap
	$(BIN)/lint-imports
	$(BIN)/mypy

clean:
	-$(BIN)/paysync kafka stop
	rm -rf .paysync

# Stripe's official mock (OpenAPI-driven; API version 2026-08-26.dahlia), pinned, for tests/stripe_mock.
STRIPE_MOCK_VERSION := v0.203.0
STRIPE_MOCK_GOPATH ?= $(HOME)/.cache/paysync/go

stripe-mock:
	@command -v go >/dev/null || { echo "go not found: the stripe-mock contract tests will skip"; exit 0; }; \
	test -x $(STRIPE_MOCK_GOPATH)/bin/stripe-mock || GOPATH=$(STRIPE_MOCK_GOPATH) GOFLAGS=-modcacherw go install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)
	@echo "stripe-mock in $(STRIPE_MOCK_GOPATH)/bin"
