/* admin_opts.c: options and id arguments of the admin verbs. */
#include "adapters/admin/admin_opts.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum admin_opt opt;
	bool has_value;
	const char *field;
	size_t offset; /* of its value in struct admin_opts (has_value, but LIMIT) */
} options[] = {
    {"LIMIT", ADMIN_OPT_LIMIT, true, "limit", 0},
    {"CURSOR", ADMIN_OPT_CURSOR, true, "cursor", offsetof(struct admin_opts, cursor)},
    {"STATUS", ADMIN_OPT_STATUS, true, "status", offsetof(struct admin_opts, status)},
    {"USER", ADMIN_OPT_USER, true, "user_id", offsetof(struct admin_opts, user)},
    {"Q", ADMIN_OPT_Q, true, "q", offsetof(struct admin_opts, q)},
    {"ALL", ADMIN_OPT_ALL, false, "all", 0},
};
#define NOPTIONS (sizeof options / sizeof options[0])

void admin_opts_echo(const char *text, char out[48])
{
	size_t n = 0;
	for (; text[n] != '\0' && n < 40; n++)
		out[n] = text[n] >= 0x20 && text[n] < 0x7f ? text[n] : '?';
	if (text[n] != '\0') {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

static int option_named(const char *word)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (strcasecmp(word, options[i].name) == 0)
			return (int)i;
	return -1;
}

/* The allowed option names, for the message that refuses another word. */
static void allowed_names(unsigned allowed, char *out, size_t n)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < NOPTIONS; i++) {
		if (!(allowed & options[i].opt))
			continue;
		size_t len = strlen(options[i].name);
		if (used + len + 3 >= n)
			break;
		if (used > 0) {
			memcpy(out + used, ", ", 2);
			used += 2;
		}
		memcpy(out + used, options[i].name, len + 1);
		used += len;
	}
}

static bool limit_or_fail(struct admin_call *c, const char *text, int *out)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '+' || text[0] == '-' ||
	    v < 1 || v > HEX_LIST_MAX) {
		admin_fail_code(c, "invalid_argument", "limit",
		                "LIMIT must be a number from 1 to %d", HEX_LIST_MAX);
		return false;
	}
	*out = (int)v;
	return true;
}

bool admin_opts_parse_or_fail(struct admin_call *c, int from, unsigned allowed,
                              struct admin_opts *out)
{
	memset(out, 0, sizeof *out);
	out->limit = ADMIN_LIMIT_DEFAULT;
	unsigned seen = 0;
	for (int i = c->first + from; i < c->argc; i++) {
		int o = option_named(c->argv[i]);
		if (o < 0 || !(allowed & options[o].opt)) {
			char echo[48], names[96];
			admin_opts_echo(c->argv[i], echo);
			allowed_names(allowed, names, sizeof names);
			if (allowed == 0)
				admin_fail_code(c, "invalid_argument", "args",
				                "unexpected argument %s: usage: %s", echo,
				                c->verb->usage);
			else
				admin_fail_code(c, "invalid_argument", "args",
				                "unknown option %s (this verb takes %s)", echo,
				                names);
			return false;
		}
		if (seen & options[o].opt) {
			admin_fail_code(c, "invalid_argument", options[o].field,
			                "%s is given twice", options[o].name);
			return false;
		}
		seen |= options[o].opt;
		if (!options[o].has_value) {
			out->all = true;
			continue;
		}
		if (i + 1 >= c->argc) {
			admin_fail_code(c, "invalid_argument", options[o].field, "%s needs a value",
			                options[o].name);
			return false;
		}
		const char *value = c->argv[++i];
		if (options[o].opt == ADMIN_OPT_LIMIT) {
			if (!limit_or_fail(c, value, &out->limit))
				return false;
		} else {
			*(const char **)((char *)out + options[o].offset) = value;
		}
	}
	return true;
}

bool admin_opts_uuid_or_fail(struct admin_call *c, const char *text, const char *field)
{
	if (user_id_valid(text))
		return true;
	char echo[48];
	admin_opts_echo(text, echo);
	admin_fail_code(c, "invalid_argument", field, "%s is not a valid %s (a UUID)", echo, field);
	return false;
}

bool admin_opts_id_or_fail(struct admin_call *c, const char *text, const char *field, int64_t *out)
{
	char *end = NULL;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno == 0 && end != text && *end == '\0' && text[0] >= '0' && text[0] <= '9' &&
	    v > 0) {
		*out = v;
		return true;
	}
	char echo[48];
	admin_opts_echo(text, echo);
	admin_fail_code(c, "invalid_argument", field, "%s is not a valid %s (a whole number > 0)",
	                echo, field);
	return false;
}
