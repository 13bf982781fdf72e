//! The short soak: `bench/soak.sh --minutes 2` with the binary under test, as tend's PID 1 in a
//! fresh pid namespace. Two minutes of SIGKILLs of services and of their children, random
//! restarts, stops and starts, reloads with changes and a `tend logs -f` coming and going,
//! then every line checked (none lost, cut or duplicated), RSS, descriptors and zombies. The
//! script prints a PASS/FAIL per criterion and exits 1 on any FAIL; see docs/benchmarks.md.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// The script, ended gracefully (its own cleanup takes the namespace down) if the test fails
/// or times out, and killed if that does not work.
struct Script(Child);

impl Drop for Script {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_some() {
            return;
        }
        send(self.0.id() as i32, "TERM");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn two_minutes_of_chaos_lose_nothing_and_leak_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let (stdout, stderr) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let child = Command::new("bash")
        .arg(root.join("bench/soak.sh"))
        .args([
            "--minutes",
            "2",
            "--services",
            "50",
            "--tend",
            tend_bin(),
            "--out",
        ])
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut script = Script(child);
    // Two minutes of chaos, then settling, shutdown and the check; the script bounds itself
    // at 12 minutes.
    let limit = Duration::from_secs(13 * 60);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = script.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < limit,
            "the soak did not end within {limit:?}\n{}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let summary = std::fs::read_to_string(&stdout).unwrap_or_default();
    let progress = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(
        status.success(),
        "the soak failed ({status}):\n{summary}\nprogress:\n{progress}"
    );
    assert!(
        summary.contains("Verdict: PASS"),
        "no verdict in the summary:\n{summary}\nprogress:\n{progress}"
    );
    assert!(
        out.join("samples.csv").exists(),
        "no samples.csv:\n{progress}"
    );
}
