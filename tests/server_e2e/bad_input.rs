//! Malformed input gets a 4xx that names the field, never a 500.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::server::{ADMIN, TestServer, assert_error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_the_field() {
    let server = TestServer::start().await;
    server.create_repo("mirrors", "app", "private").await;
    let policies = "/api/v0/repositories/mirrors/app/pollMirroringPolicies";
    let policy = |extra: serde_json::Value| {
        let mut b = json!({"remoteHost": "http://127.0.0.1:9", "remoteRepository": "a/b"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let bad = StatusCode::BAD_REQUEST;

    // Bodies that are not JSON, or not the form.
    for body in ["{\"name\": ", "", "[1, 2]", "nonsense"] {
        let got = server
            .call_raw(Method::POST, "/api/v0/repositories/mirrors", ADMIN, body)
            .await;
        assert_error(&got, bad, "INVALID_JSON", None);
    }
    let got = server
        .call(
            Method::POST,
            "/api/v0/repositories/mirrors",
            ADMIN,
            Some(json!({"name": "x", "visibility": "secret"})),
        )
        .await;
    assert_error(&got, bad, "INVALID_JSON", Some("visibility"));
    let got = server
        .call(
            Method::POST,
            "/api/v0/repositories/mirrors",
            ADMIN,
            Some(json!({"nam": "x"})),
        )
        .await;
    assert_error(&got, bad, "INVALID_JSON", None);
    assert!(got.1.to_string().contains("nam"), "{}", got.1);

    // Repository names.
    for (ns, name, field) in [
        ("mirrors", "Bad Name", "name"),
        ("mirrors", "-x", "name"),
        ("mirrors", "a..b", "name"),
        ("UPPER", "x", "namespace"),
    ] {
        let got = server
            .call(
                Method::POST,
                &format!("/api/v0/repositories/{ns}"),
                ADMIN,
                Some(json!({"name": name})),
            )
            .await;
        assert_error(&got, bad, "INVALID_REPOSITORY_NAME", Some(field));
    }
    let got = server
        .call(
            Method::POST,
            "/api/v0/repositories/mirrors",
            ADMIN,
            Some(json!({"name": "app"})),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "REPOSITORY_EXISTS", None);

    // Policies.
    let got = server
        .call(
            Method::GET,
            &format!("{policies}/00000000-0000-0000-0000-000000000000"),
            ADMIN,
            None,
        )
        .await;
    assert_error(
        &got,
        StatusCode::NOT_FOUND,
        "NO_SUCH_POLL_MIRRORING_POLICY",
        None,
    );
    for method in [Method::PUT, Method::DELETE] {
        let got = server
            .call(
                method,
                &format!("{policies}/nope"),
                ADMIN,
                Some(json!({"enabled": false})),
            )
            .await;
        assert_error(
            &got,
            StatusCode::NOT_FOUND,
            "NO_SUCH_POLL_MIRRORING_POLICY",
            None,
        );
    }
    let got = server
        .call(
            Method::POST,
            "/api/v0/repositories/mirrors/missing/pollMirroringPolicies",
            ADMIN,
            Some(policy(json!({}))),
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NO_SUCH_REPOSITORY", None);
    let got = server
        .call(
            Method::POST,
            policies,
            ADMIN,
            Some(policy(json!({"enabled": "yes"}))),
        )
        .await;
    assert_error(&got, bad, "INVALID_JSON", Some("enabled"));
    let got = server
        .call(
            Method::POST,
            policies,
            ADMIN,
            Some(json!({"remoteHost": "http://x"})),
        )
        .await;
    // A missing required field is named like any invalid one.
    assert_error(
        &got,
        bad,
        "INVALID_POLL_MIRRORING_POLICY",
        Some("remoteRepository"),
    );
    for (extra, field) in [
        (json!({"remoteHost": "registry.example.com"}), "remoteHost"),
        (
            json!({"remoteHost": "ftp://registry.example.com"}),
            "remoteHost",
        ),
        (json!({"remoteRepository": "Not/Valid"}), "remoteRepository"),
        (json!({"remoteCA": "not a certificate"}), "remoteCA"),
        (json!({"password": "p"}), "username"),
        (json!({"localRepository": "other/repo"}), "localRepository"),
        (json!({"initialEvaluation": false}), "initialEvaluation"),
    ] {
        let path = format!("{policies}?initialEvaluation=true");
        let got = server
            .call(Method::POST, &path, ADMIN, Some(policy(extra)))
            .await;
        assert_error(&got, bad, "INVALID_POLL_MIRRORING_POLICY", Some(field));
    }
    let got = server
        .call(
            Method::POST,
            &format!("{policies}?initialEvaluation=maybe"),
            ADMIN,
            Some(policy(json!({}))),
        )
        .await;
    assert_error(&got, bad, "INVALID_PARAMETER", Some("initialEvaluation"));

    // Jobs and crons.
    let got = server
        .call(
            Method::POST,
            "/api/v0/jobs",
            ADMIN,
            Some(json!({"action": "gc"})),
        )
        .await;
    assert_error(&got, bad, "INVALID_JOB", Some("action"));
    let got = server
        .call(
            Method::POST,
            "/api/v0/jobs",
            ADMIN,
            Some(json!({"action": "poll_mirror", "parameters": {"policyID": "nope"}})),
        )
        .await;
    assert_error(&got, bad, "INVALID_JOB", Some("parameters"));
    let got = server
        .call(
            Method::POST,
            "/api/v0/jobs",
            ADMIN,
            Some(json!({"action": "poll_mirror", "scheduledAt": "tomorrow"})),
        )
        .await;
    assert_error(&got, bad, "INVALID_JOB", Some("scheduledAt"));
    for (query, field) in [
        ("limit=abc", "limit"),
        ("running=maybe", "running"),
        ("limit=1e3", "limit"),
    ] {
        let got = server
            .call(Method::GET, &format!("/api/v0/jobs?{query}"), ADMIN, None)
            .await;
        assert_error(&got, bad, "INVALID_PARAMETER", Some(field));
    }
    let got = server
        .call(Method::GET, "/api/v0/jobs/nope", ADMIN, None)
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NO_SUCH_JOB", None);
    let got = server
        .call(
            Method::POST,
            "/api/v0/crons",
            ADMIN,
            Some(json!({"action": "poll_mirror", "schedule": "every hour"})),
        )
        .await;
    assert_error(&got, bad, "INVALID_CRON", Some("schedule"));
    let got = server
        .call(
            Method::POST,
            "/api/v0/crons",
            ADMIN,
            Some(json!({"action": "poll_mirror", "schedule": "@hourly", "retries": "3"})),
        )
        .await;
    assert_error(&got, bad, "INVALID_JSON", Some("retries"));
    let got = server
        .call(Method::GET, "/api/v0/crons/nope", ADMIN, None)
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NO_SUCH_CRON", None);

    // Accounts.
    let got = server
        .call(
            Method::POST,
            "/api/v0/accounts",
            ADMIN,
            Some(json!({"name": "Bob Smith", "password": "long-enough"})),
        )
        .await;
    assert_error(&got, bad, "INVALID_ACCOUNT", Some("name"));
    let got = server
        .call(
            Method::POST,
            "/api/v0/accounts",
            ADMIN,
            Some(json!({"name": "bob", "password": "short"})),
        )
        .await;
    assert_error(&got, bad, "INVALID_ACCOUNT", Some("password"));

    // The registry API.
    for (path, status, code) in [
        ("/v2/BAD/name/tags/list", bad, "NAME_INVALID"),
        ("/v2/mirrors/app/blobs/sha256:zz", bad, "DIGEST_INVALID"),
        ("/v2/mirrors/app/manifests/sha256:zz", bad, "DIGEST_INVALID"),
        // A tag that cannot exist is not found (the OCI conformance suite).
        (
            "/v2/mirrors/app/manifests/-bad-tag",
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
        ),
        (
            "/v2/mirrors/app/tags/list?n=-1",
            bad,
            "PAGINATION_NUMBER_INVALID",
        ),
        (
            "/v2/mirrors/nope/tags/list",
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
        ),
        (
            "/v2/mirrors/app/manifests/latest",
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
        ),
        (
            "/v2/mirrors/app/whatever",
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
    ] {
        let (s, b) = server.call(Method::GET, path, ADMIN, None).await;
        assert_eq!(
            (s, b["errors"][0]["code"].as_str()),
            (status, Some(code)),
            "{path}: {b}"
        );
    }

    server.stop().await;
}
