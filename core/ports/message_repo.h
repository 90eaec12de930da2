/* message_repo: durable storage of messages (the source of truth). */
#ifndef HEX_PORT_MESSAGE_REPO_H
#define HEX_PORT_MESSAGE_REPO_H

#include "core/message.h"

/*
 * Every message an operation gives back has a body the caller owns (message_clear(),
 * message_page_clear()); on failure nothing is left to free. Ids that are not canonical
 * UUIDs are HEX_NOT_FOUND.
 */
struct message_repo_ops {
	/* Stores m as given. HEX_NOT_FOUND if its owner does not exist (any more). */
	enum hex_status (*insert)(void *self, const struct message *m);
	/* HEX_NOT_FOUND if no such message. */
	enum hex_status (*get)(void *self, const char *id, struct message *out);
	/*
	 * Replaces the body and updated_at of message id if owner_id owns it; out gets the
	 * message as stored. HEX_NOT_FOUND if there is no such message of that owner.
	 */
	enum hex_status (*update_body)(void *self, const char *id, const char *owner_id,
	                               const char *body, int64_t updated_at_us,
	                               struct message *out);
	/* HEX_NOT_FOUND if no such message. */
	enum hex_status (*remove)(void *self, const char *id);
	/* One page of f, newest first; out->filter_tag is left to the caller. */
	enum hex_status (*list)(void *self, const struct message_filter *f,
	                        struct message_page *out);
};

struct message_repo {
	const struct message_repo_ops *ops;
	void *self;
};

#endif
