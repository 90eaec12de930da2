/*
 * app: what every hexd command shares: the configuration and the process-wide,
 * read-only adapter state (token signer, hasher settings), and the wiring of one
 * worker's services to that worker's own connections.
 */
#ifndef HEX_APP_H
#define HEX_APP_H

#include "adapters/crypto/crypt_hasher.h"
#include "adapters/crypto/jwt_signer.h"
#include "adapters/http/http_proxies.h"
#include "core/services.h"
#include "daemon/config.h"

struct app {
	struct config cfg;
	struct jwt_signer signer;
	struct crypt_hasher hasher;
	struct auth_policy policy;
	struct http_proxies proxies; /* HEX_TRUSTED_PROXIES */
	char dummy_hash[HEX_HASH_MAX];
	struct hex_inbound_keys keys;
	char webhook_secret[80]; /* HEX_STRIPE_WEBHOOK_SECRET, or made up for the simulator */
	struct stripe_simulator *simulator; /* HEX_GATEWAY=simulated, while serving */
};

enum app_needs { APP_NEEDS_DB = 1, APP_NEEDS_JWT = 2 };

/* Loads config (path may be NULL), checks the keys that `needs` requires, and sets up
 * logging and the shared adapters. On failure prints one line naming the key to stderr
 * and returns false (nothing to free then). */
bool app_init(struct app *app, const char *config_path, unsigned needs);
void app_free(struct app *app);

/* Starts the simulated gateway when configured (it posts to our own webhook route). */
bool app_start_gateway(struct app *app);
void app_stop_gateway(struct app *app);

/* worker_pool callbacks: a worker context whose first member is its hex_services. */
void *app_worker_new(void *app, int index);
void *app_kdf_worker_new(void *app, int index);
void app_worker_free(void *ctx);

/* Opens one database connection for a command (migrate, user ...). NULL + message. */
struct pg_conn *app_db_open(struct app *app);

#endif
