//! A PostgreSQL server of the test's own (`initdb` in a temporary directory, on a free port),
//! for the tests that stop, crash and restart the database under a running service: the
//! shared server of `TEST_DATABASE_URL` serves every other test meanwhile and must stay up.
//!
//! The server binaries are the installed ones beside `TEST_DATABASE_URL`'s server (Debian's
//! `/usr/lib/postgresql/<version>/bin`, or `PG_BINDIR`). PostgreSQL refuses to run as root;
//! as root the server runs as the `postgres` user (`runuser`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{TestDatabase, free_port};

/// How a running server is stopped (`pg_ctl stop -m MODE`).
#[derive(Debug, Clone, Copy)]
pub enum StopMode {
    /// Ends every session (`57P01`) and checkpoints: a planned restart.
    Fast,
    /// Kills the server without a checkpoint, as a crash or `kill -9` of the postmaster
    /// would: the next start replays the write-ahead log.
    Immediate,
}

pub struct PgServer {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl PgServer {
    /// `None` (after saying so) when `TEST_DATABASE_URL` is unset, as for every PostgreSQL
    /// test; panics when the server binaries cannot be found or the server does not start.
    pub fn start() -> Option<Self> {
        if std::env::var("TEST_DATABASE_URL").map_or(true, |url| url.is_empty()) {
            eprintln!("skipped: TEST_DATABASE_URL is not set, the PostgreSQL variant did not run");
            return None;
        }
        let bindir = bindir();
        let dir = tempfile::tempdir().expect("temp dir");
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").args(["postgres:postgres", &path(dir.path())]));
        }
        let server = Self {
            bindir,
            dir,
            port: free_port(),
            as_postgres,
        };
        let data = server.data();
        server.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "-E", "UTF8"],
        );
        server.launch();
        Some(server)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A fresh schema on this server, as [`TestDatabase::postgres`] makes on the shared one.
    pub async fn database(&self) -> TestDatabase {
        TestDatabase::postgres_at(&self.url()).await
    }

    pub fn stop(&self, mode: StopMode) {
        let mode = match mode {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        };
        self.run("pg_ctl", &["-D", &self.data(), "-m", mode, "-w", "stop"]);
    }

    /// Starts it again (after [`PgServer::stop`]) on the same port and data, and waits
    /// until it accepts connections.
    pub fn launch(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            self.port,
            path(self.dir.path())
        );
        let log = format!("{}/server.log", path(self.dir.path()));
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    fn data(&self) -> String {
        format!("{}/data", path(self.dir.path()))
    }

    /// The server binary `program` with `args`, as the user the server runs as.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let program = path(&self.bindir.join(program));
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--", &program]);
            command
        } else {
            Command::new(&program)
        };
        command.args(args);
        command
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        run(&mut self.command(program, args))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data();
        let stop = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = self.command("pg_ctl", &stop).output();
    }
}

fn path(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// Runs `command`, panicking with its output unless it succeeds.
fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn is_root() -> bool {
    let id = run(Command::new("id").arg("-u"));
    String::from_utf8_lossy(&id.stdout).trim() == "0"
}

/// `PG_BINDIR`, or the newest `/usr/lib/postgresql/<version>/bin` holding `initdb`.
fn bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        return dir.into();
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .expect("PostgreSQL's server binaries (initdb, pg_ctl): set PG_BINDIR")
}
