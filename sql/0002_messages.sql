-- 0002_messages: users' messages, listed newest first and searchable by word.
-- Applied by hexd in one transaction together with its schema_migrations row, so this
-- file holds no transaction control and nothing that refuses to run in a transaction.

CREATE TABLE messages (
	id uuid PRIMARY KEY,
	-- Deleting a user deletes its messages in the same statement, hence transaction.
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	-- The core counts characters (code points) the same way char_length does in UTF8.
	body text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 10000),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	-- Full text search with the 'simple' configuration: words lower-cased, no stemming
	-- and no stop words, so it behaves the same for every language (docs/MESSAGES.md).
	search tsvector NOT NULL GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED
);

-- Keyset pagination walks (created_at, id) newest first: one user's, and everyone's.
-- The first also serves the foreign key when a user is deleted.
CREATE INDEX messages_user_created_idx ON messages (user_id, created_at DESC, id DESC);
CREATE INDEX messages_created_idx ON messages (created_at DESC, id DESC);
CREATE INDEX messages_search_idx ON messages USING gin (search);
