-- 0001_init: users and the server-side record of their refresh tokens.
-- Applied by hexd in one transaction together with its schema_migrations row, so this
-- file holds no transaction control and nothing that refuses to run in a transaction.

CREATE TABLE users (
	id uuid PRIMARY KEY,
	-- Stored lower case by the core; uniqueness is case-insensitive regardless.
	email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
	password_hash text NOT NULL CHECK (password_hash <> ''),
	membership text NOT NULL DEFAULT 'free' CHECK (membership IN ('free', 'member')),
	role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
	-- Every access token carries the version it was issued under; bumping it revokes them.
	token_version bigint NOT NULL DEFAULT 0 CHECK (token_version >= 0),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_key ON users (lower(email));
-- Keyset pagination walks (created_at, id) in ascending order.
CREATE INDEX users_created_at_id_idx ON users (created_at, id);

CREATE TABLE refresh_tokens (
	jti uuid PRIMARY KEY,
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	-- Every token rotated from one login; reuse of a dead one revokes the family.
	family_id uuid NOT NULL,
	expires_at timestamptz NOT NULL,
	used_at timestamptz,
	revoked_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
