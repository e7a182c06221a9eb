//! Helpers for driving the `serment` binary in tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

pub mod drill;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const PASS: &str = "test passphrase 0123";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_serment")
}

/// The shared FHIR data directory, or None (skip) outside CI. Panics in CI when missing.
pub fn shared_fhir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/fhir");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "CI=true but the shared FHIR data is missing at {}",
            dir.display()
        );
    }
    eprintln!(
        "SKIP: {} not found (it is required when CI=true)",
        dir.display()
    );
    None
}

/// Runs `serment --json ARGS` with SERMENT_HOME=home; returns (exit code, parsed JSON stdout).
pub fn run(home: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    run_env(home, args, &[])
}

/// [`run`] with more environment variables.
pub fn run_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, serde_json::Value) {
    let out = Command::new(bin())
        .arg("--json")
        .args(args)
        .env("SERMENT_HOME", home)
        .env("SERMENT_PASSPHRASE", PASS)
        .env_remove("SERMENT_SERVER")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "not JSON: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

/// Runs and asserts success.
pub fn ok(home: &Path, args: &[&str]) -> serde_json::Value {
    let (code, v) = run(home, args);
    assert_eq!(code, 0, "serment {args:?} failed: {v}");
    v
}

/// The waiting period of social recovery is at least 24 hours (PROTOCOL.md §4.3): a test
/// moves the server's clock (every request logged a day and a second ago, in its database) and
/// runs `recover --social --complete` with the completing client's clock moved as far (a
/// debug-build test setting, `SERMENT_TEST_CLOCK_OFFSET_SECS`).
pub fn complete_social_after_the_wait(
    data: &Path,
    home: &Path,
    args: &[&str],
) -> serde_json::Value {
    sql(
        data,
        "UPDATE social_requests SET logged_at = logged_at - 86401",
    );
    let (code, v) = run_env(home, args, &[("SERMENT_TEST_CLOCK_OFFSET_SECS", "86401")]);
    assert_eq!(code, 0, "serment {args:?} failed: {v}");
    v
}

/// Runs `serment ARGS` without `--json` with SERMENT_HOME=home: (exit code, stdout, stderr).
pub fn run_text(home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env("SERMENT_HOME", home)
        .env("SERMENT_PASSPHRASE", PASS)
        .env_remove("SERMENT_SERVER")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `serment ARGS` (text output) with SERMENT_HOME=home, asserts success, returns stderr:
/// the warnings a user sees.
pub fn ok_stderr(home: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .env("SERMENT_HOME", home)
        .env("SERMENT_PASSPHRASE", PASS)
        .env_remove("SERMENT_SERVER")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "serment {args:?} failed: {stderr}");
    stderr
}

/// For each `(directory, handle)`: an identity at the KDF floor in `root/directory`, registered
/// on `url`. Returns the homes, in order.
pub fn registered(root: &Path, url: &str, users: &[(&str, &str)]) -> Vec<PathBuf> {
    users
        .iter()
        .map(|(dir, handle)| {
            let home = root.join(dir);
            ok(&home, &["id", "new", "--name", handle, "--kdf", "floor"]);
            ok(&home, &["register", "--server", url]);
            home
        })
        .collect()
}

/// Runs one SQL statement on the server's live database (WAL: the server keeps running).
pub fn sql(data: &Path, statement: &str) -> Vec<String> {
    let url = format!("sqlite://{}", data.join("serment.db").display());
    let statement = statement.to_owned();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            use sqlx::Row as _;
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let rows = sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            rows.iter()
                .map(|r| r.try_get::<String, _>(0).unwrap_or_default())
                .collect()
        })
}

/// A `serment serve` child process on a free loopback port.
pub struct ServerProc {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
}

impl ServerProc {
    pub fn start(data_dir: &Path, extra: &[&str]) -> ServerProc {
        let mut child = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            if let Some(u) = line.strip_prefix("serment: listening on ") {
                break u.trim().to_owned();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ServerProc {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// Stops the server gracefully (SIGINT) so SQLite checkpoints its WAL.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every regular file below `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// Runs `serment --json device link` on `home` (issue 16); returns the pairing code it shows on
/// stderr and the child, whose stdout is the final JSON object ([`finish_link`]).
// The caller waits for the child with `finish_link`.
#[allow(clippy::zombie_processes)]
pub fn start_link(home: &Path) -> (String, Child) {
    let mut child = Command::new(bin())
        .args(["--json", "device", "link"])
        .env("SERMENT_HOME", home)
        .env("SERMENT_PASSPHRASE", PASS)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "device link ended without showing a code"
        );
        if let Some(rest) = line.trim().strip_prefix("serment: pairing code: ") {
            let code = rest.to_owned();
            // Drain the rest of stderr so the child never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut sink = String::new();
                while err.read_line(&mut sink).unwrap_or(0) > 0 {
                    sink.clear();
                }
            });
            return (code, child);
        }
    }
}

/// Waits for a `device link` child: (exit code, its JSON stdout or null).
pub fn finish_link(child: Child) -> (i32, serde_json::Value) {
    let out = child.wait_with_output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), v)
}

/// The arguments of `serment device join` with `code` against `server` (floor KDF, for speed).
pub fn join_args<'a>(server: &'a str, code: &'a str) -> [&'a str; 8] {
    [
        "device", "join", "--server", server, "--code", code, "--kdf", "floor",
    ]
}

/// Links a new device at `new_home` to the identity of `home` through the real pairing flow
/// (`device link` in the background, `device join --code` on the new home), and checks that
/// both succeeded. Returns the code (used once now), the join's JSON and the link's JSON.
pub fn link_new_device(
    home: &Path,
    new_home: &Path,
    server: &str,
) -> (String, serde_json::Value, serde_json::Value) {
    let (code, link) = start_link(home);
    let joined = ok(new_home, &join_args(server, &code));
    let (lc, linked) = finish_link(link);
    assert_eq!(lc, 0, "device link failed: {linked}");
    // Both sides show the same fingerprint of the new device, for a person to compare.
    assert_eq!(joined["device_fingerprint"], linked["device_fingerprint"]);
    (code, joined, linked)
}

/// Runs `serment --json ARGS` and returns (exit code, JSON stdout, the recovery code it showed on
/// stderr, if any: `serment id recovery-code`, `serment recover`).
pub fn run_code(home: &Path, args: &[&str]) -> (i32, serde_json::Value, Option<String>) {
    let out = Command::new(bin())
        .arg("--json")
        .args(args)
        .env("SERMENT_HOME", home)
        .env("SERMENT_PASSPHRASE", PASS)
        .env_remove("SERMENT_SERVER")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| panic!("not JSON: {stdout}\nstderr: {stderr}"));
    let code = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("serment: recovery code: "))
        .map(str::to_owned);
    (out.status.code().unwrap_or(-1), v, code)
}

/// `serment id recovery-code --kdf floor` on `home`: the code shown.
pub fn recovery_code(home: &Path) -> String {
    let (c, v, code) = run_code(home, &["id", "recovery-code", "--kdf", "floor"]);
    assert_eq!(c, 0, "id recovery-code failed: {v}");
    code.expect("id recovery-code showed no code")
}

/// The SMTP server's URL and maildir, or `None` (skip) outside CI.
pub fn smtp() -> Option<(String, PathBuf)> {
    match (
        std::env::var("SERMENT_TEST_SMTP_URL"),
        std::env::var("SERMENT_TEST_MAILDIR"),
    ) {
        (Ok(u), Ok(d)) => Some((u, PathBuf::from(d))),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "CI=true but SERMENT_TEST_SMTP_URL / SERMENT_TEST_MAILDIR are not set (.ci/smtp.sh)"
            )
        }
        _ => {
            eprintln!(
                "SKIP: SERMENT_TEST_SMTP_URL and SERMENT_TEST_MAILDIR not set (source .ci/smtp.sh; required when CI=true)"
            );
            None
        }
    }
}

/// The one-time code of the newest mail to `to` not in `seen`, waiting up to 20 s.
pub fn otp_from_maildir(
    maildir: &Path,
    to: &str,
    seen: &mut std::collections::HashSet<PathBuf>,
) -> String {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for sub in ["new", "cur"] {
            let Ok(rd) = std::fs::read_dir(maildir.join(sub)) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if seen.contains(&p) {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&p) else {
                    continue;
                };
                if !text.contains(to) {
                    continue;
                }
                let Some(pos) = text.find("one-time code is: ") else {
                    continue;
                };
                let code: String = text[pos + 18..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                seen.insert(p);
                assert_eq!(code.len(), 8, "{text}");
                return code;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no one-time code mail to {to} in {}",
            maildir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The fields docs/JSON.md documents for `serment <command>`.
pub fn documented(command: &str) -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/JSON.md"),
    )
    .unwrap();
    let head = format!("### `serment {command}`");
    let mut out = std::collections::BTreeSet::new();
    let mut inside = false;
    for l in text.lines() {
        if l.starts_with("### ") || l.starts_with("## ") {
            inside = l == head;
            continue;
        }
        let cols: Vec<&str> = l.split('|').map(str::trim).collect();
        if inside && cols.len() >= 4 && cols[1].starts_with('`') {
            out.insert(cols[1].trim_matches('`').to_owned());
        }
    }
    assert!(!out.is_empty(), "docs/JSON.md documents no {head}");
    out
}

pub fn keys(v: &serde_json::Value) -> std::collections::BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// Copies a directory tree (a stopped server's data directory, to serve again later).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
