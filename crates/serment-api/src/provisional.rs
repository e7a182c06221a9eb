//! Provisional recipients (PROTOCOL.md §15, issue 17 §1): a lab seals for a patient who has not
//! registered yet; the patient proves an emailed one-time code, receives the server's share and
//! the escrow, and claims. Binary fields are base64url, ids lowercase hex.

use serde::{Deserialize, Serialize};

/// `POST /v1/provisional` (bearer, the lab's device): a new provisional recipient.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateProvisionalRequest {
    /// The provisional record (kind 10 payload, `"SRMQ"`), signed by the calling device.
    pub record: String,
    /// The escrow (`"SRMF"`): the provisional secrets under a key of the claim code and the share.
    pub escrow: String,
    /// The server share S (32 bytes).
    pub server_share: String,
    /// `H("serment/v1/provisional-lookup" 0x00 || C)`, hex: how the claim code finds it.
    pub lookup: String,
    /// Where the one-time codes go. Never logged, never in the transparency log.
    pub email: String,
}

/// The answer to [`CreateProvisionalRequest`] and to a claim: the id and the entry's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvisionalAppended {
    /// The provisional recipient's id (hex).
    pub provisional_id: String,
    /// The log index of the record (kind 10) or claim (kind 11).
    pub log_index: u64,
}

/// `GET /v1/provisional?contact_tag=HEX` (bearer): the caller identity's provisional recipients
/// for a contact tag, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProvisionalQuery {
    /// The contact tag, 64 hex.
    pub contact_tag: String,
}

/// Provisional recipient ids (hex), oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvisionalList {
    /// Ids, hex.
    pub provisionals: Vec<String>,
}

/// `POST /v1/provisional/code` (no authentication, throttled per address): email a one-time
/// code to the contact of the provisional recipient a claim code names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SendCodeRequest {
    /// The claim code's lookup id, hex.
    pub lookup: String,
}

/// A one-time code was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CodeSent {
    /// Seconds the code stays valid.
    pub expires_in: u64,
}

/// `POST /v1/provisional/open` (bearer, throttled per address): prove the one-time code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OpenProvisionalRequest {
    /// The claim code's lookup id, hex.
    pub lookup: String,
    /// The emailed one-time code (8 digits).
    pub code: String,
}

/// The server's share and the escrow, released for a proven one-time code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenedProvisional {
    /// The provisional recipient's id (hex).
    pub provisional_id: String,
    /// The server share S (32 bytes).
    pub server_share: String,
    /// The escrow (`"SRMF"`).
    pub escrow: String,
}

/// `POST /v1/provisional/{id}/claim` (bearer, the claimant's device): the claim (kind 11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// The claim (`"SRMJ"`), signed by the provisional key and the calling device.
    pub claim: String,
}

/// One wrap to a provisional recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvisionalWrap {
    /// Document id, hex.
    pub doc_id: String,
    /// Version.
    pub doc_version: u32,
    /// The wrap (§7), base64url.
    pub wrap: String,
    /// Its log index.
    pub log_index: u64,
}

/// `GET /v1/provisional/{id}/wraps` (bearer, a device of the identity that claimed it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvisionalWraps {
    /// Every wrap to the provisional recipient, in log order.
    pub wraps: Vec<ProvisionalWrap>,
}

/// What `Debug` shows of a secret field (REVIEW3 S10): its length, never its value.
struct Redacted(usize);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<redacted, {} chars>", self.0)
    }
}

// The server share, the contact's address and the one-time code are secrets or personal data:
// `Debug` (logs, panics, error chains) shows their length only.
impl std::fmt::Debug for CreateProvisionalRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateProvisionalRequest")
            .field("record", &self.record)
            .field("escrow", &self.escrow)
            .field("server_share", &Redacted(self.server_share.len()))
            .field("lookup", &self.lookup)
            .field("email", &Redacted(self.email.len()))
            .finish()
    }
}

impl std::fmt::Debug for OpenProvisionalRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenProvisionalRequest")
            .field("lookup", &self.lookup)
            .field("code", &Redacted(self.code.len()))
            .finish()
    }
}

impl std::fmt::Debug for OpenedProvisional {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedProvisional")
            .field("provisional_id", &self.provisional_id)
            .field("server_share", &Redacted(self.server_share.len()))
            .field("escrow", &self.escrow)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_share_no_address_and_no_one_time_code() {
        let create = CreateProvisionalRequest {
            record: "rec".into(),
            escrow: "esc".into(),
            server_share: "SHARE-SECRET-BYTES".into(),
            lookup: "ab".into(),
            email: "ana@example.org".into(),
        };
        let open = OpenProvisionalRequest {
            lookup: "ab".into(),
            code: "12345678".into(),
        };
        let opened = OpenedProvisional {
            provisional_id: "cd".into(),
            server_share: "SHARE-SECRET-BYTES".into(),
            escrow: "esc".into(),
        };
        let all = format!("{create:?} {open:?} {opened:?}");
        for secret in ["SHARE-SECRET-BYTES", "ana@example.org", "12345678"] {
            assert!(!all.contains(secret), "{secret} in {all}");
        }
        assert!(
            all.contains("rec") && all.contains("<redacted, 8 chars>"),
            "{all}"
        );
    }
}
