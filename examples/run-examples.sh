#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run-examples.sh: run every example with a small workload, as `make check`
# does in the guest. Each example checks what it received and exits 0 only
# when everything arrived exactly once and intact.
#
# Usage: run-examples.sh [DIR]   (DIR: the example binaries, default:
# $MPMC_EXAMPLES, else this script's directory)
# Prints a TAP result line per example ("ok N name" / "not ok N name"),
# the plan "1..N" at the end and a "# N passed, N failed" comment, so
# selftests/run-all.sh counts each example as a test; exit status 1 if any
# example failed. Plain POSIX sh: runs in the busybox guest of tools/vm-run.

dir=${1:-${MPMC_EXAMPLES:-$(dirname "$0")}}
pass=0
fail=0
rcfile=$(mktemp "${TMPDIR:-/tmp}/examples.XXXXXX") || exit 2
trap 'rm -f "$rcfile"' EXIT

n=0

# run NAME ARGS...: one TAP result line for one example run.
run() {
	name=$1
	shift
	n=$((n + 1))
	echo "# $name $*"
	if [ ! -x "$dir/$name" ]; then
		echo "not ok $n $name $* # missing"
		fail=$((fail + 1))
		return
	fi
	{ "$dir/$name" "$@" 2>&1; echo $? >"$rcfile"; } | sed 's/^/# /'
	rc=$(cat "$rcfile")
	if [ "$rc" = 0 ]; then
		echo "ok $n $name $*"
		pass=$((pass + 1))
	else
		echo "not ok $n $name $* # exit status $rc"
		fail=$((fail + 1))
	fi
}

run hello
[ -x "$dir/hello-shared" ] && run hello-shared
run epoll_pool -q -t mpmc -n 2000
run epoll_pool -q -t mpmc --batch -n 2000
run epoll_pool -q -t pipe -n 2000
run epoll_pool -q -t seqpacket -n 2000
run epoll_pool -q -t mpmc -n 250 -r 500
run uring_pipeline -n 3000
run uring_pipeline -n 1000 -d 1 -C 1
run rendezvous -n 500 -c 3
run rendezvous -n 200 -c 1
run telemetry -n 50000 -N 8 -k 20
run telemetry -n 2000 -N 1 -k 5

echo "1..$n"
echo "# examples: $pass passed, $fail failed"
[ $fail = 0 ]
