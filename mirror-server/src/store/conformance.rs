//! The checks every backend of the server's stores must pass, written once
//! and run on SQLite (unit tests) and PostgreSQL (`tests/server_e2e`).
//! Each panics with what differed. Give them an empty database.

use chrono::{DateTime, Duration, SubsecRound, Utc};

use super::{AccountChange, BearerRecord, ServerStores, TokenChange, TokenUpdate};
use crate::store::records::Cron;
use crate::store::records::{
    AccessLevel, Account, ApiToken, Credential, GrantTarget, OrgMember, Organization, Team,
    UploadRecord,
};

/// Every check below, in turn.
pub async fn all(s: &ServerStores) {
    accounts(s).await;
    tokens(s).await;
    bearers(s).await;
    grants(s).await;
    crons(s).await;
    uploads(s).await;
    orgs(s).await;
    meta(s).await;
    webhooks(s).await;
}

fn now() -> DateTime<Utc> {
    // Both backends keep milliseconds at least.
    Utc::now().trunc_subsecs(3)
}

fn account(name: &str) -> Account {
    Account {
        id: format!("id-{name}"),
        name: name.into(),
        full_name: format!("{name} full"),
        is_admin: false,
        is_active: true,
        created_at: now(),
    }
}

/// Inserts `name` (password hash `hash-<name>`) unless it exists.
async fn ensure(s: &ServerStores, name: &str) -> Account {
    let a = account(name);
    s.accounts
        .insert_account(&a, &format!("hash-{name}"))
        .await
        .unwrap();
    s.accounts.account(name).await.unwrap().unwrap()
}

fn token(user: &str, hashed: &str, created_at: DateTime<Utc>) -> ApiToken {
    ApiToken {
        hashed_token: hashed.into(),
        label: format!("label {hashed}"),
        is_active: true,
        username: user.into(),
        created_at,
        last_used: None,
    }
}

/// Accounts: insert once, read, list by name, password hashes, changes,
/// the one-round-trip login lookup.
pub async fn accounts(s: &ServerStores) {
    let bob = account("bob");
    assert!(s.accounts.insert_account(&bob, "hash-1").await.unwrap());
    assert!(
        !s.accounts
            .insert_account(&account("bob"), "other")
            .await
            .unwrap(),
        "a taken name"
    );
    assert_eq!(s.accounts.account("bob").await.unwrap(), Some(bob.clone()));
    assert_eq!(s.accounts.account("nobody").await.unwrap(), None);
    ensure(s, "amy").await;
    let names: Vec<String> = s
        .accounts
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["amy", "bob"]);
    assert_eq!(
        s.accounts.password_hash("bob").await.unwrap().as_deref(),
        Some("hash-1")
    );
    assert!(s.accounts.set_password_hash("bob", "hash-2").await.unwrap());
    assert!(!s.accounts.set_password_hash("nobody", "x").await.unwrap());
    let change = AccountChange {
        full_name: Some("Bob B".into()),
        is_active: Some(false),
        ..Default::default()
    };
    assert!(s.accounts.update_account("bob", &change).await.unwrap());
    assert!(!s.accounts.update_account("nobody", &change).await.unwrap());
    let changed = s.accounts.account("bob").await.unwrap().unwrap();
    assert_eq!(
        (
            changed.full_name.as_str(),
            changed.is_admin,
            changed.is_active
        ),
        ("Bob B", false, false)
    );
    // The login lookup: hash, and whether the secret is an active token.
    s.tokens
        .insert_token(&token("bob", "tok-bob", now()))
        .await
        .unwrap();
    let at = now();
    let (a, hash, is_token) = s.accounts.login("bob", "tok-bob").await.unwrap().unwrap();
    assert_eq!(
        (a.name.as_str(), hash.as_str(), is_token),
        ("bob", "hash-2", true)
    );
    let listed = s.tokens.tokens("bob").await.unwrap();
    assert_eq!(listed[0].last_used, None, "a lookup writes nothing");
    let earlier = at - Duration::seconds(30);
    let used = ["tok-bob", "tok-unknown"].map(|h| (h.to_string(), at));
    s.tokens.touch_tokens(&used).await.unwrap();
    s.tokens
        .touch_tokens(&[("tok-bob".to_string(), earlier)])
        .await
        .unwrap();
    let listed = s.tokens.tokens("bob").await.unwrap();
    assert_eq!(
        listed[0].last_used,
        Some(at),
        "marked used, never back in time"
    );
    let (_, _, is_token) = s.accounts.login("amy", "tok-bob").await.unwrap().unwrap();
    assert!(!is_token, "another user's token");
    assert!(s.accounts.login("nobody", "x").await.unwrap().is_none());
}

/// Access tokens: newest first, label and active changes, the
/// administrator's revocation mark, deletion.
pub async fn tokens(s: &ServerStores) {
    ensure(s, "tina").await;
    let t0 = now();
    s.tokens
        .insert_token(&token("tina", "t-old", t0))
        .await
        .unwrap();
    let newer = token("tina", "t-new", t0 + Duration::seconds(1));
    s.tokens.insert_token(&newer).await.unwrap();
    let listed = s.tokens.tokens("tina").await.unwrap();
    assert_eq!(listed, [newer, token("tina", "t-old", t0)]);
    let set = |active: Option<bool>, by_admin: bool| TokenChange {
        label: None,
        is_active: active,
        by_admin,
    };
    let update = |change: TokenChange| async move {
        s.tokens
            .update_token("tina", "t-old", &change)
            .await
            .unwrap()
    };
    assert_eq!(update(set(Some(false), true)).await, TokenUpdate::Updated);
    assert_eq!(
        update(set(Some(true), false)).await,
        TokenUpdate::RevokedByAdmin
    );
    let relabel = TokenChange {
        label: Some("renamed".into()),
        ..Default::default()
    };
    assert_eq!(update(relabel).await, TokenUpdate::Updated);
    assert_eq!(update(set(Some(false), false)).await, TokenUpdate::Updated);
    assert_eq!(
        update(set(Some(true), false)).await,
        TokenUpdate::RevokedByAdmin,
        "a user's revocation keeps the administrator's mark"
    );
    assert_eq!(update(set(Some(true), true)).await, TokenUpdate::Updated);
    assert_eq!(update(set(Some(false), false)).await, TokenUpdate::Updated);
    assert_eq!(update(set(Some(true), false)).await, TokenUpdate::Updated);
    let old = s.tokens.tokens("tina").await.unwrap().pop().unwrap();
    assert_eq!((old.label.as_str(), old.is_active), ("renamed", true));
    assert_eq!(
        s.tokens
            .update_token("tina", "nope", &set(Some(true), true))
            .await
            .unwrap(),
        TokenUpdate::Missing
    );
    assert!(s.tokens.delete_token("tina", "t-old").await.unwrap());
    assert!(!s.tokens.delete_token("tina", "t-old").await.unwrap());
    assert!(!s.tokens.delete_token("other", "t-new").await.unwrap());
    assert_eq!(s.tokens.tokens("tina").await.unwrap().len(), 1);
}

/// Bearer tokens: live ones find their account, expired ones and those of
/// a revoked access token do not, a password change drops the password's,
/// the oldest make room.
pub async fn bearers(s: &ServerStores) {
    let bea = ensure(s, "bea").await;
    let t0 = now();
    let bearer = |hashed: &str, via: Option<&str>, at: DateTime<Utc>| BearerRecord {
        hashed_token: hashed.into(),
        username: "bea".into(),
        via_token: via.map(Into::into),
        created_at: at,
        expires_at: at + Duration::minutes(15),
    };
    s.tokens
        .insert_token(&token("bea", "tok-bea", t0))
        .await
        .unwrap();
    s.bearers
        .insert_bearer(&bearer("b-pw", None, t0), 10)
        .await
        .unwrap();
    let via_token = bearer("b-tok", Some("tok-bea"), t0 + Duration::milliseconds(5));
    s.bearers.insert_bearer(&via_token, 10).await.unwrap();
    let find = |hashed: &'static str, at: DateTime<Utc>| async move {
        s.bearers.bearer_account(hashed, at).await.unwrap()
    };
    let later = t0 + Duration::seconds(1);
    assert_eq!(
        find("b-pw", later).await,
        Some((bea.clone(), Credential::Bearer))
    );
    assert_eq!(
        find("b-tok", later).await,
        Some((bea.clone(), Credential::Bearer))
    );
    assert_eq!(
        find("tok-bea", later).await,
        Some((bea.clone(), Credential::Token))
    );
    assert_eq!(
        find("b-pw", t0 + Duration::minutes(16)).await,
        None,
        "expired"
    );
    assert_eq!(find("nope", later).await, None);
    let off = TokenChange {
        is_active: Some(false),
        ..Default::default()
    };
    s.tokens.update_token("bea", "tok-bea", &off).await.unwrap();
    assert_eq!(find("b-tok", later).await, None, "its access token is off");
    assert_eq!(find("tok-bea", later).await, None);
    s.accounts.set_password_hash("bea", "new").await.unwrap();
    assert_eq!(find("b-pw", later).await, None, "the password changed");
    // Room for `keep`: the oldest go, expired ones go.
    for i in 0..5 {
        let at = later + Duration::milliseconds(10 * i);
        let b = bearer(&format!("room-{i}"), None, at);
        s.bearers.insert_bearer(&b, 3).await.unwrap();
    }
    assert_eq!(s.bearers.bearer_count("bea").await.unwrap(), 3);
    assert_eq!(find("room-1", later).await, None);
    assert!(find("room-4", later).await.is_some());
    let expired_all = bearer("fresh", None, later + Duration::hours(1));
    s.bearers.insert_bearer(&expired_all, 10).await.unwrap();
    assert_eq!(s.bearers.bearer_count("bea").await.unwrap(), 1);
    let inactive = AccountChange {
        is_active: Some(false),
        ..Default::default()
    };
    s.accounts.update_account("bea", &inactive).await.unwrap();
    assert_eq!(
        find("fresh", later + Duration::hours(1)).await,
        None,
        "inactive"
    );
}

/// Grants: set, replace, list both ways, remove one or all of a repository.
pub async fn grants(s: &ServerStores) {
    ensure(s, "gus").await;
    ensure(s, "ann").await;
    s.grants
        .set_grant("gus", "ns/a", AccessLevel::ReadOnly)
        .await
        .unwrap();
    s.grants
        .set_grant("gus", "ns/a", AccessLevel::Admin)
        .await
        .unwrap();
    s.grants
        .set_grant("gus", "ns/b", AccessLevel::ReadWrite)
        .await
        .unwrap();
    s.grants
        .set_grant("ann", "ns/a", AccessLevel::ReadOnly)
        .await
        .unwrap();
    assert_eq!(
        s.grants.grant("gus", "ns/a").await.unwrap(),
        Some(AccessLevel::Admin)
    );
    assert_eq!(s.grants.grant("gus", "ns/c").await.unwrap(), None);
    let of = s.grants.grants_of("gus").await.unwrap();
    assert_eq!((of.len(), of["ns/b"]), (2, AccessLevel::ReadWrite));
    assert_eq!(
        s.grants.grants_on("ns/a").await.unwrap(),
        [
            ("ann".to_string(), AccessLevel::ReadOnly),
            ("gus".to_string(), AccessLevel::Admin)
        ]
    );
    assert!(s.grants.remove_grant("gus", "ns/b").await.unwrap());
    assert!(!s.grants.remove_grant("gus", "ns/b").await.unwrap());
    s.grants.remove_grants_on("ns/a").await.unwrap();
    assert!(s.grants.grants_on("ns/a").await.unwrap().is_empty());
    assert!(s.grants.grants_of("gus").await.unwrap().is_empty());
}

fn cron(action: &str, next_run: Option<DateTime<Utc>>) -> Cron {
    Cron {
        id: format!("id-{action}"),
        action: action.into(),
        schedule: "* * * * * *".into(),
        retries: 2,
        capacity_map: [("a".to_string(), 1)].into(),
        parameters: [("policyID".to_string(), "p".to_string())].into(),
        deadline: "30m".into(),
        stop_timeout: "10s".into(),
        next_run,
    }
}

/// Crons: seeded once per database, saved (keeping the ID), listed by
/// action, deleted; a run claimed by exactly one of several callers.
pub async fn crons(s: &ServerStores) {
    let t0 = now();
    assert!(s.crons.seed_cron(&cron("seeded", Some(t0))).await.unwrap());
    assert!(s.crons.delete_cron("seeded").await.unwrap());
    assert!(!s.crons.seed_cron(&cron("seeded", Some(t0))).await.unwrap());
    assert!(s.crons.crons().await.unwrap().is_empty(), "seeded once");
    s.crons.save_cron(&cron("b", Some(t0))).await.unwrap();
    s.crons.save_cron(&cron("a", None)).await.unwrap();
    let mut replaced = cron("b", Some(t0));
    replaced.id = "another".into();
    replaced.schedule = "@hourly".into();
    s.crons.save_cron(&replaced).await.unwrap();
    let listed = s.crons.crons().await.unwrap();
    let mut expected_b = cron("b", Some(t0));
    expected_b.schedule = "@hourly".into();
    assert_eq!(listed, [cron("a", None), expected_b], "the ID is kept");
    // Claims: from "not planned" and from a due time, once each.
    let t1 = t0 + Duration::seconds(1);
    let claims =
        futures_util::future::join_all((0..8).map(|_| s.crons.claim_cron("a", None, Some(t0))))
            .await;
    assert_eq!(claims.iter().filter(|c| *c.as_ref().unwrap()).count(), 1);
    let claims =
        futures_util::future::join_all((0..8).map(|_| s.crons.claim_cron("a", Some(t0), Some(t1))))
            .await;
    assert_eq!(claims.iter().filter(|c| *c.as_ref().unwrap()).count(), 1);
    assert!(!s.crons.claim_cron("a", Some(t0), Some(t1)).await.unwrap());
    assert!(!s.crons.claim_cron("gone", None, Some(t1)).await.unwrap());
    assert!(s.crons.claim_cron("a", Some(t1), None).await.unwrap());
    assert_eq!(s.crons.crons().await.unwrap()[0].next_run, None);
    assert!(s.crons.delete_cron("a").await.unwrap());
    assert!(!s.crons.delete_cron("a").await.unwrap());
}

/// Meta: missing, set, replaced.
pub async fn meta(s: &ServerStores) {
    assert_eq!(s.meta.meta("k").await.unwrap(), None);
    s.meta.set_meta("k", "1").await.unwrap();
    s.meta.set_meta("k", "2").await.unwrap();
    assert_eq!(s.meta.meta("k").await.unwrap().as_deref(), Some("2"));
}

/// [`super::UploadStore`]: counts, compare-and-set progress, take, expiry.
pub async fn uploads(s: &ServerStores) {
    let u = &s.uploads;
    let t0 = now();
    let record = |id: &str, owner: &str| UploadRecord {
        id: id.into(),
        repository: "team/app".into(),
        owner: owner.into(),
        progress: "p0".into(),
        updated_at: t0,
    };
    assert_eq!(u.upload_counts("alice").await.unwrap(), (0, 0));
    u.insert_upload(&record("u1", "alice")).await.unwrap();
    u.insert_upload(&record("u2", "bob")).await.unwrap();
    u.insert_upload(&record("u3", "alice")).await.unwrap();
    assert_eq!(u.upload_counts("alice").await.unwrap(), (3, 2));
    assert_eq!(u.upload_counts("carol").await.unwrap(), (3, 0));
    assert_eq!(u.upload("u1").await.unwrap(), Some(record("u1", "alice")));
    assert_eq!(u.upload("nope").await.unwrap(), None);

    // Only the request that read the progress moves it on.
    let t1 = t0 + Duration::seconds(5);
    assert!(u.advance_upload("u1", "p0", "p1", t1).await.unwrap());
    assert!(!u.advance_upload("u1", "p0", "p1b", t1).await.unwrap());
    let got = u.upload("u1").await.unwrap().unwrap();
    assert_eq!((got.progress.as_str(), got.updated_at), ("p1", t1));
    assert!(!u.take_upload("u1", Some("p0")).await.unwrap());
    assert!(u.take_upload("u1", Some("p1")).await.unwrap());
    assert!(!u.take_upload("u1", None).await.unwrap());
    assert_eq!(u.upload("u1").await.unwrap(), None);

    // Idle ones expire; a touched one stays.
    assert!(u.touch_upload("u2", t1).await.unwrap());
    assert!(!u.touch_upload("u1", t1).await.unwrap());
    let expired = u.expire_uploads(t0 + Duration::seconds(1)).await.unwrap();
    assert_eq!(expired, vec!["u3".to_string()]);
    assert!(u.take_upload("u2", None).await.unwrap());
    assert_eq!(u.upload_counts("alice").await.unwrap(), (0, 0));
}

/// [`super::OrgStore`]: organizations, members, teams, team access, and
/// the levels an account holds through them.
pub async fn orgs(s: &ServerStores) {
    use AccessLevel::{Admin, ReadOnly, ReadWrite};
    let o = &s.orgs;
    for name in ["olga", "tom", "uma"] {
        ensure(s, name).await;
    }
    let org = Organization {
        id: "org-id".into(),
        name: "acme".into(),
        full_name: "Acme".into(),
        created_at: now(),
    };
    assert!(o.insert_org(&org).await.unwrap());
    assert!(!o.insert_org(&org).await.unwrap(), "a second acme");
    assert_eq!(o.org("acme").await.unwrap(), Some(org.clone()));
    assert!(o.update_org("acme", "Acme Inc.").await.unwrap());
    assert_eq!(o.orgs().await.unwrap()[0].full_name, "Acme Inc.");

    o.set_org_member("acme", "olga", true).await.unwrap();
    let team = |name: &str| Team {
        id: format!("team-{name}"),
        org: "acme".into(),
        name: name.into(),
        description: format!("{name} team"),
        members: 0,
    };
    assert!(o.insert_team(&team("dev")).await.unwrap());
    assert!(o.insert_team(&team("ops")).await.unwrap());
    assert!(
        !o.insert_team(&Team {
            id: "other".into(),
            ..team("dev")
        })
        .await
        .unwrap()
    );
    let dev = o.team("acme", "dev").await.unwrap().unwrap();
    o.add_team_member(&dev, "tom").await.unwrap();
    o.add_team_member(&dev, "tom").await.unwrap();
    o.add_team_member(&dev, "uma").await.unwrap();
    assert_eq!(o.team("acme", "dev").await.unwrap().unwrap().members, 2);
    assert_eq!(o.team_members("team-dev").await.unwrap(), ["tom", "uma"]);
    // Joining a team joins the organization, not as an administrator.
    assert_eq!(
        o.org_members("acme").await.unwrap(),
        [
            OrgMember {
                name: "olga".into(),
                is_admin: true
            },
            OrgMember {
                name: "tom".into(),
                is_admin: false
            },
            OrgMember {
                name: "uma".into(),
                is_admin: false
            },
        ]
    );
    assert_eq!(
        o.orgs_of("olga").await.unwrap(),
        [OrgMember {
            name: "acme".into(),
            is_admin: true
        }]
    );

    // Levels: a team's repository and namespace grants, the organization
    // administrator's, a user's own; the highest wins.
    let repo = GrantTarget::Repository("acme/app".into());
    let ns = GrantTarget::Namespace("acme".into());
    o.set_team_access("team-dev", &repo, ReadOnly)
        .await
        .unwrap();
    o.set_team_access("team-dev", &repo, ReadWrite)
        .await
        .unwrap();
    o.set_team_access("team-ops", &ns, ReadOnly).await.unwrap();
    let on_repo = o.team_access_on(&repo).await.unwrap();
    assert_eq!(on_repo.len(), 1);
    assert_eq!(
        (on_repo[0].0.name.as_str(), on_repo[0].1),
        ("dev", ReadWrite)
    );
    assert_eq!(
        o.team_access_of("team-ops").await.unwrap(),
        [(ns.clone(), ReadOnly)]
    );
    assert_eq!(
        o.levels("tom", "acme/app", "acme").await.unwrap(),
        Some(ReadWrite)
    );
    assert_eq!(o.levels("tom", "acme/other", "acme").await.unwrap(), None);
    assert_eq!(
        o.levels("olga", "acme/other", "acme").await.unwrap(),
        Some(Admin)
    );
    assert_eq!(o.levels("uma", "other/app", "other").await.unwrap(), None);
    let ops = o.team("acme", "ops").await.unwrap().unwrap();
    o.add_team_member(&ops, "uma").await.unwrap();
    assert_eq!(
        o.levels("uma", "acme/other", "acme").await.unwrap(),
        Some(ReadOnly)
    );
    s.grants
        .set_grant("uma", "acme/other", Admin)
        .await
        .unwrap();
    assert_eq!(
        o.levels("uma", "acme/other", "acme").await.unwrap(),
        Some(Admin)
    );
    let map = o.access_map("uma").await.unwrap();
    assert_eq!(map.level("acme/app", "acme"), Some(ReadWrite));
    assert_eq!(map.level("acme/other", "acme"), Some(Admin));
    assert_eq!(map.level("acme/new", "acme"), Some(ReadOnly));
    assert_eq!(map.level("else/x", "else"), None);
    assert_eq!(
        o.access_map("olga").await.unwrap().level("acme/x", "acme"),
        Some(Admin)
    );
    s.grants.remove_grant("uma", "acme/other").await.unwrap();

    // Leaving the organization leaves its teams; renames keep the ID.
    assert!(o.remove_org_member("acme", "uma").await.unwrap());
    assert_eq!(o.team_members("team-dev").await.unwrap(), ["tom"]);
    assert_eq!(o.levels("uma", "acme/app", "acme").await.unwrap(), None);
    let renamed = Team {
        name: "developers".into(),
        ..dev.clone()
    };
    assert!(o.update_team(&renamed).await.unwrap());
    assert_eq!(
        o.team("acme", "developers").await.unwrap().unwrap().id,
        "team-dev"
    );
    assert!(o.remove_team_member("team-dev", "tom").await.unwrap());
    assert!(!o.remove_team_member("team-dev", "tom").await.unwrap());
    assert!(o.remove_team_access("team-ops", &ns).await.unwrap());
    o.remove_team_access_on(&repo).await.unwrap();
    assert!(o.team_access_on(&repo).await.unwrap().is_empty());
    assert!(o.delete_team("team-ops").await.unwrap());
    assert!(!o.delete_team("team-ops").await.unwrap());

    // Deleting the organization takes its teams and memberships along.
    o.set_team_access("team-dev", &repo, Admin).await.unwrap();
    assert!(o.delete_org("acme").await.unwrap());
    assert!(o.teams("acme").await.unwrap().is_empty());
    assert!(o.orgs_of("olga").await.unwrap().is_empty());
    assert!(o.team_access_on(&repo).await.unwrap().is_empty());
    assert!(!o.delete_org("acme").await.unwrap());
}

/// Webhooks and deliveries: one claim wins per attempt, outcomes are kept,
/// the log is newest first, a hook's deletion takes its deliveries.
pub async fn webhooks(s: &ServerStores) {
    use super::{AttemptOutcome, DeliveryRecord, DeliveryStatus, WebhookRecord};
    let w = &s.webhooks;
    let t0 = now();
    let hook = |id: &str, key: &str| WebhookRecord {
        id: id.into(),
        kind: "TAG_PUSH".into(),
        key: key.into(),
        endpoint: "https://hooks.example/x".into(),
        author_id: "id-admin".into(),
        created_at: t0,
        last_successful_at: None,
        inactive: false,
        tls_cert: String::new(),
        skip_tls_verification: false,
        sealed_secret: Some("sealed".into()),
    };
    w.insert_webhook(&hook("h1", "acme/app")).await.unwrap();
    w.insert_webhook(&hook("h2", "acme_x")).await.unwrap();
    assert_eq!(w.webhook("h1").await.unwrap(), Some(hook("h1", "acme/app")));
    assert_eq!(w.active_webhooks_of("TAG_PUSH").await.unwrap().len(), 2);
    assert!(w.active_webhooks_of("TAG_DELETE").await.unwrap().is_empty());
    let mut off = hook("h2", "acme_x");
    off.inactive = true;
    off.endpoint = "https://hooks.example/y".into();
    assert!(w.update_webhook(&off).await.unwrap());
    assert_eq!(w.active_webhooks_of("TAG_PUSH").await.unwrap().len(), 1);
    assert_eq!(w.webhook("h2").await.unwrap(), Some(off));

    let delivery = |id: &str, at: DateTime<Utc>| DeliveryRecord {
        id: id.into(),
        hook_id: "h1".into(),
        event_type: "TAG_PUSH".into(),
        body: "{}".into(),
        attempts: 0,
        next_attempt_at: at,
        status: DeliveryStatus::Pending,
        last_status_code: None,
        last_error: None,
        created_at: at,
        delivered_at: None,
    };
    w.insert_delivery(&delivery("d1", t0)).await.unwrap();
    w.insert_delivery(&delivery("d2", t0 + Duration::seconds(1)))
        .await
        .unwrap();
    let due = w.due_deliveries(t0, 10).await.unwrap();
    assert_eq!(due, vec![delivery("d1", t0)]);
    let lease = t0 + Duration::seconds(30);
    assert!(w.claim_delivery("d1", 0, t0, lease).await.unwrap());
    assert!(!w.claim_delivery("d1", 0, t0, lease).await.unwrap());
    assert!(w.due_deliveries(t0, 10).await.unwrap().is_empty());
    // A lease that ran out is free again.
    let later = lease + Duration::seconds(1);
    assert_eq!(w.due_deliveries(later, 10).await.unwrap().len(), 2);
    let retry = AttemptOutcome {
        attempts: 1,
        status: DeliveryStatus::Pending,
        status_code: Some(503),
        error: Some("HTTP 503".into()),
        next_attempt_at: t0 + Duration::seconds(10),
        delivered_at: None,
    };
    w.finish_attempt("d1", &retry).await.unwrap();
    // The old attempt count no longer claims it.
    let t1 = t0 + Duration::seconds(10);
    let until = t1 + Duration::seconds(30);
    assert!(!w.claim_delivery("d1", 0, t1, until).await.unwrap());
    assert!(w.claim_delivery("d1", 1, t1, until).await.unwrap());
    let done = AttemptOutcome {
        attempts: 2,
        status: DeliveryStatus::Delivered,
        status_code: Some(200),
        error: None,
        next_attempt_at: t1,
        delivered_at: Some(t1),
    };
    w.finish_attempt("d1", &done).await.unwrap();
    w.webhook_succeeded("h1", t1).await.unwrap();
    let succeeded = w.webhook("h1").await.unwrap().unwrap().last_successful_at;
    assert_eq!(succeeded, Some(t1));
    let log = w.deliveries("h1", 10).await.unwrap();
    let ids: Vec<&str> = log.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["d2", "d1"]);
    assert_eq!(log[1].status, DeliveryStatus::Delivered);
    assert_eq!(log[1].attempts, 2);
    assert_eq!(log[1].last_status_code, Some(200));
    assert_eq!(log[1].delivered_at, Some(t1));
    assert_eq!(w.deliveries("h1", 1).await.unwrap().len(), 1);
    assert_eq!(w.prune_deliveries(t1 + Duration::days(1)).await.unwrap(), 1);

    // A repository's hooks go with it, with their deliveries.
    w.delete_webhooks_of("acme/app").await.unwrap();
    assert!(w.webhook("h1").await.unwrap().is_none());
    assert!(w.deliveries("h1", 10).await.unwrap().is_empty());
    w.delete_webhooks_of("acme").await.unwrap();
    assert!(w.webhook("h2").await.unwrap().is_some());
    assert!(w.delete_webhook("h2").await.unwrap());
    assert!(!w.delete_webhook("h2").await.unwrap());
    assert!(w.webhooks().await.unwrap().is_empty());
}
