/* cache_service.c: counting and flushing the user cache for operators. */
#include "core/cache_service.h"

#include <ctype.h>
#include <string.h>

static enum hex_status no_cache(struct hex_err *err)
{
	return hex_fail(err, HEX_UNAVAILABLE, NULL,
	                "no cache is configured (HEX_REDIS_URL is empty)");
}

static enum hex_status cache_failed(struct hex_err *err)
{
	return hex_fail(err, HEX_UNAVAILABLE, NULL, "the cache is unavailable");
}

enum hex_status cache_service_stats(struct cache_service *s, struct cache_stats *out,
                                    struct hex_err *err)
{
	memset(out, 0, sizeof *out);
	if (s->admin.ops == NULL)
		return no_cache(err);
	s->admin.ops->counters(s->admin.self, &out->counters);
	if (s->admin.ops->count(s->admin.self, &out->keys) != HEX_OK)
		return cache_failed(err);
	return HEX_OK;
}

enum hex_status cache_service_flush(struct cache_service *s, const char *user_id, long *deleted,
                                    struct hex_err *err)
{
	*deleted = 0;
	char id[HEX_ID_LEN + 1];
	if (user_id != NULL) {
		if (!user_id_valid(user_id))
			return hex_fail(err, HEX_INVALID, "user_id", "user_id must be a UUID");
		/* Entries are keyed by the id as stored: lower case. */
		for (int i = 0; i <= HEX_ID_LEN; i++)
			id[i] = (char)tolower((unsigned char)user_id[i]);
	}
	if (s->admin.ops == NULL)
		return no_cache(err);
	if (s->admin.ops->flush(s->admin.self, user_id != NULL ? id : NULL, deleted) != HEX_OK)
		return cache_failed(err);
	return HEX_OK;
}
