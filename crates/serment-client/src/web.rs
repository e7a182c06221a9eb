//! `serment web verify` (issue 13 §3, PROTOCOL.md §11.3 kind 8): fetches the patient's page as
//! a browser would (`/`, then every `/assets/…` path each fetched text asset refers to), computes
//! its bundle hash ([`serment_core::log::bundle::bundle_hash`]) and looks for a bundle entry of
//! the log carrying that hash, proven against a verified checkpoint.
//!
//! What it proves: the bytes this client received are a bundle the server logged, so a page
//! served to one user only is either logged (visible to witnesses and every auditor) or caught.
//! What it does not: that the logged bundle is benign, nor what another browser received
//! (docs/THREAT_MODEL.md, "The page's bundle in the log").

use std::collections::BTreeMap;

use serment_core::log::bundle::{MAX_ASSETS, asset_references, bundle_hash, sri};
use serment_core::log::entry::{Payload, Subject};
use serment_core::log::history::check_chain;
use serment_core::log::note::Checkpoint;
use serment_core::log::pin::LogTrust;

use crate::api::{Api, JSON_CALL_TIMEOUT};
use crate::error::{ClientError, Result};
use crate::http::{Body, Method, Request, read_limited};
use crate::keystore::Keystore;
use crate::log::{accept_note, sync, trust, verify_proven};

/// The largest asset fetched, in bytes (the WebAssembly module is a few MiB).
pub const MAX_ASSET_BYTES: u64 = 64 * 1024 * 1024;

/// The page as this client received it.
#[derive(Debug, Clone)]
pub struct ServedBundle {
    /// Every asset by URL path, `/` included, exactly as served.
    pub assets: BTreeMap<String, Vec<u8>>,
    /// Its bundle hash.
    pub bundle_hash: [u8; 32],
}

/// What [`verify_bundle`] found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BundleVerdict {
    /// The served bundle's hash, hex.
    pub bundle_hash: String,
    /// Each asset fetched: (URL path, W3C SRI of its bytes), sorted by path.
    pub assets: Vec<(String, String)>,
    /// The size of the checkpoint the bundle entries are proven against.
    pub log_size: u64,
    /// The index of the newest bundle entry carrying the served hash, if any.
    pub log_index: Option<u64>,
    /// The server version that entry names.
    pub server_version: Option<String>,
    /// Every bundle entry of the log: (index, hash hex, server version), oldest first.
    pub logged: Vec<(u64, String, String)>,
}

impl BundleVerdict {
    /// True when the served bundle is logged.
    pub fn logged(&self) -> bool {
        self.log_index.is_some()
    }
}

impl Api {
    /// `GET path` (no authentication): the raw body of a 2xx answer, at most `limit` bytes.
    ///
    /// # Errors
    /// Server, transport and size errors.
    pub fn get_raw(&self, path: &str, limit: u64) -> Result<Vec<u8>> {
        let url = self.url(path);
        let mut resp = Self::check(self.send(Request {
            method: Method::Get,
            url: &url,
            headers: Vec::new(),
            body: Body::Empty,
            timeout: Some(JSON_CALL_TIMEOUT),
        })?)?;
        read_limited(&mut resp.body, limit)
    }

    /// `GET /v1/log/bundles?size=N`: every web bundle entry with proofs; `None` when none is
    /// logged (404).
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn log_bundles(
        &self,
        size: Option<u64>,
    ) -> Result<Option<serment_api::log::HistoryResponse>> {
        let mut path = "/v1/log/bundles".to_owned();
        if let Some(n) = size {
            path.push_str(&format!("?size={n}"));
        }
        match self.get_json(&path, false) {
            Ok(h) => Ok(Some(h)),
            Err(ClientError::Server { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Fetches the page as a browser loads it: `/`, then every asset a fetched text asset refers to
/// ([`asset_references`]), breadth first, each once; the WebAssembly module is not scanned.
///
/// # Errors
/// Server and transport errors; [`ClientError::BadResponse`] for more than
/// [`MAX_ASSETS`] assets or an asset over [`MAX_ASSET_BYTES`].
pub fn fetch_bundle(api: &Api) -> Result<ServedBundle> {
    let mut assets = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from(["/".to_owned()]);
    while let Some(path) = queue.pop_front() {
        if assets.contains_key(&path) {
            continue;
        }
        if assets.len() >= MAX_ASSETS {
            return Err(ClientError::BadResponse(format!(
                "the page refers to more than {MAX_ASSETS} assets"
            )));
        }
        let bytes = api.get_raw(&path, MAX_ASSET_BYTES)?;
        if !path.ends_with(".wasm") {
            for r in asset_references(&String::from_utf8_lossy(&bytes)) {
                if !assets.contains_key(&r) && !queue.contains(&r) {
                    queue.push_back(r);
                }
            }
        }
        assets.insert(path, bytes);
    }
    let bundle_hash =
        bundle_hash(&assets).map_err(|e| ClientError::BadResponse(format!("web bundle: {e}")))?;
    Ok(ServedBundle {
        assets,
        bundle_hash,
    })
}

/// Fetches the page ([`fetch_bundle`]) and looks for its hash among the log's bundle entries,
/// every one proven against the checkpoint this keystore accepts (the usual sync: pinned log key,
/// witness quorum, consistency with the pinned checkpoint, which advances).
///
/// # Errors
/// [`ClientError::NotRegistered`] if the keystore pins no log for this server; log errors
/// ([`ClientError::Log`]: a bad proof, a broken chain, an entry the log key did not sign);
/// server and transport errors. A served bundle that is not logged is not an error: see
/// [`BundleVerdict::logged`].
pub fn verify_bundle(api: &Api, ks: &mut Keystore) -> Result<BundleVerdict> {
    let t = trust(api, ks)?;
    let served = fetch_bundle(api)?;
    let cp = sync(api, ks, 0)?;
    check_bundles(api, &t, served, cp, &mut |note| accept_note(api, ks, note))
}

/// [`verify_bundle`] without a keystore: every checkpoint must carry the signature of
/// `trust`'s log key (given out of band, or the server's own when the caller trusts it).
///
/// # Errors
/// As [`verify_bundle`].
pub fn verify_bundle_unpinned(api: &Api, t: &LogTrust) -> Result<BundleVerdict> {
    let served = fetch_bundle(api)?;
    let accept = |note: &str| -> Result<Checkpoint> {
        t.verify_note(note)
            .map(|s| s.checkpoint)
            .map_err(ClientError::Log)
    };
    let cp = accept(&api.log_checkpoint(None)?)?;
    check_bundles(api, t, served, cp, &mut |n| accept(n))
}

fn check_bundles(
    api: &Api,
    t: &LogTrust,
    served: ServedBundle,
    cp: Checkpoint,
    accept: &mut dyn FnMut(&str) -> Result<Checkpoint>,
) -> Result<BundleVerdict> {
    let mut v = BundleVerdict {
        bundle_hash: hex::encode(served.bundle_hash),
        assets: served
            .assets
            .iter()
            .map(|(p, b)| (p.clone(), sri(b)))
            .collect(),
        log_size: cp.size,
        log_index: None,
        server_version: None,
        logged: Vec::new(),
    };
    let Some(h) = api.log_bundles(Some(cp.size))? else {
        return Ok(v);
    };
    let cp = accept(&h.checkpoint)?;
    if cp.size != h.size {
        return Err(ClientError::Log(serment_core::Error::History {
            reason: "the bundle entries are proven against another tree size than their checkpoint",
        }));
    }
    v.log_size = cp.size;
    let chain = h
        .entries
        .iter()
        .map(|pe| verify_proven(&cp, pe))
        .collect::<Result<Vec<_>>>()?;
    check_chain(&chain, &Subject::WebBundle).map_err(ClientError::Log)?;
    for e in &chain {
        let Payload::Bundle(b) = &e.entry.payload else {
            return Err(ClientError::Log(serment_core::Error::History {
                reason: "a bundle history holds another kind of entry",
            }));
        };
        b.verify(&t.log_key.public_key).map_err(ClientError::Log)?;
        if b.bundle_hash == served.bundle_hash {
            v.log_index = Some(e.index);
            v.server_version = Some(b.server_version.clone());
        }
        v.logged.push((
            e.index,
            hex::encode(b.bundle_hash),
            b.server_version.clone(),
        ));
    }
    Ok(v)
}
