//! Secrets never leak: the real `mirror-server` binary, at `RUST_LOG=debug`,
//! is driven through everything that handles a remote password or token
//! (policy creation, rotation with `PUT`, Connect checks with bad
//! credentials, a poll that fails to authenticate), plus accounts and
//! access tokens. Then every secret is searched for in every response body
//! the test received, the server's stdout and stderr, every job log, the
//! text the databases serve, and the `Debug` output of the core types.
//!
//! The remote passwords *are* in `regmirror.db` (the server needs them to
//! authenticate), only in the policy columns that are never served; user
//! passwords and access tokens are stored only as hashes (Argon2id and
//! SHA-256), checked by reading `server.db`.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Auth, ImageSpec, Registry};

/// Distinctive values: none may appear anywhere but where the test sent it.
const UPSTREAM_PW1: &str = "Upstream-PW1-q7XzL2";
const UPSTREAM_PW2: &str = "Upstream-PW2-m3KpW8";
const UPSTREAM_PW3: &str = "Upstream-PW3-v9RtN4";
const WRONG_PW: &str = "Wrong-Remote-PW-h5JdC1";
const AUTH_TOKEN: &str = "Remote-Bearer-Token-b8YsQ6";
const AUTH_TOKEN2: &str = "Remote-Bearer-Token-2-k2WeF0";
const ADMIN_PW: &str = "Admin-Login-PW-r4TgU7";
const USER_PW: &str = "User-Login-PW-e6HnM3";
const USER_PW2: &str = "User-Login-PW2-p1AzS9";

const ALL: [&str; 9] = [
    UPSTREAM_PW1,
    UPSTREAM_PW2,
    UPSTREAM_PW3,
    WRONG_PW,
    AUTH_TOKEN,
    AUTH_TOKEN2,
    ADMIN_PW,
    USER_PW,
    USER_PW2,
];

/// Fails naming the secret and where it leaked.
#[track_caller]
fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !text.contains(s),
            "secret {s:?} leaked into {what}:\n{text}"
        );
    }
}

struct Server {
    child: Child,
    base: String,
    /// stdout and stderr lines, as they come.
    output: Arc<Mutex<Vec<String>>>,
    client: reqwest::Client,
    /// Every response: method, path, status, headers and body.
    seen: Mutex<Vec<String>>,
}

fn capture(stream: impl std::io::Read + Send + 'static, out: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            out.lock().unwrap().push(line);
        }
    });
}

impl Server {
    fn start(data_dir: &std::path::Path) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirror-server"));
        cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("MIRROR_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("MIRROR_ADMIN_PASSWORD", ADMIN_PW);
        let mut child = cmd.spawn().expect("spawn mirror-server");
        let output = Arc::new(Mutex::new(Vec::new()));
        capture(child.stdout.take().unwrap(), output.clone());
        capture(child.stderr.take().unwrap(), output.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let found = output.lock().unwrap().iter().find_map(|l| {
                let at = l.find("mirror-server listening")?;
                let rest = &l[at..];
                let a = rest.find("addr=")? + "addr=".len();
                Some(rest[a..].split_whitespace().next()?.to_string())
            });
            if let Some(a) = found {
                break a;
            }
            assert!(
                Instant::now() < deadline,
                "no 'listening' line:\n{}",
                output.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Server {
            child,
            base: format!("http://{addr}"),
            output,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// A JSON call; the response is recorded.
    async fn call(
        &self,
        method: Method,
        path: &str,
        creds: (&str, &str),
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .basic_auth(creds.0, Some(creds.1));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let headers = format!("{:?}", resp.headers());
        let text = resp.text().await.unwrap();
        self.seen
            .lock()
            .unwrap()
            .push(format!("{method} {path} -> {status}\n{headers}\n{text}"));
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, value)
    }

    async fn wait_job(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, job) = self
                .call(Method::GET, &format!("/api/v0/jobs/{id}"), ADMIN, None)
                .await;
            match job["status"].as_str() {
                Some("waiting" | "running") if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                _ => return job,
            }
        }
    }

    /// SIGTERM and wait; returns everything it printed.
    fn stop(mut self) -> (String, Vec<String>) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Let the reader threads drain the pipes.
        std::thread::sleep(Duration::from_millis(200));
        let output = self.output.lock().unwrap().join("\n");
        (output, std::mem::take(&mut *self.seen.lock().unwrap()))
    }
}

const ADMIN: (&str, &str) = ("admin", ADMIN_PW);

/// Rewrites the upstream's htpasswd to `password` and restarts it.
async fn rotate_upstream(reg: &mut Registry, password: &str) {
    let out = Command::new("htpasswd")
        .args(["-Bbn", "bot", password])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(reg.dir().join("htpasswd"), &out.stdout).unwrap();
    reg.restart().await;
}

/// Every text cell of every table of the SQLite file at `path`, except
/// the `(table, column)` pairs in `skip`, as `table.column: value` lines.
fn dump_text(path: &std::path::Path, skip: &[(&str, &str)]) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type='table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = String::new();
    for t in tables {
        let mut st = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let cols: Vec<String> = st.column_names().iter().map(|c| c.to_string()).collect();
        let mut rows = st.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for (i, c) in cols.iter().enumerate() {
                if skip.contains(&(t.as_str(), c.as_str())) {
                    continue;
                }
                if let Ok(rusqlite::types::ValueRef::Text(b)) = row.get_ref(i) {
                    out.push_str(&format!("{t}.{c}: {}\n", String::from_utf8_lossy(b)));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_leak() {
    let mut reg = Registry::builder()
        .auth(Auth::htpasswd("bot", UPSTREAM_PW1))
        .start()
        .await;
    reg.pusher()
        .push_image("team/app", "v1", ImageSpec::small("secret-test"))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let (s, b) = server
        .call(
            Method::POST,
            "/api/v0/repositories/mirrors",
            ADMIN,
            Some(json!({"name": "app", "visibility": "private"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let remote = |extra: Value| {
        let mut f =
            json!({"remoteHost": reg.url(), "remoteRepository": "team/app", "username": "bot"});
        for (k, v) in extra.as_object().unwrap() {
            f[k] = v.clone();
        }
        f
    };

    // Connect checks with bad credentials: errors, without the secrets.
    for extra in [
        json!({"password": WRONG_PW}),
        json!({"authToken": AUTH_TOKEN}),
    ] {
        let (s, b) = server
            .call(
                Method::POST,
                "/api/v0/remote/registry",
                ADMIN,
                Some(remote(extra)),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    }
    let (s, b) = server
        .call(
            Method::POST,
            "/api/v0/remote/registry",
            ADMIN,
            Some(remote(json!({"password": UPSTREAM_PW1}))),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    // A policy, then rotations: bad ones refused, a good one saved.
    let policies = "/api/v0/repositories/mirrors/app/pollMirroringPolicies";
    let (s, policy) = server
        .call(
            Method::POST,
            policies,
            ADMIN,
            Some(remote(json!({"password": UPSTREAM_PW1}))),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{policy}");
    let id = policy["id"].as_str().unwrap().to_string();
    let one = format!("{policies}/{id}");
    for extra in [
        json!({"password": WRONG_PW}),
        json!({"authToken": AUTH_TOKEN2}),
    ] {
        let (s, b) = server.call(Method::PUT, &one, ADMIN, Some(extra)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    }
    rotate_upstream(&mut reg, UPSTREAM_PW2).await;
    let (s, b) = server
        .call(
            Method::PUT,
            &one,
            ADMIN,
            Some(json!({"password": UPSTREAM_PW2})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // A poll that works, then one that fails to authenticate.
    let mut jobs = Vec::new();
    for password in [UPSTREAM_PW2, UPSTREAM_PW3] {
        if password == UPSTREAM_PW3 {
            rotate_upstream(&mut reg, UPSTREAM_PW3).await;
        }
        let (s, job) = server
            .call(
                Method::POST,
                "/api/v0/jobs",
                ADMIN,
                Some(json!({"action": "poll_mirror", "parameters": {"policyID": id}})),
            )
            .await;
        assert!(s.is_success(), "{s} {job}");
        let job_id = job["id"].as_str().unwrap().to_string();
        jobs.push((job_id.clone(), server.wait_job(&job_id).await));
    }
    assert_eq!(jobs[0].1["status"], "done", "{}", jobs[0].1);
    assert_eq!(jobs[1].1["status"], "errored", "{}", jobs[1].1);
    let mut job_logs = String::new();
    for (job_id, _) in &jobs {
        let (_, logs) = server
            .call(
                Method::GET,
                &format!("/api/v0/jobs/{job_id}/logs"),
                ADMIN,
                None,
            )
            .await;
        job_logs.push_str(&logs.to_string());
    }
    assert!(job_logs.contains("authentication failed"), "{job_logs}");

    // Everything that shows a policy.
    for path in [
        one.clone(),
        policies.to_string(),
        "/api/v0/jobs?running=any".into(),
        "/api/v0/repositories/mirrors/app".into(),
        "/api/v0/repositories/mirrors/app/tags".into(),
    ] {
        let (s, _) = server.call(Method::GET, &path, ADMIN, None).await;
        assert_eq!(s, StatusCode::OK, "{path}");
    }

    // Accounts and access tokens.
    let (s, b) = server
        .call(
            Method::POST,
            "/api/v0/accounts",
            ADMIN,
            Some(json!({"name": "erin", "password": USER_PW})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let erin = ("erin", USER_PW);
    let (s, tok) = server
        .call(
            Method::POST,
            "/api/v0/api_tokens",
            erin,
            Some(json!({"tokenLabel": "t"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    let api_token = tok["token"].as_str().unwrap().to_string();
    // The one response that carries it.
    let token_response = server.seen.lock().unwrap().len() - 1;
    let (s, _) = server
        .call(
            Method::GET,
            "/api/v0/api_tokens",
            (erin.0, &api_token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = server
        .call(
            Method::POST,
            "/api/v0/accounts/erin/changePassword",
            erin,
            Some(json!({"oldPassword": USER_PW, "newPassword": USER_PW2})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    for bad in [USER_PW, "not-erins-password"] {
        let (s, _) = server
            .call(Method::GET, "/api/v0/accounts/erin", ("erin", bad), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }

    let (output, seen) = server.stop();
    let api_token = api_token.as_str();
    let mut secrets = ALL.to_vec();
    secrets.push(api_token);

    // 1. Responses (the token's own creation response excepted).
    for (i, r) in seen.iter().enumerate() {
        let allowed: &[&str] = if i == token_response {
            &[api_token]
        } else {
            &[]
        };
        let check: Vec<&str> = secrets
            .iter()
            .copied()
            .filter(|s| !allowed.contains(s))
            .collect();
        assert_clean("a response", r, &check);
    }
    // 2. The server's output at debug level (the failing poll's error
    //    is there).
    assert!(output.contains("authentication failed"), "{output}");
    assert!(output.contains("DEBUG"), "not at debug level:\n{output}");
    assert_clean("the server's stdout/stderr", &output, &secrets);
    // 3. Job logs (also in 1).
    assert_clean("job logs", &job_logs, &secrets);

    // 4. server.db: hashes only.
    let server_db = data.join("server.db");
    assert_clean(
        "server.db",
        &dump_text(&server_db, &[]),
        &[ADMIN_PW, USER_PW, USER_PW2, api_token],
    );
    let conn = rusqlite::Connection::open(&server_db).unwrap();
    let hashes: Vec<String> = conn
        .prepare("SELECT password_hash FROM users")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(hashes.len(), 2);
    assert!(
        hashes.iter().all(|h| h.starts_with("$argon2id$")),
        "{hashes:?}"
    );
    let stored: String = conn
        .query_row("SELECT hashed_token FROM api_tokens", [], |r| r.get(0))
        .unwrap();
    use sha2::Digest as _;
    assert_eq!(
        stored,
        hex::encode(sha2::Sha256::digest(api_token.as_bytes()))
    );
    // Nor in the raw bytes (pages, WAL), in any encoding SQLite would use.
    for file in ["server.db", "server.db-wal"] {
        if let Ok(bytes) = std::fs::read(data.join(file)) {
            let raw = String::from_utf8_lossy(&bytes);
            assert_clean(file, &raw, &[ADMIN_PW, USER_PW, USER_PW2, api_token]);
        }
    }

    // 5. regmirror.db: all of it is clean, the secret columns of policies
    //    included: they hold the current password sealed (XChaCha20-
    //    Poly1305, key in secret.key), never the password itself.
    let core_db = data.join("regmirror.db");
    let all = dump_text(&core_db, &[]);
    assert!(all.contains("authentication failed"), "{all}");
    assert_clean("regmirror.db", &all, &secrets);
    let conn = rusqlite::Connection::open(&core_db).unwrap();
    let (pw, token): (String, String) = conn
        .query_row("SELECT password, auth_token FROM policies", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(pw.starts_with("sealed:v1:"), "{pw}");
    assert_eq!(token, "");

    // Owner-only state.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(data.clone()), 0o700);
    assert_eq!(mode(server_db), 0o600);
    assert_eq!(mode(core_db), 0o600);
    // Everything else too, SQLite's -wal and -shm files included.
    let mut dirs = vec![data.clone()];
    let mut files = Vec::new();
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = mode(p.clone());
            assert_eq!(m & 0o077, 0, "{} is {m:o}", p.display());
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    for wal in [
        "server.db-wal",
        "server.db-shm",
        "regmirror.db-wal",
        "regmirror.db-shm",
    ] {
        assert!(files.iter().any(|f| f == wal), "{wal} missing: {files:?}");
    }

    // 6. Debug output of the core types that carry secrets.
    debug_output_is_clean(&data, &reg).await;
}

/// `{:?}` of policies (as stored and as forms), endpoints, HTTP clients,
/// server settings and connection errors never shows a secret.
async fn debug_output_is_clean(data: &std::path::Path, reg: &Registry) {
    use mirror_core::remote::{HttpRemote, HttpSettings};
    use mirror_core::{Mirror, PolicyForm, Secret};

    let mirror = Mirror::open(data).unwrap();
    let policies = mirror.policies(None).await.unwrap();
    assert_eq!(policies.len(), 1);
    let mut texts = vec![format!("{policies:?}"), format!("{:#?}", policies[0])];
    let form = PolicyForm {
        username: Some("bot".into()),
        password: Some(Secret::new(WRONG_PW)),
        auth_token: Some(Secret::new(AUTH_TOKEN)),
        ..PolicyForm::new(reg.url(), "team/app")
    };
    texts.push(format!("{form:?}"));
    let endpoint = form.endpoint().unwrap();
    texts.push(format!("{endpoint:?}"));
    texts.push(format!(
        "{:?}",
        HttpRemote::new(&endpoint, &HttpSettings::default()).unwrap()
    ));
    let basic = PolicyForm {
        auth_token: None,
        ..form.clone()
    }
    .endpoint()
    .unwrap();
    texts.push(format!(
        "{:?}",
        HttpRemote::new(&basic, &HttpSettings::default()).unwrap()
    ));
    let err = mirror.check_connection(&basic).await.unwrap_err();
    texts.push(format!("{err:?} {err}"));
    let err = mirror.check_connection(&endpoint).await.unwrap_err();
    texts.push(format!("{err:?} {err}"));
    texts.push(format!(
        "{:?}",
        PolicyForm {
            password: Some(Secret::new(UPSTREAM_PW3)),
            auth_token: Some(Secret::new(AUTH_TOKEN2)),
            ..Default::default()
        }
    ));
    let mut config = mirror_server::Config::new(data);
    config.admin_password = Some(Secret::new(ADMIN_PW));
    texts.push(format!("{config:?}"));
    for t in texts {
        assert_clean("Debug output", &t, &ALL);
    }
}
