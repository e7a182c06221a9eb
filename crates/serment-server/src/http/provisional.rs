//! Provisional recipients (PROTOCOL.md §15, issue 17 §1). A lab's device registers a provisional
//! recipient (its record is logged, kind 10) with the escrow of its secrets and the server's
//! share `S`; it wraps documents to it like to any device. The patient, with the claim code of
//! the receipt, asks for a one-time code by email, proves it to receive `S` and the escrow, and
//! claims (kind 11), then re-wraps each document to its own devices.
//!
//! What the server holds never opens anything: the escrow needs the claim code too, which the
//! server never sees (only its hash, the lookup id). One-time codes are 8 random digits, stored
//! as a hash, single use, valid [`CODE_TTL_SECS`], at most [`MAX_CODE_ATTEMPTS`] attempts each;
//! sending is limited per provisional recipient ([`CODE_SENDS_PER_MINUTE`]) and proving per
//! recipient ([`OPENS_PER_MINUTE`]) and per client address (the login throttle); past a budget,
//! `429` with `Retry-After`. No code, claim code, lookup id, email address or document id is ever
//! written to the server's log.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serment_api::{
    AddWrapsRequest, AddWrapsResponse, ClaimRequest, CodeSent, CreateProvisionalRequest,
    HistoryResponse, OpenProvisionalRequest, OpenedProvisional, ProvisionalAppended,
    ProvisionalList, ProvisionalQuery, ProvisionalWrap, ProvisionalWraps, SendCodeRequest,
    SizeQuery,
};
use serment_core::identity::DeviceRecord;
use serment_core::ids::labeled_hash;
use serment_core::log::entry::Subject;
use serment_core::provisional::{Claim, Contact, ESCROW_LEN, ProvisionalRecord, SERVER_SHARE_LEN};

use super::AppState;
use super::documents::{WrapContext, check_wraps, load_header, version_path};
use super::error::{ApiError, ErrorBody};
use super::extract::{
    ApiJson, ApiPath, ApiQuery, AuthDevice, b64_decode, b64_encode, parse_key_id,
};
use crate::mail::Mailer;
use crate::store::{CodeCheck, NewProvisional, ProvisionalRow, now};

/// Seconds a one-time code stays valid.
pub(crate) const CODE_TTL_SECS: u64 = 600;
/// Attempts allowed against one code; then it is dead and a new one must be asked for.
pub(crate) const MAX_CODE_ATTEMPTS: u32 = 5;
/// One-time codes sent per provisional recipient per minute (in bursts of up to this many).
pub(crate) const CODE_SENDS_PER_MINUTE: u32 = 3;
/// Attempts at proving a code per provisional recipient per minute.
pub(crate) const OPENS_PER_MINUTE: u32 = 10;
/// Wrong one-time codes a provisional recipient takes over its whole life, whatever the code
/// (review S16: a new code does not reset it). Past it the recipient is locked: no code is sent
/// or proven, and the lab re-issues a claim code (`put --to-unregistered CONTACT
/// --new-claim-code`, PROTOCOL.md §15.2). 20 guesses at 8 digits: a thief's chance is 2 in 10^7.
pub(crate) const MAX_CODE_FAILURES: u32 = 20;

/// The refusal of a locked recipient (review S16).
fn locked() -> ApiError {
    ApiError::Forbidden(
        "this claim code is locked after too many wrong one-time codes: ask the lab for a new \
         claim code (the lab runs `put --to-unregistered CONTACT --new-claim-code`)",
    )
}

fn mailer(state: &AppState) -> Result<Mailer, ApiError> {
    let url = state
        .config
        .smtp_url
        .as_deref()
        .ok_or(ApiError::SmtpNotConfigured)?;
    // Checked by `Config::validate` at startup.
    Mailer::new(url, &state.config.smtp_from)
        .map_err(|e| ApiError::internal("smtp_url or smtp_from", &e))
}

fn hex32(field: &str, s: &str) -> Result<String, ApiError> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(s.to_owned())
    } else {
        Err(ApiError::BadRequest(format!(
            "{field}: expected 64 lowercase hex characters"
        )))
    }
}

/// The stored form of a one-time code: `H("serment/v1/provisional-otp" 0x00 || id || code)`.
fn code_hash(id: &serment_core::KeyId, code: &str) -> [u8; 32] {
    labeled_hash("provisional-otp", &[id.as_bytes(), code.as_bytes()])
}

/// 8 uniformly random decimal digits.
fn fresh_code() -> Result<String, ApiError> {
    loop {
        let mut b = [0u8; 4];
        serment_core::rng::fill(&mut b).map_err(|e| ApiError::internal("rng", &e))?;
        let v = u32::from_le_bytes(b);
        // 4.2e9 is a multiple of 1e8: below it, `v % 1e8` is uniform.
        if v < 4_200_000_000 {
            return Ok(format!("{:08}", v % 100_000_000));
        }
    }
}

async fn by_lookup(state: &AppState, lookup: &str) -> Result<ProvisionalRow, ApiError> {
    let lookup = hex32("lookup", lookup)?;
    state
        .store
        .meta()
        .provisional_by_lookup(&lookup)
        .await?
        .ok_or(ApiError::NotFound(
            "no provisional recipient for this claim code",
        ))
}

async fn budget(
    state: &AppState,
    bucket: &str,
    id: &serment_core::KeyId,
    per_minute: u32,
    what: &str,
) -> Result<(), ApiError> {
    let ok = state
        .store
        .meta()
        .take_token(
            bucket,
            &format!("p:{id}"),
            per_minute,
            now().saturating_mul(1000),
            true,
        )
        .await?;
    if ok {
        Ok(())
    } else {
        let wait = 60 / u64::from(per_minute.max(1));
        Err(ApiError::RetryAfter(
            format!("too many {what} for this provisional recipient: retry in {wait} s"),
            wait,
        ))
    }
}

/// Registers a provisional recipient (PROTOCOL.md §15.1): its record is logged (kind 10).
#[utoipa::path(
    post, path = "/v1/provisional", tag = "provisional",
    security(("bearer" = [])),
    request_body = CreateProvisionalRequest,
    responses(
        (status = 201, body = ProvisionalAppended),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "The recipient or claim code exists", body = ErrorBody),
        (status = 503, description = "No smtp_url: provisional recipients are off", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiJson(req): ApiJson<CreateProvisionalRequest>,
) -> Result<(StatusCode, Json<ProvisionalAppended>), ApiError> {
    mailer(&state)?;
    let bytes = b64_decode("record", &req.record)?;
    let record = ProvisionalRecord::decode_verified(&bytes)
        .map_err(|e| ApiError::InvalidRecord(format!("record: {e}")))?;
    if record.lab_device() != caller.device_id {
        return Err(ApiError::InvalidRecord(
            "record: signed by another device than the caller".into(),
        ));
    }
    let escrow = b64_decode("escrow", &req.escrow)?;
    if escrow.len() != ESCROW_LEN {
        return Err(ApiError::BadRequest(format!(
            "escrow: expected {ESCROW_LEN} bytes"
        )));
    }
    let share = b64_decode("server_share", &req.server_share)?;
    if share.len() != SERVER_SHARE_LEN {
        return Err(ApiError::BadRequest(format!(
            "server_share: expected {SERVER_SHARE_LEN} bytes"
        )));
    }
    let lookup = hex32("lookup", &req.lookup)?;
    let contact = Contact::parse(&format!("email:{}", req.email))
        .map_err(|_| ApiError::BadRequest("email: not an email address".into()))?;
    let id = record.id();
    let index = state
        .store
        .meta()
        .create_provisional(&NewProvisional {
            id,
            lab_identity: caller.identity_id,
            lab_device: caller.device_id,
            contact_tag: hex::encode(record.contact_tag),
            lookup,
            email: &contact.email,
            server_share: &share,
            escrow: &escrow,
            record: &bytes,
            now: now(),
        })
        .await?;
    tracing::info!("provisional recipient registered");
    Ok((
        StatusCode::CREATED,
        Json(ProvisionalAppended {
            provisional_id: id.to_string(),
            log_index: index,
        }),
    ))
}

/// The caller identity's provisional recipients for a contact tag (PROTOCOL.md §15.1).
#[utoipa::path(
    get, path = "/v1/provisional", tag = "provisional",
    security(("bearer" = [])),
    params(("contact_tag" = String, Query, description = "Contact tag, 64 hex")),
    responses((status = 200, body = ProvisionalList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiQuery(q): ApiQuery<ProvisionalQuery>,
) -> Result<Json<ProvisionalList>, ApiError> {
    let tag = hex32("contact_tag", &q.contact_tag)?;
    let ids = state
        .store
        .meta()
        .provisionals_tagged(&caller.identity_id, &tag)
        .await?;
    Ok(Json(ProvisionalList {
        provisionals: ids.iter().map(ToString::to_string).collect(),
    }))
}

/// Emails a one-time code to the contact of the provisional recipient a claim code names
/// (PROTOCOL.md §15.2). No authentication (the patient may not be registered yet); throttled.
#[utoipa::path(
    post, path = "/v1/provisional/code", tag = "provisional",
    request_body = SendCodeRequest,
    responses(
        (status = 202, body = CodeSent),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Already claimed", body = ErrorBody),
        (status = 410, description = "Unclaimed past provisional_address_days: the address was erased", body = ErrorBody),
        (status = 429, description = "Too many codes: Retry-After", body = ErrorBody),
        (status = 502, description = "The SMTP relay refused the mail", body = ErrorBody),
        (status = 503, description = "No smtp_url", body = ErrorBody),
    )
)]
pub(crate) async fn send_code(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SendCodeRequest>,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    let mail = mailer(&state)?;
    let row = by_lookup(&state, &req.lookup).await?;
    if row.claimed_identity.is_some() {
        return Err(ApiError::Conflict(
            "this provisional recipient is already claimed (its claimant resumes with `serment \
             claim --code CLAIM`, no one-time code needed)"
                .into(),
        ));
    }
    if row.failures >= u64::from(MAX_CODE_FAILURES) {
        return Err(locked());
    }
    if row.email.is_empty() {
        // The newcomer's H19: unclaimed for `provisional_address_days`, the address was erased.
        return Err(ApiError::Erased(
            "this claim code is too old: its contact address was erased (provisional_address_days); \
             ask the lab for a new claim code (the lab runs `put --to-unregistered CONTACT \
             --new-claim-code`)"
                .into(),
        ));
    }
    budget(
        &state,
        "provisional-code",
        &row.id,
        CODE_SENDS_PER_MINUTE,
        "one-time codes",
    )
    .await?;
    let code = zeroize::Zeroizing::new(fresh_code()?);
    state
        .store
        .meta()
        .set_provisional_code(
            &row.id,
            &code_hash(&row.id, &code),
            now().saturating_add(CODE_TTL_SECS),
        )
        .await?;
    if let Err(e) = mail.send_code(&row.email, &code, CODE_TTL_SECS).await {
        // The relay's answer may quote the address: only the kind of failure is logged.
        let kind = match e {
            crate::mail::MailError::Send(_) => "the relay refused it or was unreachable",
            _ => "the address was refused",
        };
        tracing::warn!(reason = kind, "a one-time code mail was not sent");
        return Err(ApiError::SmtpFailed);
    }
    tracing::info!("one-time code sent");
    Ok((
        StatusCode::ACCEPTED,
        Json(CodeSent {
            expires_in: CODE_TTL_SECS,
        }),
    ))
}

/// Proves a one-time code: the answer is the server's share and the escrow (PROTOCOL.md
/// §15.2). Throttled per address and per provisional recipient.
#[utoipa::path(
    post, path = "/v1/provisional/open", tag = "provisional",
    security(("bearer" = [])),
    request_body = OpenProvisionalRequest,
    responses(
        (status = 200, body = OpenedProvisional),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Wrong, expired or used code", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Claimed by another identity", body = ErrorBody),
        (status = 429, description = "Too many attempts: Retry-After", body = ErrorBody),
    )
)]
pub(crate) async fn open(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiJson(req): ApiJson<OpenProvisionalRequest>,
) -> Result<Json<OpenedProvisional>, ApiError> {
    let row = by_lookup(&state, &req.lookup).await?;
    if row
        .claimed_identity
        .is_some_and(|c| c != caller.identity_id)
    {
        return Err(ApiError::Conflict(
            "this provisional recipient is claimed by another identity".into(),
        ));
    }
    if row.claimed_identity == Some(caller.identity_id) {
        // Review S2: the claimant identity resumes an interrupted claim (its re-wraps) without
        // a one-time code: the claim in the log already gave it the provisional key's documents,
        // and the share alone opens nothing without the claim code.
        tracing::info!("provisional recipient reopened by its claimant");
        return Ok(Json(OpenedProvisional {
            provisional_id: row.id.to_string(),
            server_share: b64_encode(&row.server_share),
            escrow: b64_encode(&row.escrow),
        }));
    }
    budget(
        &state,
        "provisional-open",
        &row.id,
        OPENS_PER_MINUTE,
        "attempts at a one-time code",
    )
    .await?;
    if req.code.len() != 8 || !req.code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest(
            "code: the one-time code is 8 digits".into(),
        ));
    }
    let check = state
        .store
        .meta()
        .try_provisional_code(
            &row.id,
            &code_hash(&row.id, &req.code),
            &caller.identity_id,
            now(),
            MAX_CODE_ATTEMPTS,
            MAX_CODE_FAILURES,
        )
        .await?;
    match check {
        CodeCheck::Proven => {}
        CodeCheck::Wrong => return Err(ApiError::Forbidden("wrong one-time code")),
        CodeCheck::NoCode => {
            return Err(ApiError::Forbidden(
                "no live one-time code (expired, used, or never sent): ask for a new one",
            ));
        }
        CodeCheck::Locked => return Err(locked()),
        CodeCheck::Exhausted => {
            let wait = 60 / u64::from(CODE_SENDS_PER_MINUTE);
            return Err(ApiError::RetryAfter(
                format!(
                    "{MAX_CODE_ATTEMPTS} wrong attempts: this code is dead; ask for a new one in {wait} s"
                ),
                wait,
            ));
        }
    }
    tracing::info!("one-time code proven");
    Ok(Json(OpenedProvisional {
        provisional_id: row.id.to_string(),
        server_share: b64_encode(&row.server_share),
        escrow: b64_encode(&row.escrow),
    }))
}

/// Claims a provisional recipient (kind 11): the claim is signed by the provisional key and by
/// the calling device. One claim per recipient, after a proven one-time code (PROTOCOL.md §15.3).
#[utoipa::path(
    post, path = "/v1/provisional/{id}/claim", tag = "provisional",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Provisional recipient id, 64 hex")),
    request_body = ClaimRequest,
    responses(
        (status = 201, body = ProvisionalAppended),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "No proven one-time code", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Already claimed", body = ErrorBody),
    )
)]
pub(crate) async fn claim(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> Result<(StatusCode, Json<ProvisionalAppended>), ApiError> {
    let id = parse_key_id("id", &id)?;
    let meta = state.store.meta();
    if meta.provisional(&id).await?.is_none() {
        return Err(ApiError::NotFound("no such provisional recipient"));
    }
    let bytes = b64_decode("claim", &req.claim)?;
    let claim = Claim::decode_verified(&bytes)
        .map_err(|e| ApiError::InvalidRecord(format!("claim: {e}")))?;
    if claim.provisional_id() != id {
        return Err(ApiError::InvalidRecord(
            "claim: names another provisional recipient".into(),
        ));
    }
    if claim.device_id() != caller.device_id {
        return Err(ApiError::InvalidRecord(
            "claim: signed by another device than the caller".into(),
        ));
    }
    let device = meta
        .device(&caller.device_id)
        .await?
        .ok_or(ApiError::Unauthorized("unknown device"))?;
    let record = DeviceRecord::decode_verified(&device.record)
        .map_err(|e| ApiError::internal("stored device record", &e))?;
    if record.handle != claim.handle {
        return Err(ApiError::InvalidRecord(
            "claim: names another handle than the caller's".into(),
        ));
    }
    let index = meta
        .claim_provisional(&id, &caller.identity_id, &caller.device_id, &bytes, now())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => {
                ApiError::NotFound("no such provisional recipient")
            }
            e => e.into(),
        })?;
    tracing::info!("provisional recipient claimed");
    Ok((
        StatusCode::CREATED,
        Json(ProvisionalAppended {
            provisional_id: id.to_string(),
            log_index: index,
        }),
    ))
}

/// Every wrap to a claimed provisional recipient, for a device of the identity that claimed it
/// to re-wrap (PROTOCOL.md §15.3).
#[utoipa::path(
    get, path = "/v1/provisional/{id}/wraps", tag = "provisional",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Provisional recipient id, 64 hex")),
    responses(
        (status = 200, body = ProvisionalWraps),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not claimed by the caller's identity", body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn wraps(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ProvisionalWraps>, ApiError> {
    let id = parse_key_id("id", &id)?;
    let meta = state.store.meta();
    let row = meta
        .provisional(&id)
        .await?
        .ok_or(ApiError::NotFound("no such provisional recipient"))?;
    if row.claimed_identity != Some(caller.identity_id) {
        return Err(ApiError::Forbidden(
            "only a device of the identity that claimed a provisional recipient reads its wraps",
        ));
    }
    let wraps = meta.provisional_wraps(&id).await?;
    Ok(Json(ProvisionalWraps {
        wraps: wraps
            .into_iter()
            .map(|(doc, v, w, idx)| ProvisionalWrap {
                doc_id: doc.to_string(),
                doc_version: v,
                wrap: b64_encode(&w),
                log_index: idx,
            })
            .collect(),
    }))
}

/// Wraps a version to provisional recipients the caller's identity made (the author device
/// only); each is a logged wrap entry (kind 4).
#[utoipa::path(
    post, path = "/v1/documents/{doc_id}/versions/{v}/provisional-wraps", tag = "provisional",
    security(("bearer" = [])),
    params(
        ("doc_id" = String, Path, description = "Document id, 32 hex"),
        ("v" = u32, Path, description = "Version, from 1"),
    ),
    request_body = AddWrapsRequest,
    responses(
        (status = 201, body = AddWrapsResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Not the author device, or a recipient another identity made", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "A recipient already holds a wrap", body = ErrorBody),
    )
)]
pub(crate) async fn add_wraps(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiPath(path): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<AddWrapsRequest>,
) -> Result<(StatusCode, Json<AddWrapsResponse>), ApiError> {
    let (doc_id, version) = version_path(&path)?;
    let meta = state.store.meta();
    let row = meta
        .version(&doc_id, version)
        .await?
        .ok_or(ApiError::NotFound("no such document version"))?;
    if row.author_device != caller.device_id {
        return Err(ApiError::Forbidden(
            "only the author device wraps a version to a provisional recipient",
        ));
    }
    let header = load_header(&state, &row.blob_id).await?;
    let wraps = check_wraps(
        req.wraps,
        WrapContext {
            doc_id,
            doc_version: version,
            header_hash: header.hash(),
            sharer: caller.device_id,
            sharer_signing_key: caller.signing_key,
        },
    )
    .await?;
    for w in &wraps {
        let p = meta.provisional(&w.recipient).await?;
        let Some(p) = p.filter(|p| p.lab_identity == caller.identity_id) else {
            return Err(ApiError::Forbidden(
                "a recipient is not a provisional recipient the caller's identity made",
            ));
        };
        // Review S2: a wrap to a claimed recipient would be stranded (the claimant re-wrapped
        // once, at its claim): refused, the lab seals to the claimant instead.
        if p.claimed_identity.is_some() {
            return Err(ApiError::Conflict(
                "claimed: this provisional recipient was claimed; seal to the claimant instead \
                 (put --to-unregistered CONTACT names them)"
                    .into(),
            ));
        }
    }
    let pairs: Vec<_> = wraps.into_iter().map(|w| (w.recipient, w.bytes)).collect();
    let log_indices = meta
        .add_provisional_wraps(&doc_id, version, &pairs, now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(AddWrapsResponse {
            doc_id: doc_id.to_string(),
            doc_version: version,
            added: pairs.len(),
            log_indices,
        }),
    ))
}

/// A provisional recipient's chain (its record, its claim) with proofs (PROTOCOL.md §15.4).
#[utoipa::path(get, path = "/v1/log/provisional/{id}", tag = "log",
    params(("id" = String, Path, description = "Provisional recipient id, 64 hex"), ("size" = Option<u64>, Query, description = "A published tree size")),
    responses((status = 200, body = HistoryResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn history(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<SizeQuery>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let id = parse_key_id("id", &id)?;
    super::log::subject_history(
        &state,
        &Subject::Provisional(id),
        q.size,
        "unknown provisional recipient",
    )
    .await
    .map(Json)
}
