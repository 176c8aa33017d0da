/* Error codes for unknown sandboxes and bad paths; sweep by owner. */
#include <stdio.h>
#include <string.h>

#include "host.h"
#include "kit.h"
#include "loader.h"

static void unknown_id(struct kit *k, const char *id, const char *what)
{
	const char *argv[] = {"true", NULL};
	struct kit_run r = {0};
	struct kit_list l = {0};
	struct kit_buf b = {0};
	char err[CI_ERR_MAX];
	int rc;

	kit_exec(k, id, argv, NULL, NULL, NULL, 0, KIT_EXEC_MS, &r);
	kit_ok(k, r.rc == CI_E_NOTFOUND, "exec in %s is not_found (%s)", what, kit_rc(r.rc));
	kit_run_free(&r);
	rc = kit_put(k, id, "/mnt/data/x.txt", "x", 1, 0644, false, err);
	kit_ok(k, rc == CI_E_NOTFOUND, "put in %s is not_found (%s)", what, kit_rc(rc));
	rc = kit_get(k, id, "/mnt/data/x.txt", &b, err);
	kit_ok(k, rc == CI_E_NOTFOUND, "get in %s is not_found (%s)", what, kit_rc(rc));
	kit_buf_free(&b);
	rc = kit_list(k, id, "/mnt/data", &l, err);
	kit_ok(k, rc == CI_E_NOTFOUND, "list in %s is not_found (%s)", what, kit_rc(rc));
	rc = kit_destroy(k, id, err);
	kit_ok(k, rc == CI_E_NOTFOUND, "destroy of %s is not_found (%s)", what, kit_rc(rc));
}

static void bad_path(struct kit *k, const char *path)
{
	struct kit_list l = {0};
	struct kit_buf b = {0};
	char err[CI_ERR_MAX];
	int put, get, list;

	put = kit_put(k, k->id, path, "x", 1, 0644, false, err);
	get = kit_get(k, k->id, path, &b, err);
	list = kit_list(k, k->id, path, &l, err);
	if (!kit_ok(k, put == CI_E_INVAL && get == CI_E_INVAL && list == CI_E_INVAL,
		    "put, get and list of '%s' are invalid", path))
		kit_diag("put=%s get=%s list=%s", kit_rc(put), kit_rc(get), kit_rc(list));
	kit_buf_free(&b);
}

void kit_check_errors(struct kit *k)
{
	static const char *const bad[] = {
		"/etc/passwd",
		"/mnt/data/../etc/passwd",
		"/mnt/data/a/../../etc/passwd",
		"relative.txt",
		"/mnt/database/x",
		"/mnt/data/..",
		"",
		"/mnt/data/list/../../../../etc/hostname",
	};
	struct kit_buf b = {0};
	char err[CI_ERR_MAX];
	int rc;

	unknown_id(k, k->gone, "a destroyed sandbox");
	unknown_id(k, "nosuchsandbox0ci0conformance", "a sandbox that never existed");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		bad_path(k, bad[i]);
	rc = kit_get(k, k->id, "/mnt/data/no-such-file.txt", &b, err);
	kit_ok(k, rc == CI_E_NOTFOUND, "get of a missing file is not_found (%s)", kit_rc(rc));
	kit_buf_free(&b);
	rc = kit_get(k, k->id, "/mnt/data/n1", &b, err);
	kit_ok(k, rc != CI_OK && b.total == 0, "get of a directory is refused (%s)", kit_rc(rc));
	kit_buf_free(&b);
	rc = kit_put(k, k->id, "/mnt/data", "x", 1, 0644, false, err);
	kit_ok(k, rc == CI_E_INVAL, "put onto /mnt/data itself is invalid (%s)", kit_rc(rc));
}

static int sweep(struct kit *k, const char *owner, int64_t older_than, unsigned *n)
{
	ci_call call;
	int rc = ci_plugin_sweep(k->p, &call, "kit", kit_now_ms() + KIT_CALL_MS, owner, older_than,
				 n);

	if (rc)
		kit_diag("sweep(%s): rc=%s err=%s", owner, kit_rc(rc), call.err);
	return rc;
}

/* A sandbox exists unless list says not_found (list may be all a backend lacks). */
static bool alive(struct kit *k, const char *id)
{
	struct kit_list l = {0};
	char err[CI_ERR_MAX];

	return kit_list(k, id, "/mnt/data", &l, err) != CI_E_NOTFOUND;
}

void kit_check_sweep(struct kit *k)
{
	char owner_a[128], owner_b[128], a[CI_ID_MAX], b[CI_ID_MAX], err[CI_ERR_MAX];
	int64_t now = ci_wall_unix();
	unsigned n = 0;
	int rc;

	snprintf(owner_a, sizeof(owner_a), "%s-a", k->owner);
	snprintf(owner_b, sizeof(owner_b), "%s-b", k->owner);
	rc = kit_create(k, owner_a, NULL, a, err);
	if (!rc)
		rc = kit_create(k, owner_b, NULL, b, err);
	if (!kit_ok(k, rc == CI_OK, "create sandboxes for owners A and B")) {
		kit_diag("rc=%s err=%s", kit_rc(rc), err);
		return;
	}
	rc = sweep(k, owner_a, now - 3600, &n);
	kit_ok(k, rc == CI_OK && n == 0 && alive(k, a),
	       "sweep(A, an hour ago) keeps A's young sandbox (removed %u)", n);
	rc = sweep(k, owner_a, now + 3600, &n);
	kit_ok(k, rc == CI_OK && n == 1, "sweep(A, in an hour) removes exactly A's sandbox (%u)",
	       n);
	kit_ok(k, !alive(k, a), "A's sandbox is gone");
	kit_ok(k, alive(k, b), "B's sandbox is untouched");
	kit_ok(k, alive(k, k->id), "the working sandbox (another owner) is untouched");
	rc = kit_destroy(k, b, err);
	if (!kit_ok(k, rc == CI_OK, "destroy B's sandbox"))
		kit_diag("rc=%s err=%s", kit_rc(rc), err);
}
