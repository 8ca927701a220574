"""SQLite tables. Desired state, per-target applied state, and the work between them."""

#: bumped with every change to the tables; a store written by a newer release is refused,
#: an older one is upgraded in place by :data:`MIGRATIONS`.
#: 2: lifecycle (deleted customers, old-contact removals, group keys);
#: 3: attempts (history) and retention's indexes: only new tables and indexes, which the
#: CREATE ... IF NOT EXISTS below adds when the file is opened.
SCHEMA_VERSION = 3

SCHEMA = """
-- The versions applied, as in PostgreSQL's store (PRAGMA user_version is kept as well:
-- releases before this table read only that).
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS inbox (
    event_id    TEXT PRIMARY KEY,
    event_type  TEXT,
    event_time  TEXT,
    received_at REAL NOT NULL,
    status      TEXT NOT NULL,          -- processed | ignored | unprocessable
    reason      TEXT,
    body        BLOB                    -- kept only for unprocessable events
);
CREATE INDEX IF NOT EXISTS inbox_unprocessable ON inbox(received_at) WHERE status = 'unprocessable';
CREATE INDEX IF NOT EXISTS inbox_received ON inbox(received_at);

CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY,
    email       TEXT,
    external_id TEXT,
    full_name   TEXT,
    deleted     INTEGER NOT NULL DEFAULT 0,  -- customer_deleted newer than any other event
    event_time  TEXT NOT NULL,
    event_id    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS groups (
    group_id    TEXT PRIMARY KEY,
    group_key   TEXT,
    name        TEXT,
    deleted     INTEGER NOT NULL DEFAULT 0,
    event_time  TEXT NOT NULL,
    event_id    TEXT NOT NULL
) WITHOUT ROWID;

-- Which group had a key last (newest event wins): a mapping written by key keeps
-- following its group after Plain re-keys it, until another group takes the key.
CREATE TABLE IF NOT EXISTS group_keys (
    group_key   TEXT PRIMARY KEY,
    group_id    TEXT NOT NULL,
    event_time  TEXT NOT NULL,
    event_id    TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS group_keys_group ON group_keys(group_id);

-- Desired state: the newest event (time, then id) per (customer, group) wins. The oldest
-- event seen is kept too: its before-state is the best guess of what CRMs had before.
CREATE TABLE IF NOT EXISTS memberships (
    customer_id TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    member      INTEGER NOT NULL,
    event_time  TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    first_time  TEXT NOT NULL,
    first_id    TEXT NOT NULL,
    PRIMARY KEY (customer_id, group_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memberships_group ON memberships(group_id, member);

-- What each destination is believed to have: 'assumed' from the state before the first
-- event we saw, 'confirmed' by the CRM, or 'not_in_crm' (contact missing, creation off).
CREATE TABLE IF NOT EXISTS applied (
    target      TEXT NOT NULL,
    dest        TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    member      INTEGER NOT NULL,
    note        TEXT NOT NULL,
    detail      TEXT,
    applied_at  REAL,
    PRIMARY KEY (target, dest, customer_id, group_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS applied_note ON applied(target, note);

-- Work: a row exists while desired differs from applied at a destination. A row with a
-- contact is a removal from a contact the customer used to have (its old email).
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY,
    target      TEXT NOT NULL,
    dest        TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    contact     TEXT NOT NULL DEFAULT '',
    desired     INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1,
    event_id    TEXT NOT NULL,
    due_at      REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL,
    last_error  TEXT,
    UNIQUE (target, dest, customer_id, group_id, contact)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(target, due_at);

CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY,
    target      TEXT NOT NULL,
    dest        TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    desired     INTEGER NOT NULL,
    event_id    TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    failed_at   REAL NOT NULL,
    contact     TEXT NOT NULL DEFAULT ''
);

-- Backfill / reconcile runs from Plain's API: a run resumes where it stopped, group by group.
CREATE TABLE IF NOT EXISTS sync_runs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,          -- backfill | reconcile
    selection   TEXT NOT NULL,          -- JSON: the groups asked for, or null for every mapped group
    status      TEXT NOT NULL,          -- running | done | failed | abandoned
    started_at  REAL NOT NULL,
    finished_at REAL,
    error       TEXT,
    next_at     REAL                    -- reconcile: when serve runs the next one
);
CREATE TABLE IF NOT EXISTS sync_run_groups (
    run_id      INTEGER NOT NULL,
    group_id    TEXT NOT NULL,
    group_key   TEXT,
    pages       INTEGER NOT NULL,
    customers   INTEGER NOT NULL,
    changes     INTEGER NOT NULL,
    work        INTEGER NOT NULL,
    finished_at REAL NOT NULL,
    PRIMARY KEY (run_id, group_id)
);
-- History: one row per outcome written back, or per operator action on a dead letter
-- (attempt 0), with the CRM's answer as reason. Pruned by retention.history_days.
CREATE TABLE IF NOT EXISTS attempts (
    id          INTEGER PRIMARY KEY,
    target      TEXT NOT NULL,
    dest        TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    desired     INTEGER NOT NULL,
    event_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,          -- done | skipped | retry | dead | replayed | discarded
    attempt     INTEGER NOT NULL,
    reason      TEXT,
    at          REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_customer ON attempts(customer_id, at);
CREATE INDEX IF NOT EXISTS attempts_event ON attempts(event_id);
CREATE INDEX IF NOT EXISTS attempts_at ON attempts(at);
CREATE INDEX IF NOT EXISTS dead_letters_failed ON dead_letters(failed_at);
CREATE INDEX IF NOT EXISTS dead_letters_customer ON dead_letters(customer_id);
"""

_OUTBOX_COLUMNS = (
    "id, target, dest, customer_id, group_id, desired, version, event_id, due_at, attempts,"
    " lease_owner, lease_until, last_error"
)

#: version -> statements that bring a store of ``version - 1`` to ``version``; run before
#: :data:`SCHEMA`, which then creates whatever is new.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        "ALTER TABLE customers ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE dead_letters ADD COLUMN contact TEXT NOT NULL DEFAULT ''",
        # SQLite cannot change a UNIQUE constraint in place: copy the outbox over.
        "ALTER TABLE outbox RENAME TO outbox_v1",
        "DROP INDEX IF EXISTS outbox_due",
        SCHEMA[
            SCHEMA.index("CREATE TABLE IF NOT EXISTS outbox") : SCHEMA.index("CREATE INDEX IF NOT EXISTS outbox_due")
        ],
        f"INSERT INTO outbox ({_OUTBOX_COLUMNS}) SELECT {_OUTBOX_COLUMNS} FROM outbox_v1",
        "DROP TABLE outbox_v1",
        "CREATE TABLE IF NOT EXISTS group_keys (group_key TEXT PRIMARY KEY, group_id TEXT NOT NULL,"
        " event_time TEXT NOT NULL, event_id TEXT NOT NULL) WITHOUT ROWID",
        "INSERT INTO group_keys (group_key, group_id, event_time, event_id)"
        " SELECT group_key, group_id, event_time, event_id FROM groups WHERE group_key IS NOT NULL"
        " ORDER BY event_time, event_id ON CONFLICT (group_key) DO UPDATE SET group_id = excluded.group_id,"
        " event_time = excluded.event_time, event_id = excluded.event_id",
    ),
    3: (),
}
