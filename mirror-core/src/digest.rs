//! Content digests (`sha256:<64 hex>`), parsed once and hashed while streaming.
//!
//! Only SHA-256 is accepted: it is what every registry serves, and accepting
//! an algorithm we cannot verify would let unverified bytes into the store.

use std::fmt;
use std::str::FromStr;

use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest as _, Sha256};

/// Why a string is not a valid digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {value:?}: {reason}")]
pub struct InvalidDigest {
    /// The rejected text (truncated to 100 characters).
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A validated `sha256:` content digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// Lower-case hex, 64 characters.
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 lower-case hex>`.
    ///
    /// ```
    /// let d: mirror_core::Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse().unwrap();
    /// assert_eq!(d.hex().len(), 64);
    /// assert!("md5:abc".parse::<mirror_core::Digest>().is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, InvalidDigest> {
        let fail = |reason| InvalidDigest {
            value: s.chars().take(100).collect(),
            reason,
        };
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| fail("only sha256 digests are supported"))?;
        if hex.len() != 64 {
            return Err(fail("a sha256 digest has 64 hex characters"));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(fail("a sha256 digest is lower-case hex"));
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest {
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The 64 hex characters, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The algorithm name; always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = InvalidDigest;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A saved hasher state that [`Hasher::resume`] cannot read.
#[derive(Debug, thiserror::Error)]
#[error("not a saved sha256 hasher state")]
pub struct InvalidHashState;

/// A running SHA-256 over a stream of chunks, with a byte count.
///
/// ```
/// let mut h = mirror_core::Hasher::new();
/// h.update(b"hello ");
/// h.update(b"world");
/// assert_eq!(h.finish(), mirror_core::Digest::of(b"hello world"));
/// ```
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    /// A hasher that has seen no bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.inner.update(chunk);
        self.len += chunk.len() as u64;
    }

    /// How many bytes were fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte was fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The hasher's state as text (byte count and SHA-256 state), so
    /// that another process may go on where this one stopped:
    /// [`Hasher::resume`]. A chunked upload keeps it between requests.
    ///
    /// ```
    /// let mut h = mirror_core::Hasher::new();
    /// h.update(b"hello ");
    /// let mut h = mirror_core::Hasher::resume(&h.save()).unwrap();
    /// h.update(b"world");
    /// assert_eq!(h.finish(), mirror_core::Digest::of(b"hello world"));
    /// ```
    pub fn save(&self) -> String {
        format!("{}:{}", self.len, hex::encode(self.inner.serialize()))
    }

    /// A hasher in the state [`Hasher::save`] wrote.
    pub fn resume(saved: &str) -> Result<Self, InvalidHashState> {
        let (len, state) = saved.split_once(':').ok_or(InvalidHashState)?;
        let len: u64 = len.parse().map_err(|_| InvalidHashState)?;
        let bytes = hex::decode(state).map_err(|_| InvalidHashState)?;
        let state =
            SerializedState::<Sha256>::try_from(bytes.as_slice()).map_err(|_| InvalidHashState)?;
        let inner = Sha256::deserialize(&state).map_err(|_| InvalidHashState)?;
        Ok(Hasher { inner, len })
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        Digest {
            hex: hex::encode(self.inner.finalize()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "",
            "sha256:",
            "sha512:abcd",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:../../etc/passwd",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn hasher_matches_one_shot() {
        let mut h = Hasher::new();
        h.update(b"");
        assert_eq!(
            h.finish().to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn saved_state_resumes_at_any_split() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        for split in [0, 1, 63, 64, 65, 128, 299, 300] {
            let mut h = Hasher::new();
            h.update(&data[..split]);
            let mut h = Hasher::resume(&h.save()).unwrap();
            assert_eq!(h.len(), split as u64);
            h.update(&data[split..]);
            assert_eq!(h.finish(), Digest::of(&data), "split at {split}");
        }
        for bad in ["", "5", "x:00", "1:zz", "1:00", "-1:"] {
            assert!(Hasher::resume(bad).is_err(), "{bad:?}");
        }
    }
}
