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

/// Path of a workspace binary; `make test` builds them all before the tests run.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (make test does)",
        path.display()
    );
    path
}

/// A command for a workspace binary with a clean, predictable environment.
pub fn cmd(name: &str) -> Command {
    let mut c = Command::new(bin(name));
    c.env_remove("KUBECONFIG").env("NO_COLOR", "1");
    c
}

/// Runs a command with `stdin` piped in, collecting stdout, stderr and the exit status.
pub fn run_with_stdin(mut c: Command, stdin: &[u8]) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().unwrap();
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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

    /// The simulator's own stderr so far, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kubesim.log")).unwrap_or_default()
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
        let mut c = Command::new("kubectl");
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
