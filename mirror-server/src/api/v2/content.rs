//! Manifests and blobs: bytes from the blob store, served only when the
//! repository holds them.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::TryStreamExt;
use mirror_core::Digest;
use mirror_core::manifest::MAX_MANIFEST_SIZE;
use mirror_core::reference::validate_tag;
use mirror_core::store::{Repository, StoreError};

use super::range::{ByteRange, parse_range};
use crate::error::RegistryError;
use crate::state::AppState;

/// The header that names a manifest's or blob's digest.
pub(super) const DIGEST_HEADER: &str = "docker-content-digest";

/// A response with `status`, `body` and `headers` (values that are not
/// valid header text are left out).
pub(super) fn response(
    status: StatusCode,
    body: Body,
    headers: &[(header::HeaderName, String)],
) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().insert(name.clone(), v);
        }
    }
    resp
}

/// `GET`/`HEAD /v2/<name>/manifests/<tag|digest>`: the stored bytes with
/// their media type and digest.
pub async fn manifest(
    state: &AppState,
    repo: &Repository,
    reference: &str,
    head: bool,
) -> Result<Response, RegistryError> {
    let stores = state.mirror.stores();
    let (digest, media_type, size) = if reference.contains(':') {
        let digest =
            Digest::parse(reference).map_err(|e| RegistryError::digest_invalid(e.to_string()))?;
        let Some(m) = stores.repos.manifest(&repo.name, &digest).await? else {
            return Err(unknown_by_digest(state, repo, reference).await);
        };
        (m.digest, m.media_type, m.size)
    } else {
        // A tag that breaks the grammar can never exist: "not found", as
        // the distribution spec's conformance suite expects (PUT says 400).
        validate_tag(reference).map_err(|_| RegistryError::manifest_unknown(reference))?;
        let t = stores
            .repos
            .tag(&repo.name, reference)
            .await?
            .ok_or_else(|| RegistryError::manifest_unknown(reference))?;
        (t.digest, t.media_type, t.size)
    };
    let body = if head {
        Body::empty()
    } else if let Some(bytes) = state.manifest_bytes.get(&digest) {
        Body::from(bytes)
    } else {
        let bytes = match stores.blobs.read_small(&digest, MAX_MANIFEST_SIZE).await {
            Ok(b) => b,
            Err(StoreError::NotFound { .. }) => {
                return Err(RegistryError::manifest_unknown(reference));
            }
            Err(e) => return Err(e.into()),
        };
        state.manifest_bytes.keep(&digest, &bytes);
        Body::from(bytes)
    };
    Ok(response(
        StatusCode::OK,
        body,
        &[
            (header::CONTENT_TYPE, media_type),
            (header::CONTENT_LENGTH, size.to_string()),
            (
                header::HeaderName::from_static(DIGEST_HEADER),
                digest.to_string(),
            ),
            (header::ETAG, format!("\"{digest}\"")),
        ],
    ))
}

/// The 404 of a manifest by digest: says which platforms are mirrored
/// when the repository's policies copy only some.
async fn unknown_by_digest(state: &AppState, repo: &Repository, reference: &str) -> RegistryError {
    let policies = state
        .mirror
        .stores()
        .policies
        .policies(Some(&repo.name))
        .await
        .unwrap_or_default();
    let mut platforms: Vec<String> = policies
        .iter()
        .flat_map(|p| p.content.platform_names())
        .collect();
    platforms.sort();
    platforms.dedup();
    if platforms.is_empty() {
        RegistryError::manifest_unknown(reference)
    } else {
        RegistryError::platform_not_mirrored(reference, &platforms)
    }
}

/// `GET`/`HEAD /v2/<name>/blobs/<digest>`: streamed from the blob store,
/// with single-range `Range` support.
pub async fn blob(
    state: &AppState,
    repo: &Repository,
    digest: &str,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response, RegistryError> {
    let stores = state.mirror.stores();
    let digest = Digest::parse(digest).map_err(|e| RegistryError::digest_invalid(e.to_string()))?;
    let holds = async || -> Result<bool, StoreError> {
        Ok(stores.repos.has_blob(&repo.name, &digest).await?
            || stores.repos.manifest(&repo.name, &digest).await?.is_some())
    };
    let mut held = holds().await?;
    if head && held {
        // A client that HEADs a blob before a push skips uploading it when
        // told it exists: held for the garbage collection's grace period
        // (and checked again under the hold), so it is still there when
        // the manifest naming it arrives.
        mirror_core::gc::hold(stores.repos.as_ref(), std::slice::from_ref(&digest)).await?;
        held = holds().await?;
    }
    if !held {
        return Err(RegistryError::blob_unknown(&digest.to_string()));
    }
    let size = stores
        .blobs
        .stat(&digest)
        .await?
        .ok_or_else(|| RegistryError::blob_unknown(&digest.to_string()))?;
    let mut fields = vec![
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (
            header::HeaderName::from_static(DIGEST_HEADER),
            digest.to_string(),
        ),
        (header::ETAG, format!("\"{digest}\"")),
        (header::ACCEPT_RANGES, "bytes".to_string()),
    ];
    if head {
        fields.push((header::CONTENT_LENGTH, size.to_string()));
        return Ok(response(StatusCode::OK, Body::empty(), &fields));
    }
    // Authorized and held: the bytes may come from the bucket itself (a
    // `Range` header goes along with the redirect and the bucket honors it).
    if let Some(expires) = state.blob_redirect
        && let Some(url) = stores.blobs.presigned_get(&digest, expires).await
    {
        fields.retain(|(name, _)| *name != header::CONTENT_TYPE);
        fields.push((header::LOCATION, url.to_string()));
        return Ok(response(
            StatusCode::TEMPORARY_REDIRECT,
            Body::empty(),
            &fields,
        ));
    }
    let range = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    );
    let (status, start, len) = match range {
        ByteRange::Full => (StatusCode::OK, 0, size),
        ByteRange::Partial { start, end } => {
            fields.push((header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}")));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        ByteRange::Unsatisfiable => return Err(RegistryError::range_not_satisfiable(size)),
    };
    fields.push((header::CONTENT_LENGTH, len.to_string()));
    let reader = match stores.blobs.reader(&digest, start, Some(len)).await {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => {
            return Err(RegistryError::blob_unknown(&digest.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    let stream = reader.stream.map_err(|e| {
        tracing::error!("reading a blob failed mid-response: {e}");
        std::io::Error::other(e)
    });
    Ok(response(status, Body::from_stream(stream), &fields))
}
