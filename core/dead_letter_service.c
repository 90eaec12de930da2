/* dead_letter_service.c: the dead-letter use cases over the dead_letter_repo port. */
#include "core/dead_letter_service.h"

#include <string.h>

#include "core/logger.h"

static const char *const status_names[] = {
    [DEAD_LETTER_OPEN] = "open",
    [DEAD_LETTER_REPLAYED] = "replayed",
    [DEAD_LETTER_DISCARDED] = "discarded",
};

const char *dead_letter_status_name(enum dead_letter_status s)
{
	return (unsigned)s < sizeof status_names / sizeof status_names[0] ? status_names[s] : "?";
}

/* 1..max printable ASCII characters (spaces allowed: reasons are sentences). */
static bool text_valid(const char *s, size_t max)
{
	size_t n = s != NULL ? strlen(s) : 0;
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

enum hex_status dead_letter_service_list(struct dead_letter_service *s, bool all, int limit,
                                         int64_t before_id, struct dead_letter_page *out,
                                         struct hex_err *err)
{
	if (limit < 1 || limit > HEX_LIST_MAX)
		return hex_fail(err, HEX_INVALID, "limit", "limit must be 1 to %d", HEX_LIST_MAX);
	if (before_id < 0)
		return hex_fail(err, HEX_INVALID, "cursor", "cursor must be a dead letter id");
	enum hex_status st = s->repo.ops->list(s->repo.self, all, limit, before_id, out);
	return st == HEX_OK ? HEX_OK : hex_store_failed(st, "dead letter", err);
}

/* A repository answer about dead letter id as the operator should read it. */
static enum hex_status repo_answer(enum hex_status st, int64_t id, const struct dead_letter *d,
                                   struct hex_err *err)
{
	switch (st) {
	case HEX_OK:
		return HEX_OK;
	case HEX_NOT_FOUND:
		return hex_fail(err, st, "id", "dead letter %lld not found", (long long)id);
	case HEX_CONFLICT:
		if (d->id != id || d->status == DEAD_LETTER_OPEN)
			return hex_fail(err, st, "id", "dead letter %lld is not open",
			                (long long)id);
		return hex_fail(err, st, "id", "dead letter %lld is already %s", (long long)id,
		                dead_letter_status_name(d->status));
	case HEX_INVALID:
		return hex_fail(err, st, "payload",
		                "dead letter %lld has a payload that is not JSON: discard it",
		                (long long)id);
	default:
		return hex_store_failed(st, "dead letter", err);
	}
}

enum hex_status dead_letter_service_show(struct dead_letter_service *s, int64_t id,
                                         struct dead_letter *out, struct hex_err *err)
{
	memset(out, 0, sizeof *out);
	return repo_answer(s->repo.ops->get(s->repo.self, id, out), id, out, err);
}

enum hex_status dead_letter_service_replay(struct dead_letter_service *s, int64_t id,
                                           const char *actor, struct dead_letter *out,
                                           struct hex_err *err)
{
	memset(out, 0, sizeof *out);
	if (!text_valid(actor, DEAD_LETTER_ACTOR_MAX))
		return hex_fail(err, HEX_INVALID, "actor", "say who replays it");
	enum hex_status st =
	    s->repo.ops->replay(s->repo.self, id, actor, s->clock.ops->now_us(s->clock.self), out);
	if (st == HEX_OK)
		log_info("dead_letter_replayed", "dead letter %lld (%s, event %s) replayed by %s",
		         (long long)id, out->consumer, out->event_id, actor);
	return repo_answer(st, id, out, err);
}

enum hex_status dead_letter_service_discard(struct dead_letter_service *s, int64_t id,
                                            const char *actor, const char *reason,
                                            struct dead_letter *out, struct hex_err *err)
{
	memset(out, 0, sizeof *out);
	if (!text_valid(actor, DEAD_LETTER_ACTOR_MAX))
		return hex_fail(err, HEX_INVALID, "actor", "say who discards it");
	if (!text_valid(reason, DEAD_LETTER_REASON_MAX))
		return hex_fail(err, HEX_INVALID, "reason",
		                "a discard needs a reason of 1 to %d "
		                "printable characters",
		                DEAD_LETTER_REASON_MAX);
	enum hex_status st = s->repo.ops->discard(s->repo.self, id, actor, reason,
	                                          s->clock.ops->now_us(s->clock.self), out);
	if (st == HEX_OK)
		log_warn("dead_letter_discarded",
		         "dead letter %lld (%s, event %s) discarded by %s: %s", (long long)id,
		         out->consumer, out->event_id, actor, reason);
	return repo_answer(st, id, out, err);
}
