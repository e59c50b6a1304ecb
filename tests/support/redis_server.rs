//! A Redis server of the test's own (`redis-server` on a free port, nothing saved), which the
//! test can pause, kill and start again.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::free_port;

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    /// `requirepass`, when clients must authenticate.
    password: Option<String>,
}

impl RedisServer {
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// One that requires `password` of every client.
    pub async fn start_with_password(password: &str) -> Self {
        Self::start_with(Some(password.to_owned())).await
    }

    async fn start_with(password: Option<String>) -> Self {
        let mut server = Self {
            port: free_port(),
            child: None,
            password,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Starts the server (again, on the same port) and waits until it answers.
    pub async fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(
                self.password
                    .iter()
                    .flat_map(|p| ["--requirepass", p.as_str()]),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (the suite needs Redis installed)");
        self.child = Some(child);
        for _ in 0..100 {
            if self.cli(&["ping"]).as_deref() == Some("PONG") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {} did not answer", self.port);
    }

    /// Stops it at once (SIGKILL): its data is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes it (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Thaws it (SIGCONT), its data intact.
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} {pid}");
    }

    /// What `redis-cli` prints for `args` against this server, trimmed; `None` when it fails.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(
                self.password
                    .iter()
                    .flat_map(|p| ["-a", p.as_str(), "--no-auth-warning"]),
            )
            .args(args)
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A paused server would not die of SIGKILL's cleanup otherwise… it does, but make
            // sure it is not left stopped.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}
