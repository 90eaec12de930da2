/* http_health.c: liveness and readiness. */
#include "adapters/http/http_handlers.h"

void http_health_live(struct http_exchange *x, struct hex_services *svc)
{
	(void)svc;
	http_reply_json(x, 200, json_pack("{s:s}", "status", "ok"));
}

void http_health_ready(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	enum hex_status st = svc->ready.ops->check(svc->ready.self, &err);
	if (st != HEX_OK) {
		http_reply_error(x, HEX_UNAVAILABLE, &err);
		return;
	}
	http_reply_json(x, 200, json_pack("{s:s}", "status", "ready"));
}
