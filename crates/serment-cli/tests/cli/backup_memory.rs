//! `verify-backup` and `restore` in bounded memory (docs/BACKUP.md §7, issue 12 item "bounded
//! memory"): on a backup of ~100 MiB of blobs, each runs as a child process whose peak RSS
//! (`VmHWM` of `/proc/<pid>/status`, read until it exits) must stay under a bound well below the
//! backup's size. Before, both held every blob in memory (peak RSS about the backup's size: a
//! backup larger than the host's free memory could not be restored). Nothing is timed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::drill::{free_port, lab_and_patient, put_to, serve_on};
use common::*;

/// Documents and their size: 4 x 24 MiB, so the backup's blobs are ~96 MiB.
const DOCS: usize = 4;
const DOC_LEN: usize = 24 << 20;
/// The bound on a child's peak RSS, KiB: half the backup's blobs. Holding every blob (the old
/// code) needs more than the blobs' total; streaming needs a fixed few MiB above the binary's own.
const BOUND_KIB: u64 = 48 << 10;

/// `serment --json ARGS` as a child; returns (exit code, JSON, peak RSS in KiB). The peak is
/// `VmHWM` (monotonic) read every few ms until the child exits; the last read is kept.
fn run_measured(home: &Path, args: &[&str]) -> (i32, serde_json::Value, u64) {
    let mut child = Command::new(bin())
        .arg("--json")
        .args(args)
        .env("SERMENT_HOME", home)
        .env("SERMENT_PASSPHRASE", PASS)
        .env_remove("SERMENT_SERVER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = std::fs::read_to_string(&status)
            && let Some(kib) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "not JSON: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v, peak)
}

fn blob_bytes(dir: &Path) -> u64 {
    files_under(&dir.join("blobs"))
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum()
}

#[test]
fn verify_backup_and_restore_memory_does_not_grow_with_the_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let server = serve_on(&data, free_port(), &["--init"]);
    let (lab, _patient) = lab_and_patient(root, &server.url, "labo-m1", "patient-m1");
    for i in 0..DOCS {
        put_to(&lab, root, &format!("BIG-{i}-"), DOC_LEN, "patient-m1");
    }
    server.stop();
    let backup = root.join("backup");
    let from = format!("file://{}", backup.display());
    let v = ok(
        root,
        &[
            "backup",
            "--once",
            "--to",
            &from,
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    let log_key = v["log_key"].as_str().unwrap().to_owned();
    let total = blob_bytes(&backup);
    assert!(
        total >= (DOCS * DOC_LEN) as u64,
        "the backup holds {total} bytes of blobs"
    );
    assert!(BOUND_KIB * 1024 * 2 <= total, "the bound must discriminate");

    let (code, v, peak) = run_measured(
        root,
        &["verify-backup", "--from", &from, "--log-key", &log_key],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["report"]["blobs"], DOCS as u64, "{v}");
    assert!(
        peak > 0 && peak <= BOUND_KIB,
        "verify-backup peaked at {peak} KiB for {} KiB of blobs (bound {BOUND_KIB} KiB)",
        total / 1024
    );

    let restored = root.join("restored");
    let (code, v, peak) = run_measured(
        root,
        &[
            "restore",
            "--from",
            &from,
            "--data-dir",
            restored.to_str().unwrap(),
            "--log-key-file",
            data.join("log.key").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["restored"]["blob_bytes"], total, "{v}");
    assert!(
        peak > 0 && peak <= BOUND_KIB,
        "restore peaked at {peak} KiB for {} KiB of blobs (bound {BOUND_KIB} KiB)",
        total / 1024
    );
    // What was written is the backup's bytes: every blob is in the restored blob store.
    assert_eq!(
        files_under(&restored)
            .iter()
            .filter(|f| f.to_string_lossy().contains("blobs"))
            .map(|f| std::fs::metadata(f).unwrap().len())
            .sum::<u64>(),
        total
    );
}
