//! JSON request and response bodies (PROTOCOL.md §8), defined once in `serment-api` for the
//! server and every client; re-exported here with the conversions from the store's rows.

pub(crate) use serment_api::{
    AccessEntry, AccessesResponse, AddWrapsRequest, AddWrapsResponse, BackupHealth, BlobResponse,
    ChallengeRequest, ChallengeResponse, CommitProof, CommitRequest, DeviceRecordResponse,
    DirectoryResponse, DocumentsResponse, HealthResponse, RegisterDeviceRequest,
    RegisterDeviceResponse, TokenRequest, TokenResponse, VersionResponse, VersionSummary,
};

use crate::store::{AccessRow, VersionRow};

impl From<VersionRow> for VersionSummary {
    fn from(r: VersionRow) -> Self {
        VersionSummary {
            doc_id: r.doc_id.to_string(),
            doc_version: r.doc_version,
            author_device: r.author_device.to_string(),
            author_identity: r.author_identity.to_string(),
            blob_id: r.blob_id.as_str().to_owned(),
            size: r.size,
            created_at: r.created_at,
            log_indices: None,
            log: None,
        }
    }
}

impl From<AccessRow> for AccessEntry {
    fn from(r: AccessRow) -> Self {
        AccessEntry {
            device_id: r.device_id.to_string(),
            handle: r.handle,
            what: r.what,
            at: r.at,
            doc_version: r.doc_version,
        }
    }
}
