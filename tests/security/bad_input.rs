//! Bad input never gets a 5xx: every route of the `/api/v0` table
//! (`mirror_server::api::dtr::ROUTES`, and `ROOT_ROUTES` beside it, so new
//! routes are covered as they are added) and every `/v2` endpoint form
//! gets malformed JSON, wrong types, unknown enum values, oversized and
//! deeply nested bodies, invalid repository names, tags and digests, and
//! path traversal (`../`, `%2e%2e`, `%2F`). Each answer must be below 500
//! and, when it is an error, carry a JSON error message; the server must
//! keep answering.
//!
//! Requests go over a raw TCP connection, so paths reach the server exactly
//! as written (an HTTP client would resolve `..` and `%2e%2e` first).

use std::collections::BTreeMap;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::{ADMIN, ADMIN_PASSWORD, TestServer};

/// One answer: status, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// Sends `method target` with `headers` and `body` on a fresh connection
/// and reads the answer to the end.
async fn raw(
    server: &TestServer,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Answer {
    let mut sock = tokio::net::TcpStream::connect(&server.host_port)
        .await
        .unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"));
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Basic {auth}\r\nContent-Length: {}\r\n",
        server.host_port,
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413, 4xx) before reading a large body.
    let _ = sock.write_all(body).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        sock.read_to_end(&mut buf),
    )
    .await
    .unwrap_or_else(|_| panic!("{method} {target}: no answer within 30 s"));
    if let Err(e) = read {
        // A reset after an early answer to an unread body is fine if the
        // answer arrived.
        assert!(!buf.is_empty(), "{method} {target}: {e}");
    }
    parse(&buf).unwrap_or_else(|| {
        panic!(
            "{method} {target}: not an HTTP answer: {:?}",
            String::from_utf8_lossy(&buf)
        )
    })
}

fn parse(buf: &[u8]) -> Option<Answer> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Some(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
    out
}

/// The rule for every answer: no 5xx; an error has a JSON message.
#[track_caller]
fn check(what: &str, a: &Answer) {
    assert!(
        a.status < 500,
        "{what}: {} {}",
        a.status,
        String::from_utf8_lossy(&a.body)
    );
    if a.status >= 400 && !a.body.is_empty() {
        let v: Value = serde_json::from_slice(&a.body).unwrap_or_else(|e| {
            panic!(
                "{what}: {} with a body that is not JSON ({e}): {:?}",
                a.status,
                String::from_utf8_lossy(&a.body)
            )
        });
        let msg = v["errors"][0]["message"].as_str().unwrap_or("");
        assert!(
            !msg.is_empty(),
            "{what}: {} without a message: {v}",
            a.status
        );
    }
}

/// Hostile values for a path parameter (already in request-target form).
const BAD_SEGMENTS: &[&str] = &[
    "..",
    ".",
    "%2e%2e",
    "%2E%2E",
    "..%2F..%2Fetc%2Fpasswd",
    "a%2Fb",
    "%2F",
    "UPPER",
    "-x",
    "a..b",
    "%00",
    "%C3%A9",
    "%ZZ",
    "a%20b",
    "*",
    "%25",
    "sha256:zz",
];

fn long_segment() -> String {
    "a".repeat(2000)
}

/// A valid value for each `/api/v0` path parameter name.
fn fill(template: &str, values: &BTreeMap<&str, String>, bad: Option<(&str, &str)>) -> String {
    let mut out = String::new();
    for seg in template.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(p) if bad.is_some_and(|(b, _)| b == p) => out.push_str(bad.unwrap().1),
            Some(p) => out.push_str(values.get(p).map(String::as_str).unwrap_or("x")),
            None => out.push_str(seg),
        }
    }
    out
}

fn params(template: &str) -> Vec<&str> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// Bodies that are malformed or do not fit any form, and whether every
/// form must refuse them (400). Objects whose fields a form does not read
/// are valid for it (unknown fields are ignored, as DTR does): a form with
/// only optional fields accepts them, and the route answers as it would.
fn bad_bodies() -> Vec<(&'static str, Vec<u8>, bool)> {
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    vec![
        ("truncated JSON", b"{\"name\": ".to_vec(), true),
        ("not JSON", b"name=x&visibility=public".to_vec(), true),
        ("invalid UTF-8", b"{\"name\": \"\xff\xfe\"}".to_vec(), true),
        ("a JSON array", b"[1, 2, 3]".to_vec(), true),
        ("a JSON string", b"\"text\"".to_vec(), true),
        ("a JSON number", b"12345678901234567890123".to_vec(), true),
        ("JSON null", b"null".to_vec(), true),
        ("deeply nested", nested.into_bytes(), true),
        (
            "trailing garbage",
            b"{\"tokenLabel\": \"x\"} {\"isAdmin\": true}".to_vec(),
            true,
        ),
        (
            "wrong types",
            json!({"name": 5, "visibility": [], "accessLevel": {}, "action": 7,
                   "enabled": "yes", "isActive": "no", "remoteHost": ["x"],
                   "newPassword": 1, "tokenLabel": false, "schedule": null,
                   "createRepositoryOnPush": "yes", "isAdmin": "yes", "isPublic": 1,
                   "description": 5})
            .to_string()
            .into_bytes(),
            true,
        ),
        (
            "unknown enum values",
            json!({"visibility": "secret", "accessLevel": "god", "action": "rm -rf /"})
                .to_string()
                .into_bytes(),
            false,
        ),
        (
            "an operator object",
            json!({"name": {"$gt": ""}}).to_string().into_bytes(),
            false,
        ),
    ]
}

/// Route-specific bodies with an unknown enum value or a wrong type in
/// an otherwise complete form: (path suffix, method, body).
fn enum_bodies() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "/repositories/{namespace}",
            "POST",
            json!({"name": "newrepo", "visibility": "secret"}),
        ),
        (
            "/repositories/{namespace}/{reponame}",
            "PATCH",
            json!({"visibility": "secret"}),
        ),
        (
            "/repositories/{namespace}/{reponame}/userAccess/{username}",
            "PUT",
            json!({"accessLevel": "god"}),
        ),
        ("/jobs", "POST", json!({"action": "rm -rf /"})),
        (
            "/jobs",
            "POST",
            json!({"action": "poll_mirror", "parameters": {"policyID": 5}}),
        ),
        (
            "/crons",
            "POST",
            json!({"action": "poll_mirror", "schedule": "@sometimes"}),
        ),
        (
            "/crons",
            "POST",
            json!({"action": "gc", "schedule": "@hourly"}),
        ),
        (
            "/accounts",
            "POST",
            json!({"name": "../../etc", "password": "long-enough-pw"}),
        ),
        (
            "/accounts/{name}",
            "PATCH",
            json!({"isAdmin": "definitely"}),
        ),
        (
            "/api_tokens/{hashedtoken}",
            "PATCH",
            json!({"isActive": "nope"}),
        ),
        (
            "/repositories/{namespace}/{reponame}/pollMirroringPolicies",
            "POST",
            json!({"remoteHost": "gopher://x", "remoteRepository": "a/b"}),
        ),
        (
            "/remote/registry",
            "POST",
            json!({"remoteHost": "http://x", "remoteRepository": "../.."}),
        ),
    ]
}

const QUERY: &str = "?limit=abc&offset=-5&pageSize=-1&n=99999999999999999999&last=%00&running=maybe&action=%2e%2e&initialEvaluation=maybe&username=..%2F..&stream=perhaps&pageStart=%ZZ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_refuses_bad_input_without_a_5xx() {
    let server = TestServer::start().await;
    server.create_repo("mirrors", "app", "private").await;
    server.create_user("alice", "alice-password-1").await;
    let (_, tok) = server
        .call(Method::POST, "/api/v0/api_tokens", ADMIN, Some(json!({})))
        .await;
    let (s, job) = server
        .call(
            Method::POST,
            "/api/v0/jobs",
            ADMIN,
            Some(json!({"action": "poll_mirror"})),
        )
        .await;
    assert!(s.is_success(), "{job}");
    let values: BTreeMap<&str, String> = [
        ("namespace", "mirrors".to_string()),
        ("reponame", "app".to_string()),
        ("username", "alice".to_string()),
        ("name", "alice".to_string()),
        ("id", job["id"].as_str().unwrap().to_string()),
        ("action", "poll_mirror".to_string()),
        (
            "hashedtoken",
            tok["hashedToken"].as_str().unwrap().to_string(),
        ),
    ]
    .into();
    let doc: Value = serde_json::from_str(mirror_server::api::dtr::openapi_json()).unwrap();
    let json_type = [("content-type", "application/json".to_string())];
    let oversized = {
        // 10 MiB of valid JSON.
        let mut b = b"{\"name\": \"".to_vec();
        b.resize(10 * 1024 * 1024, b'a');
        b.extend_from_slice(b"\"}");
        b
    };
    let mut requests = 0usize;

    let tables = [
        ("/api/v0", mirror_server::api::dtr::ROUTES),
        ("", mirror_server::api::dtr::ROOT_ROUTES),
    ];
    for (prefix, (template, _)) in tables
        .into_iter()
        .flat_map(|(prefix, table)| table.iter().map(move |route| (prefix, route)))
    {
        let documented = &doc["paths"][*template];
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let takes_body = documented[method.to_ascii_lowercase()]["requestBody"].is_object();
            let base = format!("{prefix}{}", fill(template, &values, None));
            // Query garbage (never for DELETE: the valid path would delete).
            if method != "DELETE" {
                let target = format!("{base}{QUERY}");
                let a = raw(&server, method, &target, &[], b"").await;
                check(&format!("{method} {target}"), &a);
                requests += 1;
            }
            // Hostile path parameters, one at a time.
            let long = long_segment();
            for p in params(template) {
                for bad in BAD_SEGMENTS.iter().copied().chain([long.as_str()]) {
                    let target = format!("{prefix}{}", fill(template, &values, Some((p, bad))));
                    let a = raw(&server, method, &target, &json_type, b"{}").await;
                    check(&format!("{method} {target}"), &a);
                    requests += 1;
                }
            }
            if !matches!(method, "POST" | "PUT" | "PATCH") {
                continue;
            }
            // Bodies.
            for (what, body, refused) in bad_bodies() {
                let a = raw(&server, method, &base, &json_type, &body).await;
                let label = format!("{method} {base} with {what}");
                check(&label, &a);
                if takes_body && refused {
                    assert_eq!(
                        a.status,
                        400,
                        "{label}: {}",
                        String::from_utf8_lossy(&a.body)
                    );
                }
                requests += 1;
            }
            let a = raw(&server, method, &base, &json_type, &oversized).await;
            let label = format!("{method} {base} with 10 MiB");
            check(&label, &a);
            if takes_body {
                assert_eq!(
                    a.status,
                    413,
                    "{label}: {}",
                    String::from_utf8_lossy(&a.body)
                );
            }
            requests += 1;
        }
    }
    for (template, method, body) in enum_bodies() {
        if !mirror_server::api::dtr::ROUTES
            .iter()
            .any(|(t, _)| *t == template)
        {
            continue;
        }
        let target = format!("/api/v0{}", fill(template, &values, None));
        let a = raw(
            &server,
            method,
            &target,
            &json_type,
            body.to_string().as_bytes(),
        )
        .await;
        let label = format!("{method} {target} with {body}");
        check(&label, &a);
        // 400, or 405 where the route has no such method (yet).
        assert!(
            a.status == 400 || a.status == 405,
            "{label}: {} {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        );
        requests += 1;
    }
    // Paths outside the table.
    for target in [
        "/api/v0/../../etc/passwd",
        "/api/v0/%2e%2e/%2e%2e/etc/passwd",
        "/api/v0/repositories/mirrors/app/../../../accounts",
        "/api/v0/nope",
        "/api/v0/",
        "/api",
        "/..%2F..%2Fetc%2Fpasswd",
    ] {
        for method in ["GET", "POST", "DELETE"] {
            let a = raw(&server, method, target, &[], b"").await;
            check(&format!("{method} {target}"), &a);
            assert!(a.status >= 400, "{method} {target}: {}", a.status);
            requests += 1;
        }
    }
    // The web page's assets are files compiled into the binary: traversal
    // finds none of the disk (their 404 is plain text).
    for target in [
        "/assets/../../../../etc/passwd",
        "/assets/%2e%2e/%2e%2e/Cargo.toml",
        "/assets/x/..%2F..%2F..%2FCargo.toml",
    ] {
        let a = raw(&server, "GET", target, &[], b"").await;
        assert_eq!(a.status, 404, "{target}");
        assert!(!String::from_utf8_lossy(&a.body).contains("[package]"));
        requests += 1;
    }
    still_answering(&server).await;
    eprintln!("{requests} hostile /api/v0 requests answered");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registry_endpoint_refuses_bad_input_without_a_5xx() {
    let server = TestServer::start().await;
    server.create_repo("mirrors", "app", "private").await;
    let digest = format!("sha256:{}", "a".repeat(64));
    let long = long_segment();
    let names: Vec<String> = [
        "mirrors/app",
        "../../etc",
        "mirrors/../../x",
        "%2e%2e/%2e%2e/x",
        "mirrors%2Fapp",
        "mirrors/app%2F..%2F..",
        "UPPER/x",
        "a//b",
        "-a/b",
        "%00",
        "a%20b/c",
        "_catalog",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([long.clone(), format!("{}/x", "a/".repeat(200))])
    .collect();
    let references: Vec<String> = [
        "latest",
        "..",
        "%2e%2e",
        "-bad",
        ".hidden",
        "sha256:zz",
        "sha256:../../etc/passwd",
        "md5:abc",
        "SHA256:AAAA",
        "tag%2F..%2F..",
        "%00",
        "a:b:c",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "t".repeat(129),
        format!("sha256:{}", "A".repeat(64)),
        digest.clone(),
    ])
    .collect();
    let digests: Vec<String> = [
        "sha256:zz",
        "sha256:",
        "../../etc/passwd",
        "%2e%2e%2f%2e%2e",
        "sha512:abcd",
        "sha256:%00",
        "sha256",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("sha256:{}", "A".repeat(64)), digest.clone()])
    .collect();
    let uuids: Vec<String> = ["..", "%2e%2e", "../../x", "not-a-uuid", "%00"]
        .iter()
        .map(|s| s.to_string())
        .chain([long.clone()])
        .collect();
    let mut cases: Vec<Case> = Vec::new();
    let add = |cases: &mut Vec<_>, m: &'static str, t: String| {
        cases.push((m, t, Vec::new(), Vec::new()));
    };
    for q in [
        "",
        "?n=abc",
        "?n=-1",
        "?n=99999999999999999999",
        "?last=%00",
        "?last=..%2F..",
    ] {
        add(&mut cases, "GET", format!("/v2/_catalog{q}"));
    }
    for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] {
        add(&mut cases, method, "/v2/".into());
        add(&mut cases, method, "/v2".into());
    }
    for name in &names {
        for r in &references {
            for m in ["GET", "HEAD", "DELETE"] {
                add(&mut cases, m, format!("/v2/{name}/manifests/{r}"));
            }
        }
        for d in &digests {
            for m in ["GET", "HEAD", "DELETE"] {
                add(&mut cases, m, format!("/v2/{name}/blobs/{d}"));
            }
            add(&mut cases, "GET", format!("/v2/{name}/referrers/{d}"));
            add(
                &mut cases,
                "POST",
                format!("/v2/{name}/blobs/uploads/?digest={d}"),
            );
            add(
                &mut cases,
                "POST",
                format!("/v2/{name}/blobs/uploads/?mount={d}&from=..%2F..%2Fx"),
            );
        }
        for q in ["", "?n=abc", "?n=-1", "?last=%00"] {
            add(&mut cases, "GET", format!("/v2/{name}/tags/list{q}"));
        }
        for u in &uuids {
            for m in ["GET", "PATCH", "PUT", "DELETE"] {
                add(&mut cases, m, format!("/v2/{name}/blobs/uploads/{u}"));
            }
        }
        add(
            &mut cases,
            "POST",
            format!("/v2/{name}/blobs/uploads/?mount=sha256:zz&from={name}"),
        );
        add(&mut cases, "OPTIONS", format!("/v2/{name}/tags/list"));
    }
    // Bodies for the manifest PUT and the upload endpoints.
    let ct = |v: &str| ("content-type", v.to_string());
    let manifest_type = "application/vnd.oci.image.manifest.v1+json";
    let mut big = b"{\"schemaVersion\": 2, \"x\": \"".to_vec();
    big.resize(10 * 1024 * 1024, b'a');
    big.extend_from_slice(b"\"}");
    for (what, ctype, body) in [
        (
            "truncated JSON",
            manifest_type,
            b"{\"schemaVersion\": ".to_vec(),
        ),
        ("not JSON", manifest_type, b"\x00\x01\x02".to_vec()),
        (
            "wrong types",
            manifest_type,
            json!({"schemaVersion": "2", "config": 5, "layers": {}})
                .to_string()
                .into_bytes(),
        ),
        (
            "unknown media type",
            "application/x-evil",
            json!({"schemaVersion": 2, "mediaType": "application/x-evil"})
                .to_string()
                .into_bytes(),
        ),
        (
            "schema 1",
            manifest_type,
            json!({"schemaVersion": 1, "name": "x"})
                .to_string()
                .into_bytes(),
        ),
        (
            "a bad digest inside",
            manifest_type,
            json!({"schemaVersion": 2, "mediaType": manifest_type,
                   "config": {"mediaType": "x", "digest": "sha256:../../etc", "size": 1},
                   "layers": []})
            .to_string()
            .into_bytes(),
        ),
        (
            "a missing blob",
            manifest_type,
            json!({"schemaVersion": 2, "mediaType": manifest_type,
                   "config": {"mediaType": "x", "digest": digest, "size": -1},
                   "layers": []})
            .to_string()
            .into_bytes(),
        ),
        ("10 MiB", manifest_type, big.clone()),
    ] {
        for r in ["v1", "sha256:zz", digest.as_str()] {
            cases.push((
                "PUT",
                format!("/v2/mirrors/app/manifests/{r}#{what}"),
                vec![ct(ctype)],
                body.clone(),
            ));
        }
    }
    let mut requests = 0usize;
    for (method, target, headers, body) in &cases {
        let target = target.split('#').next().unwrap();
        let a = raw(&server, method, target, headers, body).await;
        check(&format!("{method} {target}"), &a);
        assert_eq!(
            a.headers
                .get("docker-distribution-api-version")
                .map(String::as_str),
            Some("registry/2.0"),
            "{method} {target}"
        );
        requests += 1;
    }
    // A real upload session, then hostile chunks and commits on it.
    for (headers, body, query) in [
        (
            vec![("content-range", "bytes=zz".to_string())],
            b"x".to_vec(),
            "",
        ),
        (
            vec![("content-range", "5-2".to_string())],
            b"x".to_vec(),
            "",
        ),
        (
            vec![("content-range", "0-18446744073709551615".to_string())],
            b"x".to_vec(),
            "",
        ),
        (
            vec![("content-range", "100-101".to_string())],
            b"xy".to_vec(),
            "",
        ),
        (vec![], b"abc".to_vec(), "?digest=sha256:zz"),
        (vec![], b"abc".to_vec(), "?digest=..%2F..%2Fetc"),
        (vec![], b"abc".to_vec(), ""),
    ] {
        let start = raw(&server, "POST", "/v2/mirrors/app/blobs/uploads/", &[], b"").await;
        assert_eq!(
            start.status,
            202,
            "{}",
            String::from_utf8_lossy(&start.body)
        );
        let location = start.headers["location"].clone();
        for method in ["PATCH", "PUT"] {
            let target = format!("{location}{query}");
            let a = raw(&server, method, &target, &headers, &body).await;
            check(&format!("{method} {target} {headers:?}"), &a);
            requests += 1;
        }
    }
    still_answering(&server).await;
    eprintln!("{requests} hostile /v2 requests answered");
    server.stop().await;
}

/// A `/v2` request: method, target, headers, body.
type Case = (&'static str, String, Vec<(&'static str, String)>, Vec<u8>);

/// The server answers normal requests after the onslaught.
async fn still_answering(server: &TestServer) {
    let (s, _) = server.call(Method::GET, "/v2/", ADMIN, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = server
        .call(Method::GET, "/api/v0/repositories/mirrors/app", ADMIN, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}
