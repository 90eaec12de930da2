/*
 * console_draw: the console's styles and the few drawing primitives every screen uses.
 * A style is a role ("selected row", "error"); it maps to colors when the terminal has
 * them and NO_COLOR is not set, else to reverse/bold/underline only, so every screen reads
 * the same on a monochrome terminal.
 */
#ifndef HEX_TUI_CONSOLE_DRAW_H
#define HEX_TUI_CONSOLE_DRAW_H

#include <stdbool.h>

enum console_style {
	CONSOLE_NORMAL = 0,
	CONSOLE_BAR,      /* the tab bar and the status line */
	CONSOLE_TAB,      /* the current screen's tab */
	CONSOLE_TITLE,    /* a screen's title row */
	CONSOLE_HEADER,   /* a list's column titles */
	CONSOLE_SELECTED, /* the selected row */
	CONSOLE_HEADING,  /* a section of a detail view */
	CONSOLE_DIM,      /* secondary text */
	CONSOLE_GOOD,     /* "ok" */
	CONSOLE_WARN,     /* stuck, slow */
	CONSOLE_BAD,      /* errors */
	CONSOLE_KEY,      /* a key in the legend */
	CONSOLE_BAR_BAD,  /* the status line while disconnected */
	CONSOLE_STYLE_COUNT
};

/* After initscr: colors only if color is set (has_colors() and not NO_COLOR). */
void console_draw_setup(bool color);
bool console_draw_color(void);

/* Draws text at (y, x) fitted to exactly width cells in style; clipped to the screen. */
void console_draw_text(int y, int x, int width, enum console_style st, const char *text);
/* Draws text at (y, x) as wide as it is (at most maxw cells); returns the cells used. */
int console_draw_str(int y, int x, int maxw, enum console_style st, const char *text);
/* Paints row y from x to the right edge in style (spaces). */
void console_draw_fill(int y, int x, enum console_style st);

#endif
