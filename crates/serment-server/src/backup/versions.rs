//! The readers of an `s3://` backup read the **oldest version** of every object (REVIEW5 U8,
//! docs/BACKUP.md §4).
//!
//! In a versioned bucket, a `PutObject` without `If-None-Match` over an existing key adds a new
//! current version; Object Lock keeps the original, but a plain `GET` reads the new one. The
//! backup only ever creates (`If-None-Match: *`), so the first version of a key is the only one
//! it wrote. Before reading a key, the target asks S3 for its versions (`ListObjectVersions`:
//! `GET /?versions&prefix=KEY`, paginated by key and version-id markers, signed with
//! object_store's SigV4 [`AwsAuthorizer`] and the target's own credentials) and reads the oldest
//! by its version id. Every later version or delete marker makes the key **shadowed**: it is
//! remembered, `verify-backup` names it (a problem of kind `shadowed`) and `restore` does not
//! count it against the backup, the oldest version being what it reads and verifies.
//!
//! A bucket without versioning lists each key once with the version id `null`: read plainly,
//! as before. A service without `ListObjectVersions` (501 `NotImplemented`) is read by current
//! versions, with a warning. A refusal (403) is an error naming the permissions to grant
//! (`s3:ListBucketVersions`, `s3:GetObjectVersion`): never a silent fall back to current
//! versions.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

use axum::http;
use futures_util::StreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer};
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector as _, HttpRequestBody, ReqwestConnector,
};
use serde::Deserialize;

use super::BackupError;

/// The most bytes of one page of a version listing (S3 sends at most 1000 versions, well under
/// 1 MiB): a longer answer is an error, never held.
const MAX_PAGE_BYTES: usize = 16 << 20;

/// The most shadowed keys named one by one; past it the report says there are more.
pub(crate) const MAX_SHADOWED_NAMED: usize = 1000;

/// Attempts of one listing request on a connection error or a 5xx answer.
const ATTEMPTS: u32 = 3;

/// The version of a key the readers read: its first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Oldest {
    /// Its version id; `None` in a bucket without versioning (id `null`): read plainly.
    pub(crate) version: Option<String>,
    /// Its length.
    pub(crate) size: u64,
}

/// What the version listing says of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The service has no `ListObjectVersions`: read the current version.
    Unsupported,
    /// No version of the key (or only delete markers).
    Missing,
    /// Its oldest version.
    Found(Oldest),
}

/// The keys seen with versions after their first one.
#[derive(Debug, Default)]
struct Shadowed {
    /// Key (relative to the target's prefix) -> versions and delete markers after the first.
    named: BTreeMap<String, u64>,
    /// Whether more keys were shadowed than [`MAX_SHADOWED_NAMED`].
    more: bool,
}

/// The shadowed keys a target has seen so far (REVIEW5 U8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShadowedKeys {
    /// Key -> how many versions or delete markers came after its first version, at most
    /// [`MAX_SHADOWED_NAMED`] keys.
    pub named: BTreeMap<String, u64>,
    /// More keys were shadowed than those named.
    pub more: bool,
}

/// Lists object versions of one bucket and remembers what it found (see the module docs).
pub struct Versions {
    s3: AmazonS3,
    http: HttpClient,
    /// `https://s3.REGION.amazonaws.com/BUCKET`, `ENDPOINT/BUCKET`, or the virtual-hosted
    /// endpoint: where object_store sends its own listings.
    bucket_url: String,
    region: String,
    /// The target's key prefix with its trailing `/` (empty for none).
    prefix: String,
    /// The oldest version of each key a [`Versions::list_dir`] found, by relative key.
    listed: Mutex<HashMap<String, Oldest>>,
    shadowed: Mutex<Shadowed>,
    /// Set once the service answered that it has no `ListObjectVersions`.
    unsupported: AtomicBool,
    /// `max-keys` of a listing page (S3's own maximum; smaller in tests, to cross pages).
    page_keys: AtomicU32,
}

impl std::fmt::Debug for Versions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Versions")
            .field("bucket_url", &self.bucket_url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// One page of `ListObjectVersions` (`ListVersionsResult`); versions and delete markers are
/// interleaved in the answer (quick-xml's `overlapped-lists`, as object_store builds it). Within
/// a key, S3 lists versions newest first: the last `Version` of a key is its oldest.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListVersionsResult {
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    next_key_marker: Option<String>,
    #[serde(default)]
    next_version_id_marker: Option<String>,
    #[serde(default)]
    version: Vec<VersionXml>,
    #[serde(default)]
    delete_marker: Vec<MarkerXml>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VersionXml {
    key: String,
    version_id: String,
    size: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MarkerXml {
    key: String,
}

/// An S3 error answer (`<Error><Code>...</Code><Message>...</Message></Error>`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorXml {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Per key, while the pages are read: the oldest version so far and how many entries.
#[derive(Debug, Default)]
struct Acc {
    oldest: Option<Oldest>,
    entries: u64,
}

/// Adds one page to `acc`: only `exact` when given (a listing by a key's name also lists the
/// keys it is a prefix of, `blobs/x.1` for `blobs/x`).
fn fold_page(acc: &mut BTreeMap<String, Acc>, page: ListVersionsResult, exact: Option<&str>) {
    let wanted = |k: &str| exact.is_none_or(|e| e == k);
    for v in page.version {
        if wanted(&v.key) {
            let a = acc.entry(v.key).or_default();
            a.entries = a.entries.saturating_add(1);
            // Later in the listing is older.
            a.oldest = Some(Oldest {
                version: (v.version_id != "null" && !v.version_id.is_empty())
                    .then_some(v.version_id),
                size: v.size,
            });
        }
    }
    for m in page.delete_marker {
        if wanted(&m.key) {
            let a = acc.entry(m.key).or_default();
            a.entries = a.entries.saturating_add(1);
        }
    }
}

/// Percent-encodes a query value: everything but the unreserved characters (RFC 3986), as
/// SigV4 canonicalizes it.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What one listing request gave.
enum Page {
    Unsupported,
    Page(ListVersionsResult),
}

impl Versions {
    /// The version reader of the bucket `store` (built by `builder`, whose endpoint, region and
    /// addressing style it uses), with the same client options, for the keys under `prefix`
    /// (`""` or without its trailing `/`).
    ///
    /// # Errors
    /// A message when no HTTP client can be made with `options`.
    pub(crate) fn new(
        store: &AmazonS3,
        builder: &AmazonS3Builder,
        options: &ClientOptions,
        bucket: &str,
        prefix: &str,
    ) -> Result<Versions, String> {
        let get = |k: AmazonS3ConfigKey| builder.get_config_value(&k).filter(|v| !v.is_empty());
        // As object_store's builder: the S3-specific endpoint first, path style unless told.
        let endpoint = get(AmazonS3ConfigKey::S3Endpoint).or(get(AmazonS3ConfigKey::Endpoint));
        let region = get(AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".to_owned());
        let virtual_hosted = get(AmazonS3ConfigKey::VirtualHostedStyleRequest)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let bucket_url = match (endpoint, virtual_hosted) {
            (Some(e), true) => e.trim_end_matches('/').to_owned(),
            (Some(e), false) => format!("{}/{bucket}", e.trim_end_matches('/')),
            (None, true) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
            (None, false) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
        };
        let http = ReqwestConnector::default()
            .connect(options)
            .map_err(|e| e.to_string())?;
        Ok(Versions {
            s3: store.clone(),
            http,
            bucket_url,
            region,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            listed: Mutex::new(HashMap::new()),
            shadowed: Mutex::new(Shadowed::default()),
            unsupported: AtomicBool::new(false),
            page_keys: AtomicU32::new(1000),
        })
    }

    /// The keys (relative) that have an object version under `dir/`, sorted, remembering the
    /// oldest version of each for the reads that follow; `None` when the service has no
    /// version listing.
    ///
    /// # Errors
    /// [`BackupError::Target`] when the listing fails.
    pub(crate) async fn list_dir(&self, dir: &str) -> Result<Option<Vec<String>>, BackupError> {
        let full = format!("{}{dir}/", self.prefix);
        let Some(found) = self.scan(&full, None).await? else {
            return Ok(None);
        };
        let mut keys = Vec::with_capacity(found.len());
        let under = format!("{dir}/");
        let mut listed = self.listed.lock().unwrap_or_else(PoisonError::into_inner);
        listed.retain(|k, _| !k.starts_with(&under));
        for (key, oldest) in found {
            listed.insert(key.clone(), oldest);
            keys.push(key);
        }
        Ok(Some(keys))
    }

    /// The oldest version of `key` (relative to the target's prefix).
    ///
    /// # Errors
    /// [`BackupError::Target`] when the listing fails.
    pub(crate) async fn lookup(&self, key: &str) -> Result<Lookup, BackupError> {
        if self.unsupported.load(Ordering::Relaxed) {
            return Ok(Lookup::Unsupported);
        }
        if let Some(o) = self
            .listed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
        {
            return Ok(Lookup::Found(o.clone()));
        }
        let full = format!("{}{key}", self.prefix);
        Ok(match self.scan(&full, Some(&full)).await? {
            None => Lookup::Unsupported,
            Some(mut found) => match found.remove(key) {
                Some(o) => Lookup::Found(o),
                None => Lookup::Missing,
            },
        })
    }

    /// Lists `n` versions a page (tests: pages are crossed with few objects).
    #[cfg(test)]
    pub(crate) fn set_page_keys(&self, n: u32) {
        self.page_keys.store(n, Ordering::Relaxed);
    }

    /// The shadowed keys seen so far.
    pub(crate) fn shadowed(&self) -> ShadowedKeys {
        let s = self.shadowed.lock().unwrap_or_else(PoisonError::into_inner);
        ShadowedKeys {
            named: s.named.clone(),
            more: s.more,
        }
    }

    fn note_shadowed(&self, key: &str, later: u64) {
        let mut s = self.shadowed.lock().unwrap_or_else(PoisonError::into_inner);
        if s.named.contains_key(key) {
            s.named.insert(key.to_owned(), later);
            return;
        }
        tracing::warn!(
            key,
            later,
            "backup target: the object has later versions (written without If-None-Match: \
             REVIEW5 U8); its oldest version is read (run verify-backup)"
        );
        if s.named.len() < MAX_SHADOWED_NAMED {
            s.named.insert(key.to_owned(), later);
        } else {
            s.more = true;
        }
    }

    /// Lists every version under `full_prefix` (a full key, or with `exact` one key only):
    /// relative key -> its oldest version; shadowed keys are noted. `None`: no version listing.
    async fn scan(
        &self,
        full_prefix: &str,
        exact: Option<&str>,
    ) -> Result<Option<BTreeMap<String, Oldest>>, BackupError> {
        let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let page = match self.page(full_prefix, markers.as_ref()).await? {
                Page::Unsupported => return Ok(None),
                Page::Page(p) => p,
            };
            let truncated = page.is_truncated;
            let next = (
                page.next_key_marker.clone().unwrap_or_default(),
                page.next_version_id_marker.clone().unwrap_or_default(),
            );
            fold_page(&mut acc, page, exact);
            if !truncated {
                break;
            }
            let stuck = next.0.is_empty()
                || markers.as_ref().is_some_and(|(k, v)| {
                    next.0.as_str() < k.as_str() || (next.0 == *k && next.1 == *v)
                });
            if stuck {
                return Err(BackupError::Target(format!(
                    "listing the versions under {full_prefix}: the listing does not advance \
                     (next key marker {:?})",
                    next.0
                )));
            }
            // A key's versions are listed together, keys in order: past it, all are in.
            if exact.is_some_and(|e| next.0.as_str() > e) {
                break;
            }
            markers = Some(next);
        }
        let mut out = BTreeMap::new();
        for (full, a) in acc {
            let Some(oldest) = a.oldest else {
                // Only delete markers: no object (the policy denies deletes; noted anyway).
                continue;
            };
            let key = full
                .strip_prefix(self.prefix.as_str())
                .unwrap_or(&full)
                .to_owned();
            if a.entries > 1 {
                self.note_shadowed(&key, a.entries - 1);
            }
            out.insert(key, oldest);
        }
        Ok(Some(out))
    }

    /// One signed `ListObjectVersions` request, retried on a connection error or a 5xx.
    async fn page(
        &self,
        full_prefix: &str,
        markers: Option<&(String, String)>,
    ) -> Result<Page, BackupError> {
        let err = |m: String| {
            BackupError::Target(format!("listing the versions under {full_prefix}: {m}"))
        };
        let mut query = format!(
            "versions&max-keys={}&prefix={}",
            self.page_keys.load(Ordering::Relaxed),
            encode(full_prefix)
        );
        if let Some((k, v)) = markers {
            query.push_str(&format!("&key-marker={}", encode(k)));
            if !v.is_empty() {
                query.push_str(&format!("&version-id-marker={}", encode(v)));
            }
        }
        let url = format!("{}?{query}", self.bucket_url);
        let mut attempt = 1u32;
        let (status, body) = loop {
            let answer = self.request(&url).await;
            let transient = match &answer {
                Err(_) => true,
                Ok((s, _)) => s.is_server_error() && s.as_u16() != 501,
            };
            if !transient || attempt >= ATTEMPTS {
                break answer.map_err(err)?;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
            attempt += 1;
        };
        if status.is_success() {
            let page: ListVersionsResult = quick_xml::de::from_reader(body.as_slice())
                .map_err(|e| err(format!("the answer is no version listing: {e}")))?;
            return Ok(Page::Page(page));
        }
        let e: ErrorXml = quick_xml::de::from_reader(body.as_slice()).unwrap_or_default();
        if status.as_u16() == 501 || e.code == "NotImplemented" {
            if !self.unsupported.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    target_url = self.bucket_url,
                    "backup target: the service has no ListObjectVersions; current versions are \
                     read, and an object overwritten without If-None-Match would be read as the \
                     overwrite (REVIEW5 U8)"
                );
            }
            return Ok(Page::Unsupported);
        }
        let detail = format!("{status} {} {}", e.code, e.message);
        Err(err(if status.as_u16() == 403 {
            format!(
                "refused ({}): the readers of a backup need s3:ListBucketVersions and \
                 s3:GetObjectVersion on the prefix, besides s3:ListBucket and s3:GetObject \
                 (README, \"Backup\")",
                detail.trim()
            )
        } else {
            detail.trim().to_owned()
        }))
    }

    /// One signed GET of `url`: its status and body (at most [`MAX_PAGE_BYTES`]).
    async fn request(&self, url: &str) -> Result<(http::StatusCode, Vec<u8>), String> {
        let credential = self
            .s3
            .credentials()
            .get_credential()
            .await
            .map_err(|e| format!("credentials: {e}"))?;
        let mut req = http::Request::builder()
            .method(http::Method::GET)
            .uri(url)
            .body(HttpRequestBody::empty())
            .map_err(|e| e.to_string())?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut req, None)
            .map_err(|e| format!("signing: {e}"))?;
        let resp = self.http.execute(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let mut stream = resp.into_body().bytes_stream();
        let mut body = Vec::new();
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
            if body.len() > MAX_PAGE_BYTES {
                return Err(format!("the answer is longer than {MAX_PAGE_BYTES} bytes"));
            }
        }
        Ok((status, body))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> ListVersionsResult {
        quick_xml::de::from_str(xml).unwrap()
    }

    /// An answer as AWS documents it: versions and delete markers interleaved, each key's
    /// newest first; a sibling key (`x.1`) of an exact lookup left out; entities decoded.
    #[test]
    fn the_oldest_version_of_each_key_and_its_later_entries() {
        let page = parse(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>srv/blobs/</Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker>
  <NextKeyMarker>srv/blobs/y&amp;z</NextKeyMarker><NextVersionIdMarker>v9</NextVersionIdMarker>
  <MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
  <Version><Key>srv/blobs/x</Key><VersionId>v3</VersionId><IsLatest>true</IsLatest>
    <LastModified>2026-12-07T10:00:03.000Z</LastModified><ETag>"e"</ETag><Size>4</Size>
    <StorageClass>STANDARD</StorageClass></Version>
  <DeleteMarker><Key>srv/blobs/x</Key><VersionId>v2</VersionId><IsLatest>false</IsLatest>
    <LastModified>2026-12-07T10:00:02.000Z</LastModified></DeleteMarker>
  <Version><Key>srv/blobs/x</Key><VersionId>v1</VersionId><IsLatest>false</IsLatest>
    <LastModified>2026-12-07T10:00:01.000Z</LastModified><ETag>"e"</ETag><Size>7</Size></Version>
  <Version><Key>srv/blobs/x.1</Key><VersionId>w1</VersionId><IsLatest>true</IsLatest><Size>5</Size></Version>
  <Version><Key>srv/blobs/y&amp;z</Key><VersionId>null</VersionId><IsLatest>true</IsLatest><Size>9</Size></Version>
</ListVersionsResult>"#,
        );
        assert!(page.is_truncated);
        assert_eq!(page.next_key_marker.as_deref(), Some("srv/blobs/y&z"));
        let mut all = BTreeMap::new();
        fold_page(&mut all, page, None);
        let x = &all["srv/blobs/x"];
        assert_eq!(x.entries, 3);
        assert_eq!(
            x.oldest,
            Some(Oldest {
                version: Some("v1".into()),
                size: 7
            })
        );
        assert_eq!(all["srv/blobs/x.1"].entries, 1);
        // Unversioned: read plainly.
        assert_eq!(
            all["srv/blobs/y&z"].oldest,
            Some(Oldest {
                version: None,
                size: 9
            })
        );
        let page = parse(
            "<ListVersionsResult><IsTruncated>false</IsTruncated>\
             <Version><Key>srv/blobs/x</Key><VersionId>v1</VersionId><Size>7</Size></Version>\
             <Version><Key>srv/blobs/x.1</Key><VersionId>w1</VersionId><Size>5</Size></Version>\
             </ListVersionsResult>",
        );
        let mut one = BTreeMap::new();
        fold_page(&mut one, page, Some("srv/blobs/x"));
        assert_eq!(one.len(), 1);
        assert_eq!(one["srv/blobs/x"].entries, 1);
        // An empty listing.
        let page =
            parse("<ListVersionsResult><IsTruncated>false</IsTruncated></ListVersionsResult>");
        let mut none = BTreeMap::new();
        fold_page(&mut none, page, None);
        assert!(none.is_empty());
        // Not a listing: an error, not a panic.
        assert!(quick_xml::de::from_str::<ListVersionsResult>("<a><Version>").is_err());
    }

    #[test]
    fn query_values_are_strictly_percent_encoded() {
        assert_eq!(encode("srv/blobs/a b+c~_.-"), "srv%2Fblobs%2Fa%20b%2Bc~_.-");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
