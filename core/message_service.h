/*
 * message_service: the message use cases and their ownership rules. The owner of a new
 * message is always the caller; only the owner changes a message; the owner or an admin
 * reads and deletes it; a list shows the caller's messages, an admin's list anyone's.
 */
#ifndef HEX_MESSAGE_SERVICE_H
#define HEX_MESSAGE_SERVICE_H

#include "core/ports/clock.h"
#include "core/ports/id_source.h"
#include "core/ports/message_repo.h"

struct message_service {
	struct message_repo repo;
	struct clock clock;
	struct id_source ids;
};

/* What a client asks to list, before the rules; strings are borrowed. */
struct message_list_request {
	const char *user_id; /* NULL: the caller's messages (an admin's: everyone's) */
	const char *query;   /* text search; NULL, empty or blank: none */
	bool has_since;
	int64_t since_us; /* inclusive */
	bool has_until;
	int64_t until_us; /* exclusive */
	int limit;        /* 1..HEX_LIST_MAX */
	const struct message_cursor *after;
};

/*
 * In every call, caller is the authenticated user (id and role are used) and out's body,
 * on HEX_OK, is the caller's to free (message_clear(), message_page_clear()).
 */
enum hex_status message_service_create(struct message_service *s, const struct user *caller,
                                       const char *body, struct message *out,
                                       struct hex_err *err) HEX_MUST_CHECK;
/* HEX_NOT_FOUND for an unknown or malformed id, HEX_FORBIDDEN unless owner or admin. */
enum hex_status message_service_read(struct message_service *s, const struct user *caller,
                                     const char *id, struct message *out,
                                     struct hex_err *err) HEX_MUST_CHECK;
/* Changes the body only. Checks the body, then that id exists, then that caller owns it. */
enum hex_status message_service_update(struct message_service *s, const struct user *caller,
                                       const char *id, const char *body, struct message *out,
                                       struct hex_err *err) HEX_MUST_CHECK;
/* HEX_NOT_FOUND for an unknown or malformed id, HEX_FORBIDDEN unless owner or admin. */
enum hex_status message_service_delete(struct message_service *s, const struct user *caller,
                                       const char *id, struct hex_err *err) HEX_MUST_CHECK;
/*
 * Every parameter is checked before the repository is asked: limit, user_id (a UUID;
 * someone else's only for an admin: else HEX_FORBIDDEN), query (valid UTF-8, at most
 * HEX_MESSAGE_QUERY_MAX characters), since <= until, and a cursor made for the same
 * filters. HEX_INVALID names the parameter.
 */
enum hex_status message_service_list(struct message_service *s, const struct user *caller,
                                     const struct message_list_request *rq,
                                     struct message_page *out, struct hex_err *err) HEX_MUST_CHECK;

#endif
