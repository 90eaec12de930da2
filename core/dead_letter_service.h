/*
 * dead_letter_service: what operators do with events the pipeline gave up on (the admin
 * port's DLQ verbs and `hexd dlq`). Replay schedules the event again for the consumer that
 * failed it, which applies it at most once (it records every event it applied); discard
 * closes it with a reason. Both keep the row and its history: the audit trail.
 */
#ifndef HEX_DEAD_LETTER_SERVICE_H
#define HEX_DEAD_LETTER_SERVICE_H

#include "core/ports/clock.h"
#include "core/ports/dead_letter_repo.h"

struct dead_letter_service {
	struct dead_letter_repo repo;
	struct clock clock;
};

/* HEX_INVALID naming "limit" unless 1 <= limit <= HEX_LIST_MAX, "cursor" if before_id < 0. */
enum hex_status dead_letter_service_list(struct dead_letter_service *s, bool all, int limit,
                                         int64_t before_id, struct dead_letter_page *out,
                                         struct hex_err *err) HEX_MUST_CHECK;
/*
 * out->payload is the caller's to free(). HEX_NOT_FOUND "dead letter N not found".
 * Every call here clears out first: free a payload from an earlier show() before reusing it.
 */
enum hex_status dead_letter_service_show(struct dead_letter_service *s, int64_t id,
                                         struct dead_letter *out,
                                         struct hex_err *err) HEX_MUST_CHECK;
/*
 * actor: who asks (1..DEAD_LETTER_ACTOR_MAX printable characters, field "actor").
 * HEX_NOT_FOUND; HEX_CONFLICT "dead letter N is already replayed|discarded";
 * HEX_INVALID field "payload" when it is not JSON (it can only be discarded).
 */
enum hex_status dead_letter_service_replay(struct dead_letter_service *s, int64_t id,
                                           const char *actor, struct dead_letter *out,
                                           struct hex_err *err) HEX_MUST_CHECK;
/* reason: 1..DEAD_LETTER_REASON_MAX printable characters (field "reason"). */
enum hex_status dead_letter_service_discard(struct dead_letter_service *s, int64_t id,
                                            const char *actor, const char *reason,
                                            struct dead_letter *out,
                                            struct hex_err *err) HEX_MUST_CHECK;

#endif
