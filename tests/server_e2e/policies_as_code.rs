//! Policies as code (issue 15): `mirror-server apply` (the library
//! function the binary calls, on the running server's data directory)
//! plans and applies a YAML file of repositories and policies; the API
//! shows them and a poll mirrors them; a changed file is an update, a
//! dropped policy goes only with `--prune`, an unchanged file is "No
//! changes", and a bad file (unknown key, missing environment variable,
//! refused credentials) changes nothing. `--policies` applies a file at
//! start. The binary itself is run by `mirror-server/tests/apply_cli.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mirror_server::Config;
use mirror_server::apply::{ApplyError, apply_with_env};
use mirror_server::config::ApplyArgs;
use reqwest::StatusCode;
use serde_json::Value;

use crate::server::TestServer;
use crate::support::images::ImageSpec;
use crate::support::policies::policies;
use crate::support::registry::{Auth, Registry};

/// The environment the files' `passwordEnv` reads (not the process's:
/// tests run in parallel threads).
fn env_with(token: &'static str) -> impl Fn(&str) -> Option<String> {
    move |name| (name == "PAC_TOKEN").then(|| token.to_string())
}

/// Runs `mirror-server apply` on `server`'s stores: the printed plan, or
/// the error.
async fn apply(
    server: &TestServer,
    file: &Path,
    prune: bool,
    token: &'static str,
) -> Result<String, ApplyError> {
    let config = Config::new(server.data_dir());
    let args = ApplyArgs {
        file: file.to_path_buf(),
        prune,
        dry_run: false,
    };
    let mut out = Vec::new();
    apply_with_env(&config, &args, env_with(token), &mut out).await?;
    Ok(String::from_utf8(out).unwrap())
}

/// Writes `text` to `name` in `dir`.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The policies of `repo` through the API: remote repository → policy.
async fn shown_policies(server: &TestServer, repo: &str) -> BTreeMap<String, Value> {
    let listed = server.admin().get(policies(repo)).await;
    let listed = listed.expect(StatusCode::OK).json();
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["remoteRepository"].as_str().unwrap().to_string(),
                p.clone(),
            )
        })
        .collect()
}

/// The local tags of `repo` with their digests, through the API.
async fn tag_digests(server: &TestServer, repo: &str) -> BTreeMap<String, String> {
    let tags = server
        .admin()
        .get(format!("/api/v0/repositories/{repo}/tags"))
        .await;
    let tags = tags.expect(StatusCode::OK).json();
    tags.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let name = t["name"].as_str().unwrap().to_string();
            (name, t["digest"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The file: `acme/app` mirrors `team/app` (tags by `prefix`, evaluated at
/// once) and, with `old`, `team/old`.
fn policies_file(upstream: &str, prefix: &str, old: bool) -> String {
    let mut text = format!(
        "repositories:
  - name: acme/app
    visibility: public
    policies:
      - remoteHost: {upstream}
        remoteRepository: team/app
        username: bot
        passwordEnv: PAC_TOKEN
        rules: [{{field: tag, operator: sw, values: [\"{prefix}\"]}}]
        initialEvaluation: true
"
    );
    if old {
        text.push_str(&format!(
            "      - remoteHost: {upstream}/
        remoteRepository: team/old
        username: bot
        passwordEnv: PAC_TOKEN
        enabled: false
"
        ));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policies_file_is_planned_applied_and_kept_in_step() {
    let up = Registry::start(Registry::builder().auth(Auth::htpasswd("bot", "pw"))).await;
    let pusher = up.pusher();
    let mut upstream = BTreeMap::new();
    for tag in ["1.0", "1.1", "2.0"] {
        let pushed = pusher
            .push_image("team/app", tag, ImageSpec::small(&format!("app {tag}")))
            .await;
        upstream.insert(tag.to_string(), pushed.digest);
    }
    pusher
        .push_image("team/old", "v1", ImageSpec::small("old"))
        .await;
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = up.url();

    // Create: the plan first, then what was done.
    let file = write(dir.path(), "p.yaml", &policies_file(&url, "1.", true));
    let out = apply(&server, &file, false, "pw").await.unwrap();
    let expected_plan = format!(
        "+ create repository acme/app (public)\n\
         + create policy acme/app <- {url}/team/app (evaluated now)\n\
         + create policy acme/app <- {url}/team/old\n\
         Plan: 3 to create, 0 to change, 0 to delete; 0 unchanged.\n\
         Applied: 3 created, 0 changed, 0 deleted.\n"
    );
    assert!(out.starts_with(&expected_plan), "{out}");
    let job = out
        .lines()
        .find_map(|l| l.strip_prefix("Submitted poll_mirror job "))
        .unwrap_or_else(|| panic!("no job in {out}"))
        .trim_end_matches('.')
        .to_string();
    // The API shows both, as the file says; the running server's worker
    // evaluates the new one, and mirrors exactly the tags the rules keep.
    let shown = shown_policies(&server, "acme/app").await;
    assert_eq!(shown.len(), 2, "{shown:?}");
    let app = &shown["team/app"];
    assert_eq!(app["username"], "bot");
    assert_eq!(app["enabled"], true);
    assert_eq!(app["rules"][0]["values"][0], "1.", "{app}");
    assert_eq!(shown["team/old"]["enabled"], false);
    let repo = server.admin().get("/api/v0/repositories/acme/app").await;
    assert_eq!(repo.expect(StatusCode::OK).json()["visibility"], "public");
    server.wait_done(&job).await;
    let mirrored = tag_digests(&server, "acme/app").await;
    let wanted: BTreeMap<String, String> = upstream
        .iter()
        .filter(|(t, _)| t.starts_with("1."))
        .map(|(t, d)| (t.clone(), d.clone()))
        .collect();
    assert_eq!(mirrored, wanted);

    // Applied again: nothing to do (the same password is no change).
    let out = apply(&server, &file, false, "pw").await.unwrap();
    assert_eq!(
        out,
        "No changes: the policies match the file (2 unchanged).\n"
    );

    // New rules, team/old dropped: an update; without prune, team/old stays.
    let app_id = app["id"].as_str().unwrap();
    let old_id = shown["team/old"]["id"].as_str().unwrap();
    let file = write(dir.path(), "p.yaml", &policies_file(&url, "2.", false));
    let out = apply(&server, &file, false, "pw").await.unwrap();
    assert!(
        out.starts_with(&format!(
            "~ update policy acme/app <- {url}/team/app ({app_id}): rules\n\
             \x20 policies not in the file, kept (prune deletes them): 1\n\
             Plan: 0 to create, 1 to change, 0 to delete; 0 unchanged.\n"
        )),
        "{out}"
    );
    assert_eq!(shown_policies(&server, "acme/app").await.len(), 2);
    // With prune, it goes; tags and the repository stay.
    let out = apply(&server, &file, true, "pw").await.unwrap();
    assert_eq!(
        out,
        format!(
            "- delete policy acme/app <- {url}/team/old ({old_id})\n\
             Plan: 0 to create, 0 to change, 1 to delete; 1 unchanged.\n\
             Applied: 0 created, 0 changed, 1 deleted.\n"
        )
    );
    let shown = shown_policies(&server, "acme/app").await;
    assert_eq!(shown.keys().collect::<Vec<_>>(), ["team/app"]);
    assert_eq!(shown["team/app"]["rules"][0]["values"][0], "2.");
    let job = server.submit_poll(Some(app_id)).await;
    server.wait_done(&job).await;
    assert_eq!(tag_digests(&server, "acme/app").await, upstream);

    // Bad files change nothing, and say where and why.
    let before = shown_policies(&server, "acme/app").await;
    let typo = policies_file(&url, "2.", true).replace("enabled: false", "enabeld: false");
    let typo = write(dir.path(), "typo.yaml", &typo);
    let e = apply(&server, &typo, true, "pw").await.unwrap_err();
    let want = format!(
        "{}: repositories[0].policies[1].enabeld: unknown key; expected one of remoteHost, ",
        typo.display()
    );
    assert!(e.to_string().starts_with(&want), "{e}");
    let no_env = policies_file(&url, "2.", true)
        .replace("PAC_TOKEN\n        enabled", "PAC_MISSING\n        enabled");
    let no_env = write(dir.path(), "no_env.yaml", &no_env);
    let e = apply(&server, &no_env, true, "pw").await.unwrap_err();
    assert!(
        e.to_string().ends_with(
            "repositories[0].policies[1].passwordEnv: environment variable PAC_MISSING is not set"
        ),
        "{e}"
    );
    // A password the remote refuses: the update and the new policy are
    // both checked before anything is saved.
    let with_old = write(dir.path(), "p.yaml", &policies_file(&url, "2.", true));
    let e = apply(&server, &with_old, false, "wrong").await.unwrap_err();
    assert!(e.to_string().contains("repositories[0].policies[0]"), "{e}");
    assert!(e.to_string().contains("0 of 2 changes applied"), "{e}");
    assert_eq!(shown_policies(&server, "acme/app").await, before);
    // The same as a dry run: the plan shows the secret, never its value.
    let config = Config::new(server.data_dir());
    let args = ApplyArgs {
        file: with_old.clone(),
        prune: false,
        dry_run: true,
    };
    let mut out = Vec::new();
    apply_with_env(&config, &args, env_with("wrong"), &mut out)
        .await
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("): password (secret)\n"), "{out}");
    assert!(out.ends_with("Dry run: nothing was changed.\n"), "{out}");
    assert!(!out.contains("wrong"), "{out}");
    assert_eq!(shown_policies(&server, "acme/app").await, before);
    server.stop().await;

    // `--policies` (the `policies` setting) applies a file at start,
    // before serving.
    let plain = Registry::plain().await;
    plain
        .pusher()
        .push_image("team/web", "1", ImageSpec::small("web"))
        .await;
    let at_start = format!(
        "repositories:\n  - name: acme/web\n    policies:\n      - {{remoteHost: '{}', remoteRepository: team/web}}\n",
        plain.url()
    );
    let at_start = write(dir.path(), "start.yaml", &at_start);
    let started = TestServer::start_with(|c| c.policies = Some(at_start)).await;
    let shown = shown_policies(&started, "acme/web").await;
    assert_eq!(shown.keys().collect::<Vec<_>>(), ["team/web"]);
    started.stop().await;
    // A bad file stops the start with the error.
    let bad = write(dir.path(), "bad.yaml", "repositories:\n  - nam: acme/web\n");
    let mut config = Config::new(dir.path().join("bad-start"));
    config.policies = Some(bad);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = mirror_server::run(config, listener, mirror_server::CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("bad.yaml: repositories[0].nam: unknown key"),
        "{e}"
    );
}
