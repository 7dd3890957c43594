// SPDX-License-Identifier: GPL-2.0
/*
 * Ring mode stress across processes (Documentation/ring-mode.rst 10),
 * with libmpmc's ring calls (mpmc_ring_*) mixed with every system call
 * path on one channel.
 *
 * exactly_once: one producer process and one consumer process per access
 * method: ring send/receive, ring batches, ring non-blocking + edge-
 * triggered epoll, blocking write/read, non-blocking + level-triggered
 * epoll, non-blocking + edge-triggered epoll, MPMC_IOC_SEND/RECV batches
 * with a timeout, io_uring WRITE/READ. Messages of up to 64 bytes carry
 * (producer, sequence, length, checksum) and a payload derived from them.
 * Every message is received exactly once, none torn; after the producers
 * are gone a shutdown gives every consumer end of file. A stall (no
 * message for STALL_MS) fails the test. Variants: capacity 64 and 4.
 *
 * eof_after_last_producer: only the producers hold the send role (the
 * consumers have receive-only endpoints, the test closes its fd); the
 * consumers see end of file once the last producer is gone, and not
 * before the last mapping is: one producer closes its fd and keeps its
 * mapping a while before it unmaps (a mapping holds its file).
 *
 * kill_chaos: ring producers and consumers are SIGKILLed at random times
 * and replaced. Half of the sends and a third of the receives run the
 * protocol by hand with a pause inside the claim window, so that kills
 * land there too and the reaper works under traffic (ring_reaped > 0). Producers report each send that returned success through
 * a pipe (after it returned), consumers report each message they received
 * through another (right after it returned). Every message is received at
 * most once, none torn, and every acknowledged one exactly once except at
 * most one batch per killed consumer (taken, then killed before it could
 * report). After the killing stops, the consumers empty the channel within
 * a bound (nobody sleeps while messages are queued).
 */
#define _GNU_SOURCE
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <mpmc.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"
#include "ring_test.h"

#define MSG		64
#define SPREAD		(MSG - (int)sizeof(struct stress_hdr) + 1)
#define STALL_MS	15000	/* no message this long: a failure */
#define TMO_NS		50000000LL
#define BATCH		8

enum method {
	M_RING, M_RING_BATCH, M_RING_EPOLL_ET, M_BLOCK, M_EPOLL_LT, M_EPOLL_ET,
	M_BATCH, M_URING, NMETH
};

static const char *const meth_name[NMETH] = {
	"ring", "ring-batch", "ring-epoll-et", "blocking", "epoll-lt",
	"epoll-et", "batch", "io_uring",
};

/* Shared by the test process and its children (MAP_SHARED). */
struct shared {
	atomic_int failed;
	char why[256];
	atomic_int stop;
	atomic_long sent[NMETH], received[NMETH];
	atomic_long progress;		/* bumped per message received */
	atomic_llong unmap_ms;		/* eof: when the last mapping went */
	atomic_llong eof_ms[NMETH];	/* eof: when each consumer saw EOF */
	int msgs;
	atomic_uchar seen[];		/* [NMETH * msgs] */
};

static struct shared *sh;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;

	if (atomic_exchange(&sh->failed, 1))
		return;
	va_start(ap, fmt);
	vsnprintf(sh->why, sizeof(sh->why), fmt, ap);
	va_end(ap);
}

static struct shared *shared_new(int msgs)
{
	size_t size = sizeof(struct shared) + (size_t)NMETH * msgs;
	struct shared *s = mmap(NULL, size, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (s == MAP_FAILED)
		return NULL;
	s->msgs = msgs;
	return s;
}

static void shared_free(struct shared *s)
{
	if (s)
		munmap(s, sizeof(struct shared) + (size_t)NMETH * s->msgs);
}

static void child_init(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* Check one message and mark it seen; false (and a failure) if bad. */
static bool take(enum method cons, unsigned char *buf, size_t n)
{
	struct stress_hdr h;
	const char *bad = stress_check(buf, n, MSG, NMETH, sh->msgs, &h);

	if (bad) {
		fail("%s consumer: %s (len %zu prod %u seq %u)",
		     meth_name[cons], bad, n, h.prod, h.seq);
		return false;
	}
	if (atomic_fetch_add(&sh->seen[h.prod * sh->msgs + h.seq], 1)) {
		fail("%s consumer: duplicate: producer %s seq %u",
		     meth_name[cons], meth_name[h.prod], h.seq);
		return false;
	}
	atomic_fetch_add(&sh->received[cons], 1);
	atomic_fetch_add(&sh->progress, 1);
	return true;
}

/* epoll_wait for one event, STALL_MS at most; false (failure) if none. */
static bool wait_ev(int ep, const char *who)
{
	struct epoll_event ev;
	int n = epoll_wait(ep, &ev, 1, STALL_MS);

	if (n == 1)
		return true;
	if (atomic_load(&sh->failed))
		return false;
	fail("%s: %s", who, n ? strerror(errno) : "no epoll event: lost wakeup");
	return false;
}

static int ep_new(int fd, unsigned int events)
{
	int ep = epoll_for(fd, events);

	if (ep < 0)
		fail("epoll: %s", strerror(errno));
	return ep;
}

/* ---- producers ---------------------------------------------------------- */

/* The endpoint and ring a method uses, on the channel of @fd. */
struct user {
	enum method m;
	int fd;
	struct mpmc_ring *r;
	uint32_t rnd;
};

static bool is_ring(enum method m)
{
	return m == M_RING || m == M_RING_BATCH || m == M_RING_EPOLL_ET;
}

static bool is_nonblock(enum method m)
{
	return m == M_RING_EPOLL_ET || m == M_EPOLL_LT || m == M_EPOLL_ET;
}

static int user_init(struct user *u, int fd, enum method m, bool producer)
{
	__u32 roles = is_ring(m) ? MPMC_ROLE_SEND | MPMC_ROLE_RECV :
		      producer ? MPMC_ROLE_SEND : MPMC_ROLE_RECV;
	int ret;

	u->m = m;
	u->rnd = 0x9e3779b9u * (m + 1) + producer;
	u->r = NULL;
	u->fd = new_ep(fd, roles, is_nonblock(m) ? O_NONBLOCK : 0);
	if (u->fd < 0) {
		fail("%s: new endpoint: %s", meth_name[m], strerror(errno));
		return -1;
	}
	if (is_ring(m)) {
		ret = mpmc_ring_map(u->fd, &u->r);
		if (ret) {
			fail("%s: mpmc_ring_map: %s", meth_name[m],
			     strerror(-ret));
			return -1;
		}
	}
	return 0;
}

static void user_exit(struct user *u)
{
	mpmc_ring_unmap(u->r);
	close(u->fd);
}

static void produce(int fd, enum method m)
{
	static unsigned char bufs[BATCH][MSG];
	struct mpmc_msgvec v[BATCH];
	int msgs = sh->msgs, seq = 0, ep = -1, i, k;
	struct io_uring ring;
	struct user u;
	ssize_t n;

	child_init();
	if (user_init(&u, fd, m, true))
		_exit(1);
	if (m == M_RING_EPOLL_ET || m == M_EPOLL_ET || m == M_EPOLL_LT) {
		ep = ep_new(u.fd, EPOLLOUT | (m == M_EPOLL_LT ? 0 : EPOLLET));
		if (ep < 0)
			_exit(1);
	}
	if (m == M_URING && io_uring_queue_init(4, &ring, 0)) {
		fail("io_uring_queue_init failed");
		_exit(1);
	}
	while (seq < msgs && !atomic_load(&sh->failed)) {
		size_t len = stress_msg(bufs[0], m, seq, &u.rnd, MSG, SPREAD);
		struct io_uring_cqe *cqe;

		switch (m) {
		case M_RING:
			n = mpmc_ring_send(u.r, bufs[0], len, 0);
			break;
		case M_RING_EPOLL_ET:
			while ((n = mpmc_ring_send(u.r, bufs[0], len,
						   MPMC_RING_NONBLOCK)) == -EAGAIN)
				if (!wait_ev(ep, "ring-epoll-et producer"))
					goto out;
			break;
		case M_BLOCK:
			n = write(u.fd, bufs[0], len);
			if (n < 0)
				n = -errno;
			break;
		case M_EPOLL_LT:
		case M_EPOLL_ET:
			while ((n = write(u.fd, bufs[0], len)) < 0 &&
			       errno == EAGAIN)
				if (!wait_ev(ep, meth_name[m]))
					goto out;
			if (n < 0)
				n = -errno;
			break;
		case M_URING:
			io_uring_prep_write(io_uring_get_sqe(&ring), u.fd,
					    bufs[0], len, -1);
			n = io_uring_submit(&ring);
			if (n == 1)
				n = io_uring_wait_cqe(&ring, &cqe);
			if (!n) {
				n = cqe->res;
				io_uring_cqe_seen(&ring, cqe);
			} else if (n > 0) {
				n = -EIO;
			}
			break;
		case M_RING_BATCH:
		case M_BATCH:
			k = 1 + xorshift(&u.rnd) % BATCH;
			if (k > msgs - seq)
				k = msgs - seq;
			mpmc_msgvec_set(&v[0], bufs[0], len);
			for (i = 1; i < k; i++)
				mpmc_msgvec_set(&v[i], bufs[i],
						stress_msg(bufs[i], m, seq + i,
							   &u.rnd, MSG, SPREAD));
			for (i = 0; i < k;) {
				int r = m == M_BATCH ?
					mpmc_send_batch(u.fd, v + i, k - i, TMO_NS) :
					mpmc_ring_send_batch(u.r, v + i, k - i, TMO_NS);

				if (r == -ETIMEDOUT && !atomic_load(&sh->failed))
					continue;
				if (r <= 0 || r > k - i) {
					fail("%s send batch of %d: %d (%s)",
					     meth_name[m], k - i, r,
					     r < 0 ? strerror(-r) : "");
					goto out;
				}
				i += r;
			}
			seq += k;
			atomic_fetch_add(&sh->sent[m], k);
			continue;
		default:
			n = -EINVAL;
		}
		if (n != (ssize_t)len) {
			fail("%s send: %zd (%s)", meth_name[m], n,
			     n < 0 ? strerror(-n) : "short");
			goto out;
		}
		seq++;
		atomic_fetch_add(&sh->sent[m], 1);
	}
out:
	if (m == M_URING)
		io_uring_queue_exit(&ring);
	user_exit(&u);
	_exit(0);
}

/* ---- consumers ---------------------------------------------------------- */

static void consume(int fd, enum method m)
{
	static unsigned char bufs[BATCH][MSG];
	struct mpmc_msgvec v[BATCH];
	struct io_uring ring;
	int ep = -1, i;
	struct user u;
	ssize_t n;

	child_init();
	if (user_init(&u, fd, m, false))
		_exit(1);
	if (m == M_RING_EPOLL_ET || m == M_EPOLL_ET || m == M_EPOLL_LT) {
		ep = ep_new(u.fd, EPOLLIN | (m == M_EPOLL_LT ? 0 : EPOLLET));
		if (ep < 0)
			_exit(1);
	}
	if (m == M_URING && io_uring_queue_init(4, &ring, 0)) {
		fail("io_uring_queue_init failed");
		_exit(1);
	}
	while (!atomic_load(&sh->failed)) {
		struct io_uring_cqe *cqe;

		switch (m) {
		case M_RING:
			n = mpmc_ring_recv(u.r, bufs[0], MSG, 0);
			break;
		case M_RING_EPOLL_ET:
			while ((n = mpmc_ring_recv(u.r, bufs[0], MSG,
						   MPMC_RING_NONBLOCK)) == -EAGAIN)
				if (!wait_ev(ep, "ring-epoll-et consumer"))
					goto out;
			break;
		case M_BLOCK:
			n = read(u.fd, bufs[0], MSG);
			if (n < 0)
				n = -errno;
			break;
		case M_EPOLL_LT:
		case M_EPOLL_ET:
			while ((n = read(u.fd, bufs[0], MSG)) < 0 &&
			       errno == EAGAIN)
				if (!wait_ev(ep, meth_name[m]))
					goto out;
			if (n < 0)
				n = -errno;
			break;
		case M_URING:
			io_uring_prep_read(io_uring_get_sqe(&ring), u.fd,
					   bufs[0], MSG, -1);
			n = io_uring_submit(&ring);
			if (n == 1)
				n = io_uring_wait_cqe(&ring, &cqe);
			if (!n) {
				n = cqe->res;
				io_uring_cqe_seen(&ring, cqe);
			} else if (n > 0) {
				n = -EIO;
			}
			break;
		case M_RING_BATCH:
		case M_BATCH:
			for (i = 0; i < BATCH; i++)
				mpmc_msgvec_set(&v[i], bufs[i], MSG);
			n = m == M_BATCH ? mpmc_recv_batch(u.fd, v, BATCH, TMO_NS) :
				mpmc_ring_recv_batch(u.r, v, BATCH, TMO_NS);
			if (n == -ETIMEDOUT)
				continue;
			if (n < 0 || n > BATCH) {
				fail("%s recv batch: %zd (%s)", meth_name[m],
				     n, n < 0 ? strerror(-n) : "");
				goto out;
			}
			if (n == 0)
				goto eof;
			for (i = 0; i < n; i++)
				if (!take(m, bufs[i], v[i].len))
					goto out;
			continue;
		default:
			n = -EINVAL;
		}
		if (n == 0)
			goto eof;
		if (n < 0) {
			fail("%s recv: %s", meth_name[m], strerror(-n));
			goto out;
		}
		if (!take(m, bufs[0], n))
			goto out;
	}
	goto out;
eof:
	atomic_store(&sh->eof_ms[m], now_ms());
out:
	if (m == M_URING)
		io_uring_queue_exit(&ring);
	user_exit(&u);
	_exit(0);
}

/* Wait up to @ms for @pid: true if it was reaped, with its status. */
static bool reap_within(pid_t pid, int ms, int *status)
{
	long long end = now_ms() + ms;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return true;
		if (r < 0 || now_ms() > end)
			return false;
		usleep(2000);
	}
}

static void kill_all(pid_t *pids, int n)
{
	int i, st;

	for (i = 0; i < n; i++)
		if (pids[i] > 0) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], &st, 0);
			pids[i] = 0;
		}
}

/* ---- exactly once ------------------------------------------------------- */

FIXTURE(stress) {
	int fd;
	pid_t prod[NMETH], cons[NMETH];
};

FIXTURE_VARIANT(stress) {
	__u32 capacity;
	int msgs;
};

FIXTURE_VARIANT_ADD(stress, cap64) {
	.capacity = 64, .msgs = 5000,
};

FIXTURE_VARIANT_ADD(stress, cap4) {
	.capacity = 4, .msgs = 2500,
};

FIXTURE_SETUP(stress)
{
	sh = shared_new(variant->msgs);
	ASSERT_NE(NULL, sh);
	self->fd = ring_open(variant->capacity, MSG, 0);
	ASSERT_LE(0, self->fd) TH_LOG("ring_open: %s", strerror(errno));
	memset(self->prod, 0, sizeof(self->prod));
	memset(self->cons, 0, sizeof(self->cons));
}

FIXTURE_TEARDOWN(stress)
{
	kill_all(self->prod, NMETH);
	kill_all(self->cons, NMETH);
	close(self->fd);
	shared_free(sh);
}

TEST_F_TIMEOUT(stress, exactly_once, 150)
{
	long long last = 0, last_ms = now_ms(), t0 = now_ms();
	int i, st, prods = NMETH, conss = NMETH;
	long total = 0;

	for (i = 0; i < NMETH; i++) {
		self->cons[i] = fork();
		if (!self->cons[i])
			consume(self->fd, i);
		ASSERT_LT(0, self->cons[i]);
	}
	for (i = 0; i < NMETH; i++) {
		self->prod[i] = fork();
		if (!self->prod[i])
			produce(self->fd, i);
		ASSERT_LT(0, self->prod[i]);
	}
	/* Producers first; then a shutdown, and the consumers see EOF. */
	while (prods || conss) {
		long long p = atomic_load(&sh->progress);

		if (atomic_load(&sh->failed))
			break;
		if (p != last) {
			last = p;
			last_ms = now_ms();
		} else if (now_ms() - last_ms > STALL_MS) {
			fail("stall: no message for %d ms (%lld received)",
			     STALL_MS, p);
			break;
		}
		for (i = 0; i < NMETH; i++) {
			if (self->prod[i] > 0 &&
			    waitpid(self->prod[i], &st, WNOHANG) == self->prod[i]) {
				self->prod[i] = 0;
				if (!WIFEXITED(st) || WEXITSTATUS(st))
					fail("%s producer: status %#x",
					     meth_name[i], st);
				if (!--prods)
					EXPECT_EQ(0, ioctl(self->fd, MPMC_IOC_SHUTDOWN,
							   MPMC_SHUT_WR));
			}
			if (self->cons[i] > 0 &&
			    waitpid(self->cons[i], &st, WNOHANG) == self->cons[i]) {
				self->cons[i] = 0;
				conss--;
				if (!WIFEXITED(st) || WEXITSTATUS(st))
					fail("%s consumer: status %#x",
					     meth_name[i], st);
				if (prods)
					fail("%s consumer ended early",
					     meth_name[i]);
			}
		}
		usleep(20000);
	}
	EXPECT_EQ(0, atomic_load(&sh->failed)) TH_LOG("%s", sh->why);
	for (i = 0; i < NMETH; i++) {
		TH_LOG("%-13s sent %5ld received %5ld", meth_name[i],
		       atomic_load(&sh->sent[i]), atomic_load(&sh->received[i]));
		total += atomic_load(&sh->received[i]);
	}
	TH_LOG("%ld messages in %lld ms; ring_reaped %lld, doorbells %lld",
	       total, now_ms() - t0, fdinfo_val(self->fd, "ring_reaped", -1),
	       fdinfo_val(self->fd, "ring_doorbells", -1));
	if (atomic_load(&sh->failed))
		return;
	EXPECT_EQ((long)NMETH * sh->msgs, total);
	for (i = 0; i < NMETH * sh->msgs; i++)
		if (atomic_load(&sh->seen[i]) != 1) {
			EXPECT_EQ(1, atomic_load(&sh->seen[i]))
				TH_LOG("producer %s seq %d seen %d times",
				       meth_name[i / sh->msgs], i % sh->msgs,
				       atomic_load(&sh->seen[i]));
			break;
		}
	EXPECT_EQ(0, stats_of(self->fd).queued_msgs);
}

/* ---- EOF once the last producer (and its mapping) is gone --------------- */

#define EOF_MSGS	400
#define LINGER_MS	500

/* A ring producer on its own RW endpoint; @linger: close, wait, unmap. */
static void eof_producer(int fd, enum method m, bool linger)
{
	unsigned char buf[MSG];
	struct user u;
	int seq;

	child_init();
	if (user_init(&u, fd, m, true))
		_exit(1);
	close(fd);
	for (seq = 0; seq < EOF_MSGS; seq++) {
		size_t len = stress_msg(buf, m, seq, &u.rnd, MSG, SPREAD);
		ssize_t n = mpmc_ring_send(u.r, buf, len, 0);

		if (n != (ssize_t)len) {
			fail("eof producer: %zd", n);
			_exit(1);
		}
		atomic_fetch_add(&sh->sent[m], 1);
	}
	if (linger) {
		/* The mapping alone holds the file now. */
		close(u.fd);
		usleep(LINGER_MS * 1000);
		atomic_store(&sh->unmap_ms, now_ms());
		mpmc_ring_unmap(u.r);
		_exit(0);
	}
	user_exit(&u);
	_exit(0);
}

/* A receive-only consumer until EOF. */
static void eof_consumer(int fd, enum method m)
{
	unsigned char buf[MSG];
	int e;

	child_init();
	e = new_ep(fd, MPMC_ROLE_RECV, 0);
	close(fd);
	if (e < 0)
		_exit(1);
	for (;;) {
		ssize_t n = read(e, buf, sizeof(buf));

		if (n == 0)
			break;
		if (n < 0) {
			fail("eof consumer: %s", strerror(errno));
			_exit(1);
		}
		if (!take(m, buf, n))
			_exit(1);
	}
	atomic_store(&sh->eof_ms[m], now_ms());
	_exit(0);
}

TEST_F_TIMEOUT(stress, eof_after_last_producer, 90)
{
	pid_t *p = self->prod, *c = self->cons;
	int fd = self->fd, i, st;
	long total = 0;

	if (variant->capacity != 4)
		SKIP(return, "one variant is enough");
	sh->msgs = EOF_MSGS;
	c[M_BLOCK] = fork();
	if (!c[M_BLOCK])
		eof_consumer(fd, M_BLOCK);
	c[M_BATCH] = fork();
	if (!c[M_BATCH])
		eof_consumer(fd, M_BATCH);
	p[M_RING] = fork();
	if (!p[M_RING])
		eof_producer(fd, M_RING, false);
	p[M_RING_BATCH] = fork();
	if (!p[M_RING_BATCH])
		eof_producer(fd, M_RING_BATCH, true);
	ASSERT_LT(0, c[M_BLOCK]);
	ASSERT_LT(0, c[M_BATCH]);
	ASSERT_LT(0, p[M_RING]);
	ASSERT_LT(0, p[M_RING_BATCH]);
	/* Only the producers hold the send role now. */
	close(fd);
	self->fd = -1;
	for (i = 0; i < NMETH; i++) {
		if (p[i] > 0) {
			EXPECT_TRUE(reap_within(p[i], 4 * WAIT_MS, &st))
				TH_LOG("%s producer hung", meth_name[i]);
			EXPECT_EQ(0, st);
			p[i] = 0;
		}
	}
	for (i = 0; i < NMETH; i++) {
		if (c[i] > 0) {
			EXPECT_TRUE(reap_within(c[i], 2 * WAIT_MS, &st))
				TH_LOG("%s consumer: no EOF", meth_name[i]);
			EXPECT_EQ(0, st);
			c[i] = 0;
		}
	}
	EXPECT_EQ(0, atomic_load(&sh->failed)) TH_LOG("%s", sh->why);
	for (i = 0; i < NMETH; i++)
		total += atomic_load(&sh->received[i]);
	EXPECT_EQ(2 * EOF_MSGS, total);
	for (i = 0; i < NMETH * EOF_MSGS; i++)
		if ((i / EOF_MSGS == M_RING || i / EOF_MSGS == M_RING_BATCH) &&
		    atomic_load(&sh->seen[i]) != 1) {
			EXPECT_EQ(1, atomic_load(&sh->seen[i]))
				TH_LOG("message %d", i);
			break;
		}
	/* Not before the lingering mapping went. */
	EXPECT_NE(0, atomic_load(&sh->unmap_ms));
	EXPECT_LE(atomic_load(&sh->unmap_ms), atomic_load(&sh->eof_ms[M_BLOCK]));
	EXPECT_LE(atomic_load(&sh->unmap_ms), atomic_load(&sh->eof_ms[M_BATCH]));
}

/* ---- SIGKILL chaos ------------------------------------------------------ */

#define CHAOS_MS	8000
#define MAXPROD		64	/* producer ids over the whole run */
#define PROD_MSGS	3000	/* at most, per producer id */
#define LIVE_PROD	3
#define LIVE_CONS	3
#define CBATCH		4	/* consumers receive at most this many at once */
#define HAND_PAUSE_US	400	/* in a claim window, by hand, at most */

enum { REC_ACK = 1, REC_RECV, REC_TORN };

struct rec {
	uint16_t kind, prod;
	uint32_t seq;
};

struct chaos {
	int fd, ackp[2], rcvp[2];
	pthread_t collector;
	/* collector's view */
	unsigned char acked[MAXPROD][PROD_MSGS];
	unsigned char got[MAXPROD][PROD_MSGS];
	long acks, recvs, torn, dups, bad;
};

/*
 * A chaos producer: mpmc_ring_send(), or (every other message) the
 * protocol by hand through a second mapping of its own with a pause
 * between claim and publish, so that kills land in the claim window.
 */
static void chaos_producer(struct chaos *c, int id)
{
	unsigned char buf[MSG];
	struct mpmc_ring *r;
	uint32_t rnd = id * 7919 + 1;
	struct rmap hm;
	int fd, seq, ret;

	child_init();
	fd = new_ep(c->fd, MPMC_ROLE_SEND | MPMC_ROLE_RECV, 0);
	if (fd < 0 || (ret = mpmc_ring_map(fd, &r)) || rmap_open(&hm, fd)) {
		fail("chaos producer: setup");
		_exit(1);
	}
	for (seq = 0; seq < PROD_MSGS && !atomic_load(&sh->stop); seq++) {
		size_t len = stress_msg(buf, id, seq, &rnd, MSG, SPREAD);
		struct rec a = { .kind = REC_ACK, .prod = id, .seq = seq };
		long long p = -EAGAIN;
		ssize_t n;

		if (xorshift(&rnd) & 1)
			p = rt_claim_send(&hm);
		if (p >= 0) {
			usleep(xorshift(&rnd) % HAND_PAUSE_US);
			rt_publish(&hm, p, buf, len);
			n = len;
		} else {
			n = p == -EPIPE ? p : mpmc_ring_send(r, buf, len, 0);
		}
		if (n == -EPIPE)
			break;
		if (n != (ssize_t)len) {
			fail("chaos producer %d: send %zd", id, n);
			_exit(1);
		}
		if (write(c->ackp[1], &a, sizeof(a)) != sizeof(a))
			_exit(1);
	}
	mpmc_ring_unmap(r);
	rmap_close(&hm);
	_exit(0);
}

static void chaos_consumer(struct chaos *c, int id)
{
	unsigned char bufs[CBATCH][MSG];
	struct mpmc_msgvec v[CBATCH];
	struct rmap hm;
	struct mpmc_ring *r;
	uint32_t rnd = id + 1;
	int fd, i, n, ret;

	child_init();
	fd = new_ep(c->fd, MPMC_ROLE_SEND | MPMC_ROLE_RECV, 0);
	if (fd < 0 || (ret = mpmc_ring_map(fd, &r)) || rmap_open(&hm, fd)) {
		fail("chaos consumer: setup");
		_exit(1);
	}
	for (;;) {
		uint32_t how = xorshift(&rnd) % 3;
		long long q = -EAGAIN;
		__u32 len = 0;

		if (how == 2)
			q = rt_claim_recv(&hm, MSG, &len);
		if (q >= 0) {
			/* By hand, with a pause while holding READING. */
			usleep(xorshift(&rnd) % HAND_PAUSE_US);
			if (len == MPMC_RING_LEN_SKIP) {
				rt_release(&hm, q);
				continue;
			}
			memcpy(bufs[0], r_slot(&hm, q)->data, len);
			rt_release(&hm, q);
			v[0].len = len;
			n = 1;
		} else if (q != -EAGAIN) {
			fail("chaos consumer: claim %s", strerror((int)-q));
			_exit(1);
		} else if (how == 0) {
			n = mpmc_ring_recv(r, bufs[0], MSG, 0);
			if (n > 0) {
				v[0].len = n;
				n = 1;
			}
		} else {
			for (i = 0; i < CBATCH; i++)
				mpmc_msgvec_set(&v[i], bufs[i], MSG);
			n = mpmc_ring_recv_batch(r, v, 1 + xorshift(&rnd) % CBATCH,
						 -1);
		}
		if (n == 0)
			break;
		if (n < 0) {
			fail("chaos consumer: recv %s", strerror(-n));
			_exit(1);
		}
		for (i = 0; i < n; i++) {
			struct stress_hdr h;
			const char *bad = stress_check(bufs[i], v[i].len, MSG,
						       MAXPROD, PROD_MSGS, &h);
			struct rec a = {
				.kind = bad ? REC_TORN : REC_RECV,
				.prod = h.prod, .seq = h.seq,
			};

			if (write(c->rcvp[1], &a, sizeof(a)) != sizeof(a))
				_exit(1);
		}
	}
	mpmc_ring_unmap(r);
	rmap_close(&hm);
	_exit(0);
}

static void *collect(void *arg)
{
	struct chaos *c = arg;
	struct pollfd p[2] = {
		{ .fd = c->ackp[0], .events = POLLIN },
		{ .fd = c->rcvp[0], .events = POLLIN },
	};
	int open = 2, i;

	while (open) {
		if (poll(p, 2, 1000) < 0)
			break;
		for (i = 0; i < 2; i++) {
			struct rec recs[64];
			ssize_t n;
			int k;

			if (!p[i].revents || p[i].fd < 0)
				continue;
			n = read(p[i].fd, recs, sizeof(recs));
			if (n <= 0) {
				p[i].fd = -1;
				open--;
				continue;
			}
			for (k = 0; k < n / (ssize_t)sizeof(recs[0]); k++) {
				struct rec *a = &recs[k];

				if (a->kind == REC_TORN) {
					c->torn++;
					continue;
				}
				if (a->prod >= MAXPROD || a->seq >= PROD_MSGS) {
					c->bad++;
					continue;
				}
				if (a->kind == REC_ACK) {
					c->acked[a->prod][a->seq] = 1;
					c->acks++;
				} else {
					if (c->got[a->prod][a->seq]++)
						c->dups++;
					c->recvs++;
				}
			}
		}
	}
	return NULL;
}

TEST_F_TIMEOUT(stress, kill_chaos, 150)
{
	pid_t prod[LIVE_PROD], cons[LIVE_CONS];
	int prod_id[LIVE_PROD];
	int next_id = 0, pkills = 0, ckills = 0, i, st;
	long lost = 0, unacked_got = 0;
	long long reaped;
	uint32_t rnd = (uint32_t)now_ms() | 1;
	struct chaos *c;
	long long end, t;

	if (variant->capacity != 64)
		SKIP(return, "one variant is enough");
	c = calloc(1, sizeof(*c));
	ASSERT_NE(NULL, c);
	c->fd = ring_open(16, MSG, 0);
	ASSERT_LE(0, c->fd);
	ASSERT_EQ(0, pipe2(c->ackp, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(c->rcvp, O_CLOEXEC));
	TH_LOG("seed %u", rnd);
	for (i = 0; i < LIVE_CONS; i++) {
		cons[i] = fork();
		if (!cons[i])
			chaos_consumer(c, i);
		ASSERT_LT(0, cons[i]);
	}
	for (i = 0; i < LIVE_PROD; i++) {
		prod_id[i] = next_id++;
		prod[i] = fork();
		if (!prod[i])
			chaos_producer(c, prod_id[i]);
		ASSERT_LT(0, prod[i]);
	}
	ASSERT_EQ(0, pthread_create(&c->collector, NULL, collect, c));
	end = now_ms() + CHAOS_MS;
	while (now_ms() < end && !atomic_load(&sh->failed)) {
		usleep(20000 + xorshift(&rnd) % 150000);
		i = xorshift(&rnd) % (LIVE_PROD + LIVE_CONS);
		if (i < LIVE_PROD) {
			if (prod[i] <= 0 || next_id >= MAXPROD)
				continue;
			kill(prod[i], SIGKILL);
			ASSERT_TRUE(reap_within(prod[i], WAIT_MS, &st))
				TH_LOG("producer does not die");
			pkills++;
			prod_id[i] = next_id++;
			prod[i] = fork();
			if (!prod[i])
				chaos_producer(c, prod_id[i]);
			ASSERT_LT(0, prod[i]);
		} else {
			i -= LIVE_PROD;
			kill(cons[i], SIGKILL);
			ASSERT_TRUE(reap_within(cons[i], WAIT_MS, &st))
				TH_LOG("consumer does not die");
			ckills++;
			cons[i] = fork();
			if (!cons[i])
				chaos_consumer(c, LIVE_CONS + ckills);
			ASSERT_LT(0, cons[i]);
		}
	}
	/* Stop the producers; the consumers must empty the channel. */
	atomic_store(&sh->stop, 1);
	for (i = 0; i < LIVE_PROD; i++) {
		EXPECT_TRUE(reap_within(prod[i], 2 * WAIT_MS, &st))
			TH_LOG("producer %d does not stop", prod_id[i]);
		EXPECT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st));
	}
	t = now_ms();
	while (stats_of(c->fd).queued_msgs && now_ms() - t < 2 * WAIT_MS)
		usleep(10000);
	EXPECT_EQ(0, stats_of(c->fd).queued_msgs)
		TH_LOG("messages stay queued with %d consumers", LIVE_CONS);
	TH_LOG("drained %lld ms after the producers stopped", now_ms() - t);
	EXPECT_EQ(0, ioctl(c->fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	for (i = 0; i < LIVE_CONS; i++) {
		EXPECT_TRUE(reap_within(cons[i], 2 * WAIT_MS, &st))
			TH_LOG("consumer %d: no EOF", i);
		EXPECT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st));
	}
	kill_all(prod, LIVE_PROD);
	kill_all(cons, LIVE_CONS);
	close(c->ackp[1]);
	close(c->rcvp[1]);
	ASSERT_EQ(0, join_within(c->collector));
	EXPECT_EQ(0, atomic_load(&sh->failed)) TH_LOG("%s", sh->why);
	for (i = 0; i < MAXPROD * PROD_MSGS; i++) {
		unsigned char a = c->acked[i / PROD_MSGS][i % PROD_MSGS];
		unsigned char g = c->got[i / PROD_MSGS][i % PROD_MSGS];

		if (a && !g)
			lost++;
		if (!a && g)
			unacked_got++;
	}
	reaped = fdinfo_val(c->fd, "ring_reaped", -1);
	TH_LOG("%d producer ids, %d producer kills, %d consumer kills; %ld acked, %ld received (%ld without ack), %ld lost; ring_reaped %lld",
	       next_id, pkills, ckills, c->acks, c->recvs, unacked_got, lost,
	       reaped);
	/* Some kills landed in a claim window (the pauses make sure). */
	EXPECT_LT(0, reaped);
	EXPECT_EQ(0, c->dups);
	EXPECT_EQ(0, c->torn);
	EXPECT_EQ(0, c->bad);
	EXPECT_GE((long)ckills * CBATCH, lost);
	EXPECT_LT(1000, c->recvs);
	/* Without ack only what a killed producer sent last: one each. */
	EXPECT_GE((long)pkills, unacked_got);
	close(c->fd);
	free(c);
}

TEST_HARNESS_MAIN
