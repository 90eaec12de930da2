/*
 * admin_opts: the named options of the admin verbs (`LIMIT n`, `CURSOR c`, `STATUS s`,
 * `USER id`, `Q text`, the flag `ALL`; names in any case, values as typed) and the
 * arguments that are ids. Every *_or_fail function has already set the call's error
 * reply when it returns false (invalid_argument naming the field).
 */
#ifndef HEX_ADMIN_OPTS_H
#define HEX_ADMIN_OPTS_H

#include "adapters/admin/admin_call.h"

#define ADMIN_LIMIT_DEFAULT 20

enum admin_opt {
	ADMIN_OPT_LIMIT = 1u << 0,
	ADMIN_OPT_CURSOR = 1u << 1,
	ADMIN_OPT_STATUS = 1u << 2,
	ADMIN_OPT_USER = 1u << 3,
	ADMIN_OPT_Q = 1u << 4,
	ADMIN_OPT_ALL = 1u << 5,
	ADMIN_OPT_PAGING = ADMIN_OPT_LIMIT | ADMIN_OPT_CURSOR,
};

/* What a command line set; strings are borrowed from its argv. */
struct admin_opts {
	int limit;                              /* ADMIN_LIMIT_DEFAULT unless LIMIT */
	const char *cursor, *status, *user, *q; /* NULL when absent */
	bool all;
};

/*
 * Reads the options in c->argv[c->first + from ..]: only those in allowed, each once,
 * LIMIT 1..HEX_LIST_MAX. Fails with field "args" for a word that is no allowed option, or
 * the option's own field ("limit", "cursor", "status", "user_id", "q") when it is given
 * twice, has no value or LIMIT is out of range.
 */
bool admin_opts_parse_or_fail(struct admin_call *c, int from, unsigned allowed,
                              struct admin_opts *out);

/* A UUID (either case), else fails naming field. */
bool admin_opts_uuid_or_fail(struct admin_call *c, const char *text, const char *field);

/* A whole decimal number 1..INT64_MAX, else fails naming field. */
bool admin_opts_id_or_fail(struct admin_call *c, const char *text, const char *field, int64_t *out);

/* text made safe to quote in an error message: printable ASCII, at most 40 characters. */
void admin_opts_echo(const char *text, char out[48]);

#endif
