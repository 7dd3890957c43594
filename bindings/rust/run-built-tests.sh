#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1 OR MIT
#
# run-built-tests.sh LIST: run what `make bindings` built and listed in
# LIST ("test PATH" / "example PATH" lines), in the guest of make check
# (chrooted into the host's files by hostrun, with the guest's /dev/mpmc).
# Test binaries run with --include-ignored (the device tests are ignored
# on a host without /dev/mpmc); an example prints a libtest-style line.
rc=0
while read -r kind path; do
	case $kind in
	test)
		echo "# $path"
		"$path" --include-ignored --test-threads=1 || rc=1
		;;
	example)
		name=$(basename "$path")
		if "$path"; then
			echo "test example::$name ... ok"
		else
			echo "test example::$name ... FAILED"
			rc=1
		fi
		;;
	esac
done <"$1"
exit $rc
