#!/usr/bin/env bash
# Every tracked C file is in the project's clang-format style (.clang-format;
# tests/.clang-format keeps test includes in order for cmocka).
# Usage: check.sh SOURCE_DIR
set -u
cd "$1" || exit 1
command -v clang-format >/dev/null || { echo "clang-format is missing"; exit 1; }
files=$(git ls-files '*.c' '*.h' 2>/dev/null) || { echo "not a git checkout"; exit 1; }
bad=0 n=0
for f in $files; do
	n=$((n + 1))
	if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
		echo "not formatted: $f (clang-format -i $f)"
		bad=$((bad + 1))
	fi
done
echo "format: $((n - bad)) passed, $bad failed"
[ "$bad" -eq 0 ]
