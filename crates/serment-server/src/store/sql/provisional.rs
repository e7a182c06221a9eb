//! Provisional recipients (issue 17 §1, PROTOCOL.md §15), written once for every SQL backend
//! (included by each backend module; `super` is the backend). SQL uses `$N` placeholders.

use serment_core::log::entry::{EntryKind, Subject};
use serment_core::{DocId, KeyId};
use sqlx::Row as _;
use subtle::ConstantTimeEq;

use super::{Db, conflict_on_unique, key_id, to_i64, to_u32, to_u64};
use crate::store::log_service::LogAppender;
use crate::store::{CodeCheck, NewProvisional, ProvisionalRow, ProvisionalStore, StoreError};

const ROW_COLUMNS: &str =
    "provisional_id, lab_identity, email, server_share, escrow, claimed_identity, failures";

fn provisional_row(r: &<super::DB as sqlx::Database>::Row) -> Result<ProvisionalRow, StoreError> {
    let claimed: Option<String> = r.try_get("claimed_identity")?;
    Ok(ProvisionalRow {
        id: key_id(&r.try_get::<String, _>("provisional_id")?, "provisional_id")?,
        lab_identity: key_id(&r.try_get::<String, _>("lab_identity")?, "lab_identity")?,
        email: r.try_get("email")?,
        server_share: r.try_get("server_share")?,
        escrow: r.try_get("escrow")?,
        claimed_identity: claimed
            .map(|c| key_id(&c, "claimed_identity"))
            .transpose()?,
        failures: to_u64(r.try_get("failures")?)?,
    })
}

#[async_trait::async_trait]
impl ProvisionalStore for Db {
    async fn create_provisional(&self, p: &NewProvisional<'_>) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let id = p.id.to_string();
        sqlx::query(
            "INSERT INTO provisionals (provisional_id, lab_identity, lab_device, contact_tag, \
             lookup, email, server_share, escrow, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(p.lab_identity.to_string())
        .bind(p.lab_device.to_string())
        .bind(&p.contact_tag)
        .bind(&p.lookup)
        .bind(p.email)
        .bind(p.server_share)
        .bind(p.escrow)
        .bind(to_i64(p.now)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_on_unique(e, "this provisional recipient or claim code exists"))?;
        let mut log = LogAppender::begin(&mut tx).await?;
        let index = log
            .append(
                &mut tx,
                EntryKind::Provisional,
                &Subject::Provisional(p.id),
                Some(&p.lab_device.to_string()),
                p.record,
                p.now,
            )
            .await?;
        sqlx::query("UPDATE provisionals SET record_index = $2 WHERE provisional_id = $1")
            .bind(&id)
            .bind(to_i64(index)?)
            .execute(&mut *tx)
            .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(index)
    }

    async fn provisionals_tagged(
        &self,
        lab_identity: &KeyId,
        contact_tag: &str,
    ) -> Result<Vec<KeyId>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT provisional_id FROM provisionals WHERE lab_identity = $1 AND contact_tag = $2 \
             ORDER BY COALESCE(record_index, -1), created_at, provisional_id",
        )
        .bind(lab_identity.to_string())
        .bind(contact_tag)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| key_id(r, "provisional_id")).collect()
    }

    async fn provisional_by_lookup(
        &self,
        lookup: &str,
    ) -> Result<Option<ProvisionalRow>, StoreError> {
        // Only constants are interpolated.
        let sql = format!("SELECT {ROW_COLUMNS} FROM provisionals WHERE lookup = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(lookup)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(provisional_row).transpose()
    }

    async fn provisional(&self, id: &KeyId) -> Result<Option<ProvisionalRow>, StoreError> {
        // Only constants are interpolated.
        let sql = format!("SELECT {ROW_COLUMNS} FROM provisionals WHERE provisional_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(provisional_row).transpose()
    }

    async fn set_provisional_code(
        &self,
        id: &KeyId,
        code_hash: &[u8; 32],
        expires_at: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO provisional_codes (provisional_id, code_hash, expires_at, attempts, used) \
             VALUES ($1, $2, $3, 0, 0) \
             ON CONFLICT (provisional_id) DO UPDATE SET code_hash = excluded.code_hash, \
             expires_at = excluded.expires_at, attempts = 0, used = 0",
        )
        .bind(id.to_string())
        .bind(&code_hash[..])
        .bind(to_i64(expires_at)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn try_provisional_code(
        &self,
        id: &KeyId,
        code_hash: &[u8; 32],
        prover: &KeyId,
        now: u64,
        max_attempts: u32,
        max_failures: u32,
    ) -> Result<CodeCheck, StoreError> {
        let id = id.to_string();
        let mut tx = self.begin().await?;
        let failures: Option<i64> =
            sqlx::query_scalar("SELECT failures FROM provisionals WHERE provisional_id = $1")
                .bind(&id)
                .fetch_optional(&mut *tx)
                .await?;
        if to_u64(failures.unwrap_or(0))? >= u64::from(max_failures) {
            return Ok(CodeCheck::Locked);
        }
        let row = sqlx::query(
            "SELECT code_hash, expires_at, attempts, used FROM provisional_codes \
             WHERE provisional_id = $1",
        )
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(CodeCheck::NoCode);
        };
        let stored: Vec<u8> = row.try_get("code_hash")?;
        let expires_at = to_u64(row.try_get("expires_at")?)?;
        let attempts = to_u64(row.try_get("attempts")?)?;
        let used: i64 = row.try_get("used")?;
        if used != 0 || expires_at <= now {
            return Ok(CodeCheck::NoCode);
        }
        if attempts >= u64::from(max_attempts) {
            return Ok(CodeCheck::Exhausted);
        }
        let right = bool::from(stored.as_slice().ct_eq(&code_hash[..]));
        // REVIEW5 U10: the proof is bound to the identity that made it.
        sqlx::query(
            "UPDATE provisional_codes SET attempts = attempts + 1, used = $2, \
             proven_by = CASE WHEN $2 = 1 THEN $3 ELSE proven_by END \
             WHERE provisional_id = $1",
        )
        .bind(&id)
        .bind(i64::from(right))
        .bind(prover.to_string())
        .execute(&mut *tx)
        .await?;
        if !right {
            sqlx::query(
                "UPDATE provisionals SET failures = failures + 1 WHERE provisional_id = $1",
            )
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(if right {
            CodeCheck::Proven
        } else {
            CodeCheck::Wrong
        })
    }

    async fn claim_provisional(
        &self,
        id: &KeyId,
        claimant_identity: &KeyId,
        device: &KeyId,
        claim: &[u8],
        now: u64,
    ) -> Result<u64, StoreError> {
        let pid = id.to_string();
        let mut tx = self.begin().await?;
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT claimed_identity FROM provisionals WHERE provisional_id = $1")
                .bind(&pid)
                .fetch_optional(&mut *tx)
                .await?;
        match row {
            None => return Err(StoreError::NotFound),
            Some((Some(_),)) => {
                return Err(StoreError::Conflict(
                    "this provisional recipient is already claimed",
                ));
            }
            Some((None,)) => {}
        }
        // REVIEW5 U10: proven by this identity, not by whoever proved it first.
        let proven: Option<i64> = sqlx::query_scalar(
            "SELECT used FROM provisional_codes \
             WHERE provisional_id = $1 AND used = 1 AND proven_by = $2",
        )
        .bind(&pid)
        .bind(claimant_identity.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if proven.is_none() {
            return Err(StoreError::Forbidden(
                "prove the emailed one-time code with this identity before claiming \
                 (PROTOCOL.md §15)",
            ));
        }
        // Data minimisation (REVIEW3 S10): once claimed, no code is ever sent again, so the
        // contact's address is erased from the row.
        sqlx::query(
            "UPDATE provisionals SET claimed_identity = $2, email = '' WHERE provisional_id = $1",
        )
        .bind(&pid)
        .bind(claimant_identity.to_string())
        .execute(&mut *tx)
        .await?;
        let mut log = LogAppender::begin(&mut tx).await?;
        let index = log
            .append(
                &mut tx,
                EntryKind::Claim,
                &Subject::Provisional(*id),
                Some(&device.to_string()),
                claim,
                now,
            )
            .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(index)
    }

    async fn add_provisional_wraps(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        wraps: &[(KeyId, Vec<u8>)],
        now: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let doc = doc_id.to_string();
        let mut tx = self.begin().await?;
        let mut log = LogAppender::begin(&mut tx).await?;
        let mut out = Vec::with_capacity(wraps.len());
        for (recipient, bytes) in wraps {
            let index = log
                .append(
                    &mut tx,
                    EntryKind::Wrap,
                    &Subject::Document(*doc_id),
                    Some(&recipient.to_string()),
                    bytes,
                    now,
                )
                .await?;
            sqlx::query(
                "INSERT INTO provisional_wraps (doc_id, doc_version, provisional_id, wrap, log_idx) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&doc)
            .bind(i64::from(doc_version))
            .bind(recipient.to_string())
            .bind(bytes.as_slice())
            .bind(to_i64(index)?)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_on_unique(e, "this recipient already has a wrap"))?;
            out.push(index);
        }
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn provisional_wraps(
        &self,
        id: &KeyId,
    ) -> Result<Vec<(DocId, u32, Vec<u8>, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT doc_id, doc_version, wrap, log_idx FROM provisional_wraps \
             WHERE provisional_id = $1 ORDER BY log_idx",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let doc: String = r.try_get("doc_id")?;
                Ok((
                    DocId::from_hex(&doc).map_err(|e| StoreError::Backend(Box::new(e)))?,
                    to_u32(r.try_get("doc_version")?)?,
                    r.try_get("wrap")?,
                    to_u64(r.try_get("log_idx")?)?,
                ))
            })
            .collect()
    }

    async fn erase_unclaimed_addresses(&self, created_before: u64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE provisionals SET email = '' \
             WHERE claimed_identity IS NULL AND email <> '' AND created_at < $1",
        )
        .bind(to_i64(created_before)?)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn claimed_wrap_of(
        &self,
        identity: &KeyId,
        doc_id: &DocId,
        doc_version: u32,
    ) -> Result<bool, StoreError> {
        // `1 AS one` is not decoded: its SQL type differs between the backends.
        let hit = sqlx::query(
            "SELECT 1 AS one FROM provisional_wraps w JOIN provisionals p \
             ON p.provisional_id = w.provisional_id \
             WHERE w.doc_id = $1 AND w.doc_version = $2 AND p.claimed_identity = $3 LIMIT 1",
        )
        .bind(doc_id.to_string())
        .bind(i64::from(doc_version))
        .bind(identity.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(hit.is_some())
    }
}
