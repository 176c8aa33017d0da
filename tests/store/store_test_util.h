/* Helpers shared by the store tests (test-only header: static functions). */
#ifndef CI_TESTS_STORE_TEST_UTIL_H
#define CI_TESTS_STORE_TEST_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

/* A fresh parent directory; the store root is <parent>/store (created by ci_store_open). */
static inline void test_make_root(char parent[64], char root[80])
{
	snprintf(parent, 64, "/tmp/ci-store-test-XXXXXX");
	if (!mkdtemp(parent)) {
		perror("mkdtemp");
		abort();
	}
	snprintf(root, 80, "%s/store", parent);
}

static inline void test_rm_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char sub[512];

	while (d && (de = readdir(d))) {
		struct stat sb;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (!lstat(sub, &sb) && S_ISDIR(sb.st_mode))
			test_rm_tree(sub);
		else
			unlink(sub);
	}
	if (d)
		closedir(d);
	rmdir(path);
}

static unsigned count_files_at(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	unsigned n = 0;
	char sub[512];

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		struct stat sb;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (lstat(sub, &sb))
			continue;
		n += S_ISDIR(sb.st_mode) ? count_files_at(sub) : 1;
	}
	closedir(d);
	return n;
}

/* Regular files (any non-directory) below root/sub. */
static inline unsigned test_count_files(const char *root, const char *sub)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, sub);
	return count_files_at(path);
}

/* Entries (files or directories) directly in root/sub. */
static inline unsigned test_count_entries(const char *root, const char *sub)
{
	char path[512];
	DIR *d;
	struct dirent *de;
	unsigned n = 0;

	snprintf(path, sizeof(path), "%s/%s", root, sub);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static inline void test_sha256_hex(const void *data, size_t len, char hex[CI_STORE_SHA_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < mdlen; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	hex[64] = '\0';
}

/* Store len bytes in chunks of chunk bytes; returns the commit's (or the failing step's) rc. */
static inline int test_store_bytes(struct ci_store *st, const struct ci_store_put *put,
				   const void *data, size_t len, size_t chunk,
				   struct ci_store_info *info)
{
	struct ci_store_writer *w;
	char err[CI_ERR_MAX];
	int rc = ci_store_begin(st, put, &w, err);

	if (rc)
		return rc;
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;

		rc = ci_store_write(w, (const char *)data + off, n, err);
		if (rc) {
			ci_store_abort(w);
			return rc;
		}
	}
	return ci_store_commit(w, info, err);
}

/* Read the whole file behind fd (closing it) into a malloc'd buffer. */
static inline char *test_read_fd(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	ssize_t r;

	while ((r = read(fd, buf + n, cap - n)) > 0) {
		n += (size_t)r;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	close(fd);
	*len = n;
	return buf;
}

static inline void test_fill_random(void *buf, size_t len, unsigned seed)
{
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 16);
	}
}

#endif /* CI_TESTS_STORE_TEST_UTIL_H */
