//! Proxy caches (pull-through): a local namespace bound to a remote
//! registry, whose repositories are filled on demand when pulled
//! ([`crate::pull_through`] does the filling).
//!
//! [`ProxyCache`] is what is stored (secrets as [`Secret`]s that never
//! serialize); [`ProxyCacheForm`] is the one form that creates or changes
//! one: the `/api/v0/proxyCaches` body (camelCase) and a `[[proxy_cache]]`
//! table of the server's TOML file (the same fields in snake_case);
//! [`ProxyCacheView`] is how one is shown. Pure: no IO.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::policy::{
    InvalidPolicy, RemoteEndpoint, is_docker_hub, normalize_host, normalize_remote_repository,
    validate_ca,
};
use crate::reference::RepositoryName;
use crate::secret::Secret;

/// How long a cached tag is trusted before its digest is checked upstream
/// again, unless a cache says otherwise (seconds).
pub const DEFAULT_TAG_TTL_SECS: u64 = 300;

/// The longest tag TTL accepted (a week), so a typo cannot freeze a tag.
pub const MAX_TAG_TTL_SECS: u64 = 7 * 24 * 3600;

/// A proxy cache: pulls of `<namespace>/<repository>` are served from the
/// local stores and fetched from `host`'s `<repository>` on a miss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyCache {
    /// The local namespace (one path component, e.g. `docker.io`, `ghcr`).
    pub namespace: String,
    /// The remote registry's URL (`https://index.docker.io` for Docker Hub).
    pub host: String,
    /// User name for Basic auth or the token server; empty: anonymous.
    pub username: String,
    /// Password or access token (write-only).
    pub password: Secret,
    /// Extra trusted CA certificates (PEM), may be empty.
    pub remote_ca: String,
    /// Skip TLS certificate verification.
    pub skip_tls_verification: bool,
    /// How long a tag's cached digest is served before a `HEAD` checks it.
    pub tag_ttl_secs: u64,
    /// The most bytes the namespace's cached blobs may take (0: no limit);
    /// least recently pulled images go first.
    pub max_bytes: u64,
    /// Whether callers who did not log in may pull through it.
    pub anonymous_pull: bool,
    /// Whether names without a known namespace (Docker's
    /// `registry-mirrors` sends `library/alpine`) are looked up here.
    pub is_default: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl ProxyCache {
    /// The endpoint that reaches `remote_repository` on the cache's remote
    /// with its credentials.
    pub fn endpoint(&self, remote_repository: RepositoryName) -> RemoteEndpoint {
        RemoteEndpoint {
            host: self.host.clone(),
            repository: remote_repository,
            username: self.username.clone(),
            password: self.password.clone(),
            auth_token: Secret::default(),
            remote_ca: self.remote_ca.clone(),
            skip_tls_verification: self.skip_tls_verification,
        }
    }

    /// The remote repository a local repository of this cache stands for:
    /// the name without the namespace (on Docker Hub, `alpine` is
    /// `library/alpine`). `None` when `local` is not under the namespace.
    pub fn remote_repository(&self, local: &RepositoryName) -> Option<RepositoryName> {
        let rest = local
            .as_str()
            .strip_prefix(&self.namespace)?
            .strip_prefix('/')?;
        normalize_remote_repository(&self.host, rest).ok()
    }

    /// Whether the remote is Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        is_docker_hub(&self.host)
    }

    /// How it is shown.
    pub fn view(&self) -> ProxyCacheView {
        ProxyCacheView {
            namespace: self.namespace.clone(),
            remote_host: self.host.clone(),
            username: self.username.clone(),
            has_password: !self.password.is_empty(),
            remote_ca: self.remote_ca.clone(),
            skip_tls_verification: self.skip_tls_verification,
            tag_ttl_secs: self.tag_ttl_secs,
            max_bytes: self.max_bytes,
            anonymous_pull: self.anonymous_pull,
            is_default: self.is_default,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// How a proxy cache is shown (`GET /api/v0/proxyCaches`): never its
/// password.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyCacheView {
    /// The local namespace.
    pub namespace: String,
    /// The remote registry's URL.
    pub remote_host: String,
    /// The user name, if any.
    pub username: String,
    /// Whether a password or access token is stored.
    pub has_password: bool,
    /// Extra trusted CA certificates (PEM).
    #[serde(rename = "remoteCA")]
    pub remote_ca: String,
    /// Whether TLS verification is skipped.
    #[serde(rename = "skipTLSVerification")]
    pub skip_tls_verification: bool,
    /// Seconds a tag is served before it is checked upstream again.
    #[serde(rename = "tagTTLSecs")]
    pub tag_ttl_secs: u64,
    /// The namespace's size limit in bytes (0: none).
    pub max_bytes: u64,
    /// Whether anonymous callers may pull through it.
    pub anonymous_pull: bool,
    /// Whether names without a known namespace are looked up here.
    pub is_default: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// The one proxy cache form: `POST`/`PUT /api/v0/proxyCaches` bodies and
/// the TOML file's `[[proxy_cache]]` tables (snake_case aliases). Every
/// field is optional: on create, `namespace` and `remoteHost` are
/// required; on update, an absent field keeps its value.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyCacheForm {
    /// The local namespace (one path component).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The remote registry's URL.
    #[serde(
        default,
        alias = "remote_host",
        skip_serializing_if = "Option::is_none"
    )]
    pub remote_host: Option<String>,
    /// User name; empty for anonymous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password or access token (write-only).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::policy::send_secret"
    )]
    pub password: Option<Secret>,
    /// Extra trusted CA certificates (PEM).
    #[serde(
        default,
        rename = "remoteCA",
        alias = "remote_ca",
        skip_serializing_if = "Option::is_none"
    )]
    pub remote_ca: Option<String>,
    /// Skip TLS certificate verification.
    #[serde(
        default,
        rename = "skipTLSVerification",
        alias = "skip_tls_verification",
        skip_serializing_if = "Option::is_none"
    )]
    pub skip_tls_verification: Option<bool>,
    /// Seconds a tag is served before it is checked upstream again
    /// (default 300, at most a week; 0 checks on every pull).
    #[serde(
        default,
        rename = "tagTTLSecs",
        alias = "tag_ttl_secs",
        skip_serializing_if = "Option::is_none"
    )]
    pub tag_ttl_secs: Option<u64>,
    /// The namespace's size limit in bytes (0: none).
    #[serde(default, alias = "max_bytes", skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Whether anonymous callers may pull through it (default false).
    #[serde(
        default,
        alias = "anonymous_pull",
        skip_serializing_if = "Option::is_none"
    )]
    pub anonymous_pull: Option<bool>,
    /// Whether names without a known namespace are looked up here.
    #[serde(
        default,
        alias = "is_default",
        alias = "default",
        skip_serializing_if = "Option::is_none"
    )]
    pub is_default: Option<bool>,
}

impl ProxyCacheForm {
    /// A new cache from the form, checked; each error names its field.
    pub fn create(&self, now: DateTime<Utc>) -> Result<ProxyCache, InvalidPolicy> {
        let namespace = self
            .namespace
            .as_deref()
            .ok_or_else(|| InvalidPolicy::new("namespace", "is required"))?;
        let host = self
            .remote_host
            .as_deref()
            .ok_or_else(|| InvalidPolicy::new("remoteHost", "is required"))?;
        let base = ProxyCache {
            namespace: check_namespace(namespace)?,
            host: normalize_host(host)?,
            username: String::new(),
            password: Secret::default(),
            remote_ca: String::new(),
            skip_tls_verification: false,
            tag_ttl_secs: DEFAULT_TAG_TTL_SECS,
            max_bytes: 0,
            anonymous_pull: false,
            is_default: false,
            created_at: now,
            updated_at: now,
        };
        self.apply_to(base, now)
    }

    /// `current` changed by the form (its namespace cannot change); a new
    /// remote host or user name drops the stored password unless the form
    /// gives one.
    pub fn apply(
        &self,
        current: &ProxyCache,
        now: DateTime<Utc>,
    ) -> Result<ProxyCache, InvalidPolicy> {
        if let Some(ns) = &self.namespace
            && ns != &current.namespace
        {
            return Err(InvalidPolicy::new(
                "namespace",
                "a proxy cache's namespace cannot change; delete it and create another",
            ));
        }
        let mut next = current.clone();
        if let Some(h) = &self.remote_host {
            next.host = normalize_host(h)?;
        }
        let moves = next.host != current.host
            || self
                .username
                .as_ref()
                .is_some_and(|u| u != &current.username);
        if moves {
            next.password = Secret::default();
        }
        self.apply_to(next, now)
    }

    fn apply_to(&self, mut c: ProxyCache, now: DateTime<Utc>) -> Result<ProxyCache, InvalidPolicy> {
        if let Some(u) = &self.username {
            if u.len() > 255 {
                return Err(InvalidPolicy::new("username", "longer than 255 characters"));
            }
            c.username = u.clone();
        }
        if let Some(p) = &self.password {
            c.password = p.clone();
        }
        if !c.password.is_empty() && c.username.is_empty() {
            return Err(InvalidPolicy::new(
                "username",
                "a password or access token needs a username",
            ));
        }
        if let Some(ca) = &self.remote_ca {
            validate_ca(ca)?;
            c.remote_ca = ca.clone();
        }
        if let Some(s) = self.skip_tls_verification {
            c.skip_tls_verification = s;
        }
        if let Some(ttl) = self.tag_ttl_secs {
            if ttl > MAX_TAG_TTL_SECS {
                return Err(InvalidPolicy::new(
                    "tagTTLSecs",
                    format!("{ttl} is more than a week ({MAX_TAG_TTL_SECS} seconds)"),
                ));
            }
            c.tag_ttl_secs = ttl;
        }
        if let Some(m) = self.max_bytes {
            c.max_bytes = m;
        }
        if let Some(a) = self.anonymous_pull {
            c.anonymous_pull = a;
        }
        if let Some(d) = self.is_default {
            c.is_default = d;
        }
        c.updated_at = now;
        Ok(c)
    }

    /// The names the form's `Deserialize` reads, field by field (read from
    /// it, as [`crate::PolicyForm::field_names`]): each field's wire name
    /// with its TOML aliases (`remoteHost`, `remote_host`, ...).
    pub fn field_names() -> &'static [&'static str] {
        crate::serde_fields::struct_fields::<ProxyCacheForm>()
    }
}

/// Checks a proxy cache's namespace: one repository path component.
fn check_namespace(ns: &str) -> Result<String, InvalidPolicy> {
    if ns.contains('/') {
        return Err(InvalidPolicy::new(
            "namespace",
            format!("{ns:?} must be one path component, without '/'"),
        ));
    }
    RepositoryName::parse(ns).map_err(|e| InvalidPolicy::new("namespace", e.reason))?;
    Ok(ns.to_string())
}

/// Which cache serves a pull, and as which repositories: the local one
/// (under the cache's namespace) and the remote one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheTarget {
    /// The cache's namespace.
    pub namespace: String,
    /// The local repository (`<namespace>/<rest>`).
    pub local: RepositoryName,
    /// The repository on the remote.
    pub remote: RepositoryName,
    /// The name was under no cache's namespace and went to the
    /// [`default_cache`]: a local repository of that name comes first for
    /// whoever may read it (the server decides).
    pub fallback: bool,
}

/// The cache and repositories a pull of `name` reaches, if any: `name`
/// under a cache's namespace; else, with `ns` (containerd's `?ns=`
/// query: the registry the client meant), the cache whose namespace is
/// `ns`, or whose remote is on host `ns` (for `docker.io`: the Docker Hub
/// cache, else the default one); else the [`default_cache`], marked
/// [`CacheTarget::fallback`]. Pure.
pub fn route(
    caches: &[ProxyCache],
    name: &RepositoryName,
    ns: Option<&str>,
) -> Option<CacheTarget> {
    let target = |c: &ProxyCache, local: RepositoryName, fallback: bool| {
        c.remote_repository(&local).map(|remote| CacheTarget {
            namespace: c.namespace.clone(),
            local,
            remote,
            fallback,
        })
    };
    if let Some(c) = caches
        .iter()
        .find(|c| c.namespace == name.owner_namespace())
    {
        return target(c, name.clone(), false);
    }
    let under = |c: &ProxyCache, fallback: bool| {
        RepositoryName::parse(&format!("{}/{}", c.namespace, name))
            .ok()
            .and_then(|local| target(c, local, fallback))
    };
    if let Some(ns) = ns {
        let hub = is_docker_hub(ns);
        let host_is = |c: &ProxyCache| c.host.split("://").nth(1) == Some(ns);
        return caches
            .iter()
            .find(|c| c.namespace == ns)
            .or_else(|| {
                caches
                    .iter()
                    .find(|c| host_is(c) || (hub && c.is_docker_hub()))
            })
            .or_else(|| if hub { default_cache(caches) } else { None })
            .and_then(|c| under(c, false));
    }
    default_cache(caches).and_then(|c| under(c, true))
}

/// The cache that takes names without a cache's namespace (Docker's
/// `registry-mirrors` asks for `library/alpine`; containerd's `?ns=docker.io`):
/// the one marked default; else the only one whose remote is Docker Hub.
pub fn default_cache(caches: &[ProxyCache]) -> Option<&ProxyCache> {
    fn only<'a>(mut it: impl Iterator<Item = &'a ProxyCache>) -> Option<&'a ProxyCache> {
        match (it.next(), it.next()) {
            (Some(c), None) => Some(c),
            _ => None,
        }
    }
    caches
        .iter()
        .find(|c| c.is_default)
        .or_else(|| only(caches.iter().filter(|c| c.is_docker_hub())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(ns: &str, host: &str) -> ProxyCache {
        ProxyCacheForm {
            namespace: Some(ns.into()),
            remote_host: Some(host.into()),
            ..Default::default()
        }
        .create(Utc::now())
        .unwrap()
    }

    fn name(s: &str) -> RepositoryName {
        RepositoryName::parse(s).unwrap()
    }

    #[test]
    fn routes_by_namespace_then_ns_query_then_default() {
        let caches = [
            cache("docker.io", "https://index.docker.io"),
            cache("ghcr", "https://ghcr.io"),
        ];
        let t = route(&caches, &name("docker.io/alpine"), None).unwrap();
        assert_eq!(
            (t.local.as_str(), t.remote.as_str()),
            ("docker.io/alpine", "library/alpine")
        );
        let t = route(&caches, &name("ghcr/acme/tool"), None).unwrap();
        assert_eq!(t.remote.as_str(), "acme/tool");
        assert!(!t.fallback);
        // Docker's registry-mirrors form: no namespace, no local repository.
        let t = route(&caches, &name("library/alpine"), None).unwrap();
        assert_eq!(t.local.as_str(), "docker.io/library/alpine");
        // A fallback: a local repository of that name readable by the
        // caller comes first (the server checks).
        assert!(t.fallback);
        // containerd's ?ns= names the registry the client meant.
        let t = route(&caches, &name("library/alpine"), Some("docker.io")).unwrap();
        assert_eq!(t.remote.as_str(), "library/alpine");
        assert!(!t.fallback, "the client named the registry");
        let t = route(&caches, &name("acme/tool"), Some("ghcr")).unwrap();
        assert_eq!(t.local.as_str(), "ghcr/acme/tool");
        assert_eq!(route(&caches, &name("acme/tool"), Some("quay.io")), None);
        // Two Docker Hub caches and none marked: no default.
        let two = [
            cache("hub1", "https://index.docker.io"),
            cache("hub2", "https://docker.io"),
        ];
        assert_eq!(route(&two, &name("library/alpine"), None), None);
        // A cache of another registry takes no unprefixed name unless
        // marked default; `?ns=<its host>` reaches it.
        let one = [cache("mirror", "https://registry.example.com:5000")];
        assert_eq!(route(&one, &name("library/alpine"), None), None);
        assert_eq!(
            route(&one, &name("library/alpine"), Some("docker.io")),
            None
        );
        let t = route(&one, &name("acme/app"), Some("registry.example.com:5000")).unwrap();
        assert_eq!(t.local.as_str(), "mirror/acme/app");
        let mut marked = one.clone();
        marked[0].is_default = true;
        let t = route(&marked, &name("library/alpine"), Some("docker.io")).unwrap();
        assert_eq!(t.local.as_str(), "mirror/library/alpine");
        let t = route(&marked, &name("library/alpine"), None).unwrap();
        assert_eq!(t.remote.as_str(), "library/alpine");
    }

    #[test]
    fn the_form_checks_and_names_its_fields() {
        let bad = |f: ProxyCacheForm| f.create(Utc::now()).unwrap_err().field;
        let base = ProxyCacheForm {
            namespace: Some("hub".into()),
            remote_host: Some("https://index.docker.io".into()),
            ..Default::default()
        };
        assert_eq!(
            bad(ProxyCacheForm {
                namespace: None,
                ..base.clone()
            }),
            "namespace"
        );
        assert_eq!(
            bad(ProxyCacheForm {
                namespace: Some("a/b".into()),
                ..base.clone()
            }),
            "namespace"
        );
        assert_eq!(
            bad(ProxyCacheForm {
                namespace: Some("Hub".into()),
                ..base.clone()
            }),
            "namespace"
        );
        assert_eq!(
            bad(ProxyCacheForm {
                remote_host: Some("hub".into()),
                ..base.clone()
            }),
            "remoteHost"
        );
        assert_eq!(
            bad(ProxyCacheForm {
                tag_ttl_secs: Some(MAX_TAG_TTL_SECS + 1),
                ..base.clone()
            }),
            "tagTTLSecs"
        );
        assert_eq!(
            bad(ProxyCacheForm {
                password: Some(Secret::new("p")),
                ..base.clone()
            }),
            "username"
        );
        let c = base.create(Utc::now()).unwrap();
        assert_eq!(c.tag_ttl_secs, DEFAULT_TAG_TTL_SECS);
        // A new host drops the password.
        let with = ProxyCacheForm {
            username: Some("u".into()),
            password: Some(Secret::new("p")),
            ..Default::default()
        }
        .apply(&c, Utc::now())
        .unwrap();
        assert!(!with.password.is_empty());
        let moved = ProxyCacheForm {
            remote_host: Some("https://evil.example".into()),
            ..Default::default()
        }
        .apply(&with, Utc::now())
        .unwrap();
        assert!(moved.password.is_empty());
        // TOML's snake_case names are the same fields.
        let f: ProxyCacheForm = serde_json::from_str(
            r#"{"namespace":"q","remote_host":"https://quay.io","tag_ttl_secs":60,"anonymous_pull":true}"#,
        )
        .unwrap();
        assert_eq!((f.tag_ttl_secs, f.anonymous_pull), (Some(60), Some(true)));
    }
}
