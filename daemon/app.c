/* app.c: configuration, shared adapters, and the wiring of one worker. */
#include "daemon/app.h"

#include "adapters/crypto/random_ids.h"
#include "adapters/crypto/system_clock.h"
#include "adapters/postgres/pg_audit_repo.h"
#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_dead_letter_repo.h"
#include "adapters/postgres/pg_idempotency_store.h"
#include "adapters/postgres/pg_ledger_repo.h"
#include "adapters/postgres/pg_message_repo.h"
#include "adapters/postgres/pg_outbox_repo.h"
#include "adapters/postgres/pg_payment_repo.h"
#include "adapters/postgres/pg_refresh_repo.h"
#include "adapters/postgres/pg_user_repo.h"
#include "adapters/redis/redis_cache_admin.h"
#include "adapters/redis/redis_event_stream.h"
#include "adapters/redis/redis_rate_limiter.h"
#include "adapters/redis/redis_url.h"
#include "adapters/redis/redis_user_cache.h"
#include "adapters/stripe/stripe_gateway.h"
#include "adapters/stripe/stripe_simulator.h"
#include "core/logger.h"
#include "core/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct worker_ctx {
	struct hex_services svc; /* first: the pool hands &ctx to jobs as hex_services */
	struct pg_conn *pg;
	struct redis_conn *redis;
	struct redis_user_cache cache;
	struct stripe_gateway *stripe; /* HEX_GATEWAY=stripe: one client per thread */
};

/* Checks that need an adapter's parser, so that a bad value stops start-up before
 * anything is touched. */
static bool config_check_urls(const struct config *cfg, char *msg, size_t msglen)
{
	const char *redis = config_str(cfg, CFG_REDIS_URL);
	struct redis_url u;
	struct hex_err err = {0};
	if (redis[0] != '\0' && redis_url_parse(redis, &u, &err) != HEX_OK) {
		snprintf(msg, msglen, "HEX_REDIS_URL: %s", err.message);
		return false;
	}
	return true;
}

static bool simulated(const struct app *app)
{
	return strcmp(config_str(&app->cfg, CFG_GATEWAY), "simulated") == 0;
}

/* What a membership Checkout needs, checked once so that no request finds it wrong. */
static bool checkout_config_ok(const struct config *cfg, char *msg, size_t msglen)
{
	char currency[4];
	struct hex_err err = {0};
	if (payment_currency_normalize(config_str(cfg, CFG_MEMBERSHIP_CURRENCY), currency, &err) !=
	    HEX_OK) {
		snprintf(msg, msglen, "HEX_MEMBERSHIP_CURRENCY: %s", err.message);
		return false;
	}
	static const struct {
		enum config_key key;
		const char *env;
	} urls[] = {{CFG_CHECKOUT_SUCCESS_URL, "HEX_CHECKOUT_SUCCESS_URL"},
	            {CFG_CHECKOUT_CANCEL_URL, "HEX_CHECKOUT_CANCEL_URL"}};
	for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
		size_t len = strlen(config_str(cfg, urls[i].key));
		if (len == 0 || len > HEX_URL_MAX) {
			snprintf(msg, msglen, "%s: must be a URL of 1 to %d bytes", urls[i].env,
			         HEX_URL_MAX);
			return false;
		}
	}
	return true;
}

/* The gateway's keys: Stripe needs its secret key; the simulator signs with a webhook
 * secret made up at start when none is configured. */
static bool app_init_payments(struct app *app, unsigned needs)
{
	const char *secret = config_str(&app->cfg, CFG_STRIPE_WEBHOOK_SECRET);
	if (secret[0] == '\0' && simulated(app)) {
		char hex[33];
		crypto_random_hex(hex, 16);
		snprintf(app->webhook_secret, sizeof app->webhook_secret, "whsec_sim_%s", hex);
	} else if (!hex_strlcpy(app->webhook_secret, secret, sizeof app->webhook_secret)) {
		fprintf(stderr, "hexd: HEX_STRIPE_WEBHOOK_SECRET: longer than %zu bytes\n",
		        sizeof app->webhook_secret - 1);
		config_free(&app->cfg);
		return false;
	}
	char msg[256];
	if (!checkout_config_ok(&app->cfg, msg, sizeof msg)) {
		fprintf(stderr, "hexd: %s\n", msg);
		config_free(&app->cfg);
		return false;
	}
	if ((needs & APP_NEEDS_JWT) && !simulated(app) &&
	    !config_require(&app->cfg, CFG_STRIPE_SECRET_KEY, msg, sizeof msg)) {
		fprintf(stderr, "hexd: %s (HEX_GATEWAY=stripe)\n", msg);
		config_free(&app->cfg);
		return false;
	}
	app->keys = (struct hex_inbound_keys){
	    .membership_api_key = config_str(&app->cfg, CFG_MEMBERSHIP_API_KEY),
	    .stripe_webhook_secret = app->webhook_secret,
	    .webhook_tolerance_s = (int)config_int(&app->cfg, CFG_WEBHOOK_TOLERANCE),
	};
	return true;
}

static void stripe_config_of(const struct app *app, struct stripe_config *c)
{
	*c = (struct stripe_config){
	    .api_base = config_str(&app->cfg, CFG_STRIPE_API_BASE),
	    .secret_key = config_str(&app->cfg, CFG_STRIPE_SECRET_KEY),
	    .connect_timeout_ms = (int)config_int(&app->cfg, CFG_STRIPE_CONNECT_TIMEOUT_MS),
	    .timeout_ms = (int)config_int(&app->cfg, CFG_STRIPE_TIMEOUT_MS),
	    .max_retries = (int)config_int(&app->cfg, CFG_STRIPE_MAX_RETRIES),
	    .backoff_base_ms = 200,
	};
}

bool app_start_gateway(struct app *app)
{
	if (!simulated(app))
		return true;
	char url[300];
	snprintf(url, sizeof url, "http://%s/v2/stripe/webhook",
	         config_str(&app->cfg, CFG_PAYMENTS_LISTEN));
	struct stripe_simulator_config c = {
	    .webhook_url = url,
	    .webhook_secret = app->webhook_secret,
	    .delay_ms = (int)config_int(&app->cfg, CFG_SIMULATED_DELAY_MS),
	    .chaos = config_bool(&app->cfg, CFG_SIMULATED_CHAOS),
	    .failure_amount = 13,
	};
	struct hex_err err = {0};
	app->simulator = stripe_simulator_new(&c, &err);
	if (app->simulator == NULL)
		fprintf(stderr, "hexd: HEX_GATEWAY=simulated: %s\n", err.message);
	return app->simulator != NULL;
}

void app_stop_gateway(struct app *app)
{
	stripe_simulator_free(app->simulator);
	app->simulator = NULL;
}

bool app_init(struct app *app, const char *config_path, unsigned needs)
{
	char msg[512];
	memset(app, 0, sizeof *app);
	if (!config_load(&app->cfg, config_path, msg, sizeof msg) ||
	    ((needs & APP_NEEDS_DB) &&
	     !config_require(&app->cfg, CFG_DATABASE_URL, msg, sizeof msg)) ||
	    ((needs & APP_NEEDS_JWT) &&
	     !config_require(&app->cfg, CFG_JWT_SECRET, msg, sizeof msg)) ||
	    !config_check_urls(&app->cfg, msg, sizeof msg)) {
		fprintf(stderr, "hexd: %s\n", msg);
		config_free(&app->cfg);
		return false;
	}
	logger_setup(strcmp(config_str(&app->cfg, CFG_LOG_FORMAT), "text") == 0 ? LOGGER_TEXT
	                                                                        : LOGGER_JSON,
	             (enum logger_level)logger_parse_level(config_str(&app->cfg, CFG_LOG_LEVEL)));
	if ((needs & APP_NEEDS_JWT) &&
	    jwt_signer_init(&app->signer, config_str(&app->cfg, CFG_JWT_SECRET),
	                    config_str(&app->cfg, CFG_JWT_ISSUER)) != 0) {
		fprintf(stderr, "hexd: HEX_JWT_SECRET: must be at least 32 bytes long\n");
		config_free(&app->cfg);
		return false;
	}
	crypt_hasher_init(&app->hasher, (unsigned long)config_int(&app->cfg, CFG_PASSWORD_COST));
	auth_policy_defaults(&app->policy);
	app->policy.access_ttl_s = (int)config_int(&app->cfg, CFG_ACCESS_TTL);
	app->policy.refresh_ttl_s = (int)config_int(&app->cfg, CFG_REFRESH_TTL);
	app->policy.login_limit_per_email = (int)config_int(&app->cfg, CFG_LOGIN_LIMIT_EMAIL);
	app->policy.login_limit_per_addr = (int)config_int(&app->cfg, CFG_LOGIN_LIMIT_ADDR);
	app->policy.login_window_s = (int)config_int(&app->cfg, CFG_LOGIN_WINDOW);
	app->policy.refresh_limit_per_addr = (int)config_int(&app->cfg, CFG_REFRESH_LIMIT_ADDR);
	struct hex_err err = {0};
	if (http_proxies_parse(config_str(&app->cfg, CFG_TRUSTED_PROXIES), "HEX_TRUSTED_PROXIES",
	                       &app->proxies, &err) != HEX_OK) {
		fprintf(stderr, "hexd: HEX_TRUSTED_PROXIES: %s\n", err.message);
		config_free(&app->cfg);
		return false;
	}
	if (!app_init_payments(app, needs))
		return false;
	return true;
}

void app_free(struct app *app)
{
	config_free(&app->cfg);
}

static struct pg_conn *db_open(struct app *app, struct hex_err *err)
{
	struct pg_conn_options o;
	pg_conn_options_defaults(&o);
	o.statement_timeout_ms = (int)config_int(&app->cfg, CFG_DB_STATEMENT_TIMEOUT_MS);
	return pg_conn_open_with(config_str(&app->cfg, CFG_DATABASE_URL), &o, err);
}

struct pg_conn *app_db_open(struct app *app)
{
	struct hex_err err = {0};
	struct pg_conn *c = db_open(app, &err);
	if (c == NULL)
		fprintf(stderr, "hexd: HEX_DATABASE_URL: %s\n", err.message);
	return c;
}

static enum hex_status pg_ready_check(void *self, struct hex_err *err)
{
	if (pg_conn_ping(self) != HEX_OK)
		return hex_fail(err, HEX_UNAVAILABLE, NULL, "the database is unreachable");
	return HEX_OK;
}

static const struct readiness_ops pg_readiness_ops = {.check = pg_ready_check};

/* What operators use through the admin port; without Redis, what needs it has NULL ops. */
static void wire_operator_services(struct worker_ctx *w)
{
	struct hex_services *s = &w->svc;
	s->dead_letters = (struct dead_letter_service){
	    .repo = pg_dead_letter_repo_port(w->pg),
	    .clock = system_clock_port(),
	};
	s->events = (struct event_lag_service){
	    .outbox = pg_outbox_repo_port(w->pg),
	    .dead = s->dead_letters.repo,
	    .clock = system_clock_port(),
	};
	s->audit = (struct audit_service){
	    .repo = pg_audit_repo_port(w->pg),
	    .clock = system_clock_port(),
	};
	if (w->redis != NULL) {
		s->events.stream = redis_event_stream_port(w->redis);
		s->cache.admin = redis_cache_admin_port(w->redis);
	}
}

void *app_worker_new(void *arg, int index)
{
	struct app *app = arg;
	struct hex_err err = {0};
	struct worker_ctx *w = xcalloc(1, sizeof *w);
	w->pg = db_open(app, &err);
	if (w->pg == NULL) {
		log_error("worker_db_failed", "worker %d cannot reach the database: %s", index,
		          err.message);
		free(w);
		return NULL;
	}
	const char *redis_url = config_str(&app->cfg, CFG_REDIS_URL);
	if (redis_url[0] != '\0') {
		w->redis = redis_conn_new(redis_url,
		                          (int)config_int(&app->cfg, CFG_REDIS_TIMEOUT_MS), &err);
		if (w->redis == NULL) {
			log_error("worker_redis_failed", "HEX_REDIS_URL: %s", err.message);
			pg_conn_free(w->pg);
			free(w);
			return NULL;
		}
		w->cache =
		    (struct redis_user_cache){w->redis, (int)config_int(&app->cfg, CFG_CACHE_TTL)};
	}
	struct hex_services *s = &w->svc;
	s->users = (struct user_service){
	    .repo = pg_user_repo_port(w->pg),
	    .hasher = crypt_hasher_port(&app->hasher),
	    .clock = system_clock_port(),
	    .ids = random_ids_port(),
	};
	if (w->redis != NULL)
		s->users.cache = redis_user_cache_port(&w->cache);
	s->auth = (struct auth_service){
	    .users = &s->users,
	    .refresh = pg_refresh_repo_port(w->pg),
	    .signer = jwt_signer_port(&app->signer),
	    .policy = app->policy,
	};
	if (w->redis != NULL)
		s->auth.limiter = redis_rate_limiter_port(w->redis);
	memcpy(s->auth.dummy_hash, app->dummy_hash, sizeof s->auth.dummy_hash);
	s->messages = (struct message_service){
	    .repo = pg_message_repo_port(w->pg),
	    .clock = system_clock_port(),
	    .ids = random_ids_port(),
	};
	struct payment_gateway gateway = {0};
	if (app->simulator != NULL) {
		gateway = stripe_simulator_port(app->simulator);
	} else if (!simulated(app)) {
		struct stripe_config sc;
		stripe_config_of(app, &sc);
		w->stripe = stripe_gateway_new(&sc, &err);
		if (w->stripe == NULL) {
			log_error("worker_stripe_failed", "worker %d: %s", index, err.message);
			app_worker_free(w);
			return NULL;
		}
		gateway = stripe_gateway_port(w->stripe);
	}
	s->payments = (struct payment_service){
	    .repo = pg_payment_repo_port(w->pg),
	    .gateway = gateway,
	    .cache = s->users.cache,
	    .clock = system_clock_port(),
	    .ids = random_ids_port(),
	    .membership_price = config_int(&app->cfg, CFG_MEMBERSHIP_PRICE),
	    .membership_currency = config_str(&app->cfg, CFG_MEMBERSHIP_CURRENCY),
	    .checkout_success_url = config_str(&app->cfg, CFG_CHECKOUT_SUCCESS_URL),
	    .checkout_cancel_url = config_str(&app->cfg, CFG_CHECKOUT_CANCEL_URL),
	};
	s->ledger = (struct ledger_service){
	    .repo = pg_ledger_repo_port(w->pg),
	    .clock = system_clock_port(),
	    .ids = random_ids_port(),
	};
	s->keys = &app->keys;
	s->idempotency = pg_idempotency_store_port(w->pg);
	s->ready = (struct readiness){&pg_readiness_ops, w->pg};
	wire_operator_services(w);
	return w;
}

/* Password hashing threads yield the CPU to request threads: a burst of logins must
 * not starve cheap reads on a small machine. */
void *app_kdf_worker_new(void *arg, int index)
{
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), 10) != 0)
		log_warn("kdf_nice_failed", "could not lower the priority of hashing threads");
	return app_worker_new(arg, index);
}

void app_worker_free(void *ctx)
{
	struct worker_ctx *w = ctx;
	if (w == NULL)
		return;
	pg_conn_free(w->pg);
	redis_conn_free(w->redis);
	stripe_gateway_free(w->stripe);
	free(w);
}
