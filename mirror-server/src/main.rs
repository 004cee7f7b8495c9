//! `mirror-server`: parses settings, sets up logging and signals, and runs
//! the server (see the library crate for everything else).

use std::io::IsTerminal;

use clap::Parser;
use mirror_server::config::{Cli, Command, Config};
use mirror_server::{CancellationToken, run};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    return_large_blocks_to_the_os();
    // Logs go to stderr (colored only on a terminal); stdout carries only
    // the one-time admin password line (and `apply`'s plan).
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let mut cli = Cli::parse();
    let command = cli.command.take();
    let config = Config::resolve(cli, std::env::var("MIRROR_ADMIN_PASSWORD").ok())?;
    if let Some(Command::Apply(args)) = command {
        // The plan (and what was applied) on stdout; an error exits 1.
        mirror_server::apply::apply(&config, &args, &mut std::io::stdout()).await?;
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    run(config, listener, shutdown).await?;
    Ok(())
}

/// Blocks of 4 MiB and more come straight from the kernel and go back to it
/// when freed. glibc otherwise raises this threshold after the first such
/// free, and then keeps each password check's 19 MiB Argon2id block in its
/// heap for good: 30 MiB idle instead of 11 (measured with
/// `cargo bench -p mirror-server --bench server_rss`).
fn return_large_blocks_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator tunable; called once at
    // start, before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    }
}

/// Cancels `shutdown` on the first SIGTERM or SIGINT; exits at once on a
/// second one.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the server with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::warn!("second signal: exiting without waiting");
    std::process::exit(130);
}
