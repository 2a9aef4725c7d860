# Shell functions shared by scripts/demo.sh and bench/*.sh (source this file).

# start_kubesim DIR [FLAGS...]: starts `kubesim serve FLAGS` in the background with its
# log in DIR/kubesim.log, waits (up to 15 s) until it has written DIR/kubeconfig, and
# exports KUBECONFIG. Sets sim_pid; stop_kubesim (meant for an EXIT trap) ends it.
start_kubesim() {
    local dir=$1
    shift
    kubesim serve --kubeconfig-out "$dir/kubeconfig" "$@" 2>"$dir/kubesim.log" &
    sim_pid=$!
    for _ in $(seq 300); do
        [[ -s $dir/kubeconfig ]] && break
        kill -0 "$sim_pid" 2>/dev/null || break
        sleep 0.05
    done
    if [[ ! -s $dir/kubeconfig ]]; then
        echo "kubesim did not start: $(cat "$dir/kubesim.log")" >&2
        return 1
    fi
    export KUBECONFIG=$dir/kubeconfig
}

stop_kubesim() {
    if [[ -n ${sim_pid:-} ]]; then
        kill "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
        sim_pid=
    fi
}

# use_bin: puts the tools of BIN (default target/release, as `make bench` builds them)
# first on PATH, so every script runs the same binaries.
use_bin() {
    BIN=${BIN:-target/release}
    PATH="$(cd "$BIN" && pwd):$PATH"
    export BIN PATH
}

# scratch_dir: a new folder in $work, removed on exit together with any kubesim started
# in it. HOME points there: kubectl starts with an empty discovery cache and fills it in
# a warm-up run, as on a workstation.
scratch_dir() {
    work=$(mktemp -d)
    sim_pid=
    trap 'stop_kubesim; rm -rf "$work"' EXIT
    export HOME=$work
}
