//! Policies as code on the server: `mirror-server apply FILE` and
//! `--policies FILE` at start. Both read the file, make the plan and apply
//! it with mirror-core's `policy_file` (the behaviour lives there); this
//! module only opens the stores a server would and prints.
//!
//! Applying against the stores, not through a running server's API, is
//! correct while servers run: replicas share the database, and a policy
//! saved there is seen (and its jobs claimed) by every server.

use std::io::Write;
use std::sync::Arc;

use mirror_core::Mirror;
use mirror_core::policy_file::{Plan, PolicyFile, PolicyFileError};

use crate::accounts::Accounts;
use crate::config::{ApplyArgs, Config};
use crate::open::{open_mirror, open_stores};
use crate::{ServerError, prepare_data_dir};

/// Why `mirror-server apply` failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The stores could not be opened.
    #[error(transparent)]
    Open(#[from] ServerError),
    /// The file is invalid, or a change failed.
    #[error(transparent)]
    File(#[from] PolicyFileError),
    /// The plan could not be printed.
    #[error("cannot print the plan: {0}")]
    Print(#[from] std::io::Error),
}

/// `mirror-server apply`: opens the stores `config` names, prints the plan
/// of `args.file` to `out`, and applies it unless `args.dry_run`. An
/// invalid file changes nothing.
pub async fn apply(
    config: &Config,
    args: &ApplyArgs,
    out: &mut (dyn Write + Send),
) -> Result<Plan, ApplyError> {
    apply_with_env(config, args, |name| std::env::var(name).ok(), out).await
}

/// [`apply`] with the environment variables the file names from `env`.
pub async fn apply_with_env(
    config: &Config,
    args: &ApplyArgs,
    env: impl Fn(&str) -> Option<String>,
    out: &mut (dyn Write + Send),
) -> Result<Plan, ApplyError> {
    // Read first: a bad file fails before any store is opened or created.
    let file = PolicyFile::read_with_env(&args.file, env)?;
    prepare_data_dir(&config.data_dir)?;
    let (server_stores, stores) = open_stores(config).await?;
    let accounts = Arc::new(Accounts::new(server_stores));
    // Offline: no webhook delivery runs in this process.
    let events = Arc::new(mirror_core::events::NoEvents);
    let mirror = open_mirror(config, stores, accounts, events)?;
    let plan = file.plan(&mirror, args.prune).await?;
    writeln!(out, "{plan}")?;
    if args.dry_run {
        writeln!(out, "Dry run: nothing was changed.")?;
    } else if !plan.is_empty() {
        let applied = plan.apply(&mirror, &file.path).await?;
        let (create, change, delete) = plan.counts();
        writeln!(
            out,
            "Applied: {create} created, {change} changed, {delete} deleted."
        )?;
        for job in &applied.jobs {
            writeln!(out, "Submitted poll_mirror job {job}.")?;
        }
    }
    Ok(plan)
}

/// `--policies`: applies `config.policies` to `mirror` at start, the plan
/// in the log; an error stops the start.
pub(crate) async fn apply_at_start(config: &Config, mirror: &Mirror) -> Result<(), ServerError> {
    let Some(path) = &config.policies else {
        return Ok(());
    };
    let file = PolicyFile::read(path)?;
    let plan = file.plan(mirror, config.prune_policies).await?;
    for line in plan.to_string().lines() {
        tracing::info!(file = %file.path, "policies: {line}");
    }
    plan.apply(mirror, &file.path).await?;
    Ok(())
}
