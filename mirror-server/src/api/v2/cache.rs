//! Pulls through a proxy cache: the `/v2` face of mirror-core's
//! `pull_through`. A read whose repository falls to a cache (its
//! namespace, containerd's `?ns=`, or Docker's `registry-mirrors` form for
//! the default cache) is answered from the stores or fetched from the
//! upstream; a push into a cache's namespace is refused.
//!
//! Who may pull: whoever may read the repository by the ordinary rules
//! (grants, teams, admins), every signed-in account, and, when the cache
//! allows it (`anonymousPull`), anonymous callers.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use mirror_core::manifest::MAX_MANIFEST_SIZE;
use mirror_core::proxy_cache::{CacheTarget, ProxyCache};
use mirror_core::pull_through::{CacheError, CachedBlob};
use mirror_core::{Digest, ErrorKind, RepositoryName};

use super::Request;
use super::content::{self, DIGEST_HEADER, response};
use super::listing;
use super::route::Route;
use crate::accounts::AccessLevel;
use crate::auth::{Caller, access_level};
use crate::error::RegistryError;

/// Serves `route` through a proxy cache when its repository `name` falls
/// to one; `None` when it does not (the ordinary path serves it).
pub(super) async fn serve(
    req: &Request<'_>,
    caller: &Caller,
    route: &Route<'_>,
    name: &str,
    need: AccessLevel,
) -> Result<Option<Response>, RegistryError> {
    let Ok(parsed) = RepositoryName::parse(name) else {
        return Ok(None);
    };
    let state = req.state;
    let pull_through = state.mirror.pull_through();
    let Some(routed) = pull_through.target(&parsed, req.query("ns")).await? else {
        return Ok(None);
    };
    let (cache, target) = (routed.cache, routed.target);
    // A name under no cache's namespace (Docker's registry-mirrors form)
    // is a local repository first, for whoever may read it. For others,
    // an existing repository and a missing one both go to the cache, so
    // the answer does not tell them apart.
    if target.fallback
        && let Some(repo) = state.mirror.stores().repos.repository(&parsed).await?
        && access_level(&state.accounts, caller, &parsed, Some(repo.visibility))
            .await?
            .is_some()
    {
        return Ok(None);
    }
    if need != AccessLevel::ReadOnly {
        // Deletes of cached content go the ordinary way (repository
        // admins evict); pushes into a cache's namespace are refused; a
        // push to a name merely routed to the default cache is ordinary.
        let pushes = !matches!(req.method.as_str(), "DELETE");
        return if target.local == parsed && pushes {
            Err(RegistryError::denied(format!(
                "{} is a proxy cache of {}: its repositories are filled from there, not pushed to",
                cache.namespace, cache.host
            )))
        } else {
            Ok(None)
        };
    }
    may_pull(req, caller, &cache, &target).await?;
    let head = req.method == Method::HEAD;
    let served = match route {
        Route::Manifest { reference, .. } => manifest(req, &cache, &target, reference, head).await,
        Route::Blob { digest, .. } => blob(req, &cache, &target, digest, head).await,
        Route::Tags { .. } | Route::Referrers { .. } => {
            let Some(repo) = state
                .mirror
                .stores()
                .repos
                .repository(&target.local)
                .await?
            else {
                return Err(RegistryError::name_unknown(target.local.as_str()));
            };
            match route {
                Route::Referrers { digest, .. } => {
                    listing::referrers(state, &repo, digest, req.uri).await
                }
                _ => listing::tags(state, &repo, req.uri).await,
            }
        }
        Route::Catalog | Route::Upload { .. } | Route::Unknown => return Ok(None),
    };
    served.map(Some)
}

/// Whether `caller` may pull `target` through `cache`, or the error.
async fn may_pull(
    req: &Request<'_>,
    caller: &Caller,
    cache: &ProxyCache,
    target: &CacheTarget,
) -> Result<(), RegistryError> {
    let state = req.state;
    let repo = state
        .mirror
        .stores()
        .repos
        .repository(&target.local)
        .await?;
    let level = access_level(
        &state.accounts,
        caller,
        &target.local,
        repo.as_ref().map(|r| r.visibility),
    )
    .await?;
    let allowed = level.is_some()
        || match caller {
            Caller::User(_) => true,
            Caller::Anonymous => cache.anonymous_pull,
        };
    if allowed {
        Ok(())
    } else {
        Err(RegistryError::unauthorized(format!(
            "log in to pull {} through the proxy cache {}",
            target.local, cache.namespace
        )))
    }
}

async fn manifest(
    req: &Request<'_>,
    cache: &ProxyCache,
    target: &CacheTarget,
    reference: &str,
    head: bool,
) -> Result<Response, RegistryError> {
    let m = req
        .state
        .mirror
        .pull_through()
        .manifest(cache, target, reference)
        .await
        .map_err(|e| cache_error(e, reference, true))?;
    let body = match (head, m.bytes) {
        (true, _) => Body::empty(),
        (false, Some(bytes)) => Body::from(bytes),
        (false, None) => Body::from(
            req.state
                .mirror
                .stores()
                .blobs
                .read_small(&m.digest, MAX_MANIFEST_SIZE)
                .await?,
        ),
    };
    Ok(response(
        StatusCode::OK,
        body,
        &[
            (header::CONTENT_TYPE, m.media_type),
            (header::CONTENT_LENGTH, m.size.to_string()),
            (
                header::HeaderName::from_static(DIGEST_HEADER),
                m.digest.to_string(),
            ),
            (header::ETAG, format!("\"{}\"", m.digest)),
        ],
    ))
}

async fn blob(
    req: &Request<'_>,
    cache: &ProxyCache,
    target: &CacheTarget,
    digest: &str,
    head: bool,
) -> Result<Response, RegistryError> {
    let parsed = Digest::parse(digest).map_err(|e| RegistryError::digest_invalid(e.to_string()))?;
    let pull_through = req.state.mirror.pull_through();
    // A `HEAD` or a `Range` is answered from the store once the blob is in.
    let stream = !head && !req.headers.contains_key(header::RANGE);
    let got = pull_through
        .blob(cache, target, &parsed, stream)
        .await
        .map_err(|e| cache_error(e, digest, false))?;
    match got {
        CachedBlob::Stored => {
            let repo = pull_through.repository(target).await?;
            content::blob(req.state, &repo, digest, head, req.headers).await
        }
        CachedBlob::Streaming(tee) => {
            let mut fields = vec![
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (
                    header::HeaderName::from_static(DIGEST_HEADER),
                    parsed.to_string(),
                ),
                (header::ETAG, format!("\"{parsed}\"")),
            ];
            if let Some(size) = tee.size {
                fields.push((header::CONTENT_LENGTH, size.to_string()));
            }
            Ok(response(
                StatusCode::OK,
                Body::from_stream(tee.into_stream()),
                &fields,
            ))
        }
    }
}

/// The OCI error of a failed pull through a cache.
fn cache_error(e: CacheError, reference: &str, manifest: bool) -> RegistryError {
    match e {
        CacheError::Store(s) => s.into(),
        e if e.kind() != ErrorKind::NotFound => RegistryError::upstream_unavailable(e.to_string()),
        _ if manifest => RegistryError::manifest_unknown(reference),
        _ => RegistryError::blob_unknown(reference),
    }
}
