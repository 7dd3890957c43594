#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# run-tests.sh: run the bindings' tests in a tools/vm-run --hostfs guest,
# against the guest's /dev/mpmc, as `make check` does. `make bindings`
# installs it as build/bindings/tests/python.sh and rust.sh with TOP (this
# repository's path on the host, which is also its path under the guest's
# /host) and the test list filled in; run-all.sh runs them with the
# selftests.
#
# python: python3 -m pytest -v bindings/python/tests (Debian's python3
#         and python3-pytest, chrooted into /host by hostrun)
# rust:   every test binary and example that `make bindings` built on the
#         host (listed in build/bindings/rust-tests), run in the guest by
#         bindings/rust/run-built-tests.sh
#
# Prints a TAP line per test case (pytest's PASSED/FAILED/ERROR/SKIPPED,
# libtest's ok/FAILED/ignored) and the plan at the end; the tools' own
# output is kept as "#" comments. Plain POSIX sh (busybox).

TOP=@TOP@
what=${1:-$(basename "$0" .sh)}

if ! command -v hostrun >/dev/null || [ ! -d /host/usr ]; then
	echo "1..0 # SKIP no host file system in this guest (tools/vm-run --hostfs)"
	exit 0
fi

case "$what" in
python)
	cmd="cd '$TOP/bindings/python' && python3 -m pytest -v -p no:cacheprovider tests"
	;;
rust)
	list=$TOP/build/bindings/rust-tests
	[ -r "/host$list" ] || { echo "not ok 1 rust # no $list (make bindings)"; exit 1; }
	cmd="sh '$TOP/bindings/rust/run-built-tests.sh' '$list'"
	;;
*)
	echo "run-tests.sh: python or rust" >&2
	exit 2
	;;
esac

rcfile=$(mktemp "${TMPDIR:-/tmp}/bindings.XXXXXX") || exit 2
{ hostrun "$cmd" 2>&1; echo $? >"$rcfile"; } | awk '
	function tap(ok, name, extra) { n++; print (ok ? "ok " : "not ok ") n " " name extra }
	# pytest -v: "tests/test_x.py::test_y PASSED   [ 10%]"
	/::[^ ]+ (PASSED|XFAIL)/ { print "# " $0; tap(1, $1, ""); next }
	/::[^ ]+ SKIPPED/ { print "# " $0; tap(1, $1, " # SKIP"); next }
	/::[^ ]+ (FAILED|ERROR|XPASS)/ && !/^(FAILED|ERROR) / { print "# " $0; tap(0, $1, ""); next }
	# libtest: "test name ... ok"
	/^test .* \.\.\. ok$/ { print "# " $0; tap(1, $2, ""); next }
	/^test .* \.\.\. ignored/ { print "# " $0; tap(1, $2, " # SKIP"); next }
	/^test .* \.\.\. FAILED$/ { print "# " $0; tap(0, $2, ""); next }
	{ print "# " $0 }
	END { print "1.." n }
'
rc=$(cat "$rcfile")
rm -f "$rcfile"
exit "$rc"
