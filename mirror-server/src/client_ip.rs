//! Which address a request comes from: the TCP peer, or, when the peer is a
//! trusted reverse proxy, the client address that proxy reports in
//! `X-Forwarded-For`. Login limits count failures per address, so behind a
//! proxy every client would otherwise share the proxy's address (and one
//! attacker could lock everybody out, or spread guesses unnoticed).
//!
//! Only proxies named in `trusted_proxies` are believed: a header sent by
//! anybody else is ignored, or a client could pick a fresh address for every
//! guess. The header is read from the right: each hop appends the address it
//! received the request from, so the rightmost address that is not a
//! trusted proxy is the client the nearest untrusted hop saw.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, Uri};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The resolved client address of a request (a request extension set by
/// [`resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses addresses (`10.0.0.5`, `::1`) and networks (`10.0.0.0/8`).
    /// The error names the entry and why it is not one.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut nets = Vec::new();
        for e in entries {
            let e = e.as_ref().trim();
            if e.is_empty() {
                continue;
            }
            let net = match e.parse::<IpNet>() {
                Ok(n) => n.trunc(),
                Err(_) => match e.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(format!(
                            "{e:?} is not an IP address or network such as 10.0.0.5 or 10.0.0.0/8"
                        ));
                    }
                },
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    /// No proxy is trusted: the peer address is always the client.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The configured networks, for the start-up log.
    pub fn networks(&self) -> &[IpNet] {
        &self.0
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request that arrived from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        // Every X-Forwarded-For header, in order, as one list of hops.
        let mut hops = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else {
                return peer;
            };
            for hop in text.split(',') {
                match parse_hop(hop) {
                    Some(ip) => hops.push(ip),
                    // A list we cannot read is not trusted at all.
                    None => return peer,
                }
            }
        }
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            client = hop;
            if !self.trusts(hop) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`), as proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

/// The origin (`scheme://host[:port]`) the client used to reach this
/// server, as far as a request tells: its `Host` (or the URI's authority),
/// `https` when this server terminates TLS; or, from a trusted proxy, what
/// it reports in `X-Forwarded-Proto` and `X-Forwarded-Host`. A request
/// extension set by [`resolve`], absent when no usable host was sent. The
/// registry's Bearer challenge names its token endpoint with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOrigin(pub String);

impl RequestOrigin {
    /// The origin of a request with `headers` and `uri`, from a peer that
    /// is (`via_trusted_proxy`) or is not a trusted proxy, to a server that
    /// does (`tls`) or does not terminate TLS itself.
    pub fn of(headers: &HeaderMap, uri: &Uri, tls: bool, via_trusted_proxy: bool) -> Option<Self> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                // A proxy chain appends: the first entry is the client's.
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let forwarded = |name| header(name).filter(|_| via_trusted_proxy);
        let host = forwarded("x-forwarded-host")
            .or_else(|| header("host"))
            .or_else(|| uri.authority().map(|a| a.as_str()))?;
        // Only a plain `host[:port]`: nothing that could end the quoted
        // realm or smuggle user information into it.
        let authority: Authority = host.parse().ok()?;
        if authority.as_str().contains(['@', '"', '\\']) {
            return None;
        }
        let scheme = match forwarded("x-forwarded-proto") {
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            Some(p) if p.eq_ignore_ascii_case("http") => "http",
            _ if tls => "https",
            _ => "http",
        };
        Some(RequestOrigin(format!("{scheme}://{authority}")))
    }
}

/// Middleware: sets [`ClientIp`] on every request, from the peer address
/// (`ConnectInfo`) and `trusted`, and [`RequestOrigin`] (`tls`: whether
/// this server terminates TLS).
pub async fn resolve(
    trusted: Arc<TrustedProxies>,
    tls: bool,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    if let Some(peer) = peer {
        let ip = trusted.client(peer, req.headers());
        req.extensions_mut().insert(ClientIp(ip));
    }
    let via_proxy = peer.is_some_and(|p| trusted.trusts(p));
    if let Some(origin) = RequestOrigin::of(req.headers(), req.uri(), tls, via_proxy) {
        req.extensions_mut().insert(origin);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_names_the_bad_entry() {
        let t = TrustedProxies::parse(&["10.0.0.0/8", " ::1 ", "", "192.0.2.7"]).unwrap();
        assert_eq!(t.networks().len(), 3);
        let e = TrustedProxies::parse(&["10.0.0.0/8", "proxy.local"]).unwrap_err();
        assert!(e.contains("\"proxy.local\""), "{e}");
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
    }

    #[test]
    fn header_from_an_untrusted_peer_is_ignored() {
        let t = TrustedProxies::parse(&["10.0.0.1"]).unwrap();
        let h = headers(&["203.0.113.9"]);
        assert_eq!(t.client(ip("198.51.100.4"), &h), ip("198.51.100.4"));
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn rightmost_untrusted_hop_is_the_client() {
        let t = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        // The client may write anything on the left; proxies append.
        let h = headers(&["1.2.3.4, 203.0.113.9, 10.1.1.1"]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        // Several headers are one list; ports are dropped.
        let h = headers(&["1.2.3.4", "203.0.113.9:4711", "10.1.1.1"]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        let h = headers(&["[2001:db8::7]:443"]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("2001:db8::7"));
        // Only trusted hops: the leftmost one.
        let h = headers(&["10.9.9.9, 10.1.1.1"]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(t.client(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
    }

    #[test]
    fn unreadable_list_falls_back_to_the_peer() {
        let t = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let h = headers(&["203.0.113.9, unknown"]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        let t = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
        let h = headers(&["203.0.113.9"]);
        assert_eq!(t.client(ip("::ffff:127.0.0.1"), &h), ip("203.0.113.9"));
    }
}
