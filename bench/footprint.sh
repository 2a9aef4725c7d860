#!/usr/bin/env bash
# What each tool costs before it does any work: binary size, the shared libraries it
# loads (ldd) and start-up (`TOOL --version`, no shell in between: median wall time and
# mean CPU time of RUNS),
# next to kubectl's (`kubectl version --client`). The offline tools (envsplit, secretgen,
# manifest-gen) link no kube client, TLS stack or async runtime; kapply and certwait do.
#
# BEFORE_BIN=DIR adds the same figures for binaries built elsewhere (e.g. an older
# commit) to the notes column of each tool found there, for a before/after comparison in
# the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
use_bin
RUNS=${RUNS:-50}

python3 - "$BIN" "${BEFORE_BIN:-}" "$RUNS" <<'PY'
import os, resource, statistics, subprocess, sys, time

bin_dir, before_dir, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])

def startup(argv):
    """Median wall time and mean CPU time (user + system, from the children's rusage) of
    one run: at a few milliseconds the wall time is mostly process creation, which is
    the same for every binary; the CPU time shows what loading the binary costs."""
    times = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / runs
    return statistics.median(times), cpu

def libs(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    return sorted(l.split()[0] for l in out.splitlines() if "=>" in l or l.strip().startswith("/"))

def figures(path, argv):
    return os.path.getsize(path) / 2**20, len(libs(path)), startup(argv)

kubectl = subprocess.run(["which", "kubectl"], capture_output=True, text=True).stdout.strip()
k_size, k_libs, (k_start, k_cpu) = figures(os.path.realpath(kubectl), [kubectl, "version", "--client"])
for tool in ["envsplit", "secretgen", "manifest-gen", "kapply", "certwait"]:
    path = os.path.join(bin_dir, tool)
    size, nlibs, (start, cpu) = figures(path, [path, "--version"])
    notes = f"kubectl {k_size:.1f} MiB, {k_libs} shared libraries, {k_cpu * 1000:.2f} ms CPU"
    old = os.path.join(before_dir, tool) if before_dir else ""
    if os.path.exists(old):
        o_size, o_libs, (o_start, o_cpu) = figures(old, [old, "--version"])
        notes += (f"; before: {o_size:.1f} MiB, {o_libs} shared libraries, "
                  f"start-up {o_start * 1000:.2f} ms, {o_cpu * 1000:.2f} ms CPU")
    print(f"| {tool}: size, shared libraries, start-up (median of {runs}) "
          f"| {size:.1f} MiB, {nlibs} libs, {start * 1000:.2f} ms, {cpu * 1000:.2f} ms CPU "
          f"| {k_start * 1000:.2f} ms | {start / k_start:.2f} | {notes} |")
PY
