/*
 * audit_repo: the append-only record of what operators did through the admin port (who,
 * when, which verb with which arguments, and whether it worked). Rows are never changed
 * or deleted: the store itself refuses it.
 */
#ifndef HEX_PORT_AUDIT_REPO_H
#define HEX_PORT_AUDIT_REPO_H

#include "core/user.h"

#define AUDIT_OPERATOR_MAX 63
#define AUDIT_VERB_MAX     31
#define AUDIT_ARGS_MAX     1023
#define AUDIT_ERROR_MAX    199

struct audit_entry {
	int64_t id; /* chosen by the store, increasing: the keyset order */
	int64_t at_us;
	char operator_name[AUDIT_OPERATOR_MAX + 1];
	char verb[AUDIT_VERB_MAX + 1];
	char args[AUDIT_ARGS_MAX + 1]; /* the arguments as typed, "" for none */
	bool ok;
	char error[AUDIT_ERROR_MAX + 1]; /* why it failed; "" when ok */
};

/* One page, newest first; the next cursor is the last row's id. */
struct audit_page {
	int count;
	bool has_more;
	struct audit_entry items[HEX_LIST_MAX];
};

struct audit_repo_ops {
	/* Appends e as given (its id is ignored); out_id gets the new row's id. */
	enum hex_status (*append)(void *self, const struct audit_entry *e, int64_t *out_id);
	/* Up to limit (1..HEX_LIST_MAX) rows with an id below before_id (0: from the newest),
	 * newest first. */
	enum hex_status (*list)(void *self, int limit, int64_t before_id, struct audit_page *out);
};

struct audit_repo {
	const struct audit_repo_ops *ops;
	void *self;
};

#endif
