/*
 * admin_call: one admin-port command as it travels from the admin loop thread (which owns
 * the connection and parsed the line) to an admin worker thread (which runs the verb) and
 * back. The verb reads argv and sets exactly one of a result (admin_ok) or an error
 * (admin_fail / admin_fail_code). docs/ADMIN.md is the protocol.
 */
#ifndef HEX_ADMIN_CALL_H
#define HEX_ADMIN_CALL_H

#include <jansson.h>

#include "core/services.h"

#define ADMIN_ARGS_MAX     32
#define ADMIN_OPERATOR_MAX 63

/* What the daemon tells the admin verbs about the process (STATS, EVENTS LAG). */
struct admin_process_ops {
	/* The STATS object (without the events part), new reference. */
	json_t *(*stats)(void *self);
};

struct admin_process {
	const struct admin_process_ops *ops;
	void *self;
};

/* Everything a verb may use: the worker's services and the process facts. */
struct admin_env {
	struct hex_services *svc;
	struct admin_process process;
};

struct admin_call {
	/* The command: argv[0] is the verb, argv[1] the sub-verb when the verb has one,
	 * then the arguments as typed (quotes removed). Owned by the call. */
	int argc;
	char *argv[ADMIN_ARGS_MAX];
	int first; /* argv index of the first argument (after the verb's one or two words) */
	char operator_name[ADMIN_OPERATOR_MAX + 1];
	const struct admin_verb *verb;

	/* The outcome. */
	bool done;
	json_t *data;           /* owned: the "data" of an ok reply */
	enum hex_status status; /* of a failure */
	struct hex_err err;     /* message and field of a failure */
	const char *code;       /* a protocol code for a failure, or NULL: derived from status */
};

typedef void (*admin_verb_fn)(struct admin_call *c, struct admin_env *env);

struct admin_verb {
	const char *name;       /* "DLQ REPLAY": one or two upper-case words */
	const char *usage;      /* "DLQ REPLAY <id>" */
	const char *summary;    /* one line for HELP */
	bool mutating;          /* written to the audit log */
	int min_args, max_args; /* words after the verb name(s); max -1: any number */
	admin_verb_fn exec;     /* NULL: handled by the server itself (QUIT, SUBSCRIBE ...) */
};

/* The table, in HELP order (adapters/admin/admin_verbs.c). */
extern const struct admin_verb admin_verbs[];
extern const int admin_verb_count;

/* The verb a command line's words name (one or two words, any case); NULL if none.
 * *nwords gets how many words the name took. */
const struct admin_verb *admin_verb_find(int argc, char *const *argv, int *nwords);

/*
 * On an admin worker thread: checks the argument count against c->verb, runs it, and
 * for a mutating verb writes the audit row (operator, verb, args, outcome) after it.
 * Always leaves c->done set with exactly one outcome.
 */
void admin_run(struct admin_call *c, struct admin_env *env);

/* Outcomes: data is stolen. */
void admin_ok(struct admin_call *c, json_t *data);
void admin_fail(struct admin_call *c, enum hex_status st, const struct hex_err *err);
void admin_fail_code(struct admin_call *c, const char *code, const char *field, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

/* The reply line for c (one JSON object, no newline), malloc'ed. */
char *admin_reply_line(const struct admin_call *c);

#endif
