/* stripe_gateway.c: payment_gateway ops as Stripe requests and replies. */
#include "adapters/stripe/stripe_gateway.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/stripe/stripe_form.h"
#include "core/logger.h"
#include "core/xmalloc.h"

#define PATH_INTENTS  "/v1/payment_intents"
#define PATH_SESSIONS "/v1/checkout/sessions"

struct stripe_gateway {
	struct stripe_client *client;
};

static const struct {
	const char *stripe;
	enum payment_status status;
} intent_statuses[] = {
    {"requires_payment_method", PAYMENT_REQUIRES_PAYMENT_METHOD},
    {"requires_confirmation", PAYMENT_REQUIRES_PAYMENT_METHOD},
    {"requires_action", PAYMENT_REQUIRES_PAYMENT_METHOD},
    {"processing", PAYMENT_PROCESSING},
    {"requires_capture", PAYMENT_PROCESSING},
    {"succeeded", PAYMENT_SUCCEEDED},
    {"canceled", PAYMENT_FAILED},
};

bool stripe_gateway_status_parse(const char *s, enum payment_status *out)
{
	for (size_t i = 0; s != NULL && i < sizeof intent_statuses / sizeof intent_statuses[0];
	     i++) {
		if (strcmp(intent_statuses[i].stripe, s) == 0) {
			*out = intent_statuses[i].status;
			return true;
		}
	}
	return false;
}

struct stripe_gateway *stripe_gateway_new(const struct stripe_config *cfg, struct hex_err *err)
{
	struct stripe_client *client = stripe_client_new(cfg, err);
	if (client == NULL)
		return NULL;
	struct stripe_gateway *g = xcalloc(1, sizeof *g);
	g->client = client;
	return g;
}

void stripe_gateway_free(struct stripe_gateway *g)
{
	if (g == NULL)
		return;
	stripe_client_free(g->client);
	free(g);
}

static bool stripe_gateway_currency_valid(const char *c)
{
	for (int i = 0; i < 3; i++)
		if (c[i] < 'a' || c[i] > 'z')
			return false;
	return c[3] == '\0';
}

/* Checks what every create carries; the caller's bugs are HEX_INTERNAL, not the user's. */
static enum hex_status stripe_gateway_check_common(const char *key, int64_t amount,
                                                   const char *currency, const char *payment_id,
                                                   const char *user_id, struct hex_err *err)
{
	if (amount <= 0)
		return hex_fail(err, HEX_INVALID, "amount", "amount must be positive");
	if (!stripe_gateway_currency_valid(currency))
		return hex_fail(err, HEX_INVALID, "currency",
		                "currency must be a three-letter lower-case code");
	if (key[0] == '\0' || !user_id_valid(payment_id) || !user_id_valid(user_id)) {
		log_error("stripe_request_refused",
		          "a gateway request without an idempotency key or with bad ids");
		return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	}
	return HEX_OK;
}

/* Copies string member key of obj into out; "" for null when nullable. */
static bool stripe_gateway_get_string(const json_t *obj, const char *key, bool nullable, char *out,
                                      size_t n)
{
	const json_t *v = json_object_get(obj, key);
	if (nullable && (v == NULL || json_is_null(v))) {
		out[0] = '\0';
		return true;
	}
	return json_is_string(v) && json_string_length(v) > 0 &&
	       json_string_length(v) == strlen(json_string_value(v)) &&
	       hex_strlcpy(out, json_string_value(v), n);
}

static enum hex_status stripe_gateway_bad_answer(const char *what, struct hex_err *err)
{
	log_error("stripe_bad_answer", "Stripe's %s answer lacks a field we need", what);
	return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
}

static enum hex_status stripe_gateway_parse_intent(const json_t *obj, struct gateway_intent *out,
                                                   struct hex_err *err)
{
	memset(out, 0, sizeof *out);
	const json_t *amount = json_object_get(obj, "amount");
	const char *status = json_string_value(json_object_get(obj, "status"));
	if (!stripe_gateway_get_string(obj, "id", false, out->id, sizeof out->id) ||
	    !stripe_gateway_get_string(obj, "client_secret", true, out->client_secret,
	                               sizeof out->client_secret) ||
	    !stripe_gateway_get_string(obj, "currency", false, out->currency,
	                               sizeof out->currency) ||
	    !json_is_integer(amount) || !stripe_gateway_status_parse(status, &out->status))
		return stripe_gateway_bad_answer("payment_intent", err);
	out->amount = (int64_t)json_integer_value(amount);
	return HEX_OK;
}

static enum hex_status stripe_gateway_post(struct stripe_gateway *g, const char *path,
                                           const struct stripe_form *form, const char *key,
                                           const char *trace_parent, json_t **out,
                                           struct stripe_reply_info *info, struct hex_err *err)
{
	size_t len = 0;
	const char *body = stripe_form_body(form, &len);
	if (body == NULL) {
		log_error("stripe_request_refused", "the form for %s did not encode", path);
		return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	}
	struct stripe_request req = {
	    .method = STRIPE_POST,
	    .path = path,
	    .body = body,
	    .body_len = len,
	    .idempotency_key = key,
	    .trace_parent = trace_parent,
	};
	return stripe_client_call(g->client, &req, out, info, err);
}

static enum hex_status stripe_gateway_create_intent(void *self,
                                                    const struct gateway_intent_request *req,
                                                    struct gateway_intent *out, struct hex_err *err)
{
	struct stripe_gateway *g = self;
	struct stripe_form *form = NULL;
	json_t *reply = NULL;
	struct stripe_reply_info info;
	enum hex_status st = stripe_gateway_check_common(
	    req->idempotency_key, req->amount, req->currency, req->payment_id, req->user_id, err);
	if (st != HEX_OK)
		goto out;
	/* Sent as metadata in API.md's words, so that Stripe's events bring it back. */
	const char *purpose = payment_purpose_name(req->purpose);
	if (purpose == NULL) {
		st = hex_fail(err, HEX_INVALID, "purpose", "unknown purpose");
		goto out;
	}

	form = stripe_form_new();
	stripe_form_add_int(form, "amount", req->amount);
	stripe_form_add(form, "currency", req->currency);
	stripe_form_add_bool(form, "automatic_payment_methods[enabled]", true);
	stripe_form_add(form, "metadata[payment_id]", req->payment_id);
	stripe_form_add(form, "metadata[user_id]", req->user_id);
	stripe_form_add(form, "metadata[purpose]", purpose);
	st = stripe_gateway_post(g, PATH_INTENTS, form, req->idempotency_key, req->trace_parent,
	                         &reply, &info, err);
	if (st != HEX_OK)
		goto out;
	st = stripe_gateway_parse_intent(reply, out, err);
	if (st != HEX_OK)
		goto out;
	/* A replay of some other request under our key would attach a stranger's intent. */
	if (out->amount != req->amount || strcmp(out->currency, req->currency) != 0) {
		log_error("stripe_intent_mismatch",
		          "intent %s for payment %s has amount %lld %s, asked %lld %s", out->id,
		          req->payment_id, (long long)out->amount, out->currency,
		          (long long)req->amount, req->currency);
		st = hex_fail(err, HEX_INTERNAL, NULL, "internal error");
		goto out;
	}
	log_info("stripe_intent_created", "payment %s: intent %s%s after %d attempt(s)",
	         req->payment_id, out->id, info.replayed ? " (replayed)" : "", info.attempts);
out:
	json_decref(reply);
	stripe_form_free(form);
	return st;
}

static enum hex_status stripe_gateway_create_checkout(void *self,
                                                      const struct gateway_checkout_request *req,
                                                      struct gateway_checkout *out,
                                                      struct hex_err *err)
{
	struct stripe_gateway *g = self;
	struct stripe_form *form = NULL;
	json_t *reply = NULL;
	struct stripe_reply_info info;
	const char *purpose = payment_purpose_name(PURPOSE_MEMBERSHIP);
	memset(out, 0, sizeof *out);
	enum hex_status st = stripe_gateway_check_common(
	    req->idempotency_key, req->amount, req->currency, req->payment_id, req->user_id, err);
	if (st != HEX_OK)
		goto out;
	if (req->success_url[0] == '\0' || req->cancel_url[0] == '\0') {
		st = hex_fail(err, HEX_INVALID,
		              req->success_url[0] == '\0' ? "success_url" : "cancel_url",
		              "Checkout needs a success and a cancel URL");
		goto out;
	}

	form = stripe_form_new();
	stripe_form_add(form, "mode", "payment");
	stripe_form_add(form, "line_items[0][price_data][currency]", req->currency);
	stripe_form_add_int(form, "line_items[0][price_data][unit_amount]", req->amount);
	stripe_form_add(form, "line_items[0][price_data][product_data][name]",
	                STRIPE_GATEWAY_PRODUCT_NAME);
	stripe_form_add_int(form, "line_items[0][quantity]", 1);
	stripe_form_add(form, "success_url", req->success_url);
	stripe_form_add(form, "cancel_url", req->cancel_url);
	stripe_form_add(form, "client_reference_id", req->user_id);
	stripe_form_add(form, "metadata[payment_id]", req->payment_id);
	stripe_form_add(form, "metadata[user_id]", req->user_id);
	stripe_form_add(form, "metadata[purpose]", purpose);
	/* The intent Checkout creates carries them too, so its events lead back to us. */
	stripe_form_add(form, "payment_intent_data[metadata][payment_id]", req->payment_id);
	stripe_form_add(form, "payment_intent_data[metadata][user_id]", req->user_id);
	stripe_form_add(form, "payment_intent_data[metadata][purpose]", purpose);
	st = stripe_gateway_post(g, PATH_SESSIONS, form, req->idempotency_key, req->trace_parent,
	                         &reply, &info, err);
	if (st != HEX_OK)
		goto out;
	if (!stripe_gateway_get_string(reply, "id", false, out->id, sizeof out->id) ||
	    !stripe_gateway_get_string(reply, "url", false, out->url, sizeof out->url) ||
	    !stripe_gateway_get_string(reply, "payment_intent", true, out->payment_intent_id,
	                               sizeof out->payment_intent_id)) {
		memset(out, 0, sizeof *out);
		st = stripe_gateway_bad_answer("checkout.session", err);
		goto out;
	}
	log_info("stripe_checkout_created", "payment %s: session %s%s after %d attempt(s)",
	         req->payment_id, out->id, info.replayed ? " (replayed)" : "", info.attempts);
out:
	json_decref(reply);
	stripe_form_free(form);
	return st;
}

static enum hex_status stripe_gateway_retrieve_intent(void *self, const char *intent_id,
                                                      struct gateway_intent *out,
                                                      struct hex_err *err)
{
	struct stripe_gateway *g = self;
	json_t *reply = NULL;
	char *path = NULL;
	enum hex_status st;
	memset(out, 0, sizeof *out);
	if (intent_id == NULL || !payment_provider_id_valid(intent_id)) {
		st = hex_fail(err, HEX_INVALID, "id", "not a Stripe PaymentIntent id");
		goto out;
	}
	path = xasprintf(PATH_INTENTS "/%s", intent_id);
	struct stripe_request req = {.method = STRIPE_GET, .path = path};
	st = stripe_client_call(g->client, &req, &reply, NULL, err);
	if (st == HEX_OK)
		st = stripe_gateway_parse_intent(reply, out, err);
out:
	free(path);
	json_decref(reply);
	return st;
}

static const struct payment_gateway_ops stripe_gateway_ops = {
    .create_intent = stripe_gateway_create_intent,
    .create_checkout = stripe_gateway_create_checkout,
    .retrieve_intent = stripe_gateway_retrieve_intent,
};

struct payment_gateway stripe_gateway_port(struct stripe_gateway *g)
{
	return (struct payment_gateway){.ops = &stripe_gateway_ops, .self = g};
}
