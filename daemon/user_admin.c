/* user_admin.c: `hexd user grant-admin|revoke-admin EMAIL`. */
#include "daemon/commands.h"

#include "adapters/crypto/random_ids.h"
#include "adapters/crypto/system_clock.h"
#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_user_repo.h"
#include "adapters/redis/redis_user_cache.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *verb;
	enum user_role role;
} role_verbs[] = {
    {"grant-admin", ROLE_ADMIN},
    {"revoke-admin", ROLE_USER},
};

int cmd_user(struct app *app, int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: hexd user grant-admin|revoke-admin EMAIL\n");
		return 2;
	}
	int v = -1;
	for (size_t i = 0; i < sizeof role_verbs / sizeof role_verbs[0]; i++)
		if (strcmp(argv[1], role_verbs[i].verb) == 0)
			v = (int)i;
	if (v < 0) {
		fprintf(stderr, "hexd user: unknown action %s (grant-admin, revoke-admin)\n",
		        argv[1]);
		return 2;
	}
	struct pg_conn *c = app_db_open(app);
	if (c == NULL)
		return 1;
	struct user_service us = {
	    .repo = pg_user_repo_port(c),
	    .clock = system_clock_port(),
	    .ids = random_ids_port(),
	};
	struct hex_err err = {0};
	/* The cached copy must go too, or old tokens and the old role live on in it. */
	struct redis_user_cache cache = {0};
	const char *redis_url = config_str(&app->cfg, CFG_REDIS_URL);
	if (redis_url[0] != '\0') {
		cache.conn = redis_conn_new(redis_url, 1000, &err);
		cache.ttl_s = (int)config_int(&app->cfg, CFG_CACHE_TTL);
		if (cache.conn != NULL)
			us.cache = redis_user_cache_port(&cache);
	}
	char email[HEX_EMAIL_MAX + 1];
	struct user u;
	char hash[HEX_HASH_MAX];
	enum hex_status st = user_email_normalize(argv[2], email, &err);
	if (st == HEX_OK)
		st = us.repo.ops->get_by_email(us.repo.self, email, &u, hash, sizeof hash);
	if (st == HEX_OK)
		st = user_service_set_role(&us, u.id, role_verbs[v].role, &u, &err);
	pg_conn_free(c);
	redis_conn_free(cache.conn);
	if (st != HEX_OK) {
		fprintf(stderr, "hexd user: %s: %s\n", argv[2],
		        st == HEX_NOT_FOUND ? "no such user" : err.message);
		return 1;
	}
	printf("%s is now %s\n", u.email, user_role_name(u.role));
	return 0;
}
