/* json_payment.c: payments as JSON. */
#include "adapters/json/json_payment.h"

#include "adapters/json/json_time.h"

static json_t *string_or_null(const char *s)
{
	return s[0] != '\0' ? json_string(s) : json_null();
}

json_t *json_payment(const struct payment *p, bool with_secret)
{
	char created[JSON_TIME_LEN], updated[JSON_TIME_LEN];
	json_time_format(p->created_at_us, created);
	json_time_format(p->updated_at_us, updated);
	json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:o, s:s, s:s}", "id", p->id,
	                      "user_id", p->user_id, "amount", (json_int_t)p->amount, "currency",
	                      p->currency, "purpose", payment_purpose_name(p->purpose), "status",
	                      payment_status_name(p->status), "stripe_payment_intent_id",
	                      string_or_null(p->stripe_payment_intent_id), "created_at", created,
	                      "updated_at", updated);
	if (o != NULL && with_secret)
		json_object_set_new(o, "client_secret", string_or_null(p->client_secret));
	return o;
}
