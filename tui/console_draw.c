/* console_draw: styles (color or monochrome) and fitted text. */
#include "tui/console_draw.h"

#include <curses.h>
#include <string.h>

#include "tui/console_fmt.h"

/* fg/bg -1: the terminal's default. mono is all a monochrome terminal gets. */
static const struct {
	short fg, bg;
	attr_t color_attr;
	attr_t mono_attr;
} draw_styles[CONSOLE_STYLE_COUNT] = {
    [CONSOLE_NORMAL] = {-1, -1, A_NORMAL, A_NORMAL},
    [CONSOLE_BAR] = {COLOR_WHITE, COLOR_BLUE, A_NORMAL, A_REVERSE},
    [CONSOLE_TAB] = {COLOR_BLACK, COLOR_CYAN, A_BOLD, A_BOLD},
    [CONSOLE_TITLE] = {-1, -1, A_BOLD, A_BOLD},
    [CONSOLE_HEADER] = {COLOR_CYAN, -1, A_BOLD, A_BOLD | A_UNDERLINE},
    [CONSOLE_SELECTED] = {COLOR_BLACK, COLOR_CYAN, A_NORMAL, A_REVERSE},
    [CONSOLE_HEADING] = {COLOR_YELLOW, -1, A_BOLD, A_BOLD | A_UNDERLINE},
    [CONSOLE_DIM] = {-1, -1, A_DIM, A_DIM},
    [CONSOLE_GOOD] = {COLOR_GREEN, -1, A_BOLD, A_BOLD},
    [CONSOLE_WARN] = {COLOR_YELLOW, -1, A_BOLD, A_BOLD},
    [CONSOLE_BAD] = {COLOR_RED, -1, A_BOLD, A_BOLD | A_UNDERLINE},
    [CONSOLE_KEY] = {COLOR_BLACK, COLOR_CYAN, A_NORMAL, A_REVERSE},
    [CONSOLE_BAR_BAD] = {COLOR_WHITE, COLOR_RED, A_BOLD, A_REVERSE | A_BOLD},
};

static bool draw_color;

void console_draw_setup(bool color)
{
	draw_color = false;
	if (!color || start_color() == ERR)
		return;
	bool defaults = use_default_colors() == OK;
	for (int i = 1; i < CONSOLE_STYLE_COUNT; i++) {
		short fg = draw_styles[i].fg, bg = draw_styles[i].bg;
		if (!defaults) {
			fg = fg < 0 ? COLOR_WHITE : fg;
			bg = bg < 0 ? COLOR_BLACK : bg;
		}
		if (i < COLOR_PAIRS)
			init_pair((short)i, fg, bg);
	}
	draw_color = COLOR_PAIRS > CONSOLE_STYLE_COUNT;
}

bool console_draw_color(void)
{
	return draw_color;
}

static attr_t draw_attr(enum console_style st)
{
	if ((int)st < 0 || st >= CONSOLE_STYLE_COUNT)
		st = CONSOLE_NORMAL;
	if (!draw_color)
		return draw_styles[st].mono_attr;
	if (st == CONSOLE_NORMAL || (draw_styles[st].fg < 0 && draw_styles[st].bg < 0))
		return draw_styles[st].color_attr;
	return draw_styles[st].color_attr | COLOR_PAIR(st);
}

void console_draw_text(int y, int x, int width, enum console_style st, const char *text)
{
	char buf[CONSOLE_FMT_MAX(512)];

	if (y < 0 || y >= LINES || x < 0 || x >= COLS)
		return;
	if (width > COLS - x)
		width = COLS - x;
	/* The bottom-right cell would scroll some terminals: it stays empty. */
	if (y == LINES - 1 && x + width == COLS)
		width--;
	if (width > 512)
		width = 512;
	if (width <= 0)
		return;
	console_fmt_fit(buf, sizeof buf, text, width, false);
	attr_t a = draw_attr(st);
	attron(a);
	mvaddstr(y, x, buf);
	attroff(a);
}

int console_draw_str(int y, int x, int maxw, enum console_style st, const char *text)
{
	int w = console_fmt_cells(text ? text : "");
	if (w > maxw)
		w = maxw;
	if (w <= 0)
		return 0;
	console_draw_text(y, x, w, st, text);
	return w;
}

void console_draw_fill(int y, int x, enum console_style st)
{
	console_draw_text(y, x, COLS - x, st, "");
}
