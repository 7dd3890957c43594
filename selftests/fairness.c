// SPDX-License-Identifier: GPL-2.0
/*
 * Fairness of /dev/mpmc against barging: callers asleep in read, write or a
 * batch ioctl are served in the order they blocked, and nobody who does not
 * sleep (a non-blocking caller spinning, an epoll-driven caller, a parked
 * io_uring request) gets in ahead of them:
 *  - a freed slot goes to the oldest blocked writer, never to a spinning
 *    non-blocking writer, a timeout-0 batch or a parked io_uring WRITE;
 *  - a message goes to the oldest blocked reader and never becomes visible
 *    to epoll (no EPOLLIN) or to a parked io_uring READ;
 *  - a blocked reader whose buffer is too small gets EMSGSIZE and the
 *    message goes to the next blocked reader, read() or batch alike, and
 *    only when no blocked reader is left to pollers;
 *  - the rest of a blocked send batch does not overtake writers that
 *    blocked after it.
 * Plain FIFO order of blocked readers/writers, one wakeup per message and a
 * spinning non-blocking reader are covered by blocking.c.
 *
 * Sleepers run in threads; "is it asleep" is checked through
 * stats.blocked_receivers / stats.blocked_senders with a bounded deadline.
 */
#define _GNU_SOURCE
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <time.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

/* Generous bounds: the tests run in an emulated (TCG) guest. */
#define SETTLE_US	150000	/* to let a wrongly woken thread show itself */
#define BUFSZ		256

static unsigned int blocked(int fd, bool rx)
{
	struct mpmc_stats st;

	if (ioctl(fd, MPMC_IOC_GET_STATS, &st))
		return ~0U;
	return rx ? st.blocked_receivers : st.blocked_senders;
}

/*
 * Receive one message (up to BUFSZ bytes) as a C string, waiting at most
 * WAIT_MS so that a module that never delivers fails instead of hanging.
 */
static ssize_t recv_str(int fd, char *buf)
{
	struct mpmc_msgvec v = { .buf = (uintptr_t)buf, .len = BUFSZ };
	struct mpmc_batch b = {
		.vec = (uintptr_t)&v, .count = 1,
		.timeout_ns = WAIT_MS * 1000000LL,
	};
	int ret = ioctl(fd, MPMC_IOC_RECV, &b);

	if (ret != 1)
		return -1;
	buf[v.len] = '\0';
	return v.len;
}

/* Events pending on @ep within @ms milliseconds (0: none). */
static unsigned int epoll_poll(int ep, int ms)
{
	struct epoll_event ev;
	int n = epoll_wait(ep, &ev, 1, ms);

	return n > 0 ? ev.events : 0;
}

/* Is there a completion on @ring? Fills *res if so. */
static bool uring_done(struct io_uring *ring, int *res)
{
	struct io_uring_cqe *cqe;

	if (io_uring_peek_cqe(ring, &cqe))
		return false;
	*res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return true;
}

/* Wait up to WAIT_MS for a completion on @ring; -1 if none came. */
static int uring_wait(struct io_uring *ring, int *res)
{
	struct __kernel_timespec ts = { .tv_sec = WAIT_MS / 1000 };
	struct io_uring_cqe *cqe;

	if (io_uring_wait_cqe_timeout(ring, &cqe, &ts))
		return -1;
	*res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return 0;
}

/* Submit one READ (@write false) or WRITE of @buf on @fd; 0 on success. */
static int uring_submit(struct io_uring *ring, int fd, bool write, void *buf,
			unsigned int len)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe)
		return -1;
	if (write)
		io_uring_prep_write(sqe, fd, buf, len, (__u64)-1);
	else
		io_uring_prep_read(sqe, fd, buf, len, (__u64)-1);
	return io_uring_submit(ring) == 1 ? 0 : -1;
}

/*
 * A caller that never sleeps, trying all the time: a non-blocking write(),
 * a non-blocking read(), a timeout-0 send batch, or an epoll-driven reader
 * (level-triggered EPOLLIN, then a non-blocking read). It stops after its
 * first success (once, for writers) or when told to.
 */
enum spin_kind { S_WRITE, S_BSEND, S_EPOLL_READ };

struct spinner {
	pthread_t th;
	int fd;
	int ep;
	enum spin_kind kind;
	const char *msg;
	atomic_int stop;
	atomic_long tries;	/* EAGAIN, or epoll_wait timeouts */
	atomic_long events;	/* epoll: EPOLLIN reported */
	atomic_long got;	/* successes */
	atomic_long other;	/* unexpected results */
	char buf[BUFSZ + 1];
};

static void *spin_fn(void *arg)
{
	struct spinner *s = arg;
	size_t len = s->msg ? strlen(s->msg) : 0;
	struct mpmc_msgvec v = { .buf = (uintptr_t)s->msg, .len = len };
	struct mpmc_batch b = { .vec = (uintptr_t)&v, .count = 1, .timeout_ns = 0 };
	ssize_t n = -1;

	while (!atomic_load(&s->stop)) {
		switch (s->kind) {
		case S_WRITE:
			n = write(s->fd, s->msg, len);
			break;
		case S_BSEND:
			n = ioctl(s->fd, MPMC_IOC_SEND, &b) == 1 ? (ssize_t)len : -1;
			break;
		case S_EPOLL_READ:
			if (!epoll_poll(s->ep, 20)) {
				atomic_fetch_add(&s->tries, 1);
				continue;
			}
			atomic_fetch_add(&s->events, 1);
			n = read(s->fd, s->buf, BUFSZ);
			if (n > 0) {
				s->buf[n] = '\0';
				atomic_fetch_add(&s->got, 1);
				continue;
			}
			break;
		}
		if (s->kind != S_EPOLL_READ && n == (ssize_t)len) {
			atomic_fetch_add(&s->got, 1);
			break;
		}
		if (n < 0 && errno == EAGAIN)
			atomic_fetch_add(&s->tries, 1);
		else
			atomic_fetch_add(&s->other, 1);
	}
	return NULL;
}

static int spin_start(struct spinner *s, int fd, enum spin_kind kind,
		      const char *msg)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->kind = kind;
	s->msg = msg;
	s->ep = -1;
	if (kind == S_EPOLL_READ) {
		s->ep = epoll_for(fd, EPOLLIN);
		if (s->ep < 0)
			return -1;
	}
	return pthread_create(&s->th, NULL, spin_fn, s);
}

/* Wait until @s has tried (and failed) @n more times than @since. */
static int spin_wait_tries(struct spinner *s, long since, long n)
{
	long long end = now_ms() + WAIT_MS;

	while (atomic_load(&s->tries) < since + n) {
		if (atomic_load(&s->got) || now_ms() > end)
			return -1;
		usleep(500);
	}
	return 0;
}

static void spin_stop(struct spinner *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->th, NULL);
	if (s->ep >= 0)
		close(s->ep);
}

#define NWRITERS 4
#define NROUNDS 8

/*
 * The non-blocking side of @fd for @role (MPMC_ROLE_SEND or _RECV): an
 * O_NONBLOCK endpoint *@nb, an epoll instance *@ep waiting for it to be
 * ready, and a ring of 4 entries.
 */
static void pollers_of(struct __test_metadata *_metadata, int fd,
		       __u32 role, int *nb, int *ep, struct io_uring *ring)
{
	*nb = new_ep(fd, role, O_NONBLOCK);
	ASSERT_LE(0, *nb);
	*ep = epoll_for(*nb, role == MPMC_ROLE_SEND ? EPOLLOUT : EPOLLIN);
	ASSERT_LE(0, *ep);
	ASSERT_EQ(0, io_uring_queue_init(4, ring, 0));
}

/* What the writers' round looked like when it failed. */
static void log_round(struct __test_metadata *_metadata, int fd,
		      struct spinner *sp, struct io_uring *ring)
{
	struct mpmc_stats st = { 0 };
	int j, res = 0;
	bool done = uring_done(ring, &res);

	if (ioctl(fd, MPMC_IOC_GET_STATS, &st))
		TH_LOG("MPMC_IOC_GET_STATS: %s", strerror(errno));
	TH_LOG("channel: capacity %u, queued %u, blocked senders %u, receivers %u, sent %llu, received %llu",
	       st.capacity, st.queued_msgs, st.blocked_senders,
	       st.blocked_receivers, (unsigned long long)st.total_sent,
	       (unsigned long long)st.total_received);
	for (j = 0; j < 2; j++)
		TH_LOG("spinner %d: tries %ld, got %ld, other %ld", j,
		       atomic_load(&sp[j].tries), atomic_load(&sp[j].got),
		       atomic_load(&sp[j].other));
	TH_LOG("io_uring WRITE: %s %d", done ? "completed" : "pending", res);
}

/*
 * (a) Capacity 1, full, 4 writers asleep in a known order (write() and
 * batches alternately). Meanwhile a non-blocking writer spins, a timeout-0
 * batch spins and an io_uring WRITE is parked. A reader takes one message
 * at a time, letting the spinners try in between: every freed slot goes to
 * the oldest blocked writer, so the spinners only get in after all 4.
 * Barging is a race, so the scenario runs NROUNDS times.
 */
static void spinners_round(struct __test_metadata *_metadata, int round)
{
	static const char * const late[] = { "spin-write", "spin-batch", "uring" };
	struct spinner sp[2];
	struct op wr[NWRITERS];
	struct io_uring ring;
	char msg[BUFSZ + 1], want[32];
	bool late_seen[3] = { false };
	long tries[2];
	int fd, nb, ep, i, j, res;

	fd = mpmc_test_open_cfg(1, BUFSZ);
	ASSERT_LE(0, fd);
	pollers_of(_metadata, fd, MPMC_ROLE_SEND, &nb, &ep, &ring);

	ASSERT_EQ(0, write_str(fd, "m0"));
	for (i = 0; i < NWRITERS; i++) {
		snprintf(want, sizeof(want), "w%d", i);
		ASSERT_EQ(0, op_start(&wr[i], fd, i % 2 ? OP_BSEND : OP_WRITE,
				      want, strlen(want)));
		ASSERT_EQ(0, wait_blocked(fd, false, i + 1));
	}
	ASSERT_EQ(0, uring_submit(&ring, fd, true, (void *)late[2],
				  strlen(late[2])));
	ASSERT_EQ(0, spin_start(&sp[0], nb, S_WRITE, late[0]));
	ASSERT_EQ(0, spin_start(&sp[1], fd, S_BSEND, late[1]));
	EXPECT_EQ(0U, epoll_poll(ep, 0));

	for (i = 0; i <= NWRITERS; i++) {
		/* Let both spinners fail a few times in the current state. */
		for (j = 0; j < 2; j++) {
			tries[j] = atomic_load(&sp[j].tries);
			ASSERT_EQ(0, spin_wait_tries(&sp[j], tries[j], 3)) {
				TH_LOG("round %d, before read %d, %s got in (or stalled)",
				       round, i, late[j]);
				log_round(_metadata, fd, sp, &ring);
			}
		}
		EXPECT_FALSE(uring_done(&ring, &res)) {
			TH_LOG("before read %d, the io_uring WRITE completed: %d",
			       i, res);
		}
		EXPECT_EQ(0U, epoll_poll(ep, 0)) {
			TH_LOG("before read %d, EPOLLOUT with writers asleep", i);
		}
		ASSERT_LT(0, recv_str(fd, msg));
		if (i == 0)
			snprintf(want, sizeof(want), "m0");
		else
			snprintf(want, sizeof(want), "w%d", i - 1);
		ASSERT_STREQ(want, msg) {
			TH_LOG("round %d, read %d", round, i);
		}
		ASSERT_EQ(i < NWRITERS ? NWRITERS - 1U - i : 0U,
			  blocked(fd, false));
	}

	/* Now the three latecomers, in any order, each exactly once. */
	for (i = 0; i < 3; i++) {
		ASSERT_LT(0, recv_str(fd, msg)) {
			TH_LOG("round %d, latecomer %d: %s", round, i,
			       strerror(errno));
			log_round(_metadata, fd, sp, &ring);
		}
		for (j = 0; j < 3; j++) {
			if (!strcmp(msg, late[j])) {
				EXPECT_FALSE(late_seen[j]);
				late_seen[j] = true;
				break;
			}
		}
		ASSERT_GT(3, j) {
			TH_LOG("unexpected message \"%s\"", msg);
		}
	}
	ASSERT_EQ(0, uring_wait(&ring, &res));
	EXPECT_EQ((int)strlen(late[2]), res);
	for (i = 0; i < NWRITERS; i++) {
		ASSERT_EQ(0, op_join(&wr[i]));
		EXPECT_EQ(2, wr[i].ret);
	}
	for (j = 0; j < 2; j++) {
		spin_stop(&sp[j]);
		EXPECT_EQ(1, atomic_load(&sp[j].got));
		EXPECT_EQ(0, atomic_load(&sp[j].other));
	}
	EXPECT_EQ(0U, blocked(fd, false));
	io_uring_queue_exit(&ring);
	close(ep);
	close(nb);
	close(fd);
}

TEST(spinners_never_overtake_blocked_writers)
{
	int round;

	for (round = 0; round < NROUNDS; round++)
		spinners_round(_metadata, round);
}

#define NREADERS 4

/*
 * (b) 4 readers asleep (read() and batches alternately) plus an epoll LT
 * reader thread and a parked io_uring READ, both set up before the readers
 * blocked. 4 messages written one at a time each go to the next blocked
 * reader; epoll never reports EPOLLIN and the io_uring READ stays parked.
 * A fifth message, with no blocked reader left, goes to a poller.
 */
TEST(blocked_readers_before_pollers)
{
	struct io_uring ring;
	struct spinner ep_rd;
	struct op rd[NREADERS];
	char ubuf[BUFSZ + 1], msg[32];
	bool uring_got;
	long long end;
	int fd, nb, ep, i, j, res;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	pollers_of(_metadata, fd, MPMC_ROLE_RECV, &nb, &ep, &ring);
	/* io_uring parks a READ only on a blocking file: use @fd. */
	ASSERT_EQ(0, uring_submit(&ring, fd, false, ubuf, BUFSZ));
	ASSERT_EQ(0, spin_start(&ep_rd, nb, S_EPOLL_READ, NULL));
	ASSERT_EQ(0, spin_wait_tries(&ep_rd, 0, 1));

	for (i = 0; i < NREADERS; i++) {
		ASSERT_EQ(0, op_start(&rd[i], fd, i % 2 ? OP_BRECV : OP_READ,
				      NULL, BUFSZ));
		ASSERT_EQ(0, wait_blocked(fd, true, i + 1));
	}

	for (i = 0; i < NREADERS; i++) {
		snprintf(msg, sizeof(msg), "msg %d", i);
		ASSERT_EQ(0, write_str(fd, msg));
		ASSERT_EQ(0, op_join(&rd[i])) {
			TH_LOG("reader %d did not get message %d", i, i);
		}
		EXPECT_EQ((ssize_t)strlen(msg), rd[i].ret);
		EXPECT_STREQ(msg, rd[i].buf);
		for (j = i + 1; j < NREADERS; j++)
			EXPECT_FALSE(op_done(&rd[j]));
		EXPECT_EQ((unsigned int)(NREADERS - i - 1), blocked(fd, true));
		/* The message never became visible to pollers. */
		EXPECT_EQ(0U, epoll_poll(ep, 50));
		EXPECT_FALSE(uring_done(&ring, &res)) {
			TH_LOG("after message %d, io_uring READ completed: %d",
			       i, res);
		}
	}
	usleep(SETTLE_US);
	EXPECT_EQ(0, atomic_load(&ep_rd.events));
	EXPECT_EQ(0, atomic_load(&ep_rd.got));
	EXPECT_EQ(0, atomic_load(&ep_rd.other));
	EXPECT_FALSE(uring_done(&ring, &res));
	EXPECT_EQ(0U, epoll_poll(ep, 0));

	/* No blocked reader left: now a poller gets the message. */
	ASSERT_EQ(0, write_str(fd, "msg 4"));
	end = now_ms() + WAIT_MS;
	uring_got = false;
	while (!atomic_load(&ep_rd.got) && now_ms() < end) {
		uring_got = uring_done(&ring, &res);
		if (uring_got)
			break;
		usleep(1000);
	}
	if (uring_got) {
		EXPECT_EQ(5, res);
		EXPECT_EQ(0, memcmp(ubuf, "msg 4", 5));
	} else {
		ASSERT_EQ(1, atomic_load(&ep_rd.got));
		EXPECT_STREQ("msg 4", ep_rd.buf);
	}
	spin_stop(&ep_rd);
	EXPECT_LE(1, atomic_load(&ep_rd.events) + uring_got);
	io_uring_queue_exit(&ring);
	close(ep);
	close(nb);
	close(fd);
}

/*
 * (c) Blocked readers with small and big buffers, alternately: a big
 * message makes each small one in turn fail with EMSGSIZE and goes to the
 * next blocked reader, for read() and batches alike; it never reaches the
 * epoll reader while a blocked reader can take it. A message that fits
 * goes to the small reader. When only too-small readers are blocked, they
 * all get EMSGSIZE and the message is queued for the pollers.
 */
/*
 * Write the 100 byte @msg: the blocked reader @small, first in line, fails
 * with EMSGSIZE and @big, next, gets the message.
 */
static void small_then_big(struct __test_metadata *_metadata, int fd,
			   const char *msg, struct op *small, struct op *big)
{
	ASSERT_EQ(0, write_str(fd, msg));
	ASSERT_EQ(0, op_join(small));
	EXPECT_OP_ERR(*small, EMSGSIZE);
	ASSERT_EQ(0, op_join(big));
	EXPECT_EQ(100, big->ret);
	EXPECT_STREQ(msg, big->buf);
}

TEST(emsgsize_passes_to_next_blocked_reader)
{
	static const struct { enum op_kind kind; size_t room; } rds[] = {
		{ OP_READ, 8 }, { OP_BRECV, BUFSZ }, { OP_BRECV, 8 }, { OP_READ, BUFSZ },
		{ OP_BRECV, 8 }, { OP_READ, 8 },
	};
	struct mpmc_stats st;
	struct spinner ep_rd;
	struct op rd[6];
	char big[2][101];
	long long end;
	int fd, nb, i;

	for (i = 0; i < 2; i++) {
		memset(big[i], 'a' + i, 100);
		big[i][100] = '\0';
	}
	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	nb = new_ep(fd, MPMC_ROLE_RECV, O_NONBLOCK);
	ASSERT_LE(0, nb);
	ASSERT_EQ(0, spin_start(&ep_rd, nb, S_EPOLL_READ, NULL));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, op_start(&rd[i], fd, rds[i].kind, NULL, rds[i].room));
		ASSERT_EQ(0, wait_blocked(fd, true, i + 1));
	}

	/* Readers 0 (small) and 1 (big): 0 gets EMSGSIZE, 1 the message. */
	small_then_big(_metadata, fd, big[0], &rd[0], &rd[1]);
	EXPECT_EQ(2U, blocked(fd, true));
	EXPECT_FALSE(op_done(&rd[2]));
	EXPECT_FALSE(op_done(&rd[3]));

	/* Readers 2 (small batch) and 3 (big read): the same again. */
	small_then_big(_metadata, fd, big[1], &rd[2], &rd[3]);

	MPMC_STATS(fd, &st);
	EXPECT_EQ(0U, st.queued_msgs);
	EXPECT_EQ(0U, st.blocked_receivers);
	EXPECT_EQ(2U, st.total_received);
	EXPECT_EQ(0, atomic_load(&ep_rd.events));

	/* Two small readers: a message that fits goes to the first. */
	for (i = 4; i < 6; i++) {
		ASSERT_EQ(0, op_start(&rd[i], fd, rds[i].kind, NULL, rds[i].room));
		ASSERT_EQ(0, wait_blocked(fd, true, i - 3));
	}
	ASSERT_EQ(0, write_str(fd, "fits"));
	ASSERT_EQ(0, op_join(&rd[4]));
	EXPECT_EQ(4, rd[4].ret);
	EXPECT_STREQ("fits", rd[4].buf);
	EXPECT_EQ(1U, blocked(fd, true));
	usleep(SETTLE_US);
	EXPECT_FALSE(op_done(&rd[5]));
	EXPECT_EQ(0, atomic_load(&ep_rd.events));

	/* Only a too-small reader is left: EMSGSIZE, then epoll gets it. */
	ASSERT_EQ(0, write_str(fd, big[0]));
	ASSERT_EQ(0, op_join(&rd[5]));
	EXPECT_OP_ERR(rd[5], EMSGSIZE);
	end = now_ms() + WAIT_MS;
	while (!atomic_load(&ep_rd.got) && now_ms() < end)
		usleep(1000);
	spin_stop(&ep_rd);
	ASSERT_EQ(1, atomic_load(&ep_rd.got));
	EXPECT_STREQ(big[0], ep_rd.buf);
	EXPECT_EQ(0, atomic_load(&ep_rd.other));

	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 0U, 4U, 4U);
	close(nb);
	close(fd);
}

/* A send batch of several messages in a thread. */
struct bsend {
	int fd;
	struct mpmc_batch b;
	int ret;
};

static void *bsend_fn(void *arg)
{
	struct bsend *p = arg;

	p->ret = ioctl(p->fd, MPMC_IOC_SEND, &p->b);
	return NULL;
}

/*
 * (d) A send batch asleep on a full channel (capacity 3) is admitted one
 * message at a time like any blocked writer: its remaining entries move
 * only without waiting, so they never overtake a writer that blocked after
 * the batch. A receive batch of 3 frees 3 slots: the batch's first entry
 * and the later writer are admitted, and the batch's second entry, if any,
 * comes after the writer's message.
 */
TEST(blocked_batch_rest_does_not_overtake)
{
	struct mpmc_msgvec v[3], rv[8];
	struct mpmc_batch b = { .vec = (uintptr_t)rv, .count = 8, .timeout_ns = 0 };
	char bufs[3][4] = { "b0", "b1", "b2" }, rbuf[8][BUFSZ];
	char seq[16][8];
	struct bsend bs;
	struct op wr;
	pthread_t th;
	int fd, i, n = 0, got;

	fd = mpmc_test_open_cfg(3, BUFSZ);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, write_str(fd, "m0"));
	ASSERT_EQ(0, write_str(fd, "m1"));
	ASSERT_EQ(0, write_str(fd, "m2"));
	for (i = 0; i < 3; i++)
		v[i] = (struct mpmc_msgvec){ .buf = (uintptr_t)bufs[i], .len = 2 };
	bs.fd = fd;
	bs.b = (struct mpmc_batch){ .vec = (uintptr_t)v, .count = 3, .timeout_ns = -1 };
	bs.ret = -2;
	ASSERT_EQ(0, pthread_create(&th, NULL, bsend_fn, &bs));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	ASSERT_EQ(0, op_start(&wr, fd, OP_WRITE, "w", 1));
	ASSERT_EQ(0, wait_blocked(fd, false, 2));

	for (i = 0; i < 8; i++)
		rv[i] = (struct mpmc_msgvec){ .buf = (uintptr_t)rbuf[i], .len = BUFSZ };
	b.count = 3;
	ASSERT_EQ(3, ioctl(fd, MPMC_IOC_RECV, &b));
	for (i = 0; i < 3; i++) {
		rbuf[i][rv[i].len] = '\0';
		snprintf(seq[n++], sizeof(seq[0]), "%s", rbuf[i]);
	}
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(1, wr.ret);
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_LE(1, bs.ret);
	EXPECT_GE(2, bs.ret);

	/* Drain the rest. */
	b.count = 8;
	for (i = 0; i < 8; i++)
		rv[i].len = BUFSZ;
	got = ioctl(fd, MPMC_IOC_RECV, &b);
	ASSERT_LE(2, got);
	for (i = 0; i < got; i++) {
		rbuf[i][rv[i].len] = '\0';
		snprintf(seq[n++], sizeof(seq[0]), "%s", rbuf[i]);
	}
	ASSERT_EQ(3 + 1 + bs.ret, n);
	EXPECT_STREQ("m0", seq[0]);
	EXPECT_STREQ("m1", seq[1]);
	EXPECT_STREQ("m2", seq[2]);
	EXPECT_STREQ("b0", seq[3]);
	EXPECT_STREQ("w", seq[4]) {
		TH_LOG("the blocked batch's second message overtook a blocked writer");
	}
	if (bs.ret == 2)
		EXPECT_STREQ("b1", seq[5]);
	EXPECT_EQ(0U, blocked(fd, false));
	close(fd);
}

TEST_HARNESS_MAIN
