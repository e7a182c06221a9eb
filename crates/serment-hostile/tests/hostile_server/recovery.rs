//! Recovery when every device is lost (issue 17 §2, PROTOCOL.md §4.2): a server that serves an
//! escrow with weakened Argon2id parameters, another identity's escrow, a burnt (replayed)
//! escrow, or that leaves the recovered device or the recovery entry out of the log. Each is
//! refused with nothing enrolled (or, for the recovery entry, nothing burnt); a wrong code
//! opens nothing; and the identity's other devices see a recovery that happened.

use argon2::{Algorithm, Argon2, Params, Version};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde_json::json;
use serment_client::ClientError;
use serment_client::recovery::{self, RecoverOptions, Recovered};
use serment_client::transport::Transport;
use serment_client::vault::Session;
use serment_core::Error;
use serment_core::keystore::KdfParams;
use serment_core::recovery::{RecoveryCode, open_escrow};
use serment_hostile::harness::{Hostile, b64};
use zeroize::Zeroizing;

const OPTS: RecoverOptions = RecoverOptions {
    keystore_params: KdfParams::FLOOR,
    escrow_params: KdfParams::FLOOR,
    revoke_others: false,
    rotate: false,
};

fn recover_as(
    h: &Hostile,
    name: &str,
    handle: &str,
    code: &RecoveryCode,
) -> (std::path::PathBuf, Result<Recovered, ClientError>) {
    let path = h.keystore_path(name);
    let r = recovery::recover(
        &path,
        Zeroizing::new(format!("passphrase of {name}")),
        h.url(),
        &Transport::default(),
        handle,
        code,
        OPTS,
    );
    (path, r)
}

fn active_devices(s: &mut Session) -> usize {
    s.device_list().unwrap().iter().filter(|d| d.active).count()
}

/// The escrow as the server holds it.
fn escrow_of(s: &Session, handle: &str) -> Vec<u8> {
    s.api.escrow(handle).unwrap().1
}

/// An escrow sealed exactly as `serment_core::recovery` seals one, but with any Argon2id
/// parameters: what a client that trusted the served parameters would open.
fn escrow_with(plain: &[u8], code: &[u8; 16], handle: &str, m: u32, t: u32, p: u32) -> Vec<u8> {
    let salt = [7u8; 16];
    let nonce = [9u8; 12];
    let mut out = Vec::new();
    out.extend_from_slice(b"SRMU");
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&m.to_be_bytes());
    out.extend_from_slice(&t.to_be_bytes());
    out.extend_from_slice(&p.to_be_bytes());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let mut aad = out.clone();
    aad.extend_from_slice(b"serment/v1/recovery-escrow\0");
    aad.push(handle.len() as u8);
    aad.extend_from_slice(handle.as_bytes());
    let mut key = [0u8; 32];
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(m, t, p.max(1), Some(32)).unwrap(),
    )
    .hash_password_into(code, &salt, &mut key)
    .unwrap();
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
    let mut body = plain.to_vec();
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&aad),
        &mut body,
    )
    .unwrap();
    out.extend_from_slice(&body);
    out
}

/// Serves `escrow` (and `device`, or the genuine one) for every fetch of `handle`'s escrow.
fn serve_escrow(h: &Hostile, handle: &str, escrow: Vec<u8>, device: Option<String>) {
    h.on_response(&format!("GET /v1/recovery/escrow/{handle}"), move |x| {
        let mut v = x.json();
        v["escrow"] = json!(b64(&escrow));
        if let Some(d) = &device {
            v["recovery_device"] = json!(d);
        }
        x.set_json(&v);
    });
}

#[test]
fn recovery_escrow_with_weakened_parameters_is_refused_before_any_work() {
    let h = Hostile::new();
    let mut patient = h.party("patient");
    let code = patient.new_recovery_code(KdfParams::FLOOR).unwrap().code;
    let genuine = escrow_of(&patient, "patient");
    let s = open_escrow(&code, "patient", &genuine).unwrap();
    let mut plain = vec![0u8, 1];
    plain.extend_from_slice(s.identity.to_seed().as_ref());
    plain.extend_from_slice(s.device.signing_seed().as_ref());
    plain.extend_from_slice(s.device.encryption_secret().as_ref());
    plain.extend_from_slice(s.device.hybrid_secret().unwrap().as_ref());
    let before = active_devices(&mut patient);
    for (m, t, p, what) in [
        (19456, 1, 1, "one iteration"),
        (8, 2, 1, "8 KiB of memory"),
        (19455, 2, 1, "one KiB under the floor"),
    ] {
        h.clear_hooks();
        serve_escrow(
            &h,
            "patient",
            escrow_with(&plain, code.secret(), "patient", m, t, p),
            None,
        );
        let (path, r) = recover_as(&h, "new-machine", "patient", &code);
        let e = r.unwrap_err();
        assert!(
            matches!(e, ClientError::Integrity(Error::WeakKdf { .. })),
            "{what}: {e:?}"
        );
        assert_eq!(e.exit_code(), 4, "{what}");
        assert!(!path.exists(), "{what}: a keystore was written");
    }
    h.clear_hooks();
    assert_eq!(
        active_devices(&mut patient),
        before,
        "a device was enrolled"
    );
    // The control: the same construction at the floor is opened and recovers.
    serve_escrow(
        &h,
        "patient",
        escrow_with(&plain, code.secret(), "patient", 19456, 2, 1),
        None,
    );
    let (_, r) = recover_as(&h, "new-machine", "patient", &code);
    r.unwrap();
}

#[test]
fn another_identitys_or_a_burnt_escrow_is_refused_with_nothing_enrolled() {
    let h = Hostile::new();
    let mut patient = h.party("patient");
    let mut mallory = h.party("mallory");
    let first = patient.new_recovery_code(KdfParams::FLOOR).unwrap();
    let (code1, r1) = (first.code, first.recovery_device.to_string());
    let e1 = escrow_of(&patient, "patient");
    let m_code = mallory.new_recovery_code(KdfParams::FLOOR).unwrap().code;
    let m_escrow = escrow_of(&mallory, "mallory");
    let before = active_devices(&mut patient);

    // Mallory's escrow served as the patient's: neither code opens it under this handle.
    serve_escrow(&h, "patient", m_escrow, None);
    for c in [&code1, &m_code] {
        let (path, r) = recover_as(&h, "new-machine", "patient", c);
        let e = r.unwrap_err();
        assert!(
            matches!(e, ClientError::Keystore(Error::KeystoreDecrypt)),
            "{e:?}"
        );
        assert_eq!(e.exit_code(), 3);
        assert!(!path.exists());
    }
    h.clear_hooks();

    // A recovery device the escrow does not hold, named by the server.
    serve_escrow(
        &h,
        "patient",
        e1.clone(),
        Some(patient.ks.device.id().to_string()),
    );
    let (path, r) = recover_as(&h, "new-machine", "patient", &code1);
    assert!(matches!(r.unwrap_err(), ClientError::Integrity(_)));
    assert!(!path.exists());
    h.clear_hooks();

    // A new code burns the first (its recovery device revoked); the server replays the first
    // escrow: it opens with the old code, but its recovery device is not current in the log.
    let code2 = patient.new_recovery_code(KdfParams::FLOOR).unwrap();
    assert!(code2.revoked_previous.is_some());
    serve_escrow(&h, "patient", e1, Some(r1));
    let (path, r) = recover_as(&h, "new-machine", "patient", &code1);
    let e = r.unwrap_err();
    assert!(
        matches!(e, ClientError::Integrity(Error::ContextMismatch(m)) if m.contains("not a current device")),
        "{e:?}"
    );
    assert_eq!(e.exit_code(), 4);
    assert!(!path.exists());
    h.clear_hooks();
    // Nothing was enrolled by any of the refused attempts (the new code's device aside).
    assert_eq!(active_devices(&mut patient), before);
    // The genuine escrow and the current code still recover.
    let (_, r) = recover_as(&h, "new-machine", "patient", &code2.code);
    r.unwrap();
}

#[test]
fn a_recovery_the_log_does_not_show_is_refused_and_other_devices_see_the_real_one() {
    let h = Hostile::new();
    let mut patient = h.party("patient");
    let code = patient.new_recovery_code(KdfParams::FLOOR).unwrap().code;

    // The new device's record left out of the handle's history: the new device does not trust
    // itself recovered, and its keystore goes.
    let cutoff = patient.sync_log().unwrap().size;
    h.on_response("GET /v1/log/identity/patient", move |x| {
        let mut v = x.json();
        let kept: Vec<serde_json::Value> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["index"].as_u64().unwrap() < cutoff)
            .cloned()
            .collect();
        v["entries"] = json!(kept);
        x.set_json(&v);
    });
    let (path, r) = recover_as(&h, "new-machine", "patient", &code);
    let e = r.unwrap_err();
    assert!(matches!(e, ClientError::OwnWriteMissing(_)), "{e:?}");
    assert_eq!(e.exit_code(), 4);
    assert!(!path.exists());
    h.clear_hooks();

    // The recovery entry acknowledged but not appended: refused, and the code is not burnt.
    h.on_request("POST /v1/log/recoveries", |x| {
        x.answered = true;
        x.status = 201;
        x.set_json(&json!({ "log_indices": [1] }));
    });
    let (path2, r) = recover_as(&h, "second-machine", "patient", &code);
    let e = r.unwrap_err();
    assert!(matches!(e, ClientError::OwnWriteMissing(_)), "{e:?}");
    assert_eq!(e.exit_code(), 4);
    h.clear_hooks();
    drop(path2);

    // The real recovery: logged, and the old device is told on its next look at the log.
    let (_, r) = recover_as(&h, "third-machine", "patient", &code);
    let rec = r.unwrap();
    let seen = patient.unseen_recoveries().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, rec.recovery_index);
    assert_eq!(seen[0].1.new_device, rec.session.ks.device.id());
    assert_eq!(seen[0].1.recovery_device, rec.used_recovery_device);
    assert!(
        patient.unseen_recoveries().unwrap().is_empty(),
        "shown once"
    );
}

#[test]
fn a_wrong_recovery_code_opens_nothing() {
    let h = Hostile::new();
    let mut patient = h.party("patient");
    patient.new_recovery_code(KdfParams::FLOOR).unwrap();
    let before = active_devices(&mut patient);
    let wrong = RecoveryCode::generate().unwrap();
    let (path, r) = recover_as(&h, "new-machine", "patient", &wrong);
    let e = r.unwrap_err();
    assert!(
        matches!(e, ClientError::Keystore(Error::KeystoreDecrypt)),
        "{e:?}"
    );
    assert_eq!(e.exit_code(), 3);
    assert!(!path.exists());
    assert_eq!(active_devices(&mut patient), before);
}
