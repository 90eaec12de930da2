/* http_idempotency: stored first answers for routes that accept Idempotency-Key. */
#ifndef HEX_HTTP_IDEMPOTENCY_H
#define HEX_HTTP_IDEMPOTENCY_H

#include "adapters/http/http_exchange.h"

/* Before the handler: true when it replayed a stored answer. */
bool http_idempotency_begin(struct http_exchange *x, struct hex_services *svc);
/* After the handler: remembers a 2xx answer for its key. */
void http_idempotency_finish(struct http_exchange *x, struct hex_services *svc);

#endif
