//! The Python classes `Mirror` (the embedded engine) and `Client` (a running
//! server). Both extend `_Engine`, which holds a [`Backend`] and declares
//! every method once ([`engine_methods!`]): a blocking form that releases
//! the GIL, and an `*_async` twin that returns an awaitable
//! (pyo3-async-runtimes; call it inside a running asyncio loop).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mirror_core::client::ApiClient;
use mirror_core::policy_file::{ApplyOptions, apply_file};
use mirror_core::push_policy::PushPolicyView;
use mirror_core::{ErrorKind, JobFilter, Mirror as CoreMirror, Progress, Secret};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_async_runtimes::tokio::future_into_py;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, on, repository};
use crate::errors::{Failure, failure};
use crate::form::{CacheFormArgs, FormArgs, PushFormArgs};
use crate::model::plan_dict;
use crate::model::{Job, Policy, ProxyCache, PushPolicy, Tag, TagHistoryEntry, TagPreview};
use crate::runtime::{block, block_with, joined, runtime};

/// How often the progress callback is called during a poll.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// The methods shared by `Mirror` and `Client`.
#[pyclass(module = "regmirror", name = "_Engine", subclass, frozen)]
pub struct Engine {
    backend: Backend,
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
    d.set_item("bandwidth_wait_ms", s.bandwidth_wait_ms)?;
    Ok(d)
}

/// Declares `_Engine`'s methods: each `fn name / name_async (backend,
/// args) -> T { body }` becomes a blocking `name` (GIL released, Ctrl-C
/// aborts it) and an awaitable `name_async`, both running `body` as an
/// `async fn(backend, args) -> Result<T, Failure>`. An argument's type is
/// a name with at most one generic argument (`Option<FormArgs>`), so pyo3
/// sees its `Option` (a `**kwargs` argument must be one). The methods
/// after `;` are taken as written.
macro_rules! engine_methods {
    (
        $(
            $(#[$attr:meta])*
            fn $name:ident / $name_async:ident ($b:ident $(, $arg:ident : $ty:ident $(<$inner:ty>)?)*) -> $ret:ty $body:block
        )*
        ; $($rest:tt)*
    ) => {
        #[pymethods]
        impl Engine {
            $(
                $(#[$attr])*
                #[allow(clippy::too_many_arguments)]
                fn $name(&self, py: Python<'_>, $($arg: $ty $(<$inner>)?),*) -> PyResult<$ret> {
                    async fn run($b: Backend, $($arg: $ty $(<$inner>)?),*) -> Result<$ret, Failure> $body
                    block(py, run(self.backend.clone(), $($arg),*))
                }

                $(#[$attr])*
                #[allow(clippy::too_many_arguments)]
                fn $name_async<'py>(
                    &self,
                    py: Python<'py>,
                    $($arg: $ty $(<$inner>)?),*
                ) -> PyResult<Bound<'py, PyAny>> {
                    async fn run($b: Backend, $($arg: $ty $(<$inner>)?),*) -> Result<$ret, Failure> $body
                    let done = run(self.backend.clone(), $($arg),*);
                    future_into_py(py, async move { Ok(done.await?) })
                }
            )*
            $($rest)*
        }
    };
}

engine_methods! {
    /// Creates a poll mirroring policy for `local_repository` (created
    /// private if missing) after checking that the credentials can read
    /// the remote repository. `form`: the policy's fields in snake_case
    /// (`remote_host` and `remote_repository` required).
    #[pyo3(signature = (local_repository, **form))]
    fn add_policy / add_policy_async (
        backend, local_repository: String, form: Option<FormArgs>
    ) -> Policy {
        let form = form.unwrap_or_default().0;
        let local = repository(&local_repository, "localRepository")?;
        let p = on!(&backend,
            m => m.add_policy(&local, &form, None),
            c => c.add_policy(&local, &form));
        Ok(Policy::from(&p))
    }

    /// Whether the remote can be reached and read (and written):
    /// `{"read": bool, "write": bool}`. Fails with the reason otherwise.
    #[pyo3(signature = (**form))]
    fn check_connection / check_connection_async (
        backend, form: Option<FormArgs>
    ) -> BTreeMap<&'static str, bool> {
        let p = backend.check_connection(form.unwrap_or_default().0).await?;
        Ok([("read", p.read), ("write", p.write)].into())
    }

    /// Which of the remote's tags the form's `rules` would mirror (all of
    /// them without rules), listed now; nothing is saved:
    /// `{"tags_listed": int, "matching_tags": [str, ...]}`.
    #[pyo3(signature = (**form))]
    fn preview_tags / preview_tags_async (backend, form: Option<FormArgs>) -> TagPreview {
        Ok(backend.preview_tags(form.unwrap_or_default().0).await?.into())
    }

    /// Poll mirroring policies of one local repository, or all.
    #[pyo3(signature = (local_repository = None))]
    fn policies / policies_async (backend, local_repository: Option<String>) -> Vec<Policy> {
        let local = local_repository
            .map(|l| repository(&l, "localRepository"))
            .transpose()?;
        let list = on!(&backend, m => m.policies(local.as_ref()), c => c.policies(local.as_ref()));
        Ok(list.iter().map(Policy::from).collect())
    }

    /// One policy by ID.
    fn policy / policy_async (backend, id: String) -> Policy {
        Ok(Policy::from(&on!(&backend, m => m.policy(&id), c => c.policy(&id))))
    }

    /// Changes the given fields (the others stay); a change of how the
    /// remote is reached is checked before it is saved.
    #[pyo3(signature = (id, **form))]
    fn update_policy / update_policy_async (backend, id: String, form: Option<FormArgs>) -> Policy {
        let form = form.unwrap_or_default().0;
        let p = on!(&backend,
            m => m.update_policy(&id, &form, None),
            c => c.update_policy(&id, &form));
        Ok(Policy::from(&p))
    }

    /// Deletes a policy (mirrored tags stay); whether it existed.
    fn delete_policy / delete_policy_async (backend, id: String) -> bool {
        Ok(on!(&backend, m => m.delete_policy(&id), c => c.delete_policy(&id)))
    }

    /// Creates a push mirroring policy for `local_repository` (created
    /// private if missing) after checking that the credentials may push to
    /// the remote repository. `form`: the push policy's fields in
    /// snake_case (`remote_host` and `remote_repository` required;
    /// `tag_template`, default `%n`). With `initial_evaluation=True`, a
    /// push of every current tag the rules keep is queued (a server runs
    /// it; with `Mirror`, run one with `push`).
    #[pyo3(signature = (local_repository, **form))]
    fn add_push_policy / add_push_policy_async (
        backend, local_repository: String, form: Option<PushFormArgs>
    ) -> PushPolicy {
        let form = form.unwrap_or_default().0;
        let local = repository(&local_repository, "localRepository")?;
        let view = match &backend {
            Backend::Embedded(m) => {
                let p = m.add_push_policy(&local, &form, None).await?;
                if form.initial_evaluation == Some(true) && p.enabled {
                    m.push_existing_tags(&p).await?;
                }
                PushPolicyView::from(&p)
            }
            Backend::Remote(c) => c.add_push_policy(&local, &form).await?,
        };
        Ok(PushPolicy::from(&view))
    }

    /// Push mirroring policies of one local repository, or all.
    #[pyo3(signature = (local_repository = None))]
    fn push_policies / push_policies_async (
        backend, local_repository: Option<String>
    ) -> Vec<PushPolicy> {
        let local = local_repository
            .map(|l| repository(&l, "localRepository"))
            .transpose()?;
        Ok(match &backend {
            Backend::Embedded(m) => m
                .push_policies(local.as_ref())
                .await?
                .iter()
                .map(|p| PushPolicy::from(&PushPolicyView::from(p)))
                .collect(),
            Backend::Remote(c) => c
                .push_policies(local.as_ref())
                .await?
                .iter()
                .map(PushPolicy::from)
                .collect(),
        })
    }

    /// One push policy by ID.
    fn push_policy / push_policy_async (backend, id: String) -> PushPolicy {
        let view = match &backend {
            Backend::Embedded(m) => PushPolicyView::from(&m.push_policy(&id).await?),
            Backend::Remote(c) => c.push_policy(&id).await?,
        };
        Ok(PushPolicy::from(&view))
    }

    /// Changes the given fields of a push policy (the others stay); a
    /// change of how the remote is reached is checked for push access
    /// before it is saved.
    #[pyo3(signature = (id, **form))]
    fn update_push_policy / update_push_policy_async (
        backend, id: String, form: Option<PushFormArgs>
    ) -> PushPolicy {
        let form = form.unwrap_or_default().0;
        let view = match &backend {
            Backend::Embedded(m) => {
                PushPolicyView::from(&m.update_push_policy(&id, &form, None).await?)
            }
            Backend::Remote(c) => c.update_push_policy(&id, &form).await?,
        };
        Ok(PushPolicy::from(&view))
    }

    /// Deletes a push policy (what it pushed stays); whether it existed.
    fn delete_push_policy / delete_push_policy_async (backend, id: String) -> bool {
        Ok(on!(&backend, m => m.delete_push_policy(&id), c => c.delete_push_policy(&id)))
    }

    /// Creates a proxy cache (pull-through): pulls of
    /// `<namespace>/<repository>` are served locally and fetched from the
    /// remote on a miss. `form`: the cache's fields in snake_case
    /// (`namespace` and `remote_host` required). Refused when the
    /// namespace has a cache or holds repositories.
    #[pyo3(signature = (**form))]
    fn add_proxy_cache / add_proxy_cache_async (
        backend, form: Option<CacheFormArgs>
    ) -> ProxyCache {
        let form = form.unwrap_or_default().0;
        let view = match &backend {
            Backend::Embedded(m) => m.add_proxy_cache(&form).await?.view(),
            Backend::Remote(c) => c.add_proxy_cache(&form).await?,
        };
        Ok(ProxyCache::from(&view))
    }

    /// Every proxy cache, by namespace.
    fn proxy_caches / proxy_caches_async (backend) -> Vec<ProxyCache> {
        let views = match &backend {
            Backend::Embedded(m) => m.proxy_caches().await?.iter().map(|c| c.view()).collect(),
            Backend::Remote(c) => c.proxy_caches().await?,
        };
        Ok(views.iter().map(ProxyCache::from).collect())
    }

    /// The proxy cache of `namespace`.
    fn proxy_cache / proxy_cache_async (backend, namespace: String) -> ProxyCache {
        let view = match &backend {
            Backend::Embedded(m) => m.proxy_cache(&namespace).await?.view(),
            Backend::Remote(c) => c.proxy_cache(&namespace).await?,
        };
        Ok(ProxyCache::from(&view))
    }

    /// Changes the given fields of the proxy cache of `namespace` (the
    /// others stay; the namespace cannot change). A new remote host or
    /// user name drops the stored password unless one is given.
    #[pyo3(signature = (namespace, **form))]
    fn update_proxy_cache / update_proxy_cache_async (
        backend, namespace: String, form: Option<CacheFormArgs>
    ) -> ProxyCache {
        let form = form.unwrap_or_default().0;
        let view = match &backend {
            Backend::Embedded(m) => m.update_proxy_cache(&namespace, &form).await?.view(),
            Backend::Remote(c) => c.update_proxy_cache(&namespace, &form).await?,
        };
        Ok(ProxyCache::from(&view))
    }

    /// Deletes the proxy cache of `namespace` (its cached repositories
    /// stay, no longer filled); whether it existed.
    fn delete_proxy_cache / delete_proxy_cache_async (backend, namespace: String) -> bool {
        Ok(match &backend {
            Backend::Embedded(m) => m.delete_proxy_cache(&namespace).await?,
            Backend::Remote(c) => match c.delete_proxy_cache(&namespace).await {
                Ok(()) => true,
                Err(e) if e.kind() == ErrorKind::NotFound => false,
                Err(e) => return Err(e.into()),
            },
        })
    }

    /// Runs one `push_mirror_tag` job now, pushing the local `tag` through
    /// the push policy `policy_id`, and returns the finished job (`done`,
    /// `errored` or `canceled`).
    fn push / push_async (backend, policy_id: String, tag: String) -> Job {
        let job = match &backend {
            Backend::Embedded(m) => {
                let queued = m.submit_push(&policy_id, &tag).await?;
                m.run_job(&queued.id, CancellationToken::new(), None).await?
            }
            Backend::Remote(c) => c.push(&policy_id, &tag, CancellationToken::new()).await?,
        };
        Ok(backend.job_view(&job))
    }

    /// The tags of a local repository, sorted by name.
    fn tags / tags_async (backend, repository: String) -> Vec<Tag> {
        backend.tags(repository).await
    }

    /// A tag's earlier values, newest first: the digests it pointed at
    /// before it moved or was deleted, and whether each still pulls.
    fn tag_history / tag_history_async (
        backend, repository: String, tag: String
    ) -> Vec<TagHistoryEntry> {
        backend.tag_history(repository, tag).await
    }

    /// Jobs, newest first. `running=True`: waiting or running only;
    /// `False`: finished only; `limit=0`: all.
    #[pyo3(signature = (action = None, running = None, limit = 100))]
    fn jobs / jobs_async (
        backend, action: Option<String>, running: Option<bool>, limit: usize
    ) -> Vec<Job> {
        let filter = JobFilter { action, running, limit, ..Default::default() };
        let jobs = on!(&backend, m => m.jobs(&filter), c => c.jobs(&filter));
        Ok(jobs.iter().map(|j| backend.job_view(j)).collect())
    }

    /// One job by ID.
    fn job / job_async (backend, id: String) -> Job {
        Ok(backend.job_view(&on!(&backend, m => m.job(&id), c => c.job(&id))))
    }

    /// Requests a cancel of a job; returns the job as it is then.
    fn cancel_job / cancel_job_async (backend, id: String) -> Job {
        Ok(backend.job_view(&on!(&backend, m => m.cancel_job(&id), c => c.cancel_job(&id))))
    }
    ;
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
        let cancel = CancellationToken::new();
        let counters = Arc::new(Progress::default());
        let report = progress.filter(|_| self.backend.reports_progress());
        let fut = self.backend.poll(policy_id, &cancel, &counters);
        // An interrupt (or an error of `progress`) stops the job through
        // its token, so it ends `canceled` with nothing half-published.
        let mut last_report = Instant::now();
        let job = block_with(py, fut, Some(&cancel), |py| match &report {
            Some(cb) if last_report.elapsed() >= PROGRESS_EVERY => {
                last_report = Instant::now();
                cb.call1(py, (progress_dict(py, &counters)?,)).map(drop)
            }
            _ => Ok(()),
        })?;
        if let Some(cb) = &report {
            cb.call1(py, (progress_dict(py, &counters)?,))?;
        }
        Ok(job)
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
            let mut task = runtime().spawn(backend.poll(policy_id, &cancel, &counters));
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
            let job = joined(result)??;
            send(&counters)?;
            Ok(job)
        })
    }
}

/// The mirroring engine on a data directory, in this process.
#[pyclass(module = "regmirror", extends = Engine, frozen)]
pub struct Mirror {
    /// The data directory.
    #[pyo3(get)]
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
                .map_err(|e| failure(ErrorKind::Invalid, e.to_string(), "remote_hosts_allow"))?;
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
            Ok(jobs.iter().map(|j| backend.job_view(j)).collect())
        })
    }

    /// Makes the repositories and policies match a policies file (YAML or
    /// TOML; see `mirror_core::policy_file`): the plan, applied unless
    /// `dry_run`. With `prune`, the policies of the file's repositories it
    /// does not list are deleted. An invalid file raises
    /// `InvalidPolicyError` naming the entry (`field`) and changes nothing.
    #[pyo3(signature = (path, *, prune = false, dry_run = false))]
    fn apply_policies<'py>(
        slf: &Bound<'py, Self>,
        path: PathBuf,
        prune: bool,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let Backend::Embedded(mirror) = slf.as_super().get().backend.clone() else {
            unreachable!("a Mirror is always embedded")
        };
        let options = ApplyOptions { prune, dry_run };
        let plan = block(slf.py(), async move {
            Ok(apply_file(&mirror, &path, options).await?)
        })?;
        plan_dict(slf.py(), &plan)
    }

    fn __repr__(&self) -> String {
        format!("Mirror({:?})", self.data_dir.display().to_string())
    }
}

/// A client of a running `mirror-server`, with the same methods as `Mirror`.
#[pyclass(module = "regmirror", extends = Engine, frozen, get_all)]
pub struct Client {
    /// The server's URL.
    base_url: String,
    /// The user name sent.
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
        let client = ApiClient::new(base_url, username, Secret::new(password), timeout)
            .map_err(Failure::from)?;
        let base_url = client.base_url().to_string();
        Ok(PyClassInitializer::from(Engine {
            backend: Backend::Remote(Arc::new(client)),
        })
        .add_subclass(Client {
            base_url,
            username: username.to_string(),
        }))
    }

    fn __repr__(&self) -> String {
        format!("Client({:?}, username={:?})", self.base_url, self.username)
    }
}
