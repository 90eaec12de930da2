/* json_body: strict parsing of JSON request bodies with errors that name the field. */
#ifndef HEX_JSON_BODY_H
#define HEX_JSON_BODY_H

#include "core/hex.h"

#include <jansson.h>

/*
 * Parses body (len bytes) into a JSON object; *out is a new reference the caller
 * decrefs. Rejects invalid JSON and UTF-8, NUL in strings, duplicate keys, trailing
 * data and anything but an object (HEX_INVALID, field "body").
 */
enum hex_status json_body_parse(const char *body, size_t len, json_t **out,
                                struct hex_err *err) HEX_MUST_CHECK;

/*
 * *out borrows the string member `field` of obj (valid while obj lives); NULL when the
 * member is absent and not required. HEX_INVALID naming the field otherwise (null is
 * not a string: a client that sends it gets told, not silently ignored).
 */
enum hex_status json_body_string(json_t *obj, const char *field, bool required, const char **out,
                                 struct hex_err *err) HEX_MUST_CHECK;

/* *out gets the integer member `field` (a JSON integer, not a float or a string). */
enum hex_status json_body_int(json_t *obj, const char *field, bool required, int64_t *out,
                              struct hex_err *err) HEX_MUST_CHECK;

#endif
