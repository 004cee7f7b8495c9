//! Organizations and teams as a DTR + UCP script drives them: UCP's eNZi
//! account API for organizations, members and teams, DTR's `teamAccess`
//! grants on a repository and on a whole namespace, and what each grant
//! lets a member do through `/v2` (pull, push with skopeo) and the API.

use reqwest::StatusCode;
use serde_json::json;

use crate::server::{ADMIN_PASSWORD, TestServer, sha256, skopeo};
use crate::support::http::Api;
use crate::support::images::ImageSpec;
use crate::support::registry::Registry;

const PW: &str = "team-pa55word";

fn as_user<'a>(server: &'a TestServer, name: &'a str) -> Api {
    server.api().creds(Some((name, PW)))
}

/// The status of `GET /v2/{repo}/tags/list` for `api`.
async fn tags_status(api: &Api, repo: &str) -> StatusCode {
    api.get(format!("/v2/{repo}/tags/list")).await.status
}

/// Pushes a small blob to `repo` as `api`; the status.
async fn push_status(api: &Api, repo: &str, bytes: &[u8]) -> StatusCode {
    let digest = sha256(bytes);
    let r = api
        .post(format!("/v2/{repo}/blobs/uploads/?digest={digest}"))
        .body(bytes)
        .await;
    r.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizations_teams_and_their_grants() {
    let server = TestServer::start().await;
    for user in ["alice", "bob", "carol"] {
        server.create_user(user, PW).await;
    }
    let (admin, alice, bob, carol) = (
        server.admin(),
        as_user(&server, "alice"),
        as_user(&server, "bob"),
        as_user(&server, "carol"),
    );

    // An organization, as UCP's account API creates one; its name is a
    // namespace, so no user may take it (nor it a user's).
    let org = admin
        .post("/enzi/v0/accounts")
        .json(&json!({"name": "acme", "isOrg": true, "fullName": "Acme"}))
        .await;
    let org = org.expect(StatusCode::CREATED).json();
    assert_eq!(
        (org["name"].as_str(), org["isOrg"].as_bool()),
        (Some("acme"), Some(true))
    );
    let clash = admin
        .post("/api/v0/accounts")
        .json(&json!({"name": "acme", "password": PW}))
        .await;
    clash.expect_error(StatusCode::CONFLICT, "ACCOUNT_EXISTS");
    let clash = admin
        .post("/enzi/v0/accounts")
        .json(&json!({"name": "alice", "isOrg": true}))
        .await;
    clash.expect_error(StatusCode::CONFLICT, "ACCOUNT_EXISTS");
    let refused = alice
        .post("/enzi/v0/accounts")
        .json(&json!({"name": "mine", "isOrg": true}))
        .await;
    refused.expect(StatusCode::FORBIDDEN);

    // Alice administers it: members, teams, repositories in its namespace.
    admin
        .put("/enzi/v0/accounts/acme/members/alice")
        .json(&json!({"isAdmin": true, "isPublic": true}))
        .await
        .expect(StatusCode::OK);
    let dev = alice
        .post("/enzi/v0/accounts/acme/teams")
        .json(&json!({"name": "dev", "description": "developers"}))
        .await;
    assert_eq!(dev.expect(StatusCode::CREATED).json()["name"], "dev");
    alice
        .put("/enzi/v0/accounts/acme/teams/dev/members/bob")
        .json(&json!({}))
        .await
        .expect(StatusCode::OK);
    // A membership written again without `isAdmin` keeps the flag.
    let again = admin
        .put("/enzi/v0/accounts/acme/members/alice")
        .json(&json!({"isPublic": true}))
        .await;
    assert_eq!(again.expect(StatusCode::OK).json()["isAdmin"], true);
    let members = alice.get("/enzi/v0/accounts/acme/members").await;
    let members = members.expect(StatusCode::OK).json();
    let names: Vec<(&str, bool)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["member"]["name"].as_str().unwrap(),
                m["isAdmin"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [("alice", true), ("bob", false)], "{members}");
    alice
        .post("/api/v0/repositories/acme")
        .json(&json!({"name": "app", "visibility": "private"}))
        .await
        .expect(StatusCode::CREATED);
    let repo = alice.get("/api/v0/repositories/acme/app").await;
    assert_eq!(
        repo.expect(StatusCode::OK).json()["namespaceType"],
        "organization"
    );

    // Bob, a member without a grant, and Carol, an outsider, see nothing.
    for outsider in [&bob, &carol] {
        assert_ne!(tags_status(outsider, "acme/app").await, StatusCode::OK);
    }
    let hidden = carol.get("/enzi/v0/accounts/acme/teams").await;
    hidden.expect_error(StatusCode::NOT_FOUND, "NO_SUCH_ACCOUNT");
    let not_admin = bob
        .post("/enzi/v0/accounts/acme/teams")
        .json(&json!({"name": "mine"}))
        .await;
    not_admin.expect_error(StatusCode::FORBIDDEN, "NOT_AUTHORIZED");

    // A team grant on the repository: Bob pushes (with skopeo) and pulls.
    alice
        .put("/api/v0/repositories/acme/app/teamAccess/dev")
        .json(&json!({"accessLevel": "read-write"}))
        .await
        .expect(StatusCode::OK);
    let list = alice.get("/api/v0/repositories/acme/app/teamAccess").await;
    let list = list.expect(StatusCode::OK).json();
    assert_eq!(list["teamAccessList"][0]["team"]["name"], "dev", "{list}");
    assert_eq!(
        list["teamAccessList"][0]["accessLevel"], "read-write",
        "{list}"
    );
    let up = Registry::plain().await;
    let image = up
        .pusher()
        .push_image("team/app", "v1", ImageSpec::small("pushed by a team"))
        .await;
    skopeo(vec![
        "copy".into(),
        "--preserve-digests".into(),
        "--src-tls-verify=false".into(),
        format!("--dest-creds=bob:{PW}"),
        "--dest-tls-verify=false".into(),
        format!("docker://{}", up.reference("team/app", "v1")),
        format!("docker://{}/acme/app:v1", server.host_port),
    ])
    .await;
    let raw = skopeo(vec![
        "inspect".into(),
        "--raw".into(),
        format!("--creds=bob:{PW}"),
        "--tls-verify=false".into(),
        format!("docker://{}/acme/app:v1", server.host_port),
    ])
    .await;
    assert_eq!(sha256(&raw), image.digest);
    let listed = bob.get("/api/v0/repositories").await;
    let listed = listed.expect(StatusCode::OK).json();
    assert_eq!(
        listed["repositories"][0]["accessLevel"], "read-write",
        "{listed}"
    );
    // Read-write is not admin: Bob cannot grant.
    let not_admin = bob
        .put("/api/v0/repositories/acme/app/teamAccess/dev")
        .json(&json!({"accessLevel": "admin"}))
        .await;
    not_admin.expect_error(StatusCode::FORBIDDEN, "NOT_AUTHORIZED");
    // The team's view of its grants.
    let access = bob
        .get("/api/v0/accounts/acme/teams/dev/repositoryAccess")
        .await;
    let access = access.expect(StatusCode::OK).json();
    assert_eq!(
        access["repositoryAccessList"][0]["repository"]["name"], "app",
        "{access}"
    );

    // A namespace grant covers every repository there, new ones too.
    alice
        .post("/enzi/v0/accounts/acme/teams")
        .json(&json!({"name": "readers"}))
        .await
        .expect(StatusCode::CREATED);
    alice
        .put("/enzi/v0/accounts/acme/teams/readers/members/carol")
        .json(&json!({}))
        .await
        .expect(StatusCode::OK);
    alice
        .put("/api/v0/repositoryNamespaces/acme/teamAccess/readers")
        .json(&json!({"accessLevel": "read-only"}))
        .await
        .expect(StatusCode::OK);
    server.create_repo("acme", "later", "private").await;
    for repo in ["acme/app", "acme/later"] {
        assert_eq!(tags_status(&carol, repo).await, StatusCode::OK, "{repo}");
        assert_eq!(
            push_status(&carol, repo, b"carol's").await,
            StatusCode::FORBIDDEN,
            "{repo}"
        );
    }
    let one = carol
        .get("/api/v0/repositoryNamespaces/acme/teamAccess/readers")
        .await;
    assert_eq!(
        one.expect(StatusCode::OK).json()["accessLevel"],
        "read-only"
    );
    let not_org_admin = carol
        .delete("/api/v0/repositoryNamespaces/acme/teamAccess/readers")
        .await;
    not_org_admin.expect_error(StatusCode::FORBIDDEN, "NOT_AUTHORIZED");
    alice
        .delete("/api/v0/repositoryNamespaces/acme/teamAccess/readers")
        .await
        .expect(StatusCode::NO_CONTENT);
    let gone = alice
        .get("/api/v0/repositoryNamespaces/acme/teamAccess/readers")
        .await;
    gone.expect_error(StatusCode::NOT_FOUND, "NO_SUCH_NAMESPACE_TEAM_ACCESS");
    assert_ne!(tags_status(&carol, "acme/later").await, StatusCode::OK);

    // Teams are granted only inside their organization's namespace.
    admin
        .post("/enzi/v0/accounts")
        .json(&json!({"name": "other", "isOrg": true}))
        .await
        .expect(StatusCode::CREATED);
    admin
        .post("/enzi/v0/accounts/other/teams")
        .json(&json!({"name": "x"}))
        .await
        .expect(StatusCode::CREATED);
    let foreign = alice
        .put("/api/v0/repositories/acme/app/teamAccess/x")
        .json(&json!({"accessLevel": "admin"}))
        .await;
    foreign.expect_error(StatusCode::NOT_FOUND, "NO_SUCH_TEAM");
    server.create_repo("alice", "own", "private").await;
    let user_ns = alice
        .put("/api/v0/repositories/alice/own/teamAccess/dev")
        .json(&json!({"accessLevel": "read-only"}))
        .await;
    user_ns.expect_field("team");
    let bad = alice
        .put("/api/v0/repositories/acme/app/teamAccess/dev")
        .json(&json!({"accessLevel": "owner"}))
        .await;
    bad.expect(StatusCode::BAD_REQUEST);

    // Leaving the organization leaves its teams and their access.
    alice
        .delete("/enzi/v0/accounts/acme/members/bob")
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_ne!(tags_status(&bob, "acme/app").await, StatusCode::OK);
    let team = alice.get("/enzi/v0/accounts/acme/teams/dev/members").await;
    assert_eq!(team.expect(StatusCode::OK).json()["members"], json!([]));

    // Deleting the organization takes its teams and grants; its
    // repositories stay, for an administrator to handle.
    admin
        .delete("/enzi/v0/accounts/acme")
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_ne!(tags_status(&alice, "acme/app").await, StatusCode::OK);
    let admin_reads = server
        .api()
        .creds(Some(("admin", ADMIN_PASSWORD)))
        .get("/v2/acme/app/tags/list")
        .await;
    admin_reads.expect(StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn account_lists_and_pages_show_organizations() {
    let server = TestServer::start().await;
    server.create_user("dora", PW).await;
    let admin = server.admin();
    // DTR's own createAccount with isOrg, too.
    for org in ["org-a", "org-b", "org-c"] {
        admin
            .post("/api/v0/accounts")
            .json(&json!({"name": org, "isOrg": true}))
            .await
            .expect(StatusCode::CREATED);
    }
    let all = admin.get("/api/v0/accounts").await;
    let all = all.expect(StatusCode::OK).json();
    let orgs = all["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["isOrg"] == true)
        .count();
    assert_eq!(orgs, 3, "{all}");
    // eNZi paging: start/limit, the next start in the body.
    let first = admin
        .get("/enzi/v0/accounts")
        .query("filter=orgs&limit=2")
        .await;
    let first = first.expect(StatusCode::OK).json();
    assert_eq!(first["accounts"].as_array().unwrap().len(), 2, "{first}");
    assert_eq!(first["nextPageStart"], "org-c", "{first}");
    let rest = admin
        .get("/enzi/v0/accounts")
        .query("filter=orgs&limit=2&start=org-c")
        .await;
    let rest = rest.expect(StatusCode::OK).json();
    assert_eq!(rest["accounts"][0]["name"], "org-c");
    assert_eq!(rest["nextPageStart"], "");
    let bad = admin.get("/enzi/v0/accounts").query("filter=robots").await;
    bad.expect_field("filter");
    // A user sees themselves and their organizations only.
    admin
        .put("/enzi/v0/accounts/org-b/members/dora")
        .json(&json!({"isAdmin": false}))
        .await
        .expect(StatusCode::OK);
    let dora = as_user(&server, "dora").get("/enzi/v0/accounts").await;
    let dora = dora.expect(StatusCode::OK).json();
    let names: Vec<&str> = dora["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dora", "org-b"], "{dora}");
    let hidden = as_user(&server, "dora")
        .get("/enzi/v0/accounts/org-a")
        .await;
    hidden.expect_error(StatusCode::NOT_FOUND, "NO_SUCH_ACCOUNT");
    server.stop().await;
}
