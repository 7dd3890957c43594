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

/*
 * @rd sleeps in read() on @fd, which has received nothing: it still does
 * after SETTLE_US, and a write of @msg wakes it with @msg.
 */
static void reader_woken_by(struct __test_metadata *_metadata, int fd,
			    struct op *rd, const char *msg)
{
	usleep(SETTLE_US);
	EXPECT_FALSE(op_done(rd));
	EXPECT_STATS(fd, STAT(blocked_receivers, 1), STAT(total_received, 0));

	ASSERT_EQ(0, write_str(fd, msg));
	ASSERT_EQ(0, op_join(rd));
	EXPECT_EQ((ssize_t)strlen(msg), rd->ret);
	EXPECT_EQ(0, memcmp(rd->buf, msg, strlen(msg)));
}

TEST(read_blocks_until_write)
{
	struct op rd;
	int fd;

	fd = blocked_reader(&rd, 4096);
	ASSERT_LE(0, fd);
	reader_woken_by(_metadata, fd, &rd, "hello");
	EXPECT_STATS(fd, STAT(blocked_receivers, 0), STAT_TOTALS(0, 1, 1));
	close(fd);
}

TEST(write_blocks_until_read)
{
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
	EXPECT_STATS(fd, STAT(blocked_senders, 1), STAT(queued_msgs, 2),
		     STAT(total_sent, 2));

	CHECK_READ_STR(fd, buf, "m0");
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(2, wr.ret);

	CHECK_READ_STR(fd, buf, "m1");
	CHECK_READ_STR(fd, buf, "m2");
	EXPECT_STATS(fd, STAT(blocked_senders, 0), STAT_TOTALS(0, 3, 3));
	close(fd);
}

TEST(nonblock_at_open)
{
	struct mpmc_config cfg = { .capacity = 2, .max_msg_size = 64 };
	char buf[64];
	int fd;

	fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg));

	EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));

	ASSERT_EQ(0, write_str(fd, "a"));
	ASSERT_EQ(0, write_str(fd, "b"));
	EXPECT_ERRNO(EAGAIN, write(fd, "c", 1));
	EXPECT_STATS(fd, STAT(queued_msgs, 2), STAT(total_sent, 2),
		     STAT(blocked_senders, 0));

	CHECK_READ_STR(fd, buf, "a");
	CHECK_READ_STR(fd, buf, "b");
	EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));
	EXPECT_STATS(fd, STAT(queued_msgs, 0), STAT(total_received, 2),
		     STAT(blocked_receivers, 0));
	close(fd);
}

TEST(nonblock_fcntl_toggle)
{
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
	EXPECT_STATS(fd, STAT(queued_msgs, 1), STAT(total_sent, 1));

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

/*
 * Install the SIGUSR1 handler (with SA_RESTART if @restart), put @op to
 * sleep in a write() of @msg behind @queued (without @msg: in a read() of
 * 64 bytes) and signal its thread; with @restart, wait for the handler to
 * run. Return: the channel.
 */
static int signalled_sleeper(struct __test_metadata *_metadata,
			     struct op *op, bool restart,
			     const char *queued, const char *msg)
{
	int fd;

	ASSERT_EQ(0, set_sigusr1(restart));
	fd = msg ? blocked_writer(op, queued, msg) : blocked_reader(op, 64);
	ASSERT_LE(0, fd);

	ASSERT_EQ(0, pthread_kill(op->th, SIGUSR1));
	if (restart)
		ASSERT_EQ(0, wait_sig_count(1));
	return fd;
}

TEST(signal_interrupts_blocked_read)
{
	struct op rd;
	char buf[64];
	int fd;

	fd = signalled_sleeper(_metadata, &rd, false, NULL, NULL);
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_OP_ERR(rd, EINTR);
	EXPECT_EQ(1, atomic_load(&sig_count));
	EXPECT_STATS(fd, STAT(blocked_receivers, 0), STAT(total_received, 0));

	/* The interrupted reader left nothing behind that takes a message. */
	ASSERT_EQ(0, write_str(fd, "after"));
	EXPECT_STATS(fd, STAT(queued_msgs, 1), STAT(total_received, 0));
	CHECK_READ_STR(fd, buf, "after");
	EXPECT_STATS(fd, STAT(total_received, 1), STAT(queued_msgs, 0));
	close(fd);
}

TEST(signal_interrupts_blocked_write)
{
	struct op wr;
	char buf[64];
	int fd;

	fd = signalled_sleeper(_metadata, &wr, false, "first", "blocked");
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_OP_ERR(wr, EINTR);
	EXPECT_STATS(fd, STAT(blocked_senders, 0), STAT(queued_msgs, 1),
		     STAT(queued_bytes, 5), STAT(total_sent, 1));

	CHECK_READ_STR(fd, buf, "first");
	/* The interrupted message was never enqueued, not even now. */
	usleep(SETTLE_US);
	EXPECT_STATS(fd, STAT(queued_msgs, 0), STAT(total_sent, 1));
	/* Non-blocking: a wrongly queued message must not hang the test. */
	ASSERT_EQ(0, fcntl(fd, F_SETFL, O_NONBLOCK));
	ASSERT_EQ(0, write_str(fd, "next"));
	CHECK_READ_STR(fd, buf, "next");
	close(fd);
}

TEST(sa_restart_blocked_read)
{
	struct op rd;
	int fd;

	fd = signalled_sleeper(_metadata, &rd, true, NULL, NULL);
	/* The handler ran; the read restarted and sleeps again. */
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	reader_woken_by(_metadata, fd, &rd, "late");
	EXPECT_STATS(fd, STAT(total_received, 1), STAT(queued_msgs, 0));
	close(fd);
}

TEST(sa_restart_blocked_write)
{
	struct op wr;
	char buf[64];
	int fd;

	fd = signalled_sleeper(_metadata, &wr, true, "first", "second");
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	usleep(SETTLE_US);
	EXPECT_FALSE(op_done(&wr));
	EXPECT_STATS(fd, STAT(queued_msgs, 1), STAT(total_sent, 1));

	CHECK_READ_STR(fd, buf, "first");
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(6, wr.ret);
	CHECK_READ_STR(fd, buf, "second");
	EXPECT_STATS(fd, STAT(total_sent, 2), STAT(queued_msgs, 0));
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
	EXPECT_STATS(fd, STAT(blocked_senders, 0),
		     STAT_TOTALS(0, NFIFO + 1, NFIFO + 1));
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
	EXPECT_STATS(fd, STAT(blocked_receivers, NHERD - 1),
		     STAT(total_received, 1), STAT(queued_msgs, 0));

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
	struct op rd;
	char msg[100];
	int fd, len;

	memset(msg, 'q', sizeof(msg));
	fd = blocked_reader(&rd, 8);
	ASSERT_LE(0, fd);
	ASSERT_EQ(sizeof(msg), write(fd, msg, sizeof(msg)));
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_OP_ERR(rd, EMSGSIZE);
	EXPECT_STATS(fd, STAT(queued_msgs, 1), STAT(queued_bytes, sizeof(msg)),
		     STAT(total_received, 0), STAT(blocked_receivers, 0));
	ASSERT_EQ(0, ioctl(fd, FIONREAD, &len));
	EXPECT_EQ(sizeof(msg), len);

	ASSERT_EQ(0, start_reader(&rd, fd, 4096));
	ASSERT_EQ(0, op_join(&rd));
	ASSERT_EQ(sizeof(msg), rd.ret);
	EXPECT_EQ(0, memcmp(rd.buf, msg, sizeof(msg)));
	EXPECT_STATS(fd, STAT(queued_msgs, 0), STAT(total_received, 1));
	close(fd);
}

TEST(blocked_reader_emsgsize_next_in_line)
{
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
	EXPECT_STATS(fd, STAT(queued_msgs, 0), STAT(total_received, 1),
		     STAT(blocked_receivers, 0));
	close(fd);
}

TEST_HARNESS_MAIN
