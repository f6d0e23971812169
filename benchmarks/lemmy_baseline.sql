-- A Lemmy-style design, for benchmarks only: a stored hot_rank column read with
-- ORDER BY hot_rank DESC LIMIT 25, and votes as upserts whose triggers update the
-- post's aggregates row and the author's karma row in the same transaction.
DROP TABLE IF EXISTS post_like, post_aggregates, post, person_aggregates, community_follower
    CASCADE;
CREATE TABLE post (
    post_id text PRIMARY KEY, community_id text NOT NULL, community_name text NOT NULL,
    creator_id text NOT NULL, creator_name text NOT NULL, title text NOT NULL,
    kind text NOT NULL, url text, created_at timestamptz NOT NULL
);
CREATE TABLE post_aggregates (
    post_id text PRIMARY KEY REFERENCES post, community_id text NOT NULL,
    creator_id text NOT NULL, upvotes integer NOT NULL DEFAULT 0,
    downvotes integer NOT NULL DEFAULT 0, score integer NOT NULL DEFAULT 0,
    comments integer NOT NULL DEFAULT 0, hot_rank double precision NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL
);
CREATE INDEX post_aggregates_community_hot ON post_aggregates (community_id, hot_rank DESC);
CREATE TABLE person_aggregates (person_id text PRIMARY KEY, post_score bigint NOT NULL DEFAULT 0);
CREATE TABLE post_like (
    post_id text NOT NULL REFERENCES post, person_id text NOT NULL, score smallint NOT NULL,
    PRIMARY KEY (post_id, person_id)
);
CREATE TABLE community_follower (
    community_id text NOT NULL, person_id text NOT NULL, PRIMARY KEY (person_id, community_id)
);

CREATE OR REPLACE FUNCTION post_like_aggregates() RETURNS trigger AS $$
DECLARE
    d_up integer := 0; d_down integer := 0; target text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        target := OLD.post_id;
        d_up := d_up - (OLD.score = 1)::integer;
        d_down := d_down - (OLD.score = -1)::integer;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        target := NEW.post_id;
        d_up := d_up + (NEW.score = 1)::integer;
        d_down := d_down + (NEW.score = -1)::integer;
    END IF;
    UPDATE post_aggregates SET upvotes = upvotes + d_up, downvotes = downvotes + d_down,
        score = score + d_up - d_down WHERE post_id = target;
    UPDATE person_aggregates SET post_score = post_score + d_up - d_down
        WHERE person_id = (SELECT creator_id FROM post WHERE post_id = target);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER post_like_aggregates AFTER INSERT OR UPDATE OR DELETE ON post_like
    FOR EACH ROW EXECUTE FUNCTION post_like_aggregates();
