/* cmocka.h needs these first; keep the order. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <stdio.h>
#include <string.h>

#include "mime.h"
#include "names.h"

static void must_accept(const char *name)
{
	char out[CI_NAME_SIZE];

	if (ci_name_check(name))
		fail_msg("refused \"%s\": %s", name, ci_name_check(name));
	assert_int_equal(ci_name_sanitize(name, out, sizeof(out)), 0);
	assert_string_equal(out, name);
}

static void must_refuse(const char *name)
{
	char out[CI_NAME_SIZE] = "junk";

	if (!ci_name_check(name))
		fail_msg("accepted \"%s\"", name);
	assert_int_equal(ci_name_sanitize(name, out, sizeof(out)), -1);
	assert_string_equal(out, "");
}

static void test_accepts(void **state)
{
	char buf[CI_NAME_SIZE + 8];

	(void)state;
	must_accept("a");
	must_accept("data.csv");
	must_accept("docs/two.md");
	must_accept("a/b/c/d/e/f/g/h/i/j"); /* 10 segments */
	must_accept(".env");
	must_accept("..foo");
	must_accept("foo..");
	must_accept("...");
	must_accept("dir.d/.hidden");
	must_accept("r\xc3\xa9sum\xc3\xa9 final (2).pdf"); /* UTF-8, spaces, parens */
	must_accept("\xe4\xb8\xad\xe6\x96\x87/\xf0\x9f\x98\x80.txt");
	/* exactly 256 bytes: two segments of 127 + '/' + 128 */
	memset(buf, 'a', 256);
	buf[127] = '/';
	buf[256] = '\0';
	must_accept(buf);
	/* a 255-byte segment */
	memset(buf, 'b', 255);
	buf[255] = '\0';
	must_accept(buf);
}

static void test_refuses(void **state)
{
	char buf[CI_NAME_SIZE + 8];

	(void)state;
	must_refuse("");
	must_refuse("../x");
	must_refuse("..");
	must_refuse(".");
	must_refuse("a/..");
	must_refuse("a/../b");
	must_refuse("/abs");
	must_refuse("/");
	must_refuse("a//b");
	must_refuse("a/./b");
	must_refuse("./a");
	must_refuse("a/");
	must_refuse("a\\b");
	must_refuse("..\\x");
	must_refuse("a\nb");
	must_refuse("a\tb");
	must_refuse("a\rb");
	must_refuse("a\x7f");
	must_refuse("a\xc2\x85");	      /* U+0085, a C1 control */
	must_refuse("a\xff");		      /* not UTF-8 */
	must_refuse("a\xc0\xaf");	      /* overlong '/' */
	must_refuse("a\xed\xa0\x80");	      /* surrogate */
	must_refuse("a\xe4\xb8");	      /* truncated sequence */
	must_refuse("a/b/c/d/e/f/g/h/i/j/k"); /* 11 segments */
	memset(buf, 'a', 257);
	buf[257] = '\0';
	must_refuse(buf);      /* 257 bytes */
	memset(buf, 'c', 256); /* one 256-byte segment: longer than NAME_MAX */
	buf[256] = '\0';
	must_refuse(buf);
	assert_non_null(ci_name_check(NULL));
	assert_int_equal(ci_name_sanitize(NULL, buf, sizeof(buf)), -1);
}

static void test_reasons_and_lengths(void **state)
{
	char out[8];

	(void)state;
	assert_string_equal(ci_name_check("../x"), "'.' or '..' path segment");
	assert_string_equal(ci_name_check("/abs"), "absolute path");
	assert_string_equal(ci_name_check("a//b"), "empty path segment");
	assert_string_equal(ci_name_check("a\\b"), "backslash in name");
	assert_string_equal(ci_name_check("a/b/c/d/e/f/g/h/i/j/k"), "more than 10 path segments");
	/* Embedded NUL (a JSON "a\u0000b") is refused, not truncated to "a". */
	assert_string_equal(ci_name_check_n("a\0b", 3), "NUL byte in name");
	assert_int_equal(ci_name_sanitize_n("a\0b", 3, out, sizeof(out)), -1);
	assert_int_equal(ci_name_sanitize_n("ab", 2, out, sizeof(out)), 0);
	assert_string_equal(out, "ab");
	/* Output buffer too small. */
	assert_int_equal(ci_name_sanitize("abcdefgh", out, sizeof(out)), -1);
	assert_string_equal(out, "");
	assert_int_equal(ci_name_sanitize("abcdefg", out, sizeof(out)), 0);
}

/* Every entry of librechat-api.md §4.4. */
static const char *const listed[] = {
	"c",	       "cs",	     "cpp",	     "go",	     "java",	   "js",
	"kt",	       "kts",	     "lua",	     "php",	     "pl",	   "ps1",
	"py",	       "r",	     "rb",	     "rs",	     "scala",	   "sh",
	"sql",	       "swift",	     "ts",	     "jsx",	     "tsx",	   "groovy",
	"css",	       "htm",	     "html",	     "less",	     "sass",	   "scss",
	"svg",	       "svelte",     "vue",	     "adoc",	     "asciidoc",   "md",
	"rst",	       "tex",	     "txt",	     "wiki",	     "csv",	   "json",
	"bson",	       "json5",	     "jsonl",	     "parquet",	     "tsv",	   "xml",
	"yaml",	       "yml",	     "ics",	     "ical",	     "ifb",	   "icalendar",
	"conf",	       "env",	     "gitignore",    "ini",	     "properties", "toml",
	"doc",	       "docx",	     "pdf",	     "ppt",	     "pptx",	   "xls",
	"xlsx",	       "odt",	     "ods",	     "odp",	     "rtf",	   "avif",
	"bmp",	       "gif",	     "ico",	     "jpeg",	     "jpg",	   "png",
	"tif",	       "tiff",	     "webp",	     "eot",	     "ttf",	   "woff",
	"woff2",       "7z",	     "bz2",	     "gz",	     "gzip",	   "rar",
	"tar",	       "zip",	     "tf",	     "tfvars",	     "tfstate",	   "hcl",
	"dockerfile",  "Dockerfile", "dockerignore", "helmignore",   "helmfile",   "jenkinsfile",
	"vagrantfile", "eslintrc",   "prettierrc",   "editorconfig", "nomad",	   "bat",
	"cmd",	       "deb",	     "log",	     "rpm",	     "vbs",
};

static void test_allowlist(void **state)
{
	char name[64];

	(void)state;
	for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++) {
		snprintf(name, sizeof(name), "out/file.%s", listed[i]);
		if (!ci_name_is_output_allowed(name))
			fail_msg("%s not allowed", name);
	}
	assert_true(ci_name_is_output_allowed("plot_1.png"));
	assert_true(ci_name_is_output_allowed("PLOT.PNG"));
	assert_true(ci_name_is_output_allowed("Report.XlSx"));
	assert_true(ci_name_is_output_allowed("a.tar.gz"));
	assert_true(ci_name_is_output_allowed(".env"));
	assert_true(ci_name_is_output_allowed("sub/.gitignore"));
	assert_true(ci_name_is_output_allowed("Dockerfile"));
	assert_true(ci_name_is_output_allowed("deploy/dockerfile"));
	assert_true(ci_name_is_output_allowed("Jenkinsfile"));
	assert_true(ci_name_is_output_allowed("app.Dockerfile"));

	assert_false(ci_name_is_output_allowed(NULL));
	assert_false(ci_name_is_output_allowed(""));
	assert_false(ci_name_is_output_allowed("a.out"));
	assert_false(ci_name_is_output_allowed("prog"));
	assert_false(ci_name_is_output_allowed("lib.so"));
	assert_false(ci_name_is_output_allowed("main.pyc"));
	assert_false(ci_name_is_output_allowed("x.exe"));
	assert_false(ci_name_is_output_allowed("file."));
	assert_false(ci_name_is_output_allowed("txt"));	     /* a bare extension is no name */
	assert_false(ci_name_is_output_allowed("png.d/x"));  /* the dot is in a directory */
	assert_false(ci_name_is_output_allowed("Makefile")); /* not in the list */
}

static void test_mime(void **state)
{
	(void)state;
	assert_string_equal(ci_mime_for_name("a.png"), "image/png");
	assert_string_equal(ci_mime_for_name("A.PNG"), "image/png");
	assert_string_equal(ci_mime_for_name("x/y.jpg"), "image/jpeg");
	assert_string_equal(ci_mime_for_name("y.jpeg"), "image/jpeg");
	assert_string_equal(ci_mime_for_name("y.gif"), "image/gif");
	assert_string_equal(ci_mime_for_name("y.svg"), "image/svg+xml");
	assert_string_equal(ci_mime_for_name("d.csv"), "text/csv; charset=utf-8");
	assert_string_equal(ci_mime_for_name("d.json"), "application/json");
	assert_string_equal(ci_mime_for_name("d.txt"), "text/plain; charset=utf-8");
	assert_string_equal(ci_mime_for_name("d.html"), "text/html; charset=utf-8");
	assert_string_equal(ci_mime_for_name("d.pdf"), "application/pdf");
	assert_string_equal(ci_mime_for_name("docs/two.md"), "text/markdown; charset=utf-8");
	assert_string_equal(ci_mime_for_name("main.py"), "text/x-python; charset=utf-8");
	assert_string_equal(ci_mime_for_name("s.xlsx"),
			    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
	assert_string_equal(ci_mime_for_name("a.zip"), "application/zip");
	assert_string_equal(ci_mime_for_name("a.zzz"), CI_MIME_DEFAULT);
	assert_string_equal(ci_mime_for_name("noext"), CI_MIME_DEFAULT);
	assert_string_equal(ci_mime_for_name("dir.png/noext"), CI_MIME_DEFAULT);
	assert_string_equal(ci_mime_for_name("trailing."), CI_MIME_DEFAULT);
	assert_string_equal(ci_mime_for_name(NULL), CI_MIME_DEFAULT);

	assert_true(ci_mime_is_valid("text/plain"));
	assert_true(ci_mime_is_valid("text/plain; charset=utf-8"));
	assert_false(ci_mime_is_valid(NULL));
	assert_false(ci_mime_is_valid(""));
	assert_false(ci_mime_is_valid("text"));
	assert_false(ci_mime_is_valid("text/plain\r\nX-Evil: 1"));
	assert_false(ci_mime_is_valid("text/pl\xc3\xa4in"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts),
		cmocka_unit_test(test_refuses),
		cmocka_unit_test(test_reasons_and_lengths),
		cmocka_unit_test(test_allowlist),
		cmocka_unit_test(test_mime),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
