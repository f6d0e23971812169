-- Roles: the creator is the owner (and a moderator); owners add and remove moderators.
ALTER TABLE memberships DROP CONSTRAINT memberships_role_check;
ALTER TABLE memberships ADD CONSTRAINT memberships_role_check
    CHECK (role IN ('member', 'moderator', 'owner'));
UPDATE memberships m SET role = 'owner' FROM communities c
    WHERE c.community_id = m.community_id AND c.creator_id = m.user_id;

ALTER TABLE communities ADD COLUMN rules text NOT NULL DEFAULT '';

-- Joining a private community is a request a moderator approves or denies.
CREATE TABLE join_requests (
    community_id text NOT NULL REFERENCES communities (community_id),
    user_id      text NOT NULL REFERENCES users (user_id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, user_id)
);

-- Who may post and comment in a restricted community (besides its moderators).
CREATE TABLE approved_users (
    community_id text NOT NULL REFERENCES communities (community_id),
    user_id      text NOT NULL REFERENCES users (user_id),
    approved_by  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, user_id)
);

-- Bans, mutes and shadow-bans in force; `until` NULL is permanent. A sanction whose
-- `until` has passed is over without anyone touching the row.
CREATE TABLE sanctions (
    community_id text NOT NULL REFERENCES communities (community_id),
    user_id      text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('ban', 'mute', 'shadow_ban')),
    until        timestamptz,
    reason       text NOT NULL DEFAULT '',
    actor_id     text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, user_id, kind)
);
CREATE INDEX sanctions_shadow ON sanctions (community_id) WHERE kind = 'shadow_ban';

-- Locks and flairs the API checks before accepting a comment (the shard rows carry
-- them for reads, written by the content dataflow).
CREATE TABLE post_locks (
    post_id      text PRIMARY KEY,
    community_id text NOT NULL REFERENCES communities (community_id),
    locked_by    text NOT NULL,
    locked_at    timestamptz NOT NULL DEFAULT now()
);

-- Every moderator action, newest first per community.
CREATE TABLE mod_log (
    id           bigserial PRIMARY KEY,
    community_id text NOT NULL REFERENCES communities (community_id),
    actor_id     text NOT NULL,
    actor_name   text NOT NULL,
    action       text NOT NULL,
    target       text NOT NULL,
    reason       text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mod_log_community ON mod_log (community_id, id DESC);

-- The moderation queue: user reports (one per reporter per target) and automatic
-- flags (kind 'spam', source the detector, evidence as JSON), open until a moderator
-- removes or approves the target.
CREATE TABLE moderation_queue (
    item_id      text PRIMARY KEY,
    community_id text NOT NULL REFERENCES communities (community_id),
    target_id    text NOT NULL,
    target_type  text NOT NULL CHECK (target_type IN ('post', 'comment')),
    kind         text NOT NULL CHECK (kind IN ('report', 'spam')),
    source_id    text NOT NULL,
    reason       text NOT NULL,
    evidence     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    resolution   text CHECK (resolution IN ('remove', 'approve')),
    UNIQUE (target_id, kind, source_id)
);
CREATE INDEX moderation_queue_open ON moderation_queue (community_id, created_at)
    WHERE resolved_at IS NULL;

-- Saved posts, newest saved first.
CREATE TABLE saved_posts (
    user_id  text NOT NULL REFERENCES users (user_id),
    post_id  text NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, post_id)
);
CREATE INDEX saved_posts_recent ON saved_posts (user_id, saved_at DESC, post_id DESC);
