# SPDX-License-Identifier: GPL-2.0
#
# tools/bench/summary.awk: the summary of mpmc-bench CSVs (tools/run-bench).
#   awk -F, -f summary.awk pass=root latest.csv pass=memcg latest-memcg.csv ...
# The first pass gives the table of every cell, fairness and the other
# figures; every pass gives one column of the targets of issue 10. Every
# pass with mpmc-ring rows (the ring group, issue 13) gives a ring table
# and a column of the ring targets.
#
# A cell is "scenario:P:C:size:capacity:batch:qd:pinned"; values are kept
# per pass, cell and transport: rate (median msgs/s), nsc (null syscalls per
# message), csw (context switches per message), share (min-max), wait.

function fmt(x) { return x == "" ? "-" : sprintf("%.2f", x) }

function has(p, k, t) { return (p SUBSEP k SUBSEP t) in rate }

# The fastest of the other transports in cell k of pass p ("" if none).
function best_other(p, k,    j, b, bv) {
	b = ""; bv = 0
	for (j = 1; j <= nothers; j++)
		if (has(p, k, others[j]) && rate[p, k, others[j]] > bv) { bv = rate[p, k, others[j]]; b = others[j] }
	return b
}

# rate of t over rate of u ("best": the best other) in cell k of pass p, or "".
function ratio(p, k, t, u) {
	if (u == "best") u = best_other(p, k)
	if (u == "" || !has(p, k, t) || !has(p, k, u) || rate[p, k, u] <= 0) return ""
	return rate[p, k, t] / rate[p, k, u]
}

function describe(k,    f) {
	split(k, f, ":")
	return f[1] " " f[2] ":" f[3] " " f[4] "B cap" f[5] (f[6] > 1 ? " b" f[6] : "") (f[7] > 0 ? " qd" f[7] : "") (f[8] == 1 ? " pinned" : "")
}

FNR == 1 {
	if (!(pass in seenpass)) { seenpass[pass] = 1; passes[npasses++] = pass }
	next
}
$1 == "null" { next }
{
	k = $2 ":" $3 ":" $4 ":" $5 ":" $6 ":" $7 ":" $8 ":" $9
	if (pass == passes[0] && !(k in seen)) { seen[k] = 1; order[n++] = k }
	rate[pass, k, $1] = $11; nsc[pass, k, $1] = $14; csw[pass, k, $1] = $15
	if ($16 != "") share[pass, k, $1] = sprintf("%.2f-%.2f", $16, $17)
	if ($18 != "") wait[pass, k, $1] = $18
	if ($19 != "") wake[pass, k, $1] = $19
	if ($1 == "mpmc-ring") ringpass[pass] = 1
}

function table(p,    i, k, b) {
	printf "%-32s %9s %9s %8s %8s  %-9s %8s %8s %8s %8s %8s\n", "cell (scenario P:C size cap)", "mpmc/pipe", "mpmc/best",
		"ep/best", "tp/best", "best", "nsc mpmc", "nsc ep", "nsc best", "csw mpmc", "csw best"
	for (i = 0; i < n; i++) {
		k = order[i]
		if (!has(p, k, "mpmc") && !has(p, k, "mpmc-ep")) continue
		b = best_other(p, k)
		printf "%-32s %9s %9s %8s %8s  %-9s %8s %8s %8s %8s %8s\n", describe(k),
			fmt(ratio(p, k, "mpmc", "pipe")), fmt(ratio(p, k, "mpmc", "best")),
			fmt(ratio(p, k, "mpmc-ep", "best")), fmt(ratio(p, k, "mpmc-tp", "best")), (b == "" ? "-" : b),
			fmt(nsc[p, k, "mpmc"]), fmt(nsc[p, k, "mpmc-ep"]), (b == "" ? "-" : fmt(nsc[p, k, b])),
			fmt(csw[p, k, "mpmc"]), (b == "" ? "-" : fmt(csw[p, k, b]))
	}
	printf "\n(ratios of median msgs/s in the same boot; pingpong counts round trips; mpmc shares one O_RDWR\n"
	printf " file, mpmc-ep has one endpoint per side, mpmc-tp is throughput mode; best = the fastest of\n"
	printf " %s; nsc = CPU time per message in null syscalls (getppid);\n", otherlist
	printf " csw = context switches per message, for wakeup: receiver wakeups per message)\n"
}

# What fairness buys: every transport of the 1:4 fair cell.
function fairness(p,    i, k, t) {
	for (i = 0; i < n; i++) {
		k = order[i]
		if (k !~ /^fair:/) continue
		printf "\nFairness, %s: share of the messages per consumer (min-max, 1.00 = even), longest wait\n", describe(k)
		for (t = 1; t <= nall; t++)
			if (has(p, k, all[t]))
				printf "  %-10s %9.0f msgs/s  share %-10s  longest wait %8s us  %6.2f csw/msg\n", all[t], rate[p, k, all[t]],
					share[p, k, all[t]], wait[p, k, all[t]], csw[p, k, all[t]]
	}
}

function other_figures(p,    k, k1, j, line, qd, kb, t) {
	printf "\nOther figures:\n"
	k = "batch:1:1:64:1024:64:0:0"; k1 = "batch:1:1:64:1024:1:0:0"
	for (t = 1; t <= nall; t++)
		if (has(p, k, all[t]))
			printf "  %-46s %6.2f null syscalls/msg\n", "batch of 64 (1:1, 64 B), CPU per message, " all[t], nsc[p, k, all[t]]
	if (has(p, k, "mpmc") && has(p, k1, "mpmc"))
		printf "  %-46s %6.2fx\n", "mpmc batch 64 vs batch 1 throughput", rate[p, k, "mpmc"] / rate[p, k1, "mpmc"]
	k = "wakeup:1:8:64:64:1:0:0"
	if (has(p, k, "mpmc")) {
		line = ""
		for (j = 1; j <= nothers; j++) if (has(p, k, others[j])) line = line sprintf(" %s %.2f", others[j], csw[p, k, others[j]])
		printf "  %-46s %6.2f wakeups/msg (others:%s)\n", "8 blocked receivers", csw[p, k, "mpmc"], line
	}
	kb = "threads:1:1:64:64:1:0:0"
	for (qd = 1; qd <= 32; qd *= 32) {
		k = "uring:1:1:64:64:1:" qd ":0"
		for (t = 1; t <= nall; t++)
			if (has(p, k, all[t]) && has(p, kb, all[t]))
				printf "  %-46s %6.2fx throughput, %7.2f vs %6.2f nsc/msg\n", "io_uring QD " qd " vs read/write, " all[t],
					rate[p, k, all[t]] / rate[p, kb, all[t]], nsc[p, k, all[t]], nsc[p, kb, all[t]]
	}
}

# One target of issue 10: LABEL|TODAY|OP THRESHOLD|KEY|T|U (U "nsc": t's CPU per message)
function target(def,    f, i, p, v, line, ok, any, b) {
	split(def, f, "|")
	line = sprintf("  %-50s %6s %8s", f[1], f[2], f[3])
	ok = 1; any = 0
	for (i = 0; i < npasses; i++) {
		p = passes[i]
		if (f[6] == "nsc") v = (p SUBSEP f[4] SUBSEP f[5]) in nsc ? nsc[p, f[4], f[5]] : ""
		else v = ratio(p, f[4], f[5], f[6])
		line = line sprintf(" %10s", v == "" ? "-" : sprintf("%.2f%s", v, f[6] == "nsc" ? "" : "x"))
		if (v == "") continue
		any = 1
		if ((f[3] ~ /^>=/ && v < substr(f[3], 4) + 0) || (f[3] ~ /^<=/ && v > substr(f[3], 4) + 0)) ok = 0
	}
	b = f[6] == "best" ? best_other(passes[0], f[4]) : ""
	printf "%s  %s%s\n", line, (any ? (ok ? "met" : "MISSED") : "n/a"), (b == "" ? "" : " (best other: " b ")")
}

function targets(    i, d) {
	printf "\nTargets of issue 10 (64 B; mpmc / comparison in the same boot; passes: root = default CPU,\n"
	printf "root cgroup; memcg = a child memory cgroup; erms = guest CPU max,-erms,-fsrm):\n"
	printf "  %-50s %6s %8s", "target cell", "today", "target"
	for (i = 0; i < npasses; i++) printf " %10s", passes[i]
	printf "\n"
	d = "threads:1:1:64:64:1:0:0|threads:4:4:64:64:1:0:0|threads:1:1:64:1024:1:0:0|threads:4:4:64:1024:1:0:0"
	split(d, c, "|")
	target("1:1 threads, separate endpoints, vs best other|0.91|>= 1.2|" c[1] "|mpmc-ep|best")
	target("4:4 threads (shared fd) vs best other|0.71|>= 1.0|" c[2] "|mpmc|best")
	target("1:1 cap 1024, one fd per side, vs default pipe|0.75|>= 1.0|" c[3] "|mpmc-ep|pipe-64k")
	target("4:4 cap 1024, one fd per side, vs default pipe|0.61|>= 1.0|" c[4] "|mpmc-ep|pipe-64k")
	target("batch of 64, null syscalls per message|3.07|<= 1.0|batch:1:1:64:1024:64:0:0|mpmc|nsc")
	target("batch of 64 vs the 4 KiB-record pipe|-|>= 1.0|batch:1:1:64:1024:64:0:0|mpmc|pipe")
	target("capacity 1 vs mqueue holding 1 message|0.91|>= 1.5|threads:1:1:64:1:1:0:0|mpmc|mqueue")
	target("ping-pong vs best other|1.04|>= 1.2|pingpong:1:1:64:64:1:0:0|mpmc|best")
	target("1:4, throughput mode (mpmc-tp), vs pipe|0.30|>= 1.0|threads:1:4:64:64:1:0:0|mpmc-tp|pipe")
	target("1:4, FIFO mode, vs mqueue|0.64|>= 1.0|threads:1:4:64:64:1:0:0|mpmc|mqueue")
	printf "  %-50s %6s %8s  (make demo, not make bench)\n", "make demo: batch receives vs plain mpmc", "0.70", ">= 1.0"
}

# x / y, or "" when either is missing or y is 0.
function quot(x, y) { return x == "" || y == "" || y + 0 <= 0 ? "" : x / y }

# The pipe of cell k: the plain one, or pipe-pkt where that does not run (capacity 1).
function ring_pipe(p, k) { return has(p, k, "pipe") ? "pipe" : "pipe-pkt" }

function val(arr, p, k, t) { return (p SUBSEP k SUBSEP t) in arr ? arr[p, k, t] : "" }

# Ring mode (issue 13): every cell with mpmc-ring, against the pipe, plain
# mpmc and the same ring without the module (shmring), same boot.
function ring_table(p,    i, k, pp) {
	printf "\nRing mode (issue 13), pass %s: msgs/s of mpmc-ring over the pipe's (pipe-pkt at capacity 1),\n", p
	printf "plain mpmc's and shmring's (tools/shmring.h, futex waits, no module); CPU per message in null\n"
	printf "syscalls; context switches per message (wakeup: receiver wakeups); wakeup: wake time in us\n"
	printf "%-32s %9s %9s %9s %9s %8s %8s %8s %8s %8s %8s\n", "cell (scenario P:C size cap)", "ring/pipe", "ring/mpmc",
		"ring/shm", "shm/pipe", "nsc ring", "nsc shm", "nsc mpmc", "nsc pipe", "csw ring", "csw shm"
	for (i = 0; i < n; i++) {
		k = order[i]
		if (!has(p, k, "mpmc-ring")) continue
		pp = ring_pipe(p, k)
		printf "%-32s %9s %9s %9s %9s %8s %8s %8s %8s %8s %8s\n", describe(k) (pp == "pipe" ? "" : " /pkt"),
			fmt(ratio(p, k, "mpmc-ring", pp)), fmt(ratio(p, k, "mpmc-ring", "mpmc")),
			fmt(ratio(p, k, "mpmc-ring", "shmring")), fmt(ratio(p, k, "shmring", pp)),
			fmt(val(nsc, p, k, "mpmc-ring")), fmt(val(nsc, p, k, "shmring")), fmt(val(nsc, p, k, "mpmc")),
			fmt(val(nsc, p, k, pp)), fmt(val(csw, p, k, "mpmc-ring")), fmt(val(csw, p, k, "shmring"))
		if (k ~ /^wakeup:/)
			printf "  %-30s wake time: mpmc-ring %s us, mpmc %s us, shmring %s us, pipe %s us\n", "",
				fmt(val(wake, p, k, "mpmc-ring")), fmt(val(wake, p, k, "mpmc")),
				fmt(val(wake, p, k, "shmring")), fmt(val(wake, p, k, "pipe"))
	}
}

# One target of issue 13: LABEL|OP THRESHOLD|KEY|KIND|T|U; KIND rate: t's
# msgs/s over u's; nsc: t's CPU per message over u's; wake: t's wake time
# over u's.
function ring_target(def,    f, i, p, v, line, ok, any) {
	split(def, f, "|")
	line = sprintf("  %-60s %8s", f[1], f[2])
	ok = 1; any = 0
	for (i = 0; i < npasses; i++) {
		p = passes[i]
		if (!(p in ringpass)) continue
		if (f[4] == "rate") v = ratio(p, f[3], f[5], f[6] == "pipe" ? ring_pipe(p, f[3]) : f[6])
		else if (f[4] == "nsc") v = quot(val(nsc, p, f[3], f[5]), val(nsc, p, f[3], f[6]))
		else v = quot(val(wake, p, f[3], f[5]), val(wake, p, f[3], f[6]))
		line = line sprintf(" %10s", v == "" ? "-" : sprintf("%.2fx", v))
		if (v == "") continue
		any = 1
		if ((f[2] ~ /^>=/ && v < substr(f[2], 4) + 0) || (f[2] ~ /^<=/ && v > substr(f[2], 4) + 0)) ok = 0
	}
	printf "%s  %s\n", line, (any ? (ok ? "met" : "MISSED") : "n/a")
}

function ring_targets(    i, c1, p1, c4) {
	printf "\nTargets of issue 13 (ring mode, 64 B, mpmc-ring / comparison in the same boot):\n"
	printf "  %-60s %8s", "target", "target"
	for (i = 0; i < npasses; i++) if (passes[i] in ringpass) printf " %10s", passes[i]
	printf "\n"
	c1 = "threads:1:1:64:64:1:0:0"; p1 = "procs:1:1:64:64:1:0:0"; c4 = "threads:4:4:64:64:1:0:0"
	ring_target("1:1 threads vs pipe|>= 5.0|" c1 "|rate|mpmc-ring|pipe")
	ring_target("1:1 threads, CPU per message over shmring's|<= 1.5|" c1 "|nsc|mpmc-ring|shmring")
	ring_target("1:1 processes vs pipe|>= 5.0|" p1 "|rate|mpmc-ring|pipe")
	ring_target("1:1 processes, CPU per message over shmring's|<= 1.5|" p1 "|nsc|mpmc-ring|shmring")
	ring_target("4:4 threads vs pipe|>= 3.0|" c4 "|rate|mpmc-ring|pipe")
	ring_target("ping-pong vs plain mpmc (read/write)|>= 1.0|pingpong:1:1:64:64:1:0:0|rate|mpmc-ring|mpmc")
	ring_target("sleeping receiver: wake time over plain mpmc's (one wakeup)|<= 1.0|wakeup:1:8:64:64:1:0:0|wake|mpmc-ring|mpmc")
	ring_target("sleeping receiver: CPU per message over plain mpmc's|<= 1.0|wakeup:1:8:64:64:1:0:0|nsc|mpmc-ring|mpmc")
}

END {
	otherlist = "pipe-pkt pipe pipe-64k seqpacket mqueue"
	nothers = split(otherlist, others, " ")
	nall = split("mpmc mpmc-ep mpmc-tp " otherlist, all, " ")
	if (!npasses) exit
	table(passes[0])
	fairness(passes[0])
	other_figures(passes[0])
	targets()
	for (i = 0; i < npasses; i++)
		if (passes[i] in ringpass) { ring_table(passes[i]); ring = 1 }
	if (ring)
		ring_targets()
}
