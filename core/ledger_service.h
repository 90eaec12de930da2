/*
 * ledger_service: the ledger's use cases. Every money movement is one balanced journal
 * transaction posted under an idempotency key derived from what caused it, so that a
 * retried cause (a redelivered event, a retried request) moves money once.
 */
#ifndef HEX_LEDGER_SERVICE_H
#define HEX_LEDGER_SERVICE_H

#include "core/ports/clock.h"
#include "core/ports/id_source.h"
#include "core/ports/ledger_repo.h"

struct ledger_service {
	struct ledger_repo repo;
	struct clock clock;
	struct id_source ids;
};

/*
 * Posts t after ledger_txn_check(); t->id is chosen here when empty. A second post with
 * the same idempotency key moves nothing and out gets the first (*duplicate, may be NULL,
 * says so). HEX_CONFLICT with code "insufficient_funds" if a wallet would go negative.
 */
enum hex_status ledger_service_post(struct ledger_service *s, struct ledger_txn_request *t,
                                    struct ledger_txn *out, bool *duplicate,
                                    struct hex_err *err) HEX_MUST_CHECK;

/* Money paid in for payment_id moves from Stripe clearing to user_id's wallet. */
enum hex_status ledger_service_top_up(struct ledger_service *s, const char *payment_id,
                                      const char *user_id, int64_t amount, const char *currency,
                                      struct ledger_txn *out, struct hex_err *err) HEX_MUST_CHECK;

/* A membership bought with payment_id: Stripe clearing to membership revenue. */
enum hex_status ledger_service_membership(struct ledger_service *s, const char *payment_id,
                                          int64_t amount, const char *currency,
                                          struct ledger_txn *out,
                                          struct hex_err *err) HEX_MUST_CHECK;

/*
 * Refund refund_id of the movement posted under original_key: a transaction with every
 * entry of the original reversed (reference "refund:<refund_id>"). HEX_NOT_FOUND if no
 * such original; HEX_CONFLICT "insufficient_funds" if the wallet already spent it.
 */
enum hex_status ledger_service_refund(struct ledger_service *s, const char *refund_id,
                                      const char *original_key, struct ledger_txn *out,
                                      struct hex_err *err) HEX_MUST_CHECK;

/*
 * Moves amount from from_user's wallet to to_user's. client_key (the caller's
 * Idempotency-Key, 1..LEDGER_KEY_MAX - 80 printable characters) makes a retry move
 * nothing more. HEX_INVALID for the same user twice (field "to"), a bad amount or
 * currency; HEX_CONFLICT "insufficient_funds" when from_user's wallet would go negative, and
 * HEX_CONFLICT "idempotency_key_reused" when client_key moved other money before.
 * *replayed (may be NULL) says the key had moved this money before: out is that transfer.
 */
enum hex_status ledger_service_transfer(struct ledger_service *s, const char *from_user,
                                        const char *to_user, int64_t amount, const char *currency,
                                        const char *client_key, struct ledger_txn *out,
                                        bool *replayed, struct hex_err *err) HEX_MUST_CHECK;

enum hex_status ledger_service_balances(struct ledger_service *s, const char *user_id,
                                        struct ledger_balances *out,
                                        struct hex_err *err) HEX_MUST_CHECK;

/* One page of user_id's entries, newest first; before_id 0 or the previous page's last. */
enum hex_status ledger_service_entries(struct ledger_service *s, const char *user_id, int limit,
                                       int64_t before_id, struct ledger_entry_page *out,
                                       struct hex_err *err) HEX_MUST_CHECK;

/*
 * An operator's view of the books: one page of every account (see struct
 * ledger_account_page); after_id NULL or "" for the first page, else the previous page's
 * last id. HEX_INVALID names "limit" or "cursor" (an after_id that names no account).
 */
enum hex_status ledger_service_accounts(struct ledger_service *s, int limit, const char *after_id,
                                        struct ledger_account_page *out,
                                        struct hex_err *err) HEX_MUST_CHECK;

/*
 * One page of the entries of any account (a wallet or a system account), newest first;
 * before_id 0 or the previous page's last. HEX_INVALID names "account_id" (not a UUID),
 * "limit" or "cursor"; HEX_NOT_FOUND "account not found".
 */
enum hex_status ledger_service_account_entries(struct ledger_service *s, const char *account_id,
                                               int limit, int64_t before_id,
                                               struct ledger_entry_page *out,
                                               struct hex_err *err) HEX_MUST_CHECK;

/* Recomputes the books; out->ok false (and a log_error) when anything disagrees. */
enum hex_status ledger_service_verify(struct ledger_service *s, struct ledger_verify_report *out,
                                      struct hex_err *err) HEX_MUST_CHECK;

#endif
