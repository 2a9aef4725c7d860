# kpipe: `make help` lists every target and variable.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help

CARGO     ?= cargo
PREFIX    ?= /usr/local
VENV      ?= .venv
TOOLS     := envsplit secretgen manifest-gen kapply certwait
#> ENV=examples/polls/env	env file (the tutorial's django-polls/env)
ENV ?= examples/polls/env
#> RULES=examples/polls/split.rules	envsplit rules: which keys are config, which secret
RULES ?= examples/polls/split.rules
#> APP=polls	app name: polls-config, polls-secret, polls-app ...
APP ?= polls
#> IMAGE=docker.io/sammy/polls:latest	container image to deploy
IMAGE ?= docker.io/sammy/polls:latest
#> HOST=polls.example.com	public host name for the Ingress and certificate
HOST ?= polls.example.com
#> ISSUER=letsencrypt-staging	cert-manager ClusterIssuer
ISSUER ?= letsencrypt-staging
#> NAMESPACE=	namespace (default: the kubeconfig context's)
NAMESPACE ?=
#> REPLICAS=2	Deployment replicas
REPLICAS ?= 2
#> HPA=	MIN:MAX[:CPU%]: a HorizontalPodAutoscaler instead of fixed REPLICAS
HPA ?=
#> PDB=0	1: a PodDisruptionBudget
PDB ?= 0
#> MIGRATE=1	1: run `manage.py migrate` as a Job
MIGRATE ?= 1
#> APPLYSET=$(APP)	ApplySet parent (a Secret): deploy prunes what APP no longer has
APPLYSET ?= $(APP)
#> OUT=deploy.yaml	file written by `make render` (mode 0600)
OUT ?= deploy.yaml
#> TIMEOUT=5m	how long `kapply --wait` and `certwait` wait
#> FORCE=0	1: deploy/issuers take over fields other field managers own (--force-conflicts)
FORCE ?= 0
#> EMAIL=	Let's Encrypt account email for `make issuers`
EMAIL ?=
TIMEOUT ?= 5m
#> BIN=target/release	where the tools are run from
BIN ?= target/release

export PATH := $(CURDIR)/$(VENV)/bin:$(abspath $(BIN)):$(PATH)

NS_FLAG   := $(if $(NAMESPACE),--namespace $(NAMESPACE))
FORCE_FLAG := $(if $(filter 1,$(FORCE)),--force-conflicts)
# The tutorial's split (six settings are plain config, everything else is secret) lives
# in one rules file, shared with make demo, the benchmarks and the tests.
SPLIT     := --rules $(RULES)
GEN_FLAGS := --app $(APP) --image $(IMAGE) --host $(HOST) --issuer $(ISSUER) \
             $(if $(HPA),--hpa $(HPA),--replicas $(REPLICAS)) $(if $(filter 1,$(PDB)),--pdb) \
             $(if $(filter 1,$(MIGRATE)),--migrate) $(NS_FLAG)

# envsplit | secretgen | manifest-gen: the whole manifest set on stdout.
define RENDER
envsplit --app $(APP) $(NS_FLAG) $(SPLIT) $(ENV) \
  | secretgen --generate DJANGO_SECRET_KEY \
  | manifest-gen $(GEN_FLAGS)
endef

.PHONY: help build build-dev tools test test-deps lint fmt install completions man bench config \
        render deploy diff destroy issuers wait-cert promote demo

help: ## list targets and variables
	@echo "kpipe targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-12s %s\n", $$1, $$2}'
	@echo "variables (make TARGET VAR=value):"
	@grep -E '^#> ' $(MAKEFILE_LIST) | sed -E 's/^#> //' | awk -F'\t' '{printf "  %-40s %s\n", $$1, $$2}'

# Two cargo runs: built together, cargo would unify kpipe-core's features and link the
# kube client into the offline tools too.
build: ## build the release binaries into target/release
	$(CARGO) build --release -p envsplit -p secretgen -p manifest-gen
	$(CARGO) build --release -p kapply -p certwait -p kubesim

# The targets that run the tools take them from BIN, else from PATH (make install); a
# fresh clone builds them on first use instead of failing on a missing command.
tools:
	@for t in $(TOOLS); do command -v $$t >/dev/null || { $(MAKE) --no-print-directory build; break; }; done

$(VENV)/.ok: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

test-deps: $(VENV)/.ok ## install what the tests need (Python: PyYAML, kubernetes-validate)

# The binaries the tests and the demo run: one dev-profile build of the workspace serves
# both (the first `make demo` then `make test` compile once), in under a third of the
# CPU time of `make build`: no optimisation, one cargo run (make build needs two, and the
# second compiles the shared dependencies again with kube's features).
build-dev: ## build every binary with the dev profile into target/debug (what demo and test run)
	$(CARGO) build --workspace --bins

test: test-deps build-dev ## build everything and run all tests (what CI runs)
	$(CARGO) test --workspace --no-fail-fast

lint: ## rustfmt check and clippy (with the pedantic lints chosen in Cargo.toml) as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p kpipe-core -p envsplit -p secretgen -p manifest-gen --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

completions: build ## shell completions into target/completions/{bash,zsh,fish}
	@for t in $(TOOLS); do
	  mkdir -p target/completions/bash target/completions/zsh target/completions/fish
	  $(BIN)/$$t --completions bash > target/completions/bash/$$t
	  $(BIN)/$$t --completions zsh > target/completions/zsh/_$$t
	  $(BIN)/$$t --completions fish > target/completions/fish/$$t.fish
	done

man: build ## man pages into target/man/man1
	@mkdir -p target/man/man1
	for t in $(TOOLS); do $(BIN)/$$t --man > target/man/man1/$$t.1; done

install: build completions man ## install tools, man pages and completions under PREFIX
	@install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	  $(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	for t in $(TOOLS); do
	  install -m 0755 $(BIN)/$$t $(DESTDIR)$(PREFIX)/bin/
	  install -m 0644 target/man/man1/$$t.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	  install -m 0644 target/completions/bash/$$t $(DESTDIR)$(PREFIX)/share/bash-completion/completions/
	  install -m 0644 target/completions/zsh/_$$t $(DESTDIR)$(PREFIX)/share/zsh/site-functions/
	  install -m 0644 target/completions/fish/$$t.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/
	done

config: tools ## envsplit | secretgen on ENV: the ConfigMap and Secret (shows secrets)
	@envsplit --app $(APP) $(NS_FLAG) $(SPLIT) $(ENV) | secretgen --show

render: tools ## write the whole manifest set to OUT (0600: it holds Secrets), no cluster needed
	@umask 077
	tmp=$$(mktemp "$(OUT).XXXXXX")
	trap 'rm -f "$$tmp"' EXIT
	$(RENDER) > "$$tmp"
	mv "$$tmp" "$(OUT)"
	echo "kpipe: wrote $(OUT)" >&2

# Rendering finishes before anything is applied: a failing stage (bad env file, bad
# flag) stops the target with that stage's message and nothing reaches the cluster.
# One ApplySet per app: what the render no longer has (an HPA or PDB dropped, the
# migrate Job of an older image or config) is pruned once everything else applied.
# The certificate is waited for only once the rollout is ready: a failed rollout ends
# the target with kapply's diagnosis alone.
deploy: tools ## render, apply (server-side; NAMESPACE made if missing), prune what APP dropped, wait for the rollout (migration first), then the TLS certificate
	@umask 077
	tmp=$$(mktemp)
	live=$$(mktemp)
	trap 'rm -f "$$tmp" "$$live"' EXIT
	$(RENDER) > "$$tmp"
	kapply $(NS_FLAG) --create-namespace $(FORCE_FLAG) --applyset $(APPLYSET) --prune --wait --timeout $(TIMEOUT) -o yaml -f "$$tmp" > "$$live"
	certwait $(NS_FLAG) --timeout $(TIMEOUT) < "$$live"

diff: tools ## show what deploy would change and prune in the cluster (applies nothing)
	@umask 077
	tmp=$$(mktemp)
	trap 'rm -f "$$tmp"' EXIT
	$(RENDER) > "$$tmp"
	kapply $(NS_FLAG) --create-namespace --applyset $(APPLYSET) --prune --diff -f "$$tmp"

# The certificate's Secret is cert-manager's, outside the set: it goes too, so that
# nothing of the app is left (a new deploy then issues a new certificate).
destroy: tools ## delete everything deploy made for APP (and its certificate), and wait until gone
	@kapply $(NS_FLAG) --applyset $(APPLYSET) --delete-all
	kubectl $(NS_FLAG) delete secret $(APP)-tls --ignore-not-found --wait

# Issuers made by hand (another email, another ACME account key) are taken over only
# with FORCE=1: kapply refuses first, naming what would change.
issuers: tools ## apply the letsencrypt-staging and letsencrypt-prod ClusterIssuers (needs EMAIL=you@example.com)
	@test -n "$(EMAIL)" || { echo "make issuers: set EMAIL=you@example.com (Let's Encrypt account)" >&2; exit 2; }
	manifest-gen --cluster-issuers "$(EMAIL)" </dev/null | kapply --wait $(FORCE_FLAG) --timeout $(TIMEOUT)

wait-cert: tools ## wait for the certificate of APP's Ingress
	@certwait $(NS_FLAG) --timeout $(TIMEOUT) $(APP)-tls

promote: ## switch the Ingress to letsencrypt-prod and wait again (the tutorial's last step)
	@$(MAKE) --no-print-directory deploy ISSUER=letsencrypt-prod

demo: ## everything, locally: simulator + the whole deploy pipeline (no cluster needed)
	@bash scripts/demo.sh

bench: build test-deps ## run every benchmark (ratios against kubectl, same run) as one table
	@echo "| benchmark | kpipe | kubectl | kpipe/kubectl | notes |"
	echo "|---|---|---|---|---|"
	for b in bench/*.sh; do BIN=$(BIN) bash "$$b"; done
