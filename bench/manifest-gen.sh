#!/usr/bin/env bash
# manifest-gen against the nearest kubectl commands (`kubectl create deployment` and
# `kubectl create service clusterip` with --dry-run=client), in the same run: the cost
# of generating the tutorial's step 6 objects. Prints table rows only.
#
# The work differs: kubectl writes a bare Deployment and Service; manifest-gen also
# validates every flag and adds probes, resources, security context and labels, and reads
# (then passes through and hashes) the ConfigMap and Secret of the tutorial's env.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
use_bin
RUNS=${RUNS:-20}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
image=your_dockerhub_username/app_repo_name:latest
envsplit --app polls --rules examples/polls/split.rules examples/polls/env 2>/dev/null | secretgen > "$dir/config.yaml"

kpipe_cmd="manifest-gen --image $image"
kpipe_stream_cmd="manifest-gen --image $image -i $dir/config.yaml"
kubectl_cmd="kubectl create deployment polls-app --image=$image --replicas=2 --port=8000 --dry-run=client -o yaml && echo --- \
  && kubectl create service clusterip polls --tcp=8000:8000 --dry-run=client -o yaml"

# Same objects first: both must write a Deployment polls-app and a Service polls.
python3 - <(bash -c "$kpipe_cmd" </dev/null) <(KUBECONFIG=/dev/null bash -c "$kubectl_cmd") <<'PY'
import sys, yaml
ours = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(open(sys.argv[1])) if d]
theirs = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(open(sys.argv[2])) if d]
assert ours == theirs == [("Deployment", "polls-app"), ("Service", "polls")], (ours, theirs)
PY

read -r kp_s kp_kib < <(python3 bench/measure.py -n "$RUNS" -- "$kpipe_cmd")
read -r ks_s ks_kib < <(python3 bench/measure.py -n "$RUNS" -- "$kpipe_stream_cmd")
read -r kc_s kc_kib < <(KUBECONFIG=/dev/null python3 bench/measure.py -n "$RUNS" -- "$kubectl_cmd")

python3 - "$kp_s" "$kp_kib" "$ks_s" "$ks_kib" "$kc_s" "$kc_kib" "$RUNS" <<'PY'
import sys
kp_s, kp_kib, ks_s, ks_kib, kc_s, kc_kib = (float(x) for x in sys.argv[1:7])
runs = sys.argv[7]
print(f"| step 6 Deployment + Service, time | {kp_s*1000:.1f} ms | {kc_s*1000:.1f} ms | {kp_s/kc_s:.2f} | median of {runs}; manifest-gen --image vs kubectl create deployment && kubectl create service clusterip (--dry-run=client) |")
print(f"| step 6 + env stream (config hash), time | {ks_s*1000:.1f} ms | {kc_s*1000:.1f} ms | {ks_s/kc_s:.2f} | manifest-gen -i envsplit\\|secretgen output: passes ConfigMap and Secret through, hashes them |")
print(f"| step 6 Deployment + Service, peak RSS | {kp_kib/1024:.1f} MiB | {kc_kib/1024:.1f} MiB | {kp_kib/kc_kib:.2f} | largest single process |")
PY
