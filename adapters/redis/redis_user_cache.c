/* redis_user_cache.c: cache-aside storage of users in Redis. */
#include "adapters/redis/redis_user_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/logger.h"

#define KEY_PREFIX REDIS_USER_CACHE_KEY_PREFIX
#define KEY_MAX    (sizeof KEY_PREFIX + HEX_ID_LEN)
/*
 * Value: "u1|id|membership|role|token_version|created_at_us|updated_at_us|email".
 * The email goes last so that any character in it (even '|') needs no escaping. A
 * change of layout gets a new tag ("u2"); old values then read as misses.
 */
#define VALUE_TAG    "u1"
#define VALUE_FIELDS 8
#define VALUE_MAX    (HEX_EMAIL_MAX + HEX_ID_LEN + 3 * 21 + 32)

static const char *const membership_codes[] = {
    [MEMBERSHIP_FREE] = "free",
    [MEMBERSHIP_MEMBER] = "member",
};
static const char *const role_codes[] = {
    [ROLE_USER] = "user",
    [ROLE_ADMIN] = "admin",
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Deletes that failed. A stale entry would outlive a write (an old token_version would
 * keep a revoked token alive for a whole TTL), so failed deletes are kept here and
 * retried by whichever thread of the process next uses the cache, before its own
 * command; until they succeed every get fails over to the repository.
 */
#define PENDING_MAX 256
static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;
static char pending_keys[PENDING_MAX][KEY_MAX];
static _Atomic int pending_count;
static int64_t last_pending_full_log_s;

static _Atomic uint64_t stat_hits;
static _Atomic uint64_t stat_misses;
static _Atomic uint64_t stat_errors;
static int64_t last_corrupt_log_s;

static void count(_Atomic uint64_t *counter)
{
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* False for anything but a full-length id: a truncated key would name another user. */
static bool user_key(const char *id, char key[KEY_MAX])
{
	if (strlen(id) != HEX_ID_LEN)
		return false;
	snprintf(key, KEY_MAX, KEY_PREFIX "%s", id);
	return true;
}

/* A code of the table, or -1 if s[0..len) is none of them. */
static int code_index(const char *const *codes, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (codes[i] != NULL && strlen(codes[i]) == len && memcmp(codes[i], s, len) == 0)
			return (int)i;
	return -1;
}

static bool parse_i64(const char *s, size_t len, int64_t *out)
{
	char buf[24];
	if (len == 0 || len >= sizeof buf)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (buf[0] != '-' && (buf[0] < '0' || buf[0] > '9'))
		return false;
	char *end = NULL;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

static int encode(const struct user *u, char *buf, size_t n)
{
	return snprintf(buf, n, VALUE_TAG "|%s|%s|%s|%lld|%lld|%lld|%s", u->id,
	                membership_codes[u->membership], role_codes[u->role],
	                (long long)u->token_version, (long long)u->created_at_us,
	                (long long)u->updated_at_us, u->email);
}

bool redis_user_cache_decode(const char *v, size_t len, const char *id, struct user *out)
{
	const char *f[VALUE_FIELDS];
	size_t flen[VALUE_FIELDS];
	const char *p = v, *end = v + len;
	if (memchr(v, '\0', len) != NULL)
		return false;
	for (int i = 0; i < VALUE_FIELDS - 1; i++) {
		const char *bar = memchr(p, '|', (size_t)(end - p));
		if (bar == NULL)
			return false;
		f[i] = p;
		flen[i] = (size_t)(bar - p);
		p = bar + 1;
	}
	f[VALUE_FIELDS - 1] = p;
	flen[VALUE_FIELDS - 1] = (size_t)(end - p);

	struct user u;
	memset(&u, 0, sizeof u);
	if (flen[0] != strlen(VALUE_TAG) || memcmp(f[0], VALUE_TAG, flen[0]) != 0)
		return false;
	if (flen[1] != HEX_ID_LEN || memcmp(f[1], id, HEX_ID_LEN) != 0)
		return false;
	memcpy(u.id, f[1], HEX_ID_LEN);
	int m = code_index(membership_codes, COUNT(membership_codes), f[2], flen[2]);
	int r = code_index(role_codes, COUNT(role_codes), f[3], flen[3]);
	if (m < 0 || r < 0)
		return false;
	u.membership = (enum membership)m;
	u.role = (enum user_role)r;
	if (!parse_i64(f[4], flen[4], &u.token_version) ||
	    !parse_i64(f[5], flen[5], &u.created_at_us) ||
	    !parse_i64(f[6], flen[6], &u.updated_at_us))
		return false;
	if (flen[7] == 0 || flen[7] > HEX_EMAIL_MAX)
		return false;
	memcpy(u.email, f[7], flen[7]);
	*out = u;
	return true;
}

static void pending_add(const char *key)
{
	pthread_mutex_lock(&pending_lock);
	int n = atomic_load(&pending_count);
	bool known = false;
	for (int i = 0; i < n && !known; i++)
		known = strcmp(pending_keys[i], key) == 0;
	if (!known && n < PENDING_MAX) {
		hex_strlcpy(pending_keys[n], key, KEY_MAX);
		atomic_store(&pending_count, n + 1);
	} else if (!known && logger_every(&last_pending_full_log_s, 10)) {
		log_error("cache_stale",
		          "too many failed user cache deletes; %s may stay stale "
		          "for up to its TTL",
		          key);
	}
	pthread_mutex_unlock(&pending_lock);
}

/* Retries the failed deletes in one DEL; false if Redis still fails. */
static bool pending_flush(struct redis_user_cache *c)
{
	if (atomic_load_explicit(&pending_count, memory_order_acquire) == 0)
		return true;
	bool ok = true;
	const char *argv[PENDING_MAX + 1];
	argv[0] = "DEL";
	/* Held across the round trip: flushes are rare and must not race a pending_add. */
	pthread_mutex_lock(&pending_lock);
	int n = atomic_load(&pending_count);
	for (int i = 0; i < n; i++)
		argv[i + 1] = pending_keys[i];
	if (n > 0) {
		redisReply *r = redis_conn_command_argv(c->conn, n + 1, argv, NULL);
		ok = r != NULL;
		if (ok) {
			freeReplyObject(r);
			atomic_store(&pending_count, 0);
		}
	}
	pthread_mutex_unlock(&pending_lock);
	return ok;
}

static void drop_corrupt(struct redis_user_cache *c, const char *key)
{
	if (logger_every(&last_corrupt_log_s, 10))
		log_warn("cache_corrupt", "undecodable user cache value deleted: %s", key);
	redisReply *r = redis_conn_command(c->conn, "DEL %s", key);
	if (r == NULL)
		count(&stat_errors);
	else
		freeReplyObject(r);
}

static enum hex_status cache_get(void *self, const char *id, struct user *out)
{
	struct redis_user_cache *c = self;
	char key[KEY_MAX];
	if (!user_key(id, key)) {
		count(&stat_misses);
		return HEX_NOT_FOUND;
	}
	redisReply *r = NULL;
	if (pending_flush(c))
		r = redis_conn_command(c->conn, "GET %s", key);
	if (r == NULL) {
		count(&stat_errors);
		return HEX_UNAVAILABLE;
	}
	enum hex_status st = HEX_NOT_FOUND;
	if (r->type == REDIS_REPLY_STRING &&
	    redis_user_cache_decode(r->str, (size_t)r->len, id, out))
		st = HEX_OK;
	else if (r->type != REDIS_REPLY_NIL)
		drop_corrupt(c, key);
	freeReplyObject(r);
	count(st == HEX_OK ? &stat_hits : &stat_misses);
	return st;
}

static void cache_put(void *self, const struct user *u)
{
	struct redis_user_cache *c = self;
	char key[KEY_MAX], value[VALUE_MAX];
	if (c->ttl_s <= 0 || !user_key(u->id, key))
		return;
	/* Out-of-range enums would index past the tables: such a user is not cached. */
	if ((unsigned)u->membership >= COUNT(membership_codes) ||
	    (unsigned)u->role >= COUNT(role_codes))
		return;
	int len = encode(u, value, sizeof value);
	if (len < 0 || (size_t)len >= sizeof value)
		return;
	redisReply *r = NULL;
	if (pending_flush(c))
		r = redis_conn_command(c->conn, "SET %s %b EX %d", key, value, (size_t)len,
		                       c->ttl_s);
	if (r == NULL)
		count(&stat_errors);
	else
		freeReplyObject(r);
}

static enum hex_status cache_del(void *self, const char *id)
{
	struct redis_user_cache *c = self;
	char key[KEY_MAX];
	if (!user_key(id, key))
		return HEX_OK; /* no such key can exist */
	redisReply *r = redis_conn_command(c->conn, "DEL %s", key);
	if (r == NULL) {
		count(&stat_errors);
		pending_add(key);
		return HEX_UNAVAILABLE;
	}
	freeReplyObject(r);
	return HEX_OK;
}

static const struct user_cache_ops redis_user_cache_ops = {
    .get = cache_get,
    .put = cache_put,
    .del = cache_del,
};

struct user_cache redis_user_cache_port(struct redis_user_cache *c)
{
	return (struct user_cache){.ops = &redis_user_cache_ops, .self = c};
}

void redis_user_cache_stats(uint64_t *hits, uint64_t *misses, uint64_t *errors)
{
	*hits = atomic_load_explicit(&stat_hits, memory_order_relaxed);
	*misses = atomic_load_explicit(&stat_misses, memory_order_relaxed);
	*errors = atomic_load_explicit(&stat_errors, memory_order_relaxed);
}

void redis_user_cache_count(enum redis_cache_result result)
{
	_Atomic uint64_t *counters[] = {&stat_hits, &stat_misses, &stat_errors};
	atomic_fetch_add_explicit(counters[result], 1, memory_order_relaxed);
}

bool redis_user_cache_key(const char *id, char *key, size_t n)
{
	return n >= KEY_MAX && user_key(id, key);
}

bool redis_user_cache_has_pending(void)
{
	return atomic_load(&pending_count) > 0;
}
