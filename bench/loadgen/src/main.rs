//! Bench-only load generator for the Serment server (issue 4; `docs/PERFORMANCE.md`).
//!
//! It starts `serment serve` on a loopback port with a fresh data directory, drives it with the
//! client library, and stops it. Nothing here is part of the product: the plaintext baseline
//! exists only in this binary, which uploads unsealed bytes through the same HTTP path (the
//! product has no switch to turn encryption off).
//!
//! ```text
//! serment-loadgen ingest  --serment target/release/serment [--clients 16] [--seconds 10]
//!                         [--pin-save-s 1] [--serve-arg ARG]...
//! serment-loadgen ingest  --server URL [--ca-cert PEM] [--server-pid PID] [--clients 16] ...
//!                         [--doc-kib 4] [--e2ee-only]
//! serment-loadgen bigfile --serment target/release/serment [--size-mib 2048] [--downloads 4]
//! ```
//!
//! - `ingest`: N client threads upload 4 KiB FHIR Observations for a fixed time, first through
//!   the plaintext baseline, then end to end encrypted (each sealed for two recipients plus the
//!   author, with `Session::put_version`, the code behind `serment put`). Reports documents/s,
//!   p50/p99 latency and the E2EE/plaintext ratio, on a fresh server each.
//! - `bigfile`: one child process seals and uploads a file of `--size-mib` MiB, then
//!   `--downloads` child processes download and open it at once. Reports each process's peak RSS
//!   (VmHWM) for the transfer (reset after the keystore is unlocked; the unlock's own peak is
//!   reported apart) and the server's peak RSS during each phase.
//!
//! `--doc-kib N` makes each Observation N KiB (default 4; past 256 KiB sealed, a document goes to
//! the blob store instead of inline in the commit, so `--blob-url s3://…` is exercised).
//! `--e2ee-only` skips the plaintext baseline (whose prepared pool is sent inline).
//!
//! `--serve-arg ARG` (repeatable) passes ARG to each `serment serve` the load generator starts
//! (`--serve-arg --blob-url --serve-arg s3://bucket/x`, `--serve-arg --database-url ...`).
//! `--server URL` targets a server that is already running (several instances behind a load
//! balancer, another machine) instead: `--ca-cert` names its private CA, `--server-pid` the
//! process whose CPU time is reported (none otherwise). The plaintext and E2EE phases then share
//! that server, one after the other.
//!
//! Output: human lines on stderr, one JSON object on stdout.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use serment_client::api::BlobRef;
use serment_client::contacts;
use serment_client::keystore::Keystore;
use serment_client::transport::Transport;
use serment_client::vault::{PinSave, Session};
use serment_core::DocId;
use serment_core::document::{self, Header, Metadata, SealInput};
use serment_core::identity::DeviceRecord;
use serment_core::keystore::KdfParams;
use serment_core::wrap::Recipient;
use zeroize::Zeroizing;

type Res<T> = Result<T, String>;

const PASS: &str = "loadgen-passphrase";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("ingest") => ingest(&Opts::parse(args.get(1..).unwrap_or_default())),
        Some("bigfile") => bigfile(&Opts::parse(args.get(1..).unwrap_or_default())),
        Some("child-upload") => child_upload(args.get(1..).unwrap_or_default()),
        Some("child-download") => child_download(args.get(1..).unwrap_or_default()),
        _ => Err(
            "usage: serment-loadgen ingest|bigfile --serment PATH [--clients N] \
                  [--seconds S] [--size-mib M] [--downloads D]"
                .into(),
        ),
    };
    match r {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("serment-loadgen: {e}");
            std::process::exit(1);
        }
    }
}

#[derive(Debug)]
struct Opts {
    serment: PathBuf,
    clients: usize,
    seconds: u64,
    size_mib: u64,
    downloads: usize,
    /// Size of each ingested Observation, KiB (`--doc-kib`, default 4).
    doc_kib: usize,
    /// Skip the plaintext baseline (`--e2ee-only`).
    e2ee_only: bool,
    /// Seconds between the E2EE clients' keystore saves of their log pin; 0 saves after every
    /// document (`PinSave::EveryWrite`, what `serment put` does).
    pin_save_s: u64,
    /// Extra arguments for each `serment serve` started (`--serve-arg`, repeatable).
    serve_args: Vec<String>,
    /// A running server to target instead of starting one (`--server`).
    server: Option<String>,
    /// The PEM file of that server's private CA (`--ca-cert`).
    ca_cert: Option<PathBuf>,
    /// The pid whose CPU time is reported as the server's (`--server-pid`).
    server_pid: Option<u32>,
}

impl Opts {
    fn parse(a: &[String]) -> Opts {
        let get = |k: &str| {
            a.iter()
                .position(|x| x == k)
                .and_then(|i| a.get(i + 1))
                .cloned()
        };
        Opts {
            serment: get("--serment").map_or_else(|| PathBuf::from("serment"), PathBuf::from),
            clients: get("--clients").and_then(|v| v.parse().ok()).unwrap_or(16),
            seconds: get("--seconds")
                .and_then(|v| v.parse().ok())
                .unwrap_or(10)
                .min(600),
            size_mib: get("--size-mib")
                .and_then(|v| v.parse().ok())
                .unwrap_or(2048),
            downloads: get("--downloads").and_then(|v| v.parse().ok()).unwrap_or(4),
            doc_kib: get("--doc-kib")
                .and_then(|v| v.parse().ok())
                .unwrap_or(4)
                .clamp(1, 64 * 1024),
            e2ee_only: a.iter().any(|x| x == "--e2ee-only"),
            serve_args: a
                .iter()
                .zip(a.iter().skip(1))
                .filter(|(k, _)| *k == "--serve-arg")
                .map(|(_, v)| v.clone())
                .collect(),
            server: get("--server"),
            ca_cert: get("--ca-cert").map(PathBuf::from),
            server_pid: get("--server-pid").and_then(|v| v.parse().ok()),
            pin_save_s: get("--pin-save-s")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
        }
    }
}

// ---- server ------------------------------------------------------------------------------------

/// The server under load: one this process started (and stops), or one already running.
struct Server {
    child: Option<Child>,
    url: String,
    /// The process whose CPU time is the server's, if known.
    pid: Option<u32>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// The server of `o`: `--server` if given, else a fresh `serment serve`.
    fn for_opts(o: &Opts) -> Res<Server> {
        match &o.server {
            Some(url) => Ok(Server {
                child: None,
                url: url.clone(),
                pid: o.server_pid,
                _dir: None,
            }),
            None => Server::start(&o.serment, &o.serve_args),
        }
    }

    fn start(serment: &Path, extra: &[String]) -> Res<Server> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut child = Command::new(serment)
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen", "127.0.0.1:0", "--max-blob-bytes", "8589934592"])
            .args(extra)
            // One log line per request would cost the server more than the bench measures.
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", serment.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                    sent = true;
                } else if sent {
                    eprintln!("server: {line}");
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "the server did not start".to_string())?;
        Ok(Server {
            pid: Some(child.id()),
            child: Some(child),
            url,
            _dir: Some(dir),
        })
    }

    /// The server's pid as `/proc` names it, or a name no process has.
    fn pid(&self) -> String {
        self.pid
            .map_or_else(|| "no-server-pid".to_owned(), |p| p.to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `VmHWM` (peak RSS) of a process, KiB.
fn vm_hwm_kib(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds (user + system) a process has used so far, from `/proc/PID/stat`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5), so 12 and 13 of `rest`.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Context switches (voluntary + involuntary) of a process's live threads so far, from
/// `/proc/PID/task/*/status` (a thread that exited meanwhile is not counted). Each hand-off
/// between threads (a tokio worker waking a database connection's thread and back) costs one
/// or two; unlike CPU time, the count does not grow when other processes load the machine.
fn context_switches(pid: &str) -> Option<u64> {
    let mut total = 0u64;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let Ok(s) = std::fs::read_to_string(t.path().join("status")) else {
            continue;
        };
        total += s
            .lines()
            .filter(|l| {
                l.starts_with("voluntary_ctxt_switches:")
                    || l.starts_with("nonvoluntary_ctxt_switches:")
            })
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Some(total)
}

/// Resets a process's peak RSS to its current RSS (Linux: `clear_refs` 5).
fn reset_hwm(pid: &str) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

// ---- identities --------------------------------------------------------------------------------

/// Creates a keystore (Argon2id at the format's floor, so setup is quick) and registers it.
/// The client transport for `o`: default, or trusting `--ca-cert`.
fn transport(o: &Opts) -> Res<Transport> {
    match &o.ca_cert {
        None => Ok(Transport::default()),
        Some(p) => {
            let pem = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Transport::default()
                .with_ca_pem(&pem)
                .map_err(|e| e.to_string())
        }
    }
}

/// A handle suffix unique to this run, so that phases and runs against one running server do
/// not collide.
fn run_tag() -> Res<String> {
    let mut r = [0u8; 4];
    getrandom::fill(&mut r).map_err(|e| e.to_string())?;
    Ok(hex::encode(r))
}

fn user(dir: &Path, handle: &str, url: &str, t: &Transport) -> Res<Session> {
    let ks = Keystore::create(
        &dir.join(handle).join("keystore.srmk"),
        Zeroizing::new(PASS.into()),
        handle,
        handle,
        KdfParams::FLOOR,
    )
    .map_err(|e| e.to_string())?;
    Session::register_with(ks, url, t).map_err(|e| e.to_string())
}

/// The recipient for a session's device: its X25519 key and, when the device advertises one,
/// its X-Wing key (wraps then use the hybrid suite, as `serment put` does).
fn recipient_of(s: &Session) -> Recipient {
    Recipient::from_device(&s.ks.device)
}

// ---- ingest ------------------------------------------------------------------------------------

/// A FHIR R4 Observation (synthetic patient, LOINC-coded) of exactly `size` bytes (≥ 1 KiB).
fn observation(n: u64, size: usize) -> Vec<u8> {
    let v = json!({
        "resourceType": "Observation",
        "id": format!("obs-{n}"),
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin [Mass/volume] in Blood"}]},
        "subject": {"reference": "Patient/p-0001", "identifier": {"system": "urn:oid:1.2.250.1.213.1.4.10", "value": "255081416802538"}},
        "effectiveDateTime": "2026-11-02T08:30:00+01:00",
        "valueQuantity": {"value": 12.0 + (n % 40) as f64 / 10.0, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"},
        "referenceRange": [{"low": {"value": 12.0, "unit": "g/dL"}, "high": {"value": 16.0, "unit": "g/dL"}}],
    });
    let mut s = v.to_string().into_bytes();
    // Pad with a note so every document is `size` bytes, as a lab result with comments would be.
    s.pop();
    s.extend_from_slice(b",\"note\":[{\"text\":\"");
    while s.len() < size - 4 {
        s.push(b'a' + (s.len() % 26) as u8);
    }
    s.extend_from_slice(b"\"}]}");
    s
}

fn meta(len: usize) -> Metadata {
    Metadata {
        content_length: len as u64,
        mime_type: Some("application/fhir+json".into()),
        resource_type: Some("Observation".into()),
        title: Some("Hemoglobin".into()),
        ..Metadata::default()
    }
}

/// A document prepared before the timed window for the plaintext baseline: a valid header (the
/// server checks it), the content unencrypted after it, and wraps bound to the header (the
/// server verifies them), all made outside the window.
struct Plain {
    doc_id: DocId,
    blob: Vec<u8>,
    wraps: Vec<Vec<u8>>,
}

fn prepare_plain(s: &Session, to: &[Recipient], n: u64, size: usize) -> Res<Plain> {
    let content = observation(n, size);
    let doc_id = DocId::random().map_err(|e| e.to_string())?;
    let mut sealed = Vec::new();
    let r = document::seal(
        SealInput {
            doc_id,
            doc_version: 1,
            author: &s.ks.device,
            recipients: to,
            metadata: meta(content.len()),
        },
        content.as_slice(),
        &mut sealed,
    )
    .map_err(|e| e.to_string())?;
    let mut blob = sealed.get(..Header::LEN).ok_or("short")?.to_vec();
    blob.extend_from_slice(&content);
    blob.resize(sealed.len(), 0);
    Ok(Plain {
        doc_id,
        blob,
        wraps: r.wraps.into_iter().map(|(_, w)| w).collect(),
    })
}

#[derive(Default)]
struct ClientResult {
    latencies_us: Vec<u64>,
    errors: u64,
    exhausted: bool,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0)
}

/// Runs one ingest phase on a fresh server. `plain_pool` is `Some(n)` for the baseline.
fn ingest_phase(o: &Opts, plain_pool: Option<usize>) -> Res<Value> {
    let server = Server::for_opts(o)?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (t, tag) = (transport(o)?, run_tag()?);
    let patient = user(dir.path(), &format!("patient-{tag}"), &server.url, &t)?;
    let gp = user(dir.path(), &format!("gp-{tag}"), &server.url, &t)?;
    let to = [recipient_of(&patient), recipient_of(&gp)];
    let mut sessions = Vec::with_capacity(o.clients);
    for i in 0..o.clients {
        let mut s = user(dir.path(), &format!("lab{i}-{tag}"), &server.url, &t)?;
        if o.pin_save_s > 0 {
            // A bulk uploader's setting: the log pin is written at most once a second.
            s.set_pin_save(PinSave::Every(Duration::from_secs(o.pin_save_s)));
        }
        sessions.push(s);
    }
    // Baseline: all client-side crypto happens here, before the window.
    let mut pools: Vec<Vec<Plain>> = Vec::new();
    if let Some(n) = plain_pool {
        let prep = Instant::now();
        pools = std::thread::scope(|sc| {
            let hs: Vec<_> = sessions
                .iter()
                .map(|s| {
                    let to = &to;
                    sc.spawn(move || {
                        (0..n as u64)
                            .map(|k| prepare_plain(s, to, k, o.doc_kib * 1024))
                            .collect::<Res<Vec<_>>>()
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().map_err(|_| "prep panicked".to_string())?)
                .collect::<Res<Vec<_>>>()
        })?;
        eprintln!(
            "  prepared {} baseline documents in {:.1} s (outside the window)",
            n * o.clients,
            prep.elapsed().as_secs_f64()
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    let spid = server.pid();
    let (server_cpu0, client_cpu0) = (cpu_seconds(&spid), cpu_seconds("self"));
    let server_cs0 = context_switches(&spid);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(o.seconds);
    let results: Vec<ClientResult> = std::thread::scope(|sc| {
        let mut pools = pools.into_iter();
        let hs: Vec<_> = sessions
            .iter_mut()
            .enumerate()
            .map(|(i, s)| {
                let to = &to;
                let stop = Arc::clone(&stop);
                let pool = pools.next();
                sc.spawn(move || {
                    let mut r = ClientResult::default();
                    let mut pool = pool.map(Vec::into_iter);
                    let mut n = i as u64 * 1_000_000;
                    let mut seen = 0u64;
                    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let ok = match pool.as_mut() {
                            Some(p) => {
                                let Some(d) = p.next() else {
                                    r.exhausted = true;
                                    break;
                                };
                                // The request `put_version` makes for a small document
                                // (inline blob, proofs from the last size seen), with no
                                // checking of the answer: that is client-side crypto.
                                match s.api.commit_document(
                                    &d.doc_id,
                                    1,
                                    BlobRef::Inline(&d.blob),
                                    &d.wraps,
                                    Some(seen),
                                ) {
                                    Ok(c) => {
                                        seen = c
                                            .log_indices
                                            .as_deref()
                                            .and_then(<[u64]>::last)
                                            .map_or(seen, |i| i + 1);
                                        true
                                    }
                                    Err(_) => false,
                                }
                            }
                            None => {
                                let content = observation(n, o.doc_kib * 1024);
                                n += 1;
                                DocId::random()
                                    .map_err(|e| e.to_string())
                                    .and_then(|id| {
                                        s.put_version(
                                            content.as_slice(),
                                            meta(content.len()),
                                            id,
                                            1,
                                            to,
                                        )
                                        .map_err(|e| e.to_string())
                                    })
                                    .is_ok()
                            }
                        };
                        if ok {
                            r.latencies_us.push(t.elapsed().as_micros() as u64);
                        } else {
                            r.errors += 1;
                        }
                    }
                    if s.flush().is_err() {
                        r.errors += 1;
                    }
                    r
                })
            })
            .collect();
        hs.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds(&spid).zip(server_cpu0).map(|(b, a)| b - a);
    let client_cpu = cpu_seconds("self").zip(client_cpu0).map(|(b, a)| b - a);
    let server_cs = context_switches(&spid)
        .zip(server_cs0)
        .map(|(b, a)| b.saturating_sub(a));
    let server_hwm = vm_hwm_kib(&spid);
    let mut all: Vec<u64> = results
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    all.sort_unstable();
    let docs = all.len();
    let errors: u64 = results.iter().map(|r| r.errors).sum();
    let exhausted = results.iter().any(|r| r.exhausted);
    Ok(json!({
        "mode": if plain_pool.is_some() { "plaintext" } else { "e2ee" },
        "clients": o.clients, "pin_save_s": o.pin_save_s, "seconds": elapsed, "documents": docs, "errors": errors,
        "docs_per_s": docs as f64 / elapsed,
        "p50_ms": percentile(&all, 0.50) as f64 / 1000.0,
        "p99_ms": percentile(&all, 0.99) as f64 / 1000.0,
        "baseline_pool_exhausted": exhausted,
        // CPU per document, all threads, user + system: where the 2 cores went.
        "server_cpu_ms_per_doc": server_cpu.map(|c| c * 1000.0 / docs.max(1) as f64),
        "clients_cpu_ms_per_doc": client_cpu.map(|c| c * 1000.0 / docs.max(1) as f64),
        // Thread hand-offs per document: independent of the machine's load.
        "server_context_switches_per_doc": server_cs.map(|c| c as f64 / docs.max(1) as f64),
        "server_peak_rss_kib": server_hwm,
    }))
}

fn ingest(o: &Opts) -> Res<Value> {
    eprintln!(
        "ingest: {} clients, {} s per phase, {} KiB FHIR Observations",
        o.clients, o.seconds, o.doc_kib
    );
    let e2ee = ingest_phase(o, None)?;
    eprintln!("  e2ee:      {e2ee}");
    if o.e2ee_only {
        return Ok(json!({ "ingest": { "doc_kib": o.doc_kib, "e2ee": e2ee } }));
    }
    // Enough prepared documents for 3x the E2EE rate.
    let rate = e2ee
        .get("docs_per_s")
        .and_then(Value::as_f64)
        .unwrap_or(1000.0);
    let per_client =
        ((rate * 3.0 * o.seconds as f64) / o.clients.max(1) as f64).ceil() as usize + 200;
    let plain = ingest_phase(o, Some(per_client))?;
    eprintln!("  plaintext: {plain}");
    let ratio = plain
        .get("docs_per_s")
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
        / rate.max(f64::MIN_POSITIVE);
    eprintln!("  E2EE costs {ratio:.2}x the plaintext baseline (documents/s)");
    Ok(
        json!({ "ingest": { "doc_kib": o.doc_kib, "e2ee": e2ee, "plaintext": plain,
                            "e2ee_over_plaintext_cost": ratio } }),
    )
}

// ---- big file ----------------------------------------------------------------------------------

/// `size` bytes cycling through 1 MiB of random data: cheap to produce, incompressible enough.
struct Synthetic {
    block: Vec<u8>,
    left: u64,
    pos: usize,
}

impl Read for Synthetic {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = self.block.get(self.pos..).unwrap_or_default();
        let n = buf
            .len()
            .min(rest.len())
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if let (Some(d), Some(s)) = (buf.get_mut(..n), rest.get(..n)) {
            d.copy_from_slice(s);
        }
        self.left -= n as u64;
        self.pos = (self.pos + n) % self.block.len().max(1);
        Ok(n)
    }
}

fn run_child(args: &[String]) -> Res<Child> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())
}

fn child_json(c: Child) -> Res<Value> {
    let out = c.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("a child failed: {}", out.status));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

fn bigfile(o: &Opts) -> Res<Value> {
    let server = Server::for_opts(o)?;
    let spid = server.pid();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let home = |h: &str| dir.path().join(h).join("keystore.srmk");
    let (t, tag) = (transport(o)?, run_tag()?);
    let author_handle = format!("author-{tag}");
    let author = user(dir.path(), &author_handle, &server.url, &t)?;
    let mut args: Vec<String> = vec![
        "child-upload".into(),
        server.url.clone(),
        home(&author_handle).display().to_string(),
        (o.size_mib * 1024 * 1024).to_string(),
    ];
    let mut readers = Vec::new();
    for i in 0..o.downloads {
        let h = format!("reader{i}-{tag}");
        let mut s = user(dir.path(), &h, &server.url, &t)?;
        contacts::add(&s.api, &mut s.ks, &author_handle).map_err(|e| e.to_string())?;
        s.ks.save().map_err(|e| e.to_string())?;
        let rec = dir.path().join(format!("{h}.rec"));
        std::fs::write(&rec, s.ks.own_record().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        args.push(rec.display().to_string());
        readers.push(h);
    }
    drop(author);
    eprintln!(
        "bigfile: sealing and uploading {} MiB, then {} concurrent downloads",
        o.size_mib, o.downloads
    );
    reset_hwm(&spid);
    let up = child_json(run_child(&args)?)?;
    let server_up = vm_hwm_kib(&spid);
    eprintln!("  upload: {up} server peak RSS {server_up:?} KiB");
    let doc = up
        .get("doc_id")
        .and_then(Value::as_str)
        .ok_or("no doc id")?
        .to_owned();
    reset_hwm(&spid);
    let children = readers
        .iter()
        .map(|h| {
            run_child(&[
                "child-download".into(),
                server.url.clone(),
                home(h).display().to_string(),
                doc.clone(),
            ])
        })
        .collect::<Res<Vec<_>>>()?;
    let downs = children
        .into_iter()
        .map(child_json)
        .collect::<Res<Vec<_>>>()?;
    let server_down = vm_hwm_kib(&spid);
    for d in &downs {
        eprintln!("  download: {d}");
    }
    eprintln!("  server peak RSS during the downloads: {server_down:?} KiB");
    Ok(
        json!({ "bigfile": { "size_mib": o.size_mib, "upload": up, "downloads": downs,
               "server_peak_rss_kib_upload": server_up,
               "server_peak_rss_kib_downloads": server_down } }),
    )
}

fn self_hwm() -> Option<u64> {
    vm_hwm_kib("self")
}

/// Child: unlock the keystore, reset the peak RSS, seal and upload `size` bytes.
fn child_upload(a: &[String]) -> Res<Value> {
    let [url, ks, size, recs @ ..] = a else {
        return Err("child-upload URL KEYSTORE SIZE RECORD...".into());
    };
    let size: u64 = size.parse().map_err(|_| "size")?;
    let to = recs
        .iter()
        .map(|p| {
            let b = std::fs::read(p).map_err(|e| e.to_string())?;
            DeviceRecord::decode_verified(&b)
                .map(|r| Recipient::from(&r))
                .map_err(|e| e.to_string())
        })
        .collect::<Res<Vec<_>>>()?;
    let ks =
        Keystore::open(Path::new(ks), Zeroizing::new(PASS.into())).map_err(|e| e.to_string())?;
    let mut s = Session::connect(ks, Some(url)).map_err(|e| e.to_string())?;
    let unlock_hwm = self_hwm();
    reset_hwm("self");
    let mut block = vec![0u8; 1 << 20];
    serment_core::rng::fill(&mut block).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let r = s
        .put_version(
            Synthetic {
                block,
                left: size,
                pos: 0,
            },
            Metadata {
                content_length: size,
                ..Metadata::default()
            },
            DocId::random().map_err(|e| e.to_string())?,
            1,
            &to,
        )
        .map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    Ok(
        json!({ "doc_id": r.doc_id.to_string(), "bytes": size, "seconds": secs,
               "mb_per_s": size as f64 / secs / 1e6,
               "peak_rss_kib": self_hwm(), "keystore_unlock_peak_rss_kib": unlock_hwm }),
    )
}

/// Writes nothing, counts bytes.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Child: unlock the keystore, reset the peak RSS, download, verify and decrypt (to a counter).
fn child_download(a: &[String]) -> Res<Value> {
    let [url, ks, doc] = a else {
        return Err("child-download URL KEYSTORE DOC".into());
    };
    let ks =
        Keystore::open(Path::new(ks), Zeroizing::new(PASS.into())).map_err(|e| e.to_string())?;
    let mut s = Session::connect(ks, Some(url)).map_err(|e| e.to_string())?;
    let doc = DocId::from_hex(doc).map_err(|e| e.to_string())?;
    let unlock_hwm = self_hwm();
    reset_hwm("self");
    let t = Instant::now();
    let mut out = Count(0);
    s.get(&doc, Some(1), &mut out).map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    Ok(
        json!({ "bytes": out.0, "seconds": secs, "mb_per_s": out.0 as f64 / secs / 1e6,
               "peak_rss_kib": self_hwm(), "keystore_unlock_peak_rss_kib": unlock_hwm }),
    )
}
