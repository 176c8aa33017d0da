#include "mime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct mime_ent {
	const char *ext;
	const char *type;
};

#define TXT(t) t "; charset=utf-8"

/* Sorted by extension (strcasecmp) for bsearch. */
static const struct mime_ent mime_map[] = {
	{"7z", "application/x-7z-compressed"},
	{"avif", "image/avif"},
	{"bmp", "image/bmp"},
	{"bz2", "application/x-bzip2"},
	{"c", TXT("text/x-c")},
	{"cpp", TXT("text/x-c++")},
	{"cs", TXT("text/plain")},
	{"css", TXT("text/css")},
	{"csv", TXT("text/csv")},
	{"doc", "application/msword"},
	{"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
	{"f90", TXT("text/x-fortran")},
	{"gif", "image/gif"},
	{"go", TXT("text/x-go")},
	{"gz", "application/gzip"},
	{"h", TXT("text/x-c")},
	{"hpp", TXT("text/x-c++")},
	{"htm", TXT("text/html")},
	{"html", TXT("text/html")},
	{"ico", "image/vnd.microsoft.icon"},
	{"ics", TXT("text/calendar")},
	{"ini", TXT("text/plain")},
	{"ipynb", "application/x-ipynb+json"},
	{"java", TXT("text/x-java")},
	{"jpeg", "image/jpeg"},
	{"jpg", "image/jpeg"},
	{"js", TXT("text/javascript")},
	{"json", "application/json"},
	{"jsonl", "application/jsonl"},
	{"jsx", TXT("text/javascript")},
	{"log", TXT("text/plain")},
	{"md", TXT("text/markdown")},
	{"mjs", TXT("text/javascript")},
	{"mp3", "audio/mpeg"},
	{"mp4", "video/mp4"},
	{"odp", "application/vnd.oasis.opendocument.presentation"},
	{"ods", "application/vnd.oasis.opendocument.spreadsheet"},
	{"odt", "application/vnd.oasis.opendocument.text"},
	{"parquet", "application/vnd.apache.parquet"},
	{"pdf", "application/pdf"},
	{"php", TXT("text/x-php")},
	{"pkl", "application/octet-stream"},
	{"png", "image/png"},
	{"ppt", "application/vnd.ms-powerpoint"},
	{"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
	{"py", TXT("text/x-python")},
	{"r", TXT("text/x-r")},
	{"rb", TXT("text/x-ruby")},
	{"rs", TXT("text/x-rust")},
	{"rtf", "application/rtf"},
	{"sh", TXT("text/x-shellscript")},
	{"sql", TXT("text/x-sql")},
	{"svg", "image/svg+xml"},
	{"tar", "application/x-tar"},
	{"tex", TXT("text/x-tex")},
	{"tif", "image/tiff"},
	{"tiff", "image/tiff"},
	{"toml", TXT("text/plain")},
	{"ts", TXT("text/x-typescript")},
	{"tsv", TXT("text/tab-separated-values")},
	{"tsx", TXT("text/x-typescript")},
	{"txt", TXT("text/plain")},
	{"wav", "audio/wav"},
	{"webp", "image/webp"},
	{"woff", "font/woff"},
	{"woff2", "font/woff2"},
	{"xls", "application/vnd.ms-excel"},
	{"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
	{"xml", "application/xml"},
	{"yaml", TXT("application/yaml")},
	{"yml", TXT("application/yaml")},
	{"zip", "application/zip"},
};

static int cmp_ext(const void *key, const void *elem)
{
	return strcasecmp((const char *)key, ((const struct mime_ent *)elem)->ext);
}

const char *ci_mime_for_name(const char *name)
{
	const struct mime_ent *m;
	const char *base, *dot;

	if (!name)
		return CI_MIME_DEFAULT;
	base = strrchr(name, '/');
	base = base ? base + 1 : name;
	dot = strrchr(base, '.');
	if (!dot || !dot[1])
		return CI_MIME_DEFAULT;
	m = bsearch(dot + 1, mime_map, sizeof(mime_map) / sizeof(mime_map[0]), sizeof(mime_map[0]),
		    cmp_ext);
	return m ? m->type : CI_MIME_DEFAULT;
}

bool ci_mime_is_valid(const char *s)
{
	size_t n = 0;
	bool slash = false;

	if (!s)
		return false;
	for (; s[n]; n++) {
		if (n >= 127 || s[n] < 0x20 || s[n] > 0x7e)
			return false;
		if (s[n] == '/')
			slash = true;
	}
	return n >= 3 && slash;
}
