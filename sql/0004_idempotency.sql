-- 0004_idempotency: the first answer to each client Idempotency-Key, replayed byte for
-- byte (API.md: same key + same body within 24 h replays the first response).
CREATE TABLE idempotency_keys (
	user_id uuid NOT NULL,
	route text NOT NULL,
	key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
	-- SHA-256 of the request body in canonical JSON: the same parameters in any layout.
	fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
	status integer NOT NULL CHECK (status BETWEEN 100 AND 599),
	body text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (user_id, route, key)
);

-- Answers older than 24 h are ignored and may be purged.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
