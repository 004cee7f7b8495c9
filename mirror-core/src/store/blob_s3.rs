//! [`S3BlobStore`] (feature `s3`): blobs in an S3-compatible bucket, through
//! `object_store`.
//!
//! Keys (`layout::KeyLayout`): `<prefix>/blobs/sha256/<hex>` for committed
//! blobs, content-addressed; `<prefix>/uploads/<uuid>` for multipart uploads
//! being moved into place.
//!
//! A write is hashed as it arrives. A blob that fits in one part
//! ([`S3Options::part_size`]) is held as the received chunks (not copied)
//! and, once its digest and size check, stored with one `PUT` at its final
//! key: S3 makes a `PUT` visible whole or not at all. A larger blob streams
//! as a multipart upload to `uploads/<uuid>`, in parts of exactly
//! `part_size` with at most [`PARTS_IN_FLIGHT`] being sent, so a writer holds
//! at most [`S3BlobStore::writer_memory_bound`] bytes. Its `commit` checks
//! digest and size *before* completing the upload (a mismatch aborts it, and
//! no object is ever created), then completes it, copies the upload object
//! server-side to the final key (above S3's 5 GiB copy limit, a streaming
//! copy, hashed again), and deletes the upload object. A final object that
//! already exists with the same size is kept: same key, same bytes. Canceled
//! and dropped writers abort their multipart upload (a drop spawns the abort).
//!
//! Readers use ranged `GET`s and stream; nothing reads a whole object into
//! memory.
//!
//! Several server replicas may share a bucket, so
//! [`BlobStore::purge_uploads`] only removes upload objects older than
//! [`S3Options::purge_grace`] (24 h by default), never a live one of another
//! replica: an upload object exists from the completion of a multipart upload
//! until it is copied into place (S3 dates a multipart object from the
//! upload's start, so the grace must exceed the longest upload).
//! `object_store` cannot list incomplete multipart uploads (those of a
//! process that crashed mid-write), so give the bucket a lifecycle rule that
//! aborts them (`AbortIncompleteMultipartUpload`, e.g. after one day).
//!
//! Errors name the bucket and key and carry the cause, with the secret key
//! and session token removed.
//!
//! Permissions the credentials need on the prefix: `s3:GetObject`,
//! `s3:PutObject`, `s3:DeleteObject`, `s3:AbortMultipartUpload`, and
//! `s3:ListBucket` (listing uploads to purge them; without it S3 also
//! answers `403` rather than `404` for an absent blob).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{
    ClientConfigKey, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload,
    WriteMultipart,
};

use super::blob_fs::{clamp_range, verify_written};
use super::layout::KeyLayout;
use super::parts::{PARTS_KEPT, check_upload_id};
use super::{
    BlobEntry, BlobListing, BlobReader, BlobStore, BlobWriter, ByteStream, PartWriter, StoreError,
};
use crate::digest::{Digest, Hasher};
use crate::error::error_chain;
use crate::secret::Secret;

/// Default size of a multipart upload's parts, and the largest blob stored
/// with a single `PUT`: S3's smallest, so a copy writing several layers at
/// once stays within a small memory budget (three writers: 30 MiB).
pub const DEFAULT_PART_SIZE: usize = MIN_PART_SIZE;
/// S3's smallest part (but the last); S3-compatible servers enforce it too.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// S3's largest part.
const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;
/// Parts of one writer being sent at once (while it fills the next one).
/// Several blobs of a copy are written at once, so one part each keeps the
/// connection busy without multiplying memory.
pub const PARTS_IN_FLIGHT: usize = 1;
/// Default age below which [`BlobStore::purge_uploads`] leaves an upload
/// object alone.
pub const DEFAULT_PURGE_GRACE: Duration = Duration::from_secs(24 * 3600);
/// The largest object S3 copies in one `CopyObject` request.
pub const SERVER_COPY_LIMIT: u64 = 5 * 1024 * 1024 * 1024;
/// The longest validity of a presigned URL (SigV4's limit).
pub const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);
/// A request fails when S3 sends nothing for this long (answer headers
/// included: a part upload or copy that stalls), and a read stream resumes.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest error message kept from S3 (its answers can carry long bodies).
const MAX_ERROR_MESSAGE: usize = 2000;

/// Settings of an [`S3BlobStore`]. Unset connection settings come from the
/// standard AWS environment variables (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, ...); the fields set here override
/// them.
///
/// ```
/// let o = mirror_core::store::S3Options::from_url("s3://images/regmirror").unwrap();
/// assert_eq!((o.bucket.as_str(), o.prefix.as_str()), ("images", "regmirror"));
/// ```
#[derive(Debug, Clone)]
pub struct S3Options {
    /// The bucket.
    pub bucket: String,
    /// Key prefix of every object of the store, without leading or trailing
    /// `/` (empty: the bucket's root).
    pub prefix: String,
    /// The S3 endpoint URL, for S3-compatible servers (default: AWS, or
    /// `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// The region (default: `AWS_REGION`, else `us-east-1`).
    pub region: Option<String>,
    /// Allow a plain-HTTP endpoint (also `AWS_ALLOW_HTTP=true`).
    pub allow_http: bool,
    /// Access key ID (an identifier, not a secret).
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
    /// Session token of temporary credentials.
    pub session_token: Option<Secret>,
    /// Address the bucket as `https://<bucket>.<endpoint>` rather than
    /// `https://<endpoint>/<bucket>`.
    pub virtual_hosted_style: bool,
    /// Multipart part size, at least [`MIN_PART_SIZE`]; blobs up to it are
    /// stored with one `PUT`. A writer holds at most
    /// `(PARTS_IN_FLIGHT + 1) × part_size` bytes, and S3 allows 10,000 parts
    /// (80 GB blobs with the default).
    pub part_size: usize,
    /// [`BlobStore::purge_uploads`] spares upload objects younger than this.
    pub purge_grace: Duration,
    /// Larger blobs are moved into place by a streaming copy rather than a
    /// server-side `CopyObject` (default: S3's limit, [`SERVER_COPY_LIMIT`]).
    pub server_copy_limit: u64,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            bucket: String::new(),
            prefix: String::new(),
            endpoint: None,
            region: None,
            allow_http: false,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            virtual_hosted_style: false,
            part_size: DEFAULT_PART_SIZE,
            purge_grace: DEFAULT_PURGE_GRACE,
            server_copy_limit: SERVER_COPY_LIMIT,
        }
    }
}

/// An invalid [`S3Options`] setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid S3 blob store setting `{field}`: {reason}")]
pub struct S3ConfigError {
    /// The setting ([`S3Options`]'s field name, or `url`).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn config_error(field: &'static str, reason: impl Into<String>) -> S3ConfigError {
    S3ConfigError {
        field,
        reason: reason.into(),
    }
}

impl S3Options {
    /// The options of `s3://bucket` or `s3://bucket/prefix` (other settings
    /// at their defaults). Credentials never go in the URL.
    pub fn from_url(url: &str) -> Result<Self, S3ConfigError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| config_error("url", "expected s3://bucket or s3://bucket/prefix"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.contains('@') {
            // Not echoed: it holds credentials.
            return Err(config_error(
                "url",
                "credentials do not go in the URL; use AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY or the credential settings",
            ));
        }
        if rest.contains(['?', '#']) {
            return Err(config_error(
                "url",
                "an s3:// URL has no query or fragment; the endpoint and region are settings of their own",
            ));
        }
        let options = S3Options {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            ..Default::default()
        };
        options.validate()?;
        Ok(options)
    }

    /// Checks the bucket name, prefix, endpoint and part size.
    pub fn validate(&self) -> Result<(), S3ConfigError> {
        let b = &self.bucket;
        if b.is_empty() {
            return Err(config_error("bucket", "missing (s3://BUCKET/prefix)"));
        }
        if !(3..=63).contains(&b.len())
            || !b
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
            || !b.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !b.ends_with(|c: char| c.is_ascii_alphanumeric())
        {
            return Err(config_error(
                "bucket",
                format!(
                    "{b:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, dots \
                     and hyphens, starting and ending with a letter or digit)"
                ),
            ));
        }
        let p = &self.prefix;
        if p.starts_with('/') || p.ends_with('/') {
            return Err(config_error(
                "prefix",
                format!("{p:?} must not start or end with '/'"),
            ));
        }
        let safe = |c: char| c.is_ascii_alphanumeric() || "!-_.*'()".contains(c);
        if !p.is_empty()
            && p.split('/')
                .any(|s| s.is_empty() || s == "." || s == ".." || !s.chars().all(safe))
        {
            return Err(config_error(
                "prefix",
                format!(
                    "{p:?}: each '/'-separated part must be non-empty, not '.' or '..', and \
                     only letters, digits and !-_.*'()"
                ),
            ));
        }
        if let Some(e) = &self.endpoint {
            check_endpoint(e)?;
        }
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(config_error(
                "part_size",
                format!(
                    "{} bytes; S3 parts are {MIN_PART_SIZE} to {MAX_PART_SIZE} bytes",
                    self.part_size
                ),
            ));
        }
        Ok(())
    }
}

/// An endpoint is an `http(s)://host[:port][/path]` URL without credentials.
fn check_endpoint(endpoint: &str) -> Result<(), S3ConfigError> {
    let url = url::Url::parse(endpoint)
        .map_err(|e| config_error("endpoint", format!("not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config_error(
            "endpoint",
            "credentials do not go in the endpoint URL",
        ));
    }
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(config_error(
            "endpoint",
            format!("{endpoint:?} is not an http:// or https:// URL with a host"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config_error(
            "endpoint",
            format!("{endpoint:?} has a query or fragment"),
        ));
    }
    Ok(())
}

/// Content-addressed blobs in an S3-compatible bucket; see the module
/// documentation for how writes become visible.
#[derive(Clone)]
pub struct S3BlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    s3: AmazonS3,
    bucket: String,
    keys: KeyLayout,
    part_size: usize,
    purge_grace: Duration,
    server_copy_limit: u64,
    /// The secret key and session token in force, removed from every error
    /// message (S3 answers can echo a request's signed headers).
    secrets: Vec<Secret>,
}

/// Bucket, keys and part size only: no credential.
impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = &self.inner;
        write!(
            f,
            "S3BlobStore {{ bucket: {:?}, keys: {:?}, part_size: {} }}",
            i.bucket, i.keys, i.part_size
        )
    }
}

fn env_bool(value: Option<String>) -> bool {
    value.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
}

impl S3BlobStore {
    /// A store on `options` (with the AWS environment variables for what
    /// they leave unset). Sends no request: a wrong endpoint or credentials
    /// show at the first operation.
    pub fn new(options: &S3Options) -> Result<Self, S3ConfigError> {
        options.validate()?;
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&options.bucket)
            .with_virtual_hosted_style_request(options.virtual_hosted_style);
        if let Some(endpoint) = &options.endpoint {
            b = b.with_endpoint(endpoint);
        }
        if let Some(region) = &options.region {
            b = b.with_region(region);
        }
        if let Some(id) = &options.access_key_id {
            b = b.with_access_key_id(id);
        }
        if let Some(secret) = &options.secret_access_key {
            b = b.with_secret_access_key(secret.expose());
        }
        if let Some(token) = &options.session_token {
            b = b.with_token(token.expose());
        }
        let allow_http = options.allow_http
            || env_bool(b.get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp)));
        if let Some(endpoint) = b.get_config_value(&AmazonS3ConfigKey::Endpoint) {
            check_endpoint(&endpoint)?;
            if endpoint.starts_with("http://") && !allow_http {
                return Err(config_error(
                    "allow_http",
                    format!(
                        "the endpoint {endpoint:?} is plain HTTP: set allow_http (or \
                         AWS_ALLOW_HTTP=true) to send requests unencrypted"
                    ),
                ));
            }
        }
        // No total time limit (a blob streams for as long as its reader
        // reads), but a limit on silence.
        b = b.with_client_options(
            ClientOptions::new()
                .with_allow_http(allow_http)
                .with_timeout_disabled()
                .with_read_timeout(IDLE_TIMEOUT),
        );
        let secrets: Vec<Secret> = [AmazonS3ConfigKey::SecretAccessKey, AmazonS3ConfigKey::Token]
            .iter()
            .filter_map(|k| b.get_config_value(k))
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .collect();
        let s3 = b
            .build()
            .map_err(|e| config_error("options", redact(&secrets, &error_chain(&e))))?;
        Ok(S3BlobStore {
            inner: Arc::new(Inner {
                s3,
                bucket: options.bucket.clone(),
                keys: KeyLayout::new(&options.prefix),
                part_size: options.part_size,
                purge_grace: options.purge_grace,
                server_copy_limit: options.server_copy_limit,
                secrets,
            }),
        })
    }

    /// The most bytes a writer of this store holds: the part it is filling
    /// and [`PARTS_IN_FLIGHT`] parts being sent. Chunks are not copied, so
    /// add the rest of a written chunk that straddles the oldest part's
    /// start (its allocation lives as long as any part of it).
    pub fn writer_memory_bound(&self) -> u64 {
        ((PARTS_IN_FLIGHT + 1) * self.inner.part_size) as u64
    }
}

/// `msg` without any of `secrets`, and cut to a readable length.
fn redact(secrets: &[Secret], msg: &str) -> String {
    let mut msg = msg.to_string();
    for s in secrets {
        msg = msg.replace(s.expose(), "***");
    }
    if msg.len() > MAX_ERROR_MESSAGE {
        let mut end = MAX_ERROR_MESSAGE;
        while !msg.is_char_boundary(end) {
            end -= 1;
        }
        msg.truncate(end);
        msg.push_str("...");
    }
    msg
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

fn blob_not_found(digest: &Digest) -> StoreError {
    StoreError::NotFound {
        what: format!("blob {digest}"),
    }
}

impl Inner {
    fn blob_key(&self, digest: &Digest) -> Path {
        Path::from(self.keys.blob(digest))
    }

    /// The key of part `part` of `upload`, both checked.
    fn part_key(&self, upload: &str, part: &str) -> Result<Path, StoreError> {
        check_upload_id(upload)?;
        check_upload_id(part)?;
        Ok(Path::from(format!(
            "{}/{part}",
            self.keys.upload_parts(upload)
        )))
    }

    /// Deletes the objects under `dir` last modified longer than `age`
    /// ago (all of them for `None`); returns how many.
    async fn delete_older(&self, dir: &Path, age: Option<Duration>) -> Result<usize, StoreError> {
        let cutoff = match age {
            None => None,
            Some(age) => match chrono::Duration::from_std(age)
                .ok()
                .and_then(|age| chrono::Utc::now().checked_sub_signed(age))
            {
                Some(cutoff) => Some(cutoff),
                None => return Ok(0), // an age longer than time itself
            },
        };
        let mut listing = self.s3.list(Some(dir));
        let mut removed = 0;
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.error("listing", dir, e))?;
            if cutoff.is_some_and(|cutoff| meta.last_modified > cutoff) {
                continue;
            }
            match self.s3.delete(&meta.location).await {
                Ok(()) => removed += 1,
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(self.error("DELETE", &meta.location, e)),
            }
        }
        Ok(removed)
    }

    /// A failed request on `key`, named with the bucket, with its cause.
    fn error(&self, doing: &str, key: &Path, e: object_store::Error) -> StoreError {
        use object_store::Error as E;
        let kind = match &e {
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
                std::io::ErrorKind::PermissionDenied
            }
            E::NotFound { .. } => std::io::ErrorKind::NotFound,
            _ => std::io::ErrorKind::Other,
        };
        let msg = redact(&self.secrets, &error_chain(&e));
        StoreError::io(
            format!("S3 {doing} s3://{}/{key}", self.bucket),
            std::io::Error::new(kind, msg),
        )
    }

    /// The size of the object at `key`, `None` if absent.
    async fn size(&self, key: &Path) -> Result<Option<u64>, StoreError> {
        match self.s3.head(key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.error("HEAD", key, e)),
        }
    }

    /// A reader of no bytes of blob `digest` at `offset` (clamped).
    async fn empty_reader(
        &self,
        digest: &Digest,
        key: &Path,
        offset: u64,
    ) -> Result<BlobReader, StoreError> {
        let size = self
            .size(key)
            .await?
            .ok_or_else(|| blob_not_found(digest))?;
        let (offset, length) = clamp_range(size, offset, Some(0));
        Ok(BlobReader {
            size,
            offset,
            length,
            stream: Box::pin(futures_util::stream::empty()),
        })
    }

    /// Makes the verified upload object `upload` (`size` bytes of `digest`)
    /// visible at its final key.
    async fn place(&self, upload: &Path, digest: &Digest, size: u64) -> Result<(), StoreError> {
        let to = self.blob_key(digest);
        if self.size(&to).await? == Some(size) {
            // Content-addressed: the same bytes are already there.
            return Ok(());
        }
        if size <= self.server_copy_limit {
            return self
                .s3
                .copy(upload, &to)
                .await
                .map_err(|e| self.error(&format!("copying {upload} to"), &to, e));
        }
        // Too large for one CopyObject: stream it through a multipart
        // upload at the final key (visible only when completed), hashing
        // it again on the way.
        let got = self
            .s3
            .get(upload)
            .await
            .map_err(|e| self.error("GET", upload, e))?;
        let mut parts = Parts::start(self, to).await?;
        let mut hasher = Hasher::new();
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let sent = match chunk {
                Ok(chunk) => {
                    hasher.update(&chunk);
                    parts.send(self, chunk).await
                }
                Err(e) => Err(self.error("reading", upload, e)),
            };
            if let Err(e) = sent {
                parts.abort(self).await;
                return Err(e);
            }
        }
        if let Err(e) = verify_written(hasher, digest, Some(size)) {
            parts.abort(self).await;
            return Err(e);
        }
        parts.finish(self).await
    }
}

/// A multipart upload being sent: parts of exactly `part_size`, at most
/// [`PARTS_IN_FLIGHT`] in flight when `send` returns.
struct Parts {
    key: Path,
    parts: WriteMultipart,
}

impl Parts {
    async fn start(inner: &Inner, key: Path) -> Result<Self, StoreError> {
        let upload = inner
            .s3
            .put_multipart(&key)
            .await
            .map_err(|e| inner.error("starting a multipart upload to", &key, e))?;
        Ok(Parts {
            key,
            parts: WriteMultipart::new_with_chunk_size(upload, inner.part_size),
        })
    }

    /// Adds `chunk` (split at part boundaries, not copied) and waits until
    /// at most [`PARTS_IN_FLIGHT`] parts are being sent.
    async fn send(&mut self, inner: &Inner, chunk: Bytes) -> Result<(), StoreError> {
        self.parts.put(chunk);
        self.parts
            .wait_for_capacity(PARTS_IN_FLIGHT + 1)
            .await
            .map_err(|e| inner.error("uploading a part of", &self.key, e))
    }

    /// Sends the last part and completes the upload (aborted on failure).
    async fn finish(self, inner: &Inner) -> Result<(), StoreError> {
        self.parts
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| inner.error("completing the multipart upload of", &self.key, e))
    }

    /// Aborts the upload; S3 then drops its parts.
    async fn abort(self, inner: &Inner) {
        if let Err(e) = self.parts.abort().await {
            tracing::warn!(error = %inner.error("aborting the multipart upload of", &self.key, e), "multipart upload left behind");
        }
    }
}

/// What [`BlobStore::reader`] answers.
type Opened = Result<BlobReader, StoreError>;

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        self.inner.size(&self.inner.blob_key(digest)).await
    }

    /// A URL that lets its holder `GET` the committed blob `digest` straight
    /// from the bucket for `expires` (at most [`MAX_PRESIGN`]), for a `307`
    /// redirect of a blob `GET`; `None` (logged) when it cannot be signed.
    /// The URL names the endpoint this store uses, which the client must be
    /// able to reach. The blob's presence is not checked. The URL is a
    /// credential until it expires (with temporary credentials it carries
    /// the session token, as SigV4 requires): hand it to the client only,
    /// never log it.
    async fn presigned_get(&self, digest: &Digest, expires: Duration) -> Option<url::Url> {
        use object_store::signer::{Method, Signer};
        let key = self.inner.blob_key(digest);
        match self
            .inner
            .s3
            .signed_url(Method::GET, &key, expires.min(MAX_PRESIGN))
            .await
        {
            Ok(url) => Some(url),
            Err(e) => {
                tracing::warn!(error = %self.inner.error("presigning a GET of", &key, e), "no presigned URL");
                None
            }
        }
    }

    async fn writer(&self) -> Result<Box<dyn BlobWriter>, StoreError> {
        Ok(Box::new(S3BlobWriter {
            inner: self.inner.clone(),
            part_key: None,
            hasher: Hasher::new(),
            pending: Vec::new(),
            pending_len: 0,
            upload: None,
            failed: false,
        }))
    }

    async fn reader(&self, digest: &Digest, offset: u64, length: Option<u64>) -> Opened {
        let inner = &self.inner;
        let key = inner.blob_key(digest);
        let range = match (offset, length) {
            (_, Some(0)) => return inner.empty_reader(digest, &key, offset).await,
            (0, None) => None,
            (o, None) => Some(GetRange::Offset(o)),
            (o, Some(n)) => Some(GetRange::Bounded(o..o.saturating_add(n))),
        };
        let ranged = range.is_some();
        let got = match inner
            .s3
            .get_opts(&key, GetOptions::new().with_range(range))
            .await
        {
            Ok(got) => got,
            Err(e) if is_not_found(&e) => return Err(blob_not_found(digest)),
            Err(e) => {
                // S3 refuses (416) a range that starts at or past the end;
                // like the filesystem store, serve no bytes then.
                if ranged
                    && let Ok(r) = inner.empty_reader(digest, &key, offset).await
                    && offset >= r.size
                {
                    return Ok(r);
                }
                return Err(inner.error("GET", &key, e));
            }
        };
        let size = got.meta.size;
        let (start, end) = (got.range.start, got.range.end);
        let inner = inner.clone();
        let stream = got
            .into_stream()
            .map(move |r| r.map_err(|e| inner.error("reading", &key, e)));
        Ok(BlobReader {
            size,
            offset: start,
            length: end - start,
            stream: Box::pin(stream),
        })
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        let key = self.inner.blob_key(digest);
        match self.inner.s3.delete(&key).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(self.inner.error("DELETE", &key, e)),
        }
    }

    /// One `LIST` page at a time under `<prefix>/blobs/sha256/`.
    fn list(&self) -> BlobListing {
        let inner = self.inner.clone();
        let dir = Path::from(inner.keys.blobs_dir());
        let listing = inner.s3.list(Some(&dir));
        Box::pin(listing.filter_map(move |meta| {
            let inner = inner.clone();
            let dir = dir.clone();
            async move {
                let meta = match meta {
                    Ok(m) => m,
                    Err(e) => return Some(Err(inner.error("listing", &dir, e))),
                };
                let hex = meta.location.filename()?;
                let digest = Digest::parse(&format!("sha256:{hex}")).ok()?;
                Some(Ok(BlobEntry {
                    digest,
                    size: meta.size,
                    modified: meta.last_modified,
                }))
            }
        }))
    }

    /// Removes upload objects older than [`S3Options::purge_grace`], and
    /// parts of chunked uploads older than [`PARTS_KEPT`] (only those:
    /// other replicas may be writing to the same bucket).
    async fn purge_uploads(&self) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let uploads = Path::from(inner.keys.uploads_dir());
        let parts = Path::from(inner.keys.parts_dir());
        Ok(inner
            .delete_older(&uploads, Some(inner.purge_grace))
            .await?
            + inner.delete_older(&parts, Some(PARTS_KEPT)).await?)
    }

    async fn part_writer(
        &self,
        upload: &str,
        hasher: Hasher,
    ) -> Result<Box<dyn PartWriter>, StoreError> {
        let name = uuid::Uuid::new_v4().to_string();
        let key = self.inner.part_key(upload, &name)?;
        Ok(Box::new(S3PartWriter {
            start: hasher.len(),
            writer: S3BlobWriter {
                inner: self.inner.clone(),
                part_key: Some(key),
                hasher,
                pending: Vec::new(),
                pending_len: 0,
                upload: None,
                failed: false,
            },
            name,
        }))
    }

    async fn part_reader(
        &self,
        upload: &str,
        part: &str,
    ) -> Result<ByteStream<StoreError>, StoreError> {
        let inner = self.inner.clone();
        let key = inner.part_key(upload, part)?;
        let got = match inner.s3.get(&key).await {
            Ok(got) => got,
            Err(e) if is_not_found(&e) => {
                return Err(StoreError::NotFound {
                    what: format!("part {part} of upload {upload}"),
                });
            }
            Err(e) => return Err(inner.error("GET", &key, e)),
        };
        let stream = got
            .into_stream()
            .map(move |r| r.map_err(|e| inner.error("reading", &key, e)));
        Ok(Box::pin(stream))
    }

    async fn place_part(
        &self,
        upload: &str,
        part: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        let key = inner.part_key(upload, part)?;
        match inner.size(&key).await? {
            None => Err(StoreError::NotFound {
                what: format!("part {part} of upload {upload}"),
            }),
            Some(actual) if actual != size => Err(StoreError::Corrupt {
                reason: format!(
                    "part {part} of upload {upload} holds {actual} bytes, its upload says {size}"
                ),
            }),
            Some(_) => inner.place(&key, digest, size).await,
        }
    }

    async fn delete_parts(&self, upload: &str) -> Result<(), StoreError> {
        check_upload_id(upload)?;
        let inner = &self.inner;
        let dir = Path::from(inner.keys.upload_parts(upload));
        inner.delete_older(&dir, None).await.map(|_| ())
    }
}

/// A part of a chunked upload: an [`S3BlobWriter`] to the part's key whose
/// `finish` completes the write there instead of verifying and placing.
struct S3PartWriter {
    writer: S3BlobWriter,
    /// What the hasher had seen before this part.
    start: u64,
    name: String,
}

#[async_trait]
impl PartWriter for S3PartWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        BlobWriter::write(&mut self.writer, chunk).await
    }

    fn written(&self) -> u64 {
        self.writer.hasher.len() - self.start
    }

    async fn finish(mut self: Box<Self>) -> Result<(String, Hasher), StoreError> {
        let w = &mut self.writer;
        if w.failed {
            w.discard().await;
            return Err(used_after_failure());
        }
        let inner = w.inner.clone();
        match w.upload.take() {
            Some(parts) => parts.finish(&inner).await?,
            None => {
                let key = w.part_key.clone().expect("a part writer has its key");
                let payload: PutPayload = std::mem::take(&mut w.pending).into_iter().collect();
                inner
                    .s3
                    .put(&key, payload)
                    .await
                    .map_err(|e| inner.error("PUT", &key, e))?;
            }
        }
        let hasher = std::mem::take(&mut w.hasher);
        Ok((std::mem::take(&mut self.name), hasher))
    }
}

struct S3BlobWriter {
    inner: Arc<Inner>,
    /// Where a part of a chunked upload goes; `None` for a blob (whose
    /// multipart upload gets a fresh upload key).
    part_key: Option<Path>,
    hasher: Hasher,
    /// The blob while it fits in one part: the received chunks, unsent.
    pending: Vec<Bytes>,
    pending_len: usize,
    /// The multipart upload, once the blob outgrew one part.
    upload: Option<Parts>,
    /// A write failed, so the upload misses bytes: commit refuses it.
    failed: bool,
}

impl S3BlobWriter {
    async fn send(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        let inner = &self.inner;
        if let Some(parts) = &mut self.upload {
            return parts.send(inner, chunk).await;
        }
        self.pending_len += chunk.len();
        self.pending.push(chunk);
        if self.pending_len <= inner.part_size {
            return Ok(());
        }
        let key = match &self.part_key {
            Some(key) => key.clone(),
            None => Path::from(inner.keys.upload(&uuid::Uuid::new_v4().to_string())),
        };
        let parts = self.upload.insert(Parts::start(inner, key).await?);
        self.pending_len = 0;
        for chunk in std::mem::take(&mut self.pending) {
            parts.send(inner, chunk).await?;
        }
        Ok(())
    }

    /// Aborts the multipart upload, if one was started.
    async fn discard(&mut self) {
        self.pending.clear();
        if let Some(parts) = self.upload.take() {
            parts.abort(&self.inner).await;
        }
    }
}

#[async_trait]
impl BlobWriter for S3BlobWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        if self.failed {
            return Err(used_after_failure());
        }
        if chunk.is_empty() {
            return Ok(());
        }
        self.hasher.update(&chunk);
        let sent = self.send(chunk).await;
        self.failed = sent.is_err();
        sent
    }

    fn written(&self) -> u64 {
        self.hasher.len()
    }

    async fn commit(
        mut self: Box<Self>,
        expected: &Digest,
        size: Option<u64>,
    ) -> Result<(), StoreError> {
        if self.failed {
            self.discard().await;
            return Err(used_after_failure());
        }
        let hasher = std::mem::take(&mut self.hasher);
        let written = hasher.len();
        if let Err(e) = verify_written(hasher, expected, size) {
            self.discard().await;
            return Err(e);
        }
        let inner = self.inner.clone();
        let Some(parts) = self.upload.take() else {
            // Verified in memory: one PUT makes it visible, whole.
            let key = inner.blob_key(expected);
            let payload: PutPayload = std::mem::take(&mut self.pending).into_iter().collect();
            return inner
                .s3
                .put(&key, payload)
                .await
                .map(|_| ())
                .map_err(|e| inner.error("PUT", &key, e));
        };
        let upload = parts.key.clone();
        let placed = match parts.finish(&inner).await {
            Ok(()) => inner.place(&upload, expected, written).await,
            Err(e) => Err(e),
        };
        // Placed or not, the upload object has served (if it exists at all).
        match inner.s3.delete(&upload).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => tracing::warn!(
                error = %inner.error("DELETE", &upload, e),
                "upload object left for purge_uploads"
            ),
        }
        placed
    }

    async fn cancel(mut self: Box<Self>) -> Result<(), StoreError> {
        self.discard().await;
        Ok(())
    }
}

fn used_after_failure() -> StoreError {
    StoreError::Corrupt {
        reason: "blob writer used after a failed write".into(),
    }
}

impl Drop for S3BlobWriter {
    fn drop(&mut self) {
        // Dropped without commit or cancel: abort the multipart upload in
        // the background (without a runtime, the bucket's lifecycle rule
        // aborts it).
        if let Some(parts) = self.upload.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let inner = self.inner.clone();
            rt.spawn(async move { parts.abort(&inner).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> S3BlobStore {
        S3BlobStore::new(&S3Options {
            bucket: "images".into(),
            prefix: "team/regmirror".into(),
            endpoint: Some("http://127.0.0.1:9".into()),
            region: Some("eu-west-1".into()),
            allow_http: true,
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some(Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")),
            session_token: Some(Secret::new("session-token-value")),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn urls_parse_and_name_the_field_they_reject() {
        let o = S3Options::from_url("s3://images").unwrap();
        assert_eq!((o.bucket.as_str(), o.prefix.as_str()), ("images", ""));
        let o = S3Options::from_url("s3://images/a/b/").unwrap();
        assert_eq!(o.prefix, "a/b");
        let field = |url: &str| S3Options::from_url(url).unwrap_err().field;
        assert_eq!(field("https://images/a"), "url");
        assert_eq!(field("s3://"), "bucket");
        assert_eq!(field("s3:///prefix"), "bucket");
        assert_eq!(field("s3://Images"), "bucket");
        assert_eq!(field("s3://ab"), "bucket");
        assert_eq!(field("s3://images:9000/x"), "bucket");
        assert_eq!(field("s3://images/a//b"), "prefix");
        assert_eq!(field("s3://images/a/../b"), "prefix");
        assert_eq!(field("s3://images/a b"), "prefix");
        assert_eq!(field("s3://images/a?x=1"), "url");
        let e = S3Options::from_url("s3://AKID:hunter2@images/x").unwrap_err();
        assert_eq!(e.field, "url");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn options_are_checked() {
        let ok = S3Options {
            bucket: "images".into(),
            ..Default::default()
        };
        let field = |o: S3Options| S3BlobStore::new(&o).unwrap_err().field;
        assert_eq!(
            field(S3Options {
                part_size: MIN_PART_SIZE - 1,
                ..ok.clone()
            }),
            "part_size"
        );
        assert_eq!(
            field(S3Options {
                endpoint: Some("ftp://host".into()),
                ..ok.clone()
            }),
            "endpoint"
        );
        let e = S3BlobStore::new(&S3Options {
            endpoint: Some("http://user:pw@host".into()),
            ..ok.clone()
        })
        .unwrap_err();
        assert_eq!(e.field, "endpoint");
        assert!(!e.to_string().contains("pw"), "{e}");
        assert_eq!(
            field(S3Options {
                endpoint: Some("http://127.0.0.1:9000".into()),
                ..ok.clone()
            }),
            "allow_http"
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let o = S3Options {
            secret_access_key: Some(Secret::new("hunter2")),
            session_token: Some(Secret::new("tok3n")),
            ..Default::default()
        };
        let shown = format!("{o:?} {:?}", store());
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok3n"),
            "{shown}"
        );
        assert!(!shown.contains("EXAMPLEKEY"), "{shown}");
    }

    #[test]
    fn errors_name_bucket_and_key_without_secrets() {
        let s = store();
        let key = s.inner.blob_key(&Digest::of(b"x"));
        let e = s.inner.error(
            "GET",
            &key,
            object_store::Error::Generic {
                store: "S3",
                source: "SignatureDoesNotMatch: x-amz-security-token:session-token-value \
                         secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
                    .into(),
            },
        );
        let msg = e.to_string();
        assert!(
            msg.contains(&format!(
                "s3://images/team/regmirror/blobs/sha256/{}",
                Digest::of(b"x").hex()
            )),
            "{msg}"
        );
        assert!(msg.contains("SignatureDoesNotMatch"), "{msg}");
        assert!(
            !msg.contains("session-token-value") && !msg.contains("EXAMPLEKEY"),
            "{msg}"
        );
        let long = redact(&[], &"é".repeat(MAX_ERROR_MESSAGE));
        assert!(long.len() <= MAX_ERROR_MESSAGE + 3);
    }

    #[tokio::test]
    async fn presigned_get_names_the_blob_key_and_expiry() {
        let s = store();
        let d = Digest::of(b"layer");
        let url = s
            .presigned_get(&d, Duration::from_secs(600))
            .await
            .expect("a presigned URL");
        assert_eq!(
            url.path(),
            format!("/images/team/regmirror/blobs/sha256/{}", d.hex())
        );
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["X-Amz-Expires"], "600");
        assert!(query["X-Amz-Credential"].starts_with("AKIDEXAMPLE/"));
        assert!(query.contains_key("X-Amz-Signature"));
        assert!(!url.as_str().contains("EXAMPLEKEY"), "{url}");
        let week = s
            .presigned_get(&d, Duration::from_secs(30 * 24 * 3600))
            .await
            .unwrap();
        let query: std::collections::HashMap<_, _> = week.query_pairs().into_owned().collect();
        assert_eq!(query["X-Amz-Expires"], MAX_PRESIGN.as_secs().to_string());
    }
}
