-- 0007_events: the PostgreSQL side of the event pipeline (core/event.h, docs/EVENTS.md).
-- The outbox learns to carry retries addressed to one consumer and due later; consumers
-- remember what they applied, every failed attempt, and what they gave up on. Rows of
-- the three new tables are never deleted by the code: they are the audit trail.

-- Limits mirror core/event.h (EVENT_ID_MAX, EVENT_TOPIC_MAX, EVENT_CONSUMER_MAX,
-- EVENT_ERROR_MAX) in bytes, so that every row the database accepts fits the structs the
-- adapters read it into: a row that did not would stop the relay or the console for good.

-- consumer '' is the first delivery, to every consumer of the topic; a name addresses a
-- retry or a replay to that consumer alone. attempt numbers deliveries per consumer.
ALTER TABLE outbox
	ADD COLUMN consumer text NOT NULL DEFAULT '' CHECK (consumer ~ '^[a-z0-9_]{0,31}$'),
	ADD COLUMN attempt int NOT NULL DEFAULT 1 CHECK (attempt >= 1),
	-- Not relayed before: a retry waits out its backoff in the outbox, not in a worker.
	ADD COLUMN available_at timestamptz NOT NULL DEFAULT now(),
	ADD CONSTRAINT outbox_event_id_fits CHECK (octet_length(event_id) BETWEEN 1 AND 255),
	ADD CONSTRAINT outbox_topic_fits CHECK (octet_length(topic) <= 63);

-- Rows waiting at upgrade keep their creation order (the default would make them all
-- equal and due at the migration's instant).
UPDATE outbox SET available_at = created_at WHERE published_at IS NULL;

-- One row per delivery: the same event may now go out again, to one consumer, as a
-- later attempt. A retry written twice for the same attempt still fails here.
ALTER TABLE outbox
	DROP CONSTRAINT outbox_topic_event_id_key,
	ADD CONSTRAINT outbox_delivery_key UNIQUE (topic, event_id, consumer, attempt);

-- The relay claims due rows oldest first: this index is exactly that walk.
DROP INDEX outbox_unpublished_idx;
CREATE INDEX outbox_due_idx ON outbox (available_at, id) WHERE published_at IS NULL;

-- An event applied by a consumer: inserted in the transaction that applies it, so the
-- record commits with the effects or not at all. A concurrent insert of the same pair
-- waits on the primary key for the first transaction's outcome.
CREATE TABLE processed_events (
	consumer text NOT NULL CHECK (consumer ~ '^[a-z0-9_]{1,31}$'),
	event_id text NOT NULL CHECK (octet_length(event_id) BETWEEN 1 AND 255),
	processed_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (consumer, event_id)
);

-- The attempt history. The key makes recording an attempt idempotent: two members that
-- raced on one delivery schedule one retry, not two.
CREATE TABLE event_failures (
	consumer text NOT NULL CHECK (consumer ~ '^[a-z0-9_]{1,31}$'),
	event_id text NOT NULL CHECK (octet_length(event_id) BETWEEN 1 AND 255),
	attempt int NOT NULL CHECK (attempt >= 1),
	error text NOT NULL CHECK (octet_length(error) <= 511),
	failed_at timestamptz NOT NULL,
	PRIMARY KEY (consumer, event_id, attempt)
);

-- Events a consumer gave up on, until an operator replays or discards them. A resolved
-- row stays (who, when, why); the same event may die again after a replay, so only one
-- open row per (consumer, event) is unique.
CREATE TABLE dead_letters (
	id bigserial PRIMARY KEY,
	consumer text NOT NULL CHECK (consumer ~ '^[a-z0-9_]{1,31}$'),
	event_id text NOT NULL CHECK (octet_length(event_id) BETWEEN 1 AND 255),
	topic text NOT NULL CHECK (octet_length(topic) <= 63),
	-- text, not json: what could not be parsed is kept as it came, to be looked at.
	payload text NOT NULL,
	attempts int NOT NULL CHECK (attempts >= 1),
	error text NOT NULL CHECK (octet_length(error) <= 511),
	status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'replayed', 'discarded')),
	created_at timestamptz NOT NULL DEFAULT now(),
	resolved_at timestamptz,
	resolved_by text CHECK (octet_length(resolved_by) BETWEEN 1 AND 63),
	reason text CHECK (octet_length(reason) <= 255),
	-- A resolution always says when and by whom, and only a resolved row has one.
	CHECK ((status = 'open') = (resolved_at IS NULL)),
	CHECK ((resolved_at IS NULL) = (resolved_by IS NULL)),
	-- Throwing an event away is never silent.
	CHECK (status <> 'discarded' OR coalesce(reason, '') <> '')
);
CREATE UNIQUE INDEX dead_letters_open_key ON dead_letters (consumer, event_id)
	WHERE status = 'open';
-- The console lists open rows newest first and counts them.
CREATE INDEX dead_letters_open_idx ON dead_letters (id) WHERE status = 'open';

-- The payload as json, or NULL when it is not JSON. A cast in the statement itself would
-- fail the whole transaction (and may even run at plan time, whatever a WHERE says);
-- callers use this to dead-letter such a payload instead of scheduling a retry that can
-- never be relayed.
CREATE FUNCTION event_json_or_null(payload text) RETURNS json
	LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
	RETURN payload::json;
EXCEPTION WHEN others THEN -- syntax, nesting too deep: not JSON all the same
	RETURN NULL;
END $$;
