//! `serment team new|add|remove|show|list|rotate` (issue 16, PROTOCOL.md §12): care teams whose
//! membership is signed by an admin's device and logged, with one X-Wing key per epoch.

use serde_json::{Value, json};
use serment_client::team::{TeamChanged, VerifiedTeam};

use super::Ctx;
use crate::cli::TeamCommand;
use crate::error::CliResult;
use crate::output::emit;

fn members(t: &VerifiedTeam) -> Value {
    t.state
        .members
        .iter()
        .map(|m| json!({ "handle": m.handle, "admin": m.admin }))
        .collect()
}

fn epoch(t: &VerifiedTeam) -> u32 {
    t.state.current().map_or(0, |e| e.epoch)
}

fn changed(ctx: &Ctx, what: &str, c: &TeamChanged, extra: Vec<(&str, Value)>) {
    let t = &c.team;
    let mut v = json!({
        "team": t.state.team, "epoch": epoch(t), "members": members(t),
        "removed": t.state.removed, "log_index": c.log_index, "keys_wrapped": c.keys_wrapped,
    });
    if let Some(o) = v.as_object_mut() {
        for (k, x) in extra {
            o.insert(k.to_owned(), x);
        }
    }
    emit(
        ctx.json,
        &v,
        &format!(
            "Team {}: {what} (epoch {}, {} member(s), key wrapped to {} device(s), log entry {})",
            t.state.team,
            epoch(t),
            t.state.members.len(),
            c.keys_wrapped,
            c.log_index
        ),
    );
}

pub(crate) fn run(ctx: &Ctx, c: TeamCommand) -> CliResult<()> {
    let mut s = ctx.session()?;
    match c {
        TeamCommand::New { name } => {
            let r = s.team_new(&name)?;
            changed(ctx, "created, you are its admin", &r, Vec::new());
        }
        TeamCommand::Add {
            name,
            handle,
            admin,
        } => {
            let r = s.team_add(&name, &handle, admin)?;
            // The member was pinned like `contact add` pins (hostile review F22): say so, with
            // the fingerprint to compare out of band.
            let c = serment_client::contacts::pinned(&s.ks, &handle)?;
            let fp = c.fingerprint();
            let verified = s.ks.contacts().get(&handle).is_some_and(|p| p.verified);
            if !verified {
                eprintln!(
                    "serment: note: {handle}'s fingerprint is not verified yet: {fp}\n  Compare it \
                     with {handle} out of band, then run `serment contact verify {handle} --confirm`."
                );
            }
            changed(
                ctx,
                &format!(
                    "{handle} added (fingerprint {fp}{})",
                    if verified {
                        ", verified"
                    } else {
                        ", not verified yet"
                    }
                ),
                &r,
                vec![
                    ("fingerprint", json!(fp)),
                    ("fingerprint_verified", json!(verified)),
                ],
            );
        }
        TeamCommand::Remove { name, handle } => {
            let r = s.team_remove(&name, &handle)?;
            changed(
                ctx,
                &format!("{handle} removed, new epoch key for the others"),
                &r,
                Vec::new(),
            );
        }
        TeamCommand::Rotate { name, rewrap } => {
            let r = s.team_rotate(&name)?;
            let done = if rewrap {
                s.team_rewrap(&name)?
            } else {
                Vec::new()
            };
            let list: Value = done
                .iter()
                .map(|(d, v)| json!({ "doc_id": d.to_string(), "doc_version": v }))
                .collect();
            changed(
                ctx,
                &format!("new epoch, {} document version(s) re-wrapped", done.len()),
                &r,
                vec![("rewrapped", list)],
            );
        }
        TeamCommand::Show { name } => {
            let td = s.verify_team_devices(&name)?;
            let t = &td.team;
            let me = s.ks.handle().to_owned();
            let mut text = format!(
                "Team {} (verified in the log: {} change(s), epoch {})\n",
                t.state.team,
                t.state.changes,
                epoch(t)
            );
            for m in &t.state.members {
                let devices = td.devices.get(&m.handle).map_or(0, Vec::len);
                text.push_str(&format!(
                    "  {}{}  {} device(s)\n",
                    m.handle,
                    if m.admin { " (admin)" } else { "" },
                    devices
                ));
            }
            for r in &t.state.removed {
                text.push_str(&format!("  removed: {r}\n"));
            }
            emit(
                ctx.json,
                &json!({
                    "team": t.state.team, "epoch": epoch(t), "members": members(t),
                    "removed": t.state.removed, "changes": t.state.changes,
                    "head": serment_client::log::format_head(&t.state.head),
                    "admin": t.state.is_admin(&me),
                }),
                text.trim_end(),
            );
        }
        TeamCommand::List => {
            let teams = s.team_list()?;
            let text = if teams.is_empty() {
                "No teams".to_owned()
            } else {
                teams.join("\n")
            };
            emit(ctx.json, &json!({ "teams": teams }), &text);
        }
    }
    Ok(())
}
