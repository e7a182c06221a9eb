//! Care teams (PROTOCOL.md §12), written once for every SQL backend (included by each backend
//! module; `super` is the backend). The log entries (kind 7, and kind-4 wraps to a team epoch)
//! are the record; the rows here serve reads and the server's access control on ciphertext.

use serment_core::log::entry::{EntryKind, Subject};
use serment_core::{DocId, KeyId};
use sqlx::Row as _;

use super::{Db, conflict_on_unique, to_i64, to_u32, to_u64};
use crate::store::log_service::{LogAppender, NewTeamChange, subject_key};
use crate::store::{StoreError, traits::TeamStore};

#[async_trait::async_trait]
impl TeamStore for Db {
    async fn append_team_change(&self, c: &NewTeamChange<'_>) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let head: Option<i64> = sqlx::query_scalar("SELECT head_idx FROM teams WHERE name = $1")
            .bind(c.team)
            .fetch_optional(&mut *tx)
            .await?;
        match (head, c.expected_head) {
            (None, None) => {}
            (Some(h), Some(e)) if to_u64(h)? == e => {}
            (Some(_), None) => return Err(StoreError::Conflict("this team name is taken")),
            _ => {
                return Err(StoreError::Conflict(
                    "the team changed meanwhile: fetch its chain and try again",
                ));
            }
        }
        // The transaction holds the log lock: no key history can move until it commits. The
        // replay read them at `replayed_at`; an entry appended since (a revocation of the
        // signer's device, a rotation) could make the change not replay any more, so it is
        // refused and the client replays again.
        for h in &c.handles {
            let moved: Option<i64> = sqlx::query_scalar(
                "SELECT idx FROM log_entries WHERE subject = $1 AND kind IN (1, 2, 3) \
                 AND idx >= $2 LIMIT 1",
            )
            .bind(subject_key(&Subject::Handle(h.clone())))
            .bind(to_i64(c.replayed_at)?)
            .fetch_optional(&mut *tx)
            .await?;
            if moved.is_some() {
                return Err(StoreError::Conflict(
                    "a key history the change names changed meanwhile: fetch it and try again",
                ));
            }
        }
        let mut log = LogAppender::begin(&mut tx).await?;
        let idx = log
            .append(
                &mut tx,
                EntryKind::Team,
                &Subject::Team(c.team.to_owned()),
                Some(&c.signer_device.to_string()),
                c.change,
                c.now,
            )
            .await?;
        if head.is_none() {
            sqlx::query(
                "INSERT INTO teams (name, epoch, epoch_id, head_idx) VALUES ($1, $2, $3, $4)",
            )
            .bind(c.team)
            .bind(i64::from(c.epoch))
            .bind(&c.epoch_id)
            .bind(to_i64(idx)?)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_on_unique(e, "this team name is taken"))?;
        } else {
            sqlx::query(
                "UPDATE teams SET epoch = $1, epoch_id = $2, head_idx = $3 WHERE name = $4",
            )
            .bind(i64::from(c.epoch))
            .bind(&c.epoch_id)
            .bind(to_i64(idx)?)
            .bind(c.team)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM team_members WHERE team = $1")
            .bind(c.team)
            .execute(&mut *tx)
            .await?;
        for (handle, admin) in &c.members {
            sqlx::query("INSERT INTO team_members (team, handle, admin) VALUES ($1, $2, $3)")
                .bind(c.team)
                .bind(handle)
                .bind(i64::from(*admin))
                .execute(&mut *tx)
                .await?;
        }
        for (epoch, device, wrap) in &c.key_wraps {
            sqlx::query(
                "DELETE FROM team_key_wraps WHERE team = $1 AND epoch = $2 AND device_id = $3",
            )
            .bind(c.team)
            .bind(i64::from(*epoch))
            .bind(device)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO team_key_wraps (team, epoch, device_id, wrap) VALUES ($1, $2, $3, $4)",
            )
            .bind(c.team)
            .bind(i64::from(*epoch))
            .bind(device)
            .bind(wrap)
            .execute(&mut *tx)
            .await?;
        }
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(idx)
    }

    async fn team_epoch(&self, team: &str) -> Result<Option<(u32, String)>, StoreError> {
        let row = sqlx::query("SELECT epoch, epoch_id FROM teams WHERE name = $1")
            .bind(team)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((to_u32(r.try_get("epoch")?)?, r.try_get("epoch_id")?)))
            .transpose()
    }

    async fn team_key_wraps(
        &self,
        team: &str,
        device_id: &KeyId,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let device_id = device_id.to_string();
        let device_id = device_id.as_str();
        Ok(sqlx::query_scalar(
            "SELECT wrap FROM team_key_wraps WHERE team = $1 AND device_id = $2 ORDER BY epoch",
        )
        .bind(team)
        .bind(device_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn all_team_key_wraps(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT wrap FROM team_key_wraps ORDER BY team, epoch, device_id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn teams_of(&self, handle: &str) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT team FROM team_members WHERE handle = $1 ORDER BY team")
                .bind(handle)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn hand_over_team_keys(
        &self,
        team: &str,
        handle: &str,
        wraps: &[(u32, String, Vec<u8>)],
    ) -> Result<usize, StoreError> {
        let mut tx = self.begin().await?;
        // `1` is an INT4 in PostgreSQL (see `add_team_wrap`).
        let member: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM team_members WHERE team = $1 AND handle = $2")
                .bind(team)
                .bind(handle)
                .fetch_optional(&mut *tx)
                .await?;
        if member.is_none() {
            return Err(StoreError::Forbidden(
                "only a current member of the team may hand its keys on",
            ));
        }
        let mut stored = 0;
        for (epoch, device, wrap) in wraps {
            let current: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM devices WHERE device_id = $1 AND handle = $2 AND revoked = 0",
            )
            .bind(device)
            .bind(handle)
            .fetch_optional(&mut *tx)
            .await?;
            if current.is_none() {
                return Err(StoreError::Forbidden(
                    "a team key may be handed on only to a current device of the caller's own identity",
                ));
            }
            let held: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM team_key_wraps WHERE team = $1 AND epoch = $2 AND device_id = $3",
            )
            .bind(team)
            .bind(i64::from(*epoch))
            .bind(device)
            .fetch_optional(&mut *tx)
            .await?;
            if held.is_some() {
                continue;
            }
            sqlx::query(
                "INSERT INTO team_key_wraps (team, epoch, device_id, wrap) VALUES ($1, $2, $3, $4)",
            )
            .bind(team)
            .bind(i64::from(*epoch))
            .bind(device)
            .bind(wrap)
            .execute(&mut *tx)
            .await?;
            stored += 1;
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn add_team_wrap(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        team: &str,
        epoch_id: &str,
        sharer_device: &KeyId,
        wrap: &[u8],
        now: u64,
    ) -> Result<u64, StoreError> {
        let sharer_device = sharer_device.to_string();
        let sharer_device = sharer_device.as_str();
        let doc = doc_id.to_string();
        let mut tx = self.begin().await?;
        // `1` is an INT4 in PostgreSQL (an i64 there fails to decode: a 500 on that backend).
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM documents WHERE doc_id = $1 AND doc_version = $2")
                .bind(&doc)
                .bind(i64::from(doc_version))
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(StoreError::Conflict("no such document version"));
        }
        // Under the log lock, as the team changes are appended: the handler's check of the
        // current epoch was read before; a removal appended since opened a new epoch, and a
        // wrap to the old one must not land after it in the log (THREAT_MODEL.md, F10).
        let current: Option<String> =
            sqlx::query_scalar("SELECT epoch_id FROM teams WHERE name = $1")
                .bind(team)
                .fetch_optional(&mut *tx)
                .await?;
        if current.as_deref() != Some(epoch_id) {
            return Err(StoreError::Conflict(
                "wrap: not to the team's current epoch (the team changed: fetch its chain)",
            ));
        }
        sqlx::query(
            "DELETE FROM team_wraps WHERE doc_id = $1 AND doc_version = $2 AND team = $3 \
             AND epoch_id <> $4",
        )
        .bind(&doc)
        .bind(i64::from(doc_version))
        .bind(team)
        .bind(epoch_id)
        .execute(&mut *tx)
        .await?;
        let mut log = LogAppender::begin(&mut tx).await?;
        let idx = log
            .append(
                &mut tx,
                EntryKind::Wrap,
                &Subject::Document(*doc_id),
                None,
                wrap,
                now,
            )
            .await?;
        sqlx::query(
            "INSERT INTO team_wraps (doc_id, doc_version, epoch_id, team, sharer_device, wrap, \
             log_idx) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&doc)
        .bind(i64::from(doc_version))
        .bind(epoch_id)
        .bind(team)
        .bind(sharer_device)
        .bind(wrap)
        .bind(to_i64(idx)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            conflict_on_unique(e, "this version already holds a wrap to this team epoch")
        })?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(idx)
    }
}
