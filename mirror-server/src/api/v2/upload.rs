//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (a session, a whole blob
//! with `?digest=`, or a cross-repository mount with `?mount=&from=`), and
//! on a session `PATCH` (a chunk), `PUT ?digest=` (the last chunk and the
//! commit), `GET` (how far it is) and `DELETE` (cancel).
//!
//! Bytes go straight from the request body into a mirror-core blob writer,
//! which hashes them; the commit checks the digest (a mismatch is `400
//! DIGEST_INVALID` and stores nothing), and only then is the blob linked to
//! the repository. Sessions between requests live in `crate::uploads`.

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
use crate::uploads::Session;

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
    let mut writer = state.mirror.stores().blobs.writer().await?;
    if req.query("digest").is_some() {
        // Monolithic: the whole blob in this request.
        let digest = parse_digest(req.query("digest"))?;
        if let Err(e) = write_body(writer.as_mut(), body).await {
            let _ = writer.cancel().await;
            return Err(e);
        }
        return commit(state, repo, writer, &digest).await;
    }
    // Pushing needs `read-write`, so the caller is never anonymous here.
    let owner = caller.account().map_or("", |a| a.name.as_str());
    let id = state.uploads.open(repo.name.clone(), owner, writer).await?;
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
pub(super) async fn session(
    req: &Request<'_>,
    repo: &Repository,
    id: &str,
    body: Body,
) -> Result<Response, RegistryError> {
    let uploads = &req.state.uploads;
    let handle = uploads
        .get(id)
        .ok_or_else(|| RegistryError::blob_upload_unknown(id))?;
    // Requests on one session wait for each other here.
    let mut session = handle.lock().await;
    if session.repo != repo.name || session.writer.is_none() {
        return Err(RegistryError::blob_upload_unknown(id));
    }
    let result = match req.method.as_str() {
        "GET" => Ok(progress(
            StatusCode::NO_CONTENT,
            repo,
            id,
            written(&session),
        )),
        "PATCH" => chunk(req, repo, id, &mut session, body).await,
        "PUT" => {
            let resp = finish(req, repo, id, &mut session, body).await;
            if session.writer.is_none() {
                uploads.remove(id);
            }
            return resp;
        }
        _ => {
            // DELETE: cancel.
            uploads.remove(id);
            if let Some(w) = session.writer.take() {
                w.cancel().await?;
            }
            return Ok(response(StatusCode::NO_CONTENT, Body::empty(), &[]));
        }
    };
    session.touch();
    result
}

fn written(session: &Session) -> u64 {
    session.writer.as_ref().map_or(0, |w| w.written())
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
        return Err(RegistryError::chunk_out_of_order(written, start)
            .with_header(header::LOCATION, location(repo, id))
            .with_header(header::RANGE, range(written))
            .with_header(
                header::HeaderName::from_static(UPLOAD_UUID_HEADER),
                id.to_string(),
            ));
    }
    Ok(())
}

/// `PATCH`: appends a chunk (in order when `Content-Range` is given).
async fn chunk(
    req: &Request<'_>,
    repo: &Repository,
    id: &str,
    session: &mut Session,
    body: Body,
) -> Result<Response, RegistryError> {
    check_start(req, repo, id, written(session))?;
    let writer = session.writer.as_mut().expect("checked by the caller");
    // On a broken body the bytes that arrived stay: the client can ask
    // where the upload stands (GET) and go on from there.
    write_body(writer.as_mut(), body).await?;
    Ok(progress(StatusCode::ACCEPTED, repo, id, writer.written()))
}

/// `PUT ?digest=`: appends the last chunk, if any, and commits. The
/// session ends whatever the outcome, unless the digest parameter is
/// missing or malformed (then nothing changed and the client may retry).
async fn finish(
    req: &Request<'_>,
    repo: &Repository,
    id: &str,
    session: &mut Session,
    body: Body,
) -> Result<Response, RegistryError> {
    let digest = parse_digest(req.query("digest"))?;
    check_start(req, repo, id, written(session))?;
    let mut writer = session.writer.take().expect("checked by the caller");
    if let Err(e) = write_body(writer.as_mut(), body).await {
        let _ = writer.cancel().await;
        return Err(e);
    }
    commit(req.state, repo, writer, &digest).await
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
