# kpipe: `make help` lists every target and variable.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help

CARGO     ?= cargo
PREFIX    ?= /usr/local
VENV      ?= .venv
TOOLS     := envsplit secretgen manifest-gen kapply certwait
#> APP=polls	app name: polls-app, polls-config-<hash>, polls-secret-<hash> ...
APP ?= polls
#> NAMESPACE=	namespace (default: the kubeconfig context's)
NAMESPACE ?=
# Each app and namespace keeps its deploy settings in a file the user commits, as helm
# values files or kustomize overlays are: `make deploy` writes it after each successful
# deploy, every target reads it, and a variable on the command line overrides it
# (README, "Day 2"). It holds no secret values: ENV is a path.
#> SETTINGS=deploy/APP[.NAMESPACE].mk	the app's kept settings (commit it): written by deploy, read by every target
SETTINGS ?= deploy/$(APP)$(if $(NAMESPACE),.$(NAMESPACE)).mk
-include $(SETTINGS)
#> ENV=	env file (required on the first deploy; the tutorial's template: examples/polls/env)
ENV ?=
#> RULES=examples/polls/split.rules	envsplit rules: which keys are config, which secret
RULES ?= examples/polls/split.rules
#> IMAGE=	container image to deploy (required on the first deploy)
IMAGE ?=
#> FORMAT=	env file format: docker (every value as written, a Django key with `$` too); default dotenv
FORMAT ?=
#> HOST=	public host name(s) for the Ingress and its one certificate, a,b for several (required on the first deploy)
HOST ?=
#> ISSUER=letsencrypt-staging	cert-manager ClusterIssuer (`make promote`: letsencrypt-prod)
ISSUER ?= letsencrypt-staging
#> IMAGE_PULL_SECRET=	Secret (kubernetes.io/dockerconfigjson) the pods pull IMAGE with
IMAGE_PULL_SECRET ?=
#> DOCKER_CONFIG_FILE=	docker config.json to make IMAGE_PULL_SECRET (default APP-registry) from in the render; pruned once unset and no pod uses it
DOCKER_CONFIG_FILE ?=
#> REPLICAS=2	Deployment replicas
REPLICAS ?= 2
#> HPA=	MIN:MAX[:CPU%]: a HorizontalPodAutoscaler instead of fixed REPLICAS
HPA ?=
#> PDB=0	1: a PodDisruptionBudget
PDB ?= 0
#> MIGRATE=1	1: run `manage.py migrate` as a Job
MIGRATE ?= 1
#> GENERATE=DJANGO_SECRET_KEY	secret keys generated once when empty in ENV, then kept (`make rotate KEY=...`)
GENERATE ?= DJANGO_SECRET_KEY
#> APPLYSET=$(APP)	ApplySet parent (a Secret): deploy prunes what APP no longer has
APPLYSET ?= $(APP)
#> OUT=deploy.yaml	file written by `make render` (mode 0600)
OUT ?= deploy.yaml
#> TIMEOUT=5m	how long `kapply --wait` and `certwait` wait
#> FORCE=0	1: deploy/issuers take over fields other field managers own (--force-conflicts)
FORCE ?= 0
#> ATOMIC=1	0: a failed deploy stays in place instead of rolling back to the last good release
ATOMIC ?= 1
#> REVISION=	`make rollback`: the release to return to (default: the one before the current)
REVISION ?=
#> EMAIL=	Let's Encrypt account email for `make issuers`
EMAIL ?=
TIMEOUT ?= 5m
#> TAIL=100	lines per pod shown by `make logs` (FOLLOW=1: keep following)
TAIL ?= 100
FOLLOW ?=
#> BIN=target/release	where the tools are run from
BIN ?= target/release

export PATH := $(CURDIR)/$(VENV)/bin:$(abspath $(BIN)):$(PATH)

NS_FLAG   := $(if $(NAMESPACE),--namespace $(NAMESPACE))
FORCE_FLAG := $(if $(filter 1,$(FORCE)),--force-conflicts)
# Every deploy is a release of the set (kapply --release): recorded with what it ran, its
# config versions kept for a rollback; a failed one is undone unless ATOMIC=0.
RELEASE_FLAGS := --release $(if $(filter 0,$(ATOMIC)),,--atomic)
# The tutorial's split (six settings are plain config, everything else is secret) lives
# in one rules file, shared with make demo, the benchmarks and the tests.
SPLIT     := --rules $(RULES) $(if $(FORMAT),--format $(FORMAT))
PULL_SECRET := $(or $(IMAGE_PULL_SECRET),$(if $(DOCKER_CONFIG_FILE),$(APP)-registry))
GEN_FLAGS := --app $(APP) --image $(IMAGE) --host $(HOST) --issuer $(ISSUER) \
             $(if $(HPA),--hpa $(HPA),--replicas $(REPLICAS)) $(if $(filter 1,$(PDB)),--pdb) \
             $(if $(filter 1,$(MIGRATE)),--migrate) $(NS_FLAG) \
             $(if $(PULL_SECRET),--image-pull-secret $(PULL_SECRET))

# The settings a render cannot guess: named on an app's first deploy, kept in SETTINGS
# after it. Checked before anything is rendered or read from the cluster.
define REQUIRE
missing="$(strip $(foreach v,$(1),$(if $($(v)),,$(v))))"
if [[ -n $$missing ]]; then
  echo "make $@: no $${missing// /, } for APP=$(APP)$(if $(NAMESPACE), NAMESPACE=$(NAMESPACE)), and no $(SETTINGS) to keep them: name them on the first deploy, e.g." >&2
  echo "  make deploy APP=$(APP)$(if $(NAMESPACE), NAMESPACE=$(NAMESPACE)) ENV=examples/polls/env IMAGE=docker.io/you/polls:v1 HOST=polls.your-domain.com" >&2
  echo "(a successful deploy keeps them in $(SETTINGS); later deploys need only what changes)" >&2
  exit 2
fi
endef

# Generated secrets are made once per app: the live Secret is their source of truth (as
# helm's `lookup`), read into a 0600 file ($$kept, never a terminal) that secretgen keeps
# them from; ROTATE (`make rotate`) makes one anew. The config is versioned by content
# (APP-secret-<hash>), so the live Secret is the one the live Deployment reads (its
# envFrom secretRef): a failed release's newer version is never it; no Deployment yet
# (the first deploy) keeps nothing. $(1) is what to do when the cluster cannot be read:
# deploy stops rather than replace a key that may well be live. $$why, for $(1), is
# kubectl's last line (its client-go log lines before it say nothing more).
define FETCH_KEPT
live_secrets=
err=$$(mktemp)
if [[ -n "$(GENERATE)" ]] && ! live_secrets=$$(kubectl $(NS_FLAG) get deployment $(APP)-app --ignore-not-found -o jsonpath='{.spec.template.spec.containers[?(@.name=="$(APP)")].envFrom[*].secretRef.name}' 2>"$$err"); then
  why=$$(tail -n 1 "$$err"); rm -f "$$err"
  $(1)
elif [[ -n $$live_secrets ]] && ! kubectl $(NS_FLAG) get secret $$live_secrets -o yaml --ignore-not-found > "$$kept" 2>"$$err"; then
  why=$$(tail -n 1 "$$err"); rm -f "$$err"
  $(1)
fi
rm -f "$$err"
endef

# envsplit | secretgen | manifest-gen: the whole manifest set on stdout, the ConfigMap and
# Secret as immutable versions named by content (APP-config-<hash>): a release never
# writes what the running pods read, so a failed one leaves them as they were.
define RENDER
envsplit --app $(APP) $(NS_FLAG) $(SPLIT) $(ENV) \
  | secretgen $(foreach k,$(GENERATE),--generate $(k)) --keep-from "$$kept" $(foreach k,$(ROTATE),--rotate $(k)) \
      $(if $(DOCKER_CONFIG_FILE),--docker-config "$(DOCKER_CONFIG_FILE)" --name $(PULL_SECRET) $(NS_FLAG)) \
  | manifest-gen $(GEN_FLAGS) --versioned-config
endef

# What SETTINGS keeps: every variable that changes the render (not the secrets' values).
KEPT_VARS := ENV RULES FORMAT IMAGE HOST ISSUER REPLICAS HPA PDB MIGRATE GENERATE APPLYSET \
             IMAGE_PULL_SECRET DOCKER_CONFIG_FILE

define SAVE_SETTINGS
mkdir -p "$(dir $(SETTINGS))"
{
  echo "# kpipe deploy settings of app $(APP)$(if $(NAMESPACE), in namespace $(NAMESPACE)), written by \`make deploy\`"
  echo "# after each successful deploy: commit this file. A variable given to make overrides it."
  $(foreach v,$(KEPT_VARS),printf '%s := %s\n' '$(v)' '$($(v))'
  )
} > "$(SETTINGS).tmp"
mv "$(SETTINGS).tmp" "$(SETTINGS)"
endef

.PHONY: help build build-dev tools test test-deps lint fmt install completions man bench config \
        render deploy diff destroy issuers wait-cert promote rotate history rollback status logs demo

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
# both (the first `make demo` then `make test` compile once). It builds the tests too:
# with them, cargo turns on the dev-dependencies' features (tokio's test-util, tempfile's
# rustix) in the shared dependencies, so binaries built without them would be built
# again for the tests, tokio, hyper and kube with them. The dev profile optimises the
# dependencies and kubesim (Cargo.toml says why).
build-dev: ## build every binary and test with the dev profile into target/debug (what demo and test run)
	$(CARGO) build --workspace --all-targets

# Most of the binary-level tests wait rather than compute: on a simulated cluster's
# delays (a rollout, an issuance, an outage, a --timeout), on kubectl and the tools
# starting. Run two at a time (cargo's default on 2 cores), the CPU idles for half the
# run; six at a time keep it busy (measured on 2 cores: 133 s -> 77 s for tests/main.rs)
# and no test depends on timing (each waits for the event it needs, bounded by a
# generous limit), so more at once only makes each slower, not flaky. For the same
# reason scripts/test.sh runs the test executables side by side, not one after another.
#> TEST_THREADS=6	tests run at once by each test executable (cargo's default is one per core)
TEST_THREADS ?= 6

test: test-deps build-dev ## build everything and run all tests (what CI runs)
	RUST_TEST_THREADS=$(TEST_THREADS) CARGO=$(CARGO) scripts/test.sh

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
	@$(call REQUIRE,ENV)
	envsplit --app $(APP) $(NS_FLAG) $(SPLIT) $(ENV) | secretgen --show

render: tools ## write the whole manifest set to OUT (0600: it holds Secrets); reads generated secrets from the cluster if it can
	@$(call REQUIRE,ENV IMAGE HOST)
	umask 077
	tmp=$$(mktemp "$(OUT).XXXXXX")
	kept=$$(mktemp)
	trap 'rm -f "$$tmp" "$$kept"' EXIT
	$(call FETCH_KEPT,echo "kpipe: warning: cannot read the live Secret of $(APP)-app ($$why): $(OUT) gets new $(GENERATE) (deploying it would replace the live one)" >&2; : > "$$kept")
	$(RENDER) > "$$tmp"
	mv "$$tmp" "$(OUT)"
	echo "kpipe: wrote $(OUT)" >&2

# Rendering finishes before anything is applied: a failing stage (bad env file, bad
# flag) stops the target with that stage's message and nothing reaches the cluster.
# One ApplySet per app: what the render no longer has (an HPA or PDB dropped, the
# migrate Job of an older image or config) is pruned once everything else applied.
# The settings are kept once the app is applied and rolled out: a release that fails
# leaves SETTINGS at the last one that worked.
# The certificate is waited for only once the rollout is ready: a failed rollout ends
# the target with kapply's diagnosis alone.
deploy: tools ## render, apply (server-side; NAMESPACE made if missing), prune what APP dropped, wait for the rollout (migration first), keep the settings in SETTINGS, then wait for the TLS certificate
	@$(call REQUIRE,ENV IMAGE HOST)
	umask 077
	tmp=$$(mktemp)
	live=$$(mktemp)
	kept=$$(mktemp)
	trap 'rm -f "$$tmp" "$$live" "$$kept"' EXIT
	$(call FETCH_KEPT,echo "make deploy: cannot read the live Secret of $(APP)-app ($$why): stopped before making new $(GENERATE)" >&2; exit 1)
	$(RENDER) > "$$tmp"
	kapply $(NS_FLAG) --create-namespace $(FORCE_FLAG) --applyset $(APPLYSET) --prune $(RELEASE_FLAGS) --wait --timeout $(TIMEOUT) -o yaml -f "$$tmp" > "$$live"
	$(SAVE_SETTINGS)
	certwait $(NS_FLAG) --timeout $(TIMEOUT) < "$$live"

# kapply --diff exits 1 when something differs, as kubectl diff does: for make that is
# an answer, not a failure.
diff: tools ## show what deploy would change and prune in the cluster (applies nothing)
	@$(call REQUIRE,ENV IMAGE HOST)
	umask 077
	tmp=$$(mktemp)
	kept=$$(mktemp)
	trap 'rm -f "$$tmp" "$$kept"' EXIT
	$(call FETCH_KEPT,echo "make diff: cannot read the live Secret of $(APP)-app ($$why)" >&2; exit 1)
	$(RENDER) > "$$tmp"
	rc=0
	kapply $(NS_FLAG) --create-namespace --applyset $(APPLYSET) --prune --release --diff -f "$$tmp" || rc=$$?
	case $$rc in
	  0) echo "make diff: no differences: the cluster runs what deploy would apply" >&2 ;;
	  1) echo "make diff: the differences above are what \`make deploy\` would change (kapply --diff exit status 1 means \"there are differences\": not a failure)" >&2 ;;
	  *) exit $$rc ;;
	esac

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

# Only the issuer changes: everything else comes from SETTINGS (or the command line).
promote: ## switch APP's Ingress to letsencrypt-prod, keep it in SETTINGS, and wait again (the tutorial's last step)
	@$(MAKE) --no-print-directory deploy ISSUER=letsencrypt-prod

rotate: ## generate secret KEY (one of GENERATE) anew and deploy: make rotate KEY=DJANGO_SECRET_KEY (the pods roll)
	@test -n "$(KEY)" || { echo "make rotate: which key? make rotate KEY=NAME (one of GENERATE: $(GENERATE))" >&2; exit 2; }
	$(MAKE) --no-print-directory deploy ROTATE="$(KEY)"

history: ## the releases of APP: revision, time, status, image, config version, issuer, what happened
	@kapply $(NS_FLAG) --applyset $(APPLYSET) --history

# The recorded stream is applied again as a new release (its config versions are kept
# for the last releases, so the pods read what they read then), and waited for.
# SETTINGS still names what was deployed last: the next `make deploy` deploys it again.
rollback: tools ## return APP to the release before the current one (REVISION=n: to that one) and wait until it runs
	@kapply $(NS_FLAG) --applyset $(APPLYSET) --prune --rollback $(REVISION) --wait --timeout $(TIMEOUT)
	echo "make rollback: $(SETTINGS) still holds the settings of the last deploy: the next \`make deploy\` deploys them again" >&2

status: ## the release of APP: image, pods ready, migration, host, certificate (issuer, expiry), in one screen
	@bash scripts/status.sh "$(APP)" "$(NAMESPACE)" "$(SETTINGS)" "$(APPLYSET)"

logs: ## the last TAIL log lines of every pod of APP (FOLLOW=1: keep following)
	@kubectl $(NS_FLAG) logs -l app.kubernetes.io/name=$(APP),app.kubernetes.io/component=web \
	  -c $(APP) --prefix --tail $(TAIL) --max-log-requests 20 $(if $(filter 1,$(FOLLOW)),--follow)

demo: ## everything, locally: simulator + the whole deploy pipeline (no cluster needed)
	@bash scripts/demo.sh

bench: build test-deps ## run every benchmark (ratios against kubectl, same run) as one table
	@echo "| benchmark | kpipe | kubectl | kpipe/kubectl | notes |"
	echo "|---|---|---|---|---|"
	for b in bench/*.sh; do BIN=$(BIN) bash "$$b"; done
