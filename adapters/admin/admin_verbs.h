/*
 * admin_verbs: what the verb files share (not part of the contract with the server,
 * which is admin_call.h): every verb's exec, grouped by noun in admin_verbs_<noun>.c,
 * and the helpers they all answer through.
 */
#ifndef HEX_ADMIN_VERBS_H
#define HEX_ADMIN_VERBS_H

#include "adapters/admin/admin_call.h"

/* Who the operator reads as in the use cases: an admin who owns nothing, so that every
 * user's messages and payments are someone else's and all visible. */
extern const struct user admin_verbs_operator;

/* The i-th argument after the verb's name (0: the first), or NULL past the last. */
const char *admin_verbs_arg(const struct admin_call *c, int i);

/* Answers data, or an internal error when it is NULL (a reply that could not be built). */
void admin_verbs_reply(struct admin_call *c, json_t *data);

/* Appends item to arr; NULL (arr freed) when either is NULL, so that a list with an item
 * that could not be encoded becomes one NULL for admin_verbs_reply. */
json_t *admin_verbs_push(json_t *arr, json_t *item);

/* Answers a service's failure; field, when not NULL, replaces err's (the protocol's name
 * of what the core calls otherwise). */
void admin_verbs_fail(struct admin_call *c, enum hex_status st, struct hex_err *err,
                      const char *field);

/* admin_verbs_ops.c */
void admin_verbs_ops_ping(struct admin_call *c, struct admin_env *env);
void admin_verbs_ops_help(struct admin_call *c, struct admin_env *env);
void admin_verbs_ops_stats(struct admin_call *c, struct admin_env *env);
void admin_verbs_ops_events_lag(struct admin_call *c, struct admin_env *env);
void admin_verbs_ops_cache_stats(struct admin_call *c, struct admin_env *env);
void admin_verbs_ops_cache_flush(struct admin_call *c, struct admin_env *env);
void admin_verbs_ops_audit_list(struct admin_call *c, struct admin_env *env);

/* admin_verbs_users.c */
void admin_verbs_users_list(struct admin_call *c, struct admin_env *env);
void admin_verbs_users_search(struct admin_call *c, struct admin_env *env);
void admin_verbs_users_show(struct admin_call *c, struct admin_env *env);
void admin_verbs_users_grant_admin(struct admin_call *c, struct admin_env *env);
void admin_verbs_users_revoke_admin(struct admin_call *c, struct admin_env *env);

/* admin_verbs_messages.c */
void admin_verbs_messages_list(struct admin_call *c, struct admin_env *env);
void admin_verbs_messages_show(struct admin_call *c, struct admin_env *env);

/* admin_verbs_payments.c */
void admin_verbs_payments_list(struct admin_call *c, struct admin_env *env);
void admin_verbs_payments_stuck(struct admin_call *c, struct admin_env *env);
void admin_verbs_payments_show(struct admin_call *c, struct admin_env *env);

/* admin_verbs_ledger.c */
void admin_verbs_ledger_accounts(struct admin_call *c, struct admin_env *env);
void admin_verbs_ledger_entries(struct admin_call *c, struct admin_env *env);
void admin_verbs_ledger_verify(struct admin_call *c, struct admin_env *env);

/* admin_verbs_dlq.c */
void admin_verbs_dlq_list(struct admin_call *c, struct admin_env *env);
void admin_verbs_dlq_show(struct admin_call *c, struct admin_env *env);
void admin_verbs_dlq_replay(struct admin_call *c, struct admin_env *env);
void admin_verbs_dlq_discard(struct admin_call *c, struct admin_env *env);

#endif
