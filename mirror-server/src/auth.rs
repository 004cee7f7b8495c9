//! Who is calling, and what they may do with a repository.
//!
//! [`authenticate`] turns an `Authorization` header into a [`Caller`]:
//! `Basic` (password or access token), refusing (`429`) a user and
//! address that failed too often (see `login_limit`), or `Bearer` (a
//! bearer token from `GET /auth/token`, or an access token; see
//! `accounts::bearer`); [`credentials`] also says which kind of secret
//! matched, for the few actions a token may not take.
//! [`access_level`] decides a caller's level on one repository:
//!
//! - a server admin has `admin` everywhere;
//! - a user has `admin` on repositories in the namespace named after them
//!   (as in DTR, where users own their namespace);
//! - explicit grants (`read-only`, `read-write`, `admin`) from `accounts`:
//!   the user's own, their teams' on the repository or its whole
//!   namespace, and `admin` for an organization's administrators on its
//!   namespace; the highest counts;
//! - anyone, even anonymous, has `read-only` on a public repository.
//!
//! The HTTP error shapes (OCI vs DTR) are chosen by the callers through
//! `error.rs`; this module only decides.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::ConnectInfo;

use crate::client_ip::{ClientIp, RequestOrigin};
use axum::http::{Extensions, HeaderMap};
use base64::Engine;
use mirror_core::RepositoryName;
use mirror_core::store::Visibility;

use crate::accounts::{AccessLevel, Account, AccountError, Accounts, Credential};

/// The `service` of the Bearer challenge (and the realm of the Basic one).
pub const SERVICE: &str = "regmirror";

/// The bearer token `GET /auth/token` gives a caller without credentials:
/// not a secret, it stands for no credentials at all.
pub const ANONYMOUS_BEARER: &str = "anonymous";

/// The `WWW-Authenticate` header value of a `/v2` 401 (`/api/v0` sends
/// none, so browsers never prompt for credentials and cache them).
///
/// A Bearer challenge naming `GET /auth/token` at the origin the client
/// used, as DTR sent: clients with credentials trade them there for a
/// bearer token, and clients without (a Docker daemon using this server
/// as its `registry-mirrors` entry) get [`ANONYMOUS_BEARER`] and pull
/// what anonymous callers may. Docker gives up on a Basic challenge it has
/// no credentials for, so a Basic challenge would shut it out of public
/// repositories and anonymous caches. Without a usable `Host` the
/// challenge is Basic: a realm URL cannot be built.
pub fn challenge(origin: Option<&RequestOrigin>) -> String {
    match origin {
        Some(RequestOrigin(origin)) => {
            format!("Bearer realm=\"{origin}/auth/token\",service=\"{SERVICE}\"")
        }
        None => format!("Basic realm=\"{SERVICE}\""),
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No credentials were sent.
    Anonymous,
    /// Valid credentials of an active account.
    User(Account),
}

impl Caller {
    /// The account, unless anonymous.
    pub fn account(&self) -> Option<&Account> {
        match self {
            Caller::Anonymous => None,
            Caller::User(a) => Some(a),
        }
    }

    /// Whether the caller is a server administrator.
    pub fn is_admin(&self) -> bool {
        self.account().is_some_and(|a| a.is_admin)
    }
}

/// Why credentials were refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    /// The header is neither `Basic base64(user:secret)` nor `Bearer <token>`.
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
    /// Unknown user, wrong password or token, or inactive account.
    #[error("invalid username or password")]
    BadCredentials,
    /// The account store refused to check (too many failed logins, too
    /// many checks under way) or failed.
    #[error(transparent)]
    Store(#[from] AccountError),
}

/// The client's address: the one `client_ip::resolve` found (the peer, or
/// what a trusted proxy reports), else the connection's (`ConnectInfo`);
/// `0.0.0.0` when the router is served without either, so login limits
/// still apply per user.
pub fn client_address(extensions: &Extensions) -> IpAddr {
    if let Some(ClientIp(ip)) = extensions.get::<ClientIp>() {
        return *ip;
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The caller of a request with `headers` from `client`. No `Authorization`
/// header means [`Caller::Anonymous`]; present but wrong credentials are an
/// error, so a client never silently falls back to anonymous access.
pub async fn authenticate(
    accounts: &Accounts,
    headers: &HeaderMap,
    client: IpAddr,
) -> Result<Caller, AuthFailure> {
    Ok(match credentials(accounts, headers, client).await? {
        Some((account, _)) => Caller::User(account),
        None => Caller::Anonymous,
    })
}

/// What an `Authorization` header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorization<'a> {
    /// `Basic base64(user:secret)`: a password or an access token.
    Basic {
        /// The user name.
        user: &'a str,
        /// The password or access token.
        secret: &'a str,
    },
    /// `Bearer <token>`: a bearer token from `GET /auth/token`, or an
    /// access token.
    Bearer(&'a str),
}

/// Reads `value`, an `Authorization` header (`Basic` or `Bearer`, in any
/// case). `decoded` holds the decoded Basic credentials the answer
/// borrows.
pub fn parse_authorization<'a>(
    value: &'a str,
    decoded: &'a mut String,
) -> Result<Authorization<'a>, AuthFailure> {
    let (scheme, rest) = value.split_once(' ').ok_or(AuthFailure::Malformed(
        "expected `Basic <credentials>` or `Bearer <token>`",
    ))?;
    if scheme.eq_ignore_ascii_case("bearer") {
        let token = rest.trim();
        if token.is_empty() {
            return Err(AuthFailure::Malformed("the bearer token is empty"));
        }
        return Ok(Authorization::Bearer(token));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthFailure::Malformed(
            "only Basic and Bearer authentication are supported",
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| AuthFailure::Malformed("credentials are not base64"))?;
    *decoded = String::from_utf8(bytes)
        .map_err(|_| AuthFailure::Malformed("credentials are not UTF-8"))?;
    let (user, secret) = decoded.split_once(':').ok_or(AuthFailure::Malformed(
        "credentials are not `user:password`",
    ))?;
    Ok(Authorization::Basic { user, secret })
}

/// Like [`authenticate`], with the kind of secret that matched: the
/// account and [`Credential`], or `None` without an `Authorization` header
/// (or with empty Basic credentials, or [`ANONYMOUS_BEARER`]).
/// Basic credentials are checked (and limited) by `Accounts::verify`,
/// bearer tokens by `Accounts::verify_bearer`.
pub async fn credentials(
    accounts: &Accounts,
    headers: &HeaderMap,
    client: IpAddr,
) -> Result<Option<(Account, Credential)>, AuthFailure> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| AuthFailure::Malformed("not ASCII"))?;
    let mut decoded = String::new();
    let found = match parse_authorization(value, &mut decoded)? {
        // Clients answer a Basic challenge they have no credentials for
        // with empty ones (containers/image sends `Basic Og==`): anonymous.
        Authorization::Basic {
            user: "",
            secret: "",
        } => return Ok(None),
        Authorization::Bearer(ANONYMOUS_BEARER) => return Ok(None),
        Authorization::Basic { user, secret } => accounts.verify(user, secret, client).await?,
        Authorization::Bearer(token) => accounts.verify_bearer(token).await?,
    };
    found.map(Some).ok_or(AuthFailure::BadCredentials)
}

/// The caller's level on `repo`, whose visibility is `visibility` (`None`
/// when the repository does not exist). `None`: no access at all.
pub async fn access_level(
    accounts: &Accounts,
    caller: &Caller,
    repo: &RepositoryName,
    visibility: Option<Visibility>,
) -> Result<Option<AccessLevel>, AccountError> {
    let held = match caller.account() {
        Some(a) if !a.is_admin && !owns_namespace(a, repo) => {
            accounts.levels(&a.name, repo).await?
        }
        _ => None,
    };
    Ok(level_from(caller.account(), repo, visibility, held))
}

/// The rule of [`access_level`], given the level `held` through the
/// account's own grants, its teams and its organizations (lists read
/// those once for every repository: `Accounts::access_map`).
pub fn level_from(
    account: Option<&Account>,
    repo: &RepositoryName,
    visibility: Option<Visibility>,
    held: Option<AccessLevel>,
) -> Option<AccessLevel> {
    let public = (visibility == Some(Visibility::Public)).then_some(AccessLevel::ReadOnly);
    match account {
        None => public,
        Some(a) if a.is_admin || owns_namespace(a, repo) => Some(AccessLevel::Admin),
        Some(_) => held.max(public),
    }
}

/// The caller's level on every repository of `namespace`, new ones
/// included (creating a repository there takes `read-write`): `admin`
/// for server administrators, in one's own namespace and for an
/// organization's administrators; otherwise what teams grant on the
/// whole namespace.
pub async fn namespace_level(
    accounts: &Accounts,
    caller: &Caller,
    namespace: &str,
) -> Result<Option<AccessLevel>, AccountError> {
    let Some(account) = caller.account() else {
        return Ok(None);
    };
    if account.is_admin || account.name == namespace {
        return Ok(Some(AccessLevel::Admin));
    }
    Ok(accounts
        .access_map(&account.name)
        .await?
        .namespaces
        .get(namespace)
        .copied())
}

/// Whether `repo` lies in the namespace named after `account`.
pub fn owns_namespace(account: &Account, repo: &RepositoryName) -> bool {
    repo.owner_namespace() == account.name
}
