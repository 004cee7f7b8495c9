//! What a delivery says: DTR's envelope `{"type", "createdAt",
//! "contents"}` with the contents of each event type (documented in
//! `docs/webhooks.md`), and the fixed samples `POST /webhooks/test` sends.

use chrono::{DateTime, SecondsFormat, Utc};
use mirror_core::Digest;
use mirror_core::RepositoryName;
use mirror_core::events::{Event, EventKind, RepositoryChange};
use mirror_core::image_info::ImageInfo;
use serde_json::{Value, json};

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `(os, architecture)` of a single-platform image; empty for an index of
/// several (or an image whose config could not be read).
fn platform(info: Option<&ImageInfo>) -> (String, String) {
    let Some(info) = info else {
        return (String::new(), String::new());
    };
    match info.platforms.as_slice() {
        [one] => {
            let mut parts = one.split('/');
            let os = parts.next().unwrap_or_default().to_string();
            let arch = parts.next().unwrap_or_default().to_string();
            (os, arch)
        }
        _ => (String::new(), String::new()),
    }
}

/// The envelope of `event`, as the exact bytes that are posted (and
/// signed). `host` is the registry's name in `imageName`; `info`, the
/// pushed or mirrored image's platform, when known.
pub fn body(event: &Event, host: &str, info: Option<&ImageInfo>) -> String {
    let envelope = json!({
        "type": event.kind.type_name(),
        "createdAt": time(event.at),
        "contents": contents(event, host, info),
    });
    envelope.to_string()
}

/// The `contents` of `event`.
pub fn contents(event: &Event, host: &str, info: Option<&ImageInfo>) -> Value {
    let repo = &event.repository;
    let author = event.actor.clone().unwrap_or_default();
    let at = time(event.at);
    let image = |sep: char, reference: &str| format!("{host}/{repo}{sep}{reference}");
    let (os, architecture) = platform(info);
    let mut c = match &event.kind {
        EventKind::TagPush {
            tag,
            digest,
            media_type,
        } => json!({
            "tag": tag, "digest": digest.to_string(), "mediaType": media_type,
            "imageName": image(':', tag), "os": os, "architecture": architecture,
            "author": author, "pushedAt": at,
        }),
        EventKind::TagDelete { tag, digest } => json!({
            "tag": tag, "digest": digest.to_string(), "imageName": image(':', tag),
            "author": author, "deletedAt": at,
        }),
        EventKind::ManifestPush { digest, media_type } => json!({
            "digest": digest.to_string(), "mediaType": media_type,
            "imageName": image('@', &digest.to_string()), "os": os,
            "architecture": architecture, "author": author, "pushedAt": at,
        }),
        EventKind::ManifestDelete { digest } => json!({
            "digest": digest.to_string(), "imageName": image('@', &digest.to_string()),
            "author": author, "deletedAt": at,
        }),
        EventKind::Repository(change) => json!({
            "event": change.name(), "author": author,
            "data": {"name": repo.as_str()},
        }),
        EventKind::PollMirroring {
            policy_id,
            tag,
            digest,
            remote_repository,
            remote_tag,
        } => json!({
            "policyID": policy_id, "tag": tag, "digest": digest.to_string(),
            "imageName": image(':', tag), "remoteRepository": remote_repository,
            "remoteTag": remote_tag, "os": os, "architecture": architecture,
            "mirroredAt": at,
        }),
        EventKind::PushMirroring {
            policy_id,
            tag,
            digest,
            remote_repository,
            remote_tag,
        } => json!({
            "policyID": policy_id, "tag": tag, "digest": digest.to_string(),
            "imageName": image(':', tag), "remoteRepository": remote_repository,
            "remoteTag": remote_tag, "author": author, "pushedAt": at,
        }),
    };
    if let Value::Object(map) = &mut c {
        map.insert("namespace".into(), repo.namespace().into());
        map.insert("repository".into(), repo.name_in_namespace().into());
    }
    c
}

/// Whether the event's contents name an image whose platform is worth
/// reading (pushes and mirrored tags).
pub fn wants_platform(kind: &EventKind) -> Option<&Digest> {
    match kind {
        EventKind::TagPush { digest, .. }
        | EventKind::ManifestPush { digest, .. }
        | EventKind::PollMirroring { digest, .. } => Some(digest),
        _ => None,
    }
}

/// The fixed sample of event type `kind` (one of
/// `EventKind::TYPE_NAMES`) that `POST /webhooks/test` sends, done by
/// `actor`.
pub fn sample(kind: &str, actor: &str) -> Option<Event> {
    let digest = Digest::of(b"regmirror webhook test");
    let tag = "latest".to_string();
    let remote_repository = "registry.example.com/library/sample".to_string();
    let kind = match kind {
        "TAG_PUSH" => EventKind::TagPush {
            tag,
            digest,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        },
        "TAG_DELETE" => EventKind::TagDelete { tag, digest },
        "MANIFEST_PUSH" => EventKind::ManifestPush {
            digest,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        },
        "MANIFEST_DELETE" => EventKind::ManifestDelete { digest },
        "REPO_EVENT" => EventKind::Repository(RepositoryChange::Created),
        "POLL_MIRRORING" => EventKind::PollMirroring {
            policy_id: "00000000-0000-0000-0000-000000000000".into(),
            tag: tag.clone(),
            digest,
            remote_repository,
            remote_tag: tag,
        },
        "PUSH_MIRRORING" => EventKind::PushMirroring {
            policy_id: "00000000-0000-0000-0000-000000000000".into(),
            tag: tag.clone(),
            digest,
            remote_repository,
            remote_tag: tag,
        },
        _ => return None,
    };
    let repo = RepositoryName::parse("sample/repository").ok()?;
    Some(Event::now(kind, &repo, Some(actor)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_sample_in_its_envelope() {
        for kind in EventKind::TYPE_NAMES {
            let event = sample(kind, "admin").expect(kind);
            let v: Value = serde_json::from_str(&body(&event, "reg.example", None)).unwrap();
            assert_eq!(v["type"], kind);
            assert_eq!(v["contents"]["namespace"], "sample");
            assert_eq!(v["contents"]["repository"], "repository");
            assert!(v["createdAt"].as_str().unwrap().ends_with('Z'));
        }
        let push = sample("TAG_PUSH", "admin").unwrap();
        let v = contents(&push, "reg.example", None);
        assert_eq!(v["imageName"], "reg.example/sample/repository:latest");
        assert_eq!(v["author"], "admin");
        assert!(sample("TAG_PULL", "admin").is_none());
    }
}
