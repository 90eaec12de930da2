/* stripe_signature.c: Stripe-Signature header parsing and HMAC check. */
#include "adapters/stripe/stripe_signature.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/crypto/hmac.h"
#include "core/logger.h"
#include "core/xmalloc.h"

#define FIELD                "Stripe-Signature"
#define MSG_MALFORMED        "malformed Stripe-Signature header"
#define MSG_SIGNATURE        "invalid signature"
#define MSG_TOLERANCE        "timestamp outside the tolerance"
#define TIMESTAMP_DIGITS_MAX 12 /* seconds up to the year 33658: room, no overflow */
#define V1_HEX_LEN           (2 * CRYPTO_HMAC_SHA256_LEN)

/* One `key=value` element of the header, pointing into it. */
struct stripe_signature_item {
	const char *key;
	size_t key_len;
	const char *value;
	size_t value_len;
};

/* What the parse found: the t text and how many v1 values. */
struct stripe_signature_parts {
	const char *t;
	size_t t_len;
	int64_t t_value;
	int v1_count;
};

static bool stripe_signature_key_is(const struct stripe_signature_item *it, const char *key)
{
	return it->key_len == strlen(key) && memcmp(it->key, key, it->key_len) == 0;
}

/*
 * Splits the element [p, end) at its first '=' after trimming spaces around it;
 * false when there is no '=' or no key.
 */
static bool stripe_signature_item(const char *p, const char *end, struct stripe_signature_item *it)
{
	while (p < end && *p == ' ')
		p++;
	while (end > p && end[-1] == ' ')
		end--;
	const char *eq = memchr(p, '=', (size_t)(end - p));
	if (eq == NULL || eq == p)
		return false;
	it->key = p;
	it->key_len = (size_t)(eq - p);
	it->value = eq + 1;
	it->value_len = (size_t)(end - eq - 1);
	return true;
}

static bool stripe_signature_timestamp(const struct stripe_signature_item *it, int64_t *out)
{
	if (it->value_len == 0 || it->value_len > TIMESTAMP_DIGITS_MAX)
		return false;
	int64_t v = 0;
	for (size_t i = 0; i < it->value_len; i++) {
		if (it->value[i] < '0' || it->value[i] > '9')
			return false;
		v = v * 10 + (it->value[i] - '0');
	}
	*out = v;
	return true;
}

/* Checks every element: exactly one valid t, at least one v1, none empty or '='-less. */
static bool stripe_signature_parse(const char *header, size_t hlen,
                                   struct stripe_signature_parts *parts)
{
	memset(parts, 0, sizeof *parts);
	const char *end = header + hlen;
	for (const char *p = header; p <= end;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma != NULL ? comma : end;
		struct stripe_signature_item it;
		if (!stripe_signature_item(p, stop, &it))
			return false;
		if (stripe_signature_key_is(&it, "t")) {
			if (parts->t != NULL || !stripe_signature_timestamp(&it, &parts->t_value))
				return false;
			parts->t = it.value;
			parts->t_len = it.value_len;
		} else if (stripe_signature_key_is(&it, "v1")) {
			parts->v1_count++;
		}
		p = stop + 1;
	}
	return parts->t != NULL && parts->v1_count > 0;
}

/* True when any v1 element equals expected; every one is compared, in constant time. */
static bool stripe_signature_any_v1(const char *header, size_t hlen, const char *expected)
{
	bool matched = false;
	const char *end = header + hlen;
	for (const char *p = header; p <= end;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma != NULL ? comma : end;
		struct stripe_signature_item it;
		if (stripe_signature_item(p, stop, &it) && stripe_signature_key_is(&it, "v1"))
			matched |= hex_ct_equal(expected, V1_HEX_LEN, it.value, it.value_len);
		p = stop + 1;
	}
	return matched;
}

enum hex_status stripe_signature_verify(const char *header, const void *body, size_t len,
                                        const char *secret, int64_t now_s, int tolerance_s,
                                        struct hex_err *err)
{
	if (secret == NULL || secret[0] == '\0') {
		log_error("stripe_webhook_secret_missing",
		          "no Stripe webhook secret is configured: cannot verify deliveries");
		return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	}
	size_t hlen = header != NULL ? strnlen(header, STRIPE_SIGNATURE_HEADER_MAX + 1) : 0;
	struct stripe_signature_parts parts;
	if (hlen == 0 || hlen > STRIPE_SIGNATURE_HEADER_MAX ||
	    !stripe_signature_parse(header, hlen, &parts) || len > SIZE_MAX - parts.t_len - 1)
		return hex_fail(err, HEX_INVALID, FIELD, MSG_MALFORMED);

	size_t signed_len = parts.t_len + 1 + len;
	char *signed_text = xmalloc(signed_len);
	memcpy(signed_text, parts.t, parts.t_len);
	signed_text[parts.t_len] = '.';
	if (len > 0)
		memcpy(signed_text + parts.t_len + 1, body, len);
	char expected[V1_HEX_LEN + 1];
	crypto_hmac_sha256_hex(secret, strlen(secret), signed_text, signed_len, expected);
	free(signed_text);

	if (!stripe_signature_any_v1(header, hlen, expected))
		return hex_fail(err, HEX_INVALID, FIELD, MSG_SIGNATURE);
	int64_t age;
	int64_t tolerance = tolerance_s > 0 ? tolerance_s : 0;
	if (__builtin_sub_overflow(now_s, parts.t_value, &age) || age > tolerance ||
	    age < -tolerance)
		return hex_fail(err, HEX_INVALID, FIELD, MSG_TOLERANCE);
	return HEX_OK;
}
