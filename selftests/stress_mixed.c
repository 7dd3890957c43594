// SPDX-License-Identifier: GPL-2.0
/*
 * Exactly-once stress of one /dev/mpmc channel used through every access
 * method at once. Five producer threads and five consumer threads, one per
 * method, each on its own endpoint:
 *  - blocking read()/write();
 *  - O_NONBLOCK + level-triggered epoll;
 *  - O_NONBLOCK + edge-triggered epoll;
 *  - MPMC_IOC_SEND/MPMC_IOC_RECV batches of random length with a short
 *    timeout (the receiver also uses random entry sizes, so batches stop
 *    early on a too-small entry);
 *  - io_uring READ / linked chains of WRITEs (liburing).
 * Messages have random sizes and carry the producer, a per-producer
 * sequence number, their length and a checksum; the payload is derived from
 * (producer, sequence) and checked too. Producers close their endpoints at
 * the end, so consumers see end of file (read 0, batch 0, io_uring READ 0).
 * Every message must be received exactly once, none missing, and each
 * consumer must see each producer's messages in increasing order.
 * Variants: capacity 1, 16 and 1024.
 */
#define _GNU_SOURCE
#include <liburing.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <time.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

enum method { M_BLOCK, M_EPOLL_LT, M_EPOLL_ET, M_BATCH, M_URING, NMETH };

static const char * const meth_name[NMETH] = {
	"blocking", "epoll-lt", "epoll-et", "batch", "io_uring",
};

#define MAX_MSG		1024	/* channel max_msg_size */
#define STALL_MS	10000	/* no progress this long is a failure */
#define RUN_MS		25000	/* the whole variant, generously */
#define BATCH_TMO_NS	50000000LL
#define SEND_BATCH	8
#define RECV_BATCH	16
#define URING_CHAIN	4

struct ctx {
	int msgs;			/* per producer */
	atomic_uchar *seen;		/* [NMETH * msgs] */
	atomic_long sent[NMETH];
	atomic_long received[NMETH];
	atomic_long waits[2][NMETH];	/* [0] producers, [1] consumers */
	atomic_int failed;
	atomic_int ctl_fd;		/* for shutting everything down */
	pthread_mutex_t lock;
	char why[256];
	pthread_barrier_t start;
};

struct worker {
	struct ctx *c;
	pthread_t th;
	enum method m;
	bool producer;
	int fd;
	atomic_int done;
};

/* Record the first failure and stop everybody. */
static void fail(struct ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&c->lock);
	if (!atomic_load(&c->failed)) {
		va_start(ap, fmt);
		vsnprintf(c->why, sizeof(c->why), fmt, ap);
		va_end(ap);
		atomic_store(&c->failed, 1);
	}
	pthread_mutex_unlock(&c->lock);
	ioctl(atomic_load(&c->ctl_fd), MPMC_IOC_SHUTDOWN, MPMC_SHUT_RDWR);
}

/* Message @seq of producer @prod; returns its length. */
static size_t make_msg(unsigned char *buf, uint32_t prod, uint32_t seq,
		       uint32_t *rnd)
{
	return stress_msg(buf, prod, seq, rnd, MAX_MSG, MAX_MSG / 4);
}

/* Check one received message; @last is the consumer's per-producer state. */
static bool verify(struct ctx *c, enum method cons, unsigned char *buf,
		   size_t n, long *last)
{
	struct stress_hdr h;
	const char *bad;

	bad = stress_check(buf, n, MAX_MSG, NMETH, c->msgs, &h);
	if (bad) {
		fail(c, "%s consumer: %s (magic %#x len %u/%zu prod %u seq %u)",
		     meth_name[cons], bad, h.magic, h.len, n, h.prod, h.seq);
		return false;
	}
	if ((long)h.seq <= last[h.prod]) {
		fail(c, "%s consumer: %s producer's seq %u after seq %ld",
		     meth_name[cons], meth_name[h.prod], h.seq, last[h.prod]);
		return false;
	}
	last[h.prod] = h.seq;
	if (atomic_fetch_add(&c->seen[h.prod * c->msgs + h.seq], 1)) {
		fail(c, "%s consumer: duplicate (prod %s seq %u)",
		     meth_name[cons], meth_name[h.prod], h.seq);
		return false;
	}
	atomic_fetch_add(&c->received[cons], 1);
	return true;
}

/* epoll_wait for @ev on @ep; false (and a failure) on a stall. */
static bool wait_ready(struct ctx *c, struct worker *w, int ep)
{
	struct epoll_event ev;
	int n;

	atomic_fetch_add(&c->waits[!w->producer][w->m], 1);
	n = epoll_wait(ep, &ev, 1, STALL_MS);
	if (n == 1)
		return true;
	if (n == 0)
		fail(c, "%s %s: no epoll event for %d ms", meth_name[w->m],
		     w->producer ? "producer" : "consumer", STALL_MS);
	else
		fail(c, "%s: epoll_wait: %s", meth_name[w->m], strerror(errno));
	return false;
}

/* --- Producers --------------------------------------------------------- */

static void produce_block(struct ctx *c, struct worker *w, uint32_t *rnd)
{
	unsigned char buf[MAX_MSG];
	int seq;

	for (seq = 0; seq < c->msgs && !atomic_load(&c->failed); seq++) {
		size_t len = make_msg(buf, w->m, seq, rnd);
		ssize_t n = write(w->fd, buf, len);

		if (n != (ssize_t)len) {
			fail(c, "blocking write: %zd (%s)", n, strerror(errno));
			return;
		}
		atomic_fetch_add(&c->sent[w->m], 1);
	}
}

static void produce_epoll(struct ctx *c, struct worker *w, uint32_t *rnd)
{
	bool et = w->m == M_EPOLL_ET;
	unsigned char buf[MAX_MSG];
	int seq, ep;

	ep = epoll_for(w->fd, EPOLLOUT | (et ? EPOLLET : 0));
	if (ep < 0) {
		fail(c, "epoll setup: %s", strerror(errno));
		return;
	}
	for (seq = 0; seq < c->msgs && !atomic_load(&c->failed); seq++) {
		size_t len = make_msg(buf, w->m, seq, rnd);

		for (;;) {
			ssize_t n = write(w->fd, buf, len);

			if (n == (ssize_t)len)
				break;
			if (n >= 0 || errno != EAGAIN) {
				fail(c, "%s write: %zd (%s)", meth_name[w->m], n,
				     strerror(errno));
				goto out;
			}
			if (!wait_ready(c, w, ep))
				goto out;
		}
		atomic_fetch_add(&c->sent[w->m], 1);
	}
out:
	close(ep);
}

static void produce_batch(struct ctx *c, struct worker *w, uint32_t *rnd)
{
	static __thread unsigned char bufs[SEND_BATCH][MAX_MSG];
	struct mpmc_msgvec vec[SEND_BATCH];
	int seq = 0;

	while (seq < c->msgs && !atomic_load(&c->failed)) {
		int k = 1 + xorshift(rnd) % SEND_BATCH, i = 0;

		if (k > c->msgs - seq)
			k = c->msgs - seq;
		for (i = 0; i < k; i++) {
			vec[i].buf = (uintptr_t)bufs[i];
			vec[i].len = make_msg(bufs[i], w->m, seq + i, rnd);
			vec[i].prio = 0;
		}
		i = 0;
		while (i < k) {
			struct mpmc_batch b = {
				.vec = (uintptr_t)&vec[i], .count = k - i,
				.timeout_ns = BATCH_TMO_NS,
			};
			int n = ioctl(w->fd, MPMC_IOC_SEND, &b);

			if (n > 0 && n <= k - i) {
				i += n;
				atomic_fetch_add(&c->sent[w->m], n);
				continue;
			}
			if (n < 0 && errno == ETIMEDOUT &&
			    !atomic_load(&c->failed)) {
				atomic_fetch_add(&c->waits[0][w->m], 1);
				continue;
			}
			fail(c, "batch send of %d: %d (%s)", k - i, n,
			     strerror(errno));
			return;
		}
		seq += k;
	}
}

static void produce_uring(struct ctx *c, struct worker *w, uint32_t *rnd)
{
	static __thread unsigned char bufs[URING_CHAIN][MAX_MSG];
	unsigned int lens[URING_CHAIN];
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	int seq = 0, ret;

	ret = io_uring_queue_init(2 * URING_CHAIN, &ring, 0);
	if (ret) {
		fail(c, "io_uring_queue_init: %s", strerror(-ret));
		return;
	}
	while (seq < c->msgs && !atomic_load(&c->failed)) {
		int k = 1 + xorshift(rnd) % URING_CHAIN, i;

		if (k > c->msgs - seq)
			k = c->msgs - seq;
		/* A linked chain keeps the order of this producer's messages. */
		for (i = 0; i < k; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			lens[i] = make_msg(bufs[i], w->m, seq + i, rnd);
			io_uring_prep_write(sqe, w->fd, bufs[i], lens[i], (__u64)-1);
			sqe->user_data = i;
			if (i < k - 1)
				sqe->flags |= IOSQE_IO_LINK;
		}
		ret = io_uring_submit(&ring);
		if (ret != k) {
			fail(c, "io_uring_submit: %d", ret);
			break;
		}
		for (i = 0; i < k; i++) {
			ret = io_uring_wait_cqe(&ring, &cqe);
			if (ret) {
				fail(c, "io_uring_wait_cqe: %s", strerror(-ret));
				goto out;
			}
			if (cqe->res != (int)lens[cqe->user_data]) {
				fail(c, "io_uring WRITE %llu of %d: %d (%s)",
				     (unsigned long long)cqe->user_data, k,
				     cqe->res, strerror(-cqe->res));
				io_uring_cqe_seen(&ring, cqe);
				goto out;
			}
			io_uring_cqe_seen(&ring, cqe);
		}
		atomic_fetch_add(&c->sent[w->m], k);
		seq += k;
	}
out:
	io_uring_queue_exit(&ring);
}

/* --- Consumers --------------------------------------------------------- */

static void consume_block(struct ctx *c, struct worker *w, long *last)
{
	unsigned char buf[MAX_MSG];

	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));

		if (n == 0)
			return;
		if (n < 0) {
			fail(c, "blocking read: %s", strerror(errno));
			return;
		}
		if (!verify(c, w->m, buf, n, last))
			return;
	}
}

static void consume_epoll(struct ctx *c, struct worker *w, long *last)
{
	bool et = w->m == M_EPOLL_ET;
	unsigned char buf[MAX_MSG];
	int ep;

	ep = epoll_for(w->fd, EPOLLIN | (et ? EPOLLET : 0));
	if (ep < 0) {
		fail(c, "epoll setup: %s", strerror(errno));
		return;
	}
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));

		if (n == 0)
			break;
		if (n > 0) {
			if (!verify(c, w->m, buf, n, last))
				break;
			continue;
		}
		if (errno != EAGAIN) {
			fail(c, "%s read: %s", meth_name[w->m], strerror(errno));
			break;
		}
		if (!wait_ready(c, w, ep))
			break;
	}
	close(ep);
}

static void consume_batch(struct ctx *c, struct worker *w, long *last)
{
	static __thread unsigned char bufs[RECV_BATCH][MAX_MSG];
	struct mpmc_msgvec vec[RECV_BATCH];
	uint32_t rnd = 0x12345678;

	for (;;) {
		int k = 1 + xorshift(&rnd) % RECV_BATCH, i, n;
		struct mpmc_batch b = {
			.vec = (uintptr_t)vec, .count = k,
			.timeout_ns = BATCH_TMO_NS,
		};

		/* The first entry fits anything; later ones may be too small. */
		for (i = 0; i < k; i++) {
			vec[i].buf = (uintptr_t)bufs[i];
			vec[i].len = i && xorshift(&rnd) % 4 == 0 ?
				     xorshift(&rnd) % MAX_MSG : MAX_MSG;
			vec[i].prio = 0;
		}
		n = ioctl(w->fd, MPMC_IOC_RECV, &b);
		if (n == 0)
			return;
		if (n < 0 && errno == ETIMEDOUT && !atomic_load(&c->failed)) {
			atomic_fetch_add(&c->waits[1][w->m], 1);
			continue;
		}
		if (n < 0 || n > k) {
			fail(c, "batch receive of %d: %d (%s)", k, n, strerror(errno));
			return;
		}
		for (i = 0; i < n; i++)
			if (!verify(c, w->m, bufs[i], vec[i].len, last))
				return;
	}
}

static void consume_uring(struct ctx *c, struct worker *w, long *last)
{
	unsigned char buf[MAX_MSG];
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	int ret, res;

	ret = io_uring_queue_init(4, &ring, 0);
	if (ret) {
		fail(c, "io_uring_queue_init: %s", strerror(-ret));
		return;
	}
	for (;;) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		io_uring_prep_read(sqe, w->fd, buf, sizeof(buf), (__u64)-1);
		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0) {
			fail(c, "io_uring_submit_and_wait: %s", strerror(-ret));
			break;
		}
		ret = io_uring_peek_cqe(&ring, &cqe);
		if (ret) {
			fail(c, "io_uring_peek_cqe: %s", strerror(-ret));
			break;
		}
		res = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		if (res == 0)
			break;
		if (res < 0) {
			fail(c, "io_uring READ: %s", strerror(-res));
			break;
		}
		if (!verify(c, w->m, buf, res, last))
			break;
	}
	io_uring_queue_exit(&ring);
}

static void *worker_fn(void *arg)
{
	struct worker *w = arg;
	struct ctx *c = w->c;
	uint32_t rnd = 0x9e3779b9u * (w->m + 1);
	long last[NMETH];
	int i;

	for (i = 0; i < NMETH; i++)
		last[i] = -1;
	pthread_barrier_wait(&c->start);
	if (w->producer) {
		switch (w->m) {
		case M_BLOCK:
			produce_block(c, w, &rnd);
			break;
		case M_EPOLL_LT:
		case M_EPOLL_ET:
			produce_epoll(c, w, &rnd);
			break;
		case M_BATCH:
			produce_batch(c, w, &rnd);
			break;
		default:
			produce_uring(c, w, &rnd);
			break;
		}
		/* The last producer to close gives the consumers end of file. */
		close(w->fd);
	} else {
		switch (w->m) {
		case M_BLOCK:
			consume_block(c, w, last);
			break;
		case M_EPOLL_LT:
		case M_EPOLL_ET:
			consume_epoll(c, w, last);
			break;
		case M_BATCH:
			consume_batch(c, w, last);
			break;
		default:
			consume_uring(c, w, last);
			break;
		}
	}
	atomic_store(&w->done, 1);
	return NULL;
}

FIXTURE(stress_mixed) {
	struct ctx c;
	struct worker w[2 * NMETH];
	int stats_fd;
};

FIXTURE_VARIANT(stress_mixed) {
	unsigned int capacity;
	int msgs;	/* per producer */
};

FIXTURE_VARIANT_ADD(stress_mixed, cap1) {
	.capacity = 1, .msgs = 6000,
};

FIXTURE_VARIANT_ADD(stress_mixed, cap16) {
	.capacity = 16, .msgs = 8000,
};

FIXTURE_VARIANT_ADD(stress_mixed, cap1024) {
	.capacity = 1024, .msgs = 12000,
};

FIXTURE_SETUP(stress_mixed)
{
	memset(&self->c, 0, sizeof(self->c));
	self->c.msgs = variant->msgs;
	self->c.seen = calloc((size_t)NMETH * variant->msgs, 1);
	ASSERT_NE(NULL, self->c.seen);
	pthread_mutex_init(&self->c.lock, NULL);
	self->stats_fd = -1;
}

FIXTURE_TEARDOWN(stress_mixed)
{
	free(self->c.seen);
	if (self->stats_fd >= 0)
		close(self->stats_fd);
}

static int endpoint(int fd, unsigned int roles, bool nonblock)
{
	struct mpmc_endpoint ep = {
		.roles = roles, .flags = O_CLOEXEC | (nonblock ? O_NONBLOCK : 0),
	};

	return ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &ep);
}

static bool all_done(struct worker *w, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!atomic_load(&w[i].done))
			return false;
	return true;
}

static long total(atomic_long *v)
{
	long t = 0;
	int i;

	for (i = 0; i < NMETH; i++)
		t += atomic_load(&v[i]);
	return t;
}

TEST_F_TIMEOUT(stress_mixed, exactly_once, 60)
{
	struct ctx *c = &self->c;
	long long t0, t1, end, progress_at;
	long n, last_progress = -1;
	struct timespec ts;
	struct mpmc_stats st;
	int fd, i, m, missing = 0, dups = 0;

	fd = mpmc_test_open_cfg(variant->capacity, MAX_MSG);
	ASSERT_LE(0, fd);
	/* A receive-only endpoint for stats: it does not hold off EOF. */
	self->stats_fd = endpoint(fd, MPMC_ROLE_RECV, true);
	ASSERT_LE(0, self->stats_fd);
	atomic_store(&c->ctl_fd, self->stats_fd);
	for (i = 0; i < 2 * NMETH; i++) {
		struct worker *w = &self->w[i];
		bool nb;

		w->c = c;
		w->producer = i < NMETH;
		w->m = i % NMETH;
		/* io_uring parks only on a blocking file; epoll needs O_NONBLOCK. */
		nb = w->m == M_EPOLL_LT || w->m == M_EPOLL_ET;
		w->fd = endpoint(fd, w->producer ? MPMC_ROLE_SEND : MPMC_ROLE_RECV, nb);
		ASSERT_LE(0, w->fd);
	}
	close(fd);
	MPMC_STATS(self->stats_fd, &st);
	ASSERT_EQ((__u32)NMETH, st.send_files);
	ASSERT_EQ((__u32)NMETH + 1, st.recv_files);
	ASSERT_EQ(variant->capacity, st.capacity);

	ASSERT_EQ(0, pthread_barrier_init(&c->start, NULL, 2 * NMETH + 1));
	for (i = 0; i < 2 * NMETH; i++)
		ASSERT_EQ(0, pthread_create(&self->w[i].th, NULL, worker_fn,
					    &self->w[i]));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
	end = t0 + RUN_MS;
	progress_at = t0;
	pthread_barrier_wait(&c->start);

	/* Watchdog: no progress for STALL_MS or past RUN_MS is a failure. */
	while (!all_done(self->w, 2 * NMETH)) {
		long long now;

		usleep(20000);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
		n = total(c->sent) + total(c->received);
		if (n != last_progress) {
			last_progress = n;
			progress_at = now;
		}
		if (now - progress_at > STALL_MS || now > end) {
			MPMC_STATS(self->stats_fd, &st);
			fail(c, "%s after %lld ms: sent %ld received %ld; queued %u blocked senders %u receivers %u",
			     now > end ? "too slow" : "stalled", now - t0,
			     total(c->sent), total(c->received), st.queued_msgs,
			     st.blocked_senders, st.blocked_receivers);
			break;
		}
	}
	for (i = 0; i < 2 * NMETH; i++)
		pthread_join(self->w[i].th, NULL);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t1 = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
	pthread_barrier_destroy(&c->start);

	ASSERT_EQ(0, atomic_load(&c->failed)) {
		TH_LOG("%s", c->why);
	}
	for (i = 0; i < NMETH * c->msgs; i++) {
		if (!c->seen[i] && missing++ < 5)
			TH_LOG("missing: %s producer's seq %d",
			       meth_name[i / c->msgs], i % c->msgs);
		dups += c->seen[i] > 1;
	}
	EXPECT_EQ(0, missing);
	EXPECT_EQ(0, dups);
	for (m = 0; m < NMETH; m++)
		EXPECT_EQ(c->msgs, atomic_load(&c->sent[m]));
	EXPECT_EQ((long)NMETH * c->msgs, total(c->received));

	MPMC_STATS(self->stats_fd, &st);
	EXPECT_EQ((__u64)NMETH * c->msgs, st.total_sent);
	EXPECT_EQ((__u64)NMETH * c->msgs, st.total_received);
	EXPECT_EQ(0U, st.queued_msgs);
	EXPECT_EQ(0U, st.queued_bytes);
	EXPECT_EQ(0U, st.send_files);
	EXPECT_EQ(0U, st.blocked_senders);
	EXPECT_EQ(0U, st.blocked_receivers);
	EXPECT_EQ((__u32)MPMC_SHUT_WR, st.shutdown & MPMC_SHUT_WR);

	TH_LOG("capacity %u: %ld of %ld messages verified, %d missing, %d duplicated, in %lld ms",
	       variant->capacity, total(c->received), (long)NMETH * c->msgs,
	       missing, dups, t1 - t0);
	for (m = 0; m < NMETH; m++)
		TH_LOG("  %-8s producer waits %5ld | consumer got %5ld, waits %5ld",
		       meth_name[m], atomic_load(&c->waits[0][m]),
		       atomic_load(&c->received[m]), atomic_load(&c->waits[1][m]));
	for (i = NMETH; i < 2 * NMETH; i++)
		close(self->w[i].fd);
}

TEST_HARNESS_MAIN
