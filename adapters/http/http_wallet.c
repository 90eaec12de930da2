/*
 * http_wallet.c: the /v2/wallet routes: the caller's balances, their ledger entries, and
 * transfers from their wallet to another user's (docs/API-NOTES.md, "Wallet").
 */
#include "adapters/http/http_handlers.h"

#include "adapters/http/http_query.h"
#include "adapters/json/json_body.h"
#include "adapters/json/json_ledger.h"
#include "core/payment.h"
#include "core/xmalloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void http_wallet_show(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	struct ledger_balances b;
	enum hex_status st = ledger_service_balances(&svc->ledger, x->caller.user.id, &b, &err);
	if (st != HEX_OK)
		http_reply_error(x, st, &err);
	else
		http_reply_json(x, 200, json_ledger_wallets(&b));
}

/*
 * Entry cursors carry the last entry id and the caller's own id (in the codec's id slot):
 * a cursor handed to another user is refused rather than read against their entries.
 */
static enum hex_status entries_cursor(const struct http_exchange *x, const char *text,
                                      int64_t *before_id, struct hex_err *err)
{
	char owner[HEX_ID_LEN + 1];
	uint64_t tag;
	enum hex_status st = http_cursor_decode('e', text, before_id, owner, &tag, err);
	if (st == HEX_OK &&
	    (*before_id <= 0 || tag != 0 || strcasecmp(owner, x->caller.user.id) != 0))
		st = hex_fail(err, HEX_INVALID, "cursor", "cursor is not valid");
	return st;
}

void http_wallet_entries(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	struct ledger_entry_page *page = NULL;
	int limit;
	int64_t before = 0;
	char *cursor = http_query_get(x, "cursor");
	enum hex_status st = http_query_limit(x, &limit, &err);
	if (st == HEX_OK && cursor != NULL)
		st = entries_cursor(x, cursor, &before, &err);
	if (st == HEX_OK) {
		page = xmalloc(sizeof *page);
		st = ledger_service_entries(&svc->ledger, x->caller.user.id, limit, before, page,
		                            &err);
	}
	if (st != HEX_OK) {
		http_reply_error(x, st, &err);
		goto out;
	}
	char next[160];
	bool more = page->has_more && page->count > 0;
	if (more)
		http_cursor_encode('e', page->items[page->count - 1].id, x->caller.user.id, 0, next,
		                   sizeof next);
	http_reply_json(x, 200, json_ledger_entry_page(page, more ? next : NULL));
out:
	free(page);
	free(cursor);
}

/* A transfer request, checked and normalised. */
struct transfer_request {
	char to[HEX_ID_LEN + 1]; /* lower case, as the database writes UUIDs */
	int64_t amount;
	char currency[4];
};

static enum hex_status transfer_recipient(struct http_exchange *x, char to[HEX_ID_LEN + 1],
                                          struct hex_err *err)
{
	const char *raw;
	enum hex_status st = json_body_string(x->json, "to_user_id", true, &raw, err);
	if (st != HEX_OK)
		return st;
	if (!user_id_valid(raw))
		return hex_fail(err, HEX_INVALID, "to_user_id", "to_user_id must be a user id");
	for (int i = 0; i <= HEX_ID_LEN; i++)
		to[i] = (char)tolower((unsigned char)raw[i]);
	if (strcasecmp(to, x->caller.user.id) == 0)
		return hex_fail(err, HEX_INVALID, "to_user_id",
		                "to_user_id is your own wallet: there is nothing to move");
	return HEX_OK;
}

/*
 * The body's fields in the order to_user_id, amount, currency, then the Idempotency-Key:
 * the first failure is the answer, before anything is read or written.
 */
static enum hex_status transfer_parse(struct http_exchange *x, struct transfer_request *rq,
                                      struct hex_err *err)
{
	const char *currency;
	enum hex_status st = transfer_recipient(x, rq->to, err);
	if (st == HEX_OK)
		st = json_body_int(x->json, "amount", true, &rq->amount, err);
	if (st == HEX_OK)
		st = payment_amount_check(rq->amount, err);
	if (st == HEX_OK)
		st = json_body_string(x->json, "currency", true, &currency, err);
	if (st == HEX_OK)
		st = payment_currency_normalize(currency, rq->currency, err);
	if (st != HEX_OK)
		return st;
	/* Without a key a client that lost the answer cannot retry without paying twice. */
	if (x->idempotency_key == NULL)
		return hex_fail(err, HEX_INVALID, "idempotency_key",
		                "an Idempotency-Key header is required to move money");
	return payment_client_key_check(x->idempotency_key, err);
}

/* API.md's error shape with the field that names the missing user (a 404 has none). */
static void reply_no_recipient(struct http_exchange *x)
{
	http_reply_json(x, 404,
	                json_pack("{s:s, s:s, s:s, s:s}", "error", "no user has this to_user_id",
	                          "code", "not_found", "field", "to_user_id", "request_id",
	                          x->request_id));
}

void http_wallet_transfer(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	struct transfer_request rq = {0};
	struct user payee;
	struct ledger_txn *t = NULL;
	bool replayed = false;
	const char *from = x->caller.user.id;
	enum hex_status st = transfer_parse(x, &rq, &err);
	/* From the database, not the cache: money must not go to a user deleted a moment ago. */
	if (st == HEX_OK &&
	    (st = user_service_load(&svc->users, rq.to, &payee, &err)) == HEX_NOT_FOUND) {
		reply_no_recipient(x);
		goto out;
	}
	if (st == HEX_OK) {
		t = xmalloc(sizeof *t);
		st = ledger_service_transfer(&svc->ledger, from, rq.to, rq.amount, rq.currency,
		                             x->idempotency_key, t, &replayed, &err);
	}
	if (st == HEX_OK && replayed)
		http_reply_header(x, "Idempotent-Replayed", "true");
	if (st == HEX_OK)
		http_reply_json(x, 201, json_ledger_transfer(t));
	else
		http_reply_error(x, st, &err);
out:
	free(t);
}
