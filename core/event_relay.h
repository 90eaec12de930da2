/*
 * event_relay: moves due outbox rows onto the event stream. At least once: a row is marked
 * published only after the stream took it, so a relay that dies in between publishes it
 * again later; consumers make that harmless (they record every event they applied).
 * Several relays (threads, processes) may run at once: their claims never overlap.
 */
#ifndef HEX_EVENT_RELAY_H
#define HEX_EVENT_RELAY_H

#include "core/ports/clock.h"
#include "core/ports/event_stream.h"
#include "core/ports/outbox_repo.h"

struct event_relay {
	struct outbox_repo outbox;
	struct event_stream stream;
	struct clock clock;
	int batch; /* rows per claim, 1..EVENT_BATCH_MAX */
};

/*
 * Claims one batch of due rows, publishes them in order and marks them published.
 * *published gets how many (0: nothing was due). When the stream fails part-way the
 * whole claim is released (rows published before the failure go out again later) and the
 * answer is the stream's status (HEX_UNAVAILABLE when it is down); a database failure is
 * the database's. Nothing is lost either way.
 */
enum hex_status event_relay_run_once(struct event_relay *r, int *published,
                                     struct hex_err *err) HEX_MUST_CHECK;

#endif
