// SPDX-License-Identifier: GPL-2.0
/*
 * Peek (SPEC 13, MPMC_RECV_PEEK in mpmc_batch.flags of MPMC_IOC_RECV):
 *  - copies without removing: queued_msgs, queued_bytes, total_received
 *    and FIONREAD unchanged, the next read gets the same message, and a
 *    blocked sender is not admitted;
 *  - copies up to count messages in the order receives would take them
 *    (priorities), writes lengths and priorities back, returns how many,
 *    leaves the entries past them alone;
 *  - EMSGSIZE when the first does not fit, with the same write-back as a
 *    receive getting EMSGSIZE; a later one that does not fit ends the copy
 *    (as a receive batch does);
 *  - waits by the receive timeout rules: timeout 0 and O_NONBLOCK EAGAIN,
 *    a positive timeout ETIMEDOUT, -1 until a message is queued; a signal
 *    ends the wait with EINTR; not counted in blocked_receivers;
 *  - never takes part in hand-off: a blocked reader still gets the message,
 *    which a waiting peek never sees, whoever started waiting first;
 *  - end of file: 0 after SHUT_WR once drained (at once, also for a peek
 *    asleep at the time), and after SHUT_RD;
 *  - EINVAL for any other bit in flags of MPMC_IOC_RECV or MPMC_IOC_SEND,
 *    and for MPMC_RECV_PEEK on MPMC_IOC_SEND; EBADF without the receive
 *    role; EFAULT with nothing removed;
 *  - on a rendezvous channel (capacity 0) a peek sees nothing, even with a
 *    sender blocked.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

#define BUFSZ		256
#define NVEC		8
#define SETTLE_US	200000	/* to let a wrongly woken thread show itself */

/* A peek (or receive) batch with its own buffers, run here or in a thread. */
struct pk {
	pthread_t th;
	int fd;
	__u32 flags;
	__u32 count;
	__s64 timeout;
	struct mpmc_msgvec vec[NVEC];
	char bufs[NVEC][BUFSZ];
	int ret, err;
	atomic_int done;
};

static void pk_init(struct pk *p, int fd, __u32 count, __s64 timeout)
{
	__u32 i;

	*p = (struct pk){
		.fd = fd, .flags = MPMC_RECV_PEEK, .count = count,
		.timeout = timeout,
	};
	for (i = 0; i < NVEC; i++)
		p->vec[i] = (struct mpmc_msgvec){
			.buf = (uintptr_t)p->bufs[i], .len = BUFSZ - 1,
			.prio = 0xbad0 + i,
		};
}

/* Run the batch of @arg, a struct pk; a thread function too. */
static void *pk_run(void *arg)
{
	struct pk *p = arg;
	struct mpmc_batch b = {
		.vec = (uintptr_t)p->vec, .count = p->count,
		.flags = p->flags, .timeout_ns = p->timeout,
	};
	int i;

	p->ret = ioctl(p->fd, MPMC_IOC_RECV, &b);
	p->err = p->ret < 0 ? errno : 0;
	for (i = 0; i < p->ret; i++)
		if (p->vec[i].len < BUFSZ)
			p->bufs[i][p->vec[i].len] = '\0';
	atomic_store(&p->done, 1);
	return NULL;
}

static int pk_start(struct pk *p)
{
	return pthread_create(&p->th, NULL, pk_run, p);
}

/* Expect queued_msgs, queued_bytes, total_received and no blocked receiver. */
#define EXPECT_QUEUE(fd, msgs, bytes, received) do {			\
	struct mpmc_stats __st;						\
	MPMC_STATS((fd), &__st);					\
	EXPECT_EQ((__u32)(msgs), __st.queued_msgs);			\
	EXPECT_EQ((__u64)(bytes), __st.queued_bytes);			\
	EXPECT_EQ((__u64)(received), __st.total_received);		\
	EXPECT_EQ(0U, __st.blocked_receivers);				\
} while (0)

TEST(copies_without_removing)
{
	char buf[BUFSZ];
	struct pk p;
	int fd, i;

	fd = open_queued(8, 64, "first", "second!", "3rd", NULL);
	ASSERT_LE(0, fd);
	for (i = 0; i < 3; i++) {
		pk_init(&p, fd, 2, 0);
		pk_run(&p);
		ASSERT_EQ(2, p.ret) TH_LOG("errno %d", p.err);
		EXPECT_EQ(5U, p.vec[0].len);
		EXPECT_STREQ("first", p.bufs[0]);
		EXPECT_EQ(7U, p.vec[1].len);
		EXPECT_STREQ("second!", p.bufs[1]);
		EXPECT_QUEUE(fd, 3, 15, 0);
		EXPECT_EQ(5, fionread(fd));
	}
	CHECK_READ(fd, buf, "first");
	pk_init(&p, fd, 1, -1);
	pk_run(&p);
	ASSERT_EQ(1, p.ret);
	EXPECT_STREQ("second!", p.bufs[0]);
	CHECK_READ(fd, buf, "second!");
	CHECK_READ(fd, buf, "3rd");
	EXPECT_QUEUE(fd, 0, 0, 3);
	close(fd);
}

/* The order receives take them: highest priority first, FIFO within. */
TEST(order_and_prio_written_back)
{
	static const struct { const char *msg; __u32 prio; } s[] = {
		{ "a0", 0 }, { "b9", 9 }, { "c3", 3 }, { "d9", 9 }, { "e0", 0 },
		{ "f31", 31 },
	};
	static const struct { const char *msg; __u32 prio; } want[] = {
		{ "f31", 31 }, { "b9", 9 }, { "d9", 9 }, { "c3", 3 },
		{ "a0", 0 }, { "e0", 0 },
	};
	struct mpmc_msgvec v[NVEC];
	char bufs[NVEC][BUFSZ];
	struct mpmc_batch b = { .vec = (uintptr_t)v, .count = NVEC };
	unsigned int i;
	struct pk p;
	int fd;

	fd = mpmc_test_open_cfg(8, 64);
	ASSERT_LE(0, fd);
	for (i = 0; i < ARRAY_SIZE(s); i++)
		ASSERT_EQ(1, send_one(fd, s[i].msg, s[i].prio, 0));
	pk_init(&p, fd, NVEC, 0);
	pk_run(&p);
	ASSERT_EQ((int)ARRAY_SIZE(want), p.ret) TH_LOG("errno %d", p.err);
	for (i = 0; i < ARRAY_SIZE(want); i++) {
		EXPECT_EQ(strlen(want[i].msg), p.vec[i].len);
		EXPECT_STREQ(want[i].msg, p.bufs[i]);
		EXPECT_EQ(want[i].prio, p.vec[i].prio) TH_LOG("entry %u", i);
	}
	/* The entries past them are left alone. */
	for (i = ARRAY_SIZE(want); i < NVEC; i++) {
		EXPECT_EQ((__u32)BUFSZ - 1, p.vec[i].len);
		EXPECT_EQ(0xbad0 + i, p.vec[i].prio);
	}
	/* A receive batch then gets the same, in the same order. */
	for (i = 0; i < NVEC; i++)
		v[i] = (struct mpmc_msgvec){
			.buf = (uintptr_t)bufs[i], .len = BUFSZ - 1,
		};
	ASSERT_EQ((int)ARRAY_SIZE(want), ioctl(fd, MPMC_IOC_RECV, &b));
	for (i = 0; i < ARRAY_SIZE(want); i++) {
		EXPECT_EQ(p.vec[i].len, v[i].len);
		EXPECT_EQ(p.vec[i].prio, v[i].prio);
		EXPECT_EQ(0, memcmp(p.bufs[i], bufs[i], v[i].len));
	}
	close(fd);
}

TEST(returns_how_many)
{
	struct pk p;
	int fd, n;

	fd = mpmc_test_open_cfg(8, 64);
	ASSERT_LE(0, fd);
	for (n = 1; n <= 4; n++) {
		ASSERT_EQ(0, write_str(fd, "m"));
		pk_init(&p, fd, NVEC, 0);
		pk_run(&p);
		EXPECT_EQ(n, p.ret);
		pk_init(&p, fd, 2, 0);
		pk_run(&p);
		EXPECT_EQ(n < 2 ? n : 2, p.ret);
	}
	EXPECT_QUEUE(fd, 4, 4, 0);
	close(fd);
}

/*
 * The first entry too small: EMSGSIZE, nothing removed, and the vec
 * written back exactly as a receive that gets EMSGSIZE writes it.
 */
TEST(emsgsize_when_the_first_does_not_fit)
{
	struct pk p, r;
	int fd, i;

	fd = open_queued(8, 64, "0123456789", "ab", NULL);
	ASSERT_LE(0, fd);

	pk_init(&r, fd, 2, 0);
	r.flags = 0;
	r.vec[0].len = 4;
	pk_run(&r);
	ASSERT_EQ(-1, r.ret);
	ASSERT_EQ(EMSGSIZE, r.err);

	pk_init(&p, fd, 2, 0);
	p.vec[0].len = 4;
	pk_run(&p);
	EXPECT_OP_ERR(p, EMSGSIZE);
	for (i = 0; i < NVEC; i++) {
		EXPECT_EQ(r.vec[i].len, p.vec[i].len) TH_LOG("entry %d", i);
		EXPECT_EQ(r.vec[i].prio, p.vec[i].prio) TH_LOG("entry %d", i);
	}
	EXPECT_EQ(4U, p.vec[0].len);
	EXPECT_QUEUE(fd, 2, 12, 0);
	/* Also when it would wait: there is a message, it does not fit. */
	pk_init(&p, fd, 1, -1);
	p.vec[0].len = 9;
	pk_run(&p);
	EXPECT_OP_ERR(p, EMSGSIZE);
	EXPECT_EQ(10, fionread(fd));
	close(fd);
}

/* A later entry too small ends the copy: the count so far, as a receive. */
TEST(later_entry_too_small_ends_the_copy)
{
	struct pk p;
	int fd;

	fd = open_queued(8, 64, "short", "a longer message", "s", NULL);
	ASSERT_LE(0, fd);
	pk_init(&p, fd, 3, 0);
	p.vec[1].len = 8;
	pk_run(&p);
	ASSERT_EQ(1, p.ret);
	EXPECT_STREQ("short", p.bufs[0]);
	EXPECT_EQ(8U, p.vec[1].len);
	EXPECT_EQ(0xbad1U, p.vec[1].prio);
	EXPECT_EQ((__u32)BUFSZ - 1, p.vec[2].len);
	EXPECT_QUEUE(fd, 3, 22, 0);
	close(fd);
}

TEST(timeout_0_and_nonblock_eagain)
{
	int fd = mpmc_test_open_cfg(8, 64), nb;
	struct pk p;

	ASSERT_LE(0, fd);
	pk_init(&p, fd, 1, 0);
	pk_run(&p);
	EXPECT_OP_ERR(p, EAGAIN);
	EXPECT_EQ((__u32)BUFSZ - 1, p.vec[0].len);
	nb = new_ep(fd, MPMC_ROLE_RECV, O_NONBLOCK);
	ASSERT_LE(0, nb);
	pk_init(&p, nb, 1, -1);
	pk_run(&p);
	EXPECT_OP_ERR(p, EAGAIN);
	pk_init(&p, nb, 1, 5000000000LL);
	pk_run(&p);
	EXPECT_OP_ERR(p, EAGAIN);
	close(nb);
	close(fd);
}

TEST(positive_timeout_etimedout)
{
	long long t0;
	struct pk p;
	int fd;

	fd = mpmc_test_open_cfg(8, 64);
	ASSERT_LE(0, fd);
	t0 = now_ms();
	pk_init(&p, fd, 1, 300000000LL);
	pk_run(&p);
	EXPECT_OP_ERR(p, ETIMEDOUT);
	EXPECT_LE(300, now_ms() - t0);
	EXPECT_GT(300 + 2000, now_ms() - t0);
	close(fd);
}

/*
 * -1 waits until a message is queued; while it waits it is no blocked
 * receiver; it returns with a copy and the message stays.
 */
TEST(forever_waits_until_queued)
{
	char buf[BUFSZ];
	struct pk p;
	int fd;

	fd = mpmc_test_open_cfg(8, 64);
	ASSERT_LE(0, fd);
	pk_init(&p, fd, 4, -1);
	ASSERT_EQ(0, pk_start(&p));
	usleep(SETTLE_US);
	EXPECT_FALSE(atomic_load(&p.done));
	EXPECT_EQ(0U, stats_of(fd).blocked_receivers);
	ASSERT_EQ(0, write_str(fd, "arrived"));
	ASSERT_EQ(0, join_within(p.th));
	ASSERT_EQ(1, p.ret);
	EXPECT_STREQ("arrived", p.bufs[0]);
	EXPECT_QUEUE(fd, 1, 7, 0);
	CHECK_READ(fd, buf, "arrived");

	/* A positive timeout, satisfied before it expires. */
	pk_init(&p, fd, 1, 20000000000LL);
	ASSERT_EQ(0, pk_start(&p));
	usleep(SETTLE_US);
	EXPECT_FALSE(atomic_load(&p.done));
	ASSERT_EQ(0, write_str(fd, "again"));
	ASSERT_EQ(0, join_within(p.th));
	ASSERT_EQ(1, p.ret);
	EXPECT_STREQ("again", p.bufs[0]);
	EXPECT_QUEUE(fd, 1, 5, 1);
	close(fd);
}

static void on_usr1(int sig)
{
	(void)sig;
}

TEST(signal_ends_the_wait_eintr)
{
	struct sigaction sa = { .sa_handler = on_usr1 };	/* no SA_RESTART */
	struct pk p;
	int fd;

	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	fd = mpmc_test_open_cfg(8, 64);
	ASSERT_LE(0, fd);
	pk_init(&p, fd, 1, -1);
	ASSERT_EQ(0, pk_start(&p));
	usleep(SETTLE_US);
	ASSERT_FALSE(atomic_load(&p.done));
	ASSERT_EQ(0, pthread_kill(p.th, SIGUSR1));
	ASSERT_EQ(0, join_within(p.th));
	EXPECT_OP_ERR(p, EINTR);
	close(fd);
}

/*
 * A blocked reader gets the message whether a peek started waiting before
 * or after it; the peek never sees that message (it was never queued) and
 * sleeps on until one is queued, which it copies and leaves.
 */
TEST(never_takes_part_in_handoff)
{
	char buf[BUFSZ];
	struct op rd;
	struct pk p;
	int fd, order;

	for (order = 0; order < 2; order++) {
		fd = mpmc_test_open_cfg(8, 64);
		ASSERT_LE(0, fd);
		pk_init(&p, fd, 1, -1);
		if (order == 0) {
			ASSERT_EQ(0, pk_start(&p));
			usleep(SETTLE_US);
		}
		ASSERT_EQ(0, start_reader(&rd, fd, 64));
		ASSERT_EQ(0, wait_blocked(fd, true, 1));
		if (order == 1) {
			ASSERT_EQ(0, pk_start(&p));
			usleep(SETTLE_US);
		}
		/* The peek is not counted. */
		EXPECT_EQ(1U, stats_of(fd).blocked_receivers);
		ASSERT_EQ(0, write_str(fd, "handed"));
		ASSERT_EQ(0, op_join(&rd));
		EXPECT_EQ(6, rd.ret);
		EXPECT_STREQ("handed", rd.buf);
		usleep(SETTLE_US);
		EXPECT_FALSE(atomic_load(&p.done)) {
			TH_LOG("order %d: the peek returned %d: %s", order,
			       p.ret, p.ret > 0 ? p.bufs[0] : "");
		}
		EXPECT_QUEUE(fd, 0, 0, 1);
		ASSERT_EQ(0, write_str(fd, "queued"));
		ASSERT_EQ(0, join_within(p.th));
		ASSERT_EQ(1, p.ret);
		EXPECT_STREQ("queued", p.bufs[0]);
		EXPECT_QUEUE(fd, 1, 6, 1);
		CHECK_READ(fd, buf, "queued");
		close(fd);
	}
}

/* A peek does not free room: a blocked sender stays blocked. */
TEST(does_not_admit_blocked_senders)
{
	char buf[BUFSZ];
	struct op wr;
	struct pk p;
	int fd;

	fd = blocked_writer(&wr, "queued", "waiting");
	ASSERT_LE(0, fd);
	pk_init(&p, fd, 4, 0);
	pk_run(&p);
	ASSERT_EQ(1, p.ret);
	EXPECT_STREQ("queued", p.bufs[0]);
	usleep(SETTLE_US);
	EXPECT_FALSE(op_done(&wr));
	EXPECT_EQ(1U, stats_of(fd).blocked_senders);
	CHECK_READ(fd, buf, "queued");
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(7, wr.ret);
	CHECK_READ(fd, buf, "waiting");
	close(fd);
}

TEST(eof_after_shut_wr_drained)
{
	char buf[BUFSZ];
	struct pk p, asleep;
	int fd, i;

	fd = mpmc_test_open_cfg(8, 64);
	ASSERT_LE(0, fd);
	/* A peek asleep when SHUT_WR comes returns 0. */
	pk_init(&asleep, fd, 1, -1);
	ASSERT_EQ(0, pk_start(&asleep));
	usleep(SETTLE_US);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	ASSERT_EQ(0, join_within(asleep.th));
	EXPECT_EQ(0, asleep.ret);
	close(fd);

	fd = open_queued(8, 64, "last", NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	/* Not drained yet: the message is still there to see. */
	pk_init(&p, fd, 2, -1);
	pk_run(&p);
	ASSERT_EQ(1, p.ret);
	EXPECT_STREQ("last", p.bufs[0]);
	CHECK_READ(fd, buf, "last");
	/* Drained: 0 at once, every time, whatever the timeout. */
	for (i = 0; i < 3; i++) {
		pk_init(&p, fd, 2, i == 0 ? -1 : i == 1 ? 0 : 5000000000LL);
		ASSERT_EQ(0, pk_start(&p));
		ASSERT_EQ(0, join_within(p.th));
		EXPECT_EQ(0, p.ret);
		EXPECT_EQ((__u32)BUFSZ - 1, p.vec[0].len);
	}
	close(fd);

	/* SHUT_RD: receives return 0, a peek too. */
	fd = open_queued(8, 64, "gone", NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RD));
	pk_init(&p, fd, 1, -1);
	ASSERT_EQ(0, pk_start(&p));
	ASSERT_EQ(0, join_within(p.th));
	EXPECT_EQ(0, p.ret);
	close(fd);
}

TEST(unknown_flag_bits_einval)
{
	static const __u32 recv_bad[] = {
		2, 4, 0x80000000u, MPMC_RECV_PEEK | 2,
		MPMC_RECV_PEEK | 0x80000000u, UINT32_MAX,
	};
	static const __u32 send_bad[] = {
		MPMC_RECV_PEEK, 2, MPMC_RECV_PEEK | 2, 0x80000000u,
	};
	struct mpmc_msgvec v = { .len = 4 };
	struct mpmc_batch b = { .vec = (uintptr_t)&v, .count = 1 };
	struct mpmc_stats st;
	char buf[BUFSZ] = "sent";
	unsigned int i;
	int fd;

	v.buf = (uintptr_t)buf;
	fd = open_queued(8, 64, "here", NULL);
	ASSERT_LE(0, fd);
	for (i = 0; i < ARRAY_SIZE(recv_bad); i++) {
		b.flags = recv_bad[i];
		v.len = BUFSZ;
		errno = 0;
		EXPECT_EQ(-1, ioctl(fd, MPMC_IOC_RECV, &b));
		EXPECT_EQ(EINVAL, errno) TH_LOG("RECV flags 0x%x", recv_bad[i]);
		EXPECT_EQ((__u32)BUFSZ, v.len);
	}
	for (i = 0; i < ARRAY_SIZE(send_bad); i++) {
		b.flags = send_bad[i];
		v.len = 4;
		errno = 0;
		EXPECT_EQ(-1, ioctl(fd, MPMC_IOC_SEND, &b));
		EXPECT_EQ(EINVAL, errno) TH_LOG("SEND flags 0x%x", send_bad[i]);
	}
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 1U, 1U, 0U);
	/* MPMC_RECV_PEEK alone is fine on RECV. */
	b.flags = MPMC_RECV_PEEK;
	v.len = BUFSZ;
	EXPECT_EQ(1, ioctl(fd, MPMC_IOC_RECV, &b));
	EXPECT_EQ(4U, v.len);
	close(fd);
}

TEST(ebadf_without_recv_role_efault_keeps_it)
{
	struct pk p;
	int fd, tx;

	fd = open_queued(8, 64, "here", NULL);
	ASSERT_LE(0, fd);
	tx = new_ep(fd, MPMC_ROLE_SEND, 0);
	ASSERT_LE(0, tx);
	pk_init(&p, tx, 1, 0);
	pk_run(&p);
	EXPECT_OP_ERR(p, EBADF);
	pk_init(&p, fd, 1, 0);
	p.vec[0].buf = (uintptr_t)unmapped_page();
	pk_run(&p);
	EXPECT_OP_ERR(p, EFAULT);
	EXPECT_QUEUE(fd, 1, 4, 0);
	close(tx);
	close(fd);
}

/* Capacity 0: nothing is queued, so a peek sees nothing, sender or not. */
TEST(rendezvous_peek_sees_nothing)
{
	struct mpmc_config cfg = { .capacity = 0, .max_msg_size = 64 };
	char buf[BUFSZ];
	struct op wr;
	struct pk p;
	int fd;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg));
	pk_init(&p, fd, 1, 0);
	pk_run(&p);
	EXPECT_OP_ERR(p, EAGAIN);
	ASSERT_EQ(0, start_writer(&wr, fd, "offered"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	pk_init(&p, fd, 1, 0);
	pk_run(&p);
	EXPECT_OP_ERR(p, EAGAIN);
	pk_init(&p, fd, 1, 200000000LL);
	pk_run(&p);
	EXPECT_OP_ERR(p, ETIMEDOUT);
	EXPECT_EQ((__u32)BUFSZ - 1, p.vec[0].len);
	/* The sender is still waiting, and a read gets its message. */
	EXPECT_FALSE(op_done(&wr));
	EXPECT_EQ(1U, stats_of(fd).blocked_senders);
	ASSERT_EQ(7, read_str(fd, buf, sizeof(buf)));
	EXPECT_STREQ("offered", buf);
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(7, wr.ret);
	close(fd);
}

TEST_HARNESS_MAIN
