/* admin_logq.c: a mutex-guarded list with a bound; one short lock per line. */
#include "adapters/admin/admin_logq.h"

#include "core/xmalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct admin_logq {
	pthread_mutex_t mu;
	struct admin_log_line *head, *tail;
	int count, capacity;
	uint64_t dropped;
};

struct admin_logq *admin_logq_new(int capacity)
{
	struct admin_logq *q = xcalloc(1, sizeof *q);
	pthread_mutex_init(&q->mu, NULL);
	q->capacity = capacity < 1 ? 1 : capacity;
	return q;
}

void admin_logq_lines_free(struct admin_log_line *lines)
{
	while (lines != NULL) {
		struct admin_log_line *next = lines->next;
		free(lines);
		lines = next;
	}
}

void admin_logq_free(struct admin_logq *q)
{
	if (q == NULL)
		return;
	admin_logq_lines_free(q->head);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

bool admin_logq_push(struct admin_logq *q, const char *line, size_t len)
{
	/* Copied before taking the lock, so that the lock covers pointer moves only. */
	struct admin_log_line *l = xmalloc(sizeof *l + len + 1);
	l->next = NULL;
	l->len = len;
	memcpy(l->text, line, len);
	l->text[len] = '\0';
	bool wake = false;
	pthread_mutex_lock(&q->mu);
	if (q->count == q->capacity) {
		q->dropped++;
	} else {
		wake = q->count == 0;
		if (q->tail != NULL)
			q->tail->next = l;
		else
			q->head = l;
		q->tail = l;
		q->count++;
		l = NULL;
	}
	pthread_mutex_unlock(&q->mu);
	free(l); /* dropped */
	return wake;
}

struct admin_log_line *admin_logq_take(struct admin_logq *q, uint64_t *dropped)
{
	pthread_mutex_lock(&q->mu);
	struct admin_log_line *lines = q->head;
	*dropped = q->dropped;
	q->head = q->tail = NULL;
	q->count = 0;
	q->dropped = 0;
	pthread_mutex_unlock(&q->mu);
	return lines;
}
