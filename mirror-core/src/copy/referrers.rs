//! Copying what refers to a copied manifest: signatures, attestations and
//! SBOMs.
//!
//! Registries keep them in one of two ways. With the OCI 1.1 referrers API
//! (`GET /v2/<name>/referrers/<digest>`), a referrer is an untagged
//! manifest whose `subject` names the image: [`copy_referrers`] asks for
//! each manifest a tag's copy brought in, copies each referrer whose
//! `subject` really is that manifest, and returns its records to publish
//! with the tag (the local registry then lists them in its own referrers
//! API). Without the API (distribution 2.x), cosign writes tags named
//! after the image's digest (`sha256-<hex>.sig`, `.att`, `.sbom`): those
//! are ordinary tags, which the poll adds to what it mirrors
//! ([`tag_scheme_names`]) even where the policy's tag rules leave them out.

use std::sync::atomic::{AtomicU8, Ordering};

use super::image::copy_tree;
use super::{CopyContext, CopyError};
use crate::digest::Digest;
use crate::manifest::is_manifest_media_type;
use crate::reference::RepositoryName;
use crate::remote::RemoteRegistry;
use crate::selection::ContentSelection;
use crate::store::ManifestRecord;

/// cosign's tag-scheme suffixes and the artifact type each stands for
/// (what `referrerArtifactTypes` matches them against).
pub const TAG_SCHEME: [(&str, &str); 3] = [
    ("sig", "application/vnd.dev.cosign.artifact.sig.v1+json"),
    ("att", "application/vnd.dev.cosign.artifact.att.v1+json"),
    ("sbom", "application/vnd.dev.cosign.artifact.sbom.v1+json"),
];

/// Referrers of one manifest copied at most; a remote listing more is
/// cut there and the log says so.
const MAX_REFERRERS_PER_MANIFEST: usize = 256;
/// How far referrers of referrers are followed (a signature of an SBOM of
/// an image is 2).
const MAX_REFERRER_DEPTH: usize = 2;

/// The tag-scheme tags `selection` keeps for a manifest `digest`:
/// `sha256-<hex>.sig` and its siblings.
pub fn tag_scheme_names(digest: &Digest, selection: &ContentSelection) -> Vec<String> {
    let stem = digest.to_string().replace(':', "-");
    TAG_SCHEME
        .iter()
        .filter(|(_, artifact_type)| selection.keeps_referrer(Some(artifact_type)))
        .map(|(suffix, _)| format!("{stem}.{suffix}"))
        .collect()
}

/// Whether `tag` is a tag-scheme name ([`tag_scheme_names`]).
pub fn is_tag_scheme_name(tag: &str) -> bool {
    let Some((stem, suffix)) = tag.rsplit_once('.') else {
        return false;
    };
    TAG_SCHEME.iter().any(|(s, _)| *s == suffix)
        && stem
            .strip_prefix("sha256-")
            .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether the remote has a referrers API, learned at the first answer
/// and kept for one poll (a registry without it costs one request).
#[derive(Debug, Default)]
pub struct ReferrersApi(AtomicU8);

impl ReferrersApi {
    const UNKNOWN: u8 = 0;
    const PRESENT: u8 = 1;
    const ABSENT: u8 = 2;

    /// Whether the remote answered 404 for the referrers API.
    pub fn absent(&self) -> bool {
        self.0.load(Ordering::Relaxed) == Self::ABSENT
    }

    fn learn(&self, present: bool) {
        let v = if present { Self::PRESENT } else { Self::ABSENT };
        let _ = self
            .0
            .compare_exchange(Self::UNKNOWN, v, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// What [`copy_referrers`] did.
#[derive(Debug, Default)]
pub struct ReferrersCopied {
    /// Referrer manifests copied (each with what it references).
    pub copied: usize,
    /// One line per referrer left out, and why.
    pub skipped: Vec<String>,
    /// What copying them downloaded and reused.
    pub stats: super::CopyStats,
}

/// Copies the referrers `selection` keeps of each of `subjects` (and their
/// referrers, [`MAX_REFERRER_DEPTH`] deep) from `repo` through the remote's
/// referrers API, appending their records to `records`. Does nothing once
/// `api` knows the remote has none.
///
/// A referrer is copied only if its `subject` is the manifest it was
/// listed for: a remote cannot attach a manifest to an image it does not
/// refer to. A referrer that fails to copy is skipped (and said in
/// `skipped`): the image it refers to is still complete. Only a failure of
/// the listing itself, or cancellation, is an error.
pub async fn copy_referrers(
    ctx: &CopyContext,
    remote: &dyn RemoteRegistry,
    repo: &RepositoryName,
    subjects: &[Digest],
    selection: &ContentSelection,
    api: &ReferrersApi,
    records: &mut Vec<ManifestRecord>,
) -> Result<ReferrersCopied, CopyError> {
    let mut done = ReferrersCopied::default();
    let mut queue: Vec<(Digest, usize)> = subjects.iter().map(|d| (d.clone(), 0)).collect();
    while let Some((subject, depth)) = queue.pop() {
        if api.absent() {
            break;
        }
        let listed = tokio::select! {
            r = remote.referrers(repo, &subject) => r,
            _ = ctx.cancel.cancelled() => return Err(CopyError::Canceled),
        };
        let mut listed = match listed {
            Ok(Some(l)) => {
                api.learn(true);
                l
            }
            Ok(None) => {
                api.learn(false);
                break;
            }
            Err(source) => {
                return Err(CopyError::Remote {
                    context: format!("the referrers of {repo}@{subject}"),
                    source,
                });
            }
        };
        if listed.len() > MAX_REFERRERS_PER_MANIFEST {
            done.skipped.push(format!(
                "{repo}@{subject} lists {} referrers; the first {MAX_REFERRERS_PER_MANIFEST} are copied",
                listed.len()
            ));
            listed.truncate(MAX_REFERRERS_PER_MANIFEST);
        }
        for referrer in listed {
            let digest = &referrer.digest;
            if !selection.keeps_referrer(referrer.artifact_type.as_deref())
                || records.iter().any(|r| &r.digest == digest)
            {
                continue;
            }
            if !is_manifest_media_type(&referrer.media_type) {
                done.skipped.push(format!(
                    "referrer {digest} of {subject}: media type {:?} is not a manifest this registry stores",
                    referrer.media_type
                ));
                continue;
            }
            let tree =
                match copy_tree(ctx, remote, repo, digest, &ContentSelection::default()).await {
                    Ok(t) => t,
                    Err(CopyError::Canceled) => return Err(CopyError::Canceled),
                    Err(e) => {
                        done.skipped
                            .push(format!("referrer {digest} of {subject}: {e}"));
                        continue;
                    }
                };
            done.stats.add(tree.stats);
            if tree.top().subject.as_ref() != Some(&subject) {
                done.skipped.push(format!(
                    "referrer {digest} of {subject}: its subject is {}, not the manifest it was listed for",
                    tree.top()
                        .subject
                        .as_ref()
                        .map_or("missing".to_string(), ToString::to_string)
                ));
                continue;
            }
            for r in tree.records {
                if !records.iter().any(|have| have.digest == r.digest) {
                    records.push(r);
                }
            }
            done.copied += 1;
            if depth + 1 < MAX_REFERRER_DEPTH {
                queue.push((digest.clone(), depth + 1));
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn tag_scheme_names_follow_cosign_and_the_artifact_types() {
        let d = Digest::parse(D).unwrap();
        let all = tag_scheme_names(&d, &ContentSelection::default());
        assert_eq!(
            all,
            [
                format!("sha256-{}.sig", &D[7..]),
                format!("sha256-{}.att", &D[7..]),
                format!("sha256-{}.sbom", &D[7..]),
            ]
        );
        assert!(all.iter().all(|t| is_tag_scheme_name(t)));
        let only_signatures = ContentSelection {
            artifact_types: vec![TAG_SCHEME[0].1.to_string()],
            ..Default::default()
        };
        assert_eq!(tag_scheme_names(&d, &only_signatures), all[..1]);
        let off = ContentSelection {
            referrers: false,
            ..Default::default()
        };
        assert!(tag_scheme_names(&d, &off).is_empty());
        for not in ["latest", "sha256-abc.sig", "sha256-{}.txt", "v1.sig"] {
            assert!(!is_tag_scheme_name(not), "{not}");
        }
    }
}
