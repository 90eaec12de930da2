-- 0008_admin_audit: what the admin port needs from the database (docs/ADMIN.md): the audit
-- log of operators' mutating verbs, append-only like the ledger, and the indexes behind
-- two of its reads (PAYMENTS STUCK, PAYMENTS SHOW).
-- Applied by hexd in one transaction together with its schema_migrations row, so this
-- file holds no transaction control and nothing that refuses to run in a transaction.

-- Limits mirror core/ports/audit_repo.h (AUDIT_OPERATOR_MAX, AUDIT_VERB_MAX,
-- AUDIT_ARGS_MAX, AUDIT_ERROR_MAX) in bytes, so that every row fits what AUDIT LIST reads.
CREATE TABLE admin_audit (
	id bigserial PRIMARY KEY,
	at timestamptz NOT NULL DEFAULT now(),
	-- Who: the name given at AUTH ([A-Za-z0-9._@-], "unknown" when none was).
	operator text NOT NULL CHECK (operator ~ '^[A-Za-z0-9._@-]{1,63}$'),
	verb text NOT NULL CHECK (octet_length(verb) BETWEEN 1 AND 31),
	args text NOT NULL CHECK (octet_length(args) <= 1023),
	ok boolean NOT NULL,
	-- Why it failed; a failure always says, a success never does.
	error text CHECK (octet_length(error) BETWEEN 1 AND 199),
	CHECK (ok = (error IS NULL))
);

-- The trail cannot be edited, not even from psql: a mistake is followed by a new row.
CREATE FUNCTION admin_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'admin_audit is append-only'
		USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER admin_audit_immutable BEFORE UPDATE OR DELETE ON admin_audit
	FOR EACH ROW EXECUTE FUNCTION admin_audit_refuse_change();
CREATE TRIGGER admin_audit_no_truncate BEFORE TRUNCATE ON admin_audit
	FOR EACH STATEMENT EXECUTE FUNCTION admin_audit_refuse_change();

-- PAYMENTS STUCK walks the unsettled payments oldest first; settled ones (nearly all of
-- them) are not in this index at all. The statuses are payment_status_unsettled()'s.
CREATE INDEX payments_unsettled_idx ON payments (created_at, id)
	WHERE status IN ('requires_payment_method', 'processing');

-- PAYMENTS SHOW lists the Stripe events that name a payment, oldest first.
CREATE INDEX stripe_events_payment_idx ON stripe_events (payment_id, created_at)
	WHERE payment_id IS NOT NULL;
