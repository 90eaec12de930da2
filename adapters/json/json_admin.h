/*
 * json_admin: the JSON shapes the admin port adds to the API's (docs/ADMIN.md): users with
 * their role, ledger accounts, dead letters, audit rows, the pipeline's lag, the ledger's
 * verify report, a payment's Stripe events, stuck payments, cache stats, and lists.
 *
 * Every function returns a new reference, or NULL only if its input breaks the core's
 * rules (text that is not UTF-8), which the caller answers as an internal error.
 */
#ifndef HEX_JSON_ADMIN_H
#define HEX_JSON_ADMIN_H

#include "core/cache_service.h"
#include "core/event_lag_service.h"
#include "core/ledger.h"
#include "core/payment.h"
#include "core/ports/audit_repo.h"
#include "core/ports/dead_letter_repo.h"

#include <jansson.h>

/* The API's user (json_user) plus "role": what GRANT-ADMIN changes. */
json_t *json_admin_user(const struct user *u);

/* {id, kind, owner_id (null for a system account), currency, balance}. */
json_t *json_admin_account(const struct ledger_account *a);

/*
 * {id, consumer, event_id, topic, attempts, error, status, created_at, resolved_at,
 * resolved_by, reason} (the last three null while open, reason null unless discarded);
 * with full also "payload" (string, null if d has none) and "history" [{attempt,
 * failed_at, error}], oldest first.
 */
json_t *json_admin_dead_letter(const struct dead_letter *d, bool full);

/* {id, at, operator, verb, args, ok, error (null when ok)}. */
json_t *json_admin_audit(const struct audit_entry *e);

/*
 * {outbox_unpublished, oldest_unpublished_s, dead_letters_open}, plus with consumers
 * "consumers": [{name, pending, lag}] (both null for a consumer the stream could not
 * report on, lag null too when Redis does not know it). Seconds are a number with
 * millisecond precision.
 */
json_t *json_admin_event_lag(const struct event_lag *l, bool consumers);

/* {ok, accounts_checked, mismatches: [{account_id, balance, entries_sum}], unbalanced:
 * [{currency, sum}]}. */
json_t *json_admin_verify(const struct ledger_verify_report *r);

/* {id, type, created_at, received_at}. */
json_t *json_admin_payment_event(const struct payment_event_record *e);

/* The API's payment (no client secret) plus "age_s": whole seconds since it was made. */
json_t *json_admin_stuck_payment(const struct payment *p, int64_t now_us);

/* {hits, misses, errors, keys}. */
json_t *json_admin_cache_stats(const struct cache_stats *s);

/* {"items": items (stolen), "next_cursor": next_cursor or null}; NULL if items is. */
json_t *json_admin_list(json_t *items, const char *next_cursor);

#endif
