/*
 * Identifiers: 21-character nanoids minted by this server for storage
 * sessions and files, and the looser resource ids clients send (Mongo
 * ObjectIds, "agent_..." ids).
 */
#ifndef CI_CORE_NANOID_H
#define CI_CORE_NANOID_H

#include <stdbool.h>

#define CI_NANOID_LEN  21 /* characters */
#define CI_NANOID_SIZE 22 /* buffer size, NUL included */

#define CI_RESOURCE_ID_MAX 128 /* characters */

/*
 * Write a fresh nanoid (21 chars of [A-Za-z0-9_-], 126 random bits from the
 * kernel CSPRNG, no modulo bias) and a NUL into out. Thread-safe. Never
 * fails: if the kernel cannot supply randomness the process aborts, because
 * guessable ids would expose other users' files.
 */
void ci_nanoid(char out[CI_NANOID_SIZE]);

/* True when s is exactly 21 characters of [A-Za-z0-9_-]. s may be NULL. */
bool ci_nanoid_is_valid(const char *s);

/* True when s is 1..128 characters of [A-Za-z0-9_-]. s may be NULL. */
bool ci_resource_id_is_valid(const char *s);

#endif /* CI_CORE_NANOID_H */
