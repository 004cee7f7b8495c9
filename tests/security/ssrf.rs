//! Server-side request forgery: a repository admin must not make the server
//! fetch from hosts the operator did not allow, or from internal addresses
//! (`remote_hosts_allow`, `forbid_private_remotes`). Every refusal happens
//! before a connection: the addresses used here that are not loopback are
//! never contacted (the checks refuse them from the URL), and loopback ones
//! are counting listeners that must see no connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mirror_core::remote::{HttpSettings, RemoteGuard};
use mirror_core::{ErrorKind, JobStatus, Mirror, MirrorError, PolicyForm, RepositoryName};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::server::{ADMIN, TestServer, assert_error};
use crate::support::{ImageSpec, Registry};

/// A loopback port that counts the connections made to it (and closes them).
struct Tripwire {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Tripwire {
    async fn start() -> Tripwire {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                h.fetch_add(1, Ordering::SeqCst);
                drop(sock);
            }
        });
        Tripwire { addr, hits, task }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Tripwire {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn guard(allow: &[String], forbid_private: bool) -> RemoteGuard {
    RemoteGuard::new(allow, forbid_private).unwrap()
}

const POLICIES: &str = "/api/v0/repositories/mirrors/app/pollMirroringPolicies";

/// Creates a policy and asks for a Connect check with `remote_host`; both
/// must be refused with `400` naming `remoteHost` and a reason containing
/// `why`. Returns the two answers' bodies.
pub(crate) async fn assert_refused(
    server: &TestServer,
    remote_host: &str,
    why: &str,
) -> [Value; 2] {
    let form = json!({"remoteHost": remote_host, "remoteRepository": "team/app"});
    let mut bodies = [Value::Null, Value::Null];
    for (path, body) in [POLICIES, "/api/v0/remote/registry"]
        .into_iter()
        .zip(&mut bodies)
    {
        let got = server
            .call(Method::POST, path, ADMIN, Some(form.clone()))
            .await;
        assert_error(
            &got,
            StatusCode::BAD_REQUEST,
            "INVALID_POLL_MIRRORING_POLICY",
            Some("remoteHost"),
        );
        let error = &got.1["errors"][0];
        let reason = error["detail"]["reason"].as_str().unwrap();
        assert!(reason.contains(why), "{path} {remote_host}: {reason}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("remoteHost: "),
            "{}",
            got.1
        );
        *body = got.1;
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_list_refuses_other_hosts() {
    let reg = Registry::plain().await;
    reg.pusher()
        .push_image("team/app", "v1", ImageSpec::small("allowed"))
        .await;
    let allowed = format!("127.0.0.1:{}", reg.port());
    let server = TestServer::start_with(|c| {
        c.remote_guard = guard(&[allowed.clone(), "*.corp.example".into()], false)
    })
    .await;
    server.create_repo("mirrors", "app", "private").await;

    // The host in the list works.
    let (s, b) = server
        .call(
            Method::POST,
            POLICIES,
            ADMIN,
            Some(json!({"remoteHost": reg.url(), "remoteRepository": "team/app"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    // The same registry under another name or port, and any other host,
    // do not (refused from the URL: nothing is resolved or contacted).
    for host in [
        format!("http://localhost:{}", reg.port()),
        format!("http://127.0.0.1:{}", reg.port() + 1),
        "https://registry.example.org".to_string(),
        "https://corp.example".to_string(),
        "https://evilcorp.example".to_string(),
    ] {
        assert_refused(&server, &host, "remote_hosts_allow").await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbid_private_refuses_inside_addresses_before_connecting() {
    let wire = Tripwire::start().await;
    let server = TestServer::start_with(|c| c.remote_guard = guard(&[], true)).await;
    server.create_repo("mirrors", "app", "private").await;
    let p = wire.port();
    for (host, why) in [
        (format!("http://127.0.0.1:{p}"), "loopback"),
        (format!("http://[::1]:{p}"), "loopback"),
        // A name: refused on what it resolves to.
        (format!("http://localhost:{p}"), "localhost resolves to"),
        (format!("http://LocalHost:{p}"), "loopback"),
        // Other spellings of loopback.
        (format!("http://2130706433:{p}"), "loopback"),
        (format!("http://[::ffff:127.0.0.1]:{p}"), "loopback"),
        (format!("http://0.0.0.0:{p}"), "unspecified"),
        ("http://10.0.0.1".to_string(), "private"),
        ("https://192.168.1.10:5000".to_string(), "private"),
        ("http://169.254.169.254".to_string(), "link-local"),
        ("http://[fd00::1]".to_string(), "unique-local"),
    ] {
        assert_refused(&server, &host, why).await;
    }
    assert_eq!(wire.hits(), 0, "a refused host was contacted");
    server.stop().await;
}

/// A registry that is allowed must not lead the server inside either: not
/// by a redirect, a token realm, or a tag-page link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_upstream_cannot_redirect_inside() {
    let wire = Tripwire::start().await;
    let inside = format!("http://127.0.0.1:{}", wire.port());
    let upstreams = [MockServer::start().await, MockServer::start().await];
    let tags = "/v2/team/app/tags/list";
    // 1. A redirect to another loopback port.
    Mock::given(method("GET"))
        .and(path(tags))
        .respond_with(
            ResponseTemplate::new(307).insert_header("location", format!("{inside}{tags}?n=1")),
        )
        .mount(&upstreams[0])
        .await;
    // 2. A token realm on the cloud metadata address.
    Mock::given(method("GET"))
        .and(path(tags))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "www-authenticate",
            r#"Bearer realm="http://169.254.169.254/latest/meta-data",service="x""#,
        ))
        .mount(&upstreams[1])
        .await;
    // The upstreams are named exactly (so their loopback addresses are
    // allowed); "*" lets any other host through the allow-list, so what
    // refuses the targets below is forbid_private_remotes.
    let mut allow: Vec<String> = upstreams.iter().map(|u| u.address().to_string()).collect();
    allow.push("*".into());
    let server = TestServer::start_with(|c| c.remote_guard = guard(&allow, true)).await;
    server.create_repo("mirrors", "app", "private").await;
    assert_refused(
        &server,
        &upstreams[0].uri(),
        &format!(
            "the remote redirected to 127.0.0.1:{}: 127.0.0.1 is a loopback address",
            wire.port()
        ),
    )
    .await;
    assert_refused(&server, &upstreams[1].uri(), "token server").await;
    assert_refused(&server, &upstreams[1].uri(), "link-local").await;
    assert_eq!(wire.hits(), 0, "the redirect target was contacted");

    // 3. A `Link` to the next tag page elsewhere (followed when a policy is
    //    saved without initial evaluation: the current tags are listed).
    let paged = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(tags))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"name": "team/app", "tags": ["v1"]}))
                .insert_header(
                    "link",
                    format!("<{inside}{tags}?n=1&last=v1>; rel=\"next\"").as_str(),
                ),
        )
        .mount(&paged)
        .await;
    let server2 =
        TestServer::start_with(|c| c.remote_guard = guard(&[paged.address().to_string()], true))
            .await;
    server2.create_repo("mirrors", "app", "private").await;
    let got = server2
        .call(
            Method::POST,
            &format!("{POLICIES}?initialEvaluation=false"),
            ADMIN,
            Some(json!({"remoteHost": paged.uri(), "remoteRepository": "team/app"})),
        )
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "INVALID_POLL_MIRRORING_POLICY",
        Some("remoteHost"),
    );
    // Only the upstream is listed: the link is refused by the allow-list.
    assert!(
        got.1.to_string().contains(&format!(
            "127.0.0.1:{} is not in this server's remote_hosts_allow",
            wire.port()
        )),
        "{}",
        got.1
    );
    assert_eq!(wire.hits(), 0, "the linked page was contacted");
    server.stop().await;
    server2.stop().await;
}

/// A policy saved before the guard was switched on is refused at poll
/// time: the job errors with the reason, and nothing is copied. Through
/// mirror-core's API, which the Python module uses too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_of_existing_policies_are_refused() {
    let reg = Registry::plain().await;
    reg.pusher()
        .push_image("team/app", "v1", ImageSpec::small("poll"))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let local = RepositoryName::parse("mirrors/app").unwrap();
    let form = PolicyForm::new(reg.url(), "team/app");
    let open = Mirror::open(dir.path()).unwrap();
    let policy = open.add_policy(&local, &form, None).await.unwrap();
    drop(open);

    let guarded = Mirror::open_with(
        dir.path(),
        HttpSettings {
            guard: guard(&[], true),
            ..Default::default()
        },
    )
    .unwrap();
    let job = guarded.poll(&policy.id).await.unwrap();
    assert_eq!(job.status, JobStatus::Errored);
    let log: Vec<String> = guarded
        .job_logs(&job.id, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.data)
        .collect();
    let text = log.join("\n");
    assert!(
        text.contains("remote host") && text.contains("forbid_private_remotes"),
        "{text}"
    );
    assert!(
        guarded
            .stores()
            .repos
            .tags(&local)
            .await
            .unwrap()
            .is_empty()
    );
    let status = guarded.policy(&policy.id).await.unwrap().last_status;
    assert_eq!(status.code, "FAILED");
    assert!(status.detail.contains("loopback"), "{}", status.detail);

    // Creating one is refused with the kind bindings map to "invalid input".
    let err = guarded
        .add_policy(&RepositoryName::parse("mirrors/b").unwrap(), &form, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            MirrorError::Remote(mirror_core::RemoteError::HostRefused { .. })
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Invalid);
}
