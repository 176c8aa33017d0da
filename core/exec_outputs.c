/*
 * After a run: list /mnt/data, decide which files are new or changed, store
 * them under the exec's session before the response goes out, and bring the
 * sandbox's known-files table up to date.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "conf.h"
#include "exec_priv.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "sandbox.h"
#include "store.h"

struct listed {
	char *path;
	int64_t size, mtime_ns;
};

struct listing {
	struct listed *v;
	int n, cap;
	bool oom;
};

static bool is_meta(const char *path)
{
	size_t n = strlen(CI_EXEC_META_NAME);

	return !strncmp(path, CI_EXEC_META_NAME, n) && (!path[n] || path[n] == '/');
}

static int on_entry(void *ctx, const ci_entry *e)
{
	struct listing *l = ctx;

	/* Symlinks and special files are never outputs, and never followed. */
	if (e->type != CI_ENTRY_FILE || is_meta(e->path))
		return 0;
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 32;
		struct listed *n = realloc(l->v, sizeof(*n) * (size_t)cap);

		if (!n) {
			l->oom = true;
			return 1;
		}
		l->v = n;
		l->cap = cap;
	}
	l->v[l->n].path = strdup(e->path);
	if (!l->v[l->n].path) {
		l->oom = true;
		return 1;
	}
	l->v[l->n].size = e->size;
	l->v[l->n].mtime_ns = e->mtime_ns;
	l->n++;
	return 0;
}

static void listing_free(struct listing *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
}

/* Streams a sandbox file into the store while hashing it. */
struct fetch {
	struct ci_store_writer *w;
	EVP_MD_CTX *md;
	int rc;
	char err[CI_ERR_MAX];
};

static int fetch_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct fetch *f = ctx;

	(void)stream;
	EVP_DigestUpdate(f->md, buf, len);
	if (f->w) {
		f->rc = ci_store_write(f->w, buf, len, f->err);
		return f->rc != CI_OK;
	}
	return 0;
}

static const struct ci_exec_resolved *input_named(struct ci_exec_ctx *x, const char *path)
{
	for (int i = 0; i < x->n_inputs; i++)
		if (!strcmp(x->inputs[i].name, path))
			return &x->inputs[i];
	return NULL;
}

/*
 * Fetch one candidate. keep = store it; otherwise only hash it. sha256
 * receives the content hash; *stored is set when a file was committed.
 */
static int fetch_one(struct ci_exec_ctx *x, const struct listed *e, bool keep, const char *sid,
		     char sha256[65], struct ci_store_info *stored)
{
	struct ci_store_put put = {.sid = sid,
				   .owner = x->req->scope,
				   .name = e->path,
				   .kind = "user",
				   .max_size = (uint64_t)x->app->conf->max_output_file_bytes};
	struct fetch f = {0};
	ci_sink sink = {.write = fetch_write, .ctx = &f};
	unsigned char dg[32];
	char path[600];
	unsigned dl = 0;
	ci_call call;
	int rc;

	f.md = EVP_MD_CTX_new();
	if (!f.md || !EVP_DigestInit_ex(f.md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(f.md);
		return CI_E_NOMEM;
	}
	if (keep && ci_store_begin(x->app->store, &put, &f.w, f.err)) {
		EVP_MD_CTX_free(f.md);
		ci_log(CI_LL_WARN, "exec.output_refused", "rid=%s name=%s err=\"%s\"", x->req->rid,
		       e->path, f.err);
		return CI_E_LIMIT;
	}
	snprintf(path, sizeof(path), "/mnt/data/%s", e->path);
	rc = ci_plugin_get(x->app->plugin, &call, x->req->rid, x->deadline_ms, x->sb->id, path,
			   &sink);
	EVP_DigestFinal_ex(f.md, dg, &dl);
	EVP_MD_CTX_free(f.md);
	for (unsigned i = 0; i < 32; i++)
		snprintf(sha256 + 2 * i, 3, "%02x", dg[i]);
	if (rc || f.rc) {
		ci_store_abort(f.w);
		if (rc != CI_E_NOTFOUND || f.rc)
			ci_log(CI_LL_WARN, "exec.output_failed", "rid=%s name=%s err=\"%s\"",
			       x->req->rid, e->path, rc ? call.err : f.err);
		return rc ? rc : f.rc;
	}
	if (!f.w)
		return CI_OK;
	return ci_store_commit(f.w, stored, f.err);
}

static int add_output(struct ci_exec_resp *resp, const struct ci_store_info *info,
		      const struct ci_exec_resolved *from)
{
	struct ci_exec_file *n = realloc(resp->files, sizeof(*n) * (size_t)(resp->n_files + 1));

	if (!n)
		return CI_E_NOMEM;
	resp->files = n;
	n = &resp->files[resp->n_files++];
	memset(n, 0, sizeof(*n));
	snprintf(n->fid, sizeof(n->fid), "%s", info->fid);
	snprintf(n->name, sizeof(n->name), "%s", info->name);
	if (from) {
		snprintf(n->from_sid, sizeof(n->from_sid), "%s", from->info.sid);
		snprintf(n->from_fid, sizeof(n->from_fid), "%s", from->info.fid);
	}
	return CI_OK;
}

/* Decide about one listed file; updates the known table and resp. */
static int consider(struct ci_exec_ctx *x, const struct listed *e, struct ci_exec_resp *resp)
{
	struct ci_sandbox_file *known = ci_sandbox_file_find(x->sb, e->path);
	const struct ci_exec_resolved *in = input_named(x, e->path);
	struct ci_store_info info;
	char sha[65] = "";
	bool keep, same;
	int rc;

	if (known && known->size == e->size && known->mtime_ns == e->mtime_ns)
		return CI_OK; /* untouched since we last looked */
	keep = ci_name_is_output_allowed(e->path) &&
	       !(in && (in->info.flags & CI_STORE_F_READ_ONLY));
	if (keep && e->size > x->app->conf->max_output_file_bytes)
		keep = false;
	if (keep && resp->n_files >= x->app->conf->max_files_per_run) {
		keep = false;
		x->skipped_outputs++;
	}
	if (!keep) {
		/*
		 * Not an output: remember size and time. A file we just copied in
		 * (time not yet known) at its original size keeps its hash, so the
		 * next run does not copy it again.
		 */
		if (known && known->mtime_ns == -1 && known->size == e->size)
			snprintf(sha, sizeof(sha), "%s", known->sha256);
		ci_sandbox_file_set(x->sb, e->path, e->size, e->mtime_ns, sha);
		return CI_OK;
	}
	memset(&info, 0, sizeof(info));
	rc = fetch_one(x, e, keep, resp->session_id, sha, &info);
	if (rc == CI_E_NOTFOUND) {
		/* Deleted between list and get: not an output. */
		return CI_OK;
	}
	if (rc) {
		resp->delivery_failed++;
		ci_sandbox_file_set(x->sb, e->path, e->size, e->mtime_ns, NULL);
		return CI_OK;
	}
	same = known && !strcmp(known->sha256, sha);
	ci_sandbox_file_set(x->sb, e->path, e->size, e->mtime_ns, sha);
	if (!info.fid[0])
		return CI_OK;
	if (same) {
		/* Same bytes as before (rewritten or touched): not a change. */
		ci_store_delete(x->app->store, info.sid, info.fid, x->req->scope);
		return CI_OK;
	}
	return add_output(resp, &info, in);
}

/* Inputs the program removed, and known files that are gone. */
static int note_deleted(struct ci_exec_ctx *x, const struct listing *l, struct ci_exec_resp *resp)
{
	for (int i = x->sb->n_files - 1; i >= 0; i--) {
		struct ci_sandbox_file *f = &x->sb->files[i];
		bool present = false;

		for (int j = 0; j < l->n && !present; j++)
			present = !strcmp(l->v[j].path, f->path);
		if (present)
			continue;
		if (input_named(x, f->path)) {
			char **n =
				realloc(resp->deleted, sizeof(*n) * (size_t)(resp->n_deleted + 1));

			if (!n)
				return CI_E_NOMEM;
			resp->deleted = n;
			resp->deleted[resp->n_deleted] = strdup(f->path);
			if (!resp->deleted[resp->n_deleted])
				return CI_E_NOMEM;
			resp->n_deleted++;
		}
		free(f->path);
		x->sb->files[i] = x->sb->files[--x->sb->n_files];
	}
	return CI_OK;
}

int ci_exec_collect_outputs(struct ci_exec_ctx *x, struct ci_exec_resp *resp, const char *manifest,
			    size_t manifest_len)
{
	struct listing l = {0};
	ci_call call;
	int rc = CI_OK;

	if (manifest && ci_exec_manifest_each(manifest, manifest_len, on_entry, &l)) {
		/* A record we cannot read: ask the backend instead. */
		listing_free(&l);
		memset(&l, 0, sizeof(l));
		manifest = NULL;
	}
	if (!manifest) {
		call.err[0] = 0;
		rc = ci_plugin_list(x->app->plugin, &call, x->req->rid, x->deadline_ms, x->sb->id,
				    "/mnt/data", on_entry, &l);
	}
	if (rc || l.oom) {
		snprintf(x->err, sizeof(x->err), "cannot list the sandbox: %s",
			 rc ? call.err : "out of memory");
		listing_free(&l);
		return rc ? rc : CI_E_NOMEM;
	}
	rc = note_deleted(x, &l, resp);
	for (int i = 0; i < l.n && !rc; i++)
		rc = consider(x, &l.v[i], resp);
	listing_free(&l);
	return rc;
}

void ci_exec_outputs_discard(struct ci_exec_ctx *x, struct ci_exec_resp *resp)
{
	for (int i = 0; i < resp->n_files; i++)
		ci_store_delete(x->app->store, resp->session_id, resp->files[i].fid, x->req->scope);
	free(resp->files);
	resp->files = NULL;
	resp->n_files = 0;
	for (int i = 0; i < resp->n_deleted; i++)
		free(resp->deleted[i]);
	free(resp->deleted);
	resp->deleted = NULL;
	resp->n_deleted = 0;
	resp->delivery_failed = 0;
}
