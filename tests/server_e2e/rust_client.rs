//! `mirror_core::client::ApiClient` against a real server: a policy made
//! and polled through the typed client, tags read back with the upstream's
//! digests, a followed job canceled through its token, and error answers
//! as the engine's kinds (with the field).

use std::time::Duration;

use mirror_core::client::ApiClient;
use mirror_core::job::{PARAM_POLICY_ID, POLL_MIRROR};
use mirror_core::{
    ErrorKind, JobFilter, JobStatus, JobSubmission, MirrorError, PolicyForm, RepositoryName, Secret,
};
use tokio_util::sync::CancellationToken;

use crate::server::{ADMIN_PASSWORD, TestServer};
use crate::support::{ImageSpec, Registry};

fn repo(name: &str) -> RepositoryName {
    RepositoryName::parse(name).unwrap()
}

fn form(host: &str, repository: &str) -> PolicyForm {
    PolicyForm::new(host, repository)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typed_client_mirrors_through_the_server() {
    let up = Registry::plain().await;
    let pusher = up.pusher();
    let mut pushed = Vec::new();
    for tag in ["v1", "v2"] {
        let image = pusher
            .push_image("team/app", tag, ImageSpec::small(tag))
            .await;
        pushed.push((tag.to_string(), image.digest));
    }
    let server = TestServer::start().await;
    let client = ApiClient::new(
        &server.url,
        "admin",
        Secret::new(ADMIN_PASSWORD),
        Duration::from_secs(30),
    )
    .unwrap();

    let check = client
        .check_connection(&form(&up.url(), "team/app"))
        .await
        .unwrap();
    assert!(check.permissions.read, "{check:?}");
    assert_eq!(check.registry_type, "registry");

    let local = repo("mirrors/app");
    let policy = client
        .add_policy(&local, &form(&up.url(), "team/app"))
        .await
        .unwrap();
    assert_eq!(policy.local_repository, local);
    assert_eq!(policy.remote.host, up.url());

    let job = client
        .poll(&policy.id, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Done, "{job:?}");
    assert!(!client.job_logs(&job.id).await.unwrap().is_empty());

    let tags: Vec<_> = client
        .tags(&local)
        .await
        .unwrap()
        .into_iter()
        .map(|t| {
            let from = t.mirroring.as_ref().expect("mirrored");
            assert_eq!(from.mirroring_policy_id, policy.id);
            assert_eq!(
                (from.remote_tag.as_str(), &from.digest),
                (t.name.as_str(), &t.digest)
            );
            assert!(from.remote_repository.ends_with("team/app"), "{from:?}");
            (t.name, t.digest)
        })
        .collect();
    assert_eq!(tags, pushed);

    let found = client.policy(&policy.id).await.unwrap();
    assert_eq!(found.last_status.code, "SUCCESS");
    let all = client.policies(None).await.unwrap();
    assert_eq!(all.iter().map(|p| &p.id).collect::<Vec<_>>(), [&policy.id]);
    let jobs = client
        .jobs(&JobFilter {
            action: Some(POLL_MIRROR.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(jobs.iter().any(|j| j.id == job.id), "{jobs:?}");

    // Canceling the token cancels the followed job on the server.
    let later = client
        .submit_job(&JobSubmission {
            action: POLL_MIRROR.into(),
            parameters: [(PARAM_POLICY_ID.to_string(), policy.id.clone())].into(),
            scheduled_at: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(later.status, JobStatus::Waiting);
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.cancel();
    });
    let ended = client.wait_job(&later.id, cancel).await.unwrap();
    assert_eq!(ended.status, JobStatus::Canceled, "{ended:?}");

    let off = PolicyForm {
        enabled: Some(false),
        ..Default::default()
    };
    assert!(
        !client
            .update_policy(&policy.id, &off)
            .await
            .unwrap()
            .enabled
    );
    assert!(client.delete_policy(&policy.id).await.unwrap());
    assert!(!client.delete_policy(&policy.id).await.unwrap());

    // 404s: a job and a repository that do not exist.
    let missing = client.job("no-such-job").await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing:?}");
    let missing = client.tags(&repo("mirrors/none")).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing:?}");

    // A 400 names the field at fault.
    let bad = client
        .add_policy(&local, &form("not a url", "team/app"))
        .await
        .unwrap_err();
    assert!(
        matches!(&bad, MirrorError::Api { kind: ErrorKind::Invalid, field: Some(f), .. } if f == "remoteHost"),
        "{bad:?}"
    );

    // Wrong credentials for the server itself.
    let stranger = ApiClient::new(
        &server.url,
        "admin",
        Secret::new("not-the-password"),
        Duration::from_secs(30),
    )
    .unwrap();
    let refused = stranger.jobs(&JobFilter::default()).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unauthorized, "{refused:?}");
}
