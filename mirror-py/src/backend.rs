//! [`Backend`]: what `regmirror.Mirror` and `regmirror.Client` share. Each
//! operation is written once here, for the embedded engine (mirror-core's
//! [`Mirror`]) and for a running server ([`ApiClient`]), and returns the
//! same Python views and failures.

use std::sync::Arc;
use std::time::Duration;

use mirror_core::{
    JobFilter, Mirror, MirrorError, NewPolicy, PolicyUpdate, Progress, RepositoryName,
};
use tokio_util::sync::CancellationToken;

use crate::client::ApiClient;
use crate::errors::Failure;
use crate::model::{Job, Policy, Tag, decode, encode};

/// How long a canceled poll may take to stop before it is left behind
/// (DTR's default `stopTimeout`).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where operations run.
#[derive(Clone)]
pub enum Backend {
    /// The engine in this process, on a data directory.
    Embedded(Mirror),
    /// A `mirror-server` over its `/api/v0` API.
    Remote(Arc<ApiClient>),
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    /// Only this action.
    pub action: Option<String>,
    /// `Some(true)`: waiting or running; `Some(false)`: finished.
    pub running: Option<bool>,
    /// At most this many (0: all).
    pub limit: usize,
}

/// Read and write permission on a remote repository.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// Tags and manifests can be read.
    pub read: bool,
    /// Blobs can be pushed.
    pub write: bool,
}

/// Validates a repository name given for the API field `field`.
pub fn repository(name: &str, field: &str) -> Result<RepositoryName, Failure> {
    RepositoryName::parse(name).map_err(|e| Failure::from(MirrorError::from(e)).with_field(field))
}

impl Backend {
    /// Whether a poll's byte counters are live (the server does not report them).
    pub fn reports_progress(&self) -> bool {
        matches!(self, Backend::Embedded(_))
    }

    /// Creates a policy for `local` (and the repository, if missing).
    pub async fn add_policy(
        &self,
        local: &str,
        form: NewPolicy,
        initial_evaluation: bool,
    ) -> Result<Policy, Failure> {
        let local = repository(local, "localRepository")?;
        match self {
            Backend::Embedded(m) => {
                let p = m.add_policy(&local, form, initial_evaluation).await?;
                decode("policy", encode(&p))
            }
            Backend::Remote(c) => c.add_policy(&local, &form, initial_evaluation).await,
        }
    }

    /// Checks that the remote in `form` can be reached and read.
    pub async fn check_connection(&self, form: NewPolicy) -> Result<Access, Failure> {
        match self {
            Backend::Embedded(m) => {
                let endpoint = form.endpoint().map_err(MirrorError::from)?;
                let p = m.check_connection(&endpoint).await?;
                Ok(Access {
                    read: p.read,
                    write: p.write,
                })
            }
            Backend::Remote(c) => c.check_connection(&form).await,
        }
    }

    /// Runs one `poll_mirror` job for `policy_id` to its end. A cancel of
    /// `cancel` stops the job cleanly (it ends `canceled`).
    pub async fn poll(
        &self,
        policy_id: String,
        cancel: CancellationToken,
        progress: Arc<Progress>,
    ) -> Result<Job, Failure> {
        match self {
            Backend::Embedded(m) => {
                let job = m.poll_with(&policy_id, cancel, Some(progress)).await?;
                Job::from_api(encode(&job), self)
            }
            Backend::Remote(c) => {
                let job = Job::from_api(c.submit_poll(&policy_id).await?, self)?;
                let mut canceled_at = None;
                loop {
                    let job = Job::from_api(c.job(&job.id).await?, self)?;
                    if job.is_final() {
                        return Ok(job);
                    }
                    if canceled_at.is_none() && cancel.is_cancelled() {
                        c.cancel_job(&job.id).await?;
                        canceled_at = Some(tokio::time::Instant::now());
                    }
                    if canceled_at.is_some_and(|t| t.elapsed() > STOP_TIMEOUT) {
                        return Ok(job);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        _ = cancel.cancelled(), if canceled_at.is_none() => {}
                    }
                }
            }
        }
    }

    /// Policies of one local repository, or all.
    pub async fn policies(&self, local: Option<&str>) -> Result<Vec<Policy>, Failure> {
        let local = local
            .map(|l| repository(l, "localRepository"))
            .transpose()?;
        match self {
            Backend::Embedded(m) => m
                .policies(local.as_ref())
                .await?
                .iter()
                .map(|p| decode("policy", encode(p)))
                .collect(),
            Backend::Remote(c) => c.policies(local.as_ref()).await,
        }
    }

    /// One policy.
    pub async fn policy(&self, id: &str) -> Result<Policy, Failure> {
        match self {
            Backend::Embedded(m) => decode("policy", encode(&m.policy(id).await?)),
            Backend::Remote(c) => c.policy(id).await,
        }
    }

    /// Applies a partial update.
    pub async fn update_policy(&self, id: &str, update: PolicyUpdate) -> Result<Policy, Failure> {
        match self {
            Backend::Embedded(m) => decode("policy", encode(&m.update_policy(id, update).await?)),
            Backend::Remote(c) => c.update_policy(id, &update).await,
        }
    }

    /// Deletes a policy; whether it existed.
    pub async fn delete_policy(&self, id: &str) -> Result<bool, Failure> {
        match self {
            Backend::Embedded(m) => Ok(m.delete_policy(id).await?),
            Backend::Remote(c) => c.delete_policy(id).await,
        }
    }

    /// The tags of a local repository.
    pub async fn tags(&self, repo: &str) -> Result<Vec<Tag>, Failure> {
        let repo = repository(repo, "repository")?;
        match self {
            Backend::Embedded(m) => {
                let repos = &m.stores().repos;
                if repos
                    .repository(&repo)
                    .await
                    .map_err(MirrorError::from)?
                    .is_none()
                {
                    return Err(MirrorError::NotFound {
                        what: format!("repository {repo}"),
                    }
                    .into());
                }
                repos
                    .tags(&repo)
                    .await
                    .map_err(MirrorError::from)?
                    .iter()
                    .map(|t| Tag::from_api(&encode(t)))
                    .collect()
            }
            Backend::Remote(c) => c.tags(&repo).await,
        }
    }

    /// Jobs, newest first.
    pub async fn jobs(&self, query: JobQuery) -> Result<Vec<Job>, Failure> {
        let jobs = match self {
            Backend::Embedded(m) => m
                .jobs(&JobFilter {
                    action: query.action,
                    running: query.running,
                    limit: query.limit,
                    ..Default::default()
                })
                .await?
                .iter()
                .map(encode)
                .collect(),
            Backend::Remote(c) => c.jobs(&query).await?,
        };
        jobs.into_iter().map(|j| Job::from_api(j, self)).collect()
    }

    /// One job.
    pub async fn job(&self, id: &str) -> Result<Job, Failure> {
        let value = match self {
            Backend::Embedded(m) => encode(&m.job(id).await?),
            Backend::Remote(c) => c.job(id).await?,
        };
        Job::from_api(value, self)
    }

    /// Requests a cancel; returns the job as it is then.
    pub async fn cancel_job(&self, id: &str) -> Result<Job, Failure> {
        let value = match self {
            Backend::Embedded(m) => encode(&m.cancel_job(id).await?),
            Backend::Remote(c) => {
                c.cancel_job(id).await?;
                c.job(id).await?
            }
        };
        Job::from_api(value, self)
    }

    /// A job's log lines, oldest first.
    pub async fn job_logs(&self, id: &str) -> Result<Vec<String>, Failure> {
        match self {
            Backend::Embedded(m) => Ok(m
                .job_logs(id, 0, 0)
                .await?
                .into_iter()
                .map(|l| l.data)
                .collect()),
            Backend::Remote(c) => c.job_logs(id).await,
        }
    }
}
