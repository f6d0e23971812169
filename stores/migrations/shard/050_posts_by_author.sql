-- Account deletion rewrites the author of every post of the account.
CREATE INDEX posts_author ON posts (author_id);
