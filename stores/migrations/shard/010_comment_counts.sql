-- Comments per post, written by the content dataflow as absolute counts (it keeps
-- the count per post in its state); an upsert never lowers it, so re-sent or
-- reordered writes are harmless. A separate table: a comment may be counted
-- before its post row is (re)written during a replay.
CREATE TABLE post_comment_counts (
    post_id       text PRIMARY KEY,
    community_id  text NOT NULL,
    comment_count integer NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
