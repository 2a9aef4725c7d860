#!/usr/bin/env bash
# How soon kapply and certwait stop when they must, next to kubectl where it has the
# same case: at --timeout on a server that accepts and never answers (or trickles its
# answers, or freezes while the diagnosis asks it), at once on a refused connection or
# a watch RBAC forbids, a moment after a finalizer is taken off, once the server is
# back after an outage, and on SIGINT. The tests check that each of these ends, and how
# (exit status, messages); the times are measured here. Each run gets a fresh kubesim
# (a fault's clock starts at the first request). Prints table rows only.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
use_bin
RUNS=${RUNS:-3}

scratch_dir

python3 - "$RUNS" "$work" <<'PY'
import base64, http.client, json, os, signal, socket, ssl, statistics, subprocess, sys, tempfile, threading, time, urllib.parse

runs, work = int(sys.argv[1]), sys.argv[2]
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: polls-config}\ndata: {K: v}\n"
DEPLOYMENT = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
              "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
              "    spec: {containers: [{name: web, image: nginx}]}\n")
CERTIFICATE = ("apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: polls-tls}\nspec:\n"
               "  secretName: polls-tls\n  dnsNames: [polls.example.com]\n"
               "  issuerRef: {name: letsencrypt-staging, kind: ClusterIssuer, group: cert-manager.io}\n")
KUBECTL_APPLY = ["kubectl", "apply", "--server-side", "--field-manager", "kubectl-bench", "-f", "-"]


class Sim:
    """`kubesim serve FLAGS` in a folder of its own, with the environment to reach it."""

    def __init__(self, *flags):
        self.dir = tempfile.mkdtemp(dir=work)
        kubeconfig = f"{self.dir}/kubeconfig"
        self.process = subprocess.Popen(
            ["kubesim", "serve", "--kubeconfig-out", kubeconfig, *flags],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(f"{self.dir}/kubesim.log", "w"))
        deadline = time.monotonic() + 15
        while not os.path.exists(kubeconfig):
            if time.monotonic() > deadline or self.process.poll() is not None:
                sys.exit(f"deadlines.sh: kubesim {' '.join(flags)} did not start")
            time.sleep(0.02)
        self.env = dict(os.environ, KUBECONFIG=kubeconfig, HOME=self.dir)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.process.terminate()
        self.process.wait()

    def run(self, command, stdin="", expect=(0,)):
        """Runs `command` to its end; its wall time. Exit statuses other than `expect` stop the benchmark."""
        started = time.perf_counter()
        done = subprocess.run(command, input=stdin.encode(), env=self.env, capture_output=True, timeout=120)
        took = time.perf_counter() - started
        if done.returncode not in expect:
            sys.exit(f"deadlines.sh: {' '.join(command)}: exit {done.returncode}, not {expect}: {done.stderr.decode()[-2000:]}")
        return took

    def background(self, command, stdin=""):
        """Starts `command`, its stdout and stderr merged into one pipe for `until_line`."""
        process = subprocess.Popen(command, env=self.env, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        process.stdin.write(stdin.encode())
        process.stdin.close()
        return process


def until_line(process, text):
    """Reads the process's output until a line has `text` (the rest is drained in the background)."""
    for line in process.stdout:
        if text in line.decode():
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return
    sys.exit(f"deadlines.sh: no output line with {text!r}")


def median(measure):
    return statistics.median(measure() for _ in range(runs))


def shown(secs):
    return f"{secs:.2f} s" if secs >= 1 else f"{secs * 1000:.0f} ms"


def row(name, kpipe, kubectl, notes):
    notes = f"{notes}; median of {runs}" if notes else f"median of {runs}"
    if kubectl is None:
        print(f"| {name} | {shown(kpipe)} | n/a | n/a | {notes} |")
    else:
        print(f"| {name} | {shown(kpipe)} | {shown(kubectl)} | {kpipe / max(kubectl, 1e-3):.2f} | {notes} |")


def fresh(flags, command, stdin="", expect=(0,)):
    """The median wall time of `command` against a fresh kubesim each run."""
    def once():
        with Sim(*flags) as sim:
            return sim.run(command, stdin, expect)
    return median(once)


# --- at --timeout: the server never answers, or trickles -----------------------------
for fault, what in (("hang", "accepts and never answers"), ("trickle:200ms", "sends a byte every 200 ms")):
    kapply = fresh(["--faults", fault], ["kapply", "--timeout", "3s"], CONFIGMAP, (124,))
    kubectl = fresh(["--faults", fault], KUBECTL_APPLY + ["--request-timeout=3s"], CONFIGMAP, range(1, 256))
    row(f"kapply --timeout 3s: server {what}, run to exit", kapply, kubectl,
        "kubectl apply --request-timeout=3s; the test checks exit 124 and the message")
    certwait = fresh(["--cert-manager", "--faults", fault], ["certwait", "polls-tls", "--timeout", "3s"], "", (124,))
    kubectl = fresh(["--cert-manager", "--faults", fault],
                    ["kubectl", "wait", "--for=condition=Ready", "certificate/polls-tls", "--timeout=3s", "--request-timeout=3s"],
                    "", range(1, 256))
    row(f"certwait --timeout 3s: server {what}, run to exit", certwait, kubectl,
        "kubectl wait --timeout=3s --request-timeout=3s")


def frozen_wait():
    with Sim("--deploy-delay", "1h", "--faults", "freeze:15s+1500ms") as sim:
        path = f"{sim.dir}/deploy.yaml"
        open(path, "w").write(DEPLOYMENT)
        return sim.run(["kapply", "-f", path, "--wait", "--timeout", "3s"], "", (124,))
row("kapply --wait --timeout 3s: server frozen from 1.5 s in, run to exit (diagnosis included)",
    median(frozen_wait), None, "pods never start; the diagnosis at the deadline asks the frozen server")

row("kapply --delete-all --timeout 3s: server accepts and never answers, run to exit",
    fresh(["--faults", "hang"], ["kapply", "--applyset", "polls", "--delete-all", "--timeout", "3s"], "", (124,)),
    None, "")


def certificate_diagnosis():
    with Sim("--cert-manager", "--cert-delay", "1h", "--faults", "down:1h+2s") as sim:
        sim.run(KUBECTL_APPLY, CERTIFICATE)
        return sim.run(["certwait", "polls-tls", "--timeout", "3s"], "", (124,))
row("certwait --timeout 3s: server gone for good after the Certificate was seen, run to exit",
    median(certificate_diagnosis), None, "the diagnosis at the deadline must not wait for the server")


def silent_url():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/stack.yaml"
    started = time.perf_counter()
    done = subprocess.run(["kapply", "--dry-run=client", "--timeout", "2s", "-f", url],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    took = time.perf_counter() - started
    listener.close()
    if done.returncode != 124:
        sys.exit(f"deadlines.sh: kapply -f {url}: exit {done.returncode}: {done.stderr.decode()}")
    return took
row("kapply -f URL --timeout 2s: the URL accepts and never answers, run to exit", median(silent_url), None, "")


# --- at once: a refused connection, a forbidden watch ----------------------------------
def refused(command, expect):
    def once():
        port_holder = socket.socket()
        port_holder.bind(("127.0.0.1", 0))
        port = port_holder.getsockname()[1]
        port_holder.close()
        config = f"{work}/refused.kubeconfig"
        open(config, "w").write(
            f"apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: 'https://127.0.0.1:{port}'}}\n"
            "users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
            "current-context: x\n")
        started = time.perf_counter()
        done = subprocess.run(command, input=CONFIGMAP.encode(), capture_output=True, timeout=120,
                              env=dict(os.environ, KUBECONFIG=config, HOME=work))
        if done.returncode not in expect:
            sys.exit(f"deadlines.sh: {' '.join(command)} on a refused port: exit {done.returncode}")
        return time.perf_counter() - started
    return median(once)
kapply = refused(["kapply"], (1,))
certwait = refused(["certwait", "polls-tls", "--timeout", "1h"], (1,))
kubectl = refused(["kubectl", "get", "configmaps"], (1,))
row("kapply: connection refused before any answer, run to exit", kapply, kubectl,
    f"certwait {certwait:.2f} s; kubectl get; the tests check the one-line message (no retry)")

kapply = fresh(["--deploy-delay", "200ms", "--faults", "403:1000@GET/apis/apps/v1/namespaces/default/deployments?watch"],
               ["kapply", "--wait", "--timeout", "30s"], DEPLOYMENT, (1,))
certwait = fresh(["--cert-manager", "--faults", "403:1000@GET/apis/cert-manager.io/v1/namespaces/default/certificates?watch"],
                 ["certwait", "polls-tls", "--timeout", "30s"], "", (1,))
row("kapply --wait --timeout 30s: watch forbidden (403), run to exit", kapply, None,
    f"certwait the same: {certwait:.2f} s; waiting longer cures nothing")


# --- a moment after: a finalizer taken off, a server back, a signal --------------------
HOLD = '{"metadata":{"finalizers":["example.com/hold"]}}'
LET_GO = '{"metadata":{"finalizers":null}}'


def let_go(sim, name):
    """Takes the finalizers off ConfigMap `name` with one PATCH from this process, on a
    connection opened before (no process start-up in the measurement); returns the
    time the PATCH was sent."""
    config = json.loads(subprocess.check_output(["kubectl", "config", "view", "--raw", "-o", "json"], env=sim.env))
    cluster = config["clusters"][0]["cluster"]
    url = urllib.parse.urlsplit(cluster["server"])
    context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    connection = http.client.HTTPSConnection(url.hostname, url.port, context=context)
    connection.connect()
    sent = time.perf_counter()
    connection.request("PATCH", f"/api/v1/namespaces/default/configmaps/{name}", LET_GO, {
        "Authorization": f"Bearer {config['users'][0]['user']['token']}",
        "Content-Type": "application/merge-patch+json"})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"deadlines.sh: taking the finalizer off answered {response.status}")
    return sent


def held_configmap(sim, name):
    sim.run(KUBECTL_APPLY, CONFIGMAP.replace("polls-config", name))
    sim.run(["kubectl", "patch", "configmap", name, "--type=merge", "-p", HOLD])


def release_to_exit(tool):
    with Sim() as sim:
        if tool == "kapply":
            sim.run(["kapply", "--applyset", "held", "--prune"], CONFIGMAP.replace("polls-config", "held"))
            sim.run(["kubectl", "patch", "configmap", "held", "--type=merge", "-p", HOLD])
            waiter = sim.background(["kapply", "--applyset", "held", "--delete-all"])
            until_line(waiter, "waiting for 1 deleted objects to be gone")
        else:
            held_configmap(sim, "held")
            waiter = sim.background(["kubectl", "delete", "configmap", "held", "--timeout=60s"])
            until_line(waiter, "deleted")
        released = let_go(sim, "held")
        if waiter.wait() != 0:
            sys.exit(f"deadlines.sh: {tool} failed once the finalizer was off")
        return time.perf_counter() - released
row("kapply --delete-all: finalizer taken off to exit", median(lambda: release_to_exit("kapply")),
    median(lambda: release_to_exit("kubectl")), "kubectl delete (waits by default); from the PATCH that takes it off")


def held_timeout(tool):
    with Sim() as sim:
        if tool == "kapply":
            sim.run(["kapply", "--applyset", "stuck", "--prune"], CONFIGMAP.replace("polls-config", "stuck"))
            sim.run(["kubectl", "patch", "configmap", "stuck", "--type=merge", "-p", HOLD])
            return sim.run(["kapply", "--applyset", "stuck", "--delete-all", "--timeout", "2s"], "", (124,))
        held_configmap(sim, "stuck")
        return sim.run(["kubectl", "delete", "configmap", "stuck", "--timeout=2s"], "", range(1, 256))
row("kapply --delete-all --timeout 2s: a finalizer holds the object for good, run to exit",
    median(lambda: held_timeout("kapply")), median(lambda: held_timeout("kubectl")), "kubectl delete --timeout=2s")


def back_to_ready(tool):
    # The server is down from 1 s to 3 s after kubectl apply's first request; the
    # simulated cert-manager (exempt) issues at about 2 s.
    with Sim("--cert-manager", "--cert-delay", "2s", "--faults", "down:2s+1s") as sim:
        applied = time.perf_counter()
        sim.run(KUBECTL_APPLY, CERTIFICATE)
        if tool == "certwait":
            sim.run(["certwait", "polls-tls", "--timeout", "30s"])
        else:
            sim.run(["kubectl", "wait", "--for=condition=Ready", "certificate/polls-tls", "--timeout=30s"])
        return time.perf_counter() - applied - 3
row("certwait: server back after an outage (Certificate issued meanwhile) to exit",
    median(lambda: back_to_ready("certwait")), median(lambda: back_to_ready("kubectl")),
    "kubectl wait --for=condition=Ready; an upper bound: from the apply's start + 3 s")


def signal_to_exit(tool):
    with Sim("--deploy-delay", "1h") as sim:
        if tool == "kapply":
            waiter = sim.background(["kapply", "--wait", "--timeout", "5m"], DEPLOYMENT)
            until_line(waiter, "deployment.apps/web: waiting")
        else:
            sim.run(KUBECTL_APPLY, DEPLOYMENT)
            waiter = sim.background(["kubectl", "rollout", "status", "deployment/web", "--timeout=5m"])
            time.sleep(1.5)  # kubectl says nothing on stderr while it waits
        waiter.send_signal(signal.SIGINT)
        signalled = time.perf_counter()
        waiter.wait()
        return time.perf_counter() - signalled
row("kapply --wait: SIGINT while waiting to exit", median(lambda: signal_to_exit("kapply")),
    median(lambda: signal_to_exit("kubectl")), "kubectl rollout status")
PY
