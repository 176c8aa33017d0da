#include "lang_defaults.h"

/*
 * Commands run with cwd /mnt/data through /bin/sh; the program's args follow
 * as "$@". Build products go to /tmp so they are never reported as outputs.
 */
const struct ci_lang_default ci_lang_defaults[] = {
	{"py", "python,python3", "python", "ci-sandbox-python", "main.py", NULL,
	 "python3 main.py", "python3"},
	{"js", "javascript,node,nodejs", "node", "ci-sandbox-node", "main.js", NULL,
	 "node main.js", "node"},
	{"ts", "typescript", "node", "ci-sandbox-node", "main.ts",
	 "tsc --target es2020 --module commonjs --types node --outDir /tmp/ts main.ts",
	 "node /tmp/ts/main.js", "tsc"},
	{"c", "", "gcc", "ci-sandbox-gcc", "main.c", "gcc -O2 -o /tmp/main main.c -lm",
	 "/tmp/main", "gcc"},
	{"cpp", "c++", "gcc", "ci-sandbox-gcc", "main.cpp", "g++ -O2 -o /tmp/main main.cpp",
	 "/tmp/main", "g++"},
	{"java", "", "java", "ci-sandbox-java", "Main.java", NULL, "java Main.java", "java"},
	{"php", "", "php", "ci-sandbox-php", "main.php", NULL, "php main.php", "php"},
	{"rs", "rust", "rust", "ci-sandbox-rust", "main.rs", "rustc -O -o /tmp/main main.rs",
	 "/tmp/main", "rustc"},
	{"go", "golang", "go", "ci-sandbox-go", "main.go",
	 "GOCACHE=/tmp/gocache GOPATH=/tmp/gopath go build -o /tmp/main main.go", "/tmp/main",
	 "go"},
	{"d", "dlang", "d", "ci-sandbox-d", "main.d", "gdc -O2 -o /tmp/main main.d", "/tmp/main",
	 "gdc"},
	{"f90", "fortran", "fortran", "ci-sandbox-fortran", "main.f90",
	 "gfortran -O2 -o /tmp/main main.f90", "/tmp/main", "gfortran"},
	{"r", "rscript", "r", "ci-sandbox-r", "main.r", NULL, "Rscript main.r", "Rscript"},
	{"bash", "sh,shell", "bash", "ci-sandbox-bash", "main.sh", NULL, "bash main.sh", "bash"},
};

size_t ci_lang_defaults_count(void)
{
	return sizeof(ci_lang_defaults) / sizeof(ci_lang_defaults[0]);
}
