-- Uploads: written by the API (pending, with the outbox event) and moved along by
-- the media dataflow (processing -> ready | failed; never backwards).
CREATE TABLE media (
    media_id      text PRIMARY KEY,
    owner_id      text NOT NULL REFERENCES users (user_id),
    status        text NOT NULL CHECK (status IN ('pending', 'processing', 'ready', 'failed')),
    content_type  text NOT NULL,
    size          bigint NOT NULL,
    width         integer,
    height        integer,
    original_key  text NOT NULL,
    thumbnail_key text,
    thumb_width   integer,
    thumb_height  integer,
    reason        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_owner ON media (owner_id, created_at DESC);
