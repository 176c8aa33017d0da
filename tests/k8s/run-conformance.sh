#!/bin/sh
# ctest wrapper: the backend conformance kit against the k8s plugin and a
# fresh fake API server (with-fake.sh), optionally with the fake limited to
# v4.channel.k8s.io (no stdin close: tar and `head -c` must end by themselves).
#
#   run-conformance.sh KIT PLUGIN.so [v4]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kit=$1 plugin=$2 mode=${3:-v5}
exec sh "$here/with-fake.sh" -- sh -c '
	if [ "$0" = v4 ]; then
		curl -sf -X POST -d "{\"exec_protocols\": [\"v4.channel.k8s.io\"]}" \
			"$FAKE_K8S_CONTROL/fault" >/dev/null || exit 1
	fi
	"$1" --runtime python "$2" "$CI_K8S_CONF" || exit 1
	state=$(curl -sf "$FAKE_K8S_CONTROL/state") || exit 1
	echo "$state" | /usr/bin/python3 -c "
import json, sys
s = json.load(sys.stdin)
st = s[\"stats\"]
print(\"# fake: execs by protocol\", st[\"exec_protocols\"], \"stdin closes\", st[\"stdin_closes\"],
      \"pods left\", len(s[\"pods\"]))
want = \"v4.channel.k8s.io\" if sys.argv[1] == \"v4\" else \"v5.channel.k8s.io\"
ok = set(st[\"exec_protocols\"]) == {want} and len(s[\"pods\"]) == 0
ok = ok and (st[\"stdin_closes\"] == 0 if sys.argv[1] == \"v4\" else st[\"stdin_closes\"] > 0)
sys.exit(0 if ok else 1)
" "$0"' "$mode" "$kit" "$plugin"
