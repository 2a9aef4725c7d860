#!/usr/bin/env bash
# certwait vs `kubectl wait --for=condition=Ready`: the delay from the moment the
# Certificate's status is written (Ready=True, through the /status subresource) to the
# waiter's exit, measured in the same run against the same simulator.
#
# For each repetition: create a Certificate (the simulated cert-manager never finishes:
# --cert-delay 1h), start the waiter, give it time to list and watch, then take the time
# just before the status PATCH and again when the waiter exits. The PATCH is sent from
# the already-running Python process, so no process start-up is counted for the writer.
# Prints one markdown table row (the Makefile prints the header).
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

start_kubesim "$work" --cert-manager --cert-delay 1h
export HOME=$work

# A real Secret for certwait to read on success, as cert-manager would leave it.
openssl req -x509 -newkey rsa:2048 -nodes -days 90 -subj "/CN=bench.example.com" \
    -addext "subjectAltName=DNS:bench.example.com" \
    -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null

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

def kubectl(*args, stdin=None):
    subprocess.run(["kubectl", *args], input=stdin, check=True, capture_output=True, text=True)

def certificate(name):
    return json.dumps({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"secretName": name, "dnsNames": ["bench.example.com"],
                 "issuerRef": {"name": "letsencrypt-prod", "kind": "ClusterIssuer", "group": "cert-manager.io"}},
    })

def tls_secret(name):
    data = {key: base64.b64encode(open(f"{work}/{key}", "rb").read()).decode() for key in ("tls.crt", "tls.key")}
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                       "metadata": {"name": name, "namespace": "default"}, "data": data})

def write_ready(connection, name):
    body = json.dumps({"status": {"conditions": [{
        "type": "Ready", "status": "True", "reason": "Ready",
        "message": "Certificate is up to date and has not expired", "observedGeneration": 1}]}})
    path = f"/apis/cert-manager.io/v1/namespaces/default/certificates/{name}/status"
    connection.request("PATCH", path, body, {
        "Authorization": f"Bearer {token}", "Content-Type": "application/merge-patch+json"})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"bench/certwait.sh: status write answered {response.status}")

def delay(tool, rep):
    name = f"bench-{tool}-{rep}"
    kubectl("apply", "-f", "-", stdin=certificate(name))
    kubectl("apply", "-f", "-", stdin=tls_secret(name))
    # The simulated controller's first status write must not race ours.
    kubectl("wait", "--for=condition=Issuing", f"certificate/{name}", "--timeout=30s")
    if tool == "certwait":
        waiter = ["certwait", "-q", name, "--timeout", "1m"]
    else:
        waiter = ["kubectl", "wait", "--for=condition=Ready", f"certificate/{name}", "--timeout=60s"]
    connection = http.client.HTTPSConnection(server.hostname, server.port, context=context)
    connection.connect()
    process = subprocess.Popen(waiter, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.5)  # both waiters have listed and are watching by then
    if process.poll() is not None:
        sys.exit(f"bench/certwait.sh: {tool} ended early: {process.stderr.read().decode()}")
    start = time.perf_counter()
    write_ready(connection, name)
    process.wait()
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        sys.exit(f"bench/certwait.sh: {tool} failed: {process.stderr.read().decode()}")
    return elapsed

samples = {"certwait": [], "kubectl": []}
for rep in range(runs):  # interleaved, so both see the same machine load
    for tool in samples:
        samples[tool].append(delay(tool, rep))
kpipe, kube = (statistics.median(samples[t]) for t in ("certwait", "kubectl"))
print(f"| certwait: status write to exit (median of {runs}) | {kpipe * 1000:.1f} ms | "
      f"{kube * 1000:.1f} ms | {kpipe / kube:.2f} | vs `kubectl wait --for=condition=Ready`; "
      f"Ready=True written via PATCH /status; includes the waiter's exit |")
PY
