#!/usr/bin/env bash
# make test: every test executable of the workspace at once, each as cargo would run it
# (from its package's folder, with the test flags given), then the doc tests.
#
# Why not `cargo test --workspace`: cargo runs the executables one after another, and
# the two big ones (the tools' binary-level tests, kubesim's tests) mostly wait on
# simulated clusters, kubectl and the tools starting; side by side they keep the two
# cores busy. Each executable's output is printed whole when it ends, so nothing
# interleaves; the exit status is 101 (cargo's) if any test failed.
#
#   scripts/test.sh [TEST ARGS...]      e.g. scripts/test.sh --skip corpus
set -euo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}

# Build every test executable (cargo prints what it compiles on stderr), then list them
# with the folder each runs in: cargo's JSON messages name both.
listing=$("$cargo" test --workspace --no-run --message-format=json-render-diagnostics)
mapfile -t executables < <(python3 -c '
import json, os, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable") and message["profile"]["test"]:
        print(os.path.dirname(message["manifest_path"]) + "\t" + message["executable"])
' <<<"$listing")

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
declare -A names=() logs=()
for entry in "${executables[@]}"; do
    dir=${entry%%$'\t'*} executable=${entry#*$'\t'}
    log="$out/${#names[@]}"
    (cd "$dir" && exec "$executable" "$@") >"$log" 2>&1 &
    folder=${dir#"$PWD"} folder=${folder#/}
    names[$!]="${executable#"$PWD"/} (in ${folder:-.}/)"
    logs[$!]=$log
done

failed=()
while ((${#names[@]})); do
    status=0
    wait -n -p pid || status=$?
    [[ -n ${pid:-} && -n ${names[$pid]:-} ]] || continue
    printf '\n     Ran %s\n' "${names[$pid]}"
    cat "${logs[$pid]}"
    ((status == 0)) || failed+=("${names[$pid]}")
    unset "names[$pid]"
done

"$cargo" test --workspace --doc --quiet -- "$@" || failed+=("doc tests")

if ((${#failed[@]})); then
    printf '\nfailed:\n' >&2
    printf '  %s\n' "${failed[@]}" >&2
    exit 101
fi
