/*
 * console_latency: the Latency screen. Fed by the SUBSCRIBE LATENCY ticks (one a second,
 * collected from the moment the console connects, whether the screen is visible or not):
 * per route the last tick's requests/s, error rate and p50/p95/p99, and a sparkline of
 * requests/s over the last LATENCY_HISTORY ticks. Enter shows one route's history of
 * every measure at full width.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "tui/console_fmt.h"
#include "tui/console_list.h"
#include "tui/console_screen.h"

enum latency_mode { LATENCY_LIST = 0, LATENCY_DETAIL };
#define M(m)               (1u << (m))
#define LATENCY_HISTORY    120 /* ticks kept per route: two minutes */
#define LATENCY_ROUTES_MAX 64
#define LATENCY_STALE_MS   3000 /* no tick for this long: the title says so */

enum latency_measure { LAT_RPS = 0, LAT_ERR, LAT_P50, LAT_P95, LAT_P99, LAT_MEASURES };

static const struct {
	const char *key;   /* in the tick's route object */
	const char *label; /* in the detail view */
	double scale;      /* shown value = value * scale */
	const char *unit;
	bool peak; /* sparkline cells show their peak (latency), else their mean (rates) */
} latency_measures[LAT_MEASURES] = {
    [LAT_RPS] = {"rps", "requests/s", 1, "", false},
    [LAT_ERR] = {"error_rate", "errors", 100, "%", false},
    [LAT_P50] = {"p50_ms", "p50", 1, " ms", true},
    [LAT_P95] = {"p95_ms", "p95", 1, " ms", true},
    [LAT_P99] = {"p99_ms", "p99", 1, " ms", true},
};

struct latency_route {
	char route[128];
	int count; /* samples held, oldest first */
	double v[LAT_MEASURES][LATENCY_HISTORY];
};

struct latency {
	struct console_list list;
	struct latency_route routes[LATENCY_ROUTES_MAX];
	int nroutes;
	long long ticks;
	char time[40];
	long long window_s;
	int64_t last_ms;
	char shown[128]; /* the route in the detail view */
};

static void latency_push(struct latency_route *r, const double *sample)
{
	if (r->count == LATENCY_HISTORY) {
		for (int m = 0; m < LAT_MEASURES; m++)
			memmove(r->v[m], r->v[m] + 1, (LATENCY_HISTORY - 1) * sizeof r->v[m][0]);
		r->count--;
	}
	for (int m = 0; m < LAT_MEASURES; m++)
		r->v[m][r->count] = sample[m];
	r->count++;
}

static struct latency_route *latency_find(struct latency *t, const char *route)
{
	for (int i = 0; i < t->nroutes; i++) {
		if (strcmp(t->routes[i].route, route) == 0)
			return &t->routes[i];
	}
	return NULL;
}

/* The measure as shown: "812.4", "0.41", "12", "-" before any sample. */
static void latency_value(char *buf, size_t n, double v)
{
	if (v < 10)
		snprintf(buf, n, "%.2f", v);
	else if (v < 1000)
		snprintf(buf, n, "%.1f", v);
	else
		snprintf(buf, n, "%.0f", v);
}

static void latency_cell_value(const struct console_list *l, const json_t *item, const char *key,
                               int width, char *buf, size_t n)
{
	const json_t *v = json_object_get(item, key);
	double scale = strcmp(key, "error_rate") == 0 ? 100 : 1;
	if (!json_is_number(v)) {
		snprintf(buf, n, "-");
		return;
	}
	latency_value(buf, n, json_number_value(v) * scale);
}

static void latency_cell_spark(const struct console_list *l, const json_t *item, const char *key,
                               int width, char *buf, size_t n)
{
	struct latency *t = l->owner;
	struct latency_route *r = latency_find(t, console_fmt_str(item, "route"));

	buf[0] = '\0';
	if (r != NULL)
		console_fmt_spark(buf, n, r->v[LAT_RPS], r->count, LATENCY_HISTORY, width, false);
}

static const struct console_column latency_columns[] = {
    {"ROUTE", "route", 0, false, NULL},
    {"REQ/S", "rps", 7, true, latency_cell_value},
    {"ERR%", "error_rate", 5, true, latency_cell_value},
    {"P50 ms", "p50_ms", 6, true, latency_cell_value},
    {"P95 ms", "p95_ms", 6, true, latency_cell_value},
    {"P99 ms", "p99_ms", 6, true, latency_cell_value},
    {"REQ/S, 2 MIN", "route", 16, false, latency_cell_spark},
};

static void *latency_create(struct console *con)
{
	struct latency *t = xcalloc(1, sizeof *t);
	console_list_init(&t->list, latency_columns,
	                  (int)(sizeof latency_columns / sizeof latency_columns[0]), NULL, t,
	                  "no requests yet: routes appear once they serve one");
	t->list.id_key = "route";
	t->list.loaded = true;
	return t;
}

static void latency_destroy(void *self)
{
	struct latency *t = self;
	console_list_clear(&t->list);
	free(t);
}

static int latency_mode(const void *self)
{
	const struct latency *t = self;
	return t->list.detail ? LATENCY_DETAIL : LATENCY_LIST;
}

static int latency_by_route(const void *a, const void *b)
{
	return strcmp(((const struct latency_route *)a)->route,
	              ((const struct latency_route *)b)->route);
}

/* The rows: every route seen, by name, with its latest sample. */
static void latency_rebuild(struct latency *t)
{
	json_t *items = json_array();
	char keep[128] = "";
	const json_t *cur = console_list_selected(&t->list);

	if (cur)
		hex_strlcpy(keep, console_fmt_str(cur, "route"), sizeof keep);
	for (int i = 0; i < t->nroutes; i++) {
		const struct latency_route *r = &t->routes[i];
		json_t *row = json_object();
		json_object_set_new(row, "route", json_string(r->route));
		for (int m = 0; m < LAT_MEASURES && r->count > 0; m++)
			json_object_set_new(row, latency_measures[m].key,
			                    json_real(r->v[m][r->count - 1]));
		json_array_append_new(items, row);
		if (keep[0] && strcmp(keep, r->route) == 0)
			t->list.sel = i;
	}
	console_list_set_items(&t->list, items);
}

static void latency_fill_detail(struct latency *t)
{
	struct console_list *l = &t->list;
	struct latency_route *r = latency_find(t, t->shown);
	int width = COLS - 4 > 8 ? COLS - 4 : 8;
	char spark[CONSOLE_FMT_MAX(512)], now[32], top[32];
	int dtop = l->dtop;

	console_list_detail_clear(l);
	l->dtop = dtop;
	if (r == NULL) {
		console_list_detail_add(l, CONSOLE_DIM, 2, "no data for %s", t->shown);
		return;
	}
	console_list_detail_add(l, CONSOLE_DIM, 2, "%d of the last %d ticks, newest on the right",
	                        r->count, LATENCY_HISTORY);
	for (int m = 0; m < LAT_MEASURES; m++) {
		double hi = 0;
		for (int i = 0; i < r->count; i++)
			hi = r->v[m][i] > hi ? r->v[m][i] : hi;
		latency_value(now, sizeof now,
		              r->count ? r->v[m][r->count - 1] * latency_measures[m].scale : 0);
		latency_value(top, sizeof top, hi * latency_measures[m].scale);
		console_list_detail_add(l, CONSOLE_HEADING, 0, "%s: now %s%s, max %s%s",
		                        latency_measures[m].label, now, latency_measures[m].unit,
		                        top, latency_measures[m].unit);
		console_fmt_spark(spark, sizeof spark, r->v[m], r->count, LATENCY_HISTORY,
		                  width > 512 ? 512 : width, latency_measures[m].peak);
		console_list_detail_add(l, CONSOLE_NORMAL, 2, "%s", spark);
	}
}

static void latency_event(void *self, struct console *con, const char *name, const json_t *data)
{
	struct latency *t = self;
	const json_t *routes = json_object_get(data, "routes"), *r;
	bool seen[LATENCY_ROUTES_MAX] = {false};
	double zero[LAT_MEASURES] = {0};
	size_t i;

	if (strcmp(name, "latency") != 0 || !json_is_array(routes))
		return;
	json_array_foreach(routes, i, r)
	{
		const char *route = console_fmt_str(r, "route");
		struct latency_route *lr = latency_find(t, route);
		double sample[LAT_MEASURES];
		if (*route == '\0')
			continue;
		if (lr == NULL) {
			if (t->nroutes == LATENCY_ROUTES_MAX)
				continue;
			lr = &t->routes[t->nroutes++];
			memset(lr, 0, sizeof *lr);
			hex_strlcpy(lr->route, route, sizeof lr->route);
		}
		for (int m = 0; m < LAT_MEASURES; m++)
			sample[m] = console_fmt_num(r, latency_measures[m].key, 0);
		latency_push(lr, sample);
		seen[lr - t->routes] = true;
	}
	/* A route left out of a tick served nothing in its window: a zero, so its line
	 * falls instead of freezing at the last busy second. */
	for (int k = 0; k < t->nroutes; k++) {
		if (!seen[k])
			latency_push(&t->routes[k], zero);
	}
	qsort(t->routes, (size_t)t->nroutes, sizeof t->routes[0], latency_by_route);
	hex_strlcpy(t->time, console_fmt_str(data, "time"), sizeof t->time);
	t->window_s = console_fmt_int(data, "window_s", 0);
	t->ticks++;
	t->last_ms = console_now_ms();
	latency_rebuild(t);
	if (t->list.detail)
		latency_fill_detail(t);
}

static void latency_show(void *self, struct console *con)
{
	struct latency *t = self;
	latency_rebuild(t);
}

static void latency_open(void *self, struct console *con)
{
	struct latency *t = self;
	const json_t *item = console_list_selected(&t->list);

	if (item == NULL)
		return;
	hex_strlcpy(t->shown, console_fmt_str(item, "route"), sizeof t->shown);
	latency_fill_detail(t);
	console_list_detail_open(&t->list);
}

static void latency_back(void *self, struct console *con)
{
	struct latency *t = self;
	console_list_detail_close(&t->list);
}

static void latency_find_key(void *self, struct console *con)
{
	struct latency *t = self;
	console_list_prompt_find(&t->list, con);
}

static void latency_draw(void *self, struct console *con, int y, int rows, int cols)
{
	struct latency *t = self;
	char title[256], pos[64], when[32];
	int64_t age = console_now_ms() - t->last_ms;

	console_list_position(&t->list, pos, sizeof pos);
	console_fmt_time(when, sizeof when, t->time, false);
	if (t->ticks == 0)
		snprintf(title, sizeof title, "Latency per route: waiting for the first tick");
	else if (t->list.detail)
		snprintf(title, sizeof title, "Latency of %s at %s", t->shown, when);
	else if (age > LATENCY_STALE_MS)
		snprintf(title, sizeof title, "Latency per route, %llds window: no tick for %llds",
		         t->window_s, (long long)(age / 1000));
	else
		snprintf(title, sizeof title, "Latency per route, %llds window, at %s", t->window_s,
		         when);
	console_frame_title(y, cols, title, pos);
	console_list_draw(&t->list, con, y + 1, rows - 1, cols);
}

static bool latency_key(void *self, struct console *con, int key)
{
	struct latency *t = self;
	return console_list_key(&t->list, con, key);
}

static const struct console_action latency_actions[] = {
    {CONSOLE_KEY_ENTER, "Enter", "history", M(LATENCY_LIST), true, latency_open},
    {'/', "/", "find", M(LATENCY_LIST), true, latency_find_key},
    {CONSOLE_KEY_ESC, "Esc", "back", M(LATENCY_DETAIL), true, latency_back},
    {CONSOLE_KEY_BACKSPACE, NULL, NULL, M(LATENCY_DETAIL), false, latency_back},
    {0, NULL, NULL, 0, false, NULL},
};

const struct console_screen console_latency_screen = {
    .tab = "Latency",
    .actions = latency_actions,
    .create = latency_create,
    .destroy = latency_destroy,
    .show = latency_show,
    .draw = latency_draw,
    .key = latency_key,
    .event = latency_event,
    .mode = latency_mode,
};
