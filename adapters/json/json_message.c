/* json_message.c: messages and pages of messages as JSON. */
#include "adapters/json/json_message.h"

#include "adapters/json/json_time.h"
#include "core/logger.h"

json_t *json_message(const struct message *m)
{
	char created[JSON_TIME_LEN], updated[JSON_TIME_LEN];
	json_time_format(m->created_at_us, created);
	json_time_format(m->updated_at_us, updated);
	json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", m->id, "user_id", m->user_id,
	                      "body", m->body, "created_at", created, "updated_at", updated);
	if (v == NULL)
		log_error("json_message_failed", "message %s cannot be written as JSON", m->id);
	return v;
}

json_t *json_message_page(const struct message_page *p, const char *next_cursor)
{
	json_t *data = json_array();
	for (int i = 0; i < p->count; i++) {
		json_t *m = json_message(&p->items[i]);
		if (m == NULL) {
			json_decref(data);
			return NULL;
		}
		json_array_append_new(data, m);
	}
	return json_pack("{s:o, s:o}", "data", data, "next_cursor",
	                 next_cursor != NULL ? json_string(next_cursor) : json_null());
}
