/* ledger.c: the pure rules of the double-entry ledger. */
#include "core/ledger.h"

#include <string.h>

static const char *const kind_names[LEDGER_KIND_COUNT] = {
    [LEDGER_WALLET] = "wallet",
    [LEDGER_STRIPE_CLEARING] = "stripe_clearing",
    [LEDGER_MEMBERSHIP_REVENUE] = "membership_revenue",
    [LEDGER_REFUNDS] = "refunds",
};

const char *ledger_kind_name(enum ledger_account_kind k)
{
	return (unsigned)k < LEDGER_KIND_COUNT ? kind_names[k] : "unknown";
}

bool ledger_kind_parse(const char *s, enum ledger_account_kind *out)
{
	for (int k = 0; k < LEDGER_KIND_COUNT; k++) {
		if (s != NULL && strcmp(s, kind_names[k]) == 0) {
			*out = (enum ledger_account_kind)k;
			return true;
		}
	}
	return false;
}

bool ledger_kind_allows_negative(enum ledger_account_kind k)
{
	return k != LEDGER_WALLET;
}

static bool currency_valid(const char *c)
{
	for (int i = 0; i < 3; i++)
		if (c[i] < 'a' || c[i] > 'z')
			return false;
	return c[3] == '\0';
}

bool ledger_account_ref_valid(const struct ledger_account_ref *r)
{
	if ((unsigned)r->kind >= LEDGER_KIND_COUNT || !currency_valid(r->currency))
		return false;
	return r->kind == LEDGER_WALLET ? user_id_valid(r->owner_id) : r->owner_id[0] == '\0';
}

/* Keys and references go into logs and admin output: printable ASCII, no spaces. */
static bool key_valid(const char *s)
{
	size_t len = strnlen(s, LEDGER_KEY_MAX + 1);
	if (len == 0 || len > LEDGER_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

/* Every currency's amounts sum to zero (amounts are bounded: no overflow). */
static bool balanced(const struct ledger_txn_request *t)
{
	for (int i = 0; i < t->n; i++) {
		const char *cur = t->postings[i].account.currency;
		int64_t sum = 0;
		for (int j = 0; j < t->n; j++)
			if (strcmp(t->postings[j].account.currency, cur) == 0)
				sum += t->postings[j].amount;
		if (sum != 0)
			return false;
	}
	return true;
}

enum hex_status ledger_txn_check(const struct ledger_txn_request *t, struct hex_err *err)
{
	if (!user_id_valid(t->id))
		return hex_fail(err, HEX_INVALID, "id", "transaction id is not a UUID");
	if (!key_valid(t->idempotency_key))
		return hex_fail(err, HEX_INVALID, "idempotency_key",
		                "idempotency key must be 1 to %d printable characters",
		                LEDGER_KEY_MAX);
	if (!key_valid(t->reference))
		return hex_fail(err, HEX_INVALID, "reference",
		                "reference must be 1 to %d printable characters", LEDGER_KEY_MAX);
	if (t->n < 2 || t->n > LEDGER_ENTRIES_MAX)
		return hex_fail(err, HEX_INVALID, "entries", "a transaction has 2 to %d entries",
		                LEDGER_ENTRIES_MAX);
	for (int i = 0; i < t->n; i++) {
		const struct ledger_posting *p = &t->postings[i];
		if (!currency_valid(p->account.currency))
			return hex_fail(err, HEX_INVALID, "currency",
			                "currency must be three lower-case letters");
		if (!ledger_account_ref_valid(&p->account))
			return hex_fail(err, HEX_INVALID, "account",
			                "entry %d names no valid account", i);
		if (p->amount == 0 || p->amount > LEDGER_AMOUNT_MAX ||
		    p->amount < -LEDGER_AMOUNT_MAX)
			return hex_fail(err, HEX_INVALID, "amount",
			                "entry amounts must be non-zero and at most %lld",
			                (long long)LEDGER_AMOUNT_MAX);
	}
	if (!balanced(t))
		return hex_fail(err, HEX_INVALID, "entries",
		                "entries must sum to zero in each currency");
	return HEX_OK;
}

void ledger_txn_add(struct ledger_txn_request *t, enum ledger_account_kind kind,
                    const char *owner_id, const char *currency, int64_t amount)
{
	if (t->n >= LEDGER_ENTRIES_MAX) {
		t->n++; /* ledger_txn_check() refuses it */
		return;
	}
	struct ledger_posting *p = &t->postings[t->n++];
	memset(p, 0, sizeof *p);
	p->account.kind = kind;
	/* Text that does not fit is dropped, never truncated into another valid name. */
	if (!hex_strlcpy(p->account.owner_id, owner_id != NULL ? owner_id : "",
	                 sizeof p->account.owner_id))
		strcpy(p->account.owner_id, "-");
	if (!hex_strlcpy(p->account.currency, currency != NULL ? currency : "",
	                 sizeof p->account.currency))
		p->account.currency[0] = '\0';
	p->amount = amount;
}
