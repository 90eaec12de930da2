/*
 * http_idempotency.c: Idempotency-Key on routes that move money (API.md): the first 2xx
 * answer to a key is stored and a retry with the same body gets it back byte for byte.
 * Everything else goes to the handler, whose use case owns the rules: a malformed key,
 * the same key with parameters that differ only in form (currency case), with other
 * parameters (409 idempotency_key_reused), and concurrent duplicates (a unique key per
 * user below). This layer only makes a true retry cheap and exact.
 */
#include "adapters/http/http_idempotency.h"

#include "adapters/http/http_routes.h"

#include "adapters/crypto/sha256.h"
#include "core/payment.h"
#include "core/xmalloc.h"

#include <stdlib.h>
#include <string.h>

/* The same parameters in any order or layout give the same fingerprint. */
static void fingerprint(const struct http_exchange *x, char out[HEX_FINGERPRINT_LEN + 1])
{
	char *canon = x->json != NULL ? json_dumps(x->json, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	const char *data = canon != NULL ? canon : "";
	crypto_sha256_hex(data, strlen(data), out);
	free(canon);
}

bool http_idempotency_begin(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	struct idempotency_store *st = &svc->idempotency;
	if (x->idempotency_key == NULL || st->ops == NULL)
		return false;
	if (payment_client_key_check(x->idempotency_key, &err) != HEX_OK)
		return false; /* the use case names it, after the body's fields */
	struct idempotent_answer a = {0};
	if (st->ops->find(st->self, x->caller.user.id, x->route->pattern, x->idempotency_key, &a) !=
	    HEX_OK)
		return false; /* none yet, or the store is down: the use case still dedupes */
	char fp[HEX_FINGERPRINT_LEN + 1];
	fingerprint(x, fp);
	if (strcmp(fp, a.fingerprint) != 0) {
		free(a.body);
		return false;
	}
	http_reply_header(x, "Idempotent-Replayed", "true");
	http_reply_text(x, a.status, NULL, a.body, strlen(a.body));
	return true;
}

void http_idempotency_finish(struct http_exchange *x, struct hex_services *svc)
{
	struct idempotency_store *st = &svc->idempotency;
	if (x->idempotency_key == NULL || st->ops == NULL || x->status < 200 || x->status > 299 ||
	    x->reply_body == NULL)
		return;
	char fp[HEX_FINGERPRINT_LEN + 1];
	fingerprint(x, fp);
	/* A failure here only costs the byte-for-byte replay; the use case still dedupes. */
	(void)st->ops->save(st->self, x->caller.user.id, x->route->pattern, x->idempotency_key, fp,
	                    x->status, x->reply_body);
}
