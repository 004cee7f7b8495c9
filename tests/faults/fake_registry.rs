//! An in-process registry that serves images from memory and injects the
//! faults a real registry will not produce on demand: 429 with Retry-After,
//! 5xx, a blob body cut mid-way, a stalled body, corrupted bytes, refused
//! credentials. Requests are counted so tests can assert what was fetched.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use sha2::{Digest as _, Sha256};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub fn digest_of(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

#[derive(Default)]
pub struct Content {
    /// repo -> tag -> manifest digest
    pub tags: HashMap<String, HashMap<String, String>>,
    /// digest -> (media type, bytes)
    pub manifests: HashMap<String, (String, Bytes)>,
    /// digest -> bytes
    pub blobs: HashMap<String, Bytes>,
}

/// Faults to inject; counters count down as they fire.
#[derive(Default)]
pub struct Faults {
    /// Answer this many tag-list requests with 429 + `Retry-After: 1`.
    pub tags_429: AtomicU32,
    /// Answer this many manifest GETs with 500.
    pub manifest_500: AtomicU32,
    /// Cut this many full (non-Range) blob bodies after half the bytes.
    pub blob_truncate: AtomicU32,
    /// Serve blobs with one byte flipped.
    pub corrupt_blobs: AtomicBool,
    /// Serve this blob (a digest) with one byte flipped.
    pub corrupt_blob: Mutex<Option<String>>,
    /// Stall blob bodies after half the bytes until cleared.
    pub stall_blobs: AtomicBool,
    /// Answer every HEAD of this tag with 500.
    pub broken_tag: Mutex<Option<String>>,
    /// Require these Basic credentials.
    pub basic: Mutex<Option<(String, String)>>,
}

#[derive(Default)]
pub struct Counters {
    pub manifest_gets: AtomicU32,
    pub manifest_heads: AtomicU32,
    pub blob_gets: AtomicU32,
    pub range_gets: AtomicU32,
    /// When each tag-list request arrived.
    pub tag_list_times: Mutex<Vec<Instant>>,
}

pub struct Inner {
    pub content: Mutex<Content>,
    pub faults: Faults,
    pub counters: Counters,
}

#[derive(Clone)]
pub struct FakeRegistry {
    pub inner: Arc<Inner>,
    pub addr: SocketAddr,
}

impl FakeRegistry {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner {
            content: Mutex::new(Content::default()),
            faults: Faults::default(),
            counters: Counters::default(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeRegistry { inner, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Adds an image with the given layers under `repo:tag`; returns the
    /// manifest digest and the layer digests.
    pub fn add_image(&self, repo: &str, tag: &str, layers: &[Vec<u8>]) -> (String, Vec<String>) {
        let mut content = self.inner.content.lock().unwrap();
        let mut layer_descs = Vec::new();
        let mut layer_digests = Vec::new();
        for l in layers {
            let d = digest_of(l);
            content.blobs.insert(d.clone(), Bytes::from(l.clone()));
            layer_descs.push(serde_json::json!({
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": d, "size": l.len()
            }));
            layer_digests.push(d);
        }
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": layer_digests},
            "created": format!("tag {tag}")
        }))
        .unwrap();
        let config_digest = digest_of(&config);
        content
            .blobs
            .insert(config_digest.clone(), Bytes::from(config.clone()));
        let manifest = serde_json::to_vec_pretty(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config_digest, "size": config.len()},
            "layers": layer_descs,
        }))
        .unwrap();
        let md = digest_of(&manifest);
        content.manifests.insert(
            md.clone(),
            (DOCKER_MANIFEST.to_string(), Bytes::from(manifest)),
        );
        content
            .tags
            .entry(repo.to_string())
            .or_default()
            .insert(tag.to_string(), md.clone());
        (md, layer_digests)
    }
}

fn error(status: StatusCode, code: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!(r#"{{"errors":[{{"code":"{code}","message":"{code}"}}]}}"#),
    )
        .into_response()
}

fn authorized(inner: &Inner, headers: &HeaderMap) -> bool {
    let Some((u, p)) = inner.faults.basic.lock().unwrap().clone() else {
        return true;
    };
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
    );
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(want.as_str())
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let headers = req.headers().clone();
    if !authorized(&inner, &headers) {
        let mut r = error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"fake\"".parse().unwrap(),
        );
        return r;
    }
    if path == "/v2/" {
        return StatusCode::OK.into_response();
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND");
    };
    if let Some(repo) = rest.strip_suffix("/tags/list") {
        inner
            .counters
            .tag_list_times
            .lock()
            .unwrap()
            .push(Instant::now());
        if take(&inner.faults.tags_429) {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
            )
                .into_response();
        }
        let content = inner.content.lock().unwrap();
        let Some(tags) = content.tags.get(repo) else {
            return error(StatusCode::NOT_FOUND, "NAME_UNKNOWN");
        };
        let mut names: Vec<&String> = tags.keys().collect();
        names.sort();
        return axum::Json(serde_json::json!({"name": repo, "tags": names})).into_response();
    }
    if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        let content = inner.content.lock().unwrap();
        let digest = if reference.starts_with("sha256:") {
            Some(reference.to_string())
        } else {
            content
                .tags
                .get(repo)
                .and_then(|t| t.get(reference))
                .cloned()
        };
        let Some((mt, bytes)) = digest
            .as_ref()
            .and_then(|d| content.manifests.get(d))
            .cloned()
        else {
            return error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");
        };
        drop(content);
        if method == Method::HEAD {
            inner.counters.manifest_heads.fetch_add(1, Ordering::SeqCst);
            if inner.faults.broken_tag.lock().unwrap().as_deref() == Some(reference) {
                return error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN");
            }
        } else {
            inner.counters.manifest_gets.fetch_add(1, Ordering::SeqCst);
            if take(&inner.faults.manifest_500) {
                return error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN");
            }
        }
        let mut r = Response::new(if method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(bytes.clone())
        });
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, mt.parse().unwrap());
        h.insert(header::CONTENT_LENGTH, bytes.len().into());
        h.insert("docker-content-digest", digest.unwrap().parse().unwrap());
        return r;
    }
    if let Some((_repo, digest)) = rest.rsplit_once("/blobs/") {
        let Some(bytes) = inner.content.lock().unwrap().blobs.get(digest).cloned() else {
            return error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN");
        };
        inner.counters.blob_gets.fetch_add(1, Ordering::SeqCst);
        let mut bytes = bytes.to_vec();
        if inner.faults.corrupt_blobs.load(Ordering::SeqCst)
            || inner.faults.corrupt_blob.lock().unwrap().as_deref() == Some(digest)
        {
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
        }
        let range_start = headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes="))
            .and_then(|v| v.trim_end_matches('-').parse::<usize>().ok());
        let total = bytes.len();
        if let Some(start) = range_start {
            inner.counters.range_gets.fetch_add(1, Ordering::SeqCst);
            let body = Bytes::from(bytes[start.min(total)..].to_vec());
            let mut r = Response::new(Body::from(body));
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{total}", total - 1)
                    .parse()
                    .unwrap(),
            );
            return r;
        }
        let half = total / 2;
        let truncate = take(&inner.faults.blob_truncate);
        let stall = inner.faults.stall_blobs.load(Ordering::SeqCst);
        let first = Bytes::from(bytes[..half].to_vec());
        let second = Bytes::from(bytes[half..].to_vec());
        let inner2 = inner.clone();
        let stream = async_stream(first, second, truncate, stall, inner2);
        let mut r = Response::new(Body::from_stream(stream));
        r.headers_mut().insert(header::CONTENT_LENGTH, total.into());
        return r;
    }
    error(StatusCode::NOT_FOUND, "NOT_FOUND")
}

/// The body of a full blob GET: the first half, then the fault (an error,
/// which aborts the connection mid-body, or a stall), else the second half.
fn async_stream(
    first: Bytes,
    second: Bytes,
    truncate: bool,
    stall: bool,
    inner: Arc<Inner>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(0u8, move |step| {
        let (first, second, inner) = (first.clone(), second.clone(), inner.clone());
        async move {
            match step {
                0 => Some((Ok(first), 1)),
                1 if truncate => Some((Err(std::io::Error::other("connection reset")), 2)),
                1 => {
                    while stall && inner.faults.stall_blobs.load(Ordering::SeqCst) {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    Some((Ok(second), 2))
                }
                _ => None,
            }
        }
    })
}

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}
