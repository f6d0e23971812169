-- Written by the mentions dataflow (one row per recipient per item: the unique key
-- makes its inserts idempotent); read_at by the API, delivered_at by the WebSocket
-- server once it has written the notification to a connection.
CREATE TABLE notifications (
    notification_id text PRIMARY KEY,
    recipient_id    text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('reply', 'mention', 'mod_action')),
    actor_id        text NOT NULL,
    actor_name      text NOT NULL,
    target_id       text NOT NULL,
    post_id         text,
    snippet         text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    read_at         timestamptz,
    delivered_at    timestamptz,
    UNIQUE (recipient_id, target_id)
);
CREATE INDEX notifications_inbox ON notifications (recipient_id, created_at DESC, notification_id DESC);
CREATE INDEX notifications_unread ON notifications (recipient_id) WHERE read_at IS NULL;
CREATE INDEX notifications_undelivered ON notifications (recipient_id, created_at)
    WHERE delivered_at IS NULL;
