//! What a poll copies of an image (issue 15): the platforms a policy names
//! (a sparse index kept byte for byte, or an index rewritten to them) and
//! what refers to the image (cosign's tag-scheme signatures from Debian's
//! `docker-registry`, signed with `openssl` and verified against the
//! mirror; OCI 1.1 referrers from a regmirror upstream, which has the
//! referrers API).

use std::path::Path;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{ADMIN_PASSWORD, TestServer, sha256, skopeo_output};
use crate::support::images::{MixedTags, Pusher};
use crate::support::policies::add_policy;
use crate::support::{ImageSpec, Registry};

/// A poll of `policy` on `server`, finished; its log.
async fn poll(server: &TestServer, policy: &str) -> Vec<String> {
    let job = server.submit_poll(Some(policy)).await;
    let (status, log) = server
        .job_outcome(&job, std::time::Duration::from_secs(120))
        .await;
    assert_eq!(status, "done", "{log:#?}");
    log
}

/// `GET /v2/{repo}/manifests/{reference}` on the mirror as admin: status
/// and body.
async fn mirror_manifest(
    server: &TestServer,
    repo: &str,
    reference: &str,
) -> (StatusCode, Vec<u8>) {
    let got = server
        .request(
            reqwest::Method::GET,
            &format!("/v2/{repo}/manifests/{reference}"),
            Some(("admin", ADMIN_PASSWORD)),
        )
        .header(
            "accept",
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
        )
        .send()
        .await
        .unwrap();
    let status = got.status();
    (status, got.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platforms_choose_the_children_of_an_index() {
    let up = Registry::plain().await;
    let tags = MixedTags {
        docker: "docker",
        amd64: "amd64",
        arm64: "arm64",
        index: "multi",
    };
    let images = up.pusher().push_mixed("team/multi", tags, 1024, 7).await;
    let server = TestServer::start().await;
    let admin = server.admin();
    let only_multi = json!([{"field": "tag", "operator": "eq", "values": ["multi"]}]);

    // Sparse (the default): the upstream index byte for byte, only arm64 held.
    server.create_repo("mirrors", "sparse", "private").await;
    let form = json!({"remoteHost": up.url(), "remoteRepository": "team/multi",
                      "rules": only_multi, "platforms": ["linux/arm64"]});
    let sparse = add_policy(&admin, "mirrors/sparse", &form).await;
    poll(&server, &sparse).await;
    let (status, index) = mirror_manifest(&server, "mirrors/sparse", "multi").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sha256(&index),
        images.index.digest,
        "the index is kept as is"
    );
    let (status, _) = mirror_manifest(&server, "mirrors/sparse", &images.arm64.digest).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = mirror_manifest(&server, "mirrors/sparse", &images.amd64.digest).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("MANIFEST_UNKNOWN") && body.contains("only platforms linux/arm64"),
        "{body}"
    );
    // A client pulls its platform; the other is refused.
    let pull = |arch: &'static str, dir: &Path| {
        let dest = format!("dir:{}", dir.join(arch).display());
        let src = format!("docker://{}/mirrors/sparse:multi", server.host_port);
        skopeo_output(vec![
            "copy".into(),
            format!("--src-creds=admin:{ADMIN_PASSWORD}"),
            "--src-tls-verify=false".into(),
            "--override-os=linux".into(),
            format!("--override-arch={arch}"),
            src,
            dest,
        ])
    };
    let dir = tempfile::tempdir().unwrap();
    let arm = pull("arm64", dir.path()).await;
    assert!(
        arm.status.success(),
        "{}",
        String::from_utf8_lossy(&arm.stderr)
    );
    let amd = pull("amd64", dir.path()).await;
    assert!(!amd.status.success(), "amd64 is not mirrored");

    // Rewrite: a new index of arm64 only, the upstream digest beside it.
    server.create_repo("mirrors", "rewritten", "private").await;
    let form = json!({"remoteHost": up.url(), "remoteRepository": "team/multi",
                      "rules": only_multi, "platforms": ["linux/arm64/v8"],
                      "platformMode": "rewrite"});
    let rewrite = add_policy(&admin, "mirrors/rewritten", &form).await;
    poll(&server, &rewrite).await;
    let (status, index) = mirror_manifest(&server, "mirrors/rewritten", "multi").await;
    assert_eq!(status, StatusCode::OK);
    let local_digest = sha256(&index);
    assert_ne!(local_digest, images.index.digest);
    let index: Value = serde_json::from_slice(&index).unwrap();
    let children: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["digest"].as_str().unwrap())
        .collect();
    assert_eq!(children, [images.arm64.digest.as_str()]);
    assert_eq!(
        index["annotations"]["io.regmirror.upstream.digest"],
        images.index.digest
    );
    let listed = admin
        .get("/api/v0/repositories/mirrors/rewritten/tags")
        .await
        .expect(StatusCode::OK)
        .json();
    let tag = &listed.as_array().unwrap()[0];
    assert_eq!(tag["digest"], local_digest, "{tag}");
    assert_eq!(tag["mirroring"]["digest"], images.index.digest, "{tag}");
    // The next poll compares the upstream digest: nothing to copy.
    let log = poll(&server, &rewrite).await;
    assert!(
        log.iter()
            .any(|l| l.starts_with("0 tags to copy, 1 unchanged")),
        "{log:#?}"
    );
    let shown = admin
        .get(format!(
            "/api/v0/repositories/mirrors/rewritten/pollMirroringPolicies/{rewrite}"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(shown["platforms"], json!(["linux/arm64/v8"]), "{shown}");
    assert_eq!(shown["platformMode"], "rewrite", "{shown}");

    // A platform the index lacks fails the tag, saying what it has.
    server.create_repo("mirrors", "none", "private").await;
    let form = json!({"remoteHost": up.url(), "remoteRepository": "team/multi",
                      "rules": only_multi, "platforms": ["linux/s390x"]});
    let none = add_policy(&admin, "mirrors/none", &form).await;
    let job = server.submit_poll(Some(&none)).await;
    let (_, log) = server
        .job_outcome(&job, std::time::Duration::from_secs(60))
        .await;
    assert!(
        log.iter().any(|l| l.contains(
            "no child for the policy's platforms linux/s390x; it has linux/amd64, linux/arm64/v8"
        )),
        "{log:#?}"
    );
    // A malformed platform is a 400 naming it.
    admin
        .put(format!(
            "/api/v0/repositories/mirrors/none/pollMirroringPolicies/{none}"
        ))
        .json(&json!({"platforms": ["linux/amd64", "amd64"]}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "INVALID_POLL_MIRRORING_POLICY")
        .expect_field("platforms[1]");
}

/// Runs `openssl` with `args` in `dir`; its stdout.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Signs `image` (a digest) of `repo` the way `cosign sign --key` does
/// without a transparency log: a simple-signing payload as the layer of an
/// OCI manifest tagged `sha256-<hex>.sig`, its ECDSA P-256 signature in
/// the layer's `dev.cosignproject.cosign/signature` annotation.
async fn cosign_sign(pusher: &Pusher, repo: &str, image: &str, keys: &Path) {
    let payload = json!({
        "critical": {
            "identity": {"docker-reference": repo},
            "image": {"docker-manifest-digest": image},
            "type": "cosign container image signature"
        },
        "optional": null
    });
    let payload = serde_json::to_vec(&payload).unwrap();
    std::fs::write(keys.join("payload.json"), &payload).unwrap();
    openssl(
        keys,
        &[
            "dgst",
            "-sha256",
            "-sign",
            "key.pem",
            "-out",
            "payload.sig",
            "payload.json",
        ],
    );
    let signature = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(keys.join("payload.sig")).unwrap());
    let config =
        br#"{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#;
    let config_digest = pusher.push_blob(repo, config.to_vec()).await;
    let layer_digest = pusher.push_blob(repo, payload.clone()).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                    "digest": layer_digest, "size": payload.len(),
                    "annotations": {"dev.cosignproject.cosign/signature": signature}}]
    });
    let tag = image.replace(':', "-") + ".sig";
    pusher
        .push_manifest_raw(
            repo,
            &tag,
            "application/vnd.oci.image.manifest.v1+json",
            serde_json::to_vec(&manifest).unwrap(),
        )
        .await;
}

/// What `cosign verify --key` checks, against the mirror: the signature
/// tag of `image` exists, its payload names `image`, and the signature
/// verifies with the public key.
async fn cosign_verify(server: &TestServer, repo: &str, image: &str, keys: &Path) {
    let tag = image.replace(':', "-") + ".sig";
    let (status, manifest) = mirror_manifest(server, repo, &tag).await;
    assert_eq!(status, StatusCode::OK, "no signature {tag} in the mirror");
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    let layer = &manifest["layers"][0];
    let blob = server
        .request(
            reqwest::Method::GET,
            &format!("/v2/{repo}/blobs/{}", layer["digest"].as_str().unwrap()),
            Some(("admin", ADMIN_PASSWORD)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(blob.status(), StatusCode::OK);
    let payload = blob.bytes().await.unwrap();
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["critical"]["image"]["docker-manifest-digest"], image);
    let signature = base64::engine::general_purpose::STANDARD
        .decode(
            layer["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    std::fs::write(keys.join("mirrored.json"), &payload).unwrap();
    std::fs::write(keys.join("mirrored.sig"), signature).unwrap();
    let verified = openssl(
        keys,
        &[
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "mirrored.sig",
            "mirrored.json",
        ],
    );
    assert_eq!(verified.trim(), "Verified OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosign_signatures_follow_their_images() {
    let keys = tempfile::tempdir().unwrap();
    openssl(
        keys.path(),
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            "key.pem",
        ],
    );
    openssl(
        keys.path(),
        &["ec", "-in", "key.pem", "-pubout", "-out", "pub.pem"],
    );
    let up = Registry::plain().await;
    let pusher = up.pusher();
    let v1 = pusher
        .push_image("team/signed", "v1", ImageSpec::small("signed v1"))
        .await;
    let v2 = pusher
        .push_image("team/signed", "v2", ImageSpec::small("signed v2"))
        .await;
    cosign_sign(&pusher, "team/signed", &v1.digest, keys.path()).await;
    cosign_sign(&pusher, "team/signed", &v2.digest, keys.path()).await;
    let server = TestServer::start().await;
    let admin = server.admin();

    // The rules name v1 only; its signature comes along, v2's does not.
    server.create_repo("mirrors", "signed", "private").await;
    let form = json!({"remoteHost": up.url(), "remoteRepository": "team/signed",
                      "rules": [{"field": "tag", "operator": "eq", "values": ["v1"]}]});
    let policy = add_policy(&admin, "mirrors/signed", &form).await;
    let log = poll(&server, &policy).await;
    assert!(
        log.iter()
            .any(|l| l.starts_with("1 signature, attestation or SBOM tags")),
        "{log:#?}"
    );
    let listed = admin
        .get("/v2/mirrors/signed/tags/list")
        .await
        .expect(StatusCode::OK)
        .json();
    let sig = v1.digest.replace(':', "-") + ".sig";
    assert_eq!(listed["tags"], json!([sig, "v1"]), "{listed}");
    cosign_verify(&server, "mirrors/signed", &v1.digest, keys.path()).await;

    // With referrers off, only the tags the rules name.
    server.create_repo("mirrors", "unsigned", "private").await;
    let form = json!({"remoteHost": up.url(), "remoteRepository": "team/signed",
                      "rules": [{"field": "tag", "operator": "eq", "values": ["v2"]}],
                      "mirrorReferrers": false});
    let policy = add_policy(&admin, "mirrors/unsigned", &form).await;
    poll(&server, &policy).await;
    let listed = admin
        .get("/v2/mirrors/unsigned/tags/list")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(listed["tags"], json!(["v2"]), "{listed}");
}

/// Pushes an artifact of `artifact_type` whose subject is `subject` to
/// `repo` by digest (no tag), with an annotation; its digest.
async fn push_referrer(
    pusher: &Pusher,
    repo: &str,
    subject: &crate::support::images::PushedManifest,
    artifact_type: &str,
    body: &str,
) -> String {
    let empty = pusher.push_blob(repo, b"{}".to_vec()).await;
    let layer = pusher.push_blob(repo, body.as_bytes().to_vec()).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": body.len()}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": {"org.example.note": body}
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = sha256(&bytes);
    pusher
        .push_manifest_raw(
            repo,
            &digest,
            "application/vnd.oci.image.manifest.v1+json",
            bytes,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_referrers_are_mirrored_through_the_referrers_api() {
    // The upstream is a regmirror server: it has the referrers API.
    let up = TestServer::start().await;
    up.create_repo("team", "app", "private").await;
    let pusher = Pusher::from_parts(&up.url, Some(("admin".into(), ADMIN_PASSWORD.into())), None);
    let image = pusher
        .push_image("team/app", "v1", ImageSpec::small("app v1").oci())
        .await;
    let sbom_type = "application/vnd.example.sbom.v1+json";
    let sbom = push_referrer(&pusher, "team/app", &image, sbom_type, "an sbom").await;
    push_referrer(
        &pusher,
        "team/app",
        &image,
        "application/vnd.example.other",
        "other",
    )
    .await;

    let server = TestServer::start().await;
    server.create_repo("mirrors", "app", "private").await;
    let form = json!({"remoteHost": up.url, "remoteRepository": "team/app",
                      "username": "admin", "password": ADMIN_PASSWORD,
                      "referrerArtifactTypes": [sbom_type]});
    let policy = add_policy(&server.admin(), "mirrors/app", &form).await;
    let log = poll(&server, &policy).await;
    assert!(log.iter().any(|l| l.contains("1 referrers")), "{log:#?}");
    let referrers = server
        .admin()
        .get(format!("/v2/mirrors/app/referrers/{}", image.digest))
        .await
        .expect(StatusCode::OK)
        .json();
    let listed = referrers["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{referrers}");
    assert_eq!(listed[0]["digest"], sbom);
    assert_eq!(listed[0]["artifactType"], sbom_type);
    assert_eq!(listed[0]["annotations"]["org.example.note"], "an sbom");
    let (status, bytes) = mirror_manifest(&server, "mirrors/app", &sbom).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sha256(&bytes), sbom);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referrer_whose_subject_is_another_image_is_not_copied() {
    use crate::support::fault_proxy::{Canned, Fault, FaultProxy, Rule};

    let up = Registry::plain().await;
    let pusher = up.pusher();
    let v1 = pusher
        .push_image("team/app", "v1", ImageSpec::small("app v1").oci())
        .await;
    let v2 = pusher
        .push_image("team/app", "v2", ImageSpec::small("app v2").oci())
        .await;
    // Two artifacts, pushed by digest: one really refers to v1, the other
    // to v2.
    let honest = push_referrer(&pusher, "team/app", &v1, "application/x-honest", "honest").await;
    let liar = push_referrer(&pusher, "team/app", &v2, "application/x-liar", "liar").await;
    // A remote whose referrers API lists both for every manifest (Debian's
    // registry has none: the proxy answers for it).
    let listed = |digest: &str, artifact_type: &str| {
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
               "size": 0, "artifactType": artifact_type})
    };
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [listed(&liar, "application/x-liar"), listed(&honest, "application/x-honest")]
    });
    let proxy = FaultProxy::start(&up, 15);
    proxy.add(
        Rule::new(Fault::Respond(Canned {
            status: 200,
            headers: vec![(
                "content-type".into(),
                "application/vnd.oci.image.index.v1+json".into(),
            )],
            body: serde_json::to_vec(&index).unwrap(),
            chunked: false,
        }))
        .get()
        .path_contains("/referrers/"),
    );

    let server = TestServer::start().await;
    server.create_repo("mirrors", "app", "private").await;
    let form = json!({"remoteHost": proxy.url(), "remoteRepository": "team/app",
                      "rules": [{"field": "tag", "operator": "eq", "values": ["v1"]}]});
    let policy = add_policy(&server.admin(), "mirrors/app", &form).await;
    let log = poll(&server, &policy).await;
    assert!(
        log.iter().any(|l| l.contains(&format!(
            "referrer {liar} of {}: its subject is {}, not the manifest it was listed for",
            v1.digest, v2.digest
        ))),
        "{log:#?}"
    );
    let referrers = server
        .admin()
        .get(format!("/v2/mirrors/app/referrers/{}", v1.digest))
        .await
        .expect(StatusCode::OK)
        .json();
    let digests: Vec<&str> = referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, [honest.as_str()], "{referrers}");
    let (status, _) = mirror_manifest(&server, "mirrors/app", &liar).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the liar is not stored");
}
