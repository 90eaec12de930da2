/* stripe_form.c: the form-encoding builder. */
#include "adapters/stripe/stripe_form.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

struct stripe_form {
	char *buf; /* always NUL-terminated once allocated */
	size_t len;
	size_t cap;
	bool failed;
};

struct stripe_form *stripe_form_new(void)
{
	struct stripe_form *f = xcalloc(1, sizeof *f);
	f->cap = 256;
	f->buf = xmalloc(f->cap);
	f->buf[0] = '\0';
	return f;
}

void stripe_form_free(struct stripe_form *f)
{
	if (f == NULL)
		return;
	free(f->buf);
	free(f);
}

static bool stripe_form_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* Room for n more bytes and the NUL; fails the form past the cap instead of growing. */
static bool stripe_form_reserve(struct stripe_form *f, size_t n)
{
	if (f->failed || n > STRIPE_FORM_MAX - f->len) {
		f->failed = true;
		return false;
	}
	if (f->len + n + 1 > f->cap) {
		while (f->len + n + 1 > f->cap)
			f->cap *= 2;
		f->buf = xrealloc(f->buf, f->cap);
	}
	return true;
}

static void stripe_form_put(struct stripe_form *f, char c)
{
	if (!stripe_form_reserve(f, 1))
		return;
	f->buf[f->len++] = c;
	f->buf[f->len] = '\0';
}

/* Appends s percent-encoded; brackets stay literal when keep_brackets (keys). */
static void stripe_form_put_encoded(struct stripe_form *f, const char *s, bool keep_brackets)
{
	static const char digits[16] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && !f->failed; p++) {
		if (stripe_form_unreserved(*p) || (keep_brackets && (*p == '[' || *p == ']'))) {
			stripe_form_put(f, (char)*p);
		} else if (*p == ' ') {
			stripe_form_put(f, '+');
		} else {
			stripe_form_put(f, '%');
			stripe_form_put(f, digits[*p >> 4]);
			stripe_form_put(f, digits[*p & 15]);
		}
	}
}

/* name([sub])*: a non-empty name, then bracketed parts with no bracket inside. */
static bool stripe_form_key_valid(const char *key)
{
	const unsigned char *p = (const unsigned char *)key;
	size_t name = strcspn(key, "[]");
	if (name == 0)
		return false;
	for (const unsigned char *q = p; *q != '\0'; q++)
		if (*q < 0x20 || *q == 0x7f)
			return false;
	p += name;
	while (*p != '\0') {
		if (*p != '[')
			return false;
		p++;
		p += strcspn((const char *)p, "[]");
		if (*p != ']')
			return false;
		p++;
	}
	return true;
}

void stripe_form_add(struct stripe_form *f, const char *key, const char *value)
{
	if (f->failed)
		return;
	if (key == NULL || value == NULL || !stripe_form_key_valid(key)) {
		f->failed = true;
		return;
	}
	if (f->len > 0)
		stripe_form_put(f, '&');
	stripe_form_put_encoded(f, key, true);
	stripe_form_put(f, '=');
	stripe_form_put_encoded(f, value, false);
}

void stripe_form_add_int(struct stripe_form *f, const char *key, int64_t value)
{
	char text[24];
	snprintf(text, sizeof text, "%" PRId64, value);
	stripe_form_add(f, key, text);
}

void stripe_form_add_bool(struct stripe_form *f, const char *key, bool value)
{
	stripe_form_add(f, key, value ? "true" : "false");
}

bool stripe_form_failed(const struct stripe_form *f)
{
	return f->failed;
}

const char *stripe_form_body(const struct stripe_form *f, size_t *len)
{
	if (f->failed)
		return NULL;
	if (len != NULL)
		*len = f->len;
	return f->buf;
}
