//! The checks of the test vectors (`tests/vectors/*.json`, PROTOCOL.md §10 and §8.2), written
//! once and run both natively and in WebAssembly: each positive vector must verify, open or
//! re-derive to the bytes it shows, and each negative case must give the error it names. A
//! verdict is `ok`, an error name (the `serment_core::Error` variant in snake case, as in
//! `negative.json`), or a named mismatch.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use serment_core::document::{self, OpenInput};
use serment_core::httpsig::{self, Request};
use serment_core::identity::{DeviceRecord, DeviceSecret};
use serment_core::keystore::{self, KdfParams};
use serment_core::{DocId, Error, Suite};

/// One check of one vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Verdict {
    /// The vector file, e.g. `negative.json`.
    pub file: String,
    /// The case within the file (`open`, `verify`, a negative case's `name`...).
    pub case: String,
    /// What the file says the check must give.
    pub expect: String,
    /// What this build of the code gave.
    pub got: String,
}

/// A vector file that cannot be checked at all (missing or malformed field): not a verdict, a
/// broken test input.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct VectorError {
    /// The file.
    pub file: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The vector files [`run`] knows, in the order it checks them.
pub const FILES: [&str; 8] = [
    "device-record.json",
    "document-observation.json",
    "document-observation-suite2.json",
    "keystore.json",
    "http-signature.json",
    "negative.json",
    "negative-suite2.json",
    "web-bundle.json",
];

/// Checks every file of [`FILES`] found in `files` (file name → file text).
///
/// # Errors
/// [`VectorError`] when a known file is missing, is not JSON, or lacks a field.
pub fn run(files: &BTreeMap<String, String>) -> Result<Vec<Verdict>, VectorError> {
    let mut out = Vec::new();
    for name in FILES {
        let v = load(files, name)?;
        let mut cx = Cx {
            file: name,
            files,
            out: &mut out,
        };
        match name {
            "device-record.json" => cx.device_record(&v)?,
            "document-observation.json" | "document-observation-suite2.json" => cx.document(&v)?,
            "keystore.json" => cx.keystore(&v)?,
            "http-signature.json" => cx.http_signature(&v)?,
            "web-bundle.json" => cx.web_bundle(&v)?,
            _ => cx.negative(&v)?,
        }
    }
    Ok(out)
}

fn load(files: &BTreeMap<String, String>, name: &str) -> Result<Value, VectorError> {
    let text = files.get(name).ok_or_else(|| VectorError {
        file: name.to_owned(),
        reason: "missing".into(),
    })?;
    serde_json::from_str(text).map_err(|e| VectorError {
        file: name.to_owned(),
        reason: format!("not JSON: {e}"),
    })
}

/// The snake-case name of an error, as the negative vectors spell it.
pub fn error_name(e: &Error) -> &'static str {
    match e {
        Error::UnsupportedVersion { .. } => "unsupported_version",
        Error::UnsupportedSuite { .. } => "unsupported_suite",
        Error::Decrypt => "decrypt",
        Error::TruncatedStream => "truncated_stream",
        Error::ExtendedStream => "extended_stream",
        Error::BadSignature { .. } => "bad_signature",
        Error::BadMagic { .. } => "bad_magic",
        Error::ContextMismatch(_) => "context_mismatch",
        Error::WrongSigner { .. } => "wrong_signer",
        Error::TrailingBytes { .. } => "trailing_bytes",
        Error::InvalidField { .. } => "invalid_field",
        Error::KeystoreDecrypt => "keystore_decrypt",
        _ => "other",
    }
}

struct Cx<'a> {
    file: &'static str,
    files: &'a BTreeMap<String, String>,
    out: &'a mut Vec<Verdict>,
}

impl Cx<'_> {
    fn err(&self, reason: impl Into<String>) -> VectorError {
        VectorError {
            file: self.file.to_owned(),
            reason: reason.into(),
        }
    }

    fn push(&mut self, case: &str, expect: &str, got: impl Into<String>) {
        self.out.push(Verdict {
            file: self.file.to_owned(),
            case: case.to_owned(),
            expect: expect.to_owned(),
            got: got.into(),
        });
    }

    fn str<'v>(&self, v: &'v Value, k: &str) -> Result<&'v str, VectorError> {
        v.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| self.err(format!("{k}: missing or not a string")))
    }

    fn hex(&self, v: &Value, k: &str) -> Result<Vec<u8>, VectorError> {
        hex::decode(self.str(v, k)?).map_err(|e| self.err(format!("{k}: {e}")))
    }

    fn hex32(&self, v: &Value, k: &str) -> Result<[u8; 32], VectorError> {
        self.hex(v, k)?
            .try_into()
            .map_err(|_| self.err(format!("{k}: expected 32 bytes")))
    }

    fn expect<'v>(&self, v: &'v Value) -> &'v str {
        v.get("expect").and_then(Value::as_str).unwrap_or("ok")
    }

    /// PROTOCOL.md §11.3.1: the bundle hash of the assets, the kind-8 entry's log signature,
    /// and each negative case's verdict (`other_hash` or `bad_signature`).
    fn web_bundle(&mut self, v: &Value) -> Result<(), VectorError> {
        use serment_core::log::bundle::{WebBundle, bundle_hash};
        use serment_core::log::entry::{LogEntry, Payload};
        let mut assets = BTreeMap::new();
        for a in v
            .get("assets")
            .and_then(Value::as_array)
            .ok_or_else(|| self.err("assets"))?
        {
            assets.insert(
                self.str(a, "path")?.to_owned(),
                self.str(a, "text")?.as_bytes().to_vec(),
            );
        }
        let want = self.hex32(v, "bundle_hash")?;
        let hash = bundle_hash(&assets).map_err(|e| self.err(e.to_string()))?;
        self.push(
            "bundle_hash",
            "ok",
            if hash == want { "ok" } else { "other_hash" },
        );
        let log_key = self.hex32(v, "log_public_key")?;
        let got = match LogEntry::decode(&self.hex(v, "entry")?) {
            Ok(LogEntry {
                payload: Payload::Bundle(b),
                ..
            }) if b.bundle_hash == want => match b.verify(&log_key) {
                Ok(()) => "ok".to_owned(),
                Err(e) => error_name(&e).to_owned(),
            },
            Ok(_) => "not_this_bundle".to_owned(),
            Err(e) => error_name(&e).to_owned(),
        };
        self.push("entry", "ok", got);
        let payload = self.hex(v, "payload")?;
        for n in v
            .get("negative")
            .and_then(Value::as_array)
            .ok_or_else(|| self.err("negative"))?
        {
            let case = self.str(n, "case")?;
            let mut a = assets.clone();
            let mut p = payload.clone();
            let mut key = log_key;
            match self.str(n, "mutate")? {
                "flip_asset" => {
                    if let Some(b) = a.get_mut(self.str(n, "path")?).and_then(|b| b.first_mut()) {
                        *b ^= 1;
                    }
                }
                "rename_asset" => {
                    if let Some(b) = a.remove(self.str(n, "path")?) {
                        a.insert(self.str(n, "to")?.to_owned(), b);
                    }
                }
                "add_asset" => {
                    a.insert(self.str(n, "path")?.to_owned(), Vec::new());
                }
                "flip_signature" => {
                    if let Some(b) = p.last_mut() {
                        *b ^= 1;
                    }
                }
                "other_log_key" => {
                    // The log key of seed 04×32, as the vector says.
                    key = serment_core::log::note::NoteSigner::new(
                        "serment.log/test-vector",
                        serment_core::log::note::KEY_TYPE_ED25519,
                        &[4; 32],
                    )
                    .map_err(|e| self.err(e.to_string()))?
                    .verifier()
                    .public_key;
                }
                m => return Err(self.err(format!("unknown mutation {m}"))),
            }
            let got = match bundle_hash(&a) {
                Ok(h) if h != want => "other_hash".to_owned(),
                Ok(_) => match WebBundle::decode(&p).and_then(|b| b.verify(&key)) {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => error_name(&e).to_owned(),
                },
                Err(e) => error_name(&e).to_owned(),
            };
            let expect = self.expect(n).to_owned();
            self.push(case, &expect, got);
        }
        Ok(())
    }

    fn device_record(&mut self, v: &Value) -> Result<(), VectorError> {
        let record = self.hex(v, "record")?;
        let got = match DeviceRecord::decode_verified(&record) {
            Ok(r)
                if r.device_id().to_string() == self.str(v, "device_id")?
                    && r.identity_id().to_string() == self.str(v, "identity_id")? =>
            {
                "ok"
            }
            Ok(_) => "ids_differ",
            Err(e) => error_name(&e),
        };
        let expect = self.expect(v);
        self.push("verify", expect, got);
        Ok(())
    }

    fn document(&mut self, v: &Value) -> Result<(), VectorError> {
        let reader = DeviceSecret::from_test_seed(&self.hex32(v, "recipient_device_seed")?);
        let author = DeviceSecret::from_test_seed(&self.hex32(v, "author_device_seed")?);
        let doc_id =
            DocId::from_hex(self.str(v, "doc_id")?).map_err(|e| self.err(e.to_string()))?;
        let version = v
            .get("doc_version")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| self.err("doc_version"))?;
        let suite = v.get("suite").and_then(Value::as_u64).unwrap_or(1);
        let sealed = self.hex(v, "sealed")?;
        let mut out = Vec::new();
        let got = match document::open(
            OpenInput {
                device: &reader,
                wrap: &self.hex(v, "recipient_wrap")?,
                author_signing_key: &author.signing_public_key(),
                expected: Some((doc_id, version)),
            },
            &sealed[..],
            &mut out,
        ) {
            Ok(_) if out != self.str(v, "content")?.as_bytes() => "content_differs".to_owned(),
            Ok(o) if u64::from(o.header.suite.id()) != suite => "suite_differs".to_owned(),
            Ok(o) if o.header.hash().to_vec() != self.hex(v, "header_hash")? => {
                "header_hash_differs".to_owned()
            }
            Ok(_) => "ok".to_owned(),
            Err(e) => error_name(&e).to_owned(),
        };
        let expect = self.expect(v);
        self.push("open", expect, got);
        if let Some(h) = v.get("chunk_hash_0").and_then(Value::as_str) {
            // Suite 2's commitment of chunk 0 (PROTOCOL.md §6.1): the ciphertext chunk sits
            // between the 76-byte header and the trailer (2 + 2 × 32 + 64 bytes).
            let end = sealed.len().saturating_sub(2 + 2 * 32 + 64);
            let chunk = sealed
                .get(76..end)
                .ok_or_else(|| self.err("sealed too short"))?;
            let ours = hex::encode(Suite::Blake3.chunk_hash(0, chunk));
            self.push(
                "chunk_hash_0",
                "ok",
                if ours == h {
                    "ok"
                } else {
                    "chunk_hash_differs"
                },
            );
        }
        Ok(())
    }

    fn keystore(&mut self, v: &Value) -> Result<(), VectorError> {
        let pass = self.str(v, "passphrase")?.as_bytes();
        let payload = self.str(v, "payload")?.as_bytes();
        let file = self.hex(v, "file")?;
        let got = match keystore::open(pass, &file) {
            Ok(p) if p.as_slice() == payload => "ok",
            Ok(_) => "payload_differs",
            Err(e) => error_name(&e),
        };
        let expect = self.expect(v);
        self.push("open", expect, got);
        // Re-sealing with the file's own KDF parameters, salt and nonce (PROTOCOL.md §9 header:
        // magic 4, version 2, suite 2, m 4, t 4, p 4, salt 16, nonce 12) gives the same bytes.
        let u32_at = |at: usize| {
            file.get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| self.err("file too short"))
        };
        let params = KdfParams {
            m_cost_kib: u32_at(8)?,
            t_cost: u32_at(12)?,
            p_cost: u32_at(16)?,
        };
        let salt: [u8; 16] = file
            .get(20..36)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| self.err("file too short"))?;
        let nonce: [u8; 12] = file
            .get(36..48)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| self.err("file too short"))?;
        let got = match keystore::seal_with(pass, payload, params, salt, nonce) {
            Ok(f) if f == file => "ok",
            Ok(_) => "bytes_differ",
            Err(e) => error_name(&e),
        };
        self.push("reseal", "ok", got);
        Ok(())
    }

    fn http_signature(&mut self, v: &Value) -> Result<(), VectorError> {
        let device = DeviceSecret::from_test_seed(&self.hex32(v, "device_seed")?);
        let pk = self.hex32(v, "device_signing_public_key")?;
        let cases = v
            .get("cases")
            .and_then(Value::as_array)
            .ok_or_else(|| self.err("cases"))?;
        for (i, c) in cases.iter().enumerate() {
            let opt = |k: &str| c.get(k).and_then(Value::as_str);
            let digest = opt("content_digest");
            let req = Request {
                method: self.str(c, "method")?,
                path: self.str(c, "path")?,
                query: opt("query"),
                authorization: self.str(c, "authorization")?,
                content_digest: digest,
            };
            let digest_ok = match (opt("body"), digest) {
                (Some(b), Some(d)) => httpsig::content_digest(b.as_bytes()) == d,
                (None, None) => true,
                _ => false,
            };
            self.push(
                &format!("{i}-content-digest"),
                "ok",
                if digest_ok { "ok" } else { "digest_differs" },
            );
            let got =
                match httpsig::parse(self.str(c, "signature_input")?, self.str(c, "signature")?) {
                    Ok(p) => match httpsig::verify(&pk, &req, &p) {
                        Ok(()) => "ok".to_owned(),
                        Err(e) => format!("verify: {e}"),
                    },
                    Err(e) => format!("parse: {e}"),
                };
            self.push(&format!("{i}-verify"), "ok", got);
            let created = c
                .get("created")
                .and_then(Value::as_u64)
                .ok_or_else(|| self.err("created"))?;
            // Ed25519 is deterministic: signing the same request again gives the same bytes.
            let got = match httpsig::sign(&device, &req, created, self.str(c, "nonce")?) {
                Ok(h)
                    if h.signature == self.str(c, "signature")?
                        && h.signature_input == self.str(c, "signature_input")? =>
                {
                    "ok".to_owned()
                }
                Ok(_) => "signature_differs".to_owned(),
                Err(e) => format!("sign: {e}"),
            };
            self.push(&format!("{i}-resign"), "ok", got);
        }
        Ok(())
    }

    fn negative(&mut self, v: &Value) -> Result<(), VectorError> {
        let base_name = self.str(v, "vector")?;
        let base = load(self.files, base_name)?;
        let sealed = self.hex(&base, "sealed")?;
        let wrap = self.hex(&base, "recipient_wrap")?;
        let reader = DeviceSecret::from_test_seed(&self.hex32(&base, "recipient_device_seed")?);
        let author = DeviceSecret::from_test_seed(&self.hex32(&base, "author_device_seed")?);
        let xor = v
            .get("xor_value")
            .and_then(Value::as_u64)
            .and_then(|x| u8::try_from(x).ok())
            .ok_or_else(|| self.err("xor_value"))?;
        let cases = v
            .get("cases")
            .and_then(Value::as_array)
            .ok_or_else(|| self.err("cases"))?;
        for c in cases {
            let name = self.str(c, "name")?;
            let mut blob = sealed.clone();
            let mut w = wrap.clone();
            let buf = if self.str(c, "target")? == "sealed" {
                &mut blob
            } else {
                &mut w
            };
            self.mutate(c, buf, xor)?;
            let got = match document::open(
                OpenInput {
                    device: &reader,
                    wrap: &w,
                    author_signing_key: &author.signing_public_key(),
                    expected: None,
                },
                &blob[..],
                &mut Vec::new(),
            ) {
                Ok(_) => "ok",
                Err(e) => error_name(&e),
            };
            let expect = self.str(c, "expect")?;
            self.push(name, expect, got);
        }
        Ok(())
    }

    /// Applies one negative case's mutation (tests/vectors/README.md).
    fn mutate(&self, c: &Value, buf: &mut Vec<u8>, xor: u8) -> Result<(), VectorError> {
        let name = self.str(c, "name")?;
        let bad = || self.err(format!("case {name}: offset out of range"));
        if let Some(at) = c.get("set_u16_at").and_then(Value::as_u64) {
            let val = c
                .get("value")
                .and_then(Value::as_u64)
                .and_then(|x| u16::try_from(x).ok())
                .ok_or_else(bad)?;
            let at = usize::try_from(at).map_err(|_| bad())?;
            buf.get_mut(at..at + 2)
                .ok_or_else(bad)?
                .copy_from_slice(&val.to_be_bytes());
        }
        if let Some(at) = c.get("xor_at").and_then(Value::as_i64) {
            let i = if at < 0 {
                buf.len()
                    .checked_sub(usize::try_from(at.unsigned_abs()).map_err(|_| bad())?)
            } else {
                usize::try_from(at).ok()
            };
            *i.and_then(|i| buf.get_mut(i)).ok_or_else(bad)? ^= xor;
        }
        if let Some(n) = c.get("truncate_to").and_then(Value::as_u64) {
            buf.truncate(usize::try_from(n).map_err(|_| bad())?);
        }
        if let Some(extra) = c.get("append_hex").and_then(Value::as_str) {
            buf.extend(hex::decode(extra).map_err(|e| self.err(format!("case {name}: {e}")))?);
        }
        Ok(())
    }
}
