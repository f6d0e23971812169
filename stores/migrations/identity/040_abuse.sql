-- Written by the spam dataflow only (stores/abuse.py).
-- Trust per account: the newest score from the dataflow's signals (seq orders writes).
CREATE TABLE account_trust (
    user_id    text PRIMARY KEY,
    score      real NOT NULL,
    signals    jsonb NOT NULL DEFAULT '{}'::jsonb,
    removals   integer NOT NULL DEFAULT 0,
    excluded   boolean NOT NULL DEFAULT false,
    seq        bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- One row per (account, signal, target): what the detector saw, for moderators.
CREATE TABLE abuse_flags (
    user_id      text NOT NULL,
    signal       text NOT NULL CHECK (signal IN ('rapid_posting', 'link_spam', 'vote_ring')),
    target_id    text NOT NULL,
    target_type  text NOT NULL CHECK (target_type IN ('post', 'comment')),
    community_id text NOT NULL,
    evidence     jsonb NOT NULL DEFAULT '{}'::jsonb,
    detected_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, signal, target_id)
);
CREATE INDEX abuse_flags_community ON abuse_flags (community_id, created_at);
