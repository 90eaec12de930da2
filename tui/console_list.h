/*
 * console_list: the list/detail widget every console screen is built from. The list
 * shows JSON items in columns declared by a table, pages through hexd's keyset cursors
 * on demand (moving past the last loaded row loads the next page), keeps the selection
 * on the same item across reloads, and finds text in its rows. The detail is a scrolling
 * text view of one item that the screen fills; Esc closes it.
 */
#ifndef HEX_TUI_CONSOLE_LIST_H
#define HEX_TUI_CONSOLE_LIST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/hex.h"
#include "tui/console_draw.h"

struct console;
struct console_list;

/* The text of one cell (width cells wide at most) for item's member key. */
typedef void (*console_list_cell_fn)(const struct console_list *l, const json_t *item,
                                     const char *key, int width, char *buf, size_t n);

struct console_column {
	const char *title;
	const char *key; /* the item member the cell shows */
	int width;       /* cells; 0: whatever the other columns leave (one column at most) */
	bool right;      /* right-aligned (numbers) */
	console_list_cell_fn cell; /* NULL: console_list_cell_text */
};

/* Shared cells. */
void console_list_cell_text(const struct console_list *l, const json_t *item, const char *key,
                            int width, char *buf, size_t n);
/* A time as "06-01 12:34" when narrower than 19 cells, else "2024-06-01 12:34:56". */
void console_list_cell_time(const struct console_list *l, const json_t *item, const char *key,
                            int width, char *buf, size_t n);
/* key holds minor units; the item's "currency" says which. */
void console_list_cell_money(const struct console_list *l, const json_t *item, const char *key,
                             int width, char *buf, size_t n);
/* An id: a UUID as a mark and its last 7 characters (enough to tell rows apart; the
 * detail shows it whole), anything else whole. */
void console_list_cell_short(const struct console_list *l, const json_t *item, const char *key,
                             int width, char *buf, size_t n);
/* The first line of a long text. */
void console_list_cell_line(const struct console_list *l, const json_t *item, const char *key,
                            int width, char *buf, size_t n);

/*
 * Loads one page from hexd: cursor NULL is the first page. On HEX_OK, *items is a new
 * array reference and *next a malloc'ed cursor or NULL on the last page.
 */
typedef enum hex_status (*console_list_load_fn)(void *owner, struct console *con,
                                                const char *cursor, json_t **items, char **next);
/*
 * For loaders: runs the list verb fmt builds plus " LIMIT <page> [CURSOR <cursor>]" and
 * splits its {"items","next_cursor"} reply into *items (new reference) and *next
 * (malloc'ed or NULL). Errors are on the message row.
 */
enum hex_status console_list_call_page(struct console *con, const char *cursor, json_t **items,
                                       char **next, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* As console_list_call_page's second half, for a reply already in hand (data stolen). */
enum hex_status console_list_take_page(struct console *con, json_t *data, json_t **items,
                                       char **next);

/* A row's style when not selected (stuck payments ...); NULL: normal. */
typedef enum console_style (*console_row_style_fn)(const struct console_list *l,
                                                   const json_t *item);

struct console_line {
	enum console_style style;
	int indent;
	char *text; /* owned */
};

struct console_list {
	const struct console_column *cols;
	int ncols;
	console_list_load_fn load; /* NULL: the owner sets items itself */
	console_row_style_fn row_style;
	void *owner;
	const char *empty;  /* what an empty list says */
	const char *id_key; /* the member that names an item ("id") */

	json_t *items; /* array, owned */
	char *next;    /* owned; NULL: nothing more to load */
	bool loaded;
	int sel, top;
	int rows; /* item rows shown at the last draw */
	char find[128];

	bool detail;
	struct console_line *lines;
	int nlines, cap;
	int dtop;
	int drows, dtotal; /* of the last draw */
};

void console_list_init(struct console_list *l, const struct console_column *cols, int ncols,
                       console_list_load_fn load, void *owner, const char *empty);
/* Frees the items and the detail; the list can be used again. */
void console_list_clear(struct console_list *l);

/*
 * Loads the first page again, keeping the selection on the same item (by id_key) when it
 * is still there. On failure the old rows stay (the console showed why).
 */
enum hex_status console_list_reload(struct console_list *l, struct console *con);
/* Takes items (stolen, an array) as the whole list: for lists the owner builds. */
void console_list_set_items(struct console_list *l, json_t *items);
/* The selected item (borrowed), or NULL. */
const json_t *console_list_selected(const struct console_list *l);
int console_list_count(const struct console_list *l);
/* "3/50", "3/50+" (more pages), "" when empty. */
void console_list_position(const struct console_list *l, char *buf, size_t n);

/* Movement keys in the list or, when open, the detail; true if used. */
bool console_list_key(struct console_list *l, struct console *con, int key);
/* The list or, when open, the detail, at rows y .. y + rows - 1. */
void console_list_draw(struct console_list *l, struct console *con, int y, int rows, int cols);

/* Opens the `/` prompt; Enter finds the next row holding the text (case-insensitive),
 * loading further pages when the loaded ones do not have it. */
void console_list_prompt_find(struct console_list *l, struct console *con);
/* Finds text from the row after the selection on; true if found (and selected). */
bool console_list_find(struct console_list *l, struct console *con, const char *text);

/* The detail view: cleared, filled line by line, opened. Lines wrap to the screen. */
void console_list_detail_clear(struct console_list *l);
void console_list_detail_add(struct console_list *l, enum console_style st, int indent,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A multi-line text as lines (split on newlines). */
void console_list_detail_text(struct console_list *l, enum console_style st, int indent,
                              const char *text);
/* "  label  value" rows: value of obj's member key. */
void console_list_detail_field(struct console_list *l, const char *label, const json_t *obj,
                               const char *key);
void console_list_detail_open(struct console_list *l);
void console_list_detail_close(struct console_list *l);

#endif
