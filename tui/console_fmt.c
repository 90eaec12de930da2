/* console_fmt: display-safe, cell-counted text for the console. */
#include "tui/console_fmt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wchar.h>

static bool fmt_utf8;

void console_fmt_set_utf8(bool on)
{
	fmt_utf8 = on;
}

bool console_fmt_utf8(void)
{
	return fmt_utf8;
}

/*
 * One character of s: *out gets the bytes to show (NUL-terminated, at most 4), *cells
 * their width; returns the bytes of s it used (0 at the end of s). Decoded by hand so
 * that bad input never depends on mbrtowc's state.
 */
static size_t fmt_next(const char *s, char out[5], int *cells)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	size_t len, i;

	if (*p == '\0')
		return 0;
	if (*p < 0x80) {
		out[0] = (*p < 0x20 || *p == 0x7f) ? ' ' : (char)*p;
		out[1] = '\0';
		*cells = 1;
		return 1;
	}
	if (!fmt_utf8)
		goto bad1;
	if ((*p & 0xe0) == 0xc0) {
		len = 2;
		cp = *p & 0x1f;
	} else if ((*p & 0xf0) == 0xe0) {
		len = 3;
		cp = *p & 0x0f;
	} else if ((*p & 0xf8) == 0xf0) {
		len = 4;
		cp = *p & 0x07;
	} else {
		goto bad1;
	}
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			goto bad1;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* Overlong forms, surrogates and C1 controls never reach the terminal. */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		goto bad1;
	if (cp < 0xa0) {
		out[0] = ' ';
		out[1] = '\0';
		*cells = 1;
		return len;
	}
	int w = wcwidth((wchar_t)cp);
	if (w < 0)
		goto badn;
	memcpy(out, s, len);
	out[len] = '\0';
	*cells = w;
	return len;
badn:
	out[0] = '?';
	out[1] = '\0';
	*cells = 1;
	return len;
bad1:
	out[0] = '?';
	out[1] = '\0';
	*cells = 1;
	return 1;
}

int console_fmt_cells(const char *s)
{
	char ch[5];
	int cells, total = 0;
	size_t k;

	while ((k = fmt_next(s, ch, &cells)) > 0) {
		total += cells;
		s += k;
	}
	return total;
}

void console_fmt_fit(char *dst, size_t n, const char *src, int width, bool right)
{
	const char *marker = fmt_utf8 ? "\xe2\x80\xa6" : "~";
	char ch[5];
	int cells, used = 0, pad;
	size_t k, len = 0, mlen;
	const char *s = src ? src : "";

	if (n == 0)
		return;
	dst[0] = '\0';
	if (width <= 0)
		return;
	int total = console_fmt_cells(s);
	int room = total > width ? width - 1 : width; /* a cut text keeps a cell for the mark */
	pad = total < width ? width - total : 0;
	if (right) {
		for (; pad > 0 && len + 1 < n; pad--)
			dst[len++] = ' ';
	}
	while ((k = fmt_next(s, ch, &cells)) > 0) {
		size_t clen = strlen(ch);
		if (used + cells > room || len + clen + 1 > n)
			break;
		memcpy(dst + len, ch, clen);
		len += clen;
		used += cells;
		s += k;
	}
	if (total > width) {
		/* A wide character may have left a cell before the mark. */
		for (; used < width - 1 && len + 1 < n; used++)
			dst[len++] = ' ';
		mlen = strlen(marker);
		if (len + mlen + 1 <= n) {
			memcpy(dst + len, marker, mlen);
			len += mlen;
		}
	}
	if (!right) {
		for (; pad > 0 && len + 1 < n; pad--)
			dst[len++] = ' ';
	}
	dst[len] = '\0';
}

size_t console_fmt_prefix(const char *s, int width, bool word)
{
	char ch[5];
	int cells, used = 0;
	size_t k, len = 0, last_space = 0;

	while (s[len] != '\0' && s[len] != '\n') {
		k = fmt_next(s + len, ch, &cells);
		if (used + cells > width)
			break;
		used += cells;
		len += k;
		if (s[len - 1] == ' ')
			last_space = len;
	}
	if (word && s[len] != '\0' && s[len] != '\n' && last_space > 0)
		return last_space;
	if (len == 0 && s[0] != '\0' && s[0] != '\n')
		return fmt_next(s, ch, &cells); /* wider than the whole row: one char anyway */
	return len;
}

/* Minor-unit exponents that are not 2 (Stripe's lists). */
static const struct {
	const char *code;
	int decimals;
} fmt_currency_decimals[] = {
    {"bif", 0}, {"clp", 0}, {"djf", 0}, {"gnf", 0}, {"jpy", 0}, {"kmf", 0}, {"krw", 0},
    {"mga", 0}, {"pyg", 0}, {"rwf", 0}, {"ugx", 0}, {"vnd", 0}, {"vuv", 0}, {"xaf", 0},
    {"xof", 0}, {"xpf", 0}, {"bhd", 3}, {"jod", 3}, {"kwd", 3}, {"omr", 3}, {"tnd", 3},
};

void console_fmt_money(char *dst, size_t n, long long amount, const char *currency)
{
	int decimals = 2;
	long long scale = 1;
	unsigned long long mag;
	const char *cur = currency ? currency : "";

	for (size_t i = 0; i < sizeof fmt_currency_decimals / sizeof fmt_currency_decimals[0];
	     i++) {
		if (strcasecmp(cur, fmt_currency_decimals[i].code) == 0)
			decimals = fmt_currency_decimals[i].decimals;
	}
	for (int i = 0; i < decimals; i++)
		scale *= 10;
	/* Through unsigned so that LLONG_MIN has a magnitude too. */
	mag = amount < 0 ? 0ULL - (unsigned long long)amount : (unsigned long long)amount;
	if (decimals == 0)
		snprintf(dst, n, "%s%llu%s%s", amount < 0 ? "-" : "", mag, *cur ? " " : "", cur);
	else
		snprintf(dst, n, "%s%llu.%0*llu%s%s", amount < 0 ? "-" : "", mag / scale, decimals,
		         mag % scale, *cur ? " " : "", cur);
}

void console_fmt_age(char *dst, size_t n, long long s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(dst, n, "%llds", s);
	else if (s < 3600)
		snprintf(dst, n, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(dst, n, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(dst, n, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

void console_fmt_time(char *dst, size_t n, const char *t, bool short_form)
{
	if (t == NULL || *t == '\0') {
		snprintf(dst, n, "-");
		return;
	}
	/* 2024-06-01T12:34:56... : only the shape is checked, the text is hexd's. */
	if (strlen(t) < 19 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' ||
	    t[16] != ':') {
		snprintf(dst, n, "%s", t);
		return;
	}
	if (short_form)
		snprintf(dst, n, "%.5s %.5s", t + 5, t + 11);
	else
		snprintf(dst, n, "%.10s %.8s", t, t + 11);
}

void console_fmt_scalar(char *dst, size_t n, const json_t *v)
{
	if (v == NULL || json_is_null(v))
		snprintf(dst, n, "-");
	else if (json_is_string(v))
		snprintf(dst, n, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(dst, n, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(dst, n, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(dst, n, "%s", json_is_true(v) ? "yes" : "no");
	else
		snprintf(dst, n, "%s", json_is_array(v) ? "[...]" : "{...}");
}

void console_fmt_member(char *dst, size_t n, const json_t *obj, const char *key)
{
	console_fmt_scalar(dst, n, json_is_object(obj) ? json_object_get(obj, key) : NULL);
}

const char *console_fmt_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : "";
}

long long console_fmt_int(const json_t *obj, const char *key, long long dflt)
{
	const json_t *v = json_object_get(obj, key);
	char *end;

	if (json_is_integer(v))
		return (long long)json_integer_value(v);
	if (json_is_real(v))
		return (long long)json_real_value(v);
	if (json_is_string(v) && *json_string_value(v)) {
		long long x = strtoll(json_string_value(v), &end, 10);
		if (*end == '\0')
			return x;
	}
	return dflt;
}

double console_fmt_num(const json_t *obj, const char *key, double dflt)
{
	const json_t *v = json_object_get(obj, key);
	return json_is_number(v) ? json_number_value(v) : dflt;
}

void console_fmt_spark(char *dst, size_t n, const double *v, int count, int capacity, int width,
                       bool peak)
{
	static const char *const blocks[] = {"\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83",
	                                     "\xe2\x96\x84", "\xe2\x96\x85", "\xe2\x96\x86",
	                                     "\xe2\x96\x87", "\xe2\x96\x88"};
	static const char ascii[] = ".:-=+*#@";
	double cell[512], top = 0;
	bool have[512];
	size_t len = 0;

	if (n == 0)
		return;
	dst[0] = '\0';
	if (width <= 0)
		return;
	if (width > 512)
		width = 512;
	if (capacity < 1)
		capacity = 1;
	int per = (capacity + width - 1) / width;
	if (per < 1)
		per = 1;
	/* Cell c (0 = leftmost) covers the samples ending (width - 1 - c) * per before now. */
	for (int c = 0; c < width; c++) {
		int end = count - (width - 1 - c) * per; /* exclusive */
		int start = end - per;
		double sum = 0;
		int k = 0;
		cell[c] = 0;
		for (int i = start < 0 ? 0 : start; i < end; i++, k++) {
			sum += v[i];
			if (k == 0 || v[i] > cell[c])
				cell[c] = v[i];
		}
		have[c] = k > 0;
		if (!peak && k > 0)
			cell[c] = sum / k;
		if (have[c] && cell[c] > top)
			top = cell[c];
	}
	for (int c = 0; c < width; c++) {
		const char *glyph = " ";
		char one[2] = {0, 0};
		if (have[c] && cell[c] > 0 && top > 0) {
			int level =
			    (int)(cell[c] / top * 7.999) /* non-negative: truncation is floor */;
			level = level < 0 ? 0 : level > 7 ? 7 : level;
			if (fmt_utf8) {
				glyph = blocks[level];
			} else {
				one[0] = ascii[level];
				glyph = one;
			}
		}
		size_t glen = strlen(glyph);
		if (len + glen + 1 > n)
			break;
		memcpy(dst + len, glyph, glen);
		len += glen;
	}
	dst[len] = '\0';
}
