//! The binaries under test.
//!
//! Cargo builds only this package's targets before running its tests; the `ingest` and
//! `mcp-classifier` binaries belong to other packages (and artifact dependencies are unstable),
//! so the suite builds them itself: the first test of each test process that needs them runs
//! `cargo build -p ingest -p mcp-classifier` with the same profile and target directory as the
//! test executable (found from `std::env::current_exe()`: `<target>/<profile>/deps/<test>`),
//! and takes the binaries from `<target>/<profile>/`. Building every time — rather than only
//! when the files are missing — means a test never runs a stale binary; when nothing changed
//! the build is a no-op of about a second. A `OnceLock` runs it once per process; under
//! cargo-nextest (one process per test) a stamp file holding `NEXTEST_RUN_ID` makes it once per
//! run. Concurrent builds are safe: cargo serialises them on its own build-directory lock, so
//! the second one waits and then finds nothing to do.
//!
//! `E2E_BIN_DIR=<dir>` skips the build and uses the binaries found in `<dir>` (for CI that
//! builds them in an earlier step, or release builds).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub struct Binaries {
    pub ingest: PathBuf,
    pub classifier: PathBuf,
}

/// The built binaries, building them first if this process has not yet done so.
pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(locate_or_build)
}

fn in_dir(dir: &Path) -> Binaries {
    let binaries = Binaries {
        ingest: dir.join(format!("ingest{}", std::env::consts::EXE_SUFFIX)),
        classifier: dir.join(format!("mcp-classifier{}", std::env::consts::EXE_SUFFIX)),
    };
    for path in [&binaries.ingest, &binaries.classifier] {
        assert!(path.is_file(), "{} does not exist", path.display());
    }
    binaries
}

fn locate_or_build() -> Binaries {
    if let Some(dir) = std::env::var_os("E2E_BIN_DIR").filter(|d| !d.is_empty()) {
        return in_dir(Path::new(&dir));
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let mut profile_dir = exe.parent().expect("the test executable's directory");
    if profile_dir.file_name().is_some_and(|name| name == "deps") {
        profile_dir = profile_dir.parent().expect("the profile directory");
    }
    let target_dir = profile_dir.parent().expect("the target directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let stamp = profile_dir.join(".e2e-binaries-built");
    let run_id = std::env::var("NEXTEST_RUN_ID").ok();
    let built_in_this_run = run_id
        .as_ref()
        .is_some_and(|id| std::fs::read_to_string(&stamp).is_ok_and(|stamped| stamped == *id));
    if !built_in_this_run {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let status = Command::new(cargo)
            .args(["build", "-p", "ingest", "-p", "mcp-classifier", "--profile"])
            .arg(profile)
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(crate::WORKSPACE)
            .status()
            .expect("run cargo build");
        assert!(
            status.success(),
            "`cargo build -p ingest -p mcp-classifier` failed ({status}); \
             the end-to-end tests need both binaries"
        );
        if let Some(id) = run_id {
            // Best effort: without the stamp the next test process just builds again (no-op).
            let _ = std::fs::write(&stamp, id);
        }
    }
    in_dir(profile_dir)
}
