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

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{ADMIN, ADMIN_PASSWORD, Creds, TestServer, repository_names};
use crate::support::Registry;
use crate::support::http::{Api, Reply};
use crate::support::images::{MixedImages, MixedTags};
use crate::support::policies::policies;

const ALICE: Creds<'static> = Some(("alice", "alice-pa55word"));

/// A number header (`X-Resource-Count`).
fn count(reply: &Reply) -> Option<u64> {
    reply.header_opt("x-resource-count")?.parse().ok()
}

/// `X-Next-Page-Start`, when present.
fn next_page(reply: &Reply) -> Option<String> {
    reply.header_opt("x-next-page-start").map(str::to_string)
}

/// The `.token` of `GET /auth/token` as `api`'s caller (as `curl -u`).
async fn auth_token(api: &Api) -> String {
    let answer = api.get("/auth/token").await.expect(StatusCode::OK);
    assert_eq!(answer.header("cache-control"), "no-store");
    let body = answer.json();
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

/// A server with the private repositories `mirrors/app`, `mirrors/web`
/// and `mirrors/db`; calls to it as admin.
struct Three {
    server: TestServer,
    admin: Api,
}

async fn three() -> Three {
    let server = TestServer::start().await;
    for name in ["app", "web", "db"] {
        server.create_repo("mirrors", name, "private").await;
    }
    Three {
        admin: server.admin(),
        server,
    }
}

// ----------------------------------------------- scripts, one by one ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtr_job_logs_reads_the_version_anonymously_and_picks_data() {
    let server = TestServer::start().await;
    // dtr-job-logs: the version, anonymously, decides the log field.
    let docs = server.api().get("/api/v0/docs.json").await;
    let docs = docs.expect(StatusCode::OK).json();
    let version = docs["info"]["version"].as_str().unwrap();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap(), parts.next().unwrap());
    assert!(
        major >= 2 && minor >= 5,
        "{version}: the script would read `.Data`"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msr_migrate_posts_repository_objects_back() {
    let t = three().await;
    // msr-migrate, step 1: the repositories to create.
    let listed = t
        .admin
        .get("/api/v0/repositories/mirrors?pageSize=100000&count=true")
        .await
        .expect(StatusCode::OK);
    assert_eq!(count(&listed), Some(3));
    let repos = listed.json()["repositories"].as_array().unwrap().clone();
    assert_eq!(repos.len(), 3, "pageSize=100000 is clamped, not refused");

    // msr-migrate, step 2: each repository object POSTed back without its
    // `id` (namespaceType, accessLevel, tagCount, ... are ignored). Here
    // they exist: DTR's 400 REPOSITORY_EXISTS, which the script reads.
    let web = repos.iter().find(|r| r["name"] == "web").unwrap().clone();
    let mut repodetails = web.clone();
    repodetails.as_object_mut().unwrap().remove("id");
    let create = |api: &Api, repo: &Value| api.post("/api/v0/repositories/mirrors").json(repo);
    let exists = create(&t.admin, &repodetails).await;
    exists.expect_error(StatusCode::BAD_REQUEST, "REPOSITORY_EXISTS");
    // Deleted first, the same object creates the same repository.
    let deleted = t.admin.delete("/api/v0/repositories/mirrors/web").await;
    deleted.expect(StatusCode::NO_CONTENT);
    let created = create(&t.admin, &web).await;
    let created = created.expect(StatusCode::CREATED).json();
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
    t.server.create_user("alice", "alice-pa55word").await;
    let theirs = create(&t.server.api().creds(ALICE), &repodetails).await;
    theirs.expect_error(StatusCode::NOT_FOUND, "NO_SUCH_ACCOUNT");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_counting_and_paging_scripts_read_their_headers() {
    let t = three().await;
    // dtr-count-tags: repositories with pageSize=0 (the default page).
    let all = t.admin.get("/api/v0/repositories?pageSize=0&count=true");
    let all = all.await.expect(StatusCode::OK);
    assert_eq!(count(&all), Some(3));

    // msr-repo-count (Python): one repository per page, the total in the header.
    let one = t.admin.get("/api/v0/repositories?pageSize=1&count=true");
    let one = one.await.expect(StatusCode::OK);
    assert_eq!(
        (
            one.json()["repositories"].as_array().unwrap().len(),
            count(&one)
        ),
        (1, Some(3))
    );
    // The DTR docs' example: count=false sends no count.
    let uncounted = t.admin.get("/api/v0/repositories?pageSize=10&count=false");
    assert_eq!(count(&uncounted.await.expect(StatusCode::OK)), None);

    // msr-policy-updater (go-swagger): an empty pageStart, then the
    // X-Next-Page-Start of each page, until there is none.
    let mut seen = Vec::new();
    let mut start = String::new();
    loop {
        let page = format!("/api/v0/repositories?pageSize=2&pageStart={start}");
        let page = t.admin.get(page).await.expect(StatusCode::OK);
        seen.extend(repository_names(&page.json()));
        match next_page(&page) {
            Some(next) => start = next,
            None => break,
        }
    }
    assert_eq!(seen, ["mirrors/app", "mirrors/db", "mirrors/web"]);
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_on_a_mirrored_repository_run_unchanged() {
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
    let admin = server.admin();
    server.create_repo("mirrors", "app", "private").await;

    // msr-migrate, step 3: its policy body, Save & Apply. The Connect
    // check (the UI's "Connect" before saving) takes the same body.
    let mirrordata = migrate_policy(&up.url(), "mirrors", "app", true);
    let check = admin.post("/api/v0/remote/registry").json(&mirrordata);
    let check = check.await.expect(StatusCode::CREATED).json();
    assert_eq!(check["permissions"]["read"], true, "{check}");
    let job = server.apply_policy(ADMIN, "mirrors/app", mirrordata).await;
    server.wait_done(&job).await;

    // dtr-job-logs: the jobs of an action, then each one's log lines.
    let jobs = admin
        .get("/api/v0/jobs?action=poll_mirror&worker=any&running=any&start=0&limit=10")
        .await;
    let jobs = jobs.expect(StatusCode::OK).json();
    let ids: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&job.as_str()), "{jobs}");
    let logs = admin.get(format!("/api/v0/jobs/{job}/logs")).await;
    let logs = logs.expect(StatusCode::OK).json();
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .all(|l| l["data"].is_string()),
        "{logs}"
    );
    // A `limit` above any page size is clamped like `pageSize`.
    let clamped = admin.get("/api/v0/jobs?limit=100000").await;
    clamped.expect(StatusCode::OK);

    // dtr-count-tags: each repository's tag count from a HEAD's
    // X-Resource-Count.
    let counted = admin.head("/api/v0/repositories/mirrors/app/tags?pageSize=1&count=true");
    let counted = counted.await.expect(StatusCode::OK);
    assert_eq!(count(&counted), Some(4), "v1, v2, v2-amd64, v2-arm64");

    // msr-list-tags: every tag in one page, `jq length` and `.[].name`.
    let tags = admin.get("/api/v0/repositories/mirrors/app/tags?pageSize=10000000");
    let tags = tags.await.expect(StatusCode::OK).json();
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
    let page = admin.get("/api/v0/repositories/mirrors/app/tags?pageSize=3&pageStart=v2");
    let page = page.await;
    let names: Vec<String> = page
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        (names, next_page(&page)),
        (
            vec!["v2".into(), "v2-amd64".into(), "v2-arm64".into()],
            None
        )
    );

    // One tag: DTR's array, one entry per image of the index.
    let one = admin.get("/api/v0/repositories/mirrors/app/tags/v2").await;
    let one = one.expect(StatusCode::OK).json();
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
    let arm = admin.get("/api/v0/repositories/mirrors/app/tags/v2?os=linux&arch=arm64");
    let arm = arm.await.json();
    assert_eq!(arm.as_array().unwrap().len(), 1, "{arm}");
    assert_eq!(arm[0]["manifest"]["digest"], one[1]["manifest"]["digest"]);
    let by_digest = format!("/api/v0/repositories/mirrors/app/tags/{}", index.digest);
    let by_digest = admin.get(by_digest).await.json();
    assert_eq!(by_digest.as_array().unwrap().len(), 2, "{by_digest}");
    let v9 = admin.get("/api/v0/repositories/mirrors/app/tags/v9").await;
    v9.expect_error(StatusCode::NOT_FOUND, "NO_SUCH_REF");

    // msr-disable-mirrors: a bearer token from the access token the
    // script is given, then Bearer on every call.
    let label = json!({"tokenLabel": "disable-mirrors"});
    let tok = admin.post("/api/v0/api_tokens").json(&label).await;
    let tok = tok.expect(StatusCode::OK).json();
    let access_token = tok["token"].as_str().unwrap();
    let token = auth_token(&server.api().creds(Some(("admin", access_token)))).await;
    let bearer = server.api().bearer(&token);
    let policies = policies("mirrors/app");
    let listed = bearer.get(&policies).await.expect(StatusCode::OK).json();
    let policy = &listed[0];
    assert_eq!(policy["enabled"], true);
    let id = policy["id"].as_str().unwrap();
    let one = format!("{policies}/{id}");
    let updated = bearer
        .put(&one)
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .body("{ \"enabled\": false }")
        .await;
    let updated = updated.expect(StatusCode::OK).json();
    assert_eq!(updated["enabled"], false, "{updated}");

    // msr-policy-updater: the policy as read, with new credentials, PUT
    // back whole (id, lastStatus, lastMirroredAt ... are ignored).
    let mut whole = updated.clone();
    whole["enabled"] = json!(true);
    let back = admin.put(&one).json(&whole).await;
    let back = back.expect(StatusCode::OK).json();
    assert_eq!(back["enabled"], true, "{back}");
    // Read fields stay strict: a wrong type is a 400 naming the field.
    let wrong = admin.put(&one).json(&json!({"enabled": "false", "id": id}));
    wrong
        .await
        .expect_error(StatusCode::BAD_REQUEST, "INVALID_JSON")
        .expect_field("enabled");
    server.stop().await;
}

// ------------------------------------------------------ bearer tokens ----

/// A server with `alice`, who owns `alice/own`; calls as her.
async fn alice() -> (TestServer, Api) {
    let server = TestServer::start().await;
    server.create_user("alice", "alice-pa55word").await;
    server.create_repo("alice", "own", "private").await;
    let alice = server.api().creds(ALICE);
    (server, alice)
}

/// Whether `token` is taken as alice's (her account, with it as bearer).
async fn whoami(server: &TestServer, token: &str) -> StatusCode {
    let bearer = server.api().bearer(token);
    bearer.get("/api/v0/accounts/alice").await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_acts_as_its_account_and_is_not_a_password() {
    let (server, alice) = alice().await;
    // From the password (`curl -u user:password .../auth/token`).
    let bearer = server.api().bearer(&auth_token(&alice).await);
    let repos = bearer.get("/api/v0/repositories?pageSize=100000&count=true");
    let repos = repos.await.expect(StatusCode::OK).json();
    assert_eq!(repos["repositories"][0]["name"], "own");
    // The registry takes it too.
    let tags = bearer.get("/v2/alice/own/tags/list").await;
    tags.expect(StatusCode::OK);
    // An administrator's is an administrator's.
    let admin_token = auth_token(&server.api().creds(Some(("admin", ADMIN_PASSWORD)))).await;
    let jobs = server.api().bearer(&admin_token).get("/api/v0/jobs").await;
    jobs.expect(StatusCode::OK);

    // It is not a password: no tokens, no password change, no new bearer.
    let label = json!({"tokenLabel": "spare"});
    let spare = bearer.post("/api/v0/api_tokens").json(&label).await;
    spare.expect(StatusCode::FORBIDDEN);
    let change = json!({"oldPassword": "alice-pa55word", "newPassword": "taken-over-1"});
    let changed = bearer.post("/api/v0/accounts/alice/changePassword");
    changed.json(&change).await.expect(StatusCode::FORBIDDEN);
    let again = bearer.get("/auth/token").await;
    again.expect(StatusCode::UNAUTHORIZED);
    // Without credentials: the anonymous token, which is no credential.
    let anonymous = server.api().get("/auth/token").await;
    let anonymous = anonymous.expect(StatusCode::OK).json();
    let anonymous = anonymous["token"].as_str().unwrap().to_string();
    let listed = server
        .api()
        .bearer(&anonymous)
        .get("/v2/alice/own/tags/list");
    listed.await.expect(StatusCode::UNAUTHORIZED);
    let wrong = server.api().creds(Some(("alice", "wrong-password")));
    wrong
        .get("/auth/token")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    // Garbage is refused, never anonymous.
    assert_eq!(
        whoami(&server, "not-a-token").await,
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_ends_with_the_access_token_or_password_it_came_from() {
    let (server, alice) = alice().await;
    let token = auth_token(&alice).await;
    // An access token works as a bearer token itself, and a bearer token
    // minted with it ends with it.
    let label = json!({"tokenLabel": "ci"});
    let tok = alice.post("/api/v0/api_tokens").json(&label).await;
    let tok = tok.expect(StatusCode::OK).json();
    let access = tok["token"].as_str().unwrap().to_string();
    let with_access = server.api().creds(Some(("alice", &access)));
    let derived = auth_token(&with_access).await;
    assert_eq!(whoami(&server, &access).await, StatusCode::OK);
    assert_eq!(whoami(&server, &derived).await, StatusCode::OK);
    let hashed = tok["hashedToken"].as_str().unwrap();
    let deactivate = alice.patch(format!("/api/v0/api_tokens/{hashed}"));
    let deactivated = deactivate.json(&json!({"isActive": false})).await;
    deactivated.expect(StatusCode::OK);
    assert_eq!(whoami(&server, &access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(whoami(&server, &derived).await, StatusCode::UNAUTHORIZED);

    // A password change ends the password's bearer tokens.
    assert_eq!(whoami(&server, &token).await, StatusCode::OK);
    let change = json!({"newPassword": "alice-new-pa55word"});
    let changed = server.admin().post("/api/v0/accounts/alice/changePassword");
    changed.json(&change).await.expect(StatusCode::OK);
    assert_eq!(whoami(&server, &token).await, StatusCode::UNAUTHORIZED);
    server.stop().await;
}
