//! Social recovery, k-of-n (issue 17 §2, PROTOCOL.md §4.3): the honest 2-of-3 recovery of a
//! patient whose machine is gone, and what a hostile server tries: a swapped escrow, a
//! substituted contact key, a forged approval, K-1 approvals, a vetoed request, a request the
//! log does not show. Each is refused with nothing enrolled.

use axum::http::Method;
use serde_json::json;
use serment_client::ClientError;
use serment_client::contacts;
use serment_client::recovery::RecoverOptions;
use serment_client::social::{self, SocialRecovered};
use serment_client::transport::Transport;
use serment_client::vault::Session;
use serment_core::keystore::KdfParams;
use serment_hostile::harness::Hostile;
use zeroize::Zeroizing;

use crate::common::{GP, LAB, PATIENT, World, content, read};

const RELATIVE: &str = "relative-of-patient";
const FRIEND: &str = "friend-of-patient";

const OPTS: RecoverOptions = RecoverOptions {
    keystore_params: KdfParams::FLOOR,
    escrow_params: KdfParams::FLOOR,
    revoke_others: false,
    rotate: false,
};

fn pass() -> Zeroizing<String> {
    Zeroizing::new("passphrase of the new machine".to_owned())
}

/// The patient names GP, RELATIVE and FRIEND, 2 of 3, with `wait` seconds of waiting period.
fn name_contacts(w: &mut World, wait: u64) -> (Session, Session) {
    let relative = w.h.party(RELATIVE);
    let friend = w.h.party(FRIEND);
    let set = w
        .patient
        .set_recovery_contacts(&[GP.into(), RELATIVE.into(), FRIEND.into()], 2, wait)
        .unwrap();
    assert_eq!(set.wraps, 3);
    assert_eq!(
        set.hybrid_wraps, 3,
        "every contact device has an X-Wing key"
    );
    (relative, friend)
}

/// The new machine's request: returns its keystore path and the request id.
fn request(h: &Hostile, name: &str) -> (std::path::PathBuf, String) {
    let path = h.keystore_path(name);
    let r = social::request_recovery(
        &path,
        pass(),
        h.url(),
        &Transport::default(),
        PATIENT,
        KdfParams::FLOOR,
    )
    .unwrap();
    assert_eq!(r.threshold, 2);
    (path, r.request_id)
}

fn complete(path: &std::path::Path) -> Result<SocialRecovered, ClientError> {
    social::complete_recovery(path, pass(), &Transport::default(), OPTS)
}

fn active_devices(s: &mut Session) -> usize {
    s.device_list().unwrap().iter().filter(|d| d.active).count()
}

fn integrity_msg(e: &ClientError) -> String {
    match e {
        ClientError::Integrity(serment_core::Error::ContextMismatch(m)) => (*m).to_owned(),
        other => panic!("expected an integrity error, got {other:?}"),
    }
}

#[test]
fn social_recovery_two_of_three_reads_documents_sent_before_and_after() {
    let mut w = World::new();
    let before = w.put(&content(3000, 1), "before", &[PATIENT]);
    let (mut relative, _friend) = name_contacts(&mut w, 0);
    let listed = w.patient.recovery_contacts().unwrap().unwrap().1;
    assert_eq!(listed.threshold, 2);
    assert_eq!(listed.contacts.len(), 3);

    // The patient's machine is gone: a new one asks.
    let (path, id) = request(&w.h, "new-machine");
    // The old device sees the pending request (what `device list` warns about).
    let pending = w.patient.pending_recovery_requests(PATIENT).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].request_id, id);
    // Too early: one approval.
    w.gp.approve_recovery(PATIENT, &id).unwrap();
    assert!(complete(&path).is_err());
    assert!(!path.exists());
    let v = relative.approve_recovery(PATIENT, &id).unwrap();
    assert_eq!(v.approvals.len(), 2);
    let r = complete(&path).unwrap();
    assert_eq!(r.approved_by, vec![GP.to_owned(), RELATIVE.to_owned()]);
    assert!(path.exists());
    assert!(!social::pending_path(&path).exists());
    let mut s = r.recovered.session;
    // Pinned contacts are not in the escrow (PROTOCOL.md §4.2): pin the lab again.
    contacts::add(&s.api, &mut s.ks, LAB).unwrap();
    // A document sent before, through the social recovery device's catch-up.
    let (got, _) = read(&mut s, &before.doc_id, None).unwrap();
    assert_eq!(got, content(3000, 1));
    // A document sent after: the lab wraps to the new device (same identity, proven history).
    contacts::add(&w.lab.api, &mut w.lab.ks, PATIENT).unwrap();
    let after = w.put(&content(2000, 2), "after", &[PATIENT]);
    let (got, _) = read(&mut s, &after.doc_id, None).unwrap();
    assert_eq!(got, content(2000, 2));
    // The old device is told (kind 12) and the request is no longer pending.
    assert_eq!(w.patient.unseen_recoveries().unwrap().len(), 1);
    assert!(
        w.patient
            .pending_recovery_requests(PATIENT)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn social_recovery_with_a_swapped_escrow_is_refused() {
    let mut w = World::new();
    let (mut relative, _f) = name_contacts(&mut w, 0);
    let (path, id) = request(&w.h, "new-machine");
    w.gp.approve_recovery(PATIENT, &id).unwrap();
    relative.approve_recovery(PATIENT, &id).unwrap();
    let before = active_devices(&mut w.patient);
    // The escrow with a byte flipped, and one relabelled to another suite: neither is the one
    // the contacts entry binds.
    for (off, what) in [(40usize, "ciphertext byte"), (7, "suite id")] {
        w.h.clear_hooks();
        w.h.on_response(&format!("GET /v1/recovery/requests/{id}"), move |x| {
            let mut v = x.json();
            let mut e = serment_client::api::b64d(v["escrow"].as_str().unwrap(), "e").unwrap();
            e[off] ^= 3;
            v["escrow"] = json!(serment_hostile::harness::b64(&e));
            x.set_json(&v);
        });
        let e = complete(&path).unwrap_err();
        assert!(integrity_msg(&e).contains("escrow"), "{what}: {e:?}");
        assert_eq!(e.exit_code(), 4, "{what}");
        assert!(!path.exists(), "{what}");
    }
    w.h.clear_hooks();
    assert_eq!(active_devices(&mut w.patient), before, "nothing enrolled");
    complete(&path).unwrap();
}

#[test]
fn social_recovery_contact_key_substituted_at_distribution_is_refused() {
    let mut w = World::new();
    let _relative = w.h.party(RELATIVE);
    let _friend = w.h.party(FRIEND);
    let _mallory = w.h.party("mallory");
    // The server answers the GP's key history with Mallory's: the shares would go to her.
    let mallory_history =
        w.h.call(Method::GET, "/v1/log/identity/mallory", None, Vec::new())
            .1;
    w.h.on_response(&format!("GET /v1/log/identity/{GP}"), move |x| {
        x.set_body(mallory_history.clone());
    });
    let e = w
        .patient
        .set_recovery_contacts(&[GP.into(), RELATIVE.into(), FRIEND.into()], 2, 0)
        .unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e:?}");
    w.h.clear_hooks();
    // Nothing was logged: the patient has no recovery contacts.
    assert!(w.patient.recovery_contacts().unwrap().is_none());
}

#[test]
fn social_recovery_forged_approval_is_not_counted() {
    let mut w = World::new();
    let (_relative, _friend) = name_contacts(&mut w, 0);
    let mut mallory = w.h.party("mallory");
    let (path, id) = request(&w.h, "new-machine");
    w.gp.approve_recovery(PATIENT, &id).unwrap();
    // The server lets Mallory (no contact of the patient) log an approval with a share of
    // her making: as many approvals as the threshold on the server's count.
    let req = social_request_of(&mut mallory, &id);
    let approval = serment_core::log::social::RecoveryApproval::sign(
        PATIENT,
        &req.id,
        &req.device_id(),
        "mallory",
        &mallory.ks.device,
        1,
    )
    .unwrap();
    let ch = req.contacts_hash;
    let fake = serment_core::social::SocialSecret::from_bytes([9; 32])
        .split(2, 2, &mut serment_core::rng::os_rng())
        .unwrap();
    let wrap = serment_core::social::wrap_share(
        &fake[1],
        serment_core::social::ShareContext {
            handle: PATIENT,
            contacts_hash: &ch,
            request_id: &req.id,
        },
        &req.recipient(),
        &mallory.ks.device,
        &mut serment_core::rng::os_rng(),
    )
    .unwrap();
    // REVIEW4 T5: the honest server refuses a non-contact's approval (403), logs nothing.
    let entries = |w: &World| w.h.sql("SELECT idx FROM log_entries").len();
    let logged = entries(&w);
    match mallory.api.post_recovery_approval(&approval, &wrap) {
        Err(ClientError::Server { status: 403, .. }) => {}
        other => panic!("a non-contact's approval must get 403, got {other:?}"),
    }
    assert_eq!(entries(&w), logged, "the refused approval was logged");
    // A hostile server (its own rows: Mallory's device given RELATIVE's distribution share)
    // logs it anyway; the client does not count it.
    let mdev = mallory.ks.device.id().to_string();
    w.h.sql_exec(&format!(
        "INSERT INTO social_shares (handle, request_id, recipient, sharer, contact, share) \
         SELECT handle, request_id, '{mdev}', sharer, 'mallory', share FROM social_shares \
         WHERE handle = '{PATIENT}' AND request_id = '' AND contact = '{RELATIVE}' LIMIT 1"
    ));
    mallory
        .api
        .post_recovery_approval(&approval, &wrap)
        .unwrap();
    let before = active_devices(&mut w.patient);
    let e = complete(&path).unwrap_err();
    assert!(integrity_msg(&e).contains("fewer valid approvals"), "{e:?}");
    assert_eq!(e.exit_code(), 4);
    assert!(!path.exists());
    assert_eq!(active_devices(&mut w.patient), before, "nothing enrolled");
}

/// The request as the proven social chain shows it, read by any party.
fn social_request_of(
    s: &mut Session,
    id: &str,
) -> serment_core::log::social::SocialRecoveryRequest {
    let chain = s.api.proven_social_chain(&mut s.ks, PATIENT).unwrap();
    let st = serment_core::log::social::replay_social(PATIENT, &chain).unwrap();
    let rid: [u8; 16] = hex::decode(id).unwrap().try_into().unwrap();
    st.request(&rid).unwrap().request.clone()
}

#[test]
fn social_recovery_with_k_minus_one_approvals_is_refused() {
    let mut w = World::new();
    let (_relative, _friend) = name_contacts(&mut w, 0);
    let (path, id) = request(&w.h, "new-machine");
    w.gp.approve_recovery(PATIENT, &id).unwrap();
    // The server says the request is ready and serves the one share twice.
    let genuine =
        w.h.sql(&format!(
            "SELECT share FROM social_shares WHERE request_id = '{id}'"
        ))
        .len();
    assert_eq!(genuine, 1);
    w.h.on_request(&format!("GET /v1/recovery/requests/{id}"), |x| {
        x.answered = true;
        x.status = 200;
        x.set_json(&json!({ "handle": PATIENT, "escrow": "", "shares": [] }));
    });
    let before = active_devices(&mut w.patient);
    let e = complete(&path).unwrap_err();
    assert!(integrity_msg(&e).contains("fewer valid approvals"), "{e:?}");
    assert!(!path.exists());
    w.h.clear_hooks();
    // The server's own gate refuses too.
    let (status, _) = w.h.call(
        Method::GET,
        &format!("/v1/recovery/requests/{id}"),
        None,
        Vec::new(),
    );
    assert_eq!(status, 409);
    assert_eq!(active_devices(&mut w.patient), before);
}

#[test]
fn social_recovery_vetoed_by_an_existing_device_is_refused() {
    let mut w = World::new();
    let (mut relative, _friend) = name_contacts(&mut w, 0);
    let (path, id) = request(&w.h, "new-machine");
    w.gp.approve_recovery(PATIENT, &id).unwrap();
    relative.approve_recovery(PATIENT, &id).unwrap();
    let v = w.patient.veto_recovery(&id).unwrap();
    assert!(v.vetoed);
    // Even if the server hands out the escrow and shares as if nothing happened.
    w.h.sql_exec(&format!(
        "UPDATE social_requests SET vetoed = 0 WHERE request_id = '{id}'"
    ));
    let before = active_devices(&mut w.patient);
    let e = complete(&path).unwrap_err();
    assert!(integrity_msg(&e).contains("vetoed"), "{e:?}");
    assert_eq!(e.exit_code(), 4);
    assert!(!path.exists());
    assert_eq!(active_devices(&mut w.patient), before);
}

#[test]
fn social_recovery_waiting_period_is_enforced_by_the_client() {
    let mut w = World::new();
    let (mut relative, _friend) = name_contacts(&mut w, 3600);
    let (path, id) = request(&w.h, "new-machine");
    w.gp.approve_recovery(PATIENT, &id).unwrap();
    relative.approve_recovery(PATIENT, &id).unwrap();
    let e = complete(&path).unwrap_err();
    assert!(
        matches!(e, ClientError::Input(ref m) if m.contains("waiting period")),
        "{e:?}"
    );
    // With this machine's clock past the period, the server still refuses by its own clock.
    let later = serment_client::now_secs() + 3601;
    let e = social::complete_recovery_at(&path, pass(), &Transport::default(), OPTS, later)
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Server { status: 409, .. }),
        "{e:?}"
    );
    assert!(!path.exists());
}

#[test]
fn social_recovery_not_in_the_log_is_refused() {
    let mut w = World::new();
    let (mut relative, _friend) = name_contacts(&mut w, 0);
    // The request acknowledged but not appended: the new machine sees it is not in the log.
    w.h.on_request("POST /v1/recovery/requests", |x| {
        x.answered = true;
        x.status = 201;
        x.set_json(&json!({ "request_id": "00112233445566778899aabbccddeeff",
                            "log_indices": [1] }));
    });
    let path = w.h.keystore_path("first-machine");
    let e = social::request_recovery(
        &path,
        pass(),
        w.h.url(),
        &Transport::default(),
        PATIENT,
        KdfParams::FLOOR,
    )
    .unwrap_err();
    assert!(matches!(e, ClientError::OwnWriteMissing(_)), "{e:?}");
    assert!(!social::pending_path(&path).exists());
    w.h.clear_hooks();

    // A logged, approved request, whose entries the server then leaves out of the social chain
    // it serves: the shares are handed out, but the client does not complete a recovery the log
    // does not show.
    let (path, id) = request(&w.h, "new-machine");
    w.gp.approve_recovery(PATIENT, &id).unwrap();
    relative.approve_recovery(PATIENT, &id).unwrap();
    w.h.on_response(&format!("GET /v1/log/social/{PATIENT}"), |x| {
        let mut v = x.json();
        let kept: Vec<serde_json::Value> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .take(1)
            .cloned()
            .collect();
        v["entries"] = json!(kept);
        x.set_json(&v);
    });
    let before = active_devices(&mut w.patient);
    let e = complete(&path).unwrap_err();
    assert!(integrity_msg(&e).contains("not in the proven log"), "{e:?}");
    assert!(!path.exists());
    w.h.clear_hooks();
    assert_eq!(active_devices(&mut w.patient), before);
}

/// REVIEW4 T1: once a social recovery completed (kind 12 logged), the server serves its escrow
/// to nobody again -- not for the completed request, not to K contacts combining their
/// distribution shares later -- and a new request for the burnt set is refused.
#[test]
fn social_recovery_escrow_is_not_served_again_after_the_recovery() {
    let mut w = World::new();
    let (mut relative, _friend) = name_contacts(&mut w, 0);
    let (path, id) = request(&w.h, "new-machine");
    w.gp.approve_recovery(PATIENT, &id).unwrap();
    relative.approve_recovery(PATIENT, &id).unwrap();
    // Before the completion the qualifying request is served (what the new machine fetches).
    let (status, _) = w.h.call(
        Method::GET,
        &format!("/v1/recovery/requests/{id}"),
        None,
        Vec::new(),
    );
    assert_eq!(status, 200);
    complete(&path).unwrap();
    // After it: the same request is refused, and the server holds neither the escrow nor any
    // share wrap of the handle (contacts' distribution shares included).
    let (status, body) = w.h.call(
        Method::GET,
        &format!("/v1/recovery/requests/{id}"),
        None,
        Vec::new(),
    );
    assert!(
        status == 409 || status == 410 || status == 404,
        "{status} {}",
        String::from_utf8_lossy(&body)
    );
    assert!(
        w.h.sql(&format!(
            "SELECT handle FROM social_escrows WHERE handle = '{PATIENT}'"
        ))
        .is_empty(),
        "the escrow row outlived the recovery"
    );
    assert!(
        w.h.sql(&format!(
            "SELECT share FROM social_shares WHERE handle = '{PATIENT}'"
        ))
        .is_empty(),
        "share wraps outlived the recovery"
    );
    // K contacts without a fresh request get nothing: a new request for the burnt set is refused.
    let path2 = w.h.keystore_path("second-machine");
    let e = social::request_recovery(
        &path2,
        pass(),
        w.h.url(),
        &Transport::default(),
        PATIENT,
        KdfParams::FLOOR,
    );
    assert!(e.is_err(), "a request for a burnt set was logged");
}

/// REVIEW4 T3: a completion that fails after its device record is registered (here the first
/// login of the new device) can be run again: the same record is sent (deterministic for the
/// request), the server answers "unchanged", and the recovery completes.
#[test]
fn social_recovery_interrupted_completion_completes_on_a_second_run() {
    let mut w = World::new();
    let (mut relative, _friend) = name_contacts(&mut w, 0);
    let (path, id) = request(&w.h, "new-machine");
    w.gp.approve_recovery(PATIENT, &id).unwrap();
    relative.approve_recovery(PATIENT, &id).unwrap();
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = failed.clone();
    w.h.on_request("POST /v1/auth/challenge", move |x| {
        if !f.swap(true, std::sync::atomic::Ordering::SeqCst) {
            x.answered = true;
            x.status = 503;
            x.set_json(&json!({ "error": { "code": "unavailable", "message": "cut" } }));
        }
    });
    assert!(complete(&path).is_err(), "the first run must fail");
    assert!(failed.load(std::sync::atomic::Ordering::SeqCst));
    w.h.clear_hooks();
    let r = complete(&path).unwrap();
    assert_eq!(r.request_id, id);
}

/// REVIEW4 T2: a named contact approving with a wrong share (its own device, its own `x`,
/// random `y`) beside K honest approvals does not block the recovery: a K-subset opens the
/// escrow, and the contacts whose shares were used are named.
#[test]
fn social_recovery_a_contact_re_wrapping_a_wrong_share_does_not_block_it() {
    let mut w = World::new();
    let (mut relative, mut friend) = name_contacts(&mut w, 0);
    let (path, id) = request(&w.h, "new-machine");
    w.gp.approve_recovery(PATIENT, &id).unwrap();
    relative.approve_recovery(PATIENT, &id).unwrap();
    // FRIEND (position 3) approves with a share of another secret at x = 3.
    let req = social_request_of(&mut friend, &id);
    let approval = serment_core::log::social::RecoveryApproval::sign(
        PATIENT,
        &req.id,
        &req.device_id(),
        FRIEND,
        &friend.ks.device,
        1,
    )
    .unwrap();
    let fake = serment_core::social::SocialSecret::from_bytes([9; 32])
        .split(2, 3, &mut serment_core::rng::os_rng())
        .unwrap();
    assert_eq!(fake[2].x(), 3);
    let wrap = serment_core::social::wrap_share(
        &fake[2],
        serment_core::social::ShareContext {
            handle: PATIENT,
            contacts_hash: &req.contacts_hash,
            request_id: &req.id,
        },
        &req.recipient(),
        &friend.ks.device,
        &mut serment_core::rng::os_rng(),
    )
    .unwrap();
    friend.api.post_recovery_approval(&approval, &wrap).unwrap();
    let r = complete(&path).unwrap();
    assert_eq!(r.approved_by, vec![GP.to_owned(), RELATIVE.to_owned()]);
}

/// REVIEW4 T21: a request signed with a time far from the server's clock (a year ahead, so
/// the patient would be shown "veto possible until next year") is refused (400), and the
/// pending view's deadline is the request's log time plus the waiting period.
#[test]
fn social_recovery_request_dated_in_the_future_is_refused() {
    let mut w = World::new();
    let (_relative, _friend) = name_contacts(&mut w, 3600);
    let (_path, id) = request(&w.h, "new-machine");
    let pending = w.patient.pending_recovery_requests(PATIENT).unwrap();
    assert_eq!(pending[0].ready_at, pending[0].logged_at + 3600);
    let req = social_request_of(&mut w.gp, &id);
    let dev = serment_core::identity::DeviceSecret::generate();
    let year = 365 * 24 * 3600;
    let entry = serment_core::log::social::SocialRecoveryRequest::sign(
        PATIENT,
        &req.contacts_hash,
        &dev,
        req.at + year,
    )
    .unwrap();
    let body =
        serde_json::to_vec(&json!({ "request": serment_client::api::b64e(&entry) })).unwrap();
    let (status, body) = w.h.call(Method::POST, "/v1/recovery/requests", None, body);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
}
