/*
 * stripe_form: application/x-www-form-urlencoded bodies the way Stripe reads them, with
 * nesting written in bracket keys: `metadata[payment_id]=...`,
 * `line_items[0][price_data][currency]=usd`.
 *
 * A builder with a sticky failed flag: add every parameter, then check once, when the
 * body is taken. Keys keep their brackets literal (Stripe's own libraries do the same,
 * and the server accepts both); every other byte outside [A-Za-z0-9-._~] is
 * percent-encoded, a space as '+'.
 */
#ifndef HEX_STRIPE_FORM_H
#define HEX_STRIPE_FORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STRIPE_FORM_MAX 65536 /* bytes of encoded body; far above anything hexd sends */

struct stripe_form;

/* The caller frees the result with stripe_form_free(). */
struct stripe_form *stripe_form_new(void);
void stripe_form_free(struct stripe_form *f); /* NULL is fine */

/*
 * key: `name` or `name[sub]...[sub]` (an empty `[]` too); anything else (an empty name,
 * unbalanced or stray brackets, control characters) marks the form failed, as does a
 * NULL value or a body that grows past STRIPE_FORM_MAX. Once failed, adds do nothing.
 */
void stripe_form_add(struct stripe_form *f, const char *key, const char *value);
void stripe_form_add_int(struct stripe_form *f, const char *key, int64_t value);
void stripe_form_add_bool(struct stripe_form *f, const char *key, bool value);

bool stripe_form_failed(const struct stripe_form *f);

/*
 * The encoded body ("" when nothing was added) and its length, owned by f and valid
 * until the next add or the free; NULL if any add failed.
 */
const char *stripe_form_body(const struct stripe_form *f, size_t *len);

#endif
