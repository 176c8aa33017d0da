/* Exec request checks: language, input files (ownership, names, limits). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "conf.h"
#include "exec_priv.h"
#include "log.h"
#include "store.h"

static const struct ci_lang *resolve_lang(struct ci_exec_ctx *x, int *status, char *err,
					  size_t errlen)
{
	const struct ci_conf *conf = x->app->conf;
	const struct ci_lang *lang = ci_conf_find_lang(conf, x->req->lang);

	if (!lang) {
		*status = 400;
		snprintf(err, errlen, "Unsupported language: %s", x->req->lang);
		return NULL;
	}
	if (x->app->lang_missing && x->app->lang_missing[lang - conf->langs]) {
		*status = 400;
		snprintf(err, errlen, "Language %s is not available on this server: %s", lang->name,
			 x->app->lang_missing[lang - conf->langs]);
		return NULL;
	}
	return lang;
}

/* The stored file an input names: in its session, or (legacy clients) anywhere of ours. */
static int find_input(struct ci_exec_ctx *x, const struct ci_exec_input *in,
		      struct ci_store_info *info)
{
	struct ci_store *st = x->app->store;

	if (in->sid && ci_nanoid_is_valid(in->sid) &&
	    !ci_store_stat(st, in->sid, in->fid, x->req->scope, info))
		return CI_OK;
	return ci_store_find(st, in->fid, x->req->scope, info);
}

int ci_exec_prepare(struct ci_exec_ctx *x, int *status, char *err, size_t errlen)
{
	const struct ci_exec_req *req = x->req;
	const int max = x->app->conf->max_files_per_run;

	*status = 400;
	x->lang = resolve_lang(x, status, err, errlen);
	if (!x->lang)
		return CI_E_INVAL;
	if (req->n_files > max) {
		*status = 413;
		snprintf(err, errlen, "too many files: %d given, at most %d per run", req->n_files,
			 max);
		return CI_E_LIMIT;
	}
	x->inputs = calloc((size_t)req->n_files + 1, sizeof(*x->inputs));
	if (!x->inputs) {
		*status = 500;
		snprintf(err, errlen, "out of memory");
		return CI_E_NOMEM;
	}
	for (int i = 0; i < req->n_files; i++) {
		const struct ci_exec_input *in = &req->files[i];
		struct ci_exec_resolved r = {0};
		const char *why;
		int slot = x->n_inputs;

		if (!in->fid || !ci_nanoid_is_valid(in->fid)) {
			snprintf(err, errlen, "files[%d]: id must be a 21-character id", i);
			return CI_E_INVAL;
		}
		if (!in->name || (why = ci_name_check(in->name))) {
			snprintf(err, errlen, "files[%d]: invalid name: %s", i,
				 in->name ? why : "missing");
			return CI_E_INVAL;
		}
		if (!strcmp(in->name, CI_EXEC_META_NAME) ||
		    !strncmp(in->name, CI_EXEC_META_NAME "/", sizeof(CI_EXEC_META_NAME))) {
			snprintf(err, errlen, "files[%d]: name %s is reserved", i, in->name);
			return CI_E_INVAL;
		}
		if (find_input(x, in, &r.info)) {
			snprintf(err, errlen,
				 "files[%d]: file %s (%s) not found or expired; upload it "
				 "again",
				 i, in->name, in->fid);
			return CI_E_INVAL;
		}
		snprintf(r.name, sizeof(r.name), "%s", in->name);
		/* Two files with one name (LibreChat issue 15443): the later one wins. */
		for (int j = 0; j < x->n_inputs; j++)
			if (!strcmp(x->inputs[j].name, r.name))
				slot = j;
		x->inputs[slot] = r;
		if (slot == x->n_inputs)
			x->n_inputs++;
	}
	return CI_OK;
}

void ci_exec_ctx_release(struct ci_exec_ctx *x)
{
	free(x->inputs);
	x->inputs = NULL;
	x->n_inputs = 0;
}
