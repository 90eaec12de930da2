/* pg_ledger_repo.c: accounts, journal transactions and entries in PostgreSQL. */
#include "adapters/postgres/pg_ledger_repo.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/postgres/pg_result.h"
#include "adapters/postgres/pg_sql.h"
#include "core/logger.h"

/* clang-format off */
#define ACCOUNT_COLUMNS \
	"id, kind, coalesce(owner_id::text, ''), currency, balance, allow_negative"
/* The column order row_to_entry() reads, over entries e, accounts a, journal_transactions t. */
#define ENTRY_COLUMNS \
	"e.id, e.transaction_id, e.account_id, a.kind, coalesce(a.owner_id::text, ''), " \
	"e.currency, e.amount, t.reference, " PG_SQL_US("e.created_at")
#define ENTRY_FROM \
	"FROM entries e JOIN accounts a ON a.id = e.account_id " \
	"JOIN journal_transactions t ON t.id = e.transaction_id "
/*
 * The operators' order of accounts: system accounts first, then wallets, each by their
 * natural key (kind and currency; owner and currency), which is unique (see the two
 * unique indexes of sql/0006), so that it is a total order a keyset cursor can walk.
 */
#define ACCOUNT_ORDER "kind = 'wallet', kind, coalesce(owner_id::text, ''), currency"
/* clang-format on */

enum {
	LED_TXN_INSERT,
	LED_ACCOUNT_ENSURE,
	LED_ACCOUNT_LOCK,
	LED_ENTRIES_INSERT,
	LED_TXN_BY_KEY,
	LED_BALANCES,
	LED_ENTRIES_PAGE,
	LED_VERIFY_COUNT,
	LED_VERIFY_ACCOUNTS,
	LED_VERIFY_CURRENCIES,
	LED_ACCOUNTS_FIRST,
	LED_ACCOUNTS_AFTER,
	LED_ACCOUNT_EXISTS,
	LED_ACCOUNT_ENTRIES,
	LED_STMT_COUNT
};

/* SQL reads best laid out as SQL. */
/* clang-format off */
const struct pg_stmt pg_ledger_repo_stmts[LED_STMT_COUNT] = {
	/* A second post of a key waits for the first one's transaction, then does nothing. */
	[LED_TXN_INSERT] = {"ledger_txn_insert",
		"INSERT INTO journal_transactions (id, idempotency_key, reference, created_at) "
		"VALUES ($1::uuid, $2, $3, " PG_SQL_TS("$4") ") "
		"ON CONFLICT (idempotency_key) DO NOTHING", 4},
	/*
	 * Finds or creates an account. The row a concurrent transaction created after this
	 * statement's snapshot is not seen: the caller runs it again (a fresh snapshot).
	 */
	[LED_ACCOUNT_ENSURE] = {"ledger_account_ensure",
		"WITH ins AS (INSERT INTO accounts (kind, owner_id, currency, allow_negative) "
		"VALUES ($1, nullif($2, '')::uuid, $3, $4::boolean) ON CONFLICT DO NOTHING "
		"RETURNING id) "
		"SELECT id FROM ins UNION ALL "
		"SELECT id FROM accounts WHERE kind = $1 AND currency = $3 "
		"AND owner_id IS NOT DISTINCT FROM nullif($2, '')::uuid LIMIT 1", 4},
	/*
	 * The accounts of (kind, owner, currency) triples, found through the two unique
	 * indexes and locked in one global order (LockRows runs above the sort): Stripe
	 * clearing first, then the other system accounts, then wallets, each by id. That
	 * order matters to the event consumers, which post several events in one
	 * transaction: every posting they make touches clearing, so a batch's first lock is
	 * always clearing, and two batches in one currency can never hold accounts the other
	 * waits for (with revenue before clearing, a membership posting held revenue while
	 * waiting for clearing, held by a batch that wanted revenue next: a deadlock).
	 * All or nothing: when fewer than $4 exist, none is returned and none is locked, so
	 * that the caller creates the missing ones holding no lock (creating while holding
	 * one would wait on a concurrent creator that waits on our lock: a deadlock).
	 */
	[LED_ACCOUNT_LOCK] = {"ledger_account_lock",
		"WITH found AS ("
		"SELECT a.id FROM accounts a JOIN unnest($1::text[], $2::text[], $3::text[]) "
		"AS r(k, o, c) ON a.kind = 'wallet' AND r.k = 'wallet' "
		"AND a.owner_id = nullif(r.o, '')::uuid AND a.currency = r.c "
		"UNION SELECT a.id FROM accounts a JOIN unnest($1::text[], $2::text[], $3::text[]) "
		"AS r(k, o, c) ON a.owner_id IS NULL AND r.k <> 'wallet' AND a.kind = r.k "
		"AND a.currency = r.c) "
		"SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE id IN (SELECT id FROM found) "
		"AND (SELECT count(*) FROM found) = $4::int "
		"ORDER BY owner_id IS NOT NULL, kind <> 'stripe_clearing', id "
		"FOR UPDATE OF accounts", 4},
	/* In posting order, so that entry ids follow it; the ids come back for the answer. */
	[LED_ENTRIES_INSERT] = {"ledger_entries_insert",
		"INSERT INTO entries (transaction_id, account_id, amount, currency, created_at) "
		"SELECT $1::uuid, u.a, u.m, u.c, " PG_SQL_TS("$5") " "
		"FROM unnest($2::uuid[], $3::bigint[], $4::text[]) WITH ORDINALITY AS u(a, m, c, o) "
		"ORDER BY u.o RETURNING id", 5},
	[LED_TXN_BY_KEY] = {"ledger_txn_by_key",
		"SELECT t.id, t.idempotency_key, " PG_SQL_US("t.created_at") ", " ENTRY_COLUMNS " "
		ENTRY_FROM "WHERE t.idempotency_key = $1 ORDER BY e.id", 1},
	/* The newest entry of each wallet is one step down entries_account_idx. */
	[LED_BALANCES] = {"ledger_balances",
		"SELECT " ACCOUNT_COLUMNS ", (SELECT " PG_SQL_US("e.created_at") " FROM entries e "
		"WHERE e.account_id = accounts.id ORDER BY e.id DESC LIMIT 1) FROM accounts "
		"WHERE kind = 'wallet' AND owner_id = $1::uuid ORDER BY currency LIMIT $2::int", 2},
	[LED_ENTRIES_PAGE] = {"ledger_entries_page",
		"SELECT " ENTRY_COLUMNS " " ENTRY_FROM
		"WHERE a.kind = 'wallet' AND a.owner_id = $1::uuid "
		"AND e.id < coalesce(nullif($3::bigint, 0), 9223372036854775807) "
		"ORDER BY e.id DESC LIMIT $2::int", 3},
	[LED_VERIFY_COUNT] = {"ledger_verify_count", "SELECT count(*) FROM accounts", 0},
	[LED_VERIFY_ACCOUNTS] = {"ledger_verify_accounts",
		"SELECT a.id, a.balance, coalesce(s.total, 0)::bigint FROM accounts a "
		"LEFT JOIN (SELECT account_id, sum(amount) AS total FROM entries "
		"GROUP BY account_id) s ON s.account_id = a.id "
		"WHERE a.balance <> coalesce(s.total, 0) ORDER BY a.id", 0},
	[LED_VERIFY_CURRENCIES] = {"ledger_verify_currencies",
		"SELECT currency, sum(amount)::bigint FROM entries GROUP BY currency "
		"HAVING sum(amount) <> 0 ORDER BY currency", 0},
	[LED_ACCOUNTS_FIRST] = {"ledger_accounts_first",
		"SELECT " ACCOUNT_COLUMNS " FROM accounts "
		"ORDER BY " ACCOUNT_ORDER " LIMIT $1::int", 1},
	/* The cursor's own key comes from its row: no row, no comparison, no result. */
	[LED_ACCOUNTS_AFTER] = {"ledger_accounts_after",
		"SELECT " ACCOUNT_COLUMNS " FROM accounts "
		"WHERE (" ACCOUNT_ORDER ") > "
		"(SELECT " ACCOUNT_ORDER " FROM accounts WHERE id = $2::uuid) "
		"ORDER BY " ACCOUNT_ORDER " LIMIT $1::int", 2},
	[LED_ACCOUNT_EXISTS] = {"ledger_account_exists",
		"SELECT 1 FROM accounts WHERE id = $1::uuid", 1},
	/* One account's entries newest first: a walk down entries_account_idx. */
	[LED_ACCOUNT_ENTRIES] = {"ledger_account_entries",
		"SELECT " ENTRY_COLUMNS " " ENTRY_FROM
		"WHERE e.account_id = $1::uuid "
		"AND e.id < coalesce(nullif($3::bigint, 0), 9223372036854775807) "
		"ORDER BY e.id DESC LIMIT $2::int", 3},
};
/* clang-format on */

const size_t pg_ledger_repo_stmt_count = LED_STMT_COUNT;

static const struct pg_stmt *stmt(int which)
{
	return &pg_ledger_repo_stmts[which];
}

static void fmt_i64(char buf[24], int64_t v)
{
	snprintf(buf, 24, "%" PRId64, v);
}

static bool row_to_ref(const PGresult *r, int row, int col, struct ledger_account_ref *ref)
{
	char kind[32];
	return pg_result_text(r, row, col, kind, sizeof kind) &&
	       ledger_kind_parse(kind, &ref->kind) &&
	       pg_result_text(r, row, col + 1, ref->owner_id, sizeof ref->owner_id) &&
	       pg_result_text(r, row, col + 2, ref->currency, sizeof ref->currency);
}

static bool row_to_account(const PGresult *r, int row, struct ledger_account *a)
{
	bool ok = pg_result_text(r, row, 0, a->id, sizeof a->id) &&
	          row_to_ref(r, row, 1, &a->ref) && pg_result_int64(r, row, 4, &a->balance) &&
	          pg_result_bool(r, row, 5, &a->allow_negative);
	if (!ok)
		log_error("pg_ledger_row_invalid",
		          "an accounts row does not fit struct ledger_account");
	return ok;
}

/* ENTRY_COLUMNS starting at column col. */
static bool row_to_entry(const PGresult *r, int row, int col, struct ledger_entry *e)
{
	bool ok = pg_result_int64(r, row, col, &e->id) &&
	          pg_result_text(r, row, col + 1, e->transaction_id, sizeof e->transaction_id) &&
	          pg_result_text(r, row, col + 2, e->account_id, sizeof e->account_id) &&
	          row_to_ref(r, row, col + 3, &e->account) &&
	          pg_result_int64(r, row, col + 6, &e->amount) &&
	          pg_result_text(r, row, col + 7, e->reference, sizeof e->reference) &&
	          pg_result_int64(r, row, col + 8, &e->created_at_us);
	if (!ok)
		log_error("pg_ledger_row_invalid",
		          "an entries row does not fit struct ledger_entry");
	return ok;
}

static enum hex_status txn_by_key(struct pg_conn *c, const char *key, struct ledger_txn *out)
{
	PGresult *r = NULL;
	const char *params[] = {key};
	memset(out, 0, sizeof *out);
	enum hex_status st = pg_conn_query(c, stmt(LED_TXN_BY_KEY), params, &r);
	if (st != HEX_OK)
		goto out;
	int rows = PQntuples(r);
	if (rows == 0) {
		st = HEX_NOT_FOUND;
		goto out;
	}
	if (rows > LEDGER_ENTRIES_MAX || !pg_result_text(r, 0, 0, out->id, sizeof out->id) ||
	    !pg_result_text(r, 0, 1, out->idempotency_key, sizeof out->idempotency_key) ||
	    !pg_result_int64(r, 0, 2, &out->created_at_us)) {
		st = HEX_INTERNAL;
		goto out;
	}
	for (int i = 0; i < rows; i++) {
		if (!row_to_entry(r, i, 3, &out->entries[i])) {
			st = HEX_INTERNAL;
			goto out;
		}
	}
	out->n = rows;
	hex_strlcpy(out->reference, out->entries[0].reference, sizeof out->reference);
out:
	PQclear(r);
	return st;
}

static enum hex_status pg_ledger_repo_get_by_key(void *self, const char *key,
                                                 struct ledger_txn *out)
{
	return txn_by_key(self, key, out);
}

/* Orders refs so that concurrent posts create new accounts in one order (no deadlock). */
static int ref_cmp(const struct ledger_account_ref *a, const struct ledger_account_ref *b)
{
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	int d = strcmp(a->owner_id, b->owner_id);
	return d != 0 ? d : strcmp(a->currency, b->currency);
}

/* Inside post's transaction: the id of the account ref names, created if new. */
static enum hex_status ensure_account(struct pg_conn *c, const struct ledger_account_ref *ref,
                                      char id[HEX_ID_LEN + 1])
{
	const char *params[] = {ledger_kind_name(ref->kind), ref->owner_id, ref->currency,
	                        ledger_kind_allows_negative(ref->kind) ? "true" : "false"};
	enum hex_status st = HEX_INTERNAL;
	for (int attempt = 0; attempt < 2 && st == HEX_INTERNAL; attempt++) {
		PGresult *r = NULL;
		st = pg_conn_query(c, stmt(LED_ACCOUNT_ENSURE), params, &r);
		if (st == HEX_OK &&
		    (PQntuples(r) != 1 || !pg_result_text(r, 0, 0, id, HEX_ID_LEN + 1)))
			st = HEX_INTERNAL; /* created concurrently, unseen by this snapshot */
		PQclear(r);
		if (st != HEX_OK && st != HEX_INTERNAL)
			break;
	}
	return st;
}

/* Appends s to the PostgreSQL array literal in buf ("{" to start, "}" to end it). */
static void array_add(char *buf, size_t n, const char *s)
{
	size_t len = strlen(buf);
	bool sep = len > 1 && strcmp(s, "}") != 0;
	snprintf(buf + len, n - len, "%s%s", sep ? "," : "", s);
}

#define ARRAY_MAX (LEDGER_ENTRIES_MAX * (HEX_ID_LEN + 2) + 4)

/* The three parallel arrays of the postings' account refs, for LED_ACCOUNT_LOCK, and
 * how many distinct accounts they name. */
struct ref_arrays {
	char kinds[LEDGER_ENTRIES_MAX * 24 + 4], owners[ARRAY_MAX],
	    currencies[LEDGER_ENTRIES_MAX * 5 + 4];
	char distinct[12];
};

static bool same_ref(const struct ledger_account_ref *a, const struct ledger_account_ref *b)
{
	return a->kind == b->kind && strcmp(a->owner_id, b->owner_id) == 0 &&
	       strcmp(a->currency, b->currency) == 0;
}

static void ref_arrays_of(const struct ledger_txn_request *t, struct ref_arrays *a)
{
	strcpy(a->kinds, "{");
	strcpy(a->owners, "{");
	strcpy(a->currencies, "{");
	for (int i = 0; i < t->n; i++) {
		const struct ledger_account_ref *ref = &t->postings[i].account;
		array_add(a->kinds, sizeof a->kinds, ledger_kind_name(ref->kind));
		array_add(a->owners, sizeof a->owners,
		          ref->owner_id[0] != '\0' ? ref->owner_id : "\"\"");
		array_add(a->currencies, sizeof a->currencies, ref->currency);
	}
	array_add(a->kinds, sizeof a->kinds, "}");
	array_add(a->owners, sizeof a->owners, "}");
	array_add(a->currencies, sizeof a->currencies, "}");
	int n = 0;
	for (int i = 0; i < t->n; i++) {
		bool seen = false;
		for (int j = 0; j < i && !seen; j++)
			seen = same_ref(&t->postings[i].account, &t->postings[j].account);
		n += !seen;
	}
	snprintf(a->distinct, sizeof a->distinct, "%d", n);
}

/*
 * Inside post's transaction: locks the accounts of every posting and puts their ids in
 * ids[] (posting order); *missing says some do not exist yet (nothing is checked then).
 * HEX_CONFLICT when the postings would take an account that may not go negative below 0.
 */
static enum hex_status lock_and_check(struct pg_conn *c, const struct ledger_txn_request *t,
                                      const struct ref_arrays *a, char ids[][HEX_ID_LEN + 1],
                                      bool *missing)
{
	const char *params[] = {a->kinds, a->owners, a->currencies, a->distinct};
	PGresult *r = NULL;
	for (int i = 0; i < t->n; i++)
		ids[i][0] = '\0';
	enum hex_status st = pg_conn_query(c, stmt(LED_ACCOUNT_LOCK), params, &r);
	if (st != HEX_OK)
		goto out;
	for (int row = 0; row < PQntuples(r); row++) {
		struct ledger_account acc;
		if (!row_to_account(r, row, &acc)) {
			st = HEX_INTERNAL;
			goto out;
		}
		int64_t total = acc.balance;
		for (int i = 0; i < t->n; i++) {
			if (!same_ref(&t->postings[i].account, &acc.ref))
				continue;
			memcpy(ids[i], acc.id, sizeof acc.id);
			total += t->postings[i].amount;
		}
		if (!acc.allow_negative && total < 0) {
			st = HEX_CONFLICT;
			goto out;
		}
	}
	*missing = false;
	for (int i = 0; i < t->n; i++)
		*missing = *missing || ids[i][0] == '\0';
out:
	PQclear(r);
	return st;
}

/* Inserts the entries; out->entries get their ids (ascending: posting order). */
static enum hex_status insert_entries(struct pg_conn *c, const struct ledger_txn_request *t,
                                      char ids[][HEX_ID_LEN + 1], const char *now,
                                      struct ledger_txn *out)
{
	char accounts[ARRAY_MAX] = "{", amounts[LEDGER_ENTRIES_MAX * 24 + 4] = "{",
	     currencies[LEDGER_ENTRIES_MAX * 5 + 4] = "{";
	for (int i = 0; i < t->n; i++) {
		char amount[24];
		fmt_i64(amount, t->postings[i].amount);
		array_add(accounts, sizeof accounts, ids[i]);
		array_add(amounts, sizeof amounts, amount);
		array_add(currencies, sizeof currencies, t->postings[i].account.currency);
	}
	array_add(accounts, sizeof accounts, "}");
	array_add(amounts, sizeof amounts, "}");
	array_add(currencies, sizeof currencies, "}");
	const char *params[] = {t->id, accounts, amounts, currencies, now};
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(c, stmt(LED_ENTRIES_INSERT), params, &r);
	if (st != HEX_OK)
		goto out;
	if (PQntuples(r) != t->n) {
		st = HEX_INTERNAL;
		goto out;
	}
	int64_t got[LEDGER_ENTRIES_MAX];
	for (int i = 0; i < t->n; i++)
		if (!pg_result_int64(r, i, 0, &got[i])) {
			st = HEX_INTERNAL;
			goto out;
		}
	for (int i = 1; i < t->n; i++) /* ids are drawn in posting order: sorted, they match */
		for (int j = i; j > 0 && got[j - 1] > got[j]; j--) {
			int64_t tmp = got[j];
			got[j] = got[j - 1];
			got[j - 1] = tmp;
		}
	for (int i = 0; i < t->n; i++)
		out->entries[i].id = got[i];
out:
	PQclear(r);
	return st;
}

/* Creates the accounts the postings name that do not exist yet, in one order (ref_cmp),
 * so that concurrent posts creating the same accounts never deadlock. */
static enum hex_status create_missing(struct pg_conn *c, const struct ledger_txn_request *t,
                                      char ids[][HEX_ID_LEN + 1])
{
	int order[LEDGER_ENTRIES_MAX];
	for (int i = 0; i < t->n; i++)
		order[i] = i;
	for (int i = 1; i < t->n; i++) /* insertion sort: at most LEDGER_ENTRIES_MAX */
		for (int j = i; j > 0 && ref_cmp(&t->postings[order[j - 1]].account,
		                                 &t->postings[order[j]].account) > 0;
		     j--) {
			int tmp = order[j];
			order[j] = order[j - 1];
			order[j - 1] = tmp;
		}
	for (int i = 0; i < t->n; i++) {
		if (ids[order[i]][0] != '\0')
			continue;
		enum hex_status st =
		    ensure_account(c, &t->postings[order[i]].account, ids[order[i]]);
		if (st != HEX_OK)
			return st;
	}
	return HEX_OK;
}

/* The answer of a post, from what it wrote (no second read). */
static void txn_of(const struct ledger_txn_request *t, char ids[][HEX_ID_LEN + 1], int64_t now_us,
                   struct ledger_txn *out)
{
	memcpy(out->id, t->id, sizeof out->id);
	hex_strlcpy(out->idempotency_key, t->idempotency_key, sizeof out->idempotency_key);
	hex_strlcpy(out->reference, t->reference, sizeof out->reference);
	out->created_at_us = now_us;
	out->n = t->n;
	for (int i = 0; i < t->n; i++) {
		struct ledger_entry *e = &out->entries[i];
		memcpy(e->transaction_id, t->id, sizeof e->transaction_id);
		memcpy(e->account_id, ids[i], sizeof e->account_id);
		e->account = t->postings[i].account;
		e->amount = t->postings[i].amount;
		hex_strlcpy(e->reference, t->reference, sizeof e->reference);
		e->created_at_us = now_us;
	}
}

/*
 * Inside post's transaction, after the journal row: locks the accounts (one statement
 * when they all exist, the common case), creates the missing ones first otherwise, then
 * writes the entries.
 */
static enum hex_status post_entries(struct pg_conn *c, const struct ledger_txn_request *t,
                                    int64_t now_us, const char *now, struct ledger_txn *out)
{
	char ids[LEDGER_ENTRIES_MAX][HEX_ID_LEN + 1];
	struct ref_arrays a;
	ref_arrays_of(t, &a);
	bool missing = false;
	enum hex_status st = lock_and_check(c, t, &a, ids, &missing);
	if (st == HEX_OK && missing) {
		if ((st = create_missing(c, t, ids)) != HEX_OK)
			return st;
		st = lock_and_check(c, t, &a, ids, &missing);
		if (st == HEX_OK && missing)
			st = HEX_INTERNAL; /* created a moment ago, yet not found */
	}
	if (st != HEX_OK)
		return st;
	txn_of(t, ids, now_us, out);
	return insert_entries(c, t, ids, now, out);
}

/* One attempt at post: its own transaction (or savepoint, inside a caller's). */
static enum hex_status post_once(struct pg_conn *c, const struct ledger_txn_request *t,
                                 int64_t now_us, struct ledger_txn *out, bool *duplicate)
{
	*duplicate = false;
	memset(out, 0, sizeof *out);
	char now[24];
	fmt_i64(now, now_us);
	const char *params[] = {t->id, t->idempotency_key, t->reference, now};
	PGresult *r = NULL;

	enum hex_status st = pg_conn_begin(c);
	if (st != HEX_OK)
		goto out;
	if ((st = pg_conn_query(c, stmt(LED_TXN_INSERT), params, &r)) != HEX_OK)
		goto out;
	if (pg_result_affected(r) == 0) {
		*duplicate = true;
		goto out;
	}
	if ((st = post_entries(c, t, now_us, now, out)) != HEX_OK)
		goto out;
	/* The deferred balance check runs here: an unbalanced request fails at commit. */
	st = pg_conn_commit(c);
out:
	if (st != HEX_OK || *duplicate)
		pg_conn_rollback(c);
	PQclear(r);
	if (st == HEX_OK && *duplicate)
		st = txn_by_key(c, t->idempotency_key, out);
	if (st != HEX_OK) {
		*duplicate = false;
		memset(out, 0, sizeof *out);
	}
	return st;
}

/* Attempts of a post that PostgreSQL chose as a deadlock victim (or could not serialise). */
#define POST_ATTEMPTS 3

static enum hex_status pg_ledger_repo_post(void *self, const struct ledger_txn_request *t,
                                           int64_t now_us, struct ledger_txn *out, bool *duplicate)
{
	struct pg_conn *c = self;
	*duplicate = false;
	memset(out, 0, sizeof *out);
	if (t->n < 2 || t->n > LEDGER_ENTRIES_MAX)
		return HEX_INVALID;
	for (int i = 0; i < t->n; i++)
		if (!ledger_account_ref_valid(&t->postings[i].account))
			return HEX_INVALID;
	/*
	 * A transfer can deadlock with a consumer batch that holds wallet locks until it
	 * commits (docs/LEDGER.md). Its own transaction is then wholly rolled back, so it runs
	 * again here rather than answering 503. Inside a caller's transaction it is not: the
	 * caller still holds its locks, so only the caller can resolve it (the event
	 * consumer retries the event).
	 */
	bool outermost = pg_conn_depth(c) == 0;
	enum hex_status st;
	for (int attempt = 1;; attempt++) {
		st = post_once(c, t, now_us, out, duplicate);
		if (st != HEX_UNAVAILABLE || !outermost || attempt == POST_ATTEMPTS ||
		    !pg_conn_last_retryable(c))
			return st;
		log_info("ledger_post_retried",
		         "posting %s again (attempt %d) after a deadlock or serialization failure",
		         t->reference, attempt + 1);
	}
}

static enum hex_status pg_ledger_repo_balances(void *self, const char *user_id,
                                               struct ledger_balances *out)
{
	struct pg_conn *c = self;
	memset(out, 0, sizeof *out);
	if (!user_id_valid(user_id))
		return HEX_OK; /* no such owner: no wallets */
	char limit[24];
	fmt_i64(limit, LEDGER_WALLETS_MAX);
	const char *params[] = {user_id, limit};
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(c, stmt(LED_BALANCES), params, &r);
	if (st != HEX_OK)
		goto out;
	for (int i = 0; i < PQntuples(r); i++) {
		if (!row_to_account(r, i, &out->wallets[i]) ||
		    !pg_result_int64(r, i, 6, &out->wallets[i].updated_at_us)) {
			st = HEX_INTERNAL;
			goto out;
		}
		out->n = i + 1;
	}
out:
	if (st != HEX_OK)
		memset(out, 0, sizeof *out);
	PQclear(r);
	return st;
}

/* One page of entries newest first through statement which ($1 id, $2 limit, $3 before);
 * *rows gets how many rows the statement gave. */
static enum hex_status entries_page(struct pg_conn *c, int which, const char *id, int limit,
                                    int64_t before_id, struct ledger_entry_page *out, int *rows)
{
	char lim[24], before[24];
	fmt_i64(lim, limit + 1); /* one more tells whether there is a next page */
	fmt_i64(before, before_id);
	const char *params[] = {id, lim, before};
	PGresult *r = NULL;
	*rows = 0;
	enum hex_status st = pg_conn_query(c, stmt(which), params, &r);
	if (st != HEX_OK)
		goto out;
	*rows = PQntuples(r);
	out->has_more = *rows > limit;
	for (int i = 0; i < *rows && i < limit; i++) {
		if (!row_to_entry(r, i, 0, &out->items[i])) {
			st = HEX_INTERNAL;
			goto out;
		}
		out->count = i + 1;
	}
out:
	if (st != HEX_OK)
		memset(out, 0, sizeof *out);
	PQclear(r);
	return st;
}

static enum hex_status pg_ledger_repo_entries(void *self, const char *user_id, int limit,
                                              int64_t before_id, struct ledger_entry_page *out)
{
	memset(out, 0, sizeof *out);
	if (limit < 1 || limit > HEX_LIST_MAX || before_id < 0)
		return HEX_INVALID;
	if (!user_id_valid(user_id))
		return HEX_OK;
	int rows;
	return entries_page(self, LED_ENTRIES_PAGE, user_id, limit, before_id, out, &rows);
}

static enum hex_status verify_rows(struct pg_conn *c, struct ledger_verify_report *out)
{
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(c, stmt(LED_VERIFY_COUNT), NULL, &r);
	int64_t count = 0;
	if (st != HEX_OK || !pg_result_int64(r, 0, 0, &count))
		goto fail;
	out->accounts_checked = (long)count;
	PQclear(r);
	if ((st = pg_conn_query(c, stmt(LED_VERIFY_ACCOUNTS), NULL, &r)) != HEX_OK)
		goto fail;
	out->nmismatches = PQntuples(r);
	for (int i = 0; i < out->nmismatches && i < LEDGER_MISMATCH_MAX; i++) {
		struct ledger_mismatch *m = &out->mismatches[i];
		if (!pg_result_text(r, i, 0, m->account_id, sizeof m->account_id) ||
		    !pg_result_int64(r, i, 1, &m->balance) ||
		    !pg_result_int64(r, i, 2, &m->entries_sum))
			goto fail;
	}
	PQclear(r);
	if ((st = pg_conn_query(c, stmt(LED_VERIFY_CURRENCIES), NULL, &r)) != HEX_OK)
		goto fail;
	out->nunbalanced = PQntuples(r);
	for (int i = 0; i < out->nunbalanced && i < LEDGER_CURRENCY_MAX; i++) {
		if (!pg_result_text(r, i, 0, out->unbalanced[i].currency,
		                    sizeof out->unbalanced[i].currency) ||
		    !pg_result_int64(r, i, 1, &out->unbalanced[i].sum))
			goto fail;
	}
	PQclear(r);
	return HEX_OK;
fail:
	PQclear(r);
	return st != HEX_OK ? st : HEX_INTERNAL;
}

static enum hex_status pg_ledger_repo_verify(void *self, struct ledger_verify_report *out)
{
	struct pg_conn *c = self;
	memset(out, 0, sizeof *out);
	enum hex_status st = pg_conn_begin(c);
	if (st != HEX_OK)
		return st;
	/* One snapshot for all three reads, so that a concurrent post is all in or all out. */
	if ((st = pg_conn_script(
	         c, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")) == HEX_OK &&
	    (st = verify_rows(c, out)) == HEX_OK)
		st = pg_conn_commit(c);
	if (st != HEX_OK) {
		pg_conn_rollback(c);
		memset(out, 0, sizeof *out);
	}
	return st;
}

static enum hex_status account_exists(struct pg_conn *c, const char *id)
{
	const char *params[] = {id};
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(c, stmt(LED_ACCOUNT_EXISTS), params, &r);
	if (st == HEX_OK && PQntuples(r) == 0)
		st = HEX_NOT_FOUND;
	PQclear(r);
	return st;
}

static enum hex_status pg_ledger_repo_accounts(void *self, int limit, const char *after_id,
                                               struct ledger_account_page *out)
{
	struct pg_conn *c = self;
	memset(out, 0, sizeof *out);
	bool after = after_id != NULL && after_id[0] != '\0';
	if (limit < 1 || limit > HEX_LIST_MAX)
		return HEX_INVALID;
	if (after && !user_id_valid(after_id))
		return HEX_NOT_FOUND;
	char lim[24];
	fmt_i64(lim, limit + 1); /* one more tells whether there is a next page */
	const char *params[] = {lim, after ? after_id : NULL};
	PGresult *r = NULL;
	enum hex_status st =
	    pg_conn_query(c, stmt(after ? LED_ACCOUNTS_AFTER : LED_ACCOUNTS_FIRST), params, &r);
	if (st != HEX_OK)
		goto out;
	int rows = PQntuples(r);
	out->has_more = rows > limit;
	for (int i = 0; i < rows && i < limit; i++) {
		if (!row_to_account(r, i, &out->items[i])) {
			st = HEX_INTERNAL;
			goto out;
		}
		out->count = i + 1;
	}
	/* An empty page after a cursor: the end, or a cursor that names no account. */
	if (rows == 0 && after)
		st = account_exists(c, after_id);
out:
	if (st != HEX_OK)
		memset(out, 0, sizeof *out);
	PQclear(r);
	return st;
}

static enum hex_status pg_ledger_repo_account_entries(void *self, const char *account_id, int limit,
                                                      int64_t before_id,
                                                      struct ledger_entry_page *out)
{
	struct pg_conn *c = self;
	memset(out, 0, sizeof *out);
	if (limit < 1 || limit > HEX_LIST_MAX || before_id < 0)
		return HEX_INVALID;
	if (!user_id_valid(account_id))
		return HEX_NOT_FOUND;
	int rows;
	enum hex_status st =
	    entries_page(c, LED_ACCOUNT_ENTRIES, account_id, limit, before_id, out, &rows);
	if (st == HEX_OK && rows == 0)
		st = account_exists(c, account_id); /* no entries, or no such account */
	return st;
}

static const struct ledger_repo_ops pg_ledger_repo_ops = {
    .post = pg_ledger_repo_post,
    .get_by_key = pg_ledger_repo_get_by_key,
    .balances = pg_ledger_repo_balances,
    .entries = pg_ledger_repo_entries,
    .verify = pg_ledger_repo_verify,
    .accounts = pg_ledger_repo_accounts,
    .account_entries = pg_ledger_repo_account_entries,
};

struct ledger_repo pg_ledger_repo_port(struct pg_conn *c)
{
	pg_conn_register(c, pg_ledger_repo_stmts, pg_ledger_repo_stmt_count);
	return (struct ledger_repo){.ops = &pg_ledger_repo_ops, .self = c};
}
