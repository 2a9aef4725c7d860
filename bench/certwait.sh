#!/usr/bin/env bash
# certwait vs `kubectl wait --for=condition=Ready`: the delay from the moment the
# Certificate's status is written (Ready=True, through the /status subresource) to the
# waiter's exit, measured in the same run against the same simulator.
#
# For each repetition: create a Certificate (the simulated cert-manager never finishes:
# --cert-delay 1h); bench/statuswrite.py then starts the waiter, writes Ready=True and
# times the write to the waiter's exit.
# Prints one markdown table row (the Makefile prints the header).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
use_bin
RUNS=${RUNS:-7}
scratch_dir

start_kubesim "$work" --cert-manager --cert-delay 1h

# A real Secret for certwait to read on success, as cert-manager would leave it.
openssl req -x509 -newkey rsa:2048 -nodes -days 90 -subj "/CN=bench.example.com" \
    -addext "subjectAltName=DNS:bench.example.com" \
    -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null

python3 - "$RUNS" "$work" <<'PY'
import base64, json, subprocess, sys
sys.path.insert(0, "bench")
from statuswrite import Server, medians, write_to_exit

runs, work = int(sys.argv[1]), sys.argv[2]
server = Server()

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

READY = {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
                         "message": "Certificate is up to date and has not expired", "observedGeneration": 1}]}

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
    path = f"/apis/cert-manager.io/v1/namespaces/default/certificates/{name}/status"
    return write_to_exit(server, waiter, path, READY, "bench/certwait.sh")

kpipe, kube = medians(runs, ["certwait", "kubectl"], delay)
print(f"| certwait: status write to exit (median of {runs}) | {kpipe * 1000:.1f} ms | "
      f"{kube * 1000:.1f} ms | {kpipe / kube:.2f} | vs `kubectl wait --for=condition=Ready`; "
      f"Ready=True written via PATCH /status; includes the waiter's exit |")
PY
