/*
 * console_frame: what surrounds every screen. Row 0 the tabs, row 1 the screen's title,
 * then its body; three rows at the bottom: the message (or prompt), the status line and
 * the key legend. Legend and help come from the same action tables as the key dispatch.
 */
#include <stdio.h>
#include <string.h>

#include "tui/admin_client.h"
#include "tui/console_fmt.h"
#include "tui/console_screen.h"

#define FRAME_MIN_COLS 40
#define FRAME_MIN_ROWS 10

void console_frame_title(int y, int cols, const char *title, const char *right)
{
	int rw = right && *right ? console_fmt_cells(right) : 0;

	if (rw > cols / 2)
		rw = cols / 2;
	console_draw_fill(y, 0, CONSOLE_NORMAL);
	console_draw_text(y, 0, cols - rw - 1, CONSOLE_TITLE, title);
	if (rw > 0)
		console_draw_text(y, cols - rw, rw, CONSOLE_DIM, right);
}

static void frame_tabs(struct console *con, int cols)
{
	char label[64];
	int x = 0, need = 8;
	bool narrow;

	for (int i = 0; i < CONSOLE_SCREEN_COUNT; i++)
		need += (int)strlen(con->screens[i]->tab) + 4;
	narrow = need > cols; /* then only the current screen is named */
	console_draw_fill(0, 0, CONSOLE_BAR);
	x += console_draw_str(0, x, cols - x, CONSOLE_BAR, " hexctl ");
	for (int i = 0; i < CONSOLE_SCREEN_COUNT && x < cols; i++) {
		bool cur = i == con->current;
		if (narrow && !cur)
			snprintf(label, sizeof label, " %d ", i + 1);
		else
			snprintf(label, sizeof label, " %d %s ", i + 1, con->screens[i]->tab);
		x += console_draw_str(0, x, cols - x, cur ? CONSOLE_TAB : CONSOLE_BAR, label);
	}
}

static void frame_message(struct console *con, int y, int cols)
{
	console_draw_fill(y, 0, CONSOLE_NORMAL);
	if (con->message[0])
		console_draw_text(y, 0, cols, con->message_style, con->message);
}

static void frame_status(struct console *con, int y, int cols)
{
	const struct console_status *s = &con->status;
	const char *sep = con->utf8 ? " \xe2\x94\x82 " : " | ";
	char line[512], up[32], lag[32];
	int64_t now = console_now_ms();

	if (!con->connected) {
		long long in = (con->retry_ms - now + 999) / 1000;
		snprintf(line, sizeof line, " %s reconnecting (attempt %d, next in %llds)%s%s",
		         con->utf8 ? "\xe2\x97\x8b" : "!", con->attempts + 1, in > 0 ? in : 0,
		         con->conn_error[0] ? ": " : "", con->conn_error);
		console_draw_text(y, 0, cols, CONSOLE_BAR_BAD, line);
		return;
	}
	int len = snprintf(line, sizeof line, " %s connected %s", con->utf8 ? "\xe2\x97\x8f" : "*",
	                   admin_client_target(con->client));
	if (s->have_stats && len > 0 && (size_t)len < sizeof line) {
		console_fmt_age(up, sizeof up, s->uptime_s + (now - s->uptime_at_ms) / 1000);
		len += snprintf(line + len, sizeof line - (size_t)len, "%shexd %s%sup %s", sep,
		                s->version[0] ? s->version : "?", sep, up);
	}
	if (s->have_lag && len > 0 && (size_t)len < sizeof line) {
		console_fmt_age(lag, sizeof lag, s->lag_s);
		len += snprintf(line + len, sizeof line - (size_t)len, "%sevent lag %s%sdlq %lld",
		                sep, lag, sep, s->dead_open);
	}
	console_draw_text(y, 0, cols, CONSOLE_BAR, line);
}

static int frame_mode(struct console *con)
{
	const struct console_screen *scr = con->screens[con->current];
	return scr->mode ? scr->mode(con->self[con->current]) : 0;
}

static bool frame_applies(const struct console_action *a, int mode)
{
	return a->modes == 0 || (a->modes & (1u << mode)) != 0;
}

/* Draws "key what" pairs of table from x; returns the new x. */
static int frame_legend_part(const struct console_action *table, int mode, int y, int x, int end)
{
	for (const struct console_action *a = table; a && a->key; a++) {
		if (!a->legend || !a->keyname || !frame_applies(a, mode))
			continue;
		int need = console_fmt_cells(a->keyname) + console_fmt_cells(a->what) + 3;
		if (x + need > end)
			break;
		x += console_draw_str(y, x, end - x, CONSOLE_KEY, a->keyname);
		x += console_draw_str(y, x, end - x, CONSOLE_NORMAL, " ");
		x += console_draw_str(y, x, end - x, CONSOLE_NORMAL, a->what);
		x += 2; /* the gap to the next pair */
	}
	return x;
}

static int frame_legend_cells(const struct console_action *table, int mode)
{
	int w = 0;
	for (const struct console_action *a = table; a && a->key; a++) {
		if (a->legend && a->keyname && frame_applies(a, mode))
			w += console_fmt_cells(a->keyname) + console_fmt_cells(a->what) + 3;
	}
	return w;
}

static void frame_legend(struct console *con, int y, int cols)
{
	const struct console_screen *scr = con->screens[con->current];
	int mode = frame_mode(con);
	int global = frame_legend_cells(console_global_actions, 0);

	console_draw_fill(y, 0, CONSOLE_NORMAL);
	/* The last row stops a cell short of the corner (console_draw_text); the global
	 * keys end there, without their trailing gap. */
	frame_legend_part(scr->actions, mode, y, 0, cols - global);
	frame_legend_part(console_global_actions, 0, y, cols - global + 1, cols + 1);
}

/* Keys of the movement every list has: listed in help, handled by console_list. */
static const struct {
	const char *keys, *what;
} frame_moves[] = {
    {"Up/Down", "move"},
    {"PgUp/PgDn", "page"},
    {"Home/End", "first, last"},
};

static void frame_help_line(int y, int x, int w, const char *key, const char *what)
{
	console_draw_text(y, x, 12, CONSOLE_TITLE, key);
	console_draw_text(y, x + 12, w - 12, CONSOLE_NORMAL, what);
}

static void frame_help(struct console *con, int rows, int cols)
{
	const struct console_screen *scr = con->screens[con->current];
	int lines = 0;
	for (const struct console_action *a = scr->actions; a && a->key; a++)
		lines += a->keyname != NULL;
	for (const struct console_action *a = console_global_actions; a->key; a++)
		lines += a->keyname != NULL;
	lines += (int)(sizeof frame_moves / sizeof frame_moves[0]);
	int w = cols - 4 < 64 ? cols - 4 : 64;
	int h = lines + 4 < rows - 2 ? lines + 4 : rows - 2; /* borders, a gap, the closing line */
	int x0 = (cols - w) / 2, y0 = 1, y, inner = w - 4;
	char title[96];

	for (y = y0; y < y0 + h; y++)
		console_draw_text(y, x0, w, CONSOLE_NORMAL, "");
	mvhline(y0, x0 + 1, ACS_HLINE, w - 2);
	mvhline(y0 + h - 1, x0 + 1, ACS_HLINE, w - 2);
	mvvline(y0 + 1, x0, ACS_VLINE, h - 2);
	mvvline(y0 + 1, x0 + w - 1, ACS_VLINE, h - 2);
	mvaddch(y0, x0, ACS_ULCORNER);
	mvaddch(y0, x0 + w - 1, ACS_URCORNER);
	mvaddch(y0 + h - 1, x0, ACS_LLCORNER);
	mvaddch(y0 + h - 1, x0 + w - 1, ACS_LRCORNER);
	snprintf(title, sizeof title, " Help: %s ", scr->tab);
	console_draw_str(y0, x0 + 2, w - 4, CONSOLE_TITLE, title);

	y = y0 + 1;
	int last = y0 + h - 2, x = x0 + 2;
	for (const struct console_action *a = scr->actions; a && a->key && y < last; a++) {
		if (a->keyname)
			frame_help_line(y++, x, inner, a->keyname, a->what);
	}
	for (size_t i = 0; i < sizeof frame_moves / sizeof frame_moves[0] && y < last; i++)
		frame_help_line(y++, x, inner, frame_moves[i].keys, frame_moves[i].what);
	for (const struct console_action *a = console_global_actions; a->key && y < last; a++) {
		if (a->keyname)
			frame_help_line(y++, x, inner, a->keyname, a->what);
	}
	console_draw_text(last, x, inner, CONSOLE_DIM, "any key closes this help");
}

void console_frame_draw(struct console *con)
{
	int rows = LINES, cols = COLS;
	const struct console_screen *scr = con->screens[con->current];

	erase();
	if (rows < FRAME_MIN_ROWS || cols < FRAME_MIN_COLS) {
		mvaddstr(0, 0, "terminal too small");
		mvaddstr(1, 0, "(40x10 at least)");
		curs_set(0);
		refresh();
		return;
	}
	frame_tabs(con, cols);
	scr->draw(con->self[con->current], con, 1, rows - 4, cols);
	frame_message(con, rows - 3, cols);
	frame_status(con, rows - 2, cols);
	frame_legend(con, rows - 1, cols);
	if (con->help)
		frame_help(con, rows, cols);
	if (con->prompt.active && !con->help) {
		console_prompt_draw(&con->prompt, rows - 3);
		curs_set(1);
	} else {
		curs_set(0);
	}
	refresh();
}
