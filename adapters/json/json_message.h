/* json_message: the JSON shapes of messages and message pages (API.md). */
#ifndef HEX_JSON_MESSAGE_H
#define HEX_JSON_MESSAGE_H

#include "core/message.h"

#include <jansson.h>

/*
 * New reference: {id, user_id, body, created_at, updated_at}. NULL only if m breaks the
 * core's rules (a body that is not UTF-8), which the caller answers as an internal error.
 */
json_t *json_message(const struct message *m);

/*
 * New reference: {"data": [message...], "next_cursor": next_cursor or null}. NULL as for
 * json_message().
 */
json_t *json_message_page(const struct message_page *p, const char *next_cursor);

#endif
