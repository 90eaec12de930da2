/* http_webhooks.c: inbound hooks: Stripe's signed events and the old membership hook. */
#include "adapters/http/http_handlers.h"

#include "adapters/json/json_body.h"
#include "adapters/json/json_user.h"
#include "adapters/stripe/stripe_event.h"
#include "adapters/stripe/stripe_signature.h"

#include <string.h>
#include <strings.h>
#include <time.h>

void http_webhooks_stripe(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	const struct hex_inbound_keys *k = svc->keys;
	if (k->stripe_webhook_secret[0] == '\0') {
		http_reply_error(
		    x,
		    hex_fail(&err, HEX_UNAVAILABLE, NULL,
		             "webhooks are not configured (HEX_STRIPE_WEBHOOK_SECRET)"),
		    &err);
		return;
	}
	/* Verify the raw bytes first: nothing is parsed, let alone stored, before. */
	struct payment_event ev;
	bool duplicate = false;
	enum hex_status st = stripe_signature_verify(
	    x->stripe_signature != NULL ? x->stripe_signature : "", x->body, x->body_len,
	    k->stripe_webhook_secret, (int64_t)time(NULL), k->webhook_tolerance_s, &err);
	if (st == HEX_OK)
		st = stripe_event_parse(x->body, x->body_len, &ev, &err);
	if (st == HEX_OK)
		st = payment_service_apply_event(&svc->payments, &ev, &duplicate, &err);
	if (st != HEX_OK) {
		http_reply_error(x, st, &err);
		return;
	}
	http_reply_json(x, 200, json_pack("{s:b, s:b}", "received", 1, "duplicate", duplicate));
}

/* `Authorization: ApiKey <key>`, compared in constant time. */
static bool api_key_ok(const char *header, const char *key)
{
	static const char scheme[] = "ApiKey ";
	if (header == NULL || key[0] == '\0' || strncasecmp(header, scheme, sizeof scheme - 1) != 0)
		return false;
	const char *given = header + sizeof scheme - 1;
	return hex_ct_equal(given, strlen(given), key, strlen(key));
}

void http_webhooks_membership(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	const char *event, *user_id, *event_id, *membership;
	if (!api_key_ok(x->authorization, svc->keys->membership_api_key)) {
		/* Not http_reply_error: its 401 names the Bearer scheme, this route wants ApiKey.
		 */
		http_reply_header(x, "WWW-Authenticate", "ApiKey");
		http_reply_error_code(x, 401, "unauthenticated",
		                      "an ApiKey Authorization header is required");
		return;
	}
	enum hex_status st = json_body_string(x->json, "event", true, &event, &err);
	if (st == HEX_OK)
		st = json_body_string(x->json, "user_id", true, &user_id, &err);
	if (st == HEX_OK)
		st = json_body_string(x->json, "event_id", false, &event_id, &err);
	if (st == HEX_OK)
		st = json_body_string(x->json, "membership", false, &membership, &err);
	if (st == HEX_OK && strcmp(event, "membership_status_updated") != 0)
		st = hex_fail(&err, HEX_INVALID, "event", "unknown event %s", event);
	bool duplicate = false;
	if (st == HEX_OK)
		st = payment_service_membership_hook(&svc->payments, event_id, user_id,
		                                     membership != NULL ? membership : "member",
		                                     &duplicate, &err);
	struct user u;
	if (st == HEX_OK)
		st = user_service_read(&svc->users, user_id, &u, &err);
	if (st != HEX_OK) {
		http_reply_error(x, st, &err);
		return;
	}
	http_reply_json(x, 200,
	                json_pack("{s:o, s:b}", "user", json_user(&u), "duplicate", duplicate));
}
