/*
 * console_fmt: text for the console's cells. Everything hexd sends is data, not terminal
 * input: control characters never reach the terminal, and widths are counted in display
 * cells (a wide character takes two), so a row never spills into the next.
 */
#ifndef HEX_TUI_CONSOLE_FMT_H
#define HEX_TUI_CONSOLE_FMT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Bytes a fitted cell may need: 4 per display cell plus the NUL. */
#define CONSOLE_FMT_MAX(width) ((size_t)(width)*4 + 8)

/* Whether the terminal takes UTF-8 (set once from the locale by the console). */
void console_fmt_set_utf8(bool on);
bool console_fmt_utf8(void);

/*
 * dst (size n) gets src made exactly width cells wide: control characters become spaces,
 * undecodable bytes '?', a longer text is cut with a marker ('~', or an ellipsis in
 * UTF-8), a shorter one padded on the right (or on the left when right is set). dst is
 * cut short, never overrun, when n is below CONSOLE_FMT_MAX(width).
 */
void console_fmt_fit(char *dst, size_t n, const char *src, int width, bool right);

/* Display cells of s as console_fmt_fit shows it. */
int console_fmt_cells(const char *s);

/*
 * How many bytes of s fit in width cells, stopping at a newline; for wrapping.
 * When word is set and the text goes on, the cut moves back to after the last space
 * (unless that leaves nothing).
 */
size_t console_fmt_prefix(const char *s, int width, bool word);

/* "10.99 usd" from minor units (zero- and three-decimal currencies too). */
void console_fmt_money(char *dst, size_t n, long long amount, const char *currency);
/* "42s", "5m07s", "3h04m", "2d03h". */
void console_fmt_age(char *dst, size_t n, long long seconds);
/* An RFC 3339 time as "2024-06-01 12:34:56" (short: "06-01 12:34"); other text as is. */
void console_fmt_time(char *dst, size_t n, const char *rfc3339, bool short_form);
/* Any JSON scalar as text: strings as they are, null as "-". */
void console_fmt_scalar(char *dst, size_t n, const json_t *v);
/* A member of obj as text ("-" when missing or null). */
void console_fmt_member(char *dst, size_t n, const json_t *obj, const char *key);
/* A string member of obj, or "" (never NULL). */
const char *console_fmt_str(const json_t *obj, const char *key);
/* An integer (or integral real, or decimal string) member of obj, or dflt. */
long long console_fmt_int(const json_t *obj, const char *key, long long dflt);
/* A number member of obj, or dflt. */
double console_fmt_num(const json_t *obj, const char *key, double dflt);

/*
 * A sparkline width cells wide of the last samples of v (count values, oldest first, of
 * a history that holds at most capacity): each cell stands for ceil(capacity / width)
 * samples, newest on the right, as their largest (peak: latencies, where the spike is the
 * news) or their mean (rates), scaled to the largest cell; a cell with no sample or only
 * zeros is blank. Block characters in UTF-8, else ".:-=+*#@".
 */
void console_fmt_spark(char *dst, size_t n, const double *v, int count, int capacity, int width,
                       bool peak);

#endif
