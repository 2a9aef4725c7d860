#!/usr/bin/env bash
# make demo: the whole tutorial against kubesim, kpipe's local Kubernetes API simulator
# with its cert-manager simulation and simulated pods (no containers run): it shows what
# kpipe sends, what the API server answers, a rollout waited for (migration first), a
# rollout that fails (an image the registry refuses) with kapply's diagnosis, and how
# the certificate gets issued.
#
# KPIPE_BIN=DIR uses already-built binaries (the tests do); otherwise it builds them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

if [[ -z "${KPIPE_BIN:-}" ]]; then
  # The dev profile: the same build `make test` uses, in under a third of the CPU time
  # of a release build; the demo's few objects do not need optimised code.
  make --no-print-directory build-dev >/dev/null
  KPIPE_BIN=target/debug
fi
BIN=$KPIPE_BIN use_bin

work=$(mktemp -d)
sim_pid=
cleanup() {
  stop_kubesim
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -t 1 ]]; then
  step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
  step() { printf '\n== %s\n' "$*"; }
fi

step "Starting kubesim (local API simulator with cert-manager simulation)"
# Pods start after 1s and the certificate takes 2s, as on a cluster for a person watching
# (the tests, which only read the output, set DEMO_DEPLOY_DELAY and DEMO_CERT_DELAY
# shorter); an image tagged :broken cannot be pulled, as from a real registry.
start_kubesim "$work" --cert-manager --cert-delay "${DEMO_CERT_DELAY:-2s}" \
  --deploy-delay "${DEMO_DEPLOY_DELAY:-1s}" --pods-fail ':broken$=ImagePullBackOff'
echo "kubesim pid $sim_pid, $(grep -m1 -o 'serving .*' "$work/kubesim.log" || echo serving)"

# The tutorial's env leaves DJANGO_SECRET_KEY empty: the first deploy generates it and
# later ones keep the live value, so deploying again changes nothing. The deploy
# settings are kept in the demo's own folder, not in the repository's deploy/.
env_file=${ENV:-examples/polls/env}
make_vars=(BIN="$KPIPE_BIN" ENV="$env_file" RULES="${RULES:-examples/polls/split.rules}" HOST="${HOST:-polls.example.com}"
           IMAGE="${IMAGE:-docker.io/sammy/polls:latest}" SETTINGS="$work/polls.mk")

step "Steps 1-5: envsplit sorts the env file into config and secret (values never shown)"
envsplit --app polls --explain --rules "${RULES:-examples/polls/split.rules}" "$env_file" 2>&1 >/dev/null

step "Steps 6-8: make render writes the manifests; the server checks them (dry run)"
make --no-print-directory render "${make_vars[@]}" OUT="$work/deploy.yaml"
kapply --dry-run=server -f "$work/deploy.yaml"

step "Deploy: make deploy (envsplit | secretgen | manifest-gen, kapply --wait (migration, then rollout), then certwait)"
make --no-print-directory deploy "${make_vars[@]}"

step "Deploy again: the settings and the generated key are kept, nothing changes"
make --no-print-directory deploy BIN="$KPIPE_BIN" SETTINGS="$work/polls.mk"

step "make status: the release, its pods and the certificate in one screen"
make --no-print-directory status BIN="$KPIPE_BIN" SETTINGS="$work/polls.mk"

step "What the cluster holds now (kubectl against the simulator)"
kubectl get configmaps,secrets,deployments,services,ingresses,jobs,certificates 2>&1 || true
kubectl get pods 2>&1 || true

step "A bad release: an image the registry refuses; kapply --wait says why, rolls back to the last good release, exits 1"
bad_image="${IMAGE:-docker.io/sammy/polls:latest}"
bad_image="${bad_image%:*}:broken"
if make --no-print-directory deploy "${make_vars[@]}" IMAGE="$bad_image" TIMEOUT=30s; then
  echo "demo: the bad release was not caught" >&2
  exit 1
fi
echo "(the migration Job of the bad release failed first: the running Deployment and the config it reads were not touched)"
kubectl get deploy,pods 2>&1 || true

step "make history: every release, the failed one and the rollback included"
make --no-print-directory history BIN="$KPIPE_BIN" SETTINGS="$work/polls.mk"

step "Done. The simulator stops now; nothing is left running."
