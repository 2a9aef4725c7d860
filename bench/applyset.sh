#!/usr/bin/env bash
# ApplySet prune: kapply --applyset --prune against KUBECTL_APPLYSET=true kubectl apply
# --server-side --prune --applyset, against one kubesim, in the same run. Each measured
# run starts from a 400-ConfigMap set made by the same tool in a namespace of its own
# (outside the timing) and applies 200 of them: 200 unchanged, 200 pruned.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
use_bin
RUNS=${RUNS:-5}

scratch_dir

start_kubesim "$work"
export KUBECTL_APPLYSET=true

configmaps() { # first last
    for i in $(seq "$1" "$2"); do
        printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d}\ndata: {INDEX: "%d"}\n' "$i" "$i"
    done
}
configmaps 1 400 >"$work/400.yaml"
configmaps 1 200 >"$work/200.yaml"

for tool in kapply kubectl; do
    for i in $(seq 0 "$RUNS"); do
        printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata: {name: p-%s-%d}\n' "$tool" "$i"
    done
done | "$BIN/kapply" >/dev/null

KAPPLY="$BIN/kapply --applyset bench --prune"
KUBECTL="kubectl apply --server-side --prune --applyset=bench"

# The whole 400-object set, made by each tool in its namespace; then the check that
# both tools leave the same 200 objects.
setup() { # namespace number
    $KAPPLY -n "p-kapply-$1" -f "$work/400.yaml" >/dev/null
    $KUBECTL -n "p-kubectl-$1" -f "$work/400.yaml" >/dev/null
}
count() { kubectl get configmaps -n "$1" -l applyset.kubernetes.io/part-of -o name | wc -l; }

# Warm-up (kubectl fills its discovery cache), which also proves both prune the same.
setup 0
$KAPPLY -n p-kapply-0 -f "$work/200.yaml" >/dev/null
$KUBECTL -n p-kubectl-0 -f "$work/200.yaml" >/dev/null
for ns in p-kapply-0 p-kubectl-0; do
    [[ $(count "$ns") == 200 ]] || { echo "bench/applyset.sh: $ns does not hold 200 members" >&2; exit 1; }
done

ks=() kr=0 cs=() cr=0
for i in $(seq 1 "$RUNS"); do
    setup "$i"
    read -r s r <<<"$(python3 bench/measure.py -n 1 --stdin "$work/200.yaml" -- "$KAPPLY -n p-kapply-$i")"
    ks+=("$s"); ((r > kr)) && kr=$r
    read -r s r <<<"$(python3 bench/measure.py -n 1 --stdin "$work/200.yaml" -- "$KUBECTL -n p-kubectl-$i -f -")"
    cs+=("$s"); ((r > cr)) && cr=$r
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

awk -v ks="$(median "${ks[@]}")" -v kr="$kr" -v cs="$(median "${cs[@]}")" -v cr="$cr" 'BEGIN {
    printf "| kapply: ApplySet prune, 200 of 400 ConfigMaps dropped | %.3f s, %.1f MiB | %.3f s, %.1f MiB | %.2fx (%.1fx faster) | %s |\n",
        ks, kr / 1024, cs, cr / 1024, ks / cs, cs / ks, "200 unchanged + 200 pruned; kubectl deletes one at a time behind the client-go throttle of 5 requests/s" }'
