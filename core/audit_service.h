/*
 * audit_service: what the admin port writes after every mutating verb, and reads back for
 * AUDIT LIST. A row is written whether the verb worked or not: a refused replay is as
 * much a part of an incident's story as a done one.
 */
#ifndef HEX_AUDIT_SERVICE_H
#define HEX_AUDIT_SERVICE_H

#include "core/ports/audit_repo.h"
#include "core/ports/clock.h"

struct audit_service {
	struct audit_repo repo;
	struct clock clock;
};

/* An operator name as AUTH takes it: 1..AUDIT_OPERATOR_MAX of [A-Za-z0-9._@-]. */
bool audit_operator_valid(const char *name);

/*
 * Records that operator_name ran verb (1..AUDIT_VERB_MAX printable characters) with args
 * (NULL for none), and how it ended: ok, or error (NULL or "" when ok). Arguments and
 * error are stored as readable text: cut to fit (never inside a UTF-8 character, marked
 * with "..."), control characters and bytes that are not UTF-8 replaced with '?'. out
 * (may be NULL) gets the row as stored. HEX_INVALID names "operator" or "verb".
 */
enum hex_status audit_service_record(struct audit_service *s, const char *operator_name,
                                     const char *verb, const char *args, bool ok, const char *error,
                                     struct audit_entry *out, struct hex_err *err) HEX_MUST_CHECK;

/* HEX_INVALID naming "limit" unless 1 <= limit <= HEX_LIST_MAX, "cursor" if before_id < 0. */
enum hex_status audit_service_list(struct audit_service *s, int limit, int64_t before_id,
                                   struct audit_page *out, struct hex_err *err) HEX_MUST_CHECK;

#endif
