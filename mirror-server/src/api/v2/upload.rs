//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (a session, a whole blob
//! with `?digest=`, or a cross-repository mount with `?mount=&from=`), and
//! on a session `PATCH` (a chunk), `PUT ?digest=` (the last chunk and the
//! commit), `GET` (how far it is) and `DELETE` (cancel).
//!
//! Bytes go straight from the request body into a mirror-core blob writer
//! (a whole blob) or a part of the session (a chunk), hashed on the way;
//! the commit checks the digest (a mismatch is `400 DIGEST_INVALID` and
//! stores nothing), and only then is the blob linked to the repository.
//! Sessions between requests live in `crate::uploads`, shared by replicas.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use mirror_core::store::{BlobWriter, Repository, StoreError};
use mirror_core::{Digest, RepositoryName};

use super::content::{DIGEST_HEADER, response};
use super::{Request, can_read};
use crate::auth::Caller;
use crate::error::RegistryError;
use crate::state::AppState;
use crate::uploads::UploadError;

const UPLOAD_UUID_HEADER: &str = "docker-upload-uuid";

fn location(repo: &Repository, id: &str) -> String {
    format!("/v2/{}/blobs/uploads/{id}", repo.name)
}

/// The `Range` of an upload holding `written` bytes, as distribution
/// sends it (`0-0` when empty).
fn range(written: u64) -> String {
    format!("0-{}", written.saturating_sub(1))
}

/// An upload's state: `status` with its `Location`, `Range` and ID.
fn progress(status: StatusCode, repo: &Repository, id: &str, written: u64) -> Response {
    response(
        status,
        Body::empty(),
        &[
            (header::LOCATION, location(repo, id)),
            (header::RANGE, range(written)),
            (
                header::HeaderName::from_static(UPLOAD_UUID_HEADER),
                id.to_string(),
            ),
            (header::CONTENT_LENGTH, "0".into()),
        ],
    )
}

/// `201 Created` for a blob now in the repository.
fn created(repo: &Repository, digest: &Digest) -> Response {
    response(
        StatusCode::CREATED,
        Body::empty(),
        &[
            (
                header::LOCATION,
                format!("/v2/{}/blobs/{digest}", repo.name),
            ),
            (
                header::HeaderName::from_static(DIGEST_HEADER),
                digest.to_string(),
            ),
            (header::CONTENT_LENGTH, "0".into()),
        ],
    )
}

fn parse_digest(value: Option<&str>) -> Result<Digest, RegistryError> {
    let value = value.ok_or_else(|| {
        RegistryError::digest_invalid("the digest query parameter is required to finish an upload")
    })?;
    Digest::parse(value).map_err(|e| RegistryError::digest_invalid(e.to_string()))
}

/// Parses `Content-Range: <start>-<end>` (also with distribution's
/// `bytes ` prefix or a `/<total>` suffix).
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let v = value.trim();
    let v = v
        .strip_prefix("bytes")
        .map_or(v, |r| r.trim_start_matches([' ', '=']));
    let v = v.split('/').next()?;
    let (start, end) = v.split_once('-')?;
    let (start, end) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    (start <= end).then_some((start, end))
}

/// Appends the request body to `writer`. A body that breaks off is the
/// client's failure (400); a store failure is the server's.
async fn write_body(writer: &mut dyn BlobWriter, body: Body) -> Result<(), RegistryError> {
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            RegistryError::blob_upload_invalid(format!("reading the request body failed: {e}"))
        })?;
        if !chunk.is_empty() {
            writer.write(chunk).await?;
        }
    }
    Ok(())
}

/// Commits `writer` as `digest` and links the blob to `repo`.
async fn commit(
    state: &AppState,
    repo: &Repository,
    writer: Box<dyn BlobWriter>,
    digest: &Digest,
) -> Result<Response, RegistryError> {
    writer.commit(digest, None).await?;
    link(state, &repo.name, digest).await?;
    tracing::info!(repository = %repo.name, %digest, "blob pushed");
    Ok(created(repo, digest))
}

async fn link(
    state: &AppState,
    repo: &RepositoryName,
    digest: &Digest,
) -> Result<(), RegistryError> {
    match state.mirror.stores().repos.link_blob(repo, digest).await {
        Err(StoreError::NotFound { .. }) => Err(RegistryError::name_unknown(repo.as_str())),
        other => Ok(other?),
    }
}

/// `POST /v2/<name>/blobs/uploads/`.
pub(super) async fn start(
    req: &Request<'_>,
    caller: &Caller,
    repo: &Repository,
    body: Body,
) -> Result<Response, RegistryError> {
    let state = req.state;
    if let Some(mount) = req.query("mount")
        && let Some(resp) = mount_blob(req, caller, repo, mount).await?
    {
        return Ok(resp);
    }
    if req.query("digest").is_some() {
        // Monolithic: the whole blob in this request.
        let digest = parse_digest(req.query("digest"))?;
        let mut writer = state.mirror.stores().blobs.writer().await?;
        if let Err(e) = write_body(writer.as_mut(), body).await {
            let _ = writer.cancel().await;
            return Err(e);
        }
        return commit(state, repo, writer, &digest).await;
    }
    // Pushing needs `read-write`, so the caller is never anonymous here.
    let owner = caller.account().map_or("", |a| a.name.as_str());
    let id = state
        .uploads
        .open(&repo.name, owner)
        .await
        .map_err(|e| upload_error(e, repo))?;
    Ok(progress(StatusCode::ACCEPTED, repo, &id, 0))
}

/// A cross-repository mount: `201` when the caller can read `from` and it
/// holds the blob; `None` (start an upload instead) otherwise.
async fn mount_blob(
    req: &Request<'_>,
    caller: &Caller,
    repo: &Repository,
    mount: &str,
) -> Result<Option<Response>, RegistryError> {
    let state = req.state;
    let digest = Digest::parse(mount).map_err(|e| RegistryError::digest_invalid(e.to_string()))?;
    let Some(from) = req
        .query("from")
        .and_then(|f| RepositoryName::parse(f).ok())
    else {
        return Ok(None);
    };
    let stores = state.mirror.stores();
    // Held before the check, so a garbage collection cannot take the blob
    // between the check and the link (see mirror_core::gc::hold).
    mirror_core::gc::hold(stores.repos.as_ref(), std::slice::from_ref(&digest)).await?;
    if !can_read(state, caller, &from).await?
        || !stores.repos.has_blob(&from, &digest).await?
        || stores.blobs.stat(&digest).await?.is_none()
    {
        return Ok(None);
    }
    link(state, &repo.name, &digest).await?;
    tracing::info!(repository = %repo.name, %digest, %from, "blob mounted");
    Ok(Some(created(repo, &digest)))
}

/// `GET`, `PATCH`, `PUT` and `DELETE` on `/v2/<name>/blobs/uploads/<id>`.
/// Any replica may serve any of them: the session lives in the shared
/// database and blob store (`crate::uploads`).
pub(super) async fn session(
    req: &Request<'_>,
    repo: &Repository,
    id: &str,
    body: Body,
) -> Result<Response, RegistryError> {
    let uploads = &req.state.uploads;
    let session = uploads
        .get(&repo.name, id)
        .await
        .map_err(|e| upload_error(e, repo))?;
    let result = match req.method.as_str() {
        "GET" => Ok(progress(StatusCode::NO_CONTENT, repo, id, session.size())),
        "PATCH" => {
            check_start(req, repo, id, session.size())?;
            let body = body.into_data_stream();
            uploads
                .append(&session, body)
                .await
                .map(|s| progress(StatusCode::ACCEPTED, repo, id, s.size()))
        }
        "PUT" => {
            // Nothing changes when the digest is missing or malformed: the
            // client may retry.
            let digest = parse_digest(req.query("digest"))?;
            check_start(req, repo, id, session.size())?;
            let body = body.into_data_stream();
            match uploads.complete(&session, body, &digest).await {
                Ok(()) => {
                    link(req.state, &repo.name, &digest).await?;
                    tracing::info!(repository = %repo.name, %digest, "blob pushed");
                    Ok(created(repo, &digest))
                }
                Err(e) => Err(e),
            }
        }
        // DELETE: cancel.
        _ => uploads
            .cancel(&repo.name, id)
            .await
            .map(|()| response(StatusCode::NO_CONTENT, Body::empty(), &[])),
    };
    result.map_err(|e| upload_error(e, repo))
}

/// An upload failure as the registry error a client understands.
fn upload_error(e: UploadError, repo: &Repository) -> RegistryError {
    match e {
        UploadError::TooMany(e) => e.into(),
        UploadError::Unknown(id) => RegistryError::blob_upload_unknown(&id),
        UploadError::Moved { id, size } => out_of_order(repo, &id, size, None),
        UploadError::Body(reason) => {
            RegistryError::blob_upload_invalid(format!("reading the request body failed: {reason}"))
        }
        UploadError::Store(e) => e.into(),
        UploadError::Db(e) => RegistryError::internal(&e),
    }
}

/// `416` with the upload's `Location` and `Range`, so the client can
/// resume: the upload holds `size` bytes, the chunk started at `start`
/// (or raced another request).
fn out_of_order(repo: &Repository, id: &str, size: u64, start: Option<u64>) -> RegistryError {
    RegistryError::chunk_out_of_order(size, start.unwrap_or(size))
        .with_header(header::LOCATION, location(repo, id))
        .with_header(header::RANGE, range(size))
        .with_header(
            header::HeaderName::from_static(UPLOAD_UUID_HEADER),
            id.to_string(),
        )
}

/// Checks a `Content-Range` against where the upload stands: `416` with
/// the upload's `Location` and `Range` when the chunk does not start there.
fn check_start(
    req: &Request<'_>,
    repo: &Repository,
    id: &str,
    written: u64,
) -> Result<(), RegistryError> {
    let Some(value) = req.header(header::CONTENT_RANGE) else {
        return Ok(());
    };
    let (start, _) = parse_content_range(value).ok_or_else(|| {
        RegistryError::blob_upload_invalid(format!("Content-Range {value:?} is not <start>-<end>"))
    })?;
    if start != written {
        return Err(out_of_order(repo, id, written, Some(start)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_ranges() {
        let check = |v: &str, expected: Option<(u64, u64)>| {
            assert_eq!(parse_content_range(v), expected, "{v}");
        };
        check("0-99", Some((0, 99)));
        check("100-199", Some((100, 199)));
        check("bytes 0-99/*", Some((0, 99)));
        check("bytes=5-9", Some((5, 9)));
        check(" 7-7 ", Some((7, 7)));
        check("9-5", None);
        check("a-b", None);
        check("10", None);
        check("", None);
    }
}
