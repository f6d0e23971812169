-- A media post's stored image and thumbnail (object keys), shown in listings.
ALTER TABLE posts ADD COLUMN media_key text;
ALTER TABLE posts ADD COLUMN thumbnail_key text;
