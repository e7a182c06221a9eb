//! Shared fixtures: three parties behind a hostile server, sealed-blob surgery, error matchers.

use std::path::PathBuf;

use serde_json::Value;
use serment_client::ClientError;
use serment_client::contacts;
use serment_client::vault::{GetResult, PutResult, Session};
use serment_core::document::{Header, Metadata, Trailer};
use serment_core::stream::{TAG_LEN, chunk_plain_len};
use serment_core::{DocId, Error, KeyId};
use serment_hostile::harness::{Hostile, b64};

pub const LAB: &str = "labo-biomed";
pub const GP: &str = "dr-generaliste";
pub const PATIENT: &str = "patient-7f3a";

/// A laboratory, a GP and a patient registered through the hostile proxy. The lab pins the GP and
/// the patient; the GP and the patient pin the lab.
pub struct World {
    pub h: Hostile,
    pub lab: Session,
    pub gp: Session,
    pub patient: Session,
}

impl World {
    pub fn new() -> World {
        let h = Hostile::new();
        let mut lab = h.party(LAB);
        let mut gp = h.party(GP);
        let mut patient = h.party(PATIENT);
        for c in [GP, PATIENT] {
            contacts::add(&lab.api, &mut lab.ks, c).unwrap();
        }
        for p in [&mut gp, &mut patient] {
            contacts::add(&p.api, &mut p.ks, LAB).unwrap();
        }
        World {
            h,
            lab,
            gp,
            patient,
        }
    }

    /// The lab seals `content` for `to` and uploads it as version 1 of a new document.
    pub fn put(&mut self, content: &[u8], title: &str, to: &[&str]) -> PutResult {
        let to: Vec<String> = to.iter().map(|s| (*s).to_owned()).collect();
        self.lab.put(content, meta(content, title), &to).unwrap()
    }

    /// The stored blob of a document version, read from the data directory (file or inline).
    pub fn blob(&self, r: &PutResult) -> Vec<u8> {
        self.h.blob_bytes(&r.blob_id)
    }
}

/// Metadata as the CLI builds it.
pub fn meta(content: &[u8], title: &str) -> Metadata {
    Metadata {
        content_length: content.len() as u64,
        mime_type: Some("application/fhir+json".into()),
        resource_type: Some("DiagnosticReport".into()),
        title: Some(title.into()),
        file_name: Some(format!("{title}.json")),
        created: Some("2025-03-14T09:26:53+01:00".into()),
        author_display: Some("Laboratoire BioMed Centre".into()),
        patient_identifiers: Vec::new(),
    }
}

/// Content of `len` bytes, different for each `seed`.
pub fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

/// Reads a document into memory.
pub fn read(
    s: &mut Session,
    doc: &DocId,
    v: Option<u32>,
) -> Result<(Vec<u8>, GetResult), ClientError> {
    let mut out = Vec::new();
    let r = s.get(doc, v, &mut out)?;
    Ok((out, r))
}

/// Reads a document into a file under the harness's output directory, the way `serment get -o`
/// does. On failure, checks that no output file (and no temporary file) was left behind.
pub fn read_to_file(
    h: &Hostile,
    s: &mut Session,
    doc: &DocId,
    v: Option<u32>,
) -> Result<Vec<u8>, ClientError> {
    let path: PathBuf = h.out_dir().join(format!("{doc}.json"));
    let _ = std::fs::remove_file(&path);
    match s.get_to_file(doc, v, &path, false) {
        Ok(_) => Ok(std::fs::read(&path).unwrap()),
        Err(e) => {
            let left: Vec<_> = std::fs::read_dir(h.out_dir()).unwrap().collect();
            assert!(left.is_empty(), "a failed get left {left:?} behind");
            Err(e)
        }
    }
}

/// The core error inside a [`ClientError::Integrity`]; panics on any other error.
pub fn integrity(e: &ClientError) -> &Error {
    match e {
        ClientError::Integrity(inner) => inner,
        other => panic!("expected an integrity error, got {other:?}"),
    }
}

/// A sealed document cut into its parts (PROTOCOL.md §6.1).
#[derive(Clone, Debug)]
pub struct Parts {
    pub header: Vec<u8>,
    pub chunks: Vec<Vec<u8>>,
    pub trailer: Vec<u8>,
}

impl Parts {
    pub fn split(blob: &[u8]) -> Parts {
        let h = Header::decode(&blob[..Header::LEN]).unwrap();
        let mut pos = Header::LEN;
        let mut chunks = Vec::new();
        for i in 0..h.chunks() {
            let n = chunk_plain_len(h.padded_len, i) + TAG_LEN;
            chunks.push(blob[pos..pos + n].to_vec());
            pos += n;
        }
        let trailer = blob[pos..].to_vec();
        Trailer::decode(&trailer).unwrap();
        Parts {
            header: blob[..Header::LEN].to_vec(),
            chunks,
            trailer,
        }
    }

    pub fn join(&self) -> Vec<u8> {
        let mut v = self.header.clone();
        for c in &self.chunks {
            v.extend_from_slice(c);
        }
        v.extend_from_slice(&self.trailer);
        v
    }
}

/// The route of a version's metadata and wrap, and of its blob.
pub fn version_route(doc: &DocId, v: u32) -> String {
    format!("GET /v1/documents/{doc}/versions/{v}")
}

pub fn blob_route(doc: &DocId, v: u32) -> String {
    format!("GET /v1/documents/{doc}/versions/{v}/blob")
}

/// Every blob download of this document version is answered with `blob`.
pub fn serve_blob(h: &Hostile, doc: &DocId, v: u32, blob: Vec<u8>) {
    h.on_response(&blob_route(doc, v), move |ex| ex.set_body(blob.clone()));
}

/// The device's own wrap in a version response, decoded.
pub fn wrap_of(ex_json: &Value) -> Vec<u8> {
    serment_client::api::b64d(ex_json["wrap"].as_str().unwrap(), "wrap").unwrap()
}

/// Every version response of this document version carries `wrap` as the caller's wrap.
pub fn serve_wrap(h: &Hostile, doc: &DocId, v: u32, wrap: Vec<u8>) {
    h.on_response(&version_route(doc, v), move |ex| {
        let mut j = ex.json();
        j["wrap"] = Value::String(b64(&wrap));
        ex.set_json(&j);
    });
}

/// The wrap a device holds for a version, as stored by the server.
pub fn stored_wrap(h: &Hostile, doc: &DocId, v: u32, device: &KeyId) -> Vec<u8> {
    let rows = h.sql(&format!(
        "SELECT wrap FROM wraps WHERE doc_id = '{doc}' AND doc_version = {v} AND recipient_device = '{device}'"
    ));
    rows[0][0].1.clone().unwrap()
}

/// Every 16-byte-aligned block of `b`.
pub fn blocks(b: &[u8]) -> std::collections::HashSet<Vec<u8>> {
    b.chunks_exact(16).map(<[u8]>::to_vec).collect()
}
