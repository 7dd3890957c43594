// SPDX-License-Identifier: GPL-2.0
/*
 * Message priorities (SPEC 13, "Priorities"; mpmc_msgvec.prio):
 *  - MPMC_IOC_SEND accepts prio 0..MPMC_PRIO_MAX-1; any entry with prio
 *    MPMC_PRIO_MAX or more fails the whole batch with EINVAL, nothing sent
 *    (not even to a blocked receiver);
 *  - every receive takes the oldest message of the highest priority
 *    present: read(), readv(), MPMC_IOC_RECV (which writes each message's
 *    priority back and ignores prio on input), io_uring READ and
 *    MPMC_RECV_PEEK;
 *  - write(), writev() and io_uring WRITE send at priority 0;
 *  - capacity counts the messages of all priorities together;
 *  - blocked senders are admitted in the order they blocked, whatever their
 *    messages' priorities;
 *  - a read too small for the highest-priority message gets EMSGSIZE (even
 *    when a lower one would fit) and the message stays;
 *  - FIONREAD is the length of the message a read would get.
 */
#define _GNU_SOURCE
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

#define BUFSZ	256

/*
 * One MPMC_IOC_RECV of one message into @buf (BUFSZ, NUL-terminated),
 * timeout 0, with @flags: its length and *@prio, or -1 with errno.
 */
static int recv_prio(int fd, char *buf, __u32 *prio, __u32 flags)
{
	return recv_msg(fd, buf, BUFSZ, prio, flags);
}

/*
 * Receive one message with recv_prio() (flags 0): assert that it is as
 * long as the string @s, expect @s and priority @p.
 */
#define EXPECT_RECV(fd, s, p) do {					\
	char b_[BUFSZ];							\
	__u32 p_;							\
									\
	ASSERT_EQ((int)strlen(s), recv_prio((fd), b_, &p_, 0));	\
	EXPECT_STREQ((s), b_);						\
	EXPECT_EQ((__u32)(p), p_);					\
} while (0)

static unsigned int queued(int fd)
{
	return stats_of(fd).queued_msgs;
}

/*
 * The mixed set the order tests use: in send order, and in the order a
 * receive must take them (highest priority first, FIFO within one).
 */
static const struct {
	const char *msg;
	__u32 prio;
} mixed[] = {
	{ "a1", 1 }, { "b5", 5 }, { "c1", 1 }, { "d5", 5 }, { "e0", 0 },
	{ "f31", 31 }, { "g0", 0 }, { "h5", 5 },
};

static const char *const mixed_order[] = {
	"f31", "b5", "d5", "h5", "a1", "c1", "e0", "g0",
};

#define NMIXED	ARRAY_SIZE(mixed)

static void send_mixed(struct __test_metadata *_metadata, int fd)
{
	unsigned int i;

	for (i = 0; i < NMIXED; i++)
		ASSERT_EQ(1, send_one(fd, mixed[i].msg, mixed[i].prio, 0));
	ASSERT_EQ(NMIXED, queued(fd));
}

TEST(prio_0_to_31_accepted)
{
	struct mpmc_msgvec v[MPMC_PRIO_MAX];
	char bufs[MPMC_PRIO_MAX][8];
	struct mpmc_batch b = {
		.vec = (uintptr_t)v, .count = MPMC_PRIO_MAX,
	};
	int fd, i;

	ASSERT_EQ(32, MPMC_PRIO_MAX);
	fd = mpmc_test_open_cfg(64, 64);
	ASSERT_LE(0, fd);
	for (i = 0; i < MPMC_PRIO_MAX; i++) {
		snprintf(bufs[i], sizeof(bufs[i]), "p%02d", i);
		v[i] = (struct mpmc_msgvec){
			.buf = (uintptr_t)bufs[i], .len = 3, .prio = i,
		};
	}
	ASSERT_EQ(MPMC_PRIO_MAX, ioctl(fd, MPMC_IOC_SEND, &b));
	EXPECT_EQ(MPMC_PRIO_MAX, queued(fd));
	/* Received from 31 down to 0. */
	for (i = MPMC_PRIO_MAX - 1; i >= 0; i--) {
		char buf[BUFSZ], want[8];
		__u32 prio;

		snprintf(want, sizeof(want), "p%02d", i);
		ASSERT_EQ(3, recv_prio(fd, buf, &prio, 0));
		EXPECT_STREQ(want, buf);
		EXPECT_EQ((__u32)i, prio);
	}
	EXPECT_EQ(0U, queued(fd));
	close(fd);
}

/* Any entry with prio >= MPMC_PRIO_MAX: EINVAL, and nothing at all sent. */
TEST(prio_32_and_above_einval_nothing_sent)
{
	static const __u32 bad[] = { MPMC_PRIO_MAX, MPMC_PRIO_MAX + 1, 255,
				     0x80000000u, UINT32_MAX };
	static const int where[] = { 0, 2, 3 };
	struct mpmc_msgvec v[4];
	struct mpmc_batch b = { .vec = (uintptr_t)v, .count = 4 };
	struct mpmc_stats st;
	char buf[4][8] = { "m0", "m1", "m2", "m3" };
	unsigned int i, j, k;
	struct op rd;
	int fd;

	fd = mpmc_test_open_cfg(8, 64);
	ASSERT_LE(0, fd);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		for (j = 0; j < ARRAY_SIZE(where); j++) {
			for (k = 0; k < 4; k++)
				v[k] = (struct mpmc_msgvec){
					.buf = (uintptr_t)buf[k], .len = 2,
					.prio = k,
				};
			v[where[j]].prio = bad[i];
			errno = 0;
			EXPECT_EQ(-1, ioctl(fd, MPMC_IOC_SEND, &b));
			EXPECT_EQ(EINVAL, errno) {
				TH_LOG("prio %u at entry %d", bad[i], where[j]);
			}
		}
	}
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 0U, 0U, 0U);

	/* Not even the valid first entry goes to a blocked receiver. */
	ASSERT_EQ(0, start_reader(&rd, fd, 64));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	for (k = 0; k < 4; k++)
		v[k] = (struct mpmc_msgvec){
			.buf = (uintptr_t)buf[k], .len = 2, .prio = 0,
		};
	v[1].prio = MPMC_PRIO_MAX;
	b.timeout_ns = -1;
	EXPECT_ERRNO(EINVAL, ioctl(fd, MPMC_IOC_SEND, &b));
	usleep(100000);
	EXPECT_FALSE(op_done(&rd));
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 0U, 0U, 0U);
	EXPECT_EQ(1U, st.blocked_receivers);
	ASSERT_EQ(0, write_str(fd, "ok"));
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_EQ(2, rd.ret);
	EXPECT_STREQ("ok", rd.buf);
	close(fd);
}

TEST(read_highest_first_fifo_within)
{
	char buf[BUFSZ];
	unsigned int i;
	int fd;

	fd = mpmc_test_open_cfg(16, 64);
	ASSERT_LE(0, fd);
	send_mixed(_metadata, fd);
	for (i = 0; i < NMIXED; i++) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);

		ASSERT_EQ((ssize_t)strlen(mixed_order[i]), n);
		buf[n] = '\0';
		EXPECT_STREQ(mixed_order[i], buf);
	}
	EXPECT_EQ(0U, queued(fd));
	close(fd);
}

TEST(readv_highest_first_fifo_within)
{
	char a[2], b[BUFSZ];
	struct iovec iov[2] = {
		{ .iov_base = a, .iov_len = sizeof(a) },
		{ .iov_base = b, .iov_len = sizeof(b) - 1 },
	};
	unsigned int i;
	int fd;

	fd = mpmc_test_open_cfg(16, 64);
	ASSERT_LE(0, fd);
	send_mixed(_metadata, fd);
	for (i = 0; i < NMIXED; i++) {
		char got[BUFSZ + 2];
		ssize_t n = readv(fd, iov, 2);

		ASSERT_EQ((ssize_t)strlen(mixed_order[i]), n);
		memcpy(got, a, n < 2 ? n : 2);
		if (n > 2)
			memcpy(got + 2, b, n - 2);
		got[n] = '\0';
		EXPECT_STREQ(mixed_order[i], got);
	}
	EXPECT_EQ(0U, queued(fd));
	close(fd);
}

/*
 * One MPMC_IOC_RECV batch takes them all in receive order and writes each
 * priority back; whatever is in prio on input is ignored (not EINVAL).
 */
TEST(batch_recv_order_and_prio_written_back)
{
	struct mpmc_msgvec v[NMIXED + 2];
	char bufs[NMIXED + 2][BUFSZ];
	struct mpmc_batch b = { .vec = (uintptr_t)v, .count = NMIXED + 2 };
	unsigned int i;
	int fd;

	fd = mpmc_test_open_cfg(16, 64);
	ASSERT_LE(0, fd);
	send_mixed(_metadata, fd);
	for (i = 0; i < NMIXED + 2; i++)
		v[i] = (struct mpmc_msgvec){
			.buf = (uintptr_t)bufs[i], .len = BUFSZ - 1,
			.prio = i == 0 ? UINT32_MAX : 1000 + i,
		};
	ASSERT_EQ((int)NMIXED, ioctl(fd, MPMC_IOC_RECV, &b)) {
		TH_LOG("errno %d", errno);
	}
	for (i = 0; i < NMIXED; i++) {
		const char *want = mixed_order[i];
		unsigned int j;

		ASSERT_EQ(strlen(want), v[i].len);
		bufs[i][v[i].len] = '\0';
		EXPECT_STREQ(want, bufs[i]);
		for (j = 0; j < NMIXED; j++)
			if (!strcmp(mixed[j].msg, want))
				EXPECT_EQ(mixed[j].prio, v[i].prio) {
					TH_LOG("entry %u (%s)", i, want);
				}
	}
	/* Entries past the messages received are left alone. */
	for (i = NMIXED; i < NMIXED + 2; i++) {
		EXPECT_EQ((__u32)BUFSZ - 1, v[i].len);
		EXPECT_EQ(1000 + i, v[i].prio);
	}
	EXPECT_EQ(0U, queued(fd));
	close(fd);
}

TEST(uring_read_highest_first)
{
	struct io_uring ring;
	char buf[BUFSZ];
	unsigned int i;
	struct cqe c;
	int fd;

	fd = mpmc_test_open_cfg(16, 64);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 4);
	send_mixed(_metadata, fd);
	for (i = 0; i < NMIXED; i++) {
		prep_read(&ring, fd, buf, sizeof(buf) - 1, i);
		ASSERT_EQ(1, io_uring_submit(&ring));
		ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
		EXPECT_EQ(i, c.ud);
		ASSERT_EQ((int)strlen(mixed_order[i]), c.res);
		buf[c.res] = '\0';
		EXPECT_STREQ(mixed_order[i], buf);
	}
	EXPECT_EQ(0U, queued(fd));
	io_uring_queue_exit(&ring);
	close(fd);
}

/* A parked io_uring READ completes with the highest message of a batch. */
TEST(uring_parked_read_gets_a_message)
{
	struct mpmc_msgvec v[2] = {
		{ .buf = (uintptr_t)"low", .len = 3, .prio = 0 },
		{ .buf = (uintptr_t)"high", .len = 4, .prio = 9 },
	};
	struct mpmc_batch b = { .vec = (uintptr_t)v, .count = 2 };
	struct io_uring ring;
	char buf[BUFSZ];
	struct cqe c;
	int fd, n;

	fd = mpmc_test_open_cfg(16, 64);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 4);
	prep_read(&ring, fd, buf, sizeof(buf) - 1, 7);
	ASSERT_EQ(1, io_uring_submit(&ring));
	EXPECT_EQ(-ETIME, get_cqe(&ring, 100, &c));
	ASSERT_EQ(2, ioctl(fd, MPMC_IOC_SEND, &b));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	/*
	 * A parked READ is a poller, woken after the batch: whichever it
	 * takes, the one left is the other, and both were delivered once.
	 */
	ASSERT_LT(0, c.res);
	buf[c.res] = '\0';
	n = read(fd, buf + 16, 64);
	ASSERT_LT(0, n);
	buf[16 + n] = '\0';
	EXPECT_TRUE((!strcmp(buf, "high") && !strcmp(buf + 16, "low")) ||
		    (!strcmp(buf, "low") && !strcmp(buf + 16, "high")));
	/* Here the highest is received first: a parked READ waits as polls do. */
	EXPECT_STREQ("high", buf);
	io_uring_queue_exit(&ring);
	close(fd);
}

TEST(peek_highest_first)
{
	struct mpmc_msgvec v[NMIXED];
	char bufs[NMIXED][BUFSZ];
	struct mpmc_batch b = {
		.vec = (uintptr_t)v, .count = NMIXED, .flags = MPMC_RECV_PEEK,
	};
	unsigned int i;
	int fd;

	fd = mpmc_test_open_cfg(16, 64);
	ASSERT_LE(0, fd);
	send_mixed(_metadata, fd);
	for (i = 0; i < NMIXED; i++)
		v[i] = (struct mpmc_msgvec){
			.buf = (uintptr_t)bufs[i], .len = BUFSZ - 1,
		};
	ASSERT_EQ((int)NMIXED, ioctl(fd, MPMC_IOC_RECV, &b)) {
		TH_LOG("errno %d", errno);
	}
	for (i = 0; i < NMIXED; i++) {
		ASSERT_EQ(strlen(mixed_order[i]), v[i].len);
		bufs[i][v[i].len] = '\0';
		EXPECT_STREQ(mixed_order[i], bufs[i]);
	}
	EXPECT_EQ(NMIXED, queued(fd));
	close(fd);
}

/* write(), writev() and io_uring WRITE send at priority 0. */
TEST(write_sends_at_prio_0)
{
	struct iovec iov[2] = {
		{ .iov_base = "wv", .iov_len = 2 },
		{ .iov_base = "1", .iov_len = 1 },
	};
	struct io_uring ring;
	struct cqe c;
	int fd;

	fd = mpmc_test_open_cfg(16, 64);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 4);
	ASSERT_EQ(0, write_str(fd, "w0"));
	ASSERT_EQ(1, send_one(fd, "p1", 1, 0));
	ASSERT_EQ(3, writev(fd, iov, 2));
	prep_write(&ring, fd, "u0", 2, 1);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(2, c.res);
	ASSERT_EQ(1, send_one(fd, "z0", 0, 0));

	/* Priority 1 first, then the rest FIFO at priority 0. */
	EXPECT_RECV(fd, "p1", 1);
	EXPECT_RECV(fd, "w0", 0);
	EXPECT_RECV(fd, "wv1", 0);
	EXPECT_RECV(fd, "u0", 0);
	EXPECT_RECV(fd, "z0", 0);
	io_uring_queue_exit(&ring);
	close(fd);
}

/* Capacity 4 holds 4 messages of any priorities, then the channel is full. */
TEST(capacity_counts_all_priorities)
{
	struct pollfd pfd;
	char buf[BUFSZ];
	int fd, nb, i;

	fd = mpmc_test_open_cfg(4, 64);
	ASSERT_LE(0, fd);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(1, send_one(fd, "m", i * 10, 0));
	EXPECT_EQ(4U, queued(fd));
	/* Full for every priority, the highest too. */
	EXPECT_ERRNO(EAGAIN, send_one(fd, "x", 0, 0));
	EXPECT_ERRNO(EAGAIN, send_one(fd, "x", 31, 0));
	EXPECT_ERRNO(ETIMEDOUT, send_one(fd, "x", 31, 1000000));
	nb = new_ep(fd, MPMC_ROLE_SEND, O_NONBLOCK);
	ASSERT_LE(0, nb);
	EXPECT_ERRNO(EAGAIN, write(nb, "x", 1));
	pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	EXPECT_EQ(4U, queued(fd));
	/* One out, one in. */
	ASSERT_EQ(1, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	ASSERT_EQ(1, send_one(fd, "y", 0, 0));
	EXPECT_ERRNO(EAGAIN, send_one(fd, "x", 31, 0));
	EXPECT_EQ(4U, queued(fd));
	EXPECT_EQ(4U, stats_of(fd).total_sent - stats_of(fd).total_received);
	close(nb);
	close(fd);
}

/* A sender thread: one MPMC_IOC_SEND of @msg at @prio, timeout -1. */
struct psend {
	pthread_t th;
	int fd;
	char msg[16];
	__u32 prio;
	int ret, err;
	atomic_int done;
};

static void *psend_fn(void *arg)
{
	struct psend *p = arg;

	p->ret = send_one(p->fd, p->msg, p->prio, -1);
	p->err = p->ret < 0 ? errno : 0;
	atomic_store(&p->done, 1);
	return NULL;
}

static int psend_start(struct psend *p, int fd, const char *msg, __u32 prio)
{
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	snprintf(p->msg, sizeof(p->msg), "%s", msg);
	p->prio = prio;
	return pthread_create(&p->th, NULL, psend_fn, p);
}

/*
 * Capacity 1, full; senders block with priorities 0, 31, 5, 31 in that
 * order: each freed slot admits the next in blocking order, never the
 * highest priority waiting.
 */
TEST(blocked_senders_admitted_in_block_order)
{
	static const struct { const char *msg; __u32 prio; } s[] = {
		{ "s0", 0 }, { "s1", 31 }, { "s2", 5 }, { "s3", 31 },
	};
	struct psend p[4];
	char buf[BUFSZ];
	__u32 prio;
	int fd, i, j;

	fd = mpmc_test_open_cfg(1, 64);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, send_one(fd, "q", 0, 0));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, psend_start(&p[i], fd, s[i].msg, s[i].prio));
		ASSERT_EQ(0, wait_blocked(fd, false, i + 1));
	}
	ASSERT_EQ(1, recv_prio(fd, buf, &prio, 0));
	EXPECT_STREQ("q", buf);
	for (i = 0; i < 4; i++) {
		/* The slot just freed went to sender i, and to it only. */
		ASSERT_EQ(0, wait_blocked(fd, false, 3 - i));
		for (j = 0; j < 4; j++)
			if (j > i)
				EXPECT_FALSE(atomic_load(&p[j].done));
		ASSERT_EQ(0, join_within(p[i].th));
		EXPECT_EQ(1, p[i].ret);
		ASSERT_EQ(2, recv_prio(fd, buf, &prio, 0));
		EXPECT_STREQ(s[i].msg, buf);
		EXPECT_EQ(s[i].prio, prio);
	}
	EXPECT_EQ(0U, queued(fd));
	close(fd);
}

/*
 * The highest message does not fit: EMSGSIZE and it stays, even though a
 * lower one would fit; no receive path skips to a smaller message.
 */
TEST(emsgsize_for_the_highest_stays)
{
	struct mpmc_msgvec v = { .len = 8 };
	struct mpmc_batch b = { .vec = (uintptr_t)&v, .count = 1 };
	struct io_uring ring;
	char buf[BUFSZ];
	struct cqe c;
	int fd;

	v.buf = (uintptr_t)buf;
	fd = mpmc_test_open_cfg(8, 64);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 4);
	ASSERT_EQ(1, send_one(fd, "tiny", 0, 0));
	ASSERT_EQ(1, send_one(fd, "a long high message", 3, 0));
	EXPECT_ERRNO(EMSGSIZE, read(fd, buf, 8));
	EXPECT_ERRNO(EMSGSIZE, ioctl(fd, MPMC_IOC_RECV, &b));
	EXPECT_EQ(8U, v.len);
	prep_read(&ring, fd, buf, 8, 1);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	EXPECT_EQ(-EMSGSIZE, c.res);
	EXPECT_EQ(2U, queued(fd));
	EXPECT_EQ(19, fionread(fd));
	EXPECT_RECV(fd, "a long high message", 3);
	ASSERT_EQ(4, read(fd, buf, 8));
	io_uring_queue_exit(&ring);
	close(fd);
}

/* FIONREAD: the length of the oldest message of the highest priority. */
TEST(fionread_is_the_next_read)
{
	static const struct { const char *msg; __u32 prio; } s[] = {
		{ "abc", 0 }, { "defghij", 5 }, { "klmnopqrs", 5 },
		{ "tuvwxyz0123", 2 }, { "45", 31 },
	};
	static const int next[] = { 2, 7, 9, 11, 3, 0 };
	char buf[BUFSZ];
	unsigned int i;
	int fd;

	fd = mpmc_test_open_cfg(8, 64);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, fionread(fd));
	for (i = 0; i < ARRAY_SIZE(s); i++)
		ASSERT_EQ(1, send_one(fd, s[i].msg, s[i].prio, 0));
	for (i = 0; i < ARRAY_SIZE(next); i++) {
		EXPECT_EQ(next[i], fionread(fd)) {
			TH_LOG("before read %u", i);
		}
		if (next[i])
			ASSERT_EQ(next[i], read(fd, buf, sizeof(buf)));
	}
	close(fd);
}

TEST_HARNESS_MAIN
