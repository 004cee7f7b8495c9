//! Seeding real images into a registry over the Distribution HTTP API.
//!
//! [`Pusher`] speaks all three auth modes (none, Basic, and the Bearer token
//! dance: 401 → `WWW-Authenticate: Bearer realm=..,service=..,scope=..` →
//! token → retry) and trusts the harness CA, so tests need neither docker nor
//! skopeo to prepare upstream content. Images are real: config JSON with
//! `rootfs.diff_ids`, Docker schema 2 or OCI manifests, manifest lists / OCI
//! indexes, and small layers that are genuine `tar+gzip` — `skopeo copy` can
//! copy them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bytes::Bytes;
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url, header};
use serde_json::json;

use super::data::{generated_digest, generated_stream, sha256_digest};
use super::registry::Registry;
use super::tarball::{tar, tar_gz};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The four manifest media types, as an `Accept` header value.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json";

/// Docker (schema 2 / manifest list) or OCI (image manifest / index) types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ManifestKind {
    #[default]
    Docker,
    Oci,
}

impl ManifestKind {
    pub fn manifest_type(self) -> &'static str {
        match self {
            ManifestKind::Docker => DOCKER_MANIFEST,
            ManifestKind::Oci => OCI_MANIFEST,
        }
    }

    pub fn index_type(self) -> &'static str {
        match self {
            ManifestKind::Docker => DOCKER_MANIFEST_LIST,
            ManifestKind::Oci => OCI_INDEX,
        }
    }

    fn config_type(self) -> &'static str {
        match self {
            ManifestKind::Docker => DOCKER_CONFIG,
            ManifestKind::Oci => OCI_CONFIG,
        }
    }

    fn layer_type(self, gzip: bool) -> &'static str {
        match (self, gzip) {
            (ManifestKind::Docker, false) => DOCKER_LAYER_TAR,
            (ManifestKind::Docker, true) => DOCKER_LAYER_GZIP,
            (ManifestKind::Oci, false) => OCI_LAYER_TAR,
            (ManifestKind::Oci, true) => OCI_LAYER_GZIP,
        }
    }
}

/// One layer of an [`ImageSpec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerSpec {
    /// These exact bytes as an *uncompressed* layer (`...tar` media type;
    /// diff_id = digest). Pass a real tar (see [`super::tarball::tar`]) if
    /// the consumer unpacks layers.
    Bytes(Vec<u8>),
    /// `size` deterministic incompressible bytes from `seed`, streamed without
    /// holding them in memory ([`super::data`]); uncompressed media type,
    /// opaque content (not a tar).
    Random { size: u64, seed: u64 },
    /// A real `tar+gzip` layer holding these files (path, contents).
    Files(Vec<(String, Vec<u8>)>),
}

impl LayerSpec {
    /// A `tar+gzip` layer with one file.
    pub fn file(path: &str, contents: impl Into<Vec<u8>>) -> Self {
        LayerSpec::Files(vec![(path.to_owned(), contents.into())])
    }
}

/// What [`Pusher::push_image`] builds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    pub layers: Vec<LayerSpec>,
    /// `(os, architecture)`, e.g. `("linux", "amd64")`; an architecture
    /// written `arm/v7` or `arm64/v8` sets the `variant` too.
    pub platform: (String, String),
    pub media: ManifestKind,
    /// Image config labels; also a cheap way to make otherwise identical
    /// images differ.
    pub labels: BTreeMap<String, String>,
    /// The config's `created` (RFC 3339); the epoch when `None`.
    pub created: Option<String>,
}

impl Default for ImageSpec {
    fn default() -> Self {
        ImageSpec {
            layers: Vec::new(),
            platform: ("linux".into(), "amd64".into()),
            media: ManifestKind::Docker,
            labels: BTreeMap::new(),
            created: None,
        }
    }
}

impl ImageSpec {
    pub fn new(layers: Vec<LayerSpec>) -> Self {
        ImageSpec {
            layers,
            ..Default::default()
        }
    }

    /// One small `tar+gzip` layer holding `/hello.txt` = `text`; distinct
    /// texts give distinct images.
    pub fn small(text: &str) -> Self {
        ImageSpec::new(vec![LayerSpec::file("hello.txt", text.as_bytes())])
    }

    pub fn platform(mut self, os: &str, arch: &str) -> Self {
        self.platform = (os.into(), arch.into());
        self
    }

    pub fn media(mut self, media: ManifestKind) -> Self {
        self.media = media;
        self
    }

    pub fn oci(self) -> Self {
        self.media(ManifestKind::Oci)
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The config says the image was built at `rfc3339`.
    pub fn created(mut self, rfc3339: &str) -> Self {
        self.created = Some(rfc3339.into());
        self
    }

    pub fn layer(mut self, layer: LayerSpec) -> Self {
        self.layers.push(layer);
        self
    }
}

/// Content descriptor (media type, digest, size).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// A manifest (image or index) as stored in the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedManifest {
    /// `sha256:...` of `bytes`, as the registry reports it.
    pub digest: String,
    pub media_type: String,
    /// The exact manifest bytes pushed.
    pub bytes: Vec<u8>,
    pub size: u64,
    /// Config blob (image manifests only).
    pub config: Option<Descriptor>,
    /// Layer blobs (image manifests only).
    pub layers: Vec<Descriptor>,
    /// Child manifests (indexes only).
    pub children: Vec<Descriptor>,
}

impl PushedManifest {
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
        }
    }

    /// Config and layer digests (what a mirror must copy for this image).
    pub fn blob_digests(&self) -> Vec<String> {
        self.config
            .iter()
            .chain(&self.layers)
            .map(|d| d.digest.clone())
            .collect()
    }
}

/// Parsed `WWW-Authenticate: Bearer k="v",...` challenge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: HashMap<String, String>,
}

/// Parses one `WWW-Authenticate` challenge (scheme + quoted params; commas
/// inside quotes, as in `scope="repository:x:pull,push"`, are kept).
pub fn parse_challenge(value: &str) -> Challenge {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), val.trim().to_owned());
    }
    Challenge {
        scheme: scheme.to_owned(),
        params,
    }
}

/// HTTP client for seeding and inspecting a registry.
pub struct Pusher {
    client: reqwest::Client,
    base: Url,
    creds: Option<(String, String)>,
    /// Bearer tokens by scope key (repository name, or "" for registry-level).
    tokens: Mutex<HashMap<String, String>>,
}

/// Tags for [`Pusher::push_mixed`].
pub struct MixedTags<'a> {
    /// A Docker schema 2 image: a file and a layer of generated bytes.
    pub docker: &'a str,
    /// A small OCI image for linux/amd64.
    pub amd64: &'a str,
    /// A small OCI image for linux/arm64/v8.
    pub arm64: &'a str,
    /// An OCI index over the two OCI images.
    pub index: &'a str,
}

/// What [`Pusher::push_mixed`] pushed.
pub struct MixedImages {
    pub docker: PushedManifest,
    pub amd64: PushedManifest,
    pub arm64: PushedManifest,
    pub index: PushedManifest,
}

impl Pusher {
    /// For a harness registry, with its credentials and CA.
    pub fn new(reg: &Registry) -> Self {
        let ca = reg.is_tls().then(|| reg.ca_pem());
        Pusher::from_parts(&reg.url(), reg.credentials(), ca.as_deref())
    }

    /// For any registry URL (`http(s)://host:port`), optional Basic/token
    /// credentials and an optional PEM CA to trust (exclusively).
    pub fn from_parts(url: &str, creds: Option<(String, String)>, ca_pem: Option<&str>) -> Self {
        let mut b = reqwest::Client::builder().no_proxy();
        if let Some(pem) = ca_pem {
            b = b.tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).expect("CA PEM")]);
        }
        Pusher {
            client: b.build().expect("reqwest client"),
            base: Url::parse(url).expect("registry url"),
            creds,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Same registry, other credentials (e.g. wrong ones, or `None`).
    pub fn with_credentials(&self, creds: Option<(&str, &str)>) -> Self {
        Pusher {
            client: self.client.clone(),
            base: self.base.clone(),
            creds: creds.map(|(u, p)| (u.to_owned(), p.to_owned())),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("join url")
    }

    /// Sends a request built by `build` (called again for the retry, so
    /// streaming bodies can be regenerated), doing the auth dance on 401.
    ///
    /// `repo` selects the token scope (`repository:REPO:pull,push` plus any
    /// actions the challenge asks for, e.g. `delete`).
    pub async fn send(
        &self,
        repo: Option<&str>,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Response {
        let key = repo.unwrap_or("").to_owned();
        let resp = self.authorize(build(&self.client), &key).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("request to {} failed: {e:?}", self.base));
        if resp.status() != StatusCode::UNAUTHORIZED {
            return resp;
        }
        let Some(challenge) = resp
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(parse_challenge)
        else {
            return resp;
        };
        if !challenge.scheme.eq_ignore_ascii_case("bearer") {
            return resp; // Basic: credentials were already sent (or absent).
        }
        let Some(token) = self.fetch_token(&challenge, repo).await else {
            return resp;
        };
        self.tokens.lock().unwrap().insert(key.clone(), token);
        self.authorize(build(&self.client), &key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {} failed: {e:?}", self.base))
    }

    fn authorize(&self, rb: RequestBuilder, key: &str) -> RequestBuilder {
        if let Some(t) = self.tokens.lock().unwrap().get(key) {
            return rb.bearer_auth(t);
        }
        match &self.creds {
            Some((u, p)) => rb.basic_auth(u, Some(p)),
            None => rb,
        }
    }

    /// Gets a token for the challenge; `None` if the token server refuses.
    async fn fetch_token(&self, ch: &Challenge, repo: Option<&str>) -> Option<String> {
        let realm = ch
            .params
            .get("realm")
            .expect("Bearer challenge without realm");
        let mut scopes: Vec<String> = ch
            .params
            .get("scope")
            .map(|s| s.split(' ').map(str::to_owned).collect())
            .unwrap_or_default();
        if let Some(repo) = repo {
            let wanted = format!("repository:{repo}:");
            match scopes.iter_mut().find(|s| s.starts_with(&wanted)) {
                Some(s) => {
                    let mut actions: Vec<&str> = s[wanted.len()..].split(',').collect();
                    for a in ["pull", "push"] {
                        if !actions.contains(&a) {
                            actions.push(a);
                        }
                    }
                    *s = format!("{wanted}{}", actions.join(","));
                }
                None => scopes.push(format!("{wanted}pull,push")),
            }
        }
        let mut url = Url::parse(realm).expect("realm url");
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = ch.params.get("service") {
                q.append_pair("service", service);
            }
            for s in &scopes {
                q.append_pair("scope", s);
            }
        }
        let mut rb = self.client.get(url);
        if let Some((u, p)) = &self.creds {
            rb = rb.basic_auth(u, Some(p));
        }
        let resp = rb.send().await.expect("token request");
        if !resp.status().is_success() {
            return None;
        }
        let body: serde_json::Value = resp.json().await.expect("token JSON");
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_owned)
    }

    /// Any request with the auth dance; path is absolute (`/v2/...`).
    pub async fn request(&self, method: Method, path: &str, repo: Option<&str>) -> Response {
        let url = self.url(path);
        self.send(repo, |c| c.request(method.clone(), url.clone()))
            .await
    }

    /// `GET /v2/` status with auth (200 when the credentials work).
    pub async fn ping(&self) -> StatusCode {
        self.request(Method::GET, "/v2/", None).await.status()
    }

    pub async fn blob_exists(&self, repo: &str, digest: &str) -> bool {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self.send(Some(repo), |c| c.head(url.clone())).await;
        match resp.status() {
            StatusCode::OK => true,
            StatusCode::NOT_FOUND => false,
            s => panic!("HEAD blob {repo}@{digest}: unexpected {s}"),
        }
    }

    /// Blob bytes, or `None` on 404.
    pub async fn get_blob(&self, repo: &str, digest: &str) -> Option<Vec<u8>> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self.send(Some(repo), |c| c.get(url.clone())).await;
        match resp.status() {
            StatusCode::OK => Some(resp.bytes().await.expect("blob body").to_vec()),
            StatusCode::NOT_FOUND => None,
            s => panic!("GET blob {repo}@{digest}: unexpected {s}"),
        }
    }

    /// Starts an upload session; returns the absolute upload URL.
    async fn start_upload(&self, repo: &str) -> Url {
        let url = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        let resp = self.send(Some(repo), |c| c.post(url.clone())).await;
        let status = resp.status();
        if status != StatusCode::ACCEPTED {
            let body = resp.text().await.unwrap_or_default();
            panic!("POST {url}: expected 202, got {status}: {body}");
        }
        let loc = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .expect("upload Location header");
        // Location may be absolute or relative; joining handles both.
        self.base.join(loc).expect("upload location")
    }

    async fn finish_upload(
        &self,
        repo: &str,
        mut upload: Url,
        digest: &str,
        size: u64,
        body: impl Fn() -> reqwest::Body,
    ) {
        upload.query_pairs_mut().append_pair("digest", digest);
        let resp = self
            .send(Some(repo), |c| {
                c.put(upload.clone())
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, size)
                    .body(body())
            })
            .await;
        let status = resp.status();
        if status != StatusCode::CREATED {
            let text = resp.text().await.unwrap_or_default();
            panic!("PUT blob {repo}@{digest}: expected 201, got {status}: {text}");
        }
    }

    /// Monolithic upload (POST + PUT); skipped when the blob already exists.
    pub async fn push_blob(&self, repo: &str, bytes: impl Into<Bytes>) -> String {
        let bytes: Bytes = bytes.into();
        let digest = sha256_digest(&bytes);
        if self.blob_exists(repo, &digest).await {
            return digest;
        }
        let upload = self.start_upload(repo).await;
        let size = bytes.len() as u64;
        self.finish_upload(repo, upload, &digest, size, || {
            reqwest::Body::from(bytes.clone())
        })
        .await;
        digest
    }

    /// Streams `size` generated bytes for `seed` ([`super::data`]) as a blob
    /// in constant memory: one pass to hash, one to upload.
    pub async fn push_blob_generated(&self, repo: &str, size: u64, seed: u64) -> (String, u64) {
        let digest = tokio::task::spawn_blocking(move || generated_digest(size, seed))
            .await
            .unwrap();
        if self.blob_exists(repo, &digest).await {
            return (digest, size);
        }
        let upload = self.start_upload(repo).await;
        self.finish_upload(repo, upload, &digest, size, || {
            reqwest::Body::wrap_stream(generated_stream(size, seed))
        })
        .await;
        (digest, size)
    }

    /// Pushes layers, config and the manifest; tags it `tag`.
    pub async fn push_image(&self, repo: &str, tag: &str, spec: ImageSpec) -> PushedManifest {
        let media = spec.media;
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for layer in &spec.layers {
            let (desc, diff_id) = match layer {
                LayerSpec::Bytes(b) => {
                    let digest = self.push_blob(repo, b.clone()).await;
                    let d = Descriptor {
                        media_type: media.layer_type(false).into(),
                        digest: digest.clone(),
                        size: b.len() as u64,
                    };
                    (d, digest)
                }
                LayerSpec::Random { size, seed } => {
                    let (digest, size) = self.push_blob_generated(repo, *size, *seed).await;
                    let d = Descriptor {
                        media_type: media.layer_type(false).into(),
                        digest: digest.clone(),
                        size,
                    };
                    (d, digest)
                }
                LayerSpec::Files(files) => {
                    let refs: Vec<(&str, &[u8])> = files
                        .iter()
                        .map(|(p, c)| (p.as_str(), c.as_slice()))
                        .collect();
                    let diff_id = sha256_digest(&tar(&refs));
                    let blob = tar_gz(&refs);
                    let size = blob.len() as u64;
                    let digest = self.push_blob(repo, blob).await;
                    let d = Descriptor {
                        media_type: media.layer_type(true).into(),
                        digest,
                        size,
                    };
                    (d, diff_id)
                }
            };
            layers.push(desc);
            diff_ids.push(diff_id);
        }

        let (os, arch, variant) = split_platform(&spec.platform.0, &spec.platform.1);
        let mut config = json!({
            "architecture": arch,
            "os": os,
            "created": spec.created.as_deref().unwrap_or("1970-01-01T00:00:00Z"),
            "config": { "Labels": spec.labels },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": layers.iter().map(|_| json!({
                "created": "1970-01-01T00:00:00Z",
                "created_by": "regmirror test harness",
            })).collect::<Vec<_>>(),
        });
        if let Some(v) = variant {
            config["variant"] = json!(v);
        }
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_desc = Descriptor {
            media_type: media.config_type().into(),
            size: config_bytes.len() as u64,
            digest: self.push_blob(repo, config_bytes).await,
        };

        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media.manifest_type(),
            "config": descriptor_json(&config_desc),
            "layers": layers.iter().map(descriptor_json).collect::<Vec<_>>(),
        });
        let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
        let digest = self
            .push_manifest_raw(repo, tag, media.manifest_type(), bytes.clone())
            .await;
        PushedManifest {
            digest,
            media_type: media.manifest_type().into(),
            size: bytes.len() as u64,
            bytes,
            config: Some(config_desc),
            layers,
            children: Vec::new(),
        }
    }

    /// Pushes a manifest list (Docker) or image index (OCI) over already
    /// pushed `children` given as `(manifest, os, arch)`.
    /// One of each kind of manifest a mirror must handle, in `repo`: a
    /// Docker image (`etc/motd` plus `random_size` generated bytes from
    /// `seed`), two single-platform OCI images and an OCI index over them.
    pub async fn push_mixed(
        &self,
        repo: &str,
        tags: MixedTags<'_>,
        random_size: u64,
        seed: u64,
    ) -> MixedImages {
        let docker = self
            .push_image(
                repo,
                tags.docker,
                ImageSpec::new(vec![
                    LayerSpec::file("etc/motd", "docker image"),
                    LayerSpec::Random {
                        size: random_size,
                        seed,
                    },
                ]),
            )
            .await;
        let amd64 = self
            .push_image(repo, tags.amd64, ImageSpec::small("amd").oci())
            .await;
        let arm64 = self
            .push_image(
                repo,
                tags.arm64,
                ImageSpec::small("arm").oci().platform("linux", "arm64/v8"),
            )
            .await;
        let index = self
            .push_index(
                repo,
                tags.index,
                &[
                    (amd64.clone(), "linux", "amd64"),
                    (arm64.clone(), "linux", "arm64/v8"),
                ],
                ManifestKind::Oci,
            )
            .await;
        MixedImages {
            docker,
            amd64,
            arm64,
            index,
        }
    }

    pub async fn push_index(
        &self,
        repo: &str,
        tag: &str,
        children: &[(PushedManifest, &str, &str)],
        media: ManifestKind,
    ) -> PushedManifest {
        let entries: Vec<serde_json::Value> = children
            .iter()
            .map(|(m, os, arch)| {
                let (os, arch, variant) = split_platform(os, arch);
                let mut platform = json!({"architecture": arch, "os": os});
                if let Some(v) = variant {
                    platform["variant"] = json!(v);
                }
                let mut d = descriptor_json(&m.descriptor());
                d["platform"] = platform;
                d
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": media.index_type(),
            "manifests": entries,
        });
        let bytes = serde_json::to_vec_pretty(&index).unwrap();
        let digest = self
            .push_manifest_raw(repo, tag, media.index_type(), bytes.clone())
            .await;
        PushedManifest {
            digest,
            media_type: media.index_type().into(),
            size: bytes.len() as u64,
            bytes,
            config: None,
            layers: Vec::new(),
            children: children.iter().map(|(m, _, _)| m.descriptor()).collect(),
        }
    }

    /// `PUT /v2/REPO/manifests/REFERENCE`; returns the digest the registry
    /// reports (checked against our own sha256 of `bytes`).
    pub async fn push_manifest_raw(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> String {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let body = Bytes::from(bytes);
        let resp = self
            .send(Some(repo), |c| {
                c.put(url.clone())
                    .header(header::CONTENT_TYPE, media_type)
                    .body(body.clone())
            })
            .await;
        let status = resp.status();
        let reported = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if status != StatusCode::CREATED {
            let text = resp.text().await.unwrap_or_default();
            panic!("PUT manifest {repo}:{reference}: expected 201, got {status}: {text}");
        }
        let digest = sha256_digest(&body);
        if let Some(r) = reported {
            assert_eq!(r, digest, "registry reported another manifest digest");
        }
        digest
    }

    /// Digest of `repo:reference` via `HEAD` with all four manifest types
    /// accepted; `None` on 404.
    pub async fn manifest_digest(&self, repo: &str, reference: &str) -> Option<String> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self
            .send(Some(repo), |c| {
                c.head(url.clone()).header(header::ACCEPT, MANIFEST_ACCEPT)
            })
            .await;
        match resp.status() {
            StatusCode::OK => Some(
                resp.headers()
                    .get("docker-content-digest")
                    .expect("Docker-Content-Digest header")
                    .to_str()
                    .unwrap()
                    .to_owned(),
            ),
            StatusCode::NOT_FOUND => None,
            s => panic!("HEAD manifest {repo}:{reference}: unexpected {s}"),
        }
    }

    /// `(media type, bytes)` of `repo:reference`; `None` on 404.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Option<(String, Vec<u8>)> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self
            .send(Some(repo), |c| {
                c.get(url.clone()).header(header::ACCEPT, MANIFEST_ACCEPT)
            })
            .await;
        match resp.status() {
            StatusCode::OK => {
                let mt = resp
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                Some((mt, resp.bytes().await.unwrap().to_vec()))
            }
            StatusCode::NOT_FOUND => None,
            s => panic!("GET manifest {repo}:{reference}: unexpected {s}"),
        }
    }

    /// Deletes the manifest `digest` (and so every tag pointing at it:
    /// distribution 2.8 cannot delete a single tag). True if it existed.
    pub async fn delete_manifest(&self, repo: &str, digest: &str) -> bool {
        let url = self.url(&format!("/v2/{repo}/manifests/{digest}"));
        let resp = self.send(Some(repo), |c| c.delete(url.clone())).await;
        match resp.status() {
            StatusCode::ACCEPTED => true,
            StatusCode::NOT_FOUND => false,
            s => panic!(
                "DELETE manifest {repo}@{digest}: unexpected {s}: {}",
                resp.text().await.unwrap_or_default()
            ),
        }
    }

    /// Removes `tag` by deleting the manifest it points to (see
    /// [`Pusher::delete_manifest`]). True if the tag existed.
    pub async fn delete_tag(&self, repo: &str, tag: &str) -> bool {
        match self.manifest_digest(repo, tag).await {
            Some(d) => self.delete_manifest(repo, &d).await,
            None => false,
        }
    }

    /// Deletes blob `digest` from `repo` (its link; the data stays until GC).
    pub async fn delete_blob(&self, repo: &str, digest: &str) -> bool {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self.send(Some(repo), |c| c.delete(url.clone())).await;
        match resp.status() {
            StatusCode::ACCEPTED => true,
            StatusCode::NOT_FOUND => false,
            s => panic!("DELETE blob {repo}@{digest}: unexpected {s}"),
        }
    }

    /// All tags of `repo` (empty if the repository does not exist), following
    /// `Link` pagination if the registry paginates.
    pub async fn tags(&self, repo: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = Some(self.url(&format!("/v2/{repo}/tags/list")));
        while let Some(url) = next.take() {
            let resp = self.send(Some(repo), |c| c.get(url.clone())).await;
            match resp.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND => return out,
                s => panic!("GET tags of {repo}: unexpected {s}"),
            }
            next = next_link(&self.base, &resp);
            let body: serde_json::Value = resp.json().await.unwrap();
            if let Some(tags) = body["tags"].as_array() {
                out.extend(tags.iter().filter_map(|t| t.as_str().map(str::to_owned)));
            }
        }
        out
    }

    /// Repository names from `/v2/_catalog`, following pagination.
    pub async fn catalog(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = Some(self.url("/v2/_catalog"));
        while let Some(url) = next.take() {
            let resp = self.send(None, |c| c.get(url.clone())).await;
            assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
            next = next_link(&self.base, &resp);
            let body: serde_json::Value = resp.json().await.unwrap();
            if let Some(repos) = body["repositories"].as_array() {
                out.extend(repos.iter().filter_map(|t| t.as_str().map(str::to_owned)));
            }
        }
        out
    }
}

/// The `rel="next"` target of a `Link: <url>; rel="next"` header.
pub fn next_link(base: &Url, resp: &Response) -> Option<Url> {
    let link = resp.headers().get(header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then_some(())?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        base.join(target).ok()
    })
}

fn descriptor_json(d: &Descriptor) -> serde_json::Value {
    json!({"mediaType": d.media_type, "size": d.size, "digest": d.digest})
}

/// `("linux", "arm/v7")` → `("linux", "arm", Some("v7"))`.
fn split_platform<'a>(os: &'a str, arch: &'a str) -> (&'a str, &'a str, Option<&'a str>) {
    match arch.split_once('/') {
        Some((a, v)) => (os, a, Some(v)),
        None => (os, arch, None),
    }
}
