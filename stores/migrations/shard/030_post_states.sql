-- What happened to a post after it was created: edits, deletion, removal, lock and
-- flair. Written by the content dataflow only, column by column (each event kind
-- sets its own columns), in a table of its own so that a state may arrive before
-- its post row does during a replay.
CREATE TABLE post_states (
    post_id      text PRIMARY KEY,
    community_id text NOT NULL,
    title        text,
    body         text,
    url          text,
    edited_at    timestamptz,
    deleted_at   timestamptz,
    removed      boolean NOT NULL DEFAULT false,
    locked       boolean NOT NULL DEFAULT false,
    flair        text
);

CREATE INDEX posts_author_recent ON posts (author_id, created_at DESC, post_id DESC);
