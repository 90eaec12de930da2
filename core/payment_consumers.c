/* payment_consumers.c: the handlers of Stripe's payment events (see the header). */
#include "core/payment_consumers.h"

#include <stdio.h>
#include <string.h>

#include "core/logger.h"

static enum hex_status decode(struct payment_consumers *pc, const struct event_msg *m,
                              struct payment_event *ev, struct hex_err *err)
{
	struct hex_err why = {0};
	if (pc->decoder.ops->decode(pc->decoder.self, m->payload, m->payload_len, ev, &why) !=
	    HEX_OK)
		return hex_fail(err, HEX_INVALID, NULL, "not a payment event: %s", why.message);
	return HEX_OK;
}

/* The payment ev is about; *ours false when it is not one of hexd's payments. */
static enum hex_status find_payment(struct payment_consumers *pc, const struct payment_event *ev,
                                    struct payment *p, bool *ours, struct hex_err *err)
{
	*ours = false;
	enum hex_status st = HEX_NOT_FOUND;
	if (ev->payment_id[0] != '\0') {
		st = pc->payments.ops->get(pc->payments.self, ev->payment_id, p);
		if (st == HEX_NOT_FOUND)
			return hex_fail(err, HEX_INVALID, NULL,
			                "event %s names payment %s, which does "
			                "not exist",
			                ev->id, ev->payment_id);
	} else if (ev->intent_id[0] != '\0') {
		st = pc->payments.ops->get_by_intent(pc->payments.self, ev->intent_id, p);
	}
	if (st == HEX_NOT_FOUND)
		return HEX_OK;
	if (st != HEX_OK)
		return hex_fail(err, st, NULL, "the payment cannot be read: %s",
		                hex_status_name(st));
	*ours = true;
	return HEX_OK;
}

static bool is_success(enum payment_event_kind k)
{
	return k == EVENT_INTENT_SUCCEEDED || k == EVENT_CHECKOUT_COMPLETED;
}

/* The event's and the payment's currency agree (an event may leave it out). */
static enum hex_status same_currency(const struct payment_event *ev, const struct payment *p,
                                     struct hex_err *err)
{
	if (ev->currency[0] != '\0' && strcmp(ev->currency, p->currency) != 0)
		return hex_fail(err, HEX_INVALID, NULL, "event %s is in %s, payment %s in %s",
		                ev->id, ev->currency, p->id, p->currency);
	return HEX_OK;
}

static enum hex_status post_success(struct payment_consumers *pc, const struct payment_event *ev,
                                    const struct payment *p, struct hex_err *err)
{
	/* What was received is what the books hold; the event always says it for a success. */
	int64_t amount = ev->amount > 0 ? ev->amount : p->amount;
	struct ledger_txn txn;
	if (p->purpose == PURPOSE_WALLET_TOP_UP)
		return ledger_service_top_up(&pc->ledger, p->id, p->user_id, amount, p->currency,
		                             &txn, err);
	return ledger_service_membership(&pc->ledger, p->id, amount, p->currency, &txn, err);
}

static enum hex_status post_refund(struct payment_consumers *pc, const struct payment_event *ev,
                                   const struct payment *p, struct hex_err *err)
{
	char original[LEDGER_KEY_MAX + 1];
	snprintf(original, sizeof original, "payment:%s", p->id);
	struct ledger_txn txn;
	enum hex_status st = pc->ledger.repo.ops->get_by_key(pc->ledger.repo.self, original, &txn);
	if (st == HEX_NOT_FOUND)
		/* The success is not posted yet (events come in any order): try again later. */
		return hex_fail(err, HEX_NOT_FOUND, NULL,
		                "refund of payment %s before its success "
		                "was posted",
		                p->id);
	if (st != HEX_OK)
		return hex_fail(err, st, NULL, "the ledger cannot be read: %s",
		                hex_status_name(st));
	int64_t booked = 0; /* what the success moved: its one credit */
	for (int i = 0; i < txn.n; i++)
		if (txn.entries[i].amount > 0)
			booked += txn.entries[i].amount;
	if (ev->amount > 0 && ev->amount < booked)
		return hex_fail(err, HEX_INVALID, NULL,
		                "partial refund of %lld of payment %s (%lld "
		                "booked) is not supported: post it by hand",
		                (long long)ev->amount, p->id, (long long)booked);
	return ledger_service_refund(&pc->ledger, p->id, original, &txn, err);
}

static enum hex_status ledger_handle(void *ctx, const struct event_msg *m, struct hex_err *err)
{
	struct payment_consumers *pc = ctx;
	struct payment_event ev;
	struct payment p;
	bool ours = false;
	enum hex_status st;
	if ((st = decode(pc, m, &ev, err)) != HEX_OK)
		return st;
	if (!is_success(ev.kind) && ev.kind != EVENT_CHARGE_REFUNDED)
		return HEX_OK;
	if ((st = find_payment(pc, &ev, &p, &ours, err)) != HEX_OK || !ours)
		return st;
	if ((st = same_currency(&ev, &p, err)) != HEX_OK)
		return st;
	return is_success(ev.kind) ? post_success(pc, &ev, &p, err) : post_refund(pc, &ev, &p, err);
}

static enum hex_status membership_handle(void *ctx, const struct event_msg *m, struct hex_err *err)
{
	struct payment_consumers *pc = ctx;
	struct payment_event ev;
	struct payment p;
	bool ours = false;
	enum hex_status st;
	if ((st = decode(pc, m, &ev, err)) != HEX_OK || !is_success(ev.kind))
		return st;
	st = find_payment(pc, &ev, &p, &ours, err);
	if (st == HEX_INVALID)
		return HEX_OK; /* no such payment: no member to drop (the ledger dead-letters it) */
	if (st != HEX_OK || !ours || p.purpose != PURPOSE_MEMBERSHIP || pc->cache.ops == NULL)
		return st;
	if (pc->cache.ops->del(pc->cache.self, p.user_id) != HEX_OK)
		return hex_fail(err, HEX_UNAVAILABLE, NULL, "the cached user %s cannot be dropped",
		                p.user_id);
	return HEX_OK;
}

static enum hex_status notify_handle(void *ctx, const struct event_msg *m, struct hex_err *err)
{
	struct payment_consumers *pc = ctx;
	struct payment_event ev;
	enum hex_status st = decode(pc, m, &ev, err);
	if (st != HEX_OK)
		return st;
	log_info("payment_notice", "%s %s: payment %s, intent %s, %lld %s", ev.type, ev.id,
	         ev.payment_id[0] != '\0' ? ev.payment_id : "-",
	         ev.intent_id[0] != '\0' ? ev.intent_id : "-", (long long)ev.amount,
	         ev.currency[0] != '\0' ? ev.currency : "-");
	return HEX_OK;
}

const struct payment_consumer_def payment_consumer_defs[] = {
    {"ledger", ledger_handle},
    {"membership", membership_handle},
    {"notify", notify_handle},
};
const int payment_consumer_count =
    (int)(sizeof payment_consumer_defs / sizeof payment_consumer_defs[0]);
