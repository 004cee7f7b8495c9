//! The Python classes `Mirror` (the embedded engine) and `Client` (a running
//! server). Both extend `_Engine`, which holds a [`Backend`] and defines
//! every method once: a blocking form that releases the GIL, and an
//! `*_async` twin that returns an awaitable (pyo3-async-runtimes; call it
//! inside a running asyncio loop).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mirror_core::{Mirror as CoreMirror, NewPolicy, PolicyUpdate, Progress, Secret};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tokio_util::sync::CancellationToken;

use crate::backend::{Access, Backend, JobQuery};
use crate::client::ApiClient;
use crate::errors::Failure;
use crate::model::{Job, Policy, Tag, encode};
use crate::runtime::{SIGNAL_CHECK, block, runtime, wait_for};

use pyo3_async_runtimes::tokio::future_into_py;

/// How often the progress callback is called during a poll.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// How long a poll interrupted by Ctrl-C may take to stop cleanly.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// The methods shared by `Mirror` and `Client`.
#[pyclass(module = "regmirror", name = "_Engine", subclass, frozen)]
pub struct Engine {
    backend: Backend,
}

/// The policy form from keyword arguments. Secrets go straight into
/// [`Secret`]s, which never print.
#[allow(clippy::too_many_arguments)]
fn form(
    remote_host: String,
    remote_repository: String,
    username: &str,
    password: &str,
    auth_token: &str,
    remote_ca: Option<String>,
    skip_tls_verification: bool,
    enabled: bool,
) -> NewPolicy {
    NewPolicy {
        remote_host,
        remote_repository,
        username: username.to_string(),
        password: Secret::new(password),
        auth_token: Secret::new(auth_token),
        remote_ca: remote_ca.unwrap_or_default(),
        skip_tls_verification,
        enabled,
        owner: None,
    }
}

fn access_dict(py: Python<'_>, a: Access) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("read", a.read)?;
    d.set_item("write", a.write)?;
    Ok(d)
}

/// The progress snapshot as a dict with snake_case keys.
fn progress_dict<'py>(py: Python<'py>, p: &Progress) -> PyResult<Bound<'py, PyDict>> {
    let s = p.snapshot();
    let d = PyDict::new(py);
    d.set_item("bytes_copied", s.bytes_copied)?;
    d.set_item("blobs_copied", s.blobs_copied)?;
    d.set_item("blobs_reused", s.blobs_reused)?;
    d.set_item("tags_copied", s.tags_copied)?;
    d.set_item("tags_planned", s.tags_planned)?;
    d.set_item("retries", s.retries)?;
    Ok(d)
}

/// `{"read": bool, "write": bool}` for the async twin.
type AccessMap = std::collections::BTreeMap<&'static str, bool>;

fn access_map(a: Access) -> AccessMap {
    [("read", a.read), ("write", a.write)].into()
}

#[pymethods]
impl Engine {
    /// Creates a poll mirroring policy for `local_repository` (created
    /// private if missing) after checking that the credentials can read
    /// the remote repository.
    #[pyo3(signature = (
        local_repository, *, remote_host, remote_repository, username = "",
        password = "", auth_token = "", remote_ca = None,
        skip_tls_verification = false, enabled = true, initial_evaluation = true
    ))]
    #[allow(clippy::too_many_arguments)]
    fn add_policy(
        &self,
        py: Python<'_>,
        local_repository: String,
        remote_host: String,
        remote_repository: String,
        username: &str,
        password: &str,
        auth_token: &str,
        remote_ca: Option<String>,
        skip_tls_verification: bool,
        enabled: bool,
        initial_evaluation: bool,
    ) -> PyResult<Policy> {
        let backend = self.backend.clone();
        let f = form(
            remote_host,
            remote_repository,
            username,
            password,
            auth_token,
            remote_ca,
            skip_tls_verification,
            enabled,
        );
        block(py, async move {
            backend
                .add_policy(&local_repository, f, initial_evaluation)
                .await
        })
    }

    /// `add_policy` as an awaitable.
    #[pyo3(signature = (
        local_repository, *, remote_host, remote_repository, username = "",
        password = "", auth_token = "", remote_ca = None,
        skip_tls_verification = false, enabled = true, initial_evaluation = true
    ))]
    #[allow(clippy::too_many_arguments)]
    fn add_policy_async<'py>(
        &self,
        py: Python<'py>,
        local_repository: String,
        remote_host: String,
        remote_repository: String,
        username: &str,
        password: &str,
        auth_token: &str,
        remote_ca: Option<String>,
        skip_tls_verification: bool,
        enabled: bool,
        initial_evaluation: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let backend = self.backend.clone();
        let f = form(
            remote_host,
            remote_repository,
            username,
            password,
            auth_token,
            remote_ca,
            skip_tls_verification,
            enabled,
        );
        future_into_py(py, async move {
            Ok(backend
                .add_policy(&local_repository, f, initial_evaluation)
                .await?)
        })
    }

    /// Whether the remote can be reached and read (and written):
    /// `{"read": bool, "write": bool}`. Fails with the reason otherwise.
    #[pyo3(signature = (
        *, remote_host, remote_repository, username = "",
        password = "", auth_token = "", remote_ca = None,
        skip_tls_verification = false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn check_connection<'py>(
        &self,
        py: Python<'py>,
        remote_host: String,
        remote_repository: String,
        username: &str,
        password: &str,
        auth_token: &str,
        remote_ca: Option<String>,
        skip_tls_verification: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let backend = self.backend.clone();
        let f = form(
            remote_host,
            remote_repository,
            username,
            password,
            auth_token,
            remote_ca,
            skip_tls_verification,
            true,
        );
        let access = block(py, async move { backend.check_connection(f).await })?;
        access_dict(py, access)
    }

    /// `check_connection` as an awaitable.
    #[pyo3(signature = (
        *, remote_host, remote_repository, username = "",
        password = "", auth_token = "", remote_ca = None,
        skip_tls_verification = false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn check_connection_async<'py>(
        &self,
        py: Python<'py>,
        remote_host: String,
        remote_repository: String,
        username: &str,
        password: &str,
        auth_token: &str,
        remote_ca: Option<String>,
        skip_tls_verification: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let backend = self.backend.clone();
        let f = form(
            remote_host,
            remote_repository,
            username,
            password,
            auth_token,
            remote_ca,
            skip_tls_verification,
            true,
        );
        future_into_py(py, async move {
            Ok(access_map(backend.check_connection(f).await?))
        })
    }

    /// Runs one `poll_mirror` job for the policy now and returns the
    /// finished job (`done`, `errored` or `canceled`). `progress(dict)` is
    /// called about every 0.5 s and at the end with the byte and blob
    /// counters (embedded engine only). Ctrl-C cancels the job cleanly,
    /// then raises `KeyboardInterrupt`; an exception from `progress` does
    /// the same with that exception.
    #[pyo3(signature = (policy_id, progress = None))]
    fn poll(
        &self,
        py: Python<'_>,
        policy_id: String,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Job> {
        let backend = self.backend.clone();
        let cancel = CancellationToken::new();
        let counters = Arc::new(Progress::default());
        let report = progress.filter(|_| backend.reports_progress());
        let mut task = runtime().spawn({
            let (backend, cancel, counters) = (backend.clone(), cancel.clone(), counters.clone());
            async move { backend.poll(policy_id, cancel, counters).await }
        });
        let mut last_report = Instant::now();
        loop {
            if let Some(result) = wait_for(py, &mut task, SIGNAL_CHECK) {
                let job = result??;
                if let Some(cb) = &report {
                    cb.call1(py, (progress_dict(py, &counters)?,))?;
                }
                return Ok(job);
            }
            let mut stop = py.check_signals().err();
            if stop.is_none()
                && let Some(cb) = &report
                && last_report.elapsed() >= PROGRESS_EVERY
            {
                last_report = Instant::now();
                stop = progress_dict(py, &counters)
                    .and_then(|d| cb.call1(py, (d,)))
                    .err();
            }
            if let Some(err) = stop {
                // Stop the job through its token so it ends `canceled` with
                // nothing half-published, then raise.
                cancel.cancel();
                let deadline = Instant::now() + STOP_WAIT;
                while Instant::now() < deadline {
                    if wait_for(py, &mut task, SIGNAL_CHECK).is_some() {
                        return Err(err);
                    }
                    if py.check_signals().is_err() {
                        break;
                    }
                }
                task.abort();
                return Err(err);
            }
        }
    }

    /// `poll` as an awaitable. Cancelling the awaiting task cancels the job
    /// cleanly. `progress` is called on the event loop's thread.
    #[pyo3(signature = (policy_id, progress = None))]
    fn poll_async<'py>(
        &self,
        py: Python<'py>,
        policy_id: String,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let backend = self.backend.clone();
        let report = progress.filter(|_| backend.reports_progress());
        let event_loop = pyo3_async_runtimes::tokio::get_current_loop(py)?.unbind();
        future_into_py(py, async move {
            let cancel = CancellationToken::new();
            let counters = Arc::new(Progress::default());
            // Dropped (the Python task cancelled) before the job ends: the
            // job is canceled through its token and finishes in the background.
            let guard = cancel.clone().drop_guard();
            let mut task = runtime().spawn({
                let (cancel, counters) = (cancel.clone(), counters.clone());
                async move { backend.poll(policy_id, cancel, counters).await }
            });
            let send = |counters: &Progress| {
                if let Some(cb) = &report {
                    Python::attach(|py| {
                        let d = progress_dict(py, counters)?;
                        event_loop.call_method1(py, "call_soon_threadsafe", (cb, d))?;
                        Ok::<_, PyErr>(())
                    })
                } else {
                    Ok(())
                }
            };
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            tick.tick().await;
            let result = loop {
                tokio::select! {
                    r = &mut task => break r,
                    _ = tick.tick(), if report.is_some() => send(&counters)?,
                }
            };
            guard.disarm();
            let job = result.map_err(|e| {
                pyo3::exceptions::PyRuntimeError::new_err(format!("regmirror task failed: {e}"))
            })??;
            send(&counters)?;
            Ok(job)
        })
    }

    /// Poll mirroring policies of one local repository, or all.
    #[pyo3(signature = (local_repository = None))]
    fn policies(&self, py: Python<'_>, local_repository: Option<String>) -> PyResult<Vec<Policy>> {
        let backend = self.backend.clone();
        block(py, async move {
            backend.policies(local_repository.as_deref()).await
        })
    }

    /// `policies` as an awaitable.
    #[pyo3(signature = (local_repository = None))]
    fn policies_async<'py>(
        &self,
        py: Python<'py>,
        local_repository: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let backend = self.backend.clone();
        future_into_py(py, async move {
            Ok(backend.policies(local_repository.as_deref()).await?)
        })
    }

    /// One policy by ID.
    fn policy(&self, py: Python<'_>, id: String) -> PyResult<Policy> {
        let backend = self.backend.clone();
        block(py, async move { backend.policy(&id).await })
    }

    /// `policy` as an awaitable.
    fn policy_async<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let backend = self.backend.clone();
        future_into_py(py, async move { Ok(backend.policy(&id).await?) })
    }

    /// Changes the given fields (the others stay); a change of how the
    /// remote is reached is checked before it is saved.
    #[pyo3(signature = (
        id, *, remote_host = None, remote_repository = None, username = None,
        password = None, auth_token = None, remote_ca = None,
        skip_tls_verification = None, enabled = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn update_policy(
        &self,
        py: Python<'_>,
        id: String,
        remote_host: Option<String>,
        remote_repository: Option<String>,
        username: Option<String>,
        password: Option<String>,
        auth_token: Option<String>,
        remote_ca: Option<String>,
        skip_tls_verification: Option<bool>,
        enabled: Option<bool>,
    ) -> PyResult<Policy> {
        let backend = self.backend.clone();
        let update = PolicyUpdate {
            remote_host,
            remote_repository,
            username,
            password: password.map(Secret::new),
            auth_token: auth_token.map(Secret::new),
            remote_ca,
            skip_tls_verification,
            enabled,
            owner: None,
        };
        block(py, async move { backend.update_policy(&id, update).await })
    }

    /// `update_policy` as an awaitable.
    #[pyo3(signature = (
        id, *, remote_host = None, remote_repository = None, username = None,
        password = None, auth_token = None, remote_ca = None,
        skip_tls_verification = None, enabled = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn update_policy_async<'py>(
        &self,
        py: Python<'py>,
        id: String,
        remote_host: Option<String>,
        remote_repository: Option<String>,
        username: Option<String>,
        password: Option<String>,
        auth_token: Option<String>,
        remote_ca: Option<String>,
        skip_tls_verification: Option<bool>,
        enabled: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let backend = self.backend.clone();
        let update = PolicyUpdate {
            remote_host,
            remote_repository,
            username,
            password: password.map(Secret::new),
            auth_token: auth_token.map(Secret::new),
            remote_ca,
            skip_tls_verification,
            enabled,
            owner: None,
        };
        future_into_py(
            py,
            async move { Ok(backend.update_policy(&id, update).await?) },
        )
    }

    /// Deletes a policy (mirrored tags stay); whether it existed.
    fn delete_policy(&self, py: Python<'_>, id: String) -> PyResult<bool> {
        let backend = self.backend.clone();
        block(py, async move { backend.delete_policy(&id).await })
    }

    /// `delete_policy` as an awaitable.
    fn delete_policy_async<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let backend = self.backend.clone();
        future_into_py(py, async move { Ok(backend.delete_policy(&id).await?) })
    }

    /// The tags of a local repository, sorted by name.
    fn tags(&self, py: Python<'_>, repository: String) -> PyResult<Vec<Tag>> {
        let backend = self.backend.clone();
        block(py, async move { backend.tags(&repository).await })
    }

    /// `tags` as an awaitable.
    fn tags_async<'py>(&self, py: Python<'py>, repository: String) -> PyResult<Bound<'py, PyAny>> {
        let backend = self.backend.clone();
        future_into_py(py, async move { Ok(backend.tags(&repository).await?) })
    }

    /// Jobs, newest first. `running=True`: waiting or running only;
    /// `False`: finished only; `limit=0`: all.
    #[pyo3(signature = (action = None, running = None, limit = 100))]
    fn jobs(
        &self,
        py: Python<'_>,
        action: Option<String>,
        running: Option<bool>,
        limit: usize,
    ) -> PyResult<Vec<Job>> {
        let backend = self.backend.clone();
        let query = JobQuery {
            action,
            running,
            limit,
        };
        block(py, async move { backend.jobs(query).await })
    }

    /// `jobs` as an awaitable.
    #[pyo3(signature = (action = None, running = None, limit = 100))]
    fn jobs_async<'py>(
        &self,
        py: Python<'py>,
        action: Option<String>,
        running: Option<bool>,
        limit: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let backend = self.backend.clone();
        let query = JobQuery {
            action,
            running,
            limit,
        };
        future_into_py(py, async move { Ok(backend.jobs(query).await?) })
    }

    /// One job by ID.
    fn job(&self, py: Python<'_>, id: String) -> PyResult<Job> {
        let backend = self.backend.clone();
        block(py, async move { backend.job(&id).await })
    }

    /// `job` as an awaitable.
    fn job_async<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let backend = self.backend.clone();
        future_into_py(py, async move { Ok(backend.job(&id).await?) })
    }

    /// Requests a cancel of a job; returns the job as it is then.
    fn cancel_job(&self, py: Python<'_>, id: String) -> PyResult<Job> {
        let backend = self.backend.clone();
        block(py, async move { backend.cancel_job(&id).await })
    }

    /// `cancel_job` as an awaitable.
    fn cancel_job_async<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let backend = self.backend.clone();
        future_into_py(py, async move { Ok(backend.cancel_job(&id).await?) })
    }
}

/// The mirroring engine on a data directory, in this process.
#[pyclass(module = "regmirror", extends = Engine, frozen)]
pub struct Mirror {
    data_dir: PathBuf,
}

#[pymethods]
impl Mirror {
    /// Opens (creating if needed) the embedded stores in `data_dir`.
    /// `remote_hosts_allow` (host patterns; empty: any) and
    /// `forbid_private_remotes` restrict which remote hosts are reached,
    /// as the server's settings of the same names do.
    #[new]
    #[pyo3(signature = (data_dir, *, remote_hosts_allow = Vec::new(), forbid_private_remotes = false))]
    fn new(
        py: Python<'_>,
        data_dir: PathBuf,
        remote_hosts_allow: Vec<String>,
        forbid_private_remotes: bool,
    ) -> PyResult<PyClassInitializer<Self>> {
        let guard =
            mirror_core::remote::RemoteGuard::new(&remote_hosts_allow, forbid_private_remotes)
                .map_err(|e| {
                    Failure::new(mirror_core::ErrorKind::Invalid, e.to_string())
                        .with_field("remote_hosts_allow")
                })?;
        let dir = data_dir.clone();
        let http = mirror_core::remote::HttpSettings {
            guard,
            ..Default::default()
        };
        let mirror = py
            .detach(move || CoreMirror::open_with(&dir, http))
            .map_err(Failure::from)?;
        Ok(PyClassInitializer::from(Engine {
            backend: Backend::Embedded(mirror),
        })
        .add_subclass(Mirror { data_dir }))
    }

    /// The data directory.
    #[getter]
    fn data_dir(&self) -> PathBuf {
        self.data_dir.clone()
    }

    /// Finds jobs left `running` by a process that died (no heartbeat):
    /// requeues or errors them, and removes unfinished blob uploads. Call
    /// at start when no other process uses the data directory.
    fn recover(slf: &Bound<'_, Self>) -> PyResult<Vec<Job>> {
        let backend = slf.as_super().get().backend.clone();
        let Backend::Embedded(mirror) = backend.clone() else {
            unreachable!("a Mirror is always embedded")
        };
        block(slf.py(), async move {
            let jobs = mirror.recover().await?;
            jobs.iter()
                .map(|j| Job::from_api(encode(j), &backend))
                .collect()
        })
    }

    fn __repr__(&self) -> String {
        format!("Mirror({:?})", self.data_dir.display().to_string())
    }
}

/// A client of a running `mirror-server`, with the same methods as `Mirror`.
#[pyclass(module = "regmirror", extends = Engine, frozen)]
pub struct Client {
    base_url: String,
    username: String,
}

#[pymethods]
impl Client {
    /// A client for the server at `base_url`, authenticating with HTTP
    /// Basic (`password` may be an access token). `timeout` (seconds)
    /// bounds each request.
    #[new]
    #[pyo3(signature = (base_url, username = "", password = "", *, timeout = 60.0))]
    fn new(
        base_url: &str,
        username: &str,
        password: &str,
        timeout: f64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let timeout = Duration::try_from_secs_f64(timeout).map_err(|_| {
            pyo3::exceptions::PyValueError::new_err("timeout must be a positive number of seconds")
        })?;
        let client = ApiClient::new(
            base_url,
            username.to_string(),
            Secret::new(password),
            timeout,
        )?;
        let base_url = client.base_url().to_string();
        Ok(PyClassInitializer::from(Engine {
            backend: Backend::Remote(Arc::new(client)),
        })
        .add_subclass(Client {
            base_url,
            username: username.to_string(),
        }))
    }

    /// The server's URL.
    #[getter]
    fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The user name sent.
    #[getter]
    fn username(&self) -> String {
        self.username.clone()
    }

    fn __repr__(&self) -> String {
        format!("Client({:?}, username={:?})", self.base_url, self.username)
    }
}
