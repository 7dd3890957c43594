#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# run-all.sh: run every test program in a directory and sum up.
#
# Usage: run-all.sh [-t SECS] [DIR [NAME...]]
#   DIR    directory of test programs (default: this script's directory);
#          every executable regular file in it is run, in name order,
#          except this script, but those in the list "last" below (they
#          unload the module) run after all others. With NAMEs, only those
#          programs, in the order given.
#   -t     timeout per program in seconds (default $MPMC_TEST_TIMEOUT or
#          300); a program that runs longer is killed and counts as failed.
#
# Each program's output (kselftest TAP) is printed as it runs. Test cases
# are counted from its result lines: "ok N name" passed, "ok N # SKIP
# reason" skipped, "not ok N name" failed. A program that crashes, is
# killed, times out or exits non-zero without a "not ok" line of its own,
# or prints fewer results than its "1..N" plan, adds one failure; one that
# prints no result line counts as one test (exit 0 passed, 4 skipped,
# else failed). The last line is exactly
#   N passed, N failed, N skipped
# and the exit status is 1 if anything failed, else 0.
#
# Plain POSIX sh: runs in the busybox guest of tools/vm-run and on a host.

timeout_s=${MPMC_TEST_TIMEOUT:-300}
while [ $# -gt 0 ]; do
	case "$1" in
	-t) timeout_s=$2; shift 2 ;;
	-h|--help) sed -n '4,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	--) shift; break ;;
	-*) echo "run-all.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done

self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
dir=${1:-$(dirname "$0")}
[ $# -gt 0 ] && shift
dir=$(cd "$dir" 2>/dev/null && pwd) || { echo "run-all.sh: no directory $1" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/run-all.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# Programs that unload and reload the module: they run after the others.
last="lifecycle modcycle"

if [ $# -gt 0 ]; then
	progs=
	for n in "$@"; do progs="$progs $dir/$n"; done
else
	progs=
	for n in $(ls "$dir" | LC_ALL=C sort); do
		case " $last " in
		*" $n "*) ;;
		*) progs="$progs $dir/$n" ;;
		esac
	done
	for n in $last; do progs="$progs $dir/$n"; done
fi

total_pass=0
total_fail=0
total_skip=0
failed_progs=
nprogs=0

for prog in $progs; do
	[ "$prog" = "$self" ] && continue
	[ -f "$prog" ] && [ -x "$prog" ] || continue
	name=$(basename "$prog")
	nprogs=$((nprogs + 1))
	# The kernel's uptime, to match the program with kernel log lines.
	up=
	[ -r /proc/uptime ] && read -r up _ </proc/uptime
	echo "# ---- $name (timeout ${timeout_s}s${up:+, kernel uptime ${up}s})"
	start=$(date +%s)
	{
		(cd "$dir" && exec timeout -k 10 "$timeout_s" "$prog" </dev/null 2>&1)
		echo $? >"$tmp/rc"
	} | tee "$tmp/out"
	rc=$(cat "$tmp/rc")
	secs=$(( $(date +%s) - start ))

	set -- $(awk '
		/^ok [0-9]+/ {
			if ($0 ~ /# *[Ss][Kk][Ii][Pp]/) skip++; else pass++
			next
		}
		/^not ok [0-9]+/ { fail++; next }
		/^1\.\.[0-9]+/ { plan = substr($1, 4) + 0; if ($0 ~ /# *SKIP/) planskip = 1 }
		END { printf "%d %d %d %d %d\n", pass, fail, skip, plan, planskip }
	' "$tmp/out")
	pass=$1 fail=$2 skip=$3 plan=$4 planskip=$5
	results=$((pass + fail + skip))

	why=
	if [ "$rc" = 124 ] || { [ "$rc" -ge 128 ] && [ "$secs" -ge "$timeout_s" ]; }; then
		why="timed out after ${timeout_s}s"
	elif [ "$rc" -gt 128 ]; then
		why="killed by signal $((rc - 128))"
	elif [ "$rc" != 0 ] && [ "$rc" != 4 ]; then
		why="exit status $rc"
	fi

	if [ "$results" = 0 ]; then
		if [ -n "$why" ]; then
			fail=1
		elif [ "$rc" = 4 ] || [ "$planskip" = 1 ]; then
			skip=1
		else
			pass=1
		fi
	elif [ -n "$why" ] && [ "$fail" = 0 ]; then
		fail=1
	elif [ "$results" -lt "$plan" ]; then
		why="${why:+$why, }only $results of $plan results"
		fail=$((fail + 1))
	fi

	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
	[ "$fail" -gt 0 ] && failed_progs="$failed_progs $name"
	echo "# ---- $name: $pass passed, $fail failed, $skip skipped in ${secs}s${why:+ ($why)}"
done

if [ "$nprogs" = 0 ]; then
	echo "# no test programs in $dir"
	total_fail=1
fi
[ -n "$failed_progs" ] && echo "# FAILED:$failed_progs"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" = 0 ]
