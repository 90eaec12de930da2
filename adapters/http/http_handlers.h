/* http_handlers: the handlers the route table points to, one file per resource. */
#ifndef HEX_HTTP_HANDLERS_H
#define HEX_HTTP_HANDLERS_H

#include "adapters/http/http_exchange.h"

/* http_health.c */
void http_health_live(struct http_exchange *x, struct hex_services *svc);
void http_health_ready(struct http_exchange *x, struct hex_services *svc);

/* http_metrics.c */
void http_metrics_show(struct http_exchange *x, struct hex_services *svc);

/* http_payments.c */
void http_payments_create(struct http_exchange *x, struct hex_services *svc);
void http_payments_show(struct http_exchange *x, struct hex_services *svc);
void http_payments_list(struct http_exchange *x, struct hex_services *svc);
void http_payments_checkout(struct http_exchange *x, struct hex_services *svc);

/* http_wallet.c */
void http_wallet_show(struct http_exchange *x, struct hex_services *svc);
void http_wallet_entries(struct http_exchange *x, struct hex_services *svc);
void http_wallet_transfer(struct http_exchange *x, struct hex_services *svc);

/* http_webhooks.c */
void http_webhooks_stripe(struct http_exchange *x, struct hex_services *svc);
void http_webhooks_membership(struct http_exchange *x, struct hex_services *svc);

/* http_users.c */
void http_users_create(struct http_exchange *x, struct hex_services *svc);
void http_users_show(struct http_exchange *x, struct hex_services *svc);
void http_users_list(struct http_exchange *x, struct hex_services *svc);
void http_users_update(struct http_exchange *x, struct hex_services *svc);
void http_users_delete(struct http_exchange *x, struct hex_services *svc);

/* http_messages.c */
void http_messages_create(struct http_exchange *x, struct hex_services *svc);
void http_messages_show(struct http_exchange *x, struct hex_services *svc);
void http_messages_list(struct http_exchange *x, struct hex_services *svc);
void http_messages_update(struct http_exchange *x, struct hex_services *svc);
void http_messages_delete(struct http_exchange *x, struct hex_services *svc);

/* http_auth.c */
void http_auth_login(struct http_exchange *x, struct hex_services *svc);
void http_auth_refresh(struct http_exchange *x, struct hex_services *svc);
void http_auth_logout(struct http_exchange *x, struct hex_services *svc);

#endif
