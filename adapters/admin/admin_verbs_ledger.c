/* admin_verbs_ledger.c: LEDGER ACCOUNTS, ENTRIES and VERIFY. */
#include "adapters/admin/admin_verbs.h"

#include "adapters/admin/admin_cursor.h"
#include "adapters/admin/admin_opts.h"
#include "adapters/json/json_admin.h"
#include "adapters/json/json_ledger.h"
#include "core/xmalloc.h"

#include <ctype.h>
#include <stdlib.h>

void admin_verbs_ledger_accounts(struct admin_call *c, struct admin_env *env)
{
	struct admin_opts o;
	struct admin_cursor cur = {0};
	if (!admin_opts_parse_or_fail(c, 0, ADMIN_OPT_PAGING, &o) ||
	    (o.cursor != NULL && !admin_cursor_decode_or_fail(c, 'a', o.cursor, NULL, &cur)))
		return;
	struct ledger_account_page *page = xcalloc(1, sizeof *page);
	struct hex_err err = {0};
	enum hex_status st =
	    ledger_service_accounts(&env->svc->ledger, o.limit, cur.id, page, &err);
	if (st != HEX_OK) {
		admin_verbs_fail(c, st, &err, NULL);
		goto out;
	}
	json_t *items = json_array();
	for (int i = 0; i < page->count; i++)
		items = admin_verbs_push(items, json_admin_account(&page->items[i]));
	char next[ADMIN_CURSOR_MAX];
	if (page->has_more && page->count > 0)
		admin_cursor_encode('a', 0, page->items[page->count - 1].id, 0, next);
	admin_verbs_reply(c, json_admin_list(items, page->has_more ? next : NULL));
out:
	free(page);
}

void admin_verbs_ledger_entries(struct admin_call *c, struct admin_env *env)
{
	const char *account = admin_verbs_arg(c, 0);
	struct admin_opts o;
	struct admin_cursor cur = {0};
	if (!admin_opts_uuid_or_fail(c, account, "account_id") ||
	    !admin_opts_parse_or_fail(c, 1, ADMIN_OPT_PAGING, &o))
		return;
	/* A cursor walks one account: the tag is the account's id as stored. */
	char lower[HEX_ID_LEN + 1];
	for (int i = 0; i <= HEX_ID_LEN; i++)
		lower[i] = (char)tolower((unsigned char)account[i]);
	const char *filters[] = {lower};
	uint64_t tag = admin_cursor_tag(1, filters);
	if (o.cursor != NULL && !admin_cursor_decode_or_fail(c, 'e', o.cursor, &tag, &cur))
		return;
	struct ledger_entry_page *page = xcalloc(1, sizeof *page);
	struct hex_err err = {0};
	enum hex_status st = ledger_service_account_entries(&env->svc->ledger, lower, o.limit,
	                                                    cur.position, page, &err);
	if (st != HEX_OK) {
		admin_verbs_fail(c, st, &err, NULL);
		goto out;
	}
	json_t *items = json_array();
	for (int i = 0; i < page->count; i++)
		items = admin_verbs_push(items, json_ledger_entry(&page->items[i]));
	char next[ADMIN_CURSOR_MAX];
	if (page->has_more && page->count > 0)
		admin_cursor_encode('e', page->items[page->count - 1].id, NULL, tag, next);
	admin_verbs_reply(c, json_admin_list(items, page->has_more ? next : NULL));
out:
	free(page);
}

void admin_verbs_ledger_verify(struct admin_call *c, struct admin_env *env)
{
	struct ledger_verify_report *r = xcalloc(1, sizeof *r);
	struct hex_err err = {0};
	enum hex_status st = ledger_service_verify(&env->svc->ledger, r, &err);
	if (st != HEX_OK)
		admin_verbs_fail(c, st, &err, NULL);
	else
		admin_verbs_reply(c, json_admin_verify(r));
	free(r);
}
