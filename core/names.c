#include "names.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Length of the UTF-8 sequence at s (at most len bytes) and its code point, or 0 if invalid. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t n;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xe0) == 0xc0) {
		n = 2;
		c &= 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3;
		c &= 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4;
		c &= 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

bool ci_utf8_is_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		size_t n = utf8_decode(p + i, len - i, &cp);

		if (!n)
			return false;
		i += n;
	}
	return true;
}

static bool is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

static const char *check_segment(const char *seg, size_t n)
{
	if (n == 0)
		return "empty path segment";
	if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
		return "'.' or '..' path segment";
	if (n > CI_NAME_SEGMENT_MAX)
		return "path segment longer than 255 bytes";
	return NULL;
}

const char *ci_name_check_n(const char *in, size_t len)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0, seg_start = 0;
	unsigned segments = 1;
	const char *why;

	if (!in || len == 0)
		return "empty name";
	if (len > CI_NAME_MAX)
		return "name longer than 256 bytes";
	if (in[0] == '/')
		return "absolute path";
	while (i < len) {
		uint32_t cp;
		size_t n;

		if (p[i] == '\0')
			return "NUL byte in name";
		if (p[i] == '\\')
			return "backslash in name";
		n = utf8_decode(p + i, len - i, &cp);
		if (!n)
			return "name is not valid UTF-8";
		if (is_control(cp))
			return "control character in name";
		if (p[i] == '/') {
			why = check_segment(in + seg_start, i - seg_start);
			if (why)
				return why;
			if (++segments > CI_NAME_SEGMENTS_MAX)
				return "more than 10 path segments";
			seg_start = i + 1;
		}
		i += n;
	}
	return check_segment(in + seg_start, len - seg_start);
}

const char *ci_name_check(const char *in)
{
	if (!in)
		return "missing name";
	return ci_name_check_n(in, strnlen(in, CI_NAME_MAX + 1));
}

int ci_name_sanitize_n(const char *in, size_t inlen, char *out, size_t outlen)
{
	if (!out || outlen == 0)
		return -1;
	out[0] = '\0';
	if (ci_name_check_n(in, inlen) || inlen >= outlen)
		return -1;
	memcpy(out, in, inlen);
	out[inlen] = '\0';
	return 0;
}

int ci_name_sanitize(const char *in, char *out, size_t outlen)
{
	if (!in) {
		if (out && outlen)
			out[0] = '\0';
		return -1;
	}
	return ci_name_sanitize_n(in, strnlen(in, CI_NAME_MAX + 1), out, outlen);
}

/* librechat-api.md §4.4, lower case, without the dot; sorted for bsearch. */
static const char *const output_exts[] = {
	"7z",		"adoc",	      "asciidoc",
	"avif",		"bat",	      "bmp",
	"bson",		"bz2",	      "c",
	"cmd",		"conf",	      "cpp",
	"cs",		"css",	      "csv",
	"deb",		"doc",	      "dockerfile",
	"dockerignore", "docx",	      "editorconfig",
	"env",		"eot",	      "eslintrc",
	"gif",		"gitignore",  "go",
	"groovy",	"gz",	      "gzip",
	"hcl",		"helmfile",   "helmignore",
	"htm",		"html",	      "ical",
	"icalendar",	"ico",	      "ics",
	"ifb",		"ini",	      "java",
	"jenkinsfile",	"jpeg",	      "jpg",
	"js",		"json",	      "json5",
	"jsonl",	"jsx",	      "kt",
	"kts",		"less",	      "log",
	"lua",		"md",	      "nomad",
	"odp",		"ods",	      "odt",
	"parquet",	"pdf",	      "php",
	"pl",		"png",	      "ppt",
	"pptx",		"prettierrc", "properties",
	"ps1",		"py",	      "r",
	"rar",		"rb",	      "rpm",
	"rs",		"rst",	      "rtf",
	"sass",		"scala",      "scss",
	"sh",		"sql",	      "svelte",
	"svg",		"swift",      "tar",
	"tex",		"tf",	      "tfstate",
	"tfvars",	"tif",	      "tiff",
	"toml",		"ts",	      "tsv",
	"tsx",		"ttf",	      "txt",
	"vagrantfile",	"vbs",	      "vue",
	"webp",		"wiki",	      "woff",
	"woff2",	"xls",	      "xlsx",
	"xml",		"yaml",	      "yml",
	"zip",
};

/* Extension-less base names that the list names as ".Dockerfile" etc. */
static const char *const output_basenames[] = {"dockerfile", "helmfile", "jenkinsfile",
					       "vagrantfile"};

static int cmp_ci(const void *key, const void *elem)
{
	return strcasecmp((const char *)key, *(const char *const *)elem);
}

bool ci_name_is_output_allowed(const char *path)
{
	const char *base, *dot;

	if (!path)
		return false;
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	if (dot)
		return dot[1] &&
		       bsearch(dot + 1, output_exts, sizeof(output_exts) / sizeof(output_exts[0]),
			       sizeof(output_exts[0]), cmp_ci);
	for (size_t i = 0; i < sizeof(output_basenames) / sizeof(output_basenames[0]); i++)
		if (!strcasecmp(base, output_basenames[i]))
			return true;
	return false;
}
