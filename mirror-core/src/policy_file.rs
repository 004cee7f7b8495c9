//! Policies as code: a YAML or TOML file of local repositories and their
//! poll mirroring policies, and the [`Plan`] that makes an engine match it
//! (create, update and, with `prune`, delete policies), shown before it is
//! applied, as `terraform plan` does.
//!
//! ```yaml
//! repositories:
//!   - name: acme/nginx
//!     visibility: private            # optional; used when it is created
//!     policies:
//!       - remoteHost: https://registry-1.docker.io
//!         remoteRepository: library/nginx
//!         username: bot
//!         passwordEnv: NGINX_PULL_TOKEN  # the secret, from the environment
//!         rules: [{field: tag, operator: sw, values: ["1."]}]
//! ```
//!
//! Each policy entry is a [`PolicyForm`] (every field it has, by its wire
//! name; new fields work here without being listed again) plus
//! `passwordEnv` and `authTokenEnv`, which name environment variables.
//! Secrets are never written in the file: `password` and `authToken` are
//! refused. Unlike the DTR API, an unknown key is an error (a typo must not
//! be ignored), and every error names the file, the entry
//! (`repositories[0].policies[1].remoteHost`) and the reason.
//!
//! The file is the whole truth about the policies it lists: a field it
//! leaves out takes the value a new policy would get (no `rules`: every
//! tag; no `passwordEnv`: no password). A policy is matched to a stored one
//! of the same local repository by its normalized `remoteHost` and
//! `remoteRepository`; `initialEvaluation` only matters when a policy is
//! created (given as `true` explicitly, an enabled new policy is evaluated
//! at once, as the API's "Save & Apply"). Stored secrets are compared
//! inside the engine, so re-sending the same password is no change.
//!
//! Repositories the file does not name are left alone. `prune` deletes the
//! policies of the named repositories that the file does not list; it
//! never deletes a repository or an image (mirrored tags stay, as when a
//! policy is deleted through the API). A repository's `visibility` is set
//! when the file creates it; a differing one is only reported.
//!
//! Applying goes through [`Mirror`]'s own operations (`add_policy`,
//! `update_policy`, `delete_policy`, `submit_poll`), so validation,
//! connection checks, baselines and scheduling are the API's. The policies
//! it saves have no owner (the operator's file, not an account). Nothing of
//! a bad file is applied: every entry is checked, and every remote a
//! change reaches is connected to, before the first change is saved.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::PolicyView;
use crate::error::ErrorKind;
use crate::mirror::{Mirror, MirrorError};
use crate::policy::{PolicyForm, PollMirroringPolicy, RemoteEndpoint};
use crate::reference::RepositoryName;
use crate::rules::TagRule;
use crate::secret::Secret;
use crate::store::{NewRepository, Visibility};

/// The keys of a repository entry.
const REPOSITORY_KEYS: [&str; 3] = ["name", "visibility", "policies"];
/// The keys of a policy entry besides [`PolicyForm`]'s: each names the
/// environment variable that holds the secret field it replaces.
const SECRET_KEYS: [(&str, &str); 2] = [("passwordEnv", "password"), ("authTokenEnv", "authToken")];
/// Form fields an update never changes: the repository is the entry's,
/// and the evaluation mode is chosen when a policy is created.
const CREATION_ONLY: [&str; 2] = ["initialEvaluation", "localRepository"];

/// A policies file that could not be read, or a plan that could not be
/// made or applied. Its `Display` names the file, the entry and the
/// reason.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.message())]
pub struct PolicyFileError {
    /// The file, as it was given.
    pub path: String,
    /// Where in the file: `repositories[0].policies[1].remoteHost`; for a
    /// YAML or TOML syntax error, `None` (the reason gives line and column).
    pub location: Option<String>,
    /// What is wrong.
    pub reason: String,
    /// The sort of failure: `Invalid` for the file itself; a failed
    /// change has its engine error's kind.
    pub kind: ErrorKind,
    /// The engine's error, when a change failed.
    #[source]
    pub source: Option<Box<MirrorError>>,
}

impl PolicyFileError {
    fn invalid(path: &str, location: impl Into<String>, reason: impl Into<String>) -> Self {
        PolicyFileError {
            path: path.to_string(),
            location: Some(location.into()),
            reason: reason.into(),
            kind: ErrorKind::Invalid,
            source: None,
        }
    }

    fn message(&self) -> String {
        match &self.location {
            Some(at) => format!("{}: {at}: {}", self.path, self.reason),
            None => format!("{}: {}", self.path, self.reason),
        }
    }
}

/// One local repository of a policies file.
#[derive(Debug, Clone)]
pub struct RepositoryEntry {
    /// The local repository.
    pub name: RepositoryName,
    /// Its visibility when the file creates it (default private).
    pub visibility: Option<Visibility>,
    /// Its policies.
    pub policies: Vec<PolicyEntry>,
    /// `repositories[i]`.
    pub location: String,
}

/// One policy of a policies file: its form, secrets read from the
/// environment, checked.
#[derive(Debug, Clone)]
pub struct PolicyEntry {
    /// The form, with the secrets the `*Env` keys name.
    pub form: PolicyForm,
    /// Its remote, normalized (the key a stored policy is matched by).
    pub endpoint: RemoteEndpoint,
    /// `repositories[i].policies[j]`.
    pub location: String,
}

/// A parsed and checked policies file.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    /// The file, as it was given (for messages).
    pub path: String,
    /// Its repositories, in the file's order.
    pub repositories: Vec<RepositoryEntry>,
}

/// The syntax of a policies file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.yaml`, `.yml`.
    Yaml,
    /// `.toml`.
    Toml,
}

impl Format {
    /// The format a file name's extension says.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

impl PolicyFile {
    /// Reads and checks the file at `path` (YAML or TOML by its
    /// extension), its secrets from this process's environment.
    pub fn read(path: &Path) -> Result<PolicyFile, PolicyFileError> {
        PolicyFile::read_with_env(path, |name| std::env::var(name).ok())
    }

    /// [`PolicyFile::read`] with the environment variables from `env`.
    pub fn read_with_env(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<PolicyFile, PolicyFileError> {
        let shown = path.display().to_string();
        let whole = |reason: String| PolicyFileError {
            path: shown.clone(),
            location: None,
            reason,
            kind: ErrorKind::Invalid,
            source: None,
        };
        let format = Format::of(path).ok_or_else(|| {
            whole("unknown file type; name it *.yaml, *.yml or *.toml".to_string())
        })?;
        let text = std::fs::read_to_string(path).map_err(|e| {
            let mut err = whole(format!("cannot read the file: {e}"));
            if e.kind() == std::io::ErrorKind::NotFound {
                err.kind = ErrorKind::NotFound;
            }
            err
        })?;
        PolicyFile::parse(&shown, &text, format, env)
    }

    /// Parses and checks `text` (the file `path`, for messages).
    pub fn parse(
        path: &str,
        text: &str,
        format: Format,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<PolicyFile, PolicyFileError> {
        let syntax = |reason: String| PolicyFileError {
            path: path.to_string(),
            location: None,
            reason,
            kind: ErrorKind::Invalid,
            source: None,
        };
        let value: Value = match format {
            Format::Yaml => {
                serde_yaml_ng::from_str(text).map_err(|e| syntax(format!("invalid YAML: {e}")))?
            }
            Format::Toml => {
                toml::from_str(text).map_err(|e| syntax(format!("invalid TOML: {e}")))?
            }
        };
        Reader { path, env: &env }.file(value)
    }

    /// What it takes to make `mirror` match this file: nothing is changed.
    /// With `prune`, the policies of the file's repositories that it does
    /// not list are deleted.
    pub async fn plan(&self, mirror: &Mirror, prune: bool) -> Result<Plan, PolicyFileError> {
        let failed = |location: &str, e: MirrorError| PolicyFileError {
            path: self.path.clone(),
            location: Some(location.to_string()),
            reason: e.to_string(),
            kind: e.kind(),
            source: Some(Box::new(e)),
        };
        let mut plan = Plan {
            actions: Vec::new(),
            unchanged: 0,
            kept: 0,
            notes: Vec::new(),
            prune,
        };
        for repo in &self.repositories {
            let at = &repo.location;
            let stored = mirror.stores().repos.repository(&repo.name).await;
            match stored.map_err(|e| failed(at, e.into()))? {
                None => plan.actions.push(Action::CreateRepository {
                    repository: repo.name.to_string(),
                    visibility: repo.visibility.unwrap_or(Visibility::Private),
                }),
                Some(r) => {
                    if let Some(wanted) = repo.visibility
                        && wanted != r.visibility
                    {
                        plan.notes.push(format!(
                            "{} is {}, the file says {} (visibility is only set when a repository is created)",
                            r.name,
                            r.visibility.as_str(),
                            wanted.as_str()
                        ));
                    }
                }
            }
            let mut existing = mirror
                .policies(Some(&repo.name))
                .await
                .map_err(|e| failed(at, e))?;
            existing.sort_by_key(|p| p.created_at);
            let mut matched = HashSet::new();
            for entry in &repo.policies {
                let found = existing.iter().find(|p| {
                    !matched.contains(&p.id)
                        && p.remote.host == entry.endpoint.host
                        && p.remote.repository == entry.endpoint.repository
                });
                match found {
                    None => plan.actions.push(Action::CreatePolicy {
                        repository: repo.name.to_string(),
                        remote: remote_name(&entry.endpoint),
                        location: entry.location.clone(),
                        evaluate_now: entry.form.initial_evaluation == Some(true)
                            && entry.form.is_enabled(),
                        form: Box::new(entry.form.clone()),
                    }),
                    Some(current) => {
                        matched.insert(current.id.clone());
                        match update_of(&repo.name, entry, current)
                            .map_err(|e| failed(&entry.location, e))?
                        {
                            None => plan.unchanged += 1,
                            Some(action) => plan.actions.push(action),
                        }
                    }
                }
            }
            for p in existing.iter().filter(|p| !matched.contains(&p.id)) {
                if prune {
                    plan.actions.push(Action::DeletePolicy {
                        repository: repo.name.to_string(),
                        remote: remote_name(&p.remote),
                        policy_id: p.id.clone(),
                    });
                } else {
                    plan.kept += 1;
                }
            }
        }
        Ok(plan)
    }
}

/// `host/repository`.
fn remote_name(e: &RemoteEndpoint) -> String {
    format!("{}/{}", e.host, e.repository)
}

/// A policy's settable fields as the API shows them (no secrets).
fn shown_fields(p: &PollMirroringPolicy) -> Map<String, Value> {
    match serde_json::to_value(PolicyView::from(p).form) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// The update that makes `current` what `entry` says, if it differs: a
/// form of the fields that change only (so the connection is checked only
/// when the remote changes, as for an API update).
fn update_of(
    local: &RepositoryName,
    entry: &PolicyEntry,
    current: &PollMirroringPolicy,
) -> Result<Option<Action>, MirrorError> {
    // What a new policy from this entry would be: the file's fields, the
    // defaults for the rest.
    let desired =
        PollMirroringPolicy::new(local.clone(), entry.endpoint.clone(), &entry.form, None)?;
    let mut whole = PolicyView::from(&desired).form;
    whole.password = Some(entry.form.password.clone().unwrap_or_default());
    whole.auth_token = Some(entry.form.auth_token.clone().unwrap_or_default());
    // CREATION_ONLY: never sent in an update.
    whole.initial_evaluation = None;
    whole.local_repository = None;
    let next = whole.apply(current, None)?;
    let (before, after) = (shown_fields(current), shown_fields(&next));
    let mut changes: Vec<String> = PolicyForm::field_names()
        .iter()
        .filter(|k| !CREATION_ONLY.contains(k))
        .filter(|k| before.get(**k) != after.get(**k))
        .map(|k| k.to_string())
        .collect();
    let secrets_change = [
        ("password", current.remote.password != next.remote.password),
        (
            "authToken",
            current.remote.auth_token != next.remote.auth_token,
        ),
    ];
    for (field, changed) in secrets_change {
        if changed {
            changes.push(field.to_string());
        }
    }
    if changes.is_empty() {
        return Ok(None);
    }
    // The changed fields of the whole form; the secrets too whenever the
    // remote changes (a new host or user would drop the stored ones).
    let mut sent = serde_json::to_value(&whole)
        .ok()
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    sent.retain(|k, _| changes.contains(k));
    let mut form: PolicyForm =
        serde_json::from_value(Value::Object(sent)).map_err(|e| MirrorError::Conflict {
            reason: format!("cannot build the update: {e}"),
        })?;
    if form.changes_remote() {
        form.password = whole.password.clone();
        form.auth_token = whole.auth_token.clone();
    }
    Ok(Some(Action::UpdatePolicy {
        repository: local.to_string(),
        remote: remote_name(&current.remote),
        policy_id: current.id.clone(),
        changes,
        location: entry.location.clone(),
        endpoint: Box::new(next.remote.clone()),
        form: Box::new(form),
    }))
}

/// What applying a file does, in order. Serializes as JSON (`action`:
/// `createRepository`, `createPolicy`, `updatePolicy`, `deletePolicy`),
/// never with a secret.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The changes, in the order they are applied.
    pub actions: Vec<Action>,
    /// Policies of the file that already match.
    pub unchanged: usize,
    /// Policies of the file's repositories that the file does not list,
    /// kept because `prune` is off.
    pub kept: usize,
    /// What the plan does not change but should be known (a repository
    /// whose visibility differs from the file's).
    pub notes: Vec<String>,
    /// Whether unlisted policies are deleted.
    pub prune: bool,
}

/// One change of a [`Plan`].
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// A local repository the file names and the engine lacks.
    #[serde(rename_all = "camelCase")]
    CreateRepository {
        /// `namespace/name`.
        repository: String,
        /// Its visibility.
        visibility: Visibility,
    },
    /// A policy the file lists and the repository lacks.
    #[serde(rename_all = "camelCase")]
    CreatePolicy {
        /// The local repository.
        repository: String,
        /// `host/repository` of the remote.
        remote: String,
        /// The entry, `repositories[i].policies[j]`.
        location: String,
        /// Whether it is evaluated at once ("Save & Apply").
        evaluate_now: bool,
        /// The form saved (holds the secrets: never serialized).
        #[serde(skip)]
        form: Box<PolicyForm>,
    },
    /// A stored policy that differs from its entry.
    #[serde(rename_all = "camelCase")]
    UpdatePolicy {
        /// The local repository.
        repository: String,
        /// `host/repository` of the remote.
        remote: String,
        /// The stored policy.
        policy_id: String,
        /// The fields that change, by wire name (`password` and
        /// `authToken` without their values).
        changes: Vec<String>,
        /// The entry, `repositories[i].policies[j]`.
        location: String,
        /// The remote after the update (never serialized).
        #[serde(skip)]
        endpoint: Box<RemoteEndpoint>,
        /// The fields sent (never serialized).
        #[serde(skip)]
        form: Box<PolicyForm>,
    },
    /// A stored policy the file does not list (`prune` only).
    #[serde(rename_all = "camelCase")]
    DeletePolicy {
        /// The local repository.
        repository: String,
        /// `host/repository` of the remote.
        remote: String,
        /// The stored policy.
        policy_id: String,
    },
}

impl Action {
    /// `+`, `~` or `-`.
    fn sign(&self) -> char {
        match self {
            Action::CreateRepository { .. } | Action::CreatePolicy { .. } => '+',
            Action::UpdatePolicy { .. } => '~',
            Action::DeletePolicy { .. } => '-',
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateRepository {
                repository,
                visibility,
            } => write!(
                f,
                "+ create repository {repository} ({})",
                visibility.as_str()
            ),
            Action::CreatePolicy {
                repository,
                remote,
                evaluate_now,
                ..
            } => {
                write!(f, "+ create policy {repository} <- {remote}")?;
                if *evaluate_now {
                    f.write_str(" (evaluated now)")?;
                }
                Ok(())
            }
            Action::UpdatePolicy {
                repository,
                remote,
                policy_id,
                changes,
                ..
            } => {
                let shown: Vec<String> = changes
                    .iter()
                    .map(|c| {
                        if SECRET_KEYS.iter().any(|(_, s)| s == c) {
                            format!("{c} (secret)")
                        } else {
                            c.clone()
                        }
                    })
                    .collect();
                write!(
                    f,
                    "~ update policy {repository} <- {remote} ({policy_id}): {}",
                    shown.join(", ")
                )
            }
            Action::DeletePolicy {
                repository,
                remote,
                policy_id,
            } => write!(f, "- delete policy {repository} <- {remote} ({policy_id})"),
        }
    }
}

impl Plan {
    /// How many actions have each sign: (create, change, delete).
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |sign| self.actions.iter().filter(|a| a.sign() == sign).count();
        (n('+'), n('~'), n('-'))
    }

    /// Whether applying it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Applies the plan through `mirror` (the API's operations): first
    /// every remote a change reaches is connected to (nothing is saved if
    /// one fails), then the changes in order. A change that fails stops
    /// the rest; the error says how many were applied.
    pub async fn apply(&self, mirror: &Mirror, path: &str) -> Result<Applied, PolicyFileError> {
        let total = self.actions.len();
        let failed = |location: &str, done: usize, e: MirrorError| PolicyFileError {
            path: path.to_string(),
            location: Some(location.to_string()),
            reason: format!("{e} ({done} of {total} changes applied)"),
            kind: e.kind(),
            source: Some(Box::new(e)),
        };
        for action in &self.actions {
            let (location, endpoint) = match action {
                Action::CreatePolicy { location, form, .. } => match form.endpoint() {
                    Ok(e) => (location, e),
                    Err(e) => return Err(failed(location, 0, e.into())),
                },
                Action::UpdatePolicy {
                    location,
                    endpoint,
                    form,
                    ..
                } if form.changes_remote() => (location, (**endpoint).clone()),
                _ => continue,
            };
            if let Err(e) = mirror.check_connection(&endpoint).await {
                return Err(failed(location, 0, e));
            }
        }
        let mut applied = Applied::default();
        for (done, action) in self.actions.iter().enumerate() {
            match action {
                Action::CreateRepository {
                    repository,
                    visibility,
                } => {
                    let name = RepositoryName::parse(repository)
                        .map_err(|e| failed(repository, done, e.into()))?;
                    let created = mirror
                        .create_repository(NewRepository {
                            name,
                            visibility: *visibility,
                            short_description: String::new(),
                        })
                        .await;
                    // Created meanwhile by someone else: as good.
                    match created {
                        Ok(_)
                        | Err(MirrorError::Store(crate::store::StoreError::Conflict { .. })) => {}
                        Err(e) => return Err(failed(repository, done, e)),
                    }
                }
                Action::CreatePolicy {
                    repository,
                    location,
                    evaluate_now,
                    form,
                    ..
                } => {
                    let name = RepositoryName::parse(repository)
                        .map_err(|e| failed(location, done, e.into()))?;
                    let policy = mirror
                        .add_policy(&name, form, None)
                        .await
                        .map_err(|e| failed(location, done, e))?;
                    if *evaluate_now {
                        // As the API: the policy is saved, so a failure
                        // here is only logged (the next poll applies it).
                        match mirror.submit_poll(&policy.id).await {
                            Ok(job) => applied.jobs.push(job.id),
                            Err(e) => tracing::error!(
                                policy = %policy.id,
                                "cannot submit the initial evaluation: {e}"
                            ),
                        }
                    }
                    applied.created.push(policy);
                }
                Action::UpdatePolicy {
                    policy_id,
                    location,
                    form,
                    ..
                } => {
                    let policy = mirror
                        .update_policy(policy_id, form, None)
                        .await
                        .map_err(|e| failed(location, done, e))?;
                    applied.updated.push(policy);
                }
                Action::DeletePolicy { policy_id, .. } => {
                    mirror
                        .delete_policy(policy_id)
                        .await
                        .map_err(|e| failed(policy_id, done, e))?;
                    applied.deleted.push(policy_id.clone());
                }
            }
            tracing::info!(file = %path, "applied: {action}");
        }
        Ok(applied)
    }
}

/// What [`Plan::apply`] did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The policies created.
    pub created: Vec<PollMirroringPolicy>,
    /// The policies updated, as they are now.
    pub updated: Vec<PollMirroringPolicy>,
    /// The IDs of the policies deleted.
    pub deleted: Vec<String>,
    /// The `poll_mirror` jobs submitted for new policies evaluated now.
    pub jobs: Vec<String>,
}

impl fmt::Display for Plan {
    /// The plan as `terraform plan` shows one: a line per change, notes,
    /// and a summary (`No changes.` when there is nothing to do).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for action in &self.actions {
            writeln!(f, "{action}")?;
        }
        for note in &self.notes {
            writeln!(f, "! {note}")?;
        }
        if self.kept > 0 {
            writeln!(
                f,
                "  policies not in the file, kept (prune deletes them): {}",
                self.kept
            )?;
        }
        if self.is_empty() {
            write!(
                f,
                "No changes: the policies match the file ({} unchanged).",
                self.unchanged
            )
        } else {
            let (create, change, delete) = self.counts();
            write!(
                f,
                "Plan: {create} to create, {change} to change, {delete} to delete; {} unchanged.",
                self.unchanged
            )
        }
    }
}

/// Options of [`apply_file`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Delete the policies of the file's repositories it does not list.
    pub prune: bool,
    /// Only make the plan.
    pub dry_run: bool,
}

/// Reads the file at `path`, plans, and (unless `dry_run`) applies the
/// plan; the plan.
pub async fn apply_file(
    mirror: &Mirror,
    path: &Path,
    options: ApplyOptions,
) -> Result<Plan, PolicyFileError> {
    let file = PolicyFile::read(path)?;
    let plan = file.plan(mirror, options.prune).await?;
    if !options.dry_run {
        plan.apply(mirror, &file.path).await?;
    }
    Ok(plan)
}

/// Walks the parsed file, checking every key and value.
struct Reader<'a, E> {
    path: &'a str,
    env: &'a E,
}

impl<E: Fn(&str) -> Option<String>> Reader<'_, E> {
    fn err(&self, at: &str, reason: impl Into<String>) -> PolicyFileError {
        PolicyFileError::invalid(self.path, at, reason)
    }

    /// `value` as a map whose keys are all in `allowed`.
    fn object(
        &self,
        value: Value,
        at: &str,
        allowed: &[&str],
    ) -> Result<Map<String, Value>, PolicyFileError> {
        let Value::Object(map) = value else {
            return Err(self.err(at, format!("expected a map, found {}", kind_of(&value))));
        };
        if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(self.err(
                &format!("{at}.{key}"),
                format!("unknown key; expected one of {}", allowed.join(", ")),
            ));
        }
        Ok(map)
    }

    fn file(&self, value: Value) -> Result<PolicyFile, PolicyFileError> {
        let value = match value {
            // An empty YAML document.
            Value::Null => Value::Object(Map::new()),
            v => v,
        };
        let Value::Object(mut top) = value else {
            return Err(self.err(
                "(top)",
                format!(
                    "expected a map with `repositories`, found {}",
                    kind_of(&value)
                ),
            ));
        };
        if let Some(key) = top.keys().find(|k| k.as_str() != "repositories") {
            return Err(self.err(key, "unknown key; expected `repositories`"));
        }
        let repos = match top.remove("repositories") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(self.err(
                    "repositories",
                    format!("expected a list, found {}", kind_of(&other)),
                ));
            }
        };
        let mut repositories: Vec<RepositoryEntry> = Vec::new();
        for (i, value) in repos.into_iter().enumerate() {
            let repo = self.repository(value, &format!("repositories[{i}]"))?;
            if let Some(first) = repositories.iter().find(|r| r.name == repo.name) {
                return Err(self.err(
                    &format!("{}.name", repo.location),
                    format!(
                        "{} is listed twice (also {}); list its policies under one entry",
                        repo.name, first.location
                    ),
                ));
            }
            repositories.push(repo);
        }
        Ok(PolicyFile {
            path: self.path.to_string(),
            repositories,
        })
    }

    fn repository(&self, value: Value, at: &str) -> Result<RepositoryEntry, PolicyFileError> {
        let mut map = self.object(value, at, &REPOSITORY_KEYS)?;
        let name = match map.remove("name") {
            Some(Value::String(s)) => RepositoryName::parse(&s)
                .map_err(|e| self.err(&format!("{at}.name"), e.reason.to_string()))?,
            Some(other) => {
                return Err(self.err(
                    &format!("{at}.name"),
                    format!(
                        "expected a string such as acme/nginx, found {}",
                        kind_of(&other)
                    ),
                ));
            }
            None => return Err(self.err(&format!("{at}.name"), "is required")),
        };
        let visibility = match map.remove("visibility") {
            None | Some(Value::Null) => None,
            Some(v) => Some(serde_json::from_value::<Visibility>(v).map_err(|_| {
                self.err(
                    &format!("{at}.visibility"),
                    "expected \"public\" or \"private\"",
                )
            })?),
        };
        let list = match map.remove("policies") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(self.err(
                    &format!("{at}.policies"),
                    format!("expected a list, found {}", kind_of(&other)),
                ));
            }
        };
        let mut policies: Vec<PolicyEntry> = Vec::new();
        for (j, value) in list.into_iter().enumerate() {
            let entry = self.policy(value, &format!("{at}.policies[{j}]"), &name)?;
            if let Some(first) = policies.iter().find(|p| {
                p.endpoint.host == entry.endpoint.host
                    && p.endpoint.repository == entry.endpoint.repository
            }) {
                return Err(self.err(
                    &entry.location,
                    format!(
                        "{} is listed twice for {name} (also {})",
                        remote_name(&entry.endpoint),
                        first.location
                    ),
                ));
            }
            policies.push(entry);
        }
        Ok(RepositoryEntry {
            name,
            visibility,
            policies,
            location: at.to_string(),
        })
    }

    fn policy(
        &self,
        value: Value,
        at: &str,
        local: &RepositoryName,
    ) -> Result<PolicyEntry, PolicyFileError> {
        let mut allowed: Vec<&str> = PolicyForm::field_names().to_vec();
        allowed.extend(SECRET_KEYS.iter().map(|(k, _)| *k));
        let mut map = self.object(value, at, &allowed)?;
        for (env_key, field) in SECRET_KEYS {
            if map.contains_key(field) {
                return Err(self.err(
                    &format!("{at}.{field}"),
                    format!(
                        "secrets are not written in the file; name the environment variable that holds it with {env_key}"
                    ),
                ));
            }
        }
        let mut secrets: BTreeMap<&str, Secret> = BTreeMap::new();
        for (env_key, field) in SECRET_KEYS {
            let Some(v) = map.remove(env_key) else {
                continue;
            };
            let here = format!("{at}.{env_key}");
            let Value::String(var) = v else {
                return Err(self.err(
                    &here,
                    format!(
                        "expected the name of an environment variable, found {}",
                        kind_of(&v)
                    ),
                ));
            };
            match (self.env)(&var) {
                None => {
                    return Err(self.err(&here, format!("environment variable {var} is not set")));
                }
                Some(s) if s.is_empty() => {
                    return Err(self.err(&here, format!("environment variable {var} is empty")));
                }
                Some(s) => {
                    secrets.insert(field, Secret::new(s));
                }
            }
        }
        if let Some(Value::Array(rules)) = map.get("rules") {
            let rule_keys = crate::serde_fields::struct_fields::<TagRule>();
            for (k, rule) in rules.iter().enumerate() {
                if let Value::Object(r) = rule
                    && let Some(key) = r.keys().find(|key| !rule_keys.contains(&key.as_str()))
                {
                    return Err(self.err(
                        &format!("{at}.rules[{k}].{key}"),
                        format!("unknown key; expected one of {}", rule_keys.join(", ")),
                    ));
                }
            }
        }
        match map.get("localRepository") {
            Some(Value::String(l)) if l == local.as_str() => {}
            None => {}
            Some(_) => {
                return Err(self.err(
                    &format!("{at}.localRepository"),
                    format!("differs from the repository the entry is in ({local}); leave it out"),
                ));
            }
        }
        let mut form: PolicyForm =
            serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
                let inner = e.path().to_string();
                let here = if inner == "." {
                    at.to_string()
                } else {
                    format!("{at}.{inner}")
                };
                self.err(&here, e.into_inner().to_string())
            })?;
        form.password = secrets.remove("password");
        form.auth_token = secrets.remove("authToken");
        let invalid = |e: crate::policy::InvalidPolicy| {
            let field = match e.field.as_str() {
                // A secret's problem is the `*Env` key's.
                "password" => "passwordEnv".to_string(),
                "authToken" => "authTokenEnv".to_string(),
                f => f.to_string(),
            };
            self.err(&format!("{at}.{field}"), e.reason)
        };
        let endpoint = form.endpoint().map_err(invalid)?;
        form.check_options().map_err(invalid)?;
        PollMirroringPolicy::new(local.clone(), endpoint.clone(), &form, None).map_err(invalid)?;
        Ok(PolicyEntry {
            form,
            endpoint,
            location: at.to_string(),
        })
    }
}

/// What sort of value `v` is, for messages.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn yaml(text: &str) -> Result<PolicyFile, PolicyFileError> {
        PolicyFile::parse("p.yaml", text, Format::Yaml, env)
    }

    /// Asserts that `text` is refused at `location` with a reason holding `words`.
    #[track_caller]
    fn check_error(text: &str, location: &str, words: &str) {
        let e = yaml(text).unwrap_err();
        assert_eq!(e.location.as_deref(), Some(location), "{e}");
        assert!(e.reason.contains(words), "{e}");
        assert!(e.to_string().starts_with("p.yaml: "), "{e}");
        assert_eq!(e.kind, ErrorKind::Invalid);
    }

    const GOOD: &str = r#"
repositories:
  - name: acme/nginx
    visibility: public
    policies:
      - remoteHost: https://registry-1.docker.io/
        remoteRepository: nginx
        username: bot
        passwordEnv: TOKEN
        rules: [{field: tag, operator: sw, values: ["1."]}]
        enabled: false
  - name: acme/empty
"#;

    #[test]
    fn yaml_and_toml_read_the_same() {
        let f = yaml(GOOD).unwrap();
        let toml_text = r#"
[[repositories]]
name = "acme/nginx"
visibility = "public"
[[repositories.policies]]
remoteHost = "https://registry-1.docker.io/"
remoteRepository = "nginx"
username = "bot"
passwordEnv = "TOKEN"
rules = [{field = "tag", operator = "sw", values = ["1."]}]
enabled = false
[[repositories]]
name = "acme/empty"
"#;
        let t = PolicyFile::parse("p.toml", toml_text, Format::Toml, env).unwrap();
        for file in [&f, &t] {
            assert_eq!(file.repositories.len(), 2);
            let r = &file.repositories[0];
            assert_eq!(r.name.as_str(), "acme/nginx");
            assert_eq!(r.visibility, Some(Visibility::Public));
            let p = &r.policies[0];
            assert_eq!(p.location, "repositories[0].policies[0]");
            assert_eq!(p.endpoint.host, "https://registry-1.docker.io");
            assert_eq!(p.endpoint.repository.as_str(), "library/nginx");
            assert_eq!(p.endpoint.password.expose(), "s3cret");
            assert_eq!(p.form.enabled, Some(false));
            assert_eq!(p.form.rules.as_ref().unwrap().len(), 1);
            assert!(file.repositories[1].policies.is_empty());
        }
        assert_eq!(Format::of(Path::new("a/b.YML")), Some(Format::Yaml));
        assert_eq!(Format::of(Path::new("b.json")), None);
    }

    #[test]
    fn bad_files_name_the_entry_and_field() {
        let policy = |extra: &str| {
            format!(
                "repositories:\n  - name: acme/a\n    policies:\n      - remoteHost: https://r.example.com\n        remoteRepository: a/b\n{extra}"
            )
        };
        let at = "repositories[0].policies[0]";
        for (extra, location, words) in [
            (
                "        remoteHots: x\n",
                format!("{at}.remoteHots"),
                "unknown key",
            ),
            (
                "        password: hunter2\n",
                format!("{at}.password"),
                "passwordEnv",
            ),
            (
                "        authToken: t\n",
                format!("{at}.authToken"),
                "authTokenEnv",
            ),
            (
                "        username: u\n        passwordEnv: NOPE\n",
                format!("{at}.passwordEnv"),
                "NOPE is not set",
            ),
            (
                "        username: u\n        passwordEnv: EMPTY\n",
                format!("{at}.passwordEnv"),
                "EMPTY is empty",
            ),
            (
                "        passwordEnv: TOKEN\n",
                format!("{at}.username"),
                "needs a username",
            ),
            (
                "        enabled: maybe\n",
                format!("{at}.enabled"),
                "boolean",
            ),
            (
                "        rules: [{operator: like}]\n",
                format!("{at}.rules[0].operator"),
                "like",
            ),
            (
                "        rules: [{operator: eq, value: [x]}]\n",
                format!("{at}.rules[0].value"),
                "unknown key",
            ),
            (
                "        rules: [{operator: semver, values: [soon]}]\n",
                format!("{at}.rules[0].values"),
                "soon",
            ),
            (
                "        localRepository: other/repo\n",
                format!("{at}.localRepository"),
                "differs",
            ),
        ] {
            check_error(&policy(extra), &location, words);
        }
        check_error(
            "repositories:\n  - name: acme/a\n    policies:\n      - remoteHost: r.example.com\n        remoteRepository: a/b\n",
            &format!("{at}.remoteHost"),
            "not a URL",
        );
        check_error(
            "repositories:\n  - name: acme/a\n    policies:\n      - remoteHost: https://r.example.com\n",
            &format!("{at}.remoteRepository"),
            "is required",
        );
        check_error("repositorys: []\n", "repositorys", "unknown key");
        check_error(
            "repositories:\n  - name: Acme/A\n",
            "repositories[0].name",
            "",
        );
        check_error(
            "repositories:\n  - nam: acme/a\n",
            "repositories[0].nam",
            "unknown key",
        );
        check_error(
            "repositories:\n  - name: acme/a\n    visibility: secret\n",
            "repositories[0].visibility",
            "public",
        );
        check_error(
            "repositories:\n  - name: acme/a\n  - name: acme/a\n",
            "repositories[1].name",
            "listed twice",
        );
        let twice = "repositories:\n  - name: acme/a\n    policies:\n      - {remoteHost: 'https://r.example.com', remoteRepository: a/b}\n      - {remoteHost: 'https://r.example.com/', remoteRepository: a/b}\n";
        check_error(twice, "repositories[0].policies[1]", "listed twice");
        // Syntax errors give the line.
        let e = yaml("repositories: [\n").unwrap_err();
        assert_eq!(e.location, None);
        assert!(e.reason.contains("line"), "{e}");
        // A secret never appears in an error.
        let e = yaml(&policy("        passwordEnv: TOKEN\n")).unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn an_empty_file_lists_nothing() {
        assert!(yaml("").unwrap().repositories.is_empty());
        assert!(yaml("repositories: []\n").unwrap().repositories.is_empty());
    }

    fn stored(form: &PolicyForm) -> PollMirroringPolicy {
        let local = RepositoryName::parse("acme/a").unwrap();
        PollMirroringPolicy::new(local, form.endpoint().unwrap(), form, None).unwrap()
    }

    fn entry(form: PolicyForm) -> PolicyEntry {
        PolicyEntry {
            endpoint: form.endpoint().unwrap(),
            form,
            location: "repositories[0].policies[0]".into(),
        }
    }

    /// The fields an entry changes on a stored policy (none: no update).
    fn changes(current: &PollMirroringPolicy, form: PolicyForm) -> Vec<String> {
        let local = RepositoryName::parse("acme/a").unwrap();
        match update_of(&local, &entry(form), current).unwrap() {
            None => Vec::new(),
            Some(Action::UpdatePolicy { changes, .. }) => changes,
            Some(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn updates_list_what_changes_and_compare_secrets() {
        let base = PolicyForm {
            username: Some("bot".into()),
            password: Some(Secret::new("pw")),
            rules: Some(vec![
                serde_json::from_value(serde_json::json!({"operator": "sw", "values": ["1."]}))
                    .unwrap(),
            ]),
            ..PolicyForm::new("https://r.example.com", "a/b")
        };
        let current = stored(&base);
        // The same, with the host spelled differently: no change.
        let same = PolicyForm {
            remote_host: Some("https://r.example.com/".into()),
            initial_evaluation: Some(false),
            ..base.clone()
        };
        assert!(changes(&current, same).is_empty());
        // The rules left out: back to every tag.
        let no_rules = PolicyForm {
            rules: None,
            ..base.clone()
        };
        assert_eq!(changes(&current, no_rules), ["rules"]);
        // Another password and a flag.
        let other = PolicyForm {
            password: Some(Secret::new("pw2")),
            enabled: Some(false),
            ..base.clone()
        };
        assert_eq!(changes(&current, other.clone()), ["enabled", "password"]);
        let local = RepositoryName::parse("acme/a").unwrap();
        let action = update_of(&local, &entry(other), &current).unwrap().unwrap();
        let shown = action.to_string();
        assert!(
            shown.starts_with("~ update policy acme/a <- https://r.example.com/a/b ("),
            "{shown}"
        );
        assert!(shown.ends_with("): enabled, password (secret)"), "{shown}");
        let json = serde_json::to_string(&action).unwrap();
        assert!(!json.contains("pw2"), "{json}");
        // Only the changed fields are sent.
        let Action::UpdatePolicy { form, .. } = action else {
            unreachable!()
        };
        assert_eq!(form.enabled, Some(false));
        assert_eq!(form.rules, None);
        // A new user re-sends the password (the stored one would be dropped).
        let user = PolicyForm {
            username: Some("bot2".into()),
            ..base.clone()
        };
        assert_eq!(changes(&current, user.clone()), ["username"]);
        let Some(Action::UpdatePolicy { form, .. }) =
            update_of(&local, &entry(user), &current).unwrap()
        else {
            unreachable!()
        };
        assert_eq!(form.password.unwrap().expose(), "pw");
        // No passwordEnv: the stored password goes.
        let anonymous = PolicyForm {
            username: Some("bot".into()),
            password: None,
            ..base
        };
        assert_eq!(changes(&current, anonymous), ["password"]);
    }

    #[test]
    fn a_plan_reads_like_terraform() {
        let plan = Plan {
            actions: vec![
                Action::CreateRepository {
                    repository: "acme/a".into(),
                    visibility: Visibility::Private,
                },
                Action::CreatePolicy {
                    repository: "acme/a".into(),
                    remote: "https://r.example.com/a/b".into(),
                    location: "repositories[0].policies[0]".into(),
                    evaluate_now: false,
                    form: Box::default(),
                },
                Action::DeletePolicy {
                    repository: "acme/a".into(),
                    remote: "https://r.example.com/a/c".into(),
                    policy_id: "p1".into(),
                },
            ],
            unchanged: 2,
            kept: 0,
            notes: Vec::new(),
            prune: true,
        };
        assert_eq!(
            plan.to_string(),
            "+ create repository acme/a (private)\n\
             + create policy acme/a <- https://r.example.com/a/b\n\
             - delete policy acme/a <- https://r.example.com/a/c (p1)\n\
             Plan: 2 to create, 0 to change, 1 to delete; 2 unchanged."
        );
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["actions"][1]["action"], "createPolicy");
        assert_eq!(json["actions"][2]["policyId"], "p1");
        let none = Plan {
            actions: Vec::new(),
            ..plan
        };
        assert_eq!(
            none.to_string(),
            "No changes: the policies match the file (2 unchanged)."
        );
    }
}
