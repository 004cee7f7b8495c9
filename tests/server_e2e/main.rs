//! End-to-end tests of `mirror-server`: the server runs in-process on a
//! loopback port, Debian's `docker-registry` (started by `tests/support`)
//! is the upstream, and `skopeo` is the client that pulls from the mirror.
//!
//! - `mirror_flow`: repository + policy over HTTP, `poll_mirror`, then
//!   skopeo inspect/copy out of the mirror with digests checked against
//!   upstream; the `/v2` read API (HEAD, Range, tag paging, catalog).
//! - `authz`: who may do what (anonymous, reader, namespace owner, admin;
//!   access tokens).
//! - `bad_input`: malformed bodies, names, parameters → 4xx naming the field.
//! - `crons`: the default cron, a cron that fires, crons deleted and
//!   created across restarts; a waiting job canceled and deleted.
//! - `dtr_scripts`: public DTR/MSR automation scripts replayed unchanged
//!   (paging and counts, repository objects sent back, policy bodies with
//!   extra fields, `docs.json`, `/auth/token` and Bearer, one tag).
//! - `orgs`: organizations, members and teams through UCP's eNZi account
//!   API, DTR's team grants on a repository and a namespace, and what they
//!   let members do (skopeo push and pull, lists), in and out of an org.
//! - `push_mirroring`: push mirroring policies push tags to Debian's
//!   registry (Basic auth; Bearer over TLS), the chain upstream → (poll)
//!   regmirror → (push) registry B, digests equal end to end.
//! - `push`: skopeo pushes into the server and pulls back; chunked uploads,
//!   mounts, manifest checks, deletes, who may push, upload expiry.
//! - `observability`: `/metrics` after polls (bytes, 429s, last success),
//!   a job log followed while the job runs.
//! - `policies_as_code`: `mirror-server apply` of a YAML file (plan,
//!   create, update, prune, no changes, bad files change nothing) and
//!   `--policies` at start.
//! - `bandwidth`: a policy's and the server's bandwidth limits pace a
//!   poll's copy; the job log and `/metrics` show them.
//! - `bulk_digests`: a poll reads tag digests from a regmirror upstream's
//!   tag API (requests counted by a `FaultProxy`), `HEAD`s only the tags
//!   it copies, and a lying tag API is overruled by the `HEAD`.
//! - `rules`: tag rules choose what a poll copies; Connect previews them;
//!   bad rules name their field.
//! - `platforms_and_referrers`: a policy's platforms (a sparse index kept
//!   as is, or rewritten), cosign tag-scheme signatures (signed with
//!   openssl, verified against the mirror) and OCI referrers.
//! - `tag_history`: a tag moved upstream and polled again, deleted by
//!   deletion propagation or the API: its earlier digests with times, what
//!   replaced them, whether they still pull (until garbage collection);
//!   read access as the tag list.
//! - `rust_client`: `mirror_core::client::ApiClient` (feature `client`)
//!   creates a policy, polls, reads tags and maps error answers to kinds.
//! - `web_api`: what the web page reads: repositories with tag count,
//!   mirrored and access level; tags with platforms and image size; Save &
//!   Apply's job, followed by a repository admin with live progress; jobs
//!   filtered by status.
//! - `gc`: online garbage collection (`onlinegc` jobs): dry run, real run,
//!   bytes in the log and `/metrics`, remaining tags pull whole; a race of
//!   collections against pushes and polls; admins only; on an S3 bucket.
//! - `webhooks`: subscriptions, every event type delivered once to a
//!   receiver the test starts, signed; retries and the delivery log; a
//!   hanging receiver cut off; pending deliveries kept across a restart;
//!   who may subscribe; the remote-host guard; push mirroring's event.
//! - `replicas`: the server's stores on PostgreSQL (conformance,
//!   migrations), and two servers on one database and one bucket acting as
//!   one registry (accounts, policies, jobs, pushes, a cron fired once).

#[path = "../support/mod.rs"]
mod support;

mod authz;
mod bad_input;
mod bandwidth;
mod blob_store_s3;
mod bulk_digests;
mod conformance;
mod crons;
mod dtr_scripts;
mod gc;
mod lifecycle;
mod mirror_flow;
mod observability;
mod orgs;
mod platforms_and_referrers;
mod policies_as_code;
mod proxy_cache;
mod push;
mod push_mirroring;
mod replicas;
mod rules;
mod rust_client;
mod server;
mod tag_history;
mod web_api;
mod webhooks;
