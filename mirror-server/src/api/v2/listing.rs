//! Lists: tags (`n`/`last` paging with `Link`), the catalog (only what the
//! caller can read) and referrers (an OCI index of manifests whose subject
//! is a digest).

use axum::extract::Query;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use mirror_core::Digest;
use mirror_core::Manifest;
use mirror_core::manifest::{MAX_MANIFEST_SIZE, OCI_INDEX};
use mirror_core::store::Repository;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Caller, level_from};
use crate::error::RegistryError;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    n: Option<String>,
    last: Option<String>,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
}

fn query(uri: &Uri) -> ListQuery {
    Query::<ListQuery>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

/// Parses `n`: absent, or a non-negative integer.
fn parse_n(n: Option<&str>) -> Result<Option<usize>, RegistryError> {
    n.map(|s| {
        s.parse::<usize>().map_err(|_| {
            RegistryError::pagination_invalid(format!("n={s:?} is not a non-negative integer"))
        })
    })
    .transpose()
}

/// One page of sorted `items` after `last`, at most `n`; and whether more
/// follow.
pub fn page(items: Vec<String>, n: Option<usize>, last: Option<&str>) -> (Vec<String>, bool) {
    let mut rest: Vec<String> = items
        .into_iter()
        .filter(|i| last.is_none_or(|l| i.as_str() > l))
        .collect();
    match n {
        Some(n) if rest.len() > n => {
            rest.truncate(n);
            (rest, true)
        }
        _ => (rest, false),
    }
}

fn with_link(
    mut resp: Response,
    path: &str,
    n: Option<usize>,
    items: &[String],
    more: bool,
) -> Response {
    if let (true, Some(n), Some(last)) = (more, n, items.last()) {
        let link = format!("<{path}?n={n}&last={last}>; rel=\"next\"");
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    resp
}

/// `GET /v2/<name>/tags/list`.
pub async fn tags(
    state: &AppState,
    repo: &Repository,
    uri: &Uri,
) -> Result<Response, RegistryError> {
    let q = query(uri);
    let n = parse_n(q.n.as_deref())?;
    let mut names: Vec<String> = state
        .mirror
        .stores()
        .repos
        .tags(&repo.name)
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    let (tags, more) = page(names, n, q.last.as_deref());
    let resp = axum::Json(json!({"name": repo.name, "tags": tags})).into_response();
    Ok(with_link(
        resp,
        &format!("/v2/{}/tags/list", repo.name),
        n,
        &tags,
        more,
    ))
}

/// `GET /v2/_catalog`: the repositories the caller can read.
pub async fn catalog(
    state: &AppState,
    caller: &Caller,
    uri: &Uri,
) -> Result<Response, RegistryError> {
    let q = query(uri);
    let n = parse_n(q.n.as_deref())?;
    let repos = state.mirror.stores().repos.repositories().await?;
    let held = match caller.account() {
        Some(a) if !a.is_admin => state.accounts.access_map(&a.name).await?,
        _ => Default::default(),
    };
    let mut names: Vec<String> = repos
        .into_iter()
        .filter(|r| {
            let level = held.level(r.name.as_str(), r.name.owner_namespace());
            level_from(caller.account(), &r.name, Some(r.visibility), level).is_some()
        })
        .map(|r| r.name.to_string())
        .collect();
    names.sort();
    let (repositories, more) = page(names, n, q.last.as_deref());
    let resp = axum::Json(json!({"repositories": repositories})).into_response();
    Ok(with_link(resp, "/v2/_catalog", n, &repositories, more))
}

/// `GET /v2/<name>/referrers/<digest>`: an OCI index of the manifests whose
/// subject is `digest`, optionally filtered by `artifactType`.
pub async fn referrers(
    state: &AppState,
    repo: &Repository,
    digest: &str,
    uri: &Uri,
) -> Result<Response, RegistryError> {
    let digest = Digest::parse(digest).map_err(|e| RegistryError::digest_invalid(e.to_string()))?;
    let q = query(uri);
    let found = state
        .mirror
        .stores()
        .repos
        .referrers(&repo.name, &digest)
        .await?;
    let mut manifests = Vec::new();
    for m in found.iter().filter(|m| {
        q.artifact_type
            .as_deref()
            .is_none_or(|t| m.artifact_type.as_deref() == Some(t))
    }) {
        let mut d = json!({"mediaType": m.media_type, "digest": m.digest, "size": m.size});
        if let Some(t) = &m.artifact_type {
            d["artifactType"] = json!(t);
        }
        let annotations = annotations_of(state, &m.digest).await?;
        if !annotations.is_empty() {
            d["annotations"] = json!(annotations);
        }
        manifests.push(d);
    }
    let mut resp = axum::Json(json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    }))
    .into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX));
    if q.artifact_type.is_some() {
        resp.headers_mut().insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}

/// The annotations of a stored manifest (the referrers API must carry
/// them), read back from its bytes.
async fn annotations_of(
    state: &AppState,
    digest: &Digest,
) -> Result<std::collections::BTreeMap<String, String>, RegistryError> {
    let bytes = state
        .mirror
        .stores()
        .blobs
        .read_small(digest, MAX_MANIFEST_SIZE)
        .await?;
    Ok(Manifest::parse(&bytes, None)
        .map(|m| m.annotations)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::page;

    fn check(n: Option<usize>, last: Option<&str>, expected: &[&str], more: bool) {
        let items = ["a", "b", "c", "d"].map(String::from).to_vec();
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            page(items, n, last),
            (expected, more),
            "n={n:?} last={last:?}"
        );
    }

    #[test]
    fn paging() {
        check(None, None, &["a", "b", "c", "d"], false);
        check(Some(2), None, &["a", "b"], true);
        check(Some(2), Some("b"), &["c", "d"], false);
        check(Some(4), None, &["a", "b", "c", "d"], false);
        check(Some(0), None, &[], true);
        check(None, Some("d"), &[], false);
        check(None, Some("bb"), &["c", "d"], false);
    }
}
