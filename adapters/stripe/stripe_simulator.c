/* stripe_simulator.c: the payment_gateway port as an in-memory, Stripe-like simulator. */
#include "adapters/stripe/stripe_simulator.h"

#include <pthread.h>
#include <search.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/crypto/random_ids.h"
#include "adapters/stripe/stripe_simulator_delivery.h"
#include "adapters/stripe/stripe_simulator_event.h"
#include "core/logger.h"
#include "core/xmalloc.h"

#define MSG_KEY_REUSED "Keys for idempotent requests can only be used with the same parameters"
#define EVENTS_MAX     3 /* a declined attempt, the success, the session's completion */

struct stripe_simulator {
	struct stripe_simulator_delivery *delivery;
	int delay_ms;
	bool chaos;
	int failure_amount;

	pthread_mutex_t mu; /* guards everything below */
	uint64_t rng;       /* splitmix64 state, from the seed */
	void *by_key;       /* tsearch tree of payment->key (owns the payments) */
	void *by_intent;    /* tsearch tree of payment->intent_id */
	uint64_t payments;
	uint64_t events;
	uint64_t chaos_declined_attempts;
	uint64_t chaos_duplicates;
	uint64_t chaos_lost;
};

/* One event of a payment's outcome, before it is queued. */
struct stripe_simulator_planned {
	enum stripe_simulator_event_type type;
	int64_t created_s;
	int64_t due_ms;
	unsigned chaos;
};

/* ---- small helpers ---- */

static uint64_t stripe_simulator_random(struct stripe_simulator *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* One chaos draw: true with probability STRIPE_SIMULATOR_CHAOS_PERCENT; under mu. */
static bool stripe_simulator_chance(struct stripe_simulator *s)
{
	return stripe_simulator_random(s) % 100 < STRIPE_SIMULATOR_CHAOS_PERCENT;
}

/* The trees hold pointers to char arrays inside payments: compared as strings. */
static int stripe_simulator_compare(const void *a, const void *b)
{
	return strcmp(a, b);
}

static struct stripe_simulator_payment *stripe_simulator_find(void *const *root, const char *text,
                                                              size_t member_offset)
{
	void *const *hit = tfind(text, root, stripe_simulator_compare);
	return hit != NULL ? (struct stripe_simulator_payment *)((char *)*hit - member_offset)
	                   : NULL;
}

static void stripe_simulator_payment_free(void *key_member)
{
	struct stripe_simulator_payment *p =
	    (struct stripe_simulator_payment *)((char *)key_member -
	                                        offsetof(struct stripe_simulator_payment, key));
	free(p->success_url);
	free(p->cancel_url);
	free(p);
}

static void stripe_simulator_nothing(void *member)
{
}

static bool stripe_simulator_currency_valid(const char *c)
{
	for (int i = 0; i < 3; i++)
		if (c[i] < 'a' || c[i] > 'z')
			return false;
	return c[3] == '\0';
}

/* Refuses what Stripe would refuse, and the caller's bugs as HEX_INTERNAL. */
static enum hex_status stripe_simulator_check(const char *key, int64_t amount, const char *currency,
                                              const char *payment_id, const char *user_id,
                                              struct hex_err *err)
{
	if (amount <= 0)
		return hex_fail(err, HEX_INVALID, "amount", "amount must be positive");
	if (amount > HEX_AMOUNT_MAX)
		return hex_fail(err, HEX_INVALID, "amount", "amount must be at most %d",
		                HEX_AMOUNT_MAX);
	if (!stripe_simulator_currency_valid(currency))
		return hex_fail(err, HEX_INVALID, "currency",
		                "currency must be a three-letter lower-case code");
	if (key[0] == '\0' || !user_id_valid(payment_id) || !user_id_valid(user_id)) {
		log_error("simulator_request_refused",
		          "a gateway request without an idempotency key or with bad ids");
		return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	}
	return HEX_OK;
}

static enum hex_status stripe_simulator_key_reused(const char *key, struct hex_err *err)
{
	log_warn("simulator_key_reused", "idempotency key %s came back with other parameters", key);
	return hex_fail(err, HEX_CONFLICT, NULL, MSG_KEY_REUSED);
}

/* The intent now: the outcome once settled (a decline leaves it waiting for a card). */
static void stripe_simulator_intent_now(const struct stripe_simulator_payment *p,
                                        struct gateway_intent *out)
{
	memset(out, 0, sizeof *out);
	hex_strlcpy(out->id, p->intent_id, sizeof out->id);
	hex_strlcpy(out->client_secret, p->client_secret, sizeof out->client_secret);
	memcpy(out->currency, p->currency, sizeof out->currency);
	out->amount = p->amount;
	bool settled = stripe_simulator_delivery_now_ms() >= p->settle_at_ms;
	out->status = settled && !p->declined ? PAYMENT_SUCCEEDED : PAYMENT_REQUIRES_PAYMENT_METHOD;
}

/* ---- making a payment and planning its events (under mu) ---- */

/* Fills what the simulator makes, and files p under its key and its intent id. */
static void stripe_simulator_insert(struct stripe_simulator *s, struct stripe_simulator_payment *p)
{
	stripe_simulator_event_new_id("pi_sim_", p->intent_id, sizeof p->intent_id);
	/* Stripe's shape: "<intent id>_secret_<random>". */
	char secret_part[STRIPE_SIMULATOR_RANDOM_LEN + 1];
	stripe_simulator_event_new_id("", secret_part, sizeof secret_part);
	hex_strlcpy(p->client_secret, p->intent_id, sizeof p->client_secret);
	strcat(p->client_secret, "_secret_");
	strcat(p->client_secret, secret_part);
	stripe_simulator_event_new_id("ch_sim_", p->charge_id, sizeof p->charge_id);
	if (p->checkout) {
		stripe_simulator_event_new_id("cs_sim_", p->session_id, sizeof p->session_id);
		snprintf(p->session_url, sizeof p->session_url, "%s%s",
		         STRIPE_SIMULATOR_CHECKOUT_URL_BASE, p->session_id);
	}
	p->created_s = (int64_t)time(NULL);
	p->settle_at_ms = stripe_simulator_delivery_now_ms() + s->delay_ms;
	p->declined = s->failure_amount > 0 && p->amount % 100 == s->failure_amount;
	if (tsearch(p->key, &s->by_key, stripe_simulator_compare) == NULL ||
	    tsearch(p->intent_id, &s->by_intent, stripe_simulator_compare) == NULL)
		abort(); /* tsearch fails only when out of memory */
	s->payments++;
}

/*
 * The events of p's outcome in the order they happen, with their chaos drawn. A
 * declined attempt before a success is a retry with another card (Stripe sends
 * payment_failed, then succeeded); chaos delivers its payment_failed last.
 */
static int stripe_simulator_plan(struct stripe_simulator *s,
                                 const struct stripe_simulator_payment *p,
                                 struct stripe_simulator_planned plan[EVENTS_MAX])
{
	int64_t settled_s = p->created_s + s->delay_ms / 1000;
	int64_t late_ms = s->delay_ms / 2 > 0 ? s->delay_ms / 2 : 1;
	int n = 0;
	if (p->declined) {
		plan[n++] = (struct stripe_simulator_planned){SIM_EVENT_INTENT_FAILED, settled_s,
		                                              p->settle_at_ms, 0};
	} else {
		if (s->chaos && stripe_simulator_chance(s)) {
			plan[n++] = (struct stripe_simulator_planned){
			    SIM_EVENT_INTENT_FAILED,
			    settled_s > p->created_s ? settled_s - 1 : settled_s,
			    p->settle_at_ms + late_ms, SIM_CHAOS_LATE};
			s->chaos_declined_attempts++;
			log_info("simulator_chaos_declined_attempt",
			         "intent %s: a declined first attempt whose payment_failed comes "
			         "after the success",
			         p->intent_id);
		}
		plan[n++] = (struct stripe_simulator_planned){SIM_EVENT_INTENT_SUCCEEDED, settled_s,
		                                              p->settle_at_ms, 0};
		if (p->checkout)
			plan[n++] = (struct stripe_simulator_planned){
			    SIM_EVENT_CHECKOUT_COMPLETED, settled_s, p->settle_at_ms, 0};
	}
	for (int i = 0; s->chaos && i < n; i++) {
		if (stripe_simulator_chance(s))
			plan[i].chaos |= SIM_CHAOS_DUPLICATE;
		if (stripe_simulator_chance(s))
			plan[i].chaos |= SIM_CHAOS_LOSE_FIRST;
	}
	return n;
}

static void stripe_simulator_schedule(struct stripe_simulator *s,
                                      const struct stripe_simulator_payment *p)
{
	struct stripe_simulator_planned plan[EVENTS_MAX];
	int n = stripe_simulator_plan(s, p, plan);
	int64_t duplicate_gap_ms = s->delay_ms / 4 > 0 ? s->delay_ms / 4 : 1;
	for (int i = 0; i < n; i++) {
		char id[HEX_STRIPE_ID_MAX + 1];
		stripe_simulator_event_new_id("evt_sim_", id, sizeof id);
		struct stripe_simulator_delivery_event ev = {
		    .id = id,
		    .type = stripe_simulator_event_type_name(plan[i].type),
		    .about = p->intent_id,
		    .body = stripe_simulator_event_json(p, plan[i].type, id, plan[i].created_s),
		    .due_ms = plan[i].due_ms,
		    .chaos = plan[i].chaos & ~(unsigned)SIM_CHAOS_DUPLICATE,
		};
		s->events++;
		if (plan[i].chaos & SIM_CHAOS_LOSE_FIRST)
			s->chaos_lost++;
		if (plan[i].chaos & SIM_CHAOS_DUPLICATE) {
			/* The copy is queued before the original hands its body over. */
			struct stripe_simulator_delivery_event copy = ev;
			copy.body = xstrdup(ev.body);
			copy.due_ms = ev.due_ms + duplicate_gap_ms;
			copy.chaos = SIM_CHAOS_DUPLICATE;
			stripe_simulator_delivery_schedule(s->delivery, &copy);
			s->chaos_duplicates++;
		}
		stripe_simulator_delivery_schedule(s->delivery, &ev);
	}
}

/* ---- the port ---- */

static bool stripe_simulator_same_intent(const struct stripe_simulator_payment *p,
                                         const struct gateway_intent_request *req)
{
	return !p->checkout && p->amount == req->amount &&
	       strcmp(p->currency, req->currency) == 0 &&
	       strcmp(p->payment_id, req->payment_id) == 0 &&
	       strcmp(p->user_id, req->user_id) == 0 && p->purpose == req->purpose;
}

/* A new record of what a request asked for; the caller inserts it. */
static struct stripe_simulator_payment *
stripe_simulator_payment_new(const char *key, int64_t amount, const char *currency,
                             const char *payment_id, const char *user_id)
{
	struct stripe_simulator_payment *p = xcalloc(1, sizeof *p);
	hex_strlcpy(p->key, key, sizeof p->key);
	p->amount = amount;
	memcpy(p->currency, currency, sizeof p->currency);
	memcpy(p->payment_id, payment_id, sizeof p->payment_id);
	memcpy(p->user_id, user_id, sizeof p->user_id);
	return p;
}

static enum hex_status stripe_simulator_create_intent(void *self,
                                                      const struct gateway_intent_request *req,
                                                      struct gateway_intent *out,
                                                      struct hex_err *err)
{
	struct stripe_simulator *s = self;
	memset(out, 0, sizeof *out);
	enum hex_status st = stripe_simulator_check(
	    req->idempotency_key, req->amount, req->currency, req->payment_id, req->user_id, err);
	if (st != HEX_OK)
		return st;
	if (payment_purpose_name(req->purpose) == NULL)
		return hex_fail(err, HEX_INVALID, "purpose", "unknown purpose");

	pthread_mutex_lock(&s->mu);
	struct stripe_simulator_payment *p = stripe_simulator_find(
	    &s->by_key, req->idempotency_key, offsetof(struct stripe_simulator_payment, key));
	if (p != NULL) {
		if (stripe_simulator_same_intent(p, req)) {
			stripe_simulator_intent_now(p, out);
			log_info("simulator_intent_replayed", "payment %s: intent %s (replayed)",
			         req->payment_id, p->intent_id);
		} else {
			st = stripe_simulator_key_reused(req->idempotency_key, err);
		}
		goto out;
	}
	p = stripe_simulator_payment_new(req->idempotency_key, req->amount, req->currency,
	                                 req->payment_id, req->user_id);
	p->purpose = req->purpose;
	stripe_simulator_insert(s, p);
	stripe_simulator_schedule(s, p);
	stripe_simulator_intent_now(p, out);
	log_info("simulator_intent_created", "payment %s: intent %s for %lld %s, %s in %d ms",
	         p->payment_id, p->intent_id, (long long)p->amount, p->currency,
	         p->declined ? "declined" : "succeeding", s->delay_ms);
out:
	pthread_mutex_unlock(&s->mu);
	return st;
}

static bool stripe_simulator_same_checkout(const struct stripe_simulator_payment *p,
                                           const struct gateway_checkout_request *req)
{
	return p->checkout && p->amount == req->amount && strcmp(p->currency, req->currency) == 0 &&
	       strcmp(p->payment_id, req->payment_id) == 0 &&
	       strcmp(p->user_id, req->user_id) == 0 &&
	       strcmp(p->success_url, req->success_url) == 0 &&
	       strcmp(p->cancel_url, req->cancel_url) == 0;
}

static void stripe_simulator_checkout_out(const struct stripe_simulator_payment *p,
                                          struct gateway_checkout *out)
{
	hex_strlcpy(out->id, p->session_id, sizeof out->id);
	hex_strlcpy(out->url, p->session_url, sizeof out->url);
	hex_strlcpy(out->payment_intent_id, p->intent_id, sizeof out->payment_intent_id);
}

static enum hex_status stripe_simulator_create_checkout(void *self,
                                                        const struct gateway_checkout_request *req,
                                                        struct gateway_checkout *out,
                                                        struct hex_err *err)
{
	struct stripe_simulator *s = self;
	memset(out, 0, sizeof *out);
	enum hex_status st = stripe_simulator_check(
	    req->idempotency_key, req->amount, req->currency, req->payment_id, req->user_id, err);
	if (st != HEX_OK)
		return st;
	if (req->success_url[0] == '\0' || req->cancel_url[0] == '\0')
		return hex_fail(err, HEX_INVALID,
		                req->success_url[0] == '\0' ? "success_url" : "cancel_url",
		                "Checkout needs a success and a cancel URL");

	pthread_mutex_lock(&s->mu);
	struct stripe_simulator_payment *p = stripe_simulator_find(
	    &s->by_key, req->idempotency_key, offsetof(struct stripe_simulator_payment, key));
	if (p != NULL) {
		if (stripe_simulator_same_checkout(p, req)) {
			stripe_simulator_checkout_out(p, out);
			log_info("simulator_checkout_replayed", "payment %s: session %s (replayed)",
			         req->payment_id, p->session_id);
		} else {
			st = stripe_simulator_key_reused(req->idempotency_key, err);
		}
		goto out;
	}
	p = stripe_simulator_payment_new(req->idempotency_key, req->amount, req->currency,
	                                 req->payment_id, req->user_id);
	p->checkout = true;
	/* As the Stripe adapter does: Checkout is how a membership is bought. */
	p->purpose = PURPOSE_MEMBERSHIP;
	p->success_url = xstrdup(req->success_url);
	p->cancel_url = xstrdup(req->cancel_url);
	stripe_simulator_insert(s, p);
	stripe_simulator_schedule(s, p);
	stripe_simulator_checkout_out(p, out);
	log_info("simulator_checkout_created",
	         "payment %s: session %s (intent %s) for %lld %s, %s in %d ms", p->payment_id,
	         p->session_id, p->intent_id, (long long)p->amount, p->currency,
	         p->declined ? "declined" : "paid", s->delay_ms);
out:
	pthread_mutex_unlock(&s->mu);
	return st;
}

static enum hex_status stripe_simulator_retrieve_intent(void *self, const char *intent_id,
                                                        struct gateway_intent *out,
                                                        struct hex_err *err)
{
	struct stripe_simulator *s = self;
	enum hex_status st = HEX_OK;
	memset(out, 0, sizeof *out);
	if (intent_id == NULL || !payment_provider_id_valid(intent_id))
		return hex_fail(err, HEX_INVALID, "id", "not a Stripe PaymentIntent id");
	pthread_mutex_lock(&s->mu);
	const struct stripe_simulator_payment *p = stripe_simulator_find(
	    &s->by_intent, intent_id, offsetof(struct stripe_simulator_payment, intent_id));
	if (p != NULL)
		stripe_simulator_intent_now(p, out);
	else
		st = hex_fail(err, HEX_NOT_FOUND, NULL, "No such payment_intent: '%s'", intent_id);
	pthread_mutex_unlock(&s->mu);
	return st;
}

static const struct payment_gateway_ops stripe_simulator_ops = {
    .create_intent = stripe_simulator_create_intent,
    .create_checkout = stripe_simulator_create_checkout,
    .retrieve_intent = stripe_simulator_retrieve_intent,
};

struct payment_gateway stripe_simulator_port(struct stripe_simulator *s)
{
	return (struct payment_gateway){.ops = &stripe_simulator_ops, .self = s};
}

/* ---- life cycle ---- */

struct stripe_simulator *stripe_simulator_new(const struct stripe_simulator_config *c,
                                              struct hex_err *err)
{
	if (c->delay_ms < 0 || c->delay_ms > STRIPE_SIMULATOR_DELAY_MAX_MS) {
		hex_fail(err, HEX_INVALID, "simulated_delay_ms", "simulated_delay_ms must be 0..%d",
		         STRIPE_SIMULATOR_DELAY_MAX_MS);
		return NULL;
	}
	if (c->failure_amount < 0 || c->failure_amount > 99) {
		hex_fail(err, HEX_INVALID, "simulated_failure_amount",
		         "simulated_failure_amount must be 1..99, or 0 for no declines");
		return NULL;
	}
	int retry_base_ms =
	    c->retry_base_ms != 0 ? c->retry_base_ms : STRIPE_SIMULATOR_RETRY_BASE_MS;
	struct stripe_simulator_delivery *delivery =
	    stripe_simulator_delivery_new(c->webhook_url, c->webhook_secret, retry_base_ms, err);
	if (delivery == NULL)
		return NULL;

	struct stripe_simulator *s = xcalloc(1, sizeof *s);
	s->delivery = delivery;
	s->delay_ms = c->delay_ms;
	s->chaos = c->chaos;
	s->failure_amount = c->failure_amount;
	uint64_t seed = c->seed;
	while (seed == 0)
		crypto_random_bytes(&seed, sizeof seed);
	s->rng = seed;
	pthread_mutex_init(&s->mu, NULL);
	char declines[48] = "no amount is declined";
	if (s->failure_amount > 0)
		snprintf(declines, sizeof declines, "amounts ending in %02d are declined",
		         s->failure_amount);
	log_info("simulator_started",
	         "webhooks to %s %d ms after each payment; chaos %s (seed %llu); %s",
	         c->webhook_url, s->delay_ms, s->chaos ? "on" : "off", (unsigned long long)seed,
	         declines);
	return s;
}

void stripe_simulator_free(struct stripe_simulator *s)
{
	if (s == NULL)
		return;
	/* First: once the thread has stopped, nothing more is sent. */
	stripe_simulator_delivery_free(s->delivery);
	tdestroy(s->by_intent, stripe_simulator_nothing);
	tdestroy(s->by_key, stripe_simulator_payment_free);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void stripe_simulator_read_stats(struct stripe_simulator *s, struct stripe_simulator_stats *out)
{
	struct stripe_simulator_delivery_stats d;
	stripe_simulator_delivery_stats(s->delivery, &d);
	pthread_mutex_lock(&s->mu);
	*out = (struct stripe_simulator_stats){
	    .payments = s->payments,
	    .events = s->events,
	    .attempts = d.attempts,
	    .delivered = d.delivered,
	    .dropped = d.dropped,
	    .pending = d.pending,
	    .chaos_declined_attempts = s->chaos_declined_attempts,
	    .chaos_duplicates = s->chaos_duplicates,
	    .chaos_lost = s->chaos_lost,
	};
	pthread_mutex_unlock(&s->mu);
}
