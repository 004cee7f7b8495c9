//! `PUT /v2/<name>/manifests/<tag|digest>`: a pushed manifest, stored
//! and published by the engine's write path (`Mirror::push_manifest`, which
//! a poll's publishing shares): every blob and child it references must
//! already be held by the repository (`400 MANIFEST_BLOB_UNKNOWN`
//! otherwise), so a tag never points at something missing. This handler
//! only reads the body (at most 4 MiB) and translates HTTP.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use mirror_core::manifest::MAX_MANIFEST_SIZE;
use mirror_core::store::Repository;

use super::Request;
use super::content::{DIGEST_HEADER, response};
use crate::error::RegistryError;

/// `PUT /v2/<name>/manifests/<reference>` → `201` with `Location` and
/// `Docker-Content-Digest` (and `OCI-Subject` when the manifest has one).
pub(super) async fn put_manifest(
    req: &Request<'_>,
    repo: &Repository,
    reference: &str,
    body: Body,
    actor: Option<&str>,
) -> Result<Response, RegistryError> {
    let bytes = read_limited(body).await?;
    let pushed = req
        .state
        .mirror
        .push_manifest(
            &repo.name,
            reference,
            bytes,
            req.header(header::CONTENT_TYPE),
            actor,
        )
        .await?;
    let digest = &pushed.digest;
    tracing::info!(repository = %repo.name, %digest, reference, "manifest pushed");
    let mut headers = vec![
        (
            header::LOCATION,
            format!("/v2/{}/manifests/{digest}", repo.name),
        ),
        (
            header::HeaderName::from_static(DIGEST_HEADER),
            digest.to_string(),
        ),
        (header::CONTENT_LENGTH, "0".to_string()),
    ];
    if let Some(subject) = &pushed.subject {
        headers.push((
            header::HeaderName::from_static("oci-subject"),
            subject.to_string(),
        ));
    }
    Ok(response(StatusCode::CREATED, Body::empty(), &headers))
}

/// The request body, refused with `413` past [`MAX_MANIFEST_SIZE`]
/// (without reading further).
async fn read_limited(body: Body) -> Result<Bytes, RegistryError> {
    let mut out = BytesMut::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            RegistryError::manifest_invalid(format!("reading the manifest failed: {e}"))
        })?;
        if (out.len() + chunk.len()) as u64 > MAX_MANIFEST_SIZE {
            return Err(RegistryError::manifest_too_large(MAX_MANIFEST_SIZE));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}
