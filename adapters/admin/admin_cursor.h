/*
 * admin_cursor: the opaque next_cursor of the admin port's lists: base64url of
 * "<kind>1:<position>:<id>:<tag>". kind tells lists apart (a cursor of one list is refused
 * by another); position and id are the keyset position of the last item (a time or an
 * id; id may be ""); tag is a fingerprint of the listing's filters, so that a cursor
 * replayed with other filters is refused rather than silently walking another list.
 */
#ifndef HEX_ADMIN_CURSOR_H
#define HEX_ADMIN_CURSOR_H

#include "adapters/admin/admin_call.h"

#define ADMIN_CURSOR_MAX 128

struct admin_cursor {
	int64_t position;
	char id[HEX_ID_LEN + 1]; /* "" or a lower-case UUID */
	uint64_t tag;
};

/* id: NULL, "" or a UUID. */
void admin_cursor_encode(char kind, int64_t position, const char *id, uint64_t tag,
                         char out[ADMIN_CURSOR_MAX]);

/*
 * Decodes text, a cursor of this kind that we made (and, when want_tag is not NULL, of a
 * listing with that tag); else fails the call (invalid_argument, field "cursor").
 */
bool admin_cursor_decode_or_fail(struct admin_call *c, char kind, const char *text,
                                 const uint64_t *want_tag, struct admin_cursor *out);

/* A fingerprint of n filter values (NULL for an absent one). */
uint64_t admin_cursor_tag(int n, const char *const *values);

#endif
