/* payment_service.c: payments with request storage, provider events, reads, membership hook. */
#include "core/payment_service.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/logger.h"

/* The provider key tells what it created, so a client key never crosses the two kinds. */
#define STRIPE_KEY_PREFIX   "hexpay_"
#define CHECKOUT_KEY_PREFIX "hexcs_"
#define REFUSED_DEFAULT     "the payment provider refused this payment"

static enum hex_status repo_failed(enum hex_status st, struct hex_err *err)
{
	return hex_store_failed(st, "payment", err);
}

/* After a committed membership change: the next read rebuilds the entry from the truth. */
static void cache_forget(struct payment_service *s, const char *user_id)
{
	if (s->cache.ops != NULL)
		(void)s->cache.ops->del(s->cache.self,
		                        user_id); /* the membership consumer redoes it */
}

static void lower_id(const char *in, char out[HEX_ID_LEN + 1])
{
	for (int i = 0; i <= HEX_ID_LEN; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
}

static int64_t now_us(struct payment_service *s)
{
	return s->clock.ops->now_us(s->clock.self);
}

/* ---- create ---- */

/* The stored payment of a client key must be the one the client asks for again. */
static enum hex_status same_request(const struct payment_record *want,
                                    const struct payment_record *have, const char *key_prefix,
                                    struct hex_err *err)
{
	const struct payment *a = &want->payment, *b = &have->payment;
	if (a->amount == b->amount && strcmp(a->currency, b->currency) == 0 &&
	    a->purpose == b->purpose &&
	    strncmp(have->stripe_idempotency_key, key_prefix, strlen(key_prefix)) == 0)
		return HEX_OK;
	enum hex_status st = hex_fail(err, HEX_CONFLICT, NULL,
	                              "this Idempotency-Key was already used for another request");
	if (err != NULL)
		err->code = "idempotency_key_reused";
	return st;
}

/*
 * Request storage: *rec gets the stored request for want, found by its client key or newly
 * inserted (and committed) before the provider hears of it.
 */
static enum hex_status stored_request(struct payment_service *s, const struct payment_record *want,
                                      const char *key_prefix, struct payment_record *rec,
                                      struct hex_err *err)
{
	const struct payment *p = &want->payment;
	bool keyed = want->client_key[0] != '\0';
	enum hex_status st;
	if (keyed) {
		st = s->repo.ops->find_by_client_key(s->repo.self, p->user_id, want->client_key,
		                                     rec);
		if (st == HEX_OK)
			return same_request(want, rec, key_prefix, err);
		if (st != HEX_NOT_FOUND)
			return repo_failed(st, err);
	}

	*rec = *want;
	s->ids.ops->new_id(s->ids.self, rec->payment.id);
	snprintf(rec->stripe_idempotency_key, sizeof rec->stripe_idempotency_key, "%s%s",
	         key_prefix, rec->payment.id);
	rec->payment.status = PAYMENT_REQUIRES_PAYMENT_METHOD;
	rec->payment.created_at_us = rec->payment.updated_at_us = now_us(s);
	st = s->repo.ops->insert(s->repo.self, rec);
	if (st == HEX_OK)
		return HEX_OK;
	if (st == HEX_CONFLICT && keyed) {
		/* A concurrent request with the same key stored first: follow its request. */
		st = s->repo.ops->find_by_client_key(s->repo.self, p->user_id, want->client_key,
		                                     rec);
		if (st == HEX_OK)
			return same_request(want, rec, key_prefix, err);
		log_error("payment_key_conflict_vanished",
		          "insert conflicted on a client key that is then not found");
		st = HEX_INTERNAL;
	}
	return repo_failed(st, err);
}

static enum hex_status provider_refused(struct payment_service *s, const struct payment_record *rec,
                                        const char *message, struct payment *out,
                                        struct hex_err *err)
{
	char msg[HEX_FAILURE_MESSAGE_MAX + 1];
	hex_strlcpy(msg, message[0] != '\0' ? message : REFUSED_DEFAULT, sizeof msg);
	struct payment stored;
	enum hex_status st =
	    s->repo.ops->mark_failed(s->repo.self, rec->payment.id, msg, now_us(s), &stored);
	/* The refusal stands even if it could not be stored: a retry asks the provider again. */
	if (st != HEX_OK)
		log_warn("payment_mark_failed_failed", "payment %s: %s", rec->payment.id,
		         hex_status_name(st));
	else
		*out = stored;
	return hex_fail(err, HEX_INVALID, NULL, "%s", msg);
}

/* A traceparent that does not fit is not one: the trace simply stops here. */
static void copy_trace(char out[56], const char *trace_parent)
{
	if (trace_parent == NULL || !hex_strlcpy(out, trace_parent, 56))
		out[0] = '\0';
}

/* What a failed provider call means for the client; a refusal also fails the payment. */
static enum hex_status provider_failed(struct payment_service *s, const struct payment_record *rec,
                                       enum hex_status st, const struct hex_err *gerr,
                                       struct payment *out, struct hex_err *err)
{
	const struct payment *p = &rec->payment;
	switch (st) {
	case HEX_UNAVAILABLE:
		log_warn("payment_gateway_unavailable", "payment %s: %s", p->id, gerr->message);
		return hex_fail(err, HEX_UNAVAILABLE, NULL,
		                "the payment provider did not answer; retry with the same "
		                "Idempotency-Key");
	case HEX_INVALID:
		return provider_refused(s, rec, gerr->message, out, err);
	case HEX_CONFLICT:
		/* Our key carries the stored parameters: only a request in flight conflicts. */
		log_warn("payment_gateway_conflict", "payment %s: %s", p->id, gerr->message);
		return hex_fail(err, HEX_CONFLICT, NULL,
		                "another request for this payment is in progress; retry");
	default:
		log_error("payment_gateway_failed", "payment %s: %s: %s", p->id,
		          hex_status_name(st), gerr->message);
		return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	}
}

/* The provider call for a stored request, or the answer it already had. */
static enum hex_status provider_call(struct payment_service *s, const struct payment_record *rec,
                                     const char *trace_parent, struct payment *out,
                                     struct hex_err *err)
{
	const struct payment *p = &rec->payment;
	if (p->stripe_payment_intent_id[0] != '\0') {
		*out = *p;
		return HEX_OK;
	}
	if (rec->failure_message[0] != '\0') {
		*out = *p;
		return hex_fail(err, HEX_INVALID, NULL, "%s", rec->failure_message);
	}

	struct gateway_intent_request gr = {.amount = p->amount, .purpose = p->purpose};
	hex_strlcpy(gr.idempotency_key, rec->stripe_idempotency_key, sizeof gr.idempotency_key);
	memcpy(gr.currency, p->currency, sizeof gr.currency);
	memcpy(gr.payment_id, p->id, sizeof gr.payment_id);
	memcpy(gr.user_id, p->user_id, sizeof gr.user_id);
	copy_trace(gr.trace_parent, trace_parent);

	struct gateway_intent intent = {0};
	struct hex_err gerr = {0};
	enum hex_status st = s->gateway.ops->create_intent(s->gateway.self, &gr, &intent, &gerr);
	if (st != HEX_OK)
		return provider_failed(s, rec, st, &gerr, out, err);
	if (intent.id[0] == '\0') {
		log_error("payment_gateway_no_intent", "payment %s: an answer without intent id",
		          p->id);
		return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	}
	st = s->repo.ops->attach_intent(s->repo.self, p->id, intent.id, intent.client_secret,
	                                intent.status, now_us(s), out);
	if (st != HEX_OK) {
		/* The intent exists at the provider; a retry with the same key gets it back. */
		log_warn("payment_attach_failed", "payment %s: intent %s: %s", p->id, intent.id,
		         hex_status_name(st));
		return repo_failed(st, err);
	}
	return HEX_OK;
}

enum hex_status payment_service_create(struct payment_service *s,
                                       const struct payment_create_request *req,
                                       struct payment *out, struct hex_err *err)
{
	struct payment_record want = {0};
	struct payment_record rec = {0};
	enum hex_status st;
	if (!user_id_valid(req->user_id))
		return hex_fail(err, HEX_INVALID, "user_id", "user_id must be a UUID");
	if ((st = payment_amount_check(req->amount, err)) != HEX_OK)
		return st;
	if ((st = payment_currency_normalize(req->currency, want.payment.currency, err)) != HEX_OK)
		return st;
	if (!payment_purpose_parse(req->purpose, &want.payment.purpose))
		return hex_fail(err, HEX_INVALID, "purpose",
		                "purpose must be wallet_top_up or membership");
	if (req->client_key != NULL) {
		if ((st = payment_client_key_check(req->client_key, err)) != HEX_OK)
			return st;
		hex_strlcpy(want.client_key, req->client_key, sizeof want.client_key);
	}
	lower_id(req->user_id, want.payment.user_id);
	want.payment.amount = req->amount;

	if ((st = stored_request(s, &want, STRIPE_KEY_PREFIX, &rec, err)) != HEX_OK)
		return st;
	return provider_call(s, &rec, req->trace_parent, out, err);
}

/* ---- checkout ---- */

static void checkout_answer(const struct payment_record *rec, struct payment *out_payment,
                            char out_session_id[HEX_STRIPE_ID_MAX + 1],
                            char out_url[HEX_URL_MAX + 1])
{
	*out_payment = rec->payment;
	memcpy(out_session_id, rec->stripe_checkout_session_id, HEX_STRIPE_ID_MAX + 1);
	memcpy(out_url, rec->checkout_url, HEX_URL_MAX + 1);
}

/* The provider call for a stored checkout, or the session it already opened. */
static enum hex_status checkout_call(struct payment_service *s, const struct payment_record *rec,
                                     const char *trace_parent, struct payment *out_payment,
                                     char out_session_id[HEX_STRIPE_ID_MAX + 1],
                                     char out_url[HEX_URL_MAX + 1], struct hex_err *err)
{
	const struct payment *p = &rec->payment;
	if (rec->stripe_checkout_session_id[0] != '\0') {
		checkout_answer(rec, out_payment, out_session_id, out_url);
		return HEX_OK;
	}
	if (rec->failure_message[0] != '\0') {
		*out_payment = *p;
		return hex_fail(err, HEX_INVALID, NULL, "%s", rec->failure_message);
	}

	struct gateway_checkout_request gr = {.amount = p->amount};
	hex_strlcpy(gr.idempotency_key, rec->stripe_idempotency_key, sizeof gr.idempotency_key);
	memcpy(gr.currency, p->currency, sizeof gr.currency);
	memcpy(gr.payment_id, p->id, sizeof gr.payment_id);
	memcpy(gr.user_id, p->user_id, sizeof gr.user_id);
	hex_strlcpy(gr.success_url, s->checkout_success_url, sizeof gr.success_url);
	hex_strlcpy(gr.cancel_url, s->checkout_cancel_url, sizeof gr.cancel_url);
	copy_trace(gr.trace_parent, trace_parent);

	struct gateway_checkout cs = {0};
	struct hex_err gerr = {0};
	enum hex_status st = s->gateway.ops->create_checkout(s->gateway.self, &gr, &cs, &gerr);
	if (st != HEX_OK)
		return provider_failed(s, rec, st, &gerr, out_payment, err);
	if (cs.id[0] == '\0' || cs.url[0] == '\0') {
		log_error("payment_gateway_no_session", "payment %s: an answer without session",
		          p->id);
		return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	}
	struct payment_record stored;
	st = s->repo.ops->attach_checkout(s->repo.self, p->id, cs.id, cs.url, now_us(s), &stored);
	if (st != HEX_OK) {
		/* The session exists at the provider; a retry with the same key gets it back. */
		log_warn("payment_attach_checkout_failed", "payment %s: session %s: %s", p->id,
		         cs.id, hex_status_name(st));
		return repo_failed(st, err);
	}
	checkout_answer(&stored, out_payment, out_session_id, out_url);
	return HEX_OK;
}

/* The configuration a checkout needs, checked at start-up too: missing is our fault. */
static bool checkout_configured(const struct payment_service *s, char currency[4])
{
	return s->membership_currency != NULL && s->checkout_success_url != NULL &&
	       s->checkout_cancel_url != NULL && s->checkout_success_url[0] != '\0' &&
	       s->checkout_cancel_url[0] != '\0' &&
	       strlen(s->checkout_success_url) <= HEX_URL_MAX &&
	       strlen(s->checkout_cancel_url) <= HEX_URL_MAX &&
	       payment_amount_check(s->membership_price, NULL) == HEX_OK &&
	       payment_currency_normalize(s->membership_currency, currency, NULL) == HEX_OK;
}

enum hex_status payment_service_checkout(struct payment_service *s,
                                         const struct payment_checkout_request *req,
                                         struct payment *out_payment,
                                         char out_session_id[HEX_STRIPE_ID_MAX + 1],
                                         char out_url[HEX_URL_MAX + 1], struct hex_err *err)
{
	struct payment_record want = {0};
	struct payment_record rec = {0};
	enum hex_status st;
	out_session_id[0] = out_url[0] = '\0';
	if (!user_id_valid(req->user_id))
		return hex_fail(err, HEX_INVALID, "user_id", "user_id must be a UUID");
	if (req->client_key != NULL) {
		if ((st = payment_client_key_check(req->client_key, err)) != HEX_OK)
			return st;
		hex_strlcpy(want.client_key, req->client_key, sizeof want.client_key);
	}
	if (!checkout_configured(s, want.payment.currency)) {
		log_error("payment_checkout_unconfigured",
		          "membership price, currency or checkout URLs are missing or invalid");
		return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	}
	lower_id(req->user_id, want.payment.user_id);
	want.payment.amount = s->membership_price;
	want.payment.purpose = PURPOSE_MEMBERSHIP;

	if ((st = stored_request(s, &want, CHECKOUT_KEY_PREFIX, &rec, err)) != HEX_OK)
		return st;
	return checkout_call(s, &rec, req->trace_parent, out_payment, out_session_id, out_url, err);
}

/* ---- provider events ---- */

static const char *event_outcome(const struct payment_event_effect *e)
{
	if (e->duplicate)
		return "duplicate, ignored";
	if (!e->payment_found)
		return "recorded; no payment of ours";
	return e->status_changed ? "recorded; payment status advanced"
	                         : "recorded; payment status unchanged";
}

enum hex_status payment_service_apply_event(struct payment_service *s,
                                            const struct payment_event *ev, bool *duplicate,
                                            struct hex_err *err)
{
	*duplicate = false;
	if (ev->id[0] == '\0' || memchr(ev->id, '\0', sizeof ev->id) == NULL)
		return hex_fail(err, HEX_INVALID, "id", "the event has no id");
	if (ev->payload == NULL)
		return hex_fail(err, HEX_INVALID, "payload", "the event has no payload");
	struct payment_event_plan plan;
	payment_event_plan_of(ev->kind, &plan);
	struct payment_event_effect effect = {0};
	enum hex_status st = s->repo.ops->apply_event(s->repo.self, ev, &plan, now_us(s), &effect);
	if (st != HEX_OK) {
		log_warn("payment_event_not_recorded", "event %s: %s", ev->id, hex_status_name(st));
		return st == HEX_UNAVAILABLE ? repo_failed(st, err)
		                             : hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	}
	if (effect.member_user_id[0] != '\0')
		cache_forget(s, effect.member_user_id);
	log_info("payment_event", "event %s (%s): %s", ev->id,
	         payment_event_kind_name(ev->kind) != NULL ? payment_event_kind_name(ev->kind)
	                                                   : "other",
	         event_outcome(&effect));
	*duplicate = effect.duplicate;
	return HEX_OK;
}

/* ---- reads ---- */

static bool may_see(const char *caller_user_id, bool caller_is_admin, const struct payment *p)
{
	return caller_is_admin ||
	       (caller_user_id != NULL && strcasecmp(caller_user_id, p->user_id) == 0);
}

enum hex_status payment_service_get(struct payment_service *s, const char *caller_user_id,
                                    bool caller_is_admin, const char *id, struct payment *out,
                                    struct hex_err *err)
{
	if (!payment_id_valid(id))
		return hex_fail(err, HEX_NOT_FOUND, NULL, "payment not found");
	struct payment p;
	enum hex_status st = s->repo.ops->get(s->repo.self, id, &p);
	if (st != HEX_OK)
		return repo_failed(st, err);
	if (!may_see(caller_user_id, caller_is_admin, &p))
		return hex_fail(err, HEX_FORBIDDEN, NULL, "you may only see your own payments");
	*out = p;
	return HEX_OK;
}

enum hex_status payment_service_list(struct payment_service *s, const char *caller_user_id,
                                     bool caller_is_admin, const struct payment_list_request *rq,
                                     struct payment_page *out, struct hex_err *err)
{
	char user_id[HEX_ID_LEN + 1];
	struct payment_filter f = {.status = -1, .limit = rq->limit, .after = rq->after};
	out->count = 0;
	out->has_more = false;

	if (rq->limit < 1 || rq->limit > HEX_LIST_MAX)
		return hex_fail(err, HEX_INVALID, "limit", "limit must be between 1 and %d",
		                HEX_LIST_MAX);
	if (rq->user_id != NULL) {
		if (!user_id_valid(rq->user_id))
			return hex_fail(err, HEX_INVALID, "user_id", "user_id must be a UUID");
		lower_id(rq->user_id, user_id);
		bool own = caller_user_id != NULL && strcasecmp(user_id, caller_user_id) == 0;
		if (!own && !caller_is_admin)
			return hex_fail(err, HEX_FORBIDDEN, NULL,
			                "only an admin may list another user's payments");
		f.user_id = user_id;
	} else if (!caller_is_admin) {
		if (!user_id_valid(caller_user_id))
			return hex_fail(err, HEX_FORBIDDEN, NULL,
			                "you may only list your own payments");
		lower_id(caller_user_id, user_id);
		f.user_id = user_id;
	}
	if (rq->status != NULL) {
		enum payment_status ps;
		if (!payment_status_parse(rq->status, &ps))
			return hex_fail(
			    err, HEX_INVALID, "status",
			    "status must be requires_payment_method, processing, failed, "
			    "succeeded or refunded");
		f.status = (int)ps;
	}
	if (rq->after != NULL && !payment_id_valid(rq->after->id))
		return hex_fail(err, HEX_INVALID, "cursor", "cursor is not valid");

	enum hex_status st = s->repo.ops->list(s->repo.self, &f, out);
	return st == HEX_OK ? HEX_OK : repo_failed(st, err);
}

enum hex_status payment_service_stuck(struct payment_service *s, int limit,
                                      struct payment_page *out, struct hex_err *err)
{
	out->count = 0;
	out->has_more = false;
	if (limit < 1 || limit > HEX_LIST_MAX)
		return hex_fail(err, HEX_INVALID, "limit", "limit must be between 1 and %d",
		                HEX_LIST_MAX);
	int64_t before =
	    s->clock.ops->now_us(s->clock.self) - PAYMENT_STUCK_AFTER_S * INT64_C(1000000);
	enum hex_status st = s->repo.ops->stuck(s->repo.self, before, limit, out);
	return st == HEX_OK ? HEX_OK : repo_failed(st, err);
}

enum hex_status payment_service_events(struct payment_service *s, const char *id,
                                       struct payment_event_list *out, struct hex_err *err)
{
	out->count = 0;
	out->has_more = false;
	if (!payment_id_valid(id))
		return hex_fail(err, HEX_NOT_FOUND, NULL, "payment not found");
	char lower[HEX_ID_LEN + 1];
	lower_id(id, lower);
	enum hex_status st = s->repo.ops->events(s->repo.self, lower, out);
	return st == HEX_OK ? HEX_OK : repo_failed(st, err);
}

/* ---- the old membership hook ---- */

static bool event_id_ok(const char *id)
{
	size_t len = strlen(id);
	if (len == 0 || len > HEX_EVENT_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)id[i] <= 0x20 || (unsigned char)id[i] >= 0x7f)
			return false;
	return true;
}

enum hex_status payment_service_membership_hook(struct payment_service *s, const char *event_id,
                                                const char *user_id, const char *status,
                                                bool *duplicate, struct hex_err *err)
{
	if (duplicate != NULL)
		*duplicate = false;
	if (event_id != NULL && !event_id_ok(event_id))
		return hex_fail(err, HEX_INVALID, "event_id",
		                "event_id must be 1 to %d printable ASCII characters",
		                HEX_EVENT_ID_MAX);
	if (!user_id_valid(user_id))
		return hex_fail(err, HEX_INVALID, "user_id", "user_id must be a UUID");
	enum membership m;
	if (!membership_parse(status, &m))
		return hex_fail(err, HEX_INVALID, "membership",
		                "membership must be member or free");
	char uid[HEX_ID_LEN + 1];
	lower_id(user_id, uid);

	struct membership_effect effect = {0};
	enum hex_status st = s->repo.ops->record_membership_event(s->repo.self, event_id, uid, m,
	                                                          now_us(s), &effect);
	if (st == HEX_NOT_FOUND)
		return hex_fail(err, st, NULL, "user not found");
	if (st != HEX_OK)
		return repo_failed(st, err);
	if (!effect.duplicate)
		cache_forget(s, uid);
	if (duplicate != NULL)
		*duplicate = effect.duplicate;
	return HEX_OK;
}
