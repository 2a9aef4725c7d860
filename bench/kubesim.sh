#!/usr/bin/env bash
# kubesim's cost per write must not grow with what runs in it: 200 ConfigMaps applied by
# kapply and by `kubectl apply --server-side` (same run, alternately) on an empty kubesim,
# then again after three polls stacks are deployed (Deployments rolled out, Pods
# running, Certificates issued by the simulated controllers). The row gives kapply's
# and kubectl's median time after the deploy and, in the notes, on the empty kubesim.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
use_bin
RUNS=${RUNS:-5}

scratch_dir

start_kubesim "$work" --cert-manager --cert-delay 1s --deploy-delay 1s

for i in $(seq 200); do
    printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d}\ndata: {INDEX: "%d"}\n' "$i" "$i"
done >"$work/200.yaml"

# A fresh namespace for every measured run (and the warm-up), made before any timing.
for phase in empty deployed; do
    for tool in kapply kubectl; do
        for i in $(seq 0 "$RUNS"); do
            printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata: {name: w-%s-%s-%d}\n' "$phase" "$tool" "$i"
        done
    done
done | "$BIN/kapply" >/dev/null

KAPPLY="$BIN/kapply"
KUBECTL="kubectl apply --server-side --field-manager kubectl-bench -f -"
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Prints "k_secs c_secs": the medians of RUNS creates of the 200 ConfigMaps by each tool,
# alternating, each in a fresh namespace of the phase.
measure() { # phase
    local i ks=() cs=() s r
    for ((i = 1; i <= RUNS; i++)); do
        read -r s r <<<"$(python3 bench/measure.py -n 1 --stdin "$work/200.yaml" -- "$KAPPLY -n w-$1-kapply-$i")"
        ks+=("$s")
        read -r s r <<<"$(python3 bench/measure.py -n 1 --stdin "$work/200.yaml" -- "$KUBECTL -n w-$1-kubectl-$i")"
        cs+=("$s")
    done
    echo "$(median "${ks[@]}") $(median "${cs[@]}")"
}

# Warm-up: kubectl fills its discovery cache, as it would have.
"$KAPPLY" -n w-empty-kapply-0 -f "$work/200.yaml" >/dev/null
$KUBECTL -n w-empty-kubectl-0 <"$work/200.yaml" >/dev/null
read -r k_empty c_empty <<<"$(measure empty)"

# Three polls stacks, as the pipeline makes them, each rolled out (kapply --wait): the
# controllers now look after Deployments, ReplicaSets, Pods, Ingresses and Certificates.
"$BIN/envsplit" --app polls --rules examples/polls/split.rules examples/polls/env 2>/dev/null \
    | "$BIN/secretgen" --generate DJANGO_SECRET_KEY \
    | "$BIN/manifest-gen" --app polls --image docker.io/sammy/polls:latest --host polls.example.com \
    >"$work/polls.yaml"
for i in 1 2 3; do
    printf -- 'apiVersion: v1\nkind: Namespace\nmetadata: {name: polls-%d}\n' "$i" | "$BIN/kapply" >/dev/null
    "$KAPPLY" -n "polls-$i" --wait --timeout 60s -f "$work/polls.yaml" >/dev/null 2>&1
done
pods=$(kubectl get pods -A --no-headers 2>/dev/null | grep -c ' Running ' || true)
[[ $pods -ge 3 ]] || { echo "bench/kubesim.sh: the three polls stacks run $pods pods" >&2; exit 1; }
read -r k_deployed c_deployed <<<"$(measure deployed)"

awk -v ke="$k_empty" -v ce="$c_empty" -v kd="$k_deployed" -v cd="$c_deployed" -v pods="$pods" 'BEGIN {
    printf "| kubesim: write cost, 200 ConfigMaps after 3 polls stacks deployed | %.3f s | %.3f s | %.2fx | on an empty kubesim: kapply %.3f s, kubectl %.3f s (deployed/empty: kapply %.2fx, kubectl %.2fx); %d pods running; fresh namespace per run |\n",
        kd, cd, kd / cd, ke, ce, kd / ke, cd / ce, pods }'
