#!/usr/bin/env bash
# kapply vs `kubectl apply --server-side` through API server trouble, in the same run:
# 300 ConfigMaps through a throttling storm (every request answered 429 with
# Retry-After: 1 for 2 s) and through a 5-second outage (connections reset, from 0.3 s
# in). For the outage every write takes 20 ms, so that it falls in the middle of the
# writes on any machine (a release kapply is done with 300 ConfigMaps in a fraction of a
# second otherwise, before it starts). Each run gets a fresh kubesim, so the fault starts
# with that tool's first request; what did not arrive is counted on the server afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
use_bin

scratch_dir

for i in $(seq 300); do
    printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d}\ndata: {INDEX: "%d"}\n' "$i" "$i"
done >"$work/300.yaml"

start_sim() { # fault spec, more kubesim flags
    rm -f "$work/kubeconfig"
    start_kubesim "$work" --faults "$@"
}

# One run of a command through a fresh simulator with `fault`: "secs kib missing".
through() { # fault, command, more kubesim flags
    start_sim "$1" "${@:3}"
    local m
    # A tool that gives up on some objects exits non-zero: counted below, not fatal.
    m=$(python3 bench/measure.py -n 1 --stdin "$work/300.yaml" -- "$2 2>/dev/null || true")
    # Counted once the server answers again: a tool that gave up early (kubectl in the
    # outage) is done before the fault is over, and a list refused then counts nothing.
    local listing present tries=0
    until listing=$(kubectl get configmaps -o name 2>/dev/null); do
        ((++tries < 150)) || { stop_kubesim; echo "kubesim did not answer after the fault" >&2; return 1; }
        sleep 0.1
    done
    present=$(grep -c '^configmap/cm-' <<<"$listing" || true)
    stop_kubesim
    echo "$m $((300 - present))"
}

row() { # name, fault, more kubesim flags
    local ks kr kmiss cs cr cmiss
    read -r ks kr kmiss <<<"$(through "$2" "$BIN/kapply" "${@:3}")"
    read -r cs cr cmiss <<<"$(through "$2" "kubectl apply --server-side --field-manager kubectl-bench -f -" "${@:3}")"
    awk -v name="$1" -v ks="$ks" -v kr="$kr" -v cs="$cs" -v cr="$cr" -v km="$kmiss" -v cm="$cmiss" 'BEGIN {
        printf "| %s | %.3f s, %.1f MiB | %.3f s, %.1f MiB | %.2fx | objects missing: kapply %d, kubectl %d; default settings |\n",
            name, ks, kr / 1024, cs, cr / 1024, ks / cs, km, cm }'
}

row "kapply: 300 ConfigMaps through a 2 s 429 storm" "storm:2s"
row "kapply: 300 ConfigMaps through a 5 s outage" "down:5s+300ms" --latency write=20ms
