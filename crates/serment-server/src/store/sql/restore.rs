//! `serment restore`'s writes (docs/BACKUP.md §7), once for every SQL backend: every row of a
//! [`RestorePlan`] in one transaction, which also replaces the restoring marker with the log's
//! origin, so a failed or interrupted restore leaves a database `serve` refuses.
//!
//! Included by each backend module (`#[path]`): `super` is the backend.

use sqlx::QueryBuilder;

use sqlx::Row as _;

use super::{DB, Db, to_i64, to_u32, to_u64};
use crate::backup::side::{EscrowObject, ProvisionalObject, SocialObject, SocialShare};
use crate::store::log_service::LogTx as _;
use crate::store::restore::{RESTORING_ORIGIN, RestorePlan};
use crate::store::{RestoreStore, StoreError};

/// Rows per multi-row `INSERT` (at most 7 bound parameters a row: far below both backends'
/// limits).
const ROWS: usize = 500;

#[async_trait::async_trait]
impl RestoreStore for Db {
    async fn restore_target_empty(&self) -> Result<bool, StoreError> {
        let mut n: i64 = 0;
        // Constant table names only.
        for t in [
            "log_entries",
            "devices",
            "documents",
            "blobs",
            "teams",
            "provisionals",
            "recovery_escrows",
        ] {
            let c: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}")))
                    .fetch_one(&self.pool)
                    .await?;
            n += c;
        }
        Ok(n == 0)
    }

    async fn backup_provisionals(&self) -> Result<Vec<ProvisionalObject>, StoreError> {
        let rows = sqlx::query(
            "SELECT provisional_id, lookup, email, server_share, escrow FROM provisionals \
             ORDER BY provisional_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ProvisionalObject {
                    id: r.try_get("provisional_id")?,
                    lookup: r.try_get("lookup")?,
                    email: r.try_get("email")?,
                    server_share: r.try_get("server_share")?,
                    escrow: r.try_get("escrow")?,
                })
            })
            .collect()
    }

    async fn backup_escrows(&self) -> Result<Vec<EscrowObject>, StoreError> {
        let rows = sqlx::query(
            "SELECT handle, identity_id, recovery_device, escrow, updated_at \
             FROM recovery_escrows ORDER BY handle",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EscrowObject {
                    handle: r.try_get("handle")?,
                    identity_id: r.try_get("identity_id")?,
                    recovery_device: r.try_get("recovery_device")?,
                    escrow: r.try_get("escrow")?,
                    updated_at: to_u64(r.try_get("updated_at")?)?,
                })
            })
            .collect()
    }

    async fn backup_social(&self) -> Result<Vec<SocialObject>, StoreError> {
        let rows = sqlx::query(
            "SELECT handle, identity_id, recovery_device, contacts_hash, threshold, \
             waiting_period, escrow, updated_at FROM social_escrows ORDER BY handle",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(SocialObject {
                    handle: r.try_get("handle")?,
                    identity_id: r.try_get("identity_id")?,
                    recovery_device: r.try_get("recovery_device")?,
                    contacts_hash: r.try_get("contacts_hash")?,
                    threshold: to_u32(r.try_get("threshold")?)?,
                    waiting_period: to_u64(r.try_get("waiting_period")?)?,
                    escrow: r.try_get("escrow")?,
                    updated_at: to_u64(r.try_get("updated_at")?)?,
                    shares: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let shares = sqlx::query(
            "SELECT handle, request_id, recipient, sharer, contact, share FROM social_shares \
             ORDER BY handle, request_id, recipient, sharer",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &shares {
            let handle: String = r.try_get("handle")?;
            if let Some(o) = out.iter_mut().find(|o| o.handle == handle) {
                o.shares.push(SocialShare {
                    request_id: r.try_get("request_id")?,
                    recipient: r.try_get("recipient")?,
                    sharer: r.try_get("sharer")?,
                    contact: r.try_get("contact")?,
                    share: r.try_get("share")?,
                });
            }
        }
        Ok(out)
    }

    async fn restore_mark(&self) -> Result<(), StoreError> {
        sqlx::query("UPDATE log_head SET origin = $1 WHERE id = 1")
            .bind(RESTORING_ORIGIN)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn restore_rows(&self, p: &RestorePlan) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        // What log_init wrote at open (the empty tree's checkpoint) makes way for the log's.
        sqlx::query("DELETE FROM log_checkpoints")
            .execute(&mut *tx)
            .await?;
        for rows in p.devices.chunks(ROWS) {
            let mut q = QueryBuilder::<DB>::new(
                "INSERT INTO devices (device_id, identity_id, handle, record, created_at, revoked) ",
            );
            let rows = rows
                .iter()
                .map(|d| Ok((d, to_i64(d.created_at)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            q.push_values(rows, |mut b, (d, at)| {
                b.push_bind(d.device_id.as_str())
                    .push_bind(d.identity_id.as_str())
                    .push_bind(d.handle.as_str())
                    .push_bind(d.record.as_slice())
                    .push_bind(at)
                    .push_bind(i64::from(d.revoked));
            });
            q.build().execute(&mut *tx).await?;
        }
        for rows in p.handles.chunks(ROWS) {
            let mut q = QueryBuilder::<DB>::new("INSERT INTO handles (handle, identity_id) ");
            q.push_values(rows, |mut b, (h, i)| {
                b.push_bind(h.as_str()).push_bind(i.as_str());
            });
            q.build().execute(&mut *tx).await?;
        }
        for rows in p.versions.chunks(ROWS) {
            let rows = rows
                .iter()
                .map(|v| Ok((v, to_i64(v.size)?, to_i64(v.created_at)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let mut q =
                QueryBuilder::<DB>::new("INSERT INTO blobs (blob_id, size, created_at, data) ");
            q.push_values(&rows, |mut b, (v, size, at)| {
                b.push_bind(v.blob_id.as_str())
                    .push_bind(*size)
                    .push_bind(*at)
                    .push_bind(p.inline.get(&v.blob_id).map(|d| d.as_ref()));
            });
            // Two versions may hold the same bytes.
            q.push(" ON CONFLICT (blob_id) DO NOTHING");
            q.build().execute(&mut *tx).await?;
            let mut q = QueryBuilder::<DB>::new(
                "INSERT INTO documents \
                 (doc_id, doc_version, author_device, author_identity, blob_id, created_at) ",
            );
            q.push_values(&rows, |mut b, (v, _, at)| {
                b.push_bind(v.doc_id.as_str())
                    .push_bind(i64::from(v.doc_version))
                    .push_bind(v.author_device.as_str())
                    .push_bind(v.author_identity.as_str())
                    .push_bind(v.blob_id.as_str())
                    .push_bind(*at);
            });
            q.build().execute(&mut *tx).await?;
        }
        for rows in p.wraps.chunks(ROWS) {
            let rows = rows
                .iter()
                .map(|w| Ok((w, to_i64(w.log_idx)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let mut q = QueryBuilder::<DB>::new(
                "INSERT INTO wraps (doc_id, doc_version, recipient_device, sharer_device, wrap, \
                 log_idx) ",
            );
            q.push_values(rows, |mut b, (w, idx)| {
                b.push_bind(w.doc_id.as_str())
                    .push_bind(i64::from(w.doc_version))
                    .push_bind(w.recipient.as_str())
                    .push_bind(w.sharer.as_str())
                    .push_bind(w.wrap.as_slice())
                    .push_bind(idx);
            });
            q.build().execute(&mut *tx).await?;
        }
        for rows in p.accesses.chunks(ROWS) {
            let rows = rows
                .iter()
                .map(|a| Ok((a, to_i64(a.at)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let mut q = QueryBuilder::<DB>::new(
                "INSERT INTO accesses (doc_id, doc_version, device_id, what, at) ",
            );
            q.push_values(&rows, |mut b, (a, at)| {
                b.push_bind(a.doc_id.as_str())
                    .push_bind(i64::from(a.doc_version))
                    .push_bind(a.device_id.as_str())
                    .push_bind(a.what)
                    .push_bind(*at);
            });
            q.build().execute(&mut *tx).await?;
            let mut q = QueryBuilder::<DB>::new("INSERT INTO access_nonces (device_id, nonce) ");
            q.push_values(&rows, |mut b, (a, _)| {
                b.push_bind(a.device_id.as_str())
                    .push_bind(a.nonce.as_str());
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut *tx).await?;
        }
        for t in &p.teams {
            sqlx::query(
                "INSERT INTO teams (name, epoch, epoch_id, head_idx) VALUES ($1, $2, $3, $4)",
            )
            .bind(t.name.as_str())
            .bind(i64::from(t.epoch))
            .bind(t.epoch_id.as_str())
            .bind(to_i64(t.head_idx)?)
            .execute(&mut *tx)
            .await?;
            for (handle, admin) in &t.members {
                sqlx::query("INSERT INTO team_members (team, handle, admin) VALUES ($1, $2, $3)")
                    .bind(t.name.as_str())
                    .bind(handle.as_str())
                    .bind(i64::from(*admin))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for (team, epoch, device, wrap) in &p.team_key_wraps {
            sqlx::query(
                "INSERT INTO team_key_wraps (team, epoch, device_id, wrap) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(team.as_str())
            .bind(i64::from(*epoch))
            .bind(device.as_str())
            .bind(wrap.as_slice())
            .execute(&mut *tx)
            .await?;
        }
        for w in &p.team_wraps {
            sqlx::query(
                "INSERT INTO team_wraps (doc_id, doc_version, epoch_id, team, sharer_device, wrap, \
                 log_idx) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(w.doc_id.as_str())
            .bind(i64::from(w.doc_version))
            .bind(w.epoch_id.as_str())
            .bind(w.team.as_str())
            .bind(w.sharer.as_str())
            .bind(w.wrap.as_slice())
            .bind(to_i64(w.log_idx)?)
            .execute(&mut *tx)
            .await?;
        }
        // Review S3: provisional recipients (their wraps reference them and a restored version),
        // then recovery escrows.
        for pr in &p.provisionals {
            sqlx::query(
                "INSERT INTO provisionals (provisional_id, lab_identity, lab_device, contact_tag, \
                 lookup, email, server_share, escrow, created_at, claimed_identity, \
                 record_index) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(pr.object.id.as_str())
            .bind(pr.lab_identity.as_str())
            .bind(pr.lab_device.as_str())
            .bind(pr.contact_tag.as_str())
            .bind(pr.object.lookup.as_str())
            .bind(pr.object.email.as_str())
            .bind(pr.object.server_share.as_slice())
            .bind(pr.object.escrow.as_slice())
            .bind(to_i64(pr.created_at)?)
            .bind(pr.claimed_identity.as_deref())
            .bind(to_i64(pr.record_index)?)
            .execute(&mut *tx)
            .await?;
        }
        for w in &p.provisional_wraps {
            sqlx::query(
                "INSERT INTO provisional_wraps (doc_id, doc_version, provisional_id, wrap, \
                 log_idx) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(w.doc_id.as_str())
            .bind(i64::from(w.doc_version))
            .bind(w.recipient.as_str())
            .bind(w.wrap.as_slice())
            .bind(to_i64(w.log_idx)?)
            .execute(&mut *tx)
            .await?;
        }
        for e in &p.escrows {
            sqlx::query(
                "INSERT INTO recovery_escrows (handle, identity_id, recovery_device, escrow, \
                 updated_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(e.handle.as_str())
            .bind(e.identity_id.as_str())
            .bind(e.recovery_device.as_str())
            .bind(e.escrow.as_slice())
            .bind(to_i64(e.updated_at)?)
            .execute(&mut *tx)
            .await?;
        }
        // Review T11: social recovery sets the log backs, their share wraps, and the requests
        // derived from the log.
        for o in &p.social {
            sqlx::query(
                "INSERT INTO social_escrows (handle, identity_id, recovery_device, contacts_hash, \
                 threshold, waiting_period, escrow, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(o.handle.as_str())
            .bind(o.identity_id.as_str())
            .bind(o.recovery_device.as_str())
            .bind(o.contacts_hash.as_str())
            .bind(i64::from(o.threshold))
            .bind(to_i64(o.waiting_period)?)
            .bind(o.escrow.as_slice())
            .bind(to_i64(o.updated_at)?)
            .execute(&mut *tx)
            .await?;
            for sh in &o.shares {
                sqlx::query(
                    "INSERT INTO social_shares (handle, request_id, recipient, sharer, contact, \
                     share) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(o.handle.as_str())
                .bind(sh.request_id.as_str())
                .bind(sh.recipient.as_str())
                .bind(sh.sharer.as_str())
                .bind(sh.contact.as_str())
                .bind(sh.share.as_slice())
                .execute(&mut *tx)
                .await?;
            }
        }
        for r in &p.social_requests {
            sqlx::query(
                "INSERT INTO social_requests (request_id, handle, contacts_hash, new_device, \
                 logged_at, vetoed) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(r.request_id.as_str())
            .bind(r.handle.as_str())
            .bind(r.contacts_hash.as_str())
            .bind(r.new_device.as_str())
            .bind(to_i64(r.logged_at)?)
            .bind(i64::from(r.vetoed))
            .execute(&mut *tx)
            .await?;
        }
        for (seq, (restored_size, text)) in p.loss_statements.iter().enumerate() {
            sqlx::query(
                "INSERT INTO loss_statements (seq, restored_size, statement) VALUES ($1, $2, $3)",
            )
            .bind(to_i64(seq as u64)?)
            .bind(to_i64(*restored_size)?)
            .bind(text.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.insert_nodes(&p.nodes).await?;
        tx.insert_entries(&p.entries).await?;
        for c in &p.checkpoints {
            sqlx::query("INSERT INTO log_checkpoints (size, note) VALUES ($1, $2)")
                .bind(to_i64(c.size)?)
                .bind(c.note.as_str())
                .execute(&mut *tx)
                .await?;
            for (witness, key_id, line) in &c.cosignatures {
                sqlx::query(
                    "INSERT INTO log_cosignatures (size, witness, key_id, line) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(to_i64(c.size)?)
                .bind(witness.as_str())
                .bind(i64::from(*key_id))
                .bind(line.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        let marked = sqlx::query(
            "UPDATE log_head SET size = $1, root = $2, origin = $3 WHERE id = 1 AND origin = $4",
        )
        .bind(to_i64(p.size)?)
        .bind(p.root.as_slice())
        .bind(self.log.name())
        .bind(RESTORING_ORIGIN)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if marked != 1 {
            return Err(StoreError::Conflict(
                "the database is not marked as being restored (another writer?)",
            ));
        }
        tx.commit().await?;
        Ok(())
    }
}
