#!/usr/bin/env bash
# kapply --wait vs `kubectl rollout status`: the delay from the moment a Deployment's
# status says it rolled out (written through the /status subresource) to the waiter's
# exit, measured in the same run against the same simulator.
#
# For each repetition: create a Deployment whose pods never start (--deploy-delay 1h),
# start the waiter (kapply --wait re-applies the unchanged Deployment, then watches it
# and its pods; kubectl watches the Deployment), give it time to list and watch, then
# take the time just before the status PATCH and again when the waiter exits. The PATCH
# is sent from the already-running Python process, so no process start-up is counted
# for the writer. Prints one markdown table row (the Makefile prints the header).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
use_bin
RUNS=${RUNS:-7}
work=$(mktemp -d)
sim_pid=
cleanup() {
    stop_kubesim
    rm -rf "$work"
}
trap cleanup EXIT

start_kubesim "$work" --deploy-delay 1h
export HOME=$work

python3 - "$RUNS" "$work" <<'PY'
import base64, http.client, json, ssl, statistics, subprocess, sys, time, urllib.parse

runs, work = int(sys.argv[1]), sys.argv[2]
config = json.loads(subprocess.check_output(["kubectl", "config", "view", "--raw", "-o", "json"]))
cluster = config["clusters"][0]["cluster"]
token = config["users"][0]["user"]["token"]
server = urllib.parse.urlsplit(cluster["server"])
context = ssl.create_default_context()
if "certificate-authority-data" in cluster:
    context.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())

def deployment(name):
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "polls:1"}]}}},
    })

def write_rolled_out(connection, name):
    body = json.dumps({"status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                                  "readyReplicas": 1, "availableReplicas": 1}})
    path = f"/apis/apps/v1/namespaces/default/deployments/{name}/status"
    connection.request("PATCH", path, body, {
        "Authorization": f"Bearer {token}", "Content-Type": "application/merge-patch+json"})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"bench/kapply-wait.sh: status write answered {response.status}")

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
    connection = http.client.HTTPSConnection(server.hostname, server.port, context=context)
    connection.connect()
    process = subprocess.Popen(waiter, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.5)  # both waiters have listed and are watching by then
    if process.poll() is not None:
        sys.exit(f"bench/kapply-wait.sh: {tool} ended early: {process.stderr.read().decode()}")
    start = time.perf_counter()
    write_rolled_out(connection, name)
    process.wait()
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        sys.exit(f"bench/kapply-wait.sh: {tool} failed: {process.stderr.read().decode()}")
    return elapsed

samples = {"kapply": [], "kubectl": []}
for rep in range(runs):  # interleaved, so both see the same machine load
    for tool in samples:
        samples[tool].append(delay(tool, rep))
kpipe, kube = (statistics.median(samples[t]) for t in ("kapply", "kubectl"))
print(f"| kapply --wait: rollout status write to exit (median of {runs}) | {kpipe * 1000:.1f} ms | "
      f"{kube * 1000:.1f} ms | {kpipe / kube:.2f} | vs `kubectl rollout status`; "
      f"rolled-out status written via PATCH /status; includes the waiter's exit |")
PY
