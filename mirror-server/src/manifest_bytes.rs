//! The bytes of recently served manifests, by digest, so a manifest `GET`
//! (clients fetch the same few over and over) does not open a file or an
//! object each time.
//!
//! Safe to share between repositories because the key is the digest of
//! the bytes, which the store checked when they were written; whether a
//! repository holds a manifest is still decided per request. Bounded by
//! [`MAX_BYTES`] in all (the oldest go first) and [`MAX_ONE`] per entry.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use mirror_core::Digest;

/// Bytes kept in all.
pub const MAX_BYTES: usize = 16 << 20;
/// The largest manifest kept (larger ones are read each time).
pub const MAX_ONE: usize = 256 << 10;

/// See the module docs.
#[derive(Default)]
pub struct ManifestBytes {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    by_digest: HashMap<Digest, Bytes>,
    /// Oldest first.
    order: VecDeque<Digest>,
    bytes: usize,
}

impl ManifestBytes {
    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bytes of `digest`, if kept.
    pub fn get(&self, digest: &Digest) -> Option<Bytes> {
        self.kept().by_digest.get(digest).cloned()
    }

    /// Keeps `bytes`, which the store holds as `digest`.
    pub fn keep(&self, digest: &Digest, bytes: &Bytes) {
        if bytes.len() > MAX_ONE {
            return;
        }
        let mut kept = self.kept();
        if kept.by_digest.contains_key(digest) {
            return;
        }
        while kept.bytes + bytes.len() > MAX_BYTES {
            let Some(oldest) = kept.order.pop_front() else {
                break;
            };
            if let Some(b) = kept.by_digest.remove(&oldest) {
                kept.bytes -= b.len();
            }
        }
        kept.bytes += bytes.len();
        kept.order.push_back(digest.clone());
        kept.by_digest.insert(digest.clone(), bytes.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(i: usize) -> Digest {
        Digest::parse(&format!("sha256:{i:064x}")).unwrap()
    }

    #[test]
    fn bounded_by_bytes_oldest_first() {
        let cache = ManifestBytes::default();
        let big = Bytes::from(vec![0u8; MAX_ONE]);
        let n = MAX_BYTES / MAX_ONE;
        for i in 0..=n {
            cache.keep(&digest(i), &big);
        }
        assert!(cache.get(&digest(0)).is_none(), "the oldest went");
        assert!(cache.get(&digest(n)).is_some());
        assert!(cache.kept().bytes <= MAX_BYTES);
        cache.keep(&digest(n + 1), &Bytes::from(vec![0u8; MAX_ONE + 1]));
        assert!(cache.get(&digest(n + 1)).is_none(), "too big to keep");
    }
}
