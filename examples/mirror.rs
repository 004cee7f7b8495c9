//! Mirror one remote repository into a local data directory and print what
//! was copied.
//!
//! ```text
//! cargo run --example mirror -- http://127.0.0.1:5001 team/app ./data
//! cargo run --example mirror -- https://index.docker.io library/alpine ./data \
//!     --local mirrors/alpine --username bot --password-env HUB_TOKEN
//! ```
//!
//! Options: `--local NAME` (local repository, default: the remote name),
//! `--username U` with `--password-env VAR` (the password is read from an
//! environment variable so it never shows in `ps`), `--ca FILE` (extra CA,
//! PEM), `--insecure` (skip TLS verification), `--future-only` (record the
//! current tags and mirror only tags pushed or moved later).

use anyhow::{Context, bail};
use mirror_core::{JobStatus, Mirror, PolicyForm, RepositoryName, Secret};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut form = PolicyForm::default();
    let mut local = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().with_context(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--local" => local = Some(value("--local")?),
            "--username" => form.username = Some(value("--username")?),
            "--password-env" => {
                let var = value("--password-env")?;
                form.password =
                    Some(Secret::new(std::env::var(&var).with_context(|| {
                        format!("environment variable {var} is not set")
                    })?));
            }
            "--ca" => {
                let file = value("--ca")?;
                form.remote_ca = Some(
                    std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?,
                );
            }
            "--insecure" => form.skip_tls_verification = Some(true),
            "--future-only" => form.initial_evaluation = Some(false),
            "-h" | "--help" => {
                println!(
                    "usage: mirror REGISTRY_URL REMOTE_REPOSITORY DATA_DIR [--local NAME] [--username U --password-env VAR] [--ca FILE] [--insecure] [--future-only]"
                );
                return Ok(());
            }
            s if s.starts_with("--") => bail!("unknown option {s}"),
            _ => positional.push(arg),
        }
    }
    let [registry, remote_repo, data_dir] = positional.as_slice() else {
        bail!("usage: mirror REGISTRY_URL REMOTE_REPOSITORY DATA_DIR [options]; see --help");
    };
    form.remote_host = Some(registry.clone());
    form.remote_repository = Some(remote_repo.clone());
    let local = RepositoryName::parse(local.as_deref().unwrap_or(remote_repo))?;

    let mirror = Mirror::open(data_dir.as_ref())?;
    mirror.recover().await?;
    // Reuse the policy of an earlier run of this command, if any.
    let endpoint = form.endpoint()?;
    let existing = mirror
        .policies(Some(&local))
        .await?
        .into_iter()
        .find(|p| p.remote.host == endpoint.host && p.remote.repository == endpoint.repository);
    let policy = match existing {
        // The same remote: the credentials and TLS settings of this run.
        Some(p) => {
            let update = PolicyForm {
                username: Some(endpoint.username),
                password: Some(endpoint.password),
                remote_ca: Some(endpoint.remote_ca),
                skip_tls_verification: Some(endpoint.skip_tls_verification),
                ..Default::default()
            };
            mirror.update_policy(&p.id, &update, None).await?
        }
        None => mirror.add_policy(&local, &form, None).await?,
    };
    let job = mirror.poll(&policy.id).await?;
    for line in mirror.job_logs(&job.id, 0, 0).await? {
        println!("{}", line.data);
    }
    println!();
    for tag in mirror.stores().repos.tags(&local).await? {
        println!(
            "{local}:{:<20} {} {:>10} bytes  {}",
            tag.name, tag.digest, tag.size, tag.media_type
        );
    }
    if job.status != JobStatus::Done {
        bail!("job {} ended {}", job.id, job.status);
    }
    Ok(())
}
