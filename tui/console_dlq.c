/*
 * console_dlq: the Dead letters screen. Open dead letters newest first (a: every one),
 * each with its consumer, attempts and last error; Enter shows the payload and the
 * attempt history; r replays and d discards the selected (or shown) one, after a y/N
 * confirmation and, for a discard, a reason. The list refreshes itself every few seconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "tui/admin_client.h"
#include "tui/console_fmt.h"
#include "tui/console_list.h"
#include "tui/console_screen.h"

enum dlq_mode { DLQ_LIST = 0, DLQ_DETAIL };
#define M(m)           (1u << (m))
#define DLQ_REFRESH_MS 5000

struct dlq {
	struct console_list list;
	bool all;
	char target[64];       /* the dead letter r or d acts on */
	char target_what[200]; /* how the confirmation names it */
	char reason[CONSOLE_PROMPT_TEXT_MAX + 1];
	char shown_id[64];
	int64_t refresh_ms;
};

static enum console_style dlq_row_style(const struct console_list *l, const json_t *item)
{
	return strcmp(console_fmt_str(item, "status"), "open") == 0 ? CONSOLE_NORMAL : CONSOLE_DIM;
}

static const struct console_column dlq_columns[] = {
    {"ID", "id", 6, true, NULL},
    {"STATUS", "status", 9, false, NULL},
    {"CONSUMER", "consumer", 10, false, NULL},
    {"TRY", "attempts", 3, true, NULL},
    {"CREATED", "created_at", 11, false, console_list_cell_time},
    {"ERROR", "error", 0, false, console_list_cell_line},
};

static enum hex_status dlq_load(void *owner, struct console *con, const char *cursor,
                                json_t **items, char **next)
{
	struct dlq *q = owner;
	q->refresh_ms = console_now_ms() + DLQ_REFRESH_MS;
	return console_list_call_page(con, cursor, items, next, "DLQ LIST%s", q->all ? " ALL" : "");
}

static void *dlq_create(struct console *con)
{
	struct dlq *q = xcalloc(1, sizeof *q);
	console_list_init(&q->list, dlq_columns, (int)(sizeof dlq_columns / sizeof dlq_columns[0]),
	                  dlq_load, q, "no open dead letters");
	q->list.row_style = dlq_row_style;
	return q;
}

static void dlq_destroy(void *self)
{
	struct dlq *q = self;
	console_list_clear(&q->list);
	free(q);
}

static int dlq_mode(const void *self)
{
	const struct dlq *q = self;
	return q->list.detail ? DLQ_DETAIL : DLQ_LIST;
}

static void dlq_show(void *self, struct console *con)
{
	struct dlq *q = self;
	(void)console_list_reload(&q->list, con);
}

static void dlq_tick(void *self, struct console *con, bool visible)
{
	struct dlq *q = self;

	/* Not under an open prompt: the row a confirmation names must not move. */
	if (visible && !q->list.detail && !con->prompt.active && con->connected &&
	    console_now_ms() >= q->refresh_ms)
		(void)console_list_reload(&q->list, con);
}

static void dlq_fill_detail(struct console_list *l, const json_t *d)
{
	const json_t *h;
	json_t *payload;
	size_t i;
	char when[32];
	const char *raw = console_fmt_str(d, "payload");

	console_list_detail_clear(l);
	console_list_detail_field(l, "id", d, "id");
	console_list_detail_field(l, "status", d, "status");
	console_list_detail_field(l, "consumer", d, "consumer");
	console_list_detail_field(l, "event", d, "event_id");
	console_list_detail_field(l, "topic", d, "topic");
	console_list_detail_field(l, "attempts", d, "attempts");
	console_list_detail_field(l, "created", d, "created_at");
	if (!json_is_null(json_object_get(d, "resolved_at")) &&
	    json_object_get(d, "resolved_at") != NULL) {
		console_list_detail_field(l, "resolved", d, "resolved_at");
		console_list_detail_field(l, "resolved by", d, "resolved_by");
		console_list_detail_field(l, "reason", d, "reason");
	}
	console_list_detail_add(l, CONSOLE_NORMAL, 0, "%s", "");
	console_list_detail_add(l, CONSOLE_HEADING, 0, "Last error");
	console_list_detail_text(l, CONSOLE_BAD, 2, console_fmt_str(d, "error"));
	console_list_detail_add(l, CONSOLE_NORMAL, 0, "%s", "");
	console_list_detail_add(l, CONSOLE_HEADING, 0, "Attempts");
	json_array_foreach(json_object_get(d, "history"), i, h)
	{
		console_fmt_time(when, sizeof when, console_fmt_str(h, "failed_at"), false);
		console_list_detail_add(l, CONSOLE_NORMAL, 2, "#%lld at %s: %s",
		                        console_fmt_int(h, "attempt", 0), when,
		                        console_fmt_str(h, "error"));
	}
	console_list_detail_add(l, CONSOLE_NORMAL, 0, "%s", "");
	console_list_detail_add(l, CONSOLE_HEADING, 0, "Payload");
	/* Pretty when it is JSON; a payload that is not is shown as it came. */
	payload = json_loads(raw, JSON_DECODE_ANY, NULL);
	if (payload != NULL) {
		char *pretty = json_dumps(payload, JSON_INDENT(2) | JSON_ENCODE_ANY);
		console_list_detail_text(l, CONSOLE_NORMAL, 2, pretty ? pretty : raw);
		free(pretty);
		json_decref(payload);
	} else {
		console_list_detail_text(l, CONSOLE_NORMAL, 2, raw);
	}
}

static void dlq_open(void *self, struct console *con)
{
	struct dlq *q = self;
	const json_t *item = console_list_selected(&q->list);
	json_t *d = NULL;
	char id[64];

	if (item == NULL)
		return;
	console_fmt_member(id, sizeof id, item, "id");
	char *qid = admin_client_quote(id);
	if (console_call(con, CONSOLE_CALL_MS, &d, "DLQ SHOW %s", qid) == HEX_OK) {
		hex_strlcpy(q->shown_id, id, sizeof q->shown_id);
		dlq_fill_detail(&q->list, d);
		console_list_detail_open(&q->list);
	}
	json_decref(d);
	free(qid);
}

/* Picks what r and d act on: the shown dead letter, else the selected row. */
static bool dlq_pick(struct dlq *q, struct console *con)
{
	const json_t *item = console_list_selected(&q->list);

	if (q->list.detail) {
		hex_strlcpy(q->target, q->shown_id, sizeof q->target);
		snprintf(q->target_what, sizeof q->target_what, "dead letter %s", q->shown_id);
		return true;
	}
	if (item == NULL) {
		console_flash(con, CONSOLE_WARN, "no dead letter selected");
		return false;
	}
	console_fmt_member(q->target, sizeof q->target, item, "id");
	snprintf(q->target_what, sizeof q->target_what, "dead letter %s (%s, %.40s)", q->target,
	         console_fmt_str(item, "consumer"), console_fmt_str(item, "event_id"));
	return true;
}

/* After a replay or discard: back to the list, which no longer holds it. */
static void dlq_done(struct dlq *q, struct console *con, json_t *d, const char *verb)
{
	console_flash(con, CONSOLE_GOOD, "dead letter %s %s (status %s)", q->target, verb,
	              console_fmt_str(d, "status"));
	console_list_detail_close(&q->list);
	(void)console_list_reload(&q->list, con);
	con->status.next_ms = 0; /* its open count changed */
}

static void dlq_replay_confirmed(void *owner, struct console *con, bool yes)
{
	struct dlq *q = owner;
	json_t *d = NULL;

	if (!yes) {
		console_flash(con, CONSOLE_DIM, "not replayed");
		return;
	}
	char *id = admin_client_quote(q->target);
	if (console_call(con, CONSOLE_CALL_MS, &d, "DLQ REPLAY %s", id) == HEX_OK)
		dlq_done(q, con, d, "replayed");
	json_decref(d);
	free(id);
}

static void dlq_replay(void *self, struct console *con)
{
	struct dlq *q = self;
	char label[CONSOLE_PROMPT_LABEL_MAX];

	if (!dlq_pick(q, con))
		return;
	snprintf(label, sizeof label, "Replay %.120s?", q->target_what);
	console_prompt_confirm(&con->prompt, label, dlq_replay_confirmed, q);
}

static void dlq_discard_confirmed(void *owner, struct console *con, bool yes)
{
	struct dlq *q = owner;
	json_t *d = NULL;

	if (!yes) {
		console_flash(con, CONSOLE_DIM, "not discarded");
		return;
	}
	char *id = admin_client_quote(q->target);
	char *reason = admin_client_quote(q->reason);
	if (console_call(con, CONSOLE_CALL_MS, &d, "DLQ DISCARD %s %s", id, reason) == HEX_OK)
		dlq_done(q, con, d, "discarded");
	json_decref(d);
	free(id);
	free(reason);
}

static void dlq_reason_done(void *owner, struct console *con, const char *text)
{
	struct dlq *q = owner;
	char label[CONSOLE_PROMPT_LABEL_MAX];

	if (text == NULL) {
		console_flash(con, CONSOLE_DIM, "not discarded");
		return;
	}
	if (text[strspn(text, " \t")] == '\0') {
		console_flash(con, CONSOLE_WARN, "not discarded: a discard needs a reason");
		return;
	}
	hex_strlcpy(q->reason, text, sizeof q->reason);
	snprintf(label, sizeof label, "Discard dead letter %.40s for \"%.60s\"?", q->target,
	         q->reason);
	console_prompt_confirm(&con->prompt, label, dlq_discard_confirmed, q);
}

static void dlq_discard(void *self, struct console *con)
{
	struct dlq *q = self;
	char label[CONSOLE_PROMPT_LABEL_MAX];

	if (!dlq_pick(q, con))
		return;
	snprintf(label, sizeof label, "Why discard dead letter %s? ", q->target);
	console_prompt_text(&con->prompt, label, NULL, dlq_reason_done, q);
}

static void dlq_toggle_all(void *self, struct console *con)
{
	struct dlq *q = self;
	q->all = !q->all;
	q->list.empty = q->all ? "no dead letters" : "no open dead letters";
	q->list.sel = 0;
	(void)console_list_reload(&q->list, con);
}

static void dlq_find(void *self, struct console *con)
{
	struct dlq *q = self;
	console_list_prompt_find(&q->list, con);
}

static void dlq_back(void *self, struct console *con)
{
	struct dlq *q = self;
	console_list_detail_close(&q->list);
	(void)console_list_reload(&q->list, con);
}

static void dlq_draw(void *self, struct console *con, int y, int rows, int cols)
{
	struct dlq *q = self;
	char title[200], pos[64];

	console_list_position(&q->list, pos, sizeof pos);
	if (q->list.detail)
		snprintf(title, sizeof title, "Dead letter %s", q->shown_id);
	else
		snprintf(title, sizeof title, "%s",
		         q->all ? "Dead letters, all (newest first)"
		                : "Dead letters, open (newest first)");
	console_frame_title(y, cols, title, pos);
	console_list_draw(&q->list, con, y + 1, rows - 1, cols);
}

static bool dlq_key(void *self, struct console *con, int key)
{
	struct dlq *q = self;
	return console_list_key(&q->list, con, key);
}

static const struct console_action dlq_actions[] = {
    {CONSOLE_KEY_ENTER, "Enter", "open", M(DLQ_LIST), true, dlq_open},
    {'r', "r", "replay", 0, true, dlq_replay},
    {'d', "d", "discard", 0, true, dlq_discard},
    {'a', "a", "open/all", M(DLQ_LIST), true, dlq_toggle_all},
    {'/', "/", "find", M(DLQ_LIST), true, dlq_find},
    {CONSOLE_KEY_ESC, "Esc", "back", M(DLQ_DETAIL), true, dlq_back},
    {CONSOLE_KEY_BACKSPACE, NULL, NULL, M(DLQ_DETAIL), false, dlq_back},
    {0, NULL, NULL, 0, false, NULL},
};

const struct console_screen console_dlq_screen = {
    .tab = "Dead letters",
    .actions = dlq_actions,
    .create = dlq_create,
    .destroy = dlq_destroy,
    .show = dlq_show,
    .draw = dlq_draw,
    .key = dlq_key,
    .tick = dlq_tick,
    .mode = dlq_mode,
};
