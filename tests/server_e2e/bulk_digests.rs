//! Tag digests in bulk (issue 17): a poll of a remote with a tag API that
//! lists digests (a regmirror upstream's `/api/v0/.../tags`) reads them
//! there instead of one `HEAD` per tag, and confirms with a `HEAD` only
//! the tags it is about to copy. A `FaultProxy` in front of the upstream
//! counts the requests, and lies for it.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::server::{ADMIN_PASSWORD, TestServer};
use crate::support::ImageSpec;
use crate::support::fault_proxy::{Canned, Fault, FaultProxy, Logged, Rule};
use crate::support::images::Pusher;
use crate::support::policies::add_policy;

/// A poll of `policy` on `server`, finished; its log.
async fn poll(server: &TestServer, policy: &str) -> Vec<String> {
    let job = server.submit_poll(Some(policy)).await;
    let (status, log) = server
        .job_outcome(&job, std::time::Duration::from_secs(120))
        .await;
    assert_eq!(status, "done", "{log:#?}");
    log
}

/// The digest the mirror serves for `repo:tag`.
async fn mirrored(server: &TestServer, repo: &str, tag: &str) -> String {
    let resp = server
        .request(
            Method::HEAD,
            &format!("/v2/{repo}/manifests/{tag}"),
            Some(("admin", ADMIN_PASSWORD)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{repo}:{tag}");
    resp.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_string()
}

fn manifest_heads(l: &Logged) -> bool {
    l.method == Method::HEAD && l.path.contains("/manifests/")
}

/// An upstream regmirror with `team/app` holding `count` tags `t00`..,
/// alternating between two images; the pusher, and the two digests.
async fn upstream(count: usize) -> (TestServer, Pusher, [String; 2]) {
    let up = TestServer::start().await;
    up.create_repo("team", "app", "private").await;
    let pusher = Pusher::from_parts(&up.url, Some(("admin".into(), ADMIN_PASSWORD.into())), None);
    let a = pusher
        .push_image("team/app", "t00", ImageSpec::small("bulk a"))
        .await;
    let b = pusher
        .push_image("team/app", "t01", ImageSpec::small("bulk b"))
        .await;
    for i in 2..count {
        let m = if i % 2 == 0 { &a } else { &b };
        pusher
            .push_manifest_raw(
                "team/app",
                &format!("t{i:02}"),
                &m.media_type,
                m.bytes.clone(),
            )
            .await;
    }
    (up, pusher, [a.digest, b.digest])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_reads_tag_digests_from_the_tag_api_and_heads_only_what_it_copies() {
    let (up, pusher, [a, b]) = upstream(50).await;
    let proxy = FaultProxy::start_for(&up.url, None, None, 17);
    let server = TestServer::start().await;
    server.create_repo("mirrors", "app", "private").await;
    let form = json!({"remoteHost": proxy.url(), "remoteRepository": "team/app",
                      "username": "admin", "password": ADMIN_PASSWORD});
    let policy = add_policy(&server.admin(), "mirrors/app", &form).await;

    let log = poll(&server, &policy).await;
    assert!(
        log.iter()
            .any(|l| l.contains("read 50 tag digests from the registry's tag API")),
        "{log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("50 tags to copy")),
        "{log:#?}"
    );
    assert_eq!(mirrored(&server, "mirrors/app", "t48").await, a);
    assert_eq!(mirrored(&server, "mirrors/app", "t49").await, b);

    // Nothing changed: the listing and one page of the tag API, no HEAD.
    proxy.reset_log();
    let log = poll(&server, &policy).await;
    assert!(
        log.iter()
            .any(|l| l.contains("0 tags to copy, 50 unchanged")),
        "{log:#?}"
    );
    let requests = proxy.requests();
    assert_eq!(proxy.count(manifest_heads), 0, "{requests:#?}");
    assert!(requests.len() <= 4, "{requests:#?}");

    // t07 moves upstream: one HEAD confirms it, and it is copied at its
    // new digest.
    let c = pusher
        .push_image("team/app", "t07", ImageSpec::small("bulk c"))
        .await;
    proxy.reset_log();
    let log = poll(&server, &policy).await;
    assert!(
        log.iter()
            .any(|l| l.contains("copied moved tag team/app:t07")),
        "{log:#?}"
    );
    assert_eq!(mirrored(&server, "mirrors/app", "t07").await, c.digest);
    let heads: Vec<Logged> = proxy
        .requests()
        .into_iter()
        .filter(manifest_heads)
        .collect();
    assert_eq!(heads.len(), 1, "{heads:#?}");
    assert!(heads[0].path.ends_with("/manifests/t07"), "{heads:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_api_that_lies_is_overruled_by_the_head() {
    let (up, _pusher, [a, b]) = upstream(2).await;
    let proxy = FaultProxy::start_for(&up.url, None, None, 18);
    let server = TestServer::start().await;
    server.create_repo("mirrors", "app", "private").await;
    let form = json!({"remoteHost": proxy.url(), "remoteRepository": "team/app",
                      "username": "admin", "password": ADMIN_PASSWORD});
    let policy = add_policy(&server.admin(), "mirrors/app", &form).await;
    // The tag API swaps the two tags' digests.
    let lie = json!([{"name": "t00", "digest": b}, {"name": "t01", "digest": a}]);
    proxy.add(
        Rule::new(Fault::Respond(Canned {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&lie).unwrap(),
            chunked: false,
        }))
        .get()
        .path_contains("/api/v0/repositories/team/app/tags"),
    );

    let log = poll(&server, &policy).await;
    assert!(
        log.iter()
            .any(|l| l.contains(&format!("t00: the tag API says {b}, a HEAD says {a}"))),
        "{log:#?}"
    );
    assert_eq!(mirrored(&server, "mirrors/app", "t00").await, a);
    assert_eq!(mirrored(&server, "mirrors/app", "t01").await, b);

    // Polled again, the lie says both moved; the HEADs say they did not.
    let log = poll(&server, &policy).await;
    assert!(
        log.iter()
            .any(|l| l.contains("0 tags to copy, 2 unchanged")),
        "{log:#?}"
    );
    assert_eq!(mirrored(&server, "mirrors/app", "t00").await, a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_api_that_pages_backwards_falls_back_to_heads() {
    let (up, _pusher, [a, b]) = upstream(2).await;
    let proxy = FaultProxy::start_for(&up.url, None, None, 19);
    let server = TestServer::start().await;
    server.create_repo("mirrors", "app", "private").await;
    let form = json!({"remoteHost": proxy.url(), "remoteRepository": "team/app",
                      "username": "admin", "password": ADMIN_PASSWORD});
    let policy = add_policy(&server.admin(), "mirrors/app", &form).await;
    // Every page leads back to the first.
    let page = json!([{"name": "t00", "digest": a}, {"name": "t01", "digest": b}]);
    let api = proxy.add(
        Rule::new(Fault::Respond(Canned {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-next-page-start".into(), "t00".into()),
            ],
            body: serde_json::to_vec(&page).unwrap(),
            chunked: false,
        }))
        .get()
        .path_contains("/api/v0/repositories/team/app/tags"),
    );

    let log = poll(&server, &policy).await;
    assert!(
        log.iter()
            .any(|l| l.contains("the registry's tag API failed")
                && l.contains("does not lead past the page's tags")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("no tag API at the registry: reading 2 tag digests")),
        "{log:#?}"
    );
    assert_eq!(api.hits(), 1);
    assert_eq!(proxy.count(manifest_heads), 2);
    assert_eq!(mirrored(&server, "mirrors/app", "t00").await, a);
    assert_eq!(mirrored(&server, "mirrors/app", "t01").await, b);
}
