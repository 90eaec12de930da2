/* json_ledger: the JSON shapes of wallets, ledger entries and transfers (docs/API-NOTES.md). */
#ifndef HEX_JSON_LEDGER_H
#define HEX_JSON_LEDGER_H

#include "core/ledger.h"

#include <jansson.h>

/* New reference: {currency, balance, updated_at}, updated_at being when it last moved. */
json_t *json_ledger_wallet(const struct ledger_account *a);
/* New reference: {"data": [wallet, ...]}. */
json_t *json_ledger_wallets(const struct ledger_balances *b);

/*
 * New reference: {id, transaction_id, amount, currency, reference, created_at}. id is the
 * int64 entry id as a decimal string (JSON numbers above 2^53 lose digits in JavaScript);
 * amount is signed minor units: positive credits the wallet, negative debits it.
 */
json_t *json_ledger_entry(const struct ledger_entry *e);
/* New reference: {"data": [entry, ...], "next_cursor": next_cursor or null}. */
json_t *json_ledger_entry_page(const struct ledger_entry_page *page, const char *next_cursor);

/*
 * New reference: {id, from_user_id, to_user_id, amount, currency, created_at}, id being
 * the journal transaction's. t is a transfer as ledger_service_transfer() posts it: one
 * wallet debited (the payer), one credited (the payee) by the same positive amount.
 */
json_t *json_ledger_transfer(const struct ledger_txn *t);

#endif
