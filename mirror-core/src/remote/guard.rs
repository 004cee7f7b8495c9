//! [`RemoteGuard`]: which hosts the HTTP client may reach, against
//! server-side request forgery (a repository admin pointing a policy, a
//! token realm, a `Link` or a redirect at an internal address).
//!
//! Two settings, both off by default:
//!
//! - an allow-list of host patterns (`registry.example.com`,
//!   `*.example.com`, `127.0.0.1:5001`, `[::1]:5000`); when it is not
//!   empty, every URL the client requests, follows (redirects, tag pages,
//!   upload locations) or fetches a token from must match one;
//! - `forbid_private`: refuse loopback, private, link-local, unique-local,
//!   unspecified, multicast, broadcast, carrier-grade-NAT and reserved
//!   addresses, including IPv4 addresses embedded in IPv6 ones. IP literals
//!   are checked in the URL; names are checked on the addresses they
//!   *resolve to*, by the client's DNS resolver ([`GuardedResolver`]), so a
//!   name pointing inside is caught at connect time, after any DNS change.
//!
//! A host named *exactly* (no `*`) in the allow-list is trusted by the
//! operator and exempt from `forbid_private`: that is how an internal
//! registry stays reachable while everything else inside is refused.
//!
//! With an HTTP proxy configured (`HTTPS_PROXY`), the proxy resolves names,
//! so only the URL checks apply to the target (and the resolved-address
//! check to the proxy itself).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Host;

/// A request the guard refused: the host and why. Travels inside reqwest
/// errors (from the resolver and the redirect policy) and becomes
/// [`super::RemoteError::HostRefused`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct HostRefused {
    /// The host (and port, when the URL has one) as requested.
    pub host: String,
    /// Why, naming the setting that refused it.
    pub reason: String,
}

/// A malformed allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid remote host pattern {pattern:?}: {reason}")]
pub struct InvalidHostPattern {
    /// The entry.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// One allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// `*` (any host) or `*.suffix` (any name below `suffix`).
    wildcard: bool,
    /// Lower-case name or canonical IP text; for a wildcard, the suffix
    /// (empty for `*`).
    host: String,
    /// The port, when the entry names one.
    port: Option<u16>,
}

impl HostPattern {
    /// Parses `host`, `host:port`, `*.domain`, `*.domain:port`, `*`, an
    /// IPv4 address with optional port, or an IPv6 address (`::1`,
    /// `[::1]`, `[::1]:5000`).
    ///
    /// ```
    /// use mirror_core::remote::HostPattern;
    /// assert!(HostPattern::parse("*.example.com").is_ok());
    /// assert!(HostPattern::parse("127.0.0.1:5001").is_ok());
    /// assert!(HostPattern::parse("https://example.com").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, InvalidHostPattern> {
        let fail = |reason| InvalidHostPattern {
            pattern: text.chars().take(300).collect(),
            reason,
        };
        let t = text.trim().to_ascii_lowercase();
        if t.is_empty() {
            return Err(fail("it is empty"));
        }
        if t.contains("://") || t.contains('/') || t.contains('@') {
            return Err(fail(
                "give a host or host:port, without scheme, path or credentials",
            ));
        }
        let (host, port) = if let Some(rest) = t.strip_prefix('[') {
            let (ip, after) = rest
                .split_once(']')
                .ok_or_else(|| fail("an IPv6 address in brackets needs the closing ']'"))?;
            let port = match after {
                "" => None,
                p => Some(
                    parse_port(p.strip_prefix(':').ok_or_else(|| {
                        fail("only :port may follow an IPv6 address in brackets")
                    })?)
                    .ok_or_else(|| fail("the port is not a number from 1 to 65535"))?,
                ),
            };
            (ip.to_string(), port)
        } else if t.matches(':').count() > 1 {
            (t.clone(), None)
        } else if let Some((h, p)) = t.split_once(':') {
            let port =
                parse_port(p).ok_or_else(|| fail("the port is not a number from 1 to 65535"))?;
            (h.to_string(), Some(port))
        } else {
            (t.clone(), None)
        };
        if host.contains(':') {
            let ip: Ipv6Addr = host
                .parse()
                .map_err(|_| fail("it is not a valid IPv6 address"))?;
            return Ok(HostPattern {
                wildcard: false,
                host: ip.to_string(),
                port,
            });
        }
        if host == "*" {
            return Ok(HostPattern {
                wildcard: true,
                host: String::new(),
                port,
            });
        }
        let (wildcard, name) = match host.strip_prefix("*.") {
            Some(suffix) => (true, suffix),
            None => (false, host.as_str()),
        };
        let name = name.trim_end_matches('.');
        if name.is_empty()
            || name.contains('*')
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            || name.split('.').any(str::is_empty)
        {
            return Err(fail(
                "use a host name, *.domain or an IP address (letters, digits, '.', '-', '_')",
            ));
        }
        // Canonical text for IPv4 literals ("127.1" is not accepted: write it out).
        Ok(HostPattern {
            wildcard,
            host: name.to_string(),
            port,
        })
    }

    /// Whether `host` (canonical, lower-case) on `port` matches.
    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        if self.port.is_some() && self.port != port {
            return false;
        }
        if self.wildcard {
            self.host.is_empty()
                || host
                    .strip_suffix(self.host.as_str())
                    .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.'))
        } else {
            self.host == host
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.wildcard, self.host.is_empty()) {
            (true, true) => f.write_str("*")?,
            (true, false) => write!(f, "*.{}", self.host)?,
            _ if self.host.contains(':') => write!(f, "[{}]", self.host)?,
            _ => f.write_str(&self.host)?,
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

fn parse_port(p: &str) -> Option<u16> {
    p.parse::<u16>().ok().filter(|p| *p > 0)
}

/// Which remote hosts the client may reach. The default allows every host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteGuard {
    allow: Vec<HostPattern>,
    forbid_private: bool,
}

impl RemoteGuard {
    /// A guard with an allow-list (empty: any host) and the private-address
    /// switch.
    ///
    /// ```
    /// use mirror_core::remote::RemoteGuard;
    /// let g = RemoteGuard::new(["*.example.com"], true).unwrap();
    /// assert!(g.check_url(&"https://r.example.com".parse().unwrap()).is_ok());
    /// assert!(g.check_url(&"https://example.org".parse().unwrap()).is_err());
    /// assert!(RemoteGuard::new(Vec::<String>::new(), true).unwrap()
    ///     .check_url(&"http://169.254.169.254".parse().unwrap()).is_err());
    /// ```
    pub fn new<S: AsRef<str>>(
        allow: impl IntoIterator<Item = S>,
        forbid_private: bool,
    ) -> Result<Self, InvalidHostPattern> {
        Ok(RemoteGuard {
            allow: allow
                .into_iter()
                .map(|p| HostPattern::parse(p.as_ref()))
                .collect::<Result<_, _>>()?,
            forbid_private,
        })
    }

    /// Whether the guard checks anything.
    pub fn is_active(&self) -> bool {
        self.forbid_private || !self.allow.is_empty()
    }

    /// The allow-list (empty: any host).
    pub fn allow(&self) -> &[HostPattern] {
        &self.allow
    }

    /// Whether private addresses are refused.
    pub fn forbids_private(&self) -> bool {
        self.forbid_private
    }

    /// Checks a URL before it is requested: the scheme, the allow-list,
    /// and, for an IP literal, its address. A name's addresses are checked
    /// when it is resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), HostRefused> {
        let port = url.port_or_known_default();
        let shown = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => String::new(),
        };
        let refuse = |reason: String| HostRefused {
            host: shown.clone(),
            reason,
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse(format!(
                "scheme {:?} is not allowed; only http and https",
                url.scheme()
            )));
        }
        let (canonical, ip) = match url.host() {
            Some(Host::Domain(d)) => (d.trim_end_matches('.').to_ascii_lowercase(), None),
            Some(Host::Ipv4(ip)) => (ip.to_string(), Some(IpAddr::V4(ip))),
            Some(Host::Ipv6(ip)) => (ip.to_string(), Some(IpAddr::V6(ip))),
            None => return Err(refuse("the URL has no host".into())),
        };
        if !self.allow.is_empty() && !self.allow.iter().any(|p| p.matches(&canonical, port)) {
            return Err(refuse(format!(
                "{shown} is not in this server's remote_hosts_allow ({})",
                self.allow_text()
            )));
        }
        if let Some(ip) = ip
            && self.forbid_private
            && !self.exempt(&canonical, port)
            && let Some(kind) = special_address(ip)
        {
            return Err(refuse(format!(
                "{ip} is a {kind} address, and this server forbids private remote hosts (forbid_private_remotes)"
            )));
        }
        Ok(())
    }

    /// [`RemoteGuard::check_url`], then, for a name that the allow-list
    /// exempts from `forbid_private` only on *other* ports, the addresses it
    /// resolves to. (The resolver sees names, not ports, so it exempts such
    /// a name on every port: `localhost:5000` in the list must not open
    /// `localhost:22`.)
    pub async fn check_url_resolved(&self, url: &Url) -> Result<(), HostRefused> {
        self.check_url(url)?;
        if !self.exempt_elsewhere(url) {
            return Ok(());
        }
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(0);
        let shown = format!("{host}:{port}");
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| HostRefused {
                host: shown.clone(),
                reason: format!("{host} cannot be resolved: {e}"),
            })?
            .collect();
        for a in &addrs {
            if let Some(kind) = special_address(a.ip()) {
                return Err(HostRefused {
                    reason: format!(
                        "{host} resolves to {}, a {kind} address, and remote_hosts_allow exempts {host} from forbid_private_remotes only on port {}, not {port}",
                        a.ip(),
                        self.exempt_ports(&host)
                    ),
                    host: shown,
                });
            }
        }
        Ok(())
    }

    /// Whether `url` names a host (by name) that the allow-list names
    /// exactly, but only with ports other than the URL's, while
    /// `forbid_private` is on.
    fn exempt_elsewhere(&self, url: &Url) -> bool {
        let Some(Host::Domain(d)) = url.host() else {
            return false;
        };
        if !self.forbid_private {
            return false;
        }
        let name = d.trim_end_matches('.').to_ascii_lowercase();
        let port = url.port_or_known_default();
        let mut named = self
            .allow
            .iter()
            .filter(|p| !p.wildcard && p.host == name)
            .peekable();
        named.peek().is_some() && named.all(|p| p.port.is_some() && p.port != port)
    }

    /// The ports the allow-list names `host` with, for messages.
    fn exempt_ports(&self, host: &str) -> String {
        self.allow
            .iter()
            .filter(|p| !p.wildcard && p.host == host)
            .filter_map(|p| p.port.map(|n| n.to_string()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks what `name` resolved to: with `forbid_private`, every address
    /// must be public (unless the allow-list names `name` exactly).
    pub fn check_resolved(&self, name: &str, addrs: &[SocketAddr]) -> Result<(), HostRefused> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if !self.forbid_private || self.exempt(&name, None) {
            return Ok(());
        }
        for a in addrs {
            if let Some(kind) = special_address(a.ip()) {
                return Err(HostRefused {
                    reason: format!(
                        "{name} resolves to {}, a {kind} address, and this server forbids private remote hosts (forbid_private_remotes)",
                        a.ip()
                    ),
                    host: name,
                });
            }
        }
        Ok(())
    }

    /// Whether the allow-list names `host` exactly (on `port`, when known).
    fn exempt(&self, host: &str, port: Option<u16>) -> bool {
        self.allow.iter().any(|p| {
            !p.wildcard && p.host == host && (port.is_none() || p.port.is_none() || p.port == port)
        })
    }

    fn allow_text(&self) -> String {
        self.allow
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What kind of non-public address `ip` is, or `None` for a public one.
///
/// ```
/// use mirror_core::remote::special_address;
/// assert_eq!(special_address("10.1.2.3".parse().unwrap()), Some("private"));
/// assert_eq!(special_address("::ffff:127.0.0.1".parse().unwrap()), Some("loopback"));
/// assert_eq!(special_address("93.184.216.34".parse().unwrap()), None);
/// ```
pub fn special_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(if ip.is_unspecified() || o[0] == 0 {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local"
    } else if ip.is_multicast() {
        "multicast"
    } else if ip.is_broadcast() {
        "broadcast"
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        "shared (carrier-grade NAT)"
    } else if o[0] >= 240 {
        "reserved"
    } else {
        return None;
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("unique-local")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if (s[0] & 0xffc0) == 0xfec0 {
        Some("site-local")
    } else if let Some(v4) = ip.to_ipv4_mapped() {
        special_v4(v4)
    } else if s[..6] == [0, 0, 0, 0, 0, 0] {
        // IPv4-compatible (deprecated): ::a.b.c.d.
        special_v4(embedded_v4(s[6], s[7]))
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64's well-known prefix reaches the embedded IPv4 address.
        special_v4(embedded_v4(s[6], s[7]))
    } else if s[0] == 0x2002 {
        // 6to4 tunnels to the embedded IPv4 address.
        special_v4(embedded_v4(s[1], s[2]))
    } else {
        None
    }
}

/// The client's DNS resolver when a guard is active: the system resolver,
/// then [`RemoteGuard::check_resolved`] on the answer, before any connection.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    guard: Arc<RemoteGuard>,
}

impl GuardedResolver {
    /// A resolver that refuses names `guard` refuses.
    pub fn new(guard: RemoteGuard) -> Self {
        GuardedResolver {
            guard: Arc::new(guard),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no addresses").into());
            }
            guard.check_resolved(&host, &addrs)?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The redirect policy when a guard is active: reqwest's default (at most
/// 10 hops), plus [`RemoteGuard::check_url`] on every target.
pub(crate) fn redirect_policy(guard: RemoteGuard) -> reqwest::redirect::Policy {
    let default = reqwest::redirect::Policy::default();
    reqwest::redirect::Policy::custom(move |attempt| match guard.check_url(attempt.url()) {
        // Resolving here would block: a redirect to a host exempt only on
        // other ports is refused outright.
        Ok(()) if guard.exempt_elsewhere(attempt.url()) => {
            let host = attempt.url().host_str().unwrap_or_default().to_string();
            attempt.error(HostRefused {
                reason: format!(
                    "the remote redirected to {host} on a port that remote_hosts_allow does not exempt from forbid_private_remotes"
                ),
                host,
            })
        }
        Ok(()) => default.redirect(attempt),
        Err(mut refused) => {
            refused.reason = format!(
                "the remote redirected to {}: {}",
                refused.host, refused.reason
            );
            attempt.error(refused)
        }
    })
}

/// The guard's refusal inside an error chain (a reqwest error from the
/// resolver or the redirect policy), if that is what failed.
pub(crate) fn find_refusal(e: &(dyn std::error::Error + 'static)) -> Option<HostRefused> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<HostRefused>() {
            return Some(r.clone());
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        s.parse().unwrap()
    }

    fn check(guard: &RemoteGuard, u: &str, ok: bool) {
        let got = guard.check_url(&url(u));
        assert_eq!(got.is_ok(), ok, "{u}: {got:?}");
    }

    #[test]
    fn patterns() {
        for (text, shown) in [
            ("Registry.Example.com", "registry.example.com"),
            ("*.example.com:443", "*.example.com:443"),
            ("127.0.0.1:5001", "127.0.0.1:5001"),
            ("[::1]:5000", "[::1]:5000"),
            ("::1", "[::1]"),
            ("*", "*"),
        ] {
            assert_eq!(HostPattern::parse(text).unwrap().to_string(), shown);
        }
        for bad in [
            "",
            "https://x.com",
            "x.com/v2",
            "user@x.com",
            "x.com:0",
            "x.com:http",
            "*x.com",
            "a.*.com",
            "[::1",
            "[::1]5000",
            "a..b",
            "exa mple.com",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn allow_list() {
        let g = RemoteGuard::new(
            ["registry.example.com", "*.corp.example", "127.0.0.1:5001"],
            false,
        )
        .unwrap();
        check(&g, "https://registry.example.com", true);
        check(&g, "https://REGISTRY.example.com.:8443", true);
        check(&g, "https://r.corp.example", true);
        check(&g, "https://a.b.corp.example", true);
        check(&g, "https://corp.example", false);
        check(&g, "https://xcorp.example", false);
        check(&g, "https://evil.example.com", false);
        check(&g, "http://127.0.0.1:5001", true);
        check(&g, "http://127.0.0.1:5002", false);
        check(&g, "http://localhost:5001", false);
        check(&g, "ftp://registry.example.com", false);
        let e = g.check_url(&url("https://other.example")).unwrap_err();
        assert_eq!(e.host, "other.example");
        assert!(e.reason.contains("remote_hosts_allow"), "{}", e.reason);
    }

    #[test]
    fn private_literals() {
        let g = RemoteGuard::new(Vec::<String>::new(), true).unwrap();
        for u in [
            "http://127.0.0.1:5000",
            "http://[::1]",
            "http://10.0.0.1",
            "http://172.16.5.4",
            "http://192.168.1.1",
            "http://169.254.169.254",
            "http://0.0.0.0",
            "http://[::]",
            "http://[fd00::1]",
            "http://[fe80::1]",
            "http://[::ffff:10.0.0.1]",
            "http://[::ffff:7f00:1]",
            "http://[64:ff9b::a9fe:a9fe]",
            "http://[2002:7f00:1::]",
            "http://224.0.0.1",
            "http://255.255.255.255",
            "http://100.64.0.1",
            // Other spellings of 127.0.0.1 that the URL parser normalizes.
            "http://2130706433",
            "http://0x7f.1",
            "http://127.1",
        ] {
            check(&g, u, false);
        }
        check(&g, "https://93.184.216.34", true);
        check(&g, "https://[2606:4700::1111]", true);
        // Names pass the URL check; their addresses are checked on resolution.
        check(&g, "http://localhost", true);
        let e = g
            .check_url(&url("http://169.254.169.254/latest"))
            .unwrap_err();
        assert!(e.reason.contains("link-local"), "{}", e.reason);
    }

    #[test]
    fn exact_entries_are_exempt_from_forbid_private() {
        let g = RemoteGuard::new(["127.0.0.1:5001", "registry.internal", "*"], true).unwrap();
        check(&g, "http://127.0.0.1:5001", true);
        check(&g, "http://127.0.0.1:5002", false);
        check(&g, "http://10.0.0.1", false);
        let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert!(g.check_resolved("registry.internal", &[lo]).is_ok());
        assert!(g.check_resolved("localhost", &[lo]).is_err());
        let public: SocketAddr = "93.184.216.34:0".parse().unwrap();
        // One inside address among public ones is enough to refuse.
        assert!(g.check_resolved("mixed.example", &[public, lo]).is_err());
        assert!(g.check_resolved("public.example", &[public]).is_ok());
    }

    #[tokio::test]
    async fn resolver_refuses_names_that_resolve_inside() {
        let r = GuardedResolver::new(RemoteGuard::new(Vec::<String>::new(), true).unwrap());
        let err = match r.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost resolved"),
            Err(e) => e,
        };
        let refused = find_refusal(err.as_ref()).expect("a HostRefused");
        assert!(refused.reason.contains("loopback"), "{}", refused.reason);
        let open = GuardedResolver::new(RemoteGuard::default());
        assert!(open.resolve("localhost".parse().unwrap()).await.is_ok());
    }

    #[tokio::test]
    async fn an_exemption_with_a_port_exempts_that_port_only() {
        let g = RemoteGuard::new(["localhost:16010", "*"], true).unwrap();
        assert!(
            g.check_url_resolved(&url("http://localhost:16010"))
                .await
                .is_ok()
        );
        for other in [
            "http://localhost:16011",
            "http://localhost:22",
            "http://localhost",
        ] {
            let e = g.check_url_resolved(&url(other)).await.unwrap_err();
            assert!(
                e.reason.contains("only on port 16010"),
                "{other}: {}",
                e.reason
            );
        }
        // IP literals were already checked with their port.
        let g = RemoteGuard::new(["127.0.0.1:16010", "*"], true).unwrap();
        assert!(
            g.check_url_resolved(&url("http://127.0.0.1:16010"))
                .await
                .is_ok()
        );
        assert!(
            g.check_url_resolved(&url("http://127.0.0.1:16011"))
                .await
                .is_err()
        );
        // Without a port, the name is exempt on every port.
        let g = RemoteGuard::new(["localhost", "*"], true).unwrap();
        assert!(
            g.check_url_resolved(&url("http://localhost:22"))
                .await
                .is_ok()
        );
    }
}
