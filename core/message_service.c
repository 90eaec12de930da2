/* message_service.c: create, read, update, delete and list messages, with ownership rules. */
#include "core/message_service.h"

#include "core/xmalloc.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define WHITE_SPACE " \t\n\r\f\v"

static enum hex_status repo_failed(enum hex_status st, struct hex_err *err)
{
	return hex_store_failed(st, "message", err);
}

static bool is_admin(const struct user *caller)
{
	return caller->role == ROLE_ADMIN;
}

static bool owns(const struct user *caller, const struct message *m)
{
	return strcasecmp(caller->id, m->user_id) == 0;
}

enum hex_status message_service_create(struct message_service *s, const struct user *caller,
                                       const char *body, struct message *out, struct hex_err *err)
{
	enum hex_status st = message_body_check(body, err);
	if (st != HEX_OK)
		return st;
	struct message m = {.body = (char *)body};
	s->ids.ops->new_id(s->ids.self, m.id);
	hex_strlcpy(m.user_id, caller->id, sizeof m.user_id);
	m.created_at_us = m.updated_at_us = s->clock.ops->now_us(s->clock.self);
	st = s->repo.ops->insert(s->repo.self, &m);
	/* The owner was deleted after its token was checked: the token speaks for no one. */
	if (st == HEX_NOT_FOUND)
		return hex_fail(err, HEX_UNAUTHENTICATED, NULL, "the user of this token is gone");
	if (st != HEX_OK)
		return repo_failed(st, err);
	*out = m;
	out->body = xstrdup(body);
	return HEX_OK;
}

/* Loads message id for caller: HEX_NOT_FOUND, or HEX_FORBIDDEN unless owner (or admin). */
static enum hex_status load_for(struct message_service *s, const struct user *caller,
                                const char *id, bool admin_may, struct message *out,
                                struct hex_err *err)
{
	if (!message_id_valid(id))
		return hex_fail(err, HEX_NOT_FOUND, NULL, "message not found");
	enum hex_status st = s->repo.ops->get(s->repo.self, id, out);
	if (st != HEX_OK)
		return repo_failed(st, err);
	if (!owns(caller, out) && !(admin_may && is_admin(caller))) {
		message_clear(out);
		return hex_fail(err, HEX_FORBIDDEN, NULL,
		                admin_may ? "you may only access your own messages"
		                          : "you may only change your own messages");
	}
	return HEX_OK;
}

enum hex_status message_service_read(struct message_service *s, const struct user *caller,
                                     const char *id, struct message *out, struct hex_err *err)
{
	return load_for(s, caller, id, true, out, err);
}

enum hex_status message_service_update(struct message_service *s, const struct user *caller,
                                       const char *id, const char *body, struct message *out,
                                       struct hex_err *err)
{
	struct message old = {0};
	enum hex_status st = message_body_check(body, err);
	if (st != HEX_OK)
		return st;
	if ((st = load_for(s, caller, id, false, &old, err)) != HEX_OK)
		return st;
	message_clear(&old);
	int64_t now = s->clock.ops->now_us(s->clock.self);
	/* The owner condition again in the write: it holds even if the rules above change. */
	st = s->repo.ops->update_body(s->repo.self, id, caller->id, body, now, out);
	return st == HEX_OK ? HEX_OK : repo_failed(st, err);
}

enum hex_status message_service_delete(struct message_service *s, const struct user *caller,
                                       const char *id, struct hex_err *err)
{
	struct message m = {0};
	enum hex_status st = load_for(s, caller, id, true, &m, err);
	if (st != HEX_OK)
		return st;
	message_clear(&m);
	st = s->repo.ops->remove(s->repo.self, id);
	return st == HEX_OK ? HEX_OK : repo_failed(st, err);
}

/* The search text without surrounding white space into buf; "" when there is none. */
static enum hex_status query_normalize(const char *q, char buf[4 * HEX_MESSAGE_QUERY_MAX + 1],
                                       struct hex_err *err)
{
	buf[0] = '\0';
	if (q == NULL)
		return HEX_OK;
	q += strspn(q, WHITE_SPACE);
	size_t n = strlen(q);
	while (n > 0 && strchr(WHITE_SPACE, q[n - 1]) != NULL)
		n--;
	if (n > 4 * HEX_MESSAGE_QUERY_MAX)
		goto too_long;
	memcpy(buf, q, n);
	buf[n] = '\0';
	long chars = message_utf8_length(buf);
	if (chars < 0)
		return hex_fail(err, HEX_INVALID, "q", "q must be valid UTF-8");
	if (chars > HEX_MESSAGE_QUERY_MAX)
		goto too_long;
	return HEX_OK;
too_long:
	return hex_fail(err, HEX_INVALID, "q", "q must be at most %d characters",
	                HEX_MESSAGE_QUERY_MAX);
}

enum hex_status message_service_list(struct message_service *s, const struct user *caller,
                                     const struct message_list_request *rq,
                                     struct message_page *out, struct hex_err *err)
{
	char user_id[HEX_ID_LEN + 1];
	char query[4 * HEX_MESSAGE_QUERY_MAX + 1];
	struct message_filter f = {
	    .has_since = rq->has_since,
	    .since_us = rq->since_us,
	    .has_until = rq->has_until,
	    .until_us = rq->until_us,
	    .limit = rq->limit,
	    .after = rq->after,
	};
	enum hex_status st;
	out->count = 0;
	out->has_more = false;

	if (rq->limit < 1 || rq->limit > HEX_LIST_MAX)
		return hex_fail(err, HEX_INVALID, "limit", "limit must be between 1 and %d",
		                HEX_LIST_MAX);
	if (rq->user_id != NULL) {
		if (!user_id_valid(rq->user_id))
			return hex_fail(err, HEX_INVALID, "user_id", "user_id must be a UUID");
		for (int i = 0; i <= HEX_ID_LEN; i++)
			user_id[i] = (char)tolower((unsigned char)rq->user_id[i]);
		if (strcasecmp(user_id, caller->id) != 0 && !is_admin(caller))
			return hex_fail(err, HEX_FORBIDDEN, NULL,
			                "only an admin may list another user's messages");
		f.user_id = user_id;
	} else if (!is_admin(caller)) {
		f.user_id = caller->id;
	}
	if ((st = query_normalize(rq->query, query, err)) != HEX_OK)
		return st;
	f.query = query[0] != '\0' ? query : NULL;
	if (rq->has_since && rq->has_until && rq->since_us > rq->until_us)
		return hex_fail(err, HEX_INVALID, "since", "since must not be later than until");
	uint64_t tag = message_filter_tag(&f);
	if (rq->after != NULL && rq->after->filter_tag != tag)
		return hex_fail(err, HEX_INVALID, "cursor",
		                "cursor belongs to a listing with other filters");
	if (rq->after != NULL && !message_id_valid(rq->after->id))
		return hex_fail(err, HEX_INVALID, "cursor", "cursor is not valid");

	st = s->repo.ops->list(s->repo.self, &f, out);
	if (st != HEX_OK)
		return repo_failed(st, err);
	out->filter_tag = tag;
	return HEX_OK;
}
