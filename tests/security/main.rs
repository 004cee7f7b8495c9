//! Bad input and access: what a hostile or careless client can try against
//! `mirror-server` and mirror-core, and what must hold.
//!
//! - `ssrf`: remote hosts outside the allow-list, private addresses (as
//!   literals, behind names, behind redirects, token realms and tag-page
//!   links) are refused before any connection; polls too.
//! - `logins`: failed logins are limited per user and address (429 with
//!   `Retry-After`), others are unaffected, correct logins are not slowed.
//! - `revocation`: deactivated or deleted tokens, changed passwords and
//!   deactivated accounts stop working on the next request, despite the
//!   server's 60 s verification cache.
//! - `names`: a repository that exists but is not granted answers exactly
//!   like a missing one on every route that names a repository; listings
//!   never show it.
//! - `bad_input`: every `/api/v0` route and `/v2` endpoint form gets
//!   malformed and hostile input and answers a 4xx with a JSON message,
//!   never a 5xx; the server keeps answering.
//! - `login_race`: 200 concurrent guesses get at most the limit's 10
//!   password checks; unknown users cost a check like known ones.
//! - `upload_fairness`: one account cannot hold every push slot.
//! - `cross_site`: a page of another site cannot make a browser change
//!   anything (JSON only, foreign `Origin` refused, no `/api/v0` challenge).
//! - `slow_clients`: connections trickling or idling are closed after the
//!   header-read timeout.
//! - `token_rules`: a token cannot mint tokens or change the password, and
//!   only an administrator re-enables what an administrator revoked.
//!
//! Secrets in logs, responses and the databases are checked against the
//! real binary in `mirror-server/tests/secrets.rs`.

#[path = "../support/mod.rs"]
mod support;

#[allow(dead_code)]
#[path = "../server_e2e/server.rs"]
mod server;

mod bad_input;
mod cross_site;
mod hostile_remote;
mod isolation;
mod login_race;
mod logins;
mod matrix;
mod names;
mod revocation;
mod slow_clients;
mod ssrf;
mod token_rules;
mod upload_fairness;
