//! Tag rules (issue 15): a policy's `rules` choose which remote tags a
//! poll copies, the Connect check previews them before anything is
//! saved, and a bad rule is a 400 naming the rule's field.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::TestServer;
use crate::support::images::ImageSpec;
use crate::support::policies::add_policy;
use crate::support::registry::Registry;

const TAGS: &[&str] = &["1.19", "1.20", "1.20.3", "1.21-alpine", "latest", "2.0"];

/// The local tags of `repo`, sorted.
async fn local_tags(server: &TestServer, repo: &str) -> Vec<String> {
    let listed = server
        .admin()
        .get(format!("/v2/{repo}/tags/list"))
        .await
        .expect(StatusCode::OK)
        .json();
    let mut tags: Vec<String> = listed["tags"]
        .as_array()
        .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    tags.sort();
    tags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_choose_the_tags_a_poll_copies() {
    let up = Registry::plain().await;
    let pusher = up.pusher();
    for tag in TAGS {
        pusher
            .push_image("team/app", tag, ImageSpec::small(&format!("app {tag}")))
            .await;
    }
    let server = TestServer::start().await;
    server.create_repo("mirrors", "app", "private").await;
    let admin = server.admin();
    let rules = json!([
        {"field": "tag", "operator": "semver", "values": [">=1.20 <3"]},
        {"field": "tag", "operator": "ew", "values": ["-alpine"], "exclude": true},
    ]);

    // Connect previews what the rules keep, saving nothing.
    let check = admin
        .post("/api/v0/remote/registry")
        .json(&json!({"remoteHost": up.url(), "remoteRepository": "team/app", "rules": rules}))
        .await;
    let check = check.expect(StatusCode::CREATED).json();
    assert_eq!(check["preview"]["tagsListed"], TAGS.len(), "{check}");
    let mut preview: Vec<&str> = check["preview"]["matchingTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    preview.sort();
    assert_eq!(preview, ["1.20", "1.20.3", "2.0"], "{check}");
    // Without rules, DTR's answer is unchanged.
    let plain = admin
        .post("/api/v0/remote/registry")
        .json(&json!({"remoteHost": up.url(), "remoteRepository": "team/app"}))
        .await;
    assert_eq!(
        plain.expect(StatusCode::CREATED).json().get("preview"),
        None
    );

    // So does creating with dryRun=true, saving nothing.
    let form = json!({"remoteHost": up.url(), "remoteRepository": "team/app", "rules": rules});
    let dry = admin
        .post("/api/v0/repositories/mirrors/app/pollMirroringPolicies?dryRun=true")
        .json(&form)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(dry["tagsListed"], TAGS.len(), "{dry}");
    assert_eq!(dry["matchingTags"].as_array().unwrap().len(), 3, "{dry}");
    let saved = admin
        .get("/api/v0/repositories/mirrors/app/pollMirroringPolicies")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(saved, json!([]), "a dry run saves nothing");

    // A poll copies exactly those.
    let policy = add_policy(&admin, "mirrors/app", &form).await;
    let job = server.submit_poll(Some(&policy)).await;
    server.wait_done(&job).await;
    assert_eq!(
        local_tags(&server, "mirrors/app").await,
        ["1.20", "1.20.3", "2.0"]
    );
    let shown = admin
        .get(format!(
            "/api/v0/repositories/mirrors/app/pollMirroringPolicies/{policy}"
        ))
        .await;
    let shown = shown.expect(StatusCode::OK).json();
    assert_eq!(shown["rules"], rules, "{shown}");

    // New rules apply from the next poll on (nothing is deleted).
    let newest = json!([{"field": "tag", "operator": "newest", "values": ["1"]},
                        {"field": "tag", "operator": "oo", "values": ["latest", "1.19"]}]);
    let updated = admin
        .put(format!(
            "/api/v0/repositories/mirrors/app/pollMirroringPolicies/{policy}"
        ))
        .json(&json!({"rules": newest}))
        .await;
    updated.expect(StatusCode::OK);
    let job = server.submit_poll(Some(&policy)).await;
    let done: Value = server.wait_done(&job).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(
        local_tags(&server, "mirrors/app").await,
        ["1.19", "1.20", "1.20.3", "2.0"]
    );

    // Bad rules are refused, naming the rule and its field.
    for (bad, field) in [
        (
            json!([{"operator": "matches", "values": ["("]}]),
            "rules[0].values",
        ),
        (
            json!([{"operator": "eq", "values": ["a"]}, {"operator": "semver", "values": ["soon"]}]),
            "rules[1].values",
        ),
        (
            json!([{"field": "digest", "operator": "eq", "values": ["a"]}]),
            "rules[0].field",
        ),
        (
            json!([{"operator": "newest", "values": ["many"]}]),
            "rules[0].values",
        ),
    ] {
        let refused = admin
            .put(format!(
                "/api/v0/repositories/mirrors/app/pollMirroringPolicies/{policy}"
            ))
            .json(&json!({"rules": bad}))
            .await;
        refused
            .expect_error(StatusCode::BAD_REQUEST, "INVALID_POLL_MIRRORING_POLICY")
            .expect_field(field);
        let check = admin
            .post("/api/v0/remote/registry")
            .json(&json!({"remoteHost": up.url(), "remoteRepository": "team/app", "rules": bad}))
            .await;
        check.expect_field(field);
    }
    let unknown_operator = admin
        .put(format!(
            "/api/v0/repositories/mirrors/app/pollMirroringPolicies/{policy}"
        ))
        .json(&json!({"rules": [{"operator": "like", "values": ["x"]}]}))
        .await;
    unknown_operator.expect(StatusCode::BAD_REQUEST);
    server.stop().await;
}

/// Polls `policy` once: its final status and its log, joined.
async fn poll_outcome(server: &TestServer, policy: &str) -> (String, String) {
    let job = server.submit_poll(Some(policy)).await;
    let (status, lines) = server.job_outcome(&job, Duration::from_secs(60)).await;
    (status, lines.join("\n"))
}

/// Polls `policy` once, expecting `done`; its log.
async fn poll(server: &TestServer, policy: &str) -> String {
    let (status, log) = poll_outcome(server, policy).await;
    assert_eq!(status, "done", "{log}");
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_propagate_only_when_asked_and_never_too_many_at_once() {
    let up = Registry::plain().await;
    let pusher = up.pusher();
    let names: Vec<String> = (1..=12).map(|i| format!("t{i:02}")).collect();
    let mut digests = Vec::new();
    for tag in &names {
        let image = pusher
            .push_image("team/app", tag, ImageSpec::small(&format!("app {tag}")))
            .await;
        digests.push(image.digest);
    }
    let server = TestServer::start().await;
    let admin = server.admin();
    for repo in ["kept", "dry", "synced"] {
        server.create_repo("mirrors", repo, "private").await;
    }
    let form = |extra: Value| {
        let mut f = json!({"remoteHost": up.url(), "remoteRepository": "team/app"});
        f.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        f
    };
    let kept = add_policy(&admin, "mirrors/kept", &form(json!({}))).await;
    let dry = add_policy(
        &admin,
        "mirrors/dry",
        &form(json!({"deleteRemoved": true, "deleteRemovedDryRun": true})),
    )
    .await;
    let synced = add_policy(
        &admin,
        "mirrors/synced",
        &form(json!({"deleteRemoved": true})),
    )
    .await;
    for policy in [&kept, &dry, &synced] {
        poll(&server, policy).await;
    }
    // A tag pushed into the mirror by hand is not the policy's to delete.
    let local = admin.get("/v2/mirrors/synced/manifests/t01").header("accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json").await;
    let local = local.expect(StatusCode::OK);
    let media = local.header("content-type").to_string();
    admin
        .put("/v2/mirrors/synced/manifests/pushed-here")
        .header("content-type", media)
        .body(local.body.to_vec())
        .await
        .expect(StatusCode::CREATED);

    // Three tags go upstream: 10% of 12, rounded up, is 2 per poll.
    for digest in &digests[..3] {
        assert!(pusher.delete_manifest("team/app", digest).await);
    }
    let log = poll(&server, &synced).await;
    assert!(
        log.contains("at most 2 (10% of the 12 this policy mirrored)"),
        "{log}"
    );
    assert_eq!(local_tags(&server, "mirrors/synced").await.len(), 13 - 2);
    let log = poll(&server, &synced).await;
    assert!(log.contains("deleted mirrors/synced:t03"), "{log}");
    let after: Vec<String> = local_tags(&server, "mirrors/synced").await;
    let mut expected: Vec<String> = names[3..].to_vec();
    expected.push("pushed-here".into());
    expected.sort();
    assert_eq!(after, expected);
    // Without deleteRemoved nothing goes; a dry run only says what would.
    let log = poll(&server, &kept).await;
    assert!(
        !log.contains("deleted mirrors/") && !log.contains("would delete"),
        "{log}"
    );
    assert_eq!(local_tags(&server, "mirrors/kept").await, names);
    let log = poll(&server, &dry).await;
    assert!(log.contains("would delete mirrors/dry:t01"), "{log}");
    assert_eq!(local_tags(&server, "mirrors/dry").await, names);

    // A remote that lists nothing deletes nothing.
    for digest in &digests[3..] {
        assert!(pusher.delete_manifest("team/app", digest).await);
    }
    let (status, log) = poll_outcome(&server, &synced).await;
    assert!(
        log.contains("deletion skipped") || status != "done",
        "{log}"
    );
    assert_eq!(local_tags(&server, "mirrors/synced").await, expected);

    // A bad share is refused, naming it.
    let refused = admin
        .put(format!(
            "/api/v0/repositories/mirrors/synced/pollMirroringPolicies/{synced}"
        ))
        .json(&json!({"deleteRemovedMaxPercent": 0}))
        .await;
    refused.expect_field("deleteRemovedMaxPercent");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_by_creation_time_keeps_the_images_built_last() {
    let up = Registry::plain().await;
    let pusher = up.pusher();
    for (tag, built) in [
        ("build-a", "2024-01-01T00:00:00Z"),
        ("build-b", "2024-03-01T00:00:00Z"),
        ("build-c", "2024-02-01T10:00:00+02:00"),
        ("build-d", "2023-12-01T00:00:00Z"),
    ] {
        let image = ImageSpec::small(&format!("app {tag}")).created(built);
        pusher.push_image("team/app", tag, image).await;
    }
    let server = TestServer::start().await;
    server.create_repo("mirrors", "app", "private").await;
    let admin = server.admin();
    let rules = json!([{"field": "tag", "operator": "newest", "values": ["2"], "by": "created"}]);
    let form = json!({"remoteHost": up.url(), "remoteRepository": "team/app", "rules": rules});
    let policy = add_policy(&admin, "mirrors/app", &form).await;
    let job = server.submit_poll(Some(&policy)).await;
    let (status, log) = server.job_outcome(&job, Duration::from_secs(60)).await;
    assert_eq!(status, "done", "{log:#?}");
    assert!(
        log.iter()
            .any(|l| l == "newest 2 by image creation time: build-b, build-c"),
        "{log:#?}"
    );
    assert_eq!(
        local_tags(&server, "mirrors/app").await,
        ["build-b", "build-c"]
    );
    let shown = admin
        .get(format!(
            "/api/v0/repositories/mirrors/app/pollMirroringPolicies/{policy}"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(shown["rules"], rules, "{shown}");

    // A newer build arrives: the next poll adds it (nothing is deleted).
    let newer = ImageSpec::small("app build-e").created("2024-04-01T00:00:00Z");
    pusher.push_image("team/app", "build-e", newer).await;
    let job = server.submit_poll(Some(&policy)).await;
    server.wait_done(&job).await;
    assert_eq!(
        local_tags(&server, "mirrors/app").await,
        ["build-b", "build-c", "build-e"]
    );

    // `by` orders only a newest rule.
    admin
        .put(format!(
            "/api/v0/repositories/mirrors/app/pollMirroringPolicies/{policy}"
        ))
        .json(&json!({"rules": [{"operator": "sw", "values": ["b"], "by": "created"}]}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "INVALID_POLL_MIRRORING_POLICY")
        .expect_field("rules[0].by");
}
