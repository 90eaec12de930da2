/* fake_events.c: in-memory fakes of the event pipeline's ports (see fake_events.h). */
#include "fake_events.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

/* As in fakes.c: a broken contract fails the running test, never a plausible answer. */
static void die(const char *what, const char *detail)
{
	fail_msg("fake_events: %s: %s", what, detail);
}

void fake_log_note(struct fake_log *l, const char *who, const char *what)
{
	if (l == NULL)
		return;
	int n = snprintf(l->text + l->len, sizeof l->text - l->len, "%s.%s ", who, what);
	if (n < 0 || (size_t)n >= sizeof l->text - l->len) {
		l->overflow = true;
		l->text[l->len] = '\0';
		return;
	}
	l->len += (size_t)n;
}

/* fakes.c keeps its base helpers private; these do the same over the same struct, so that
 * fake_fail_next() and fake_calls() work on these fakes too. */
static void base_init(struct fake_base *b, const char *name, const char *const *ops, int nops,
                      struct fake_log *log)
{
	if (b->ops != NULL)
		return;
	memset(b, 0, sizeof *b);
	b->name = name;
	b->ops = ops;
	b->nops = nops;
	b->log = log;
}

static enum hex_status enter(struct fake_base *b, int op)
{
	b->calls[op]++;
	fake_log_note(b->log, b->name, b->ops[op]);
	if (b->fail_armed && (b->fail_op == NULL || strcmp(b->fail_op, b->ops[op]) == 0)) {
		b->fail_armed = false;
		return b->fail_st;
	}
	return HEX_OK;
}

static void copy_text(char *dst, size_t n, const char *src, const char *what)
{
	if (!hex_strlcpy(dst, src != NULL ? src : "", n))
		die(what, "text too long for the fake");
}

static void entry_set(struct fake_event_entry *e, const char *stream_id, const char *event_id,
                      const char *consumer, int attempt, const char *payload)
{
	memset(e, 0, sizeof *e);
	copy_text(e->msg.stream_id, sizeof e->msg.stream_id, stream_id, "stream_id");
	copy_text(e->msg.event_id, sizeof e->msg.event_id, event_id, "event_id");
	copy_text(e->msg.topic, sizeof e->msg.topic, EVENT_TOPIC_PAYMENTS, "topic");
	copy_text(e->msg.consumer, sizeof e->msg.consumer, consumer, "consumer");
	copy_text(e->payload, sizeof e->payload, payload, "payload");
	e->msg.attempt = attempt;
	e->msg.payload_len = strlen(e->payload);
}

/* A copy of m as the fakes keep it (payload inline). */
static void entry_from_msg(struct fake_event_entry *e, const struct event_msg *m)
{
	memset(e, 0, sizeof *e);
	e->msg = *m;
	e->msg.payload = NULL;
	if (m->payload == NULL || m->payload_len >= sizeof e->payload)
		die("event_msg", "payload missing or too long for the fake");
	memcpy(e->payload, m->payload, m->payload_len);
	e->payload[m->payload_len] = '\0';
}

/* Appends e to out with its own malloc'd payload, as the adapters hand messages out. */
static void batch_append(struct event_batch *out, const struct fake_event_entry *e)
{
	if (out->n >= EVENT_BATCH_MAX)
		die("event_batch", "full");
	struct event_msg *m = &out->items[out->n++];
	*m = e->msg;
	m->payload = xstrdup(e->payload);
	m->payload_len = strlen(e->payload);
}

static void batch_check_empty(const struct event_batch *out, const char *who)
{
	if (out->n != 0)
		die(who, "called with a batch that still holds entries");
}

static void limit_check(int limit, int max, const char *who)
{
	if (limit < 1 || limit > max)
		die(who, "limit out of the port's range");
}

/* ---- outbox_repo ---- */

enum { OUTBOX_CLAIM, OUTBOX_PUBLISHED, OUTBOX_RELEASE, OUTBOX_LAG, OUTBOX_NOPS };
static const char *const outbox_ops[OUTBOX_NOPS] = {"claim", "published", "release", "lag"};

int64_t fake_outbox_add(struct fake_outbox *o, const char *event_id, const char *consumer,
                        int attempt, const char *payload, int64_t available_at_us)
{
	if (o->count == FAKE_EVENT_ROWS)
		die("outbox", "full");
	struct fake_outbox_item *row = &o->rows[o->count];
	memset(row, 0, sizeof *row);
	entry_set(&row->e, "", event_id, consumer, attempt, payload);
	row->e.msg.outbox_id = ++o->count;
	row->available_at_us = available_at_us;
	return row->e.msg.outbox_id;
}

int fake_outbox_unpublished(const struct fake_outbox *o)
{
	int n = 0;
	for (int i = 0; i < o->count; i++)
		n += !o->rows[i].published;
	return n;
}

static enum hex_status outbox_claim(void *self, int limit, int64_t now_us, struct event_batch *out)
{
	struct fake_outbox *o = self;
	enum hex_status st = enter(&o->base, OUTBOX_CLAIM);
	if (o->claim_open)
		die("outbox.claim", "the previous claim was never published nor released");
	limit_check(limit, EVENT_BATCH_MAX, "outbox.claim");
	batch_check_empty(out, "outbox.claim");
	o->last_limit = limit;
	o->last_claim_now_us = now_us;
	if (st != HEX_OK)
		return st;
	for (int i = 0; i < o->count && out->n < limit; i++)
		if (!o->rows[i].published && o->rows[i].available_at_us <= now_us)
			batch_append(out, &o->rows[i].e);
	o->claim_open = out->n > 0;
	return HEX_OK;
}

static enum hex_status outbox_published(void *self, const struct event_batch *b, int64_t now_us)
{
	struct fake_outbox *o = self;
	enum hex_status st = enter(&o->base, OUTBOX_PUBLISHED);
	if (!o->claim_open)
		die("outbox.published", "no claim is open");
	o->claim_open = false;
	if (st != HEX_OK)
		return st; /* the transaction rolled back: every row stays unpublished */
	for (int i = 0; i < b->n; i++) {
		int64_t id = b->items[i].outbox_id;
		if (id < 1 || id > o->count)
			die("outbox.published", "a row that was never claimed");
		o->rows[id - 1].published = true;
		o->rows[id - 1].published_at_us = now_us;
	}
	return HEX_OK;
}

static void outbox_release(void *self)
{
	struct fake_outbox *o = self;
	(void)enter(&o->base, OUTBOX_RELEASE);
	if (!o->claim_open)
		die("outbox.release", "no claim is open");
	o->claim_open = false;
}

static enum hex_status outbox_lag(void *self, int64_t now_us, struct outbox_lag *out)
{
	struct fake_outbox *o = self;
	enum hex_status st = enter(&o->base, OUTBOX_LAG);
	memset(out, 0, sizeof *out);
	if (st != HEX_OK)
		return st;
	for (int i = 0; i < o->count; i++) {
		const struct fake_outbox_item *row = &o->rows[i];
		if (row->published)
			continue;
		out->unpublished++;
		if (row->available_at_us <= now_us &&
		    now_us - row->available_at_us > out->oldest_age_us)
			out->oldest_age_us = now_us - row->available_at_us;
	}
	return HEX_OK;
}

static const struct outbox_repo_ops outbox_port_ops = {
    .claim = outbox_claim,
    .published = outbox_published,
    .release = outbox_release,
    .lag = outbox_lag,
};

struct outbox_repo fake_outbox_port(struct fake_outbox *o, struct fake_log *log)
{
	base_init(&o->base, "outbox", outbox_ops, OUTBOX_NOPS, log);
	return (struct outbox_repo){.ops = &outbox_port_ops, .self = o};
}

/* ---- event_stream ---- */

enum {
	STREAM_PUBLISH,
	STREAM_JOIN,
	STREAM_READ,
	STREAM_CLAIM_IDLE,
	STREAM_ACK,
	STREAM_STATS,
	STREAM_NOPS
};
static const char *const stream_ops[STREAM_NOPS] = {"publish",    "join", "read",
                                                    "claim_idle", "ack",  "stats"};

struct event_msg *fake_stream_push(struct fake_stream *s, bool idle, const char *stream_id,
                                   const char *event_id, int attempt, const char *payload)
{
	int *n = idle ? &s->nidle : &s->nfresh;
	if (*n == FAKE_EVENT_ROWS)
		die("stream", "queue full");
	struct fake_event_entry *e = idle ? &s->idle[*n] : &s->fresh[*n];
	(*n)++;
	entry_set(e, stream_id, event_id, "", attempt, payload);
	return &e->msg;
}

bool fake_stream_acked(const struct fake_stream *s, const char *stream_id)
{
	for (int i = 0; i < s->nacked; i++)
		if (strcmp(s->acked[i], stream_id) == 0)
			return true;
	return false;
}

static enum hex_status stream_publish(void *self, const struct event_msg *m)
{
	struct fake_stream *s = self;
	enum hex_status st = enter(&s->base, STREAM_PUBLISH);
	if (st != HEX_OK)
		return st;
	if (s->publish_fail_on != 0 && s->base.calls[STREAM_PUBLISH] == s->publish_fail_on)
		return s->publish_fail_st;
	if (s->npublished == FAKE_EVENT_ROWS)
		die("stream.publish", "full");
	entry_from_msg(&s->published[s->npublished++], m);
	return HEX_OK;
}

static enum hex_status stream_join(void *self, const char *topic, const char *consumer)
{
	struct fake_stream *s = self;
	return enter(&s->base, STREAM_JOIN);
}

static void note_group(struct fake_stream *s, const char *topic, const char *consumer,
                       const char *member)
{
	copy_text(s->last_topic, sizeof s->last_topic, topic, "topic");
	copy_text(s->last_consumer, sizeof s->last_consumer, consumer, "consumer");
	copy_text(s->last_member, sizeof s->last_member, member, "member");
}

/* Delivers up to max entries of queue from *next on. */
static void deliver(struct fake_event_entry *queue, int n, int *next, int max,
                    struct event_batch *out)
{
	while (*next < n && out->n < max)
		batch_append(out, &queue[(*next)++]);
}

static enum hex_status stream_read(void *self, const char *topic, const char *consumer,
                                   const char *member, int max, int block_ms,
                                   struct event_batch *out)
{
	struct fake_stream *s = self;
	enum hex_status st = enter(&s->base, STREAM_READ);
	limit_check(max, EVENT_BATCH_MAX, "stream.read");
	batch_check_empty(out, "stream.read");
	note_group(s, topic, consumer, member);
	s->last_read_max = max;
	s->last_block_ms = block_ms;
	if (st != HEX_OK)
		return st;
	deliver(s->fresh, s->nfresh, &s->fresh_next, max, out);
	return HEX_OK;
}

static enum hex_status stream_claim_idle(void *self, const char *topic, const char *consumer,
                                         const char *member, int64_t min_idle_ms, int max,
                                         struct event_batch *out)
{
	struct fake_stream *s = self;
	enum hex_status st = enter(&s->base, STREAM_CLAIM_IDLE);
	limit_check(max, EVENT_BATCH_MAX, "stream.claim_idle");
	batch_check_empty(out, "stream.claim_idle");
	note_group(s, topic, consumer, member);
	s->last_claim_max = max;
	s->last_min_idle_ms = min_idle_ms;
	if (st != HEX_OK)
		return st;
	deliver(s->idle, s->nidle, &s->idle_next, max, out);
	return HEX_OK;
}

static enum hex_status stream_ack(void *self, const char *topic, const char *consumer,
                                  const struct event_msg *m)
{
	struct fake_stream *s = self;
	enum hex_status st = enter(&s->base, STREAM_ACK);
	copy_text(s->last_ack_topic, sizeof s->last_ack_topic, topic, "topic");
	copy_text(s->last_ack_consumer, sizeof s->last_ack_consumer, consumer, "consumer");
	if (st != HEX_OK)
		return st;
	if (s->nacked == FAKE_EVENT_ROWS)
		die("stream.ack", "full");
	copy_text(s->acked[s->nacked++], sizeof s->acked[0], m->stream_id, "stream_id");
	return HEX_OK;
}

static enum hex_status stream_stats(void *self, const char *topic, const char *consumer,
                                    struct event_group_stats *out)
{
	struct fake_stream *s = self;
	enum hex_status st = enter(&s->base, STREAM_STATS);
	memset(out, 0, sizeof *out);
	if (st != HEX_OK)
		return st;
	out->lag = (s->nfresh - s->fresh_next) + (s->nidle - s->idle_next);
	out->pending = (s->fresh_next + s->idle_next) - s->nacked;
	return HEX_OK;
}

static const struct event_stream_ops stream_port_ops = {
    .publish = stream_publish,
    .join = stream_join,
    .read = stream_read,
    .claim_idle = stream_claim_idle,
    .ack = stream_ack,
    .stats = stream_stats,
};

struct event_stream fake_stream_port(struct fake_stream *s, struct fake_log *log)
{
	base_init(&s->base, "stream", stream_ops, STREAM_NOPS, log);
	return (struct event_stream){.ops = &stream_port_ops, .self = s};
}

/* ---- event_inbox ---- */

enum {
	INBOX_BEGIN,
	INBOX_COMMIT,
	INBOX_ROLLBACK,
	INBOX_FAIL,
	INBOX_BATCH_BEGIN,
	INBOX_BATCH_COMMIT,
	INBOX_BATCH_ROLLBACK,
	INBOX_NOPS
};
static const char *const inbox_ops[INBOX_NOPS] = {
    "begin", "commit", "rollback", "fail", "batch_begin", "batch_commit", "batch_rollback"};

static void pair_set(struct fake_inbox_pair *p, const char *consumer, const char *event_id)
{
	copy_text(p->consumer, sizeof p->consumer, consumer, "consumer");
	copy_text(p->event_id, sizeof p->event_id, event_id, "event_id");
}

void fake_inbox_mark_applied(struct fake_inbox *i, const char *consumer, const char *event_id)
{
	if (i->napplied == FAKE_EVENT_ROWS)
		die("inbox", "full");
	pair_set(&i->applied[i->napplied++], consumer, event_id);
}

bool fake_inbox_applied(const struct fake_inbox *i, const char *consumer, const char *event_id)
{
	for (int k = 0; k < i->napplied; k++)
		if (strcmp(i->applied[k].consumer, consumer) == 0 &&
		    strcmp(i->applied[k].event_id, event_id) == 0)
			return true;
	return false;
}

const struct fake_inbox_failure *fake_inbox_last_failure(const struct fake_inbox *i)
{
	return i->nfailures > 0 ? &i->failures[i->nfailures - 1] : NULL;
}

static enum hex_status inbox_begin(void *self, const char *consumer, const char *event_id,
                                   bool *first)
{
	struct fake_inbox *i = self;
	enum hex_status st = enter(&i->base, INBOX_BEGIN);
	if (i->in_txn)
		die("inbox.begin", "a transaction is already open");
	if (st != HEX_OK)
		return st;
	*first = !fake_inbox_applied(i, consumer, event_id);
	if (*first) {
		i->in_txn = true;
		pair_set(&i->txn, consumer, event_id);
	}
	return HEX_OK;
}

static enum hex_status inbox_commit(void *self)
{
	struct fake_inbox *i = self;
	enum hex_status st = enter(&i->base, INBOX_COMMIT);
	if (!i->in_txn)
		die("inbox.commit", "no transaction is open");
	if (st != HEX_OK)
		return st; /* still open: the caller rolls it back */
	i->in_txn = false;
	fake_inbox_mark_applied(i, i->txn.consumer, i->txn.event_id);
	return HEX_OK;
}

static void inbox_rollback(void *self)
{
	struct fake_inbox *i = self;
	(void)enter(&i->base, INBOX_ROLLBACK);
	if (!i->in_txn)
		die("inbox.rollback", "no transaction is open");
	i->in_txn = false;
}

static enum hex_status inbox_fail(void *self, const char *consumer, const struct event_msg *m,
                                  const char *error, int64_t now_us, int64_t retry_at_us,
                                  bool *dead)
{
	struct fake_inbox *i = self;
	enum hex_status st = enter(&i->base, INBOX_FAIL);
	/* Its own transaction: the attempt's must be over, or the record would roll back. */
	if (i->in_txn)
		die("inbox.fail", "called inside the attempt's transaction");
	if (error == NULL || error[0] == '\0' || strchr(error, '\n') != NULL)
		die("inbox.fail", "the error must be one non-empty line");
	if (st != HEX_OK)
		return st;
	*dead = retry_at_us == 0;
	for (int k = 0; k < i->nfailures; k++) {
		const struct fake_inbox_failure *f = &i->failures[k];
		if (strcmp(f->consumer, consumer) == 0 && strcmp(f->event_id, m->event_id) == 0 &&
		    f->attempt == m->attempt) {
			*dead = f->retry_at_us == 0; /* recorded before: changes nothing */
			return HEX_OK;
		}
	}
	if (i->nfailures == FAKE_EVENT_ROWS)
		die("inbox.fail", "full");
	struct fake_inbox_failure *f = &i->failures[i->nfailures++];
	memset(f, 0, sizeof *f);
	copy_text(f->consumer, sizeof f->consumer, consumer, "consumer");
	copy_text(f->event_id, sizeof f->event_id, m->event_id, "event_id");
	copy_text(f->error, sizeof f->error, error, "error");
	f->attempt = m->attempt;
	f->now_us = now_us;
	f->retry_at_us = retry_at_us;
	return HEX_OK;
}

static enum hex_status inbox_batch_begin(void *self)
{
	struct fake_inbox *i = self;
	enum hex_status st = enter(&i->base, INBOX_BATCH_BEGIN);
	if (i->in_batch || i->in_txn)
		die("inbox.batch_begin", "a transaction is already open");
	if (st != HEX_OK)
		return st;
	i->in_batch = true;
	i->batch_napplied = i->napplied;
	i->batch_nfailures = i->nfailures;
	return HEX_OK;
}

static void batch_undo(struct fake_inbox *i)
{
	i->napplied = i->batch_napplied;
	i->nfailures = i->batch_nfailures;
	i->in_batch = false;
}

static enum hex_status inbox_batch_commit(void *self)
{
	struct fake_inbox *i = self;
	enum hex_status st = enter(&i->base, INBOX_BATCH_COMMIT);
	if (!i->in_batch || i->in_txn)
		die("inbox.batch_commit", "no batch open, or an attempt still open in it");
	if (st != HEX_OK)
		batch_undo(i); /* a failed commit is a rollback */
	i->in_batch = false;
	return st;
}

static void inbox_batch_rollback(void *self)
{
	struct fake_inbox *i = self;
	(void)enter(&i->base, INBOX_BATCH_ROLLBACK);
	if (!i->in_batch || i->in_txn)
		die("inbox.batch_rollback", "no batch open, or an attempt still open in it");
	batch_undo(i);
}

static const struct event_inbox_ops inbox_port_ops = {
    .begin = inbox_begin,
    .commit = inbox_commit,
    .rollback = inbox_rollback,
    .fail = inbox_fail,
};

static const struct event_inbox_ops inbox_batch_port_ops = {
    .batch_begin = inbox_batch_begin,
    .batch_commit = inbox_batch_commit,
    .batch_rollback = inbox_batch_rollback,
    .begin = inbox_begin,
    .commit = inbox_commit,
    .rollback = inbox_rollback,
    .fail = inbox_fail,
};

struct event_inbox fake_inbox_port(struct fake_inbox *i, struct fake_log *log)
{
	base_init(&i->base, "inbox", inbox_ops, INBOX_NOPS, log);
	return (struct event_inbox){.ops = &inbox_port_ops, .self = i};
}

struct event_inbox fake_inbox_batch_port(struct fake_inbox *i, struct fake_log *log)
{
	base_init(&i->base, "inbox", inbox_ops, INBOX_NOPS, log);
	return (struct event_inbox){.ops = &inbox_batch_port_ops, .self = i};
}

/* ---- dead_letter_repo ---- */

enum { DLQ_LIST, DLQ_GET, DLQ_REPLAY, DLQ_DISCARD, DLQ_COUNT_OPEN, DLQ_NOPS };
static const char *const dlq_ops[DLQ_NOPS] = {"list", "get", "replay", "discard", "count_open"};

int64_t fake_dead_letter_repo_add(struct fake_dead_letter_repo *r, const char *consumer,
                                  const char *event_id, int attempts, const char *error,
                                  const char *payload, int64_t created_at_us)
{
	if (r->count == FAKE_DEAD_LETTERS)
		die("dead_letters", "full");
	struct dead_letter *d = &r->rows[r->count];
	memset(d, 0, sizeof *d);
	d->id = r->count + 1;
	copy_text(d->consumer, sizeof d->consumer, consumer, "consumer");
	copy_text(d->event_id, sizeof d->event_id, event_id, "event_id");
	copy_text(d->topic, sizeof d->topic, EVENT_TOPIC_PAYMENTS, "topic");
	copy_text(d->error, sizeof d->error, error, "error");
	copy_text(r->payloads[r->count], sizeof r->payloads[0], payload, "payload");
	d->attempts = attempts;
	d->status = DEAD_LETTER_OPEN;
	d->created_at_us = created_at_us;
	d->nhistory = 1;
	d->history[0].attempt = attempts;
	d->history[0].failed_at_us = created_at_us;
	copy_text(d->history[0].error, sizeof d->history[0].error, error, "error");
	r->count++;
	return d->id;
}

static struct dead_letter *dlq_row(struct fake_dead_letter_repo *r, int64_t id)
{
	return id >= 1 && id <= r->count ? &r->rows[id - 1] : NULL;
}

const struct dead_letter *fake_dead_letter_repo_find(const struct fake_dead_letter_repo *r,
                                                     int64_t id)
{
	return dlq_row((struct fake_dead_letter_repo *)r, id);
}

static enum hex_status dlq_list(void *self, bool all, int limit, int64_t before_id,
                                struct dead_letter_page *out)
{
	struct fake_dead_letter_repo *r = self;
	enum hex_status st = enter(&r->base, DLQ_LIST);
	limit_check(limit, HEX_LIST_MAX, "dead_letters.list");
	if (before_id < 0)
		die("dead_letters.list", "negative cursor");
	r->last_all = all;
	r->last_limit = limit;
	r->last_before_id = before_id;
	memset(out, 0, sizeof *out);
	if (st != HEX_OK)
		return st;
	for (int k = r->count - 1; k >= 0; k--) {
		const struct dead_letter *d = &r->rows[k];
		if ((before_id > 0 && d->id >= before_id) ||
		    (!all && d->status != DEAD_LETTER_OPEN))
			continue;
		if (out->count == limit) {
			out->has_more = true;
			break;
		}
		out->items[out->count] = *d;
		out->items[out->count].nhistory = 0; /* lists carry no history nor payload */
		out->count++;
	}
	return HEX_OK;
}

static enum hex_status dlq_get(void *self, int64_t id, struct dead_letter *out)
{
	struct fake_dead_letter_repo *r = self;
	enum hex_status st = enter(&r->base, DLQ_GET);
	if (st != HEX_OK)
		return st;
	const struct dead_letter *d = dlq_row(r, id);
	if (d == NULL)
		return HEX_NOT_FOUND;
	*out = *d;
	out->payload = xstrdup(r->payloads[id - 1]);
	return HEX_OK;
}

/* Closes open row id as status; the port's answers for a missing or closed row. */
static enum hex_status dlq_close(struct fake_dead_letter_repo *r, int64_t id, const char *actor,
                                 int64_t now_us, enum dead_letter_status status,
                                 struct dead_letter *out)
{
	copy_text(r->last_actor, sizeof r->last_actor, actor, "actor");
	r->last_now_us = now_us;
	struct dead_letter *d = dlq_row(r, id);
	if (d == NULL)
		return HEX_NOT_FOUND;
	if (d->status != DEAD_LETTER_OPEN) {
		*out = *d;
		return HEX_CONFLICT;
	}
	if (status == DEAD_LETTER_REPLAYED &&
	    r->payloads[id - 1][strspn(r->payloads[id - 1], " \t\r\n")] != '{')
		return HEX_INVALID;
	d->status = status;
	d->resolved_at_us = now_us;
	copy_text(d->resolved_by, sizeof d->resolved_by, actor, "actor");
	*out = *d;
	return HEX_OK;
}

static enum hex_status dlq_replay(void *self, int64_t id, const char *actor, int64_t now_us,
                                  struct dead_letter *out)
{
	struct fake_dead_letter_repo *r = self;
	enum hex_status st = enter(&r->base, DLQ_REPLAY);
	if (st != HEX_OK)
		return st;
	return dlq_close(r, id, actor, now_us, DEAD_LETTER_REPLAYED, out);
}

static enum hex_status dlq_discard(void *self, int64_t id, const char *actor, const char *reason,
                                   int64_t now_us, struct dead_letter *out)
{
	struct fake_dead_letter_repo *r = self;
	enum hex_status st = enter(&r->base, DLQ_DISCARD);
	copy_text(r->last_reason, sizeof r->last_reason, reason, "reason");
	if (st != HEX_OK)
		return st;
	st = dlq_close(r, id, actor, now_us, DEAD_LETTER_DISCARDED, out);
	if (st == HEX_OK) {
		struct dead_letter *d = dlq_row(r, id);
		copy_text(d->reason, sizeof d->reason, reason, "reason");
		copy_text(out->reason, sizeof out->reason, reason, "reason");
	}
	return st;
}

static enum hex_status dlq_count_open(void *self, long *out)
{
	struct fake_dead_letter_repo *r = self;
	enum hex_status st = enter(&r->base, DLQ_COUNT_OPEN);
	if (st != HEX_OK)
		return st;
	*out = 0;
	for (int k = 0; k < r->count; k++)
		*out += r->rows[k].status == DEAD_LETTER_OPEN;
	return HEX_OK;
}

static const struct dead_letter_repo_ops dlq_port_ops = {
    .list = dlq_list,
    .get = dlq_get,
    .replay = dlq_replay,
    .discard = dlq_discard,
    .count_open = dlq_count_open,
};

struct dead_letter_repo fake_dead_letter_repo_port(struct fake_dead_letter_repo *r,
                                                   struct fake_log *log)
{
	base_init(&r->base, "dead_letters", dlq_ops, DLQ_NOPS, log);
	return (struct dead_letter_repo){.ops = &dlq_port_ops, .self = r};
}

/* ---- payment_event_decoder ---- */

enum { DECODER_DECODE, DECODER_NOPS };
static const char *const decoder_ops[DECODER_NOPS] = {"decode"};

void fake_decoder_add(struct fake_decoder *d, const char *payload, const struct payment_event *ev)
{
	if (d->count == FAKE_DECODER_EVENTS)
		die("decoder", "full");
	struct fake_decoder_entry *e = &d->known[d->count++];
	copy_text(e->payload, sizeof e->payload, payload, "payload");
	e->ev = *ev;
}

static enum hex_status decoder_decode(void *self, const char *payload, size_t len,
                                      struct payment_event *out, struct hex_err *err)
{
	struct fake_decoder *d = self;
	enum hex_status st = enter(&d->base, DECODER_DECODE);
	if (st != HEX_OK)
		return hex_fail(err, st, NULL, "injected failure");
	for (int k = 0; k < d->count; k++) {
		const struct fake_decoder_entry *e = &d->known[k];
		if (strlen(e->payload) == len && memcmp(e->payload, payload, len) == 0) {
			*out = e->ev;
			out->payload = payload;
			out->payload_len = len;
			return HEX_OK;
		}
	}
	return hex_fail(err, HEX_INVALID, NULL, "unexpected token at offset 0");
}

static const struct payment_event_decoder_ops decoder_port_ops = {.decode = decoder_decode};

struct payment_event_decoder fake_decoder_port(struct fake_decoder *d, struct fake_log *log)
{
	base_init(&d->base, "decoder", decoder_ops, DECODER_NOPS, log);
	return (struct payment_event_decoder){.ops = &decoder_port_ops, .self = d};
}

/* ---- payment_repo, read side ---- */

enum { LOOKUP_GET, LOOKUP_GET_BY_INTENT, LOOKUP_NOPS };
static const char *const lookup_ops[LOOKUP_NOPS] = {"get", "get_by_intent"};

void fake_payment_lookup_add(struct fake_payment_lookup *l, const struct payment *p)
{
	if (l->count == FAKE_LOOKUP_PAYMENTS)
		die("payments", "full");
	l->rows[l->count++] = *p;
}

static enum hex_status lookup_get(void *self, const char *id, struct payment *out)
{
	struct fake_payment_lookup *l = self;
	enum hex_status st = enter(&l->base, LOOKUP_GET);
	if (st != HEX_OK)
		return st;
	for (int k = 0; k < l->count; k++)
		if (strcmp(l->rows[k].id, id) == 0) {
			*out = l->rows[k];
			return HEX_OK;
		}
	return HEX_NOT_FOUND;
}

static enum hex_status lookup_get_by_intent(void *self, const char *intent_id, struct payment *out)
{
	struct fake_payment_lookup *l = self;
	enum hex_status st = enter(&l->base, LOOKUP_GET_BY_INTENT);
	if (st != HEX_OK)
		return st;
	for (int k = 0; k < l->count; k++)
		if (l->rows[k].stripe_payment_intent_id[0] != '\0' &&
		    strcmp(l->rows[k].stripe_payment_intent_id, intent_id) == 0) {
			*out = l->rows[k];
			return HEX_OK;
		}
	return HEX_NOT_FOUND;
}

static const struct payment_repo_ops lookup_port_ops = {
    .get = lookup_get,
    .get_by_intent = lookup_get_by_intent,
};

struct payment_repo fake_payment_lookup_port(struct fake_payment_lookup *l, struct fake_log *log)
{
	base_init(&l->base, "payments", lookup_ops, LOOKUP_NOPS, log);
	return (struct payment_repo){.ops = &lookup_port_ops, .self = l};
}

/* ---- ledger_repo ---- */

enum { LEDGER_POST, LEDGER_GET_BY_KEY, LEDGER_BALANCES, LEDGER_NOPS };
static const char *const ledger_ops[LEDGER_NOPS] = {"post", "get_by_key", "balances"};

static bool same_ref(const struct ledger_account_ref *a, const struct ledger_account_ref *b)
{
	return a->kind == b->kind && strcmp(a->owner_id, b->owner_id) == 0 &&
	       strcmp(a->currency, b->currency) == 0;
}

static struct ledger_account *account_find(struct fake_ledger_repo *r,
                                           const struct ledger_account_ref *ref)
{
	for (int k = 0; k < r->naccounts; k++)
		if (same_ref(&r->accounts[k].ref, ref))
			return &r->accounts[k];
	return NULL;
}

static struct ledger_account *account_of(struct fake_ledger_repo *r,
                                         const struct ledger_account_ref *ref)
{
	struct ledger_account *a = account_find(r, ref);
	if (a != NULL)
		return a;
	if (r->naccounts == FAKE_LEDGER_ACCOUNTS)
		die("ledger", "too many accounts");
	a = &r->accounts[r->naccounts];
	memset(a, 0, sizeof *a);
	snprintf(a->id, sizeof a->id, "00000000-0000-4000-8000-%012d", 900 + r->naccounts);
	a->ref = *ref;
	a->allow_negative = ledger_kind_allows_negative(ref->kind);
	r->naccounts++;
	return a;
}

const struct ledger_txn *fake_ledger_repo_find(const struct fake_ledger_repo *r, const char *key)
{
	for (int k = 0; k < r->ntxns; k++)
		if (strcmp(r->txns[k].idempotency_key, key) == 0)
			return &r->txns[k];
	return NULL;
}

int64_t fake_ledger_repo_balance(const struct fake_ledger_repo *r, enum ledger_account_kind kind,
                                 const char *owner_id, const char *currency)
{
	struct ledger_account_ref ref = {.kind = kind};
	copy_text(ref.owner_id, sizeof ref.owner_id, owner_id, "owner_id");
	copy_text(ref.currency, sizeof ref.currency, currency, "currency");
	const struct ledger_account *a = account_find((struct fake_ledger_repo *)r, &ref);
	return a != NULL ? a->balance : 0;
}

static enum hex_status ledger_get_by_key(void *self, const char *key, struct ledger_txn *out)
{
	struct fake_ledger_repo *r = self;
	enum hex_status st = enter(&r->base, LEDGER_GET_BY_KEY);
	if (st != HEX_OK)
		return st;
	const struct ledger_txn *t = fake_ledger_repo_find(r, key);
	if (t == NULL)
		return HEX_NOT_FOUND;
	*out = *t;
	return HEX_OK;
}

static enum hex_status ledger_post(void *self, const struct ledger_txn_request *t, int64_t now_us,
                                   struct ledger_txn *out, bool *duplicate)
{
	struct fake_ledger_repo *r = self;
	enum hex_status st = enter(&r->base, LEDGER_POST);
	*duplicate = false;
	if (st != HEX_OK)
		return st;
	struct hex_err err = {0};
	if (ledger_txn_check(t, &err) != HEX_OK)
		die("ledger.post", "a transaction that fails ledger_txn_check()");
	const struct ledger_txn *first = fake_ledger_repo_find(r, t->idempotency_key);
	if (first != NULL) {
		*out = *first;
		*duplicate = true;
		return HEX_OK;
	}
	struct ledger_account *acc[LEDGER_ENTRIES_MAX];
	for (int k = 0; k < t->n; k++)
		acc[k] = account_of(r, &t->postings[k].account);
	for (int k = 0; k < t->n; k++) {
		int64_t total = acc[k]->balance;
		for (int j = 0; j < t->n; j++)
			if (acc[j] == acc[k])
				total += t->postings[j].amount;
		if (!acc[k]->allow_negative && total < 0)
			return HEX_CONFLICT;
	}
	if (r->ntxns == FAKE_LEDGER_TXNS)
		die("ledger.post", "too many transactions");
	struct ledger_txn *x = &r->txns[r->ntxns++];
	memset(x, 0, sizeof *x);
	copy_text(x->id, sizeof x->id, t->id, "id");
	copy_text(x->idempotency_key, sizeof x->idempotency_key, t->idempotency_key, "key");
	copy_text(x->reference, sizeof x->reference, t->reference, "reference");
	x->created_at_us = now_us;
	x->n = t->n;
	for (int k = 0; k < t->n; k++) {
		struct ledger_entry *e = &x->entries[k];
		e->id = ++r->next_entry;
		copy_text(e->transaction_id, sizeof e->transaction_id, t->id, "id");
		copy_text(e->account_id, sizeof e->account_id, acc[k]->id, "account");
		e->account = t->postings[k].account;
		e->amount = t->postings[k].amount;
		copy_text(e->reference, sizeof e->reference, t->reference, "reference");
		e->created_at_us = now_us;
		acc[k]->balance += e->amount;
	}
	*out = *x;
	return HEX_OK;
}

static enum hex_status ledger_balances(void *self, const char *user_id, struct ledger_balances *out)
{
	struct fake_ledger_repo *r = self;
	enum hex_status st = enter(&r->base, LEDGER_BALANCES);
	memset(out, 0, sizeof *out);
	if (st != HEX_OK)
		return st;
	for (int k = 0; k < r->naccounts && out->n < LEDGER_WALLETS_MAX; k++)
		if (r->accounts[k].ref.kind == LEDGER_WALLET &&
		    strcmp(r->accounts[k].ref.owner_id, user_id) == 0)
			out->wallets[out->n++] = r->accounts[k];
	return HEX_OK;
}

static const struct ledger_repo_ops ledger_port_ops = {
    .post = ledger_post,
    .get_by_key = ledger_get_by_key,
    .balances = ledger_balances,
};

struct ledger_repo fake_ledger_repo_port(struct fake_ledger_repo *r, struct fake_log *log)
{
	base_init(&r->base, "ledger", ledger_ops, LEDGER_NOPS, log);
	return (struct ledger_repo){.ops = &ledger_port_ops, .self = r};
}
