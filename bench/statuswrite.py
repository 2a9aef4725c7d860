"""Shared by bench/certwait.sh and bench/kapply-wait.sh: how long a waiter takes to exit
once the status it waits for is written.

The status is PATCHed through the /status subresource from this already-running process
(no process start-up counted for the writer), on a connection opened before the waiter
starts; the clock starts just before the PATCH and stops when the waiter exits. Tools are
measured interleaved, repetition by repetition, so both see the same machine load.
"""
import base64, http.client, json, ssl, statistics, subprocess, sys, time, urllib.parse


class Server:
    """The API server of the current kubeconfig (kubesim's), reached with its token."""

    def __init__(self):
        config = json.loads(subprocess.check_output(["kubectl", "config", "view", "--raw", "-o", "json"]))
        cluster = config["clusters"][0]["cluster"]
        self.token = config["users"][0]["user"]["token"]
        self.url = urllib.parse.urlsplit(cluster["server"])
        self.context = ssl.create_default_context()
        if "certificate-authority-data" in cluster:
            ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
            self.context.load_verify_locations(cadata=ca)

    def connect(self):
        connection = http.client.HTTPSConnection(self.url.hostname, self.url.port, context=self.context)
        connection.connect()
        return connection

    def patch_status(self, connection, path, status):
        connection.request("PATCH", path, json.dumps({"status": status}), {
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/merge-patch+json"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            sys.exit(f"{sys.argv[0]}: status write to {path} answered {response.status}")


def write_to_exit(server, waiter, path, status, label):
    """Starts `waiter`, lets it list and watch, writes `status` to `path`; returns the
    seconds from the write to the waiter's exit."""
    connection = server.connect()
    process = subprocess.Popen(waiter, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.5)  # every waiter has listed and is watching by then
    if process.poll() is not None:
        sys.exit(f"{label}: {waiter[0]} ended early: {process.stderr.read().decode()}")
    start = time.perf_counter()
    server.patch_status(connection, path, status)
    process.wait()
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        sys.exit(f"{label}: {waiter[0]} failed: {process.stderr.read().decode()}")
    return elapsed


def medians(runs, tools, delay):
    """`delay(tool, rep)` for every repetition, tools interleaved; the median per tool."""
    samples = {tool: [] for tool in tools}
    for rep in range(runs):
        for tool in tools:
            samples[tool].append(delay(tool, rep))
    return [statistics.median(samples[tool]) for tool in tools]
