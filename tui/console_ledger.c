/*
 * console_ledger: the Ledger screen. Accounts with their balances (system accounts
 * first); Enter lists one account's entries, Enter again shows an entry; v runs LEDGER
 * VERIFY and shows its verdict, whose summary then stays in the title.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/xmalloc.h"
#include "tui/admin_client.h"
#include "tui/console_fmt.h"
#include "tui/console_list.h"
#include "tui/console_screen.h"

enum ledger_mode { LEDGER_ACCOUNTS = 0, LEDGER_ENTRIES, LEDGER_ENTRY, LEDGER_VERIFY };
#define M(m) (1u << (m))
/* Verify reads every entry: it may take far longer than a page. */
#define LEDGER_VERIFY_MS 60000

struct ledger {
	struct console_list accounts;
	struct console_list entries;
	bool in_entries;
	char account_id[64];
	char account_label[160];
	char verdict[160]; /* the last verify, for the title */
	bool verdict_ok;
};

static void ledger_cell_owner(const struct console_list *l, const json_t *item, const char *key,
                              int width, char *buf, size_t n)
{
	if (*console_fmt_str(item, key) == '\0')
		snprintf(buf, n, "system");
	else
		console_list_cell_short(l, item, key, width, buf, n);
}

static const struct console_column ledger_account_columns[] = {
    {"ID", "id", 8, false, console_list_cell_short},           {"KIND", "kind", 18, false, NULL},
    {"OWNER", "owner_id", 0, false, ledger_cell_owner},        {"CUR", "currency", 4, false, NULL},
    {"BALANCE", "balance", 18, true, console_list_cell_money},
};

static const struct console_column ledger_entry_columns[] = {
    {"ID", "id", 8, true, console_list_cell_short},
    {"CREATED", "created_at", 19, false, console_list_cell_time},
    {"AMOUNT", "amount", 16, true, console_list_cell_money},
    {"REFERENCE", "reference", 0, false, NULL},
};

static enum hex_status ledger_load_accounts(void *owner, struct console *con, const char *cursor,
                                            json_t **items, char **next)
{
	return console_list_call_page(con, cursor, items, next, "LEDGER ACCOUNTS");
}

static enum hex_status ledger_load_entries(void *owner, struct console *con, const char *cursor,
                                           json_t **items, char **next)
{
	struct ledger *g = owner;
	char *id = admin_client_quote(g->account_id);
	enum hex_status st =
	    console_list_call_page(con, cursor, items, next, "LEDGER ENTRIES %s", id);
	free(id);
	return st;
}

static void *ledger_create(struct console *con)
{
	struct ledger *g = xcalloc(1, sizeof *g);
	console_list_init(&g->accounts, ledger_account_columns,
	                  (int)(sizeof ledger_account_columns / sizeof ledger_account_columns[0]),
	                  ledger_load_accounts, g, "no accounts yet");
	console_list_init(&g->entries, ledger_entry_columns,
	                  (int)(sizeof ledger_entry_columns / sizeof ledger_entry_columns[0]),
	                  ledger_load_entries, g, "no entries");
	return g;
}

static void ledger_destroy(void *self)
{
	struct ledger *g = self;
	console_list_clear(&g->accounts);
	console_list_clear(&g->entries);
	free(g);
}

static int ledger_mode(const void *self)
{
	const struct ledger *g = self;
	if (g->accounts.detail)
		return LEDGER_VERIFY;
	if (g->in_entries)
		return g->entries.detail ? LEDGER_ENTRY : LEDGER_ENTRIES;
	return LEDGER_ACCOUNTS;
}

static struct console_list *ledger_list(struct ledger *g)
{
	return g->in_entries && !g->accounts.detail ? &g->entries : &g->accounts;
}

static void ledger_show(void *self, struct console *con)
{
	struct ledger *g = self;
	if (g->in_entries)
		(void)console_list_reload(&g->entries, con);
	else
		(void)console_list_reload(&g->accounts, con);
}

static void ledger_open_account(struct ledger *g, struct console *con)
{
	const json_t *a = console_list_selected(&g->accounts);
	char money[64];

	if (a == NULL)
		return;
	hex_strlcpy(g->account_id, console_fmt_str(a, "id"), sizeof g->account_id);
	console_fmt_money(money, sizeof money, console_fmt_int(a, "balance", 0),
	                  console_fmt_str(a, "currency"));
	snprintf(g->account_label, sizeof g->account_label, "%s %s (balance %s)",
	         console_fmt_str(a, "kind"), g->account_id, money);
	json_decref(g->entries.items);
	g->entries.items = NULL;
	g->entries.loaded = false;
	g->entries.sel = g->entries.top = 0;
	g->in_entries = true;
	(void)console_list_reload(&g->entries, con);
}

static void ledger_open_entry(struct ledger *g)
{
	const json_t *e = console_list_selected(&g->entries);
	struct console_list *l = &g->entries;
	char money[64];

	if (e == NULL)
		return;
	console_list_detail_clear(l);
	console_list_detail_field(l, "id", e, "id");
	console_list_detail_field(l, "account", e, "account_id");
	console_list_detail_field(l, "transaction", e, "transaction_id");
	console_fmt_money(money, sizeof money, console_fmt_int(e, "amount", 0),
	                  console_fmt_str(e, "currency"));
	console_list_detail_add(l, CONSOLE_NORMAL, 2, "%-16s %s", "amount", money);
	console_list_detail_field(l, "reference", e, "reference");
	console_list_detail_field(l, "created", e, "created_at");
	console_list_detail_open(l);
}

static void ledger_open(void *self, struct console *con)
{
	struct ledger *g = self;
	if (g->in_entries)
		ledger_open_entry(g);
	else
		ledger_open_account(g, con);
}

static void ledger_fill_verdict(struct ledger *g, const json_t *d)
{
	struct console_list *l = &g->accounts;
	const json_t *v;
	size_t i;
	char a[64], b[64], clock[16];
	time_t now = time(NULL);
	struct tm tm;
	bool ok = json_is_true(json_object_get(d, "ok"));
	long long checked = console_fmt_int(d, "accounts_checked", 0);

	localtime_r(&now, &tm);
	strftime(clock, sizeof clock, "%H:%M:%S", &tm);
	g->verdict_ok = ok;
	snprintf(g->verdict, sizeof g->verdict, "verify %s at %s, %lld accounts",
	         ok ? "OK" : "FAILED", clock, checked);

	console_list_detail_clear(l);
	console_list_detail_add(l, ok ? CONSOLE_GOOD : CONSOLE_BAD, 2, "%s",
	                        ok ? "OK: every balance equals the sum of its entries and "
	                             "every currency sums to zero"
	                           : "FAILED: the books do not add up");
	console_list_detail_add(l, CONSOLE_NORMAL, 2, "%-16s %lld", "accounts checked", checked);
	console_list_detail_add(l, CONSOLE_NORMAL, 2, "%-16s %s", "run at", clock);
	console_list_detail_add(l, CONSOLE_NORMAL, 0, "%s", "");
	console_list_detail_add(l, CONSOLE_HEADING, 0, "Balances that differ from their entries");
	json_array_foreach(json_object_get(d, "mismatches"), i, v)
	{
		console_fmt_member(a, sizeof a, v, "balance");
		console_fmt_member(b, sizeof b, v, "entries_sum");
		console_list_detail_add(l, CONSOLE_BAD, 2, "account %s: balance %s, entries sum %s",
		                        console_fmt_str(v, "account_id"), a, b);
	}
	if (json_array_size(json_object_get(d, "mismatches")) == 0)
		console_list_detail_add(l, CONSOLE_DIM, 2, "none");
	console_list_detail_add(l, CONSOLE_NORMAL, 0, "%s", "");
	console_list_detail_add(l, CONSOLE_HEADING, 0, "Currencies whose entries do not sum to 0");
	json_array_foreach(json_object_get(d, "unbalanced"), i, v)
	{
		console_fmt_member(a, sizeof a, v, "sum");
		console_list_detail_add(l, CONSOLE_BAD, 2, "%s: sum %s",
		                        console_fmt_str(v, "currency"), a);
	}
	if (json_array_size(json_object_get(d, "unbalanced")) == 0)
		console_list_detail_add(l, CONSOLE_DIM, 2, "none");
	console_list_detail_open(l);
}

static void ledger_verify(void *self, struct console *con)
{
	struct ledger *g = self;
	json_t *d = NULL;

	console_flash(con, CONSOLE_DIM, "verifying the ledger...");
	console_frame_draw(con); /* say so before the wait */
	if (console_call(con, LEDGER_VERIFY_MS, &d, "LEDGER VERIFY") == HEX_OK) {
		ledger_fill_verdict(g, d);
		console_flash(con, g->verdict_ok ? CONSOLE_GOOD : CONSOLE_BAD, "%s", g->verdict);
	}
	json_decref(d);
}

static void ledger_back(void *self, struct console *con)
{
	struct ledger *g = self;

	if (g->accounts.detail)
		console_list_detail_close(&g->accounts);
	else if (g->entries.detail)
		console_list_detail_close(&g->entries);
	else if (g->in_entries) {
		g->in_entries = false;
		(void)console_list_reload(&g->accounts, con);
	}
}

static void ledger_find(void *self, struct console *con)
{
	console_list_prompt_find(ledger_list(self), con);
}

static void ledger_draw(void *self, struct console *con, int y, int rows, int cols)
{
	struct ledger *g = self;
	struct console_list *l = ledger_list(g);
	char title[400], pos[64];

	console_list_position(l, pos, sizeof pos);
	if (g->accounts.detail)
		snprintf(title, sizeof title, "Ledger verify");
	else if (g->in_entries && g->entries.detail)
		snprintf(title, sizeof title, "Entry of %s", g->account_label);
	else if (g->in_entries)
		snprintf(title, sizeof title, "Entries of %s", g->account_label);
	else if (g->verdict[0])
		snprintf(title, sizeof title, "Ledger accounts (last %s)", g->verdict);
	else
		snprintf(title, sizeof title, "Ledger accounts (system first)");
	console_frame_title(y, cols, title, pos);
	console_list_draw(l, con, y + 1, rows - 1, cols);
}

static bool ledger_key(void *self, struct console *con, int key)
{
	return console_list_key(ledger_list(self), con, key);
}

static const struct console_action ledger_actions[] = {
    {CONSOLE_KEY_ENTER, "Enter", "open", M(LEDGER_ACCOUNTS) | M(LEDGER_ENTRIES), true, ledger_open},
    {'v', "v", "verify", 0, true, ledger_verify},
    {'/', "/", "find", M(LEDGER_ACCOUNTS) | M(LEDGER_ENTRIES), true, ledger_find},
    {CONSOLE_KEY_ESC, "Esc", "back", M(LEDGER_ENTRIES) | M(LEDGER_ENTRY) | M(LEDGER_VERIFY), true,
     ledger_back},
    {CONSOLE_KEY_BACKSPACE, NULL, NULL, M(LEDGER_ENTRIES) | M(LEDGER_ENTRY) | M(LEDGER_VERIFY),
     false, ledger_back},
    {0, NULL, NULL, 0, false, NULL},
};

const struct console_screen console_ledger_screen = {
    .tab = "Ledger",
    .actions = ledger_actions,
    .create = ledger_create,
    .destroy = ledger_destroy,
    .show = ledger_show,
    .draw = ledger_draw,
    .key = ledger_key,
    .mode = ledger_mode,
};
