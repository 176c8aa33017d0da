/*
 * Built-in language table: all 13 LibreChat languages. ci.conf may override
 * any field of any entry, or add languages (see conf/ci.conf).
 */
#ifndef CI_CORE_LANG_DEFAULTS_H
#define CI_CORE_LANG_DEFAULTS_H

#include <stddef.h>

struct ci_lang_default {
	const char *name;
	const char *aliases; /* comma-separated */
	const char *runtime;
	const char *image;
	const char *source_file;
	const char *compile; /* NULL when interpreted */
	const char *run;
	const char *probe;
};

extern const struct ci_lang_default ci_lang_defaults[];
size_t ci_lang_defaults_count(void);

#endif /* CI_CORE_LANG_DEFAULTS_H */
