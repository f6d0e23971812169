-- Every change to what API processes cache about an account, a reader's standing in a
-- community or a community's settings is announced on the `cache_notices` channel at
-- commit, whoever makes it (API, dataflow or operator command): each API worker
-- listens and forgets its entry, so the caches can live long without serving a ban,
-- a revoked token or a visibility change late.
CREATE FUNCTION announce_standing() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed record;
BEGIN
    IF TG_OP = 'DELETE' THEN changed := OLD; ELSE changed := NEW; END IF;
    PERFORM pg_notify('cache_notices', 'standing:' || changed.community_id || ':' || changed.user_id);
    IF TG_OP = 'UPDATE' AND (OLD.community_id, OLD.user_id) IS DISTINCT FROM (NEW.community_id, NEW.user_id) THEN
        PERFORM pg_notify('cache_notices', 'standing:' || OLD.community_id || ':' || OLD.user_id);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION announce_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cache_notices', 'account:' || NEW.user_id);
    RETURN NULL;
END $$;

CREATE FUNCTION announce_community() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cache_notices', 'community:' || NEW.community_id);
    RETURN NULL;
END $$;

CREATE TRIGGER memberships_announce AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION announce_standing();
CREATE TRIGGER approved_users_announce AFTER INSERT OR UPDATE OR DELETE ON approved_users
    FOR EACH ROW EXECUTE FUNCTION announce_standing();
CREATE TRIGGER join_requests_announce AFTER INSERT OR UPDATE OR DELETE ON join_requests
    FOR EACH ROW EXECUTE FUNCTION announce_standing();
CREATE TRIGGER sanctions_announce AFTER INSERT OR UPDATE OR DELETE ON sanctions
    FOR EACH ROW EXECUTE FUNCTION announce_standing();
CREATE TRIGGER users_announce AFTER UPDATE OF token_epoch, email_verified, deleted_at ON users
    FOR EACH ROW EXECUTE FUNCTION announce_account();
CREATE TRIGGER communities_announce AFTER UPDATE ON communities
    FOR EACH ROW EXECUTE FUNCTION announce_community();
