/* json_admin.c: the admin port's own JSON shapes. */
#include "adapters/json/json_admin.h"

#include "adapters/json/json_payment.h"
#include "adapters/json/json_time.h"
#include "adapters/json/json_user.h"

static json_t *time_or_null(int64_t us)
{
	char t[JSON_TIME_LEN];
	if (us == 0)
		return json_null();
	json_time_format(us, t);
	return json_string(t);
}

static json_t *text_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

/* Appends item to arr; NULL (arr freed) if either is NULL: one item that could not be
 * made spoils the list, and the caller answers an internal error. */
static json_t *array_add(json_t *arr, json_t *item)
{
	if (arr == NULL || item == NULL || json_array_append_new(arr, item) != 0) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

json_t *json_admin_user(const struct user *u)
{
	json_t *o = json_user(u);
	if (o != NULL)
		json_object_set_new(o, "role", json_string(user_role_name(u->role)));
	return o;
}

json_t *json_admin_account(const struct ledger_account *a)
{
	return json_pack("{s:s, s:s, s:o, s:s, s:I}", "id", a->id, "kind",
	                 ledger_kind_name(a->ref.kind), "owner_id", text_or_null(a->ref.owner_id),
	                 "currency", a->ref.currency, "balance", (json_int_t)a->balance);
}

static json_t *history(const struct dead_letter *d)
{
	json_t *arr = json_array();
	for (int i = 0; i < d->nhistory && i < DEAD_LETTER_HISTORY_MAX; i++) {
		const struct dead_letter_attempt *a = &d->history[i];
		char at[JSON_TIME_LEN];
		json_time_format(a->failed_at_us, at);
		arr = array_add(arr, json_pack("{s:i, s:s, s:s}", "attempt", a->attempt,
		                               "failed_at", at, "error", a->error));
	}
	return arr;
}

json_t *json_admin_dead_letter(const struct dead_letter *d, bool full)
{
	char created[JSON_TIME_LEN];
	json_time_format(d->created_at_us, created);
	json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:o, s:o, s:o}", "id",
	                      (json_int_t)d->id, "consumer", d->consumer, "event_id", d->event_id,
	                      "topic", d->topic, "attempts", d->attempts, "error", d->error,
	                      "status", dead_letter_status_name(d->status), "created_at", created,
	                      "resolved_at", time_or_null(d->resolved_at_us), "resolved_by",
	                      text_or_null(d->resolved_by), "reason", text_or_null(d->reason));
	if (o == NULL || !full)
		return o;
	json_t *payload = d->payload != NULL ? json_string(d->payload) : json_null();
	json_t *h = history(d);
	if (payload == NULL || h == NULL) {
		json_decref(payload);
		json_decref(h);
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "payload", payload);
	json_object_set_new(o, "history", h);
	return o;
}

json_t *json_admin_audit(const struct audit_entry *e)
{
	char at[JSON_TIME_LEN];
	json_time_format(e->at_us, at);
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:b, s:o}", "id", (json_int_t)e->id, "at", at,
	                 "operator", e->operator_name, "verb", e->verb, "args", e->args, "ok",
	                 e->ok, "error", e->ok ? json_null() : text_or_null(e->error));
}

/* Microseconds as seconds with millisecond precision. */
static json_t *seconds(int64_t us)
{
	return json_real((double)(us / 1000) / 1000.0);
}

static json_t *count_or_null(bool known, long n)
{
	return known && n >= 0 ? json_integer(n) : json_null();
}

json_t *json_admin_event_lag(const struct event_lag *l, bool consumers)
{
	json_t *o =
	    json_pack("{s:I, s:o, s:I}", "outbox_unpublished", (json_int_t)l->outbox_unpublished,
	              "oldest_unpublished_s", seconds(l->oldest_unpublished_us),
	              "dead_letters_open", (json_int_t)l->dead_letters_open);
	if (o == NULL || !consumers)
		return o;
	json_t *arr = json_array();
	for (int i = 0; i < l->nconsumers && i < EVENT_LAG_CONSUMERS_MAX; i++) {
		const struct event_consumer_lag *c = &l->consumers[i];
		arr = array_add(arr, json_pack("{s:s, s:o, s:o}", "name", c->name, "pending",
		                               count_or_null(c->known, c->pending), "lag",
		                               count_or_null(c->known, c->lag)));
	}
	if (arr == NULL) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "consumers", arr);
	return o;
}

json_t *json_admin_verify(const struct ledger_verify_report *r)
{
	json_t *mismatches = json_array(), *unbalanced = json_array();
	for (int i = 0; i < r->nmismatches && i < LEDGER_MISMATCH_MAX; i++)
		mismatches = array_add(
		    mismatches,
		    json_pack("{s:s, s:I, s:I}", "account_id", r->mismatches[i].account_id,
		              "balance", (json_int_t)r->mismatches[i].balance, "entries_sum",
		              (json_int_t)r->mismatches[i].entries_sum));
	for (int i = 0; i < r->nunbalanced && i < LEDGER_CURRENCY_MAX; i++)
		unbalanced = array_add(unbalanced, json_pack("{s:s, s:I}", "currency",
		                                             r->unbalanced[i].currency, "sum",
		                                             (json_int_t)r->unbalanced[i].sum));
	if (mismatches == NULL || unbalanced == NULL) {
		json_decref(mismatches);
		json_decref(unbalanced);
		return NULL;
	}
	return json_pack("{s:b, s:I, s:o, s:o}", "ok", r->ok, "accounts_checked",
	                 (json_int_t)r->accounts_checked, "mismatches", mismatches, "unbalanced",
	                 unbalanced);
}

json_t *json_admin_payment_event(const struct payment_event_record *e)
{
	char created[JSON_TIME_LEN], received[JSON_TIME_LEN];
	json_time_format(e->created_at_us, created);
	json_time_format(e->received_at_us, received);
	return json_pack("{s:s, s:s, s:s, s:s}", "id", e->id, "type", e->type, "created_at",
	                 created, "received_at", received);
}

json_t *json_admin_stuck_payment(const struct payment *p, int64_t now_us)
{
	json_t *o = json_payment(p, false);
	int64_t age = now_us > p->created_at_us ? (now_us - p->created_at_us) / 1000000 : 0;
	if (o != NULL)
		json_object_set_new(o, "age_s", json_integer((json_int_t)age));
	return o;
}

json_t *json_admin_cache_stats(const struct cache_stats *s)
{
	return json_pack("{s:I, s:I, s:I, s:I}", "hits", (json_int_t)s->counters.hits, "misses",
	                 (json_int_t)s->counters.misses, "errors", (json_int_t)s->counters.errors,
	                 "keys", (json_int_t)s->keys);
}

json_t *json_admin_list(json_t *items, const char *next_cursor)
{
	if (items == NULL)
		return NULL;
	return json_pack("{s:o, s:o}", "items", items, "next_cursor",
	                 next_cursor != NULL ? json_string(next_cursor) : json_null());
}
