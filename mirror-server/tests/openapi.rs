//! `/api/v0/openapi.json` is kept in step with the code: its paths are
//! exactly the routes the server registers (`api::dtr::ROUTES` under
//! `/api/v0`, and `api::dtr::ROOT_ROUTES`, the paths with their own
//! `servers` entry, at the root), each path answers exactly the methods the
//! document lists (probed on a running server), and every `$ref` resolves.
//! `/api/v0/docs.json` serves the same document.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mirror_server::api::dtr::{ROOT_ROUTES, ROUTES};
use mirror_server::{CancellationToken, Config};
use reqwest::{Method, StatusCode};
use serde_json::Value;

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
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
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
                if op.get("security") != Some(&serde_json::json!([])) {
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

    // Every reference resolves.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.strip_prefix('#').expect("local reference");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
