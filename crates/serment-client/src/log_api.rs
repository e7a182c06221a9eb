//! The transparency-log routes of the HTTP API (PROTOCOL.md §11.9). Everything returned here is
//! unverified: [`crate::log`] checks signatures, proofs and chains.

use serde::Deserialize;
use serment_core::DocId;
use serment_core::log::tree::Hash;

use crate::api::{Api, b64d, b64e};
use crate::error::{ClientError, Result};

/// The most hashes accepted in one proof.
const MAX_PROOF: usize = serment_core::log::tree::MAX_PROOF_HASHES;
/// The most entries accepted in one history.
pub const MAX_HISTORY: usize = 100_000;

/// One entry with its inclusion proof, as served.
#[derive(Debug, Clone, Deserialize)]
pub struct ProvenEntry {
    /// Index in the log.
    pub index: u64,
    /// The entry, base64url.
    pub entry: String,
    /// Proof hashes, base64url, leaf to root.
    pub proof: Vec<String>,
}

impl ProvenEntry {
    /// The decoded entry bytes and proof hashes.
    ///
    /// # Errors
    /// [`ClientError::BadResponse`].
    pub fn decode(&self) -> Result<(Vec<u8>, Vec<Hash>)> {
        if self.proof.len() > MAX_PROOF {
            return Err(ClientError::BadResponse("proof too long".into()));
        }
        let entry = b64d(&self.entry, "entry")?;
        Ok((entry, hashes(&self.proof)?))
    }
}

/// A subject's chain with proofs, as served.
#[derive(Debug, Clone, Deserialize)]
pub struct History {
    /// The tree size of the proofs.
    pub size: u64,
    /// The checkpoint note of that size.
    pub checkpoint: String,
    /// The chain.
    pub entries: Vec<ProvenEntry>,
    /// Device-record entries of the devices a document chain names.
    #[serde(default)]
    pub devices: Vec<ProvenEntry>,
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
        #[derive(Deserialize)]
        struct K {
            vkey: String,
        }
        let k: K = self.get_json("/v1/log/key", false)?;
        Ok(k.vkey)
    }

    /// `GET /v1/log/checkpoint[?size=]`: a checkpoint note.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn log_checkpoint(&self, size: Option<u64>) -> Result<String> {
        #[derive(Deserialize)]
        struct C {
            checkpoint: String,
        }
        let path = match size {
            Some(n) => format!("/v1/log/checkpoint?size={n}"),
            None => "/v1/log/checkpoint".to_owned(),
        };
        let c: C = self.get_json(&path, false)?;
        Ok(c.checkpoint)
    }

    /// `GET /v1/log/consistency`: a consistency proof.
    ///
    /// # Errors
    /// Server, transport and format errors.
    pub fn log_consistency(&self, from: u64, to: u64) -> Result<Vec<Hash>> {
        #[derive(Deserialize)]
        struct P {
            proof: Vec<String>,
        }
        let p: P = self.get_json(&format!("/v1/log/consistency?from={from}&to={to}"), false)?;
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
        #[derive(Deserialize)]
        struct E {
            entries: Vec<String>,
        }
        let e: E = self.get_json(&format!("/v1/log/entries?start={start}&end={end}"), false)?;
        e.entries.iter().map(|b| b64d(b, "entry")).collect()
    }

    /// `GET /v1/log/identity/{handle}`: the handle's key history with proofs.
    ///
    /// # Errors
    /// Server and transport errors; [`ClientError::Input`] for an invalid handle.
    pub fn log_identity(&self, handle: &str, size: Option<u64>) -> Result<History> {
        serment_core::identity::validate_handle(handle)
            .map_err(|e| ClientError::Input(e.to_string()))?;
        let mut path = format!("/v1/log/identity/{handle}");
        if let Some(n) = size {
            path.push_str(&format!("?size={n}"));
        }
        let h: History = self.get_json(&path, false)?;
        check_len(&h)?;
        Ok(h)
    }

    /// `GET /v1/documents/{id}/log`: the document's chain with proofs.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn document_log(&self, doc_id: &DocId, size: Option<u64>) -> Result<History> {
        let mut path = format!("/v1/documents/{doc_id}/log");
        if let Some(n) = size {
            path.push_str(&format!("?size={n}"));
        }
        let h: History = self.get_json(&path, true)?;
        check_len(&h)?;
        Ok(h)
    }

    /// `POST /v1/log/cosignatures`.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn post_cosignature(&self, vkey: &str, size: u64, line: &str) -> Result<()> {
        let resp = self
            .agent
            .post(self.url("/v1/log/cosignatures"))
            .send_json(serde_json::json!({ "vkey": vkey, "size": size, "cosignature": line }))
            .map_err(|e| self.unreachable(e))?;
        Self::check(resp)?;
        Ok(())
    }

    /// `POST /v1/log/revocations`: returns the log indices appended.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn revoke(&self, revocation: &[u8]) -> Result<Vec<u64>> {
        let v: serde_json::Value = self.post_json(
            "/v1/log/revocations",
            &serde_json::json!({ "revocation": b64e(revocation) }),
            true,
        )?;
        Ok(indices(&v))
    }

    /// `POST /v1/log/rotations`: returns the log indices appended.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn rotate(&self, rotation: &[u8], records: &[Vec<u8>]) -> Result<Vec<u64>> {
        let records: Vec<String> = records.iter().map(|r| b64e(r)).collect();
        let v: serde_json::Value = self.post_json(
            "/v1/log/rotations",
            &serde_json::json!({ "rotation": b64e(rotation), "records": records }),
            true,
        )?;
        Ok(indices(&v))
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
        let v: serde_json::Value = self.post_json(
            &format!("/v1/documents/{doc_id}/versions/{version}/removals"),
            &serde_json::json!({ "removal": b64e(removal) }),
            true,
        )?;
        Ok(indices(&v))
    }
}

fn indices(v: &serde_json::Value) -> Vec<u64> {
    v.get("log_indices")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
        .unwrap_or_default()
}

fn check_len(h: &History) -> Result<()> {
    if h.entries.len() > MAX_HISTORY || h.devices.len() > MAX_HISTORY {
        return Err(ClientError::BadResponse("history too long".into()));
    }
    Ok(())
}
