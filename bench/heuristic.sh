#!/usr/bin/env bash
# envsplit's default split (no --config/--secret/--rules) against a labelled corpus of
# real env files: tests/corpus/env (provenance in tests/corpus/README.md), every key
# labelled secret or config by reading it (tests/corpus/env-labels.tsv). A quality
# measure, not a timing: precision = labelled secrets among the keys sent to the Secret,
# recall = labelled secrets sent to the Secret. kubectl has no such split: n/a. Prints
# table rows only; names the keys it gets wrong (keys only, never a value).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
use_bin

python3 - tests/corpus/env-labels.tsv tests/corpus/env <<'PY'
import collections, os, re, subprocess, sys

labels_file, corpus = sys.argv[1], sys.argv[2]
labels = collections.defaultdict(dict)
for line in open(labels_file):
    if line.startswith("#") or not line.strip():
        continue
    name, key, label = line.rstrip("\n").split("\t")
    labels[name][key] = label

explain = re.compile(r"^envsplit: .*:\d+: (\S+): (secret|config) \(")
tp = fp = fn = tn = 0
missed, wrong = [], []
for name in sorted(labels):
    path = os.path.join(corpus, name)
    # Read as dotenv (envsplit's default), or as docker where dotenv refuses the file.
    for fmt in ("dotenv", "docker"):
        run = subprocess.run(["envsplit", "--app", "x", "--format", fmt, "--explain", path],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run.returncode == 0:
            break
    else:
        sys.exit(f"{name}: envsplit reads it in no format")
    sides = dict(m.groups() for m in map(explain.match, run.stderr.splitlines()) if m)
    assert set(sides) == set(labels[name]), f"{name}: keys differ from the labels"
    for key, label in labels[name].items():
        secret = sides[key] == "secret"
        if label == "secret":
            tp += secret
            fn += not secret
            if not secret:
                missed.append(f"{name}:{key}")
        else:
            fp += secret
            tn += not secret
            if secret:
                wrong.append(f"{name}:{key}")
precision = 100 * tp / (tp + fp) if tp + fp else 100.0
recall = 100 * tp / (tp + fn) if tp + fn else 100.0
files, keys = len(labels), tp + fp + fn + tn
notes = f"{files} files, {keys} keys, {tp + fn} labelled secret; {fn} credentials missed, {fp} settings sent to the Secret"
if missed:
    notes += "; missed: " + " ".join(missed)
if wrong:
    notes += "; to the Secret: " + " ".join(wrong)
print(f"| envsplit default split, precision / recall | {precision:.1f} % / {recall:.1f} % | n/a | n/a | {notes} |")
PY
