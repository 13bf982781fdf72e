//! Records the git commit for `tend --version` ("tend version X.Y.Z - git.HASH", the shape
//! Docker parses for its init binary).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    println!("cargo:rerun-if-env-changed=TEND_GIT_HASH");
    let hash = std::env::var("TEND_GIT_HASH").ok().or_else(|| {
        #[allow(clippy::disallowed_methods)] // build script: not part of the init
        let out = Command::new("git")
            .args(["rev-parse", "--short=7", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    println!(
        "cargo:rustc-env=TEND_GIT_HASH={}",
        hash.filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".into())
    );
}
