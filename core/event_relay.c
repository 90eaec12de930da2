/* event_relay.c: the outbox relay use case over the outbox_repo and event_stream ports. */
#include "core/event_relay.h"

#include "core/xmalloc.h"

#include <stdlib.h>

enum hex_status event_relay_run_once(struct event_relay *r, int *published, struct hex_err *err)
{
	*published = 0;
	struct event_batch *b = xcalloc(1, sizeof *b);
	int64_t now = r->clock.ops->now_us(r->clock.self);
	enum hex_status st = r->outbox.ops->claim(r->outbox.self, r->batch, now, b);
	if (st != HEX_OK) {
		st = hex_fail(err, st, NULL, "the outbox cannot be read");
		goto out;
	}
	for (int i = 0; i < b->n; i++) {
		st = r->stream.ops->publish(r->stream.self, &b->items[i]);
		if (st != HEX_OK) {
			r->outbox.ops->release(r->outbox.self);
			st = hex_fail(err, st, NULL, "the event stream refused event %s",
			              b->items[i].event_id);
			goto out;
		}
	}
	if (b->n > 0) {
		st = r->outbox.ops->published(r->outbox.self, b,
		                              r->clock.ops->now_us(r->clock.self));
		if (st != HEX_OK) {
			/* Already on the stream: they go out again, and consumers skip the repeats.
			 */
			st = hex_fail(err, st, NULL, "published events could not be marked");
			goto out;
		}
	}
	*published = b->n;
out:
	event_batch_clear(b);
	free(b);
	return st;
}
