/*
 * admin_reply.c: the outcome of an admin command (admin_ok, admin_fail, admin_fail_code)
 * and its one JSON reply line. Statuses map to protocol codes in one table; an internal
 * failure never shows its detail to the operator.
 */
#include "adapters/admin/admin_call.h"

#include "core/logger.h"
#include "core/xmalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	enum hex_status status;
	const char *code;
	const char *message; /* when the failure brought none */
} codes[] = {
    {HEX_INVALID, "invalid_argument", "invalid argument"},
    {HEX_NOT_FOUND, "not_found", "not found"},
    {HEX_CONFLICT, "conflict", "the change conflicts with the current state"},
    {HEX_UNAVAILABLE, "unavailable", "a dependency is unavailable"},
    {HEX_UNAUTHENTICATED, "unauthorized", "not authorized"},
    {HEX_FORBIDDEN, "unauthorized", "not authorized"},
};

#define INTERNAL_MESSAGE "internal error"

static int code_index(enum hex_status st)
{
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
		if (codes[i].status == st)
			return (int)i;
	return -1;
}

/* A verb that answers twice is a bug; the first answer stands, so the operator sees
 * what actually happened first. */
static bool already_done(struct admin_call *c)
{
	if (!c->done)
		return false;
	log_error("admin_double_outcome", "verb %s set a second outcome; it is ignored",
	          c->verb != NULL ? c->verb->name : "(none)");
	return true;
}

void admin_ok(struct admin_call *c, json_t *data)
{
	if (already_done(c)) {
		json_decref(data);
		return;
	}
	c->done = true;
	c->status = HEX_OK;
	c->data = data != NULL ? data : json_null();
}

void admin_fail(struct admin_call *c, enum hex_status st, const struct hex_err *err)
{
	if (already_done(c))
		return;
	c->done = true;
	c->status = st == HEX_OK ? HEX_INTERNAL : st;
	memset(&c->err, 0, sizeof c->err);
	int i = code_index(c->status);
	if (i < 0) {
		/* The detail goes to the log for whoever debugs it, never to the client. */
		log_error("admin_internal_error", "verb %s failed: %s",
		          c->verb != NULL ? c->verb->name : "(none)",
		          err != NULL && err->message[0] != '\0' ? err->message : "no detail");
		hex_strlcpy(c->err.message, INTERNAL_MESSAGE, sizeof c->err.message);
		return;
	}
	if (err != NULL)
		c->err = *err;
	if (c->err.message[0] == '\0')
		hex_strlcpy(c->err.message, codes[i].message, sizeof c->err.message);
}

void admin_fail_code(struct admin_call *c, const char *code, const char *field, const char *fmt,
                     ...)
{
	if (already_done(c))
		return;
	c->done = true;
	/* The status only matters to the audit log (ok or not): the code is the reply. */
	c->status = HEX_INVALID;
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
		if (strcmp(codes[i].code, code) == 0)
			c->status = codes[i].status;
	memset(&c->err, 0, sizeof c->err);
	c->err.field = field;
	c->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err.message, sizeof c->err.message, fmt, ap);
	va_end(ap);
}

static const char *failure_code(const struct admin_call *c)
{
	if (c->code != NULL)
		return c->code;
	if (c->err.code != NULL)
		return c->err.code;
	int i = code_index(c->status);
	return i >= 0 ? codes[i].code : "internal";
}

/* A reply that cannot be built (text that is not UTF-8 in a message, say) still has to
 * be one valid line. */
static const char fallback_line[] =
    "{\"ok\":false,\"error\":\"" INTERNAL_MESSAGE "\",\"code\":\"internal\"}";

char *admin_reply_line(const struct admin_call *c)
{
	json_t *o = NULL;
	char *line = NULL;
	if (!c->done) {
		o = json_pack("{s:b,s:s,s:s}", "ok", 0, "error", INTERNAL_MESSAGE, "code",
		              "internal");
	} else if (c->status == HEX_OK) {
		o = json_pack("{s:b,s:O}", "ok", 1, "data",
		              c->data != NULL ? c->data : json_null());
	} else {
		o = json_pack("{s:b,s:s,s:s}", "ok", 0, "error", c->err.message, "code",
		              failure_code(c));
		if (o != NULL && c->err.field != NULL &&
		    json_object_set_new(o, "field", json_string(c->err.field)) != 0) {
			json_decref(o);
			o = NULL;
		}
	}
	if (o != NULL)
		line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (line == NULL) {
		log_error("admin_reply_unencodable", "a reply to %s could not be encoded as JSON",
		          c->verb != NULL ? c->verb->name : "(none)");
		line = xstrdup(fallback_line);
	}
	return line;
}
