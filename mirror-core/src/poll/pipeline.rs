//! Step 4 of a poll: copy the planned tags and publish them.
//!
//! Up to [`TAGS_IN_FLIGHT`] tags copy at once (their blob transfers still
//! share the poll's transfer limit), so manifest requests, blob copies and
//! publishing overlap instead of waiting on each other tag by tag. Copied
//! tags are published in plan order, in batches of what is ready (at most
//! [`PUBLISH_BATCH`] tags per transaction): one hold and one transaction
//! for many tags. Each tag stays all-or-nothing: when a batch is refused
//! for anything but a store failure, its tags are published one by one,
//! so only the tag at fault fails.

use chrono::Utc;
use futures_util::StreamExt;

use super::{PollEnv, PollError, PollReport};
use crate::copy::image::copy_tree;
use crate::copy::referrers::{ReferrersApi, copy_referrers, is_tag_scheme_name};
use crate::copy::{CopyError, CopyStats};
use crate::diff::{Change, TagCopy};
use crate::digest::Digest;
use crate::error::ErrorKind;
use crate::events::{Event, EventKind};
use crate::policy::PollMirroringPolicy;
use crate::progress::Progress;
use crate::store::{ManifestRecord, TagRecord, TagSource};
use crate::write::{WriteError, publish_checked};

/// Tags copied at once.
pub const TAGS_IN_FLIGHT: usize = 8;
/// Tags published in one transaction at most.
pub const PUBLISH_BATCH: usize = 100;

/// A tag copied and not yet published.
struct CopiedTag<'p> {
    item: &'p TagCopy,
    records: Vec<ManifestRecord>,
    tag: TagRecord,
    referrers: usize,
    stats: CopyStats,
}

/// How copying one tag ended (cancellation aside).
enum Copied<'p> {
    Ready(Box<CopiedTag<'p>>),
    Failed { kind: ErrorKind, line: String },
}

/// Copies and publishes `copy` (the plan's tags), counting into `report`.
/// Tag failures are reported there; only a store failure while
/// publishing, or cancellation, ends the poll.
pub(super) async fn copy_and_publish(
    env: &PollEnv<'_>,
    policy: &PollMirroringPolicy,
    source: &str,
    copy: &[TagCopy],
    report: &mut PollReport,
) -> Result<(), PollError> {
    let referrers_api = ReferrersApi::default();
    // Copies run ahead of publishing: the two halves run at once, joined
    // by a channel.
    let (done, copied) = tokio::sync::mpsc::channel(PUBLISH_BATCH);
    let copy_ahead = async {
        // Owned here: dropped when the copies are done, which ends the
        // publishing.
        let done = done;
        let mut planned = copy.iter();
        let mut in_flight = futures_util::stream::FuturesOrdered::new();
        loop {
            while in_flight.len() < TAGS_IN_FLIGHT
                && let Some(item) = planned.next()
            {
                in_flight.push_back(copy_tag(env, policy, source, item, &referrers_api));
            }
            let Some(tag) = in_flight.next().await else {
                return;
            };
            if done.send(tag).await.is_err() {
                return; // publishing stopped
            }
        }
    };
    let publish_behind = async {
        // Owned here: dropped when publishing stops, which stops the copies.
        let mut copied = copied;
        while let Some(first) = copied.recv().await {
            let mut batch = vec![first];
            while batch.len() < PUBLISH_BATCH
                && let Ok(more) = copied.try_recv()
            {
                batch.push(more);
            }
            let mut ready = Vec::with_capacity(batch.len());
            for tag in batch {
                match tag? {
                    Copied::Ready(tag) => ready.push(*tag),
                    Copied::Failed { kind, line } => report.failed(env.log, kind, line),
                }
            }
            if env.copy.cancel.is_cancelled() {
                return Err(PollError::Canceled);
            }
            for (tag, published) in publish_batch(env, policy, ready).await? {
                match published {
                    Ok(()) => published_tag(env, policy, source, &tag, report),
                    Err(e) => {
                        let line = failed_line(policy, tag.item, &e);
                        report.failed(env.log, e.kind(), line);
                    }
                }
            }
        }
        Ok(())
    };
    tokio::pin!(copy_ahead, publish_behind);
    tokio::select! {
        // Publishing ended: every copy was published, or the poll failed
        // and the copies still running are dropped.
        published = &mut publish_behind => return published,
        () = &mut copy_ahead => {}
    }
    publish_behind.await
}

/// The log line of a tag that failed: tag, remote digest and cause.
fn failed_line(policy: &PollMirroringPolicy, item: &TagCopy, e: &dyn std::fmt::Display) -> String {
    let remote_repo = &policy.remote.repository;
    format!("failed {remote_repo}:{} ({}): {e}", item.tag, item.digest)
}

/// Copies one tag's tree (and its referrers, if the policy copies them).
async fn copy_tag<'p>(
    env: &PollEnv<'_>,
    policy: &PollMirroringPolicy,
    source: &str,
    item: &'p TagCopy,
    referrers_api: &ReferrersApi,
) -> Result<Copied<'p>, PollError> {
    let remote = env.remote.as_ref();
    let remote_repo = &policy.remote.repository;
    let failed = |e: CopyError| match e {
        CopyError::Canceled => Err(PollError::Canceled),
        e => Ok(Copied::Failed {
            kind: e.kind(),
            line: failed_line(policy, item, &e),
        }),
    };
    if env.copy.cancel.is_cancelled() {
        return Err(PollError::Canceled);
    }
    let copied = match copy_tree(
        &env.copy,
        remote,
        remote_repo,
        &item.digest,
        &policy.content,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let top = copied.top().clone();
    let (mut records, mut stats) = (copied.records, copied.stats);
    let mut referrers = 0;
    if policy.content.referrers && !is_tag_scheme_name(&item.tag) {
        let subjects: Vec<Digest> = records.iter().map(|r| r.digest.clone()).collect();
        let found = copy_referrers(
            &env.copy,
            remote,
            remote_repo,
            &subjects,
            &policy.content,
            referrers_api,
            &mut records,
        )
        .await;
        match found {
            Ok(found) => {
                referrers = found.copied;
                stats.add(found.stats);
                for line in found.skipped {
                    env.log
                        .line(format!("{}:{}: {line}", remote_repo, item.tag));
                }
            }
            Err(e) => return failed(e),
        }
    }
    let tag = TagRecord {
        name: item.tag.clone(),
        digest: top.digest.clone(),
        media_type: top.media_type.clone(),
        size: top.size,
        mirrored: Some(TagSource {
            policy_id: policy.id.clone(),
            remote_repository: source.to_string(),
            remote_tag: item.tag.clone(),
            remote_digest: (top.digest != item.digest).then(|| item.digest.clone()),
        }),
        updated_at: Utc::now(),
    };
    Ok(Copied::Ready(Box::new(CopiedTag {
        item,
        records,
        tag,
        referrers,
        stats,
    })))
}

/// Publishes `ready` in one transaction; if that is refused (not by the
/// store), each tag alone. Every tag with its outcome.
async fn publish_batch<'p>(
    env: &PollEnv<'_>,
    policy: &PollMirroringPolicy,
    ready: Vec<CopiedTag<'p>>,
) -> Result<Vec<(CopiedTag<'p>, Result<(), WriteError>)>, PollError> {
    if ready.is_empty() {
        return Ok(Vec::new());
    }
    if ready.len() > 1 && publish_tags(env, policy, &ready).await?.is_ok() {
        return Ok(ready.into_iter().map(|t| (t, Ok(()))).collect());
    }
    let mut done = Vec::with_capacity(ready.len());
    for tag in ready {
        let published = publish_tags(env, policy, std::slice::from_ref(&tag)).await?;
        done.push((tag, published));
    }
    Ok(done)
}

/// Publishes `tags` in one transaction: `Err` for a store failure, else
/// whether the write was refused.
async fn publish_tags(
    env: &PollEnv<'_>,
    policy: &PollMirroringPolicy,
    tags: &[CopiedTag<'_>],
) -> Result<Result<(), WriteError>, PollError> {
    let local_repo = &policy.local_repository;
    let mut records: Vec<ManifestRecord> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for t in tags {
        for r in &t.records {
            // Children first within each tag, so also across them.
            if seen.insert(&r.digest) {
                records.push(r.clone());
            }
        }
    }
    let tag_records: Vec<TagRecord> = tags.iter().map(|t| t.tag.clone()).collect();
    // copy_tree fetched and verified every blob, or the ReuseGate let this
    // poll link it: the poll vouches for them all.
    let published = publish_checked(
        env.copy.blobs.as_ref(),
        env.repos,
        local_repo,
        &records,
        &tag_records,
        |_| true,
    )
    .await;
    match published {
        Err(WriteError::Store(source)) => Err(PollError::Store {
            context: format!(
                "publishing {local_repo}:{}",
                tags.iter()
                    .map(|t| t.item.tag.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            source,
        }),
        other => Ok(other),
    }
}

/// After `tag` was published: its event, counters and log line.
fn published_tag(
    env: &PollEnv<'_>,
    policy: &PollMirroringPolicy,
    source: &str,
    tag: &CopiedTag<'_>,
    report: &mut PollReport,
) {
    let (item, local_repo) = (tag.item, &policy.local_repository);
    let remote_repo = &policy.remote.repository;
    let top = &tag.tag.digest;
    env.events.emit(Event::now(
        EventKind::PollMirroring {
            policy_id: policy.id.clone(),
            tag: item.tag.clone(),
            digest: top.clone(),
            remote_repository: source.to_string(),
            remote_tag: item.tag.clone(),
        },
        local_repo,
        None,
    ));
    report.tags_copied += 1;
    report.bytes_copied += tag.stats.bytes;
    Progress::add(&env.copy.progress.tags_copied, 1);
    let rewritten = if *top == item.digest {
        String::new()
    } else {
        format!(" rewritten to {top}")
    };
    let referrers = if tag.referrers > 0 {
        format!(", {} referrers", tag.referrers)
    } else {
        String::new()
    };
    env.log.line(format!(
        "copied {} tag {}:{} -> {local_repo}:{} ({}{rewritten}, {} manifests{referrers}, {} blobs copied, {} reused, {} bytes)",
        match item.change {
            Change::New => "new",
            Change::Moved => "moved",
        },
        remote_repo,
        item.tag,
        item.tag,
        item.digest,
        tag.records.len(),
        tag.stats.blobs_copied,
        tag.stats.blobs_reused,
        tag.stats.bytes,
    ));
}
