#!/usr/bin/env bash
# kapply vs `kubectl apply --server-side` on the largest real install of the manifest
# corpus (tests/corpus/manifests/argo-cd-install.yaml: 59 objects, 3 CRDs, one of them
# about 1 MB), against kubesim with its model of a real API server's answer times
# (LATENCY, default 12 ms per write, 2 ms per read), in the same run: a create into an
# empty simulator (one simulator per run and tool, so that both create the CRDs and
# cluster roles), then a no-op re-apply of what exists. Where the time goes is counted
# too: the requests each tool sent (reads and writes), from the simulator's log.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
use_bin
RUNS=${RUNS:-3}
INSTALL=tests/corpus/manifests/argo-cd-install.yaml

scratch_dir

# A fresh simulator with the namespace the install goes into.
start_sim() {
    stop_kubesim
    rm -rf "$work/sim" && mkdir -p "$work/sim"
    start_kubesim "$work/sim" --latency "${LATENCY:-write=12ms,read=2ms}"
    export HOME=$work/sim
    printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: argocd}\n' | "$BIN/kapply" >/dev/null
    # kubectl's discovery cache, as on a workstation.
    kubectl api-resources >/dev/null
}

KAPPLY="$BIN/kapply -n argocd -f $INSTALL"
KUBECTL="kubectl apply --server-side --field-manager kubectl-bench -n argocd -f $INSTALL"
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
measure() { python3 bench/measure.py -n 1 -- "$1"; }

# "R reads, W writes": the requests of the last run of a tool (its User-Agent in the
# log: kube-rs sends none, so kapply's are `[-]`), from log line $1 on.
requests() { # from-line, caller tag
    tail -n +"$1" "$work/sim/kubesim.log" | grep -F "[$2" | awk '
        $1 == "GET" { r++ } $1 != "GET" && $1 ~ /^[A-Z]+$/ { w++ }
        END { printf "%d reads, %d writes", r, w }'
}
log_lines() { wc -l <"$work/sim/kubesim.log"; }

ks=() kr=0 cs=() cr=0 nks=() nkr=0 ncs=() ncr=0
for ((i = 0; i < RUNS; i++)); do
    for tool in kapply kubectl; do
        start_sim
        if [[ $tool == kapply ]]; then command=$KAPPLY; else command=$KUBECTL; fi
        from=$(($(log_lines) + 1))
        read -r s r <<<"$(measure "$command >/dev/null")"
        if [[ $tool == kapply ]]; then tag="-]"; else tag="kubectl/"; fi
        created=$(requests "$from" "$tag")
        from=$(($(log_lines) + 1))
        read -r ns nr <<<"$(measure "$command >/dev/null")"
        noop=$(requests "$from" "$tag")
        if [[ $tool == kapply ]]; then k_create=$created k_noop=$noop; else c_create=$created c_noop=$noop; fi
        if [[ $tool == kapply ]]; then
            ks+=("$s"); ((r > kr)) && kr=$r; nks+=("$ns"); ((nr > nkr)) && nkr=$nr
        else
            cs+=("$s"); ((r > cr)) && cr=$r; ncs+=("$ns"); ((nr > ncr)) && ncr=$nr
        fi
    done
done
stop_kubesim

row() { # name, k_secs, k_kib, c_secs, c_kib, notes
    awk -v name="$1" -v ks="$2" -v kr="$3" -v cs="$4" -v cr="$5" -v notes="$6" 'BEGIN {
        printf "| %s | %.3f s, %.1f MiB | %.3f s, %.1f MiB | %.2fx (%.1fx faster) | %s |\n",
            name, ks, kr / 1024, cs, cr / 1024, ks / cs, cs / ks, notes }'
}
row "kapply: argo-cd install (59 objects, 3 CRDs), create" "$(median "${ks[@]}")" "$kr" \
    "$(median "${cs[@]}")" "$cr" "target <= 0.33x; corpus; empty simulator per run, CRDs waited for until Established; kubesim --latency ${LATENCY:-write=12ms,read=2ms}; requests: kapply $k_create (8 in parallel, 3 steps), kubectl $c_create (one at a time)"
row "kapply: argo-cd install, no-op" "$(median "${nks[@]}")" "$nkr" \
    "$(median "${ncs[@]}")" "$ncr" "target <= 0.2x; re-apply, every object unchanged; requests: kapply $k_noop (an object whose live state provably holds the input is not sent), kubectl $c_noop"
