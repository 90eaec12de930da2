/*
 * config: every hexd setting, declared once in a table (config.c) with its type,
 * default, bounds and help. Values come from the defaults, then a file (-c), then the
 * environment (HEX_<KEY>), later ones winning.
 */
#ifndef HEX_CONFIG_H
#define HEX_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

enum config_key {
	CFG_DATABASE_URL,
	CFG_REDIS_URL,
	CFG_HTTP_LISTEN,
	CFG_PAYMENTS_LISTEN,
	CFG_ADMIN_LISTEN,
	CFG_ADMIN_TOKEN,
	CFG_ADMIN_ALLOW_REMOTE,
	CFG_ADMIN_SOCKET,
	CFG_ADMIN_WORKERS,
	CFG_JWT_SECRET,
	CFG_JWT_ISSUER,
	CFG_ACCESS_TTL,
	CFG_REFRESH_TTL,
	CFG_CACHE_TTL,
	CFG_REDIS_TIMEOUT_MS,
	CFG_DB_STATEMENT_TIMEOUT_MS,
	CFG_BODY_LIMIT,
	CFG_HEADER_LIMIT,
	CFG_HTTP_IDLE_TIMEOUT,
	CFG_HTTP_REQUEST_TIMEOUT,
	CFG_HTTP_CONNS_PER_ADDR,
	CFG_TRUSTED_PROXIES,
	CFG_LOOPS,
	CFG_WORKERS,
	CFG_KDF_WORKERS,
	CFG_GATEWAY_WORKERS,
	CFG_QUEUE_MAX,
	CFG_PASSWORD_COST,
	CFG_LOGIN_LIMIT_EMAIL,
	CFG_LOGIN_LIMIT_ADDR,
	CFG_LOGIN_WINDOW,
	CFG_REFRESH_LIMIT_ADDR,
	CFG_SHUTDOWN_TIMEOUT,
	CFG_LOG_FORMAT,
	CFG_LOG_LEVEL,
	CFG_ACCESS_LOG,
	CFG_METRICS,
	CFG_METRICS_LISTEN,
	CFG_MEMBERSHIP_API_KEY,
	CFG_STRIPE_SECRET_KEY,
	CFG_STRIPE_API_BASE,
	CFG_STRIPE_WEBHOOK_SECRET,
	CFG_STRIPE_CONNECT_TIMEOUT_MS,
	CFG_STRIPE_TIMEOUT_MS,
	CFG_STRIPE_MAX_RETRIES,
	CFG_WEBHOOK_TOLERANCE,
	CFG_SIMULATED_DELAY_MS,
	CFG_SIMULATED_CHAOS,
	CFG_MEMBERSHIP_PRICE,
	CFG_MEMBERSHIP_CURRENCY,
	CFG_CHECKOUT_SUCCESS_URL,
	CFG_CHECKOUT_CANCEL_URL,
	CFG_GATEWAY,
	CFG_ROLES,
	CFG_EVENT_MAX_ATTEMPTS,
	CFG_EVENT_RETRY_BASE_MS,
	CFG_EVENT_RETRY_MAX_MS,
	CFG_EVENT_CLAIM_IDLE_MS,
	CFG_EVENT_POLL_MS,
	CFG_KEY_COUNT
};

struct config {
	char *values[CFG_KEY_COUNT]; /* owned strings; "" when unset */
};

/*
 * Loads defaults, then path (if not NULL), then HEX_* variables, and validates every
 * key. On failure returns false and writes one line naming the key to msg.
 */
bool config_load(struct config *cfg, const char *path, char *msg, size_t msglen);
/*
 * config_load() with the file's content given instead of its path: text (len bytes, no
 * NUL needed at the end; NULL when len is 0) goes through the same line reader as a file,
 * `name` standing for the path in messages. The seam tests/fuzz/fuzz_config.c drives.
 * As after config_load(), cfg needs config_free() whatever the result.
 */
bool config_load_text(struct config *cfg, const char *name, const char *text, size_t len, char *msg,
                      size_t msglen);
void config_free(struct config *cfg);

const char *config_str(const struct config *cfg, enum config_key k);
long config_int(const struct config *cfg, enum config_key k);
bool config_bool(const struct config *cfg, enum config_key k);
/* Fails (false + msg) if the key is empty: for keys a command requires. */
bool config_require(const struct config *cfg, enum config_key k, char *msg, size_t msglen);

/* Documentation generated from the table. */
void config_print_help(FILE *out);
void config_print_effective(const struct config *cfg, FILE *out); /* secrets masked */
void config_print_example(FILE *out);

#endif
