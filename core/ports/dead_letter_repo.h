/*
 * dead_letter_repo: events a consumer gave up on, kept with their payload and attempt
 * history until an operator replays or discards them. Rows are never deleted: a replay
 * or a discard closes the row (who, when, why) and the history stays.
 */
#ifndef HEX_PORT_DEAD_LETTER_REPO_H
#define HEX_PORT_DEAD_LETTER_REPO_H

#include "core/event.h"
#include "core/user.h"

#define DEAD_LETTER_HISTORY_MAX 16
#define DEAD_LETTER_ACTOR_MAX   63
#define DEAD_LETTER_REASON_MAX  255

enum dead_letter_status { DEAD_LETTER_OPEN = 0, DEAD_LETTER_REPLAYED, DEAD_LETTER_DISCARDED };

struct dead_letter_attempt {
	int attempt;
	int64_t failed_at_us;
	char error[EVENT_ERROR_MAX + 1];
};

struct dead_letter {
	int64_t id;
	char consumer[EVENT_CONSUMER_MAX + 1];
	char event_id[EVENT_ID_MAX + 1];
	char topic[EVENT_TOPIC_MAX + 1];
	int attempts;                    /* the last attempt's number */
	char error[EVENT_ERROR_MAX + 1]; /* the last attempt's error */
	enum dead_letter_status status;
	int64_t created_at_us;
	int64_t resolved_at_us; /* 0 while open */
	char resolved_by[DEAD_LETTER_ACTOR_MAX + 1];
	char reason[DEAD_LETTER_REASON_MAX + 1]; /* a discard's reason */
	char *payload; /* owned (malloc) by the caller of get(); NULL in lists */
	int nhistory;  /* attempts listed, oldest first (get() only) */
	struct dead_letter_attempt history[DEAD_LETTER_HISTORY_MAX];
};

struct dead_letter_page {
	int count;
	bool has_more;
	struct dead_letter items[HEX_LIST_MAX];
};

struct dead_letter_repo_ops {
	/* Up to limit (1..HEX_LIST_MAX) rows with an id below before_id (0: from the newest),
	 * newest first; open ones only unless all. */
	enum hex_status (*list)(void *self, bool all, int limit, int64_t before_id,
	                        struct dead_letter_page *out);
	/* One row with its payload and history; HEX_NOT_FOUND if no such id. */
	enum hex_status (*get)(void *self, int64_t id, struct dead_letter *out);
	/*
	 * In one transaction: an open row becomes replayed (by actor at now_us) and its event
	 * is scheduled again for its consumer at once, as attempt attempts + 1. HEX_NOT_FOUND
	 * if no such id, HEX_CONFLICT if the row is not open. out gets the row as stored.
	 */
	enum hex_status (*replay)(void *self, int64_t id, const char *actor, int64_t now_us,
	                          struct dead_letter *out);
	/* An open row becomes discarded with reason. Errors as for replay. */
	enum hex_status (*discard)(void *self, int64_t id, const char *actor, const char *reason,
	                           int64_t now_us, struct dead_letter *out);
	/* How many rows are open. */
	enum hex_status (*count_open)(void *self, long *out);
};

struct dead_letter_repo {
	const struct dead_letter_repo_ops *ops;
	void *self;
};

const char *dead_letter_status_name(enum dead_letter_status s);

#endif
