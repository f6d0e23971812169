-- Account lifecycle: emails sealed (AES-GCM) and found by a keyed hash; the
-- password hash and the email are purged when an account is deleted; a per-user
-- token epoch refuses every access token issued before a reset or a deletion.
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;
ALTER TABLE users ADD COLUMN email_hash text;
ALTER TABLE users ADD COLUMN email_sealed bytea;
ALTER TABLE users ADD COLUMN token_epoch integer NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX users_email_hash_key ON users (email_hash);
CREATE INDEX users_deleted ON users (user_id) WHERE deleted_at IS NOT NULL;

-- Names of deleted accounts, as keyed hashes: never issued again, yet nothing maps
-- a deleted account's id back to its name.
CREATE TABLE retired_usernames (
    name_hash  text PRIMARY KEY,
    retired_at timestamptz NOT NULL DEFAULT now()
);

-- Deleting an account renames the actor of the notifications it caused.
CREATE INDEX notifications_actor ON notifications (actor_id);
