-- Written by the karma dataflow only: absolute values from its state, ordered by a
-- per-user sequence so a re-sent or late write never replaces a newer one.
CREATE TABLE karma (
    user_id       text PRIMARY KEY,
    post_karma    integer NOT NULL DEFAULT 0,
    comment_karma integer NOT NULL DEFAULT 0,
    seq           bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
