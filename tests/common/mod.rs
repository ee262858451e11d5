//! Helpers shared by the integration tests: privilege gating, running commands, udevd.
#![allow(dead_code)]

use std::process::Command;

/// Whether a privileged test may run. Without root it skips with a message, unless
/// `MICROCLOUD_TEST_PRIVILEGED=1` (CI) demands it, in which case it fails.
pub fn privileged(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("MICROCLOUD_TEST_PRIVILEGED").as_deref() == Ok("1") {
        panic!("{test}: needs root, and MICROCLOUD_TEST_PRIVILEGED=1 forbids skipping it");
    }
    eprintln!(
        "skipping {test}: needs root (set MICROCLOUD_TEST_PRIVILEGED=1 to make this an error)"
    );
    false
}

/// Run a command, panicking with its output if it fails; returns stdout.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Make sure udevd runs (started by hand on machines without systemd), then settle.
pub fn ensure_udevd() {
    if !std::path::Path::new("/run/udev/control").exists() {
        let _ = Command::new("/lib/systemd/systemd-udevd")
            .arg("--daemon")
            .status();
        let _ = Command::new("udevadm").args(["trigger"]).status();
    }
    let _ = Command::new("udevadm")
        .args(["settle", "--timeout=30"])
        .status();
}

/// Path of a binary built by this package.
pub fn bin(name: &str) -> std::path::PathBuf {
    match name {
        "microcloud" => env!("CARGO_BIN_EXE_microcloud").into(),
        "microcloudd" => env!("CARGO_BIN_EXE_microcloudd").into(),
        other => panic!("unknown binary {other}"),
    }
}
