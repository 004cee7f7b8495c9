//! `mirror-server apply` and `--policies` as an operator runs them: the
//! plan on stdout, an invalid file an error naming the entry and field
//! with exit status 1 and nothing changed, `--help` still listing the
//! serving flags. (Applying against a real upstream:
//! `tests/server_e2e/policies_as_code.rs`.)

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with `args`, `MIRROR_*` cleared and `env` set.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirror-server"));
    cmd.args(args).env("RUST_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("MIRROR_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run mirror-server")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const FILE: &str = "repositories:
  - name: acme/nginx
    policies:
      - remoteHost: https://registry.example.com
        remoteRepository: library/nginx
        username: bot
        passwordEnv: CLI_TEST_TOKEN
        rules: [{field: tag, operator: sw, values: [\"1.\"]}]
";

#[test]
fn apply_prints_the_plan_and_refuses_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let good = write("p.yaml", FILE);
    let token = [("CLI_TEST_TOKEN", "s3cret")];

    // A dry run prints the plan (settings flags before or after `apply`).
    for args in [
        vec!["apply", "--data-dir", data, &good, "--dry-run"],
        vec!["--data-dir", data, "apply", "--plan-only", &good],
    ] {
        let out = run(&args, &token);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            "+ create repository acme/nginx (private)\n\
             + create policy acme/nginx <- https://registry.example.com/library/nginx\n\
             Plan: 2 to create, 0 to change, 0 to delete; 0 unchanged.\n\
             Dry run: nothing was changed.\n"
        );
        assert!(!text(&out.stderr).contains("s3cret"));
    }

    // Bad files: exit 1, the entry and field named, nothing done (the
    // file is read before any store is opened or created).
    let untouched = dir.path().join("untouched");
    let untouched = untouched.to_str().unwrap();
    let typo = write("typo.yaml", &FILE.replace("rules:", "rulez:"));
    let literal = write(
        "literal.toml",
        "[[repositories]]\nname = \"acme/nginx\"\n[[repositories.policies]]\nremoteHost = \"https://r.example.com\"\nremoteRepository = \"a/b\"\nusername = \"bot\"\npassword = \"hunter2\"\n",
    );
    for (file, env, words) in [
        (
            &typo,
            &token[..],
            "repositories[0].policies[0].rulez: unknown key",
        ),
        (
            &good,
            &[][..],
            "repositories[0].policies[0].passwordEnv: environment variable CLI_TEST_TOKEN is not set",
        ),
        (
            &literal,
            &[][..],
            "repositories[0].policies[0].password: secrets are not written in the file",
        ),
    ] {
        let out = run(&["apply", "--data-dir", untouched, file], env);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(err.contains(&format!("{file}: {words}")), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert_eq!(text(&out.stdout), "");
    }
    assert!(!Path::new(untouched).exists());

    // `--policies` with a bad file stops the start.
    let out = run(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data,
            "--policies",
            &typo,
        ],
        &[("MIRROR_ADMIN_PASSWORD", "admin-pa55word")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot apply the policies file")
            && err.contains("repositories[0].policies[0].rulez: unknown key"),
        "{err}"
    );

    // Help: the command, and the serving flags still there.
    let help = text(&run(&["--help"], &[]).stdout);
    for words in [
        "apply",
        "--listen",
        "--data-dir",
        "--policies",
        "--database-url",
    ] {
        assert!(help.contains(words), "{words}: {help}");
    }
    let help = text(&run(&["apply", "--help"], &[]).stdout);
    for words in ["<FILE>", "--prune", "--dry-run", "--data-dir"] {
        assert!(help.contains(words), "{words}: {help}");
    }
}
