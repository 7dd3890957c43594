// SPDX-License-Identifier: GPL-2.0
/*
 * Throughput mode (MPMC_CONFIG_THROUGHPUT, mpmc(4)): blocked callers are
 * woken one per message but not handed the message or the room; whoever
 * reaches the queue first takes it. Covered here:
 *  - the flag is accepted, read back, and unknown bits still fail;
 *  - barging, made deterministic by running the test on one CPU under
 *    SCHED_FIFO, so that a woken sleeper cannot run before the test's next
 *    call: a non-blocking send takes the room a blocked sender was woken
 *    for, a non-blocking receive the message a blocked receiver was woken
 *    for; in the default mode both get EAGAIN;
 *  - one message wakes one blocked receiver, and every blocked caller is
 *    eventually served (no lost wakeup);
 *  - growing the capacity wakes as many blocked senders as fit;
 *  - SHUT_WR lets sleeping receivers drain what is queued before EOF;
 *  - a woken receiver whose buffer is too small passes its wakeup on;
 *  - a signal racing the wakeup never loses the message;
 *  - exactly once and per-producer order under 4:4 contention, also while
 *    another thread turns the mode on and off.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

static int queued(int fd)
{
	struct mpmc_stats st;

	if (ioctl(fd, MPMC_IOC_GET_STATS, &st))
		return -1;
	return st.queued_msgs;
}

TEST(flag_set_and_read_back)
{
	struct mpmc_config cfg;
	int fd = mpmc_test_open_cfg(8, 64);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_flags(fd, MPMC_CONFIG_THROUGHPUT));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(MPMC_CONFIG_THROUGHPUT, cfg.flags);
	EXPECT_EQ(8U, cfg.capacity);
	/* Unknown bits fail and change nothing. */
	EXPECT_EQ(-1, set_flags(fd, MPMC_CONFIG_THROUGHPUT | 8));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, set_flags(fd, 0x80000000u));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(MPMC_CONFIG_THROUGHPUT, cfg.flags);
	ASSERT_EQ(0, set_flags(fd, 0));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(0U, cfg.flags);
	close(fd);
}

/*
 * Barging made deterministic: the test and its sleeper share CPU 0
 * (pin_cpu()), and the test runs under SCHED_FIFO around the race
 * (sched_fifo()), so the sleeper it wakes (SCHED_OTHER) cannot run before
 * the test's next call. Harness tests run in their own process, so nothing
 * of this outlives the test.
 */

/* A batch of one with timeout 0: the length moved, or -errno. */
static int try_batch(int fd, bool send, char *buf, size_t len)
{
	struct mpmc_msgvec v = { .buf = (uintptr_t)buf, .len = len };
	unsigned long cmd = send ? MPMC_IOC_SEND : MPMC_IOC_RECV;

	if (batch_of_one(fd, cmd, &v, 0, 0) != 1)
		return -errno;
	return v.len;
}

/*
 * A sender blocked on a full channel of capacity 1 is woken when the test
 * receives; before it runs, the test tries a non-blocking send, and
 * returns what that gave (1, or -errno).
 */
static int barge_send(struct __test_metadata *_metadata, __u32 flags)
{
	char buf[64] = "x";
	struct op c;
	int fd, ret;

	fd = mpmc_test_open_cfg(1, 64);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_flags(fd, flags));
	ASSERT_EQ(1, write(fd, buf, 1));
	ASSERT_EQ(0, op_start(&c, fd, OP_WRITE, "ww", 2));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	ASSERT_EQ(0, sched_fifo(true));
	ASSERT_EQ(1, read(fd, buf, sizeof(buf)));
	ret = try_batch(fd, true, buf, 1);
	ASSERT_EQ(0, sched_fifo(false));
	/* Whatever happened, the sleeper gets its message in. */
	while (!op_done(&c)) {
		try_batch(fd, false, buf, sizeof(buf));
		usleep(1000);
	}
	ASSERT_EQ(0, op_join(&c));
	EXPECT_EQ(2, c.ret);
	close(fd);
	return ret;
}

TEST(barging_send_takes_the_room)
{
	PIN_CPU_FIFO_OR_SKIP(0);
	/* Throughput mode: the room goes to whoever comes first. */
	EXPECT_EQ(1, barge_send(_metadata, MPMC_CONFIG_THROUGHPUT));
	/* Default mode: it was handed to the blocked sender. */
	EXPECT_EQ(-EAGAIN, barge_send(_metadata, 0));
}

/*
 * A receiver blocked on an empty channel is woken when the test sends;
 * before it runs, the test looks (FIONREAD) and tries a non-blocking
 * receive.
 */
TEST(barging_recv_takes_the_message)
{
	int fd, mode, next, got;
	char buf[64];
	struct op c;

	PIN_CPU_FIFO_OR_SKIP(0);
	for (mode = 0; mode < 2; mode++) {
		fd = mpmc_test_open_cfg(4, 64);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, set_flags(fd, mode ? MPMC_CONFIG_THROUGHPUT : 0));
		ASSERT_EQ(0, start_reader(&c, fd, 64));
		ASSERT_EQ(0, wait_blocked(fd, true, 1));
		ASSERT_EQ(0, sched_fifo(true));
		ASSERT_EQ(3, write(fd, "abc", 3));
		ASSERT_EQ(0, ioctl(fd, FIONREAD, &next));
		got = try_batch(fd, false, buf, sizeof(buf));
		ASSERT_EQ(0, sched_fifo(false));
		if (mode) {
			/* The message was queued, and the test took it. */
			EXPECT_EQ(3, next);
			EXPECT_EQ(3, got);
			/* The woken receiver sleeps again until the next. */
			ASSERT_EQ(0, wait_blocked(fd, true, 1));
			ASSERT_EQ(4, write(fd, "defg", 4));
		} else {
			/* Handed to the blocked receiver: never visible. */
			EXPECT_EQ(0, next);
			EXPECT_EQ(-EAGAIN, got);
		}
		ASSERT_EQ(0, op_join(&c));
		EXPECT_EQ(mode ? 4 : 3, c.ret);
		close(fd);
	}
}

/* Join the @n ops @c: each moved @ret bytes. */
static void join_all(struct __test_metadata *_metadata, struct op *c, int n,
		     ssize_t ret)
{
	int i;

	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, op_join(&c[i]));
		EXPECT_EQ(ret, c[i].ret);
	}
}

TEST(one_message_wakes_one_receiver)
{
	struct op c[4];
	int fd, i, done;

	fd = mpmc_test_open_cfg(8, 64);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_flags(fd, MPMC_CONFIG_THROUGHPUT));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, start_reader(&c[i], fd, 64));
	ASSERT_EQ(0, wait_blocked(fd, true, 4));
	ASSERT_EQ(1, write(fd, "a", 1));
	/* One receiver takes it; the others sleep on. */
	ASSERT_EQ(0, wait_blocked(fd, true, 3));
	usleep(100000);
	for (i = 0, done = 0; i < 4; i++)
		done += op_done(&c[i]);
	EXPECT_EQ(1, done);
	EXPECT_EQ(0, queued(fd));
	/* Every one is served in the end. */
	for (i = 0; i < 3; i++)
		ASSERT_EQ(1, write(fd, "b", 1));
	join_all(_metadata, c, 4, 1);
	EXPECT_EQ(0, queued(fd));
	close(fd);
}

/*
 * A throughput channel of capacity 1, full, with four writers of 2 bytes
 * (@c[4]) blocked on it: its fd in *@fd.
 */
static void four_blocked_senders(struct __test_metadata *_metadata, int *fd,
				 struct op *c)
{
	int i;

	*fd = mpmc_test_open_cfg(1, 64);
	ASSERT_LE(0, *fd);
	ASSERT_EQ(0, set_flags(*fd, MPMC_CONFIG_THROUGHPUT));
	ASSERT_EQ(1, write(*fd, "a", 1));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, op_start(&c[i], *fd, OP_WRITE, "ww", 2));
	ASSERT_EQ(0, wait_blocked(*fd, false, 4));
}

TEST(every_blocked_sender_is_served)
{
	char buf[64];
	struct op c[4];
	int fd, i;

	four_blocked_senders(_metadata, &fd, c);
	for (i = 0; i < 5; i++)
		ASSERT_LT(0, read(fd, buf, sizeof(buf)));
	join_all(_metadata, c, 4, 2);
	EXPECT_EQ(0, queued(fd));
	close(fd);
}

TEST(growing_wakes_every_sender_that_fits)
{
	struct op c[4];
	struct mpmc_config cfg = { .capacity = 5, .max_msg_size = 64,
				   .flags = MPMC_CONFIG_THROUGHPUT };
	int fd, i;

	four_blocked_senders(_metadata, &fd, c);
	/* Room for all four: all four get in, with nobody receiving. */
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, op_join(&c[i]));
		EXPECT_EQ(2, c[i].ret);
	}
	EXPECT_EQ(5, queued(fd));
	close(fd);
}

/*
 * SHUT_WR while a message is queued and a receiver still sleeps (the one
 * woken for the message has not run yet): the sleeper must drain the
 * message, not see end of file before it. The woken receiver shares CPU 0
 * with the test under SCHED_FIFO, the other runs on CPU 1.
 */
TEST(shut_wr_drains_before_eof)
{
	struct op first, second;
	long long end;
	int fd;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs 2 CPUs");
	fd = mpmc_test_open_cfg(4, 64);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_flags(fd, MPMC_CONFIG_THROUGHPUT));
	PIN_CPU_FIFO_OR_SKIP(0);
	ASSERT_EQ(0, start_reader(&first, fd, 64));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	ASSERT_EQ(0, pin_cpu(1));
	ASSERT_EQ(0, start_reader(&second, fd, 64));
	ASSERT_EQ(0, pin_cpu(0));
	ASSERT_EQ(0, wait_blocked(fd, true, 2));

	ASSERT_EQ(0, sched_fifo(true));
	ASSERT_EQ(1, write(fd, "m", 1));	/* wakes the first only */
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	/* Spin, not sleep: the first must not run yet. */
	end = now_ms() + WAIT_MS;
	while (!op_done(&second) && now_ms() < end)
		;
	ASSERT_EQ(0, sched_fifo(false));
	ASSERT_TRUE(op_done(&second));
	EXPECT_EQ(1, second.ret);
	ASSERT_EQ(0, op_join(&first));
	EXPECT_EQ(0, first.ret);
	ASSERT_EQ(0, op_join(&second));
	EXPECT_EQ(0, queued(fd));
	close(fd);
}

TEST(small_buffer_passes_the_wakeup_on)
{
	struct op small, big;
	int fd;

	fd = mpmc_test_open_cfg(8, 64);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_flags(fd, MPMC_CONFIG_THROUGHPUT));
	ASSERT_EQ(0, start_reader(&small, fd, 4));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	ASSERT_EQ(0, start_reader(&big, fd, 64));
	ASSERT_EQ(0, wait_blocked(fd, true, 2));
	ASSERT_EQ(32, write(fd, "0123456789abcdef0123456789abcdef", 32));
	/* The first is woken, cannot take it, and the second gets it. */
	ASSERT_EQ(0, op_join(&small));
	EXPECT_EQ(-1, small.ret);
	EXPECT_EQ(EMSGSIZE, small.err);
	ASSERT_EQ(0, op_join(&big));
	EXPECT_EQ(32, big.ret);
	EXPECT_EQ(0, queued(fd));
	close(fd);
}

static void on_usr1(int sig)
{
	(void)sig;
}

/* A signal racing the wakeup: the receiver gets the message, or it stays. */
TEST(signal_racing_the_wakeup_loses_nothing)
{
	struct sigaction sa = { .sa_handler = on_usr1 };	/* no SA_RESTART */
	int fd, i, got = 0, kept = 0;
	char buf[64];
	struct op c;

	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	fd = mpmc_test_open_cfg(8, 64);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_flags(fd, MPMC_CONFIG_THROUGHPUT));
	for (i = 0; i < 50; i++) {
		ASSERT_EQ(0, start_reader(&c, fd, 64));
		ASSERT_EQ(0, wait_blocked(fd, true, 1));
		ASSERT_EQ(1, write(fd, "m", 1));
		pthread_kill(c.th, SIGUSR1);
		ASSERT_EQ(0, op_join(&c));
		if (c.ret == 1) {
			got++;
			EXPECT_EQ(0, queued(fd));
		} else {
			EXPECT_EQ(EINTR, c.err);
			kept++;
			EXPECT_EQ(1, queued(fd));
			ASSERT_EQ(1, read(fd, buf, sizeof(buf)));
		}
	}
	ksft_print_msg("received %d, interrupted with the message kept %d\n",
		       got, kept);
	EXPECT_EQ(50, got + kept);
	close(fd);
}

/* ---- 4:4 exactly once, with the mode flipping ---------------------------- */

#define PRODUCERS	4
#define CONSUMERS	4
#define PER_PRODUCER	3000

/* What the consumers saw of each message, in one channel. */
struct load {
	int fd;
	atomic_long received;
	atomic_int bad_order;
	atomic_uint seen[PRODUCERS][PER_PRODUCER];
	atomic_int producers_left;
};

/* Messages (prod, 0) to (prod, PER_PRODUCER - 1), by write(). */
static void *producer(void *arg)
{
	struct load *load = ((struct peer *)arg)->ctx;
	uint32_t m[2] = { ((struct peer *)arg)->id, 0 };

	for (; m[1] < PER_PRODUCER; m[1]++)
		if (write(load->fd, m, sizeof(m)) != sizeof(m))
			break;
	if (atomic_fetch_sub(&load->producers_left, 1) == 1)
		ioctl(load->fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR);
	return NULL;
}

static void *consumer(void *arg)
{
	struct load *load = ((struct peer *)arg)->ctx;
	int last[PRODUCERS];
	uint32_t m[2];

	memset(last, 0xff, sizeof(last));	/* all -1 */
	while (read(load->fd, m, sizeof(m)) == sizeof(m)) {
		if (m[0] >= PRODUCERS || m[1] >= PER_PRODUCER) {
			atomic_fetch_add(&load->bad_order, 1);
			continue;
		}
		/* One queue: each consumer sees a producer's messages in order. */
		if ((int)m[1] <= last[m[0]])
			atomic_fetch_add(&load->bad_order, 1);
		last[m[0]] = m[1];
		atomic_fetch_add(&load->seen[m[0]][m[1]], 1);
		atomic_fetch_add(&load->received, 1);
	}
	return NULL;
}

static void run_load(struct __test_metadata *_metadata, bool flip)
{
	struct peer p[PRODUCERS], c[CONSUMERS];
	struct load *load = calloc(1, sizeof(*load));
	int i, j, missing = 0, twice = 0;
	struct flipper f;

	ASSERT_NE(NULL, load);
	load->fd = mpmc_test_open_cfg(4, 64);
	ASSERT_LE(0, load->fd);
	ASSERT_EQ(0, set_flags(load->fd, MPMC_CONFIG_THROUGHPUT));
	atomic_store(&load->producers_left, PRODUCERS);
	if (flip)
		ASSERT_EQ(0, flipper_start(&f, load->fd, 0,
					   MPMC_CONFIG_THROUGHPUT, 2000));
	ASSERT_EQ(0, peers_start(c, CONSUMERS, load, consumer));
	ASSERT_EQ(0, peers_start(p, PRODUCERS, load, producer));
	peers_join(p, PRODUCERS);
	peers_join(c, CONSUMERS);
	if (flip)
		flipper_stop(&f);
	for (i = 0; i < PRODUCERS; i++)
		for (j = 0; j < PER_PRODUCER; j++) {
			missing += !load->seen[i][j];
			twice += load->seen[i][j] > 1;
		}
	EXPECT_EQ(0, missing);
	EXPECT_EQ(0, twice);
	EXPECT_EQ(0, load->bad_order);
	EXPECT_EQ(PRODUCERS * PER_PRODUCER, load->received);
	close(load->fd);
	free(load);
}

TEST(exactly_once_4_to_4)
{
	run_load(_metadata, false);
}

TEST(exactly_once_while_the_mode_flips)
{
	run_load(_metadata, true);
}

TEST_HARNESS_MAIN
