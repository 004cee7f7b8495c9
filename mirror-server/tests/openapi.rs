//! `/api/v0/openapi.json` is kept in step with the code: its paths are
//! exactly the routes the server registers (`api::dtr::ROUTES` under
//! `/api/v0`, and `api::dtr::ROOT_ROUTES`, the paths with their own
//! `servers` entry, at the root), each path answers exactly the methods the
//! document lists (probed on a running server), every `$ref` resolves and
//! every schema is used. `/api/v0/docs.json` serves the same document.
//!
//! The document is generated from the wire types, and the answers fit it:
//! a scenario on a running server (a repository fed by a policy that
//! mirrors an image pushed to the server itself, jobs, crons, accounts,
//! tokens, settings, errors) checks every answer against the document:
//! its status is one the operation lists, and its body fits the schema
//! given for it (required properties present, types right, and no property
//! the schema does not name).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use mirror_server::api::dtr::{ROOT_ROUTES, ROUTES};
use mirror_server::{CancellationToken, Config};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_matches_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("data"));
    config.admin_password = Some("admin-pa55word".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(mirror_server::run(config, listener, shutdown.clone()));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let doc: Value = loop {
        // Anonymous: the document needs no credentials.
        match client
            .get(format!("{base}/api/v0/openapi.json"))
            .send()
            .await
        {
            Ok(r) => {
                assert_eq!(r.status(), StatusCode::OK);
                assert_eq!(r.headers()["content-type"], "application/json");
                break r.json().await.unwrap();
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("server did not start: {e}"),
        }
    };
    // utoipa writes OpenAPI 3.1 (`type: [..., "null"]` for nullable).
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["servers"][0]["url"], "/api/v0");

    // DTR's name for the document serves the same bytes.
    let docs_json: Value = client
        .get(format!("{base}/api/v0/docs.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(docs_json, doc);
    assert_eq!(doc["info"]["version"], "2.7.0", "the DTR API version");

    // Paths: the document's and the router's are the same set. A path
    // with its own `servers` is a root route, served from that base.
    let base_of = |item: &Value| item["servers"][0]["url"].as_str().map(str::to_string);
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| match base_of(item) {
            Some(root) => format!("{}{path}", root.trim_end_matches('/')),
            None => format!("/api/v0{path}"),
        })
        .collect();
    let routed: BTreeSet<String> = ROUTES
        .iter()
        .map(|(p, _)| format!("/api/v0{p}"))
        .chain(ROOT_ROUTES.iter().map(|(p, _)| p.to_string()))
        .collect();
    assert_eq!(
        documented.difference(&routed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented but not routed"
    );
    assert_eq!(
        routed.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "routed but not documented"
    );

    // Methods: a documented one is routed (anything but 405), an
    // undocumented one is not (405).
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete: String = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "x".to_string()
                } else {
                    seg.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in METHODS {
            let documented = item.get(method).is_some();
            let resp = client
                .request(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    match base_of(item) {
                        Some(root) => format!("{base}{}{concrete}", root.trim_end_matches('/')),
                        None => format!("{base}/api/v0{concrete}"),
                    },
                )
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if documented {
                assert_ne!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is documented but not routed"
                );
                assert_ne!(
                    body["errors"][0]["code"], "NOT_FOUND",
                    "{method} {path} is documented but not routed"
                );
                let op = &item[method];
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{method} {path} has no responses"
                );
                let id = op["operationId"].as_str().unwrap_or_else(|| {
                    panic!("{method} {path} has no operationId");
                });
                assert!(operation_ids.insert(id.to_string()), "duplicate {id}");
                // `security: []`, or a list with `{}` (credentials
                // optional), documents that anonymous callers are served.
                let anonymous = op["security"].as_array().is_some_and(|a| {
                    a.is_empty()
                        || a.iter()
                            .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
                });
                if !anonymous {
                    assert_eq!(
                        status,
                        StatusCode::UNAUTHORIZED,
                        "{method} {path} is documented as authenticated"
                    );
                }
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is routed but not documented"
                );
            }
        }
    }

    // Every reference resolves, and every schema is referenced.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        let pointer = r.strip_prefix('#').expect("local reference");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        let r = format!("#/components/schemas/{name}");
        assert!(all.contains(&r.as_str()), "schema {name} is not used");
    }
    // The document the server serves is the one the crate builds.
    assert_eq!(
        serde_json::from_str::<Value>(mirror_server::api::dtr::openapi_json()).unwrap(),
        doc
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// `schema` with its `$ref`s followed.
fn deref<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        schema = doc
            .pointer(r.strip_prefix('#').expect("local reference"))
            .unwrap_or_else(|| panic!("{r} does not resolve"));
    }
    schema
}

/// The properties an object schema names (its own and its `allOf`
/// parts'), the ones it requires, and what it says of other properties:
/// `None` when it allows none.
struct Shape<'a> {
    properties: BTreeMap<&'a str, &'a Value>,
    required: BTreeSet<&'a str>,
    others: Option<&'a Value>,
}

/// Any value fits.
static ANY: Value = Value::Bool(true);

fn shape<'a>(doc: &'a Value, schema: &'a Value, into: &mut Shape<'a>) {
    let schema = deref(doc, schema);
    for part in schema["allOf"].as_array().into_iter().flatten() {
        shape(doc, part, into);
    }
    if let Some(props) = schema["properties"].as_object() {
        into.properties
            .extend(props.iter().map(|(k, v)| (k.as_str(), v)));
    }
    into.required.extend(
        schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str),
    );
    match schema.get("additionalProperties") {
        Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => into.others = Some(&ANY),
        Some(other) => into.others = Some(other),
        // A free-form object: no properties named at all.
        None if schema.get("properties").is_none() && schema.get("allOf").is_none() => {
            into.others = Some(&ANY)
        }
        None => {}
    }
}

/// Whether `value` has the JSON type `name`.
fn is_type(name: &str, value: &Value) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("unknown type {other}"),
    }
}

/// Adds to `errors` where `value` does not fit `schema`.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = deref(doc, schema);
    if let Some(alternatives) = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array)
    {
        let fits = alternatives.iter().any(|alt| {
            let mut e = Vec::new();
            check(doc, alt, value, at, &mut e);
            e.is_empty()
        });
        if !fits {
            errors.push(format!("{at}: {value} fits none of {alternatives:?}"));
        }
        return;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| is_type(t, value)) {
        errors.push(format!("{at}: {value} is not {types:?}"));
        return;
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {values:?}"));
    }
    match value {
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    check(doc, item, v, &format!("{at}[{i}]"), errors);
                }
            }
        }
        Value::Object(map) if schema.is_object() && schema != &json!({}) => {
            let mut s = Shape {
                properties: BTreeMap::new(),
                required: BTreeSet::new(),
                others: None,
            };
            shape(doc, schema, &mut s);
            for name in &s.required {
                if !map.contains_key(*name) {
                    errors.push(format!("{at}: required {name:?} is missing"));
                }
            }
            for (name, v) in map {
                let at = format!("{at}.{name}");
                match (s.properties.get(name.as_str()), s.others) {
                    (Some(p), _) => check(doc, p, v, &at, errors),
                    (None, Some(others)) if others.is_object() => {
                        check(doc, others, v, &at, errors)
                    }
                    (None, Some(_)) => {}
                    (None, None) => errors.push(format!("{at}: not in the schema")),
                }
            }
        }
        _ => {}
    }
}

/// A running server, the document it serves, and the operations whose
/// answers were checked.
struct Checked {
    base: String,
    client: reqwest::Client,
    doc: Value,
    operations: BTreeSet<String>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), mirror_server::ServerError>>,
}

/// How a request authenticates.
#[derive(Clone, Copy)]
enum As {
    Admin,
    Basic(&'static str, &'static str),
}

const ADMIN: (&str, &str) = ("admin", "admin-pa55word");

impl Checked {
    async fn start(dir: &std::path::Path) -> Checked {
        let mut config = Config::new(dir.join("data"));
        config.admin_password = Some(ADMIN.1.into());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(mirror_server::run(config, listener, shutdown.clone()));
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let doc = loop {
            match client
                .get(format!("{base}/api/v0/openapi.json"))
                .send()
                .await
            {
                Ok(r) => break r.json().await.unwrap(),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("server did not start: {e}"),
            }
        };
        Checked {
            base,
            client,
            doc,
            operations: BTreeSet::new(),
            shutdown,
            server,
        }
    }

    /// `method` on `template` (with `path` the concrete path, `/api/v0`
    /// or root as the document says) with a JSON `body`: the status is
    /// one the operation lists, and a JSON body fits the schema given for
    /// it. The status, headers and body.
    async fn call(
        &mut self,
        who: As,
        method: Method,
        template: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let item = &self.doc["paths"][template];
        assert!(item.is_object(), "{template} is not documented");
        let root = item["servers"][0]["url"].as_str().unwrap_or("/api/v0");
        let url = format!("{}{}{path}", self.base, root.trim_end_matches('/'));
        let (user, password) = match who {
            As::Admin => ADMIN,
            As::Basic(u, p) => (u, p),
        };
        let mut req = self
            .client
            .request(method.clone(), url)
            .basic_auth(user, Some(password));
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.unwrap();
        let op = &item[method.as_str().to_ascii_lowercase()];
        let id = op["operationId"].as_str().unwrap().to_string();
        let answer = &op["responses"][status.as_str()];
        assert!(
            answer.is_object(),
            "{id}: {status} is not documented: {text}"
        );
        let content_type = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else if content_type == "application/x-ndjson" {
            let schema = &answer["content"][&content_type]["schema"];
            assert!(schema.is_object(), "{id}: {content_type} is not documented");
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            for (i, line) in lines.iter().enumerate() {
                self.fits(&id, schema, line, &format!("line {i}"));
            }
            Value::Array(lines)
        } else {
            let value: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{id}: {status} is not JSON ({e}): {text}"));
            let schema = &answer["content"]["application/json"]["schema"];
            assert!(schema.is_object(), "{id}: {status} documents no JSON body");
            self.fits(&id, schema, &value, "body");
            value
        };
        self.operations.insert(id);
        (status, headers, value)
    }

    #[track_caller]
    fn fits(&self, id: &str, schema: &Value, value: &Value, at: &str) {
        let mut errors = Vec::new();
        check(&self.doc, schema, value, at, &mut errors);
        assert!(
            errors.is_empty(),
            "{id}: the answer does not fit the document:\n{}\n{value:#}",
            errors.join("\n")
        );
    }

    /// `GET /jobs/{id}` until the job is finished.
    async fn wait_job(&mut self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (s, _, job) = self
                .call(
                    As::Admin,
                    Method::GET,
                    "/jobs/{id}",
                    &format!("/jobs/{id}"),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK);
            if ["done", "errored", "canceled"].contains(&job["status"].as_str().unwrap()) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} did not finish: {job}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stores `bytes` as a blob of `repo` through `/v2`; its descriptor.
    async fn push_blob(&self, repo: &str, media_type: &str, bytes: Vec<u8>) -> Value {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        let size = bytes.len();
        let resp = self
            .client
            .post(format!(
                "{}/v2/{repo}/blobs/uploads/?digest={digest}",
                self.base
            ))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "{repo} blob");
        json!({"mediaType": media_type, "digest": digest, "size": size})
    }

    /// A one-layer `linux/amd64` image tagged `tag` in `repo`.
    async fn push_image(&self, repo: &str, tag: &str) {
        let config = json!({
            "architecture": "amd64", "os": "linux", "created": "2024-05-01T12:00:00Z",
            "author": "openapi test",
            "rootfs": {"type": "layers", "diff_ids": []}, "config": {}
        });
        let config = self
            .push_blob(
                repo,
                "application/vnd.oci.image.config.v1+json",
                serde_json::to_vec(&config).unwrap(),
            )
            .await;
        let layer = self
            .push_blob(
                repo,
                "application/vnd.oci.image.layer.v1.tar",
                b"a layer of the openapi test".to_vec(),
            )
            .await;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config, "layers": [layer]
        });
        let resp = self
            .client
            .put(format!("{}/v2/{repo}/manifests/{tag}", self.base))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(serde_json::to_vec(&manifest).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "{repo}:{tag} manifest");
    }

    async fn stop(self) -> BTreeSet<String> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        self.operations
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_fit_the_document() {
    use Method as M;
    let dir = tempfile::tempdir().unwrap();
    let mut api = Checked::start(dir.path()).await;
    let base = api.base.clone();

    // Meta.
    api.call(As::Admin, M::GET, "/meta/features", "/meta/features", None)
        .await;
    api.call(As::Admin, M::GET, "/meta/settings", "/meta/settings", None)
        .await;
    let settings = json!({"createRepositoryOnPush": false});
    api.call(
        As::Admin,
        M::POST,
        "/meta/settings",
        "/meta/settings",
        Some(settings),
    )
    .await;

    // Accounts.
    let alice = json!({"name": "alice", "password": "alice-pa55word", "fullName": "Alice"});
    let (s, _, _) = api
        .call(As::Admin, M::POST, "/accounts", "/accounts", Some(alice))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    api.call(As::Admin, M::GET, "/accounts", "/accounts", None)
        .await;
    api.call(
        As::Admin,
        M::GET,
        "/accounts/{name}",
        "/accounts/alice",
        None,
    )
    .await;
    let patch = json!({"fullName": "Alice A."});
    api.call(
        As::Admin,
        M::PATCH,
        "/accounts/{name}",
        "/accounts/alice",
        Some(patch),
    )
    .await;
    let password = json!({"newPassword": "alice-pa55word2"});
    let (s, _, _) = api
        .call(
            As::Admin,
            M::POST,
            "/accounts/{name}/changePassword",
            "/accounts/alice/changePassword",
            Some(password),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let alice = As::Basic("alice", "alice-pa55word2");

    // Tokens, and a bearer token.
    let label = json!({"tokenLabel": "ci"});
    let (s, _, token) = api
        .call(alice, M::POST, "/api_tokens", "/api_tokens", Some(label))
        .await;
    assert_eq!(s, StatusCode::OK);
    let hashed = token["hashedToken"].as_str().unwrap().to_string();
    api.call(alice, M::GET, "/api_tokens", "/api_tokens", None)
        .await;
    let relabel = json!({"tokenLabel": "ci-2"});
    api.call(
        alice,
        M::PATCH,
        "/api_tokens/{hashedtoken}",
        &format!("/api_tokens/{hashed}"),
        Some(relabel),
    )
    .await;
    let (s, _, _) = api
        .call(alice, M::GET, "/auth/token", "/auth/token?service=x", None)
        .await;
    assert_eq!(s, StatusCode::OK);

    // Repositories, a grant, and an image pushed to one.
    for name in ["src", "dst"] {
        let (s, _, _) = api
            .call(
                As::Admin,
                M::POST,
                "/repositories/{namespace}",
                "/repositories/admin",
                Some(json!({"name": name, "visibility": "private"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let grant = json!({"accessLevel": "read-only"});
    let grant_path = "/repositories/{namespace}/{reponame}/userAccess/{username}";
    api.call(
        As::Admin,
        M::PUT,
        grant_path,
        "/repositories/admin/dst/userAccess/alice",
        Some(grant),
    )
    .await;
    api.call(
        As::Admin,
        M::GET,
        "/repositories/{namespace}/{reponame}/userAccess",
        "/repositories/admin/dst/userAccess",
        None,
    )
    .await;
    api.push_image("admin/src", "v1").await;

    // The Connect check and a policy, both against this server's `/v2`.
    let remote = json!({
        "remoteHost": base, "remoteRepository": "admin/src",
        "username": ADMIN.0, "password": ADMIN.1
    });
    let (s, _, _) = api
        .call(
            As::Admin,
            M::POST,
            "/remote/registry",
            "/remote/registry",
            Some(remote.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let policies = "/repositories/{namespace}/{reponame}/pollMirroringPolicies";
    let (s, headers, policy) = api
        .call(
            As::Admin,
            M::POST,
            policies,
            "/repositories/admin/dst/pollMirroringPolicies?initialEvaluation=true",
            Some(remote),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let policy_id = policy["id"].as_str().unwrap().to_string();
    let job_id = headers["x-job-id"].to_str().unwrap().to_string();
    let job = api.wait_job(&job_id).await;
    assert_eq!(job["status"], "done", "{job}");
    let one_policy = &format!("{policies}/{{id}}");
    let policy_path = format!("/repositories/admin/dst/pollMirroringPolicies/{policy_id}");
    api.call(
        As::Admin,
        M::GET,
        policies,
        "/repositories/admin/dst/pollMirroringPolicies",
        None,
    )
    .await;
    api.call(As::Admin, M::GET, one_policy, &policy_path, None)
        .await;
    let disable = json!({"enabled": true, "skipTLSVerification": false});
    api.call(As::Admin, M::PUT, one_policy, &policy_path, Some(disable))
        .await;

    // The mirrored tag, and the repositories.
    let tags = "/repositories/{namespace}/{reponame}/tags";
    let (_, _, listed) = api
        .call(
            alice,
            M::GET,
            tags,
            "/repositories/admin/dst/tags?count=true&pageSize=5",
            None,
        )
        .await;
    assert_eq!(listed[0]["mirroring"]["remoteTag"], "v1", "{listed}");
    let one_tag = &format!("{tags}/{{reference}}");
    api.call(
        alice,
        M::GET,
        one_tag,
        "/repositories/admin/dst/tags/v1",
        None,
    )
    .await;
    let history = &format!("{one_tag}/history");
    let (_, _, h) = api
        .call(
            alice,
            M::GET,
            history,
            "/repositories/admin/dst/tags/v1/history",
            None,
        )
        .await;
    assert_eq!(h, json!([]));
    let (s, _, _) = api
        .call(
            alice,
            M::GET,
            history,
            "/repositories/admin/dst/tags/never/history",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    api.call(
        As::Admin,
        M::GET,
        "/repositories",
        "/repositories?count=true",
        None,
    )
    .await;
    api.call(
        alice,
        M::GET,
        "/repositories/{namespace}",
        "/repositories/admin",
        None,
    )
    .await;
    let (_, _, repo) = api
        .call(
            alice,
            M::GET,
            "/repositories/{namespace}/{reponame}",
            "/repositories/admin/dst",
            None,
        )
        .await;
    assert_eq!(repo["mirrored"], true);

    // Jobs: the poll's, its log (whole and followed), one that fails.
    let logs = "/jobs/{id}/logs";
    let (_, _, lines) = api
        .call(
            As::Admin,
            M::GET,
            logs,
            &format!("/jobs/{job_id}/logs"),
            None,
        )
        .await;
    assert!(!lines.as_array().unwrap().is_empty());
    api.call(
        As::Admin,
        M::GET,
        logs,
        &format!("/jobs/{job_id}/logs?stream=true"),
        None,
    )
    .await;
    // A poll of a remote repository that is gone fails, with an `error`.
    for (template, path) in [
        (one_tag.as_str(), "/repositories/admin/src/tags/v1"),
        (
            "/repositories/{namespace}/{reponame}",
            "/repositories/admin/src",
        ),
    ] {
        let (s, _, _) = api.call(As::Admin, M::DELETE, template, path, None).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "DELETE {path}");
    }
    let failing = json!({"action": "poll_mirror", "parameters": {"policyID": policy_id}});
    let (s, _, failed) = api
        .call(As::Admin, M::POST, "/jobs", "/jobs", Some(failing))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let failed_id = failed["id"].as_str().unwrap().to_string();
    let failed = api.wait_job(&failed_id).await;
    assert!(failed["error"].is_object(), "{failed}");
    api.call(
        As::Admin,
        M::GET,
        "/jobs",
        "/jobs?running=false&limit=0",
        None,
    )
    .await;
    let cancel = format!("/jobs/{failed_id}/cancel");
    api.call(As::Admin, M::POST, "/jobs/{id}/cancel", &cancel, None)
        .await;

    // Crons.
    let cron = json!({"action": "poll_mirror", "schedule": "0 0 * * * *"});
    let (s, _, _) = api
        .call(As::Admin, M::POST, "/crons", "/crons", Some(cron))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    api.call(As::Admin, M::GET, "/crons", "/crons", None).await;
    api.call(
        As::Admin,
        M::GET,
        "/crons/{action}",
        "/crons/poll_mirror",
        None,
    )
    .await;

    // Errors.
    let (s, _, _) = api
        .call(
            alice,
            M::GET,
            "/repositories/{namespace}/{reponame}",
            "/repositories/admin/nothing",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = api.call(alice, M::GET, "/jobs", "/jobs", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = api
        .call(
            As::Admin,
            M::POST,
            "/jobs",
            "/jobs",
            Some(json!({"retries": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = api
        .call(
            As::Basic("alice", "wrong-pa55word"),
            M::GET,
            "/auth/token",
            "/auth/token",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Deletes.
    for (template, path) in [
        (
            "/api_tokens/{hashedtoken}",
            format!("/api_tokens/{hashed}?username=alice"),
        ),
        ("/crons/{action}", "/crons/poll_mirror".to_string()),
        (
            grant_path,
            "/repositories/admin/dst/userAccess/alice".into(),
        ),
        (one_tag.as_str(), "/repositories/admin/dst/tags/v1".into()),
        (one_policy.as_str(), policy_path.clone()),
        ("/jobs/{id}", format!("/jobs/{job_id}")),
        (
            "/repositories/{namespace}/{reponame}",
            "/repositories/admin/dst".into(),
        ),
    ] {
        let (s, _, _) = api.call(As::Admin, M::DELETE, template, &path, None).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "DELETE {path}");
    }

    let checked = api.stop().await;
    assert!(
        checked.len() >= 35,
        "only {} operations checked: {checked:?}",
        checked.len()
    );
}

/// mirror-core's values, serialized as the server sends them, fit the
/// document too: what the scenario above may not meet (a job's live
/// `progress`, an error's `detail`).
#[test]
fn mirror_core_values_fit_the_document() {
    use mirror_core::api::ErrorBody;
    use mirror_core::job::JobFailure;
    use mirror_core::{ErrorKind, Job, JobSubmission, ProgressSnapshot};

    let doc: Value = serde_json::from_str(mirror_server::api::dtr::openapi_json()).unwrap();
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let mut job = Job::new(&JobSubmission {
        action: "poll_mirror".into(),
        parameters: [("policyID".to_string(), "p".to_string())].into(),
        retries: 2,
        scheduled_at: None,
        deadline: Some(chrono::Utc::now()),
    });
    job.failure = Some(JobFailure::new(ErrorKind::Unreachable, "no route"));
    // As `jobs::job_json` sends a running job.
    let mut running = serde_json::to_value(&job).unwrap();
    running["capacityMap"] = json!({});
    running["progress"] = serde_json::to_value(ProgressSnapshot::default()).unwrap();
    let error = ErrorBody::new("INVALID_JSON", "bad", json!({"field": "name"}), 400);
    // A tag's history entry, moved (by a policy) and deleted (pushed).
    let moved = mirror_core::store::TagHistoryEntry {
        digest: mirror_core::Digest::of(b"old"),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 3,
        tagged_at: chrono::Utc::now(),
        replaced_at: chrono::Utc::now(),
        replaced_by: Some(mirror_core::Digest::of(b"new")),
        mirrored_by: Some("p".into()),
        available: true,
    };
    let deleted = mirror_core::store::TagHistoryEntry {
        replaced_by: None,
        mirrored_by: None,
        available: false,
        ..moved.clone()
    };
    for (name, value) in [
        ("Job", running),
        ("Errors", serde_json::to_value(error).unwrap()),
        ("TagHistoryEntry", serde_json::to_value(moved).unwrap()),
        ("TagHistoryEntry", serde_json::to_value(deleted).unwrap()),
    ] {
        let mut errors = Vec::new();
        check(&doc, &schema(name), &value, name, &mut errors);
        assert!(errors.is_empty(), "{}\n{value:#}", errors.join("\n"));
    }
}
