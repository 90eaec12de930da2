/*
 * redis_event_stream: the event_stream port over Redis Streams (7.0+), on one
 * synchronous redis_conn.
 *
 * Keys: `hex:events:<topic>` is the topic's stream, read by every consumer group;
 * `hex:events:<topic>:retry:<consumer>` is the retry stream of one group, where events
 * addressed to that group alone go. Each group (named after its consumer) exists on both.
 * An entry has the fields event_id, topic, consumer, attempt, outbox_id and payload
 * (binary-safe). Entries are added with XADD * and never trimmed (no MAXLEN/MINID): an
 * entry some group has not acknowledged yet must never be cut away, or its event is lost.
 *
 * read() takes from the retry stream first, then from the topic's stream, each without
 * waiting, and only when both were empty waits up to block_ms on both at once (one
 * XREADGROUP over both keys could hand out `max` entries per stream, more than asked
 * for). If that wait is answered by both streams together with more than max entries,
 * the rest stay pending on the member until claim_idle() takes them over.
 *
 * Redis ends a wait at its own clock tick (hz 10: up to ~100 ms after block_ms).
 *
 * join() looks (XINFO GROUPS) before it creates (XGROUP CREATE <key> <group> 0 MKSTREAM),
 * so the usual join of a group that exists costs no error reply. A group found missing
 * by read() (Redis restarted empty, or FLUSHALL) is joined again and the read tried once
 * more. claim_idle() (XAUTOCLAIM from 0-0, retry stream first, max in all, at most 4
 * calls per stream) and stats() see a missing stream or group as nothing pending.
 * stats() takes both numbers from XINFO GROUPS: `pending` (the count XPENDING's summary
 * gives) and `lag`; the lag is -1 when Redis does not know it for either stream.
 *
 * An entry whose fields cannot be read (a field missing or repeated, attempt or
 * outbox_id not a number in range, topic or consumer not those of the stream it sits
 * on, an empty or too long event_id) comes back with event_id "", attempt 1,
 * outbox_id 0, the topic and consumer of the stream it was read from, and as payload a
 * readable text: why, then every field with non-printable bytes as \xNN (a value is cut
 * after 4096 bytes; the entry itself stays in the stream). Fields of other names are
 * ignored, so that a later version may add some.
 *
 * Status: as the port says, plus HEX_INVALID (logged) for arguments the adapter cannot
 * turn into keys or commands: a topic that is not 1..EVENT_TOPIC_MAX of [a-z0-9_.-], a
 * consumer that fails event_consumer_name_valid(), a member that is not 1..255 bytes of
 * printable ASCII, max outside 1..EVENT_BATCH_MAX, block_ms < 0, min_idle_ms < 0, a
 * message to publish with an empty event_id, attempt < 1 or outbox_id < 0, an ack with
 * an empty stream_id or of another consumer's retry entry. HEX_UNAVAILABLE when the connection
 * failed (or is backing off); an error reply on a live connection is HEX_INTERNAL. A read or claim
 * that got some entries before a later step failed returns HEX_OK with those (they are now pending
 * on the member; dropping them would leave them there until a claim).
 *
 * Not thread-safe: one port per redis_conn, one redis_conn per thread.
 */
#ifndef HEX_REDIS_EVENT_STREAM_H
#define HEX_REDIS_EVENT_STREAM_H

#include "adapters/redis/redis_conn.h"
#include "core/ports/event_stream.h"

#define REDIS_EVENT_STREAM_MEMBER_MAX 255
/* How much of one field value a malformed entry's dump shows. */
#define REDIS_EVENT_STREAM_DUMP_VALUE_MAX 4096

/*
 * The port over c (borrowed: it must outlive the port). c's command timeout must be
 * longer than any block_ms given to read(), or a wait that ends empty is a timeout,
 * which drops the connection and is HEX_UNAVAILABLE.
 *
 * read() and claim_idle() empty `out` first without freeing (pass a batch that is
 * zeroed or was cleared); on HEX_OK the caller owns every items[i].payload and frees
 * them with event_batch_clear(). On any other status out->n is 0.
 */
struct event_stream redis_event_stream_port(struct redis_conn *c);

#endif
