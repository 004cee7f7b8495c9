//! [`TagTemplate`]: the name a push mirroring policy gives a tag on the
//! remote, as DTR's `tagTemplate`.
//!
//! Codes (anything else is copied as is; every result must be a valid
//! tag, `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`):
//!
//! | code | becomes | example |
//! |------|---------|---------|
//! | `%n` | the local tag's name | `v1.2` |
//! | `%D` | the first 12 hex characters of the manifest digest (regmirror's) | `3f2a9c01be44` |
//! | `%Y` | year, 4 digits | `2026` |
//! | `%y` | year, 2 digits | `26` |
//! | `%m` | month, 01-12 | `12` |
//! | `%d` | day of the month, 01-31 | `01` |
//! | `%j` | day of the year, 001-366 | `335` |
//! | `%H` | hour, 00-23 | `19` |
//! | `%M` | minute, 00-59 | `07` |
//! | `%S` | second, 00-60 | `42` |
//! | `%s` | seconds since 1970-01-01 (Unix time) | `1796151600` |
//! | `%b` | month, abbreviated English name | `Dec` |
//!
//! The date and time are the push's, in UTC. An empty template is `%n`.
//! Pure: no IO.

use chrono::{DateTime, Utc};

use crate::digest::Digest;
use crate::policy::InvalidPolicy;
use crate::reference::validate_tag;

/// The strftime codes a template may use (chrono's meaning), besides `%n`
/// and `%D`.
const TIME_CODES: &[char] = &['Y', 'y', 'm', 'd', 'j', 'H', 'M', 'S', 's', 'b'];

/// A checked tag template (see the module documentation for the codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTemplate(String);

impl Default for TagTemplate {
    fn default() -> Self {
        TagTemplate("%n".into())
    }
}

impl std::fmt::Display for TagTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TagTemplate {
    /// Checks `template` (field `tagTemplate`): only known codes, and a
    /// valid tag for a sample name, digest and time. Empty is `%n`.
    ///
    /// ```
    /// use mirror_core::push_policy::TagTemplate;
    /// assert!(TagTemplate::parse("%n-%Y%m%d").is_ok());
    /// assert!(TagTemplate::parse("%n/%Y").is_err()); // not a tag
    /// assert!(TagTemplate::parse("%q").is_err()); // unknown code
    /// ```
    pub fn parse(template: &str) -> Result<Self, InvalidPolicy> {
        let t = if template.trim().is_empty() {
            TagTemplate::default()
        } else {
            TagTemplate(template.to_string())
        };
        let mut chars = t.0.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                match chars.next() {
                    Some('n' | 'D') => {}
                    Some(code) if TIME_CODES.contains(&code) => {}
                    Some(code) => {
                        return Err(InvalidPolicy::new(
                            "tagTemplate",
                            format!(
                                "unknown code %{code}; known: %n (tag), %D (digest, 12 hex), %Y %y %m %d %j %H %M %S %s %b"
                            ),
                        ));
                    }
                    None => {
                        return Err(InvalidPolicy::new(
                            "tagTemplate",
                            "ends with a lone %; known codes: %n, %D, %Y %y %m %d %j %H %M %S %s %b",
                        ));
                    }
                }
            }
        }
        let sample = t.render("latest", &Digest::of(b""), Utc::now());
        validate_tag(&sample).map_err(|e| {
            InvalidPolicy::new(
                "tagTemplate",
                format!(
                    "{:?} does not make a valid tag ({sample:?}): {}",
                    t.0, e.reason
                ),
            )
        })?;
        Ok(t)
    }

    /// The template as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The remote tag for local tag `tag`, naming manifest `digest`, pushed
    /// at `at` (not checked: see [`TagTemplate::tag_for`]).
    pub fn render(&self, tag: &str, digest: &Digest, at: DateTime<Utc>) -> String {
        let mut out = String::new();
        let mut chars = self.0.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push_str(tag),
                Some('D') => out.extend(digest.hex().chars().take(12)),
                Some(code) if TIME_CODES.contains(&code) => {
                    out.push_str(&at.format(&format!("%{code}")).to_string());
                }
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        out
    }

    /// [`TagTemplate::render`], checked to be a valid tag (a long local
    /// tag with a suffix may pass 128 characters).
    pub fn tag_for(
        &self,
        tag: &str,
        digest: &Digest,
        at: DateTime<Utc>,
    ) -> Result<String, crate::reference::InvalidName> {
        let name = self.render(tag, digest, at);
        validate_tag(&name)?;
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(template: &str, expected: Result<&str, &str>) {
        let at = DateTime::parse_from_rfc3339("2026-12-01T19:07:42Z")
            .unwrap()
            .with_timezone(&Utc);
        let digest = Digest::of(b"x");
        match (TagTemplate::parse(template), expected) {
            (Ok(t), Ok(want)) => assert_eq!(t.render("v1.2", &digest, at), want, "{template}"),
            (Err(e), Err(why)) => assert!(e.reason.contains(why), "{template}: {e}"),
            (got, want) => panic!("{template}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn templates_render_each_code_and_refuse_what_makes_no_tag() {
        let hex12 = &Digest::of(b"x").hex()[..12].to_string();
        check("", Ok("v1.2"));
        check("%n", Ok("v1.2"));
        check("%n-%Y%m%d", Ok("v1.2-20261201"));
        check("%n_%H%M%S", Ok("v1.2_190742"));
        check("%y.%j.%b", Ok("26.335.Dec"));
        check("%s", Ok("1796152062"));
        check("sha-%D", Ok(&format!("sha-{hex12}")));
        check("release", Ok("release"));
        check("%n/%Y", Err("does not make a valid tag"));
        check("%n:x", Err("does not make a valid tag"));
        check("-%n", Err("does not make a valid tag"));
        check("%q", Err("unknown code %q"));
        check("%n%", Err("lone %"));
        check(&"a".repeat(129), Err("does not make a valid tag"));
    }

    #[test]
    fn a_long_tag_is_refused_when_pushed() {
        let t = TagTemplate::parse("%n-suffix").unwrap();
        let long = "a".repeat(125);
        assert!(t.tag_for(&long, &Digest::of(b""), Utc::now()).is_err());
    }
}
