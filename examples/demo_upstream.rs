//! A throwaway upstream registry for trying regmirror by hand: Debian's
//! `docker-registry` on `127.0.0.1:5001` (or the port given), holding
//! `team/hello:1.0` and `team/hello:1.1` (small generated images), until
//! Ctrl-C. Needs `docker-registry` (`apt-get install docker-registry`, or
//! run `./scripts/test` once).
//!
//! ```text
//! cargo run --example demo_upstream            # 127.0.0.1:5001
//! cargo run --example demo_upstream -- 5002
//! ```
//!
//! Then follow the README's walkthrough with `http://127.0.0.1:5001` as the
//! remote host. Push another tag meanwhile to see a poll pick it up:
//! `skopeo copy --src-tls-verify=false --dest-tls-verify=false
//! docker://127.0.0.1:5001/team/hello:1.0 docker://127.0.0.1:5001/team/hello:2.0`.

#[path = "../tests/support/mod.rs"]
mod support;

use support::{ImageSpec, Registry};

#[tokio::main]
async fn main() {
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p.parse().unwrap_or_else(|_| {
            eprintln!("usage: demo_upstream [PORT]   ({p:?} is not a port)");
            std::process::exit(2)
        }),
        None => 5001,
    };
    let registry = Registry::builder().port(port).start().await;
    let pusher = registry.pusher();
    for tag in ["1.0", "1.1"] {
        let image = pusher
            .push_image("team/hello", tag, ImageSpec::small(&format!("hello {tag}")))
            .await;
        println!("pushed team/hello:{tag} ({})", image.digest);
    }
    println!(
        "upstream registry at {} (storage {}); Ctrl-C stops it",
        registry.url(),
        registry.storage_dir().display()
    );
    tokio::signal::ctrl_c().await.expect("waiting for Ctrl-C");
    drop(registry);
}
