/*
 * admin_verbs.c: the verb table of the admin port (docs/ADMIN.md), the lookup of a
 * command's verb, and admin_run: argument count, the verb itself, then the audit row of
 * every mutating verb, whatever its outcome.
 */
#include "adapters/admin/admin_verbs.h"

#include "adapters/admin/admin_opts.h"
#include "core/logger.h"
#include "core/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* clang-format off */
const struct admin_verb admin_verbs[] = {
    {"PING", "PING", "check that hexd answers", false, 0, 0, admin_verbs_ops_ping},
    {"HELP", "HELP [verb]", "list the verbs, or those of one noun or verb", false, 0, 2,
     admin_verbs_ops_help},
    {"STATS", "STATS", "process, pools, cache and event backlog figures", false, 0, 0,
     admin_verbs_ops_stats},
    {"USERS LIST", "USERS LIST [LIMIT n] [CURSOR c]", "users, newest first", false, 0, 4,
     admin_verbs_users_list},
    {"USERS SEARCH", "USERS SEARCH <text> [LIMIT n] [CURSOR c]",
     "users whose email contains text (any case), newest first", false, 1, 5,
     admin_verbs_users_search},
    {"USERS SHOW", "USERS SHOW <id or email>",
     "a user with wallet, latest payments and latest messages", false, 1, 1,
     admin_verbs_users_show},
    {"USERS GRANT-ADMIN", "USERS GRANT-ADMIN <email>", "make a user an admin", true, 1, 1,
     admin_verbs_users_grant_admin},
    {"USERS REVOKE-ADMIN", "USERS REVOKE-ADMIN <email>", "make an admin a plain user", true, 1,
     1, admin_verbs_users_revoke_admin},
    {"MESSAGES LIST", "MESSAGES LIST [USER id] [Q text] [LIMIT n] [CURSOR c]",
     "messages of everyone or one user, newest first", false, 0, 8,
     admin_verbs_messages_list},
    {"MESSAGES SHOW", "MESSAGES SHOW <id>", "one message", false, 1, 1,
     admin_verbs_messages_show},
    {"PAYMENTS LIST", "PAYMENTS LIST [STATUS s] [USER id] [LIMIT n] [CURSOR c]",
     "payments, newest first", false, 0, 8, admin_verbs_payments_list},
    {"PAYMENTS STUCK", "PAYMENTS STUCK [LIMIT n]",
     "payments not settled 5 minutes after they were made, oldest first", false, 0, 2,
     admin_verbs_payments_stuck},
    {"PAYMENTS SHOW", "PAYMENTS SHOW <id>", "a payment and the Stripe events about it", false,
     1, 1, admin_verbs_payments_show},
    {"LEDGER ACCOUNTS", "LEDGER ACCOUNTS [LIMIT n] [CURSOR c]",
     "ledger accounts with balances, system accounts first", false, 0, 4,
     admin_verbs_ledger_accounts},
    {"LEDGER ENTRIES", "LEDGER ENTRIES <account_id> [LIMIT n] [CURSOR c]",
     "entries of one account, newest first", false, 1, 5, admin_verbs_ledger_entries},
    {"LEDGER VERIFY", "LEDGER VERIFY", "recompute every balance and check the books",
     false, 0, 0, admin_verbs_ledger_verify},
    {"DLQ LIST", "DLQ LIST [ALL] [LIMIT n] [CURSOR c]",
     "open dead letters (ALL: resolved too), newest first", false, 0, 5,
     admin_verbs_dlq_list},
    {"DLQ SHOW", "DLQ SHOW <id>", "a dead letter with its payload and attempts", false, 1,
     1, admin_verbs_dlq_show},
    {"DLQ REPLAY", "DLQ REPLAY <id>", "schedule a dead event again for its consumer", true,
     1, 1, admin_verbs_dlq_replay},
    {"DLQ DISCARD", "DLQ DISCARD <id> <reason>", "close a dead letter without replaying it",
     true, 2, -1, admin_verbs_dlq_discard},
    {"EVENTS LAG", "EVENTS LAG", "the event pipeline's backlog, per consumer", false, 0, 0,
     admin_verbs_ops_events_lag},
    {"CACHE STATS", "CACHE STATS", "user cache counters and cached users", false, 0, 0,
     admin_verbs_ops_cache_stats},
    {"CACHE FLUSH", "CACHE FLUSH [user_id]", "drop every cached user, or one", true, 0, 1,
     admin_verbs_ops_cache_flush},
    {"AUDIT LIST", "AUDIT LIST [LIMIT n] [CURSOR c]",
     "what operators changed through this port, newest first", false, 0, 4,
     admin_verbs_ops_audit_list},
    {"SUBSCRIBE", "SUBSCRIBE LATENCY|LOG", "stream latency ticks or log lines", false, 1, 1,
     NULL},
    {"UNSUBSCRIBE", "UNSUBSCRIBE [LATENCY|LOG]", "stop one stream, or all", false, 0, 1,
     NULL},
    {"QUIT", "QUIT", "close the connection", false, 0, 0, NULL},
};
/* clang-format on */

const int admin_verb_count = (int)(sizeof admin_verbs / sizeof admin_verbs[0]);

/* True if name is exactly the nwords words of argv, in any case. */
static bool name_is(const char *name, int nwords, char *const *argv)
{
	const char *p = name;
	for (int i = 0; i < nwords; i++) {
		size_t len = strlen(argv[i]);
		if (len == 0 || strncasecmp(p, argv[i], len) != 0)
			return false;
		p += len;
		if (i + 1 < nwords && *p++ != ' ')
			return false;
	}
	return *p == '\0';
}

const struct admin_verb *admin_verb_find(int argc, char *const *argv, int *nwords)
{
	/* Two words first: "USERS LIST" is a verb even though no verb is named "USERS". */
	for (int words = argc >= 2 ? 2 : 1; words >= 1 && argc >= 1; words--)
		for (int i = 0; i < admin_verb_count; i++)
			if (name_is(admin_verbs[i].name, words, argv)) {
				if (nwords != NULL)
					*nwords = words;
				return &admin_verbs[i];
			}
	if (nwords != NULL)
		*nwords = 0;
	return NULL;
}

const struct user admin_verbs_operator = {.role = ROLE_ADMIN};

const char *admin_verbs_arg(const struct admin_call *c, int i)
{
	int k = c->first + i;
	return i >= 0 && k < c->argc ? c->argv[k] : NULL;
}

void admin_verbs_reply(struct admin_call *c, json_t *data)
{
	if (data == NULL) {
		struct hex_err err = {0};
		hex_fail(&err, HEX_INTERNAL, NULL, "the reply of %s could not be encoded",
		         c->verb != NULL ? c->verb->name : "a verb");
		admin_fail(c, HEX_INTERNAL, &err);
		return;
	}
	admin_ok(c, data);
}

json_t *admin_verbs_push(json_t *arr, json_t *item)
{
	if (arr == NULL || item == NULL || json_array_append_new(arr, item) != 0) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

void admin_verbs_fail(struct admin_call *c, enum hex_status st, struct hex_err *err,
                      const char *field)
{
	if (field != NULL && err->field != NULL)
		err->field = field;
	admin_fail(c, st, err);
}

/* Field names the protocol uses for a missing argument, as the usage lines write them. */
static const char *const arg_fields[] = {"id", "email", "text", "account_id", "reason", "verb"};

/* The field of the first missing argument: the word that opens its usage placeholder
 * ("<id or email>" names "id"), if it is one of arg_fields; else "args". */
static const char *missing_field(const struct admin_verb *v, int nargs)
{
	const char *p = v->usage;
	for (int seen = 0; (p = strchr(p, '<')) != NULL; p++, seen++) {
		if (seen < nargs)
			continue;
		size_t len = strcspn(p + 1, " >|");
		for (size_t i = 0; i < sizeof arg_fields / sizeof arg_fields[0]; i++)
			if (strlen(arg_fields[i]) == len && strncmp(p + 1, arg_fields[i], len) == 0)
				return arg_fields[i];
		break;
	}
	return "args";
}

static bool count_ok_or_fail(struct admin_call *c)
{
	const struct admin_verb *v = c->verb;
	int nargs = c->argc - c->first;
	if (nargs < v->min_args) {
		admin_fail_code(c, "invalid_argument", missing_field(v, nargs),
		                "missing argument: usage: %s", v->usage);
		return false;
	}
	if (v->max_args >= 0 && nargs > v->max_args) {
		admin_fail_code(c, "invalid_argument", "args", "too many arguments: usage: %s",
		                v->usage);
		return false;
	}
	return true;
}

/* The arguments as they would be typed again: words with a space, a quote, a backslash
 * or nothing in them quoted, so that the audit row reads unambiguously. Caller frees. */
static char *args_text(const struct admin_call *c)
{
	size_t cap = 1;
	for (int i = c->first; i < c->argc; i++)
		cap += 2 * strlen(c->argv[i]) + 3;
	char *out = xmalloc(cap), *p = out;
	for (int i = c->first; i < c->argc; i++) {
		const char *w = c->argv[i];
		bool quote = w[0] == '\0' || strpbrk(w, " \t\"\\") != NULL;
		if (i > c->first)
			*p++ = ' ';
		if (quote)
			*p++ = '"';
		for (; *w != '\0'; w++) {
			if (quote && (*w == '"' || *w == '\\'))
				*p++ = '\\';
			*p++ = *w;
		}
		if (quote)
			*p++ = '"';
	}
	*p = '\0';
	return out;
}

static void audit(struct admin_call *c, struct admin_env *env)
{
	const char *operator_name = c->operator_name[0] != '\0' ? c->operator_name : "unknown";
	bool ok = c->status == HEX_OK;
	char *args = args_text(c);
	struct hex_err err = {0};
	if (audit_service_record(&env->svc->audit, operator_name, c->verb->name, args, ok,
	                         ok ? NULL : c->err.message, NULL, &err) != HEX_OK)
		/* The change (if any) is done and cannot be taken back; someone must know. */
		log_error("admin_audit_failed",
		          "%s by %s (%s) was not written to the audit log: %s", c->verb->name,
		          operator_name, ok ? "ok" : "failed", err.message);
	free(args);
}

void admin_run(struct admin_call *c, struct admin_env *env)
{
	if (c->verb == NULL) {
		int nwords = 0;
		c->verb = admin_verb_find(c->argc, c->argv, &nwords);
		c->first = nwords;
	}
	if (c->verb == NULL) {
		char echo[48] = "";
		if (c->argc > 0)
			admin_opts_echo(c->argv[0], echo);
		admin_fail_code(c, "unknown_verb", NULL, "unknown verb %s: try HELP", echo);
		return;
	}
	if (count_ok_or_fail(c)) {
		if (c->verb->exec != NULL)
			c->verb->exec(c, env);
		else
			admin_fail_code(c, "invalid_argument", NULL,
			                "%s is answered by the connection, not run", c->verb->name);
	}
	if (!c->done) {
		struct hex_err err = {0};
		hex_fail(&err, HEX_INTERNAL, NULL, "%s answered nothing", c->verb->name);
		admin_fail(c, HEX_INTERNAL, &err);
	}
	if (c->verb->mutating)
		audit(c, env);
}
