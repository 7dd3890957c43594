// SPDX-License-Identifier: GPL-2.0
/*
 * mpmc-bench: the same message loops over /dev/mpmc, pipes (packet mode and
 * plain), socketpair(AF_UNIX, SOCK_SEQPACKET) and POSIX message queues, plus
 * a null-syscall floor, written as CSV.
 *
 * Build (static, so it runs in the busybox guest of tools/vm-run), with
 * libmpmc for mpmc-ring:
 *   make -C lib O=$PWD/build/lib $PWD/build/lib/libmpmc.a && cd tools/mpmc-bench &&
 *   gcc -static -O2 -pthread -I../../uapi -I../../lib/include -o mpmc-bench *.c \
 *       ../../build/lib/libmpmc.a -luring -lrt
 * Run as root inside the guest with mpmc.ko loaded (tools/run-bench does
 * all of that); `mpmc-bench --help` lists the options.
 *
 * Transports (CSV column "transport"):
 *   mpmc       /dev/mpmc ($MPMC_BENCH_DEV if set, e.g. to compare a patched
 *              module loaded under another name), one channel per open();
 *              SET_CONFIG gives it capacity messages of max_msg_size =
 *              msg_size bytes; producers and consumers share that one
 *              O_RDWR file
 *   mpmc-ep    the same channel, but the producers share a send-only
 *              endpoint and the consumers a receive-only one
 *              (MPMC_IOC_NEW_ENDPOINT), one file per side as a pipe has; in
 *              the threads, batch and uring scenarios
 *   mpmc-tp    as mpmc, in throughput mode (MPMC_CONFIG_THROUGHPUT, SPEC
 *              section 14: no FIFO hand-off), in threads and fair cells with
 *              more than one consumer; left out with a note when the module
 *              refuses the flag
 *   pipe-pkt   pipe2(O_DIRECT): packet mode, one write = one packet = one
 *              pipe slot; F_SETPIPE_SZ(capacity * 4096) gives it exactly
 *              `capacity` slots (rounded up to a power of two)
 *   pipe       plain pipe; all messages have the same size <= PIPE_BUF so
 *              each write is atomic and each read of msg_size bytes gets one
 *              whole message; F_SETPIPE_SZ(max(capacity * msg_size, 4096)).
 *              Not at capacity 1: its one page would hold 4096 / msg_size
 *              messages (the peers there, mqueue with mq_maxmsg 1, pipe-pkt
 *              with one slot and seqpacket with the smallest SO_SNDBUF, hold
 *              one, or the few the kernel's minimum buffer admits)
 *   pipe-64k   a plain pipe left as pipe() makes it (16 pages, 64 KiB, no
 *              F_SETPIPE_SZ), as most programs use one; only in threads
 *              cells that hold 64 KiB (capacity x msg_size), e.g. 64 B x 1024
 *   seqpacket  socketpair(AF_UNIX, SOCK_SEQPACKET); producers share one end,
 *              consumers the other. Capacity: SO_SNDBUF(FORCE) sized from a
 *              measured per-message truesize so that `capacity` messages fit
 *              (the kernel minimum makes small capacities larger; the
 *              effective value is printed on stderr)
 *   mqueue     POSIX mqueue (mq_open on the mounted /dev/mqueue), with
 *              mq_maxmsg = capacity and mq_msgsize = msg_size; as root the
 *              sysctls fs.mqueue.msg_max/msgsize_max and RLIMIT_MSGQUEUE are
 *              raised when they would refuse a configuration
 *   mpmc-ring  /dev/mpmc with MPMC_CONFIG_RING (ring mode, issue 13): the
 *              channel as mpmc's, and every worker (thread or process) maps
 *              its ring itself with mpmc_ring_map() (its own mapper id) and
 *              moves messages with mpmc_ring_send()/mpmc_ring_recv(), flags
 *              0 (blocking: a full or empty ring falls back to the blocking
 *              system call, woken by the other side's doorbell). Only in
 *              the ring group's cells (threads, procs, pingpong, wakeup)
 *   shmring    the same ring protocol without the module: tools/shmring.h
 *              in a memfd of `capacity` slots of msg_size bytes, futex
 *              waits; every worker maps the memfd itself (its own owner
 *              id), processes through the fd inherited over fork. The
 *              baseline of mpmc-ring: what the kernel's part costs. Only
 *              in the ring group's cells
 *   null       the floor: getppid(2) through syscall(2), one thread. It does
 *              no fd lookup and no locking, so it is the cheapest real
 *              kernel entry and exit.
 *
 * Scenarios (CSV column "scenario"):
 *   threads    P producer threads and C consumer threads share one channel
 *   procs      the same with processes (fork), results in shared memory
 *   pingpong   two threads, two channels, one message each way per round
 *              trip; the rate columns count ROUND TRIPS per second
 *   epoll64    P producers write round-robin to 64 channels; one consumer
 *              waits in epoll_wait (level-triggered) and drains every ready
 *              channel with non-blocking reads
 *   batch      1:1 threads moving `batch` messages per call: MPMC_IOC_SEND /
 *              MPMC_IOC_RECV for mpmc, sendmmsg / recvmmsg(MSG_WAITFORONE)
 *              for seqpacket (the same "wait for one, then take what is
 *              there" semantics); for the plain pipe a batch of fixed-size
 *              records in one write of at most PIPE_BUF bytes (64 x 64 B =
 *              4 KiB), received by reads of up to a batch of whole records
 *   uring      1:1 threads, each with its own io_uring, keeping `qd`
 *              WRITEs / READs in flight (blocking fds; mpmc has FMODE_NOWAIT
 *              and a keyed poll, so has seqpacket; pipes on 6.1 go through
 *              io-wq)
 *   wakeup     1 producer and 8 consumers blocked in receive; the producer
 *              sleeps --gap-us between messages so that every message finds
 *              all 8 asleep. ctxsw_per_msg here counts the 8 receivers only:
 *              it is "receiver wakeups per message" (1.0 = no herd);
 *              wake_us is how long a message took to wake one
 *   fair       1:4 threads like threads, but each consumer also reads the
 *              clock after every message it receives: what the FIFO
 *              hand-off buys, in min_share, max_share and max_wait_us
 *   getppid    the null-syscall floor (transport null)
 *
 * Columns:
 *   median_msgs_per_s,min,max  messages (pingpong: round trips) per second
 *              of wall time over `reps` repetitions: median, min and max
 *   null_syscalls_per_msg  CPU time (user+sys, all threads and processes of
 *              the cell, io-wq workers included) per message, divided by the
 *              CPU time of one getppid() measured in the same round (see
 *              below): the cost of a message in null syscalls, independent of
 *              parallelism; median over the repetitions
 *   ctxsw_per_msg  voluntary + involuntary context switches of all threads
 *              of the cell per message (getrusage); see wakeup above
 *   min_share,max_share  the fewest and the most messages one consumer
 *              received, over an even share (1.000 = every consumer got
 *              total / C); median over the repetitions; empty with one
 *              consumer
 *   max_wait_us  fair only: the longest time one consumer went without a
 *              message (from the start, or its previous message, to the
 *              return of its next receive), in microseconds; median over
 *              the repetitions of each one's longest; empty elsewhere
 *   wake_us    wakeup only: the mean time from the producer's clock read
 *              just before its send call to the return of the receive that
 *              got the message in a (sleeping) consumer, in microseconds;
 *              median over the repetitions; empty elsewhere
 *
 * Termination is exact: producers send a fixed count each; consumers reserve
 * the right to receive a message (or a batch) from a shared counter before
 * each receive, so no consumer ever waits for a message that will not come
 * and no sentinel is needed. Each message carries a distinct 64-bit value;
 * the consumers' sum is checked against the producers' (exactly once).
 *
 * With --cgroup DIR everything runs in a child cgroup with the memory
 * controller on (tools/run-bench's memcg pass), where kernel memory
 * accounting is live for every transport that charges (mpmc, pipes,
 * mqueue; AF_UNIX skbs are not charged to a memcg in 6.1).
 *
 * Each cell first runs a warm-up that calibrates the message count to about
 * --time-ms of wall time per repetition. The cells that differ only in
 * transport form a group, and their `reps` timed repetitions run round-robin
 * (mpmc, pipe-pkt, pipe, seqpacket, mqueue, mpmc, ...), each round after its
 * own short getppid() measurement, so that a change in the host's load
 * (other guests on the same machine) hits every transport of the group
 * alike. Every repetition creates fresh channels.
 */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/utsname.h>

struct opts {
	unsigned groups;
	struct filter filter;
	bool full, list;
	int reps, time_ms, wakeup_msgs;
	long msgs;
	const char *out, *cgroup;
};

static void usage(FILE *f)
{
	int i;

	fprintf(f,
"Usage: mpmc-bench [OPTIONS]\n"
"Runs a matrix of message-passing benchmarks and writes CSV:\n"
"  transport,scenario,producers,consumers,msg_size,capacity,batch,qd,pinned,reps,\n"
"  median_msgs_per_s,min,max,null_syscalls_per_msg,ctxsw_per_msg,\n"
"  min_share,max_share,max_wait_us,wake_us\n"
"(see the top of tools/mpmc-bench/main.c for what each column means)\n\n"
"  --full               the full matrix (default: the quick one, ~10 min in TCG)\n"
"  -g, --groups LIST    groups to run (default all): see below\n"
"  -t, --transports LIST  mpmc,mpmc-ep,mpmc-tp,pipe-pkt,pipe,\n"
"                       pipe-64k,seqpacket,mqueue,mpmc-ring,shmring\n"
"                       (default all)\n"
"  -s, --scenarios LIST keep only cells of these scenarios, e.g. threads,procs\n"
"  --pairs LIST         keep only cells with these P:C, e.g. 1:1,4:4\n"
"  --sizes LIST         keep only cells with these message sizes\n"
"  --caps LIST          keep only cells with these capacities\n"
"  --batches LIST       keep only cells with these batch sizes (1 = none)\n"
"  --qds LIST           keep only cells with these io_uring depths (0 = none)\n"
"  -r, --reps N         timed repetitions per cell (default 5)\n"
"  -T, --time-ms MS     target wall time of one repetition (default 300;\n"
"                       --full: 400)\n"
"  -n, --msgs N         N messages (round trips) per repetition, no warm-up\n"
"                       or calibration (e.g. to count system calls per\n"
"                       message under perf stat); not for wakeup and the\n"
"                       getppid floor\n"
"  --gap-us US          wakeup: producer pause between messages (default 1000)\n"
"  --wakeup-msgs N      wakeup: messages per repetition (default 150)\n"
"  -o, --out FILE       write the CSV to FILE (default stdout)\n"
"  --cgroup DIR         run in the child cgroup DIR (cgroup2, e.g.\n"
"                       /sys/fs/cgroup/mpmc-bench), made with the memory\n"
"                       controller on: kernel memory charging is live\n"
"  --pin                run every selected cell with all threads on CPU 0\n"
"  -l, --list           print the cells that would run, then exit\n"
"  -q, --quiet          no progress on stderr\n"
"  -h, --help           this text\n\nGroups:\n");
	for (i = 0; i < G_NR; i++)
		fprintf(f, "  %-9s %s\n", group_name[i], group_help[i]);
}

/* ----------------------------------------------------------- the options */

static void parse_ints(struct intlist *l, const char *s)
{
	char *dup = strdup(s), *tok, *save;

	l->n = 0;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (l->n == 32)
			die("list too long: %s", s);
		l->v[l->n++] = atoi(tok);
	}
	free(dup);
}

/* --pairs P:C[,P:C...] */
static void parse_pairs(struct filter *f, const char *s)
{
	char *dup = strdup(s), *tok, *save;

	f->pairs_p.n = f->pairs_c.n = 0;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (f->pairs_p.n == 32 ||
		    sscanf(tok, "%d:%d", &f->pairs_p.v[f->pairs_p.n], &f->pairs_c.v[f->pairs_c.n]) != 2)
			die("--pairs wants P:C[,P:C...]");
		f->pairs_p.n++;
		f->pairs_c.n++;
	}
	free(dup);
}

static unsigned int parse_names(const char *s, const char *const *names, int n, const char *what)
{
	char *dup = strdup(s), *tok, *save;
	unsigned int mask = 0;
	int i;

	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < n && strcmp(tok, names[i]); i++)
			;
		if (!strcmp(tok, "all"))
			mask |= (1u << n) - 1;
		else if (i == n)
			die("unknown %s '%s'", what, tok);
		else
			mask |= 1u << i;
	}
	free(dup);
	return mask;
}

static const struct option long_opts[] = {
	{ "full", no_argument, NULL, 'F' },
	{ "groups", required_argument, NULL, 'g' },
	{ "transports", required_argument, NULL, 't' },
	{ "scenarios", required_argument, NULL, 's' },
	{ "pairs", required_argument, NULL, 'P' },
	{ "sizes", required_argument, NULL, 'S' },
	{ "caps", required_argument, NULL, 'C' },
	{ "batches", required_argument, NULL, 'B' },
	{ "qds", required_argument, NULL, 'Q' },
	{ "reps", required_argument, NULL, 'r' },
	{ "time-ms", required_argument, NULL, 'T' },
	{ "msgs", required_argument, NULL, 'n' },
	{ "gap-us", required_argument, NULL, 'G' },
	{ "wakeup-msgs", required_argument, NULL, 'W' },
	{ "out", required_argument, NULL, 'o' },
	{ "list", no_argument, NULL, 'l' },
	{ "pin", no_argument, NULL, 'p' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "cgroup", required_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 }
};

/* One option; false for an unknown one. */
static bool parse_opt(struct opts *o, int opt, const char *arg)
{
	switch (opt) {
	case 'F': o->full = true; break;
	case 'g': o->groups = parse_names(arg, group_name, G_NR, "group"); break;
	case 't': o->filter.xports = parse_names(arg, xport_name, X_NULL, "transport"); break;
	case 's': o->filter.scens = parse_names(arg, scen_name, S_NULL, "scenario"); break;
	case 'S': parse_ints(&o->filter.sizes, arg); break;
	case 'C': parse_ints(&o->filter.caps, arg); break;
	case 'B': parse_ints(&o->filter.batches, arg); break;
	case 'Q': parse_ints(&o->filter.qds, arg); break;
	case 'P': parse_pairs(&o->filter, arg); break;
	case 'r': o->reps = atoi(arg); break;
	case 'T': o->time_ms = atoi(arg); break;
	case 'n': o->msgs = atol(arg); break;
	case 'G': gap_ns = strtoull(arg, NULL, 10) * 1000; break;
	case 'W': o->wakeup_msgs = atoi(arg); break;
	case 'o': o->out = arg; break;
	case 'c': o->cgroup = arg; break;
	case 'l': o->list = true; break;
	case 'p': o->filter.pin = true; break;
	case 'q': verbose = 0; break;
	default: return false;
	}
	return true;
}

static void parse_args(struct opts *o, int argc, char **argv)
{
	int opt;

	memset(o, 0, sizeof(*o));
	o->groups = ((1u << G_NR) - 1) & ~(1u << G_TARGETS);
	o->filter.xports = (1u << X_NULL) - 1;
	o->filter.scens = (1u << S_NULL) - 1;
	o->reps = 5;
	o->wakeup_msgs = 150;
	while ((opt = getopt_long(argc, argv, "g:t:s:r:T:n:o:lqh", long_opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			exit(0);
		}
		if (!parse_opt(o, opt, optarg)) {
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		usage(stderr);
		exit(2);
	}
	if (o->reps < 1 || o->reps > MAX_REPS)
		die("--reps wants 1..64");
	if (!o->time_ms)
		o->time_ms = o->full ? 400 : 300;
}

/* ------------------------------------------------------------- the runs */

/* One cell's repetitions. */
struct cellrun {
	const struct cell *c;
	long n;
	double rate[MAX_REPS], csw[MAX_REPS], nsc[MAX_REPS];
	double lo_share[MAX_REPS], hi_share[MAX_REPS], wait_us[MAX_REPS], wake_us[MAX_REPS];
};

struct bench {
	const struct opts *o;
	FILE *csv;
	uint64_t start;
	long null_n;		/* getppid() calls of a round's floor */
};

/*
 * Repetitions round-robin over the transports of a group, each round with
 * its own null-syscall measurement: a change in the host's load (other
 * guests) hits every transport of the group alike.
 */
static void run_rounds(struct bench *b, struct cellrun *cr, int g)
{
	bool floor = cr[0].c->scen == S_NULL;
	double nullc = 1;
	int k, m;

	for (k = 0; k < b->o->reps; k++) {
		if (!floor)
			nullc = run_null(b->null_n).cpu_per_msg;
		for (m = 0; m < g; m++) {
			struct sample s = run_any(cr[m].c, cr[m].n);

			cr[m].rate[k] = s.rate;
			cr[m].csw[k] = s.csw_per_msg;
			cr[m].nsc[k] = floor ? 1 : s.cpu_per_msg / nullc;
			cr[m].lo_share[k] = s.min_share;
			cr[m].hi_share[k] = s.max_share;
			cr[m].wait_us[k] = s.max_wait_us;
			cr[m].wake_us[k] = s.wake_us;
		}
	}
	/* Later rounds measure the floor with ~time_ms / 4 of calls. */
	if (floor)
		b->null_n = cr[0].n / 4 > 1000 ? cr[0].n / 4 : 1000;
}

/* A median as a CSV field: empty where it was not measured (NAN). */
static void put_median(FILE *f, const double *v, int n, const char *fmt)
{
	double m = median(v, n);

	fputc(',', f);
	if (!isnan(m))
		fprintf(f, fmt, m);
}

static void print_row(struct bench *b, const struct cellrun *cr, int idx)
{
	const struct cell *c = cr->c;
	int k, reps = b->o->reps;
	double med, lo, hi, nsc, csw;
	char d[128];

	med = median(cr->rate, reps);
	lo = hi = cr->rate[0];
	for (k = 1; k < reps; k++) {
		lo = cr->rate[k] < lo ? cr->rate[k] : lo;
		hi = cr->rate[k] > hi ? cr->rate[k] : hi;
	}
	nsc = median(cr->nsc, reps);
	csw = median(cr->csw, reps);
	fprintf(b->csv, "%s,%s,%d,%d,%d,%d,%d,%d,%d,%d,%.0f,%.0f,%.0f,%.3f,%.3f",
		xport_name[c->xp], scen_name[c->scen], c->prod, c->cons, c->size,
		c->cap, c->batch, c->qd, c->pinned, reps, med, lo, hi, nsc, csw);
	put_median(b->csv, cr->lo_share, reps, "%.3f");
	put_median(b->csv, cr->hi_share, reps, "%.3f");
	put_median(b->csv, cr->wait_us, reps, "%.0f");
	put_median(b->csv, cr->wake_us, reps, "%.1f");
	fputc('\n', b->csv);
	cell_desc(c, d, sizeof(d));
	note("[%d/%d %.0fs] %-40s n=%-7ld %10.0f/s (%.0f..%.0f) %7.2f nsc/msg %5.2f csw/msg",
	     idx + 1, ncells, (now_ns() - b->start) / 1e9, d, cr->n, med, lo, hi, nsc, csw);
}

/* The group of cells [i, j): the consecutive ones that differ only in transport. */
static void run_group(struct bench *b, int i, int j)
{
	struct cellrun cr[X_NR];
	int m;

	for (m = 0; m < j - i; m++) {
		cr[m].c = &cells[i + m];
		if (b->o->msgs > 0 && cr[m].c->scen != S_WAKEUP && cr[m].c->scen != S_NULL)
			cr[m].n = b->o->msgs;
		else
			cr[m].n = calibrate(cr[m].c, b->o->time_ms, b->o->wakeup_msgs);
	}
	run_rounds(b, cr, j - i);
	for (m = 0; m < j - i; m++)
		print_row(b, &cr[m], i + m);
	fflush(b->csv);
}

static void list_cells(void)
{
	char d[128];
	int i;

	for (i = 0; i < ncells; i++) {
		cell_desc(&cells[i], d, sizeof(d));
		printf("%s\n", d);
	}
	printf("%d cells\n", ncells);
}

static void run_all(const struct opts *o)
{
	struct bench b = { .o = o, .csv = stdout, .null_n = 20000 };
	struct utsname un;
	int i, j;

	signal(SIGPIPE, SIG_IGN);
	if (o->out && !(b.csv = fopen(o->out, "w")))
		die("%s: %s", o->out, strerror(errno));
	uname(&un);
	note("%d cells, %d reps, ~%d ms each, kernel %s, %ld CPUs", ncells, o->reps, o->time_ms,
	     un.release, sysconf(_SC_NPROCESSORS_ONLN));
	fprintf(b.csv, "transport,scenario,producers,consumers,msg_size,capacity,batch,qd,pinned,"
		"reps,median_msgs_per_s,min,max,null_syscalls_per_msg,ctxsw_per_msg,"
		"min_share,max_share,max_wait_us,wake_us\n");
	fflush(b.csv);
	if (o->cgroup)
		cgroup_enter(o->cgroup);
	b.start = now_ns();
	for (i = 0; i < ncells; i = j) {
		for (j = i + 1; j < ncells && same_config(&cells[i], &cells[j]); j++)
			;
		run_group(&b, i, j);
	}
	if (b.csv != stdout)
		fclose(b.csv);
	if (o->cgroup)
		cgroup_report(o->cgroup);
	note("done in %.0f s", (now_ns() - b.start) / 1e9);
}

int main(int argc, char **argv)
{
	struct opts o;

	parse_args(&o, argc, argv);
	if (getenv("MPMC_BENCH_DEV") && *getenv("MPMC_BENCH_DEV"))
		mpmc_dev = getenv("MPMC_BENCH_DEV");
	if (!o.list && (o.filter.xports & (1u << X_MPMC_TP)) && !mpmc_has_throughput()) {
		note("mpmc-tp left out: %s refuses MPMC_CONFIG_THROUGHPUT (%s)", mpmc_dev,
		     strerror(errno));
		o.filter.xports &= ~(1u << X_MPMC_TP);
	}
	if (!o.list && (o.filter.xports & (1u << X_MPMC_RING)) && !mpmc_has_ring()) {
		note("mpmc-ring left out: %s refuses MPMC_CONFIG_RING (%s)", mpmc_dev,
		     strerror(errno));
		o.filter.xports &= ~(1u << X_MPMC_RING);
	}
	build_matrix(o.groups, o.full);
	filter_cells(&o.filter);
	group_cells();
	if (o.list)
		list_cells();
	else
		run_all(&o);
	return 0;
}
