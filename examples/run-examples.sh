#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run-examples.sh: run every example with a small workload, as `make check`
# does in the guest. Each example checks what it received and exits 0 only
# when everything arrived exactly once and intact.
#
# Usage: run-examples.sh [DIR]   (DIR: the example binaries, default: here)
# The last line is "N passed, N failed, 0 skipped"; exit status 1 if any
# example failed. Plain POSIX sh: runs in the busybox guest of tools/vm-run.

dir=${1:-$(dirname "$0")}
pass=0
fail=0

run() {
	name=$1
	shift
	echo "# ---- $name $*"
	if [ ! -x "$dir/$name" ]; then
		echo "# ---- $name: missing"
		fail=$((fail + 1))
		return
	fi
	"$dir/$name" "$@"
	rc=$?
	if [ $rc = 0 ]; then
		echo "# ---- $name: ok"
		pass=$((pass + 1))
	else
		echo "# ---- $name: FAILED (exit status $rc)"
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

echo "$pass passed, $fail failed, 0 skipped"
[ $fail = 0 ]
