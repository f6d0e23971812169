CREATE TABLE users (
    user_id        text PRIMARY KEY,
    username       text NOT NULL,
    email          text NOT NULL,
    password_hash  text NOT NULL,
    email_verified boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE refresh_tokens (
    token_hash  text PRIMARY KEY,
    family_id   text NOT NULL,
    user_id     text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE communities (
    community_id text PRIMARY KEY,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    visibility   text NOT NULL CHECK (visibility IN ('public', 'restricted', 'private')),
    creator_id   text NOT NULL REFERENCES users (user_id),
    member_count integer NOT NULL DEFAULT 0 CHECK (member_count >= 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX communities_name_key ON communities (lower(name));
CREATE INDEX communities_name_prefix ON communities (lower(name) text_pattern_ops);

CREATE TABLE memberships (
    community_id text NOT NULL REFERENCES communities (community_id),
    user_id      text NOT NULL REFERENCES users (user_id),
    role         text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'moderator')),
    joined_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

-- Transactional outbox: written in the same transaction as the rows above,
-- published to Kafka in id order by the relay, then marked sent.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    key        text NOT NULL,
    event_id   text NOT NULL,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Wake the relay as soon as a row commits (it also polls).
CREATE FUNCTION outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
