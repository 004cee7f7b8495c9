//! Versioned schema migrations for the SQLite databases (the engine's
//! `regmirror.db` and the server's `server.db`).
//!
//! A database records the last step applied in `PRAGMA user_version`. On
//! open, [`migrate`] applies each later [`Migration`] in order, each in its
//! own transaction together with the new version, so a crash leaves the
//! database at a step boundary. A database whose version is newer than the
//! steps this build knows is refused: an older binary must not write a
//! schema it does not understand (after a downgrade, restore the backup
//! taken before the upgrade, or run the newer version).
//!
//! Steps are idempotent where they meet databases created before versions
//! were recorded (version 0 with tables already there): the first step
//! creates what is missing (`CREATE TABLE IF NOT EXISTS`) and later steps
//! check before they alter ([`add_column`]).

use rusqlite::Connection;

use super::StoreError;

/// One schema step.
pub struct Migration {
    /// The version the database has once the step is applied (1, 2, ...).
    pub version: u32,
    /// What the step does, for messages.
    pub what: &'static str,
    /// Applies the step.
    pub apply: fn(&Connection) -> rusqlite::Result<()>,
}

fn failed(file: &str, what: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Database {
        context: format!("migrating {file}: {what}"),
        source: Box::new(e),
    }
}

/// Brings `conn` (the database `file`) up to the last of `steps` (in
/// increasing version order); returns the version it is at.
pub fn migrate(conn: &mut Connection, file: &str, steps: &[Migration]) -> Result<u32, StoreError> {
    let latest = steps.last().map_or(0, |s| s.version);
    let current: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| failed(file, "reading the schema version", e))?;
    if current > latest {
        return Err(newer_schema(file, current, latest));
    }
    for step in steps.iter().filter(|s| s.version > current) {
        let tx = conn.transaction().map_err(|e| failed(file, step.what, e))?;
        (step.apply)(&tx).map_err(|e| failed(file, step.what, e))?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", step.version))
            .map_err(|e| failed(file, step.what, e))?;
        tx.commit().map_err(|e| failed(file, step.what, e))?;
        tracing::info!(
            file,
            version = step.version,
            "database schema migrated: {}",
            step.what
        );
    }
    Ok(latest.max(current))
}

/// The refusal of a database (`what`: a file, or a PostgreSQL database)
/// whose schema `current` is newer than the `latest` step this build knows.
pub fn newer_schema(what: &str, current: u32, latest: u32) -> StoreError {
    StoreError::Corrupt {
        reason: format!(
            "{what} has schema version {current}, newer than this build knows ({latest}): \
             run the newer regmirror, or restore the backup taken before the upgrade"
        ),
    }
}

/// Whether `table` has `column`.
pub fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name=?2)",
        [table, column],
        |r| r.get(0),
    )
}

/// Adds `column` (with `definition`) to `table` unless it is there.
pub fn add_column(
    conn: &Connection,
    table: &str,
    column: &str,
    definition: &str,
) -> rusqlite::Result<()> {
    let exists = has_column(conn, table, column)?;
    if !exists {
        conn.execute_batch(&format!(
            "ALTER TABLE {table} ADD COLUMN {column} {definition}"
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: [Migration; 2] = [
        Migration {
            version: 1,
            what: "the first table",
            apply: |c| c.execute_batch("CREATE TABLE IF NOT EXISTS t (a TEXT)"),
        },
        Migration {
            version: 2,
            what: "a second column",
            apply: |c| add_column(c, "t", "b", "TEXT"),
        },
    ];

    #[test]
    fn steps_apply_once_in_order_and_a_newer_schema_is_refused() {
        let mut c = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut c, "test.db", &STEPS[..1]).unwrap(), 1);
        assert_eq!(migrate(&mut c, "test.db", &STEPS).unwrap(), 2);
        assert_eq!(migrate(&mut c, "test.db", &STEPS).unwrap(), 2);
        c.execute("INSERT INTO t (a, b) VALUES ('x', 'y')", [])
            .unwrap();
        let e = migrate(&mut c, "test.db", &STEPS[..1]).unwrap_err();
        assert!(
            e.to_string()
                .contains("schema version 2, newer than this build knows (1)"),
            "{e}"
        );
    }

    #[test]
    fn databases_from_before_versions_are_adopted() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (a TEXT, b TEXT)").unwrap();
        assert_eq!(migrate(&mut c, "old.db", &STEPS).unwrap(), 2);
    }
}
