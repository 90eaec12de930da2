-- 0003_payments: payments with their request storage, Stripe's events, the outbox the
-- event pipeline relays, and the old membership hook's events (docs/PAYMENTS.md).
-- Applied by hexd in one transaction together with its schema_migrations row, so this
-- file holds no transaction control and nothing that refuses to run in a transaction.

CREATE TABLE payments (
	id uuid PRIMARY KEY,
	-- No foreign key to users: a payment is a financial record and stays when its user
	-- is deleted (refunds, disputes and the books still need it).
	user_id uuid NOT NULL,
	-- Minor units of currency; the core also bounds it from above (HEX_AMOUNT_MAX).
	amount bigint NOT NULL CHECK (amount > 0),
	currency text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
	purpose text NOT NULL CHECK (purpose IN ('wallet_top_up', 'membership')),
	status text NOT NULL CHECK (status IN ('requires_payment_method', 'processing',
	                                       'failed', 'succeeded', 'refunded')),
	-- The client's Idempotency-Key; NULL when it sent none.
	client_key text CHECK (length(client_key) BETWEEN 1 AND 255),
	-- Request storage: chosen and committed before the first Stripe call, reused by
	-- every retry of it, so Stripe can never create a second PaymentIntent.
	stripe_idempotency_key text NOT NULL CHECK (length(stripe_idempotency_key) BETWEEN 1 AND 255),
	-- NULL until Stripe answered (or an event told us).
	stripe_payment_intent_id text CHECK (length(stripe_payment_intent_id) BETWEEN 1 AND 255),
	client_secret text,
	-- Why Stripe refused the payment for good (safe to show), to answer retries alike.
	failure_message text,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- One payment per (user, client key): a concurrent duplicate loses here, then resumes the
-- winner's request instead of creating a second one.
CREATE UNIQUE INDEX payments_user_client_key_idx ON payments (user_id, client_key)
	WHERE client_key IS NOT NULL;
CREATE UNIQUE INDEX payments_stripe_idempotency_key_idx ON payments (stripe_idempotency_key);
CREATE UNIQUE INDEX payments_stripe_payment_intent_id_idx ON payments (stripe_payment_intent_id);
-- Keyset pagination walks (created_at, id) newest first: one user's, and everyone's.
CREATE INDEX payments_user_created_idx ON payments (user_id, created_at DESC, id DESC);
CREATE INDEX payments_created_idx ON payments (created_at DESC, id DESC);

-- Every verified Stripe event, once: the primary key is what makes delivery idempotent.
CREATE TABLE stripe_events (
	id text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
	type text NOT NULL,
	-- What the event names, as sent (metadata.payment_id, the PaymentIntent); not
	-- foreign keys: an event about a payment we do not know is still kept.
	payment_id uuid,
	intent_id text,
	amount bigint,
	currency text,
	created_at timestamptz NOT NULL, -- the event's own "created"
	received_at timestamptz NOT NULL DEFAULT now(),
	-- json, not jsonb: the exact bytes Stripe signed, and no refusal of \u0000.
	payload json NOT NULL
);

-- Written in the same transaction as the change it announces; the worker relays unpublished
-- rows in id order (FOR UPDATE SKIP LOCKED) and stamps published_at.
CREATE TABLE outbox (
	id bigserial PRIMARY KEY,
	event_id text NOT NULL,
	topic text NOT NULL CHECK (topic <> ''),
	payload json NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	published_at timestamptz,
	UNIQUE (topic, event_id)
);

CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

-- POST /v1/membership/webhooks is idempotent on its event_id.
CREATE TABLE membership_events (
	event_id text PRIMARY KEY CHECK (length(event_id) BETWEEN 1 AND 255),
	user_id uuid NOT NULL,
	membership text NOT NULL CHECK (membership IN ('free', 'member')),
	received_at timestamptz NOT NULL DEFAULT now()
);
