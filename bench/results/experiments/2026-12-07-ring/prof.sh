#!/bin/sh
# Syscalls per message of single ring-group cells, and CPU profiles.
B=/opt/prof/mpmc-bench
P=/opt/prof/perf
EV=syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_ioctl,syscalls:sys_enter_futex,context-switches
echo "perf: $($P --version)"
cell() { # NAME N ARGS...
	name=$1; n=$2; shift 2
	for t in mpmc-ring shmring mpmc pipe pipe-pkt; do
		out=$($P stat -e $EV -x, $B -q -g ring -t $t "$@" -n $n -r 1 2>&1) || { echo "$out" | tail -3; continue; }
		row=$(echo "$out" | grep "^$t,")
		[ -n "$row" ] || continue
		echo "PROF $name $t n=$n $(echo "$out" | grep -v '^transport\|^null\|^'$t, | awk -F, -v n=$n '{ split($3, e, ":"); sub("sys_enter_", "", e[2]); printf "%s=%.3f ", (e[2] == "" ? $3 : e[2]), $1 / n }') rate=$(echo "$row" | cut -d, -f11) nsc=$(echo "$row" | cut -d, -f14)"
	done
}
cell threads-1:1-64 100000 -s threads --pairs 1:1 --sizes 64 --caps 64
cell procs-1:1-64 100000 -s procs --pairs 1:1 --sizes 64 --caps 64
cell threads-4:4-64 100000 -s threads --pairs 4:4 --sizes 64 --caps 64
cell threads-1:4-64 50000 -s threads --pairs 1:4 --sizes 64 --caps 64
cell threads-1:1-64-cap1 5000 -s threads --pairs 1:1 --sizes 64 --caps 1
cell pingpong-64 3000 -s pingpong --sizes 64
cell threads-1:1-4096 50000 -s threads --pairs 1:1 --sizes 4096
cell pingpong-4096 2000 -s pingpong --sizes 4096
# wakeup: 37 warm-up messages and 150 timed (-n does not apply to it)
cell wakeup-1:8 187 -s wakeup
rec() { # N ARGS...
	n=$1; shift
	echo "=== perf record: mpmc-ring $* -n $n"
	$P record -q -F 2000 -g -o /tmp/p.data $B -q -g ring -t mpmc-ring "$@" -n $n -r 1 >/dev/null 2>&1
	$P report -i /tmp/p.data --stdio --no-children --sort sym 2>/dev/null | grep -v '^$' | grep '%' | head -40
}
rec 100000 -s threads --pairs 1:1 --sizes 64 --caps 64
rec 3000 -s pingpong --sizes 64
rec 100000 -s threads --pairs 4:4 --sizes 64 --caps 64
rec 2000 -s pingpong --sizes 4096
rec 0 -s wakeup
