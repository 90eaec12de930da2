/* json_ledger.c: wallets, entries and transfers as JSON. */
#include "adapters/json/json_ledger.h"

#include "adapters/json/json_time.h"

#include <inttypes.h>
#include <stdio.h>

json_t *json_ledger_wallet(const struct ledger_account *a)
{
	char updated[JSON_TIME_LEN];
	json_time_format(a->updated_at_us, updated);
	return json_pack("{s:s, s:I, s:s}", "currency", a->ref.currency, "balance",
	                 (json_int_t)a->balance, "updated_at", updated);
}

json_t *json_ledger_wallets(const struct ledger_balances *b)
{
	json_t *data = json_array();
	for (int i = 0; i < b->n; i++)
		json_array_append_new(data, json_ledger_wallet(&b->wallets[i]));
	return json_pack("{s:o}", "data", data);
}

json_t *json_ledger_entry(const struct ledger_entry *e)
{
	char id[24], created[JSON_TIME_LEN];
	snprintf(id, sizeof id, "%" PRId64, e->id);
	json_time_format(e->created_at_us, created);
	return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "id", id, "transaction_id",
	                 e->transaction_id, "amount", (json_int_t)e->amount, "currency",
	                 e->account.currency, "reference", e->reference, "created_at", created);
}

json_t *json_ledger_entry_page(const struct ledger_entry_page *page, const char *next_cursor)
{
	json_t *data = json_array();
	for (int i = 0; i < page->count; i++)
		json_array_append_new(data, json_ledger_entry(&page->items[i]));
	return json_pack("{s:o, s:o}", "data", data, "next_cursor",
	                 next_cursor != NULL ? json_string(next_cursor) : json_null());
}

/* The entry of t with the sign asked for; the sign, not the position, says who paid. */
static const struct ledger_entry *entry_by_sign(const struct ledger_txn *t, int sign)
{
	for (int i = 0; i < t->n; i++)
		if ((sign < 0 && t->entries[i].amount < 0) ||
		    (sign > 0 && t->entries[i].amount > 0))
			return &t->entries[i];
	return NULL;
}

json_t *json_ledger_transfer(const struct ledger_txn *t)
{
	static const struct ledger_entry none = {0};
	const struct ledger_entry *from = entry_by_sign(t, -1), *to = entry_by_sign(t, 1);
	from = from != NULL ? from : &none;
	to = to != NULL ? to : &none;
	char created[JSON_TIME_LEN];
	json_time_format(t->created_at_us, created);
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "id", t->id, "from_user_id",
	                 from->account.owner_id, "to_user_id", to->account.owner_id, "amount",
	                 (json_int_t)to->amount, "currency", to->account.currency, "created_at",
	                 created);
}
