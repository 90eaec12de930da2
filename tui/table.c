/* table.c: admin replies for people: columns for lists, "key: value" for objects. */
#include "tui/table.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/xmalloc.h"

#define INDENT_STEP 2
#define COLUMN_GAP  2
#define MIN_CUT     4 /* a cut column keeps at least this many characters */
#define ELLIPSIS    "\xe2\x80\xa6"

/* ---- text of one value */

/* Terminal control: C0, DEL and the C1 range (UTF-8 C2 80..C2 9F, e.g. CSI 0x9b). */
static size_t control_len(const unsigned char *s)
{
	if (s[0] < 0x20 || s[0] == 0x7f)
		return 1;
	if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)
		return 2;
	return 0;
}

/*
 * s with every control character replaced: line breaks by keep_nl (0: a space), tabs by
 * a space, anything else by '?'. malloc'ed.
 */
static char *sanitized(const char *s, char keep_nl)
{
	size_t n = strlen(s);
	char *out = xmalloc(n + 1);
	char *p = out;
	while (*s != '\0') {
		size_t cl = control_len((const unsigned char *)s);
		if (cl == 0) {
			*p++ = *s++;
			continue;
		}
		if (*s == '\n')
			*p++ = keep_nl ? '\n' : ' ';
		else if (*s == '\t')
			*p++ = ' ';
		else
			*p++ = '?';
		s += cl;
	}
	*p = '\0';
	return out;
}

static bool is_scalar(const json_t *v)
{
	return !json_is_object(v) && !json_is_array(v);
}

static bool all_scalars(const json_t *arr)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		if (!is_scalar(v))
			return false;
	}
	return true;
}

static char *scalar_text(const json_t *v, char keep_nl)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		return sanitized(json_string_value(v), keep_nl);
	case JSON_INTEGER:
		return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	case JSON_REAL:
		return xasprintf("%.10g", json_real_value(v));
	case JSON_TRUE:
		return xstrdup("true");
	case JSON_FALSE:
		return xstrdup("false");
	default:
		return xstrdup("-");
	}
}

/* Any value as one line: scalars as such, lists of scalars joined, the rest as JSON. */
static char *value_text(const json_t *v, char keep_nl)
{
	if (is_scalar(v))
		return scalar_text(v, keep_nl);
	if (json_is_array(v) && all_scalars(v)) {
		char *acc = xstrdup("");
		size_t i;
		json_t *item;
		json_array_foreach(v, i, item)
		{
			char *t = scalar_text(item, 0);
			char *next = xasprintf("%s%s%s", acc, i ? ", " : "", t);
			free(t);
			free(acc);
			acc = next;
		}
		return acc;
	}
	char *raw = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	char *out = sanitized(raw != NULL ? raw : "?", 0);
	free(raw);
	return out;
}

/* Display columns of UTF-8 text: one per code point (wide scripts may misalign). */
static size_t text_width(const char *s)
{
	size_t w = 0;
	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* Prints s in exactly width columns: cut with an ellipsis, padded unless last. */
static void print_cell(FILE *out, const char *s, size_t width, bool last)
{
	size_t w = text_width(s);
	if (w <= width) {
		fputs(s, out);
		if (!last)
			fprintf(out, "%*s", (int)(width - w), "");
		return;
	}
	if (width == 0)
		return;
	size_t keep = width - 1, seen = 0;
	const char *p = s;
	while (*p != '\0') {
		if (((unsigned char)*p & 0xc0) != 0x80) {
			if (seen == keep)
				break;
			seen++;
		}
		p++;
	}
	fwrite(s, 1, (size_t)(p - s), out);
	fputs(ELLIPSIS, out);
}

/* ---- lists as columns */

struct columns {
	size_t n;
	const char **keys; /* borrowed from the items */
	size_t *width;
};

static void columns_collect(struct columns *cols, const json_t *items)
{
	size_t i;
	json_t *item;
	json_array_foreach(items, i, item)
	{
		const char *key;
		json_t *v;
		json_object_foreach((json_t *)item, key, v)
		{
			size_t k = 0;
			while (k < cols->n && strcmp(cols->keys[k], key) != 0)
				k++;
			if (k == cols->n) {
				cols->keys =
				    xrealloc(cols->keys, (cols->n + 1) * sizeof *cols->keys);
				cols->keys[cols->n++] = key;
			}
		}
	}
	cols->width = xcalloc(cols->n, sizeof *cols->width);
}

/*
 * Narrows the widest columns to a common cap so the row fits: the largest cap whose
 * total fits wins, columns under it keep their width. A row that cannot fit even at
 * MIN_CUT is left to wrap.
 */
static void columns_fit(struct columns *cols, int width, int indent)
{
	if (width <= 0 || cols->n == 0)
		return;
	long avail = (long)width - indent - (long)(COLUMN_GAP * (cols->n - 1));
	size_t widest = 0, total = 0;
	for (size_t k = 0; k < cols->n; k++) {
		total += cols->width[k];
		if (cols->width[k] > widest)
			widest = cols->width[k];
	}
	if ((long)total <= avail)
		return;
	size_t cap = MIN_CUT;
	for (size_t try = widest; try > MIN_CUT; try--) {
		size_t sum = 0;
		for (size_t k = 0; k < cols->n; k++)
			sum += cols->width[k] < try ? cols->width[k] : try;
		if ((long)sum <= avail) {
			cap = try;
			break;
		}
	}
	for (size_t k = 0; k < cols->n; k++)
		if (cols->width[k] > cap)
			cols->width[k] = cap;
}

static char *header_text(const char *key)
{
	char *h = sanitized(key, 0);
	for (char *p = h; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	return h;
}

static void print_row(FILE *out, char **cells, const struct columns *cols, int indent)
{
	fprintf(out, "%*s", indent, "");
	for (size_t k = 0; k < cols->n; k++) {
		if (k > 0)
			fprintf(out, "%*s", COLUMN_GAP, "");
		print_cell(out, cells[k], cols->width[k], k + 1 == cols->n);
	}
	fputc('\n', out);
}

static void print_object_rows(FILE *out, const json_t *items, int indent, int width)
{
	struct columns cols = {0};
	columns_collect(&cols, items);
	size_t rows = json_array_size(items) + 1;
	char **cells = xcalloc(rows * cols.n + 1, sizeof *cells);
	for (size_t k = 0; k < cols.n; k++)
		cells[k] = header_text(cols.keys[k]);
	for (size_t r = 1; r < rows; r++) {
		const json_t *item = json_array_get(items, r - 1);
		for (size_t k = 0; k < cols.n; k++) {
			const json_t *v = json_object_get(item, cols.keys[k]);
			cells[r * cols.n + k] = v != NULL ? value_text(v, 0) : xstrdup("");
		}
	}
	for (size_t i = 0; i < rows * cols.n; i++) {
		size_t w = text_width(cells[i]);
		if (w > cols.width[i % cols.n])
			cols.width[i % cols.n] = w;
	}
	columns_fit(&cols, width, indent);
	for (size_t r = 0; r < rows; r++)
		print_row(out, cells + r * cols.n, &cols, indent);
	for (size_t i = 0; i < rows * cols.n; i++)
		free(cells[i]);
	free(cells);
	free(cols.keys);
	free(cols.width);
}

static void print_lines(FILE *out, const char *text, int indent, int cont_indent)
{
	fprintf(out, "%*s", indent, "");
	for (const char *p = text; *p != '\0'; p++) {
		fputc(*p, out);
		if (*p == '\n')
			fprintf(out, "%*s", cont_indent, "");
	}
	fputc('\n', out);
}

static void print_value(FILE *out, const json_t *v, int indent, int width);

static void print_array(FILE *out, const json_t *arr, int indent, int width)
{
	if (json_array_size(arr) == 0) {
		fprintf(out, "%*s(none)\n", indent, "");
		return;
	}
	bool objects = true;
	size_t i;
	json_t *item;
	json_array_foreach(arr, i, item)
	{
		if (!json_is_object(item))
			objects = false;
	}
	if (objects) {
		print_object_rows(out, arr, indent, width);
		return;
	}
	json_array_foreach(arr, i, item)
	{
		print_value(out, item, indent, width);
	}
}

/* ---- objects as key: value */

static bool is_list_page(const json_t *v)
{
	return json_is_object(v) && json_is_array(json_object_get(v, "items")) &&
	       json_object_get(v, "next_cursor") != NULL;
}

static void print_list_page(FILE *out, const json_t *page, int indent, int width)
{
	const json_t *items = json_object_get(page, "items");
	if (json_array_size(items) == 0)
		fprintf(out, "%*s(no items)\n", indent, "");
	else
		print_array(out, items, indent, width);
	const char *cursor = json_string_value(json_object_get(page, "next_cursor"));
	if (cursor != NULL) {
		char *c = sanitized(cursor, 0);
		fprintf(out, "%*s-- more: repeat with CURSOR %s\n", indent, "", c);
		free(c);
	}
}

static bool is_inline(const json_t *v)
{
	return is_scalar(v) || (json_is_array(v) && all_scalars(v) && json_array_size(v) > 0) ||
	       (json_is_object(v) && json_object_size(v) == 0);
}

static void print_object(FILE *out, const json_t *obj, int indent, int width)
{
	if (is_list_page(obj)) {
		print_list_page(out, obj, indent, width);
		return;
	}
	size_t keyw = 0;
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v)
	{
		if (is_inline(v) && text_width(key) > keyw)
			keyw = text_width(key);
	}
	json_object_foreach((json_t *)obj, key, v)
	{
		char *k = sanitized(key, 0);
		if (is_inline(v)) {
			char *t = json_is_object(v) ? xstrdup("{}") : value_text(v, '\n');
			char *line =
			    xasprintf("%s:%*s%s", k, (int)(keyw - text_width(k) + 1), "", t);
			print_lines(out, line, indent, indent + (int)keyw + 2);
			free(line);
			free(t);
		} else if (json_is_array(v) && json_array_size(v) == 0) {
			fprintf(out, "%*s%s: (none)\n", indent, "", k);
		} else {
			fprintf(out, "%*s%s:\n", indent, "", k);
			print_value(out, v, indent + INDENT_STEP, width);
		}
		free(k);
	}
}

static void print_value(FILE *out, const json_t *v, int indent, int width)
{
	if (json_is_object(v)) {
		print_object(out, v, indent, width);
	} else if (json_is_array(v)) {
		print_array(out, v, indent, width);
	} else {
		char *t = scalar_text(v, '\n');
		print_lines(out, t, indent, indent);
		free(t);
	}
}

void table_print(FILE *out, const json_t *data, int width)
{
	print_value(out, data, 0, width);
}

int table_width(FILE *out)
{
	struct winsize ws;
	if (isatty(fileno(out)) && ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	const char *cols = getenv("COLUMNS");
	if (cols != NULL) {
		char *end = NULL;
		long n = strtol(cols, &end, 10);
		if (end != cols && *end == '\0' && n > 0 && n < 100000)
			return (int)n;
	}
	return 0;
}
