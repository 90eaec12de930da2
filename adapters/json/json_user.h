/* json_user: the JSON shapes of users and token pairs (API.md). */
#ifndef HEX_JSON_USER_H
#define HEX_JSON_USER_H

#include "core/auth_service.h"

#include <jansson.h>

/* New reference: {id, email, membership, created_at, updated_at}; never a hash. */
json_t *json_user(const struct user *u);
/* New reference: {id, email, membership, access_token, refresh_token, token_type, expires_in}. */
json_t *json_auth_tokens(const struct auth_tokens *t);

#endif
