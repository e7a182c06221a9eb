//! Requests bound to the device key: RFC 9421 HTTP Message Signatures (PROTOCOL.md §8.2).
//!
//! Every request that carries a bearer token also carries
//!
//! ```text
//! Content-Digest: sha-256=:<base64 of SHA-256(body)>:            (RFC 9530; requests with a body)
//! Signature-Input: sig1=("@method" "@path" "@query" "authorization" "content-digest");created=<unix s>;nonce="<base64url>";keyid="<device id hex>";alg="ed25519";tag="serment-v1"
//! Signature: sig1=:<base64 of the Ed25519 signature>:
//! ```
//!
//! The signature is Ed25519 (RFC 8032) over the RFC 9421 §2.5 signature base, exactly as
//! RFC 9421 §3.3.6 defines `alg="ed25519"`, so any RFC 9421 verifier can check it. It is not
//! wrapped in [`crate::sign::sig_input`]: domain separation comes from the base itself, which
//! always starts with `"@method": ` and ends with a `@signature-params` line carrying
//! `tag="serment-v1"`, while every other signature of a device key is over bytes starting
//! `serment/v1/sig/` (PROTOCOL.md §3); neither can be taken for the other.
//!
//! This module only builds and checks the format. Freshness of `created` and the uniqueness of
//! `nonce` are the verifier's (the server's) job, given [`Parsed::created`] and [`Parsed::nonce`].

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer as _, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::identity::DeviceSecret;

/// The signature label used in `Signature-Input` and `Signature`.
pub const LABEL: &str = "sig1";
/// The `tag` parameter: names this protocol and version (RFC 9421 §2.3).
pub const TAG: &str = "serment-v1";
/// The `alg` parameter (RFC 9421 §3.3.6).
pub const ALG: &str = "ed25519";
/// The covered components of a request without a body, in this order.
pub const COMPONENTS: [&str; 4] = ["@method", "@path", "@query", "authorization"];
/// The covered components of a request with a body, in this order.
pub const COMPONENTS_WITH_BODY: [&str; 5] = [
    "@method",
    "@path",
    "@query",
    "authorization",
    "content-digest",
];
/// Nonce length bounds, in base64url characters (the reference client sends 22: 16 random bytes).
pub const NONCE_CHARS: std::ops::RangeInclusive<usize> = 16..=128;

/// Why a request signature was refused. The text is safe to return to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request signature: {0}")]
pub struct HttpSigError(pub &'static str);

/// The parts of a request a signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method, upper case (`GET`, `POST`).
    pub method: &'a str,
    /// The path, as sent on the request line (`/v1/documents`).
    pub path: &'a str,
    /// The query without its `?` (`None` or empty when there is none).
    pub query: Option<&'a str>,
    /// The `Authorization` header value (`Bearer <token>`).
    pub authorization: &'a str,
    /// The `Content-Digest` header value, for a request with a body.
    pub content_digest: Option<&'a str>,
}

/// The `Signature-Input` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
    /// A fresh random value, base64url ([`NONCE_CHARS`] long).
    pub nonce: String,
    /// The signing device's id, 64 lowercase hex (PROTOCOL.md §4).
    pub keyid: String,
}

/// The three headers a signed request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    /// `Signature-Input` value.
    pub signature_input: String,
    /// `Signature` value.
    pub signature: String,
}

/// `Content-Digest` of `body` (RFC 9530 §2): `sha-256=:<standard base64>:`.
pub fn content_digest(body: &[u8]) -> String {
    content_digest_of(&Sha256::digest(body).into())
}

/// `Content-Digest` for a body whose SHA-256 is `sha256`.
pub fn content_digest_of(sha256: &[u8; 32]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(sha256))
}

/// Parses a `Content-Digest` value holding exactly one `sha-256` member (other algorithms are
/// refused, RFC 9530 lets a receiver choose).
///
/// # Errors
/// [`HttpSigError`] for any other shape.
pub fn parse_content_digest(value: &str) -> Result<[u8; 32], HttpSigError> {
    const BAD: HttpSigError = HttpSigError("Content-Digest must be one sha-256=:<base64>: member");
    let b64 = value
        .trim()
        .strip_prefix("sha-256=:")
        .and_then(|v| v.strip_suffix(':'))
        .ok_or(BAD)?;
    let bytes = STANDARD.decode(b64).map_err(|_| BAD)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| BAD)
}

/// The `@signature-params` value: the inner list of `components` and the parameters, in the
/// order this protocol fixes (`created`, `nonce`, `keyid`, `alg`, `tag`).
fn signature_params(components: &[&str], p: &Params) -> String {
    let list: Vec<String> = components.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        "({});created={};nonce=\"{}\";keyid=\"{}\";alg=\"{ALG}\";tag=\"{TAG}\"",
        list.join(" "),
        p.created,
        p.nonce,
        p.keyid
    )
}

/// The RFC 9421 §2.5 signature base of `req` under the `@signature-params` value `params`.
fn base(req: &Request<'_>, components: &[&str], params: &str) -> Result<String, HttpSigError> {
    let mut out = String::new();
    for c in components {
        let value = match *c {
            "@method" => req.method.to_owned(),
            "@path" => req.path.to_owned(),
            // RFC 9421 §2.2.7: an absent or empty query is "?".
            "@query" => format!("?{}", req.query.unwrap_or("")),
            "authorization" => req.authorization.trim().to_owned(),
            "content-digest" => req
                .content_digest
                .ok_or(HttpSigError("content-digest is covered but absent"))?
                .trim()
                .to_owned(),
            _ => return Err(HttpSigError("unknown covered component")),
        };
        if value.bytes().any(|b| b == b'\n' || b == b'\r') {
            return Err(HttpSigError("a covered value holds a line break"));
        }
        out.push_str(&format!("\"{c}\": {value}\n"));
    }
    out.push_str(&format!("\"@signature-params\": {params}"));
    Ok(out)
}

/// The signature base `req` has with `params` (what [`sign`] signs), for the vectors.
///
/// # Errors
/// [`HttpSigError`] when a covered value is absent or holds a line break.
pub fn signature_base(req: &Request<'_>, p: &Params) -> Result<String, HttpSigError> {
    let components = components_for(req);
    base(req, components, &signature_params(components, p))
}

fn components_for(req: &Request<'_>) -> &'static [&'static str] {
    if req.content_digest.is_some() {
        &COMPONENTS_WITH_BODY
    } else {
        &COMPONENTS
    }
}

/// Signs `req` with the device key: the `Signature-Input` and `Signature` values. Covers
/// `content-digest` exactly when `req.content_digest` is set.
///
/// # Errors
/// [`HttpSigError`] when a covered value holds a line break.
pub fn sign(
    device: &DeviceSecret,
    req: &Request<'_>,
    created: u64,
    nonce: &str,
) -> Result<Headers, HttpSigError> {
    Signer::new(device).sign(req, created, nonce)
}

/// A device's request-signing key, detached from the rest of its secrets so that an HTTP client
/// can keep it for a session. `Debug` shows only the key id; the key is zeroized on drop.
#[derive(Clone)]
pub struct Signer {
    key: ed25519_dalek::SigningKey,
    keyid: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("keyid", &self.keyid)
            .finish()
    }
}

impl Signer {
    /// The signer of `device`.
    pub fn new(device: &DeviceSecret) -> Signer {
        Signer {
            key: device.signing_key().clone(),
            keyid: device.id().to_string(),
        }
    }

    /// Signs `req` (see [`sign`]).
    ///
    /// # Errors
    /// [`HttpSigError`] when a covered value holds a line break.
    pub fn sign(
        &self,
        req: &Request<'_>,
        created: u64,
        nonce: &str,
    ) -> Result<Headers, HttpSigError> {
        let p = Params {
            created,
            nonce: nonce.to_owned(),
            keyid: self.keyid.clone(),
        };
        let components = components_for(req);
        let params = signature_params(components, &p);
        let b = base(req, components, &params)?;
        let sig = self.key.sign(b.as_bytes()).to_bytes();
        Ok(Headers {
            signature_input: format!("{LABEL}={params}"),
            signature: format!("{LABEL}=:{}:", STANDARD.encode(sig)),
        })
    }
}

/// A fresh nonce: 16 random bytes, base64url (22 characters).
///
/// # Errors
/// [`crate::Error`] if the system random generator fails.
pub fn new_nonce() -> crate::Result<String> {
    let mut n = [0u8; 16];
    crate::rng::fill(&mut n)?;
    Ok(URL_SAFE_NO_PAD.encode(n))
}

/// A `Signature-Input` parsed and a `Signature` decoded, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Whether `content-digest` is covered.
    pub covers_digest: bool,
    /// The parameters.
    pub params: Params,
    /// The `@signature-params` value as received.
    raw_params: String,
    /// The signature.
    signature: [u8; 64],
}

impl Parsed {
    /// `created`, seconds since the Unix epoch.
    pub fn created(&self) -> u64 {
        self.params.created
    }
    /// The nonce.
    pub fn nonce(&self) -> &str {
        &self.params.nonce
    }
    /// The device id the signer names (64 hex).
    pub fn keyid(&self) -> &str {
        &self.params.keyid
    }
}

/// Parses the `Signature-Input` and `Signature` values. Accepted: exactly one member, labelled
/// [`LABEL`], covering exactly [`COMPONENTS`] or [`COMPONENTS_WITH_BODY`] in that order, with
/// the parameters `created`, `nonce`, `keyid`, `alg="ed25519"` and `tag="serment-v1"` in that
/// order and nothing else (the form [`sign`] writes).
///
/// # Errors
/// [`HttpSigError`] naming what is wrong.
pub fn parse(signature_input: &str, signature: &str) -> Result<Parsed, HttpSigError> {
    let value = signature_input
        .trim()
        .strip_prefix("sig1=")
        .ok_or(HttpSigError("Signature-Input must hold one member, sig1"))?;
    let (list, rest) = value
        .strip_prefix('(')
        .and_then(|v| v.split_once(')'))
        .ok_or(HttpSigError("Signature-Input: expected an inner list"))?;
    let covers_digest = if list == inner(&COMPONENTS_WITH_BODY) {
        true
    } else if list == inner(&COMPONENTS) {
        false
    } else {
        return Err(HttpSigError(
            "covered components must be \"@method\" \"@path\" \"@query\" \"authorization\" [\"content-digest\"]",
        ));
    };
    let mut fields = rest.split(';');
    if fields.next() != Some("") {
        return Err(HttpSigError("Signature-Input: malformed parameters"));
    }
    let mut take = |name: &str| -> Result<&str, HttpSigError> {
        fields
            .next()
            .and_then(|f| f.strip_prefix(name))
            .and_then(|f| f.strip_prefix('='))
            .ok_or(HttpSigError(
                "parameters must be created, nonce, keyid, alg, tag, in that order",
            ))
    };
    let created = take("created")?;
    let nonce = sf_string(take("nonce")?)?;
    let keyid = sf_string(take("keyid")?)?;
    let alg = sf_string(take("alg")?)?;
    let tag = sf_string(take("tag")?)?;
    if fields.next().is_some() {
        return Err(HttpSigError("Signature-Input: unexpected parameter"));
    }
    let created_ok = !created.is_empty()
        && created.len() <= 15
        && created.bytes().all(|b| b.is_ascii_digit())
        && !(created.len() > 1 && created.starts_with('0'));
    let created: u64 = created_ok
        .then(|| created.parse().ok())
        .flatten()
        .ok_or(HttpSigError("created must be a decimal integer"))?;
    if !NONCE_CHARS.contains(&nonce.len())
        || !nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(HttpSigError("nonce must be 16 to 128 base64url characters"));
    }
    if keyid.len() != 64
        || !keyid
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(HttpSigError(
            "keyid must be the device id, 64 lowercase hex",
        ));
    }
    if alg != ALG {
        return Err(HttpSigError("alg must be \"ed25519\""));
    }
    if tag != TAG {
        return Err(HttpSigError("tag must be \"serment-v1\""));
    }
    let sig_b64 = signature
        .trim()
        .strip_prefix("sig1=:")
        .and_then(|s| s.strip_suffix(':'))
        .ok_or(HttpSigError(
            "Signature must hold one member, sig1=:<base64>:",
        ))?;
    let sig = STANDARD
        .decode(sig_b64)
        .ok()
        .and_then(|s| <[u8; 64]>::try_from(s.as_slice()).ok())
        .ok_or(HttpSigError("Signature must be 64 bytes of base64"))?;
    Ok(Parsed {
        covers_digest,
        params: Params {
            created,
            nonce: nonce.to_owned(),
            keyid: keyid.to_owned(),
        },
        raw_params: value.to_owned(),
        signature: sig,
    })
}

fn inner(components: &[&str]) -> String {
    components
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An sf-string (RFC 8941 §3.3.3) without escapes: `"..."` of printable ASCII other than `"`
/// and `\`.
fn sf_string(v: &str) -> Result<&str, HttpSigError> {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|s| {
            s.bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        })
        .ok_or(HttpSigError("Signature-Input: malformed string parameter"))
}

/// Verifies a parsed signature over `req` with the device's Ed25519 public key
/// (`verify_strict`, RFC 8032 §5.1.7). The caller checks [`Parsed::keyid`] names that device,
/// that `content-digest` is covered when the request has a body, `created` and the nonce.
///
/// # Errors
/// [`HttpSigError`] when a covered value is absent or the signature does not verify.
pub fn verify(
    signing_key: &[u8; 32],
    req: &Request<'_>,
    parsed: &Parsed,
) -> Result<(), HttpSigError> {
    const BAD: HttpSigError = HttpSigError("the signature does not verify");
    let components: &[&str] = if parsed.covers_digest {
        &COMPONENTS_WITH_BODY
    } else {
        &COMPONENTS
    };
    let b = base(req, components, &parsed.raw_params)?;
    let vk = VerifyingKey::from_bytes(signing_key).map_err(|_| BAD)?;
    vk.verify_strict(b.as_bytes(), &Signature::from_bytes(&parsed.signature))
        .map_err(|_| BAD)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn req<'a>(digest: Option<&'a str>) -> Request<'a> {
        Request {
            method: "POST",
            path: "/v1/documents",
            query: None,
            authorization: "Bearer AAAA",
            content_digest: digest,
        }
    }

    #[test]
    fn round_trip_and_every_change_fails() {
        let d = DeviceSecret::from_test_seed(&[7; 32]);
        let pk = d.signing_public_key();
        let digest = content_digest(b"{}");
        let r = req(Some(&digest));
        let h = sign(&d, &r, 1_700_000_000, "AAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let p = parse(&h.signature_input, &h.signature).unwrap();
        assert!(p.covers_digest);
        assert_eq!(p.keyid(), d.id().to_string());
        verify(&pk, &r, &p).unwrap();
        let other_digest = content_digest(b"{ }");
        let changed = [
            Request { method: "GET", ..r },
            Request {
                path: "/v1/documentz",
                ..r
            },
            Request {
                query: Some("size=1"),
                ..r
            },
            Request {
                authorization: "Bearer AAAB",
                ..r
            },
            Request {
                content_digest: Some(&other_digest),
                ..r
            },
        ];
        for c in changed {
            assert!(verify(&pk, &c, &p).is_err(), "{c:?}");
        }
        // A body-less signature is not valid for a request whose digest is dropped the other way.
        assert!(verify(&pk, &req(None), &p).is_err());
        let other = DeviceSecret::from_test_seed(&[8; 32]);
        assert!(verify(&other.signing_public_key(), &r, &p).is_err());
        // Changed parameters change the base.
        let swapped = h
            .signature_input
            .replace("created=1700000000", "created=1700000001");
        let p2 = parse(&swapped, &h.signature).unwrap();
        assert!(verify(&pk, &r, &p2).is_err());
    }

    #[test]
    fn parse_is_strict() {
        let d = DeviceSecret::from_test_seed(&[7; 32]);
        let h = sign(&d, &req(None), 5, "BBBBBBBBBBBBBBBBBBBBBB").unwrap();
        assert!(parse(&h.signature_input, &h.signature).is_ok());
        let id = d.id().to_string();
        let good_sig = h.signature.clone();
        for bad in [
            String::new(),
            h.signature_input.replace("sig1=", "sig2="),
            h.signature_input.replace("\"@query\" ", ""),
            h.signature_input
                .replace("\"@method\" \"@path\"", "\"@path\" \"@method\""),
            h.signature_input.replace("created=5", "created=05"),
            h.signature_input.replace("created=5", "created=-5"),
            h.signature_input
                .replace("created=5", "created=99999999999999999"),
            h.signature_input.replace("BBBBBBBBBBBBBBBBBBBBBB", "short"),
            h.signature_input
                .replace("BBBBBBBBBBBBBBBBBBBBBB", "BBBBBBBBBBBBBBBBBBBBB+"),
            h.signature_input.replace(&id, &id.to_uppercase()),
            h.signature_input.replace("ed25519", "hmac-sha256"),
            h.signature_input.replace("serment-v1", "serment-v2"),
            format!("{};expires=9", h.signature_input),
            h.signature_input.replace(";tag", ";x=1;tag"),
        ] {
            assert!(parse(&bad, &good_sig).is_err(), "{bad}");
        }
        for bad_sig in ["", "sig1=:AAAA:", "sig1=::", "sig2=:AAAA:"] {
            assert!(parse(&h.signature_input, bad_sig).is_err(), "{bad_sig}");
        }
    }

    #[test]
    fn content_digest_is_rfc9530_sha256() {
        // RFC 9530 §2: the body {"hello": "world"}.
        assert_eq!(
            content_digest(b"{\"hello\": \"world\"}"),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
        let d = parse_content_digest("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:");
        assert_eq!(
            d.unwrap(),
            <[u8; 32]>::from(Sha256::digest(b"{\"hello\": \"world\"}"))
        );
        for bad in [
            "sha-512=:AAAA:",
            "sha-256=:AAAA:",
            "sha-256=RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=",
            "",
        ] {
            assert!(parse_content_digest(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn line_breaks_are_refused() {
        let d = DeviceSecret::from_test_seed(&[7; 32]);
        let mut r = req(None);
        r.authorization = "Bearer A\n\"@method\": GET";
        assert!(sign(&d, &r, 5, "BBBBBBBBBBBBBBBBBBBBBB").is_err());
    }
}
