//! [`RemoteWriter`] for [`HttpRemote`]: the push half of the distribution
//! API (blob `HEAD`, cross-repository mount, chunked upload, manifest
//! `PUT`), on the same [`HttpRemote::send_full`] as reads, so retries,
//! authentication (scope `repository:<name>:pull,push`) and the remote
//! guard (every upload `Location` is checked before it is requested) are
//! the pulls' own.
//!
//! A blob is read from the local [`BlobStore`] one chunk at a time
//! ([`HttpRemote`]'s `push_chunk_size`): a chunk is the most an upload
//! holds in memory, and it is what a retry of one `PATCH` sends again. A
//! remote that refuses chunks gets the blob as one streamed `PUT`, its
//! body opened again from the store for each attempt.

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::header;
use reqwest::{Method, StatusCode, Url};

use super::{HttpRemote, header_str, url_for_message};
use crate::digest::Digest;
use crate::reference::RepositoryName;
use crate::remote::{BlobUpload, RemoteError, RemoteWriter};
use crate::store::BlobStore;

/// What a request sends.
pub(super) enum Payload<'a> {
    /// Nothing (no body is set).
    Empty,
    /// These bytes (a chunk, a manifest; `Bytes` clones share them).
    Bytes(Bytes),
    /// A whole blob of the local store, streamed.
    Blob {
        /// Where it is read from.
        store: &'a dyn BlobStore,
        /// Which.
        digest: &'a Digest,
    },
}

impl Payload<'_> {
    /// The body of one attempt (`None`: none).
    pub(super) async fn body(&self) -> Result<Option<reqwest::Body>, RemoteError> {
        Ok(match self {
            Payload::Empty => None,
            Payload::Bytes(b) => Some(reqwest::Body::from(b.clone())),
            Payload::Blob { store, digest } => {
                let reader = store
                    .reader(digest, 0, None)
                    .await
                    .map_err(|e| local_read(digest, &e))?;
                Some(reqwest::Body::wrap_stream(reader.stream))
            }
        })
    }
}

/// A failure reading the local copy, told apart from the remote's.
fn local_read(digest: &Digest, e: &dyn std::error::Error) -> RemoteError {
    RemoteError::Transfer {
        url: format!("the local blob store ({digest})"),
        reason: format!("reading the blob to push: {e}"),
    }
}

fn push_scope(repo: &RepositoryName) -> String {
    format!("repository:{repo}:pull,push")
}

const OCTET_STREAM: &str = "application/octet-stream";

/// How a chunked upload ended.
enum Chunked {
    /// Stored by the remote.
    Done(BlobUpload),
    /// The remote refused the first chunk as a chunk: send it whole.
    Refused,
}

impl HttpRemote {
    /// The `Location` of an upload answer, resolved against the request
    /// URL (registries give it relative or absolute; the guard checks it
    /// when it is requested).
    fn upload_location(&self, resp: &reqwest::Response, base: &Url) -> Result<Url, RemoteError> {
        let loc = header_str(resp.headers(), "location").ok_or_else(|| RemoteError::Protocol {
            url: url_for_message(base),
            reason: "an upload answer without a Location".into(),
        })?;
        base.join(&loc).map_err(|e| RemoteError::Protocol {
            url: url_for_message(base),
            reason: format!("upload Location {loc:?} is not a URL: {e}"),
        })
    }

    /// Opens an upload session: the URL to send to.
    async fn start_upload(&self, repo: &RepositoryName) -> Result<Url, RemoteError> {
        let url = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        let resp = self
            .send_full(
                Method::POST,
                url.clone(),
                &push_scope(repo),
                repo.as_str(),
                &[(header::CONTENT_LENGTH, "0".into())],
                Some(self.limits.request_timeout),
                &Payload::Empty,
            )
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self
                .status_error(resp, repo.as_str(), format!("an upload to {repo}"))
                .await);
        }
        self.upload_location(&resp, &url)
    }

    /// Ends an upload at `location` with `PUT ?digest=` (and `payload`,
    /// the whole blob for a monolithic upload), checking the digest the
    /// remote reports.
    async fn finish_upload(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        mut location: Url,
        payload: Payload<'_>,
        length: u64,
    ) -> Result<(), RemoteError> {
        location
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let streamed = matches!(payload, Payload::Blob { .. });
        let resp = self
            .send_full(
                Method::PUT,
                location,
                &push_scope(repo),
                repo.as_str(),
                &[
                    (header::CONTENT_TYPE, OCTET_STREAM.into()),
                    (header::CONTENT_LENGTH, length.to_string()),
                ],
                // A streamed blob keeps the idle timeout only, as a download.
                (!streamed).then_some(self.limits.request_timeout),
                &payload,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .status_error(resp, repo.as_str(), format!("blob {digest} in {repo}"))
                .await);
        }
        if let Some(answered) = header_str(resp.headers(), "docker-content-digest")
            && let Ok(answered) = Digest::parse(&answered)
            && &answered != digest
        {
            return Err(RemoteError::DigestMismatch {
                what: format!("blob pushed to {repo}"),
                expected: digest.clone(),
                actual: answered,
            });
        }
        Ok(())
    }

    /// `POST`, `PATCH` per chunk, `PUT ?digest=`.
    async fn upload_chunked(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        size: u64,
        source: &dyn BlobStore,
    ) -> Result<Chunked, RemoteError> {
        let mut location = self.start_upload(repo).await?;
        let reader = source
            .reader(digest, 0, None)
            .await
            .map_err(|e| local_read(digest, &e))?;
        let mut stream = reader.stream;
        let chunk_size = self.push_chunk_size as usize;
        let mut buf = BytesMut::with_capacity(chunk_size.min(size as usize));
        let mut offset: u64 = 0;
        let mut chunks: u32 = 0;
        let mut ended = false;
        loop {
            while !ended && buf.len() < chunk_size {
                match stream.next().await {
                    Some(Ok(b)) => buf.extend_from_slice(&b),
                    Some(Err(e)) => return Err(local_read(digest, &e)),
                    None => ended = true,
                }
            }
            if buf.is_empty() {
                break;
            }
            // One chunk per PATCH; a larger piece of the store waits for
            // the next one.
            let body = buf.split_to(buf.len().min(chunk_size)).freeze();
            let end = offset + body.len() as u64 - 1;
            let resp = self
                .send_full(
                    Method::PATCH,
                    location.clone(),
                    &push_scope(repo),
                    repo.as_str(),
                    &[
                        (header::CONTENT_TYPE, OCTET_STREAM.into()),
                        (header::CONTENT_RANGE, format!("{offset}-{end}")),
                        (header::CONTENT_LENGTH, body.len().to_string()),
                    ],
                    Some(self.limits.request_timeout),
                    &Payload::Bytes(body),
                )
                .await?;
            let status = resp.status();
            if status != StatusCode::ACCEPTED {
                let refuses_chunks = matches!(
                    status,
                    StatusCode::BAD_REQUEST
                        | StatusCode::METHOD_NOT_ALLOWED
                        | StatusCode::RANGE_NOT_SATISFIABLE
                        | StatusCode::NOT_IMPLEMENTED
                );
                if chunks == 0 && refuses_chunks {
                    tracing::info!(repo = %repo, status = status.as_u16(), "the remote refuses chunked uploads; sending {digest} whole");
                    // The session is left to the remote's upload expiry.
                    return Ok(Chunked::Refused);
                }
                return Err(self
                    .status_error(
                        resp,
                        repo.as_str(),
                        format!("chunk {offset}-{end} of blob {digest} in {repo}"),
                    )
                    .await);
            }
            location = self.upload_location(&resp, &location)?;
            offset = end + 1;
            chunks += 1;
        }
        if offset != size {
            return Err(local_read(
                digest,
                &std::io::Error::other(format!(
                    "the local blob has {offset} bytes, {size} expected"
                )),
            ));
        }
        self.finish_upload(repo, digest, location, Payload::Bytes(Bytes::new()), 0)
            .await?;
        Ok(Chunked::Done(BlobUpload {
            bytes_sent: offset,
            chunks,
            monolithic: false,
        }))
    }
}

#[async_trait]
impl RemoteWriter for HttpRemote {
    async fn check_push(&self, repo: &RepositoryName) -> Result<(), RemoteError> {
        let location = self.start_upload(repo).await?;
        // Canceled at once; a remote that cannot cancel expires it.
        let _ = self
            .send(
                Method::DELETE,
                location,
                &push_scope(repo),
                repo.as_str(),
                &[],
            )
            .await;
        Ok(())
    }

    async fn blob_exists(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, RemoteError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self
            .send(Method::HEAD, url, &push_scope(repo), repo.as_str(), &[])
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self
                .status_error(resp, repo.as_str(), format!("blob {digest} in {repo}"))
                .await),
        }
    }

    async fn mount_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        from: &RepositoryName,
    ) -> Result<bool, RemoteError> {
        let mut url = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from.as_str());
        let resp = self
            .send_full(
                Method::POST,
                url.clone(),
                &push_scope(repo),
                repo.as_str(),
                &[(header::CONTENT_LENGTH, "0".into())],
                Some(self.limits.request_timeout),
                &Payload::Empty,
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // Not mounted: an upload session was opened instead; close it.
                if let Ok(loc) = self.upload_location(&resp, &url) {
                    let _ = self
                        .send(Method::DELETE, loc, &push_scope(repo), repo.as_str(), &[])
                        .await;
                }
                Ok(false)
            }
            _ => Err(self
                .status_error(resp, repo.as_str(), format!("a mount into {repo}"))
                .await),
        }
    }

    async fn push_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        size: u64,
        source: &dyn BlobStore,
    ) -> Result<BlobUpload, RemoteError> {
        if let Chunked::Done(upload) = self.upload_chunked(repo, digest, size, source).await? {
            return Ok(upload);
        }
        let location = self.start_upload(repo).await?;
        let payload = Payload::Blob {
            store: source,
            digest,
        };
        self.finish_upload(repo, digest, location, payload, size)
            .await?;
        Ok(BlobUpload {
            bytes_sent: size,
            chunks: 0,
            monolithic: true,
        })
    }

    async fn put_manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<Digest, RemoteError> {
        let ours = Digest::of(&bytes);
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self
            .send_full(
                Method::PUT,
                url.clone(),
                &push_scope(repo),
                repo.as_str(),
                &[
                    (header::CONTENT_TYPE, media_type.to_string()),
                    (header::CONTENT_LENGTH, bytes.len().to_string()),
                ],
                Some(self.limits.request_timeout),
                &Payload::Bytes(bytes),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .status_error(resp, repo.as_str(), format!("manifest {repo}:{reference}"))
                .await);
        }
        let answered = match header_str(resp.headers(), "docker-content-digest") {
            Some(d) => Digest::parse(&d).map_err(|e| RemoteError::Protocol {
                url: url_for_message(&url),
                reason: format!("Docker-Content-Digest: {e}"),
            })?,
            // Not said: ask what the reference names now.
            None => match crate::remote::RemoteRegistry::head_manifest(self, repo, reference)
                .await?
                .digest
            {
                Some(d) => d,
                None => return Ok(ours),
            },
        };
        if answered != ours {
            return Err(RemoteError::DigestMismatch {
                what: format!("manifest {repo}:{reference} as the remote stored it"),
                expected: ours,
                actual: answered,
            });
        }
        Ok(answered)
    }
}
