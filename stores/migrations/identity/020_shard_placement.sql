-- Post shard placement, shared by every process that routes to a shard (the API's
-- ShardRouter, the dataflow sinks) so that all of them see a rebalance's flip.
-- `stores/placement.py` reads it; `python -m stores.rebalance` changes it.

-- The shard databases. `active` shards form the ring; during a move the new shard
-- is `joining` (or the leaving one `draining`); a drained shard is `retired`.
-- Seeded from PG_SHARD_DBS on first use, then this table is the source of truth.
CREATE TABLE shards (
    name       text PRIMARY KEY,
    state      text NOT NULL CHECK (state IN ('joining', 'active', 'draining', 'retired')),
    added_at   timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row: the placement version (bumped, with a NOTIFY on channel
-- `shard_placement`, on every routing change) and the move in progress, if any.
-- During a move communities are handled in ascending id ranges: ids below `lo`
-- route by `new_ring`; in phase `moving`, ids in [lo, hi) are read from their old
-- shard and written to both; in phase `flipped` ids below `hi` route by `new_ring`
-- and [lo, hi) still has old copies to delete. `hi` NULL means no upper bound.
CREATE TABLE shard_placement (
    id                boolean PRIMARY KEY DEFAULT true CHECK (id),
    version           bigint NOT NULL DEFAULT 1,
    operation         text,
    old_ring          text[],
    new_ring          text[],
    phase             text CHECK (phase IN ('pinned', 'moving', 'flipped')),
    lo                text NOT NULL DEFAULT '',
    hi                text,
    moved_communities integer NOT NULL DEFAULT 0,
    moved_rows        bigint NOT NULL DEFAULT 0,
    started_at        timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
INSERT INTO shard_placement DEFAULT VALUES;

-- Every routing process reports the placement version it uses. A writer reports
-- a version only once no write routed by an older one is in flight; the rebalance
-- waits for every observer seen recently to reach the version it set.
CREATE TABLE placement_observers (
    observer_id text PRIMARY KEY,
    role        text NOT NULL,
    version     bigint NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz NOT NULL DEFAULT now()
);

-- History of finished operations (for `python -m stores.rebalance status`).
CREATE TABLE shard_operations (
    id          bigserial PRIMARY KEY,
    operation   text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    communities integer NOT NULL,
    rows_moved  bigint NOT NULL,
    seconds     double precision NOT NULL
);
