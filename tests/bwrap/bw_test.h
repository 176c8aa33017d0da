/*
 * Shared fixture of the bwrap plugin tests: one plugin instance on a fresh
 * root under /tmp per test binary, a sandbox per test, and helpers that run
 * a program and capture what it printed. Test code uses plain malloc; the
 * plugin's memory goes through the fake host's test_malloc.
 */
#ifndef CI_TESTS_BW_TEST_H
#define CI_TESTS_BW_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>

#include "ci/backend.h"
#include "fake_host.h"

#define BW_OWNER "bwrap-test"
#define MIB	 (1024 * 1024LL)

struct bw_cap {
	char *buf;
	size_t len, cap;
	unsigned chunks;
};

struct bw_out {
	struct bw_cap out, err;
	unsigned stop_out_after; /* sink says "stop" after this many stdout chunks (0: never) */
};

struct bw_env {
	const ci_backend *d;
	ci_be *be;
	ci_host host;
	char root[64];
	char id[CI_ID_MAX]; /* the current test's sandbox */
	int cg_memory;	    /* the plugin found a writable memory cgroup */
};

extern struct bw_env bw;

/* The plugin's single export, linked in from its OBJECT library. */
ci_entry_fn ci_backend_v1;

/* Group fixture: init the plugin on a fresh root; extra cfg entries first. */
int bw_group_setup(void **state);
int bw_group_teardown(void **state);
/* Per-test fixture: a sandbox with default limits in bw.id. */
int bw_sandbox_setup(void **state);
int bw_sandbox_teardown(void **state);

ci_call bw_call(int64_t timeout_ms);
int bw_sink_write(void *ctx, int stream, const void *buf, size_t len);
void bw_out_free(struct bw_out *o);

/* Run argv in sandbox id; o receives output (may be NULL). */
int bw_run(const char *id, const char *const *argv, const char *const *env, const char *cwd,
	   const void *in, size_t in_len, int64_t timeout_ms, ci_exec_result *res,
	   struct bw_out *o);
/* Run python3 -c code; asserts the exec call itself succeeded. */
void bw_py(const char *code, ci_exec_result *res, struct bw_out *o);
/* Run /bin/sh -c script; asserts the exec call itself succeeded. */
void bw_sh(const char *script, ci_exec_result *res, struct bw_out *o);

/* put from a memory buffer through the read callback (fd = -1). */
int bw_put_mem(const char *id, const char *path, const void *data, size_t len, uint32_t mode,
	       ci_call *call);
/* get into o->out (stream DATA). */
int bw_get(const char *id, const char *path, struct bw_out *o, ci_call *call);

/* Host path of the sandbox's data dir. */
void bw_data_path(const char *id, char *buf, size_t len);
/* Is any process on the host running with this exact argv[1]? */
int bw_proc_with_arg(const char *prog, const char *arg1);
/* Is any process on the host running with token somewhere in its command line? */
int bw_proc_with_token(const char *token);

#endif /* CI_TESTS_BW_TEST_H */
