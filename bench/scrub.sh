#!/usr/bin/env bash
# The cost of secret redaction: `kapply --dry-run=server -o yaml` on a terminal (a pty,
# so that every output byte goes through the redaction choke point) of one Secret with
# 48,000 keys, against the same stream as a ConfigMap (nothing to learn, nothing to
# mask), in the same run against one kubesim. The Secret run learns 48k values in every
# form, builds the matcher and masks the whole output with it. Prints table rows only.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
use_bin
RUNS=${RUNS:-5}
KEYS=48000

scratch_dir

start_kubesim "$work"

python3 - "$work" "$KEYS" <<'PY'
import random, string, sys
work, keys = sys.argv[1], int(sys.argv[2])
rng = random.Random(10)
alphabet = string.ascii_letters + string.digits + "!#%&()*+,-./:;<=>?@[]^_{|}~"
values = ["".join(rng.choice(alphabet) for _ in range(12)) for _ in range(keys)]
for kind, field in (("Secret", "stringData"), ("ConfigMap", "data")):
    with open(f"{work}/{kind}.yaml", "w") as f:
        f.write(f"apiVersion: v1\nkind: {kind}\nmetadata:\n  name: big\n{field}:\n")
        for i, v in enumerate(values):
            f.write(f"  K{i:05d}: '{v}'\n")
PY

# On a pty, as a person runs it; the terminal's output is thrown away by measure.py.
cmd() { echo "script -qec '$BIN/kapply --dry-run=server -o yaml -f $work/$1.yaml' /dev/null"; }
# Same answer first: both runs succeed and the Secret's values are masked on the pty.
script -qec "$BIN/kapply --dry-run=server -o yaml -f $work/Secret.yaml" /dev/null >"$work/shown"
grep -q '<redacted>' "$work/shown" || { echo "scrub.sh: the Secret was not masked" >&2; exit 1; }
if grep -q "$(sed -n 6p "$work/Secret.yaml" | cut -d"'" -f2)" "$work/shown"; then
    echo "scrub.sh: a Secret value reached the terminal" >&2
    exit 1
fi

read -r s_s s_kib < <(python3 bench/measure.py -n "$RUNS" -- "$(cmd Secret)")
read -r c_s c_kib < <(python3 bench/measure.py -n "$RUNS" -- "$(cmd ConfigMap)")
# The guard the test suite once ran (scrubbing was quadratic in the values once: 15x
# and more): a run that costs more than 5 ConfigMaps' worth fails the benchmark.
if ! awk -v s="$s_s" -v c="$c_s" 'BEGIN { exit !(s <= 5 * c + 0.5) }'; then
    echo "scrub.sh: the ${KEYS}-key Secret took $s_s s, the same as ConfigMap $c_s s: more than 5x (quadratic again?)" >&2
    exit 1
fi

python3 - "$s_s" "$s_kib" "$c_s" "$c_kib" "$RUNS" "$KEYS" <<'PY'
import sys
s_s, s_kib, c_s, c_kib = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
runs, keys = sys.argv[5], int(sys.argv[6])
print(f"| redaction: {keys // 1000}k-key Secret vs the same as ConfigMap, time | {s_s:.3f} s | {c_s:.3f} s (ConfigMap) | {s_s/c_s:.2f} | median of {runs}; kapply --dry-run=server -o yaml on a pty: learn every form of every value, build the matcher, mask the output; target <= 3 |")
print(f"| redaction: {keys // 1000}k-key Secret vs the same as ConfigMap, peak RSS | {s_kib/1024:.1f} MiB | {c_kib/1024:.1f} MiB (ConfigMap) | {s_kib/c_kib:.2f} | largest process (kapply) |")
PY
