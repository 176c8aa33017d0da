#include "lang_defaults.h"

/*
 * Commands run through /bin/sh with cwd /mnt/data; $CI_SOURCE is the path of
 * the program text (kept out of /mnt/data's own files, so a user's main.py is
 * never overwritten) and the program's args follow as "$@". Build products go
 * to /tmp so they are never reported as outputs.
 */
const struct ci_lang_default ci_lang_defaults[] = {
	{"py", "python,python3", "python", "ci-sandbox-python", "main.py", NULL,
	 "python3 \"$CI_SOURCE\"", "python3"},
	{"js", "javascript,node,nodejs", "node", "ci-sandbox-node", "main.js", NULL,
	 "node \"$CI_SOURCE\"", "node"},
	/*
	 * TypeScript is transpiled without type checking (as tsx and bun do):
	 * Debian ships no @types/node, and a type error must not stop a
	 * program that runs fine.
	 */
	{"ts", "typescript", "node", "ci-sandbox-node", "main.ts",
	 "NODE_PATH=/usr/share/nodejs:/usr/lib/node_modules node -e \"const ts = "
	 "require('typescript'),"
	 " fs = require('fs'); fs.writeFileSync('/tmp/main.js', ts.transpileModule(fs.readFileSync("
	 "process.env.CI_SOURCE, 'utf8'), {compilerOptions: {module: ts.ModuleKind.CommonJS,"
	 " target: ts.ScriptTarget.ES2020}}).outputText)\"",
	 "node /tmp/main.js", "tsc"},
	{"c", "", "gcc", "ci-sandbox-gcc", "main.c", "gcc -O2 -o /tmp/main \"$CI_SOURCE\" -lm",
	 "/tmp/main", "gcc"},
	{"cpp", "c++", "gcc", "ci-sandbox-gcc", "main.cpp", "g++ -O2 -o /tmp/main \"$CI_SOURCE\"",
	 "/tmp/main", "g++"},
	{"java", "", "java", "ci-sandbox-java", "Main.java", NULL, "java \"$CI_SOURCE\"", "javac"},
	{"php", "", "php", "ci-sandbox-php", "main.php", NULL, "php \"$CI_SOURCE\"", "php"},
	{"rs", "rust", "rust", "ci-sandbox-rust", "main.rs", "rustc -O -o /tmp/main \"$CI_SOURCE\"",
	 "/tmp/main", "rustc"},
	{"go", "golang", "go", "ci-sandbox-go", "main.go",
	 "GOCACHE=/tmp/gocache GOPATH=/tmp/gopath go build -o /tmp/main \"$CI_SOURCE\"",
	 "/tmp/main", "go"},
	{"d", "dlang", "d", "ci-sandbox-d", "main.d", "gdc -O2 -o /tmp/main \"$CI_SOURCE\"",
	 "/tmp/main", "gdc"},
	{"f90", "fortran", "fortran", "ci-sandbox-fortran", "main.f90",
	 "gfortran -O2 -o /tmp/main \"$CI_SOURCE\"", "/tmp/main", "gfortran"},
	{"r", "rscript", "r", "ci-sandbox-r", "main.r", NULL, "Rscript \"$CI_SOURCE\"", "Rscript"},
	/*
	 * bash shares the python runtime: LibreChat's bash tool tells the model
	 * to run python3 from the shell, and a conversation's execute_code and
	 * bash calls should see one /mnt/data (one container).
	 */
	{"bash", "sh,shell", "python", "ci-sandbox-python", "main.sh", NULL, "bash \"$CI_SOURCE\"",
	 "bash"},
};

size_t ci_lang_defaults_count(void)
{
	return sizeof(ci_lang_defaults) / sizeof(ci_lang_defaults[0]);
}
