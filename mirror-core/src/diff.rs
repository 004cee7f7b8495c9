//! The tag diff: which remote tags a poll copies. Pure, no IO.
//!
//! Inputs are the remote tags with their current digests, the local tags, and
//! (for policies saved without initial evaluation) the baseline of remote
//! tags that existed when the policy was saved.

use std::collections::HashMap;

use crate::digest::Digest;

/// Why a tag is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The local repository does not have the tag.
    New,
    /// The local tag points at another digest than the remote one.
    Moved,
}

/// A tag to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCopy {
    /// The tag.
    pub tag: String,
    /// The remote digest to copy.
    pub digest: Digest,
    /// New or moved.
    pub change: Change,
}

/// What a poll will do, tag by tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPlan {
    /// Tags to copy, sorted by tag.
    pub copy: Vec<TagCopy>,
    /// How many tags are already at the remote digest.
    pub unchanged: usize,
    /// How many tags existed (at this digest) before a "Save"-only policy,
    /// so they are not mirrored.
    pub preexisting: usize,
}

/// Computes the plan.
///
/// `baseline` is `None` for initial evaluation ("Save & Apply": mirror all),
/// else the remote tags recorded at creation: a tag is then copied only if it
/// is absent from the baseline, or its digest differs from the baseline's, or
/// it was mirrored already and has moved since.
///
/// ```
/// use std::collections::HashMap;
/// use mirror_core::{diff::{plan, Change}, Digest};
/// let d1 = Digest::of(b"1");
/// let d2 = Digest::of(b"2");
/// let remote = HashMap::from([("a".to_string(), d1.clone()), ("b".to_string(), d2.clone())]);
/// let local = HashMap::from([("a".to_string(), d1.clone())]);
/// let p = plan(&remote, &local, None);
/// assert_eq!(p.unchanged, 1);
/// assert_eq!(p.copy[0].tag, "b");
/// assert_eq!(p.copy[0].change, Change::New);
/// ```
pub fn plan(
    remote: &HashMap<String, Digest>,
    local: &HashMap<String, Digest>,
    baseline: Option<&HashMap<String, Digest>>,
) -> SyncPlan {
    // One pass in the maps' order, so the cost grows linearly with the tag
    // count; only the tags to copy (usually few) are sorted.
    let mut out = SyncPlan::default();
    for (tag, digest) in remote {
        match local.get(tag) {
            Some(l) if l == digest => out.unchanged += 1,
            Some(_) => out.copy.push(TagCopy {
                tag: tag.clone(),
                digest: digest.clone(),
                change: Change::Moved,
            }),
            None => {
                if baseline.and_then(|b| b.get(tag)) == Some(digest) {
                    out.preexisting += 1;
                } else {
                    out.copy.push(TagCopy {
                        tag: tag.clone(),
                        digest: digest.clone(),
                        change: Change::New,
                    });
                }
            }
        }
    }
    out.copy.sort_unstable_by(|a, b| a.tag.cmp(&b.tag));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn map(items: &[(&str, u8)]) -> HashMap<String, Digest> {
        items.iter().map(|(t, n)| (t.to_string(), d(*n))).collect()
    }

    fn check(
        remote: &[(&str, u8)],
        local: &[(&str, u8)],
        baseline: Option<&[(&str, u8)]>,
        copy: &[(&str, Change)],
        unchanged: usize,
        pre: usize,
    ) {
        let b = baseline.map(map);
        let p = plan(&map(remote), &map(local), b.as_ref());
        let got: Vec<(&str, Change)> = p.copy.iter().map(|c| (c.tag.as_str(), c.change)).collect();
        assert_eq!(got, copy);
        assert_eq!(p.unchanged, unchanged);
        assert_eq!(p.preexisting, pre);
    }

    #[test]
    fn initial_evaluation_copies_everything_missing_or_moved() {
        check(
            &[("a", 1), ("b", 2), ("c", 3)],
            &[("a", 1), ("b", 9)],
            None,
            &[("b", Change::Moved), ("c", Change::New)],
            1,
            0,
        );
    }

    #[test]
    fn save_only_skips_baseline_tags_until_they_move() {
        let baseline: &[(&str, u8)] = &[("old", 1), ("moving", 2)];
        check(
            &[("old", 1), ("moving", 3), ("fresh", 4)],
            &[],
            Some(baseline),
            &[("fresh", Change::New), ("moving", Change::New)],
            0,
            1,
        );
        // Once mirrored, a baseline tag that moves again is a normal move.
        check(
            &[("moving", 5)],
            &[("moving", 3)],
            Some(baseline),
            &[("moving", Change::Moved)],
            0,
            0,
        );
    }

    #[test]
    fn local_only_tags_are_left_alone() {
        check(&[], &[("local", 1)], None, &[], 0, 0);
    }
}
