/* console_prompt: one-line input and y/N questions on the message row. */
#include "tui/console_prompt.h"

#include <curses.h>
#include <string.h>
#include <wctype.h>

#include "core/hex.h"
#include "tui/console_draw.h"
#include "tui/console_fmt.h"
#include "tui/console_screen.h"

static void prompt_open(struct console_prompt *p, const char *label, void *owner)
{
	memset(p, 0, sizeof *p);
	p->active = true;
	p->owner = owner;
	hex_strlcpy(p->label, label ? label : "", sizeof p->label);
}

void console_prompt_text(struct console_prompt *p, const char *label, const char *initial,
                         console_prompt_text_fn fn, void *owner)
{
	prompt_open(p, label, owner);
	p->on_text = fn;
	bool fitted = hex_strlcpy(p->text, initial ? initial : "", sizeof p->text);
	p->len = strlen(p->text);
	if (!fitted) {
		/* Cut short: drop the last character, which may be half of one. */
		while (p->len > 0 && ((unsigned char)p->text[p->len - 1] & 0xc0) == 0x80)
			p->len--;
		if (p->len > 0)
			p->len--;
		p->text[p->len] = '\0';
	}
}

void console_prompt_confirm(struct console_prompt *p, const char *label,
                            console_prompt_confirm_fn fn, void *owner)
{
	prompt_open(p, label, owner);
	p->confirm = true;
	p->on_confirm = fn;
}

/* Appends code point cp as UTF-8 if it fits. */
static void prompt_append(struct console_prompt *p, unsigned cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	if (p->len + n > CONSOLE_PROMPT_TEXT_MAX)
		return;
	memcpy(p->text + p->len, u, n);
	p->len += n;
	p->text[p->len] = '\0';
}

static void prompt_erase_char(struct console_prompt *p)
{
	while (p->len > 0 && ((unsigned char)p->text[p->len - 1] & 0xc0) == 0x80)
		p->len--;
	if (p->len > 0)
		p->len--;
	p->text[p->len] = '\0';
}

static void prompt_erase_word(struct console_prompt *p)
{
	while (p->len > 0 && p->text[p->len - 1] == ' ')
		p->len--;
	while (p->len > 0 && p->text[p->len - 1] != ' ')
		p->len--;
	p->text[p->len] = '\0';
}

void console_prompt_key(struct console_prompt *p, struct console *con, int key)
{
	char text[CONSOLE_PROMPT_TEXT_MAX + 1];
	void *owner = p->owner;

	if (!p->active)
		return;
	if (p->confirm) {
		console_prompt_confirm_fn fn = p->on_confirm;
		p->active = false;
		fn(owner, con, key == 'y' || key == 'Y');
		return;
	}
	switch (key) {
	case CONSOLE_KEY_ENTER:
	case CONSOLE_KEY_ESC: {
		console_prompt_text_fn fn = p->on_text;
		/* The callback may open the next prompt in p: it gets a copy. */
		memcpy(text, p->text, sizeof text);
		p->active = false;
		fn(owner, con, key == CONSOLE_KEY_ESC ? NULL : text);
		return;
	}
	case CONSOLE_KEY_BACKSPACE:
		prompt_erase_char(p);
		return;
	case CONSOLE_CTRL('u'):
		p->len = 0;
		p->text[0] = '\0';
		return;
	case CONSOLE_CTRL('w'):
		prompt_erase_word(p);
		return;
	default:
		break;
	}
	if ((key & CONSOLE_KEY_FNBIT) || key < 0x20 || key == 0x7f || key > 0x10ffff)
		return;
	if (key >= 0x80 && (!console_fmt_utf8() || !iswprint((wint_t)key)))
		return;
	prompt_append(p, (unsigned)key);
}

void console_prompt_draw(const struct console_prompt *p, int y)
{
	const char *shown = p->text;
	int x, room;

	if (!p->active)
		return;
	console_draw_fill(y, 0, CONSOLE_NORMAL);
	x = console_draw_str(y, 0, COLS - 2, CONSOLE_TITLE, p->label);
	if (p->confirm) {
		x += console_draw_str(y, x, COLS - x - 1, CONSOLE_TITLE, " [y/N] ");
		move(y, x < COLS ? x : COLS - 1);
		return;
	}
	room = COLS - x - 1;
	/* A long input shows its end, where the typing is. */
	while (*shown && console_fmt_cells(shown) > room) {
		shown++;
		while (((unsigned char)*shown & 0xc0) == 0x80)
			shown++;
	}
	x += console_draw_str(y, x, room, CONSOLE_NORMAL, shown);
	move(y, x < COLS ? x : COLS - 1);
}
