//! Tag rules: which remote tags a policy mirrors.
//!
//! DTR's rule form (`{"field": "tag", "operator": "sw", "values": ["1."]}`)
//! with its operators `eq`, `sw` (starts with), `ew` (ends with), `c`
//! (contains), `oo` (one of) and `noo` (none of), and three more:
//! `matches` (a regular expression, whole tag), `semver` (a range such as
//! `>=1.20 <2` or `^1.2`, on tags that read as versions: `1.20`, `v1.20.3`,
//! `1.20.3-alpine`) and `newest` (`values: ["5"]`: of the tags the other
//! rules keep, the 5 highest versions; with `"by": "created"`, the 5 whose
//! images were built last, as their configs' `created` says, which a poll
//! reads from the remote: see [`crate::created`]). A rule with
//! `"exclude": true` drops what it matches.
//!
//! A tag is mirrored when it matches every rule that keeps and no rule
//! that drops; then `newest` cuts the list. A policy without rules mirrors
//! every tag. [`TagFilter::new`] checks the rules once (a bad pattern or
//! range is an error naming `rules[i].values`), so a poll never meets an
//! invalid one.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// A rule's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RuleOperator {
    /// The tag equals one of the values.
    Eq,
    /// The tag starts with one of the values.
    Sw,
    /// The tag ends with one of the values.
    Ew,
    /// The tag contains one of the values.
    C,
    /// The tag is one of the values (as `eq`).
    Oo,
    /// The tag is none of the values.
    Noo,
    /// The whole tag matches one of the values, regular expressions.
    Matches,
    /// The tag reads as a version within every range of the values.
    Semver,
    /// Of the tags the other rules keep, the highest versions, as many as
    /// the one value says.
    Newest,
}

/// One rule (DTR's `rules` item, with `exclude` added).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TagRule {
    /// What the rule looks at: `tag` (the only field polls match on).
    #[serde(default = "tag_field")]
    pub field: String,
    /// How the tag is compared with `values`.
    pub operator: RuleOperator,
    /// The values compared with.
    #[serde(default)]
    pub values: Vec<String>,
    /// Drop the tags the rule matches instead of keeping only them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclude: bool,
    /// How `newest` orders the tags (default: by version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<NewestBy>,
}

/// How a `newest` rule orders tags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum NewestBy {
    /// The highest versions (tags that read as versions only).
    #[default]
    Version,
    /// The images built last: their configs' `created` time. The
    /// distribution API records no push time; this is the nearest thing a
    /// registry serves.
    Created,
}

fn tag_field() -> String {
    "tag".into()
}

/// A rule that cannot be used, with the field it is in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidRule {
    /// `rules[i].values` (or `.field`, `.operator`).
    pub field: String,
    /// Why.
    pub reason: String,
}

/// The most rules a policy holds, values a rule holds, and bytes a value
/// (a pattern included) holds.
const MAX_RULES: usize = 50;
const MAX_VALUES: usize = 1000;
const MAX_VALUE_LEN: usize = 1000;

/// A compiled rule.
#[derive(Debug, Clone)]
enum Test {
    Eq(Vec<String>),
    Sw(Vec<String>),
    Ew(Vec<String>),
    C(Vec<String>),
    Noo(Vec<String>),
    Matches(Vec<regex::Regex>),
    Semver(Vec<semver::VersionReq>),
}

impl Test {
    fn matches(&self, tag: &str) -> bool {
        match self {
            Test::Eq(v) => v.iter().any(|x| x == tag),
            Test::Sw(v) => v.iter().any(|x| tag.starts_with(x.as_str())),
            Test::Ew(v) => v.iter().any(|x| tag.ends_with(x.as_str())),
            Test::C(v) => v.iter().any(|x| tag.contains(x.as_str())),
            Test::Noo(v) => !v.iter().any(|x| x == tag),
            Test::Matches(v) => v.iter().any(|r| r.is_match(tag)),
            Test::Semver(reqs) => version(tag).is_some_and(|v| reqs.iter().all(|r| r.matches(&v))),
        }
    }
}

/// The rules of a policy, checked and compiled.
#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    keep: Vec<Test>,
    drop: Vec<Test>,
    newest: Option<(usize, NewestBy)>,
}

fn invalid(i: usize, part: &str, reason: impl Into<String>) -> InvalidRule {
    InvalidRule {
        field: format!("rules[{i}].{part}"),
        reason: reason.into(),
    }
}

/// `>=1.20 <2` (space-separated, as npm writes ranges) as the `semver`
/// crate reads it (`>=1.20, <2`).
fn version_req(text: &str) -> Result<semver::VersionReq, semver::Error> {
    let joined = text
        .split([' ', ','])
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    semver::VersionReq::parse(&joined)
}

/// A tag as a version, leniently: an optional `v`, one to three numbers
/// (missing ones are 0), and an optional `-suffix` (a pre-release, which
/// ranges leave out unless they name one). `None` for other tags.
pub fn version(tag: &str) -> Option<semver::Version> {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    let (numbers, pre) = match t.split_once('-') {
        Some((n, p)) => (n, Some(p)),
        None => (t, None),
    };
    let parts: Vec<&str> = numbers.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut n = [0u64; 3];
    for (slot, part) in n.iter_mut().zip(&parts) {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    let mut v = semver::Version::new(n[0], n[1], n[2]);
    if let Some(pre) = pre {
        v.pre = semver::Prerelease::new(pre).ok()?;
    }
    Some(v)
}

impl TagFilter {
    /// Checks and compiles `rules`.
    pub fn new(rules: &[TagRule]) -> Result<Self, InvalidRule> {
        if rules.len() > MAX_RULES {
            return Err(InvalidRule {
                field: "rules".into(),
                reason: format!("{} rules; at most {MAX_RULES}", rules.len()),
            });
        }
        let mut filter = TagFilter::default();
        for (i, rule) in rules.iter().enumerate() {
            if rule.field != "tag" {
                return Err(invalid(
                    i,
                    "field",
                    format!("{:?}: only \"tag\" is matched", rule.field),
                ));
            }
            if rule.values.is_empty() {
                return Err(invalid(i, "values", "at least one value"));
            }
            if rule.values.len() > MAX_VALUES {
                return Err(invalid(i, "values", format!("at most {MAX_VALUES} values")));
            }
            if let Some(long) = rule.values.iter().find(|v| v.len() > MAX_VALUE_LEN) {
                return Err(invalid(
                    i,
                    "values",
                    format!("a value of {} bytes; at most {MAX_VALUE_LEN}", long.len()),
                ));
            }
            if rule.by.is_some() && rule.operator != RuleOperator::Newest {
                return Err(invalid(i, "by", "only a \"newest\" rule is ordered"));
            }
            let values = rule.values.clone();
            let test = match rule.operator {
                RuleOperator::Eq | RuleOperator::Oo => Test::Eq(values),
                RuleOperator::Sw => Test::Sw(values),
                RuleOperator::Ew => Test::Ew(values),
                RuleOperator::C => Test::C(values),
                RuleOperator::Noo => Test::Noo(values),
                RuleOperator::Matches => Test::Matches(
                    values
                        .iter()
                        .map(|v| {
                            regex::RegexBuilder::new(&format!("^(?:{v})$"))
                                .size_limit(1 << 20)
                                .build()
                                .map_err(|e| invalid(i, "values", format!("{v:?}: {e}")))
                        })
                        .collect::<Result<_, _>>()?,
                ),
                RuleOperator::Semver => Test::Semver(
                    values
                        .iter()
                        .map(|v| {
                            version_req(v).map_err(|e| {
                                invalid(i, "values", format!("{v:?} is not a version range: {e}"))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                ),
                RuleOperator::Newest => {
                    let n = match values.as_slice() {
                        [one] => one.trim().parse::<usize>().ok().filter(|n| *n > 0),
                        _ => None,
                    };
                    let n = n.ok_or_else(|| {
                        invalid(i, "values", "one positive number: how many tags to keep")
                    })?;
                    if rule.exclude || filter.newest.is_some() {
                        return Err(invalid(
                            i,
                            "operator",
                            "one \"newest\" rule, not an exclusion",
                        ));
                    }
                    filter.newest = Some((n, rule.by.unwrap_or_default()));
                    continue;
                }
            };
            if rule.exclude {
                filter.drop.push(test);
            } else {
                filter.keep.push(test);
            }
        }
        Ok(filter)
    }

    /// Whether there are no rules (every tag is mirrored).
    pub fn is_empty(&self) -> bool {
        self.keep.is_empty() && self.drop.is_empty() && self.newest.is_none()
    }

    /// How many tags `newest` by creation time keeps, when the rules have
    /// such a rule: then [`TagFilter::apply`] leaves that cut to the
    /// caller, which knows the times ([`TagFilter::newest_created`]).
    pub fn newest_by_created(&self) -> Option<usize> {
        match self.newest {
            Some((n, NewestBy::Created)) => Some(n),
            _ => None,
        }
    }

    /// The tags of `tags` (a remote listing) the rules mirror, in the
    /// listing's order; with `newest` by creation time, every tag the
    /// other rules keep (see [`TagFilter::newest_by_created`]).
    pub fn apply(&self, tags: &[String]) -> Vec<String> {
        let mut kept: Vec<&String> = tags
            .iter()
            .filter(|t| self.keep.iter().all(|r| r.matches(t)))
            .filter(|t| !self.drop.iter().any(|r| r.matches(t)))
            .collect();
        if let Some((n, NewestBy::Version)) = self.newest {
            let mut versioned: Vec<(semver::Version, &String)> = kept
                .iter()
                .filter_map(|t| version(t).map(|v| (v, *t)))
                .collect();
            versioned.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            versioned.truncate(n);
            let newest: std::collections::HashSet<&String> =
                versioned.into_iter().map(|(_, t)| t).collect();
            kept.retain(|t| newest.contains(t));
        }
        kept.into_iter().cloned().collect()
    }
}

impl TagFilter {
    /// Of `tags`, the `newest_by_created` newest by `created` (a tag
    /// without a known time counts as oldest; ties go by name), in `tags`'
    /// order.
    pub fn newest_created(
        &self,
        tags: &[String],
        created: &std::collections::HashMap<String, chrono::DateTime<chrono::Utc>>,
    ) -> Vec<String> {
        let Some(n) = self.newest_by_created() else {
            return tags.to_vec();
        };
        let mut order: Vec<&String> = tags.iter().collect();
        order.sort_by(|a, b| created.get(*b).cmp(&created.get(*a)).then_with(|| a.cmp(b)));
        order.truncate(n);
        let kept: std::collections::HashSet<&String> = order.into_iter().collect();
        tags.iter().filter(|t| kept.contains(t)).cloned().collect()
    }
}

/// Orders versions (for callers that show tags by version).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (version(a), version(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(op: RuleOperator, values: &[&str]) -> TagRule {
        TagRule {
            field: "tag".into(),
            operator: op,
            values: values.iter().map(|v| v.to_string()).collect(),
            exclude: false,
            by: None,
        }
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    fn kept(rules: &[TagRule], list: &[&str]) -> Vec<String> {
        TagFilter::new(rules).unwrap().apply(&tags(list))
    }

    const ALL: &[&str] = &[
        "latest",
        "1.19",
        "1.20",
        "1.20.3",
        "v1.21.0",
        "1.21-alpine",
        "2.0",
        "edge",
        "1.22-rc1",
    ];

    #[test]
    fn dtr_operators() {
        use RuleOperator::*;
        assert_eq!(
            kept(&[rule(Eq, &["latest", "edge"])], ALL),
            ["latest", "edge"]
        );
        assert_eq!(kept(&[rule(Oo, &["2.0"])], ALL), ["2.0"]);
        assert_eq!(
            kept(&[rule(Sw, &["1.2"])], ALL),
            ["1.20", "1.20.3", "1.21-alpine", "1.22-rc1"]
        );
        assert_eq!(kept(&[rule(Ew, &["-alpine"])], ALL), ["1.21-alpine"]);
        assert_eq!(kept(&[rule(C, &["rc"])], ALL), ["1.22-rc1"]);
        assert_eq!(
            kept(&[rule(Noo, &["latest", "edge"])], ALL).len(),
            ALL.len() - 2
        );
        // Every keeping rule must hold.
        assert_eq!(
            kept(&[rule(Sw, &["1."]), rule(Ew, &[".3"])], ALL),
            ["1.20.3"]
        );
        assert_eq!(kept(&[], ALL), tags(ALL));
    }

    #[test]
    fn patterns_ranges_exclusions_and_newest() {
        use RuleOperator::*;
        assert_eq!(kept(&[rule(Matches, &[r"1\.\d+"])], ALL), ["1.19", "1.20"]);
        assert_eq!(
            kept(&[rule(Semver, &[">=1.20 <2"])], ALL),
            ["1.20", "1.20.3", "v1.21.0"],
            "pre-releases stay out of a plain range"
        );
        let mut drop_alpine = rule(Ew, &["-alpine"]);
        drop_alpine.exclude = true;
        assert!(!kept(&[rule(Sw, &["1."]), drop_alpine], ALL).contains(&"1.21-alpine".to_string()));
        // By version order (a pre-release of 1.22 is newer than 1.21.0);
        // combined with a range, pre-releases stay out.
        assert_eq!(kept(&[rule(Newest, &["2"])], ALL), ["2.0", "1.22-rc1"]);
        assert_eq!(
            kept(&[rule(Semver, &["^1"]), rule(Newest, &["1"])], ALL),
            ["v1.21.0"]
        );
    }

    #[test]
    fn bad_rules_name_their_field() {
        use RuleOperator::*;
        let check = |rules: &[TagRule], field: &str| {
            let e = TagFilter::new(rules).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        };
        check(
            &[rule(Eq, &["a"]), rule(Matches, &["("])],
            "rules[1].values",
        );
        check(&[rule(Semver, &["not a range"])], "rules[0].values");
        check(&[rule(Newest, &["0"])], "rules[0].values");
        check(
            &[rule(Newest, &["2"]), rule(Newest, &["3"])],
            "rules[1].operator",
        );
        check(&[rule(Eq, &[])], "rules[0].values");
        let mut other = rule(Eq, &["x"]);
        other.field = "digest".into();
        check(&[other], "rules[0].field");
        let huge = "a".repeat(MAX_VALUE_LEN + 1);
        check(&[rule(C, &[huge.as_str()])], "rules[0].values");
        // DTR's form, as a script sends it (field defaults to "tag").
        let parsed: Vec<TagRule> =
            serde_json::from_str(r#"[{"operator": "sw", "values": ["1."]}]"#).unwrap();
        assert_eq!(parsed[0].field, "tag");
    }

    #[test]
    fn versions_read_leniently() {
        assert_eq!(version("1.20"), Some(semver::Version::new(1, 20, 0)));
        assert_eq!(version("v2"), Some(semver::Version::new(2, 0, 0)));
        assert!(version("1.20.3-alpine").is_some_and(|v| !v.pre.is_empty()));
        for bad in ["latest", "1..2", "1.2.3.4", "", "v", "1.x"] {
            assert_eq!(version(bad), None, "{bad}");
        }
        assert_eq!(compare_versions("1.10", "1.9"), Ordering::Greater);
    }
}
