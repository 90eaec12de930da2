/*
 * console_payments: the Payments screen. Unfiltered, the stuck payments (not settled for
 * over 5 minutes, PAYMENTS STUCK) come first, marked, then every other payment newest
 * first; s steps through the status filters, u limits the list to one user; Enter shows
 * a payment with the Stripe events about it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "tui/admin_client.h"
#include "tui/console_fmt.h"
#include "tui/console_list.h"
#include "tui/console_screen.h"

enum payments_mode { PAYMENTS_LIST = 0, PAYMENTS_FILTERED, PAYMENTS_DETAIL };
#define M(m)               (1u << (m))
#define PAYMENTS_STUCK_MAX 100 /* PAYMENTS STUCK's own limit */

/* What s steps through, in order. */
static const struct {
	const char *status; /* NULL: all, "stuck": PAYMENTS STUCK */
	const char *title;
} payments_filters[] = {
    {NULL, "Payments (stuck first, then newest)"},
    {"stuck", "Stuck payments (oldest first)"},
    {"requires_payment_method", "Payments requiring a payment method"},
    {"processing", "Payments processing"},
    {"succeeded", "Payments succeeded"},
    {"failed", "Payments failed"},
    {"refunded", "Payments refunded"},
};
#define PAYMENTS_FILTERS ((int)(sizeof payments_filters / sizeof payments_filters[0]))

struct payments {
	struct console_list list;
	int filter;
	char user_id[64];
	char user_label[256];
	json_t *stuck_ids; /* object: ids of the stuck rows shown first, not repeated below */
	char shown_id[64];
};

static void payments_cell_mark(const struct console_list *l, const json_t *item, const char *key,
                               int width, char *buf, size_t n)
{
	snprintf(buf, n, "%s", json_is_true(json_object_get(item, "_stuck")) ? "!" : "");
}

/* Stuck rows say for how long; the others when they were made. */
static void payments_cell_when(const struct console_list *l, const json_t *item, const char *key,
                               int width, char *buf, size_t n)
{
	char age[32];

	if (json_is_true(json_object_get(item, "_stuck"))) {
		console_fmt_age(age, sizeof age, console_fmt_int(item, "age_s", 0));
		snprintf(buf, n, "stuck %s", age);
		return;
	}
	console_list_cell_time(l, item, key, width, buf, n);
}

static enum console_style payments_row_style(const struct console_list *l, const json_t *item)
{
	return json_is_true(json_object_get(item, "_stuck")) ? CONSOLE_WARN : CONSOLE_NORMAL;
}

static const struct console_column payments_columns[] = {
    {"", "_stuck", 1, false, payments_cell_mark},
    {"ID", "id", 8, false, console_list_cell_short},
    {"STATUS", "status", 23, false, NULL},
    {"AMOUNT", "amount", 14, true, console_list_cell_money},
    {"PURPOSE", "purpose", 13, false, NULL},
    {"WHEN", "created_at", 0, false, payments_cell_when},
};

static json_t *payments_mark_stuck(json_t *items)
{
	size_t i;
	json_t *v;
	json_array_foreach(items, i, v) json_object_set_new(v, "_stuck", json_true());
	return items;
}

static enum hex_status payments_load_stuck(struct console *con, const char *cursor, json_t **items,
                                           char **next)
{
	json_t *d = NULL;
	enum hex_status st;

	*items = NULL;
	*next = NULL;
	if (cursor != NULL) {
		*items = json_array(); /* not paged: one page of the oldest */
		return HEX_OK;
	}
	st = console_call(con, CONSOLE_CALL_MS, &d, "PAYMENTS STUCK LIMIT %d", PAYMENTS_STUCK_MAX);
	if (st == HEX_OK)
		st = console_list_take_page(con, d, items, next);
	if (st == HEX_OK)
		payments_mark_stuck(*items);
	return st;
}

static enum hex_status payments_load(void *owner, struct console *con, const char *cursor,
                                     json_t **items, char **next)
{
	struct payments *p = owner;
	const char *status = payments_filters[p->filter].status;
	char *user = p->user_id[0] ? admin_client_quote(p->user_id) : NULL;
	json_t *stuck = NULL, *page = NULL, *out = NULL, *v;
	enum hex_status st;
	size_t i;

	if (status && strcmp(status, "stuck") == 0) {
		st = payments_load_stuck(con, cursor, items, next);
		goto out;
	}
	st = console_list_call_page(con, cursor, &page, next, "PAYMENTS LIST%s%s%s%s",
	                            status ? " STATUS " : "", status ? status : "",
	                            user ? " USER " : "", user ? user : "");
	if (st != HEX_OK || status != NULL || user != NULL) {
		*items = page;
		page = NULL;
		goto out;
	}
	/* The unfiltered view: stuck ones first (fetched with the first page), then the
	 * rest without them. */
	out = json_array();
	if (cursor == NULL) {
		char *ignored = NULL;
		json_decref(p->stuck_ids);
		p->stuck_ids = json_object();
		if (payments_load_stuck(con, NULL, &stuck, &ignored) == HEX_OK) {
			json_array_foreach(stuck, i, v)
			{
				json_object_set_new(p->stuck_ids, console_fmt_str(v, "id"),
				                    json_true());
				json_array_append(out, v);
			}
		}
		free(ignored);
	}
	json_array_foreach(page, i, v)
	{
		if (p->stuck_ids == NULL ||
		    !json_object_get(p->stuck_ids, console_fmt_str(v, "id")))
			json_array_append(out, v);
	}
	*items = out;
	out = NULL;
out:
	json_decref(stuck);
	json_decref(page);
	json_decref(out);
	free(user);
	return st;
}

static void *payments_create(struct console *con)
{
	struct payments *p = xcalloc(1, sizeof *p);
	console_list_init(&p->list, payments_columns,
	                  (int)(sizeof payments_columns / sizeof payments_columns[0]),
	                  payments_load, p, "no payments");
	p->list.row_style = payments_row_style;
	return p;
}

static void payments_destroy(void *self)
{
	struct payments *p = self;
	console_list_clear(&p->list);
	json_decref(p->stuck_ids);
	free(p);
}

static int payments_mode(const void *self)
{
	const struct payments *p = self;
	if (p->list.detail)
		return PAYMENTS_DETAIL;
	return p->filter || p->user_id[0] ? PAYMENTS_FILTERED : PAYMENTS_LIST;
}

static void payments_show(void *self, struct console *con)
{
	struct payments *p = self;
	(void)console_list_reload(&p->list, con);
}

void console_payments_show_user(struct console *con, const char *user_id, const char *label)
{
	struct payments *p = console_screen_self(con, CONSOLE_PAYMENTS);

	hex_strlcpy(p->user_id, user_id, sizeof p->user_id);
	hex_strlcpy(p->user_label, label && *label ? label : user_id, sizeof p->user_label);
	/* STUCK has no user filter: a user's view starts from all statuses. */
	if (p->filter == 1)
		p->filter = 0;
	p->list.sel = 0;
	console_list_detail_close(&p->list);
	console_switch(con, CONSOLE_PAYMENTS);
}

static void payments_open(void *self, struct console *con)
{
	struct payments *p = self;
	const json_t *item = console_list_selected(&p->list), *pay, *ev;
	struct console_list *l = &p->list;
	json_t *d = NULL;
	char *id, money[64], when[32];
	size_t i;

	if (item == NULL)
		return;
	id = admin_client_quote(console_fmt_str(item, "id"));
	if (console_call(con, CONSOLE_CALL_MS, &d, "PAYMENTS SHOW %s", id) != HEX_OK)
		goto out;
	pay = json_object_get(d, "payment");
	hex_strlcpy(p->shown_id, console_fmt_str(pay, "id"), sizeof p->shown_id);
	console_list_detail_clear(l);
	console_list_detail_field(l, "id", pay, "id");
	console_list_detail_field(l, "user", pay, "user_id");
	console_fmt_money(money, sizeof money, console_fmt_int(pay, "amount", 0),
	                  console_fmt_str(pay, "currency"));
	console_list_detail_add(l, CONSOLE_NORMAL, 2, "%-16s %s", "amount", money);
	console_list_detail_field(l, "purpose", pay, "purpose");
	console_list_detail_add(
	    l, json_is_true(json_object_get(item, "_stuck")) ? CONSOLE_WARN : CONSOLE_NORMAL, 2,
	    "%-16s %s", "status", console_fmt_str(pay, "status"));
	console_list_detail_field(l, "payment intent", pay, "stripe_payment_intent_id");
	console_list_detail_field(l, "created", pay, "created_at");
	console_list_detail_field(l, "updated", pay, "updated_at");
	console_list_detail_add(l, CONSOLE_NORMAL, 0, "%s", "");
	console_list_detail_add(l, CONSOLE_HEADING, 0, "Stripe events (oldest first)");
	json_array_foreach(json_object_get(d, "events"), i, ev)
	{
		console_fmt_time(when, sizeof when, console_fmt_str(ev, "received_at"), false);
		console_list_detail_add(l, CONSOLE_NORMAL, 2, "%s  %-30s %s", when,
		                        console_fmt_str(ev, "type"), console_fmt_str(ev, "id"));
	}
	if (json_array_size(json_object_get(d, "events")) == 0)
		console_list_detail_add(l, CONSOLE_DIM, 2, "no events received");
	console_list_detail_open(l);
out:
	json_decref(d);
	free(id);
}

static void payments_status(void *self, struct console *con)
{
	struct payments *p = self;

	p->filter = (p->filter + 1) % PAYMENTS_FILTERS;
	if (p->filter == 1 && p->user_id[0])
		p->filter = 2; /* STUCK has no user filter */
	p->list.sel = 0;
	(void)console_list_reload(&p->list, con);
}

static void payments_user_done(void *owner, struct console *con, const char *text)
{
	struct payments *p = owner;
	json_t *d = NULL;
	char *who;

	if (text == NULL)
		return;
	if (*text == '\0') {
		p->user_id[0] = p->user_label[0] = '\0';
		p->list.sel = 0;
		(void)console_list_reload(&p->list, con);
		return;
	}
	who = admin_client_quote(text);
	if (console_call(con, CONSOLE_CALL_MS, &d, "USERS SHOW %s", who) == HEX_OK) {
		const json_t *user = json_object_get(d, "user");
		console_payments_show_user(con, console_fmt_str(user, "id"),
		                           console_fmt_str(user, "email"));
	}
	json_decref(d);
	free(who);
}

static void payments_user(void *self, struct console *con)
{
	struct payments *p = self;
	console_prompt_text(&con->prompt,
	                    "Payments of user (email or id; empty: everyone): ", p->user_label,
	                    payments_user_done, p);
}

static void payments_find(void *self, struct console *con)
{
	struct payments *p = self;
	console_list_prompt_find(&p->list, con);
}

static void payments_clear(void *self, struct console *con)
{
	struct payments *p = self;
	p->filter = 0;
	p->user_id[0] = p->user_label[0] = '\0';
	p->list.sel = 0;
	(void)console_list_reload(&p->list, con);
}

static void payments_back(void *self, struct console *con)
{
	struct payments *p = self;
	console_list_detail_close(&p->list);
}

static void payments_draw(void *self, struct console *con, int y, int rows, int cols)
{
	struct payments *p = self;
	char title[512], pos[64];

	console_list_position(&p->list, pos, sizeof pos);
	if (p->list.detail)
		snprintf(title, sizeof title, "Payment %s", p->shown_id);
	else if (p->user_id[0])
		snprintf(title, sizeof title, "%s, of %s", payments_filters[p->filter].title,
		         p->user_label);
	else
		snprintf(title, sizeof title, "%s", payments_filters[p->filter].title);
	console_frame_title(y, cols, title, pos);
	console_list_draw(&p->list, con, y + 1, rows - 1, cols);
}

static bool payments_key(void *self, struct console *con, int key)
{
	struct payments *p = self;
	return console_list_key(&p->list, con, key);
}

static const struct console_action payments_actions[] = {
    {CONSOLE_KEY_ENTER, "Enter", "open", M(PAYMENTS_LIST) | M(PAYMENTS_FILTERED), true,
     payments_open},
    {'s', "s", "status filter", M(PAYMENTS_LIST) | M(PAYMENTS_FILTERED), true, payments_status},
    {'u', "u", "by user", M(PAYMENTS_LIST) | M(PAYMENTS_FILTERED), true, payments_user},
    {'/', "/", "find", M(PAYMENTS_LIST) | M(PAYMENTS_FILTERED), true, payments_find},
    {CONSOLE_KEY_ESC, "Esc", "no filter", M(PAYMENTS_FILTERED), true, payments_clear},
    {CONSOLE_KEY_ESC, "Esc", "back", M(PAYMENTS_DETAIL), true, payments_back},
    {CONSOLE_KEY_BACKSPACE, NULL, NULL, M(PAYMENTS_DETAIL), false, payments_back},
    {0, NULL, NULL, 0, false, NULL},
};

const struct console_screen console_payments_screen = {
    .tab = "Payments",
    .actions = payments_actions,
    .create = payments_create,
    .destroy = payments_destroy,
    .show = payments_show,
    .draw = payments_draw,
    .key = payments_key,
    .mode = payments_mode,
};
