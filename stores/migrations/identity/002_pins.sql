CREATE TABLE community_pins (
    community_id text NOT NULL REFERENCES communities (community_id),
    post_id      text NOT NULL,
    pinned_by    text NOT NULL REFERENCES users (user_id),
    pinned_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, post_id)
);
