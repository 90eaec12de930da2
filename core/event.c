/* event.c: the pipeline's shared rules: batches, the retry delay, consumer names. */
#include "core/event.h"

#include <stdlib.h>
#include <string.h>

void event_batch_clear(struct event_batch *b)
{
	for (int i = 0; i < b->n; i++) {
		free(b->items[i].payload);
		b->items[i].payload = NULL;
	}
	b->n = 0;
}

int64_t event_retry_delay_ms(const struct event_retry_policy *p, int attempt, uint32_t random)
{
	if (attempt < 1 || attempt >= p->max_attempts)
		return -1;
	int64_t delay = p->base_ms;
	for (int i = 1; i < attempt && delay < p->max_ms; i++)
		delay *= 2;
	if (delay > p->max_ms)
		delay = p->max_ms;
	/* Half fixed, so that a retry never comes at once; half spread, so that events that
	 * failed together (a database restart) do not all come back together. */
	int64_t half = delay / 2;
	return half + (int64_t)(((uint64_t)(delay - half) * random) / UINT32_MAX);
}

bool event_consumer_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > EVENT_CONSUMER_MAX)
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}
