/* config.c: the configuration table, and loading and checking values against it. */
#include "daemon/config.h"

#include "core/xmalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* T_LISTEN_OPT: address:port or empty (off); T_SOCKET: a unix socket path or empty. */
enum config_type { T_STR, T_INT, T_LISTEN, T_LISTEN_OPT, T_SOCKET, T_ENUM, T_SECRET, T_BOOL };

struct config_entry {
	const char *name; /* file key; the env variable is HEX_ + upper case */
	enum config_type type;
	const char *def;
	long min, max;       /* T_INT bounds */
	const char *choices; /* T_ENUM: "a|b|c" */
	size_t min_len;      /* T_SECRET: minimum length when set */
	const char *help;
};

static const struct config_entry config_table[CFG_KEY_COUNT] = {
    [CFG_DATABASE_URL] = {"database_url", T_SECRET, "", 0, 0, NULL, 0,
                          "PostgreSQL conninfo or postgresql:// URI (required)"},
    [CFG_REDIS_URL] = {"redis_url", T_SECRET, "", 0, 0, NULL, 0,
                       "redis://[:password@]host:port/db for the user cache; empty = no cache"},
    [CFG_HTTP_LISTEN] = {"http_listen", T_LISTEN, "127.0.0.1:5000", 0, 0, NULL, 0,
                         "address:port of the v1 REST listener"},
    [CFG_PAYMENTS_LISTEN] = {"payments_listen", T_LISTEN, "127.0.0.1:4242", 0, 0, NULL, 0,
                             "address:port of the v2 payments listener"},
    [CFG_ADMIN_LISTEN] = {"admin_listen", T_LISTEN_OPT, "127.0.0.1:7070", 0, 0, NULL, 0,
                          "address:port of the operators' admin port (TCP); empty = none"},
    [CFG_ADMIN_TOKEN] = {"admin_token", T_SECRET, "", 0, 0, NULL, 16,
                         "shared secret of the admin port (at least 16 bytes); empty turns "
                         "the admin port off"},
    [CFG_ADMIN_ALLOW_REMOTE] = {"admin_allow_remote", T_BOOL, "off", 0, 0, NULL, 0,
                                "let admin_listen be an address other than loopback (the "
                                "admin port is full operator access: on only behind a "
                                "firewall or tunnel)"},
    [CFG_ADMIN_SOCKET] = {"admin_socket", T_SOCKET, "", 0, 0, NULL, 0,
                          "path of a unix socket (mode 0600) for the admin port; empty = none"},
    [CFG_ADMIN_WORKERS] = {"admin_workers", T_INT, "2", 1, 64, NULL, 0,
                           "threads running admin-port commands, each with its own database "
                           "and Redis connection"},
    [CFG_JWT_SECRET] = {"jwt_secret", T_SECRET, "", 0, 0, NULL, 32,
                        "HS256 key for access and refresh tokens (at least 32 bytes, required)"},
    [CFG_JWT_ISSUER] = {"jwt_issuer", T_STR, "hex", 0, 0, NULL, 0,
                        "the iss claim written and required in tokens"},
    [CFG_ACCESS_TTL] = {"access_ttl", T_INT, "900", 1, 86400, NULL, 0,
                        "seconds an access token lives"},
    [CFG_REFRESH_TTL] = {"refresh_ttl", T_INT, "604800", 60, 31536000, NULL, 0,
                         "seconds a refresh token lives"},
    [CFG_CACHE_TTL] = {"cache_ttl", T_INT, "600", 1, 86400, NULL, 0,
                       "seconds a user stays in the Redis cache"},
    [CFG_REDIS_TIMEOUT_MS] = {"redis_timeout_ms", T_INT, "100", 1, 10000, NULL, 0,
                              "connect and command timeout for Redis, in ms"},
    [CFG_DB_STATEMENT_TIMEOUT_MS] = {"db_statement_timeout_ms", T_INT, "5000", 10, 600000, NULL, 0,
                                     "PostgreSQL statement_timeout, in ms"},
    [CFG_BODY_LIMIT] = {"body_limit", T_INT, "1048576", 256, 67108864, NULL, 0,
                        "largest accepted request body, in bytes (413 above)"},
    [CFG_HEADER_LIMIT] = {"header_limit", T_INT, "16384", 1024, 1048576, NULL, 0,
                          "largest accepted request line and headers together, in bytes "
                          "(400 above)"},
    [CFG_HTTP_IDLE_TIMEOUT] = {"http_idle_timeout", T_INT, "30", 1, 3600, NULL, 0,
                               "seconds a connection may stay silent (between requests, or "
                               "between two reads of one) before it is closed"},
    [CFG_HTTP_REQUEST_TIMEOUT] = {"http_request_timeout", T_INT, "20", 0, 3600, NULL, 0,
                                  "seconds from a request's first byte to its last (head and "
                                  "body) before the connection is closed with 408; 0 = no "
                                  "deadline"},
    [CFG_HTTP_CONNS_PER_ADDR] = {"http_conns_per_addr", T_INT, "256", 0, 1000000, NULL, 0,
                                 "open HTTP connections one client address may hold; more "
                                 "get 503 and are closed (0 = no cap; trusted_proxies are "
                                 "exempt)"},
    [CFG_TRUSTED_PROXIES] = {"trusted_proxies", T_STR, "", 0, 0, NULL, 0,
                             "comma-separated IP addresses of proxies (nginx) whose "
                             "X-Forwarded-For names the client for rate limits; empty = "
                             "trust none"},
    [CFG_LOOPS] = {"loops", T_INT, "0", 0, 8, NULL, 0,
                   "event-loop threads accepting and answering HTTP; 0 = one per CPU core, "
                   "at most 4"},
    [CFG_WORKERS] = {"workers", T_INT, "8", 1, 256, NULL, 0,
                     "worker threads running use cases, each with its own database and Redis "
                     "connection"},
    [CFG_KDF_WORKERS] = {"kdf_workers", T_INT, "1", 1, 64, NULL, 0,
                         "threads for routes that hash passwords (login, sign-up, password "
                         "change)"},
    [CFG_GATEWAY_WORKERS] = {"gateway_workers", T_INT, "8", 1, 256, NULL, 0,
                             "threads for routes that call the payment gateway, so that a slow "
                             "Stripe never holds the api workers"},
    [CFG_QUEUE_MAX] = {"queue_max", T_INT, "1024", 1, 1000000, NULL, 0,
                       "queued requests per pool before new ones get 503"},
    [CFG_PASSWORD_COST] = {"password_cost", T_INT, "5", 1, 11, NULL, 0,
                           "yescrypt cost factor for new password hashes"},
    [CFG_LOGIN_LIMIT_EMAIL] = {"login_limit_email", T_INT, "10", 0, 1000000, NULL, 0,
                               "login attempts per email per window (0 = off)"},
    [CFG_LOGIN_LIMIT_ADDR] = {"login_limit_addr", T_INT, "100", 0, 1000000, NULL, 0,
                              "login attempts per client address per window (0 = off)"},
    [CFG_LOGIN_WINDOW] = {"login_window", T_INT, "60", 1, 86400, NULL, 0,
                          "seconds of the login and token-refresh rate-limit windows"},
    [CFG_REFRESH_LIMIT_ADDR] = {"refresh_limit_addr", T_INT, "60", 0, 1000000, NULL, 0,
                                "token refreshes per client address per window (0 = off)"},
    [CFG_SHUTDOWN_TIMEOUT] = {"shutdown_timeout", T_INT, "10", 0, 600, NULL, 0,
                              "seconds to drain in-flight requests on SIGTERM"},
    [CFG_LOG_FORMAT] = {"log_format", T_ENUM, "json", 0, 0, "json|text", 0, "log line format"},
    [CFG_LOG_LEVEL] = {"log_level", T_ENUM, "info", 0, 0, "debug|info|warn|error", 0,
                       "lowest level logged"},
    [CFG_ACCESS_LOG] = {"access_log", T_BOOL, "on", 0, 0, NULL, 0,
                        "one JSON log line per request (on|off)"},
    [CFG_METRICS] = {"metrics", T_BOOL, "on", 0, 0, NULL, 0,
                     "per-route request counters, latency histograms and windows (on|off)"},
    [CFG_METRICS_LISTEN] = {"metrics_listen", T_LISTEN_OPT, "", 0, 0, NULL, 0,
                            "address:port serving GET /metrics alone; empty = on the v1 "
                            "listener"},
    [CFG_MEMBERSHIP_API_KEY] = {"membership_api_key", T_SECRET, "", 0, 0, NULL, 16,
                                "ApiKey for POST /v1/membership/webhooks"},
    [CFG_STRIPE_SECRET_KEY] = {"stripe_secret_key", T_SECRET, "", 0, 0, NULL, 0,
                               "Stripe secret API key"},
    [CFG_STRIPE_API_BASE] = {"stripe_api_base", T_STR, "https://api.stripe.com", 0, 0, NULL, 0,
                             "Stripe API base URL"},
    [CFG_STRIPE_WEBHOOK_SECRET] = {"stripe_webhook_secret", T_SECRET, "", 0, 0, NULL, 0,
                                   "Stripe webhook endpoint signing secret (whsec_...)"},
    [CFG_STRIPE_CONNECT_TIMEOUT_MS] = {"stripe_connect_timeout_ms", T_INT, "2000", 10, 60000, NULL,
                                       0, "connect timeout of one Stripe attempt, in ms"},
    [CFG_STRIPE_TIMEOUT_MS] = {"stripe_timeout_ms", T_INT, "10000", 10, 120000, NULL, 0,
                               "total timeout of one Stripe attempt, in ms"},
    [CFG_STRIPE_MAX_RETRIES] = {"stripe_max_retries", T_INT, "2", 0, 10, NULL, 0,
                                "retries of a Stripe call after network errors, 409, 429 and "
                                "5xx (same idempotency key)"},
    [CFG_WEBHOOK_TOLERANCE] = {"webhook_tolerance", T_INT, "300", 1, 86400, NULL, 0,
                               "seconds a Stripe-Signature timestamp may differ from now"},
    [CFG_SIMULATED_DELAY_MS] = {"simulated_delay_ms", T_INT, "2000", 0, 600000, NULL, 0,
                                "simulated gateway: ms from a payment to its webhook"},
    [CFG_SIMULATED_CHAOS] = {"simulated_chaos", T_BOOL, "off", 0, 0, NULL, 0,
                             "simulated gateway: duplicate, reorder and drop-then-retry "
                             "webhooks (on|off)"},
    [CFG_MEMBERSHIP_PRICE] = {"membership_price", T_INT, "999", 1, 99999999, NULL, 0,
                              "price of a membership bought through Checkout, in minor units "
                              "of membership_currency"},
    [CFG_MEMBERSHIP_CURRENCY] = {"membership_currency", T_STR, "usd", 0, 0, NULL, 0,
                                 "ISO 4217 currency of membership_price"},
    [CFG_CHECKOUT_SUCCESS_URL] = {"checkout_success_url", T_STR,
                                  "http://127.0.0.1:5000/checkout/success", 0, 0, NULL, 0,
                                  "where Checkout sends the buyer after paying"},
    [CFG_CHECKOUT_CANCEL_URL] = {"checkout_cancel_url", T_STR,
                                 "http://127.0.0.1:5000/checkout/cancel", 0, 0, NULL, 0,
                                 "where Checkout sends a buyer who gives up"},
    [CFG_GATEWAY] = {"gateway", T_ENUM, "simulated", 0, 0, "simulated|stripe", 0,
                     "payment gateway: the offline simulator or Stripe"},
    [CFG_ROLES] = {"roles", T_ENUM, "api,worker", 0, 0, "api,worker|api|worker", 0,
                   "what this process runs: the HTTP API, the event workers (outbox relay "
                   "and consumers), or both"},
    [CFG_EVENT_MAX_ATTEMPTS] = {"event_max_attempts", T_INT, "8", 1, 100, NULL, 0,
                                "attempts a consumer makes at an event before it is "
                                "dead-lettered"},
    [CFG_EVENT_RETRY_BASE_MS] = {"event_retry_base_ms", T_INT, "1000", 1, 3600000, NULL, 0,
                                 "delay before the second attempt; doubles with each "
                                 "attempt, half of it random"},
    [CFG_EVENT_RETRY_MAX_MS] = {"event_retry_max_ms", T_INT, "300000", 1, 86400000, NULL, 0,
                                "longest delay between two attempts"},
    [CFG_EVENT_CLAIM_IDLE_MS] = {"event_claim_idle_ms", T_INT, "15000", 100, 3600000, NULL, 0,
                                 "an event pending this long on a worker that stopped is "
                                 "taken over by another"},
    [CFG_EVENT_POLL_MS] = {"event_poll_ms", T_INT, "20", 1, 10000, NULL, 0,
                           "how often an idle outbox relay looks for new rows"},
};

static void env_name(const char *name, char *out, size_t n)
{
	snprintf(out, n, "HEX_");
	size_t o = 4;
	for (; *name != '\0' && o + 1 < n; name++)
		out[o++] = (char)toupper((unsigned char)*name);
	out[o] = '\0';
}

static void set_value(struct config *cfg, int k, const char *v)
{
	free(cfg->values[k]);
	cfg->values[k] = xstrdup(v);
}

static int find_key(const char *name)
{
	for (int k = 0; k < CFG_KEY_COUNT; k++)
		if (strcmp(config_table[k].name, name) == 0)
			return k;
	return -1;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* The lines of f, named `path` in messages. */
static bool load_stream(struct config *cfg, FILE *f, const char *path, char *msg, size_t msglen)
{
	char line[4096];
	int lineno = 0;
	bool ok = true;
	while (ok && fgets(line, sizeof line, f) != NULL) {
		lineno++;
		char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (eq == NULL) {
			snprintf(msg, msglen, "%s:%d: expected key = value", path, lineno);
			ok = false;
			break;
		}
		*eq = '\0';
		char *key = trim(s), *val = trim(eq + 1);
		int k = find_key(key);
		if (k < 0) {
			snprintf(msg, msglen, "%s:%d: unknown key %s", path, lineno, key);
			ok = false;
			break;
		}
		set_value(cfg, k, val);
	}
	return ok;
}

static bool load_file(struct config *cfg, const char *path, char *msg, size_t msglen)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(msg, msglen, "config file %s: %s", path, strerror(errno));
		return false;
	}
	bool ok = load_stream(cfg, f, path, msg, msglen);
	fclose(f);
	return ok;
}

/* The text read as a file would be, so that fuzzing it exercises the same code. */
static bool load_text(struct config *cfg, const char *name, const char *text, size_t len, char *msg,
                      size_t msglen)
{
	/* fmemopen() only reads from its buffer, whatever the mode string says. */
	FILE *f = fmemopen((void *)text, len, "r");
	if (f == NULL) {
		snprintf(msg, msglen, "%s: %s", name, strerror(errno));
		return false;
	}
	bool ok = load_stream(cfg, f, name, msg, msglen);
	fclose(f);
	return ok;
}

/* sizeof sockaddr_un.sun_path, less its NUL */
#define SOCKET_PATH_MAX 107

static bool valid_listen(const char *v)
{
	const char *colon = strrchr(v, ':');
	if (colon == NULL || colon == v)
		return false;
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	return errno == 0 && *end == '\0' && colon[1] != '\0' && port >= 0 && port <= 65535;
}

static bool parse_long(const char *v, long *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0')
		return false;
	*out = n;
	return true;
}

static bool enum_has(const char *choices, const char *v)
{
	size_t n = strlen(v);
	for (const char *p = choices; *p != '\0';) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (len == n && strncmp(p, v, n) == 0)
			return true;
		p += len + (bar != NULL);
	}
	return false;
}

static bool check_value(int k, const char *v, char *msg, size_t msglen)
{
	const struct config_entry *e = &config_table[k];
	char env[64];
	env_name(e->name, env, sizeof env);
	long n;
	switch (e->type) {
	case T_INT:
		if (!parse_long(v, &n) || n < e->min || n > e->max) {
			snprintf(msg, msglen, "%s: must be an integer from %ld to %ld, got \"%s\"",
			         env, e->min, e->max, v);
			return false;
		}
		return true;
	case T_LISTEN:
		if (!valid_listen(v)) {
			snprintf(msg, msglen, "%s: must be address:port, got \"%s\"", env, v);
			return false;
		}
		return true;
	case T_LISTEN_OPT:
		if (*v != '\0' && !valid_listen(v)) {
			snprintf(msg, msglen, "%s: must be address:port or empty, got \"%s\"", env,
			         v);
			return false;
		}
		return true;
	case T_SOCKET:
		if (strlen(v) > SOCKET_PATH_MAX) {
			snprintf(msg, msglen, "%s: must be a path of at most %d bytes", env,
			         SOCKET_PATH_MAX);
			return false;
		}
		return true;
	case T_ENUM:
		if (!enum_has(e->choices, v)) {
			snprintf(msg, msglen, "%s: must be one of %s, got \"%s\"", env, e->choices,
			         v);
			return false;
		}
		return true;
	case T_SECRET:
		if (*v != '\0' && strlen(v) < e->min_len) {
			snprintf(msg, msglen, "%s: must be at least %zu bytes long", env,
			         e->min_len);
			return false;
		}
		return true;
	case T_BOOL:
		if (!enum_has("on|off|true|false|1|0|yes|no", v)) {
			snprintf(msg, msglen, "%s: must be on or off, got \"%s\"", env, v);
			return false;
		}
		return true;
	case T_STR:
		return true;
	}
	return true;
}

/* The admin port answers to one token with full operator rights: loopback only, unless
 * the operator says otherwise in so many words. */
static bool admin_exposure_ok(const struct config *cfg, char *msg, size_t msglen)
{
	const char *v = cfg->values[CFG_ADMIN_LISTEN];
	if (*v == '\0' || enum_has("on|true|1|yes", cfg->values[CFG_ADMIN_ALLOW_REMOTE]))
		return true;
	size_t host = (size_t)(strrchr(v, ':') - v);
	static const char *const loopback[] = {"127.", "[::1]", "::1", "localhost"};
	for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
		size_t n = strlen(loopback[i]);
		bool prefix = loopback[i][n - 1] == '.';
		if (prefix ? strncmp(v, loopback[i], n) == 0
		           : host == n && strncmp(v, loopback[i], n) == 0)
			return true;
	}
	snprintf(msg, msglen,
	         "HEX_ADMIN_LISTEN: %s is not a loopback address; the admin port is full "
	         "operator access (set HEX_ADMIN_ALLOW_REMOTE=on to allow it)",
	         v);
	return false;
}

/* Defaults, then the file (by path or as text: one of them, or neither), then HEX_*. */
static bool config_load_from(struct config *cfg, const char *path, const char *text, size_t len,
                             char *msg, size_t msglen)
{
	memset(cfg, 0, sizeof *cfg);
	for (int k = 0; k < CFG_KEY_COUNT; k++)
		set_value(cfg, k, config_table[k].def);
	if (text != NULL ? !load_text(cfg, path, text, len, msg, msglen)
	                 : path != NULL && !load_file(cfg, path, msg, msglen))
		return false;
	for (int k = 0; k < CFG_KEY_COUNT; k++) {
		char env[64];
		env_name(config_table[k].name, env, sizeof env);
		const char *v = getenv(env);
		if (v != NULL)
			set_value(cfg, k, v);
	}
	for (int k = 0; k < CFG_KEY_COUNT; k++)
		if (!check_value(k, cfg->values[k], msg, msglen))
			return false;
	return admin_exposure_ok(cfg, msg, msglen);
}

bool config_load(struct config *cfg, const char *path, char *msg, size_t msglen)
{
	return config_load_from(cfg, path, NULL, 0, msg, msglen);
}

bool config_load_text(struct config *cfg, const char *name, const char *text, size_t len, char *msg,
                      size_t msglen)
{
	return config_load_from(cfg, name, text != NULL ? text : "", len, msg, msglen);
}

void config_free(struct config *cfg)
{
	for (int k = 0; k < CFG_KEY_COUNT; k++) {
		free(cfg->values[k]);
		cfg->values[k] = NULL;
	}
}

const char *config_str(const struct config *cfg, enum config_key k)
{
	return cfg->values[k];
}

long config_int(const struct config *cfg, enum config_key k)
{
	long n = 0;
	(void)parse_long(cfg->values[k], &n); /* validated by config_load */
	return n;
}

bool config_bool(const struct config *cfg, enum config_key k)
{
	return enum_has("on|true|1|yes", cfg->values[k]); /* validated by config_load */
}

bool config_require(const struct config *cfg, enum config_key k, char *msg, size_t msglen)
{
	if (cfg->values[k][0] != '\0')
		return true;
	char env[64];
	env_name(config_table[k].name, env, sizeof env);
	snprintf(msg, msglen, "%s: is required (%s)", env, config_table[k].help);
	return false;
}

void config_print_help(FILE *out)
{
	for (int k = 0; k < CFG_KEY_COUNT; k++) {
		char env[64];
		env_name(config_table[k].name, env, sizeof env);
		fprintf(out, "  %-28s %s", env, config_table[k].help);
		if (config_table[k].def[0] != '\0')
			fprintf(out, " [%s]", config_table[k].def);
		fputc('\n', out);
	}
}

void config_print_effective(const struct config *cfg, FILE *out)
{
	for (int k = 0; k < CFG_KEY_COUNT; k++) {
		const char *v = cfg->values[k];
		bool mask = config_table[k].type == T_SECRET && v[0] != '\0';
		fprintf(out, "%s = %s\n", config_table[k].name, mask ? "(set, hidden)" : v);
	}
}

void config_print_example(FILE *out)
{
	fputs("# hexd.conf: every key of hexd, with its default. Each key can be\n"
	      "# overridden by the environment variable named beside it.\n",
	      out);
	for (int k = 0; k < CFG_KEY_COUNT; k++) {
		char env[64];
		env_name(config_table[k].name, env, sizeof env);
		const char *def = config_table[k].def;
		fprintf(out, "\n# %s (env %s)\n%s%s =%s%s\n", config_table[k].help, env,
		        def[0] == '\0' ? "# " : "", config_table[k].name, def[0] == '\0' ? "" : " ",
		        def);
	}
}
