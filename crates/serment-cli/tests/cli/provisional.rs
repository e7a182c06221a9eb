//! Issue 17 §1: a lab seals for a patient who has not registered yet (`put --to-unregistered`,
//! `import-fhir --to-unregistered`); the patient registers, asks for the one-time code (emailed
//! through a real SMTP server, aiosmtpd, read back from its maildir), claims with the receipt's
//! claim code and the one-time code, and reads; the lab's next document goes straight to the
//! patient's identity. The one-time code is single use; no code, claim code, document id or
//! address appears in the server's log output.
//!
//! Needs `SERMENT_TEST_SMTP_URL` and `SERMENT_TEST_MAILDIR` (`.ci/smtp.sh`): fails when `CI=true`
//! and they are missing, skips with a message otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::*;

/// A server whose every log line (RUST_LOG=info) is kept.
struct LoggedServer {
    child: Child,
    url: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl LoggedServer {
    fn start(data_dir: &Path, smtp_url: &str) -> LoggedServer {
        let mut child = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--init", "--data-dir"])
            .arg(data_dir)
            .args(["--smtp-url", smtp_url, "--smtp-from", "results@lab.example"])
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let kept = Arc::new(Mutex::new(Vec::new()));
        let url = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            kept.lock().unwrap().push(line.clone());
            if let Some(u) = line.strip_prefix("serment: listening on ") {
                break u.trim().to_owned();
            }
        };
        let k = Arc::clone(&kept);
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                k.lock().unwrap().push(l);
            }
        });
        LoggedServer {
            child,
            url,
            lines: kept,
        }
    }

    fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unique(prefix: &str) -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    format!("{prefix}{}", hex::encode(b))
}

#[test]
fn lab_sends_to_an_unregistered_patient_who_claims_and_reads() {
    let Some((smtp_url, maildir)) = smtp() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let server = LoggedServer::start(&root.join("data"), &smtp_url);
    let (lab, patient) = (root.join("lab"), root.join("patient"));
    let email = format!("{}@patients.example", unique("ana."));
    let contact = format!("email:{email},ins:185057800608491");
    ok(&lab, &["id", "new", "--name", "labo-p", "--kdf", "floor"]);
    ok(&lab, &["register", "--server", &server.url]);

    // Before the patient exists: two results for the contact.
    let r1 = root.join("r1.txt");
    std::fs::write(&r1, b"Hemoglobin 13.9 g/dL").unwrap();
    let p1 = ok(
        &lab,
        &["put", r1.to_str().unwrap(), "--to-unregistered", &contact],
    );
    let claim_code = p1["unregistered"]["claim_code"]
        .as_str()
        .unwrap_or_else(|| panic!("no claim code: {p1}"))
        .to_owned();
    let prov = p1["unregistered"]["provisional_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(p1["unregistered"]["claimed_by"].is_null());
    let doc1 = p1["doc_id"].as_str().unwrap().to_owned();
    let r2 = root.join("r2.txt");
    std::fs::write(&r2, b"Ferritin 80 ng/mL").unwrap();
    let p2 = ok(
        &lab,
        &["put", r2.to_str().unwrap(), "--to-unregistered", &contact],
    );
    // The same provisional recipient (found on the server, proven in the log), no new code.
    assert_eq!(p2["unregistered"]["provisional_id"], prov.as_str(), "{p2}");
    assert!(p2["unregistered"]["claim_code"].is_null(), "{p2}");
    let doc2 = p2["doc_id"].as_str().unwrap().to_owned();
    let mut docs = vec![doc1.clone(), doc2.clone()];
    // And a FHIR bundle, when the shared data is here.
    if let Some(fhir) = shared_fhir() {
        let b = fhir.join("Bundle-Bundle-CRBio-Replace-ANS.json");
        let v = ok(
            &lab,
            &[
                "import-fhir",
                b.to_str().unwrap(),
                "--to-unregistered",
                &contact,
            ],
        );
        assert_eq!(v["unregistered"]["provisional_id"], prov.as_str(), "{v}");
        for d in v["documents"].as_array().unwrap() {
            docs.push(d["doc_id"].as_str().unwrap().to_owned());
        }
    }

    // The patient registers, asks for the one-time code (exits 0 saying so), reads the mail.
    ok(
        &patient,
        &["id", "new", "--name", "ana-p", "--kdf", "floor"],
    );
    ok(&patient, &["register", "--server", &server.url]);
    let sent = ok(&patient, &["claim", "--code", &claim_code]);
    assert_eq!(sent["otp_sent"], true, "{sent}");
    assert_eq!(keys(&sent), documented("claim"), "{sent}");
    let mut seen = HashSet::new();
    let otp = otp_from_maildir(&maildir, &email, &mut seen);

    // A claim with a mistyped claim code is refused before any request (exit 2).
    let mut typo: Vec<char> = claim_code.chars().collect();
    typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    let (c, v) = run(&patient, &["claim", "--code", &typo, "--otp", &otp]);
    assert_eq!(c, 2, "{v}");
    // A wrong one-time code is a wrong secret: exit 3, as a wrong passphrase (not 5, "server").
    let wrong = if otp == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let (c, v) = run(&patient, &["claim", "--code", &claim_code, "--otp", wrong]);
    assert_eq!(c, 3, "{v}");
    // Said as what it is, not as a keystore passphrase (the newcomer's N9).
    assert_eq!(v["error"]["code"], "wrong_code", "{v}");

    let claimed = ok(&patient, &["claim", "--code", &claim_code, "--otp", &otp]);
    assert_eq!(claimed["newly_claimed"], true, "{claimed}");
    assert_eq!(keys(&claimed), documented("claim"), "{claimed}");
    assert_eq!(keys(&p1), documented("put"), "{p1}");
    assert_eq!(claimed["provisional_id"], prov.as_str());
    assert_eq!(claimed["versions"], docs.len(), "{claimed}");
    assert_eq!(claimed["wraps"], docs.len(), "one device: one wrap each");
    assert_eq!(claimed["log_entries"], docs.len() + 1);
    // The claim names the lab, proven in the log, and pins it (the newcomer's H27).
    assert_eq!(claimed["lab"], "labo-p", "{claimed}");

    // Once claimed, the server keeps no address for it (REVIEW3 S10: no code is sent again).
    assert_eq!(
        sql(
            &root.join("data"),
            "SELECT email FROM provisionals WHERE claimed_identity IS NOT NULL"
        ),
        vec![String::new()],
        "the claimed recipient's address must be erased"
    );

    // Run again by the patient, the claim is a resume with nothing left to do (review S2: the
    // claimant needs no code); replayed by another identity, code and all, it is refused.
    let again = ok(&patient, &["claim", "--code", &claim_code, "--otp", &otp]);
    assert_eq!(
        (&again["newly_claimed"], &again["versions"]),
        (&serde_json::Value::Bool(false), &serde_json::json!(0)),
        "{again}"
    );
    let [thief] =
        <[_; 1]>::try_from(registered(root, &server.url, &[("thief", "thief-p")])).unwrap();
    let (c, v) = run(&thief, &["claim", "--code", &claim_code, "--otp", &otp]);
    assert_ne!(c, 0, "a replayed one-time code was accepted: {v}");

    // The patient reads every document (the lab's handle is on the receipt: pinned first).
    ok(&patient, &["contact", "add", "labo-p"]);
    for (d, want) in [
        (&doc1, &b"Hemoglobin 13.9 g/dL"[..]),
        (&doc2, b"Ferritin 80 ng/mL"),
    ] {
        let out = root.join(format!("{d}.out"));
        ok(&patient, &["get", d, "-o", out.to_str().unwrap()]);
        assert_eq!(std::fs::read(&out).unwrap(), want);
    }
    for d in &docs[2..] {
        let out = root.join(format!("{d}.out"));
        ok(&patient, &["get", d, "-o", out.to_str().unwrap()]);
    }

    // The lab sees the claim: its next result goes straight to the patient's identity.
    let r3 = root.join("r3.txt");
    std::fs::write(&r3, b"Vitamin D 30 ng/mL").unwrap();
    let p3 = ok(
        &lab,
        &["put", r3.to_str().unwrap(), "--to-unregistered", &contact],
    );
    assert_eq!(p3["unregistered"]["claimed_by"], "ana-p", "{p3}");
    assert!(p3["unregistered"]["claim_code"].is_null());
    // Newcomer 5 N21: --new-claim-code for a contact that claimed is refused, saying why,
    // rather than ignored.
    let (code, v) = run(
        &lab,
        &[
            "put",
            r3.to_str().unwrap(),
            "--to-unregistered",
            &contact,
            "--new-claim-code",
        ],
    );
    assert_eq!(code, 2, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("was claimed by ana-p") && msg.contains("without --new-claim-code"),
        "{v}"
    );
    let out = root.join("r3.out");
    ok(
        &patient,
        &[
            "get",
            p3["doc_id"].as_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"Vitamin D 30 ng/mL");

    // The whole log audits, provisional records and the claim included.
    let audit = ok(&lab, &["verify-log", "--server", &server.url]);
    assert_eq!(audit["verified"], true, "{audit}");
    assert_eq!(audit["report"]["kinds"]["provisional"], 1, "{audit}");
    assert_eq!(audit["report"]["kinds"]["claim"], 1, "{audit}");

    // Nothing secret or identifying in the server's log output.
    let log = server.log();
    assert!(log.contains("one-time code sent"), "no info lines captured");
    let bare_code: String = claim_code.chars().filter(|c| *c != '-').collect();
    for secret in [&otp, &claim_code, &bare_code, &email, &doc1, &doc2] {
        assert!(
            !log.contains(secret.as_str()),
            "the server logged {secret}:\n{log}"
        );
    }
}

/// The newcomer's H19: the contact address of a provisional recipient nobody claims is not kept
/// forever. Past `provisional_address_days` the server's maintenance erases it (here: the row
/// aged by hand, then the tick that runs when the server starts), and a one-time code request
/// for its claim code gets 410, telling the patient to ask the lab for a new claim code.
#[test]
fn an_unclaimed_address_is_erased_after_the_retention() {
    let Some((smtp_url, _maildir)) = smtp() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let (lab, patient) = (root.join("lab"), root.join("patient"));
    let email = format!("{}@patients.example", unique("old."));
    let claim_code = {
        let server = LoggedServer::start(&data, &smtp_url);
        ok(&lab, &["id", "new", "--name", "labo-r", "--kdf", "floor"]);
        ok(&lab, &["register", "--server", &server.url]);
        let r = root.join("r.txt");
        std::fs::write(&r, b"Glucose 5.1 mmol/L").unwrap();
        let p = ok(
            &lab,
            &[
                "put",
                r.to_str().unwrap(),
                "--to-unregistered",
                &format!("email:{email}"),
            ],
        );
        p["unregistered"]["claim_code"].as_str().unwrap().to_owned()
    }; // the server stops here
    let count = |sql_text: &str| sql(&data, sql_text).len();
    assert_eq!(
        count(&format!(
            "SELECT provisional_id FROM provisionals WHERE email = '{email}'"
        )),
        1
    );
    // 91 days pass (the default retention is 90).
    sql(
        &data,
        "UPDATE provisionals SET created_at = created_at - 91 * 86400",
    );
    let server = LoggedServer::start(&data, &smtp_url);
    // The first maintenance tick runs as the server starts, beside it: wait for it (5 s at most).
    let kept = || {
        count(&format!(
            "SELECT provisional_id FROM provisionals WHERE email = '{email}'"
        ))
    };
    for _ in 0..50 {
        if kept() == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        kept(),
        0,
        "the address of the unclaimed recipient must be erased"
    );
    ok(
        &patient,
        &["id", "new", "--name", "ana-r", "--kdf", "floor"],
    );
    ok(&patient, &["register", "--server", &server.url]);
    let (code, v) = run(&patient, &["claim", "--code", &claim_code]);
    assert_ne!(code, 0, "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("too old"), "{v}");
    assert!(message.contains("new claim code"), "{v}");
}
