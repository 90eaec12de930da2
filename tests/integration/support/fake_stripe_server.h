/*
 * fake_stripe_server: runs tests/fakes/fake_stripe.py (a local Stripe stand-in) for a
 * test, on a random loopback port in 20000..31999, and talks to its control endpoints.
 * HEX_FAKE_STRIPE_PY overrides where the script is (default: found from this file's
 * path in the source tree).
 */
#ifndef HEX_TEST_FAKE_STRIPE_SERVER_H
#define HEX_TEST_FAKE_STRIPE_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

/* The key the fake accepts unless told otherwise (a test value, not a secret). */
#define FAKE_STRIPE_SECRET_KEY "sk_test_hexfake_4eC39HqLyjWDarjtT1zdp7dc"

struct fake_stripe {
	pid_t pid; /* 0 when not running */
	int port;
	char base_url[64]; /* http://127.0.0.1:<port>, the client's api_base */
};

/* Starts the fake and waits until it listens. False (with a message on stderr) if not. */
bool fake_stripe_start(struct fake_stripe *f);
/* SIGTERM, then SIGKILL if it lingers; reaped. Safe to call twice. */
void fake_stripe_stop(struct fake_stripe *f);

/* POSTs json to /__control; true on 200. */
bool fake_stripe_control(const struct fake_stripe *f, const char *json);

/* GET /__stats as JSON (a new reference the caller decrefs), or NULL with a message. */
json_t *fake_stripe_stats(const struct fake_stripe *f);

/* Shortcuts into a stats document: a top-level counter, and the requests seen per key. */
long long fake_stripe_stat(const json_t *stats, const char *name);
long long fake_stripe_key_requests(const json_t *stats, const char *idempotency_key);

/* A port in 20000..31999 that nothing listened on a moment ago (for "Stripe is down"). */
int fake_stripe_unused_port(void);

#endif
