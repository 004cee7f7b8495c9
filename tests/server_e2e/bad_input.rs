//! Malformed input gets a 4xx that names the field, never a 500: one test
//! per kind of input, each against a server of its own holding the private
//! repository `mirrors/app`, called as the administrator through the
//! request DSL (`support::http`).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::server::TestServer;
use crate::support::http::Api;

const BAD: StatusCode = StatusCode::BAD_REQUEST;
const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;
const POLICIES: &str = "/api/v0/repositories/mirrors/app/pollMirroringPolicies";

/// A server with the private repository `mirrors/app`, and calls to it as
/// the administrator.
struct Admin {
    server: TestServer,
    api: Api,
}

async fn admin() -> Admin {
    let server = TestServer::start().await;
    server.create_repo("mirrors", "app", "private").await;
    Admin {
        api: server.admin(),
        server,
    }
}

/// A policy form that is valid but for `extra`'s fields, added or replaced.
fn policy(extra: Value) -> Value {
    let mut form = json!({"remoteHost": "http://127.0.0.1:9", "remoteRepository": "a/b"});
    for (k, v) in extra.as_object().unwrap() {
        form[k] = v.clone();
    }
    form
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_the_form_is_invalid_json() {
    let t = admin().await;
    let create = || t.api.post("/api/v0/repositories/mirrors");
    for body in ["{\"name\": ", "", "[1, 2]", "nonsense"] {
        let post = create().header("content-type", "application/json");
        post.body(body).await.expect_error(BAD, "INVALID_JSON");
    }
    let secret = json!({"name": "x", "visibility": "secret"});
    let secret = create().json(&secret).await;
    secret
        .expect_error(BAD, "INVALID_JSON")
        .expect_field("visibility");
    let misspelt = create().json(&json!({"nam": "x"})).await;
    let misspelt = misspelt.expect_error(BAD, "INVALID_JSON");
    assert!(misspelt.text().contains("nam"), "{}", misspelt.text());
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_name_must_be_valid_and_new() {
    let t = admin().await;
    for (ns, name, field) in [
        ("mirrors", "Bad Name", "name"),
        ("mirrors", "-x", "name"),
        ("mirrors", "a..b", "name"),
        ("UPPER", "x", "namespace"),
    ] {
        let post = t.api.post(format!("/api/v0/repositories/{ns}"));
        let got = post.json(&json!({"name": name})).await;
        got.expect_error(BAD, "INVALID_REPOSITORY_NAME")
            .expect_field(field);
    }
    let again = t.api.post("/api/v0/repositories/mirrors");
    let again = again.json(&json!({"name": "app"})).await;
    again.expect_error(BAD, "REPOSITORY_EXISTS");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_names_its_missing_or_invalid_field_or_parameter() {
    let t = admin().await;
    let invalid = "INVALID_POLL_MIRRORING_POLICY";
    let got = t
        .api
        .post(POLICIES)
        .json(&policy(json!({"enabled": "yes"})));
    got.await
        .expect_error(BAD, "INVALID_JSON")
        .expect_field("enabled");
    // A missing required field is named like any invalid one.
    let got = t
        .api
        .post(POLICIES)
        .json(&json!({"remoteHost": "http://x"}));
    got.await
        .expect_error(BAD, invalid)
        .expect_field("remoteRepository");
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
        let post = t.api.post(POLICIES).query("initialEvaluation=true");
        let got = post.json(&policy(extra)).await;
        got.expect_error(BAD, invalid).expect_field(field);
    }
    let post = t.api.post(POLICIES).query("initialEvaluation=maybe");
    let got = post.json(&policy(json!({}))).await;
    got.expect_error(BAD, "INVALID_PARAMETER")
        .expect_field("initialEvaluation");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_repository_job_or_cron_that_does_not_exist_is_not_found() {
    let t = admin().await;
    let none = format!("{POLICIES}/00000000-0000-0000-0000-000000000000");
    let got = t.api.get(none).await;
    got.expect_error(NOT_FOUND, "NO_SUCH_POLL_MIRRORING_POLICY");
    for method in [Method::PUT, Method::DELETE] {
        let call = t.api.call(method, format!("{POLICIES}/nope"));
        let got = call.json(&json!({"enabled": false})).await;
        got.expect_error(NOT_FOUND, "NO_SUCH_POLL_MIRRORING_POLICY");
    }
    let missing = "/api/v0/repositories/mirrors/missing/pollMirroringPolicies";
    let got = t.api.post(missing).json(&policy(json!({}))).await;
    got.expect_error(NOT_FOUND, "NO_SUCH_REPOSITORY");
    let job = t.api.get("/api/v0/jobs/nope").await;
    job.expect_error(NOT_FOUND, "NO_SUCH_JOB");
    let cron = t.api.get("/api/v0/crons/nope").await;
    cron.expect_error(NOT_FOUND, "NO_SUCH_CRON");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_crons_and_job_listings_name_what_is_wrong() {
    let t = admin().await;
    for (form, field) in [
        (json!({"action": "gc"}), "action"),
        (
            json!({"action": "poll_mirror", "parameters": {"policyID": "nope"}}),
            "parameters",
        ),
        (
            json!({"action": "poll_mirror", "scheduledAt": "tomorrow"}),
            "scheduledAt",
        ),
    ] {
        let got = t.api.post("/api/v0/jobs").json(&form).await;
        got.expect_error(BAD, "INVALID_JOB").expect_field(field);
    }
    for (query, field) in [
        ("limit=abc", "limit"),
        ("running=maybe", "running"),
        ("limit=1e3", "limit"),
    ] {
        let got = t.api.get("/api/v0/jobs").query(query).await;
        got.expect_error(BAD, "INVALID_PARAMETER")
            .expect_field(field);
    }
    let cron = |form: Value| t.api.post("/api/v0/crons").json(&form);
    let hourly = cron(json!({"action": "poll_mirror", "schedule": "every hour"})).await;
    hourly
        .expect_error(BAD, "INVALID_CRON")
        .expect_field("schedule");
    let retries = json!({"action": "poll_mirror", "schedule": "@hourly", "retries": "3"});
    let got = cron(retries).await;
    got.expect_error(BAD, "INVALID_JSON")
        .expect_field("retries");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_names_its_bad_name_or_short_password() {
    let t = admin().await;
    for (form, field) in [
        (
            json!({"name": "Bob Smith", "password": "long-enough"}),
            "name",
        ),
        (json!({"name": "bob", "password": "short"}), "password"),
    ] {
        let got = t.api.post("/api/v0/accounts").json(&form).await;
        got.expect_error(BAD, "INVALID_ACCOUNT").expect_field(field);
    }
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_api_names_bad_input_and_what_is_not_there_in_oci_errors() {
    let t = admin().await;
    for (path, status, code) in [
        ("/v2/BAD/name/tags/list", BAD, "NAME_INVALID"),
        ("/v2/mirrors/app/blobs/sha256:zz", BAD, "DIGEST_INVALID"),
        ("/v2/mirrors/app/manifests/sha256:zz", BAD, "DIGEST_INVALID"),
        // A tag that cannot exist is not found (the OCI conformance suite).
        (
            "/v2/mirrors/app/manifests/-bad-tag",
            NOT_FOUND,
            "MANIFEST_UNKNOWN",
        ),
        (
            "/v2/mirrors/app/tags/list?n=-1",
            BAD,
            "PAGINATION_NUMBER_INVALID",
        ),
        ("/v2/mirrors/nope/tags/list", NOT_FOUND, "NAME_UNKNOWN"),
        (
            "/v2/mirrors/app/manifests/latest",
            NOT_FOUND,
            "MANIFEST_UNKNOWN",
        ),
        ("/v2/mirrors/app/whatever", NOT_FOUND, "NOT_FOUND"),
    ] {
        t.api.get(path).await.expect_error(status, code);
    }
    t.server.stop().await;
}
