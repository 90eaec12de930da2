/*
 * services: every use-case service of one worker, wired to that worker's own adapter
 * instances (its own database and Redis connections). Primary adapters (HTTP, admin)
 * run use cases through this bundle.
 */
#ifndef HEX_SERVICES_H
#define HEX_SERVICES_H

#include "core/audit_service.h"
#include "core/auth_service.h"
#include "core/cache_service.h"
#include "core/dead_letter_service.h"
#include "core/event_lag_service.h"
#include "core/ledger_service.h"
#include "core/message_service.h"
#include "core/payment_service.h"
#include "core/ports/idempotency_store.h"
#include "core/ports/readiness.h"
#include "core/user_service.h"

/* What primary adapters need to check inbound calls: read-only, shared. */
struct hex_inbound_keys {
	const char *membership_api_key; /* "" turns the old membership hook off */
	const char *stripe_webhook_secret;
	int webhook_tolerance_s;
};

struct hex_services {
	struct user_service users;
	struct auth_service auth;
	struct message_service messages;
	struct payment_service payments;
	struct ledger_service ledger; /* wallets: balances, entries, transfers */
	struct readiness ready;
	struct idempotency_store idempotency; /* first answers to Idempotency-Keys */
	const struct hex_inbound_keys *keys;
	/* What operators use through the admin port. */
	struct dead_letter_service dead_letters;
	struct event_lag_service events; /* stream: NULL ops without Redis */
	struct audit_service audit;
	struct cache_service cache; /* NULL ops without Redis */
};

#endif
