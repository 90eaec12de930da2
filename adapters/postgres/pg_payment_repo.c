/* pg_payment_repo.c: payments, Stripe events, outbox and membership events in PostgreSQL. */
#include "adapters/postgres/pg_payment_repo.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/postgres/pg_result.h"
#include "adapters/postgres/pg_sql.h"
#include "core/logger.h"
#include "core/xmalloc.h"

/* The column orders row_to_payment() and row_to_record() read. */
/* clang-format off */
#define PAYMENT_COLUMNS \
	"id, user_id, amount, currency, purpose, status, " \
	"coalesce(stripe_payment_intent_id, ''), coalesce(client_secret, ''), " \
	PG_SQL_US("created_at") ", " PG_SQL_US("updated_at")
#define PAYMENT_NCOLS 10
#define RECORD_COLUMNS PAYMENT_COLUMNS ", " \
	"coalesce(client_key, ''), stripe_idempotency_key, coalesce(failure_message, ''), " \
	"coalesce(stripe_checkout_session_id, ''), coalesce(checkout_url, '')"

/*
 * The list filters: $1 limit, $2 status, $3 and $4 the cursor; each NULL when absent. A
 * missing cursor becomes an infinite one rather than an "IS NULL OR", so that one cached
 * plan serves both and still walks the (created_at, id) index.
 */
#define LIST_WHERE \
	"($2::text IS NULL OR status = $2) " \
	"AND (created_at, id) < (coalesce(" PG_SQL_TS("$3") ", 'infinity'), " \
	"coalesce($4::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff')) "
#define LIST_ORDER "ORDER BY created_at DESC, id DESC LIMIT $1::int"
/* clang-format on */

enum {
	PAY_INSERT,
	PAY_FIND_BY_KEY,
	PAY_GET,
	PAY_GET_BY_INTENT,
	PAY_ATTACH_INTENT,
	PAY_ATTACH_CHECKOUT,
	PAY_MARK_FAILED,
	PAY_LIST_ALL,
	PAY_LIST_USER,
	PAY_EVENT_INSERT,
	PAY_LOCK_BY_ID,
	PAY_LOCK_BY_INTENT,
	PAY_EVENT_UPDATE,
	PAY_GRANT_MEMBERSHIP,
	PAY_OUTBOX_INSERT,
	PAY_MEMBERSHIP_EVENT_INSERT,
	PAY_SET_MEMBERSHIP,
	PAY_STUCK,
	PAY_EVENTS,
	PAY_STMT_COUNT
};

/*
 * Status changes that must only move forward take the statuses they may move from as a
 * text array ($n::text[]) computed from payment_status_advances(), so that the order is
 * defined once, in the core, and applied in the same statement as the write.
 */
/* SQL reads best laid out as SQL. */
/* clang-format off */
const struct pg_stmt pg_payment_repo_stmts[PAY_STMT_COUNT] = {
	[PAY_INSERT] = {"payment_insert",
		"INSERT INTO payments (id, user_id, amount, currency, purpose, status, client_key, "
		"stripe_idempotency_key, stripe_payment_intent_id, client_secret, failure_message, "
		"created_at, updated_at, stripe_checkout_session_id, checkout_url) "
		"VALUES ($1::uuid, $2::uuid, $3::bigint, $4, $5, $6, $7, $8, $9, $10, $11, "
		PG_SQL_TS("$12") ", " PG_SQL_TS("$13") ", $14, $15)", 15},
	[PAY_FIND_BY_KEY] = {"payment_find_by_client_key",
		"SELECT " RECORD_COLUMNS " FROM payments "
		"WHERE user_id = $1::uuid AND client_key = $2", 2},
	[PAY_GET] = {"payment_get",
		"SELECT " PAYMENT_COLUMNS " FROM payments WHERE id = $1::uuid", 1},
	[PAY_GET_BY_INTENT] = {"payment_get_by_intent",
		"SELECT " PAYMENT_COLUMNS " FROM payments WHERE stripe_payment_intent_id = $1", 1},
	[PAY_ATTACH_INTENT] = {"payment_attach_intent",
		"UPDATE payments SET stripe_payment_intent_id = $2, client_secret = $3, "
		"status = CASE WHEN status = ANY ($5::text[]) THEN $4 ELSE status END, "
		"updated_at = " PG_SQL_TS("$6") " "
		"WHERE id = $1::uuid RETURNING " PAYMENT_COLUMNS, 6},
	[PAY_ATTACH_CHECKOUT] = {"payment_attach_checkout",
		"UPDATE payments SET stripe_checkout_session_id = $2, checkout_url = $3, "
		"updated_at = " PG_SQL_TS("$4") " "
		"WHERE id = $1::uuid RETURNING " RECORD_COLUMNS, 4},
	[PAY_MARK_FAILED] = {"payment_mark_failed",
		"UPDATE payments SET "
		"status = CASE WHEN status = ANY ($3::text[]) THEN $2 ELSE status END, "
		"failure_message = $4, updated_at = " PG_SQL_TS("$5") " "
		"WHERE id = $1::uuid RETURNING " PAYMENT_COLUMNS, 5},
	[PAY_LIST_ALL] = {"payment_list_all",
		"SELECT " PAYMENT_COLUMNS " FROM payments WHERE " LIST_WHERE LIST_ORDER, 4},
	[PAY_LIST_USER] = {"payment_list_user",
		"SELECT " PAYMENT_COLUMNS " FROM payments WHERE user_id = $5::uuid AND "
		LIST_WHERE LIST_ORDER, 5},
	/* A second delivery of an id waits for the first one's transaction, then does nothing. */
	[PAY_EVENT_INSERT] = {"payment_event_insert",
		"INSERT INTO stripe_events (id, type, payment_id, intent_id, amount, currency, "
		"created_at, received_at, payload) "
		"VALUES ($1, $2, $3::uuid, $4, $5::bigint, $6, "
		"'epoch'::timestamptz + $7::bigint * interval '1 second', "
		PG_SQL_TS("$8") ", $9::json) ON CONFLICT (id) DO NOTHING", 9},
	[PAY_LOCK_BY_ID] = {"payment_lock_by_id",
		"SELECT " PAYMENT_COLUMNS " FROM payments WHERE id = $1::uuid FOR UPDATE", 1},
	[PAY_LOCK_BY_INTENT] = {"payment_lock_by_intent",
		"SELECT " PAYMENT_COLUMNS " FROM payments "
		"WHERE stripe_payment_intent_id = $1 FOR UPDATE", 1},
	/*
	 * The intent is learnt only if no other payment has it: a confused event must not
	 * fail its whole transaction on the unique index, or Stripe would retry it for days.
	 */
	[PAY_EVENT_UPDATE] = {"payment_event_update",
		"UPDATE payments SET status = $2, "
		"stripe_payment_intent_id = coalesce(stripe_payment_intent_id, "
		"(SELECT $3::text WHERE NOT EXISTS "
		"(SELECT 1 FROM payments o WHERE o.stripe_payment_intent_id = $3::text))), "
		"updated_at = " PG_SQL_TS("$4") " "
		"WHERE id = $1::uuid RETURNING " PAYMENT_COLUMNS, 4},
	[PAY_GRANT_MEMBERSHIP] = {"payment_grant_membership",
		"UPDATE users SET membership = $2, updated_at = " PG_SQL_TS("$3") " "
		"WHERE id = $1::uuid AND membership <> $2", 3},
	[PAY_OUTBOX_INSERT] = {"payment_outbox_insert",
		"INSERT INTO outbox (event_id, topic, payload, created_at, available_at) "
		"VALUES ($1, $2, $3::json, " PG_SQL_TS("$4") ", " PG_SQL_TS("$4") ")", 4},
	[PAY_MEMBERSHIP_EVENT_INSERT] = {"payment_membership_event_insert",
		"INSERT INTO membership_events (event_id, user_id, membership, received_at) "
		"VALUES ($1, $2::uuid, $3, " PG_SQL_TS("$4") ") "
		"ON CONFLICT (event_id) DO NOTHING", 4},
	/* One row (changed or not) if the user exists, none if not. */
	[PAY_SET_MEMBERSHIP] = {"payment_set_membership",
		"WITH old AS (SELECT id, membership FROM users WHERE id = $1::uuid FOR UPDATE) "
		"UPDATE users u SET membership = $2, updated_at = CASE "
		"WHEN old.membership <> $2 THEN " PG_SQL_TS("$3") " ELSE u.updated_at END "
		"FROM old WHERE u.id = old.id RETURNING old.membership <> $2", 3},
	/*
	 * The statuses are payment_status_unsettled()'s, written out so that the plan can use
	 * the partial index of sql/0008 (a parameter could not prove its predicate); the
	 * integration test holds the two together.
	 */
	[PAY_STUCK] = {"payment_stuck",
		"SELECT " PAYMENT_COLUMNS " FROM payments "
		"WHERE status IN ('requires_payment_method', 'processing') "
		"AND created_at < " PG_SQL_TS("$1") " "
		"ORDER BY created_at, id LIMIT $2::int", 2},
	[PAY_EVENTS] = {"payment_events",
		"SELECT id, type, " PG_SQL_US("created_at") ", " PG_SQL_US("received_at") " "
		"FROM stripe_events WHERE payment_id = $1::uuid "
		"ORDER BY created_at, received_at, id LIMIT $2::int", 2},
};
/* clang-format on */

const size_t pg_payment_repo_stmt_count = PAY_STMT_COUNT;

static const struct pg_stmt *stmt(int which)
{
	return &pg_payment_repo_stmts[which];
}

static void fmt_i64(char buf[24], int64_t v)
{
	snprintf(buf, 24, "%" PRId64, v);
}

/* "" as SQL NULL: the columns that are optional are NULL, never empty. */
static const char *or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : NULL;
}

/* The statuses a payment may move to `to` from, as a PostgreSQL text array literal. */
static void statuses_before(enum payment_status to, char buf[128])
{
	size_t n = 0;
	buf[n++] = '{';
	for (int from = PAYMENT_REQUIRES_PAYMENT_METHOD; from <= PAYMENT_REFUNDED; from++) {
		if (!payment_status_advances((enum payment_status)from, to))
			continue;
		n += (size_t)snprintf(buf + n, 128 - n, "%s%s", n > 1 ? "," : "",
		                      payment_status_name((enum payment_status)from));
	}
	snprintf(buf + n, 128 - n, "}");
}

static bool row_to_payment(const PGresult *r, int row, struct payment *p)
{
	char purpose[32], status[32];
	bool ok = pg_result_text(r, row, 0, p->id, sizeof p->id) &&
	          pg_result_text(r, row, 1, p->user_id, sizeof p->user_id) &&
	          pg_result_int64(r, row, 2, &p->amount) &&
	          pg_result_text(r, row, 3, p->currency, sizeof p->currency) &&
	          pg_result_text(r, row, 4, purpose, sizeof purpose) &&
	          payment_purpose_parse(purpose, &p->purpose) &&
	          pg_result_text(r, row, 5, status, sizeof status) &&
	          payment_status_parse(status, &p->status) &&
	          pg_result_text(r, row, 6, p->stripe_payment_intent_id,
	                         sizeof p->stripe_payment_intent_id) &&
	          pg_result_text(r, row, 7, p->client_secret, sizeof p->client_secret) &&
	          pg_result_int64(r, row, 8, &p->created_at_us) &&
	          pg_result_int64(r, row, 9, &p->updated_at_us);
	if (!ok)
		log_error("pg_payment_row_invalid", "a payments row does not fit struct payment");
	return ok;
}

static bool row_to_record(const PGresult *r, int row, struct payment_record *rec)
{
	bool ok =
	    row_to_payment(r, row, &rec->payment) &&
	    pg_result_text(r, row, PAYMENT_NCOLS, rec->client_key, sizeof rec->client_key) &&
	    pg_result_text(r, row, PAYMENT_NCOLS + 1, rec->stripe_idempotency_key,
	                   sizeof rec->stripe_idempotency_key) &&
	    pg_result_text(r, row, PAYMENT_NCOLS + 2, rec->failure_message,
	                   sizeof rec->failure_message) &&
	    pg_result_text(r, row, PAYMENT_NCOLS + 3, rec->stripe_checkout_session_id,
	                   sizeof rec->stripe_checkout_session_id) &&
	    pg_result_text(r, row, PAYMENT_NCOLS + 4, rec->checkout_url, sizeof rec->checkout_url);
	if (!ok)
		log_error("pg_payment_record_invalid",
		          "a payments row does not fit struct payment_record");
	return ok;
}

/* Reads the single row of a lookup: HEX_NOT_FOUND if none. */
static enum hex_status one_payment(const PGresult *r, struct payment *out)
{
	if (PQntuples(r) == 0)
		return HEX_NOT_FOUND;
	return row_to_payment(r, 0, out) ? HEX_OK : HEX_INTERNAL;
}

/* Runs a statement that returns at most one payment row into out. */
static enum hex_status query_payment(struct pg_conn *c, int which, const char *const *params,
                                     struct payment *out)
{
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(c, stmt(which), params, &r);
	if (st == HEX_OK)
		st = one_payment(r, out);
	PQclear(r);
	return st;
}

static enum hex_status pg_payment_repo_insert(void *self, const struct payment_record *rec)
{
	const struct payment *p = &rec->payment;
	const char *purpose = payment_purpose_name(p->purpose);
	const char *status = payment_status_name(p->status);
	if (!payment_id_valid(p->id) || !user_id_valid(p->user_id) || purpose == NULL ||
	    status == NULL)
		return HEX_INVALID;
	char amount[24], created[24], updated[24];
	fmt_i64(amount, p->amount);
	fmt_i64(created, p->created_at_us);
	fmt_i64(updated, p->updated_at_us);
	const char *params[] = {p->id,
	                        p->user_id,
	                        amount,
	                        p->currency,
	                        purpose,
	                        status,
	                        or_null(rec->client_key),
	                        rec->stripe_idempotency_key,
	                        or_null(p->stripe_payment_intent_id),
	                        or_null(p->client_secret),
	                        or_null(rec->failure_message),
	                        created,
	                        updated,
	                        or_null(rec->stripe_checkout_session_id),
	                        or_null(rec->checkout_url)};
	return pg_conn_query(self, stmt(PAY_INSERT), params, NULL);
}

static enum hex_status pg_payment_repo_find_by_client_key(void *self, const char *user_id,
                                                          const char *client_key,
                                                          struct payment_record *out)
{
	if (!user_id_valid(user_id) || client_key == NULL || client_key[0] == '\0')
		return HEX_NOT_FOUND;
	const char *params[] = {user_id, client_key};
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(self, stmt(PAY_FIND_BY_KEY), params, &r);
	if (st == HEX_OK && PQntuples(r) == 0)
		st = HEX_NOT_FOUND;
	else if (st == HEX_OK && !row_to_record(r, 0, out))
		st = HEX_INTERNAL;
	PQclear(r);
	return st;
}

static enum hex_status pg_payment_repo_get(void *self, const char *id, struct payment *out)
{
	if (!payment_id_valid(id))
		return HEX_NOT_FOUND;
	const char *params[] = {id};
	return query_payment(self, PAY_GET, params, out);
}

static enum hex_status pg_payment_repo_get_by_intent(void *self, const char *intent_id,
                                                     struct payment *out)
{
	if (intent_id[0] == '\0')
		return HEX_NOT_FOUND;
	const char *params[] = {intent_id};
	return query_payment(self, PAY_GET_BY_INTENT, params, out);
}

static enum hex_status pg_payment_repo_attach_intent(void *self, const char *id,
                                                     const char *intent_id,
                                                     const char *client_secret,
                                                     enum payment_status status, int64_t now_us,
                                                     struct payment *out)
{
	const char *name = payment_status_name(status);
	if (!payment_id_valid(id))
		return HEX_NOT_FOUND;
	if (name == NULL || or_null(intent_id) == NULL)
		return HEX_INVALID;
	char before[128], now[24];
	statuses_before(status, before);
	fmt_i64(now, now_us);
	const char *params[] = {id, intent_id, or_null(client_secret), name, before, now};
	return query_payment(self, PAY_ATTACH_INTENT, params, out);
}

static enum hex_status pg_payment_repo_attach_checkout(void *self, const char *id,
                                                       const char *session_id, const char *url,
                                                       int64_t now_us, struct payment_record *out)
{
	if (!payment_id_valid(id))
		return HEX_NOT_FOUND;
	if (or_null(session_id) == NULL || or_null(url) == NULL)
		return HEX_INVALID;
	char now[24];
	fmt_i64(now, now_us);
	const char *params[] = {id, session_id, url, now};
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(self, stmt(PAY_ATTACH_CHECKOUT), params, &r);
	if (st == HEX_OK && PQntuples(r) == 0)
		st = HEX_NOT_FOUND;
	else if (st == HEX_OK && !row_to_record(r, 0, out))
		st = HEX_INTERNAL;
	PQclear(r);
	return st;
}

static enum hex_status pg_payment_repo_mark_failed(void *self, const char *id, const char *message,
                                                   int64_t now_us, struct payment *out)
{
	if (!payment_id_valid(id))
		return HEX_NOT_FOUND;
	char before[128], now[24];
	statuses_before(PAYMENT_FAILED, before);
	fmt_i64(now, now_us);
	const char *params[] = {id, payment_status_name(PAYMENT_FAILED), before, message, now};
	return query_payment(self, PAY_MARK_FAILED, params, out);
}

static enum hex_status pg_payment_repo_list(void *self, const struct payment_filter *f,
                                            struct payment_page *out)
{
	out->count = 0;
	out->has_more = false;
	if (f->limit < 1 || f->limit > HEX_LIST_MAX)
		return HEX_INVALID;
	const char *status = NULL;
	if (f->status != -1 &&
	    (status = payment_status_name((enum payment_status)f->status)) == NULL)
		return HEX_INVALID;
	if ((f->user_id != NULL && !user_id_valid(f->user_id)) ||
	    (f->after != NULL && !payment_id_valid(f->after->id)))
		return HEX_INVALID;

	char limit[16], after_ts[24];
	/* One more row than asked tells whether another page follows. */
	snprintf(limit, sizeof limit, "%d", f->limit + 1);
	if (f->after != NULL)
		fmt_i64(after_ts, f->after->created_at_us);
	const char *params[] = {
	    limit,
	    status,
	    f->after != NULL ? after_ts : NULL,
	    f->after != NULL ? f->after->id : NULL,
	    f->user_id,
	};
	int which = f->user_id != NULL ? PAY_LIST_USER : PAY_LIST_ALL;

	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(self, stmt(which), params, &r);
	if (st != HEX_OK)
		goto out;
	int rows = PQntuples(r);
	for (int i = 0; i < rows && i < f->limit; i++) {
		if (!row_to_payment(r, i, &out->items[i])) {
			st = HEX_INTERNAL;
			out->count = 0;
			goto out;
		}
		out->count = i + 1;
	}
	out->has_more = rows > f->limit;
out:
	PQclear(r);
	return st;
}

/* Inside apply_event's transaction: the payment the event is about, locked; *found. */
static enum hex_status lock_payment(struct pg_conn *c, const struct payment_event *ev,
                                    struct payment *p, bool *found)
{
	*found = false;
	enum hex_status st = HEX_NOT_FOUND;
	if (payment_id_valid(ev->payment_id)) {
		const char *params[] = {ev->payment_id};
		st = query_payment(c, PAY_LOCK_BY_ID, params, p);
	}
	if (st == HEX_NOT_FOUND && ev->intent_id[0] != '\0') {
		const char *params[] = {ev->intent_id};
		st = query_payment(c, PAY_LOCK_BY_INTENT, params, p);
	}
	if (st == HEX_NOT_FOUND)
		return HEX_OK;
	*found = st == HEX_OK;
	return st;
}

/* Inside apply_event's transaction: the event's effects on the locked payment p. */
static enum hex_status apply_to_payment(struct pg_conn *c, const struct payment_event *ev,
                                        const struct payment_event_plan *plan, const char *now,
                                        struct payment *p, struct payment_event_effect *out)
{
	enum hex_status st = HEX_OK;
	bool advance = plan->has_target && payment_status_advances(p->status, plan->target);
	bool learn_intent = p->stripe_payment_intent_id[0] == '\0' && ev->intent_id[0] != '\0';
	if (advance || learn_intent) {
		const char *params[] = {p->id,
		                        payment_status_name(advance ? plan->target : p->status),
		                        or_null(ev->intent_id), now};
		if ((st = query_payment(c, PAY_EVENT_UPDATE, params, p)) != HEX_OK)
			return st;
	}
	out->status_changed = advance;
	if (plan->grants_membership && p->purpose == PURPOSE_MEMBERSHIP) {
		const char *params[] = {p->user_id, membership_name(MEMBERSHIP_MEMBER), now};
		PGresult *r = NULL;
		st = pg_conn_query(c, stmt(PAY_GRANT_MEMBERSHIP), params, &r);
		/* Nothing to forget for a deleted user or one who already was a member. */
		if (st == HEX_OK && pg_result_affected(r) > 0)
			memcpy(out->member_user_id, p->user_id, sizeof out->member_user_id);
		PQclear(r);
	}
	return st;
}

static enum hex_status pg_payment_repo_apply_event(void *self, const struct payment_event *ev,
                                                   const struct payment_event_plan *plan,
                                                   int64_t now_us, struct payment_event_effect *out)
{
	struct pg_conn *c = self;
	memset(out, 0, sizeof *out);
	if (ev->id[0] == '\0' || ev->payload == NULL)
		return HEX_INVALID;
	char *payload = xstrndup(ev->payload, ev->payload_len);
	char amount[24], created[24], now[24];
	fmt_i64(amount, ev->amount);
	fmt_i64(created, ev->created_s);
	fmt_i64(now, now_us);
	const char *event_params[] = {
	    ev->id,
	    ev->type,
	    payment_id_valid(ev->payment_id) ? ev->payment_id : NULL,
	    or_null(ev->intent_id),
	    amount,
	    or_null(ev->currency),
	    created,
	    now,
	    payload,
	};
	const char *outbox_params[] = {ev->id, PG_PAYMENT_OUTBOX_TOPIC, payload, now};
	PGresult *r = NULL;
	bool found = false;

	enum hex_status st = pg_conn_begin(c);
	if (st != HEX_OK)
		goto out;
	if ((st = pg_conn_query(c, stmt(PAY_EVENT_INSERT), event_params, &r)) != HEX_OK)
		goto out;
	if (pg_result_affected(r) == 0) {
		out->duplicate = true;
		goto out;
	}
	if ((st = lock_payment(c, ev, &out->payment, &found)) != HEX_OK)
		goto out;
	out->payment_found = found;
	if (found && (st = apply_to_payment(c, ev, plan, now, &out->payment, out)) != HEX_OK)
		goto out;
	if ((st = pg_conn_query(c, stmt(PAY_OUTBOX_INSERT), outbox_params, NULL)) != HEX_OK)
		goto out;
	st = pg_conn_commit(c);
out:
	/* A duplicate wrote nothing; a failure must leave nothing, not even the event. */
	if (st != HEX_OK || out->duplicate)
		pg_conn_rollback(c);
	if (st != HEX_OK)
		memset(out, 0, sizeof *out);
	PQclear(r);
	free(payload);
	return st;
}

static enum hex_status pg_payment_repo_record_membership_event(void *self, const char *event_id,
                                                               const char *user_id,
                                                               enum membership m, int64_t now_us,
                                                               struct membership_effect *out)
{
	struct pg_conn *c = self;
	memset(out, 0, sizeof *out);
	if (!user_id_valid(user_id))
		return HEX_NOT_FOUND;
	char now[24];
	fmt_i64(now, now_us);
	const char *name = membership_name(m);
	const char *event_params[] = {event_id, user_id, name, now};
	const char *user_params[] = {user_id, name, now};
	PGresult *r = NULL;

	enum hex_status st = pg_conn_begin(c);
	if (st != HEX_OK)
		return st;
	if (event_id != NULL) {
		st = pg_conn_query(c, stmt(PAY_MEMBERSHIP_EVENT_INSERT), event_params, &r);
		if (st != HEX_OK)
			goto out;
		out->duplicate = pg_result_affected(r) == 0;
		PQclear(r);
		r = NULL;
		if (out->duplicate)
			goto out;
	}
	if ((st = pg_conn_query(c, stmt(PAY_SET_MEMBERSHIP), user_params, &r)) != HEX_OK)
		goto out;
	if (PQntuples(r) == 0) {
		st = HEX_NOT_FOUND;
		goto out;
	}
	if (!pg_result_bool(r, 0, 0, &out->changed)) {
		st = HEX_INTERNAL;
		goto out;
	}
	st = pg_conn_commit(c);
out:
	if (st != HEX_OK || out->duplicate)
		pg_conn_rollback(c);
	if (st != HEX_OK)
		memset(out, 0, sizeof *out);
	PQclear(r);
	return st;
}

static enum hex_status pg_payment_repo_stuck(void *self, int64_t created_before_us, int limit,
                                             struct payment_page *out)
{
	out->count = 0;
	out->has_more = false;
	if (limit < 1 || limit > HEX_LIST_MAX)
		return HEX_INVALID;
	char before[24], lim[24];
	fmt_i64(before, created_before_us);
	fmt_i64(lim, limit + 1); /* one more tells whether more follow */
	const char *params[] = {before, lim};
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(self, stmt(PAY_STUCK), params, &r);
	if (st != HEX_OK)
		goto out;
	int rows = PQntuples(r);
	for (int i = 0; i < rows && i < limit; i++) {
		if (!row_to_payment(r, i, &out->items[i])) {
			st = HEX_INTERNAL;
			out->count = 0;
			goto out;
		}
		out->count = i + 1;
	}
	out->has_more = rows > limit;
out:
	PQclear(r);
	return st;
}

static enum hex_status pg_payment_repo_events(void *self, const char *payment_id,
                                              struct payment_event_list *out)
{
	memset(out, 0, sizeof *out);
	if (!payment_id_valid(payment_id))
		return HEX_OK; /* no event can name it */
	char lim[24];
	fmt_i64(lim, PAYMENT_EVENTS_MAX + 1);
	const char *params[] = {payment_id, lim};
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(self, stmt(PAY_EVENTS), params, &r);
	if (st != HEX_OK)
		goto out;
	int rows = PQntuples(r);
	for (int i = 0; i < rows && i < PAYMENT_EVENTS_MAX; i++) {
		struct payment_event_record *e = &out->items[i];
		if (!pg_result_text(r, i, 0, e->id, sizeof e->id) ||
		    !pg_result_text(r, i, 1, e->type, sizeof e->type) ||
		    !pg_result_int64(r, i, 2, &e->created_at_us) ||
		    !pg_result_int64(r, i, 3, &e->received_at_us)) {
			log_error("pg_payment_row_invalid",
			          "a stripe_events row does not fit struct payment_event_record");
			st = HEX_INTERNAL;
			memset(out, 0, sizeof *out);
			goto out;
		}
		out->count = i + 1;
	}
	out->has_more = rows > PAYMENT_EVENTS_MAX;
out:
	PQclear(r);
	return st;
}

static const struct payment_repo_ops pg_payment_repo_ops = {
    .insert = pg_payment_repo_insert,
    .find_by_client_key = pg_payment_repo_find_by_client_key,
    .get = pg_payment_repo_get,
    .get_by_intent = pg_payment_repo_get_by_intent,
    .attach_intent = pg_payment_repo_attach_intent,
    .attach_checkout = pg_payment_repo_attach_checkout,
    .mark_failed = pg_payment_repo_mark_failed,
    .list = pg_payment_repo_list,
    .apply_event = pg_payment_repo_apply_event,
    .record_membership_event = pg_payment_repo_record_membership_event,
    .stuck = pg_payment_repo_stuck,
    .events = pg_payment_repo_events,
};

struct payment_repo pg_payment_repo_port(struct pg_conn *c)
{
	pg_conn_register(c, pg_payment_repo_stmts, pg_payment_repo_stmt_count);
	return (struct payment_repo){.ops = &pg_payment_repo_ops, .self = c};
}
