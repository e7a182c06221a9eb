//! Steps shared by the ransomware drill (`ransomware_drill.rs`) and the restore tests
//! (`restore.rs`): a server on a fixed port (so that a restored one answers at the address the
//! clients registered), a lab and a patient who pinned each other, documents put and read back,
//! and the attack on the data directory.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{ServerProc, bin, ok, run};

/// `serment serve` on `127.0.0.1:port` with `data` and `extra` arguments (`--init` to make a new
/// one), its log key from the data directory (never `SERMENT_LOG_KEY`).
pub fn serve_on(data: &Path, port: u16, extra: &[&str]) -> ServerProc {
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "warn")
        .env_remove("SERMENT_LOG_KEY")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(u) = line.strip_prefix("serment: listening on ") {
            break u.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    ServerProc {
        child,
        url,
        data_dir: data.to_path_buf(),
    }
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A lab `lab_name` and a patient `patient_name` (homes under `root`), registered on `server`
/// and each pinning the other.
pub fn lab_and_patient(
    root: &Path,
    server: &str,
    lab_name: &str,
    patient_name: &str,
) -> (PathBuf, PathBuf) {
    let (lab, patient) = (root.join("lab"), root.join("patient"));
    ok(&lab, &["id", "new", "--name", lab_name]);
    ok(&patient, &["id", "new", "--name", patient_name]);
    ok(&lab, &["register", "--server", server]);
    ok(&patient, &["register", "--server", server]);
    ok(&lab, &["contact", "add", patient_name]);
    ok(&patient, &["contact", "add", lab_name]);
    (lab, patient)
}

/// `put` of `len` bytes repeating `marker` to `to`: (document id, content).
pub fn put_to(home: &Path, root: &Path, marker: &str, len: usize, to: &str) -> (String, Vec<u8>) {
    let f = root.join(format!("{marker}.txt"));
    let content: Vec<u8> = marker.bytes().cycle().take(len).collect();
    std::fs::write(&f, &content).unwrap();
    let v = ok(home, &["put", f.to_str().unwrap(), "--to", to]);
    (v["doc_id"].as_str().unwrap().to_owned(), content)
}

/// `get DOC`: (exit code, JSON, the bytes written if any).
pub fn get_doc(home: &Path, root: &Path, doc: &str) -> (i32, serde_json::Value, Option<Vec<u8>>) {
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).unwrap();
    let out = root.join(format!("out-{doc}-{}", hex::encode(r)));
    let (code, v) = run(home, &["get", doc, "-o", out.to_str().unwrap()]);
    (code, v, std::fs::read(&out).ok())
}

/// Ransomware: every file under `data` overwritten with random bytes.
pub fn ransack(data: &Path) {
    for f in super::files_under(data) {
        let len = std::fs::metadata(&f).unwrap().len().max(64) as usize;
        let mut junk = vec![0u8; len];
        getrandom::fill(&mut junk).unwrap();
        std::fs::write(&f, junk).unwrap();
    }
}

/// `SERMENT_TEST_DATABASE_URL`, or `None` (skip, with a message) outside CI; fails when
/// `CI=true` and it is missing.
pub fn pg_url(test: &str) -> Option<String> {
    match std::env::var("SERMENT_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but SERMENT_TEST_DATABASE_URL is not set: {test} cannot run")
        }
        _ => {
            eprintln!("SKIP: set SERMENT_TEST_DATABASE_URL=postgres://… to run {test}");
            None
        }
    }
}

/// Runs one SQL statement (only constants and generated names) on the database at `url`.
pub fn pg_exec(url: &str, sql: &str) {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            use sqlx::Connection as _;
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .unwrap();
        });
}

/// A fresh schema of the test database: (its name, a URL whose connections use it).
pub fn fresh_schema(url: &str, prefix: &str) -> (String, String) {
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).unwrap();
    let schema = format!("{prefix}_{}", hex::encode(r));
    pg_exec(url, &format!("CREATE SCHEMA {schema}"));
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    (schema, scoped)
}

/// A `file://` URL of a local directory (a backup target).
pub fn url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

/// `serment backup --once --to file://TO --data-dir DATA`, which must succeed.
pub fn backup_once(root: &Path, data: &Path, to: &Path) -> serde_json::Value {
    super::ok(
        root,
        &[
            "backup",
            "--once",
            "--to",
            &url(to),
            "--data-dir",
            data.to_str().unwrap(),
        ],
    )
}

/// `serment restore --from file://FROM --data-dir TO --log-key-file KEY EXTRA...`: (exit code,
/// JSON).
pub fn restore(
    root: &Path,
    from: &Path,
    to: &Path,
    key: &Path,
    extra: &[&str],
) -> (i32, serde_json::Value) {
    let (f, t, k) = (
        url(from),
        to.display().to_string(),
        key.display().to_string(),
    );
    let mut args = vec![
        "restore",
        "--from",
        f.as_str(),
        "--data-dir",
        t.as_str(),
        "--log-key-file",
        k.as_str(),
    ];
    args.extend_from_slice(extra);
    super::run(root, &args)
}
