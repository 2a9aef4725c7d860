//! Helpers for the binary-level tests: run the built tools as a user does (pipes,
//! exit codes, stderr) and start a private API simulator per test.
#![allow(dead_code)] // each test file uses its own subset

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The directory with the workspace's built binaries (target/debug), found from the
/// test executable's own path (target/debug/deps/test-xxxx).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/debug")
        .to_path_buf()
}

/// The workspace root (the folder with Cargo.lock), whichever package's tests include
/// this module.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .expect("Cargo.lock above the package")
        .to_path_buf()
}

/// Every binary of the workspace: the tools and kubesim.
const BINARIES: &[&str] = &[
    "envsplit",
    "secretgen",
    "manifest-gen",
    "kapply",
    "certwait",
    "kubesim",
];

/// Path of a workspace binary, never a stale one. Cargo builds a package's own binaries
/// before its tests (`CARGO_BIN_EXE_*`, kubesim's tests); the root package's tests run
/// other packages' binaries, so the first call in a test process checks every one
/// against its sources (its package, core, Cargo.lock) and, if one is missing or older,
/// runs `cargo build --workspace --all-targets` (as `make test` does) before any test goes on:
/// a plain `cargo test` then tests the code as it is.
pub fn bin(name: &str) -> PathBuf {
    static FRESH: std::sync::Once = std::sync::Once::new();
    if name == "kubesim"
        && let Some(path) = option_env!("CARGO_BIN_EXE_kubesim")
    {
        return PathBuf::from(path);
    }
    FRESH.call_once(|| {
        if BINARIES.iter().any(|b| stale(&bin_dir().join(b), b)) {
            build();
        }
    });
    bin_dir().join(name)
}

/// [`bin_dir`] for a PATH or `make BIN=`, with every tool and kubesim in it fresh.
pub fn fresh_bin_dir() -> PathBuf {
    bin("envsplit");
    bin_dir()
}

/// A PATH with [`fresh_bin_dir`] first, for commands run through a shell.
pub fn path_with_tools() -> String {
    format!("{}:{}", fresh_bin_dir().display(), path_with_kubectl())
}

/// The kubectl the tests drive. The Google Cloud SDK installs `kubectl` as a dispatcher
/// (`v1.32.4-dispatcher`) that asks the server for its version on every run, then starts
/// a second, version-matched kubectl (`kubectl.1.33` for kubesim): two Go processes and
/// an extra request per call, a fifth of the suite's CPU. Where it is one, the tests run
/// the kubectl it is built for (`kubectl.1.32` beside it, the version the tools target);
/// anywhere else, `kubectl` from PATH as it is. `KUBECTL=/path/to/kubectl` chooses one.
pub fn kubectl_path() -> &'static Path {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(chosen) = std::env::var_os("KUBECTL").map(PathBuf::from) {
            // A bare name is looked up on PATH, as a shell would.
            return if chosen.components().count() > 1 {
                std::path::absolute(chosen).expect("KUBECTL as an absolute path")
            } else {
                chosen
            };
        }
        let plain = PathBuf::from("kubectl");
        let Ok(out) = Command::new("kubectl")
            .args(["version", "--client", "-o", "json"])
            .env_remove("KUBECONFIG")
            .output()
        else {
            return plain;
        };
        let version: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let Some(client) = version["clientVersion"]["gitVersion"]
            .as_str()
            .and_then(|v| v.strip_suffix("-dispatcher"))
        else {
            return plain;
        };
        // v1.32.4 -> 1.32
        let minor = client
            .trim_start_matches('v')
            .rsplit_once('.')
            .map_or("", |(minor, _patch)| minor);
        let found = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("kubectl"))
                .find(|k| k.is_file())
        });
        found
            .and_then(|k| std::fs::canonicalize(k).ok())
            .map(|k| k.with_file_name(format!("kubectl.{minor}")))
            .filter(|k| k.is_file())
            .unwrap_or(plain)
    })
}

/// A folder whose only entry, `kubectl`, is [`kubectl_path`]: first on the PATH of what
/// runs kubectl by name (make, the scripts).
pub fn kubectl_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = bin_dir().join("kubectl-for-tests");
        let link = dir.join("kubectl");
        std::fs::create_dir_all(&dir).expect("kubectl-for-tests folder");
        let target = match kubectl_path() {
            p if p.is_absolute() => p.to_path_buf(),
            _ => return std::env::temp_dir().join("kpipe-no-kubectl-shim"),
        };
        if std::fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
            // Another test process may be making the same link: one of them wins.
            let temp = dir.join(format!("kubectl.{}", std::process::id()));
            let _ = std::fs::remove_file(&temp);
            std::os::unix::fs::symlink(&target, &temp).expect("kubectl link");
            std::fs::rename(&temp, &link).expect("kubectl link in place");
        }
        dir
    })
    .clone()
}

/// A command running [`kubectl_path`], with the caller's environment.
pub fn kubectl_cmd() -> Command {
    Command::new(kubectl_path())
}

/// The PATH for commands that run kubectl by name: [`kubectl_dir`] first.
pub fn path_with_kubectl() -> String {
    format!(
        "{}:{}",
        kubectl_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `make TARGET` in the repository with the test build's tools (`BIN=`) and the tests'
/// kubectl first on PATH, no cluster unless the caller names one (KUBECONFIG).
pub fn make_cmd(target: &str) -> Command {
    let mut c = Command::new("make");
    c.current_dir(workspace_root())
        .args(["--no-print-directory", target])
        .arg(format!("BIN={}", fresh_bin_dir().display()))
        // A make running `cargo test` must not hand its jobserver to ours.
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .env_remove("KUBECONFIG")
        .env("PATH", path_with_kubectl());
    c
}

/// The folders and files a workspace binary is built from.
fn sources(name: &str) -> Vec<PathBuf> {
    let root = workspace_root();
    let package = if name == "kubesim" {
        root.join("tests/kubesim")
    } else {
        root.join(name)
    };
    vec![
        package.join("src"),
        package.join("Cargo.toml"),
        root.join("core/src"),
        root.join("core/Cargo.toml"),
        root.join("Cargo.lock"),
    ]
}

/// Whether `path` is missing or older than any file it is built from.
fn stale(path: &Path, name: &str) -> bool {
    fn newest(path: &Path) -> std::time::SystemTime {
        let meta = std::fs::metadata(path).ok();
        let own = meta
            .as_ref()
            .and_then(|m| m.modified().ok())
            .unwrap_or(std::time::UNIX_EPOCH);
        if !meta.is_some_and(|m| m.is_dir()) {
            return own;
        }
        std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| newest(&e.path()))
            .fold(own, std::cmp::max)
    }
    let Ok(built) = std::fs::metadata(path).and_then(|m| m.modified()) else {
        return true;
    };
    sources(name).iter().any(|s| newest(s) > built)
}

/// `cargo build --workspace --all-targets` into the target folder these tests run from:
/// with the tests, as `make build-dev`, so that the binaries share the test build's
/// dependencies (built with the dev-dependencies' features) instead of their own.
fn build() {
    let dir = bin_dir();
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.args(["build", "--quiet", "--workspace", "--all-targets"])
        .arg("--target-dir")
        .arg(dir.parent().expect("target folder"))
        .current_dir(workspace_root());
    if dir.file_name().is_some_and(|d| d == "release") {
        c.arg("--release");
    }
    let out = c.output().expect("run cargo build");
    assert!(
        out.status.success(),
        "building the tools for the tests failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A command for a workspace binary with a clean, predictable environment.
pub fn cmd(name: &str) -> Command {
    let mut c = Command::new(bin(name));
    c.env_remove("KUBECONFIG").env("NO_COLOR", "1");
    c
}

/// Runs a command with `stdin` piped in, collecting stdout, stderr and the exit status.
pub fn run_with_stdin(mut c: Command, stdin: &[u8]) -> Output {
    c.run_with(stdin).output
}

/// One YAML document read as kubectl reads it (YAML 1.1, kpipe's own reader); null
/// when the document is empty.
pub fn yaml(text: &str) -> serde_json::Value {
    kpipe_core::yaml11::load(text)
        .unwrap_or_else(|e| panic!("line {}: {}\n{text}", e.line, e.message))
        .value
        .unwrap_or_default()
}

/// `value` as a YAML document, written by kpipe's own writer.
pub fn to_yaml(value: &serde_json::Value) -> String {
    kpipe_core::yaml::to_string(value)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What a run of a tool did. Assertions chain and, when one fails, the message shows
/// the exit status, stdout and stderr:
/// `cmd("envsplit").arg("x").run().code(2).stdout_empty().stderr_has("x:").no_secret(S)`.
/// It dereferences to the [`Output`], so `stdout(&run)` and `run.status` work too.
pub struct Run {
    output: Output,
    context: String,
}

/// Runs a [`Command`] into a [`Run`]: with stdin closed, or fed from bytes.
pub trait Exec {
    fn run(&mut self) -> Run;
    fn run_with(&mut self, stdin: impl AsRef<[u8]>) -> Run;
}

impl Exec for Command {
    fn run(&mut self) -> Run {
        self.stdin(Stdio::null())
            .output()
            .expect("spawn a tool")
            .into()
    }

    fn run_with(&mut self, stdin: impl AsRef<[u8]>) -> Run {
        self.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.spawn().expect("spawn a tool");
        let mut input = child.stdin.take().expect("stdin");
        let data = stdin.as_ref().to_vec();
        // A tool may exit before reading everything: a failed write is its business.
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let out = child.wait_with_output().expect("wait for a tool");
        writer.join().expect("stdin writer");
        out.into()
    }
}

/// Runs a command (stdin closed) for at most `limit`, killing it then, so that a test
/// of a deadline fails rather than hangs when the tool ignores it; the output and how
/// long it ran.
pub fn run_at_most(c: &mut Command, limit: Duration) -> (Run, Duration) {
    let started = Instant::now();
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a tool");
    while child.try_wait().expect("wait for a tool").is_none() && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait for a tool");
    (out.into(), started.elapsed())
}

/// Runs a command (stdin closed) that must end by itself: one still running after
/// [`WAIT_LIMIT`] is killed and the test fails. For a tool
/// that must stop long before a deadline of its own (`--timeout 1h`) or at one: how
/// soon it stops is measured in bench/, not asserted here.
pub fn run_bounded(c: &mut Command) -> Run {
    Background::spawn(c.stdin(Stdio::null())).finish()
}

/// [`run_bounded`] with `stdin` written to the command.
pub fn run_bounded_with(c: &mut Command, stdin: &str) -> Run {
    Background::spawn_with(c, stdin).finish()
}

/// A port on 127.0.0.1 that accepts connections and never answers (a server whose
/// process is stopped, or a proxy whose backend is gone), for as long as the test runs.
pub fn silent_listener() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().flatten() {
            open.push(stream);
        }
    });
    port
}

/// A port on 127.0.0.1 where nothing listens: connections are refused.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A unified diff of what a stream should have held against what it held.
fn differs(stream: &str, expected: &str, actual: &str) -> String {
    let diff = similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .header("expected", "actual")
        .to_string();
    format!("{stream} differs from what is expected:\n{diff}")
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            output,
            context: String::new(),
        }
    }
}

impl std::ops::Deref for Run {
    type Target = Output;
    fn deref(&self) -> &Output {
        &self.output
    }
}

impl Run {
    /// Adds `text` (a simulator's log, the input) to every failure message.
    #[must_use]
    pub fn context(mut self, text: impl std::fmt::Display) -> Run {
        self.context = text.to_string();
        self
    }

    #[track_caller]
    fn check(&self, ok: bool, what: &str) -> &Run {
        assert!(
            ok,
            "{what}\n--- exit: {}\n--- stdout:\n{}\n--- stderr:\n{}{}",
            self.output.status,
            self.stdout(),
            self.stderr(),
            if self.context.is_empty() {
                String::new()
            } else {
                format!("\n--- context:\n{}", self.context)
            }
        );
        self
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The exit code is `code` (a death by signal is none).
    #[track_caller]
    pub fn code(&self, code: i32) -> &Run {
        self.check(
            self.output.status.code() == Some(code),
            &format!("expected exit code {code}"),
        )
    }

    #[track_caller]
    pub fn success(&self) -> &Run {
        self.code(0)
    }

    #[track_caller]
    pub fn stdout_empty(&self) -> &Run {
        self.check(self.output.stdout.is_empty(), "expected nothing on stdout")
    }

    #[track_caller]
    pub fn stderr_empty(&self) -> &Run {
        self.check(self.output.stderr.is_empty(), "expected nothing on stderr")
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Run {
        self.check(
            self.stdout().contains(needle),
            &format!("expected {needle:?} on stdout"),
        )
    }

    #[track_caller]
    pub fn stdout_lacks(&self, needle: &str) -> &Run {
        self.check(
            !self.stdout().contains(needle),
            &format!("expected no {needle:?} on stdout"),
        )
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Run {
        self.check(
            self.stderr().contains(needle),
            &format!("expected {needle:?} on stderr"),
        )
    }

    #[track_caller]
    pub fn stderr_lacks(&self, needle: &str) -> &Run {
        self.check(
            !self.stderr().contains(needle),
            &format!("expected no {needle:?} on stderr"),
        )
    }

    /// Stdout is exactly `expected`: a whole output, where it is stable.
    #[track_caller]
    pub fn stdout_is(&self, expected: &str) -> &Run {
        let actual = self.stdout();
        self.check(actual == expected, &differs("stdout", expected, &actual))
    }

    /// Stderr is exactly `expected`: a whole output, where it is stable.
    #[track_caller]
    pub fn stderr_is(&self, expected: &str) -> &Run {
        let actual = self.stderr();
        self.check(actual == expected, &differs("stderr", expected, &actual))
    }

    /// `secret` is on stderr in none of the forms a leak takes: as is, base64 (standard
    /// and URL-safe, as Secret `data` holds it), JSON-escaped (as a server echoes it).
    /// Secret values belong on stdout (the manifests), never in messages.
    #[track_caller]
    pub fn no_secret(&self, secret: &str) -> &Run {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let err = self.stderr();
        let json = serde_json::to_string(secret).expect("a string");
        for form in [
            secret.to_owned(),
            STANDARD.encode(secret),
            URL_SAFE.encode(secret),
            json[1..json.len() - 1].to_owned(),
        ] {
            self.check(
                !err.contains(&form),
                &format!("a secret value reached stderr (as {form:?})"),
            );
        }
        self
    }

    /// [`Run::no_secret`] for each of `secrets`.
    #[track_caller]
    pub fn no_secrets(&self, secrets: &[&str]) -> &Run {
        for secret in secrets {
            self.no_secret(secret);
        }
        self
    }
}

/// How long a test waits for something that is bound to happen (a log line, a process
/// to get somewhere): far more than it takes on a loaded machine, so that reaching it
/// means a hang, not a slow run.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// A tool running in the background, its stderr readable line by line as it comes: a
/// test waits for the tool to say it has got somewhere, then acts (writes to the
/// cluster, sends a signal).
pub struct Background {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// The whole stderr, exactly as written, once the tool has closed it.
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    seen: Vec<String>,
}

impl Background {
    /// Starts `c` with stdin closed, stdout and stderr piped.
    pub fn start(mut c: Command) -> Background {
        Background::spawn(c.stdin(Stdio::null()))
    }

    /// Starts `c` with `stdin` written to it and then closed.
    pub fn start_with(mut c: Command, stdin: &str) -> Background {
        Background::spawn_with(&mut c, stdin)
    }

    fn spawn_with(c: &mut Command, stdin: &str) -> Background {
        let mut background = Background::spawn(c.stdin(Stdio::piped()));
        let mut input = background.child.stdin.take().expect("stdin");
        let data = stdin.to_owned();
        std::thread::spawn(move || {
            // A tool may exit before reading everything: a failed write is its business.
            let _ = input.write_all(data.as_bytes());
        });
        background
    }

    fn spawn(c: &mut Command) -> Background {
        use std::io::BufRead;
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn a tool");
        let mut err = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut line = Vec::new();
            while err.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                all.extend_from_slice(&line);
                let _ = tx.send(String::from_utf8_lossy(&line).trim_end().to_owned());
                line.clear();
            }
            all
        });
        Background {
            child,
            lines,
            stderr: Some(stderr),
            seen: Vec::new(),
        }
    }

    /// The process id (for a signal to it, or to its group).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Blocks until a stderr line contains `text`; the generous limit only guards
    /// against a hang.
    #[track_caller]
    pub fn expect_line(&mut self, text: &str) {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => panic!(
                    "no stderr line with {text:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Sends `signal` (`-INT`, `-TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill {signal}");
    }

    /// Waits for the exit (at most [`WAIT_LIMIT`], then it is killed and the test
    /// fails); the whole run: its exit status, stdout and stderr.
    #[track_caller]
    pub fn finish(mut self) -> Run {
        let mut stdout = self.child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stdout, &mut out);
            out
        });
        let deadline = Instant::now() + WAIT_LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for a tool") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "still running after {WAIT_LIMIT:?}; stderr so far:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout = reader.join().expect("stdout reader");
        let stderr = self
            .stderr
            .take()
            .expect("stderr reader")
            .join()
            .expect("stderr reader");
        Run::from(Output {
            status,
            stdout,
            stderr,
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `kubesim serve` process on its own port and state, killed on drop.
pub struct Sim {
    child: Child,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Sim {
    /// Starts `kubesim serve` with extra flags and waits until its kubeconfig is written.
    pub fn start(args: &[&str]) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let log = std::fs::File::create(dir.path().join("kubesim.log")).unwrap();
        let child = Command::new(bin("kubesim"))
            .arg("serve")
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn kubesim");
        let sim = Sim {
            child,
            dir,
            kubeconfig,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !sim.kubeconfig.exists() {
            assert!(
                Instant::now() < deadline,
                "kubesim did not start: {}",
                sim.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sim
    }

    /// Sends SIG`signal` (`TERM`, `INT`) to the simulator and returns its exit code.
    pub fn stop(mut self, signal: &str) -> Option<i32> {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal}");
        self.child.wait().expect("wait for kubesim").code()
    }

    /// The simulator's own stderr so far, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kubesim.log")).unwrap_or_default()
    }

    /// Blocks until a line of the simulator's log satisfies `found` and returns it:
    /// how a test waits for something to have happened on the server (a request seen,
    /// a controller's step) instead of sleeping. `what` names it for the failure; the
    /// generous limit only guards against a hang.
    #[track_caller]
    pub fn await_log(&self, what: &str, found: impl Fn(&str) -> bool) -> String {
        self.await_in_log(what, |log| {
            log.lines().find(|l| found(l)).map(str::to_owned)
        })
    }

    /// Polls the simulator's log until `seen` finds what it waits for (the one polling
    /// loop of the `await_*` helpers).
    #[track_caller]
    fn await_in_log<T>(&self, what: &str, seen: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let log = self.log();
            if let Some(found) = seen(&log) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "never happened: {what}\n--- kubesim log ---\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Blocks until `n` lines of the simulator's log contain `needle` (see [`Sim::await_log`]).
    #[track_caller]
    pub fn await_log_count(&self, needle: &str, n: usize) {
        self.await_log_lines(&format!("{n} log lines with {needle:?}"), n, |l| {
            l.contains(needle)
        });
    }

    /// Blocks until `n` lines of the simulator's log satisfy `found` (see [`Sim::await_log`]).
    #[track_caller]
    pub fn await_log_lines(&self, what: &str, n: usize, found: impl Fn(&str) -> bool) {
        self.await_in_log(what, |log| {
            (log.lines().filter(|l| found(l)).count() >= n).then_some(())
        });
    }

    /// Blocks until the simulated garbage collector has done what the deletions of
    /// `owner` (`PLURAL[.GROUP] NAMESPACE/NAME`, as `configmaps default/owner`; "": of
    /// anything) answered so far left it to do: at once when they left it nothing.
    /// After it, what the collector does or leaves alone is there to be checked.
    #[track_caller]
    pub fn await_gc(&self, owner: &str) {
        let of = if owner.is_empty() {
            String::new()
        } else {
            format!("{owner} (")
        };
        let will = format!("kubesim: garbage collector: will act on the deletion of {of}");
        let acted = format!("kubesim: garbage collector: acted on the deletion of {of}");
        let count = |log: &str, what: &str| log.lines().filter(|l| l.starts_with(what)).count();
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let log = self.log();
            if count(&log, &acted) >= count(&log, &will) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the garbage collector never acted on the deletion of {owner}\n--- kubesim log ---\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The simulator's log lines (`METHOD PATH -> OUTCOME [CALLER]`) for requests of
    /// the tools under test: not its own controllers' (exempt from faults), not kubectl's.
    pub fn tool_requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| {
                l.rsplit_once(" [").is_some_and(|(_, caller)| {
                    caller != "kubesim-controller]" && !caller.starts_with("kubectl")
                })
            })
            .map(String::from)
            .collect()
    }

    /// A command for a workspace binary pointed at this simulator via KUBECONFIG.
    pub fn cmd(&self, name: &str) -> Command {
        let mut c = cmd(name);
        c.env("KUBECONFIG", &self.kubeconfig);
        c
    }

    /// The real kubectl pointed at this simulator.
    pub fn kubectl(&self) -> Command {
        let mut c = kubectl_cmd();
        c.env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path());
        c
    }

    /// Runs kubectl with `args` (stdin closed) and returns its output, whatever the exit.
    pub fn kubectl_run(&self, args: &[&str]) -> Output {
        self.kubectl()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl")
    }

    /// Runs kubectl with `args` and returns its stdout, failing the test with its stderr
    /// and the simulator's log if it fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        self.kubectl_stdout(&format!("{args:?}"), &self.kubectl_run(args))
    }

    /// The stdout of a kubectl run (`what`: its arguments, for the message), failing the
    /// test with its stderr and the simulator's log if it did not succeed.
    pub fn kubectl_stdout(&self, what: &str, out: &Output) -> String {
        assert!(
            out.status.success(),
            "kubectl {what} failed: {}\n--- kubesim log ---\n{}",
            stderr(out),
            self.log()
        );
        stdout(out)
    }

    /// `kubectl apply -f -` with `yaml`, which must succeed.
    pub fn apply_yaml(&self, yaml: &str) {
        let mut c = self.kubectl();
        c.args(["apply", "-f", "-"]);
        self.kubectl_stdout("apply -f -", &run_with_stdin(c, yaml.as_bytes()));
    }

    /// `kubectl get RESOURCE -o json`, parsed.
    pub fn get_json(&self, resource: &str) -> serde_json::Value {
        serde_json::from_str(&self.kubectl_ok(&["get", resource, "-o", "json"]))
            .expect("kubectl -o json")
    }
}

/// The condition of `type` in an object's `status.conditions`; fails the test without one.
pub fn condition<'a>(obj: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .unwrap_or_else(|| panic!("no {kind} condition in {:#}", obj["status"]))
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
