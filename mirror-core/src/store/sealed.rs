//! [`SecretKeys`]: remote passwords and tokens sealed at rest.
//!
//! A policy's `password` and `authToken` are stored as
//! `sealed:v1:<key id>:<base64(nonce ‖ ciphertext)>`, XChaCha20-Poly1305
//! with a random 192-bit nonce per value and the policy ID and field name as
//! associated data (a sealed value cannot be moved to another policy or
//! field). A copy of the database alone reveals no remote secret. A
//! backend with binary columns (PostgreSQL) keeps the same sealing as bytes
//! ([`SecretKeys::seal_bytes`]).
//!
//! The key is 32 bytes: `MIRROR_SECRET_KEY` (64 hex characters or base64),
//! else the file `secret.key` in the data directory, created owner-only
//! with a random key on first start. Rotation: set `MIRROR_SECRET_KEY` to a
//! new key and `MIRROR_SECRET_KEY_PREVIOUS` to the old one(s), comma
//! separated; on open, every value sealed with an older key (or stored in
//! plain text by a version before sealing) is sealed again with the current
//! one, after which the previous keys can be dropped.

use std::path::Path;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::Digest as _;

use super::StoreError;
use super::layout::Layout;

/// The environment variable holding the current key.
const KEY_ENV: &str = "MIRROR_SECRET_KEY";
/// The environment variable holding earlier keys, comma separated.
const PREVIOUS_KEYS_ENV: &str = "MIRROR_SECRET_KEY_PREVIOUS";

const PREFIX: &str = "sealed:v1:";
const NONCE_LEN: usize = 24;
/// The first byte of [`SecretKeys::seal_bytes`]'s format.
const BYTES_VERSION: u8 = 1;
/// A key ID's length in bytes (8 hex characters in the text format).
const KEY_ID_LEN: usize = 4;

/// One 256-bit key and its public ID (the first 8 hex characters of its
/// SHA-256), which says which key sealed a value.
#[derive(Clone)]
struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl Key {
    fn new(bytes: [u8; 32]) -> Self {
        let id = hex::encode(&sha2::Sha256::digest(bytes)[..4]);
        Key {
            id,
            cipher: XChaCha20Poly1305::new(&bytes.into()),
        }
    }
}

/// The keys that seal and open remote secrets: the current one, and older
/// ones still accepted for opening.
#[derive(Clone)]
pub struct SecretKeys {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKeys")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn invalid_key(what: &str, reason: &str) -> StoreError {
    StoreError::Corrupt {
        reason: format!("{what}: {reason}; give 32 bytes as 64 hex characters or base64"),
    }
}

/// Decodes a key given as 64 hex characters or base64 of 32 bytes.
fn parse_key(text: &str, what: &str) -> Result<[u8; 32], StoreError> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).map_err(|_| invalid_key(what, "not hex"))?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| invalid_key(what, "neither hex nor base64"))?
    };
    bytes
        .try_into()
        .map_err(|_| invalid_key(what, "not 32 bytes long"))
}

impl SecretKeys {
    /// A key set with only `key`.
    pub fn from_key(key: [u8; 32]) -> Self {
        SecretKeys {
            current: Key::new(key),
            previous: Vec::new(),
        }
    }

    /// These keys, with `key` accepted for opening values it sealed (a key
    /// being rotated out): values sealed with it are sealed again with the
    /// current key when a store opens.
    pub fn with_previous(mut self, key: [u8; 32]) -> Self {
        self.previous.push(Key::new(key));
        self
    }

    /// The keys for the data directory `root`: from `MIRROR_SECRET_KEY` (and
    /// `MIRROR_SECRET_KEY_PREVIOUS`) when set, else `root/secret.key`, created
    /// owner-only with a random key when missing.
    pub fn load(root: &Path) -> Result<Self, StoreError> {
        let current = match std::env::var(KEY_ENV) {
            Ok(v) if !v.trim().is_empty() => parse_key(&v, KEY_ENV)?,
            _ => key_file(root)?,
        };
        let mut keys = SecretKeys::from_key(current);
        if let Ok(v) = std::env::var(PREVIOUS_KEYS_ENV) {
            for part in v.split(',').filter(|p| !p.trim().is_empty()) {
                keys.previous
                    .push(Key::new(parse_key(part, PREVIOUS_KEYS_ENV)?));
            }
        }
        // A key file left from before the variable was set still opens.
        if std::env::var(KEY_ENV).is_ok_and(|v| !v.trim().is_empty())
            && let Ok(text) = std::fs::read_to_string(Layout::secret_key(root))
            && let Ok(old) = parse_key(&text, "secret.key")
        {
            keys.previous.push(Key::new(old));
        }
        Ok(keys)
    }

    /// Seals `plain` for `context` (the policy ID and field). An empty
    /// secret stays empty.
    pub fn seal(&self, plain: &str, context: &str) -> String {
        if plain.is_empty() {
            return String::new();
        }
        format!(
            "{PREFIX}{}:{}",
            self.current.id,
            base64::engine::general_purpose::STANDARD.encode(self.encrypt(plain, context))
        )
    }

    /// [`SecretKeys::seal`] for a binary column (PostgreSQL's `bytea`):
    /// `BYTES_VERSION ‖ key ID (4 bytes) ‖ nonce ‖ ciphertext`. An empty
    /// secret stays empty.
    pub fn seal_bytes(&self, plain: &str, context: &str) -> Vec<u8> {
        if plain.is_empty() {
            return Vec::new();
        }
        let mut out = vec![BYTES_VERSION];
        out.extend(hex::decode(&self.current.id).expect("a key ID is hex"));
        out.extend(self.encrypt(plain, context));
        out
    }

    /// `nonce ‖ ciphertext` of `plain` under the current key.
    fn encrypt(&self, plain: &str, context: &str) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = XNonce::from(nonce_bytes);
        let sealed = self
            .current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory sizes");
        let mut blob = nonce_bytes.to_vec();
        blob.extend_from_slice(&sealed);
        blob
    }

    /// Opens a stored value sealed for `context`. A value without the
    /// sealed prefix was written in plain text by an older version and is
    /// returned as is (and sealed on the next open of the store).
    pub fn open(&self, stored: &str, context: &str) -> Result<String, StoreError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let (id, b64) = rest
            .split_once(':')
            .ok_or_else(|| sealed_error(context, "malformed".into()))?;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| sealed_error(context, "not base64".into()))?;
        self.decrypt(id, &blob, context)
    }

    /// Opens what [`SecretKeys::seal_bytes`] sealed for `context` (empty
    /// stays empty).
    pub fn open_bytes(&self, stored: &[u8], context: &str) -> Result<String, StoreError> {
        match stored {
            [] => Ok(String::new()),
            [BYTES_VERSION, id @ ..] if id.len() >= KEY_ID_LEN => {
                let (id, blob) = id.split_at(KEY_ID_LEN);
                self.decrypt(&hex::encode(id), blob, context)
            }
            _ => Err(sealed_error(context, "malformed".into())),
        }
    }

    /// Decrypts `nonce ‖ ciphertext` sealed with the key `id`.
    fn decrypt(&self, id: &str, blob: &[u8], context: &str) -> Result<String, StoreError> {
        let fail = |reason: String| sealed_error(context, reason);
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| {
                fail(format!(
                    "sealed with key {id}, which is neither {KEY_ENV} nor in {PREVIOUS_KEYS_ENV}"
                ))
            })?;
        if blob.len() < NONCE_LEN {
            return Err(fail("too short".into()));
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let plain = key
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| fail("does not authenticate (wrong key, or altered)".into()))?;
        String::from_utf8(plain).map_err(|_| fail("not UTF-8".into()))
    }

    /// Whether `stored` should be sealed again: plain text, or sealed with
    /// a key other than the current one.
    pub fn needs_reseal(&self, stored: &str) -> bool {
        if stored.is_empty() {
            return false;
        }
        match stored.strip_prefix(PREFIX) {
            None => true,
            Some(rest) => !rest.starts_with(&format!("{}:", self.current.id)),
        }
    }

    /// [`SecretKeys::needs_reseal`] for what [`SecretKeys::seal_bytes`]
    /// wrote: sealed with a key other than the current one.
    pub fn needs_reseal_bytes(&self, stored: &[u8]) -> bool {
        !stored.is_empty()
            && stored.get(1..1 + KEY_ID_LEN).map(hex::encode).as_deref()
                != Some(self.current.id.as_str())
    }
}

fn sealed_error(context: &str, reason: String) -> StoreError {
    StoreError::Corrupt {
        reason: format!("sealed secret of {context}: {reason}"),
    }
}

/// The key in `root/secret.key`, created (owner-only, atomically: a
/// concurrent start reads the same key) when missing.
fn key_file(root: &Path) -> Result<[u8; 32], StoreError> {
    let path = Layout::secret_key(root);
    match std::fs::read_to_string(&path) {
        Ok(text) => return parse_key(&text, &path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io(format!("reading {}", path.display()), e)),
    }
    let key: [u8; 32] = rand::random();
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let io = |what: &str, e| StoreError::io(format!("{what} {}", path.display()), e);
    {
        let mut f = super::open_private_file(&tmp, true).map_err(|e| io("creating", e))?;
        std::io::Write::write_all(&mut f, format!("{}\n", hex::encode(key)).as_bytes())
            .map_err(|e| io("writing", e))?;
        f.sync_all().map_err(|e| io("writing", e))?;
    }
    // `hard_link` fails when another process created the file first: use theirs.
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path).map_err(|e| io("reading", e))?;
            parse_key(&text, &path.display().to_string())
        }
        Err(e) => Err(io("creating", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let keys = SecretKeys::from_key([7; 32]);
        let sealed = keys.seal("hunter2", "policy p1 password");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("hunter2"));
        assert_eq!(keys.open(&sealed, "policy p1 password").unwrap(), "hunter2");
        assert!(keys.open(&sealed, "policy p2 password").is_err());
        assert!(
            SecretKeys::from_key([8; 32])
                .open(&sealed, "policy p1 password")
                .is_err()
        );
        // Two seals of one value differ (random nonce).
        assert_ne!(sealed, keys.seal("hunter2", "policy p1 password"));
        assert_eq!(keys.seal("", "x"), "");
        assert_eq!(keys.open("", "x").unwrap(), "");
    }

    #[test]
    fn the_binary_form_opens_only_with_its_key_and_context() {
        let keys = SecretKeys::from_key([7; 32]);
        let sealed = keys.seal_bytes("hunter2", "policy p1 password");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            keys.open_bytes(&sealed, "policy p1 password").unwrap(),
            "hunter2"
        );
        assert!(keys.open_bytes(&sealed, "policy p2 password").is_err());
        assert!(keys.open_bytes(&sealed[..3], "policy p1 password").is_err());
        assert!(!keys.needs_reseal_bytes(&sealed));
        assert!(keys.seal_bytes("", "x").is_empty());
        assert_eq!(keys.open_bytes(&[], "x").unwrap(), "");
        let mut new = SecretKeys::from_key([8; 32]);
        assert!(new.open_bytes(&sealed, "policy p1 password").is_err());
        assert!(new.needs_reseal_bytes(&sealed));
        new.previous.push(Key::new([7; 32]));
        assert_eq!(
            new.open_bytes(&sealed, "policy p1 password").unwrap(),
            "hunter2"
        );
    }

    #[test]
    fn rotation_opens_old_values_and_asks_to_reseal_them() {
        let old = SecretKeys::from_key([1; 32]);
        let sealed = old.seal("pw", "c");
        let mut new = SecretKeys::from_key([2; 32]);
        assert!(new.open(&sealed, "c").is_err());
        new.previous.push(Key::new([1; 32]));
        assert_eq!(new.open(&sealed, "c").unwrap(), "pw");
        assert!(new.needs_reseal(&sealed));
        assert!(new.needs_reseal("plain text from an old version"));
        assert!(!new.needs_reseal(&new.seal("pw", "c")));
    }

    #[test]
    fn the_key_file_is_created_once_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let a = key_file(dir.path()).unwrap();
        let b = key_file(dir.path()).unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(Layout::secret_key(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(parse_key("00", "k").is_err());
    }
}
