/* redis_cache_admin.c: counting and flushing cached users with SCAN and DEL. */
#include "adapters/redis/redis_cache_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/redis/redis_user_cache.h"
#include "core/logger.h"
#include "core/xmalloc.h"

#define MATCH_PATTERN REDIS_USER_CACHE_KEY_PREFIX "*"

/* What to do with each batch of keys one SCAN step returns. */
typedef enum hex_status (*batch_fn)(struct redis_conn *c, redisReply *keys, long *total);

static enum hex_status count_batch(struct redis_conn *c, redisReply *keys, long *total)
{
	*total += (long)keys->elements;
	return HEX_OK;
}

static enum hex_status delete_batch(struct redis_conn *c, redisReply *keys, long *total)
{
	if (keys->elements == 0)
		return HEX_OK;
	const char **argv = xcalloc(keys->elements + 1, sizeof *argv);
	size_t *lens = xcalloc(keys->elements + 1, sizeof *lens);
	enum hex_status st = HEX_UNAVAILABLE;
	argv[0] = "DEL";
	lens[0] = 3;
	for (size_t i = 0; i < keys->elements; i++) {
		if (keys->element[i]->type != REDIS_REPLY_STRING) {
			st = HEX_INTERNAL;
			goto out;
		}
		argv[i + 1] = keys->element[i]->str;
		lens[i + 1] = keys->element[i]->len;
	}
	redisReply *r = redis_conn_command_argv(c, (int)keys->elements + 1, argv, lens);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER) {
		*total += (long)r->integer;
		st = HEX_OK;
	}
	if (r != NULL)
		freeReplyObject(r);
out:
	free(argv);
	free(lens);
	return st;
}

/* Walks every cached user's key with SCAN, handing each batch to fn. */
static enum hex_status scan_all(struct redis_conn *c, batch_fn fn, long *total)
{
	char cursor[32] = "0";
	char count[16];
	snprintf(count, sizeof count, "%d", REDIS_CACHE_ADMIN_BATCH);
	*total = 0;
	do {
		redisReply *r = redis_conn_command(c, "SCAN %s MATCH %s COUNT %s", cursor,
		                                   MATCH_PATTERN, count);
		if (r == NULL)
			return HEX_UNAVAILABLE;
		bool shaped = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
		              r->element[0]->type == REDIS_REPLY_STRING &&
		              r->element[0]->len < sizeof cursor &&
		              r->element[1]->type == REDIS_REPLY_ARRAY;
		enum hex_status st = shaped ? fn(c, r->element[1], total) : HEX_INTERNAL;
		if (shaped)
			memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
		else
			log_error("redis_scan_reply", "SCAN answered something that is not a page");
		freeReplyObject(r);
		if (st != HEX_OK)
			return st;
	} while (strcmp(cursor, "0") != 0);
	return HEX_OK;
}

static enum hex_status cache_count(void *self, long *out)
{
	return scan_all(self, count_batch, out);
}

static enum hex_status cache_flush(void *self, const char *id, long *deleted)
{
	*deleted = 0;
	if (id == NULL)
		return scan_all(self, delete_batch, deleted);
	char key[128];
	if (!redis_user_cache_key(id, key, sizeof key))
		return HEX_OK; /* no such key can exist */
	redisReply *r = redis_conn_command(self, "DEL %s", key);
	if (r == NULL)
		return HEX_UNAVAILABLE;
	enum hex_status st = r->type == REDIS_REPLY_INTEGER ? HEX_OK : HEX_INTERNAL;
	if (st == HEX_OK)
		*deleted = (long)r->integer;
	freeReplyObject(r);
	return st;
}

static void cache_counters(void *self, struct user_cache_counters *out)
{
	redis_user_cache_stats(&out->hits, &out->misses, &out->errors);
}

static const struct user_cache_admin_ops redis_cache_admin_ops = {
    .count = cache_count,
    .flush = cache_flush,
    .counters = cache_counters,
};

struct user_cache_admin redis_cache_admin_port(struct redis_conn *c)
{
	return (struct user_cache_admin){.ops = &redis_cache_admin_ops, .self = c};
}
