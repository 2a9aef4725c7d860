#!/usr/bin/env python3
"""Run a shell command N times; print the median wall time (s) and peak RSS (KiB).

    measure.py [-n RUNS] [--stdin FILE] -- 'shell command'

Output: one line `<median_seconds> <peak_rss_kib>`. Each run is a fresh child, so the
peak RSS is the largest of any single run (ru_maxrss of the waited-for children).
"""
import argparse, os, resource, statistics, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("-n", type=int, default=5)
ap.add_argument("--stdin")
ap.add_argument("cmd", nargs=argparse.REMAINDER)
a = ap.parse_args()
cmd = " ".join(a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd)
times, peak = [], 0
for _ in range(a.n):
    stdin = open(a.stdin, "rb") if a.stdin else subprocess.DEVNULL
    pid = os.fork()
    if pid == 0:
        os.dup2(stdin.fileno() if a.stdin else os.open(os.devnull, os.O_RDONLY), 0)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.execvp("bash", ["bash", "-o", "pipefail", "-c", cmd])
    t0 = time.perf_counter()
    _, status, usage = os.wait4(pid, 0)
    times.append(time.perf_counter() - t0)
    peak = max(peak, usage.ru_maxrss)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"measure.py: command failed ({os.waitstatus_to_exitcode(status)}): {cmd}")
print(f"{statistics.median(times):.4f} {peak}")
