/* admin_line.c: one command line into words, without surprises for odd bytes. */
#include "adapters/admin/admin_line.h"

#include "core/xmalloc.h"

#include <stdlib.h>
#include <string.h>

/*
 * Length of the UTF-8 sequence at p (at most n bytes), 0 if it is not one. The same
 * rules as jansson's, so that every word can travel back in a JSON reply: no overlong
 * forms, no surrogates, nothing above U+10FFFF.
 */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	static const struct {
		unsigned char lead_min, lead_max; /* first byte range */
		unsigned char next_min, next_max; /* allowed second byte for these leads */
		size_t len;
	} forms[] = {
	    {0x00, 0x7f, 0x00, 0x00, 1}, {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3},
	    {0xe1, 0xec, 0x80, 0xbf, 3}, {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3},
	    {0xf0, 0xf0, 0x90, 0xbf, 4}, {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
	};
	for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
		if (p[0] < forms[f].lead_min || p[0] > forms[f].lead_max)
			continue;
		size_t len = forms[f].len;
		if (len > n)
			return 0;
		if (len > 1 && (p[1] < forms[f].next_min || p[1] > forms[f].next_max))
			return 0;
		for (size_t i = 2; i < len; i++)
			if (p[i] < 0x80 || p[i] > 0xbf)
				return 0;
		return len;
	}
	return 0;
}

static bool valid_text(const char *s, size_t len, struct hex_err *err)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		if (p[i] == '\0') {
			hex_fail(err, HEX_INVALID, NULL, "the line contains a NUL byte");
			return false;
		}
		size_t n = utf8_seq(p + i, len - i);
		if (n == 0) {
			hex_fail(err, HEX_INVALID, NULL, "the line is not valid UTF-8 text");
			return false;
		}
		i += n;
	}
	return true;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

void admin_line_free(int argc, char *argv[])
{
	for (int i = 0; i < argc; i++) {
		free(argv[i]);
		argv[i] = NULL;
	}
}

enum hex_status admin_line_split(const char *line, size_t len, int *argc,
                                 char *argv[ADMIN_ARGS_MAX], struct hex_err *err)
{
	enum hex_status st = HEX_OK;
	/* A word is never longer than the line, so one buffer of that size holds it. */
	char *word = NULL;
	int n = 0;
	*argc = 0;
	if (!valid_text(line, len, err)) {
		st = HEX_INVALID;
		goto out;
	}
	word = xmalloc(len + 1);
	size_t i = 0;
	for (;;) {
		while (i < len && is_blank(line[i]))
			i++;
		if (i == len)
			break;
		if (n == ADMIN_ARGS_MAX) {
			st = hex_fail(err, HEX_INVALID, NULL, "more than %d words on one line",
			              ADMIN_ARGS_MAX);
			goto out;
		}
		size_t w = 0;
		bool quoted = false;
		for (; i < len && (quoted || !is_blank(line[i])); i++) {
			char c = line[i];
			if (c == '"') {
				quoted = !quoted;
			} else if (quoted && c == '\\' && i + 1 < len &&
			           (line[i + 1] == '"' || line[i + 1] == '\\')) {
				word[w++] = line[++i];
			} else {
				word[w++] = c;
			}
		}
		if (quoted) {
			st = hex_fail(err, HEX_INVALID, NULL, "a double quote is not closed");
			goto out;
		}
		argv[n++] = xstrndup(word, w);
	}
	*argc = n;
out:
	if (st != HEX_OK)
		admin_line_free(n, argv);
	free(word);
	return st;
}
