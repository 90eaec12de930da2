/* message.h: the message domain type, its rules, and the shapes of a message list. */
#ifndef HEX_MESSAGE_H
#define HEX_MESSAGE_H

#include "core/user.h"

/* Limits count Unicode code points, the characters a person sees, not bytes. */
#define HEX_MESSAGE_BODY_MAX  10000
#define HEX_MESSAGE_QUERY_MAX 256
/* A UTF-8 code point takes at most 4 bytes. */
#define HEX_MESSAGE_BODY_BYTES_MAX (4 * HEX_MESSAGE_BODY_MAX)

struct message {
	char id[HEX_ID_LEN + 1];
	char user_id[HEX_ID_LEN + 1]; /* the owner; never changes */
	char *body;                   /* owned (malloc'd) UTF-8 text; free with message_clear() */
	int64_t created_at_us;        /* microseconds since the Unix epoch, UTC */
	int64_t updated_at_us;
};

/*
 * Keyset position in the list order (created_at DESC, id DESC). filter_tag binds the
 * position to the filters of the walk that produced it (see message_filter_tag()).
 */
struct message_cursor {
	int64_t created_at_us;
	char id[HEX_ID_LEN + 1];
	uint64_t filter_tag;
};

/*
 * What the repository lists: already checked and normalised by the service. Newest
 * first; the time bounds are half-open, since <= created_at < until.
 */
struct message_filter {
	const char *user_id; /* lower-case owner id, or NULL for every user's messages */
	const char *query;   /* trimmed, non-empty text search, or NULL */
	bool has_since;
	int64_t since_us;
	bool has_until;
	int64_t until_us;
	int limit;                          /* 1..HEX_LIST_MAX */
	const struct message_cursor *after; /* NULL for the first page */
};

struct message_page {
	struct message items[HEX_LIST_MAX]; /* bodies owned: free with message_page_clear() */
	int count;
	bool has_more;       /* the next cursor is the last item's position */
	uint64_t filter_tag; /* for the next cursor */
};

/*
 * HEX_OK if body is 1..HEX_MESSAGE_BODY_MAX code points of valid UTF-8 and not only
 * white space; else HEX_INVALID naming "body".
 */
enum hex_status message_body_check(const char *body, struct hex_err *err) HEX_MUST_CHECK;

/* Code points in s, or -1 if s is not valid UTF-8 (overlong forms and surrogates too). */
long message_utf8_length(const char *s);

/* A message id is a canonical UUID text (either case). */
bool message_id_valid(const char *id);

/* A fingerprint of f's filters (not its limit or cursor), for binding cursors to a walk. */
uint64_t message_filter_tag(const struct message_filter *f);

/* Frees m's body and leaves m without one; NULL ok. */
void message_clear(struct message *m);
/* Frees every body of the page and empties it; NULL ok. */
void message_page_clear(struct message_page *p);

#endif
