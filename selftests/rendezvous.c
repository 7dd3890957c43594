// SPDX-License-Identifier: GPL-2.0
/*
 * Rendezvous channels (SPEC 13, capacity 0), Go's unbuffered channel:
 *  - SET_CONFIG accepts capacity 0, EBUSY while messages are queued (also
 *    with senders blocked on a full channel), nothing changed;
 *  - a send with no blocked receiver blocks (write, batch -1), or fails
 *    with EAGAIN (O_NONBLOCK, batch timeout 0) or ETIMEDOUT; a receive with
 *    no blocked sender blocks, or EAGAIN;
 *  - a blocked receiver is handed the oldest blocked sender's message
 *    (whatever its priority), and a send returns success only once a
 *    receiver has taken its message (total_received already counts it);
 *    FIFO among blocked senders, and among blocked receivers;
 *  - a sender interrupted (signal without SA_RESTART, batch timeout)
 *    before a receiver took its message fails and the message is never
 *    delivered; with SA_RESTART a write() restarts and is delivered once;
 *  - the races: a signal, or a timeout, at the moment a receiver arrives:
 *    the message is delivered and the send succeeds, or neither, each of
 *    many times;
 *  - EPOLLOUT exactly when a receiver is blocked in read or MPMC_IOC_RECV
 *    (whatever its buffer size; not for a peek, a poll or a parked
 *    io_uring READ), EPOLLIN exactly when a sender is blocked; sleeping
 *    pollers are woken when the other side blocks; the non-blocking calls
 *    agree;
 *  - FIONREAD: the oldest blocked sender's message length, 0 if none;
 *  - SHUT_WR: blocked senders fail with EPIPE, blocked and later receivers
 *    get end of file;
 *  - growing from 0 moves blocked senders' messages into the queue in the
 *    order they blocked (as many as fit); shrinking to 0 needs an empty
 *    queue;
 *  - a batch MPMC_IOC_SEND hands at most one message per blocked read();
 *    a receiver blocked in MPMC_IOC_RECV takes at least one and at most
 *    its count; a receive batch takes from as many blocked senders as its
 *    count;
 *  - a receiver that faults copying out a handed-over message puts it back
 *    at the head (one queued message), the sender having succeeded;
 *  - throughput mode does not apply: still a hand-off (SCHED_FIFO on one
 *    CPU makes the check deterministic).
 */
#define _GNU_SOURCE
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

#define BUFSZ		256
#define SETTLE_US	150000	/* to let a wrongly woken thread show itself */
#define RACE_ROUNDS	300

/* A rendezvous channel, max_msg_size 64. */
static int open_rv(void)
{
	return mpmc_test_open_cfg(0, 64);
}

/* A batch of one: send @buf (@len bytes, @prio) or receive into it. */
static int batch1(int fd, bool send, char *buf, __u32 len, __u32 prio,
		  __s64 timeout)
{
	struct mpmc_msgvec v = {
		.buf = (uintptr_t)buf, .len = len, .prio = prio,
	};
	int ret = batch_of_one(fd, send ? MPMC_IOC_SEND : MPMC_IOC_RECV, &v,
			       0, timeout);

	if (ret != 1)
		return ret == 0 ? 0 : -1;
	if (!send && v.len < len)
		buf[v.len] = '\0';
	return v.len;
}

/* Receive one message with timeout 0 into @buf[BUFSZ]: length, or -1. */
static int try_recv(int fd, char *buf)
{
	return batch1(fd, false, buf, BUFSZ - 1, 0, 0);
}

/* A sender thread: MPMC_IOC_SEND of one message at @prio, @timeout. */
struct snd {
	pthread_t th;
	int fd;
	char msg[32];
	__u32 prio;
	__s64 timeout;
	int ret, err;
	atomic_int done;
};

static void *snd_fn(void *arg)
{
	struct snd *s = arg;

	s->ret = batch1(s->fd, true, s->msg, strlen(s->msg), s->prio,
			s->timeout);
	s->err = s->ret < 0 ? errno : 0;
	atomic_store(&s->done, 1);
	return NULL;
}

static int snd_start(struct snd *s, int fd, const char *msg, __u32 prio,
		     __s64 timeout)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	snprintf(s->msg, sizeof(s->msg), "%s", msg);
	s->prio = prio;
	s->timeout = timeout;
	return pthread_create(&s->th, NULL, snd_fn, s);
}

/* ---- configuration ---------------------------------------------------- */

TEST(capacity_0_ebusy_while_queued)
{
	struct mpmc_config cfg;
	char buf[BUFSZ];
	struct op wr;
	int fd;

	fd = mpmc_test_open_cfg(4, 64);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, write_str(fd, "q"));
	EXPECT_ERRNO(EBUSY, set_config(fd, 0, 0));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(4U, cfg.capacity);
	ASSERT_EQ(1, read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, set_config(fd, 0, 0));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(0U, cfg.capacity);
	EXPECT_EQ(64U, cfg.max_msg_size);
	EXPECT_EQ(0U, stats_of(fd).capacity);
	close(fd);

	/* A full channel with a sender blocked: EBUSY too, nothing moves. */
	fd = blocked_writer(&wr, "queued", "blocked");
	ASSERT_LE(0, fd);
	EXPECT_ERRNO(EBUSY, set_config(fd, 0, 0));
	EXPECT_EQ(1U, stats_of(fd).capacity);
	EXPECT_EQ(1U, stats_of(fd).blocked_senders);
	CHECK_READ(fd, buf, "queued");
	ASSERT_EQ(0, op_join(&wr));
	CHECK_READ(fd, buf, "blocked");
	/* Empty now: capacity 0 is fine. */
	ASSERT_EQ(0, set_config(fd, 0, 0));
	close(fd);
}

/* ---- blocking and EAGAIN ---------------------------------------------- */

TEST(send_without_receiver_blocks_or_eagain)
{
	struct mpmc_stats st;
	char buf[BUFSZ];
	struct op wr;
	int fd, nb;

	fd = open_rv();
	ASSERT_LE(0, fd);
	nb = new_ep(fd, MPMC_ROLE_SEND, O_NONBLOCK);
	ASSERT_LE(0, nb);
	EXPECT_ERRNO(EAGAIN, write(nb, "x", 1));
	EXPECT_ERRNO(EAGAIN, batch1(fd, true, "x", 1, 0, 0));
	EXPECT_ERRNO(ETIMEDOUT, batch1(fd, true, "x", 1, 0, 100000000LL));
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 0U, 0U, 0U);
	EXPECT_EQ(0U, st.blocked_senders);

	ASSERT_EQ(0, start_writer(&wr, fd, "waits"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	usleep(SETTLE_US);
	EXPECT_FALSE(op_done(&wr));
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 0U, 0U, 0U);
	/* Another non-blocking sender still cannot get in. */
	EXPECT_ERRNO(EAGAIN, write(nb, "y", 1));
	ASSERT_EQ(5, try_recv(fd, buf));
	EXPECT_STREQ("waits", buf);
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(5, wr.ret);
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 0U, 1U, 1U);
	close(nb);
	close(fd);
}

TEST(recv_without_sender_blocks_or_eagain)
{
	struct op rd;
	char buf[BUFSZ];
	int fd, nb;

	fd = open_rv();
	ASSERT_LE(0, fd);
	nb = new_ep(fd, MPMC_ROLE_RECV, O_NONBLOCK);
	ASSERT_LE(0, nb);
	EXPECT_ERRNO(EAGAIN, read(nb, buf, sizeof(buf)));
	EXPECT_ERRNO(EAGAIN, try_recv(fd, buf));
	EXPECT_ERRNO(ETIMEDOUT, batch1(fd, false, buf, BUFSZ, 0, 100000000LL));
	ASSERT_EQ(0, start_reader(&rd, fd, 64));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	usleep(SETTLE_US);
	EXPECT_FALSE(op_done(&rd));
	ASSERT_EQ(0, write_str(fd, "late"));
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_EQ(4, rd.ret);
	EXPECT_STREQ("late", rd.buf);
	close(nb);
	close(fd);
}

/* ---- hand-off --------------------------------------------------------- */

/*
 * A receiver is blocked: a write (even O_NONBLOCK) hands it the message,
 * and when the write returns the receiver has it already.
 */
TEST(successful_write_means_a_receiver_took_it)
{
	struct mpmc_stats st;
	struct op rd;
	int fd, nb, i;

	fd = open_rv();
	ASSERT_LE(0, fd);
	nb = new_ep(fd, MPMC_ROLE_SEND, O_NONBLOCK);
	ASSERT_LE(0, nb);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, i == 2 ? op_start(&rd, fd, OP_BRECV, NULL, 64) :
				      start_reader(&rd, fd, 64));
		ASSERT_EQ(0, wait_blocked(fd, true, 1));
		ASSERT_EQ(5, i == 1 ? write(nb, "taken", 5) :
				      write(fd, "taken", 5));
		/* Counted as received before the send returned. */
		MPMC_STATS(fd, &st);
		EXPECT_TOTALS(st, 0U, (__u64)i + 1, (__u64)i + 1);
		EXPECT_EQ(0U, st.blocked_receivers);
		ASSERT_EQ(0, op_join(&rd));
		EXPECT_EQ(5, rd.ret);
		EXPECT_STREQ("taken", rd.buf);
	}
	close(nb);
	close(fd);
}

/* A sender is blocked: a receiver arriving takes its message, it returns. */
TEST(arriving_receiver_completes_blocked_sender)
{
	struct mpmc_stats st;
	char buf[BUFSZ];
	struct op wr;
	int fd;

	fd = open_rv();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, op_start(&wr, fd, OP_BSEND, "given", 5));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	CHECK_READ(fd, buf, "given");
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(5, wr.ret);
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 0U, 1U, 1U);
	EXPECT_EQ(0U, st.blocked_senders);
	close(fd);
}

/*
 * Senders block in order (write and batches, with priorities): each
 * receive takes the oldest blocked sender's message, whatever its
 * priority, and completes that sender only.
 */
TEST(fifo_among_blocked_senders_whatever_priority)
{
	static const struct { const char *msg; __u32 prio; } s[] = {
		{ "s0", 0 }, { "s1", 31 }, { "s2", 4 }, { "s3", 31 },
	};
	struct snd w[4];
	char buf[BUFSZ];
	int fd, i, j;

	fd = open_rv();
	ASSERT_LE(0, fd);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, snd_start(&w[i], fd, s[i].msg, s[i].prio, -1));
		ASSERT_EQ(0, wait_blocked(fd, false, i + 1));
	}
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(2, try_recv(fd, buf));
		EXPECT_STREQ(s[i].msg, buf);
		ASSERT_EQ(0, join_within(w[i].th));
		EXPECT_EQ(2, w[i].ret);
		for (j = i + 1; j < 4; j++)
			EXPECT_FALSE(atomic_load(&w[j].done));
		EXPECT_EQ(0, wait_blocked(fd, false, 3 - i));
	}
	close(fd);
}

TEST(fifo_among_blocked_receivers)
{
	struct op rd[3];
	int fd, i;

	fd = open_rv();
	ASSERT_LE(0, fd);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, start_reader(&rd[i], fd, 64));
		ASSERT_EQ(0, wait_blocked(fd, true, i + 1));
	}
	for (i = 0; i < 3; i++) {
		char msg[8];

		snprintf(msg, sizeof(msg), "r%d", i);
		ASSERT_EQ(0, write_str(fd, msg));
		ASSERT_EQ(0, op_join(&rd[i]));
		EXPECT_STREQ(msg, rd[i].buf);
	}
	close(fd);
}

/* ---- interrupted senders ---------------------------------------------- */

TEST(interrupted_sender_fails_never_delivered)
{
	struct mpmc_stats st;
	char buf[BUFSZ];
	struct op wr, rd;
	struct snd s;
	int fd;

	ASSERT_EQ(0, set_sigusr1(false));
	fd = open_rv();
	ASSERT_LE(0, fd);
	/* A signal without SA_RESTART: EINTR. */
	ASSERT_EQ(0, start_writer(&wr, fd, "signalled"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	ASSERT_EQ(0, pthread_kill(wr.th, SIGUSR1));
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_OP_ERR(wr, EINTR);
	/* A timeout: ETIMEDOUT. */
	ASSERT_EQ(0, snd_start(&s, fd, "timedout", 0, 200000000LL));
	ASSERT_EQ(0, join_within(s.th));
	EXPECT_EQ(-1, s.ret);
	EXPECT_EQ(ETIMEDOUT, s.err);
	/* Neither message is there for a receiver, now or later. */
	EXPECT_EQ(0U, stats_of(fd).blocked_senders);
	EXPECT_EQ(0, fionread(fd));
	EXPECT_ERRNO(EAGAIN, try_recv(fd, buf));
	ASSERT_EQ(0, start_reader(&rd, fd, 64));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	usleep(SETTLE_US);
	EXPECT_FALSE(op_done(&rd));
	ASSERT_EQ(0, write_str(fd, "next"));
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_STREQ("next", rd.buf);
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 0U, 1U, 1U);
	close(fd);
}

/* With SA_RESTART a blocked write() restarts, and is delivered once. */
TEST(restarted_sender_delivered_once)
{
	char buf[BUFSZ];
	struct op wr;
	int fd;

	ASSERT_EQ(0, set_sigusr1(true));
	fd = open_rv();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, start_writer(&wr, fd, "restarted"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	ASSERT_EQ(0, pthread_kill(wr.th, SIGUSR1));
	ASSERT_EQ(0, wait_sig_count(1));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	usleep(SETTLE_US);
	EXPECT_FALSE(op_done(&wr));
	ASSERT_EQ(9, try_recv(fd, buf));
	EXPECT_STREQ("restarted", buf);
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(9, wr.ret);
	EXPECT_ERRNO(EAGAIN, try_recv(fd, buf));
	EXPECT_EQ(1U, stats_of(fd).total_received);
	close(fd);
}

static void spin(unsigned int n)
{
	volatile unsigned int i;

	for (i = 0; i < n; i++)
		;
}

struct killer {
	pthread_t th;
	pthread_t target;
	atomic_int *go;
	unsigned int delay;
};

static void *killer_fn(void *arg)
{
	struct killer *k = arg;

	while (!atomic_load(k->go))
		;
	spin(k->delay);
	pthread_kill(k->target, SIGUSR1);
	return NULL;
}

/*
 * A blocked sender gets a signal just as a receiver (timeout 0) arrives,
 * from two threads, with varying delays: either the receiver got the
 * message and the send succeeded, or the send failed with EINTR and the
 * message is gone; never one without the other.
 */
TEST(race_signal_vs_arriving_receiver)
{
	int fd, i, both = 0, neither = 0, bad = 0;
	uint32_t rnd = 12345;
	char buf[BUFSZ];

	ASSERT_EQ(0, set_sigusr1(false));
	fd = open_rv();
	ASSERT_LE(0, fd);
	for (i = 0; i < RACE_ROUNDS; i++) {
		atomic_int go = 0;
		struct killer k = { .go = &go };
		struct op wr;
		char msg[16];
		int got;

		snprintf(msg, sizeof(msg), "m%d", i);
		ASSERT_EQ(0, start_writer(&wr, fd, msg));
		ASSERT_EQ(0, wait_blocked(fd, false, 1));
		k.target = wr.th;
		k.delay = xorshift(&rnd) % 20000;
		ASSERT_EQ(0, pthread_create(&k.th, NULL, killer_fn, &k));
		atomic_store(&go, 1);
		/* Half the rounds give the signal a head start. */
		spin(i % 2 ? xorshift(&rnd) % 20000 :
			     20000 + xorshift(&rnd) % 400000);
		got = try_recv(fd, buf);
		ASSERT_EQ(0, join_within(k.th));
		ASSERT_EQ(0, op_join(&wr));
		if (got > 0 && wr.ret == (ssize_t)strlen(msg) &&
		    !strcmp(buf, msg)) {
			both++;
		} else if (got < 0 && errno == EAGAIN && wr.ret == -1 &&
			   wr.err == EINTR) {
			neither++;
		} else {
			bad++;
			TH_LOG("round %d: receive %d (%s), send %zd errno %d",
			       i, got, got > 0 ? buf : strerror(errno),
			       wr.ret, wr.err);
		}
		/* Nothing is left behind for a later receiver. */
		EXPECT_ERRNO(EAGAIN, try_recv(fd, buf));
		EXPECT_EQ(0U, stats_of(fd).blocked_senders);
	}
	TH_LOG("delivered and sent %d, neither %d", both, neither);
	EXPECT_EQ(0, bad);
	EXPECT_EQ((__u64)both, stats_of(fd).total_received);
	EXPECT_EQ((__u64)both, stats_of(fd).total_sent);
	close(fd);
}

/* The same with a send timing out as the receiver arrives. */
TEST(race_timeout_vs_arriving_receiver)
{
	int fd, i, both = 0, neither = 0, bad = 0;
	uint32_t rnd = 777;
	char buf[BUFSZ];

	fd = open_rv();
	ASSERT_LE(0, fd);
	for (i = 0; i < RACE_ROUNDS; i++) {
		struct snd s;
		char msg[16];
		int got;

		snprintf(msg, sizeof(msg), "t%d", i);
		ASSERT_EQ(0, snd_start(&s, fd, msg, 0,
				       1000000 + xorshift(&rnd) % 2000000));
		usleep(500 + xorshift(&rnd) % 3000);
		got = try_recv(fd, buf);
		ASSERT_EQ(0, join_within(s.th));
		if (got > 0 && s.ret == (int)strlen(msg) && !strcmp(buf, msg)) {
			both++;
		} else if (got < 0 && errno == EAGAIN && s.ret == -1 &&
			   s.err == ETIMEDOUT) {
			neither++;
		} else {
			bad++;
			TH_LOG("round %d: receive %d (%s), send %d errno %d",
			       i, got, got > 0 ? buf : strerror(errno),
			       s.ret, s.err);
		}
		EXPECT_ERRNO(EAGAIN, try_recv(fd, buf));
	}
	TH_LOG("delivered and sent %d, neither %d", both, neither);
	EXPECT_EQ(0, bad);
	EXPECT_EQ((__u64)both, stats_of(fd).total_received);
	close(fd);
}

/* ---- readiness -------------------------------------------------------- */

/* A peek (MPMC_RECV_PEEK, timeout -1) in a thread. */
struct peeker {
	pthread_t th;
	int fd;
	int ret;
	char buf[BUFSZ];
};

static void *peeker_fn(void *arg)
{
	struct peeker *p = arg;
	struct mpmc_msgvec v = { .buf = (uintptr_t)p->buf, .len = BUFSZ };
	struct mpmc_batch b = {
		.vec = (uintptr_t)&v, .count = 1, .flags = MPMC_RECV_PEEK,
		.timeout_ns = -1,
	};

	p->ret = ioctl(p->fd, MPMC_IOC_RECV, &b);
	return NULL;
}

TEST(epollout_exactly_when_receiver_blocked)
{
	struct peeker pk = { 0 };
	struct io_uring ring;
	char ubuf[64];
	struct op rd;
	struct cqe c;
	int fd, tx, i;

	ASSERT_EQ(0, set_sigusr1(false));
	fd = open_rv();
	ASSERT_LE(0, fd);
	tx = new_ep(fd, MPMC_ROLE_SEND, O_NONBLOCK);
	ASSERT_LE(0, tx);
	EXPECT_EQ(0, revents(fd, POLLOUT));
	EXPECT_EQ(0, revents(tx, POLLOUT));

	/* A peek waiting is no receiver. */
	pk.fd = fd;
	ASSERT_EQ(0, pthread_create(&pk.th, NULL, peeker_fn, &pk));
	usleep(SETTLE_US);
	EXPECT_EQ(0, revents(tx, POLLOUT));
	/* Nor is a parked io_uring READ. */
	RING_INIT(&ring, 4);
	prep_read(&ring, fd, ubuf, sizeof(ubuf), 1);
	ASSERT_EQ(1, io_uring_submit(&ring));
	usleep(SETTLE_US);
	EXPECT_EQ(0, revents(tx, POLLOUT));
	EXPECT_ERRNO(EAGAIN, write(tx, "x", 1));

	/* read() with a 1-byte buffer, read(), MPMC_IOC_RECV: POLLOUT. */
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, i == 2 ? op_start(&rd, fd, OP_BRECV, NULL, 64) :
				      start_reader(&rd, fd, i ? 64 : 1));
		ASSERT_EQ(0, wait_blocked(fd, true, 1));
		EXPECT_EQ(POLLOUT | POLLWRNORM,
			  revents(tx, POLLOUT | POLLWRNORM)) TH_LOG("%d", i);
		EXPECT_EQ(POLLOUT, revents(fd, POLLOUT));
		/* It leaves (a signal): POLLOUT goes with it. */
		ASSERT_EQ(0, pthread_kill(rd.th, SIGUSR1));
		ASSERT_EQ(0, op_join(&rd));
		EXPECT_OP_ERR(rd, EINTR);
		EXPECT_EQ(0, revents(tx, POLLOUT)) TH_LOG("%d", i);
	}
	/* And with POLLOUT, a non-blocking write does not fail. */
	ASSERT_EQ(0, start_reader(&rd, fd, 64));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	ASSERT_EQ(POLLOUT, revents(tx, POLLOUT));
	ASSERT_EQ(1, write(tx, "y", 1));
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_STREQ("y", rd.buf);
	EXPECT_EQ(0, revents(tx, POLLOUT));

	/* Unblock the peek and the READ: a blocked sender and a receive. */
	ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR);
	ASSERT_EQ(0, join_within(pk.th));
	EXPECT_EQ(0, pk.ret);
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	EXPECT_EQ(0, c.res);
	io_uring_queue_exit(&ring);
	close(tx);
	close(fd);
}

TEST(epollin_exactly_when_sender_blocked)
{
	char buf[BUFSZ];
	struct op wr;
	int fd, rx, i;

	ASSERT_EQ(0, set_sigusr1(false));
	fd = open_rv();
	ASSERT_LE(0, fd);
	rx = new_ep(fd, MPMC_ROLE_RECV, O_NONBLOCK);
	ASSERT_LE(0, rx);
	EXPECT_EQ(0, revents(rx, POLLIN));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, i ? op_start(&wr, fd, OP_BSEND, "b", 1) :
				 start_writer(&wr, fd, "w"));
		ASSERT_EQ(0, wait_blocked(fd, false, 1));
		EXPECT_EQ(POLLIN | POLLRDNORM,
			  revents(rx, POLLIN | POLLRDNORM));
		ASSERT_EQ(0, pthread_kill(wr.th, SIGUSR1));
		ASSERT_EQ(0, op_join(&wr));
		EXPECT_OP_ERR(wr, EINTR);
		EXPECT_EQ(0, revents(rx, POLLIN));
		EXPECT_ERRNO(EAGAIN, read(rx, buf, sizeof(buf)));
	}
	/* With POLLIN, a non-blocking read gets the message. */
	ASSERT_EQ(0, start_writer(&wr, fd, "z"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	ASSERT_EQ(POLLIN, revents(rx, POLLIN));
	ASSERT_EQ(1, read(rx, buf, sizeof(buf)));
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(1, wr.ret);
	EXPECT_EQ(0, revents(rx, POLLIN));
	close(rx);
	close(fd);
}

/* A poller asleep for one direction is woken when the other side blocks. */
TEST(pollers_woken_when_the_other_side_blocks)
{
	struct poller p = { 0 };
	char buf[BUFSZ];
	struct op o;
	int fd, rx, tx;

	fd = open_rv();
	ASSERT_LE(0, fd);
	rx = new_ep(fd, MPMC_ROLE_RECV, O_NONBLOCK);
	tx = new_ep(fd, MPMC_ROLE_SEND, O_NONBLOCK);
	ASSERT_LE(0, rx);
	ASSERT_LE(0, tx);

	ASSERT_EQ(0, poller_start(&p, rx, POLLIN));
	usleep(SETTLE_US);
	ASSERT_EQ(0, start_writer(&o, fd, "in"));
	ASSERT_EQ(0, join_within(p.th));
	EXPECT_EQ(1, p.ret);
	EXPECT_TRUE(p.revents & POLLIN);
	ASSERT_EQ(2, read(rx, buf, sizeof(buf)));
	ASSERT_EQ(0, op_join(&o));

	ASSERT_EQ(0, poller_start(&p, tx, POLLOUT));
	usleep(SETTLE_US);
	ASSERT_EQ(0, start_reader(&o, fd, 64));
	ASSERT_EQ(0, join_within(p.th));
	EXPECT_EQ(1, p.ret);
	EXPECT_TRUE(p.revents & POLLOUT);
	ASSERT_EQ(3, write(tx, "out", 3));
	ASSERT_EQ(0, op_join(&o));
	EXPECT_STREQ("out", o.buf);
	close(rx);
	close(tx);
	close(fd);
}

TEST(fionread_oldest_blocked_sender)
{
	struct op wr[2];
	char buf[BUFSZ];
	int fd;

	fd = open_rv();
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, fionread(fd));
	ASSERT_EQ(0, start_writer(&wr[0], fd, "abc"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	EXPECT_EQ(3, fionread(fd));
	ASSERT_EQ(0, start_writer(&wr[1], fd, "defghij"));
	ASSERT_EQ(0, wait_blocked(fd, false, 2));
	EXPECT_EQ(3, fionread(fd));
	ASSERT_EQ(3, try_recv(fd, buf));
	EXPECT_EQ(7, fionread(fd));
	ASSERT_EQ(7, try_recv(fd, buf));
	EXPECT_EQ(0, fionread(fd));
	ASSERT_EQ(0, op_join(&wr[0]));
	ASSERT_EQ(0, op_join(&wr[1]));
	close(fd);
}

/* ---- shutdown and resizing -------------------------------------------- */

TEST(shut_wr_senders_epipe_receivers_eof)
{
	struct mpmc_stats st;
	char buf[BUFSZ];
	struct op wr[2], rd;
	int fd, i;

	fd = open_rv();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, start_writer(&wr[0], fd, "one"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	ASSERT_EQ(0, op_start(&wr[1], fd, OP_BSEND, "two", 3));
	ASSERT_EQ(0, wait_blocked(fd, false, 2));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, op_join(&wr[i]));
		EXPECT_OP_ERR(wr[i], EPIPE);
	}
	/* Their messages are not delivered: EOF at once, every time. */
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, try_recv(fd, buf));
	EXPECT_ERRNO(EPIPE, write(fd, "x", 1));
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 0U, 0U, 0U);
	EXPECT_EQ(0U, st.blocked_senders);
	close(fd);

	/* A receiver asleep at SHUT_WR gets EOF. */
	fd = open_rv();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, start_reader(&rd, fd, 64));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_EQ(0, rd.ret);
	close(fd);
}

/*
 * Senders blocked on capacity 0 (priorities 0, 9, 0, 5): growing to 2
 * queues the two that blocked first and completes them; each message
 * received admits the next in blocking order.
 */
TEST(growing_from_0_queues_blocked_senders_in_order)
{
	static const struct { const char *msg; __u32 prio; } s[] = {
		{ "g0", 0 }, { "g1", 9 }, { "g2", 0 }, { "g3", 5 },
	};
	struct mpmc_stats st;
	struct snd w[4];
	char buf[BUFSZ];
	int fd, i;

	fd = open_rv();
	ASSERT_LE(0, fd);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, snd_start(&w[i], fd, s[i].msg, s[i].prio, -1));
		ASSERT_EQ(0, wait_blocked(fd, false, i + 1));
	}
	ASSERT_EQ(0, set_config(fd, 2, 0));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, join_within(w[i].th));
		EXPECT_EQ(2, w[i].ret);
	}
	ASSERT_EQ(0, wait_blocked(fd, false, 2));
	usleep(SETTLE_US);
	EXPECT_FALSE(atomic_load(&w[2].done));
	EXPECT_FALSE(atomic_load(&w[3].done));
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 2U, 2U, 0U);
	EXPECT_EQ(2U, st.capacity);
	/* Queued now: priorities apply among what is queued. */
	ASSERT_EQ(2, try_recv(fd, buf));
	EXPECT_STREQ("g1", buf);
	/* That freed a slot for g2. */
	ASSERT_EQ(0, join_within(w[2].th));
	EXPECT_EQ(2, w[2].ret);
	ASSERT_EQ(2, try_recv(fd, buf));
	EXPECT_STREQ("g0", buf);
	ASSERT_EQ(0, join_within(w[3].th));
	ASSERT_EQ(2, try_recv(fd, buf));
	EXPECT_STREQ("g3", buf);
	ASSERT_EQ(2, try_recv(fd, buf));
	EXPECT_STREQ("g2", buf);
	EXPECT_ERRNO(EAGAIN, try_recv(fd, buf));
	close(fd);
}

/* All at prio 0, growing to more than enough: all queued, in order. */
TEST(growing_from_0_room_for_all)
{
	struct op wr[3];
	char buf[BUFSZ];
	int fd, i;

	fd = open_rv();
	ASSERT_LE(0, fd);
	for (i = 0; i < 3; i++) {
		char msg[4];

		snprintf(msg, sizeof(msg), "w%d", i);
		ASSERT_EQ(0, start_writer(&wr[i], fd, msg));
		ASSERT_EQ(0, wait_blocked(fd, false, i + 1));
	}
	ASSERT_EQ(0, set_config(fd, 8, 0));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, op_join(&wr[i]));
		EXPECT_EQ(2, wr[i].ret);
	}
	EXPECT_EQ(3U, stats_of(fd).queued_msgs);
	CHECK_READ(fd, buf, "w0");
	CHECK_READ(fd, buf, "w1");
	CHECK_READ(fd, buf, "w2");
	/* Empty again: back to capacity 0, a rendezvous again. */
	ASSERT_EQ(0, set_config(fd, 0, 0));
	EXPECT_ERRNO(EAGAIN, batch1(fd, true, "x", 1, 0, 0));
	close(fd);
}

/* ---- batches ---------------------------------------------------------- */

/* Three readers blocked in read(): a send batch of 5 hands one to each. */
TEST(batch_send_one_per_blocked_read)
{
	struct mpmc_msgvec v[5];
	char bufs[5][4];
	struct mpmc_batch b = { .vec = (uintptr_t)v, .count = 5 };
	struct mpmc_stats st;
	struct op rd[3];
	int fd, i;

	fd = open_rv();
	ASSERT_LE(0, fd);
	NAME_VEC(v, bufs, 5, "b%d");
	/* Nobody to take any: EAGAIN. */
	EXPECT_ERRNO(EAGAIN, ioctl(fd, MPMC_IOC_SEND, &b));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, start_reader(&rd[i], fd, 64));
		ASSERT_EQ(0, wait_blocked(fd, true, i + 1));
	}
	ASSERT_EQ(3, ioctl(fd, MPMC_IOC_SEND, &b));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, op_join(&rd[i]));
		EXPECT_EQ(2, rd[i].ret);
		EXPECT_STREQ(bufs[i], rd[i].buf);
	}
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 0U, 3U, 3U);
	close(fd);
}

/* A batch ioctl in a thread. */
struct brun {
	pthread_t th;
	int fd;
	unsigned long cmd;
	struct mpmc_batch b;
	int ret, err;
	atomic_int done;
};

static void *brun_fn(void *arg)
{
	struct brun *r = arg;

	r->ret = ioctl(r->fd, r->cmd, &r->b);
	r->err = r->ret < 0 ? errno : 0;
	atomic_store(&r->done, 1);
	return NULL;
}

static int brun_start(struct brun *r, int fd, unsigned long cmd,
		      struct mpmc_msgvec *v, __u32 count, __s64 timeout)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->cmd = cmd;
	r->b = (struct mpmc_batch){
		.vec = (uintptr_t)v, .count = count, .timeout_ns = timeout,
	};
	return pthread_create(&r->th, NULL, brun_fn, r);
}

/* A send batch of 4 asleep (-1) returns 1 once one read took one message. */
TEST(blocked_batch_send_returns_after_one_read)
{
	struct mpmc_msgvec v[4];
	char bufs[4][4], buf[BUFSZ];
	struct mpmc_stats st;
	struct brun r;
	int fd;

	fd = open_rv();
	ASSERT_LE(0, fd);
	NAME_VEC(v, bufs, 4, "q%d");
	ASSERT_EQ(0, brun_start(&r, fd, MPMC_IOC_SEND, v, 4, -1));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	CHECK_READ(fd, buf, "q0");
	ASSERT_EQ(0, join_within(r.th));
	EXPECT_EQ(1, r.ret);
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 0U, 1U, 1U);
	EXPECT_EQ(0U, st.blocked_senders);
	/* The rest was not left behind. */
	EXPECT_ERRNO(EAGAIN, try_recv(fd, buf));
	close(fd);
}

/*
 * A receiver blocked in MPMC_IOC_RECV (count 2) and a send batch of 5:
 * the receiver takes at least one and at most 2, the sender's count is
 * the receiver's, and the messages are the first ones, in order.
 */
TEST(blocked_batch_recv_takes_one_to_count)
{
	struct mpmc_msgvec v[5], rv[2];
	char bufs[5][4], rbufs[2][BUFSZ];
	struct mpmc_batch b = { .vec = (uintptr_t)v, .count = 5 };
	struct brun r;
	int fd, i, sent;

	fd = open_rv();
	ASSERT_LE(0, fd);
	NAME_VEC(v, bufs, 5, "c%d");
	for (i = 0; i < 2; i++)
		rv[i] = (struct mpmc_msgvec){
			.buf = (uintptr_t)rbufs[i], .len = BUFSZ - 1,
		};
	ASSERT_EQ(0, brun_start(&r, fd, MPMC_IOC_RECV, rv, 2, -1));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	sent = ioctl(fd, MPMC_IOC_SEND, &b);
	ASSERT_EQ(0, join_within(r.th));
	EXPECT_LE(1, sent);
	EXPECT_GE(2, sent);
	EXPECT_EQ(sent, r.ret);
	for (i = 0; i < r.ret && i < 2; i++) {
		EXPECT_EQ(2U, rv[i].len);
		rbufs[i][2] = '\0';
		EXPECT_STREQ(bufs[i], rbufs[i]);
	}
	EXPECT_EQ((__u64)sent, stats_of(fd).total_received);
	EXPECT_EQ(0U, stats_of(fd).queued_msgs);
	close(fd);
}

/* A receive batch of 2 with 3 senders blocked takes the 2 oldest. */
TEST(recv_batch_takes_from_blocked_senders_up_to_count)
{
	struct mpmc_msgvec rv[2];
	char rbufs[2][BUFSZ];
	struct mpmc_batch rb = { .vec = (uintptr_t)rv, .count = 2 };
	struct op wr[3];
	int fd, i;

	fd = open_rv();
	ASSERT_LE(0, fd);
	for (i = 0; i < 3; i++) {
		char msg[4];

		snprintf(msg, sizeof(msg), "k%d", i);
		ASSERT_EQ(0, start_writer(&wr[i], fd, msg));
		ASSERT_EQ(0, wait_blocked(fd, false, i + 1));
	}
	for (i = 0; i < 2; i++)
		rv[i] = (struct mpmc_msgvec){
			.buf = (uintptr_t)rbufs[i], .len = BUFSZ - 1,
		};
	ASSERT_EQ(2, ioctl(fd, MPMC_IOC_RECV, &rb));
	for (i = 0; i < 2; i++) {
		char msg[4];

		snprintf(msg, sizeof(msg), "k%d", i);
		rbufs[i][rv[i].len] = '\0';
		EXPECT_STREQ(msg, rbufs[i]);
		ASSERT_EQ(0, op_join(&wr[i]));
		EXPECT_EQ(2, wr[i].ret);
	}
	usleep(SETTLE_US);
	EXPECT_FALSE(op_done(&wr[2]));
	EXPECT_EQ(1U, stats_of(fd).blocked_senders);
	ASSERT_EQ(2, try_recv(fd, rbufs[0]));
	EXPECT_STREQ("k2", rbufs[0]);
	ASSERT_EQ(0, op_join(&wr[2]));
	close(fd);
}

/* ---- a fault copying out ---------------------------------------------- */

struct rawread {
	pthread_t th;
	int fd;
	void *buf;
	ssize_t ret;
	int err;
};

static void *rawread_fn(void *arg)
{
	struct rawread *r = arg;

	r->ret = read(r->fd, r->buf, 64);
	r->err = r->ret < 0 ? errno : 0;
	return NULL;
}

/*
 * A reader blocked with a buffer that is unmapped before a sender comes:
 * the sender succeeds, the reader gets EFAULT, and the message is put back
 * at the head: the one queued message of a rendezvous channel, which the
 * next receive gets before any blocked sender's.
 */
TEST(fault_copying_out_puts_the_message_back)
{
	struct rawread rd = { 0 };
	struct mpmc_stats st;
	char buf[BUFSZ];
	struct op wr;
	int fd;

	fd = open_rv();
	ASSERT_LE(0, fd);
	rd.fd = fd;
	rd.buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, rd.buf);
	ASSERT_EQ(0, pthread_create(&rd.th, NULL, rawread_fn, &rd));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	ASSERT_EQ(0, munmap(rd.buf, 4096));
	/* The sender succeeds: a receiver took the message. */
	ASSERT_EQ(0, write_str(fd, "bounced"));
	ASSERT_EQ(0, join_within(rd.th));
	EXPECT_EQ(-1, rd.ret);
	EXPECT_EQ(EFAULT, rd.err);
	MPMC_STATS(fd, &st);
	EXPECT_EQ(1U, st.queued_msgs);
	EXPECT_EQ(7U, st.queued_bytes);
	EXPECT_EQ(1U, st.total_sent);
	EXPECT_EQ(0U, st.total_received);
	EXPECT_EQ(7, fionread(fd));
	/* A later sender blocks; the put-back message is received first. */
	ASSERT_EQ(0, start_writer(&wr, fd, "later"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	ASSERT_EQ(7, try_recv(fd, buf));
	EXPECT_STREQ("bounced", buf);
	ASSERT_EQ(5, try_recv(fd, buf));
	EXPECT_STREQ("later", buf);
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(5, wr.ret);
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 0U, 2U, 2U);
	close(fd);
}

/* ---- throughput mode -------------------------------------------------- */

/*
 * Capacity 0 with MPMC_CONFIG_THROUGHPUT is accepted and is still a
 * hand-off: a send with no receiver blocks, nothing is ever queued, and a
 * message sent to a blocked receiver (woken, but not yet run: SCHED_FIFO
 * on one CPU) is not there for a barging non-blocking receive.
 */
TEST(throughput_mode_still_a_handoff)
{
	struct mpmc_config cfg;
	char buf[BUFSZ];
	struct op rd, wr;
	int fd, next, got;

	fd = open_rv();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_config(fd, 0, MPMC_CONFIG_THROUGHPUT));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(0U, cfg.capacity);
	EXPECT_EQ(MPMC_CONFIG_THROUGHPUT, cfg.flags);
	EXPECT_ERRNO(EAGAIN, batch1(fd, true, "x", 1, 0, 0));
	ASSERT_EQ(0, start_writer(&wr, fd, "blocks"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	usleep(SETTLE_US);
	EXPECT_FALSE(op_done(&wr));
	EXPECT_EQ(0U, stats_of(fd).queued_msgs);
	ASSERT_EQ(6, try_recv(fd, buf));
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(6, wr.ret);

	PIN_CPU_FIFO_OR_SKIP(0);
	ASSERT_EQ(0, start_reader(&rd, fd, 64));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	ASSERT_EQ(0, sched_fifo(true));
	ASSERT_EQ(3, write(fd, "abc", 3));
	next = fionread(fd);
	got = try_recv(fd, buf);
	ASSERT_EQ(0, sched_fifo(false));
	EXPECT_EQ(0, next);
	EXPECT_EQ(-1, got);
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_EQ(3, rd.ret);
	EXPECT_STREQ("abc", rd.buf);
	EXPECT_EQ(2U, stats_of(fd).total_received);
	close(fd);
}

TEST_HARNESS_MAIN
