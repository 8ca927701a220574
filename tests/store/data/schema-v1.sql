
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

CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY,
    email       TEXT,
    external_id TEXT,
    full_name   TEXT,
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

-- Work: a row exists while desired differs from applied at a destination.
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY,
    target      TEXT NOT NULL,
    dest        TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    desired     INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1,
    event_id    TEXT NOT NULL,
    due_at      REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL,
    last_error  TEXT,
    UNIQUE (target, dest, customer_id, group_id)
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
    failed_at   REAL NOT NULL
);
