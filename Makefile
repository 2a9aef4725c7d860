# kpipe: `make help` lists every target and variable.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO   ?= cargo
PREFIX  ?= /usr/local
VENV    ?= .venv
TOOLS   := envsplit secretgen manifest-gen kapply certwait
ENV     ?= examples/polls/env  ## env file for config/render/deploy
APP     ?= polls               ## app name (object names derive from it)
NAMESPACE ?=                   ## target namespace (default: the context's)

export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/target/release:$(PATH)

.PHONY: help build test test-deps install bench config lint fmt

help: ## list targets and variables
	@echo "kpipe targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-14s %s\n", $$1, $$2}'
	@echo "variables:"
	@grep -E '^[A-Z]+ +\?=.*## ' $(MAKEFILE_LIST) | sed -E 's/ +\?= *([^#]*)## (.*)/\t\1\t\2/' | awk -F'\t' '{printf "  %-10s %-22s %s\n", $$1, $$2, $$3}'

build: ## build the release binaries into target/release
	$(CARGO) build --release --workspace --bins

$(VENV)/.ok: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

test-deps: $(VENV)/.ok ## install what the tests need (Python: PyYAML, kubernetes-validate)

test: test-deps ## build everything and run all tests (what CI runs)
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-fail-fast

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

install: build ## install the tools into $(PREFIX)/bin
	install -d $(DESTDIR)$(PREFIX)/bin
	for t in $(TOOLS); do install -m 0755 target/release/$$t $(DESTDIR)$(PREFIX)/bin/; done

config: build ## envsplit | secretgen on ENV: the ConfigMap and Secret
	envsplit --app $(APP) $(if $(NAMESPACE),--namespace $(NAMESPACE)) $(ENV) | secretgen --show

bench: build test-deps ## run every benchmark (ratios against kubectl, same run)
	@for b in bench/*.sh; do bash "$$b"; done
