// SPDX-License-Identifier: GPL-2.0
/*
 * A seeded, time-bounded syscall fuzzer for /dev/mpmc. Several threads
 * hammer every file operation and ioctl on a few shared channels with
 * random and hostile arguments: bad pointers (NULL, kernel, non-canonical,
 * PROT_NONE, buffers that cross into a guard page, memory another thread
 * flips to PROT_NONE), huge and zero sizes, reserved bits and bad flags,
 * closed and reused fds, shutdowns, resizes mid-flight, endpoint churn,
 * dup/dup2/close races, SCM_RIGHTS, O_ASYNC, poll/epoll, io_uring (plain,
 * forced async, fixed files and buffers, cancels, ring teardown with
 * requests in flight), AIO, splice/sendfile/mmap/lseek, fdinfo and fork.
 * Configurations include capacity 0 (rendezvous) and random flags, the
 * known ones (MPMC_CONFIG_OVERWRITE, MPMC_CONFIG_THROUGHPUT, together too)
 * and unknown bits; batches include MPMC_RECV_PEEK, other flag bits and
 * priorities in and out of 0..MPMC_PRIO_MAX-1.
 * Every thread gets a timer signal every few milliseconds (no SA_RESTART),
 * so blocking calls end with EINTR and signal paths get exercised too.
 *
 * It asserts that the process survives, that every channel's stats stay
 * coherent (received + queued + dropped <= sent, reserved fields zero, a
 * configuration that reads back valid: no unknown flag, no capacity 0 in
 * overwrite mode), and that a final round trip works. The kernel's own detectors
 * (KASAN, lockdep, UBSAN, KCSAN, kmemleak on the debug kernels; any
 * warning anywhere) are checked by tools/vm-run.
 *
 * Environment: MPMC_FUZZ_SECONDS (default 20, at most 240), MPMC_FUZZ_SEED
 * (default: from the clock), MPMC_FUZZ_THREADS (default 6, at most 16).
 * The seed and the number of calls made are printed; a failure can be
 * replayed (modulo scheduling) with the same seed.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <liburing.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

#define NSLOTS		24
#define MAX_THREADS	16
#define GOOD_SIZE	(512 << 10)	/* per thread: 2 x max_msg_size + slack */
#define BIGIOV		1100		/* > UIO_MAXIOV */
#define MAX_INFLIGHT	24
#define NERRS		9

/* ------------------------------------------------------------------ rng */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 2685821657736338717ULL;
}

static uint32_t rn(struct rng *r, uint32_t n)
{
	return n ? rnd(r) % n : 0;
}

static bool one_in(struct rng *r, uint32_t n)
{
	return rn(r, n) == 0;
}

/* --------------------------------------------------------- shared state */

static int slots[NSLOTS];
static volatile int stop;
static char *flip;		/* toggled between RW and PROT_NONE */
static char *guard;		/* one RW page, then a PROT_NONE page */
static char *none;		/* a PROT_NONE page */
static long page_size;
static unsigned long long incoherent;	/* stats snapshots that made no sense */
static char incoherent_why[256];

struct worker {
	pthread_t thread;
	int id;
	struct rng rng;
	char *good;
	struct iovec big[BIGIOV];
	struct io_uring ring;
	bool ring_ok;
	int inflight;
	int epfd;
	int sock[2];
	int pipe[2];
	aio_context_t aio;
	struct iocb iocbs[8];
	unsigned long long calls;
	unsigned long long children;
	unsigned long long moved;	/* messages written or read */
	unsigned long long peeked;	/* messages copied by peeks */
	unsigned long long prio_sent;	/* sent at a priority > 0 */
	unsigned long long configs[3];	/* see count_config() */
	unsigned long long errs[NERRS];	/* read/write results, see tally() */
};

static const char *const err_names[NERRS] = {
	"moved", "EOF/0", "EFAULT", "EBADF", "EAGAIN", "EPIPE", "EMSGSIZE",
	"EINTR", "other",
};

/* Count a read/write result by kind; returns 1 if a message moved. */
static int tally(struct worker *w, ssize_t ret)
{
	/* The errno of each kind from 2 ("EFAULT") on; 8 is any other. */
	static const int kind_errno[] = {
		0, 0, EFAULT, EBADF, EAGAIN, EPIPE, EMSGSIZE, EINTR,
	};
	int k;

	if (ret > 0)
		k = 0;
	else if (ret == 0)
		k = 1;
	else
		for (k = 2; k < 8 && errno != kind_errno[k]; k++)
			;
	w->errs[k]++;
	return !k;
}

static struct worker workers[MAX_THREADS];
static int nworkers;

static void noop_handler(int sig)
{
	(void)sig;
}

static int get_slot(struct rng *r)
{
	/* Mostly a live slot; sometimes a closed or a random number. */
	if (one_in(r, 64))
		return one_in(r, 2) ? -1 : (int)rn(r, 1024);
	return __atomic_load_n(&slots[rn(r, NSLOTS)], __ATOMIC_RELAXED);
}

static void put_slot(struct rng *r, int fd)
{
	int old;

	if (fd < 0)
		return;
	old = __atomic_exchange_n(&slots[rn(r, NSLOTS)], fd, __ATOMIC_RELAXED);
	if (old >= 0)
		close(old);
}

static void note_incoherent(const char *fmt, unsigned long long a,
			    unsigned long long b, unsigned long long c)
{
	if (__atomic_fetch_add(&incoherent, 1, __ATOMIC_RELAXED) == 0)
		snprintf(incoherent_why, sizeof(incoherent_why), fmt, a, b, c);
}

#define KNOWN_FLAGS	(MPMC_CONFIG_OVERWRITE | MPMC_CONFIG_THROUGHPUT | \
			 MPMC_CONFIG_RING)

/* What GET_CONFIG returns was valid to set: a consistent snapshot. */
static void check_config(int fd)
{
	struct mpmc_config c;
	int i;

	if (ioctl(fd, MPMC_IOC_GET_CONFIG, &c))
		return;
	if (c.flags & ~KNOWN_FLAGS ||
	    (!c.capacity && c.flags & MPMC_CONFIG_OVERWRITE) || !c.max_msg_size ||
	    (c.flags & MPMC_CONFIG_RING &&
	     (c.capacity & (c.capacity - 1) || !c.capacity ||
	      c.flags & MPMC_CONFIG_OVERWRITE)))
		note_incoherent("config: capacity %llu max_msg_size %llu flags %#llx",
				c.capacity, c.max_msg_size, c.flags);
	for (i = 0; i < 5; i++)
		if (c.reserved[i])
			note_incoherent("config: reserved[%llu] %#llx, capacity %llu",
					i, c.reserved[i], c.capacity);
}

static void check_stats(int fd)
{
	struct mpmc_stats st;

	if (ioctl(fd, MPMC_IOC_GET_STATS, &st))
		return;
	if (st.total_received + st.queued_msgs + st.total_dropped >
	    st.total_sent)
		note_incoherent("received %llu + queued %llu > sent %llu",
				st.total_received, st.queued_msgs, st.total_sent);
	if (!st.queued_msgs != !st.queued_bytes ||
	    st.queued_bytes > (unsigned long long)st.queued_msgs * st.max_msg_size)
		note_incoherent("queued %llu msgs %llu bytes, max_msg_size %llu",
				st.queued_msgs, st.queued_bytes, st.max_msg_size);
	if (st.shutdown & ~MPMC_SHUT_RDWR ||
	    st.reserved[0] || st.reserved[1] || st.reserved[2])
		note_incoherent("shutdown %llu reserved %llu %llu (or [1])",
				st.shutdown, st.reserved[0], st.reserved[2]);
	/* Capacity 0 is a rendezvous channel. */
	if (!st.max_msg_size)
		note_incoherent("capacity %llu max_msg_size %llu %llu",
				st.capacity, st.max_msg_size, 0);
	check_config(fd);
}

/* ------------------------------------------------------------ arguments */

/* A length: mostly sane, sometimes zero, at a limit or absurd. */
static size_t rand_len(struct rng *r)
{
	switch (rn(r, 16)) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return 4096;
	case 3:
		return 4097;
	case 4:
		return 65536;
	case 5:
		return 65537;
	case 6:
		return (size_t)1 << (20 + rn(r, 12));
	case 7:
		return rn(r, 2) ? SIZE_MAX : (size_t)SSIZE_MAX + 1;
	case 8:
	case 9:
		return 1 + rn(r, 65536);
	default:
		return 1 + rn(r, 256);
	}
}

/*
 * A buffer of @len bytes: mostly inside this thread's good area (which has
 * room for len up to 64 KiB past any start it hands out; longer lengths
 * end in a fault, never in someone else's memory), else hostile.
 */
static void *rand_ptr(struct worker *w, size_t len)
{
	struct rng *r = &w->rng;
	size_t off;

	/* Hostile one time in four. */
	if (rn(r, 4))
		return w->good + rn(r, GOOD_SIZE / 2);
	switch (rn(r, 10)) {
	case 0:
		return NULL;
	case 1:
		return (void *)(uintptr_t)(1 + rn(r, 4095));
	case 2:
		return (void *)0xffff888000000000ULL;
	case 3:
		return (void *)0x0000800000000000ULL;
	case 4:
		return (void *)~0ULL;
	case 5:
		return none + rn(r, page_size);
	case 6:
	case 7:
		off = len < (size_t)page_size ? len : (size_t)page_size;
		return guard + page_size - off / 2 - 1;
	case 8:
		return flip + rn(r, 4096);
	default:
		off = rn(r, GOOD_SIZE / 2);
		return w->good + off;
	}
}

static int rand_iov(struct worker *w, struct iovec *iov, int max)
{
	struct rng *r = &w->rng;
	int i, n = rn(r, max + 1);

	for (i = 0; i < n; i++) {
		iov[i].iov_len = one_in(r, 8) ? rand_len(r) : rn(r, 2048);
		iov[i].iov_base = rand_ptr(w, iov[i].iov_len);
	}
	return n;
}

static struct iovec *rand_iov_any(struct worker *w, int *cnt)
{
	struct rng *r = &w->rng;

	if (one_in(r, 16)) {
		int i, n = one_in(r, 2) ? 1024 : BIGIOV;

		for (i = 0; i < n; i++) {
			w->big[i].iov_base = w->good + i * 16;
			w->big[i].iov_len = one_in(r, 4) ? 0 : 1 + rn(r, 16);
		}
		*cnt = n;
		return w->big;
	}
	*cnt = rand_iov(w, w->big, 12);
	if (one_in(r, 32))
		*cnt = -1 - (int)rn(r, 2);
	return w->big;
}

/* A known ioctl command, sometimes mangled in size or direction. */
static unsigned long rand_cmd(struct rng *r)
{
	static const unsigned long cmds[] = {
		MPMC_IOC_GET_CONFIG, MPMC_IOC_SET_CONFIG, MPMC_IOC_GET_STATS,
		MPMC_IOC_SHUTDOWN, MPMC_IOC_NEW_ENDPOINT, MPMC_IOC_SEND,
		MPMC_IOC_RECV, FIONREAD, FIONBIO, FIOASYNC, FIOCLEX, FIONCLEX,
		TCGETS,
	};
	unsigned long c = cmds[rn(r, sizeof(cmds) / sizeof(cmds[0]))];

	switch (rn(r, 8)) {
	case 0:
		return _IOC(rn(r, 4), MPMC_IOC_MAGIC, rn(r, 16), rn(r, 128));
	case 1:
		return c ^ (1UL << rn(r, 32));
	case 2:
		return rnd(r);
	default:
		return c;
	}
}

/* Config flags: mostly known ones (any mix), sometimes unknown bits. */
static uint32_t rand_flags(struct rng *r)
{
	switch (rn(r, 8)) {
	case 0:
		return 1U << rn(r, 32);
	case 1:
		return rnd(r);
	case 2:
		return KNOWN_FLAGS + 1 + rn(r, 8);
	default:
		return rn(r, KNOWN_FLAGS + 1);
	}
}

/* A priority: mostly in range, sometimes just past it or absurd. */
static uint32_t rand_prio(struct rng *r)
{
	/* One bad priority fails the whole batch: not too often. */
	switch (rn(r, 64)) {
	case 0:
		return MPMC_PRIO_MAX + rn(r, 2);
	case 1:
		return one_in(r, 2) ? UINT32_MAX : 1U << rn(r, 32);
	case 2 ... 27:
		return 0;
	default:
		return rn(r, MPMC_PRIO_MAX);
	}
}

static void rand_config(struct rng *r, struct mpmc_config *c)
{
	static const uint32_t caps[] = {
		0, 1, 2, 3, 8, 64, 100, 65536, 65537, UINT32_MAX, 1U << 31,
	};
	static const uint32_t sizes[] = {
		0, 1, 7, 64, 128, 4096, 8192, 65536, 65537, UINT32_MAX, 1U << 31,
	};

	memset(c, 0, sizeof(*c));
	c->capacity = one_in(r, 3) ? rn(r, 129) : caps[rn(r, 11)];
	c->max_msg_size = one_in(r, 3) ? 1 + rn(r, 8192) : sizes[rn(r, 11)];
	c->flags = rand_flags(r);
	if (one_in(r, 10))
		c->reserved[rn(r, 5)] = 1U << rn(r, 32);
}

static int64_t rand_timeout(struct rng *r)
{
	static const int64_t t[] = {
		-1, 0, 0, 1, 1000, 1000000, 3000000, -2, INT64_MIN, INT64_MAX,
	};

	return t[rn(r, 10)];
}

/* A batch in the thread's good area, hostile now and then. */
static void *rand_batch(struct worker *w, bool send)
{
	struct rng *r = &w->rng;
	struct mpmc_batch *b = (struct mpmc_batch *)(w->good + GOOD_SIZE - 64);
	struct mpmc_msgvec *v = (struct mpmc_msgvec *)(w->good + GOOD_SIZE / 2);
	uint32_t i, n;

	if (one_in(r, 20))
		return rand_ptr(w, sizeof(*b));
	n = one_in(r, 10) ? rn(r, 1100) : 1 + rn(r, 8);
	memset(b, 0, sizeof(*b));
	b->count = n;
	b->timeout_ns = rand_timeout(r);
	b->vec = (uintptr_t)v;
	/* Peek (a SEND gets EINVAL for it), or any other bit. */
	if (one_in(r, send ? 16 : 4))
		b->flags = MPMC_RECV_PEEK;
	if (one_in(r, 20))
		b->flags |= 1U << rn(r, 32);
	if (one_in(r, 20))
		b->vec = (uintptr_t)rand_ptr(w, n * sizeof(*v));
	/* vec must not reach past the good area: n <= 1100 entries of 16. */
	for (i = 0; i < n && i < 1100; i++) {
		v[i].len = send ? 1 + rn(r, 512) : rn(r, 8192);
		if (one_in(r, 16))
			v[i].len = rand_len(r);
		v[i].buf = (uintptr_t)rand_ptr(w, v[i].len);
		/* In range or not; a receive ignores it on input. */
		v[i].prio = n > 8 && !one_in(r, 64) ? 0 : rand_prio(r);
	}
	return b;
}

/* --------------------------------------------------------------- io_uring */

static void ring_reap(struct worker *w, bool wait)
{
	struct __kernel_timespec ts = { .tv_nsec = 2000000 };
	struct io_uring_cqe *cqe;

	if (!w->ring_ok)
		return;
	for (;;) {
		int ret = wait && w->inflight ?
			io_uring_wait_cqe_timeout(&w->ring, &cqe, &ts) :
			io_uring_peek_cqe(&w->ring, &cqe);

		if (ret)
			break;
		if (!(cqe->flags & IORING_CQE_F_MORE) && w->inflight)
			w->inflight--;
		io_uring_cqe_seen(&w->ring, cqe);
		wait = false;
	}
}

static void ring_setup(struct worker *w)
{
	struct iovec iov = { w->good, 65536 };

	w->ring_ok = !io_uring_queue_init(64, &w->ring, 0);
	w->inflight = 0;
	if (w->ring_ok)
		io_uring_register_buffers(&w->ring, &iov, 1);
}

static void op_uring(struct worker *w)
{
	struct rng *r = &w->rng;
	struct io_uring_sqe *sqe;
	int i, n = 1 + rn(r, 4);

	if (!w->ring_ok || one_in(r, 200)) {
		if (w->ring_ok)
			io_uring_queue_exit(&w->ring);
		ring_setup(w);
		if (!w->ring_ok)
			return;
	}
	if (one_in(r, 30)) {
		int fds[8];

		for (i = 0; i < 8; i++)
			fds[i] = get_slot(r);
		io_uring_unregister_files(&w->ring);
		io_uring_register_files(&w->ring, fds, 8);
	}
	for (i = 0; i < n && w->inflight < MAX_INFLIGHT; i++) {
		int fd = get_slot(r);
		size_t len = one_in(r, 8) ? rand_len(r) : rn(r, 4096);
		void *buf = rand_ptr(w, len);
		int iovcnt;

		sqe = io_uring_get_sqe(&w->ring);
		if (!sqe)
			break;
		switch (rn(r, 12)) {
		case 0:
		case 1:
			io_uring_prep_read(sqe, fd, buf, len, -1);
			break;
		case 2:
		case 3:
			io_uring_prep_write(sqe, fd, buf, len, -1);
			break;
		case 4:
			iovcnt = rand_iov(w, w->big + 512, 4);
			io_uring_prep_readv(sqe, fd, w->big + 512, iovcnt, -1);
			break;
		case 5:
			iovcnt = rand_iov(w, w->big + 512, 4);
			io_uring_prep_writev(sqe, fd, w->big + 512, iovcnt, -1);
			break;
		case 6:
			io_uring_prep_poll_add(sqe, fd, POLLIN | POLLOUT);
			break;
		case 7:
			io_uring_prep_poll_multishot(sqe, fd, POLLIN);
			break;
		case 8:
			io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
			break;
		case 9:
			io_uring_prep_read_fixed(sqe, fd, w->good, rn(r, 65536), -1, 0);
			break;
		case 10:
			io_uring_prep_write_fixed(sqe, fd, w->good, 1 + rn(r, 4096), -1, 0);
			break;
		default:
			io_uring_prep_read(sqe, rn(r, 8), buf, len, -1);
			sqe->flags |= IOSQE_FIXED_FILE;
			break;
		}
		if (one_in(r, 10))
			sqe->flags |= IOSQE_ASYNC;
		sqe->user_data = rnd(r);
		w->inflight++;
	}
	io_uring_submit(&w->ring);
	ring_reap(w, one_in(r, 4));
	if (w->inflight >= MAX_INFLIGHT) {
		sqe = io_uring_get_sqe(&w->ring);
		if (sqe) {
			io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
			w->inflight++;
			io_uring_submit(&w->ring);
		}
		ring_reap(w, true);
		/* Requests parked on channels nobody writes to stay. */
		if (w->inflight >= MAX_INFLIGHT) {
			io_uring_queue_exit(&w->ring);
			ring_setup(w);
		}
	}
}

/* -------------------------------------------------------------------- aio */

static void op_aio(struct worker *w)
{
	struct rng *r = &w->rng;
	struct iocb *cbs[8];
	struct io_event ev[8];
	struct timespec ts = { 0, 0 };
	int i, n = 1 + rn(r, 4);

	if (!w->aio || one_in(r, 100)) {
		if (w->aio)
			syscall(SYS_io_destroy, w->aio);
		w->aio = 0;
		if (syscall(SYS_io_setup, 16, &w->aio))
			w->aio = 0;
		if (!w->aio)
			return;
	}
	for (i = 0; i < n; i++) {
		struct iocb *cb = &w->iocbs[i];
		size_t len = one_in(r, 8) ? rand_len(r) : rn(r, 4096);

		memset(cb, 0, sizeof(*cb));
		cb->aio_fildes = get_slot(r);
		cb->aio_lio_opcode = rn(r, 2) ? IOCB_CMD_PREAD : IOCB_CMD_PWRITE;
		if (one_in(r, 8))
			cb->aio_lio_opcode = IOCB_CMD_POLL;
		cb->aio_buf = (uintptr_t)rand_ptr(w, len);
		cb->aio_nbytes = len;
		cb->aio_buf = cb->aio_lio_opcode == IOCB_CMD_POLL ?
			POLLIN | POLLOUT : cb->aio_buf;
		cb->aio_rw_flags = one_in(r, 2) ? RWF_NOWAIT : 0;
		cb->aio_offset = one_in(r, 4) ? rn(r, 100) : 0;
		cbs[i] = cb;
	}
	syscall(SYS_io_submit, w->aio, n, cbs);
	syscall(SYS_io_getevents, w->aio, 0, 8, ev, &ts);
}

/* ------------------------------------------------------------------- fork */

/* In a forked child: raw syscalls only, no allocation. */
static void child_run(struct worker *w)
{
	struct itimerval it = { { 0, 3000 }, { 0, 3000 } };
	struct rng *r = &w->rng;
	int i;

	setitimer(ITIMER_REAL, &it, NULL);
	for (i = 0; i < 40; i++) {
		int fd = get_slot(r);
		size_t len = rn(r, 4096);
		void *buf = rand_ptr(w, len);
		struct mpmc_endpoint ep = { .roles = 1 + rn(r, 3), .flags = O_NONBLOCK };
		int efd;

		switch (rn(r, 7)) {
		case 0:
			write(fd, buf, len);
			break;
		case 1:
			read(fd, buf, len);
			break;
		case 2:
			ioctl(fd, MPMC_IOC_RECV, rand_batch(w, false));
			break;
		case 3:
			ioctl(fd, MPMC_IOC_SEND, rand_batch(w, true));
			break;
		case 4:
			efd = ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &ep);
			if (efd >= 0 && rn(r, 2))
				close(efd);
			break;
		case 5:
			close(fd);
			break;
		default:
			if (one_in(r, 20))
				ioctl(fd, MPMC_IOC_SHUTDOWN, rn(r, 4));
			break;
		}
	}
	if (one_in(r, 4))
		raise(SIGKILL);
	_exit(0);
}

static void op_fork(struct worker *w)
{
	struct rng *r = &w->rng;
	int i, status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return;
	if (!pid) {
		w->rng.s ^= (uint64_t)getpid() << 32;
		child_run(w);
	}
	w->children++;
	for (i = 0; i < (int)rn(r, 40); i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(1000);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/* ---------------------------------------------------------------- the ops */

static void op_scm(struct worker *w, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char c = 'x';
	struct iovec iov = { &c, 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	int got;

	if (w->sock[0] < 0)
		return;
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(w->sock[0], &mh, MSG_DONTWAIT) < 0)
		return;
	/* Sometimes leave it in flight: the socket's close releases it. */
	if (one_in(&w->rng, 8))
		return;
	mh.msg_controllen = sizeof(cbuf);
	if (recvmsg(w->sock[1], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
		return;
	cm = CMSG_FIRSTHDR(&mh);
	if (cm && cm->cmsg_type == SCM_RIGHTS) {
		memcpy(&got, CMSG_DATA(cm), sizeof(int));
		put_slot(&w->rng, got);
	}
}

static void op_fdinfo(int fd)
{
	char path[64], buf[1024];
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return;
	while (read(f, buf, sizeof(buf)) > 0)
		;
	close(f);
}

static void op_epoll(struct worker *w, int fd)
{
	static const uint32_t flags[] = {
		EPOLLET, EPOLLEXCLUSIVE, EPOLLONESHOT, EPOLLRDHUP, 0, 0,
	};
	struct rng *r = &w->rng;
	struct epoll_event ev[4];
	struct epoll_event e = {
		.events = (rn(r, 2) ? EPOLLIN : 0) | (rn(r, 2) ? EPOLLOUT : 0) |
			  flags[rn(r, 6)],
	};

	if (w->epfd < 0)
		return;
	switch (rn(r, 3)) {
	case 0:
		epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &e);
		break;
	case 1:
		epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &e);
		break;
	default:
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
		break;
	}
	epoll_wait(w->epfd, ev, 4, rn(r, 3));
}

static void op_splice(struct worker *w, int fd)
{
	struct rng *r = &w->rng;
	loff_t off = 0;

	if (w->pipe[0] < 0)
		return;
	switch (rn(r, 5)) {
	case 0:
		splice(fd, NULL, w->pipe[1], NULL, rn(r, 8192), SPLICE_F_NONBLOCK);
		break;
	case 1:
		splice(w->pipe[0], NULL, fd, NULL, rn(r, 8192), SPLICE_F_NONBLOCK);
		break;
	case 2:
		sendfile(w->pipe[1], fd, NULL, rn(r, 8192));
		break;
	case 3:
		copy_file_range(fd, one_in(r, 2) ? &off : NULL, fd, NULL,
				rn(r, 8192), 0);
		break;
	default:
		tee(fd, w->pipe[1], rn(r, 4096), SPLICE_F_NONBLOCK);
		break;
	}
	/* Keep the pipe from filling up. */
	{
		char buf[4096];

		while (read(w->pipe[0], buf, sizeof(buf)) > 0)
			;
	}
}

/*
 * Count a configuration set: [0] any, [1] capacity 0, [2] with mode flags
 * (the chaos thread's in chaos_configs[]).
 */
static unsigned long long chaos_configs[3];

static void count_config(unsigned long long *n, const struct mpmc_config *c)
{
	n[0]++;
	n[1] += !c->capacity;
	n[2] += !!c->flags;
}

static void op_ioctl(struct worker *w, int fd)
{
	struct rng *r = &w->rng;
	unsigned long cmd = rand_cmd(r);
	char *arg = w->good + GOOD_SIZE - 256;
	struct mpmc_endpoint *ep = (void *)arg;
	long ret;

	memset(arg, 0, 64);
	if (cmd == MPMC_IOC_SET_CONFIG) {
		rand_config(r, (void *)arg);
	} else if (cmd == MPMC_IOC_NEW_ENDPOINT) {
		ep->roles = one_in(r, 8) ? rnd(r) : 1 + rn(r, 3);
		ep->flags = one_in(r, 8) ? rnd(r) :
			    (rn(r, 2) ? O_NONBLOCK : 0) | (rn(r, 2) ? O_CLOEXEC : 0);
		ep->reserved = one_in(r, 16) ? rnd(r) : 0;
	} else if (cmd == MPMC_IOC_SEND || cmd == MPMC_IOC_RECV) {
		arg = rand_batch(w, cmd == MPMC_IOC_SEND);
	} else if (cmd == MPMC_IOC_SHUTDOWN) {
		/* Shutdown kills a channel: mostly bad arguments. */
		arg = (char *)(uintptr_t)(one_in(r, 6) ? rn(r, 4) : rnd(r));
	} else if (cmd == FIOASYNC || cmd == FIONBIO) {
		*(int *)arg = rn(r, 2);
	} else if (one_in(r, 10)) {
		arg = rand_ptr(w, 64);
	}
	if (one_in(r, 20))
		arg = rand_ptr(w, 64);
	ret = ioctl(fd, cmd, arg);
	if (cmd == MPMC_IOC_NEW_ENDPOINT && ret >= 0)
		put_slot(r, ret);
	if (cmd == MPMC_IOC_SET_CONFIG && !ret && arg == (char *)ep)
		count_config(w->configs, (void *)arg);
	if ((cmd == MPMC_IOC_SEND || cmd == MPMC_IOC_RECV) && ret > 0) {
		/* Where rand_batch() builds batches: always mapped. */
		struct mpmc_batch *b = (void *)(w->good + GOOD_SIZE - 64);
		struct mpmc_msgvec *v = (void *)(w->good + GOOD_SIZE / 2);
		bool ours = arg == (char *)b && b->vec == (uintptr_t)v;
		long i;

		if (ours && b->flags & MPMC_RECV_PEEK) {
			w->peeked += ret;
			return;
		}
		w->moved += ret;
		if (ours && cmd == MPMC_IOC_SEND)
			for (i = 0; i < ret; i++)
				w->prio_sent += !!v[i].prio;
	}
}

static void op_fcntl(struct worker *w, int fd)
{
	struct rng *r = &w->rng;
	struct f_owner_ex own = { F_OWNER_TID, gettid() };
	int fl;

	switch (rn(r, 4)) {
	case 0:
		fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl ^ O_NONBLOCK);
		break;
	case 1:
		fl = fcntl(fd, F_GETFL);
		if (fl < 0)
			break;
		if (rn(r, 2)) {
			fcntl(fd, F_SETOWN, getpid());
		} else {
			fcntl(fd, F_SETOWN_EX, &own);
			fcntl(fd, F_SETSIG, rn(r, 2) ? SIGUSR2 : 0);
		}
		fcntl(fd, F_SETFL, fl ^ O_ASYNC);
		break;
	case 2:
		fcntl(fd, F_SETFD, rn(r, 2) ? FD_CLOEXEC : 0);
		break;
	default:
		fcntl(fd, F_GETOWN);
		break;
	}
}

static void op_rw(struct worker *w, int fd)
{
	struct rng *r = &w->rng;
	size_t len = one_in(r, 8) ? rand_len(r) : 1 + rn(r, 1024);
	void *buf = rand_ptr(w, len);
	struct iovec *iov;
	int cnt;

	switch (rn(r, 10)) {
	case 0:
	case 1:
		w->moved += tally(w, write(fd, buf, len));
		break;
	case 2:
	case 3:
		w->moved += tally(w, read(fd, buf, len));
		break;
	case 4:
		iov = rand_iov_any(w, &cnt);
		w->moved += tally(w, writev(fd, iov, cnt));
		break;
	case 5:
		iov = rand_iov_any(w, &cnt);
		w->moved += tally(w, readv(fd, iov, cnt));
		break;
	case 6:
		iov = rand_iov_any(w, &cnt);
		preadv2(fd, iov, cnt, one_in(r, 2) ? -1 : (off_t)rn(r, 10),
			rn(r, 2) ? RWF_NOWAIT : rnd(r) & 0xff);
		break;
	case 7:
		iov = rand_iov_any(w, &cnt);
		pwritev2(fd, iov, cnt, one_in(r, 2) ? -1 : (off_t)rn(r, 10),
			 rn(r, 2) ? RWF_NOWAIT : rnd(r) & 0xff);
		break;
	case 8:
		if (rn(r, 2))
			pread(fd, buf, len, rn(r, 100));
		else
			pwrite(fd, buf, len, rn(r, 100));
		break;
	default:
		lseek(fd, rn(r, 100), rn(r, 5));
		break;
	}
}

static void op_misc(struct worker *w, int fd)
{
	struct rng *r = &w->rng;
	struct pollfd pfd = { fd, POLLIN | POLLOUT | POLLPRI, 0 };
	void *p;
	int nfd;

	switch (rn(r, 10)) {
	case 0:
		poll(&pfd, 1, rn(r, 3));
		break;
	case 1:
		nfd = open(MPMC_DEV, (one_in(r, 3) ? (int)rn(r, 2) : O_RDWR) |
			   O_CLOEXEC | (rn(r, 2) ? O_NONBLOCK : 0));
		put_slot(r, nfd);
		break;
	case 2:
		if (rn(r, 2))
			break;
		nfd = __atomic_exchange_n(&slots[rn(r, NSLOTS)], -1, __ATOMIC_RELAXED);
		if (nfd >= 0)
			close(nfd);
		break;
	case 3:
		put_slot(r, dup(fd));
		break;
	case 4:
		/* Replace another live slot's file under its users. */
		nfd = __atomic_load_n(&slots[rn(r, NSLOTS)], __ATOMIC_RELAXED);
		if (nfd > 2 && nfd != fd)
			dup3(fd, nfd, rn(r, 2) ? O_CLOEXEC : 0);
		break;
	case 5:
		op_scm(w, fd);
		break;
	case 6:
		op_fdinfo(fd);
		break;
	case 7:
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p != MAP_FAILED)
			munmap(p, 4096);
		break;
	case 8:
		op_splice(w, fd);
		break;
	default:
		check_stats(fd);
		break;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct rng *r = &w->rng;
	struct sigevent sev = {
		.sigev_notify = SIGEV_THREAD_ID,
		.sigev_signo = SIGUSR1,
	};
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };
	timer_t timer;
	bool has_timer;

	sev._sigev_un._tid = gettid();
	has_timer = !timer_create(CLOCK_MONOTONIC, &sev, &timer);
	if (has_timer) {
		its.it_value.tv_nsec = its.it_interval.tv_nsec =
			(2 + rn(r, 10)) * 1000000L;
		timer_settime(timer, 0, &its, NULL);
	}
	ring_setup(w);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, w->sock))
		w->sock[0] = w->sock[1] = -1;
	if (pipe2(w->pipe, O_NONBLOCK | O_CLOEXEC))
		w->pipe[0] = w->pipe[1] = -1;

	while (!stop) {
		int fd = get_slot(r);

		switch (rn(r, 20)) {
		case 0 ... 5:
			op_rw(w, fd);
			break;
		case 6 ... 9:
			op_ioctl(w, fd);
			break;
		case 10 ... 11:
			op_uring(w);
			break;
		case 12:
			op_aio(w);
			break;
		case 13 ... 14:
			op_epoll(w, fd);
			break;
		case 15:
			op_fcntl(w, fd);
			break;
		case 16:
			if (one_in(r, 20))
				op_fork(w);
			break;
		default:
			op_misc(w, fd);
			break;
		}
		w->calls++;
	}

	if (has_timer)
		timer_delete(timer);
	if (w->ring_ok)
		io_uring_queue_exit(&w->ring);
	if (w->aio)
		syscall(SYS_io_destroy, w->aio);
	return NULL;
}

/*
 * Keeps channels alive and the flip region flipping; resizes (to 0 too),
 * changes modes and shuts down.
 */
static void *chaos_main(void *arg)
{
	struct rng *r = arg;
	bool rw = true;

	while (!stop) {
		struct mpmc_config c;
		struct mpmc_stats st;
		int i = rn(r, NSLOTS);
		int fd = __atomic_load_n(&slots[i], __ATOMIC_RELAXED);

		rw = !rw;
		mprotect(flip, 65536, rw ? PROT_READ | PROT_WRITE : PROT_NONE);
		if (fd < 0 || (!ioctl(fd, MPMC_IOC_GET_STATS, &st) && st.shutdown &&
			       !one_in(r, 4))) {
			/* Mostly live channels: replace the dead ones. */
			put_slot(r, open(MPMC_DEV, O_RDWR | O_CLOEXEC |
					 (rn(r, 2) ? O_NONBLOCK : 0)));
		} else if (one_in(r, 3)) {
			/*
			 * Rendezvous one time in 6, modes mostly known ones
			 * (capacity 0 with overwrite: EINVAL).
			 */
			memset(&c, 0, sizeof(c));
			c.capacity = one_in(r, 6) ? 0 : 1 + rn(r, 64);
			c.max_msg_size = one_in(r, 4) ? 1 + rn(r, 65536) : 4096;
			c.flags = one_in(r, 8) ? rand_flags(r) :
				  rn(r, KNOWN_FLAGS + 1);
			if (!ioctl(fd, MPMC_IOC_SET_CONFIG, &c))
				count_config(chaos_configs, &c);
		} else if (one_in(r, 40)) {
			ioctl(fd, MPMC_IOC_SHUTDOWN, 1 + rn(r, 3));
		} else if (one_in(r, 20)) {
			/* A fresh channel in place of a dead one. */
			put_slot(r, open(MPMC_DEV, O_RDWR | O_CLOEXEC));
		}
		usleep(500 + rn(r, 2000));
	}
	mprotect(flip, 65536, PROT_READ | PROT_WRITE);
	return NULL;
}

static unsigned long env_ul(const char *name, unsigned long def,
			    unsigned long max)
{
	const char *s = getenv(name);
	unsigned long v;

	if (!s || !*s)
		return def;
	v = strtoul(s, NULL, 0);
	return v > max ? max : v;
}

FIXTURE(fuzz)
{
	int unused;
};

FIXTURE_SETUP(fuzz)
{
}

FIXTURE_TEARDOWN(fuzz)
{
}

static void *map_or_die(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

TEST_F_TIMEOUT(fuzz, hammer, 300)
{
	unsigned long seconds = env_ul("MPMC_FUZZ_SECONDS", 20, 240);
	unsigned long long seed, calls = 0, children = 0, moved = 0;
	unsigned long long peeked = 0, prio_sent = 0, configs[3] = { 0 };
	unsigned long long errs[NERRS] = { 0 };
	char hist[256];
	size_t off = 0;
	int k;
	struct sigaction sa = { .sa_handler = noop_handler };
	struct timespec deadline;
	struct rng chaos_rng;
	struct mpmc_stats st;
	const char *s;
	pthread_t chaos;
	char buf[16];
	int i, fd;

	if (access(MPMC_DEV, R_OK | W_OK))
		SKIP(return, "%s: %s", MPMC_DEV, strerror(errno));
	s = getenv("MPMC_FUZZ_SEED");
	seed = s && *s ? strtoull(s, NULL, 0) : 0;
	if (!seed) {
		clock_gettime(CLOCK_REALTIME, &deadline);
		seed = (deadline.tv_sec * 1000000007ULL) ^ deadline.tv_nsec ^
		       ((unsigned long long)getpid() << 40);
	}
	nworkers = env_ul("MPMC_FUZZ_THREADS", 6, MAX_THREADS);
	if (!nworkers)
		nworkers = 1;
	ksft_print_msg("fuzz: seed 0x%llx, %d threads, %lu s (MPMC_FUZZ_SEED, MPMC_FUZZ_THREADS, MPMC_FUZZ_SECONDS)\n",
		       seed, nworkers, seconds);
	fflush(stdout);

	/* Timer signals interrupt blocking calls: no SA_RESTART. */
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	ASSERT_EQ(0, sigaction(SIGUSR2, &sa, NULL));
	ASSERT_EQ(0, sigaction(SIGIO, &sa, NULL));
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	signal(SIGPIPE, SIG_IGN);

	page_size = sysconf(_SC_PAGESIZE);
	none = map_or_die(page_size, PROT_NONE);
	guard = map_or_die(2 * page_size, PROT_READ | PROT_WRITE);
	flip = map_or_die(2 * 65536, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, none);
	ASSERT_NE(NULL, guard);
	ASSERT_NE(NULL, flip);
	ASSERT_EQ(0, mprotect(guard + page_size, page_size, PROT_NONE));

	for (i = 0; i < NSLOTS; i++) {
		slots[i] = open(MPMC_DEV, (i % 4 == 3 ? O_NONBLOCK : 0) |
				O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, slots[i]);
	}

	chaos_rng.s = seed ^ 0x9e3779b97f4a7c15ULL;
	for (i = 0; i < nworkers; i++) {
		struct worker *w = &workers[i];

		w->id = i;
		w->rng.s = seed + (i + 1) * 0x2545f4914f6cdd1dULL;
		w->good = map_or_die(GOOD_SIZE, PROT_READ | PROT_WRITE);
		ASSERT_NE(NULL, w->good);
		memset(w->good, 'a' + i, GOOD_SIZE);
		w->epfd = w->sock[0] = w->sock[1] = w->pipe[0] = w->pipe[1] = -1;
	}
	ASSERT_EQ(0, pthread_create(&chaos, NULL, chaos_main, &chaos_rng));
	for (i = 0; i < nworkers; i++)
		ASSERT_EQ(0, pthread_create(&workers[i].thread, NULL,
					    worker_main, &workers[i]));

	/* Signals (SIGIO) cut sleeps short: sleep until the deadline. */
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += seconds;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL))
		;
	stop = 1;

	/* Every blocking call ends at the next timer signal. */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 60;
	ASSERT_EQ(0, pthread_timedjoin_np(chaos, NULL, &deadline));
	for (i = 0; i < nworkers; i++) {
		ASSERT_EQ(0, pthread_timedjoin_np(workers[i].thread, NULL, &deadline)) {
			TH_LOG("worker %d did not stop: stuck in the kernel?", i);
		}
		calls += workers[i].calls;
		children += workers[i].children;
		moved += workers[i].moved;
		peeked += workers[i].peeked;
		prio_sent += workers[i].prio_sent;
		for (k = 0; k < 3; k++)
			configs[k] += workers[i].configs[k];
		for (k = 0; k < NERRS; k++)
			errs[k] += workers[i].errs[k];
		close(workers[i].epfd);
		close(workers[i].sock[0]);
		close(workers[i].sock[1]);
		close(workers[i].pipe[0]);
		close(workers[i].pipe[1]);
	}
	for (i = 0; i < NSLOTS; i++) {
		if (slots[i] >= 0) {
			check_stats(slots[i]);
			close(slots[i]);
			slots[i] = -1;
		}
	}
	ksft_print_msg("fuzz: seed 0x%llx: %llu calls (%llu moved a message), %llu forked children in %lu s\n",
		       seed, calls, moved, children, seconds);
	fflush(stdout);
	for (k = 0; k < NERRS; k++)
		off += snprintf(hist + off, sizeof(hist) - off, " %s %llu",
				err_names[k], errs[k]);
	ksft_print_msg("fuzz: read/write results:%s\n", hist);
	ksft_print_msg("fuzz: %llu peeked, %llu sent at a priority > 0; configurations set %llu (capacity 0: %llu, with flags: %llu) by the workers, %llu (%llu, %llu) by the chaos thread\n",
		       peeked, prio_sent, configs[0], configs[1], configs[2],
		       chaos_configs[0], chaos_configs[1], chaos_configs[2]);
	fflush(stdout);
	EXPECT_EQ(0ULL, incoherent) {
		TH_LOG("incoherent stats (%llu times), first: %s", incoherent,
		       incoherent_why);
	}
	EXPECT_LT(0ULL, calls);
	EXPECT_LT(0ULL, moved);

	/* The module still works. */
	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(6, write(fd, "sanity", 6));
	ASSERT_EQ(6, ioctl(fd, FIONREAD, &i) ? -1 : i);
	ASSERT_EQ(6, read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, memcmp(buf, "sanity", 6));
	MPMC_STATS(fd, &st);
	EXPECT_EQ(1ULL, st.total_sent);
	EXPECT_EQ(1ULL, st.total_received);
	EXPECT_EQ(0U, st.queued_msgs);
	EXPECT_FILES(st, 1U, 1U);
	EXPECT_EQ(0U, st.shutdown);
	close(fd);
}

TEST_HARNESS_MAIN
