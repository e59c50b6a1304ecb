//! Child processes: a clean environment, output to a log file, killed (and reaped) on drop.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Variables the binaries read (and their prefixes); none may leak in from the environment
/// running the tests. `REDIS_URL` too: the suite tests the database path, not a cache.
const CLEARED_PREFIXES: [&str; 5] = ["CLASSIFY_", "DATABASE_", "INGEST_", "MCP_", "REDIS_"];
const CLEARED: [&str; 2] = ["LOG_FORMAT", "RUST_LOG"];

/// A port nobody listens on (now). Another process may take it before it is used; callers
/// that bind it retry on "address in use".
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// A running binary. Its stdout and stderr go to `<dir>/<name>.log`, whose tail is printed
/// when the test panics; it is killed with SIGKILL and reaped on drop if still running.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// `program args…` in `dir` (an empty temporary directory: no `.env`, no database file)
    /// with the service variables cleared, then `env` set.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        dir: &Path,
    ) -> Self {
        let log = dir.join(format!("{name}.log"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the log file");
        let err = out.try_clone().expect("clone the log file");
        let mut command = Command::new(program);
        command.args(args).current_dir(dir);
        for (key, _) in std::env::vars_os() {
            let Some(key) = key.to_str() else { continue };
            if CLEARED.contains(&key) || CLEARED_PREFIXES.iter().any(|p| key.starts_with(p)) {
                command.env_remove(key);
            }
        }
        let log_filter = std::env::var("E2E_RUST_LOG").unwrap_or_else(|_| "info".into());
        command
            .env("RUST_LOG", log_filter)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        Self {
            name: name.to_owned(),
            child,
            log,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// `kill -SIGNAL pid` (e.g. `-TERM`), as an operator or orchestrator would send it.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {} failed", self.pid());
    }

    /// SIGKILL at once (`kill -9`: no handler runs, nothing is flushed or released), then reap.
    pub fn kill9(&mut self) -> ExitStatus {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap")
    }

    /// The exit status, if it exits within `timeout`.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of its log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- last lines of {} (pid {}, {}) -----\n{}\n-----",
                self.name,
                self.child.id(),
                self.log.display(),
                self.log_tail(40)
            );
        }
    }
}
