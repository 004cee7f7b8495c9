//! The statements both backends run, written once. Placeholders are
//! `$1`, `$2`, ... in the order they first appear (SQLite reads `$1` as a
//! named parameter and numbers them by first appearance, so positional
//! arguments bind alike on both; a test checks the order). Flags are
//! compared as truth values (`WHERE is_active`), which SQLite's integers
//! and PostgreSQL's booleans both are; times are SQLite's RFC 3339 text
//! and PostgreSQL's `timestamptz`, bound by each backend.

/// The columns `rows::account` reads.
macro_rules! account_columns {
    () => {
        "id, name, full_name, is_admin, is_active, created_at"
    };
}
/// [`account_columns`] of `users u`.
macro_rules! user_columns {
    () => {
        "u.id, u.name, u.full_name, u.is_admin, u.is_active, u.created_at"
    };
}
/// The columns `rows::api_token` reads.
macro_rules! token_columns {
    () => {
        "hashed_token, label, is_active, username, created_at, last_used"
    };
}

/// `$1` name, `$2` id, `$3` hash, `$4` full name, `$5` admin, `$6` active,
/// `$7` created.
pub(super) const INSERT_ACCOUNT: &str =
    "INSERT INTO users (name, id, password_hash, full_name, is_admin, is_active, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING";
/// `$1` name.
pub(super) const ACCOUNT: &str =
    concat!("SELECT ", account_columns!(), " FROM users WHERE name=$1");
/// In one round trip: account `$1`, its password hash (column 6), and
/// whether `$2` is the hash of one of its active access tokens (column 7).
/// Reads only: uses are noted in memory and written by [`TOUCH_TOKEN`].
pub(super) const LOGIN: &str = concat!(
    "SELECT ",
    account_columns!(),
    ", password_hash, EXISTS (SELECT 1 FROM api_tokens
       WHERE username=$1 AND hashed_token=$2 AND is_active)
     FROM users WHERE name=$1"
);
/// The active account of active access token `$1`.
pub(super) const TOKEN_ACCOUNT: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM api_tokens t JOIN users u ON u.name = t.username
     WHERE t.hashed_token=$1 AND t.is_active AND u.is_active"
);
/// Marks access token `$2` used at `$1` (never back in time).
pub(super) const TOUCH_TOKEN: &str = "UPDATE api_tokens SET last_used=$1
     WHERE hashed_token=$2 AND (last_used IS NULL OR last_used < $1)";
pub(super) const ACCOUNTS: &str =
    concat!("SELECT ", account_columns!(), " FROM users ORDER BY name");
/// `$1` name.
pub(super) const PASSWORD_HASH: &str = "SELECT password_hash FROM users WHERE name=$1";
/// `$1` hash, `$2` name.
pub(super) const SET_PASSWORD_HASH: &str = "UPDATE users SET password_hash=$1 WHERE name=$2";
/// `$1` name.
pub(super) const FORGET_PASSWORD_BEARERS: &str =
    "DELETE FROM bearer_tokens WHERE username=$1 AND via_token IS NULL";
/// `$1` full name, `$2` admin, `$3` active (`NULL` keeps each), `$4` name.
pub(super) const UPDATE_ACCOUNT: &str = "UPDATE users SET full_name=COALESCE($1, full_name),
     is_admin=COALESCE($2, is_admin), is_active=COALESCE($3, is_active)
     WHERE name=$4";

/// `$1` hash, `$2` user, `$3` label, `$4` created.
pub(super) const INSERT_TOKEN: &str =
    "INSERT INTO api_tokens (hashed_token, username, label, is_active, created_at)
     VALUES ($1, $2, $3, true, $4)";
/// `$1` user.
pub(super) const TOKENS: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM api_tokens WHERE username=$1 ORDER BY created_at DESC"
);
/// `$1` label, `$2` active (`NULL` keeps each), `$3` by an administrator,
/// `$4` user, `$5` hash. Re-enabling clears the administrator's mark;
/// deactivating by an administrator sets it (and a user's never clears it).
pub(super) const UPDATE_TOKEN: &str =
    "UPDATE api_tokens SET label=COALESCE($1, label), is_active=COALESCE($2, is_active),
     revoked_by_admin=CASE WHEN CAST($2 AS boolean) IS NULL THEN revoked_by_admin
                           WHEN $2 THEN false ELSE (revoked_by_admin OR $3) END
     WHERE username=$4 AND hashed_token=$5";
/// `$1` user, `$2` hash.
pub(super) const DELETE_TOKEN: &str =
    "DELETE FROM api_tokens WHERE username=$1 AND hashed_token=$2";

/// `$1` now.
pub(super) const DELETE_EXPIRED_BEARERS: &str = "DELETE FROM bearer_tokens WHERE expires_at <= $1";
/// Keeps the newest `$2` bearer tokens of user `$1`.
pub(super) const TRIM_BEARERS: &str =
    "DELETE FROM bearer_tokens WHERE username=$1 AND hashed_token NOT IN
     (SELECT hashed_token FROM bearer_tokens WHERE username=$1
      ORDER BY created_at DESC LIMIT $2)";
/// `$1` hash, `$2` user, `$3` access token or `NULL`, `$4` created, `$5` expiry.
pub(super) const INSERT_BEARER: &str =
    "INSERT INTO bearer_tokens (hashed_token, username, via_token, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5)";
/// The account of live bearer token `$1` at `$2`.
pub(super) const BEARER_ACCOUNT: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM bearer_tokens b
     JOIN users u ON u.name = b.username
     LEFT JOIN api_tokens t ON t.hashed_token = b.via_token
     WHERE b.hashed_token=$1 AND b.expires_at > $2 AND u.is_active
       AND (b.via_token IS NULL OR t.is_active)"
);
/// `$1` user.
pub(super) const BEARER_COUNT: &str = "SELECT COUNT(*) FROM bearer_tokens WHERE username=$1";

/// `$1` user, `$2` repository.
pub(super) const GRANT: &str = "SELECT level FROM repo_access WHERE username=$1 AND repository=$2";
/// `$1` user.
pub(super) const GRANTS_OF: &str = "SELECT repository, level FROM repo_access WHERE username=$1";
/// `$1` repository.
pub(super) const GRANTS_ON: &str =
    "SELECT username, level FROM repo_access WHERE repository=$1 ORDER BY username";
/// `$1` user, `$2` repository, `$3` level.
pub(super) const SET_GRANT: &str =
    "INSERT INTO repo_access (username, repository, level) VALUES ($1, $2, $3)
     ON CONFLICT (username, repository) DO UPDATE SET level=excluded.level";
/// `$1` user, `$2` repository.
pub(super) const REMOVE_GRANT: &str = "DELETE FROM repo_access WHERE username=$1 AND repository=$2";
/// `$1` repository.
pub(super) const REMOVE_GRANTS_ON: &str = "DELETE FROM repo_access WHERE repository=$1";

pub(super) const CRONS: &str = "SELECT action, id, schedule, retries, parameters, deadline, stop_timeout, capacity_map, next_run
     FROM crons ORDER BY action";
/// `$1` action ... `$8` capacity map (the columns in order), `$9` now,
/// `$10` next run. An existing cron keeps its ID.
pub(super) const SAVE_CRON: &str = "INSERT INTO crons (action, id, schedule, retries, parameters, deadline, stop_timeout, capacity_map, updated_at, next_run)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (action) DO UPDATE SET schedule=excluded.schedule, retries=excluded.retries,
       parameters=excluded.parameters, deadline=excluded.deadline,
       stop_timeout=excluded.stop_timeout, capacity_map=excluded.capacity_map,
       updated_at=excluded.updated_at, next_run=excluded.next_run";
/// Marks the crons seeded; changes no row when they were.
pub(super) const MARK_SEEDED: &str =
    "INSERT INTO meta (key, value) VALUES ('crons_seeded', 'yes') ON CONFLICT (key) DO NOTHING";
/// `$1` action.
pub(super) const DELETE_CRON: &str = "DELETE FROM crons WHERE action=$1";
/// The claim of a run: `$1` the following run, `$2` action, `$3` the next
/// run read (`NULL`: not planned).
pub(super) const CLAIM_CRON: &str =
    "UPDATE crons SET next_run=$1 WHERE action=$2 AND next_run IS NOT DISTINCT FROM $3";

/// The columns `rows::organization` reads.
macro_rules! org_columns {
    () => {
        "name, id, full_name, created_at"
    };
}
/// The columns `rows::team` reads, of `teams t`.
macro_rules! team_columns {
    () => {
        "t.id, t.org, t.name, t.description, (SELECT COUNT(*) FROM team_members m WHERE m.team_id = t.id)"
    };
}

/// `$1` name, `$2` id, `$3` full name, `$4` created.
pub(super) const INSERT_ORG: &str = "INSERT INTO organizations (name, id, full_name, created_at)
     VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING";
/// `$1` name.
pub(super) const ORG: &str = concat!(
    "SELECT ",
    org_columns!(),
    " FROM organizations WHERE name=$1"
);
pub(super) const ORGS: &str = concat!(
    "SELECT ",
    org_columns!(),
    " FROM organizations ORDER BY name"
);
/// `$1` full name, `$2` name.
pub(super) const UPDATE_ORG: &str = "UPDATE organizations SET full_name=$1 WHERE name=$2";
/// `$1` name.
pub(super) const DELETE_ORG: &str = "DELETE FROM organizations WHERE name=$1";
/// `$1` org.
pub(super) const ORG_MEMBERS: &str =
    "SELECT username, is_admin FROM org_members WHERE org=$1 ORDER BY username";
/// `$1` user: the organizations `user` belongs to, with the admin flag.
pub(super) const ORGS_OF: &str =
    "SELECT org, is_admin FROM org_members WHERE username=$1 ORDER BY org";
/// `$1` org, `$2` user, `$3` admin.
pub(super) const SET_ORG_MEMBER: &str = "INSERT INTO org_members (org, username, is_admin)
     VALUES ($1, $2, $3) ON CONFLICT (org, username) DO UPDATE SET is_admin=excluded.is_admin";
/// `$1` org, `$2` user, `$3` admin (for a new member only).
pub(super) const ENSURE_ORG_MEMBER: &str = "INSERT INTO org_members (org, username, is_admin)
     VALUES ($1, $2, $3) ON CONFLICT (org, username) DO NOTHING";
/// `$1` org, `$2` user.
pub(super) const REMOVE_ORG_MEMBER: &str = "DELETE FROM org_members WHERE org=$1 AND username=$2";
/// `$1` org, `$2` user: out of the organization's teams.
pub(super) const REMOVE_FROM_ORG_TEAMS: &str = "DELETE FROM team_members
     WHERE team_id IN (SELECT id FROM teams WHERE org=$1) AND username=$2";
/// `$1` org.
pub(super) const TEAMS: &str = concat!(
    "SELECT ",
    team_columns!(),
    " FROM teams t WHERE t.org=$1 ORDER BY t.name"
);
/// `$1` org, `$2` name.
pub(super) const TEAM: &str = concat!(
    "SELECT ",
    team_columns!(),
    " FROM teams t WHERE t.org=$1 AND t.name=$2"
);
/// `$1` id, `$2` org, `$3` name, `$4` description, `$5` created.
pub(super) const INSERT_TEAM: &str = "INSERT INTO teams (id, org, name, description, created_at)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org, name) DO NOTHING";
/// `$1` new name, `$2` description, `$3` id.
pub(super) const UPDATE_TEAM: &str = "UPDATE teams SET name=$1, description=$2 WHERE id=$3";
/// `$1` id.
pub(super) const DELETE_TEAM: &str = "DELETE FROM teams WHERE id=$1";
/// `$1` team id.
pub(super) const TEAM_MEMBERS: &str =
    "SELECT username FROM team_members WHERE team_id=$1 ORDER BY username";
/// `$1` team id, `$2` user.
pub(super) const ADD_TEAM_MEMBER: &str = "INSERT INTO team_members (team_id, username)
     VALUES ($1, $2) ON CONFLICT (team_id, username) DO NOTHING";
/// `$1` team id, `$2` user.
pub(super) const REMOVE_TEAM_MEMBER: &str =
    "DELETE FROM team_members WHERE team_id=$1 AND username=$2";
/// `$1` team id, `$2` kind, `$3` target, `$4` level.
pub(super) const SET_TEAM_ACCESS: &str = "INSERT INTO team_access (team_id, kind, target, level)
     VALUES ($1, $2, $3, $4) ON CONFLICT (team_id, kind, target) DO UPDATE SET level=excluded.level";
/// `$1` team id, `$2` kind, `$3` target.
pub(super) const REMOVE_TEAM_ACCESS: &str =
    "DELETE FROM team_access WHERE team_id=$1 AND kind=$2 AND target=$3";
/// `$1` kind, `$2` target: every team's level on it, by team name.
pub(super) const TEAM_ACCESS_ON: &str = concat!(
    "SELECT ",
    team_columns!(),
    ", a.level FROM team_access a JOIN teams t ON t.id = a.team_id
     WHERE a.kind=$1 AND a.target=$2 ORDER BY t.name"
);
/// `$1` team id: what it is granted.
pub(super) const TEAM_ACCESS_OF: &str =
    "SELECT kind, target, level FROM team_access WHERE team_id=$1 ORDER BY kind, target";
/// `$1` kind, `$2` target.
pub(super) const REMOVE_TEAM_ACCESS_ON: &str =
    "DELETE FROM team_access WHERE kind=$1 AND target=$2";
/// `$1` user, `$2` repository, `$3` its namespace: every level `user`
/// holds on it (own grant, teams' repository and namespace grants,
/// organization administrator).
pub(super) const LEVELS: &str = "SELECT level FROM repo_access WHERE username=$1 AND repository=$2
     UNION ALL SELECT a.level FROM team_access a JOIN team_members m ON m.team_id = a.team_id
       WHERE m.username=$1 AND a.kind='repository' AND a.target=$2
     UNION ALL SELECT a.level FROM team_access a JOIN team_members m ON m.team_id = a.team_id
       WHERE m.username=$1 AND a.kind='namespace' AND a.target=$3
     UNION ALL SELECT 'admin' FROM org_members WHERE username=$1 AND org=$3 AND is_admin";
/// `$1` user: every (kind, target, level) `user` holds.
pub(super) const ACCESS_MAP: &str =
    "SELECT 'repository', repository, level FROM repo_access WHERE username=$1
     UNION ALL SELECT a.kind, a.target, a.level FROM team_access a
       JOIN team_members m ON m.team_id = a.team_id WHERE m.username=$1
     UNION ALL SELECT 'namespace', org, 'admin' FROM org_members WHERE username=$1 AND is_admin";

/// The columns `rows::upload` reads.
macro_rules! upload_columns {
    () => {
        "id, repository, owner, progress, updated_at"
    };
}

/// `$1` id, `$2` repository, `$3` owner, `$4` progress, `$5` now.
pub(super) const INSERT_UPLOAD: &str = "INSERT INTO blob_uploads
     (id, repository, owner, progress, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)";
/// `$1` owner: every upload, the owner's.
pub(super) const UPLOAD_COUNTS: &str =
    "SELECT COUNT(*), COUNT(CASE WHEN owner=$1 THEN 1 END) FROM blob_uploads";
/// `$1` id.
pub(super) const UPLOAD: &str = concat!(
    "SELECT ",
    upload_columns!(),
    " FROM blob_uploads WHERE id=$1"
);
/// `$1` new progress, `$2` now, `$3` id, `$4` expected progress.
pub(super) const ADVANCE_UPLOAD: &str =
    "UPDATE blob_uploads SET progress=$1, updated_at=$2 WHERE id=$3 AND progress=$4";
/// `$1` now, `$2` id.
pub(super) const TOUCH_UPLOAD: &str = "UPDATE blob_uploads SET updated_at=$1 WHERE id=$2";
/// `$1` id, `$2` expected progress.
pub(super) const TAKE_UPLOAD: &str = "DELETE FROM blob_uploads WHERE id=$1 AND progress=$2";
/// `$1` id.
pub(super) const DELETE_UPLOAD: &str = "DELETE FROM blob_uploads WHERE id=$1";
/// `$1` cutoff.
pub(super) const EXPIRE_UPLOADS: &str =
    "DELETE FROM blob_uploads WHERE updated_at < $1 RETURNING id";

/// `$1` key.
pub(super) const META: &str = "SELECT value FROM meta WHERE key=$1";
/// `$1` key, `$2` value.
pub(super) const SET_META: &str = "INSERT INTO meta (key, value) VALUES ($1, $2)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";

// Each backend's own: what the other cannot say the same way.

/// SQLite: who revoked token `$2` of user `$1` (the transaction holds the
/// database's write lock).
pub(super) const SQLITE_TOKEN_REVOKED: &str =
    "SELECT revoked_by_admin FROM api_tokens WHERE username=$1 AND hashed_token=$2";
/// PostgreSQL: the same, locking the row until the transaction ends.
pub(super) const PG_TOKEN_REVOKED: &str =
    "SELECT revoked_by_admin FROM api_tokens WHERE username=$1 AND hashed_token=$2 FOR UPDATE";
#[cfg(test)]
mod tests {
    /// Every shared statement numbers its placeholders by first appearance.
    #[test]
    fn placeholders_first_appear_in_order() {
        use super::*;
        for sql in [
            INSERT_ACCOUNT,
            ACCOUNT,
            ACCOUNTS,
            PASSWORD_HASH,
            SET_PASSWORD_HASH,
            FORGET_PASSWORD_BEARERS,
            UPDATE_ACCOUNT,
            INSERT_TOKEN,
            TOKENS,
            UPDATE_TOKEN,
            DELETE_TOKEN,
            DELETE_EXPIRED_BEARERS,
            TRIM_BEARERS,
            INSERT_BEARER,
            BEARER_ACCOUNT,
            BEARER_COUNT,
            GRANT,
            GRANTS_OF,
            GRANTS_ON,
            SET_GRANT,
            REMOVE_GRANT,
            REMOVE_GRANTS_ON,
            CRONS,
            SAVE_CRON,
            MARK_SEEDED,
            DELETE_CRON,
            CLAIM_CRON,
            META,
            SET_META,
            INSERT_ORG,
            ORG,
            ORGS,
            UPDATE_ORG,
            DELETE_ORG,
            ORG_MEMBERS,
            ORGS_OF,
            SET_ORG_MEMBER,
            ENSURE_ORG_MEMBER,
            REMOVE_ORG_MEMBER,
            REMOVE_FROM_ORG_TEAMS,
            TEAMS,
            TEAM,
            INSERT_TEAM,
            UPDATE_TEAM,
            DELETE_TEAM,
            TEAM_MEMBERS,
            ADD_TEAM_MEMBER,
            REMOVE_TEAM_MEMBER,
            SET_TEAM_ACCESS,
            REMOVE_TEAM_ACCESS,
            TEAM_ACCESS_ON,
            TEAM_ACCESS_OF,
            REMOVE_TEAM_ACCESS_ON,
            LEVELS,
            ACCESS_MAP,
            INSERT_UPLOAD,
            UPLOAD_COUNTS,
            UPLOAD,
            ADVANCE_UPLOAD,
            TOUCH_UPLOAD,
            TAKE_UPLOAD,
            DELETE_UPLOAD,
            EXPIRE_UPLOADS,
            LOGIN,
            TOKEN_ACCOUNT,
            TOUCH_TOKEN,
            SQLITE_TOKEN_REVOKED,
        ] {
            let mut seen = 0;
            for part in sql.split('$').skip(1) {
                let n: usize = part
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap();
                assert!(n <= seen + 1, "${n} before ${} in {sql}", seen + 1);
                seen = seen.max(n);
            }
        }
    }
}
