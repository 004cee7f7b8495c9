//! [`Backend`]: where `regmirror.Mirror` and `regmirror.Client` run each
//! operation: mirror-core's engine ([`Mirror`]) or its client of a running
//! server ([`ApiClient`]). Both answer with mirror-core's types; this file
//! only picks one and makes the Python views (`model.rs`).

use std::future::Future;
use std::sync::Arc;

use mirror_core::api::TagPreview;
use mirror_core::client::ApiClient;
use mirror_core::{
    ErrorKind, Mirror, MirrorError, Permissions, PolicyForm, Progress, RepositoryName,
};
use tokio_util::sync::CancellationToken;

use crate::errors::{Failure, failure};
use crate::model::{Job, JobLogs, LogLines, Tag, TagHistoryEntry};

/// Where operations run.
#[derive(Clone)]
pub enum Backend {
    /// The engine in this process, on a data directory.
    Embedded(Mirror),
    /// A `mirror-server` over its `/api/v0` API.
    Remote(Arc<ApiClient>),
}

/// The same call on either backend (`$m` names the engine, `$c` the
/// client), awaited, its error a [`Failure`].
macro_rules! on {
    ($backend:expr, $m:ident => $embedded:expr, $c:ident => $remote:expr) => {
        match $backend {
            Backend::Embedded($m) => $embedded.await?,
            Backend::Remote($c) => $remote.await?,
        }
    };
}
pub(crate) use on;

/// Validates a repository name given for the API field `field`.
pub fn repository(name: &str, field: &str) -> Result<RepositoryName, Failure> {
    RepositoryName::parse(name).map_err(|e| failure(ErrorKind::Invalid, e.to_string(), field))
}

impl JobLogs for Backend {
    fn job_logs(&self, id: String) -> LogLines {
        let backend = self.clone();
        Box::pin(async move {
            let lines = on!(&backend, m => m.job_logs(&id, 0, 0), c => c.job_logs(&id));
            Ok(lines.into_iter().map(|l| l.data).collect())
        })
    }
}

impl Backend {
    /// Whether a poll's byte counters are live (the server does not report them).
    pub fn reports_progress(&self) -> bool {
        matches!(self, Backend::Embedded(_))
    }

    /// The Python view of `job`, reading its log from here.
    pub fn job_view(&self, job: &mirror_core::Job) -> Job {
        Job::new(job, Arc::new(self.clone()))
    }

    /// Checks that the remote in `form` can be reached and read (and
    /// that its rules, if any, are valid, as the server's check does).
    pub async fn check_connection(&self, form: PolicyForm) -> Result<Permissions, Failure> {
        Ok(match self {
            Backend::Embedded(m) => {
                let endpoint = form.endpoint().map_err(MirrorError::from)?;
                form.tag_filter().map_err(MirrorError::from)?;
                m.check_connection(&endpoint).await?
            }
            Backend::Remote(c) => c.check_connection(&form).await?.permissions,
        })
    }

    /// Which of the remote's tags `form`'s rules would mirror (every tag
    /// without rules). The server answers it in its Connect check when
    /// the form has rules, so the client always sends some (`[]`: none).
    pub async fn preview_tags(&self, mut form: PolicyForm) -> Result<TagPreview, Failure> {
        Ok(match self {
            Backend::Embedded(m) => m.preview_tags(&form).await?,
            Backend::Remote(c) => {
                form.rules.get_or_insert_with(Vec::new);
                let check = c.check_connection(&form).await?;
                check.preview.ok_or_else(|| MirrorError::Api {
                    kind: ErrorKind::Internal,
                    message: "the server's Connect check answered no tag preview".into(),
                    field: None,
                })?
            }
        })
    }

    /// Runs one `poll_mirror` job for `policy_id` to its end, counting into
    /// `progress`. A cancel of `cancel` stops the job cleanly (it ends
    /// `canceled`).
    pub fn poll(
        &self,
        policy_id: String,
        cancel: &CancellationToken,
        progress: &Arc<Progress>,
    ) -> impl Future<Output = Result<Job, Failure>> + Send + 'static {
        let (backend, cancel, progress) = (self.clone(), cancel.clone(), progress.clone());
        async move {
            let job = on!(&backend,
                m => m.poll_with(&policy_id, cancel, Some(progress)),
                c => c.poll(&policy_id, cancel));
            Ok(backend.job_view(&job))
        }
    }

    /// The tags of a local repository.
    pub async fn tags(&self, repo: String) -> Result<Vec<Tag>, Failure> {
        let repo = repository(&repo, "repository")?;
        if let Backend::Embedded(m) = self {
            let found = m.stores().repos.repository(&repo).await;
            if found.map_err(MirrorError::from)?.is_none() {
                let what = format!("repository {repo}");
                return Err(MirrorError::NotFound { what }.into());
            }
        }
        let tags = on!(self, m => m.tag_views(&repo), c => c.tags(&repo));
        Ok(tags.into_iter().map(Tag::from).collect())
    }

    /// A tag's earlier values, newest first.
    pub async fn tag_history(
        &self,
        repo: String,
        tag: String,
    ) -> Result<Vec<TagHistoryEntry>, Failure> {
        let repo = repository(&repo, "repository")?;
        let history = on!(self,
            m => m.tag_history(&repo, &tag),
            c => c.tag_history(&repo, &tag));
        Ok(history.into_iter().map(TagHistoryEntry::from).collect())
    }
}
