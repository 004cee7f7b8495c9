//! The mark of one repository: what garbage collection keeps and what it
//! may remove, from a [`RepositoryContent`] and the digests held within the
//! grace period. Pure.

use std::collections::{HashMap, HashSet};

use crate::digest::Digest;
use crate::store::{ManifestRecord, RepositoryContent};

/// What one repository keeps and what may go.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RepositoryMark {
    /// Digests the repository still needs: kept manifests, their blobs and
    /// children, blob links that stay.
    pub live: HashSet<Digest>,
    /// Manifests to remove, parents before their children.
    pub manifests: Vec<Digest>,
    /// Blob links no remaining manifest references.
    pub links: Vec<Digest>,
}

/// Marks `content`: kept are the manifests every tag points at, their
/// children (recursively), the referrers of a kept manifest (whose
/// `subject` is kept), manifests in `held` (written or linked within the
/// grace period), and, unless `delete_untagged`, every manifest. A blob
/// link stays while a kept manifest references it or it is in `held`.
pub(crate) fn mark(
    content: &RepositoryContent,
    held: &HashSet<Digest>,
    delete_untagged: bool,
) -> RepositoryMark {
    let by_digest: HashMap<&Digest, &ManifestRecord> =
        content.manifests.iter().map(|m| (&m.digest, m)).collect();
    let mut referrers: HashMap<&Digest, Vec<&Digest>> = HashMap::new();
    for m in &content.manifests {
        if let Some(s) = &m.subject {
            referrers.entry(s).or_default().push(&m.digest);
        }
    }
    let mut stack: Vec<&Digest> = content.tags.iter().map(|(_, d)| d).collect();
    for m in &content.manifests {
        if !delete_untagged || held.contains(&m.digest) {
            stack.push(&m.digest);
        }
    }
    let mut kept: HashSet<&Digest> = HashSet::new();
    while let Some(d) = stack.pop() {
        if !kept.insert(d) {
            continue;
        }
        if let Some(m) = by_digest.get(d) {
            stack.extend(&m.children);
        }
        if let Some(r) = referrers.get(d) {
            stack.extend(r.iter().copied());
        }
    }
    let mut live: HashSet<Digest> = HashSet::new();
    for d in &kept {
        live.insert((*d).clone());
        if let Some(m) = by_digest.get(d) {
            live.extend(m.blobs.iter().cloned());
        }
    }
    // Removed manifests in post order over children, reversed: parents first.
    let mut order: Vec<Digest> = Vec::new();
    let mut seen: HashSet<&Digest> = HashSet::new();
    for m in &content.manifests {
        post_order(&m.digest, &by_digest, &kept, &mut seen, &mut order);
    }
    order.reverse();
    let mut links = Vec::new();
    for d in &content.blobs {
        if live.contains(d) || held.contains(d) {
            live.insert(d.clone());
        } else {
            links.push(d.clone());
        }
    }
    RepositoryMark {
        live,
        manifests: order,
        links,
    }
}

fn post_order<'a>(
    d: &'a Digest,
    by_digest: &HashMap<&'a Digest, &'a ManifestRecord>,
    kept: &HashSet<&'a Digest>,
    seen: &mut HashSet<&'a Digest>,
    out: &mut Vec<Digest>,
) {
    if kept.contains(d) || !seen.insert(d) {
        return;
    }
    let Some(m) = by_digest.get(d) else { return };
    for c in &m.children {
        post_order(c, by_digest, kept, seen, out);
    }
    out.push(d.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn manifest(n: u8, blobs: &[u8], children: &[u8], subject: Option<u8>) -> ManifestRecord {
        ManifestRecord {
            digest: d(n),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 100,
            blobs: blobs.iter().map(|b| d(*b)).collect(),
            children: children.iter().map(|c| d(*c)).collect(),
            subject: subject.map(d),
            artifact_type: None,
        }
    }

    /// Tag `t` → index 1 → image 2 (blobs 10, 11); image 3 (blob 12)
    /// untagged; referrer 4 (blob 13) of image 2; referrer 5 (blob 14) of
    /// the untagged 3; links 10-15 (15 linked by a push, no manifest).
    fn sample() -> RepositoryContent {
        RepositoryContent {
            tags: vec![("t".into(), d(1))],
            manifests: vec![
                manifest(2, &[10, 11], &[], None),
                manifest(1, &[], &[2], None),
                manifest(3, &[12], &[], None),
                manifest(4, &[13], &[], Some(2)),
                manifest(5, &[14], &[], Some(3)),
            ],
            blobs: (10..=15).map(d).collect(),
        }
    }

    #[test]
    fn untagged_manifests_are_kept_by_default() {
        let m = mark(&sample(), &HashSet::new(), false);
        assert!(m.manifests.is_empty());
        assert_eq!(m.links, vec![d(15)], "only the bare pushed link goes");
        for n in [1, 2, 3, 4, 5, 10, 11, 12, 13, 14] {
            assert!(m.live.contains(&d(n)), "{n} kept");
        }
        assert!(!m.live.contains(&d(15)));
    }

    #[test]
    fn deleting_untagged_keeps_tags_children_and_referrers_of_kept_manifests() {
        let m = mark(&sample(), &HashSet::new(), true);
        let mut gone = m.manifests.clone();
        gone.sort();
        let mut want = vec![d(3), d(5)];
        want.sort();
        assert_eq!(gone, want);
        let mut links = m.links.clone();
        links.sort();
        let mut want = vec![d(12), d(14), d(15)];
        want.sort();
        assert_eq!(links, want);
        for n in [1, 2, 4, 10, 11, 13] {
            assert!(m.live.contains(&d(n)), "{n} kept");
        }
        for n in [3, 5, 12, 14, 15] {
            assert!(!m.live.contains(&d(n)), "{n} goes");
        }
    }

    #[test]
    fn held_digests_are_kept_within_the_grace_period() {
        let held: HashSet<Digest> = [d(3), d(15)].into();
        let m = mark(&sample(), &held, true);
        // 3 is held, so kept, and 5 refers to it; 15 is a fresh push.
        assert!(m.manifests.is_empty());
        assert!(m.links.is_empty());
        for n in [3, 5, 12, 14, 15] {
            assert!(m.live.contains(&d(n)), "{n} kept");
        }
    }

    #[test]
    fn an_untagged_index_goes_before_its_children() {
        let content = RepositoryContent {
            tags: vec![],
            manifests: vec![
                manifest(2, &[10], &[], None),
                manifest(3, &[11], &[], None),
                manifest(1, &[], &[2, 3], None),
            ],
            blobs: vec![d(10), d(11)],
        };
        let m = mark(&content, &HashSet::new(), true);
        assert_eq!(m.manifests.first(), Some(&d(1)));
        assert_eq!(m.manifests.len(), 3);
        assert!(m.live.is_empty());
    }
}
