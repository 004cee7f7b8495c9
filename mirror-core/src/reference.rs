//! Repository names and tags, validated against the OCI distribution grammar.
//!
//! Names are validated once at the edge (API, Python, policy creation) so that
//! no later code has to worry about `..`, upper case or empty components.

use std::fmt;

/// Why a repository name or tag is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct InvalidName {
    /// `repository name` or `tag`.
    pub what: &'static str,
    /// The rejected text (truncated to 300 characters).
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The longest repository name accepted (the spec's recommended limit).
pub const MAX_NAME_LEN: usize = 255;

/// A repository name such as `library/nginx` or `acme/tools/build`.
///
/// Follows the OCI grammar: path components of `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
/// separated by `/`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct RepositoryName(String);

impl RepositoryName {
    /// Validates a repository name.
    ///
    /// ```
    /// use mirror_core::RepositoryName;
    /// assert!(RepositoryName::parse("library/nginx").is_ok());
    /// assert!(RepositoryName::parse("Library/nginx").is_err());
    /// assert!(RepositoryName::parse("a/../b").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        let fail = |reason| InvalidName {
            what: "repository name",
            value: s.chars().take(300).collect(),
            reason,
        };
        if s.is_empty() {
            return Err(fail("it is empty"));
        }
        if s.len() > MAX_NAME_LEN {
            return Err(fail("it is longer than 255 characters"));
        }
        for component in s.split('/') {
            if !valid_component(component) {
                return Err(fail(
                    "each path component must be lower-case letters and digits, separated by '.', '_', '__' or '-'",
                ));
            }
        }
        Ok(RepositoryName(s.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first path component, as DTR's API names a repository's
    /// namespace (`hub` in `hub/library/alpine`); empty for
    /// single-component names. With [`Self::name_in_namespace`] it makes
    /// the `/api/v0/repositories/{namespace}/{name}` path.
    pub fn namespace(&self) -> &str {
        self.0.split_once('/').map(|(ns, _)| ns).unwrap_or("")
    }

    /// The first path component: the account or organization whose
    /// namespace holds the repository (a server decides access by it).
    pub fn owner_namespace(&self) -> &str {
        self.0.split('/').next().unwrap_or_default()
    }

    /// Everything after the [`Self::namespace`] (`library/alpine` in
    /// `hub/library/alpine`); the whole name for single-component names.
    pub fn name_in_namespace(&self) -> &str {
        self.0.split_once('/').map(|(_, n)| n).unwrap_or(&self.0)
    }
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        let sep = b[i];
        while i < b.len() && !alnum(b[i]) {
            if b[i] != sep {
                return false;
            }
            i += 1;
        }
        let run = i - start;
        let ok = match sep {
            b'.' => run == 1,
            b'_' => run <= 2,
            b'-' => true,
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::str::FromStr for RepositoryName {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for RepositoryName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Validates a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
///
/// ```
/// assert!(mirror_core::reference::validate_tag("v1.2.3-rc_1").is_ok());
/// assert!(mirror_core::reference::validate_tag(".hidden").is_err());
/// ```
pub fn validate_tag(tag: &str) -> Result<(), InvalidName> {
    let fail = |reason| InvalidName {
        what: "tag",
        value: tag.chars().take(300).collect(),
        reason,
    };
    let b = tag.as_bytes();
    if b.is_empty() {
        return Err(fail("it is empty"));
    }
    if b.len() > 128 {
        return Err(fail("it is longer than 128 characters"));
    }
    if !(b[0].is_ascii_alphanumeric() || b[0] == b'_') {
        return Err(fail("it must start with a letter, digit or '_'"));
    }
    if !b
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    {
        return Err(fail(
            "it may contain only letters, digits, '_', '.' and '-'",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, ok: bool) {
        assert_eq!(RepositoryName::parse(name).is_ok(), ok, "{name}");
    }

    #[test]
    fn name_grammar() {
        check("nginx", true);
        check("library/nginx", true);
        check("a/b/c-d__e.f", true);
        check("a--b", true);
        check("a___b", false);
        check("a..b", false);
        check("a/", false);
        check("/a", false);
        check("a//b", false);
        check("..", false);
        check("a/%2e%2e/b", false);
        check("-a", false);
        check("a_", false);
        check(&"a".repeat(256), false);
    }

    #[test]
    fn namespace_split() {
        let n = RepositoryName::parse("acme/tools/build").unwrap();
        assert_eq!(n.namespace(), "acme");
        assert_eq!(n.name_in_namespace(), "tools/build");
        let n = RepositoryName::parse("alpine").unwrap();
        assert_eq!((n.namespace(), n.name_in_namespace()), ("", "alpine"));
    }
}
