//! The Python views of policies, jobs and tags.
//!
//! Each is built from the REST API's JSON (camelCase, DTR's field names):
//! the embedded engine serializes mirror-core's types with their own
//! `Serialize` (the same one `mirror-server` answers with), and the client
//! reads the server's answers. So one conversion serves both, attributes are
//! the API fields in snake_case, and a policy's `password` and `authToken`
//! are never here to leak: the API view does not have them.

use std::collections::BTreeMap;

use mirror_core::{ErrorKind, JobStatus};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::backend::Backend;
use crate::errors::Failure;
use crate::runtime::block;

/// Decodes an API object, or says which one could not be read.
pub fn decode<T: DeserializeOwned>(what: &str, value: Value) -> Result<T, Failure> {
    serde_json::from_value(value).map_err(|e| {
        Failure::new(
            ErrorKind::Internal,
            format!("unexpected {what} in the answer: {e}"),
        )
    })
}

/// Serializes a mirror-core type to its API JSON.
pub fn encode<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A poll mirroring policy (no secrets: `password` and `auth_token` are
/// write-only).
#[pyclass(module = "regmirror", frozen, get_all)]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Identifier (UUID).
    pub id: String,
    /// The local repository the policy feeds.
    pub local_repository: String,
    /// The remote registry URL.
    pub remote_host: String,
    /// The remote repository.
    pub remote_repository: String,
    /// User name for the remote (may be empty).
    #[serde(default)]
    pub username: String,
    /// Extra CA certificates (PEM), empty if none.
    #[serde(rename = "remoteCA", default)]
    pub remote_ca: String,
    /// Whether TLS verification is skipped.
    #[serde(rename = "skipTLSVerification", default)]
    pub skip_tls_verification: bool,
    /// Whether scheduled polls evaluate the policy.
    pub enabled: bool,
    /// Whether every current remote tag is mirrored (else only new ones).
    #[serde(default = "yes")]
    pub initial_evaluation: bool,
    /// When a poll last copied something (RFC 3339), `None` if never.
    #[serde(default, deserialize_with = "empty_is_none")]
    pub last_mirrored_at: Option<String>,
    /// The outcome of the last evaluation: `code`, `detail`, `timestamp`.
    pub last_status: MirroringStatus,
    /// When the policy was created (RFC 3339).
    #[serde(default, deserialize_with = "empty_is_none")]
    pub created_at: Option<String>,
}

fn yes() -> bool {
    true
}

fn empty_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.filter(|s| !s.is_empty()))
}

/// DTR's `MirroringStatus`.
#[pyclass(module = "regmirror", frozen, get_all)]
#[derive(Debug, Clone, Deserialize)]
pub struct MirroringStatus {
    /// `SUCCESS`, `PARTIAL`, `FAILED`, `CANCELED` or `NEVER_RUN`.
    pub code: String,
    /// A human-readable summary.
    #[serde(default)]
    pub detail: String,
    /// When it was recorded (RFC 3339).
    #[serde(default)]
    pub timestamp: String,
}

#[pymethods]
impl MirroringStatus {
    /// The fields as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("code", &self.code)?;
        d.set_item("detail", &self.detail)?;
        d.set_item("timestamp", &self.timestamp)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "MirroringStatus(code={:?}, detail={:?}, timestamp={:?})",
            self.code, self.detail, self.timestamp
        )
    }
}

#[pymethods]
impl Policy {
    /// The fields as a dict (snake_case keys; `last_status` as a dict).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("id", &self.id)?;
        d.set_item("local_repository", &self.local_repository)?;
        d.set_item("remote_host", &self.remote_host)?;
        d.set_item("remote_repository", &self.remote_repository)?;
        d.set_item("username", &self.username)?;
        d.set_item("remote_ca", &self.remote_ca)?;
        d.set_item("skip_tls_verification", self.skip_tls_verification)?;
        d.set_item("enabled", self.enabled)?;
        d.set_item("initial_evaluation", self.initial_evaluation)?;
        d.set_item("last_mirrored_at", &self.last_mirrored_at)?;
        d.set_item("last_status", self.last_status.to_dict(py)?)?;
        d.set_item("created_at", &self.created_at)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Policy(id={:?}, local_repository={:?}, remote_host={:?}, remote_repository={:?}, username={:?}, enabled={}, last_status={:?})",
            self.id,
            self.local_repository,
            self.remote_host,
            self.remote_repository,
            self.username,
            py_bool(self.enabled),
            self.last_status.code,
        )
    }
}

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// A job (DTR's fields) and the engine or server it came from, for its log.
#[pyclass(module = "regmirror", frozen)]
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// Identifier (UUID).
    #[pyo3(get)]
    pub id: String,
    /// The job this one retries, or empty.
    #[serde(rename = "retryFromID", default)]
    #[pyo3(get)]
    pub retry_from_id: String,
    /// The worker that claimed it, or empty.
    #[serde(rename = "workerID", default)]
    #[pyo3(get)]
    pub worker_id: String,
    /// `waiting`, `running`, `done`, `errored` or `canceled`.
    #[pyo3(get)]
    pub status: String,
    /// When it may start (RFC 3339).
    #[serde(default)]
    #[pyo3(get)]
    pub scheduled_at: String,
    /// Last change (RFC 3339).
    #[serde(default)]
    #[pyo3(get)]
    pub last_updated: String,
    /// The action, e.g. `poll_mirror`.
    #[pyo3(get)]
    pub action: String,
    /// Reruns left after a worker loss.
    #[serde(default)]
    #[pyo3(get)]
    pub retries_left: i64,
    /// Reruns allowed.
    #[serde(default)]
    #[pyo3(get)]
    pub retries_total: i64,
    /// Action parameters, e.g. `policyID`.
    #[serde(default)]
    #[pyo3(get)]
    pub parameters: BTreeMap<String, String>,
    /// Deadline (RFC 3339), empty for none.
    #[serde(default)]
    #[pyo3(get)]
    pub deadline: String,
    /// How long a cancel may take.
    #[serde(default)]
    #[pyo3(get)]
    pub stop_timeout: String,
    /// Why it ended `errored` or `canceled`.
    #[serde(default, rename = "error")]
    pub failure: Option<mirror_core::job::JobFailure>,
    /// Where the log is read from.
    #[serde(skip)]
    pub backend: Option<Backend>,
}

impl Job {
    /// Decodes a job and remembers where its log lives.
    pub fn from_api(value: Value, backend: &Backend) -> Result<Self, Failure> {
        let mut job: Job = decode("job", value)?;
        job.backend = Some(backend.clone());
        Ok(job)
    }

    /// Whether the status is final.
    pub fn is_final(&self) -> bool {
        JobStatus::parse(&self.status).is_some_and(JobStatus::is_final)
    }

    fn backend(&self) -> Result<Backend, Failure> {
        self.backend
            .clone()
            .ok_or_else(|| Failure::new(ErrorKind::Internal, "this Job is not bound to an engine"))
    }
}

#[pymethods]
impl Job {
    /// Whether the job has finished (`done`, `errored` or `canceled`).
    #[getter]
    fn finished(&self) -> bool {
        self.is_final()
    }

    /// Why the job ended `errored` or `canceled`, as a stable code
    /// (`unreachable`, `unauthorized`, `digest_mismatch`, `canceled`, ...);
    /// `None` otherwise.
    #[getter]
    fn error_kind(&self) -> Option<&'static str> {
        self.failure.as_ref().map(|f| f.kind.code())
    }

    /// What failed and why, when the job ended `errored` or `canceled`.
    #[getter]
    fn error_message(&self) -> Option<&str> {
        self.failure.as_ref().map(|f| f.message.as_str())
    }

    /// The log lines, oldest first (read now, so a running job's log grows).
    fn log_lines(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let backend = self.backend()?;
        let id = self.id.clone();
        block(py, async move { backend.job_logs(&id).await })
    }

    /// `log_lines` as an awaitable.
    fn log_lines_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let backend = self.backend()?;
        let id = self.id.clone();
        pyo3_async_runtimes::tokio::future_into_py(
            py,
            async move { Ok(backend.job_logs(&id).await?) },
        )
    }

    /// The fields as a dict (snake_case keys).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("id", &self.id)?;
        d.set_item("retry_from_id", &self.retry_from_id)?;
        d.set_item("worker_id", &self.worker_id)?;
        d.set_item("status", &self.status)?;
        d.set_item("scheduled_at", &self.scheduled_at)?;
        d.set_item("last_updated", &self.last_updated)?;
        d.set_item("action", &self.action)?;
        d.set_item("retries_left", self.retries_left)?;
        d.set_item("retries_total", self.retries_total)?;
        d.set_item("parameters", &self.parameters)?;
        d.set_item("deadline", &self.deadline)?;
        d.set_item("stop_timeout", &self.stop_timeout)?;
        d.set_item("error_kind", self.error_kind())?;
        d.set_item("error_message", self.error_message())?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Job(id={:?}, action={:?}, status={:?}, parameters={:?}, last_updated={:?})",
            self.id, self.action, self.status, self.parameters, self.last_updated
        )
    }
}

/// A tag of a local repository.
#[pyclass(module = "regmirror", frozen, get_all)]
#[derive(Debug, Clone)]
pub struct Tag {
    /// The tag.
    pub name: String,
    /// The manifest digest it points to.
    pub digest: String,
    /// The manifest's media type.
    pub media_type: String,
    /// The manifest's size in bytes.
    pub size: u64,
    /// The policy that mirrored it, if any.
    pub mirrored_by: Option<String>,
    /// Where it was mirrored from (`host/repository:tag`), if mirrored.
    pub mirrored_from: Option<String>,
    /// When the tag last moved (RFC 3339).
    pub updated_at: Option<String>,
}

impl Tag {
    /// Reads a tag: mirror-core's `TagRecord` shape, or DTR's, where the
    /// manifest's digest, media type and size sit in a `manifest` object
    /// and the mirroring source in `mirroring`.
    pub fn from_api(value: &Value) -> Result<Self, Failure> {
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let manifest = value.get("manifest").unwrap_or(&Value::Null);
        let mirroring = value.get("mirroring").unwrap_or(&Value::Null);
        let name = text(value, "name")
            .ok_or_else(|| Failure::new(ErrorKind::Internal, "a tag without a name"))?;
        Ok(Tag {
            digest: text(value, "digest")
                .or_else(|| text(manifest, "digest"))
                .unwrap_or_default(),
            media_type: text(value, "mediaType")
                .or_else(|| text(manifest, "mediaType"))
                .unwrap_or_default(),
            size: value
                .get("size")
                .or_else(|| manifest.get("size"))
                .and_then(Value::as_u64)
                .unwrap_or(0),
            mirrored_by: text(value, "mirroredBy")
                .or_else(|| text(mirroring, "mirroringPolicyID"))
                .filter(|s| !s.is_empty()),
            mirrored_from: text(value, "mirroredFrom")
                .or_else(|| {
                    let repo = text(mirroring, "remoteRepository")?;
                    Some(match text(mirroring, "remoteTag") {
                        Some(tag) if !tag.is_empty() => format!("{repo}:{tag}"),
                        _ => repo,
                    })
                })
                .filter(|s| !s.is_empty()),
            updated_at: text(value, "updatedAt").filter(|s| !s.is_empty()),
            name,
        })
    }
}

#[pymethods]
impl Tag {
    /// The fields as a dict (snake_case keys).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("name", &self.name)?;
        d.set_item("digest", &self.digest)?;
        d.set_item("media_type", &self.media_type)?;
        d.set_item("size", self.size)?;
        d.set_item("mirrored_by", &self.mirrored_by)?;
        d.set_item("mirrored_from", &self.mirrored_from)?;
        d.set_item("updated_at", &self.updated_at)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Tag(name={:?}, digest={:?}, media_type={:?}, size={})",
            self.name, self.digest, self.media_type, self.size
        )
    }
}
