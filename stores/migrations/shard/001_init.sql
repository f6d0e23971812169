CREATE TABLE posts (
    post_id        text PRIMARY KEY,
    community_id   text NOT NULL,
    community_name text NOT NULL,
    author_id      text NOT NULL,
    author_name    text NOT NULL,
    title          text NOT NULL,
    kind           text NOT NULL,
    body           text,
    url            text,
    media_id       text,
    created_at     timestamptz NOT NULL,
    event_id       text NOT NULL
);
CREATE INDEX posts_community_new ON posts (community_id, created_at DESC, post_id DESC);

-- Written by the votes dataflow only; `seq` makes the upsert idempotent and
-- monotonic (a replayed or older tally never overwrites a newer one).
CREATE TABLE post_aggregates (
    post_id      text PRIMARY KEY,
    community_id text NOT NULL,
    upvotes      integer NOT NULL DEFAULT 0,
    downvotes    integer NOT NULL DEFAULT 0,
    score        integer NOT NULL DEFAULT 0,
    seq          bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX post_aggregates_community ON post_aggregates (community_id);
