//! The Python views of policies, proxy caches, jobs and tags, made from
//! mirror-core's types (the same ones the embedded engine and
//! `mirror_core::client` answer with; a push policy from its
//! `PushPolicyView`, a proxy cache from its `ProxyCacheView`). Attributes
//! are the API fields in snake_case, times are RFC 3339 strings as the API
//! writes them, and a policy's `password` and `authToken` (a proxy cache's
//! `password`) are never here to leak.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use mirror_core::job::format_duration;
use mirror_core::proxy_cache::ProxyCacheView;
use mirror_core::push_policy::PushPolicyView;
use mirror_core::rules::TagRule;
use mirror_core::{JobStatus, PollMirroringPolicy, api};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::Failure;
use crate::runtime::block;

/// A time as the API writes it.
fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `to_dict()`: the attributes `names` of `view`, a nested view as its
/// own dict.
fn attrs<'py>(view: &Bound<'py, PyAny>, names: &[&str]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(view.py());
    for &name in names {
        let value = view.getattr(name)?;
        match value.cast::<MirroringStatus>() {
            Ok(status) => d.set_item(name, status.call_method0("to_dict")?)?,
            Err(_) => d.set_item(name, value)?,
        }
    }
    Ok(d)
}

/// `__repr__`: `Class(name=value, ...)` of the attributes `names`, strings
/// and dicts as Rust's `Debug` writes them, a nested status as its code.
fn repr(view: &Bound<'_, PyAny>, names: &[&str]) -> PyResult<String> {
    let mut fields = Vec::new();
    for &name in names {
        let v = view.getattr(name)?;
        let shown = if let Ok(status) = v.cast::<MirroringStatus>() {
            format!("{:?}", status.get().code)
        } else if let Ok(s) = v.extract::<String>() {
            format!("{s:?}")
        } else if let Ok(map) = v.extract::<BTreeMap<String, String>>() {
            format!("{map:?}")
        } else {
            v.repr()?.to_string() // bool, int
        };
        fields.push(format!("{name}={shown}"));
    }
    Ok(format!(
        "{}({})",
        view.get_type().name()?,
        fields.join(", ")
    ))
}

/// Declares a frozen view class: its `pub` fields are read-only
/// attributes, all of them in `to_dict()`; `__repr__` shows those after
/// `repr =`. Fields after `;` are private; methods after the last `;` are
/// taken as written.
macro_rules! view {
    (
        $(#[$meta:meta])*
        struct $class:ident {
            $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)*
            $(; $($(#[$pmeta:meta])* $private:ident : $pty:ty,)*)?
        }
        repr = [$($shown:ident)*];
        $($methods:tt)*
    ) => {
        $(#[$meta])*
        #[pyclass(module = "regmirror", frozen)]
        #[derive(Clone)]
        pub struct $class {
            $($(#[$fmeta])* #[pyo3(get)] pub $field: $ty,)*
            $($($(#[$pmeta])* $private: $pty,)*)?
        }

        #[pymethods]
        impl $class {
            /// The fields as a dict (snake_case keys; a nested view as a dict).
            fn to_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
                attrs(slf.as_any(), &[$(stringify!($field)),*])
            }

            fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
                repr(slf.as_any(), &[$(stringify!($shown)),*])
            }

            $($methods)*
        }
    };
}

/// Where a job's log is read from: the engine or server it came from.
pub trait JobLogs: Send + Sync {
    /// The log lines of job `id`, oldest first.
    fn job_logs(&self, id: String) -> LogLines;
}

/// What [`JobLogs::job_logs`] returns.
pub type LogLines = Pin<Box<dyn Future<Output = Result<Vec<String>, Failure>> + Send>>;

view! {
    /// A poll mirroring policy (no secrets: `password` and `auth_token` are
    /// write-only).
    struct Policy {
        /// Identifier (UUID).
        pub id: String,
        /// The local repository the policy feeds.
        pub local_repository: String,
        /// The remote registry URL.
        pub remote_host: String,
        /// The remote repository.
        pub remote_repository: String,
        /// User name for the remote (may be empty).
        pub username: String,
        /// Extra CA certificates (PEM), empty if none.
        pub remote_ca: String,
        /// Whether TLS verification is skipped.
        pub skip_tls_verification: bool,
        /// Whether scheduled polls evaluate the policy.
        pub enabled: bool,
        /// Whether every current remote tag is mirrored (else only new ones).
        pub initial_evaluation: bool,
        /// When a poll last copied something (RFC 3339), `None` if never.
        pub last_mirrored_at: Option<String>,
        /// The outcome of the last evaluation: `code`, `detail`, `timestamp`.
        pub last_status: MirroringStatus,
        /// When the policy was created (RFC 3339).
        pub created_at: Option<String>,
        /// Which remote tags it mirrors (empty: every tag).
        pub rules: Vec<Rule>,
        /// Whether polls delete local tags the remote no longer lists.
        pub delete_removed: bool,
        /// With `delete_removed`, only log what would be deleted.
        pub delete_removed_dry_run: bool,
        /// The most a poll deletes, in percent of the policy's tags.
        pub delete_removed_max_percent: u8,
        /// Platforms copied from an index (`os/arch[/variant]`; empty: all).
        pub platforms: Vec<String>,
        /// `sparse` or `rewrite`: how an index is kept with `platforms`.
        pub platform_mode: String,
        /// Whether referrers (signatures, attestations, SBOMs) are copied.
        pub mirror_referrers: bool,
        /// Referrers' artifact types copied (empty: all).
        pub referrer_artifact_types: Vec<String>,
        /// The most its copies read from the remote, in bytes per second
        /// (0: no limit of its own).
        pub max_bytes_per_sec: u64,
    }
    repr = [id local_repository remote_host remote_repository username enabled last_status];
}

impl From<&PollMirroringPolicy> for Policy {
    fn from(p: &PollMirroringPolicy) -> Self {
        let r = &p.remote;
        Policy {
            id: p.id.clone(),
            local_repository: p.local_repository.to_string(),
            remote_host: r.host.clone(),
            remote_repository: r.repository.to_string(),
            username: r.username.clone(),
            remote_ca: r.remote_ca.clone(),
            skip_tls_verification: r.skip_tls_verification,
            enabled: p.enabled,
            initial_evaluation: p.initial_evaluation,
            last_mirrored_at: p
                .last_mirrored_at
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            last_status: MirroringStatus {
                code: p.last_status.code.clone(),
                detail: p.last_status.detail.clone(),
                timestamp: time(p.last_status.timestamp),
            },
            created_at: Some(time(p.created_at)),
            rules: p.rules.iter().map(Rule::from).collect(),
            delete_removed: p.delete_removed.enabled,
            delete_removed_dry_run: p.delete_removed.dry_run,
            delete_removed_max_percent: p.delete_removed.max_percent,
            platforms: p.content.platform_names(),
            platform_mode: wire_string(&p.content.platform_mode),
            mirror_referrers: p.content.referrers,
            referrer_artifact_types: p.content.artifact_types.clone(),
            max_bytes_per_sec: p.max_bytes_per_sec,
        }
    }
}

view! {
    /// A push mirroring policy (no secrets: `password` and `auth_token` are
    /// write-only).
    struct PushPolicy {
        /// Identifier (UUID).
        pub id: String,
        /// The local repository whose tags are pushed.
        pub local_repository: String,
        /// The remote registry URL.
        pub remote_host: String,
        /// The remote repository.
        pub remote_repository: String,
        /// User name for the remote (may be empty).
        pub username: String,
        /// Extra CA certificates (PEM), empty if none.
        pub remote_ca: String,
        /// Whether TLS verification is skipped.
        pub skip_tls_verification: bool,
        /// Whether tags pushed or mirrored into the repository are pushed on.
        pub enabled: bool,
        /// Which local tags it pushes (empty: every tag).
        pub rules: Vec<Rule>,
        /// The remote tag's name: `%n` the tag, `%D` 12 hex of the digest,
        /// strftime codes the push's UTC time.
        pub tag_template: String,
        /// When a push last succeeded (RFC 3339), `None` if never.
        pub last_mirrored_at: Option<String>,
        /// The outcome of the last push: `code`, `detail`, `timestamp`.
        pub last_status: MirroringStatus,
        /// When the policy was created (RFC 3339).
        pub created_at: Option<String>,
    }
    repr = [id local_repository remote_host remote_repository username enabled tag_template last_status];
}

impl From<&PushPolicyView> for PushPolicy {
    fn from(p: &PushPolicyView) -> Self {
        PushPolicy {
            id: p.id.clone(),
            local_repository: p.local_repository.clone(),
            remote_host: p.remote_host.clone(),
            remote_repository: p.remote_repository.clone(),
            username: p.username.clone(),
            remote_ca: p.remote_ca.clone(),
            skip_tls_verification: p.skip_tls_verification,
            enabled: p.enabled,
            rules: p.rules.iter().map(Rule::from).collect(),
            tag_template: p.tag_template.clone(),
            last_mirrored_at: Some(p.last_mirrored_at.clone()).filter(|t| !t.is_empty()),
            last_status: MirroringStatus {
                code: p.last_status.code.clone(),
                detail: p.last_status.detail.clone(),
                timestamp: time(p.last_status.timestamp),
            },
            created_at: Some(time(p.created_at)),
        }
    }
}

view! {
    /// A proxy cache (pull-through): a local namespace whose pulls are
    /// filled from a remote registry. The password is write-only:
    /// `has_password` says whether one is stored.
    struct ProxyCache {
        /// The local namespace (one path component).
        pub namespace: String,
        /// The remote registry URL.
        pub remote_host: String,
        /// User name for the remote (may be empty: anonymous).
        pub username: String,
        /// Whether a password or access token is stored.
        pub has_password: bool,
        /// Extra CA certificates (PEM), empty if none.
        pub remote_ca: String,
        /// Whether TLS verification is skipped.
        pub skip_tls_verification: bool,
        /// Seconds a cached tag is served before it is checked upstream again.
        pub tag_ttl_secs: u64,
        /// The namespace's size limit in bytes (0: none).
        pub max_bytes: u64,
        /// Whether callers who did not log in may pull through it.
        pub anonymous_pull: bool,
        /// Whether names without a known namespace are looked up here.
        pub is_default: bool,
        /// When it was created (RFC 3339).
        pub created_at: String,
        /// When it was last changed (RFC 3339).
        pub updated_at: String,
    }
    repr = [namespace remote_host username has_password tag_ttl_secs anonymous_pull is_default];
}

impl From<&ProxyCacheView> for ProxyCache {
    fn from(c: &ProxyCacheView) -> Self {
        ProxyCache {
            namespace: c.namespace.clone(),
            remote_host: c.remote_host.clone(),
            username: c.username.clone(),
            has_password: c.has_password,
            remote_ca: c.remote_ca.clone(),
            skip_tls_verification: c.skip_tls_verification,
            tag_ttl_secs: c.tag_ttl_secs,
            max_bytes: c.max_bytes,
            anonymous_pull: c.anonymous_pull,
            is_default: c.is_default,
            created_at: time(c.created_at),
            updated_at: time(c.updated_at),
        }
    }
}

/// A unit enum as the wire writes it (`"sparse"`).
fn wire_string(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// A tag rule as Python sees it: a dict with every key
/// (`{"field", "operator", "values", "exclude"}`).
#[derive(Clone, IntoPyObject, IntoPyObjectRef)]
pub struct Rule {
    /// What the rule looks at (`tag`).
    field: String,
    /// `eq`, `sw`, `ew`, `c`, `oo`, `noo`, `matches`, `semver` or `newest`.
    operator: String,
    /// The values compared with.
    values: Vec<String>,
    /// Whether the rule drops what it matches.
    exclude: bool,
    /// How `newest` orders: `version` or `created`.
    by: String,
}

impl From<&TagRule> for Rule {
    fn from(r: &TagRule) -> Self {
        // The operator as the wire writes it.
        let operator = wire_string(&r.operator);
        Rule {
            field: r.field.clone(),
            operator,
            values: r.values.clone(),
            exclude: r.exclude,
            by: wire_string(&r.by.unwrap_or_default()),
        }
    }
}

/// Which remote tags a form's rules would mirror, as a dict:
/// `{"tags_listed": int, "matching_tags": [str, ...]}`.
#[derive(IntoPyObject)]
pub struct TagPreview {
    /// How many tags the remote lists.
    tags_listed: usize,
    /// The ones the rules keep, in the remote's order.
    matching_tags: Vec<String>,
}

impl From<api::TagPreview> for TagPreview {
    fn from(p: api::TagPreview) -> Self {
        TagPreview {
            tags_listed: p.tags_listed,
            matching_tags: p.matching_tags,
        }
    }
}

view! {
    /// DTR's `MirroringStatus`.
    struct MirroringStatus {
        /// `SUCCESS`, `PARTIAL`, `FAILED`, `CANCELED` or `NEVER_RUN`.
        pub code: String,
        /// A human-readable summary.
        pub detail: String,
        /// When it was recorded (RFC 3339).
        pub timestamp: String,
    }
    repr = [code detail timestamp];
}

view! {
    /// A job (DTR's fields) and where its log is read from.
    struct Job {
        /// Identifier (UUID).
        pub id: String,
        /// The job this one retries, or empty.
        pub retry_from_id: String,
        /// The worker that claimed it, or empty.
        pub worker_id: String,
        /// `waiting`, `running`, `done`, `errored` or `canceled`.
        pub status: String,
        /// When it may start (RFC 3339).
        pub scheduled_at: String,
        /// Last change (RFC 3339).
        pub last_updated: String,
        /// The action, e.g. `poll_mirror`.
        pub action: String,
        /// Reruns left after a worker loss.
        pub retries_left: i64,
        /// Reruns allowed.
        pub retries_total: i64,
        /// Action parameters, e.g. `policyID`.
        pub parameters: BTreeMap<String, String>,
        /// Deadline (RFC 3339), empty for none.
        pub deadline: String,
        /// How long a cancel may take.
        pub stop_timeout: String,
        /// Why the job ended `errored` or `canceled`, as a stable code
        /// (`unreachable`, `unauthorized`, `digest_mismatch`, `canceled`,
        /// ...); `None` otherwise.
        pub error_kind: Option<&'static str>,
        /// What failed and why, when the job ended `errored` or `canceled`.
        pub error_message: Option<String>,
        ;
        logs: Arc<dyn JobLogs>,
    }
    repr = [id action status parameters last_updated];

    /// Whether the job has finished (`done`, `errored` or `canceled`).
    #[getter]
    fn finished(&self) -> bool {
        JobStatus::parse(&self.status).is_some_and(JobStatus::is_final)
    }

    /// The log lines, oldest first (read now, so a running job's log grows).
    fn log_lines(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        block(py, self.logs.job_logs(self.id.clone()))
    }

    /// `log_lines` as an awaitable.
    fn log_lines_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let lines = self.logs.job_logs(self.id.clone());
        pyo3_async_runtimes::tokio::future_into_py(py, async move { Ok(lines.await?) })
    }
}

impl Job {
    /// The view of `job`, whose log `logs` reads.
    pub fn new(job: &mirror_core::Job, logs: Arc<dyn JobLogs>) -> Self {
        Job {
            id: job.id.clone(),
            retry_from_id: job.retry_from_id.clone(),
            worker_id: job.worker_id.clone(),
            status: job.status.as_str().into(),
            scheduled_at: time(job.scheduled_at),
            last_updated: time(job.last_updated),
            action: job.action.clone(),
            retries_left: job.retries_left.into(),
            retries_total: job.retries_total.into(),
            parameters: job.parameters.clone(),
            deadline: job
                .deadline
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_default(),
            stop_timeout: format_duration(job.stop_timeout),
            error_kind: job.failure.as_ref().map(|f| f.kind.code()),
            error_message: job.failure.as_ref().map(|f| f.message.clone()),
            logs,
        }
    }
}

view! {
    /// A tag of a local repository.
    struct Tag {
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
    repr = [name digest media_type size];
}

view! {
    /// An earlier value of a tag: the manifest it pointed at before it
    /// moved or was deleted.
    struct TagHistoryEntry {
        /// The manifest digest the tag pointed at.
        pub digest: String,
        /// The manifest's media type.
        pub media_type: String,
        /// The manifest's size in bytes.
        pub size: u64,
        /// When the tag started pointing at it (RFC 3339).
        pub tagged_at: String,
        /// When the tag moved away or was deleted (RFC 3339).
        pub replaced_at: String,
        /// The digest the tag moved to; `None` when it was deleted.
        pub replaced_by: Option<String>,
        /// The policy that had mirrored this value; `None` when pushed.
        pub mirrored_by: Option<String>,
        /// Whether the repository still holds the manifest (pulls by digest).
        pub available: bool,
    }
    repr = [digest replaced_at replaced_by available];
}

impl From<mirror_core::store::TagHistoryEntry> for TagHistoryEntry {
    fn from(e: mirror_core::store::TagHistoryEntry) -> Self {
        TagHistoryEntry {
            digest: e.digest.to_string(),
            media_type: e.media_type,
            size: e.size,
            tagged_at: time(e.tagged_at),
            replaced_at: time(e.replaced_at),
            replaced_by: e.replaced_by.map(|d| d.to_string()),
            mirrored_by: e.mirrored_by,
            available: e.available,
        }
    }
}

impl From<api::Tag> for Tag {
    fn from(t: api::Tag) -> Self {
        let (by, from) = match t.mirroring {
            Some(m) if m.remote_tag.is_empty() => (m.mirroring_policy_id, m.remote_repository),
            Some(m) => (
                m.mirroring_policy_id,
                format!("{}:{}", m.remote_repository, m.remote_tag),
            ),
            None => Default::default(),
        };
        Tag {
            name: t.name,
            digest: t.digest,
            media_type: t.media_type,
            size: t.size,
            mirrored_by: Some(by).filter(|s| !s.is_empty()),
            mirrored_from: Some(from).filter(|s| !s.is_empty()),
            updated_at: Some(time(t.updated_at)),
        }
    }
}

/// A policies file's plan (`Mirror.apply_policies`) as a dict: its JSON
/// form with snake_case keys (the changed fields keep the file's names),
/// and `text`, the plan as `mirror-server apply` prints it.
pub fn plan_dict<'py>(
    py: Python<'py>,
    plan: &mirror_core::policy_file::Plan,
) -> PyResult<Bound<'py, PyDict>> {
    let json = serde_json::to_value(plan)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    let dict = py_value(py, &json)?.cast_into::<PyDict>()?;
    dict.set_item("text", plan.to_string())?;
    Ok(dict)
}

/// `value` in Python; map keys and `action` values in snake_case.
fn py_value<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    fn snake_case(name: &str) -> String {
        let mut out = String::new();
        for c in name.chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match n.as_u64() {
            Some(u) => u.into_pyobject(py)?.into_any(),
            None => n.as_f64().unwrap_or_default().into_pyobject(py)?.into_any(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = pyo3::types::PyList::empty(py);
            for item in items {
                list.append(py_value(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let d = PyDict::new(py);
            for (k, v) in map {
                let v = match (k.as_str(), v) {
                    ("action", Value::String(a)) => Value::String(snake_case(a)),
                    _ => v.clone(),
                };
                d.set_item(snake_case(k), py_value(py, &v)?)?;
            }
            d.into_any()
        }
    })
}
