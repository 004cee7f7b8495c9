//! `PUT /v2/<name>/manifests/<tag|digest>`: a pushed manifest, checked and
//! published like a mirrored one.
//!
//! The bytes (at most 4 MiB) are parsed with mirror-core's
//! `Manifest::parse`; every blob and child manifest they reference must
//! already be held by the repository (`400 MANIFEST_BLOB_UNKNOWN`
//! otherwise), so a tag never points at something missing. The bytes go
//! into the blob store under their digest, then `RepositoryStore::publish`
//! links the manifest and moves the tag in one transaction.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use mirror_core::manifest::{MAX_MANIFEST_SIZE, ManifestError};
use mirror_core::reference::validate_tag;
use mirror_core::store::{ManifestRecord, Repository, StoreError, TagRecord};
use mirror_core::{Digest, Manifest};

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
) -> Result<Response, RegistryError> {
    let stores = req.state.mirror.stores();
    // By digest, the bytes must hash to it; by tag, the tag must be valid.
    let (wanted, tag) = if reference.contains(':') {
        let d =
            Digest::parse(reference).map_err(|e| RegistryError::digest_invalid(e.to_string()))?;
        (Some(d), None)
    } else {
        validate_tag(reference).map_err(|e| RegistryError::tag_invalid(e.to_string()))?;
        (None, Some(reference))
    };
    let bytes = read_limited(body).await?;
    let manifest =
        Manifest::parse(&bytes, req.header(header::CONTENT_TYPE)).map_err(|e| match e {
            ManifestError::TooLarge { .. } => RegistryError::manifest_too_large(MAX_MANIFEST_SIZE),
            other => RegistryError::manifest_invalid(other.to_string()),
        })?;
    let digest = Digest::of(&bytes);
    if let Some(wanted) = wanted
        && wanted != digest
    {
        return Err(RegistryError::digest_invalid(format!(
            "the manifest's digest is {digest}, not {wanted}"
        )));
    }
    for d in manifest.blobs().into_iter().chain(manifest.children()) {
        if !stores.repos.has_blob(&repo.name, &d.digest).await? {
            return Err(RegistryError::manifest_blob_unknown(&d.digest.to_string()));
        }
    }
    let size = bytes.len() as u64;
    if stores.blobs.stat(&digest).await? != Some(size) {
        stores.blobs.put(bytes, &digest).await?;
    }
    let record = ManifestRecord::from_manifest(digest.clone(), size, &manifest);
    let tags: Vec<TagRecord> = tag
        .map(|t| TagRecord {
            name: t.to_string(),
            digest: digest.clone(),
            media_type: manifest.media_type.clone(),
            size,
            mirrored_by: None,
            mirrored_from: None,
            updated_at: chrono::Utc::now(),
        })
        .into_iter()
        .collect();
    match stores.repos.publish(&repo.name, &[record], &tags).await {
        Err(StoreError::NotFound { .. }) => {
            return Err(RegistryError::name_unknown(repo.name.as_str()));
        }
        other => other?,
    }
    tracing::info!(repository = %repo.name, %digest, tag = tag.unwrap_or(""), "manifest pushed");
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
    if let Some(subject) = &manifest.subject {
        headers.push((
            header::HeaderName::from_static("oci-subject"),
            subject.digest.to_string(),
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
