/*
 * shell_complete.c: Tab completion for the shell. First word: the verbs from HELP and the
 * shell's own words; second word: the sub-verbs of the verb typed; later words: the
 * upper-case option words of the verb's usage line (LIMIT, CURSOR, ALL ...) and the ids
 * of recent replies, most recent first.
 */
#include "tui/shell.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <readline/readline.h>

#include "core/xmalloc.h"

#define IDS_MAX 200 /* ids remembered for completion */

struct words {
	size_t n, cap;
	char **v;
};

struct verb {
	char *name;  /* "DLQ REPLAY" */
	char *usage; /* "DLQ REPLAY <id>" */
};

static struct {
	struct verb *verbs;
	size_t nverbs;
	const char *const *builtins;
	struct words ids;        /* most recent first */
	struct words candidates; /* of the completion in progress */
} state;

static bool words_has(const struct words *w, const char *s)
{
	for (size_t i = 0; i < w->n; i++)
		if (strcmp(w->v[i], s) == 0)
			return true;
	return false;
}

static void words_add(struct words *w, const char *s)
{
	if (words_has(w, s))
		return;
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->v = xrealloc(w->v, w->cap * sizeof *w->v);
	}
	w->v[w->n++] = xstrdup(s);
}

static void words_add_n(struct words *w, const char *s, size_t n)
{
	char *copy = xstrndup(s, n);
	words_add(w, copy);
	free(copy);
}

static void words_clear(struct words *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i]);
	w->n = 0;
}

static void words_free(struct words *w)
{
	words_clear(w);
	free(w->v);
	*w = (struct words){0};
}

/* ---- what is known */

static void verbs_free(void)
{
	for (size_t i = 0; i < state.nverbs; i++) {
		free(state.verbs[i].name);
		free(state.verbs[i].usage);
	}
	free(state.verbs);
	state.verbs = NULL;
	state.nverbs = 0;
}

void shell_complete_set_verbs(const json_t *help_data)
{
	verbs_free();
	state.verbs = xcalloc(json_array_size(help_data) + 1, sizeof *state.verbs);
	state.nverbs = 0;
	size_t i;
	json_t *v;
	json_array_foreach(help_data, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "verb"));
		const char *usage = json_string_value(json_object_get(v, "usage"));
		if (name == NULL)
			continue;
		state.verbs[state.nverbs].name = xstrdup(name);
		state.verbs[state.nverbs].usage = xstrdup(usage != NULL ? usage : name);
		state.nverbs++;
	}
}

static bool is_id_key(const char *key)
{
	size_t n = strlen(key);
	return strcmp(key, "id") == 0 || (n > 3 && strcmp(key + n - 3, "_id") == 0);
}

static void collect_ids(const json_t *v, struct words *found)
{
	if (json_is_array(v)) {
		size_t i;
		json_t *item;
		json_array_foreach(v, i, item)
		{
			collect_ids(item, found);
		}
		return;
	}
	if (!json_is_object(v))
		return;
	const char *key;
	json_t *item;
	json_object_foreach((json_t *)v, key, item)
	{
		if (json_is_string(item) && is_id_key(key) && json_string_length(item) > 0)
			words_add(found, json_string_value(item));
		else
			collect_ids(item, found);
	}
}

void shell_complete_note(const json_t *data)
{
	struct words found = {0};
	collect_ids(data, &found);
	if (found.n == 0)
		goto out;
	/* The newest reply's ids go first, in their own order; older ones follow. */
	struct words merged = {0};
	for (size_t i = 0; i < found.n && merged.n < IDS_MAX; i++)
		words_add(&merged, found.v[i]);
	for (size_t i = 0; i < state.ids.n && merged.n < IDS_MAX; i++)
		words_add(&merged, state.ids.v[i]);
	words_free(&state.ids);
	state.ids = merged;
out:
	words_free(&found);
}

void shell_complete_clear(void)
{
	verbs_free();
	words_free(&state.ids);
	words_free(&state.candidates);
}

/* ---- candidates for the word being typed */

static size_t word_len(const char *s)
{
	return strcspn(s, " \t");
}

/*
 * Do the words typed follow the verb's name (any case)? *rest: the name's next word, or
 * "" when the whole name was typed (arguments may follow it).
 */
static bool verb_continues(const struct verb *v, char *const *typed, size_t ntyped,
                           const char **rest)
{
	const char *p = v->name;
	for (size_t i = 0; i < ntyped && *p != '\0'; i++) {
		size_t n = word_len(p);
		if (n != strlen(typed[i]) || strncasecmp(p, typed[i], n) != 0)
			return false;
		p += n + strspn(p + n, " \t");
	}
	*rest = p;
	return true;
}

/* The upper-case words of a usage line after the verb's own: LIMIT, CURSOR, ALL ... */
static void add_usage_keywords(const struct verb *v)
{
	const char *p = v->usage + strlen(v->name);
	while (*p != '\0') {
		size_t n = 0;
		while (isupper((unsigned char)p[n]) || (n > 0 && p[n] == '-'))
			n++;
		bool whole = n >= 1 && !isalnum((unsigned char)p[n]) &&
		             (p == v->usage || !isalnum((unsigned char)p[-1]));
		if (whole)
			words_add_n(&state.candidates, p, n);
		p += n > 0 ? n : 1;
	}
}

static void build_candidates(char *const *typed, size_t ntyped)
{
	words_clear(&state.candidates);
	bool after_help = ntyped > 0 && strcasecmp(typed[0], "help") == 0;
	if (after_help) {
		typed++;
		ntyped--;
	}
	bool verb_complete = false;
	for (size_t i = 0; i < state.nverbs; i++) {
		const char *rest = NULL;
		if (!verb_continues(&state.verbs[i], typed, ntyped, &rest))
			continue;
		if (*rest != '\0')
			words_add_n(&state.candidates, rest, word_len(rest));
		else if (!after_help) {
			verb_complete = true;
			add_usage_keywords(&state.verbs[i]);
		}
	}
	if (ntyped == 0 && !after_help)
		for (const char *const *b = state.builtins; b != NULL && *b != NULL; b++)
			words_add(&state.candidates, *b);
	/* Arguments (and verbs HELP does not know): ids from recent replies. */
	if (ntyped > 0 && (verb_complete || state.candidates.n == 0) && !after_help)
		for (size_t i = 0; i < state.ids.n; i++)
			words_add(&state.candidates, state.ids.v[i]);
}

static char *generate(const char *text, int st)
{
	static size_t next;
	if (st == 0)
		next = 0;
	size_t n = strlen(text);
	while (next < state.candidates.n) {
		const char *c = state.candidates.v[next++];
		if (strncasecmp(c, text, n) == 0)
			return strdup(c); /* readline frees it with free() */
	}
	return NULL;
}

static char **attempt(const char *text, int start, int end)
{
	rl_attempted_completion_over = 1; /* never fall back to file names */
	struct words typed = {0};
	const char *p = rl_line_buffer;
	const char *stop = rl_line_buffer + start;
	while (p < stop) {
		p += strspn(p, " \t");
		if (p >= stop)
			break;
		size_t n = word_len(p);
		if (p + n > stop)
			n = (size_t)(stop - p);
		if (typed.n == typed.cap) {
			typed.cap = typed.cap ? typed.cap * 2 : 8;
			typed.v = xrealloc(typed.v, typed.cap * sizeof *typed.v);
		}
		typed.v[typed.n++] = xstrndup(p, n); /* repeats allowed: no words_add */
		p += n;
	}
	build_candidates(typed.v, typed.n);
	words_free(&typed);
	return rl_completion_matches(text, generate);
}

void shell_complete_install(const char *const *builtin_words)
{
	state.builtins = builtin_words;
	rl_attempted_completion_function = attempt;
	rl_basic_word_break_characters = " \t";
	rl_variable_bind("completion-ignore-case", "on");
}
