#!/usr/bin/env bash
# envsplit | secretgen against `kubectl create secret generic --from-env-file` on one
# generated env file of 10 MB and 100,000 keys, in the same run. Prints table rows only.
#
# 10 MB is ten times the API server's 1 MiB object limit, so both sides skip it: kubectl's
# --dry-run=client never checks the size, and kpipe is given --no-size-limit. Both then do
# the same work: parse every line, base64 every value, write one Secret as YAML.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
use_bin
RUNS=${RUNS:-3}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
env="$dir/env"

python3 - "$env" <<'PY'
import random, string, sys
rng = random.Random(42)
alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)$'\" "
with open(sys.argv[1], "w") as f:
    for i in range(100_000):
        f.write(f"KEY_{i:06d}=" + "".join(rng.choice(alphabet) for _ in range(89)) + "\n")
PY
size_mb=$(python3 -c "import os,sys; print(f'{os.path.getsize(sys.argv[1])/1e6:.1f}')" "$env")

kpipe_cmd="envsplit --app bench --format docker --secret '*' --no-size-limit $env | secretgen --no-size-limit"
kubectl_cmd="kubectl create secret generic bench --from-env-file=$env --dry-run=client -o yaml"

# Same answer first: a benchmark of two programs that disagree measures nothing.
python3 - <(bash -o pipefail -c "$kpipe_cmd") <(KUBECONFIG=/dev/null $kubectl_cmd) <<'PY'
import sys, yaml
ours = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
theirs = yaml.safe_load(open(sys.argv[2]))
assert len(ours) == 1 and ours[0]["data"] == theirs["data"], "envsplit|secretgen and kubectl disagree"
PY

read -r kp_s kp_kib < <(python3 bench/measure.py -n "$RUNS" -- "$kpipe_cmd")
read -r kc_s kc_kib < <(KUBECONFIG=/dev/null python3 bench/measure.py -n "$RUNS" -- "$kubectl_cmd")

python3 - "$kp_s" "$kp_kib" "$kc_s" "$kc_kib" "$size_mb" "$RUNS" <<'PY'
import sys
kp_s, kp_kib, kc_s, kc_kib = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
size, runs = sys.argv[5], sys.argv[6]
print(f"| env file -> Secret ({size} MB, 100k keys), time | {kp_s:.3f} s | {kc_s:.3f} s | {kp_s/kc_s:.2f} | median of {runs}; envsplit --format docker --secret '*' \\| secretgen vs kubectl create secret generic --from-env-file --dry-run=client -o yaml |")
print(f"| env file -> Secret ({size} MB, 100k keys), peak RSS | {kp_kib/1024:.1f} MiB | {kc_kib/1024:.1f} MiB | {kp_kib/kc_kib:.2f} | largest single process of the pipe; both skip the 1 MiB object limit |")
PY
