/* json_body.c: request-body parsing on top of jansson. */
#include "adapters/json/json_body.h"

enum hex_status json_body_parse(const char *body, size_t len, json_t **out, struct hex_err *err)
{
	*out = NULL;
	if (len == 0)
		return hex_fail(err, HEX_INVALID, "body", "request body must be a JSON object");
	json_error_t jerr;
	json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL)
		return hex_fail(err, HEX_INVALID, "body", "request body is not valid JSON: %s",
		                jerr.text);
	if (!json_is_object(v)) {
		json_decref(v);
		return hex_fail(err, HEX_INVALID, "body", "request body must be a JSON object");
	}
	*out = v;
	return HEX_OK;
}

enum hex_status json_body_string(json_t *obj, const char *field, bool required, const char **out,
                                 struct hex_err *err)
{
	json_t *v = json_object_get(obj, field);
	*out = NULL;
	if (v == NULL)
		return required ? hex_fail(err, HEX_INVALID, field, "%s is required", field)
		                : HEX_OK;
	if (!json_is_string(v))
		return hex_fail(err, HEX_INVALID, field, "%s must be a string", field);
	*out = json_string_value(v);
	return HEX_OK;
}

enum hex_status json_body_int(json_t *obj, const char *field, bool required, int64_t *out,
                              struct hex_err *err)
{
	json_t *v = json_object_get(obj, field);
	if (v == NULL)
		return required ? hex_fail(err, HEX_INVALID, field, "%s is required", field)
		                : HEX_OK;
	if (!json_is_integer(v))
		return hex_fail(err, HEX_INVALID, field, "%s must be an integer", field);
	*out = (int64_t)json_integer_value(v);
	return HEX_OK;
}
