-- Written by the ranking dataflow only (idempotent on rank_seq). The Redis sorted
-- sets serve listings; these columns are the fallback for pages beyond them and the
-- source for rebuilding the sets.
CREATE TABLE post_ranks (
    post_id      text PRIMARY KEY,
    community_id text NOT NULL,
    created_at   timestamptz NOT NULL,
    score        integer NOT NULL,
    upvotes      integer NOT NULL,
    downvotes    integer NOT NULL,
    hot          double precision NOT NULL,
    rising       double precision,
    controversy  double precision NOT NULL,
    rank_seq     bigint NOT NULL
);
CREATE INDEX post_ranks_hot ON post_ranks (community_id, hot DESC, post_id DESC);
CREATE INDEX post_ranks_top ON post_ranks (community_id, score DESC, post_id DESC);
