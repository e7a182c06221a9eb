//! The transparency-log routes of the HTTP API (PROTOCOL.md §11.9). Everything returned here is
//! unverified: [`crate::log`] checks signatures, proofs and chains.

use serment_core::DocId;
use serment_core::log::tree::Hash;

use crate::api::{Api, b64d, b64e};
use crate::error::{ClientError, Result};

/// The most hashes accepted in one proof.
const MAX_PROOF: usize = serment_core::log::tree::MAX_PROOF_HASHES;
/// The most loss statements a client looks at (the newest): a log restored more often than this
/// has an operator problem no client can sort out.
pub const MAX_LOSS_STATEMENTS: usize = 64;
/// The most entries accepted in one history.
pub const MAX_HISTORY: usize = 100_000;

// The wire types, defined once for the server and every client (crates/serment-api).
use serment_api::{
    AppendedResponse, CheckpointResponse, ConsistencyResponse, CosignatureRequest, EntriesResponse,
    LogKeyResponse, RemovalRequest, RevocationRequest, RotationRequest,
};
pub use serment_api::{HistoryResponse, ProvenEntry};

/// A proven entry's decoded entry bytes and proof hashes.
///
/// # Errors
/// [`ClientError::BadResponse`] for a proof over [`MAX_PROOF`] hashes, or bad base64url.
pub fn decode_proven(pe: &ProvenEntry) -> Result<(Vec<u8>, Vec<Hash>)> {
    if pe.proof.len() > MAX_PROOF {
        return Err(ClientError::BadResponse("proof too long".into()));
    }
    let entry = b64d(&pe.entry, "entry")?;
    Ok((entry, hashes(&pe.proof)?))
}

/// Decodes base64url hashes.
///
/// # Errors
/// [`ClientError::BadResponse`].
pub fn hashes(v: &[String]) -> Result<Vec<Hash>> {
    v.iter()
        .map(|h| {
            b64d(h, "hash").and_then(|b| {
                Hash::try_from(b.as_slice())
                    .map_err(|_| ClientError::BadResponse("a hash is not 32 bytes".into()))
            })
        })
        .collect()
}

impl Api {
    /// `GET /v1/log/key`: the log's verifier key.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn log_key(&self) -> Result<String> {
        let k: LogKeyResponse = self.get_json("/v1/log/key", false)?;
        Ok(k.vkey)
    }

    /// `GET /v1/log/checkpoint[?size=]`: a checkpoint note.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn log_checkpoint(&self, size: Option<u64>) -> Result<String> {
        let path = match size {
            Some(n) => format!("/v1/log/checkpoint?size={n}"),
            None => "/v1/log/checkpoint".to_owned(),
        };
        let c: CheckpointResponse = self.get_json(&path, false)?;
        Ok(c.checkpoint)
    }

    /// `GET /v1/log/loss-statements` (PROTOCOL.md §11.11): the texts, oldest first, at most
    /// [`MAX_LOSS_STATEMENTS`] (the newest kept); unverified.
    ///
    /// # Errors
    /// Server, transport and format errors.
    pub fn log_loss_statements(&self) -> Result<Vec<String>> {
        let r: serment_api::log::LossStatementsResponse =
            self.get_json("/v1/log/loss-statements", false)?;
        let skip = r.statements.len().saturating_sub(MAX_LOSS_STATEMENTS);
        Ok(r.statements.into_iter().skip(skip).collect())
    }

    /// `GET /v1/log/consistency`: a consistency proof.
    ///
    /// # Errors
    /// Server, transport and format errors.
    pub fn log_consistency(&self, from: u64, to: u64) -> Result<Vec<Hash>> {
        let p: ConsistencyResponse =
            self.get_json(&format!("/v1/log/consistency?from={from}&to={to}"), false)?;
        if p.proof.len() > MAX_PROOF {
            return Err(ClientError::BadResponse("proof too long".into()));
        }
        hashes(&p.proof)
    }

    /// `GET /v1/log/proof`: one entry with its inclusion proof.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn log_proof(&self, index: u64, size: u64) -> Result<ProvenEntry> {
        self.get_json(&format!("/v1/log/proof?index={index}&size={size}"), false)
    }

    /// `GET /v1/log/entries`: entries `[start, end)` (at most 1000).
    ///
    /// # Errors
    /// Server, transport and format errors.
    pub fn log_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>> {
        let e: EntriesResponse =
            self.get_json(&format!("/v1/log/entries?start={start}&end={end}"), false)?;
        e.entries.iter().map(|b| b64d(b, "entry")).collect()
    }

    /// `GET /v1/log/identity/{handle}`: the handle's key history with proofs.
    ///
    /// # Errors
    /// Server and transport errors; [`ClientError::Input`] for an invalid handle.
    pub fn log_identity(&self, handle: &str, size: Option<u64>) -> Result<HistoryResponse> {
        serment_core::identity::validate_handle(handle)
            .map_err(|e| ClientError::Input(e.to_string()))?;
        let mut path = format!("/v1/log/identity/{handle}");
        if let Some(n) = size {
            path.push_str(&format!("?size={n}"));
        }
        let h: HistoryResponse = self.get_json(&path, false)?;
        check_len(&h)?;
        Ok(h)
    }

    /// `GET /v1/documents/{id}/log`: the document's chain with proofs.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn document_log(&self, doc_id: &DocId, size: Option<u64>) -> Result<HistoryResponse> {
        let mut path = format!("/v1/documents/{doc_id}/log");
        if let Some(n) = size {
            path.push_str(&format!("?size={n}"));
        }
        let h: HistoryResponse = self.get_json(&path, true)?;
        check_len(&h)?;
        Ok(h)
    }

    /// `POST /v1/log/cosignatures`.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn post_cosignature(&self, vkey: &str, size: u64, line: &str) -> Result<()> {
        let resp = self.post_json_raw(
            "/v1/log/cosignatures",
            &CosignatureRequest {
                vkey: vkey.to_owned(),
                size,
                cosignature: line.to_owned(),
            },
            false,
        )?;
        Self::check(resp)?;
        Ok(())
    }

    /// `POST /v1/log/revocations`: returns the log indices appended.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn revoke(&self, revocation: &[u8]) -> Result<Vec<u64>> {
        let v: AppendedResponse = self.post_json(
            "/v1/log/revocations",
            &RevocationRequest {
                revocation: b64e(revocation),
            },
            true,
        )?;
        Ok(v.log_indices)
    }

    /// `POST /v1/log/rotations`: returns the log indices appended.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn rotate(&self, rotation: &[u8], records: &[Vec<u8>]) -> Result<Vec<u64>> {
        let records: Vec<String> = records.iter().map(|r| b64e(r)).collect();
        let v: AppendedResponse = self.post_json(
            "/v1/log/rotations",
            &RotationRequest {
                rotation: b64e(rotation),
                records,
            },
            true,
        )?;
        Ok(v.log_indices)
    }

    /// `POST /v1/documents/{id}/erase` with a signed tombstone (PROTOCOL.md §11.3.2): returns
    /// the log indices appended.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn erase(&self, doc_id: &DocId, tombstone: &[u8]) -> Result<Vec<u64>> {
        let v: AppendedResponse = self.post_json(
            &format!("/v1/documents/{doc_id}/erase"),
            &serment_api::ErasureRequest {
                erasure: b64e(tombstone),
            },
            true,
        )?;
        Ok(v.log_indices)
    }

    /// `POST /v1/documents/{id}/versions/{v}/removals`: returns the log indices appended.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn remove_recipient(
        &self,
        doc_id: &DocId,
        version: u32,
        removal: &[u8],
    ) -> Result<Vec<u64>> {
        let v: AppendedResponse = self.post_json(
            &format!("/v1/documents/{doc_id}/versions/{version}/removals"),
            &RemovalRequest {
                removal: b64e(removal),
            },
            true,
        )?;
        Ok(v.log_indices)
    }
}

fn check_len(h: &HistoryResponse) -> Result<()> {
    if h.entries.len() > MAX_HISTORY || h.devices.len() > MAX_HISTORY {
        return Err(ClientError::BadResponse("history too long".into()));
    }
    Ok(())
}
