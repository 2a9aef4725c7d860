#!/usr/bin/env bash
# kapply vs `kubectl apply --server-side` against one kubesim, in the same run, with
# kubesim's model of a real API server's answer times (LATENCY, default 12 ms per write,
# 2 ms per read): what users of a real cluster wait for is round trips, so the table also
# shows how many sequential write steps each tool needed.
# Every measured run applies into a namespace of its own (created beforehand, outside
# the timing), so both tools do the same creates; the no-op rows re-apply what exists.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
use_bin
RUNS_SMALL=${RUNS_SMALL:-9}
RUNS_BIG=${RUNS_BIG:-7}

scratch_dir

start_kubesim "$work" --latency "${LATENCY:-write=12ms,read=2ms}"

for i in $(seq 500); do
    printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d}\ndata: {INDEX: "%d", LEVEL: info}\n' "$i" "$i"
done >"$work/500.yaml"

# Namespaces for every measured run (plus warm-ups), made in one go before timing.
{
    for tool in kapply kubectl; do
        for set in small big; do
            for i in $(seq 0 12); do
                printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b-%s-%s-%d}\n' "$tool" "$set" "$i"
            done
        done
        printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b-%s-noop}\n' "$tool"
    done
} | "$BIN/kapply" >/dev/null

# Each measured command takes the next fresh namespace from its own counter.
next_ns() { echo "n=\$(( \$(cat $work/$1.n 2>/dev/null || echo 0) + 1 )); echo \$n > $work/$1.n; ns=b-$1-\$n"; }
KAPPLY="$BIN/kapply"
KUBECTL="kubectl apply --server-side --field-manager kubectl-bench"

# The simulator slows down a little as it holds more objects: measuring the two tools
# alternately, run by run, gives both the same simulator. Prints the median seconds and
# peak RSS of each: "k_secs k_kib c_secs c_kib".
pair() { # runs, stdin file, kapply command, kubectl command
    local i ks=() kr=0 cs=() cr=0 s r
    for ((i = 0; i < $1; i++)); do
        s=$(python3 bench/measure.py -n 1 --stdin "$2" -- "$3") || exit 1
        read -r s r <<<"$s"
        ks+=("$s"); ((r > kr)) && kr=$r
        s=$(python3 bench/measure.py -n 1 --stdin "$2" -- "$4") || exit 1
        read -r s r <<<"$s"
        cs+=("$s"); ((r > cr)) && cr=$r
    done
    echo "$(median "${ks[@]}") $kr $(median "${cs[@]}") $cr"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

row() { # name, "k_secs k_kib c_secs c_kib", notes
    local ks kr cs cr
    read -r ks kr cs cr <<<"$2"
    awk -v name="$1" -v ks="$ks" -v kr="$kr" -v cs="$cs" -v cr="$cr" -v notes="$3" 'BEGIN {
        printf "| %s | %.3f s, %.1f MiB | %.3f s, %.1f MiB | %.2fx (%.1fx faster) | %s |\n",
            name, ks, kr / 1024, cs, cr / 1024, ks / cs, cs / ks, notes }'
}

# The polls stack exactly as the pipeline makes it (five objects).
stack="made by envsplit, secretgen and manifest-gen"
"$BIN/envsplit" --app polls --rules examples/polls/split.rules examples/polls/env 2>/dev/null \
    | "$BIN/secretgen" --generate DJANGO_SECRET_KEY \
    | "$BIN/manifest-gen" --app polls --image docker.io/sammy/polls:latest --host polls.example.com \
    >"$work/polls.yaml"
[[ $(grep -c '^kind:' "$work/polls.yaml") == 5 ]] \
    || { echo "bench/kapply.sh: the pipeline did not make the 5-object polls stack" >&2; exit 1; }

# Warm-up: both tools once (kubectl fills its discovery cache, as it would have),
# counting the sequential write steps kubesim saw for each.
steps() { grep -c '^kubesim: sequential write step' "$work/kubesim.log" || true; }
s0=$(steps)
"$KAPPLY" -n b-kapply-small-0 -f "$work/polls.yaml" >/dev/null
s1=$(steps)
$KUBECTL -n b-kubectl-small-0 -f "$work/polls.yaml" >/dev/null
s2=$(steps)
write_steps="sequential write steps: kapply $((s1 - s0)), kubectl $((s2 - s1))"
latency="kubesim --latency ${LATENCY:-write=12ms,read=2ms}"

row "kapply: polls stack, 5 objects, create" \
    "$(pair "$RUNS_SMALL" "$work/polls.yaml" "$(next_ns kapply-small); $KAPPLY -n \$ns" \
        "$(next_ns kubectl-small); $KUBECTL -n \$ns -f -")" \
    "target <= 0.25x; $write_steps; $latency; $stack; fresh namespace per run"

"$KAPPLY" -n b-kapply-noop -f "$work/polls.yaml" >/dev/null
$KUBECTL -n b-kubectl-noop -f "$work/polls.yaml" >/dev/null
row "kapply: polls stack, 5 objects, no-op" \
    "$(pair "$RUNS_SMALL" "$work/polls.yaml" "$KAPPLY -n b-kapply-noop" "$KUBECTL -n b-kubectl-noop -f -")" \
    "second run: every object unchanged; $latency"

row "kapply: 500 ConfigMaps, create" \
    "$(pair "$RUNS_BIG" "$work/500.yaml" "$(next_ns kapply-big); $KAPPLY -n \$ns" \
        "$(next_ns kubectl-big); $KUBECTL -n \$ns -f -")" \
    "target >= 5x faster; fresh namespace per run"

row "kapply: 500 ConfigMaps, no-op" \
    "$(pair "$RUNS_BIG" "$work/500.yaml" "$KAPPLY -n b-kapply-big-1" "$KUBECTL -n b-kubectl-big-1 -f -")" \
    "re-apply of the first create run"
