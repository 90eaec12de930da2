/*
 * console_users: the Users screen. The newest users, or those whose email holds the `/`
 * text; Enter shows one user with wallet, latest payments and latest messages; m and p
 * jump to that user's messages and payments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "tui/admin_client.h"
#include "tui/console_fmt.h"
#include "tui/console_list.h"
#include "tui/console_screen.h"

enum users_mode { USERS_LIST = 0, USERS_SEARCH, USERS_DETAIL };
#define M(m) (1u << (m))

struct users {
	struct console_list list;
	char query[CONSOLE_PROMPT_TEXT_MAX + 1];
	char shown_id[64]; /* the user in the detail view */
	char shown_email[256];
};

static const struct console_column users_columns[] = {
    {"ID", "id", 8, false, console_list_cell_short},
    {"EMAIL", "email", 0, false, NULL},
    {"MEMBER", "membership", 6, false, NULL},
    {"CREATED", "created_at", 19, false, console_list_cell_time},
};

static enum hex_status users_load(void *owner, struct console *con, const char *cursor,
                                  json_t **items, char **next)
{
	struct users *u = owner;
	enum hex_status st;

	if (u->query[0] == '\0')
		return console_list_call_page(con, cursor, items, next, "USERS LIST");
	char *q = admin_client_quote(u->query);
	st = console_list_call_page(con, cursor, items, next, "USERS SEARCH %s", q);
	free(q);
	return st;
}

static void *users_create(struct console *con)
{
	struct users *u = xcalloc(1, sizeof *u);
	console_list_init(&u->list, users_columns,
	                  (int)(sizeof users_columns / sizeof users_columns[0]), users_load, u,
	                  "no users");
	return u;
}

static void users_destroy(void *self)
{
	struct users *u = self;
	console_list_clear(&u->list);
	free(u);
}

static int users_mode(const void *self)
{
	const struct users *u = self;
	if (u->list.detail)
		return USERS_DETAIL;
	return u->query[0] ? USERS_SEARCH : USERS_LIST;
}

static void users_show(void *self, struct console *con)
{
	struct users *u = self;
	(void)console_list_reload(&u->list, con);
}

static void users_money_line(struct console_list *l, const char *what, const json_t *o)
{
	char money[64], when[32];
	console_fmt_money(money, sizeof money, console_fmt_int(o, what, 0),
	                  console_fmt_str(o, "currency"));
	console_fmt_time(when, sizeof when, console_fmt_str(o, "updated_at"), false);
	console_list_detail_add(l, CONSOLE_NORMAL, 2, "%-6s %18s   updated %s",
	                        console_fmt_str(o, "currency"), money, when);
}

/* Fills the detail view from USERS SHOW's {user, wallet, payments, messages}. */
static void users_fill_detail(struct console_list *l, const json_t *d)
{
	const json_t *user = json_object_get(d, "user"), *v;
	size_t i;
	char when[32], money[64], line[256];

	console_list_detail_clear(l);
	console_list_detail_field(l, "id", user, "id");
	console_list_detail_field(l, "email", user, "email");
	console_list_detail_field(l, "membership", user, "membership");
	console_list_detail_field(l, "created", user, "created_at");
	console_list_detail_field(l, "updated", user, "updated_at");

	console_list_detail_add(l, CONSOLE_NORMAL, 0, "%s", "");
	console_list_detail_add(l, CONSOLE_HEADING, 0, "Wallet");
	json_array_foreach(json_object_get(d, "wallet"), i, v) users_money_line(l, "balance", v);
	if (json_array_size(json_object_get(d, "wallet")) == 0)
		console_list_detail_add(l, CONSOLE_DIM, 2, "no wallet");

	console_list_detail_add(l, CONSOLE_NORMAL, 0, "%s", "");
	console_list_detail_add(l, CONSOLE_HEADING, 0, "Latest payments (p: all of them)");
	json_array_foreach(json_object_get(d, "payments"), i, v)
	{
		console_fmt_time(when, sizeof when, console_fmt_str(v, "created_at"), true);
		console_fmt_money(money, sizeof money, console_fmt_int(v, "amount", 0),
		                  console_fmt_str(v, "currency"));
		const char *id = console_fmt_str(v, "id");
		size_t idlen = strlen(id);
		/* The end of the id: hexd's are time-ordered, their starts alike. */
		console_list_detail_add(l, CONSOLE_NORMAL, 2, "%s  %-23s %14s  %-13s %s", when,
		                        console_fmt_str(v, "status"), money,
		                        console_fmt_str(v, "purpose"),
		                        idlen > 8 ? id + idlen - 8 : id);
	}
	if (json_array_size(json_object_get(d, "payments")) == 0)
		console_list_detail_add(l, CONSOLE_DIM, 2, "no payments");

	console_list_detail_add(l, CONSOLE_NORMAL, 0, "%s", "");
	console_list_detail_add(l, CONSOLE_HEADING, 0, "Latest messages (m: all of them)");
	json_array_foreach(json_object_get(d, "messages"), i, v)
	{
		console_fmt_time(when, sizeof when, console_fmt_str(v, "created_at"), true);
		hex_strlcpy(line, console_fmt_str(v, "body"), sizeof line);
		line[strcspn(line, "\r\n")] = '\0';
		console_list_detail_add(l, CONSOLE_NORMAL, 2, "%s  %s", when, line);
	}
	if (json_array_size(json_object_get(d, "messages")) == 0)
		console_list_detail_add(l, CONSOLE_DIM, 2, "no messages");
}

static void users_open(void *self, struct console *con)
{
	struct users *u = self;
	const json_t *item = console_list_selected(&u->list);
	json_t *d = NULL;
	char *id;

	if (item == NULL)
		return;
	id = admin_client_quote(console_fmt_str(item, "id"));
	if (console_call(con, CONSOLE_CALL_MS, &d, "USERS SHOW %s", id) == HEX_OK) {
		hex_strlcpy(u->shown_id, console_fmt_str(item, "id"), sizeof u->shown_id);
		hex_strlcpy(u->shown_email, console_fmt_str(item, "email"), sizeof u->shown_email);
		users_fill_detail(&u->list, d);
		console_list_detail_open(&u->list);
	}
	json_decref(d);
	free(id);
}

static void users_search_done(void *owner, struct console *con, const char *text)
{
	struct users *u = owner;

	if (text == NULL)
		return;
	hex_strlcpy(u->query, text, sizeof u->query);
	u->list.sel = 0;
	(void)console_list_reload(&u->list, con);
}

static void users_search(void *self, struct console *con)
{
	struct users *u = self;
	console_prompt_text(&con->prompt, "Search email (empty: all users): ", u->query,
	                    users_search_done, u);
}

static void users_clear(void *self, struct console *con)
{
	users_search_done(self, con, "");
}

static void users_back(void *self, struct console *con)
{
	struct users *u = self;
	console_list_detail_close(&u->list);
}

/* The user the m and p keys mean: the one shown, else the selected one. */
static bool users_target(struct users *u, char *id, size_t idn, char *email, size_t en)
{
	const json_t *item = console_list_selected(&u->list);

	if (u->list.detail) {
		hex_strlcpy(id, u->shown_id, idn);
		hex_strlcpy(email, u->shown_email, en);
		return true;
	}
	if (item == NULL)
		return false;
	hex_strlcpy(id, console_fmt_str(item, "id"), idn);
	hex_strlcpy(email, console_fmt_str(item, "email"), en);
	return true;
}

static void users_messages(void *self, struct console *con)
{
	char id[64], email[256];
	if (users_target(self, id, sizeof id, email, sizeof email))
		console_messages_show_user(con, id, email);
}

static void users_payments(void *self, struct console *con)
{
	char id[64], email[256];
	if (users_target(self, id, sizeof id, email, sizeof email))
		console_payments_show_user(con, id, email);
}

static void users_draw(void *self, struct console *con, int y, int rows, int cols)
{
	struct users *u = self;
	char title[400], pos[64];

	console_list_position(&u->list, pos, sizeof pos);
	if (u->list.detail)
		snprintf(title, sizeof title, "User %s", u->shown_email);
	else if (u->query[0])
		snprintf(title, sizeof title, "Users whose email holds \"%s\"", u->query);
	else
		snprintf(title, sizeof title, "Users (newest first)");
	console_frame_title(y, cols, title, pos);
	console_list_draw(&u->list, con, y + 1, rows - 1, cols);
}

static bool users_key(void *self, struct console *con, int key)
{
	struct users *u = self;
	return console_list_key(&u->list, con, key);
}

static const struct console_action users_actions[] = {
    {CONSOLE_KEY_ENTER, "Enter", "open", M(USERS_LIST) | M(USERS_SEARCH), true, users_open},
    {'/', "/", "search", M(USERS_LIST) | M(USERS_SEARCH), true, users_search},
    {'m', "m", "messages", 0, true, users_messages},
    {'p', "p", "payments", 0, true, users_payments},
    {CONSOLE_KEY_ESC, "Esc", "all users", M(USERS_SEARCH), true, users_clear},
    {CONSOLE_KEY_ESC, "Esc", "back", M(USERS_DETAIL), true, users_back},
    {CONSOLE_KEY_BACKSPACE, NULL, NULL, M(USERS_DETAIL), false, users_back},
    {0, NULL, NULL, 0, false, NULL},
};

const struct console_screen console_users_screen = {
    .tab = "Users",
    .actions = users_actions,
    .create = users_create,
    .destroy = users_destroy,
    .show = users_show,
    .draw = users_draw,
    .key = users_key,
    .mode = users_mode,
};
