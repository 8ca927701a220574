"""PostgreSQL tables, as numbered migrations applied at start under an advisory lock.

The tables are the ones :mod:`connector.store.sql` is written against, as in
:mod:`connector.store.sqlite.schema`: flags are 0/1 integers, times are epoch seconds
(``double precision``) from the database clock, so replicas whose clocks disagree still
agree on when a lease ends.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sql: str


_V1 = """
CREATE TABLE inbox (
    event_id    text PRIMARY KEY,
    event_type  text,
    event_time  text,
    received_at double precision NOT NULL,
    status      text NOT NULL,          -- processed | ignored | unprocessable
    reason      text,
    body        bytea                   -- kept only for unprocessable events
);
CREATE INDEX inbox_unprocessable ON inbox (received_at) WHERE status = 'unprocessable';

-- Event times and ids are compared as (time, id) to pick the newest event: byte order
-- (the "C" collation), as SQLite and Python compare them, not the locale's order.
CREATE TABLE customers (
    customer_id text PRIMARY KEY,
    email       text,
    external_id text,
    full_name   text,
    event_time  text COLLATE "C" NOT NULL,
    event_id    text COLLATE "C" NOT NULL
);

CREATE TABLE groups (
    group_id    text PRIMARY KEY,
    group_key   text,
    name        text,
    deleted     smallint NOT NULL DEFAULT 0,
    event_time  text COLLATE "C" NOT NULL,
    event_id    text COLLATE "C" NOT NULL
);

CREATE TABLE memberships (
    customer_id text NOT NULL,
    group_id    text NOT NULL,
    member      smallint NOT NULL,
    event_time  text COLLATE "C" NOT NULL,
    event_id    text COLLATE "C" NOT NULL,
    first_time  text COLLATE "C" NOT NULL,
    first_id    text COLLATE "C" NOT NULL,
    PRIMARY KEY (customer_id, group_id)
);
CREATE INDEX memberships_group ON memberships (group_id, member);

CREATE TABLE applied (
    target      text NOT NULL,
    dest        text NOT NULL,
    customer_id text NOT NULL,
    group_id    text NOT NULL,
    member      smallint NOT NULL,
    note        text NOT NULL,
    detail      text,
    applied_at  double precision,
    PRIMARY KEY (target, dest, customer_id, group_id)
);
CREATE INDEX applied_note ON applied (target, note);

CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target      text NOT NULL,
    dest        text NOT NULL,
    customer_id text NOT NULL,
    group_id    text NOT NULL,
    desired     smallint NOT NULL,
    version     integer NOT NULL DEFAULT 1,
    event_id    text NOT NULL,
    due_at      double precision NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    lease_owner text,
    lease_until double precision,
    last_error  text,
    UNIQUE (target, dest, customer_id, group_id)
);
CREATE INDEX outbox_due ON outbox (target, due_at);

CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target      text NOT NULL,
    dest        text NOT NULL,
    customer_id text NOT NULL,
    group_id    text NOT NULL,
    desired     smallint NOT NULL,
    event_id    text NOT NULL,
    attempts    integer NOT NULL,
    reason      text NOT NULL,
    failed_at   double precision NOT NULL
);

-- The outbox is a queue: every change is inserted, leased (updated) and deleted within
-- seconds, so it is small but churns. The default trigger (20% of the table's estimated
-- rows dead) is computed from the size after the last burst and fires late; meanwhile
-- every claim's index scan steps over dead entries and gets slower as the backlog drains
-- (the bloat Oban and River warn about for their job tables). A fixed threshold with no
-- scale factor vacuums it after every few thousand changes, and no cost delay lets that
-- vacuum finish quickly. Free space on each page (fillfactor) lets lease updates, which
-- touch no indexed column, stay HOT: no new index entries at all.
ALTER TABLE outbox SET (
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000,
    autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);
-- Applied state is upserted once per delivered change: the same HOT-friendly page room.
ALTER TABLE applied SET (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.05);
"""

_V2 = """
-- One row per (rate-limited target, replica): the replica's share of the target's budget,
-- held by lease. Every replica rewrites its rows every second or so, the same churn as
-- the outbox: a fixed vacuum threshold, and page room for HOT updates.
CREATE TABLE rate_shares (
    bucket      text NOT NULL,
    owner       text NOT NULL,
    active_from double precision NOT NULL,
    expires_at  double precision NOT NULL,
    PRIMARY KEY (bucket, owner)
);
ALTER TABLE rate_shares SET (
    fillfactor = 50,
    autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500,
    autovacuum_vacuum_cost_delay = 0
);
"""

_V3 = """
-- Backfill / reconcile runs from Plain's API (connector.store.core_sync): resumable per group.
CREATE TABLE sync_runs (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL,
    selection   text NOT NULL,
    status      text NOT NULL,
    started_at  double precision NOT NULL,
    finished_at double precision,
    error       text,
    next_at     double precision
);
CREATE TABLE sync_run_groups (
    run_id      bigint NOT NULL,
    group_id    text NOT NULL,
    group_key   text,
    pages       integer NOT NULL,
    customers   integer NOT NULL,
    changes     integer NOT NULL,
    work        integer NOT NULL,
    finished_at double precision NOT NULL,
    PRIMARY KEY (run_id, group_id)
);
"""

_V4 = """
-- Lifecycle (as SQLite's schema 2): a customer_deleted newer than any other event marks
-- the customer; an outbox row or dead letter with a contact is a removal from an email the
-- customer used to have, so the contact is part of the outbox's key.
ALTER TABLE customers ADD COLUMN deleted smallint NOT NULL DEFAULT 0;
ALTER TABLE dead_letters ADD COLUMN contact text NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN contact text NOT NULL DEFAULT '';
ALTER TABLE outbox DROP CONSTRAINT outbox_target_dest_customer_id_group_id_key;
ALTER TABLE outbox ADD CONSTRAINT outbox_key UNIQUE (target, dest, customer_id, group_id, contact);

-- Which group had a key last (newest event wins): a mapping written by key keeps
-- following its group after Plain re-keys it, until another group takes the key.
CREATE TABLE group_keys (
    group_key   text PRIMARY KEY,
    group_id    text NOT NULL,
    event_time  text COLLATE "C" NOT NULL,
    event_id    text COLLATE "C" NOT NULL
);
CREATE INDEX group_keys_group ON group_keys (group_id);
INSERT INTO group_keys (group_key, group_id, event_time, event_id)
    SELECT DISTINCT ON (group_key) group_key, group_id, event_time, event_id FROM groups
    WHERE group_key IS NOT NULL ORDER BY group_key, event_time DESC, event_id DESC;
"""

_V5 = """
-- History (as SQLite's schema 3): one row per outcome written back, or per operator action
-- on a dead letter (attempt 0); reason is the CRM's answer. Pruned by retention.history_days,
-- as the inbox and dead letters are by theirs: hence the indexes on their times.
CREATE TABLE attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target      text NOT NULL,
    dest        text NOT NULL,
    customer_id text NOT NULL,
    group_id    text NOT NULL,
    desired     smallint NOT NULL,
    event_id    text NOT NULL,
    kind        text NOT NULL,          -- done | skipped | retry | dead | replayed | discarded
    attempt     integer NOT NULL,
    reason      text,
    at          double precision NOT NULL
);
CREATE INDEX attempts_customer ON attempts (customer_id, at);
CREATE INDEX attempts_event ON attempts (event_id);
CREATE INDEX attempts_at ON attempts (at);
CREATE INDEX inbox_received ON inbox (received_at);
CREATE INDEX dead_letters_failed ON dead_letters (failed_at);
CREATE INDEX dead_letters_customer ON dead_letters (customer_id);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "inbox, desired and applied state, outbox, dead letters", _V1),
    Migration(2, "rate-limit shares per replica", _V2),
    Migration(3, "backfill and reconcile runs", _V3),
    Migration(4, "lifecycle: deleted customers, old-contact removals, group keys", _V4),
    Migration(5, "attempt history and retention indexes", _V5),
)

#: the newest schema this release knows; a database at a higher version is refused
SCHEMA_VERSION = MIGRATIONS[-1].version

VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    description text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
