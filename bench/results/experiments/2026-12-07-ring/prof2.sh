#!/bin/sh
# The wakeup cell: CPU (task-clock), switches and system calls per message,
# three rounds over the transports; then where the CPU goes (perf record).
B=/opt/prof/mpmc-bench
P=/opt/prof/perf
EV=task-clock,context-switches,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_ioctl,syscalls:sys_enter_futex
N=600	# timed messages; the warm-up sends N/4 more
for round in 1 2 3; do
	for t in mpmc mpmc-ring shmring pipe; do
		out=$($P stat -e $EV -x, $B -q -g ring -s wakeup -t $t --wakeup-msgs $N -r 1 -T 20 2>&1)
		row=$(echo "$out" | grep "^$t,")
		echo "WAKE round=$round $t $(echo "$out" | grep -v '^transport\|^null\|^'$t, | awk -F, -v n=$((N + N / 4)) '{ split($3, e, ":"); sub("sys_enter_", "", e[2]); printf "%s=%.3f ", (e[2] == "" ? $3 : e[2]), $1 / n }') rate=$(echo "$row" | cut -d, -f11) nsc=$(echo "$row" | cut -d, -f14) csw=$(echo "$row" | cut -d, -f15) wake_us=$(echo "$row" | cut -d, -f19)"
	done
done
for t in mpmc-ring mpmc; do
	echo "=== perf record: wakeup $t"
	$P record -q -F 4000 -g -o /tmp/p.data $B -q -g ring -s wakeup -t $t --wakeup-msgs $N -r 1 -T 20 >/dev/null 2>&1
	$P report -i /tmp/p.data --stdio --no-children --sort sym 2>/dev/null | grep -v '^$' | grep '%' | head -45
done
