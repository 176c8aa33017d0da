/* Helpers shared by the loader, host and fake tests. */
#ifndef CI_TEST_UTIL_H
#define CI_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>

struct ci_conf;

/* Capture ci_log output in memory (level debug) until log_stop(). */
void log_start(void);
void log_stop(void);
/* Everything logged since log_start(), NUL-terminated. */
const char *log_text(void);
/* True when one logged line holds every one of the NULL-terminated needles. */
bool log_line_has(const char *first, ...) __attribute__((sentinel));

/* mkdtemp under $TMPDIR or /tmp into buf. */
void make_temp_dir(char *buf, size_t len, const char *tag);
/* rm -rf without following symlinks. */
void remove_tree(const char *path);
/* Copy src to dst with the given mode. */
void copy_file(const char *src, const char *dst, unsigned mode);
/* Write text to path. */
void write_text(const char *path, const char *text);
/* Load a conf from text through a temporary file (ci_conf_load). */
void conf_from_text(struct ci_conf *conf, const char *text);
/* The whole file at path (malloc'd, NUL-terminated), or NULL. */
char *read_text(const char *path);

#endif
