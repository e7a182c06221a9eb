//! Social recovery's limits (PROTOCOL.md §4.3): open requests per handle (REVIEW5 U1: a request
//! needs no account) and the completion window after the waiting period (REVIEW5 U15).

use serment_client::ClientError;
use serment_client::social;
use serment_client::transport::Transport;
use serment_core::keystore::KdfParams;
use serment_core::social::{
    MAX_OPEN_REQUESTS, MIN_WAITING_PERIOD as WAIT, REQUEST_COMPLETION_WINDOW,
};

use crate::common::{PATIENT, World};
use crate::social_recovery::{OPTS, active_devices, complete, name_contacts, pass, request};

/// REVIEW5 U1: a stranger posting requests from fresh devices gets at most
/// [`MAX_OPEN_REQUESTS`] into the owner's social chain; once the owner vetoes them all
/// (`--all-pending`), a new request is taken.
#[test]
fn social_recovery_request_spam_is_capped_per_handle() {
    let mut w = World::new();
    let (_relative, _friend) = name_contacts(&mut w, WAIT);
    let mut taken = 0;
    let mut refused = 0;
    for i in 0..10 {
        let path = w.h.keystore_path(&format!("spam-{i}"));
        match social::request_recovery(
            &path,
            pass(),
            w.h.url(),
            &Transport::default(),
            PATIENT,
            KdfParams::FLOOR,
        ) {
            Ok(_) => taken += 1,
            Err(ClientError::Server { status: 429, .. }) => refused += 1,
            Err(e) => panic!("request {i}: {e:?}"),
        }
    }
    let cap = MAX_OPEN_REQUESTS as usize;
    assert_eq!((taken, refused), (cap, 10 - cap));
    let logged = w.h.sql("SELECT idx FROM log_entries WHERE kind = 14").len();
    assert_eq!(
        logged, cap,
        "the social chain holds more requests than the cap"
    );
    // The owner vetoes them all in one command; a new request is taken again.
    let vetoed = w.patient.veto_all_pending().unwrap();
    assert_eq!(vetoed.len(), cap);
    assert!(
        w.patient
            .pending_recovery_requests(PATIENT)
            .unwrap()
            .is_empty()
    );
    request(&w.h, "the-real-one");
}

/// An approved request of the patient, 2 of 3: the new machine's keystore path and the id.
fn approved(w: &mut World) -> (std::path::PathBuf, String) {
    let (mut relative, _friend) = name_contacts(w, WAIT);
    let (path, id) = request(&w.h, "new-machine");
    w.gp.approve_recovery(PATIENT, &id).unwrap();
    relative.approve_recovery(PATIENT, &id).unwrap();
    (path, id)
}

fn set_logged_at(w: &World, id: &str, at: u64) {
    w.h.sql_exec(&format!(
        "UPDATE social_requests SET logged_at = {at} WHERE request_id = '{id}'"
    ));
}

/// REVIEW5 U15: an approved request is completable for 7 days after its waiting period, no
/// longer: the server's gate refuses it (409) past its window, and serves it within.
#[test]
fn social_recovery_request_expires_after_its_window_at_the_server() {
    let mut w = World::new();
    let (path, id) = approved(&mut w);
    let now = serment_client::now_secs();
    set_logged_at(&w, &id, now - WAIT - REQUEST_COMPLETION_WINDOW - 60);
    let e = social::fetch_pending(&path, &pass(), &Transport::default()).unwrap_err();
    assert!(
        matches!(e, ClientError::Server { status: 409, ref message, .. } if message.contains("window")),
        "{e:?}"
    );
    set_logged_at(&w, &id, now - WAIT - 1);
    social::fetch_pending(&path, &pass(), &Transport::default()).unwrap();
}

/// REVIEW5 U15, the completing client's own clock: the server's gate open, this machine's clock
/// past the window: refused, nothing enrolled; within it: completes.
#[test]
fn social_recovery_request_expires_after_its_window_at_the_client() {
    let mut w = World::new();
    let (path, id) = approved(&mut w);
    let now = serment_client::now_secs();
    set_logged_at(&w, &id, now - WAIT - 1);
    let before = active_devices(&mut w.patient);
    let e = social::complete_recovery_at(
        &path,
        pass(),
        &Transport::default(),
        OPTS,
        now + WAIT + REQUEST_COMPLETION_WINDOW + 120,
    )
    .unwrap_err();
    assert!(
        matches!(e, ClientError::Input(ref m) if m.contains("window")),
        "{e:?}"
    );
    assert_eq!(active_devices(&mut w.patient), before, "nothing enrolled");
    complete(&w.h, &path).unwrap();
}
