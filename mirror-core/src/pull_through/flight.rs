//! One upstream fetch of a blob, shared by every pull that asks for it
//! meanwhile ("single flight").
//!
//! The first pull of a missing blob starts a [`Flight`]: a task that
//! streams the blob from the upstream into a blob store writer and, as it
//! goes, to that first client (the *tee*). Pulls of the same blob that
//! arrive while it runs wait for its end and are then served from the
//! store. The task belongs to no client: a client that goes away leaves
//! the fetch running for the others.
//!
//! Nothing unverified is ever served as complete: the tee holds back the
//! last chunk until the writer's commit has checked the digest, so a
//! corrupt or cut fetch ends the first client's body with an error, and
//! it is never committed.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::digest::Digest;
use crate::reference::RepositoryName;
use crate::remote::{RemoteError, RemoteRegistry};
use crate::store::{BlobStore, RepositoryStore, StoreError};

/// Chunks the first client may lag behind the fetch.
const TEE_CHUNKS: usize = 8;

/// How long the fetch waits for a first client that does not read before
/// it stops feeding it (the fetch goes on for the others).
const TEE_STALL: Duration = Duration::from_secs(10);

/// The largest blob fetched when the upstream does not announce a size.
pub(crate) const MAX_UNANNOUNCED_BLOB: u64 = 64 << 30;

/// How a flight ended: `Ok` once the blob is stored, verified and linked
/// to the repository; else why not.
pub(crate) type Outcome = Result<(), String>;

/// Watches a flight's end.
pub(crate) type Landing = watch::Receiver<Option<Outcome>>;

/// What the fetch hands the first client.
enum TeeItem {
    /// More bytes.
    Chunk(Bytes),
    /// The blob is stored and verified: the body is complete.
    Done,
    /// The fetch failed.
    Failed(String),
}

type TeeSender = mpsc::Sender<TeeItem>;

/// The first client's share of a flight: the size the upstream announced,
/// and the bytes as they arrive.
pub struct Tee {
    /// The blob's size, when the upstream said.
    pub size: Option<u64>,
    chunks: mpsc::Receiver<TeeItem>,
}

impl Tee {
    /// The bytes as a stream that ends cleanly only when the blob was
    /// verified and stored; a failed fetch, or one that stopped feeding
    /// this client, ends it with an error.
    pub fn into_stream(self) -> crate::store::ByteStream<std::io::Error> {
        let stream = futures_util::stream::unfold(Some(self.chunks), |rx| async move {
            let mut rx = rx?;
            match rx.recv().await {
                Some(TeeItem::Chunk(b)) => Some((Ok(b), Some(rx))),
                Some(TeeItem::Done) => None,
                Some(TeeItem::Failed(msg)) => Some((Err(std::io::Error::other(msg)), None)),
                None => Some((
                    Err(std::io::Error::other(
                        "the upstream fetch stopped feeding this pull",
                    )),
                    None,
                )),
            }
        });
        Box::pin(stream)
    }
}

/// What a flight needs.
pub(crate) struct FlightPlan {
    pub remote: std::sync::Arc<dyn RemoteRegistry>,
    pub remote_repository: RepositoryName,
    pub local: RepositoryName,
    pub digest: Digest,
    pub blobs: std::sync::Arc<dyn BlobStore>,
    pub repos: std::sync::Arc<dyn RepositoryStore>,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    pub events: std::sync::Arc<dyn crate::events::EventSink>,
    /// The limits the fetch keeps to (the server's bandwidth limit).
    pub bandwidth: crate::bandwidth::Limits,
}

/// Starts the fetch: answers once the upstream answered (with the tee, or
/// the upstream's error); the rest runs on a task that reports to `done`.
pub(crate) async fn start(
    plan: FlightPlan,
    done: watch::Sender<Option<Outcome>>,
) -> Result<Tee, RemoteError> {
    let body = match plan
        .remote
        .get_blob(&plan.remote_repository, &plan.digest, 0)
        .await
    {
        Ok(b) => b,
        Err(e) => {
            let _ = done.send(Some(Err(e.to_string())));
            return Err(e);
        }
    };
    let size = body.total;
    let (tx, rx) = mpsc::channel(TEE_CHUNKS);
    tokio::spawn(async move {
        let outcome = land(&plan, body, Some(tx)).await;
        if let Err(e) = &outcome {
            tracing::warn!(repository = %plan.local, digest = %plan.digest, "pull-through fetch failed: {e}");
        }
        let _ = done.send(Some(outcome));
    });
    Ok(Tee { size, chunks: rx })
}

/// Streams `body` into the store (and the tee), commits, links.
async fn land(
    plan: &FlightPlan,
    mut body: crate::remote::BlobBody,
    mut tee: Option<TeeSender>,
) -> Outcome {
    let fail = |tee: &mut Option<TeeSender>, msg: String| {
        if let Some(t) = tee.take() {
            // If the client lags, dropping the sender fails its body too.
            let _ = t.try_send(TeeItem::Failed(msg.clone()));
        }
        Err(msg)
    };
    let cap = body.total.unwrap_or(MAX_UNANNOUNCED_BLOB);
    let mut writer = match plan.blobs.writer().await {
        Ok(w) => w,
        Err(e) => return fail(&mut tee, format!("storing blob {}: {e}", plan.digest)),
    };
    let mut held: Option<Bytes> = None;
    let mut written = 0u64;
    // A fetch is shared by every client waiting for the blob: nothing
    // cancels it but its own failure.
    let runs_to_the_end = tokio_util::sync::CancellationToken::new();
    while let Some(chunk) = body.stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = writer.cancel().await;
                return fail(&mut tee, e.to_string());
            }
        };
        written += chunk.len() as u64;
        if written > cap {
            let _ = writer.cancel().await;
            let msg = format!(
                "blob {} from {}: more than the {cap} bytes announced",
                plan.digest, plan.remote_repository
            );
            return fail(&mut tee, msg);
        }
        if let Err(e) = writer.write(chunk.clone()).await {
            let _ = writer.cancel().await;
            return fail(&mut tee, format!("storing blob {}: {e}", plan.digest));
        }
        let len = chunk.len() as u64;
        if let Some(prev) = held.replace(chunk) {
            feed(&mut tee, TeeItem::Chunk(prev)).await;
        }
        plan.bandwidth.spend(len, &runs_to_the_end).await;
    }
    plan.metrics.record_cache(|c| c.upstream_bytes += written);
    match writer.commit(&plan.digest, body.total).await {
        Ok(()) => {}
        Err(StoreError::DigestMismatch { expected, actual }) => {
            let msg = format!(
                "blob {} from {}: the bytes hash to {actual}, not {expected}; not stored",
                plan.digest, plan.remote_repository
            );
            return fail(&mut tee, msg);
        }
        Err(e) => return fail(&mut tee, format!("storing blob {}: {e}", plan.digest)),
    }
    let linked = async {
        super::ensure_repository(plan.repos.as_ref(), plan.events.as_ref(), &plan.local).await?;
        plan.repos.link_blob(&plan.local, &plan.digest).await
    };
    if let Err(e) = linked.await {
        return fail(&mut tee, format!("linking blob {}: {e}", plan.digest));
    }
    if let Some(last) = held {
        feed(&mut tee, TeeItem::Chunk(last)).await;
    }
    feed(&mut tee, TeeItem::Done).await;
    Ok(())
}

/// Hands a chunk to the first client; a client gone or stalled is fed no
/// more.
async fn feed(tee: &mut Option<TeeSender>, item: TeeItem) {
    let Some(t) = tee else { return };
    match tokio::time::timeout(TEE_STALL, t.send(item)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => *tee = None,
        Err(_) => {
            tracing::info!("a pull-through client stopped reading; the fetch goes on without it");
            *tee = None;
        }
    }
}
