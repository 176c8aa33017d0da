/*
 * A minimal ci_host for driving a backend plugin directly from cmocka tests:
 * log lines are captured, configuration comes from a static table, memory
 * goes through test_malloc/test_free so cmocka reports plugin leaks.
 */
#ifndef CI_TESTS_FAKE_HOST_H
#define CI_TESTS_FAKE_HOST_H

#include <stdint.h>

#include "ci/backend.h"

enum { FAKE_STR = 1, FAKE_INT, FAKE_BOOL };

struct fake_cfg {
	const char *key; /* NULL ends the table */
	int type;
	const char *s;
	int64_t i;
};

/*
 * Fill *host; cfg (borrowed, may be NULL, kept as hctx) answers
 * cfg_str/cfg_int/cfg_bool.
 */
void fake_host_init(ci_host *host, const struct fake_cfg *cfg);

/* Everything logged since the last clear, one line each. */
const char *fake_host_log(void);
void fake_host_log_clear(void);

/* Added to wall_unix(): lets sweep tests move time. */
extern int64_t fake_host_wall_offset;

#endif /* CI_TESTS_FAKE_HOST_H */
