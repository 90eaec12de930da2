/*
 * console_prompt: the one-line input and y/N confirmation on the console's message row.
 * It is not modal: while it is open the console keeps reading events, ticking and
 * reconnecting; keys go to it first. Its callback runs after it has closed, so a callback
 * may open the next prompt (a reason, then its confirmation).
 */
#ifndef HEX_TUI_CONSOLE_PROMPT_H
#define HEX_TUI_CONSOLE_PROMPT_H

#include <stdbool.h>
#include <stddef.h>

struct console;

/* text: what was typed (UTF-8, may be empty), or NULL when the operator pressed Esc. */
typedef void (*console_prompt_text_fn)(void *owner, struct console *con, const char *text);
/* yes: only 'y' or 'Y'; every other key (Enter too) is no. */
typedef void (*console_prompt_confirm_fn)(void *owner, struct console *con, bool yes);

#define CONSOLE_PROMPT_LABEL_MAX 160
#define CONSOLE_PROMPT_TEXT_MAX  240

struct console_prompt {
	bool active;
	bool confirm;
	char label[CONSOLE_PROMPT_LABEL_MAX];
	char text[CONSOLE_PROMPT_TEXT_MAX + 1];
	size_t len;
	console_prompt_text_fn on_text;
	console_prompt_confirm_fn on_confirm;
	void *owner;
};

/* Opens a text prompt showing label, with initial text (NULL: empty). */
void console_prompt_text(struct console_prompt *p, const char *label, const char *initial,
                         console_prompt_text_fn fn, void *owner);
/* Opens a y/N question. */
void console_prompt_confirm(struct console_prompt *p, const char *label,
                            console_prompt_confirm_fn fn, void *owner);
/* A key while the prompt is open (console key codes, console_screen.h); runs the
 * callback when it closes. */
void console_prompt_key(struct console_prompt *p, struct console *con, int key);
/* Draws the prompt on row y; leaves the cursor at the input's end. */
void console_prompt_draw(const struct console_prompt *p, int y);

#endif
