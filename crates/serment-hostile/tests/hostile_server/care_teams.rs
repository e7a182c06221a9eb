//! Care teams (issue 16, PROTOCOL.md §12): membership the server cannot change, old epoch keys it
//! cannot replay, removals it cannot drop from a view a client already verified, changes a
//! removed admin cannot make.

use serde_json::{Value, json};
use serment_client::ClientError;
use serment_core::Error;
use serment_core::log::entry::{EntryKind, PrevLink, encode_entry};
use serment_core::log::note::{Checkpoint, KEY_TYPE_ED25519, NoteSigner, SignedCheckpoint};
use serment_core::log::tree::{self, MemoryTree, NodeId};
use serment_core::team::{TeamChange, TeamChangeBody, TeamOp, TeamRole};
use serment_hostile::harness::{Hostile, b64};
use std::collections::HashMap;

use crate::common::*;

const TEAM: &str = "cardio-chu";

/// The lab's team with the GP and the patient, and a document shared with it at epoch 1.
fn team_world() -> (World, serment_core::DocId) {
    let mut w = World::new();
    w.lab.team_new(TEAM).unwrap();
    w.lab.team_add(TEAM, GP, false).unwrap();
    w.lab.team_add(TEAM, PATIENT, false).unwrap();
    let r = w.put(b"{\"epoch\":1}", "e1", &[]);
    w.lab.share_to_team(&r.doc_id, 1, TEAM).unwrap();
    (w, r.doc_id)
}

fn is_team_error(e: &ClientError) -> bool {
    matches!(e, ClientError::Integrity(Error::Team { .. }))
}

#[test]
fn care_team_members_read_and_a_removed_member_cannot_read_a_new_document() {
    let (mut w, d1) = team_world();
    let (bytes, _) = read(&mut w.gp, &d1, Some(1)).unwrap();
    assert_eq!(bytes, b"{\"epoch\":1}");
    w.lab.team_remove(TEAM, PATIENT).unwrap();
    let r = w.put(b"{\"epoch\":2}", "e2", &[]);
    let (epoch, _) = w.lab.share_to_team(&r.doc_id, 1, TEAM).unwrap();
    assert_eq!(epoch, 2);
    assert_eq!(
        read(&mut w.gp, &r.doc_id, Some(1)).unwrap().0,
        b"{\"epoch\":2}"
    );
    let e = read(&mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(matches!(e.exit_code(), 4 | 6), "{e:?}");
    // The server's access control is not what stops her: put back in its member table, she is
    // served the version and the team wrap, and still holds no key of epoch 2.
    w.h.sql_exec(&format!(
        "INSERT INTO team_members (team, handle, admin) VALUES ('{TEAM}', '{PATIENT}', 0)"
    ));
    let e = read(&mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(e, ClientError::NotShared(_) | ClientError::Integrity(_)),
        "{e:?}"
    );
}

#[test]
fn team_old_epoch_key_replayed_by_the_server_is_refused() {
    let (mut w, _) = team_world();
    // The GP's epoch-1 key, kept by the server, relabelled as epoch 2 after the patient's removal.
    let old = w.h.sql(&format!(
        "SELECT wrap FROM team_key_wraps WHERE team = '{TEAM}' AND epoch = 1 AND device_id = '{}'",
        w.gp.ks.device.id()
    ));
    let mut old = old[0][0].1.clone().unwrap();
    w.lab.team_remove(TEAM, PATIENT).unwrap();
    let r = w.put(b"{\"epoch\":2}", "e2", &[]);
    w.lab.share_to_team(&r.doc_id, 1, TEAM).unwrap();
    let at = 4 + 2 + 2 + 1 + TEAM.len() + 3;
    old[at] = 2;
    w.h.on_response(&format!("GET /v1/teams/{TEAM}/keys"), move |ex| {
        ex.set_json(&json!({ "keys": [b64(&old)] }));
    });
    let e = read(&mut w.gp, &r.doc_id, Some(1)).unwrap_err();
    assert!(is_team_error(&e), "{e:?}");
}

#[test]
fn team_removal_dropped_from_the_log_view_is_refused() {
    let (mut w, _) = team_world();
    w.lab.team_remove(TEAM, PATIENT).unwrap();
    // The server now shows the lab the chain without the removal (and so the old epoch, whose
    // key the patient holds): the head the lab verified is gone. A lab that holds only that head
    // (a keystore from before held states) replays the whole chain and refuses it.
    w.lab.ks.forget_team_state_for_tests(TEAM);
    w.h.on_response(&format!("GET /v1/log/team/{TEAM}"), |ex| {
        let mut v = ex.json();
        v["entries"].as_array_mut().unwrap().pop();
        ex.set_json(&v);
    });
    let r = w.put(b"{\"epoch\":2}", "e2", &[]);
    let e = w.lab.share_to_team(&r.doc_id, 1, TEAM).unwrap_err();
    assert!(is_team_error(&e), "{e:?}");
}

/// The same view against a lab that holds the team's state (PROTOCOL.md §12.4, incremental): it
/// asks only for the changes after its head, so the removal it verified is never asked for
/// again and cannot be dropped; the share goes to epoch 2.
#[test]
fn team_removal_dropped_from_the_log_view_does_not_undo_the_held_state() {
    let (mut w, _) = team_world();
    w.lab.team_remove(TEAM, PATIENT).unwrap();
    w.h.on_response(&format!("GET /v1/log/team/{TEAM}"), |ex| {
        let mut v = ex.json();
        v["entries"].as_array_mut().unwrap().pop();
        ex.set_json(&v);
    });
    let r = w.put(b"{\"epoch\":2}", "e2", &[]);
    let (epoch, _) = w.lab.share_to_team(&r.doc_id, 1, TEAM).unwrap();
    assert_eq!(epoch, 2);
}

#[test]
fn team_change_by_a_removed_admin_is_refused() {
    let mut w = World::new();
    w.lab.team_new(TEAM).unwrap();
    w.lab.team_add(TEAM, GP, true).unwrap();
    serment_client::contacts::add(&w.gp.api, &mut w.gp.ks, PATIENT).unwrap();
    w.lab.team_remove(TEAM, GP).unwrap();
    let e = w.gp.team_add(TEAM, PATIENT, false).unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Input(_) | ClientError::Server { status: 409, .. }
        ),
        "{e:?}"
    );
    // Signed anyway by the removed admin's device (a client that skips its own check), and
    // appended to the log by the server (which skips its replay): the lab's replay refuses the
    // chain, so the patient is never taken for a member.
    let view = w.lab.verify_team(TEAM).unwrap().unwrap();
    let cur = view.current().unwrap();
    let change = TeamChange::sign(
        &TeamChangeBody {
            team: TEAM.into(),
            epoch: cur.epoch,
            op: TeamOp::Add,
            member: PATIENT.into(),
            member_identity: w.patient.ks.identity.public_key(),
            role: TeamRole::Member,
            epoch_key: cur.key.clone(),
            signer: GP.into(),
            at: 1_800_000_000,
        },
        &w.gp.ks.device,
    )
    .unwrap();
    operator_append(&w.h, &format!("t:{TEAM}"), EntryKind::Team, &change);
    let e = w.lab.verify_team(TEAM).unwrap_err();
    assert!(is_team_error(&e), "{e:?}");
    assert_eq!(e.exit_code(), 4);
}

/// Appends an entry the way the server does (chained to its subject, hashed into the tree, a
/// checkpoint signed with the log key), straight into the database: a server that logs what
/// its own checks would refuse.
fn operator_append(h: &Hostile, subject: &str, kind: EntryKind, payload: &[u8]) -> u64 {
    operator_append_device(h, subject, kind, payload, "")
}

/// [`operator_append`] with the row's `device_id` column (the device a device record
/// certifies: what the server looks records up by when it serves a document's history).
pub(crate) fn operator_append_device(
    h: &Hostile,
    subject: &str,
    kind: EntryKind,
    payload: &[u8],
    device_id: &str,
) -> u64 {
    operator_append_at(h, subject, kind, payload, device_id, 1_800_000_000)
}

/// [`operator_append_device`] with the envelope's `logged_at` (the server's unchecked time).
pub(crate) fn operator_append_at(
    h: &Hostile,
    subject: &str,
    kind: EntryKind,
    payload: &[u8],
    device_id: &str,
    logged_at: u64,
) -> u64 {
    let int = |v: &Option<Vec<u8>>| -> u64 {
        String::from_utf8(v.clone().unwrap())
            .unwrap()
            .parse()
            .unwrap()
    };
    let n = int(&h.sql("SELECT COALESCE(MAX(idx) + 1, 0) FROM log_entries")[0][0].1);
    let prev = h
        .sql(&format!(
            "SELECT idx, leaf_hash FROM log_entries WHERE subject = '{subject}' ORDER BY idx DESC LIMIT 1"
        ))
        .first()
        .map(|r| PrevLink {
            index: int(&r[0].1),
            leaf_hash: r[1].1.clone().unwrap().try_into().unwrap(),
        });
    let entry = encode_entry(kind, logged_at, prev, payload).unwrap();
    let leaf = tree::leaf_hash(&entry);
    let mut map: HashMap<NodeId, tree::Hash> = h
        .sql("SELECT level, idx, hash FROM log_nodes")
        .into_iter()
        .map(|r| {
            (
                NodeId {
                    level: int(&r[0].1) as u8,
                    index: int(&r[1].1),
                },
                r[2].1.clone().unwrap().try_into().unwrap(),
            )
        })
        .collect();
    for (node, hash) in tree::append(n, leaf, &map).unwrap() {
        h.sql_exec(&format!(
            "INSERT INTO log_nodes (level, idx, hash) VALUES ({}, {}, {})",
            node.level,
            node.index,
            h.bytes_literal(&hash)
        ));
        map.insert(node, hash);
    }
    h.sql_exec(&format!(
        "INSERT INTO log_entries (idx, kind, subject, device_id, entry, leaf_hash, logged_at) \
         VALUES ({n}, {}, '{subject}', '{device_id}', {}, {}, {logged_at})",
        kind as u8,
        h.bytes_literal(&entry),
        h.bytes_literal(&leaf)
    ));
    let signer = log_signer(h);
    let cp = Checkpoint {
        origin: signer.name().to_owned(),
        size: n + 1,
        root: tree::root(n + 1, &map).unwrap(),
    };
    let note = signer.sign_checkpoint(&cp).unwrap().encode().unwrap();
    h.sql_exec(&format!(
        "INSERT INTO log_checkpoints (size, note) VALUES ({}, '{}')",
        n + 1,
        note.replace('\'', "''")
    ));
    n
}

/// The server's log key, as a note signer.
fn log_signer(h: &Hostile) -> NoteSigner {
    let seed_hex = std::fs::read_to_string(h.data_dir().join("log.key")).unwrap();
    let mut seed = [0u8; 32];
    hex::decode_to_slice(seed_hex.trim(), &mut seed).unwrap();
    let real = h.sql("SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1");
    let real = SignedCheckpoint::parse(&String::from_utf8(real[0][0].1.clone().unwrap()).unwrap())
        .unwrap();
    NoteSigner::new(&real.checkpoint.origin, KEY_TYPE_ED25519, &seed).unwrap()
}

// ---- a fork: two members shown two memberships --------------------------------------------------

/// A fork of the server's log, made with its own log key: the first `cut` entries of the real
/// log, then an entry only this view holds (the removal at index `cut` is gone).
struct ForkedLog {
    tree: MemoryTree,
    note: String,
    cut: u64,
}

impl ForkedLog {
    fn without_entry_at(h: &Hostile, cut: u64) -> ForkedLog {
        let mut tree = MemoryTree::new();
        for r in h.sql(&format!(
            "SELECT entry FROM log_entries WHERE idx < {cut} ORDER BY idx"
        )) {
            tree.push_entry(&r[0].1.clone().unwrap()).unwrap();
        }
        assert_eq!(tree.size(), cut);
        tree.push_entry(b"an entry only the forked view holds")
            .unwrap();
        let signer = log_signer(h);
        let cp = Checkpoint {
            origin: signer.name().to_owned(),
            size: tree.size(),
            root: tree.root_at(tree.size()).unwrap(),
        };
        let note = signer.sign_checkpoint(&cp).unwrap().encode().unwrap();
        ForkedLog { tree, note, cut }
    }

    fn hashes(v: &[tree::Hash]) -> Value {
        json!(v.iter().map(|x| b64(x)).collect::<Vec<_>>())
    }

    /// Serves every log route from the fork: checkpoints, consistency proofs, and the proven
    /// chains (team, identities) re-proven against the fork, without the entries it lacks.
    fn serve(self, h: &Hostile) {
        let fork = std::sync::Arc::new(self);
        let f = fork.clone();
        h.on_response("GET /v1/log/checkpoint", move |ex| {
            ex.status = 200;
            ex.set_json(&json!({ "checkpoint": f.note }));
        });
        let f = fork.clone();
        h.on_response("GET /v1/log/consistency", move |ex| {
            let q = ex.path.split_once('?').unwrap().1.to_owned();
            let arg = |k: &str| -> u64 {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            let (from, to) = (arg("from"), arg("to"));
            let proof = tree::consistency_proof(from, to, &f.tree).unwrap();
            ex.status = 200;
            ex.set_json(&json!({ "from": from, "to": to, "proof": ForkedLog::hashes(&proof) }));
        });
        for route in [
            format!("GET /v1/log/team/{TEAM}"),
            "GET /v1/log/identity/*".to_owned(),
        ] {
            // The real server answers at its latest size; the fork re-proves what it keeps.
            h.on_request(&route, |ex| {
                ex.path = ex.path.split('?').next().unwrap().to_owned();
            });
            let f = fork.clone();
            h.on_response(&route, move |ex| {
                let mut v = ex.json();
                let size = f.tree.size();
                let entries: Vec<Value> = v["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["index"].as_u64().unwrap() < f.cut)
                    .map(|e| {
                        let i = e["index"].as_u64().unwrap();
                        let proof = tree::inclusion_proof(i, size, &f.tree).unwrap();
                        json!({ "index": i, "entry": e["entry"], "proof": ForkedLog::hashes(&proof) })
                    })
                    .collect();
                v["entries"] = json!(entries);
                v["size"] = json!(size);
                v["checkpoint"] = json!(f.note);
                ex.status = 200;
                ex.set_json(&v);
            });
        }
    }
}

/// Issue 16 §3, "the server shows two members different memberships (a fork)": the lab removes
/// the patient; the server keeps the GP on a fork of its log, signed with its own log key, in
/// which the removal never happened. The fork is internally consistent (every entry proven, the
/// GP's pinned checkpoint extended by a valid consistency proof, the team head it verified still
/// there), so the GP's replay shows the patient as a member of epoch 1 while the lab's shows
/// epoch 2 without her. Two memberships need two logs: the two members' checkpoints cannot be
/// proven consistent, and that is what catches it. Gossip between the members is a `SplitView`
/// (exit 4), and the GP, shown the real log again, refuses it as a fork of what it pinned
/// (`Fork`, exit 4). With a witness quorum the fork is refused outright (no witness cosigns a
/// tree inconsistent with the one it cosigned: `transparency_log.rs::
/// split_view_caught_through_the_witness_quorum`). A view that merely stops before the removal
/// (a consistent prefix, not a fork) is caught only by a member whose verified head is past it:
/// `team_removal_dropped_from_the_log_view_is_refused` and THREAT_MODEL.md "Limits".
#[test]
fn team_fork_two_members_shown_two_memberships_is_caught() {
    let (mut w, d1) = team_world();
    // Both members verified the team (epoch 1) and pinned a checkpoint before the removal.
    read(&mut w.gp, &d1, Some(1)).unwrap();
    read(&mut w.patient, &d1, Some(1)).unwrap();
    let removal = w.lab.team_remove(TEAM, PATIENT).unwrap();
    let lab_view = w.lab.verify_team(TEAM).unwrap().unwrap();
    assert!(!lab_view.state.is_member(PATIENT));
    assert_eq!(lab_view.current().unwrap().epoch, 2);
    let lab_note = w.lab.checkpoint_note().unwrap();

    ForkedLog::without_entry_at(&w.h, removal.log_index).serve(&w.h);
    let gp_view = w.gp.verify_team(TEAM).unwrap().unwrap();
    assert!(gp_view.state.is_member(PATIENT), "the fork took");
    assert_eq!(gp_view.current().unwrap().epoch, 1);
    let gp_note = w.gp.checkpoint_note().unwrap();

    // The members gossip their checkpoints: two views of one log cannot disagree.
    w.h.clear_hooks();
    let e = w.lab.compare_checkpoint(&gp_note).unwrap_err();
    assert!(matches!(e, ClientError::SplitView(_)), "{e:?}");
    assert_eq!(e.exit_code(), 4);
    let e = w.gp.compare_checkpoint(&lab_note).unwrap_err();
    assert!(matches!(e, ClientError::SplitView(_)), "{e:?}");
    // Shown the real log again, the GP refuses it: it does not extend the fork it pinned.
    let e = w.gp.verify_team(TEAM).unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Log(Error::Fork { .. } | Error::Rollback { .. })
        ),
        "{e:?}"
    );
    assert_eq!(e.exit_code(), 4);
}

/// Hostile review F1: a document shared with a team is listed for its members (`ls`), and `get`
/// without a version opens it, as for a document wrapped to the member's device; a removed
/// member no longer sees what is shared afterwards.
#[test]
fn team_documents_are_listed_for_members_and_open_without_a_version() {
    let (mut w, d1) = team_world();
    let listed = |s: &mut serment_client::vault::Session| -> Vec<String> {
        s.api
            .list_documents()
            .unwrap()
            .into_iter()
            .map(|v| v.doc_id)
            .collect()
    };
    assert!(listed(&mut w.gp).contains(&d1.to_string()));
    assert_eq!(read(&mut w.gp, &d1, None).unwrap().0, b"{\"epoch\":1}");
    w.lab.team_remove(TEAM, PATIENT).unwrap();
    let r = w.put(b"{\"epoch\":2}", "e2", &[]);
    w.lab.share_to_team(&r.doc_id, 1, TEAM).unwrap();
    assert!(listed(&mut w.gp).contains(&r.doc_id.to_string()));
    assert!(!listed(&mut w.patient).contains(&r.doc_id.to_string()));
}

/// Hostile review F9: a removed member added back is given a new epoch, not the one her removal
/// opened: what the team received while she was out stays unreadable to her.
#[test]
fn team_member_added_back_does_not_read_what_was_shared_while_she_was_out() {
    let (mut w, _) = team_world();
    w.lab.team_remove(TEAM, PATIENT).unwrap();
    let out = w.put(b"{\"while\":\"out\"}", "out", &[]);
    let (epoch, _) = w.lab.share_to_team(&out.doc_id, 1, TEAM).unwrap();
    assert_eq!(epoch, 2);
    let back = w.lab.team_add(TEAM, PATIENT, false).unwrap();
    assert_eq!(back.team.current().unwrap().epoch, 3);
    let e = read(&mut w.patient, &out.doc_id, Some(1)).unwrap_err();
    assert!(matches!(e.exit_code(), 4 | 6), "{e:?}");
    let after = w.put(b"{\"back\":true}", "back", &[]);
    w.lab.share_to_team(&after.doc_id, 1, TEAM).unwrap();
    assert_eq!(
        read(&mut w.patient, &after.doc_id, Some(1)).unwrap().0,
        b"{\"back\":true}"
    );
    // The GP, a member throughout, reads both.
    assert_eq!(
        read(&mut w.gp, &out.doc_id, Some(1)).unwrap().0,
        b"{\"while\":\"out\"}"
    );
}

/// Incremental verification (PROTOCOL.md §12.4): a member that holds the team's state verifies a
/// new change (the patient's removal) by fetching only the changes after its head and the key
/// histories of the handles the change names. The server corrupts every older entry of the
/// team's chain it serves: a client that fell back to the whole replay would fail on them; this
/// one never asks for them. The same client without its held state does fail (the control).
#[test]
fn team_incremental_verification_fetches_only_the_changes_after_the_held_head() {
    let (mut w, d1) = team_world();
    read(&mut w.gp, &d1, Some(1)).unwrap();
    let head: u64 =
        w.gp.ks
            .team_head(TEAM)
            .unwrap()
            .split_once(':')
            .unwrap()
            .0
            .parse()
            .unwrap();
    w.lab.team_remove(TEAM, PATIENT).unwrap();
    w.h.on_response(&format!("GET /v1/log/team/{TEAM}"), move |ex| {
        let mut v = ex.json();
        for e in v["entries"].as_array_mut().unwrap() {
            if e["index"].as_u64().unwrap() <= head {
                e["entry"] = json!(b64(b"an entry the server rewrote"));
            }
        }
        ex.set_json(&v);
    });
    let before = w.h.exchanges().len();
    let team = w.gp.verify_team(TEAM).unwrap().unwrap();
    assert!(team.incremental);
    assert_eq!(team.current().unwrap().epoch, 2);
    assert!(!team.state.is_member(PATIENT));
    let asked: Vec<String> = w.h.exchanges()[before..]
        .iter()
        .map(|x| x.path.clone())
        .collect();
    let team_reads: Vec<&String> = asked
        .iter()
        .filter(|p| p.starts_with(&format!("/v1/log/team/{TEAM}")))
        .collect();
    assert_eq!(team_reads.len(), 1, "{asked:?}");
    assert!(
        team_reads[0].contains(&format!("after={head}")),
        "{asked:?}"
    );
    // The removal names the lab (signer) and the patient (member): their key histories only.
    let histories: Vec<&String> = asked
        .iter()
        .filter(|p| p.starts_with("/v1/log/identity/"))
        .collect();
    assert_eq!(histories.len(), 2, "{asked:?}");
    assert!(!histories.iter().any(|p| p.contains(GP)), "{asked:?}");
    // The control: without its held state the GP replays the whole chain, and the rewritten
    // entries fail their proofs.
    w.gp.ks.forget_team_state_for_tests(TEAM);
    assert!(w.gp.verify_team(TEAM).is_err());
}
