/* console_list: the list/detail widget (see console_list.h). */
#include "tui/console_list.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "tui/admin_client.h"
#include "tui/console_fmt.h"
#include "tui/console_screen.h"

/* Pages End and `/` may load at once: a bound, so a huge table cannot hang the console. */
#define LIST_MAX_PAGES_AT_ONCE 20
#define LIST_CELL_MAX          1024

void console_list_cell_text(const struct console_list *l, const json_t *item, const char *key,
                            int width, char *buf, size_t n)
{
	console_fmt_member(buf, n, item, key);
}

void console_list_cell_time(const struct console_list *l, const json_t *item, const char *key,
                            int width, char *buf, size_t n)
{
	console_fmt_time(buf, n, console_fmt_str(item, key), width < 19);
}

void console_list_cell_money(const struct console_list *l, const json_t *item, const char *key,
                             int width, char *buf, size_t n)
{
	if (!json_is_number(json_object_get(item, key))) {
		console_fmt_member(buf, n, item, key);
		return;
	}
	console_fmt_money(buf, n, console_fmt_int(item, key, 0), console_fmt_str(item, "currency"));
}

void console_list_cell_short(const struct console_list *l, const json_t *item, const char *key,
                             int width, char *buf, size_t n)
{
	char id[256];

	console_fmt_member(id, sizeof id, item, key);
	/* hexd's UUIDs are time-ordered (v7): they differ at the end, not at the start. */
	if (strlen(id) == 36 && id[8] == '-' && id[23] == '-')
		snprintf(buf, n, "%s%s", console_fmt_utf8() ? "\xe2\x80\xa6" : "~", id + 29);
	else
		snprintf(buf, n, "%s", id);
}

void console_list_cell_line(const struct console_list *l, const json_t *item, const char *key,
                            int width, char *buf, size_t n)
{
	console_fmt_member(buf, n, item, key);
	buf[strcspn(buf, "\r\n")] = '\0';
}

enum hex_status console_list_take_page(struct console *con, json_t *data, json_t **items,
                                       char **next)
{
	json_t *arr = json_object_get(data, "items");
	const char *cur = json_string_value(json_object_get(data, "next_cursor"));

	*items = NULL;
	*next = NULL;
	if (!json_is_array(arr)) {
		json_decref(data);
		console_flash(con, CONSOLE_BAD, "hexd sent a list without items");
		return HEX_INTERNAL;
	}
	*items = json_incref(arr);
	*next = cur && *cur ? xstrdup(cur) : NULL;
	json_decref(data);
	return HEX_OK;
}

enum hex_status console_list_call_page(struct console *con, const char *cursor, json_t **items,
                                       char **next, const char *fmt, ...)
{
	va_list ap;
	char *verb, *quoted = cursor ? admin_client_quote(cursor) : NULL;
	json_t *data = NULL;
	enum hex_status st;

	*items = NULL;
	*next = NULL;
	va_start(ap, fmt);
	verb = console_vformat(fmt, ap);
	va_end(ap);
	st = console_call(con, CONSOLE_CALL_MS, &data, "%s LIMIT %d%s%s", verb, CONSOLE_PAGE,
	                  quoted ? " CURSOR " : "", quoted ? quoted : "");
	if (st == HEX_OK)
		st = console_list_take_page(con, data, items, next);
	free(verb);
	free(quoted);
	return st;
}

void console_list_init(struct console_list *l, const struct console_column *cols, int ncols,
                       console_list_load_fn load, void *owner, const char *empty)
{
	memset(l, 0, sizeof *l);
	l->cols = cols;
	l->ncols = ncols;
	l->load = load;
	l->owner = owner;
	l->empty = empty;
	l->id_key = "id";
	l->rows = 10;
}

void console_list_detail_clear(struct console_list *l)
{
	for (int i = 0; i < l->nlines; i++)
		free(l->lines[i].text);
	l->nlines = 0;
	l->dtop = 0;
}

void console_list_clear(struct console_list *l)
{
	json_decref(l->items);
	l->items = NULL;
	free(l->next);
	l->next = NULL;
	l->loaded = false;
	l->sel = l->top = 0;
	console_list_detail_clear(l);
	free(l->lines);
	l->lines = NULL;
	l->cap = 0;
	l->detail = false;
}

int console_list_count(const struct console_list *l)
{
	return l->items ? (int)json_array_size(l->items) : 0;
}

const json_t *console_list_selected(const struct console_list *l)
{
	if (l->sel < 0 || l->sel >= console_list_count(l))
		return NULL;
	return json_array_get(l->items, (size_t)l->sel);
}

static void list_clamp(struct console_list *l)
{
	int n = console_list_count(l);
	if (l->sel >= n)
		l->sel = n - 1;
	if (l->sel < 0)
		l->sel = 0;
}

void console_list_set_items(struct console_list *l, json_t *items)
{
	json_decref(l->items);
	l->items = json_is_array(items) ? items : json_array();
	if (l->items != items)
		json_decref(items);
	free(l->next);
	l->next = NULL;
	l->loaded = true;
	list_clamp(l);
}

enum hex_status console_list_reload(struct console_list *l, struct console *con)
{
	enum hex_status st = HEX_OK;
	json_t *items = NULL;
	char *next = NULL;
	char keep[256] = "";
	const json_t *cur = console_list_selected(l);

	if (l->load == NULL)
		goto out;
	if (cur != NULL)
		console_fmt_member(keep, sizeof keep, cur, l->id_key);
	st = l->load(l->owner, con, NULL, &items, &next);
	if (st != HEX_OK)
		goto out;
	json_decref(l->items);
	l->items = items;
	items = NULL;
	free(l->next);
	l->next = next;
	next = NULL;
	l->loaded = true;
	/* Same item if it is still there; else the row that took its place (the next one
	 * after a replayed dead letter left the list). */
	if (cur != NULL) {
		char id[256];
		for (int i = 0; i < console_list_count(l); i++) {
			console_fmt_member(id, sizeof id, json_array_get(l->items, (size_t)i),
			                   l->id_key);
			if (strcmp(id, keep) == 0) {
				l->sel = i;
				break;
			}
		}
	}
	list_clamp(l);
out:
	json_decref(items);
	free(next);
	return st;
}

/* Appends the next page; HEX_NOT_FOUND when there is none. */
static enum hex_status list_more(struct console_list *l, struct console *con)
{
	json_t *items = NULL;
	char *next = NULL;
	enum hex_status st;

	if (l->load == NULL || l->next == NULL)
		return HEX_NOT_FOUND;
	st = l->load(l->owner, con, l->next, &items, &next);
	if (st != HEX_OK)
		return st;
	if (l->items == NULL)
		l->items = json_array();
	json_array_extend(l->items, items);
	json_decref(items);
	free(l->next);
	l->next = next;
	return HEX_OK;
}

/* Loads pages until index i exists or nothing more comes. */
static void list_reach(struct console_list *l, struct console *con, int i)
{
	for (int pages = 0; i >= console_list_count(l) && pages < LIST_MAX_PAGES_AT_ONCE; pages++) {
		if (list_more(l, con) != HEX_OK)
			break;
	}
}

void console_list_position(const struct console_list *l, char *buf, size_t n)
{
	int count = console_list_count(l);

	if (l->detail) {
		if (l->dtotal > l->drows && l->drows > 0)
			snprintf(buf, n, "lines %d-%d/%d", l->dtop + 1,
			         l->dtop + l->drows > l->dtotal ? l->dtotal : l->dtop + l->drows,
			         l->dtotal);
		else
			buf[0] = '\0';
		return;
	}
	if (count == 0)
		buf[0] = '\0';
	else
		snprintf(buf, n, "%d/%d%s", l->sel + 1, count, l->next ? "+" : "");
}

static bool list_detail_key(struct console_list *l, int key)
{
	int page = l->drows > 1 ? l->drows - 1 : 1;

	switch (key) {
	case CONSOLE_FN(KEY_UP):
		l->dtop--;
		break;
	case CONSOLE_FN(KEY_DOWN):
		l->dtop++;
		break;
	case CONSOLE_FN(KEY_PPAGE):
		l->dtop -= page;
		break;
	case CONSOLE_FN(KEY_NPAGE):
	case ' ':
		l->dtop += page;
		break;
	case CONSOLE_FN(KEY_HOME):
		l->dtop = 0;
		break;
	case CONSOLE_FN(KEY_END):
		l->dtop = l->dtotal;
		break;
	case CONSOLE_KEY_ESC:
	case CONSOLE_KEY_BACKSPACE:
		console_list_detail_close(l);
		break;
	default:
		return false;
	}
	/* Clamped here and again at draw, where the wrapped length is known. */
	if (l->dtop > l->dtotal - l->drows)
		l->dtop = l->dtotal - l->drows;
	if (l->dtop < 0)
		l->dtop = 0;
	return true;
}

bool console_list_key(struct console_list *l, struct console *con, int key)
{
	int page = l->rows > 1 ? l->rows - 1 : 1;

	if (l->detail)
		return list_detail_key(l, key);
	switch (key) {
	case CONSOLE_FN(KEY_UP):
		l->sel--;
		break;
	case CONSOLE_FN(KEY_DOWN):
		list_reach(l, con, l->sel + 1);
		l->sel++;
		break;
	case CONSOLE_FN(KEY_PPAGE):
		l->sel -= page;
		break;
	case CONSOLE_FN(KEY_NPAGE):
		list_reach(l, con, l->sel + page);
		l->sel += page;
		break;
	case CONSOLE_FN(KEY_HOME):
		l->sel = 0;
		break;
	case CONSOLE_FN(KEY_END):
		list_reach(l, con, 1 << 30);
		l->sel = console_list_count(l) - 1;
		break;
	default:
		return false;
	}
	list_clamp(l);
	return true;
}

/* Widths of the columns for cols cells; the flexible one takes what is left. */
static void list_widths(const struct console_list *l, int cols, int *w)
{
	int fixed = 0, flex = -1;

	for (int i = 0; i < l->ncols; i++) {
		w[i] = l->cols[i].width;
		if (w[i] == 0)
			flex = i;
		fixed += w[i] + (i > 0);
	}
	if (flex >= 0)
		w[flex] = cols - fixed > 4 ? cols - fixed : 4;
}

static void list_row_text(const struct console_list *l, const json_t *item, const int *w, char *row,
                          size_t n)
{
	char raw[LIST_CELL_MAX], cell[CONSOLE_FMT_MAX(256)];
	size_t len = 0;

	row[0] = '\0';
	for (int i = 0; i < l->ncols; i++) {
		const struct console_column *c = &l->cols[i];
		int width = w[i] > 256 ? 256 : w[i];
		raw[0] = '\0';
		if (item != NULL)
			(c->cell ? c->cell : console_list_cell_text)(l, item, c->key, width, raw,
			                                             sizeof raw);
		else
			snprintf(raw, sizeof raw, "%s", c->title);
		console_fmt_fit(cell, sizeof cell, raw, width, item != NULL && c->right);
		size_t clen = strlen(cell);
		if (len + clen + 2 > n)
			break;
		if (i > 0)
			row[len++] = ' ';
		memcpy(row + len, cell, clen + 1);
		len += clen;
	}
}

static void list_draw_detail(struct console_list *l, int y, int rows, int cols)
{
	int total = 0, r = 0;

	/* Two passes over the wrapped text: its length clamps the scroll first. */
	for (int pass = 0; pass < 2; pass++) {
		int v = 0;
		for (int i = 0; i < l->nlines; i++) {
			const struct console_line *ln = &l->lines[i];
			int width = cols - ln->indent > 8 ? cols - ln->indent : 8;
			const char *s = ln->text;
			do {
				size_t k = console_fmt_prefix(s, width, true);
				if (pass == 1 && v >= l->dtop && r < rows) {
					char *seg = xstrndup(s, k);
					console_draw_text(y + r, 0, ln->indent, CONSOLE_NORMAL, "");
					console_draw_text(y + r, ln->indent, cols - ln->indent,
					                  ln->style, seg);
					free(seg);
					r++;
				}
				v++;
				s += k;
				if (*s == '\n')
					s++;
				else
					while (*s == ' ')
						s++; /* the space a wrap broke at */
			} while (*s != '\0');
		}
		if (pass == 0) {
			total = v;
			l->dtotal = total;
			l->drows = rows;
			if (l->dtop > total - rows)
				l->dtop = total - rows;
			if (l->dtop < 0)
				l->dtop = 0;
		}
	}
}

void console_list_draw(struct console_list *l, struct console *con, int y, int rows, int cols)
{
	int w[32];
	char row[CONSOLE_FMT_MAX(512)];
	int n = console_list_count(l);

	if (rows <= 0)
		return;
	if (l->detail) {
		list_draw_detail(l, y, rows, cols);
		return;
	}
	list_widths(l, cols, w);
	list_row_text(l, NULL, w, row, sizeof row);
	console_draw_text(y, 0, cols, CONSOLE_HEADER, row);
	l->rows = rows - 1;
	if (n == 0) {
		console_draw_text(y + 1, 1, cols - 1, CONSOLE_DIM,
		                  l->loaded                ? (l->empty ? l->empty : "nothing here")
		                  : con && !con->connected ? "waiting for hexd..."
		                                           : "loading...");
		return;
	}
	list_clamp(l);
	if (l->sel < l->top)
		l->top = l->sel;
	if (l->sel >= l->top + l->rows)
		l->top = l->sel - l->rows + 1;
	if (l->top > n - l->rows)
		l->top = n - l->rows;
	if (l->top < 0)
		l->top = 0;
	for (int i = 0; i < l->rows && l->top + i < n; i++) {
		int idx = l->top + i;
		const json_t *item = json_array_get(l->items, (size_t)idx);
		enum console_style st = CONSOLE_NORMAL;
		if (idx == l->sel)
			st = CONSOLE_SELECTED;
		else if (l->row_style)
			st = l->row_style(l, item);
		list_row_text(l, item, w, row, sizeof row);
		console_draw_text(y + 1 + i, 0, cols, st, row);
	}
}

static bool list_row_has(const struct console_list *l, const json_t *item, const char *text)
{
	char raw[LIST_CELL_MAX];

	for (int i = 0; i < l->ncols; i++) {
		const struct console_column *c = &l->cols[i];
		raw[0] = '\0';
		(c->cell ? c->cell : console_list_cell_text)(l, item, c->key, 200, raw, sizeof raw);
		if (strcasestr(raw, text))
			return true;
	}
	console_fmt_member(raw, sizeof raw, item, l->id_key);
	return strcasestr(raw, text) != NULL;
}

bool console_list_find(struct console_list *l, struct console *con, const char *text)
{
	int n = console_list_count(l);

	for (int k = 1; k <= n; k++) {
		int i = (l->sel + k) % n;
		if (list_row_has(l, json_array_get(l->items, (size_t)i), text)) {
			l->sel = i;
			return true;
		}
	}
	for (int pages = 0; l->next && pages < LIST_MAX_PAGES_AT_ONCE; pages++) {
		int from = console_list_count(l);
		if (list_more(l, con) != HEX_OK)
			break;
		for (int i = from; i < console_list_count(l); i++) {
			if (list_row_has(l, json_array_get(l->items, (size_t)i), text)) {
				l->sel = i;
				return true;
			}
		}
	}
	return false;
}

static void list_find_done(void *owner, struct console *con, const char *text)
{
	struct console_list *l = owner;

	if (text == NULL || *text == '\0')
		return;
	hex_strlcpy(l->find, text, sizeof l->find);
	if (!console_list_find(l, con, text))
		console_flash(con, CONSOLE_WARN, "no row holds \"%s\"", text);
}

void console_list_prompt_find(struct console_list *l, struct console *con)
{
	console_prompt_text(&con->prompt, "Find: ", l->find, list_find_done, l);
}

static void list_add_line(struct console_list *l, enum console_style st, int indent, char *text)
{
	if (l->nlines == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 32;
		l->lines = xrealloc(l->lines, (size_t)l->cap * sizeof *l->lines);
	}
	l->lines[l->nlines++] = (struct console_line){st, indent, text};
}

void console_list_detail_add(struct console_list *l, enum console_style st, int indent,
                             const char *fmt, ...)
{
	va_list ap, again;
	char *text;
	int len;

	va_start(ap, fmt);
	va_copy(again, ap);
	len = vsnprintf(NULL, 0, fmt, ap);
	text = xmalloc(len > 0 ? (size_t)len + 1 : 1);
	text[0] = '\0';
	if (len > 0)
		vsnprintf(text, (size_t)len + 1, fmt, again);
	va_end(again);
	va_end(ap);
	list_add_line(l, st, indent, text);
}

void console_list_detail_text(struct console_list *l, enum console_style st, int indent,
                              const char *text)
{
	const char *s = text ? text : "";

	do {
		size_t k = strcspn(s, "\n");
		list_add_line(l, st, indent, xstrndup(s, k));
		s += k;
		if (*s == '\n')
			s++;
	} while (*s != '\0');
}

void console_list_detail_field(struct console_list *l, const char *label, const json_t *obj,
                               const char *key)
{
	char value[LIST_CELL_MAX];

	console_fmt_member(value, sizeof value, obj, key);
	console_list_detail_add(l, CONSOLE_NORMAL, 2, "%-16s %s", label, value);
}

void console_list_detail_open(struct console_list *l)
{
	l->detail = true;
	l->dtop = 0;
}

void console_list_detail_close(struct console_list *l)
{
	l->detail = false;
}
