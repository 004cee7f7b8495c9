//! DTR/MSR automation scripts, replayed unchanged: the exact paths, query
//! strings, bodies (with the fields those scripts add) and auth headers
//! (Basic and Bearer) that public scripts send to DTR 2.x / MSR 2.x, and
//! what they then read from the answers (`jq` paths, headers).
//!
//! The scripts (public code, found by searching for DTR API calls):
//!
//! - **msr-migrate**: a bash MSR-to-MSR migration script. It lists a
//!   namespace with `?pageSize=100000&count=true` (Basic), POSTs each
//!   repository object back with `jq 'del(.id)'` (so with `namespaceType`,
//!   `accessLevel`, ... and reading 400 as "exists", 404 as
//!   `NO_SUCH_ACCOUNT`), then creates poll mirroring policies with
//!   `{rules: [], username, password, localRepository, remoteHost,
//!   remoteRepository, remoteCA: "", skipTLSVerification: true,
//!   tagTemplate: "%n", enabled}` and `?initialEvaluation=true`.
//! - **msr-disable-mirrors**: bash; `GET /auth/token` with `curl -u
//!   user:token`, then `-H "Authorization: Bearer ${TOKEN}"` on
//!   `pollMirroringPolicies` and `PUT .../pollMirroringPolicies/{id}` with
//!   `{"enabled": false}`; lists repositories with
//!   `?pageSize=100000&count=true`.
//! - **dtr-count-tags**: bash; `?pageSize=0&count=true` for repositories,
//!   then `curl -s -I .../tags?pageSize=1&count=true` and the number in
//!   `X-Resource-Count:`.
//! - **msr-list-tags**: bash; `.../tags?pageSize=10000000 | jq length`.
//! - **msr-repo-count** (Python, `requests`): `?pageSize=1&count=true` and
//!   `X-Resource-Count`.
//! - **dtr-job-logs**: sh; `curl -sk .../api/v0/docs.json | jq -r
//!   .info.version` (no credentials) to pick `data` (DTR >= 2.5) or `Data`
//!   as the log field, `GET /api/v0/jobs?action=..&worker=any&running=any&
//!   start=0&limit=N`, then `.../jobs/{id}/logs | jq -r .[].data`.
//! - **squizzi/msr-policy-updater** (Go, DTR's go-swagger client): pages
//!   repositories with `?pageSize=N&pageStart=` (empty start) and
//!   `X-Next-Page-Start`; PUTs `{username, password}` on each policy.
//! - The DTR 2.7 docs' `curl ... /api/v0/repositories?pageSize=10&count=false`.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::server::{ADMIN, ADMIN_PASSWORD, Creds, TestServer, assert_error, exchange};
use crate::support::Registry;
use crate::support::images::{MixedImages, MixedTags};

const ALICE: Creds<'static> = Some(("alice", "alice-pa55word"));

/// A number header (`X-Resource-Count`).
fn count(headers: &HeaderMap) -> Option<u64> {
    headers.get("x-resource-count")?.to_str().ok()?.parse().ok()
}

/// `X-Next-Page-Start`, when present.
fn next_page(headers: &HeaderMap) -> Option<String> {
    Some(headers.get("x-next-page-start")?.to_str().ok()?.to_string())
}

/// `GET path` with Basic `creds`: status, headers, body.
async fn get(server: &TestServer, path: &str, creds: Creds<'_>) -> (StatusCode, HeaderMap, Value) {
    exchange(server.request(Method::GET, path, creds), None).await
}

/// The `.token` of `GET /auth/token` with Basic `creds` (as `curl -u`).
async fn auth_token(server: &TestServer, creds: Creds<'_>) -> String {
    let (s, headers, body) = get(server, "/auth/token", creds).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["expires_in"], 900, "{body}");
    assert_eq!(body["access_token"], body["token"], "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// The mirror policy body msr-migrate builds for `namespace/reponame`.
fn migrate_policy(remote: &str, namespace: &str, reponame: &str, enabled: bool) -> Value {
    json!({
        "rules": [],
        "username": "",
        "password": "",
        "localRepository": format!("{namespace}/{reponame}"),
        "remoteHost": remote,
        "remoteRepository": "team/app",
        "remoteCA": "",
        "skipTLSVerification": true,
        "tagTemplate": "%n",
        "enabled": enabled,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_and_inventory_scripts_run_unchanged() {
    let up = Registry::plain().await;
    let MixedImages { index, .. } = up
        .pusher()
        .push_mixed(
            "team/app",
            MixedTags {
                docker: "v1",
                amd64: "v2-amd64",
                arm64: "v2-arm64",
                index: "v2",
            },
            50_000,
            12,
        )
        .await;
    let server = TestServer::start().await;
    server.create_user("alice", "alice-pa55word").await;

    // dtr-job-logs: the version, anonymously, decides the log field.
    let (s, _, docs) = get(&server, "/api/v0/docs.json", None).await;
    assert_eq!(s, StatusCode::OK, "{docs}");
    let version = docs["info"]["version"].as_str().unwrap();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap(), parts.next().unwrap());
    assert!(
        major >= 2 && minor >= 5,
        "{version}: the script would read `.Data`"
    );

    // msr-migrate, step 1: the repositories to create; one is mirrored.
    for name in ["app", "web", "db"] {
        server.create_repo("mirrors", name, "private").await;
    }
    let (s, headers, listed) = get(
        &server,
        "/api/v0/repositories/mirrors?pageSize=100000&count=true",
        ADMIN,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{listed}");
    assert_eq!(count(&headers), Some(3));
    let repos = listed["repositories"].as_array().unwrap().clone();
    assert_eq!(repos.len(), 3, "pageSize=100000 is clamped, not refused");

    // msr-migrate, step 2: each repository object POSTed back without its
    // `id` (namespaceType, accessLevel, tagCount, ... are ignored). Here
    // they exist: DTR's 400 REPOSITORY_EXISTS, which the script reads.
    let web = repos.iter().find(|r| r["name"] == "web").unwrap().clone();
    let mut repodetails = web.clone();
    repodetails.as_object_mut().unwrap().remove("id");
    let got = server
        .call(
            Method::POST,
            "/api/v0/repositories/mirrors",
            ADMIN,
            Some(repodetails.clone()),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "REPOSITORY_EXISTS", None);
    // Deleted first, the same object creates the same repository.
    let (s, _) = server
        .call(
            Method::DELETE,
            "/api/v0/repositories/mirrors/web",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, created) = server
        .call(
            Method::POST,
            "/api/v0/repositories/mirrors",
            ADMIN,
            Some(web.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    for field in [
        "namespace",
        "name",
        "visibility",
        "shortDescription",
        "namespaceType",
    ] {
        assert_eq!(created[field], web[field], "{field}");
    }
    // A user's copy into a namespace without an account: NO_SUCH_ACCOUNT.
    let got = server
        .call(
            Method::POST,
            "/api/v0/repositories/mirrors",
            ALICE,
            Some(repodetails),
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NO_SUCH_ACCOUNT", None);

    // msr-migrate, step 3: its policy body, Save & Apply. The Connect
    // check (the UI's "Connect" before saving) takes the same body.
    let mirrordata = migrate_policy(&up.url(), "mirrors", "app", true);
    let (s, check) = server
        .call(
            Method::POST,
            "/api/v0/remote/registry",
            ADMIN,
            Some(mirrordata.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{check}");
    assert_eq!(check["permissions"]["read"], true, "{check}");
    let job = server.apply_policy(ADMIN, "mirrors/app", mirrordata).await;
    server.wait_done(&job).await;

    // dtr-job-logs: the jobs of an action, then each one's log lines.
    let (s, _, jobs) = get(
        &server,
        "/api/v0/jobs?action=poll_mirror&worker=any&running=any&start=0&limit=10",
        ADMIN,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{jobs}");
    let ids: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&job.as_str()), "{jobs}");
    let (s, _, logs) = get(&server, &format!("/api/v0/jobs/{job}/logs"), ADMIN).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .all(|l| l["data"].is_string()),
        "{logs}"
    );
    // A `limit` above any page size is clamped like `pageSize`.
    let (s, _, jobs) = get(&server, "/api/v0/jobs?limit=100000", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{jobs}");

    // dtr-count-tags: repositories with pageSize=0 (the default page),
    // then each repository's tag count from a HEAD's X-Resource-Count.
    let (s, headers, body) =
        get(&server, "/api/v0/repositories?pageSize=0&count=true", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(count(&headers), Some(3));
    let resp = server
        .request(
            Method::HEAD,
            "/api/v0/repositories/mirrors/app/tags?pageSize=1&count=true",
            ADMIN,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(count(resp.headers()), Some(4), "v1, v2, v2-amd64, v2-arm64");

    // msr-list-tags: every tag in one page, `jq length` and `.[].name`.
    let (s, _, tags) = get(
        &server,
        "/api/v0/repositories/mirrors/app/tags?pageSize=10000000",
        ADMIN,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{tags}");
    let names: Vec<&str> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["v1", "v2", "v2-amd64", "v2-arm64"]);
    // DTR 2.7's ListTag, manifest object included; mirrored from team/app.
    let v2 = &tags[1];
    assert_eq!(v2["digest"], index.digest.as_str());
    assert_eq!(v2["manifest"]["digest"], index.digest.as_str());
    assert_eq!(v2["manifest"]["mediaType"], index.media_type.as_str());
    assert_eq!(v2["mirroring"]["remoteTag"], "v2", "{v2}");
    for field in [
        "author",
        "createdAt",
        "updatedAt",
        "hashMismatch",
        "inNotary",
    ] {
        assert!(!v2[field].is_null(), "{field}: {v2}");
    }
    let v1 = &tags[0];
    assert_eq!(v1["manifest"]["os"], "linux", "{v1}");
    assert_eq!(v1["manifest"]["architecture"], "amd64", "{v1}");
    assert!(
        v1["manifest"]["configDigest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(v1["manifest"]["size"], v1["imageSize"], "{v1}");
    assert_eq!(v1["manifest"]["createdAt"], "1970-01-01T00:00:00Z", "{v1}");

    // The tags list pages like the others.
    let (_, headers, page) = get(
        &server,
        "/api/v0/repositories/mirrors/app/tags?pageSize=3&pageStart=v2",
        ADMIN,
    )
    .await;
    let names: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        (names, next_page(&headers)),
        (vec!["v2", "v2-amd64", "v2-arm64"], None)
    );

    // One tag: DTR's array, one entry per image of the index.
    let (s, _, one) = get(&server, "/api/v0/repositories/mirrors/app/tags/v2", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{one}");
    let platforms: Vec<(String, String)> = one
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["name"], "v2");
            assert_eq!(t["digest"], index.digest.as_str());
            let m = &t["manifest"];
            (
                m["os"].as_str().unwrap().into(),
                m["architecture"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [
            ("linux".into(), "amd64".into()),
            ("linux".into(), "arm64".into())
        ]
    );
    let (_, _, arm) = get(
        &server,
        "/api/v0/repositories/mirrors/app/tags/v2?os=linux&arch=arm64",
        ADMIN,
    )
    .await;
    assert_eq!(arm.as_array().unwrap().len(), 1, "{arm}");
    assert_eq!(arm[0]["manifest"]["digest"], one[1]["manifest"]["digest"]);
    let (_, _, by_digest) = get(
        &server,
        &format!("/api/v0/repositories/mirrors/app/tags/{}", index.digest),
        ADMIN,
    )
    .await;
    assert_eq!(by_digest.as_array().unwrap().len(), 2, "{by_digest}");
    let got = server
        .call(
            Method::GET,
            "/api/v0/repositories/mirrors/app/tags/v9",
            ADMIN,
            None,
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NO_SUCH_REF", None);

    // msr-repo-count (Python): one repository per page, the total in the header.
    let (s, headers, body) =
        get(&server, "/api/v0/repositories?pageSize=1&count=true", ADMIN).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            body["repositories"].as_array().unwrap().len(),
            count(&headers)
        ),
        (1, Some(3))
    );
    // The DTR docs' example: count=false sends no count.
    let (s, headers, _) = get(
        &server,
        "/api/v0/repositories?pageSize=10&count=false",
        ADMIN,
    )
    .await;
    assert_eq!((s, count(&headers)), (StatusCode::OK, None));

    // msr-policy-updater (go-swagger): an empty pageStart, then the
    // X-Next-Page-Start of each page, until there is none.
    let mut seen = Vec::new();
    let mut start = String::new();
    loop {
        let (s, headers, body) = get(
            &server,
            &format!("/api/v0/repositories?pageSize=2&pageStart={start}"),
            ADMIN,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        for r in body["repositories"].as_array().unwrap() {
            seen.push(format!(
                "{}/{}",
                r["namespace"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            ));
        }
        match next_page(&headers) {
            Some(next) => start = next,
            None => break,
        }
    }
    assert_eq!(seen, ["mirrors/app", "mirrors/db", "mirrors/web"]);

    // msr-disable-mirrors: a bearer token from the access token the
    // script is given, then Bearer on every call.
    let (s, tok) = server
        .call(
            Method::POST,
            "/api/v0/api_tokens",
            ADMIN,
            Some(json!({"tokenLabel": "disable-mirrors"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    let access_token = tok["token"].as_str().unwrap();
    let token = auth_token(&server, Some(("admin", access_token))).await;
    let policies = "/api/v0/repositories/mirrors/app/pollMirroringPolicies";
    let (s, _, listed) = exchange(server.request_bearer(Method::GET, policies, &token), None).await;
    assert_eq!(s, StatusCode::OK, "{listed}");
    let policy = &listed[0];
    assert_eq!(policy["enabled"], true);
    let id = policy["id"].as_str().unwrap();
    let (s, _, updated) = exchange(
        server
            .request_bearer(Method::PUT, &format!("{policies}/{id}"), &token)
            .header("accept", "application/json")
            .header("content-type", "application/json")
            .body("{ \"enabled\": false }"),
        None,
    )
    .await;
    assert_eq!(
        (s, &updated["enabled"]),
        (StatusCode::OK, &json!(false)),
        "{updated}"
    );

    // msr-policy-updater: the policy as read, with new credentials, PUT
    // back whole (id, lastStatus, lastMirroredAt ... are ignored).
    let mut whole = updated.clone();
    whole["enabled"] = json!(true);
    let (s, back) = server
        .call(Method::PUT, &format!("{policies}/{id}"), ADMIN, Some(whole))
        .await;
    assert_eq!(
        (s, &back["enabled"]),
        (StatusCode::OK, &json!(true)),
        "{back}"
    );
    // Read fields stay strict: a wrong type is a 400 naming the field.
    let got = server
        .call(
            Method::PUT,
            &format!("{policies}/{id}"),
            ADMIN,
            Some(json!({"enabled": "false", "id": id})),
        )
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "INVALID_JSON",
        Some("enabled"),
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_act_as_their_account_and_no_longer() {
    let server = TestServer::start().await;
    server.create_user("alice", "alice-pa55word").await;
    server.create_repo("alice", "own", "private").await;

    // From the password (`curl -u user:password .../auth/token`).
    let token = auth_token(&server, ALICE).await;
    let (s, _, repos) = exchange(
        server.request_bearer(
            Method::GET,
            "/api/v0/repositories?pageSize=100000&count=true",
            &token,
        ),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{repos}");
    assert_eq!(repos["repositories"][0]["name"], "own");
    // The registry takes it too.
    let (s, _, _) = exchange(
        server.request_bearer(Method::GET, "/v2/alice/own/tags/list", &token),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // It is not a password: no tokens, no password change, no new bearer.
    let (s, _, _) = exchange(
        server.request_bearer(Method::POST, "/api/v0/api_tokens", &token),
        Some(json!({"tokenLabel": "spare"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = exchange(
        server.request_bearer(
            Method::POST,
            "/api/v0/accounts/alice/changePassword",
            &token,
        ),
        Some(json!({"oldPassword": "alice-pa55word", "newPassword": "taken-over-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, body) = exchange(
        server.request_bearer(Method::GET, "/auth/token", &token),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        get(&server, "/auth/token", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&server, "/auth/token", Some(("alice", "wrong-password")))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // An access token works as a bearer token itself, and a bearer token
    // minted with it ends with it.
    let (s, tok) = server
        .call(
            Method::POST,
            "/api/v0/api_tokens",
            ALICE,
            Some(json!({"tokenLabel": "ci"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    let access = tok["token"].as_str().unwrap().to_string();
    let derived = auth_token(&server, Some(("alice", &access))).await;
    let whoami = |t: String| {
        let server = &server;
        async move {
            exchange(
                server.request_bearer(Method::GET, "/api/v0/accounts/alice", &t),
                None,
            )
            .await
            .0
        }
    };
    assert_eq!(whoami(access.clone()).await, StatusCode::OK);
    assert_eq!(whoami(derived.clone()).await, StatusCode::OK);
    let (s, _) = server
        .call(
            Method::PATCH,
            &format!(
                "/api/v0/api_tokens/{}",
                tok["hashedToken"].as_str().unwrap()
            ),
            ALICE,
            Some(json!({"isActive": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(whoami(access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(whoami(derived).await, StatusCode::UNAUTHORIZED);

    // A password change ends the password's bearer tokens.
    assert_eq!(whoami(token.clone()).await, StatusCode::OK);
    let (s, _) = server
        .call(
            Method::POST,
            "/api/v0/accounts/alice/changePassword",
            ADMIN,
            Some(json!({"newPassword": "alice-new-pa55word"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(whoami(token).await, StatusCode::UNAUTHORIZED);
    // Garbage is refused, never anonymous.
    assert_eq!(whoami("not-a-token".into()).await, StatusCode::UNAUTHORIZED);
    let admin_token = auth_token(&server, Some(("admin", ADMIN_PASSWORD))).await;
    assert_eq!(
        exchange(
            server.request_bearer(Method::GET, "/api/v0/jobs", &admin_token),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    server.stop().await;
}
