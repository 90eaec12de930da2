/* fake_admin.c: the audit trail and the cache administration in memory. */
#include "fake_admin.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

static enum hex_status take_failure(enum hex_status *fail_next)
{
	enum hex_status st = *fail_next;
	*fail_next = HEX_OK;
	return st;
}

static enum hex_status audit_append(void *self, const struct audit_entry *e, int64_t *out_id)
{
	struct fake_audit_repo *r = self;
	r->appends++;
	if (r->fail_next != HEX_OK)
		return take_failure(&r->fail_next);
	if (r->count == FAKE_AUDIT_ROWS)
		fail_msg("fake audit repo: full");
	r->rows[r->count] = *e;
	r->rows[r->count].id = r->count + 1;
	*out_id = r->count + 1;
	r->count++;
	return HEX_OK;
}

static enum hex_status audit_list(void *self, int limit, int64_t before_id, struct audit_page *out)
{
	struct fake_audit_repo *r = self;
	r->lists++;
	r->last_limit = limit;
	r->last_before = before_id;
	out->count = 0;
	out->has_more = false;
	if (r->fail_next != HEX_OK)
		return take_failure(&r->fail_next);
	if (limit < 1 || limit > HEX_LIST_MAX || before_id < 0)
		fail_msg("fake audit repo: list(%d, %lld) reached the repository", limit,
		         (long long)before_id);
	for (int i = r->count - 1; i >= 0; i--) {
		if (before_id != 0 && r->rows[i].id >= before_id)
			continue;
		if (out->count == limit) {
			out->has_more = true;
			break;
		}
		out->items[out->count++] = r->rows[i];
	}
	return HEX_OK;
}

static const struct audit_repo_ops audit_ops = {.append = audit_append, .list = audit_list};

struct audit_repo fake_audit_repo_port(struct fake_audit_repo *r)
{
	return (struct audit_repo){.ops = &audit_ops, .self = r};
}

static enum hex_status cache_count(void *self, long *out)
{
	struct fake_cache_admin *c = self;
	c->counts++;
	if (c->fail != HEX_OK)
		return c->fail;
	*out = c->keys;
	return HEX_OK;
}

static enum hex_status cache_flush(void *self, const char *id, long *deleted)
{
	struct fake_cache_admin *c = self;
	c->flushes++;
	c->flushed_all = id == NULL;
	snprintf(c->flushed_id, sizeof c->flushed_id, "%s", id != NULL ? id : "");
	if (c->fail != HEX_OK)
		return c->fail;
	if (id == NULL) {
		*deleted = c->keys;
		c->keys = 0;
		c->cached[0] = '\0';
	} else {
		*deleted = c->cached[0] != '\0' && strcmp(c->cached, id) == 0;
		if (*deleted) {
			c->cached[0] = '\0';
			c->keys--;
		}
	}
	return HEX_OK;
}

static void cache_counters(void *self, struct user_cache_counters *out)
{
	*out = (struct user_cache_counters){.hits = 7, .misses = 3, .errors = 1};
}

static const struct user_cache_admin_ops cache_ops = {
    .count = cache_count, .flush = cache_flush, .counters = cache_counters};

struct user_cache_admin fake_cache_admin_port(struct fake_cache_admin *c)
{
	return (struct user_cache_admin){.ops = &cache_ops, .self = c};
}
