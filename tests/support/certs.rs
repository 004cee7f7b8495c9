//! Key and certificate material, made with the `openssl` CLI.
//!
//! Generating keys costs a few hundred milliseconds, so it is done once per
//! test process and kept in memory as PEM text; each [`crate::support::Registry`]
//! writes the files it needs into its own tempdir. Shelling out to `openssl`
//! keeps the harness free of extra crypto crates.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;

/// PEM material shared by every registry started in this process.
pub struct Material {
    /// Self-signed test CA (EC P-256). Trust this to talk TLS to a registry.
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    /// Server certificate for `127.0.0.1` / `localhost`, signed by the CA.
    pub server_cert_pem: String,
    pub server_key_pem: String,
    /// Self-signed RSA certificate of the JWT signing key. It is both the
    /// registry's `rootcertbundle` and the single entry of the JWT `x5c`
    /// header: distribution accepts a leaf that is itself in the root pool.
    pub token_cert_pem: String,
    pub token_key_pem: String,
    /// Standard base64 of the token certificate's DER (the `x5c` entry).
    pub token_cert_der_b64: String,
}

/// The process-wide material, generated on first use.
pub fn material() -> &'static Material {
    static MATERIAL: OnceLock<Material> = OnceLock::new();
    MATERIAL.get_or_init(generate)
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (is it installed?): {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn generate() -> Material {
    let dir = tempfile::tempdir().expect("tempdir for key generation");
    let d = dir.path();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

    let mut ca = vec!["req", "-x509", "-nodes", "-days", "3650"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=regmirror test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(d, &ca);

    let mut csr = vec!["req", "-nodes"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(d, &csr);
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-out",
            "server.crt",
            "-extfile",
            "server.ext",
        ],
    );

    // RS256 because `openssl dgst -sha256 -sign` on an RSA key outputs the raw
    // PKCS#1 v1.5 signature, which is exactly the JWS signature (ES256 would
    // need DER -> r||s conversion).
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-nodes",
            "-days",
            "3650",
            "-newkey",
            "rsa:2048",
            "-keyout",
            "token.key",
            "-out",
            "token.crt",
            "-subj",
            "/CN=regmirror token signer",
        ],
    );

    let read = |name: &str| std::fs::read_to_string(d.join(name)).unwrap();
    let token_cert_pem = read("token.crt");
    Material {
        ca_cert_pem: read("ca.crt"),
        ca_key_pem: read("ca.key"),
        server_cert_pem: read("server.crt"),
        server_key_pem: read("server.key"),
        token_cert_der_b64: pem_body_b64(&token_cert_pem),
        token_cert_pem,
        token_key_pem: read("token.key"),
    }
}

/// The base64 body of the first PEM block, re-encoded canonically (PEM bodies
/// are standard base64 of the DER, just wrapped at 64 columns).
fn pem_body_b64(pem: &str) -> String {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .expect("PEM body is base64");
    base64::engine::general_purpose::STANDARD.encode(der)
}
