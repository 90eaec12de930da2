/*
 * console_messages: the Messages screen. The newest messages, of one user (u, or m on
 * the Users screen) and/or holding the `/` text; Enter shows one in full.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "tui/admin_client.h"
#include "tui/console_fmt.h"
#include "tui/console_list.h"
#include "tui/console_screen.h"

enum messages_mode { MESSAGES_LIST = 0, MESSAGES_FILTERED, MESSAGES_DETAIL };
#define M(m) (1u << (m))

struct messages {
	struct console_list list;
	char user_id[64];
	char user_label[256];
	char query[CONSOLE_PROMPT_TEXT_MAX + 1];
	char shown_id[64]; /* the message in the detail view */
};

static const struct console_column messages_columns[] = {
    {"ID", "id", 8, false, console_list_cell_short},
    {"CREATED", "created_at", 11, false, console_list_cell_time},
    {"USER", "user_id", 8, false, console_list_cell_short},
    {"BODY", "body", 0, false, console_list_cell_line},
};

static enum hex_status messages_load(void *owner, struct console *con, const char *cursor,
                                     json_t **items, char **next)
{
	struct messages *m = owner;
	char *user = m->user_id[0] ? admin_client_quote(m->user_id) : NULL;
	char *q = m->query[0] ? admin_client_quote(m->query) : NULL;
	enum hex_status st;

	st = console_list_call_page(con, cursor, items, next, "MESSAGES LIST%s%s%s%s",
	                            user ? " USER " : "", user ? user : "", q ? " Q " : "",
	                            q ? q : "");
	free(user);
	free(q);
	return st;
}

static void *messages_create(struct console *con)
{
	struct messages *m = xcalloc(1, sizeof *m);
	console_list_init(&m->list, messages_columns,
	                  (int)(sizeof messages_columns / sizeof messages_columns[0]),
	                  messages_load, m, "no messages");
	return m;
}

static void messages_destroy(void *self)
{
	struct messages *m = self;
	console_list_clear(&m->list);
	free(m);
}

static int messages_mode(const void *self)
{
	const struct messages *m = self;
	if (m->list.detail)
		return MESSAGES_DETAIL;
	return m->user_id[0] || m->query[0] ? MESSAGES_FILTERED : MESSAGES_LIST;
}

static void messages_show(void *self, struct console *con)
{
	struct messages *m = self;
	(void)console_list_reload(&m->list, con);
}

void console_messages_show_user(struct console *con, const char *user_id, const char *label)
{
	struct messages *m = console_screen_self(con, CONSOLE_MESSAGES);

	hex_strlcpy(m->user_id, user_id, sizeof m->user_id);
	hex_strlcpy(m->user_label, label && *label ? label : user_id, sizeof m->user_label);
	m->query[0] = '\0';
	m->list.sel = 0;
	console_list_detail_close(&m->list);
	console_switch(con, CONSOLE_MESSAGES);
}

static void messages_open(void *self, struct console *con)
{
	struct messages *m = self;
	const json_t *item = console_list_selected(&m->list);
	json_t *d = NULL;
	char *id;

	if (item == NULL)
		return;
	id = admin_client_quote(console_fmt_str(item, "id"));
	if (console_call(con, CONSOLE_CALL_MS, &d, "MESSAGES SHOW %s", id) == HEX_OK) {
		struct console_list *l = &m->list;
		hex_strlcpy(m->shown_id, console_fmt_str(d, "id"), sizeof m->shown_id);
		console_list_detail_clear(l);
		console_list_detail_field(l, "id", d, "id");
		console_list_detail_field(l, "user", d, "user_id");
		console_list_detail_field(l, "created", d, "created_at");
		console_list_detail_field(l, "updated", d, "updated_at");
		console_list_detail_add(l, CONSOLE_NORMAL, 0, "%s", "");
		console_list_detail_add(l, CONSOLE_HEADING, 0, "Body");
		console_list_detail_text(l, CONSOLE_NORMAL, 2, console_fmt_str(d, "body"));
		console_list_detail_open(l);
	}
	json_decref(d);
	free(id);
}

static void messages_search_done(void *owner, struct console *con, const char *text)
{
	struct messages *m = owner;

	if (text == NULL)
		return;
	hex_strlcpy(m->query, text, sizeof m->query);
	m->list.sel = 0;
	(void)console_list_reload(&m->list, con);
}

static void messages_search(void *self, struct console *con)
{
	struct messages *m = self;
	console_prompt_text(&con->prompt, "Messages holding (empty: any): ", m->query,
	                    messages_search_done, m);
}

static void messages_user_done(void *owner, struct console *con, const char *text)
{
	struct messages *m = owner;
	json_t *d = NULL;
	char *who;

	if (text == NULL)
		return;
	if (*text == '\0') {
		m->user_id[0] = m->user_label[0] = '\0';
		m->list.sel = 0;
		(void)console_list_reload(&m->list, con);
		return;
	}
	/* USERS SHOW takes an id or an email: one lookup for both, and it checks the user
	 * exists before the list says "no messages" for a typo. */
	who = admin_client_quote(text);
	if (console_call(con, CONSOLE_CALL_MS, &d, "USERS SHOW %s", who) == HEX_OK) {
		const json_t *user = json_object_get(d, "user");
		console_messages_show_user(con, console_fmt_str(user, "id"),
		                           console_fmt_str(user, "email"));
	}
	json_decref(d);
	free(who);
}

static void messages_user(void *self, struct console *con)
{
	struct messages *m = self;
	console_prompt_text(&con->prompt,
	                    "Messages of user (email or id; empty: everyone): ", m->user_label,
	                    messages_user_done, m);
}

static void messages_clear(void *self, struct console *con)
{
	struct messages *m = self;
	m->user_id[0] = m->user_label[0] = m->query[0] = '\0';
	m->list.sel = 0;
	(void)console_list_reload(&m->list, con);
}

static void messages_back(void *self, struct console *con)
{
	struct messages *m = self;
	console_list_detail_close(&m->list);
}

static void messages_draw(void *self, struct console *con, int y, int rows, int cols)
{
	struct messages *m = self;
	char title[600], pos[64];
	int len;

	console_list_position(&m->list, pos, sizeof pos);
	if (m->list.detail) {
		snprintf(title, sizeof title, "Message %s", m->shown_id);
	} else {
		len = snprintf(title, sizeof title, "Messages");
		if (m->user_id[0] && len > 0 && (size_t)len < sizeof title)
			len += snprintf(title + len, sizeof title - (size_t)len, " of %s",
			                m->user_label);
		if (m->query[0] && len > 0 && (size_t)len < sizeof title)
			snprintf(title + len, sizeof title - (size_t)len, " holding \"%s\"",
			         m->query);
	}
	console_frame_title(y, cols, title, pos);
	console_list_draw(&m->list, con, y + 1, rows - 1, cols);
}

static bool messages_key(void *self, struct console *con, int key)
{
	struct messages *m = self;
	return console_list_key(&m->list, con, key);
}

static const struct console_action messages_actions[] = {
    {CONSOLE_KEY_ENTER, "Enter", "open", M(MESSAGES_LIST) | M(MESSAGES_FILTERED), true,
     messages_open},
    {'/', "/", "search", M(MESSAGES_LIST) | M(MESSAGES_FILTERED), true, messages_search},
    {'u', "u", "by user", M(MESSAGES_LIST) | M(MESSAGES_FILTERED), true, messages_user},
    {CONSOLE_KEY_ESC, "Esc", "all messages", M(MESSAGES_FILTERED), true, messages_clear},
    {CONSOLE_KEY_ESC, "Esc", "back", M(MESSAGES_DETAIL), true, messages_back},
    {CONSOLE_KEY_BACKSPACE, NULL, NULL, M(MESSAGES_DETAIL), false, messages_back},
    {0, NULL, NULL, 0, false, NULL},
};

const struct console_screen console_messages_screen = {
    .tab = "Messages",
    .actions = messages_actions,
    .create = messages_create,
    .destroy = messages_destroy,
    .show = messages_show,
    .draw = messages_draw,
    .key = messages_key,
    .mode = messages_mode,
};
