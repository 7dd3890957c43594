// SPDX-License-Identifier: GPL-2.0
/*
 * Blocking behaviour of /dev/mpmc channels: read sleeps on an empty channel
 * and write on a full one until the other side acts; O_NONBLOCK (at open and
 * through fcntl) gives EAGAIN instead; a signal interrupts a sleeper with
 * EINTR and no effect, or restarts it under SA_RESTART; blocked readers and
 * writers are served in the order they blocked (hand-off), one message wakes
 * one reader, a non-blocking reader never overtakes a blocked one, and a
 * blocked reader with a too small buffer gets EMSGSIZE without losing the
 * message.
 *
 * Sleepers run in threads; every "is it asleep" check goes through
 * stats.blocked_receivers / stats.blocked_senders with a bounded deadline.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

/* Generous bounds: the tests run in an emulated (TCG) guest. */
#define SETTLE_US	150000	/* to let a wrongly woken thread show itself */

TEST(read_blocks_until_write)
{
	struct mpmc_stats st;
	struct op rd;
	int fd;

	fd = blocked_reader(&rd, 4096);
	ASSERT_LE(0, fd);
	usleep(SETTLE_US);
	EXPECT_FALSE(op_done(&rd));
	MPMC_STATS(fd, &st);
	EXPECT_EQ(1, st.blocked_receivers);
	EXPECT_EQ(0, st.total_received);

	ASSERT_EQ(0, write_str(fd, "hello"));
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_EQ(5, rd.ret);
	EXPECT_EQ(0, memcmp(rd.buf, "hello", 5));

	MPMC_STATS(fd, &st);
	EXPECT_EQ(0, st.blocked_receivers);
	EXPECT_TOTALS(st, 0, 1, 1);
	close(fd);
}

TEST(write_blocks_until_read)
{
	struct mpmc_stats st;
	char buf[64];
	struct op wr;
	int fd;

	fd = mpmc_test_open_cfg(2, 64);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, write_str(fd, "m0"));
	ASSERT_EQ(0, write_str(fd, "m1"));

	ASSERT_EQ(0, start_writer(&wr, fd, "m2"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	usleep(SETTLE_US);
	EXPECT_FALSE(op_done(&wr));
	MPMC_STATS(fd, &st);
	EXPECT_EQ(1, st.blocked_senders);
	EXPECT_EQ(2, st.queued_msgs);
	EXPECT_EQ(2, st.total_sent);

	CHECK_READ_STR(fd, buf, "m0");
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(2, wr.ret);

	CHECK_READ_STR(fd, buf, "m1");
	CHECK_READ_STR(fd, buf, "m2");

	MPMC_STATS(fd, &st);
	EXPECT_EQ(0, st.blocked_senders);
	EXPECT_TOTALS(st, 0, 3, 3);
	close(fd);
}

TEST(nonblock_at_open)
{
	struct mpmc_config cfg = { .capacity = 2, .max_msg_size = 64 };
	struct mpmc_stats st;
	char buf[64];
	int fd;

	fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg));

	EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));

	ASSERT_EQ(0, write_str(fd, "a"));
	ASSERT_EQ(0, write_str(fd, "b"));
	EXPECT_ERRNO(EAGAIN, write(fd, "c", 1));

	MPMC_STATS(fd, &st);
	EXPECT_EQ(2, st.queued_msgs);
	EXPECT_EQ(2, st.total_sent);
	EXPECT_EQ(0, st.blocked_senders);

	CHECK_READ_STR(fd, buf, "a");
	CHECK_READ_STR(fd, buf, "b");
	EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));

	MPMC_STATS(fd, &st);
	EXPECT_EQ(0, st.queued_msgs);
	EXPECT_EQ(2, st.total_received);
	EXPECT_EQ(0, st.blocked_receivers);
	close(fd);
}

TEST(nonblock_fcntl_toggle)
{
	struct mpmc_stats st;
	struct op rd, wr;
	char buf[64];
	int fd, fl;

	fd = mpmc_test_open_cfg(1, 64);
	ASSERT_LE(0, fd);
	fl = fcntl(fd, F_GETFL);
	ASSERT_LE(0, fl);
	ASSERT_EQ(0, fl & O_NONBLOCK);
	ASSERT_EQ(0, fcntl(fd, F_SETFL, fl | O_NONBLOCK));

	EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, write_str(fd, "x"));
	EXPECT_ERRNO(EAGAIN, write(fd, "y", 1));
	MPMC_STATS(fd, &st);
	EXPECT_EQ(1, st.queued_msgs);
	EXPECT_EQ(1, st.total_sent);

	/* Blocking again: a write on the full channel sleeps. */
	ASSERT_EQ(0, fcntl(fd, F_SETFL, fl & ~O_NONBLOCK));
	ASSERT_EQ(0, start_writer(&wr, fd, "y"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	EXPECT_FALSE(op_done(&wr));
	CHECK_READ_STR(fd, buf, "x");
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(1, wr.ret);
	CHECK_READ_STR(fd, buf, "y");

	/* ... and a read on the empty channel sleeps. */
	ASSERT_EQ(0, start_reader(&rd, fd, 64));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	EXPECT_FALSE(op_done(&rd));
	ASSERT_EQ(0, write_str(fd, "z"));
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_EQ(1, rd.ret);
	EXPECT_EQ('z', rd.buf[0]);
	close(fd);
}

TEST(signal_interrupts_blocked_read)
{
	struct mpmc_stats st;
	struct op rd;
	char buf[64];
	int fd;

	ASSERT_EQ(0, set_sigusr1(false));
	fd = blocked_reader(&rd, 64);
	ASSERT_LE(0, fd);

	ASSERT_EQ(0, pthread_kill(rd.th, SIGUSR1));
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_OP_ERR(rd, EINTR);
	EXPECT_EQ(1, atomic_load(&sig_count));

	MPMC_STATS(fd, &st);
	EXPECT_EQ(0, st.blocked_receivers);
	EXPECT_EQ(0, st.total_received);

	/* The interrupted reader left nothing behind that takes a message. */
	ASSERT_EQ(0, write_str(fd, "after"));
	MPMC_STATS(fd, &st);
	EXPECT_EQ(1, st.queued_msgs);
	EXPECT_EQ(0, st.total_received);
	CHECK_READ_STR(fd, buf, "after");
	MPMC_STATS(fd, &st);
	EXPECT_EQ(1, st.total_received);
	EXPECT_EQ(0, st.queued_msgs);
	close(fd);
}

TEST(signal_interrupts_blocked_write)
{
	struct mpmc_stats st;
	struct op wr;
	char buf[64];
	int fd;

	ASSERT_EQ(0, set_sigusr1(false));
	fd = blocked_writer(&wr, "first", "blocked");
	ASSERT_LE(0, fd);

	ASSERT_EQ(0, pthread_kill(wr.th, SIGUSR1));
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_OP_ERR(wr, EINTR);

	MPMC_STATS(fd, &st);
	EXPECT_EQ(0, st.blocked_senders);
	EXPECT_EQ(1, st.queued_msgs);
	EXPECT_EQ(5, st.queued_bytes);
	EXPECT_EQ(1, st.total_sent);

	CHECK_READ_STR(fd, buf, "first");
	/* The interrupted message was never enqueued, not even now. */
	usleep(SETTLE_US);
	MPMC_STATS(fd, &st);
	EXPECT_EQ(0, st.queued_msgs);
	EXPECT_EQ(1, st.total_sent);
	/* Non-blocking: a wrongly queued message must not hang the test. */
	ASSERT_EQ(0, fcntl(fd, F_SETFL, O_NONBLOCK));
	ASSERT_EQ(0, write_str(fd, "next"));
	CHECK_READ_STR(fd, buf, "next");
	close(fd);
}

TEST(sa_restart_blocked_read)
{
	struct mpmc_stats st;
	struct op rd;
	int fd;

	ASSERT_EQ(0, set_sigusr1(true));
	fd = blocked_reader(&rd, 64);
	ASSERT_LE(0, fd);

	ASSERT_EQ(0, pthread_kill(rd.th, SIGUSR1));
	ASSERT_EQ(0, wait_sig_count(1));
	/* The handler ran; the read restarted and sleeps again. */
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	usleep(SETTLE_US);
	EXPECT_FALSE(op_done(&rd));
	MPMC_STATS(fd, &st);
	EXPECT_EQ(1, st.blocked_receivers);
	EXPECT_EQ(0, st.total_received);

	ASSERT_EQ(0, write_str(fd, "late"));
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_EQ(4, rd.ret);
	EXPECT_EQ(0, memcmp(rd.buf, "late", 4));
	MPMC_STATS(fd, &st);
	EXPECT_EQ(1, st.total_received);
	EXPECT_EQ(0, st.queued_msgs);
	close(fd);
}

TEST(sa_restart_blocked_write)
{
	struct mpmc_stats st;
	struct op wr;
	char buf[64];
	int fd;

	ASSERT_EQ(0, set_sigusr1(true));
	fd = blocked_writer(&wr, "first", "second");
	ASSERT_LE(0, fd);

	ASSERT_EQ(0, pthread_kill(wr.th, SIGUSR1));
	ASSERT_EQ(0, wait_sig_count(1));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	usleep(SETTLE_US);
	EXPECT_FALSE(op_done(&wr));
	MPMC_STATS(fd, &st);
	EXPECT_EQ(1, st.queued_msgs);
	EXPECT_EQ(1, st.total_sent);

	CHECK_READ_STR(fd, buf, "first");
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(6, wr.ret);
	CHECK_READ_STR(fd, buf, "second");
	MPMC_STATS(fd, &st);
	EXPECT_EQ(2, st.total_sent);
	EXPECT_EQ(0, st.queued_msgs);
	close(fd);
}

#define NFIFO 4

TEST(blocked_readers_served_in_order)
{
	struct op rd[NFIFO];
	char msg[32];
	int fd, i;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	for (i = 0; i < NFIFO; i++) {
		ASSERT_EQ(0, start_reader(&rd[i], fd, 64));
		ASSERT_EQ(0, wait_blocked(fd, true, i + 1));
	}
	for (i = 0; i < NFIFO; i++) {
		snprintf(msg, sizeof(msg), "msg %d", i);
		ASSERT_EQ(0, write_str(fd, msg));
	}
	for (i = 0; i < NFIFO; i++) {
		ASSERT_EQ(0, op_join(&rd[i]));
		snprintf(msg, sizeof(msg), "msg %d", i);
		ASSERT_EQ((ssize_t)strlen(msg), rd[i].ret);
		rd[i].buf[rd[i].ret] = '\0';
		EXPECT_STREQ(msg, rd[i].buf) {
			TH_LOG("reader %d (blocked %d-th) got the wrong message", i, i);
		}
	}
	close(fd);
}

TEST(blocked_writers_enqueue_in_order)
{
	struct mpmc_stats st;
	struct op wr[NFIFO];
	char msg[32], buf[64];
	int fd, i;

	fd = mpmc_test_open_cfg(1, 64);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, write_str(fd, "full"));
	for (i = 0; i < NFIFO; i++) {
		snprintf(msg, sizeof(msg), "msg %d", i);
		ASSERT_EQ(0, start_writer(&wr[i], fd, msg));
		ASSERT_EQ(0, wait_blocked(fd, false, i + 1));
	}
	CHECK_READ_STR(fd, buf, "full");
	for (i = 0; i < NFIFO; i++) {
		snprintf(msg, sizeof(msg), "msg %d", i);
		ASSERT_EQ((ssize_t)strlen(msg), read_str(fd, buf, sizeof(buf)));
		EXPECT_STREQ(msg, buf);
	}
	for (i = 0; i < NFIFO; i++) {
		ASSERT_EQ(0, op_join(&wr[i]));
		EXPECT_EQ(5, wr[i].ret);
	}
	MPMC_STATS(fd, &st);
	EXPECT_EQ(0, st.blocked_senders);
	EXPECT_TOTALS(st, 0, NFIFO + 1, NFIFO + 1);
	close(fd);
}

#define NHERD 8

/* voluntary_ctxt_switches of thread @tid: each sleep counts one; -1 on error. */
static long vcsw(pid_t tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	return scan_file(path, "voluntary_ctxt_switches: %lld", -1);
}

static int count_done(struct op *ops, int n)
{
	int i, c = 0;

	for (i = 0; i < n; i++)
		c += op_done(&ops[i]);
	return c;
}

TEST(one_message_wakes_one_reader)
{
	struct mpmc_stats st;
	struct op rd[NHERD];
	bool seen[NHERD] = { false };
	long sw[NHERD];
	long long end;
	char msg[32];
	int fd, i, k, tag;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	for (i = 0; i < NHERD; i++)
		ASSERT_EQ(0, start_reader(&rd[i], fd, 64));
	ASSERT_EQ(0, wait_blocked(fd, true, NHERD));
	/*
	 * A reader is counted blocked just before it switches out: wait until
	 * every reader's sleep count holds still, i.e. all are asleep.
	 */
	for (k = 0; k < 50; k++) {
		bool stable = true;

		usleep(SETTLE_US);
		for (i = 0; i < NHERD; i++) {
			long v = vcsw(op_tid(&rd[i]));

			ASSERT_LE(0, v);
			if (!k || v != sw[i])
				stable = false;
			sw[i] = v;
		}
		if (stable)
			break;
	}

	ASSERT_EQ(0, write_str(fd, "msg 0"));
	end = now_ms() + WAIT_MS;
	while (count_done(rd, NHERD) < 1 && now_ms() < end)
		usleep(1000);
	ASSERT_EQ(1, count_done(rd, NHERD));
	usleep(SETTLE_US);
	EXPECT_EQ(1, count_done(rd, NHERD));
	/* No herd: the readers left asleep were never woken (no re-sleep). */
	for (i = 0; i < NHERD; i++) {
		if (op_done(&rd[i]))
			continue;
		EXPECT_EQ(sw[i], vcsw(op_tid(&rd[i]))) {
			TH_LOG("reader %d was woken for a message it did not get", i);
		}
	}
	MPMC_STATS(fd, &st);
	EXPECT_EQ(NHERD - 1, st.blocked_receivers);
	EXPECT_EQ(1, st.total_received);
	EXPECT_EQ(0, st.queued_msgs);

	/* Release the others; every message goes to exactly one reader. */
	for (i = 1; i < NHERD; i++) {
		snprintf(msg, sizeof(msg), "msg %d", i);
		ASSERT_EQ(0, write_str(fd, msg));
	}
	for (i = 0; i < NHERD; i++) {
		ASSERT_EQ(0, op_join(&rd[i]));
		ASSERT_LT(0, rd[i].ret);
		rd[i].buf[rd[i].ret] = '\0';
		ASSERT_EQ(1, sscanf(rd[i].buf, "msg %d", &tag));
		ASSERT_LE(0, tag);
		ASSERT_GT(NHERD, tag);
		EXPECT_FALSE(seen[tag]);
		seen[tag] = true;
	}
	close(fd);
}

struct spinner {
	pthread_t th;
	int fd;
	atomic_int stop;
	atomic_long eagain, stolen, other;	/* read() results */
};

static void *spin_fn(void *arg)
{
	struct spinner *s = arg;
	char buf[64];
	ssize_t n;

	while (!atomic_load(&s->stop)) {
		n = read(s->fd, buf, sizeof(buf));
		if (n > 0)
			atomic_fetch_add(&s->stolen, 1);
		else if (n < 0 && errno == EAGAIN)
			atomic_fetch_add(&s->eagain, 1);
		else
			atomic_fetch_add(&s->other, 1);
	}
	return NULL;
}

#define NSTEAL 20

TEST(nonblocking_reader_never_steals)
{
	struct mpmc_endpoint ep = {
		.roles = MPMC_ROLE_RECV, .flags = O_NONBLOCK | O_CLOEXEC,
	};
	char msg[32], buf[64];
	struct spinner *s;
	struct op rd;
	long long end;
	ssize_t n;
	int fd, i;

	s = calloc(1, sizeof(*s));
	ASSERT_NE(NULL, s);
	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	s->fd = ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &ep);
	ASSERT_LE(0, s->fd);
	ASSERT_EQ(0, pthread_create(&s->th, NULL, spin_fn, s));
	end = now_ms() + WAIT_MS;
	while (atomic_load(&s->eagain) < 10 && now_ms() < end)
		usleep(1000);
	ASSERT_LE(10, atomic_load(&s->eagain));

	for (i = 0; i < NSTEAL; i++) {
		ASSERT_EQ(0, start_reader(&rd, fd, 64));
		ASSERT_EQ(0, wait_blocked(fd, true, 1));
		snprintf(msg, sizeof(msg), "msg %d", i);
		ASSERT_EQ(0, write_str(fd, msg));
		/*
		 * A late non-blocking read right after the write, before the
		 * blocked reader has had a chance to run: nothing for it.
		 */
		n = read(s->fd, buf, sizeof(buf));
		EXPECT_EQ(-1, n) {
			TH_LOG("round %d: a later non-blocking read took the message meant for the blocked reader",
			       i);
		}
		EXPECT_EQ(EAGAIN, errno);
		end = now_ms() + WAIT_MS;
		while (!op_done(&rd) && !atomic_load(&s->stolen) && n < 0 &&
		       now_ms() < end)
			usleep(500);
		ASSERT_EQ(0, atomic_load(&s->stolen)) {
			TH_LOG("round %d: the spinning non-blocking reader took the message meant for the blocked one",
			       i);
		}
		ASSERT_EQ(0, op_join(&rd));
		ASSERT_EQ((ssize_t)strlen(msg), rd.ret);
		EXPECT_EQ(0, memcmp(rd.buf, msg, rd.ret));
	}
	atomic_store(&s->stop, 1);
	ASSERT_EQ(0, pthread_join(s->th, NULL));
	EXPECT_EQ(0, atomic_load(&s->stolen));
	EXPECT_EQ(0, atomic_load(&s->other));
	TH_LOG("%d rounds, spinner saw %ld EAGAIN", NSTEAL, atomic_load(&s->eagain));
	close(s->fd);
	close(fd);
	free(s);
}

TEST(blocked_reader_emsgsize_keeps_message)
{
	struct mpmc_stats st;
	struct op rd;
	char msg[100];
	int fd, len;

	memset(msg, 'q', sizeof(msg));
	fd = blocked_reader(&rd, 8);
	ASSERT_LE(0, fd);
	ASSERT_EQ(sizeof(msg), write(fd, msg, sizeof(msg)));
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_OP_ERR(rd, EMSGSIZE);

	MPMC_STATS(fd, &st);
	EXPECT_EQ(1, st.queued_msgs);
	EXPECT_EQ(sizeof(msg), st.queued_bytes);
	EXPECT_EQ(0, st.total_received);
	EXPECT_EQ(0, st.blocked_receivers);
	ASSERT_EQ(0, ioctl(fd, FIONREAD, &len));
	EXPECT_EQ(sizeof(msg), len);

	ASSERT_EQ(0, start_reader(&rd, fd, 4096));
	ASSERT_EQ(0, op_join(&rd));
	ASSERT_EQ(sizeof(msg), rd.ret);
	EXPECT_EQ(0, memcmp(rd.buf, msg, sizeof(msg)));
	MPMC_STATS(fd, &st);
	EXPECT_EQ(0, st.queued_msgs);
	EXPECT_EQ(1, st.total_received);
	close(fd);
}

TEST(blocked_reader_emsgsize_next_in_line)
{
	struct mpmc_stats st;
	struct op small, big;
	char msg[100];
	int fd;

	memset(msg, 'r', sizeof(msg));
	fd = blocked_reader(&small, 8);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, start_reader(&big, fd, 4096));
	ASSERT_EQ(0, wait_blocked(fd, true, 2));

	ASSERT_EQ(sizeof(msg), write(fd, msg, sizeof(msg)));
	ASSERT_EQ(0, op_join(&small));
	EXPECT_OP_ERR(small, EMSGSIZE);
	ASSERT_EQ(0, op_join(&big));
	ASSERT_EQ(sizeof(msg), big.ret);
	EXPECT_EQ(0, memcmp(big.buf, msg, sizeof(msg)));

	MPMC_STATS(fd, &st);
	EXPECT_EQ(0, st.queued_msgs);
	EXPECT_EQ(1, st.total_received);
	EXPECT_EQ(0, st.blocked_receivers);
	close(fd);
}

TEST_HARNESS_MAIN
