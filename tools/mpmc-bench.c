// SPDX-License-Identifier: GPL-2.0
/*
 * mpmc-bench: the same message loops over /dev/mpmc, pipes (packet mode and
 * plain), socketpair(AF_UNIX, SOCK_SEQPACKET) and POSIX message queues, plus
 * a null-syscall floor, written as CSV.
 *
 * Build (static, so it runs in the busybox guest of tools/vm-run):
 *   gcc -static -O2 -pthread -Iuapi -o mpmc-bench tools/mpmc-bench.c \
 *       -luring -lrt
 * Run as root inside the guest with mpmc.ko loaded (tools/run-bench does
 * all of that); `mpmc-bench --help` lists the options.
 *
 * Transports (CSV column "transport"):
 *   mpmc       /dev/mpmc ($MPMC_BENCH_DEV if set, e.g. to compare a patched
 *              module loaded under another name), one channel per open();
 *              SET_CONFIG gives it
 *              capacity messages of max_msg_size = msg_size bytes
 *   pipe-pkt   pipe2(O_DIRECT): packet mode, one write = one packet = one
 *              pipe slot; F_SETPIPE_SZ(capacity * 4096) gives it exactly
 *              `capacity` slots (rounded up to a power of two)
 *   pipe       plain pipe; all messages have the same size <= PIPE_BUF so
 *              each write is atomic and each read of msg_size bytes gets one
 *              whole message; F_SETPIPE_SZ(max(capacity * msg_size, 4096))
 *   seqpacket  socketpair(AF_UNIX, SOCK_SEQPACKET); producers share one end,
 *              consumers the other. Capacity: SO_SNDBUF(FORCE) sized from a
 *              measured per-message truesize so that `capacity` messages fit
 *              (the kernel minimum makes small capacities larger; the
 *              effective value is printed on stderr)
 *   mqueue     POSIX mqueue (mq_open on the mounted /dev/mqueue), with
 *              mq_maxmsg = capacity and mq_msgsize = msg_size; as root the
 *              sysctls fs.mqueue.msg_max/msgsize_max and RLIMIT_MSGQUEUE are
 *              raised when they would refuse a configuration
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
 *              there" semantics)
 *   uring      1:1 threads, each with its own io_uring, keeping `qd`
 *              WRITEs / READs in flight (blocking fds; mpmc has FMODE_NOWAIT
 *              and a keyed poll, pipes on 6.1 go through io-wq)
 *   wakeup     1 producer and 8 consumers blocked in receive; the producer
 *              sleeps --gap-us between messages so that every message finds
 *              all 8 asleep. ctxsw_per_msg here counts the 8 receivers only:
 *              it is "receiver wakeups per message" (1.0 = no herd)
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
 *
 * Termination is exact: producers send a fixed count each; consumers reserve
 * the right to receive a message (or a batch) from a shared counter before
 * each receive, so no consumer ever waits for a message that will not come
 * and no sentinel is needed. Each message carries a distinct 64-bit value;
 * the consumers' sum is checked against the producers' (exactly once).
 *
 * Each cell first runs a warm-up that calibrates the message count to about
 * --time-ms of wall time per repetition. The cells that differ only in
 * transport form a group, and their `reps` timed repetitions run round-robin
 * (mpmc, pipe-pkt, pipe, seqpacket, mqueue, mpmc, ...), each round after its
 * own short getppid() measurement, so that a change in the host's load
 * (other guests on the same machine) hits every transport of the group
 * alike. Every repetition creates fresh channels.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <liburing.h>
#include <linux/mpmc.h>

#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#endif
#ifndef SO_SNDBUFFORCE
#define SO_SNDBUFFORCE 32
#endif

#define MAX_WORKERS	64
#define EPOLL_CHANS	64
#define WAKEUP_RX	8
#define MAX_BATCH	1024
#define MAX_QD		256

/* ------------------------------------------------------------------ utils */

static int verbose = 1;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "mpmc-bench: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

#define DIE_ERRNO(what) die("%s: %s (%s:%d)", what, strerror(errno), __FILE__, __LINE__)

static void note(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "mpmc-bench: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ull + ts->tv_nsec;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts_ns(&ts);
}

static uint64_t cpu_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts_ns(&ts);
}

static uint64_t ctxsw(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return ru.ru_nvcsw + ru.ru_nivcsw;
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

static long read_long_file(const char *path)
{
	char buf[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	double t[64];

	memcpy(t, v, n * sizeof(*v));
	qsort(t, n, sizeof(*t), cmp_double);
	return n & 1 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* ------------------------------------------------------------- transports */

enum xport { X_MPMC, X_PIPEPKT, X_PIPE, X_SEQPACKET, X_MQUEUE, X_NULL, X_NR };

static const char *const xport_name[X_NR] = {
	"mpmc", "pipe-pkt", "pipe", "seqpacket", "mqueue", "null",
};

/* One channel: producers use s, consumers r (the same fd for some). */
struct chan {
	int xp;
	int s, r;
};

#define CH_RD_NONBLOCK	1	/* consumers' descriptor is O_NONBLOCK */

static int mq_seq;

/* The device of transport mpmc: $MPMC_BENCH_DEV or /dev/mpmc. */
static const char *mpmc_dev = "/dev/mpmc";

/* Raise the mqueue limits (as root) so that @cap x @size is accepted. */
static void mq_limits(int cap, int size)
{
	static int done_cap, done_size;
	char v[32];

	if (cap > done_cap && read_long_file("/proc/sys/fs/mqueue/msg_max") < cap) {
		snprintf(v, sizeof(v), "%d", cap);
		write_file("/proc/sys/fs/mqueue/msg_max", v);
	}
	if (size > done_size && read_long_file("/proc/sys/fs/mqueue/msgsize_max") < size) {
		snprintf(v, sizeof(v), "%d", size);
		write_file("/proc/sys/fs/mqueue/msgsize_max", v);
	}
	if (!done_cap) {
		struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

		if (setrlimit(RLIMIT_MSGQUEUE, &rl)) {
			/* Not root: take what the hard limit allows. */
			getrlimit(RLIMIT_MSGQUEUE, &rl);
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_MSGQUEUE, &rl);
		}
	}
	if (cap > done_cap)
		done_cap = cap;
	if (size > done_size)
		done_size = size;
}

/*
 * SEQPACKET capacity: a message costs its skb truesize in the sender's
 * sk_wmem_alloc, and a send is admitted while wmem < sndbuf. Measure the
 * truesize once per size by filling a socket, then size the buffer so that
 * @cap messages fit. Cached per (size, cap).
 */
struct seqcap { int size, cap, val, eff; };
static struct seqcap seqcaps[64];
static int nseqcaps;

static int seq_fill_count(int s, int r, int size)
{
	char *buf = calloc(1, size);
	int k = 0;

	while (send(s, buf, size, MSG_DONTWAIT) == size)
		k++;
	if (errno != EAGAIN)
		DIE_ERRNO("seqpacket fill");
	while (recv(r, buf, size, MSG_DONTWAIT) > 0)
		;
	free(buf);
	return k;
}

static int seq_setbuf(int s, int val)
{
	if (setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &val, sizeof(val)) == 0)
		return 0;
	return setsockopt(s, SOL_SOCKET, SO_SNDBUF, &val, sizeof(val));
}

static struct seqcap *seq_capacity(int size, int cap)
{
	struct seqcap *c;
	int sv[2], k, actual, val, i;
	socklen_t len = sizeof(actual);
	double per;

	for (i = 0; i < nseqcaps; i++)
		if (seqcaps[i].size == size && seqcaps[i].cap == cap)
			return &seqcaps[i];
	if (nseqcaps == 64)
		die("too many seqpacket configurations");
	c = &seqcaps[nseqcaps++];
	c->size = size;
	c->cap = cap;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		DIE_ERRNO("socketpair");
	seq_setbuf(sv[0], 1 << 20);
	getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &actual, &len);
	k = seq_fill_count(sv[0], sv[1], size);
	if (k < 2)
		die("seqpacket: cannot measure the per-message cost");
	per = (double)actual / k;
	/* setsockopt doubles the value; admit exactly cap messages. */
	val = (int)((cap - 0.5) * per / 2);
	if (val < 1)
		val = 1;
	seq_setbuf(sv[0], val);
	c->val = val;
	c->eff = seq_fill_count(sv[0], sv[1], size);
	close(sv[0]);
	close(sv[1]);
	note("seqpacket: %d-byte messages cost ~%.0f bytes of sndbuf; capacity %d -> %d messages",
	     size, per, cap, c->eff);
	return c;
}

static void chan_open(struct chan *c, int xp, int size, int cap, int flags)
{
	int p[2], fd, v;

	c->xp = xp;
	switch (xp) {
	case X_MPMC: {
		struct mpmc_config cfg = { .capacity = cap, .max_msg_size = size };

		fd = open(mpmc_dev, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			die("open %s: %s", mpmc_dev, strerror(errno));
		if (ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg))
			DIE_ERRNO("MPMC_IOC_SET_CONFIG");
		c->s = c->r = fd;
		if (flags & CH_RD_NONBLOCK) {
			struct mpmc_endpoint ep = {
				.roles = MPMC_ROLE_RECV,
				.flags = O_NONBLOCK | O_CLOEXEC,
			};

			c->r = ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &ep);
			if (c->r < 0)
				DIE_ERRNO("MPMC_IOC_NEW_ENDPOINT");
		}
		break;
	}
	case X_PIPEPKT:
	case X_PIPE:
		if (pipe2(p, O_CLOEXEC | (xp == X_PIPEPKT ? O_DIRECT : 0)))
			DIE_ERRNO("pipe2");
		v = xp == X_PIPEPKT ? cap * 4096 : cap * size;
		if (v < 4096)
			v = 4096;
		if (fcntl(p[1], F_SETPIPE_SZ, v) < 0) {
			static int warned;

			if (!warned++)
				note("F_SETPIPE_SZ(%d): %s", v, strerror(errno));
		}
		c->s = p[1];
		c->r = p[0];
		if ((flags & CH_RD_NONBLOCK) && fcntl(c->r, F_SETFL, O_NONBLOCK))
			DIE_ERRNO("fcntl O_NONBLOCK");
		break;
	case X_SEQPACKET: {
		struct seqcap *sc = seq_capacity(size, cap);

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p))
			DIE_ERRNO("socketpair");
		seq_setbuf(p[0], sc->val);
		c->s = p[0];
		c->r = p[1];
		if ((flags & CH_RD_NONBLOCK) && fcntl(c->r, F_SETFL, O_NONBLOCK))
			DIE_ERRNO("fcntl O_NONBLOCK");
		break;
	}
	case X_MQUEUE: {
		struct mq_attr attr = { .mq_maxmsg = cap, .mq_msgsize = size };
		char name[64];

		mq_limits(cap, size);
		snprintf(name, sizeof(name), "/mpmc-bench-%d-%d", (int)getpid(), mq_seq++);
		c->s = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
		if (c->s < 0)
			die("mq_open(%s, maxmsg %d, msgsize %d): %s (is /dev/mqueue mounted?)",
			    name, cap, size, strerror(errno));
		c->r = c->s;
		if (flags & CH_RD_NONBLOCK) {
			c->r = mq_open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
			if (c->r < 0)
				DIE_ERRNO("mq_open O_NONBLOCK");
		}
		mq_unlink(name);
		break;
	}
	default:
		die("no channel for transport %d", xp);
	}
}

static void chan_close(struct chan *c)
{
	if (c->r != c->s)
		close(c->r);
	close(c->s);
}

static void chan_send(struct chan *c, const void *buf, size_t len)
{
	ssize_t n;

	for (;;) {
		switch (c->xp) {
		case X_SEQPACKET:
			n = send(c->s, buf, len, 0);
			break;
		case X_MQUEUE:
			n = mq_send(c->s, buf, len, 0) ? -1 : (ssize_t)len;
			break;
		default:
			n = write(c->s, buf, len);
			break;
		}
		if (n == (ssize_t)len)
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("%s send: %s", xport_name[c->xp], strerror(errno));
		die("%s send: short write %zd of %zu", xport_name[c->xp], n, len);
	}
}

/* Returns the message length, or -1 with errno EAGAIN (non-blocking). */
static ssize_t chan_recv(struct chan *c, void *buf, size_t len)
{
	ssize_t n;

	for (;;) {
		switch (c->xp) {
		case X_SEQPACKET:
			n = recv(c->r, buf, len, 0);
			break;
		case X_MQUEUE:
			n = mq_receive(c->r, buf, len, NULL);
			break;
		default:
			n = read(c->r, buf, len);
			break;
		}
		if (n == (ssize_t)len)
			return n;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return -1;
		if (n < 0)
			die("%s recv: %s", xport_name[c->xp], strerror(errno));
		die("%s recv: got %zd bytes, want %zu (message boundary lost)",
		    xport_name[c->xp], n, len);
	}
}

/* Batch state of one thread. */
struct batchbuf {
	int n;
	char *data;			/* n * size bytes */
	struct mpmc_msgvec vec[MAX_BATCH];
	struct mmsghdr mm[MAX_BATCH];
	struct iovec iov[MAX_BATCH];
};

static struct batchbuf *batch_alloc(int n, int size)
{
	struct batchbuf *b = calloc(1, sizeof(*b));
	int i;

	b->n = n;
	b->data = aligned_alloc(64, ((size_t)n * size + 63) & ~63ul);
	memset(b->data, 0x5a, (size_t)n * size);
	for (i = 0; i < n; i++) {
		b->vec[i].buf = (uintptr_t)(b->data + (size_t)i * size);
		b->vec[i].len = size;
		b->iov[i].iov_base = b->data + (size_t)i * size;
		b->iov[i].iov_len = size;
		b->mm[i].msg_hdr.msg_iov = &b->iov[i];
		b->mm[i].msg_hdr.msg_iovlen = 1;
	}
	return b;
}

static void batch_free(struct batchbuf *b)
{
	free(b->data);
	free(b);
}

/* Send messages [off, off + n) of @b; returns how many moved (>= 1). */
static int chan_send_batch(struct chan *c, struct batchbuf *b, int off, int n, int size)
{
	int i, ret;

	for (;;) {
		if (c->xp == X_MPMC) {
			struct mpmc_batch mb = {
				.vec = (uintptr_t)(b->vec + off), .count = n, .timeout_ns = -1,
			};

			for (i = off; i < off + n; i++)
				b->vec[i].len = size;
			ret = ioctl(c->s, MPMC_IOC_SEND, &mb);
		} else if (c->xp == X_SEQPACKET) {
			ret = sendmmsg(c->s, b->mm + off, n, 0);
		} else {
			die("%s has no batch send", xport_name[c->xp]);
		}
		if (ret > 0)
			return ret;
		if (ret < 0 && errno == EINTR)
			continue;
		die("%s batch send: %s", xport_name[c->xp], ret ? strerror(errno) : "sent 0");
	}
}

/* Receive up to @n messages into @b; returns how many (>= 1). */
static int chan_recv_batch(struct chan *c, struct batchbuf *b, int n, int size)
{
	int i, ret;

	for (;;) {
		if (c->xp == X_MPMC) {
			struct mpmc_batch mb = {
				.vec = (uintptr_t)b->vec, .count = n, .timeout_ns = -1,
			};

			for (i = 0; i < n; i++)
				b->vec[i].len = size;
			ret = ioctl(c->r, MPMC_IOC_RECV, &mb);
			for (i = 0; i < ret; i++)
				if (b->vec[i].len != (unsigned)size)
					die("mpmc batch recv: length %u", b->vec[i].len);
		} else if (c->xp == X_SEQPACKET) {
			ret = recvmmsg(c->r, b->mm, n, MSG_WAITFORONE, NULL);
			for (i = 0; i < ret; i++)
				if (b->mm[i].msg_len != (unsigned)size)
					die("seqpacket recvmmsg: length %u", b->mm[i].msg_len);
		} else {
			die("%s has no batch receive", xport_name[c->xp]);
		}
		if (ret > 0)
			return ret;
		if (ret < 0 && errno == EINTR)
			continue;
		die("%s batch recv: %s", xport_name[c->xp], ret ? strerror(errno) : "got 0");
	}
}

/* --------------------------------------------------------------- the cells */

enum scen { S_THREADS, S_PROCS, S_PINGPONG, S_EPOLL, S_BATCH, S_URING, S_WAKEUP, S_NULL, S_NR };

static const char *const scen_name[S_NR] = {
	"threads", "procs", "pingpong", "epoll64", "batch", "uring", "wakeup", "getppid",
};

struct cell {
	int xp, scen;
	int prod, cons;
	int size, cap;
	int batch, qd, pinned;
};

/* Shared between the workers of one run (threads or processes). */
struct wres {
	uint64_t cpu_ns;	/* this worker's CPU time during the run */
	uint64_t csw;		/* this worker's context switches */
	uint64_t sum;		/* consumers: sum of received values */
	uint64_t count;		/* consumers: messages received */
	int consumer;
};

struct run {
	struct cell cell;
	long per_prod;		/* messages each producer sends */
	long total;		/* messages in all */
	long claimed;		/* consumers' reservations (atomic) */
	uint64_t gap_ns;	/* wakeup: producer pause between messages */
	pthread_barrier_t bar;
	int nchans;
	struct chan chans[EPOLL_CHANS];
	int nworkers;
	struct wres res[MAX_WORKERS];
};

static long reserve(struct run *r, long want)
{
	long cur = __atomic_load_n(&r->claimed, __ATOMIC_RELAXED);

	for (;;) {
		long k = r->total - cur;

		if (k <= 0)
			return 0;
		if (k > want)
			k = want;
		if (__atomic_compare_exchange_n(&r->claimed, &cur, cur + k, false,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return k;
	}
}

/* The value carried by message @i of producer @p (never 0). */
static inline uint64_t msg_value(int p, long i)
{
	return ((uint64_t)(p + 1) << 40) + (uint64_t)i + 1;
}

static inline void put_value(char *buf, uint64_t v)
{
	memcpy(buf, &v, sizeof(v));
}

static inline uint64_t get_value(const char *buf)
{
	uint64_t v;

	memcpy(&v, buf, sizeof(v));
	return v;
}

static char *msgbuf(int size)
{
	char *b = aligned_alloc(64, (size + 63) & ~63);

	memset(b, 0x5a, size);
	return b;
}

struct worker {
	struct run *r;
	int id;		/* index in r->res */
	int role;	/* producer index, or consumer index */
	void (*fn)(struct worker *);
};

/* Common start/end bookkeeping around a worker body. */
static void worker_begin(struct worker *w, uint64_t *cpu0, uint64_t *csw0)
{
	pthread_barrier_wait(&w->r->bar);
	*cpu0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	*csw0 = ctxsw(RUSAGE_THREAD);
}

static void worker_end(struct worker *w, uint64_t cpu0, uint64_t csw0)
{
	w->r->res[w->id].cpu_ns = cpu_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	w->r->res[w->id].csw = ctxsw(RUSAGE_THREAD) - csw0;
}

static void w_producer(struct worker *w)
{
	struct run *r = w->r;
	struct chan *c = &r->chans[0];
	int size = r->cell.size;
	char *buf = msgbuf(size);
	uint64_t cpu0, csw0;
	long i;

	worker_begin(w, &cpu0, &csw0);
	if (r->cell.scen == S_WAKEUP) {
		struct timespec gap = { 0, r->gap_ns };

		for (i = 0; i < r->per_prod; i++) {
			clock_nanosleep(CLOCK_MONOTONIC, 0, &gap, NULL);
			put_value(buf, msg_value(w->role, i));
			chan_send(c, buf, size);
		}
	} else {
		for (i = 0; i < r->per_prod; i++) {
			put_value(buf, msg_value(w->role, i));
			chan_send(c, buf, size);
		}
	}
	worker_end(w, cpu0, csw0);
	free(buf);
}

static void w_consumer(struct worker *w)
{
	struct run *r = w->r;
	struct chan *c = &r->chans[0];
	struct wres *res = &r->res[w->id];
	int size = r->cell.size;
	char *buf = msgbuf(size);
	uint64_t cpu0, csw0, sum = 0;
	long n = 0;

	worker_begin(w, &cpu0, &csw0);
	while (reserve(r, 1)) {
		chan_recv(c, buf, size);
		sum += get_value(buf);
		n++;
	}
	worker_end(w, cpu0, csw0);
	res->sum = sum;
	res->count = n;
	free(buf);
}

static void w_batch_producer(struct worker *w)
{
	struct run *r = w->r;
	struct chan *c = &r->chans[0];
	int size = r->cell.size, bs = r->cell.batch;
	struct batchbuf *b = batch_alloc(bs, size);
	uint64_t cpu0, csw0;
	long i = 0;
	int k, j, off;

	worker_begin(w, &cpu0, &csw0);
	while (i < r->per_prod) {
		k = r->per_prod - i < bs ? r->per_prod - i : bs;
		for (j = 0; j < k; j++)
			put_value(b->data + (size_t)j * size, msg_value(w->role, i + j));
		/* A partial batch: send the rest from where it stopped. */
		for (off = 0; off < k; )
			off += chan_send_batch(c, b, off, k - off, size);
		i += k;
	}
	worker_end(w, cpu0, csw0);
	batch_free(b);
}

static void w_batch_consumer(struct worker *w)
{
	struct run *r = w->r;
	struct chan *c = &r->chans[0];
	struct wres *res = &r->res[w->id];
	int size = r->cell.size, bs = r->cell.batch;
	struct batchbuf *b = batch_alloc(bs, size);
	uint64_t cpu0, csw0, sum = 0;
	long n = 0, k;
	int got, j;

	worker_begin(w, &cpu0, &csw0);
	while ((k = reserve(r, bs))) {
		while (k) {
			got = chan_recv_batch(c, b, k, size);
			for (j = 0; j < got; j++)
				sum += get_value(b->data + (size_t)j * size);
			n += got;
			k -= got;
		}
	}
	worker_end(w, cpu0, csw0);
	res->sum = sum;
	res->count = n;
	batch_free(b);
}

/* Ping-pong: role 0 is the client (counts round trips), role 1 the echo. */
static void w_pingpong(struct worker *w)
{
	struct run *r = w->r;
	struct chan *to = &r->chans[w->role], *from = &r->chans[!w->role];
	struct wres *res = &r->res[w->id];
	int size = r->cell.size;
	char *buf = msgbuf(size);
	uint64_t cpu0, csw0, sum = 0;
	long i;

	worker_begin(w, &cpu0, &csw0);
	for (i = 0; i < r->total; i++) {
		if (w->role == 0) {
			put_value(buf, msg_value(0, i));
			chan_send(to, buf, size);
			chan_recv(from, buf, size);
			sum += get_value(buf);
		} else {
			chan_recv(from, buf, size);
			chan_send(to, buf, size);
		}
	}
	worker_end(w, cpu0, csw0);
	if (w->role == 0) {
		res->sum = sum;
		res->count = r->total;
	}
	free(buf);
}

/* epoll fan-in: producer p owns channels p, p + P, p + 2P, ... */
static void w_epoll_producer(struct worker *w)
{
	struct run *r = w->r;
	int size = r->cell.size, P = r->cell.prod;
	int mine = (r->nchans - w->role + P - 1) / P;
	char *buf = msgbuf(size);
	uint64_t cpu0, csw0;
	long i;

	worker_begin(w, &cpu0, &csw0);
	for (i = 0; i < r->per_prod; i++) {
		put_value(buf, msg_value(w->role, i));
		chan_send(&r->chans[w->role + (i % mine) * P], buf, size);
	}
	worker_end(w, cpu0, csw0);
	free(buf);
}

static void w_epoll_consumer(struct worker *w)
{
	struct run *r = w->r;
	struct wres *res = &r->res[w->id];
	int size = r->cell.size;
	struct epoll_event ev[EPOLL_CHANS];
	char *buf = msgbuf(size);
	uint64_t cpu0, csw0, sum = 0;
	long n = 0;
	int ep, i, k;

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		DIE_ERRNO("epoll_create1");
	for (i = 0; i < r->nchans; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u32 = i };

		if (epoll_ctl(ep, EPOLL_CTL_ADD, r->chans[i].r, &e))
			DIE_ERRNO("epoll_ctl");
	}
	worker_begin(w, &cpu0, &csw0);
	while (n < r->total) {
		k = epoll_wait(ep, ev, EPOLL_CHANS, -1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			DIE_ERRNO("epoll_wait");
		for (i = 0; i < k; i++) {
			struct chan *c = &r->chans[ev[i].data.u32];

			while (chan_recv(c, buf, size) > 0) {
				sum += get_value(buf);
				n++;
			}
		}
	}
	worker_end(w, cpu0, csw0);
	close(ep);
	res->sum = sum;
	res->count = n;
	free(buf);
}

static unsigned uring_flags;

/* io_uring: producer (role 0) keeps qd WRITEs in flight, consumer qd READs. */
static void uring_init(struct io_uring *ring, int qd)
{
	int ret = io_uring_queue_init(qd, ring, uring_flags);

	if (ret == -EINVAL)
		ret = io_uring_queue_init(qd, ring, 0);
	if (ret)
		die("io_uring_queue_init: %s", strerror(-ret));
}

static void w_uring(struct worker *w)
{
	struct run *r = w->r;
	struct chan *c = &r->chans[0];
	struct wres *res = &r->res[w->id];
	int size = r->cell.size, qd = r->cell.qd;
	bool prod = !r->res[w->id].consumer;
	int fd = prod ? c->s : c->r;
	char *data = aligned_alloc(64, (size_t)qd * ((size + 63) & ~63));
	int freeslot[MAX_QD], nfree = 0, inflight = 0, ret;
	size_t stride = (size + 63) & ~63;
	uint64_t cpu0, csw0, sum = 0;
	struct io_uring ring;
	long sub = 0, done = 0;

	uring_init(&ring, qd);
	memset(data, 0x5a, qd * stride);
	for (nfree = 0; nfree < qd; nfree++)
		freeslot[nfree] = nfree;
	worker_begin(w, &cpu0, &csw0);
	while (done < r->total) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;

		while (inflight < qd && sub < r->total) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			int slot = freeslot[--nfree];
			char *b = data + slot * stride;

			if (!sqe)
				die("io_uring: no SQE");
			if (prod) {
				put_value(b, msg_value(0, sub));
				io_uring_prep_write(sqe, fd, b, size, (__u64)-1);
			} else {
				io_uring_prep_read(sqe, fd, b, size, (__u64)-1);
			}
			io_uring_sqe_set_data64(sqe, slot);
			sub++;
			inflight++;
		}
		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0 && ret != -EINTR)
			die("io_uring_submit_and_wait: %s", strerror(-ret));
		io_uring_for_each_cqe(&ring, head, cqe) {
			int slot = (int)cqe->user_data;

			if (cqe->res != size)
				die("io_uring %s on %s: res %d (%s)", prod ? "write" : "read",
				    xport_name[c->xp], cqe->res,
				    cqe->res < 0 ? strerror(-cqe->res) : "short");
			if (!prod)
				sum += get_value(data + slot * stride);
			freeslot[nfree++] = slot;
			inflight--;
			done++;
			seen++;
		}
		io_uring_cq_advance(&ring, seen);
	}
	worker_end(w, cpu0, csw0);
	io_uring_queue_exit(&ring);
	if (!prod) {
		res->sum = sum;
		res->count = done;
	}
	free(data);
}

static void *thread_main(void *arg)
{
	struct worker *w = arg;

	w->fn(w);
	return NULL;
}

struct sample {
	double secs;		/* wall time */
	double rate;		/* messages (round trips) per second */
	double cpu_per_msg;	/* ns */
	double csw_per_msg;
};

static uint64_t expected_sum(struct run *r)
{
	uint64_t s = 0;
	int p;

	if (r->cell.scen == S_PINGPONG || r->cell.scen == S_URING)
		return (uint64_t)r->total * (1ull << 40) +
		       (uint64_t)r->total * (r->total + 1) / 2;
	for (p = 0; p < r->cell.prod; p++)
		s += (uint64_t)r->per_prod * ((uint64_t)(p + 1) << 40) +
		     (uint64_t)r->per_prod * (r->per_prod + 1) / 2;
	return s;
}

static uint64_t gap_ns = 1000000;

/* One timed repetition of @cell moving about @n messages. */
static struct sample run_once(const struct cell *cell, long n)
{
	struct run *r;
	struct worker w[MAX_WORKERS];
	pthread_t tid[MAX_WORKERS];
	pid_t pid[MAX_WORKERS];
	pthread_barrierattr_t ba;
	cpu_set_t old, one;
	uint64_t t0, t1, pcpu0 = 0, pcpu1, pcsw0 = 0, pcsw1, sum = 0, cnt = 0, cpu = 0, csw = 0;
	struct sample s;
	bool procs = cell->scen == S_PROCS;
	int i, P = cell->prod, C = cell->cons, flags = 0;

	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		DIE_ERRNO("mmap");
	memset(r, 0, sizeof(*r));
	r->cell = *cell;
	r->gap_ns = gap_ns;
	if (n < 1)
		n = 1;

	switch (cell->scen) {
	case S_PINGPONG:
	case S_URING:
		r->total = n;
		r->per_prod = n;
		break;
	default:
		r->per_prod = (n + P - 1) / P;
		r->total = r->per_prod * P;
		break;
	}
	r->nchans = cell->scen == S_EPOLL ? EPOLL_CHANS : cell->scen == S_PINGPONG ? 2 : 1;
	if (cell->scen == S_EPOLL)
		flags |= CH_RD_NONBLOCK;
	for (i = 0; i < r->nchans; i++)
		chan_open(&r->chans[i], cell->xp, cell->size, cell->cap, flags);

	/* The workers: producers first, then consumers. */
	r->nworkers = P + C;
	if (r->nworkers > MAX_WORKERS)
		die("too many workers");
	for (i = 0; i < r->nworkers; i++) {
		bool prod = i < P;

		w[i].r = r;
		w[i].id = i;
		w[i].role = prod ? i : i - P;
		r->res[i].consumer = !prod;
		switch (cell->scen) {
		case S_THREADS:
		case S_PROCS:
		case S_WAKEUP:
			w[i].fn = prod ? w_producer : w_consumer;
			break;
		case S_BATCH:
			w[i].fn = prod ? w_batch_producer : w_batch_consumer;
			break;
		case S_EPOLL:
			w[i].fn = prod ? w_epoll_producer : w_epoll_consumer;
			break;
		case S_PINGPONG:
			w[i].fn = w_pingpong;
			w[i].role = i;	/* 0 client, 1 echo */
			r->res[i].consumer = i == 0;
			break;
		case S_URING:
			w[i].fn = w_uring;
			break;
		default:
			die("bad scenario");
		}
	}

	pthread_barrierattr_init(&ba);
	pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
	pthread_barrier_init(&r->bar, &ba, r->nworkers + 1);

	if (cell->pinned) {
		sched_getaffinity(0, sizeof(old), &old);
		CPU_ZERO(&one);
		CPU_SET(0, &one);
		if (sched_setaffinity(0, sizeof(one), &one))
			DIE_ERRNO("sched_setaffinity");
	}
	for (i = 0; i < r->nworkers; i++) {
		if (procs) {
			pid[i] = fork();
			if (pid[i] < 0)
				DIE_ERRNO("fork");
			if (!pid[i]) {
				w[i].fn(&w[i]);
				_exit(0);
			}
		} else {
			pthread_attr_t at;

			pthread_attr_init(&at);
			pthread_attr_setstacksize(&at, 256 << 10);
			if (pthread_create(&tid[i], &at, thread_main, &w[i]))
				die("pthread_create failed");
			pthread_attr_destroy(&at);
		}
	}
	pthread_barrier_wait(&r->bar);
	t0 = now_ns();
	if (!procs) {
		pcpu0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
		pcsw0 = ctxsw(RUSAGE_SELF);
	}
	for (i = 0; i < r->nworkers; i++) {
		if (procs) {
			int st;

			if (waitpid(pid[i], &st, 0) < 0)
				DIE_ERRNO("waitpid");
			if (!WIFEXITED(st) || WEXITSTATUS(st))
				die("a worker process failed");
		} else {
			pthread_join(tid[i], NULL);
		}
	}
	t1 = now_ns();
	pcpu1 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
	pcsw1 = ctxsw(RUSAGE_SELF);
	if (cell->pinned)
		sched_setaffinity(0, sizeof(old), &old);

	for (i = 0; i < r->nworkers; i++) {
		if (r->res[i].consumer) {
			sum += r->res[i].sum;
			cnt += r->res[i].count;
		}
		cpu += r->res[i].cpu_ns;
		if (cell->scen != S_WAKEUP || r->res[i].consumer)
			csw += r->res[i].csw;
	}
	if (cnt != (uint64_t)r->total || sum != expected_sum(r))
		die("%s %s: received %llu of %ld messages, value sum %s: messages lost or duplicated",
		    xport_name[cell->xp], scen_name[cell->scen], (unsigned long long)cnt,
		    r->total, sum == expected_sum(r) ? "ok" : "WRONG");
	/*
	 * Threads: the whole process's CPU time and switches (io-wq workers
	 * too); processes: the sum of what each worker measured itself.
	 */
	if (!procs) {
		cpu = pcpu1 - pcpu0;
		if (cell->scen != S_WAKEUP)
			csw = pcsw1 - pcsw0;
	}

	for (i = 0; i < r->nchans; i++)
		chan_close(&r->chans[i]);
	pthread_barrier_destroy(&r->bar);

	s.secs = (t1 - t0) / 1e9;
	s.rate = r->total / s.secs;
	s.cpu_per_msg = (double)cpu / r->total;
	s.csw_per_msg = (double)csw / r->total;
	munmap(r, sizeof(*r));
	return s;
}

/* The null-syscall floor: getppid() in a loop. */
static struct sample run_null(long n)
{
	uint64_t t0, c0, t1, c1, csw0;
	struct sample s;
	long i;

	t0 = now_ns();
	c0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	csw0 = ctxsw(RUSAGE_THREAD);
	for (i = 0; i < n; i++)
		syscall(SYS_getppid);
	c1 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	t1 = now_ns();
	s.secs = (t1 - t0) / 1e9;
	s.rate = n / s.secs;
	s.cpu_per_msg = (double)(c1 - c0) / n;
	s.csw_per_msg = (double)(ctxsw(RUSAGE_THREAD) - csw0) / n;
	return s;
}

static struct sample run_any(const struct cell *c, long n)
{
	return c->scen == S_NULL ? run_null(n) : run_once(c, n);
}

/* ----------------------------------------------------------------- matrix */

static struct cell *cells;
static int ncells, acells;

static bool xport_ok(int xp, int scen)
{
	switch (scen) {
	case S_BATCH:
		return xp == X_MPMC || xp == X_SEQPACKET;
	case S_URING:
		return xp == X_MPMC || xp == X_PIPEPKT || xp == X_PIPE;
	case S_NULL:
		return xp == X_NULL;
	default:
		return xp != X_NULL;
	}
}

static void add_cell(struct cell c)
{
	int i;

	if (!xport_ok(c.xp, c.scen))
		return;
	for (i = 0; i < ncells; i++)
		if (!memcmp(&cells[i], &c, sizeof(c)))
			return;
	if (ncells == acells) {
		acells = acells ? acells * 2 : 64;
		cells = realloc(cells, acells * sizeof(*cells));
	}
	cells[ncells++] = c;
}

enum group {
	G_MN, G_PROCS, G_PINGPONG, G_EPOLL, G_BATCH, G_URING, G_SIZES, G_CAPS,
	G_PINNED, G_WAKEUP, G_NR
};

static const char *const group_name[G_NR] = {
	"mn", "procs", "pingpong", "epoll", "batch", "uring", "sizes", "caps",
	"pinned", "wakeup",
};

static const char *const group_help[G_NR] = {
	"P:C threads on one channel: 1:1 4:1 1:4 4:4 16:16, 64 B, capacity 64",
	"P:C processes (fork): 1:1 4:4",
	"round trips between two threads over two channels",
	"4 producers -> 64 channels -> 1 epoll consumer",
	"1:1 batches of 1/8/64 (MPMC_IOC_SEND/RECV vs sendmmsg/recvmmsg), capacity 1024",
	"1:1 io_uring at queue depth 1 and 32 (mpmc, pipe-pkt)",
	"1:1 with message sizes 8/64/512/4096",
	"1:1 with capacities 1/64/1024",
	"1:1 and ping-pong with every thread on CPU 0",
	"1 producer, 8 blocked receivers: receiver wakeups per message",
};

static const int pairs_quick[][2] = { {1, 1}, {4, 1}, {1, 4}, {4, 4}, {16, 16} };
static const int sizes_all[] = { 8, 64, 512, 4096 };
static const int caps_all[] = { 1, 64, 1024 };
static const int batches[] = { 1, 8, 64 };

static void build_matrix(unsigned groups, bool full)
{
	const int base_size = 64, base_cap = 64;
	int xp, i, j, k;

	/* The floor comes first: every other row is expressed in it. */
	add_cell((struct cell){ X_NULL, S_NULL, 1, 0, 0, 0, 1, 0, 0 });
	for (xp = 0; xp < X_NULL; xp++) {
		if (groups & (1u << G_MN)) {
			for (i = 0; i < 5; i++) {
				if (!full) {
					add_cell((struct cell){ xp, S_THREADS, pairs_quick[i][0],
						pairs_quick[i][1], base_size, base_cap, 1, 0, 0 });
					continue;
				}
				for (j = 0; j < 4; j++)
					for (k = 0; k < 3; k++)
						add_cell((struct cell){ xp, S_THREADS, pairs_quick[i][0],
							pairs_quick[i][1], sizes_all[j], caps_all[k], 1, 0, 0 });
			}
		}
		if (groups & (1u << G_PROCS)) {
			for (i = 0; i < 5; i++) {
				int p = pairs_quick[i][0], c = pairs_quick[i][1];

				if (!full && !(p == c && p <= 4))
					continue;
				for (j = 0; j < 4; j++) {
					if (!full && sizes_all[j] != base_size)
						continue;
					add_cell((struct cell){ xp, S_PROCS, p, c, sizes_all[j], base_cap, 1, 0, 0 });
				}
			}
		}
		if (groups & (1u << G_PINGPONG))
			for (j = 0; j < 4; j++)
				if (full || sizes_all[j] == base_size)
					add_cell((struct cell){ xp, S_PINGPONG, 1, 1, sizes_all[j], base_cap, 1, 0, 0 });
		if (groups & (1u << G_EPOLL))
			for (j = 0; j < 4; j++)
				if (full || sizes_all[j] == base_size)
					add_cell((struct cell){ xp, S_EPOLL, 4, 1, sizes_all[j], base_cap, 1, 0, 0 });
		if (groups & (1u << G_BATCH)) {
			for (i = 0; i < 3; i++) {
				add_cell((struct cell){ xp, S_BATCH, 1, 1, base_size, 1024, batches[i], 0, 0 });
				if (full) {
					add_cell((struct cell){ xp, S_BATCH, 1, 1, base_size, 64, batches[i], 0, 0 });
					add_cell((struct cell){ xp, S_BATCH, 4, 4, base_size, 1024, batches[i], 0, 0 });
					add_cell((struct cell){ xp, S_BATCH, 1, 1, 512, 1024, batches[i], 0, 0 });
				}
			}
		}
		if (groups & (1u << G_URING)) {
			static const int qds[] = { 1, 8, 32 };

			for (i = 0; i < 3; i++) {
				if (!full && qds[i] == 8)
					continue;
				if (!full && xp == X_PIPE)
					continue;
				for (j = 0; j < 4; j++)
					if (full || sizes_all[j] == base_size)
						add_cell((struct cell){ xp, S_URING, 1, 1, sizes_all[j],
							base_cap, 1, qds[i], 0 });
			}
		}
		if (groups & (1u << G_SIZES))
			for (j = 0; j < 4; j++)
				add_cell((struct cell){ xp, S_THREADS, 1, 1, sizes_all[j], base_cap, 1, 0, 0 });
		if (groups & (1u << G_CAPS))
			for (k = 0; k < 3; k++)
				add_cell((struct cell){ xp, S_THREADS, 1, 1, base_size, caps_all[k], 1, 0, 0 });
		if (groups & (1u << G_PINNED)) {
			add_cell((struct cell){ xp, S_THREADS, 1, 1, base_size, base_cap, 1, 0, 1 });
			add_cell((struct cell){ xp, S_PINGPONG, 1, 1, base_size, base_cap, 1, 0, 1 });
			if (full) {
				for (i = 1; i < 5; i++)
					add_cell((struct cell){ xp, S_THREADS, pairs_quick[i][0],
						pairs_quick[i][1], base_size, base_cap, 1, 0, 1 });
				add_cell((struct cell){ xp, S_PROCS, 1, 1, base_size, base_cap, 1, 0, 1 });
			}
		}
		if (groups & (1u << G_WAKEUP))
			add_cell((struct cell){ xp, S_WAKEUP, 1, WAKEUP_RX, base_size, base_cap, 1, 0, 0 });
	}
}

/* Comma-separated list filters; an empty list lets everything through. */
struct intlist { int n; int v[32]; };

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

static bool in_list(const struct intlist *l, int v)
{
	int i;

	if (!l->n)
		return true;
	for (i = 0; i < l->n; i++)
		if (l->v[i] == v)
			return true;
	return false;
}

static unsigned parse_names(const char *s, const char *const *names, int n, const char *what)
{
	char *dup = strdup(s), *tok, *save;
	unsigned mask = 0;
	int i;

	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "all")) {
			mask |= (1u << n) - 1;
			continue;
		}
		for (i = 0; i < n; i++)
			if (!strcmp(tok, names[i]))
				break;
		if (i == n)
			die("unknown %s '%s'", what, tok);
		mask |= 1u << i;
	}
	free(dup);
	return mask;
}

static void usage(FILE *f)
{
	int i;

	fprintf(f,
"Usage: mpmc-bench [OPTIONS]\n"
"Runs a matrix of message-passing benchmarks and writes CSV:\n"
"  transport,scenario,producers,consumers,msg_size,capacity,batch,qd,pinned,reps,\n"
"  median_msgs_per_s,min,max,null_syscalls_per_msg,ctxsw_per_msg\n"
"(see the top of tools/mpmc-bench.c for what each column means)\n\n"
"  --full               the full matrix (default: the quick one, ~10 min in TCG)\n"
"  -g, --groups LIST    groups to run (default all): see below\n"
"  -t, --transports LIST  mpmc,pipe-pkt,pipe,seqpacket,mqueue (default all)\n"
"  --pairs LIST         keep only cells with these P:C, e.g. 1:1,4:4\n"
"  --sizes LIST         keep only cells with these message sizes\n"
"  --caps LIST          keep only cells with these capacities\n"
"  --batches LIST       keep only cells with these batch sizes (1 = none)\n"
"  --qds LIST           keep only cells with these io_uring depths (0 = none)\n"
"  -r, --reps N         timed repetitions per cell (default 5)\n"
"  -T, --time-ms MS     target wall time of one repetition (default 300;\n"
"                       --full: 400)\n"
"  --gap-us US          wakeup: producer pause between messages (default 1000)\n"
"  --wakeup-msgs N      wakeup: messages per repetition (default 150)\n"
"  -o, --out FILE       write the CSV to FILE (default stdout)\n"
"  --pin                run every selected cell with all threads on CPU 0\n"
"  -l, --list           print the cells that would run, then exit\n"
"  -q, --quiet          no progress on stderr\n"
"  -h, --help           this text\n\nGroups:\n");
	for (i = 0; i < G_NR; i++)
		fprintf(f, "  %-9s %s\n", group_name[i], group_help[i]);
}

static void cell_desc(const struct cell *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s %d:%d %dB cap%d%s%.0d%s%.0d%s", xport_name[c->xp],
		 scen_name[c->scen], c->prod, c->cons, c->size, c->cap,
		 c->batch > 1 ? " batch" : "", c->batch > 1 ? c->batch : 0,
		 c->qd ? " qd" : "", c->qd, c->pinned ? " pinned" : "");
}

struct cellrun {
	const struct cell *c;
	long n;
	double rate[64], cpu[64], csw[64], nsc[64];
};

static bool same_config(const struct cell *a, const struct cell *b)
{
	struct cell x = *a, y = *b;

	x.xp = y.xp = 0;
	return !memcmp(&x, &y, sizeof(x));
}

/*
 * Warm up and find the message count that takes about @time_ms: double
 * (x8) until a run takes an eighth of it, then scale linearly.
 */
static long calibrate(const struct cell *c, int time_ms, int wakeup_msgs)
{
	/* Several times what the channels hold, and a few per worker. */
	long min_n = 4L * c->cap > 256 ? 4L * c->cap : 256;
	struct sample s;
	double best;
	long n;
	int k;

	if (c->prod + c->cons > 0 && min_n < 16L * (c->prod + c->cons))
		min_n = 16L * (c->prod + c->cons);
	if (c->scen == S_WAKEUP) {
		run_any(c, wakeup_msgs / 4 > 8 ? wakeup_msgs / 4 : 8);
		return wakeup_msgs;
	}
	n = c->scen == S_NULL ? 20000 : 400;
	for (k = 0; k < 8; k++) {
		s = run_any(c, n);
		if (s.secs >= time_ms / 1e3 / 8)
			break;
		n *= 8;
	}
	/*
	 * Twice more at half the final size (the first runs are cold), and
	 * the faster of the two decides: a stall of the host (other guests)
	 * must not shrink the count to a burst that fits in the channel.
	 */
	n = (long)(n * (time_ms / 1e3) / s.secs);
	if (n < min_n)
		n = min_n;
	n /= 2;
	best = run_any(c, n).secs;
	s = run_any(c, n);
	if (s.secs < best)
		best = s.secs;
	n = (long)(n * (time_ms / 1e3) / best);
	return n < min_n ? min_n : n;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "full", no_argument, NULL, 'F' },
		{ "groups", required_argument, NULL, 'g' },
		{ "transports", required_argument, NULL, 't' },
		{ "pairs", required_argument, NULL, 'P' },
		{ "sizes", required_argument, NULL, 'S' },
		{ "caps", required_argument, NULL, 'C' },
		{ "batches", required_argument, NULL, 'B' },
		{ "qds", required_argument, NULL, 'Q' },
		{ "reps", required_argument, NULL, 'r' },
		{ "time-ms", required_argument, NULL, 'T' },
		{ "gap-us", required_argument, NULL, 'G' },
		{ "wakeup-msgs", required_argument, NULL, 'W' },
		{ "out", required_argument, NULL, 'o' },
		{ "list", no_argument, NULL, 'l' },
		{ "pin", no_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	unsigned groups = (1u << G_NR) - 1, xports = (1u << X_NULL) - 1;
	struct intlist sizes = { 0 }, caps = { 0 }, pairs_p = { 0 }, pairs_c = { 0 };
	struct intlist batches_l = { 0 }, qds_l = { 0 };
	bool full = false, list = false, pin = false;
	int reps = 5, time_ms = 0, wakeup_msgs = 150, opt, i, j;
	const char *out = NULL;
	double null_cost = 0;
	long null_n = 20000;
	FILE *csv = stdout;
	struct utsname un;
	uint64_t start;

	while ((opt = getopt_long(argc, argv, "g:t:r:T:o:lqh", opts, NULL)) != -1) {
		switch (opt) {
		case 'F': full = true; break;
		case 'g': groups = parse_names(optarg, group_name, G_NR, "group"); break;
		case 't': xports = parse_names(optarg, xport_name, X_NULL, "transport"); break;
		case 'S': parse_ints(&sizes, optarg); break;
		case 'C': parse_ints(&caps, optarg); break;
		case 'B': parse_ints(&batches_l, optarg); break;
		case 'Q': parse_ints(&qds_l, optarg); break;
		case 'P': {
			char *dup = strdup(optarg), *tok, *save;

			pairs_p.n = pairs_c.n = 0;
			for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if (pairs_p.n == 32 || sscanf(tok, "%d:%d", &pairs_p.v[pairs_p.n],
							      &pairs_c.v[pairs_c.n]) != 2)
					die("--pairs wants P:C[,P:C...]");
				pairs_p.n++;
				pairs_c.n++;
			}
			free(dup);
			break;
		}
		case 'r': reps = atoi(optarg); break;
		case 'T': time_ms = atoi(optarg); break;
		case 'G': gap_ns = strtoull(optarg, NULL, 10) * 1000; break;
		case 'W': wakeup_msgs = atoi(optarg); break;
		case 'o': out = optarg; break;
		case 'l': list = true; break;
		case 'p': pin = true; break;
		case 'q': verbose = 0; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (reps < 1 || reps > 64)
		die("--reps wants 1..64");
	if (!time_ms)
		time_ms = full ? 400 : 300;

	build_matrix(groups, full);
	/* Apply the filters (the floor always stays). */
	for (i = j = 0; i < ncells; i++) {
		struct cell *c = &cells[i];
		bool keep = c->scen == S_NULL;

		if (!keep && (xports & (1u << c->xp)) && in_list(&sizes, c->size) &&
		    in_list(&caps, c->cap) && in_list(&batches_l, c->batch) &&
		    in_list(&qds_l, c->qd)) {
			keep = !pairs_p.n;
			for (int k = 0; k < pairs_p.n; k++)
				if (pairs_p.v[k] == c->prod && pairs_c.v[k] == c->cons)
					keep = true;
		}
		if (keep) {
			if (pin && c->scen != S_NULL)
				c->pinned = 1;
			cells[j++] = *c;
		}
	}
	ncells = j;
	/* Put the transports of one configuration next to each other. */
	{
		struct cell *sorted = calloc(ncells ? ncells : 1, sizeof(*sorted));
		bool *taken = calloc(ncells ? ncells : 1, sizeof(*taken));
		int n = 0;

		for (i = 0; i < ncells; i++) {
			if (taken[i])
				continue;
			for (j = i; j < ncells; j++) {
				if (!taken[j] && same_config(&cells[i], &cells[j])) {
					sorted[n++] = cells[j];
					taken[j] = true;
				}
			}
		}
		memcpy(cells, sorted, ncells * sizeof(*cells));
		free(sorted);
		free(taken);
	}

	if (list) {
		char d[128];

		for (i = 0; i < ncells; i++) {
			cell_desc(&cells[i], d, sizeof(d));
			printf("%s\n", d);
		}
		printf("%d cells\n", ncells);
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
	if (getenv("MPMC_BENCH_DEV") && *getenv("MPMC_BENCH_DEV"))
		mpmc_dev = getenv("MPMC_BENCH_DEV");
	if (out) {
		csv = fopen(out, "w");
		if (!csv)
			die("%s: %s", out, strerror(errno));
	}
	uname(&un);
	note("%d cells, %d reps, ~%d ms each, kernel %s, %ld CPUs", ncells, reps, time_ms,
	     un.release, sysconf(_SC_NPROCESSORS_ONLN));
	fprintf(csv, "transport,scenario,producers,consumers,msg_size,capacity,batch,qd,pinned,"
		"reps,median_msgs_per_s,min,max,null_syscalls_per_msg,ctxsw_per_msg\n");
	fflush(csv);

	start = now_ns();
	for (i = 0; i < ncells; i = j) {
		struct cellrun cr[X_NR];
		double nullc[64];
		int g, k, m;

		/* A group: the consecutive cells that differ only in transport. */
		for (j = i + 1; j < ncells && same_config(&cells[i], &cells[j]); j++)
			;
		g = j - i;
		for (m = 0; m < g; m++) {
			cr[m].c = &cells[i + m];
			cr[m].n = calibrate(cr[m].c, time_ms, wakeup_msgs);
		}
		/*
		 * Repetitions round-robin over the transports, each round with its
		 * own null-syscall measurement: a change in the host's load
		 * (other guests) hits every transport of the group alike.
		 */
		for (k = 0; k < reps; k++) {
			if (cells[i].scen != S_NULL)
				nullc[k] = run_null(null_n).cpu_per_msg;
			for (m = 0; m < g; m++) {
				struct sample s = run_any(cr[m].c, cr[m].n);

				cr[m].rate[k] = s.rate;
				cr[m].cpu[k] = s.cpu_per_msg;
				cr[m].csw[k] = s.csw_per_msg;
				if (cells[i].scen == S_NULL) {
					nullc[k] = s.cpu_per_msg;
					cr[m].nsc[k] = 1;
				} else {
					cr[m].nsc[k] = s.cpu_per_msg / nullc[k];
				}
			}
		}
		if (cells[i].scen == S_NULL) {
			null_cost = median(nullc, reps);
			/* Later rounds measure the floor with ~time_ms / 4 of calls. */
			null_n = cr[0].n / 4 > 1000 ? cr[0].n / 4 : 1000;
		}
		for (m = 0; m < g; m++) {
			const struct cell *c = cr[m].c;
			double med, lo, hi, nsc, csw;
			char d[128];

			med = median(cr[m].rate, reps);
			lo = hi = cr[m].rate[0];
			for (k = 1; k < reps; k++) {
				lo = cr[m].rate[k] < lo ? cr[m].rate[k] : lo;
				hi = cr[m].rate[k] > hi ? cr[m].rate[k] : hi;
			}
			nsc = median(cr[m].nsc, reps);
			csw = median(cr[m].csw, reps);
			fprintf(csv, "%s,%s,%d,%d,%d,%d,%d,%d,%d,%d,%.0f,%.0f,%.0f,%.3f,%.3f\n",
				xport_name[c->xp], scen_name[c->scen], c->prod, c->cons, c->size,
				c->cap, c->batch, c->qd, c->pinned, reps, med, lo, hi, nsc, csw);
			cell_desc(c, d, sizeof(d));
			note("[%d/%d %.0fs] %-40s n=%-7ld %10.0f/s (%.0f..%.0f) %7.2f nsc/msg %5.2f csw/msg",
			     i + m + 1, ncells, (now_ns() - start) / 1e9, d, cr[m].n, med, lo, hi,
			     nsc, csw);
		}
		fflush(csv);
	}
	(void)null_cost;
	if (csv != stdout)
		fclose(csv);
	note("done in %.0f s", (now_ns() - start) / 1e9);
	return 0;
}
