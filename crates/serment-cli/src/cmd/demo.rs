//! `serment demo`: the whole flow on an embedded server, then a scan of everything the server
//! wrote for plaintext taken from the input.
//!
//! 1. start the server on a free loopback port (SQLite and blobs in a data directory);
//! 2. create a medical laboratory, a general practitioner and a patient;
//! 3. split each FHIR bundle, seal every document for the patient and the GP, upload it;
//! 4. the patient and the GP download every document, verify the lab's signature and compare it
//!    byte for byte with the input;
//! 5. the care team "cardio-chu" (`demo_team`): a report shared with the team is read by three
//!    member devices; after a member's removal, a new report is refused to them;
//! 6. scan every file under the data directory for the patient's names, birth date, INS/NIR,
//!    the LOINC display strings and the input file name.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;
use serment_client::contacts;
use serment_client::keystore::Keystore;
use serment_client::transport::Transport;
use serment_client::vault::Session;
use serment_core::keystore::KdfParams;
use serment_server::{Config, Server};
use zeroize::Zeroizing;

use super::Ctx;
use super::fhir::{Imported, ins_report, upload};
use super::serve::{init_tracing, runtime};
use crate::cli::DemoArgs;
use crate::error::{CliError, CliResult};
use crate::output::emit;

/// The default input: synthetic French lab reports shipped in `examples/fhir/`.
const EXAMPLES: &[(&str, &[u8])] = &[
    (
        "bilan-hemogramme-glycemie.json",
        include_bytes!("../../../../examples/fhir/bilan-hemogramme-glycemie.json"),
    ),
    (
        "bilan-lipidique.json",
        include_bytes!("../../../../examples/fhir/bilan-lipidique.json"),
    ),
    (
        "bilan-thyroidien-compte-rendu.json",
        include_bytes!("../../../../examples/fhir/bilan-thyroidien-compte-rendu.json"),
    ),
];

/// A party of the demo.
fn party(
    home: &Path,
    handle: &str,
    display: &str,
    server: &str,
    transport: &Transport,
) -> CliResult<Session> {
    let mut pass = [0u8; 24];
    serment_core::rng::fill(&mut pass).map_err(|e| CliError::Input(e.to_string()))?;
    let pass = Zeroizing::new(hex::encode(pass));
    // The demo uses the OWASP floor to stay quick; `serment id new` uses KdfParams::DEFAULT.
    let ks = Keystore::create(
        &home.join(handle).join("keystore.srmk"),
        pass,
        handle,
        display,
        KdfParams::FLOOR,
    )?;
    Ok(Session::register_with(ks, server, transport)?)
}

/// Every regular file below `dir`.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> CliResult<()> {
    for e in std::fs::read_dir(dir).map_err(|e| CliError::io(dir, e))? {
        let e = e.map_err(|e| CliError::io(dir, e))?;
        let ft = e.file_type().map_err(|err| CliError::io(e.path(), err))?;
        if ft.is_dir() {
            files_under(&e.path(), out)?;
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// Searches every file under `dir` for each needle; returns (file, needle) hits and total bytes.
pub(crate) fn scan(dir: &Path, needles: &[String]) -> CliResult<(Vec<(String, String)>, u64)> {
    let mut files = Vec::new();
    files_under(dir, &mut files)?;
    let mut hits = Vec::new();
    let mut total = 0u64;
    for f in files {
        let bytes = std::fs::read(&f).map_err(|e| CliError::io(&f, e))?;
        total += bytes.len() as u64;
        for n in needles {
            if memchr::memmem::find(&bytes, n.as_bytes()).is_some() {
                hits.push((f.display().to_string(), n.clone()));
            }
        }
    }
    Ok((hits, total))
}

pub(crate) fn run(ctx: &Ctx, a: DemoArgs) -> CliResult<()> {
    init_tracing("warn");
    let start = Instant::now();
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    if a.input.is_empty() {
        inputs.extend(EXAMPLES.iter().map(|(n, b)| ((*n).to_owned(), b.to_vec())));
    } else {
        for p in &a.input {
            let b = std::fs::read(p).map_err(|e| CliError::io(p, e))?;
            inputs.push((p.display().to_string(), b));
        }
    }
    // Parse every input before anything is created: a bundle that does not parse
    // leaves no data directory and no temporary files behind.
    let mut parsed: Vec<(String, serment_fhir::SplitBundle, Vec<String>)> = Vec::new();
    for (name, bytes) in &inputs {
        let fhir_err = |source| CliError::Fhir {
            path: name.clone(),
            source,
        };
        let split = serment_fhir::split_bundle(bytes).map_err(fhir_err)?;
        let mut needles = serment_fhir::sensitive_strings(bytes).map_err(fhir_err)?;
        if let Some(stem) = Path::new(name).file_stem().and_then(|s| s.to_str())
            && stem.len() >= 4
        {
            needles.push(stem.to_owned());
        }
        parsed.push((name.clone(), split, needles));
    }
    let tmp = tempfile::tempdir().map_err(|e| CliError::io("temporary directory", e))?;
    let data_dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| tmp.path().join("server-data"));
    let homes = tmp.path().join("homes");

    // Every step runs over HTTPS: a throwaway CA and a loopback certificate, in memory only;
    // the parties trust that CA (besides the webpki roots) and record it in their keystores.
    let pki = super::demo_tls::generate(1)?;
    let tls = serment_server::TlsConfig::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes())
        .map_err(|e| CliError::Server(e.to_string()))?;
    let transport = Transport::default().with_ca_pem(&pki.ca_pem)?;
    let rt = runtime()?;
    // One-time codes of the provisional recipient (issue 17) are "mailed" into this directory.
    let mail_dir = tmp.path().join("mail");
    std::fs::create_dir_all(&mail_dir).map_err(|e| CliError::io(&mail_dir, e))?;
    let config = Config {
        data_dir: data_dir.clone(),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        smtp_url: Some(format!("file://{}", mail_dir.display())),
        ..Config::default()
    };
    let running = rt.block_on(async {
        let server = Server::open(config)
            .await
            .map_err(|e| CliError::Server(e.to_string()))?
            .with_tls(tls);
        server
            .bind()
            .await
            .map_err(|e| CliError::Server(e.to_string()))
    })?;
    let url = running.url();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_task = rt.spawn(running.serve(async {
        let _ = stop_rx.await;
    }));

    // An independent witness (PROTOCOL.md §11.8), in a thread: it polls the log, checks
    // consistency and cosigns; every party below requires its cosignature (quorum 1).
    let witness_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut witness = serment_client::witness::Witness::open(
        &tmp.path().join("witness"),
        "witness.serment.demo/w1",
    )?;
    let witness_key = witness.vkey();
    let witness_api = serment_client::api::Api::with_transport(&url, &transport)?;
    let stop = std::sync::Arc::clone(&witness_stop);
    let witness_thread = std::thread::spawn(move || {
        let mut failure = None;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Err(e) = witness.step(&witness_api) {
                failure = Some(e.to_string());
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        (witness.state.cosigned, failure)
    });

    let result = (|| -> CliResult<serde_json::Value> {
        let mut lab = party(
            &homes,
            "labo-biomed",
            "Laboratoire BioMed Centre",
            &url,
            &transport,
        )?;
        let mut gp = party(
            &homes,
            "dr-generaliste",
            "Cabinet de médecine générale",
            &url,
            &transport,
        )?;
        let mut patient = party(&homes, "patient-7f3a", "Patient", &url, &transport)?;
        for p in [&mut lab, &mut gp, &mut patient] {
            let base = p.api.base().to_owned();
            serment_client::log::set_witnesses(
                &mut p.ks,
                &base,
                std::slice::from_ref(&witness_key),
                1,
            )?;
            p.ks.save()?;
        }
        for h in ["dr-generaliste", "patient-7f3a"] {
            contacts::add(&lab.api, &mut lab.ks, h)?;
        }
        for p in [&mut gp, &mut patient] {
            contacts::add(&p.api, &mut p.ks, "labo-biomed")?;
        }
        let to = ["patient-7f3a".to_owned(), "dr-generaliste".to_owned()];
        let mut all: Vec<Imported> = Vec::new();
        let mut per_input = Vec::new();
        let mut warnings = Vec::new();
        let mut needles: Vec<String> = Vec::new();
        for (name, split, input_needles) in &parsed {
            needles.extend(input_needles.iter().cloned());
            let docs = upload(&mut lab, split, Path::new(name), &to)?;
            warnings.extend(split.warnings.iter().cloned());
            per_input.push(
                json!({ "input": name, "documents": docs.len(), "warnings": split.warnings,
                        "test_identities": split.test_identities, "ins": ins_report(split) }),
            );
            all.extend(docs);
        }
        needles.sort();
        needles.dedup();

        let mut verified = 0usize;
        let mut failures = Vec::new();
        let mut per_document = Vec::new();
        for d in &all {
            let id = serment_core::DocId::from_hex(&d.doc_id)
                .map_err(|e| CliError::Input(e.to_string()))?;
            let mut ok = true;
            // The KEM of the wraps the readers opened (issue 15): "X-Wing" when every reader's
            // wrap was hybrid, else the classical one found.
            let mut kem = serment_core::wrap::WrapKem::XWing;
            for reader in [&mut patient, &mut gp] {
                let mut out = Vec::new();
                match reader.get(&id, Some(1), &mut out) {
                    Ok(r) if out == d.content && r.author == "labo-biomed" => {
                        if !r.kem.is_hybrid() {
                            kem = r.kem;
                        }
                    }
                    Ok(_) => {
                        ok = false;
                        failures.push(format!(
                            "{}: {} read different bytes",
                            d.doc_id,
                            reader.ks.handle()
                        ));
                    }
                    Err(e) => {
                        ok = false;
                        failures.push(format!("{}: {}: {e}", d.doc_id, reader.ks.handle()));
                    }
                }
            }
            verified += usize::from(ok);
            per_document.push(json!({ "doc_id": d.doc_id, "kem": kem.name(), "verified": ok }));
        }
        let mut access_events = 0usize;
        for d in &all {
            let id = serment_core::DocId::from_hex(&d.doc_id)
                .map_err(|e| CliError::Input(e.to_string()))?;
            access_events += patient.accesses(&id)?.len();
        }
        // The patient's audit: every access, each proven in the log (PROTOCOL.md §11.6).
        let mut audit_events = 0usize;
        let mut fhir_events = 0usize;
        let origin = serment_client::log::trust(&patient.api, &patient.ks)?
            .log_key
            .name;
        for d in &all {
            let id = serment_core::DocId::from_hex(&d.doc_id)
                .map_err(|e| CliError::Input(e.to_string()))?;
            let lines = patient.audit(&id)?;
            audit_events += lines.len();
            fhir_events += lines
                .iter()
                .filter(|l| {
                    super::log::audit_event(l, &origin).get("resourceType")
                        == Some(&json!("AuditEvent"))
                })
                .count();
        }
        // Gossip: the GP and the patient compare checkpoints (no split view).
        let gp_note = gp.checkpoint_note()?;
        patient.compare_checkpoint(&gp_note)?;
        let patient_note = patient.checkpoint_note()?;
        let cosigned = serment_core::log::note::SignedCheckpoint::parse(&patient_note)
            .map(|s| {
                serment_core::log::note::VerifierKey::parse(&witness_key)
                    .map(|k| s.cosigned_by(&[k]) == 1)
                    .unwrap_or(false)
            })
            .unwrap_or(false);
        // The care team (issue 16): reports from the inputs, so the scan below covers them.
        let first = all
            .first()
            .map(|d| d.content.clone())
            .ok_or_else(|| CliError::Input("no document to share with the team".into()))?;
        let second = all
            .get(1)
            .map_or_else(|| first.clone(), |d| d.content.clone());
        let mut new_party = |handle: &str, display: &str| -> CliResult<Session> {
            let mut p = party(&homes, handle, display, &url, &transport)?;
            let base = p.api.base().to_owned();
            serment_client::log::set_witnesses(
                &mut p.ks,
                &base,
                std::slice::from_ref(&witness_key),
                1,
            )?;
            p.ks.save()?;
            Ok(p)
        };
        let team = super::demo_team::run(
            &mut lab,
            &mut gp,
            &mut new_party,
            &homes,
            &url,
            &transport,
            [&first, &second],
        )?;
        failures.extend(team.failures.iter().cloned());
        let provisional_claimed =
            match super::demo_provisional::run(&mut lab, &mut new_party, &mail_dir, &first) {
                Ok(ok) => ok,
                Err(e) => {
                    failures.push(format!("provisional recipient: {e}"));
                    false
                }
            };
        let recovered_device_reads = match super::demo_recovery::run(
            &mut lab,
            &mut new_party,
            &homes,
            &url,
            &transport,
            &first,
        ) {
            Ok(ok) => ok,
            Err(e) => {
                failures.push(format!("recovery: {e}"));
                false
            }
        };
        let report = super::log::run_verify_log(&url, &transport, None)?;
        Ok(json!({
            "tls": url.starts_with("https://"),
            "server_url": url,
            "documents": all.len(),
            "verified": verified,
            "per_document": per_document,
            "plaintext_bytes": all.iter().map(|d| d.plaintext_bytes).sum::<u64>(),
            "stored_bytes": all.iter().map(|d| d.sealed_bytes).sum::<u64>(),
            "access_events": access_events,
            "audit_events": audit_events,
            "audit_fhir_events": fhir_events,
            "log_size": report.size,
            "log_verified": report.verified(),
            "log_errors": report.errors,
            "witness_cosigned": cosigned,
            "team": super::demo_team::TEAM,
            "team_members": team.members,
            "team_epoch": team.epoch,
            "team_devices_read": team.devices_read,
            "removed_member_denied": team.removed_member_denied,
            "removed_member_exit": team.removed_member_exit,
            "provisional_claimed": provisional_claimed,
            "recovered_device_reads": recovered_device_reads,
            "witness_key": witness_key,
            "inputs": per_input,
            "warnings": warnings,
            "failures": failures,
            "needles": needles,
        }))
    })();

    witness_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (witness_cosignatures, witness_failure) = witness_thread
        .join()
        .unwrap_or((0, Some("the witness thread panicked".into())));
    let _ = stop_tx.send(());
    let _ = rt.block_on(server_task);
    let mut summary = result?;
    let needles: Vec<String> = summary
        .get("needles")
        .and_then(|n| serde_json::from_value(n.clone()).ok())
        .unwrap_or_default();
    let (hits, data_bytes) = scan(&data_dir, &needles)?;
    if let Some(o) = summary.as_object_mut() {
        o.remove("needles");
        o.insert("sensitive_strings_checked".into(), json!(needles.len()));
        o.insert("plaintext_hits".into(), json!(hits.len()));
        o.insert(
            "hits".into(),
            json!(
                hits.iter()
                    .map(|(f, n)| json!({"file": f, "string": n}))
                    .collect::<Vec<_>>()
            ),
        );
        o.insert("data_dir_bytes".into(), json!(data_bytes));
        o.insert(
            "data_dir".into(),
            json!(a.data_dir.as_ref().map(|d| d.display().to_string())),
        );
        o.insert("seconds".into(), json!(start.elapsed().as_secs_f64()));
        o.insert("witness_cosignatures".into(), json!(witness_cosignatures));
        o.insert("witness_failure".into(), json!(witness_failure));
    }
    let documents = field(&summary, "documents").as_u64().unwrap_or(0);
    let verified = field(&summary, "verified").as_u64().unwrap_or(0);
    let hybrid = field(&summary, "per_document")
        .as_array()
        .map_or(0, |d| d.iter().filter(|d| d["kem"] == "X-Wing").count());
    let mut text = format!(
        "Serment demo: {} input bundle(s), server {} (TLS with a throwaway CA: {})\n  documents sealed and uploaded: {documents}\n  verified by patient and GP:    {verified}\n  key wraps post-quantum (X-Wing): {hybrid}/{documents} documents\n  plaintext bytes: {}   stored (sealed) bytes: {}\n  access events recorded: {}   proven in the patient's audit: {}\n  transparency log: {} entries, verify-log {}, witness cosigned {}\n  care team {}: {} member device(s) read the report; after a removal (epoch {}), members {}; the removed member's read of a new report refused: {} (exit {})\n  a patient not yet registered claimed the lab's report and read it: {}\n  a patient who lost every device recovered with the recovery code and read the reports sent before and after: {}\n  sensitive strings searched in the server's files: {}   hits: {}\n  time: {:.2} s",
        inputs.len(),
        field(&summary, "server_url").as_str().unwrap_or("?"),
        field(&summary, "tls"),
        field(&summary, "plaintext_bytes"),
        field(&summary, "stored_bytes"),
        field(&summary, "access_events"),
        field(&summary, "audit_events"),
        field(&summary, "log_size"),
        field(&summary, "log_verified"),
        field(&summary, "witness_cosigned"),
        field(&summary, "team").as_str().unwrap_or("?"),
        field(&summary, "team_devices_read"),
        field(&summary, "team_epoch"),
        field(&summary, "team_members"),
        field(&summary, "removed_member_denied"),
        field(&summary, "removed_member_exit"),
        field(&summary, "provisional_claimed"),
        field(&summary, "recovered_device_reads"),
        needles.len(),
        hits.len(),
        field(&summary, "seconds").as_f64().unwrap_or(0.0),
    );
    if let Some(ws) = field(&summary, "warnings").as_array() {
        for w in ws {
            text.push_str(&format!("\n  WARNING: {}", w.as_str().unwrap_or_default()));
        }
    }
    for (f, n) in &hits {
        text.push_str(&format!("\n  PLAINTEXT FOUND: {n:?} in {f}"));
    }
    emit(ctx.json, &summary, &text);
    let log_ok = field(&summary, "log_verified").as_bool() == Some(true)
        && field(&summary, "witness_cosigned").as_bool() == Some(true)
        && field(&summary, "tls").as_bool() == Some(true);
    let team_ok = field(&summary, "removed_member_denied").as_bool() == Some(true)
        && field(&summary, "team_devices_read").as_u64() == Some(3)
        && field(&summary, "failures")
            .as_array()
            .is_some_and(Vec::is_empty);
    // Issue 17: the patient who had not registered, and the one who lost every device.
    let patients_ok = field(&summary, "provisional_claimed").as_bool() == Some(true)
        && field(&summary, "recovered_device_reads").as_bool() == Some(true);
    if verified != documents
        || !hits.is_empty()
        || documents == 0
        || !log_ok
        || !team_ok
        || !patients_ok
    {
        return Err(CliError::DemoFailed(format!(
            "{verified}/{documents} verified, {} plaintext hit(s), care team {}, unregistered \
             patient and recovery {}",
            hits.len(),
            if team_ok { "ok" } else { "FAILED" },
            if patients_ok { "ok" } else { "FAILED" }
        )));
    }
    Ok(())
}

/// A field of the summary object (`Null` when absent).
fn field<'a>(v: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    v.get(key).unwrap_or(&serde_json::Value::Null)
}
