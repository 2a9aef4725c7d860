#!/usr/bin/env bash
# kapply --wait vs `kubectl rollout status`: the delay from the moment a Deployment's
# status says it rolled out (written through the /status subresource) to the waiter's
# exit, measured in the same run against the same simulator.
#
# For each repetition: create a Deployment whose pods never start (--deploy-delay 1h);
# bench/statuswrite.py then starts the waiter (kapply --wait re-applies the unchanged
# Deployment, then watches it and its pods; kubectl watches the Deployment), writes the
# rolled-out status and times the write to the waiter's exit.
# Prints one markdown table row (the Makefile prints the header).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
use_bin
RUNS=${RUNS:-7}
scratch_dir

start_kubesim "$work" --deploy-delay 1h

python3 - "$RUNS" "$work" <<'PY'
import json, subprocess, sys, time
sys.path.insert(0, "bench")
from statuswrite import Server, medians, write_to_exit

runs, work = int(sys.argv[1]), sys.argv[2]
server = Server()

def deployment(name):
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "polls:1"}]}}},
    })

ROLLED_OUT = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
              "readyReplicas": 1, "availableReplicas": 1}

def delay(tool, rep):
    name = f"bench-{tool}-{rep}"
    manifest = f"{work}/{name}.json"
    with open(manifest, "w") as f:
        f.write(deployment(name))
    subprocess.run(["kubectl", "apply", "-f", manifest], check=True, capture_output=True)
    # The simulated controller's first status write must not race ours.
    for _ in range(100):
        observed = subprocess.run(["kubectl", "get", f"deploy/{name}", "-o", "jsonpath={.status.observedGeneration}"],
                                  capture_output=True, text=True).stdout
        if observed == "1":
            break
        time.sleep(0.05)
    if tool == "kapply":
        waiter = ["kapply", "--wait", "--timeout", "1m", "-f", manifest]
    else:
        waiter = ["kubectl", "rollout", "status", f"deployment/{name}", "--timeout=60s"]
    path = f"/apis/apps/v1/namespaces/default/deployments/{name}/status"
    return write_to_exit(server, waiter, path, ROLLED_OUT, "bench/kapply-wait.sh")

kpipe, kube = medians(runs, ["kapply", "kubectl"], delay)
print(f"| kapply --wait: rollout status write to exit (median of {runs}) | {kpipe * 1000:.1f} ms | "
      f"{kube * 1000:.1f} ms | {kpipe / kube:.2f} | vs `kubectl rollout status`; "
      f"rolled-out status written via PATCH /status; includes the waiter's exit |")
PY
