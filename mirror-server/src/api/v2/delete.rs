//! `DELETE` of manifests (by digest: the manifest and every tag on it; by
//! tag: the tag only, as OCI distribution 1.1 allows) and of blobs (the
//! repository's link only).
//!
//! Nothing is removed from the blob store here: blobs are shared between
//! repositories, and a manifest's bytes may be held by another one.
//! Reclaiming unreferenced blobs is a garbage collector's job.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use mirror_core::Digest;
use mirror_core::reference::validate_tag;
use mirror_core::store::Repository;

use super::content::response;
use crate::error::RegistryError;
use crate::state::AppState;

fn accepted() -> Response {
    response(StatusCode::ACCEPTED, Body::empty(), &[])
}

/// `DELETE /v2/<name>/manifests/<digest|tag>` → `202`, done by `actor`
/// (the engine emits `TAG_DELETE` / `MANIFEST_DELETE`).
pub(super) async fn manifest(
    state: &AppState,
    repo: &Repository,
    reference: &str,
    actor: Option<&str>,
) -> Result<Response, RegistryError> {
    let mirror = &state.mirror;
    let deleted = if reference.contains(':') {
        let digest =
            Digest::parse(reference).map_err(|e| RegistryError::digest_invalid(e.to_string()))?;
        mirror.delete_manifest(&repo.name, &digest, actor).await
    } else {
        // A tag that breaks the grammar can never exist: "not found", as
        // the distribution spec's conformance suite expects (PUT says 400).
        validate_tag(reference).map_err(|_| RegistryError::manifest_unknown(reference))?;
        mirror.delete_tag(&repo.name, reference, actor).await
    };
    let deleted = deleted.map_err(|e| match e {
        mirror_core::MirrorError::Store(e) => RegistryError::from(e),
        e => RegistryError::internal(&e),
    })?;
    if !deleted {
        return Err(RegistryError::manifest_unknown(reference));
    }
    tracing::info!(repository = %repo.name, reference, "manifest or tag deleted");
    Ok(accepted())
}

/// `DELETE /v2/<name>/blobs/<digest>` → `202`: the repository no longer
/// holds the blob (manifests that reference it stay, as in distribution).
pub(super) async fn blob(
    state: &AppState,
    repo: &Repository,
    digest: &str,
) -> Result<Response, RegistryError> {
    let digest = Digest::parse(digest).map_err(|e| RegistryError::digest_invalid(e.to_string()))?;
    if !state
        .mirror
        .stores()
        .repos
        .unlink_blob(&repo.name, &digest)
        .await?
    {
        return Err(RegistryError::blob_unknown(&digest.to_string()));
    }
    tracing::info!(repository = %repo.name, %digest, "blob link deleted");
    Ok(accepted())
}
