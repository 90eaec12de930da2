-- 0006_ledger: the double-entry ledger (docs/PAYMENTS.md, API.md "The ledger"). The
-- database enforces the rules itself, so that no code path (nor an operator's psql) can
-- unbalance the books: entries sum to zero per currency in every transaction (checked at
-- commit), entries and transactions are immutable, and each account's balance is moved
-- by the entry insert itself, so that balance = sum(entries) always holds.

CREATE TABLE accounts (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	kind text NOT NULL CHECK (kind IN ('wallet', 'stripe_clearing', 'membership_revenue',
	                                   'refunds')),
	-- The user of a wallet. No foreign key: the books outlive a deleted user.
	owner_id uuid,
	currency text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
	balance bigint NOT NULL DEFAULT 0,
	allow_negative boolean NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK ((kind = 'wallet') = (owner_id IS NOT NULL)),
	-- System accounts mirror money owed to or by others and may go negative; wallets never.
	CHECK (kind <> 'wallet' OR NOT allow_negative),
	CHECK (allow_negative OR balance >= 0)
);
CREATE UNIQUE INDEX accounts_wallet_idx ON accounts (owner_id, currency) WHERE kind = 'wallet';
CREATE UNIQUE INDEX accounts_system_idx ON accounts (kind, currency) WHERE owner_id IS NULL;

CREATE TABLE journal_transactions (
	id uuid PRIMARY KEY,
	idempotency_key text NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 255),
	-- What caused it: "payment:<id>", "refund:<id>", "transfer:<id>".
	reference text NOT NULL CHECK (length(reference) BETWEEN 1 AND 255),
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE entries (
	id bigserial PRIMARY KEY,
	transaction_id uuid NOT NULL REFERENCES journal_transactions (id),
	account_id uuid NOT NULL REFERENCES accounts (id),
	amount bigint NOT NULL CHECK (amount <> 0),
	currency text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entries_transaction_idx ON entries (transaction_id);
-- A user's entries newest first walk this per wallet; verify() sums by account.
CREATE INDEX entries_account_idx ON entries (account_id, id DESC);

-- The entry moves its account's balance in the same statement; an entry in another
-- currency than its account's is refused (one currency per account).
CREATE FUNCTION ledger_entry_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE accounts SET balance = balance + NEW.amount
	 WHERE id = NEW.account_id AND currency = NEW.currency;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'entry currency % differs from its account''s', NEW.currency
			USING ERRCODE = 'check_violation';
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER entries_apply AFTER INSERT ON entries
	FOR EACH ROW EXECUTE FUNCTION ledger_entry_apply();

-- At commit: the transaction has at least two entries and sums to zero per currency.
CREATE FUNCTION ledger_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	txn uuid;
BEGIN
	-- Each branch is planned only when taken: the two tables name the id differently.
	IF TG_TABLE_NAME = 'entries' THEN
		txn := NEW.transaction_id;
	ELSE
		txn := NEW.id;
	END IF;
	IF (SELECT count(*) FROM entries WHERE transaction_id = txn) < 2 THEN
		RAISE EXCEPTION 'journal transaction % has fewer than two entries', txn
			USING ERRCODE = 'check_violation';
	END IF;
	IF EXISTS (SELECT 1 FROM entries WHERE transaction_id = txn
	           GROUP BY currency HAVING sum(amount) <> 0) THEN
		RAISE EXCEPTION 'journal transaction % does not sum to zero', txn
			USING ERRCODE = 'check_violation';
	END IF;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER entries_balanced AFTER INSERT ON entries
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced();
CREATE CONSTRAINT TRIGGER journal_transactions_balanced AFTER INSERT ON journal_transactions
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced();

-- The books are append-only: a correction is a reversing transaction.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '% is append-only: post a reversing transaction', TG_TABLE_NAME
		USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER entries_immutable BEFORE UPDATE OR DELETE ON entries
	FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER journal_transactions_immutable BEFORE UPDATE OR DELETE ON journal_transactions
	FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- A balance moves only through an entry (the insert trigger above runs one level deep),
-- so that balance = sum(entries) cannot be broken by a stray UPDATE.
CREATE FUNCTION ledger_balance_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.balance IS DISTINCT FROM OLD.balance AND pg_trigger_depth() < 2 THEN
		RAISE EXCEPTION 'account balances move only through entries'
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER accounts_balance_guard BEFORE UPDATE ON accounts
	FOR EACH ROW EXECUTE FUNCTION ledger_balance_guard();
