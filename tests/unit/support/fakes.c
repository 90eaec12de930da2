/* fakes.c: in-memory fakes of the core ports (see fakes.h). */
#include "fakes.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"

#define US_PER_S 1000000LL

/*
 * A broken setup or a port contract broken by the caller fails the running test loudly
 * (cmocka unwinds to its runner), rather than letting a fake answer something plausible.
 */
static void fake_die(const char *what, const char *detail)
{
	fail_msg("fakes: %s: %s", what, detail);
}

void fake_log_clear(struct fake_log *l)
{
	l->text[0] = '\0';
	l->len = 0;
	l->overflow = false;
}

static void fake_log_append(struct fake_log *l, const char *name, const char *op)
{
	if (l == NULL)
		return;
	int n = snprintf(l->text + l->len, sizeof l->text - l->len, "%s.%s ", name, op);
	if (n < 0 || (size_t)n >= sizeof l->text - l->len) {
		l->overflow = true;
		l->text[l->len] = '\0';
		return;
	}
	l->len += (size_t)n;
}

bool fake_log_has(const struct fake_log *l, const char *seq)
{
	if (l->overflow)
		fake_die("call log overflow", "clear the log before the step under test");
	char want[256];
	snprintf(want, sizeof want, " %s ", seq);
	char have[sizeof l->text + 1];
	snprintf(have, sizeof have, " %s", l->text);
	return strstr(have, want) != NULL;
}

/* ---- the shared base ---- */

static void fake_base_init(struct fake_base *b, const char *name, const char *const *ops, int nops,
                           struct fake_log *log)
{
	if (nops > FAKE_MAX_OPS)
		fake_die(name, "more operations than FAKE_MAX_OPS");
	memset(b, 0, sizeof *b);
	b->name = name;
	b->ops = ops;
	b->nops = nops;
	b->log = log;
}

static int fake_op_index(const struct fake_base *b, const char *op)
{
	for (int i = 0; i < b->nops; i++)
		if (strcmp(b->ops[i], op) == 0)
			return i;
	fake_die(b->name, op);
	return -1;
}

void fake_fail_next(struct fake_base *b, const char *op, enum hex_status st)
{
	if (op != NULL)
		(void)fake_op_index(b, op);
	b->fail_op = op;
	b->fail_st = st;
	b->fail_armed = true;
}

bool fake_fail_pending(const struct fake_base *b)
{
	return b->fail_armed;
}

int fake_calls(const struct fake_base *b, const char *op)
{
	return b->calls[fake_op_index(b, op)];
}

void fake_calls_reset(struct fake_base *b)
{
	memset(b->calls, 0, sizeof b->calls);
}

/* Counts and logs one call of op; returns the armed fault's status if it fires now. */
static enum hex_status fake_enter(struct fake_base *b, int op)
{
	b->calls[op]++;
	fake_log_append(b->log, b->name, b->ops[op]);
	if (b->fail_armed && (b->fail_op == NULL || strcmp(b->fail_op, b->ops[op]) == 0)) {
		b->fail_armed = false;
		return b->fail_st;
	}
	return HEX_OK;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL

/* ---- clock ---- */

static int64_t fake_clock_now_us(void *self)
{
	return ((struct fake_clock *)self)->now_us;
}

static const struct clock_ops fake_clock_ops = {.now_us = fake_clock_now_us};

struct clock fake_clock_port(struct fake_clock *c)
{
	return (struct clock){.ops = &fake_clock_ops, .self = c};
}

void fake_clock_advance_s(struct fake_clock *c, int64_t s)
{
	c->now_us += s * US_PER_S;
}

int64_t fake_clock_now_s(const struct fake_clock *c)
{
	return c->now_us / US_PER_S;
}

/* ---- id_source ---- */

static void fake_ids_new_id(void *self, char out[HEX_ID_LEN + 1])
{
	struct fake_ids *f = self;
	f->issued++;
	snprintf(out, HEX_ID_LEN + 1, "00000000-0000-4000-8000-%012llx", f->issued);
}

static const struct id_source_ops fake_ids_ops = {.new_id = fake_ids_new_id};

struct id_source fake_ids_port(struct fake_ids *f)
{
	return (struct id_source){.ops = &fake_ids_ops, .self = f};
}

/* ---- password_hasher ---- */

enum { HASHER_HASH, HASHER_VERIFY, HASHER_NOPS };
static const char *const hasher_ops[HASHER_NOPS] = {"hash", "verify"};

void fake_hasher_hash_of(const char *password, char out[HEX_HASH_MAX])
{
	/* Readable for the short passwords of most tests; a digest where it would not fit. */
	size_t len = strlen(password);
	if (len + 3 <= HEX_HASH_MAX)
		snprintf(out, HEX_HASH_MAX, "h:%s", password);
	else
		snprintf(out, HEX_HASH_MAX, "h:#%016" PRIx64 ":%zu", fnv1a(FNV_OFFSET, password),
		         len);
}

static enum hex_status fake_hasher_hash(void *self, const char *password, char *out, size_t out_len)
{
	struct fake_hasher *h = self;
	enum hex_status st = fake_enter(&h->base, HASHER_HASH);
	if (st != HEX_OK)
		return st;
	char hash[HEX_HASH_MAX];
	fake_hasher_hash_of(password, hash);
	return hex_strlcpy(out, hash, out_len) ? HEX_OK : HEX_INTERNAL;
}

static enum hex_status fake_hasher_verify(void *self, const char *password, const char *hash)
{
	struct fake_hasher *h = self;
	enum hex_status st = fake_enter(&h->base, HASHER_VERIFY);
	hex_strlcpy(h->last_verified_hash, hash, sizeof h->last_verified_hash);
	if (st != HEX_OK)
		return st;
	char want[HEX_HASH_MAX];
	fake_hasher_hash_of(password, want);
	return strcmp(want, hash) == 0 ? HEX_OK : HEX_UNAUTHENTICATED;
}

static const struct password_hasher_ops fake_hasher_ops = {
    .hash = fake_hasher_hash,
    .verify = fake_hasher_verify,
};

struct password_hasher fake_hasher_port(struct fake_hasher *h)
{
	if (h->base.ops == NULL)
		fake_base_init(&h->base, "hasher", hasher_ops, HASHER_NOPS, NULL);
	return (struct password_hasher){.ops = &fake_hasher_ops, .self = h};
}

/* ---- token_signer ---- */

enum { SIGNER_SIGN, SIGNER_VERIFY, SIGNER_NOPS };
static const char *const signer_ops[SIGNER_NOPS] = {"sign", "verify"};

#define SIGNER_KEY   "fake-signing-key"
#define SIGNER_ISS   "hex"
#define SIGNER_PARTS 10

static uint64_t fake_signer_mac(const char *body)
{
	return fnv1a(fnv1a(FNV_OFFSET, SIGNER_KEY), body);
}

void fake_signer_sign_as(const char *iss, const struct token_claims *c, char out[HEX_TOKEN_MAX])
{
	char body[HEX_TOKEN_MAX / 2]; /* claims are short; room left for the signature */
	snprintf(body, sizeof body, "fake|%s|%s|%s|%s|%" PRId64 "|%" PRId64 "|%" PRId64 "|%s",
	         c->type == TOKEN_REFRESH ? "refresh" : "access", c->sub, c->jti,
	         user_role_name(c->role), c->ver, c->iat, c->exp, iss);
	snprintf(out, HEX_TOKEN_MAX, "%s|%016" PRIx64, body, fake_signer_mac(body));
}

static bool parse_i64(const char *s, int64_t *out)
{
	char *end;
	if (*s == '\0')
		return false;
	long long v = strtoll(s, &end, 10);
	if (*end != '\0')
		return false;
	*out = v;
	return true;
}

/*
 * Splits token into its claims; iss and sig point into buf (size HEX_TOKEN_MAX), body_len
 * is the length of the signed part. False if the token is not of the fake's shape.
 */
static bool fake_signer_parse(const char *token, char *buf, struct token_claims *c,
                              const char **iss, const char **sig, size_t *body_len)
{
	if (token == NULL || strlen(token) >= HEX_TOKEN_MAX)
		return false;
	strcpy(buf, token);
	char *part[SIGNER_PARTS];
	int n = 0;
	for (char *p = buf;;) {
		if (n == SIGNER_PARTS)
			return false;
		part[n++] = p;
		char *bar = strchr(p, '|');
		if (bar == NULL)
			break;
		*bar = '\0';
		p = bar + 1;
	}
	if (n != SIGNER_PARTS || strcmp(part[0], "fake") != 0)
		return false;
	memset(c, 0, sizeof *c);
	if (strcmp(part[1], "access") == 0)
		c->type = TOKEN_ACCESS;
	else if (strcmp(part[1], "refresh") == 0)
		c->type = TOKEN_REFRESH;
	else
		return false;
	if (!user_id_valid(part[2]) || !user_id_valid(part[3]) ||
	    !user_role_parse(part[4], &c->role) || !parse_i64(part[5], &c->ver) ||
	    !parse_i64(part[6], &c->iat) || !parse_i64(part[7], &c->exp))
		return false;
	strcpy(c->sub, part[2]);
	strcpy(c->jti, part[3]);
	*iss = part[8];
	*sig = part[9];
	*body_len = (size_t)(part[9] - buf) - 1;
	return true;
}

bool fake_signer_peek(const char *token, struct token_claims *out)
{
	char buf[HEX_TOKEN_MAX];
	const char *iss, *sig;
	size_t body_len;
	return fake_signer_parse(token, buf, out, &iss, &sig, &body_len);
}

static enum hex_status fake_signer_sign(void *self, const struct token_claims *c, char *out,
                                        size_t out_len)
{
	struct fake_signer *s = self;
	enum hex_status st = fake_enter(&s->base, SIGNER_SIGN);
	if (st != HEX_OK)
		return st;
	char token[HEX_TOKEN_MAX];
	fake_signer_sign_as(SIGNER_ISS, c, token);
	return hex_strlcpy(out, token, out_len) ? HEX_OK : HEX_INTERNAL;
}

static enum hex_status fake_signer_verify(void *self, const char *token, enum token_type expect,
                                          int64_t now_s, struct token_claims *out,
                                          struct hex_err *err)
{
	struct fake_signer *s = self;
	enum hex_status st = fake_enter(&s->base, SIGNER_VERIFY);
	if (st != HEX_OK)
		return hex_fail(err, st, NULL, "injected failure");
	char buf[HEX_TOKEN_MAX], body[HEX_TOKEN_MAX];
	struct token_claims c;
	const char *iss, *sig;
	size_t body_len;
	if (!fake_signer_parse(token, buf, &c, &iss, &sig, &body_len))
		return hex_fail(err, HEX_UNAUTHENTICATED, NULL, "malformed token");
	memcpy(body, token, body_len);
	body[body_len] = '\0';
	char want[32];
	snprintf(want, sizeof want, "%016" PRIx64, fake_signer_mac(body));
	if (strcmp(want, sig) != 0)
		return hex_fail(err, HEX_UNAUTHENTICATED, NULL, "bad token signature");
	if (strcmp(iss, SIGNER_ISS) != 0)
		return hex_fail(err, HEX_UNAUTHENTICATED, NULL, "wrong token issuer");
	if (c.type != expect)
		return hex_fail(err, HEX_UNAUTHENTICATED, NULL, "wrong token type");
	if (c.exp <= now_s)
		return hex_fail(err, HEX_UNAUTHENTICATED, NULL, "token expired");
	*out = c;
	return HEX_OK;
}

static const struct token_signer_ops fake_signer_ops = {
    .sign = fake_signer_sign,
    .verify = fake_signer_verify,
};

struct token_signer fake_signer_port(struct fake_signer *s)
{
	if (s->base.ops == NULL)
		fake_base_init(&s->base, "signer", signer_ops, SIGNER_NOPS, NULL);
	return (struct token_signer){.ops = &fake_signer_ops, .self = s};
}

/* ---- refresh_repo ---- */

enum { REFRESH_INSERT, REFRESH_ROTATE, REFRESH_REVOKE_FAMILY, REFRESH_NOPS };
static const char *const refresh_ops[REFRESH_NOPS] = {"insert", "rotate", "revoke_family"};

static struct fake_refresh_row *refresh_row(struct fake_refresh_repo *r, const char *jti)
{
	for (int i = 0; i < r->count; i++)
		if (strcmp(r->rows[i].rec.jti, jti) == 0)
			return &r->rows[i];
	return NULL;
}

const struct fake_refresh_row *fake_refresh_repo_find(const struct fake_refresh_repo *r,
                                                      const char *jti)
{
	return refresh_row((struct fake_refresh_repo *)r, jti);
}

int fake_refresh_repo_live(const struct fake_refresh_repo *r, const char *user_id, int64_t now_us)
{
	int n = 0;
	for (int i = 0; i < r->count; i++) {
		const struct fake_refresh_row *row = &r->rows[i];
		n += strcmp(row->rec.user_id, user_id) == 0 && !row->used && !row->revoked &&
		     row->rec.expires_at_us > now_us;
	}
	return n;
}

static enum hex_status refresh_add(struct fake_refresh_repo *r, const struct refresh_record *rec)
{
	if (refresh_row(r, rec->jti) != NULL)
		return HEX_CONFLICT;
	if (r->count == FAKE_MAX_TOKENS)
		return HEX_INTERNAL;
	r->rows[r->count++] = (struct fake_refresh_row){.rec = *rec};
	return HEX_OK;
}

static enum hex_status fake_refresh_insert(void *self, const struct refresh_record *rec)
{
	struct fake_refresh_repo *r = self;
	enum hex_status st = fake_enter(&r->base, REFRESH_INSERT);
	return st != HEX_OK ? st : refresh_add(r, rec);
}

static enum hex_status fake_refresh_rotate(void *self, const char *old_jti, int64_t now_us,
                                           struct refresh_record *next, struct refresh_record *out)
{
	struct fake_refresh_repo *r = self;
	enum hex_status st = fake_enter(&r->base, REFRESH_ROTATE);
	if (st != HEX_OK)
		return st;
	struct fake_refresh_row *old = refresh_row(r, old_jti);
	if (old == NULL)
		return HEX_NOT_FOUND;
	if (old->used || old->revoked) {
		*out = old->rec;
		return HEX_CONFLICT;
	}
	if (old->rec.expires_at_us <= now_us)
		return HEX_NOT_FOUND;
	if (r->count == FAKE_MAX_TOKENS)
		return HEX_INTERNAL;
	/* The successor inherits the family: that is what reuse detection revokes. */
	hex_strlcpy(next->family_id, old->rec.family_id, sizeof next->family_id);
	if ((st = refresh_add(r, next)) != HEX_OK)
		return st;
	old->used = true;
	*out = old->rec;
	return HEX_OK;
}

static enum hex_status fake_refresh_revoke_family(void *self, const char *family_id)
{
	struct fake_refresh_repo *r = self;
	enum hex_status st = fake_enter(&r->base, REFRESH_REVOKE_FAMILY);
	if (st != HEX_OK)
		return st;
	for (int i = 0; i < r->count; i++)
		if (strcmp(r->rows[i].rec.family_id, family_id) == 0)
			r->rows[i].revoked = true;
	return HEX_OK;
}

static const struct refresh_repo_ops fake_refresh_ops = {
    .insert = fake_refresh_insert,
    .rotate = fake_refresh_rotate,
    .revoke_family = fake_refresh_revoke_family,
};

struct refresh_repo fake_refresh_repo_port(struct fake_refresh_repo *r)
{
	if (r->base.ops == NULL)
		fake_base_init(&r->base, "refresh", refresh_ops, REFRESH_NOPS, NULL);
	return (struct refresh_repo){.ops = &fake_refresh_ops, .self = r};
}

/* What the user table's transactions do to the refresh table (no refresh call counted). */
static void refresh_revoke_user(struct fake_refresh_repo *r, const char *user_id)
{
	for (int i = 0; r != NULL && i < r->count; i++)
		if (strcmp(r->rows[i].rec.user_id, user_id) == 0)
			r->rows[i].revoked = true;
}

static void refresh_drop_user(struct fake_refresh_repo *r, const char *user_id)
{
	if (r == NULL)
		return;
	int kept = 0;
	for (int i = 0; i < r->count; i++)
		if (strcmp(r->rows[i].rec.user_id, user_id) != 0)
			r->rows[kept++] = r->rows[i];
	r->count = kept;
}

/* ---- user_repo ---- */

enum {
	REPO_INSERT,
	REPO_GET,
	REPO_GET_BY_EMAIL,
	REPO_GET_HASH,
	REPO_UPDATE,
	REPO_REMOVE,
	REPO_LIST,
	REPO_REVOKE_SESSIONS,
	REPO_NOPS
};
static const char *const repo_ops[REPO_NOPS] = {
    "insert", "get", "get_by_email", "get_hash", "update", "remove", "list", "revoke_sessions",
};

static void messages_drop_user(struct fake_message_repo *r, const char *user_id);

static struct fake_user_row *repo_row(struct fake_user_repo *r, const char *id)
{
	for (int i = 0; id != NULL && i < r->count; i++)
		if (strcmp(r->rows[i].user.id, id) == 0)
			return &r->rows[i];
	return NULL;
}

/* The unique index is on lower(email). */
static struct fake_user_row *repo_row_by_email(struct fake_user_repo *r, const char *email)
{
	for (int i = 0; email != NULL && i < r->count; i++)
		if (strcasecmp(r->rows[i].user.email, email) == 0)
			return &r->rows[i];
	return NULL;
}

const struct fake_user_row *fake_user_repo_find(const struct fake_user_repo *r, const char *id)
{
	return repo_row((struct fake_user_repo *)r, id);
}

static enum hex_status fake_repo_insert(void *self, const struct user *u, const char *hash)
{
	struct fake_user_repo *r = self;
	enum hex_status st = fake_enter(&r->base, REPO_INSERT);
	if (st != HEX_OK)
		return st;
	if (repo_row_by_email(r, u->email) != NULL)
		return HEX_CONFLICT;
	if (repo_row(r, u->id) != NULL || r->count == FAKE_MAX_USERS)
		return HEX_INTERNAL;
	struct fake_user_row *row = &r->rows[r->count];
	*row = (struct fake_user_row){.user = *u};
	if (!hex_strlcpy(row->hash, hash, sizeof row->hash))
		return HEX_INTERNAL;
	r->count++;
	return HEX_OK;
}

static enum hex_status fake_repo_get(void *self, const char *id, struct user *out)
{
	struct fake_user_repo *r = self;
	enum hex_status st = fake_enter(&r->base, REPO_GET);
	if (st != HEX_OK)
		return st;
	struct fake_user_row *row = repo_row(r, id);
	if (row == NULL)
		return HEX_NOT_FOUND;
	*out = row->user;
	return HEX_OK;
}

static enum hex_status fake_repo_get_by_email(void *self, const char *email, struct user *out,
                                              char *hash, size_t hash_len)
{
	struct fake_user_repo *r = self;
	enum hex_status st = fake_enter(&r->base, REPO_GET_BY_EMAIL);
	if (st != HEX_OK)
		return st;
	struct fake_user_row *row = repo_row_by_email(r, email);
	if (row == NULL)
		return HEX_NOT_FOUND;
	if (!hex_strlcpy(hash, row->hash, hash_len))
		return HEX_INTERNAL;
	*out = row->user;
	return HEX_OK;
}

static enum hex_status fake_repo_get_hash(void *self, const char *id, char *hash, size_t hash_len)
{
	struct fake_user_repo *r = self;
	enum hex_status st = fake_enter(&r->base, REPO_GET_HASH);
	if (st != HEX_OK)
		return st;
	struct fake_user_row *row = repo_row(r, id);
	if (row == NULL)
		return HEX_NOT_FOUND;
	return hex_strlcpy(hash, row->hash, hash_len) ? HEX_OK : HEX_INTERNAL;
}

static enum hex_status fake_repo_update(void *self, const struct user *u, const char *hash,
                                        bool end_sessions, struct user *out)
{
	struct fake_user_repo *r = self;
	enum hex_status st = fake_enter(&r->base, REPO_UPDATE);
	if (st != HEX_OK)
		return st;
	struct fake_user_row *row = repo_row(r, u->id);
	if (row == NULL)
		return HEX_NOT_FOUND;
	struct fake_user_row *owner = repo_row_by_email(r, u->email);
	if (owner != NULL && owner != row)
		return HEX_CONFLICT;
	if (hash != NULL && strlen(hash) >= sizeof row->hash)
		return HEX_INTERNAL;
	/* Exactly the columns the port promises to write; token_version is not one. */
	hex_strlcpy(row->user.email, u->email, sizeof row->user.email);
	row->user.membership = u->membership;
	row->user.role = u->role;
	row->user.updated_at_us = u->updated_at_us;
	if (hash != NULL)
		hex_strlcpy(row->hash, hash, sizeof row->hash);
	if (end_sessions) {
		row->user.token_version++;
		refresh_revoke_user(r->refresh, u->id);
	}
	*out = row->user;
	return HEX_OK;
}

static enum hex_status fake_repo_remove(void *self, const char *id)
{
	struct fake_user_repo *r = self;
	enum hex_status st = fake_enter(&r->base, REPO_REMOVE);
	if (st != HEX_OK)
		return st;
	struct fake_user_row *row = repo_row(r, id);
	if (row == NULL)
		return HEX_NOT_FOUND;
	refresh_drop_user(r->refresh, id);
	messages_drop_user(r->messages, id);
	*row = r->rows[--r->count];
	return HEX_OK;
}

static int row_order(const void *a, const void *b)
{
	const struct user *x = &(*(const struct fake_user_row *const *)a)->user;
	const struct user *y = &(*(const struct fake_user_row *const *)b)->user;
	if (x->created_at_us != y->created_at_us)
		return x->created_at_us < y->created_at_us ? -1 : 1;
	return strcmp(x->id, y->id);
}

static bool row_after(const struct user *u, const struct user_cursor *c)
{
	if (c == NULL)
		return true;
	if (u->created_at_us != c->created_at_us)
		return u->created_at_us > c->created_at_us;
	return strcmp(u->id, c->id) > 0;
}

/* The cursor's side of u in the walk's direction: after it, or before it newest first. */
static bool row_past(const struct user *u, const struct user_filter *f)
{
	if (f->after == NULL || !f->newest_first)
		return row_after(u, f->after);
	if (u->created_at_us != f->after->created_at_us)
		return u->created_at_us < f->after->created_at_us;
	return strcmp(u->id, f->after->id) < 0;
}

static bool row_matches(const struct user *u, const struct user_filter *f)
{
	/* The real search is ILIKE with its wildcards escaped: a plain substring, any case. */
	return (f->email == NULL || strcmp(u->email, f->email) == 0) &&
	       (f->email_contains == NULL || strcasestr(u->email, f->email_contains) != NULL) &&
	       (f->membership < 0 || (int)u->membership == f->membership) && row_past(u, f);
}

static int row_order_desc(const void *a, const void *b)
{
	return row_order(b, a);
}

static enum hex_status fake_repo_list(void *self, const struct user_filter *f,
                                      struct user_page *out)
{
	struct fake_user_repo *r = self;
	enum hex_status st = fake_enter(&r->base, REPO_LIST);
	if (st != HEX_OK)
		return st;
	if (f->limit < 1 || f->limit > HEX_LIST_MAX)
		fake_die("repo.list", "limit out of range reached the repository");
	const struct fake_user_row *match[FAKE_MAX_USERS];
	int n = 0;
	for (int i = 0; i < r->count; i++)
		if (row_matches(&r->rows[i].user, f))
			match[n++] = &r->rows[i];
	qsort(match, (size_t)n, sizeof match[0], f->newest_first ? row_order_desc : row_order);
	out->count = n < f->limit ? n : f->limit;
	for (int i = 0; i < out->count; i++)
		out->items[i] = match[i]->user;
	out->has_more = n > f->limit;
	return HEX_OK;
}

static enum hex_status fake_repo_revoke_sessions(void *self, const char *id, int64_t now_us,
                                                 struct user *out)
{
	struct fake_user_repo *r = self;
	enum hex_status st = fake_enter(&r->base, REPO_REVOKE_SESSIONS);
	if (st != HEX_OK)
		return st;
	struct fake_user_row *row = repo_row(r, id);
	if (row == NULL)
		return HEX_NOT_FOUND;
	row->user.token_version++;
	row->user.updated_at_us = now_us;
	refresh_revoke_user(r->refresh, id);
	*out = row->user;
	return HEX_OK;
}

static const struct user_repo_ops fake_repo_ops = {
    .insert = fake_repo_insert,
    .get = fake_repo_get,
    .get_by_email = fake_repo_get_by_email,
    .get_hash = fake_repo_get_hash,
    .update = fake_repo_update,
    .remove = fake_repo_remove,
    .list = fake_repo_list,
    .revoke_sessions = fake_repo_revoke_sessions,
};

struct user_repo fake_user_repo_port(struct fake_user_repo *r)
{
	if (r->base.ops == NULL)
		fake_base_init(&r->base, "repo", repo_ops, REPO_NOPS, NULL);
	return (struct user_repo){.ops = &fake_repo_ops, .self = r};
}

/* ---- user_cache ---- */

enum { CACHE_GET, CACHE_PUT, CACHE_DEL, CACHE_NOPS };
static const char *const cache_ops[CACHE_NOPS] = {"get", "put", "del"};

static struct fake_cache_slot *cache_slot(struct fake_user_cache *c, const char *id)
{
	for (int i = 0; i < FAKE_CACHE_SLOTS; i++)
		if (c->slots[i].used && strcmp(c->slots[i].user.id, id) == 0)
			return &c->slots[i];
	return NULL;
}

bool fake_user_cache_peek(const struct fake_user_cache *c, const char *id, struct user *out)
{
	const struct fake_cache_slot *slot = cache_slot((struct fake_user_cache *)c, id);
	if (slot == NULL)
		return false;
	if (out != NULL)
		*out = slot->user;
	return true;
}

void fake_user_cache_store(struct fake_user_cache *c, const struct user *u)
{
	struct fake_cache_slot *slot = cache_slot(c, u->id);
	for (int i = 0; slot == NULL && i < FAKE_CACHE_SLOTS; i++)
		if (!c->slots[i].used)
			slot = &c->slots[i];
	if (slot == NULL)
		slot = &c->slots[0]; /* full: evict, as a cache may */
	slot->used = true;
	slot->user = *u;
}

static enum hex_status fake_cache_get(void *self, const char *id, struct user *out)
{
	struct fake_user_cache *c = self;
	enum hex_status st = fake_enter(&c->base, CACHE_GET);
	if (st != HEX_OK)
		return st;
	if (c->down)
		return HEX_UNAVAILABLE;
	return fake_user_cache_peek(c, id, out) ? HEX_OK : HEX_NOT_FOUND;
}

/* A cache write that fails is lost silently, as with a Redis that went away. */
static void fake_cache_put(void *self, const struct user *u)
{
	struct fake_user_cache *c = self;
	if (fake_enter(&c->base, CACHE_PUT) == HEX_OK && !c->down)
		fake_user_cache_store(c, u);
}

static enum hex_status fake_cache_del(void *self, const char *id)
{
	struct fake_user_cache *c = self;
	if (fake_enter(&c->base, CACHE_DEL) != HEX_OK || c->down)
		return HEX_UNAVAILABLE;
	struct fake_cache_slot *slot = cache_slot(c, id);
	if (slot != NULL)
		slot->used = false;
	return HEX_OK;
}

static const struct user_cache_ops fake_cache_ops = {
    .get = fake_cache_get,
    .put = fake_cache_put,
    .del = fake_cache_del,
};

struct user_cache fake_user_cache_port(struct fake_user_cache *c)
{
	if (c->base.ops == NULL)
		fake_base_init(&c->base, "cache", cache_ops, CACHE_NOPS, NULL);
	return (struct user_cache){.ops = &fake_cache_ops, .self = c};
}

/* ---- rate_limiter ---- */

enum { LIMITER_HIT, LIMITER_NOPS };
static const char *const limiter_ops[LIMITER_NOPS] = {"hit"};

static struct fake_limiter_key *limiter_key(struct fake_rate_limiter *l, const char *key)
{
	for (int i = 0; i < l->nkeys; i++)
		if (strcmp(l->keys[i].key, key) == 0)
			return &l->keys[i];
	if (l->nkeys == FAKE_LIMITER_KEYS)
		fake_die("limiter", "too many keys");
	struct fake_limiter_key *k = &l->keys[l->nkeys++];
	memset(k, 0, sizeof *k);
	k->window_start_s = -1;
	if (!hex_strlcpy(k->key, key, sizeof k->key))
		fake_die("limiter", "key too long");
	return k;
}

static enum hex_status fake_limiter_hit(void *self, const char *key, int limit, int window_s,
                                        int *retry_after_s)
{
	struct fake_rate_limiter *l = self;
	enum hex_status st = fake_enter(&l->base, LIMITER_HIT);
	hex_strlcpy(l->last_key, key, sizeof l->last_key);
	if (st != HEX_OK)
		return st;
	int64_t window = window_s > 0 ? window_s : 1;
	int64_t now_s = l->clock != NULL ? fake_clock_now_s(l->clock) : 0;
	int64_t start = now_s - now_s % window;
	struct fake_limiter_key *k = limiter_key(l, key);
	if (k->window_start_s != start) {
		k->window_start_s = start;
		k->count = 0;
	}
	k->count++;
	int effective = l->limit_override > 0 ? l->limit_override : limit;
	if (k->count <= effective)
		return HEX_OK;
	*retry_after_s = (int)(start + window - now_s);
	return HEX_RATE_LIMITED;
}

static const struct rate_limiter_ops fake_limiter_ops = {.hit = fake_limiter_hit};

struct rate_limiter fake_rate_limiter_port(struct fake_rate_limiter *l)
{
	if (l->base.ops == NULL)
		fake_base_init(&l->base, "limiter", limiter_ops, LIMITER_NOPS, NULL);
	return (struct rate_limiter){.ops = &fake_limiter_ops, .self = l};
}

/* ---- message_repo ---- */

enum { MSG_INSERT, MSG_GET, MSG_UPDATE_BODY, MSG_REMOVE, MSG_LIST, MSG_NOPS };
static const char *const message_ops[MSG_NOPS] = {"insert", "get", "update_body", "remove", "list"};

static struct message *message_row(struct fake_message_repo *r, const char *id)
{
	for (int i = 0; id != NULL && i < r->count; i++)
		if (strcasecmp(r->rows[i].id, id) == 0)
			return &r->rows[i];
	return NULL;
}

const struct message *fake_message_repo_find(const struct fake_message_repo *r, const char *id)
{
	return message_row((struct fake_message_repo *)r, id);
}

static struct message message_copy(const struct message *m)
{
	struct message c = *m;
	c.body = xstrdup(m->body);
	return c;
}

void fake_message_repo_store(struct fake_message_repo *r, const struct message *m)
{
	if (r->count == FAKE_MAX_MESSAGES)
		fake_die("messages", "full: raise FAKE_MAX_MESSAGES");
	r->rows[r->count++] = message_copy(m);
}

static void message_drop_at(struct fake_message_repo *r, int i)
{
	free(r->rows[i].body);
	r->rows[i] = r->rows[--r->count];
}

static void messages_drop_user(struct fake_message_repo *r, const char *user_id)
{
	for (int i = 0; r != NULL && i < r->count;) {
		if (strcmp(r->rows[i].user_id, user_id) == 0)
			message_drop_at(r, i);
		else
			i++;
	}
}

void fake_message_repo_reset(struct fake_message_repo *r)
{
	while (r->count > 0)
		message_drop_at(r, r->count - 1);
}

static enum hex_status fake_message_insert(void *self, const struct message *m)
{
	struct fake_message_repo *r = self;
	enum hex_status st = fake_enter(&r->base, MSG_INSERT);
	if (st != HEX_OK)
		return st;
	if (!message_id_valid(m->id) || m->body == NULL || message_row(r, m->id) != NULL)
		fake_die("messages.insert",
		         "a malformed or duplicate message reached the repository");
	if (r->users != NULL && repo_row(r->users, m->user_id) == NULL)
		return HEX_NOT_FOUND;
	fake_message_repo_store(r, m);
	return HEX_OK;
}

static enum hex_status fake_message_get(void *self, const char *id, struct message *out)
{
	struct fake_message_repo *r = self;
	enum hex_status st = fake_enter(&r->base, MSG_GET);
	if (st != HEX_OK)
		return st;
	struct message *m = message_row(r, id);
	if (m == NULL)
		return HEX_NOT_FOUND;
	*out = message_copy(m);
	return HEX_OK;
}

static enum hex_status fake_message_update_body(void *self, const char *id, const char *owner_id,
                                                const char *body, int64_t updated_at_us,
                                                struct message *out)
{
	struct fake_message_repo *r = self;
	enum hex_status st = fake_enter(&r->base, MSG_UPDATE_BODY);
	if (st != HEX_OK)
		return st;
	struct message *m = message_row(r, id);
	if (m == NULL || strcasecmp(m->user_id, owner_id) != 0)
		return HEX_NOT_FOUND;
	free(m->body);
	m->body = xstrdup(body);
	m->updated_at_us = updated_at_us;
	*out = message_copy(m);
	return HEX_OK;
}

static enum hex_status fake_message_remove(void *self, const char *id)
{
	struct fake_message_repo *r = self;
	enum hex_status st = fake_enter(&r->base, MSG_REMOVE);
	if (st != HEX_OK)
		return st;
	struct message *m = message_row(r, id);
	if (m == NULL)
		return HEX_NOT_FOUND;
	message_drop_at(r, (int)(m - r->rows));
	return HEX_OK;
}

/* Newest first: (created_at, id) descending. */
static int message_order(const void *a, const void *b)
{
	const struct message *x = *(const struct message *const *)a;
	const struct message *y = *(const struct message *const *)b;
	if (x->created_at_us != y->created_at_us)
		return x->created_at_us > y->created_at_us ? -1 : 1;
	return -strcmp(x->id, y->id);
}

static bool message_has_terms(const char *body, const char *query)
{
	char terms[4 * HEX_MESSAGE_QUERY_MAX + 1];
	hex_strlcpy(terms, query, sizeof terms);
	char *save = NULL;
	for (char *t = strtok_r(terms, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save))
		if (strcasestr(body, t) == NULL)
			return false;
	return true;
}

static bool message_matches(const struct message *m, const struct message_filter *f)
{
	if (f->user_id != NULL && strcmp(m->user_id, f->user_id) != 0)
		return false;
	if (f->query != NULL && !message_has_terms(m->body, f->query))
		return false;
	if ((f->has_since && m->created_at_us < f->since_us) ||
	    (f->has_until && m->created_at_us >= f->until_us))
		return false;
	const struct message_cursor *c = f->after;
	if (c != NULL && (m->created_at_us > c->created_at_us ||
	                  (m->created_at_us == c->created_at_us && strcmp(m->id, c->id) >= 0)))
		return false;
	return true;
}

static void message_note_filter(struct fake_message_repo *r, const struct message_filter *f)
{
	r->last_filter = *f;
	r->last_filter.user_id = NULL;
	r->last_filter.query = NULL;
	r->last_filter.after = NULL;
	if (f->user_id != NULL) {
		hex_strlcpy(r->last_user_id, f->user_id, sizeof r->last_user_id);
		r->last_filter.user_id = r->last_user_id;
	}
	if (f->query != NULL) {
		if (!hex_strlcpy(r->last_query, f->query, sizeof r->last_query))
			fake_die("messages.list",
			         "a query longer than the limit reached the repository");
		r->last_filter.query = r->last_query;
	}
	if (f->after != NULL) {
		r->last_after = *f->after;
		r->last_filter.after = &r->last_after;
	}
}

static enum hex_status fake_message_list(void *self, const struct message_filter *f,
                                         struct message_page *out)
{
	struct fake_message_repo *r = self;
	out->count = 0;
	out->has_more = false;
	enum hex_status st = fake_enter(&r->base, MSG_LIST);
	if (st != HEX_OK)
		return st;
	if (f->limit < 1 || f->limit > HEX_LIST_MAX)
		fake_die("messages.list", "limit out of range reached the repository");
	message_note_filter(r, f);
	const struct message *match[FAKE_MAX_MESSAGES];
	int n = 0;
	for (int i = 0; i < r->count; i++)
		if (message_matches(&r->rows[i], f))
			match[n++] = &r->rows[i];
	qsort(match, (size_t)n, sizeof match[0], message_order);
	out->count = n < f->limit ? n : f->limit;
	for (int i = 0; i < out->count; i++)
		out->items[i] = message_copy(match[i]);
	out->has_more = n > f->limit;
	return HEX_OK;
}

static const struct message_repo_ops fake_message_ops = {
    .insert = fake_message_insert,
    .get = fake_message_get,
    .update_body = fake_message_update_body,
    .remove = fake_message_remove,
    .list = fake_message_list,
};

struct message_repo fake_message_repo_port(struct fake_message_repo *r)
{
	if (r->base.ops == NULL)
		fake_base_init(&r->base, "messages", message_ops, MSG_NOPS, NULL);
	return (struct message_repo){.ops = &fake_message_ops, .self = r};
}

/* ---- payment_repo ---- */

enum {
	PAY_INSERT,
	PAY_FIND_BY_KEY,
	PAY_GET,
	PAY_ATTACH_INTENT,
	PAY_MARK_FAILED,
	PAY_LIST,
	PAY_APPLY_EVENT,
	PAY_MEMBERSHIP_EVENT,
	PAY_ATTACH_CHECKOUT,
	PAY_NOPS
};
static const char *const payment_ops[PAY_NOPS] = {
    "insert",
    "find_by_client_key",
    "get",
    "attach_intent",
    "mark_failed",
    "list",
    "apply_event",
    "record_membership_event",
    "attach_checkout",
};

static struct payment_record *payment_row(struct fake_payment_repo *r, const char *id)
{
	for (int i = 0; id != NULL && i < r->count; i++)
		if (strcmp(r->rows[i].payment.id, id) == 0)
			return &r->rows[i];
	return NULL;
}

static struct payment_record *payment_row_by_intent(struct fake_payment_repo *r, const char *intent)
{
	for (int i = 0; intent[0] != '\0' && i < r->count; i++)
		if (strcmp(r->rows[i].payment.stripe_payment_intent_id, intent) == 0)
			return &r->rows[i];
	return NULL;
}

/* The unique indexes of the payments table. */
static bool payment_clashes(struct fake_payment_repo *r, const struct payment_record *rec)
{
	for (int i = 0; i < r->count; i++) {
		const struct payment_record *o = &r->rows[i];
		if (strcmp(o->payment.id, rec->payment.id) == 0 ||
		    strcmp(o->stripe_idempotency_key, rec->stripe_idempotency_key) == 0 ||
		    (rec->client_key[0] != '\0' && strcmp(o->client_key, rec->client_key) == 0 &&
		     strcmp(o->payment.user_id, rec->payment.user_id) == 0))
			return true;
	}
	return false;
}

const struct payment_record *fake_payment_repo_find(const struct fake_payment_repo *r,
                                                    const char *id)
{
	return payment_row((struct fake_payment_repo *)r, id);
}

void fake_payment_repo_store(struct fake_payment_repo *r, const struct payment_record *rec)
{
	if (r->count == FAKE_MAX_PAYMENTS)
		fake_die("payments", "full: raise FAKE_MAX_PAYMENTS");
	r->rows[r->count++] = *rec;
}

int fake_payment_repo_outbox_count(const struct fake_payment_repo *r, const char *event_id)
{
	int n = 0;
	for (int i = 0; i < r->noutbox; i++)
		n += strcmp(r->outbox[i].event_id, event_id) == 0;
	return n;
}

static enum hex_status fake_payment_insert(void *self, const struct payment_record *rec)
{
	struct fake_payment_repo *r = self;
	enum hex_status st = fake_enter(&r->base, PAY_INSERT);
	if (st != HEX_OK)
		return st;
	if (r->race_armed) {
		r->race_armed = false;
		fake_payment_repo_store(r, &r->racer);
	}
	if (!payment_id_valid(rec->payment.id) || !user_id_valid(rec->payment.user_id) ||
	    rec->stripe_idempotency_key[0] == '\0')
		fake_die("payments.insert", "a malformed record reached the repository");
	if (payment_clashes(r, rec))
		return HEX_CONFLICT;
	fake_payment_repo_store(r, rec);
	return HEX_OK;
}

static enum hex_status fake_payment_find_by_key(void *self, const char *user_id,
                                                const char *client_key, struct payment_record *out)
{
	struct fake_payment_repo *r = self;
	enum hex_status st = fake_enter(&r->base, PAY_FIND_BY_KEY);
	if (st != HEX_OK)
		return st;
	for (int i = 0; i < r->count; i++) {
		if (strcmp(r->rows[i].payment.user_id, user_id) == 0 &&
		    strcmp(r->rows[i].client_key, client_key) == 0) {
			*out = r->rows[i];
			return HEX_OK;
		}
	}
	return HEX_NOT_FOUND;
}

static enum hex_status fake_payment_get(void *self, const char *id, struct payment *out)
{
	struct fake_payment_repo *r = self;
	enum hex_status st = fake_enter(&r->base, PAY_GET);
	if (st != HEX_OK)
		return st;
	struct payment_record *row = payment_row(r, id);
	if (row == NULL)
		return HEX_NOT_FOUND;
	*out = row->payment;
	return HEX_OK;
}

static enum hex_status fake_payment_attach_intent(void *self, const char *id, const char *intent_id,
                                                  const char *client_secret,
                                                  enum payment_status status, int64_t now_us,
                                                  struct payment *out)
{
	struct fake_payment_repo *r = self;
	enum hex_status st = fake_enter(&r->base, PAY_ATTACH_INTENT);
	if (st != HEX_OK)
		return st;
	struct payment_record *row = payment_row(r, id);
	if (row == NULL)
		return HEX_NOT_FOUND;
	struct payment *p = &row->payment;
	hex_strlcpy(p->stripe_payment_intent_id, intent_id, sizeof p->stripe_payment_intent_id);
	hex_strlcpy(p->client_secret, client_secret, sizeof p->client_secret);
	if (payment_status_advances(p->status, status))
		p->status = status;
	p->updated_at_us = now_us;
	*out = *p;
	return HEX_OK;
}

static enum hex_status fake_payment_attach_checkout(void *self, const char *id,
                                                    const char *session_id, const char *url,
                                                    int64_t now_us, struct payment_record *out)
{
	struct fake_payment_repo *r = self;
	enum hex_status st = fake_enter(&r->base, PAY_ATTACH_CHECKOUT);
	if (st != HEX_OK)
		return st;
	struct payment_record *row = payment_row(r, id);
	if (row == NULL)
		return HEX_NOT_FOUND;
	if (session_id[0] == '\0' || url[0] == '\0')
		fake_die("payments.attach_checkout", "an empty session or URL");
	for (int i = 0; i < r->count; i++)
		if (&r->rows[i] != row &&
		    strcmp(r->rows[i].stripe_checkout_session_id, session_id) == 0)
			return HEX_CONFLICT;
	hex_strlcpy(row->stripe_checkout_session_id, session_id,
	            sizeof row->stripe_checkout_session_id);
	hex_strlcpy(row->checkout_url, url, sizeof row->checkout_url);
	row->payment.updated_at_us = now_us;
	*out = *row;
	return HEX_OK;
}

static enum hex_status fake_payment_mark_failed(void *self, const char *id, const char *message,
                                                int64_t now_us, struct payment *out)
{
	struct fake_payment_repo *r = self;
	enum hex_status st = fake_enter(&r->base, PAY_MARK_FAILED);
	if (st != HEX_OK)
		return st;
	struct payment_record *row = payment_row(r, id);
	if (row == NULL)
		return HEX_NOT_FOUND;
	if (payment_status_advances(row->payment.status, PAYMENT_FAILED))
		row->payment.status = PAYMENT_FAILED;
	hex_strlcpy(row->failure_message, message, sizeof row->failure_message);
	row->payment.updated_at_us = now_us;
	*out = row->payment;
	return HEX_OK;
}

/* Newest first: (created_at, id) descending. */
static int payment_order(const void *a, const void *b)
{
	const struct payment *x = *(const struct payment *const *)a;
	const struct payment *y = *(const struct payment *const *)b;
	if (x->created_at_us != y->created_at_us)
		return x->created_at_us > y->created_at_us ? -1 : 1;
	return -strcmp(x->id, y->id);
}

static bool payment_matches(const struct payment *p, const struct payment_filter *f)
{
	if (f->user_id != NULL && strcmp(p->user_id, f->user_id) != 0)
		return false;
	if (f->status >= 0 && (int)p->status != f->status)
		return false;
	const struct payment_cursor *c = f->after;
	return c == NULL || p->created_at_us < c->created_at_us ||
	       (p->created_at_us == c->created_at_us && strcmp(p->id, c->id) < 0);
}

static enum hex_status fake_payment_list(void *self, const struct payment_filter *f,
                                         struct payment_page *out)
{
	struct fake_payment_repo *r = self;
	out->count = 0;
	out->has_more = false;
	enum hex_status st = fake_enter(&r->base, PAY_LIST);
	if (st != HEX_OK)
		return st;
	if (f->limit < 1 || f->limit > HEX_LIST_MAX)
		fake_die("payments.list", "limit out of range reached the repository");
	r->last_filter = *f;
	r->last_filter.user_id = NULL;
	r->last_filter.after = NULL;
	if (f->user_id != NULL) {
		hex_strlcpy(r->last_user_id, f->user_id, sizeof r->last_user_id);
		r->last_filter.user_id = r->last_user_id;
	}
	if (f->after != NULL) {
		r->last_after = *f->after;
		r->last_filter.after = &r->last_after;
	}
	const struct payment *match[FAKE_MAX_PAYMENTS];
	int n = 0;
	for (int i = 0; i < r->count; i++)
		if (payment_matches(&r->rows[i].payment, f))
			match[n++] = &r->rows[i].payment;
	qsort(match, (size_t)n, sizeof match[0], payment_order);
	out->count = n < f->limit ? n : f->limit;
	for (int i = 0; i < out->count; i++)
		out->items[i] = *match[i];
	out->has_more = n > f->limit;
	return HEX_OK;
}

/* What the users table does when a membership is written; true if it changed. */
static bool users_set_membership(struct fake_user_repo *users, const char *user_id,
                                 enum membership m, int64_t now_us)
{
	struct fake_user_row *u = users != NULL ? repo_row(users, user_id) : NULL;
	if (u == NULL || u->user.membership == m)
		return false;
	u->user.membership = m;
	u->user.updated_at_us = now_us;
	return true;
}

static enum hex_status fake_payment_apply_event(void *self, const struct payment_event *ev,
                                                const struct payment_event_plan *plan,
                                                int64_t now_us, struct payment_event_effect *out)
{
	struct fake_payment_repo *r = self;
	memset(out, 0, sizeof *out);
	enum hex_status st = fake_enter(&r->base, PAY_APPLY_EVENT);
	if (st != HEX_OK)
		return st;
	for (int i = 0; i < r->nevents; i++) {
		if (strcmp(r->events[i].id, ev->id) == 0) {
			out->duplicate = true;
			return HEX_OK;
		}
	}
	if (r->nevents == FAKE_MAX_PAYMENT_EVENTS || ev->payload_len >= FAKE_PAYLOAD_MAX)
		fake_die("payments.apply_event", "full or payload too long for the fake");
	struct fake_payment_event_row *e = &r->events[r->nevents++];
	hex_strlcpy(e->id, ev->id, sizeof e->id);
	e->kind = ev->kind;

	struct payment_record *row =
	    payment_id_valid(ev->payment_id) ? payment_row(r, ev->payment_id) : NULL;
	if (row == NULL)
		row = payment_row_by_intent(r, ev->intent_id);
	if (row != NULL) {
		struct payment *p = &row->payment;
		out->payment_found = true;
		out->status_changed =
		    plan->has_target && payment_status_advances(p->status, plan->target);
		bool learn_intent = p->stripe_payment_intent_id[0] == '\0' &&
		                    ev->intent_id[0] != '\0' &&
		                    payment_row_by_intent(r, ev->intent_id) == NULL;
		if (out->status_changed)
			p->status = plan->target;
		if (learn_intent)
			hex_strlcpy(p->stripe_payment_intent_id, ev->intent_id,
			            sizeof p->stripe_payment_intent_id);
		if (out->status_changed || learn_intent)
			p->updated_at_us = now_us;
		if (plan->grants_membership && p->purpose == PURPOSE_MEMBERSHIP &&
		    users_set_membership(r->users, p->user_id, MEMBERSHIP_MEMBER, now_us))
			hex_strlcpy(out->member_user_id, p->user_id, sizeof out->member_user_id);
		out->payment = *p;
	}
	struct fake_outbox_row *o = &r->outbox[r->noutbox++];
	hex_strlcpy(o->event_id, ev->id, sizeof o->event_id);
	hex_strlcpy(o->topic, "payment_events", sizeof o->topic);
	memcpy(o->payload, ev->payload, ev->payload_len);
	o->payload[ev->payload_len] = '\0';
	return HEX_OK;
}

static enum hex_status fake_payment_membership_event(void *self, const char *event_id,
                                                     const char *user_id, enum membership m,
                                                     int64_t now_us, struct membership_effect *out)
{
	struct fake_payment_repo *r = self;
	memset(out, 0, sizeof *out);
	enum hex_status st = fake_enter(&r->base, PAY_MEMBERSHIP_EVENT);
	if (st != HEX_OK)
		return st;
	for (int i = 0; event_id != NULL && i < r->nmembership_events; i++) {
		if (strcmp(r->membership_events[i].event_id, event_id) == 0) {
			out->duplicate = true;
			return HEX_OK;
		}
	}
	if (r->users == NULL || repo_row(r->users, user_id) == NULL)
		return HEX_NOT_FOUND;
	if (event_id != NULL) {
		if (r->nmembership_events == FAKE_MAX_PAYMENT_EVENTS)
			fake_die("payments.record_membership_event", "full");
		struct fake_membership_event_row *e =
		    &r->membership_events[r->nmembership_events++];
		hex_strlcpy(e->event_id, event_id, sizeof e->event_id);
		hex_strlcpy(e->user_id, user_id, sizeof e->user_id);
		e->membership = m;
	}
	out->changed = users_set_membership(r->users, user_id, m, now_us);
	return HEX_OK;
}

static const struct payment_repo_ops fake_payment_ops = {
    .insert = fake_payment_insert,
    .find_by_client_key = fake_payment_find_by_key,
    .get = fake_payment_get,
    .attach_intent = fake_payment_attach_intent,
    .mark_failed = fake_payment_mark_failed,
    .list = fake_payment_list,
    .apply_event = fake_payment_apply_event,
    .record_membership_event = fake_payment_membership_event,
    .attach_checkout = fake_payment_attach_checkout,
};

struct payment_repo fake_payment_repo_port(struct fake_payment_repo *r)
{
	if (r->base.ops == NULL)
		fake_base_init(&r->base, "payments", payment_ops, PAY_NOPS, NULL);
	return (struct payment_repo){.ops = &fake_payment_ops, .self = r};
}

/* ---- payment_gateway ---- */

enum { GW_CREATE_INTENT, GW_CREATE_CHECKOUT, GW_RETRIEVE_INTENT, GW_NOPS };
static const char *const gateway_ops[GW_NOPS] = {"create_intent", "create_checkout",
                                                 "retrieve_intent"};

static bool same_intent_request(const struct gateway_intent_request *a,
                                const struct gateway_intent_request *b)
{
	return a->amount == b->amount && strcmp(a->currency, b->currency) == 0 &&
	       strcmp(a->payment_id, b->payment_id) == 0 && strcmp(a->user_id, b->user_id) == 0 &&
	       a->purpose == b->purpose;
}

/* Request storage: the provider must never hear of a payment that is not stored yet. */
static void gateway_check_stored(const struct fake_gateway *g,
                                 const struct gateway_intent_request *req)
{
	if (g->storage == NULL)
		return;
	const struct payment_record *rec = fake_payment_repo_find(g->storage, req->payment_id);
	if (rec == NULL)
		fake_die("gateway.create_intent", "called before the payment was stored");
	const struct payment *p = &rec->payment;
	if (strcmp(rec->stripe_idempotency_key, req->idempotency_key) != 0 ||
	    p->amount != req->amount || strcmp(p->currency, req->currency) != 0 ||
	    strcmp(p->user_id, req->user_id) != 0 || p->purpose != req->purpose)
		fake_die("gateway.create_intent", "the request differs from the stored one");
}

static enum hex_status fake_gateway_create_intent(void *self,
                                                  const struct gateway_intent_request *req,
                                                  struct gateway_intent *out, struct hex_err *err)
{
	struct fake_gateway *g = self;
	enum hex_status st = fake_enter(&g->base, GW_CREATE_INTENT);
	if (g->nkeys_seen == FAKE_GATEWAY_MAX)
		fake_die("gateway.create_intent", "too many calls for the fake");
	hex_strlcpy(g->keys_seen[g->nkeys_seen++], req->idempotency_key, sizeof g->keys_seen[0]);
	hex_strlcpy(g->last_trace_parent, req->trace_parent, sizeof g->last_trace_parent);
	gateway_check_stored(g, req);
	if (st == HEX_INVALID)
		return hex_fail(err, st, NULL, "%s",
		                g->refusal[0] != '\0' ? g->refusal : "refused");
	if (st != HEX_OK)
		return hex_fail(err, st, NULL, "injected failure");

	struct fake_gateway_intent *it = NULL;
	for (int i = 0; i < g->nintents && it == NULL; i++)
		if (strcmp(g->intents[i].req.idempotency_key, req->idempotency_key) == 0)
			it = &g->intents[i];
	if (it != NULL && !same_intent_request(&it->req, req))
		return hex_fail(err, HEX_CONFLICT, NULL,
		                "idempotency key reused with other parameters");
	if (it == NULL) {
		if (g->nintents == FAKE_GATEWAY_MAX)
			fake_die("gateway.create_intent", "too many intents for the fake");
		it = &g->intents[g->nintents++];
		it->req = *req;
		it->intent =
		    (struct gateway_intent){.status = g->intent_status, .amount = req->amount};
		snprintf(it->intent.id, sizeof it->intent.id, "pi_fake_%d", g->nintents);
		snprintf(it->intent.client_secret, sizeof it->intent.client_secret,
		         "pi_fake_%d_secret_%d", g->nintents, 100 + g->nintents);
		memcpy(it->intent.currency, req->currency, sizeof it->intent.currency);
	}
	if (g->lose_next_answer) {
		g->lose_next_answer = false;
		return hex_fail(err, HEX_UNAVAILABLE, NULL, "timed out");
	}
	*out = it->intent;
	return HEX_OK;
}

static bool same_checkout_request(const struct gateway_checkout_request *a,
                                  const struct gateway_checkout_request *b)
{
	return a->amount == b->amount && strcmp(a->currency, b->currency) == 0 &&
	       strcmp(a->payment_id, b->payment_id) == 0 && strcmp(a->user_id, b->user_id) == 0 &&
	       strcmp(a->success_url, b->success_url) == 0 &&
	       strcmp(a->cancel_url, b->cancel_url) == 0;
}

/* Request storage, as for intents: a membership payment stored with this very key. */
static void gateway_check_checkout_stored(const struct fake_gateway *g,
                                          const struct gateway_checkout_request *req)
{
	if (g->storage == NULL)
		return;
	const struct payment_record *rec = fake_payment_repo_find(g->storage, req->payment_id);
	if (rec == NULL)
		fake_die("gateway.create_checkout", "called before the payment was stored");
	const struct payment *p = &rec->payment;
	if (strcmp(rec->stripe_idempotency_key, req->idempotency_key) != 0 ||
	    p->amount != req->amount || strcmp(p->currency, req->currency) != 0 ||
	    strcmp(p->user_id, req->user_id) != 0 || p->purpose != PURPOSE_MEMBERSHIP)
		fake_die("gateway.create_checkout", "the request differs from the stored one");
	if (req->success_url[0] == '\0' || req->cancel_url[0] == '\0')
		fake_die("gateway.create_checkout", "a session without success or cancel URL");
}

static enum hex_status fake_gateway_create_checkout(void *self,
                                                    const struct gateway_checkout_request *req,
                                                    struct gateway_checkout *out,
                                                    struct hex_err *err)
{
	struct fake_gateway *g = self;
	enum hex_status st = fake_enter(&g->base, GW_CREATE_CHECKOUT);
	memset(out, 0, sizeof *out);
	if (g->nkeys_seen == FAKE_GATEWAY_MAX)
		fake_die("gateway.create_checkout", "too many calls for the fake");
	hex_strlcpy(g->keys_seen[g->nkeys_seen++], req->idempotency_key, sizeof g->keys_seen[0]);
	hex_strlcpy(g->last_trace_parent, req->trace_parent, sizeof g->last_trace_parent);
	gateway_check_checkout_stored(g, req);
	if (st == HEX_INVALID)
		return hex_fail(err, st, NULL, "%s",
		                g->refusal[0] != '\0' ? g->refusal : "refused");
	if (st != HEX_OK)
		return hex_fail(err, st, NULL, "injected failure");

	struct fake_gateway_session *cs = NULL;
	for (int i = 0; i < g->nsessions && cs == NULL; i++)
		if (strcmp(g->sessions[i].req.idempotency_key, req->idempotency_key) == 0)
			cs = &g->sessions[i];
	if (cs != NULL && !same_checkout_request(&cs->req, req))
		return hex_fail(err, HEX_CONFLICT, NULL,
		                "idempotency key reused with other parameters");
	if (cs == NULL) {
		if (g->nsessions == FAKE_GATEWAY_MAX)
			fake_die("gateway.create_checkout", "too many sessions for the fake");
		cs = &g->sessions[g->nsessions++];
		cs->req = *req;
		cs->session = (struct gateway_checkout){0};
		char id[32];
		snprintf(id, sizeof id, "cs_fake_%d", g->nsessions);
		hex_strlcpy(cs->session.id, id, sizeof cs->session.id);
		snprintf(cs->session.url, sizeof cs->session.url, "https://checkout.invalid/%s",
		         id);
	}
	if (g->lose_next_answer) {
		g->lose_next_answer = false;
		return hex_fail(err, HEX_UNAVAILABLE, NULL, "timed out");
	}
	*out = cs->session;
	return HEX_OK;
}

static enum hex_status fake_gateway_retrieve_intent(void *self, const char *intent_id,
                                                    struct gateway_intent *out, struct hex_err *err)
{
	struct fake_gateway *g = self;
	enum hex_status st = fake_enter(&g->base, GW_RETRIEVE_INTENT);
	if (st != HEX_OK)
		return hex_fail(err, st, NULL, "injected failure");
	for (int i = 0; i < g->nintents; i++) {
		if (strcmp(g->intents[i].intent.id, intent_id) == 0) {
			*out = g->intents[i].intent;
			return HEX_OK;
		}
	}
	return hex_fail(err, HEX_NOT_FOUND, NULL, "no such intent");
}

static const struct payment_gateway_ops fake_gateway_ops = {
    .create_intent = fake_gateway_create_intent,
    .create_checkout = fake_gateway_create_checkout,
    .retrieve_intent = fake_gateway_retrieve_intent,
};

struct payment_gateway fake_gateway_port(struct fake_gateway *g)
{
	if (g->base.ops == NULL)
		fake_base_init(&g->base, "gateway", gateway_ops, GW_NOPS, NULL);
	return (struct payment_gateway){.ops = &fake_gateway_ops, .self = g};
}

/* ---- the wired world ---- */

struct fake_world *fake_world_new(void)
{
	struct fake_world *w = xcalloc(1, sizeof *w);
	struct fake_log *log = &w->log;
	fake_base_init(&w->hasher.base, "hasher", hasher_ops, HASHER_NOPS, log);
	fake_base_init(&w->signer.base, "signer", signer_ops, SIGNER_NOPS, log);
	fake_base_init(&w->repo.base, "repo", repo_ops, REPO_NOPS, log);
	fake_base_init(&w->cache.base, "cache", cache_ops, CACHE_NOPS, log);
	fake_base_init(&w->refresh.base, "refresh", refresh_ops, REFRESH_NOPS, log);
	fake_base_init(&w->limiter.base, "limiter", limiter_ops, LIMITER_NOPS, log);
	fake_base_init(&w->messages_repo.base, "messages", message_ops, MSG_NOPS, log);
	fake_base_init(&w->payments_repo.base, "payments", payment_ops, PAY_NOPS, log);
	fake_base_init(&w->gateway.base, "gateway", gateway_ops, GW_NOPS, log);
	w->clock.now_us = FAKE_T0_S * US_PER_S;
	w->repo.refresh = &w->refresh;
	w->limiter.clock = &w->clock;
	w->repo.messages = &w->messages_repo;
	w->messages_repo.users = &w->repo;
	w->payments_repo.users = &w->repo;
	w->gateway.storage = &w->payments_repo;

	w->users = (struct user_service){
	    .repo = fake_user_repo_port(&w->repo),
	    .cache = fake_user_cache_port(&w->cache),
	    .hasher = fake_hasher_port(&w->hasher),
	    .clock = fake_clock_port(&w->clock),
	    .ids = fake_ids_port(&w->ids),
	};
	w->auth.users = &w->users;
	w->auth.refresh = fake_refresh_repo_port(&w->refresh);
	w->auth.signer = fake_signer_port(&w->signer);
	w->auth.limiter = fake_rate_limiter_port(&w->limiter);
	auth_policy_defaults(&w->auth.policy);
	w->messages = (struct message_service){
	    .repo = fake_message_repo_port(&w->messages_repo),
	    .clock = fake_clock_port(&w->clock),
	    .ids = fake_ids_port(&w->ids),
	};
	w->payments = (struct payment_service){
	    .repo = fake_payment_repo_port(&w->payments_repo),
	    .gateway = fake_gateway_port(&w->gateway),
	    .cache = fake_user_cache_port(&w->cache),
	    .clock = fake_clock_port(&w->clock),
	    .ids = fake_ids_port(&w->ids),
	    .membership_price = FAKE_MEMBERSHIP_PRICE,
	    .membership_currency = FAKE_MEMBERSHIP_CURRENCY,
	    .checkout_success_url = FAKE_CHECKOUT_SUCCESS_URL,
	    .checkout_cancel_url = FAKE_CHECKOUT_CANCEL_URL,
	};
	if (auth_service_prepare(&w->auth) != HEX_OK)
		fake_die("world", "auth_service_prepare failed");
	fake_world_reset_calls(w);
	return w;
}

void fake_world_free(struct fake_world *w)
{
	if (w != NULL)
		fake_message_repo_reset(&w->messages_repo);
	free(w);
}

void fake_world_reset_calls(struct fake_world *w)
{
	fake_calls_reset(&w->hasher.base);
	fake_calls_reset(&w->signer.base);
	fake_calls_reset(&w->repo.base);
	fake_calls_reset(&w->cache.base);
	fake_calls_reset(&w->refresh.base);
	fake_calls_reset(&w->limiter.base);
	fake_calls_reset(&w->messages_repo.base);
	fake_calls_reset(&w->payments_repo.base);
	fake_calls_reset(&w->gateway.base);
	fake_log_clear(&w->log);
}
