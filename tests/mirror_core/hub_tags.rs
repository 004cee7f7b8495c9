//! Docker Hub's tags API (issue 17), against a stand-in answering in Hub's
//! documented shape (`{count, next, previous, results: [{name, digest, …}]}`,
//! `page`/`page_size`): `HttpRemote::tag_digests` of a Docker Hub endpoint
//! reads every page, anonymously even when the endpoint has credentials,
//! follows `next` only forward, and takes a 404 as "no such API".

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use mirror_core::remote::{HttpSettings, RemoteError, RemoteRegistry};
use mirror_core::{Digest, RemoteEndpoint, Secret};
use serde_json::json;

#[derive(Clone, Default)]
struct Hub {
    base: String,
    /// Tags of `library/app`.
    tags: usize,
    /// `next` of page 2 points back at page 1.
    loops: bool,
    /// Path and query of each request, and whether it was authorized.
    seen: Arc<Mutex<Vec<(String, bool)>>>,
}

fn digest(i: usize) -> Digest {
    Digest::of(format!("image {i}").as_bytes())
}

async fn tags(
    State(hub): State<Hub>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    hub.seen
        .lock()
        .unwrap()
        .push((uri.to_string(), headers.contains_key("authorization")));
    if !uri
        .path()
        .starts_with("/v2/namespaces/library/repositories/app/tags")
    {
        return (StatusCode::NOT_FOUND, "{\"message\":\"object not found\"}").into_response();
    }
    let size: usize = q
        .get("page_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let page: usize = q.get("page").and_then(|s| s.parse().ok()).unwrap_or(1);
    let results: Vec<_> = (0..hub.tags)
        .skip((page - 1) * size)
        .take(size)
        .map(|i| {
            json!({"creator": 1, "id": i, "images": [], "last_updated": "2026-01-01T00:00:00Z",
                   "name": format!("t{i:03}"), "repository": 7, "full_size": 100,
                   "v2": true, "tag_status": "active", "media_type":
                   "application/vnd.oci.image.index.v1+json", "content_type": "image",
                   "digest": digest(i).to_string()})
        })
        .collect();
    let next_page = if hub.loops && page == 2 { 1 } else { page + 1 };
    let next = (page * size < hub.tags).then(|| {
        format!(
            "{}/v2/namespaces/library/repositories/app/tags?page={next_page}&page_size={size}",
            hub.base
        )
    });
    axum::Json(json!({"count": hub.tags, "next": next, "previous": null, "results": results}))
        .into_response()
}

async fn start(mut hub: Hub) -> Hub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    hub.base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(tags).with_state(hub.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    hub
}

fn remote(hub: &Hub, repository: &str) -> mirror_core::remote::HttpRemote {
    let mut endpoint = RemoteEndpoint::anonymous("https://index.docker.io", repository).unwrap();
    endpoint.username = "someone".into();
    endpoint.password = Secret::new("a password Hub's web API must not see".to_string());
    let settings = HttpSettings {
        hub_api: hub.base.clone(),
        ..Default::default()
    };
    mirror_core::remote::HttpRemote::new(&endpoint, &settings).unwrap()
}

#[tokio::test]
async fn docker_hubs_tags_api_gives_every_digest_anonymously() {
    let hub = start(Hub {
        tags: 250,
        ..Hub::default()
    })
    .await;
    let repo = mirror_core::RepositoryName::parse("library/app").unwrap();
    let bulk = remote(&hub, "library/app")
        .tag_digests(&repo)
        .await
        .unwrap()
        .expect("Hub's API answers");
    assert_eq!(bulk.requests, 3);
    assert_eq!(bulk.digests.len(), 250);
    assert_eq!(bulk.digests["t123"], digest(123));
    let seen = hub.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    assert!(seen.iter().all(|(_, authorized)| !authorized), "{seen:#?}");
    assert!(seen[0].0.contains("page_size=100"), "{seen:#?}");
}

#[tokio::test]
async fn docker_hubs_tags_api_is_followed_only_forward_and_absent_on_404() {
    let hub = start(Hub {
        tags: 250,
        loops: true,
        ..Hub::default()
    })
    .await;
    let repo = mirror_core::RepositoryName::parse("library/app").unwrap();
    let err = remote(&hub, "library/app")
        .tag_digests(&repo)
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::Protocol { .. }), "{err}");
    assert_eq!(hub.seen.lock().unwrap().len(), 2);

    let other = mirror_core::RepositoryName::parse("team/other").unwrap();
    let none = remote(&hub, "team/other")
        .tag_digests(&other)
        .await
        .unwrap();
    assert!(none.is_none());
}
