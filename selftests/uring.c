// SPDX-License-Identifier: GPL-2.0
/*
 * io_uring on /dev/mpmc channels (mpmc(4), "io_uring"): READ, WRITE, READV,
 * WRITEV, READ_FIXED/WRITE_FIXED (registered buffers), registered files,
 * an SQPOLL ring, POLL_ADD single-shot and multishot; one SQE moves one
 * whole message (EMSGSIZE leaves it queued); a READ on an empty channel
 * (and a WRITE on a full one) parks on the poll queue and completes later
 * without any io-wq worker thread; RWF_NOWAIT gives EAGAIN; cancelling a
 * pending read (ASYNC_CANCEL, ring exit, process exit or kill) never loses
 * a message; shutdown completes parked requests.
 *
 * What many parked READs cost (the herd measurement): uring_herd.c.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <liburing.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

/* Generous bounds: the tests run in an emulated (TCG) guest. */
#define QUIET_MS	100	/* for something that must not happen */

/* Collect @n completions into @c (any order) within WAIT_MS; how many came. */
static int get_cqes(struct io_uring *ring, int n, struct cqe *c)
{
	long long end = now_ms() + WAIT_MS;
	int i;

	for (i = 0; i < n; i++) {
		long long left = end - now_ms();

		if (get_cqe(ring, left > 1 ? (int)left : 1, &c[i]))
			break;
	}
	return i;
}

static const struct cqe *find_ud(const struct cqe *c, int n, __u64 ud)
{
	int i;

	for (i = 0; i < n; i++)
		if (c[i].ud == ud)
			return &c[i];
	return NULL;
}

/* Submit one READ or WRITE and wait for its completion; the result. */
static int sync_rw(struct io_uring *ring, bool wr, int fd, void *buf,
		   unsigned int len)
{
	struct cqe c;

	if (wr)
		prep_write(ring, fd, buf, len, 0x5151);
	else
		prep_read(ring, fd, buf, len, 0x5151);
	if (io_uring_submit(ring) != 1)
		return -10000;
	if (get_cqe(ring, WAIT_MS, &c) || c.ud != 0x5151)
		return -10001;
	return c.res;
}

/* Nothing completes within QUIET_MS. */
/*
 * Submit @sqe (user_data @ud) alone and wait for its completion: its
 * result, or -10000 if it could not be submitted, -10001 if none came.
 */
static int submit_one(struct io_uring *ring, struct io_uring_sqe *sqe,
		      __u64 ud)
{
	struct cqe c;

	sqe->user_data = ud;
	if (io_uring_submit(ring) != 1)
		return -10000;
	if (get_cqe(ring, WAIT_MS, &c))
		return -10001;
	return c.res;
}

#define ASSERT_QUIET(ring) do { \
	struct cqe __c; \
	int __r = get_cqe((ring), QUIET_MS, &__c); \
	ASSERT_EQ(-ETIME, __r) \
		TH_LOG("unexpected completion ud %llu res %d", \
		       (unsigned long long)__c.ud, __c.res); \
} while (0)

/*
 * READ and WRITE: one SQE moves one whole message, even with room for two
 * in the buffer; EBADF without the role; EOF and EPIPE after SHUT_WR.
 */
TEST(read_write)
{
	struct io_uring ring;
	char buf[256], big[257];
	struct cqe c[2];
	int fd, rx, tx;

	memset(big, 'b', sizeof(big));
	fd = mpmc_test_open_cfg(8, 256);
	ASSERT_LE(0, fd);
	rx = new_ep(fd, MPMC_ROLE_RECV, 0);
	tx = new_ep(fd, MPMC_ROLE_SEND, 0);
	ASSERT_LE(0, rx);
	ASSERT_LE(0, tx);
	RING_INIT(&ring, 8);

	prep_write(&ring, fd, "alpha", 5, 1);
	prep_write(&ring, tx, "bravo!", 6, 2);
	ASSERT_EQ(2, io_uring_submit(&ring));
	ASSERT_EQ(2, get_cqes(&ring, 2, c));
	ASSERT_NE(NULL, find_ud(c, 2, 1));
	ASSERT_NE(NULL, find_ud(c, 2, 2));
	EXPECT_EQ(5, find_ud(c, 2, 1)->res);
	EXPECT_EQ(6, find_ud(c, 2, 2)->res);
	EXPECT_EQ(2U, stats_of(fd).queued_msgs);

	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(5, sync_rw(&ring, false, fd, buf, sizeof(buf)));
	ASSERT_EQ(0, memcmp(buf, "alpha", 5));
	ASSERT_EQ(6, sync_rw(&ring, false, rx, buf, sizeof(buf)));
	ASSERT_EQ(0, memcmp(buf, "bravo!", 6));
	EXPECT_EQ(0U, stats_of(fd).queued_msgs);
	EXPECT_EQ(2U, stats_of(fd).total_sent);
	EXPECT_EQ(2U, stats_of(fd).total_received);

	/* Longer than max_msg_size: EMSGSIZE, nothing queued. */
	ASSERT_EQ(-EMSGSIZE, sync_rw(&ring, true, fd, big, sizeof(big)));
	/* Direction not held. */
	ASSERT_EQ(-EBADF, sync_rw(&ring, false, tx, buf, sizeof(buf)));
	ASSERT_EQ(-EBADF, sync_rw(&ring, true, rx, buf, 3));
	EXPECT_EQ(0U, stats_of(fd).queued_msgs);

	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	ASSERT_EQ(0, sync_rw(&ring, false, rx, buf, sizeof(buf)));
	ASSERT_EQ(-EPIPE, sync_rw(&ring, true, tx, buf, 3));
	io_uring_queue_exit(&ring);
	close(rx);
	close(tx);
	close(fd);
}

/* WRITEV gathers one message; READV scatters one message. */
TEST(readv_writev)
{
	char a[4], b[4], d[10], e[2], f[3], g[5], h[5];
	struct io_uring_sqe *sqe;
	struct iovec wv[3], rv[3];
	struct io_uring ring;
	int fd;

	fd = mpmc_test_open_cfg(8, 256);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 8);

	wv[0] = (struct iovec){ "ab", 2 };
	wv[1] = (struct iovec){ "cde", 3 };
	wv[2] = (struct iovec){ "f", 1 };
	sqe = get_sqe(&ring);
	io_uring_prep_writev(sqe, fd, wv, 3, 0);
	ASSERT_EQ(6, submit_one(&ring, sqe, 1));
	EXPECT_EQ(1U, stats_of(fd).queued_msgs);
	EXPECT_EQ(6, fionread(fd));
	ASSERT_EQ(10, write(fd, "0123456789", 10));

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	rv[0] = (struct iovec){ a, 4 };
	rv[1] = (struct iovec){ b, 4 };
	rv[2] = (struct iovec){ d, 8 };
	sqe = get_sqe(&ring);
	io_uring_prep_readv(sqe, fd, rv, 3, 0);
	ASSERT_EQ(6, submit_one(&ring, sqe, 2));
	ASSERT_EQ(0, memcmp(a, "abcd", 4));
	ASSERT_EQ(0, memcmp(b, "ef", 2));

	rv[0] = (struct iovec){ f, 3 };
	rv[1] = (struct iovec){ a, 3 };
	rv[2] = (struct iovec){ d, 10 };
	sqe = get_sqe(&ring);
	io_uring_prep_readv(sqe, fd, rv, 3, 0);
	ASSERT_EQ(10, submit_one(&ring, sqe, 3));
	ASSERT_EQ(0, memcmp(f, "012", 3));
	ASSERT_EQ(0, memcmp(a, "345", 3));
	ASSERT_EQ(0, memcmp(d, "6789", 4));

	/* A READV whose iovecs add up to less than the message. */
	ASSERT_EQ(8, write(fd, "xyzxyzxy", 8));
	rv[0] = (struct iovec){ e, 2 };
	rv[1] = (struct iovec){ f, 3 };
	sqe = get_sqe(&ring);
	io_uring_prep_readv(sqe, fd, rv, 2, 0);
	ASSERT_EQ(-EMSGSIZE, submit_one(&ring, sqe, 4));
	EXPECT_EQ(8, fionread(fd));
	rv[0] = (struct iovec){ g, 5 };
	rv[1] = (struct iovec){ h, 5 };
	sqe = get_sqe(&ring);
	io_uring_prep_readv(sqe, fd, rv, 2, 0);
	ASSERT_EQ(8, submit_one(&ring, sqe, 5));
	ASSERT_EQ(0, memcmp(g, "xyzxy", 5));
	ASSERT_EQ(0, memcmp(h, "zxy", 3));
	EXPECT_EQ(0U, stats_of(fd).queued_msgs);
	io_uring_queue_exit(&ring);
	close(fd);
}

/* READ_FIXED and WRITE_FIXED with registered buffers, also parked. */
TEST(fixed_buffers)
{
	static char bufs[2][4096] __attribute__((aligned(4096)));
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	struct iovec iov[2];
	struct cqe c;
	int fd, i;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 8);
	iov[0] = (struct iovec){ bufs[0], sizeof(bufs[0]) };
	iov[1] = (struct iovec){ bufs[1], sizeof(bufs[1]) };
	ASSERT_EQ(0, io_uring_register_buffers(&ring, iov, 2));

	for (i = 0; i < 300; i++)
		bufs[0][i] = (char)(i * 7);
	sqe = get_sqe(&ring);
	io_uring_prep_write_fixed(sqe, fd, bufs[0], 300, 0, 0);
	ASSERT_EQ(300, submit_one(&ring, sqe, 1));
	EXPECT_EQ(300, fionread(fd));

	sqe = get_sqe(&ring);
	io_uring_prep_read_fixed(sqe, fd, bufs[1], sizeof(bufs[1]), 0, 1);
	ASSERT_EQ(300, submit_one(&ring, sqe, 2));
	ASSERT_EQ(0, memcmp(bufs[0], bufs[1], 300));

	/* A READ_FIXED on an empty channel parks until a write. */
	sqe = get_sqe(&ring);
	io_uring_prep_read_fixed(sqe, fd, bufs[1] + 100, 1000, 0, 1);
	sqe->user_data = 3;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	ASSERT_EQ(12, write(fd, "fixed buffer", 12));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(3U, c.ud);
	ASSERT_EQ(12, c.res);
	ASSERT_EQ(0, memcmp(bufs[1] + 100, "fixed buffer", 12));
	ASSERT_EQ(0, count_iou_wrk(NULL, 0));
	ASSERT_EQ(0, io_uring_unregister_buffers(&ring));
	io_uring_queue_exit(&ring);
	close(fd);
}

/*
 * Registered files (IOSQE_FIXED_FILE): endpoints keep their roles, a
 * parked READ completes, and a registered file keeps working after its fd
 * is closed.
 */
TEST(registered_files)
{
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	char buf[64];
	int fd, files[2];
	struct cqe c;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	files[0] = new_ep(fd, MPMC_ROLE_RECV, 0);
	files[1] = new_ep(fd, MPMC_ROLE_SEND, 0);
	ASSERT_LE(0, files[0]);
	ASSERT_LE(0, files[1]);
	RING_INIT(&ring, 8);
	ASSERT_EQ(0, io_uring_register_files(&ring, files, 2));

	sqe = get_sqe(&ring);
	io_uring_prep_write(sqe, 1, "fixed", 5, 0);
	sqe->flags |= IOSQE_FIXED_FILE;
	sqe->user_data = 1;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(5, c.res);

	sqe = get_sqe(&ring);
	io_uring_prep_read(sqe, 0, buf, sizeof(buf), 0);
	sqe->flags |= IOSQE_FIXED_FILE;
	sqe->user_data = 2;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(5, c.res);
	ASSERT_EQ(0, memcmp(buf, "fixed", 5));

	/* Roles: the RECV endpoint cannot write. */
	sqe = get_sqe(&ring);
	io_uring_prep_write(sqe, 0, "no", 2, 0);
	sqe->flags |= IOSQE_FIXED_FILE;
	sqe->user_data = 3;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(-EBADF, c.res);

	/* Parked on an empty channel, through a registered file whose fd is gone. */
	close(files[0]);
	sqe = get_sqe(&ring);
	io_uring_prep_read(sqe, 0, buf, sizeof(buf), 0);
	sqe->flags |= IOSQE_FIXED_FILE;
	sqe->user_data = 4;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	ASSERT_EQ(0U, stats_of(fd).blocked_receivers);
	ASSERT_EQ(5, write(files[1], "later", 5));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(4U, c.ud);
	ASSERT_EQ(5, c.res);
	ASSERT_EQ(0, memcmp(buf, "later", 5));
	ASSERT_EQ(0, count_iou_wrk(NULL, 0));
	EXPECT_EQ(2U, stats_of(fd).recv_files);
	ASSERT_EQ(0, io_uring_unregister_files(&ring));
	io_uring_queue_exit(&ring);
	close(files[1]);
	close(fd);
}

/*
 * An SQPOLL ring (skipped if the kernel refuses one). io_uring_submit()
 * on such a ring returns the SQEs the kernel thread has not consumed yet,
 * so only completions are checked.
 */
TEST(sqpoll)
{
	struct io_uring_params p;
	struct io_uring ring;
	char buf[64];
	struct cqe c;
	int fd, ret;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SQPOLL;
	p.sq_thread_idle = 1000;
	ret = io_uring_queue_init_params(8, &ring, &p);
	if (ret) {
		close(fd);
		SKIP(return, "SQPOLL ring refused: %s", strerror(-ret));
	}
	prep_write(&ring, fd, "sqpoll!", 7, 1);
	ASSERT_LE(0, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(1U, c.ud);
	ASSERT_EQ(7, c.res);
	prep_read(&ring, fd, buf, sizeof(buf), 2);
	ASSERT_LE(0, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(2U, c.ud);
	ASSERT_EQ(7, c.res);
	ASSERT_EQ(0, memcmp(buf, "sqpoll!", 7));

	/* Parked by the SQ thread, completed by a later write(2). */
	memset(buf, 0, sizeof(buf));
	prep_read(&ring, fd, buf, sizeof(buf), 9);
	ASSERT_LE(0, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	ASSERT_EQ(0U, stats_of(fd).blocked_receivers);
	ASSERT_EQ(4, write(fd, "poll", 4));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(9U, c.ud);
	ASSERT_EQ(4, c.res);
	ASSERT_EQ(0, memcmp(buf, "poll", 4));
	ASSERT_EQ(0, count_iou_wrk(NULL, 0));
	io_uring_queue_exit(&ring);
	close(fd);
}

static void prep_poll(struct io_uring *ring, int fd, unsigned int mask,
		      bool multi, __u64 ud)
{
	struct io_uring_sqe *sqe = get_sqe(ring);

	if (multi)
		io_uring_prep_poll_multishot(sqe, fd, mask);
	else
		io_uring_prep_poll_add(sqe, fd, mask);
	sqe->user_data = ud;
}

/* Single-shot POLL_ADD: IN on a message, OUT on room, IN|HUP, OUT|ERR. */
TEST(poll_add_oneshot)
{
	struct io_uring ring;
	char buf[64];
	int fd, rx, tx;
	struct cqe c;

	fd = mpmc_test_open_cfg(2, 64);
	ASSERT_LE(0, fd);
	rx = new_ep(fd, MPMC_ROLE_RECV, O_NONBLOCK);
	tx = new_ep(fd, MPMC_ROLE_SEND, O_NONBLOCK);
	ASSERT_LE(0, rx);
	ASSERT_LE(0, tx);
	RING_INIT(&ring, 8);

	prep_poll(&ring, rx, POLLIN, false, 1);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	ASSERT_EQ(2, write(tx, "m1", 2));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(1U, c.ud);
	EXPECT_EQ(POLLIN, c.res & (POLLIN | POLLOUT | POLLHUP | POLLERR));
	/* Single shot: no more. */
	ASSERT_EQ(2, write(tx, "m2", 2));
	ASSERT_QUIET(&ring);

	/* The O_RDWR fd (both wait queues: io_uring's double poll). */
	ASSERT_EQ(2, read(rx, buf, sizeof(buf)));
	ASSERT_EQ(2, read(rx, buf, sizeof(buf)));
	prep_poll(&ring, fd, POLLIN, false, 11);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	ASSERT_EQ(2, write(tx, "m1", 2));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(11U, c.ud);
	EXPECT_EQ(POLLIN, c.res & (POLLIN | POLLOUT | POLLHUP | POLLERR));
	ASSERT_EQ(2, write(tx, "m2", 2));
	prep_poll(&ring, fd, POLLOUT, false, 12);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	ASSERT_EQ(2, read(rx, buf, sizeof(buf)));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(12U, c.ud);
	EXPECT_EQ(POLLOUT, c.res & (POLLIN | POLLOUT | POLLHUP | POLLERR));
	ASSERT_EQ(2, write(tx, "m3", 2));

	/* Full: POLLOUT waits for a read. */
	prep_poll(&ring, tx, POLLOUT, false, 2);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	/* Ready at once while a message is queued. */
	prep_poll(&ring, rx, POLLIN, false, 3);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(3U, c.ud);
	EXPECT_EQ(POLLIN, c.res & (POLLIN | POLLOUT | POLLHUP | POLLERR));
	ASSERT_EQ(2, read(rx, buf, sizeof(buf)));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(2U, c.ud);
	EXPECT_EQ(POLLOUT, c.res & (POLLIN | POLLOUT | POLLHUP | POLLERR));
	ASSERT_EQ(2, read(rx, buf, sizeof(buf)));

	/* Shutdown wakes a pending POLLIN with HUP; POLLOUT gets ERR. */
	prep_poll(&ring, rx, POLLIN, false, 4);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(4U, c.ud);
	EXPECT_EQ(POLLIN | POLLHUP,
		  c.res & (POLLIN | POLLOUT | POLLHUP | POLLERR));
	prep_poll(&ring, tx, POLLOUT, false, 5);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(5U, c.ud);
	EXPECT_EQ(POLLOUT | POLLERR,
		  c.res & (POLLIN | POLLOUT | POLLHUP | POLLERR));
	io_uring_queue_exit(&ring);
	close(rx);
	close(tx);
	close(fd);
}

/*
 * Multishot POLL_ADD: one POLLIN completion (with IORING_CQE_F_MORE) per
 * message written, also into a non-empty channel; shutdown gives IN|HUP;
 * POLL_REMOVE ends it without F_MORE.
 */
TEST(poll_add_multishot)
{
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	struct cqe c, cs[2];
	int fd, rx, tx, i;
	char buf[64];

	fd = mpmc_test_open_cfg(8, 64);
	ASSERT_LE(0, fd);
	rx = new_ep(fd, MPMC_ROLE_RECV, O_NONBLOCK);
	tx = new_ep(fd, MPMC_ROLE_SEND, O_NONBLOCK);
	ASSERT_LE(0, rx);
	ASSERT_LE(0, tx);
	RING_INIT(&ring, 8);

	prep_poll(&ring, rx, POLLIN, true, 7);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(3, write(tx, "msg", 3));
		ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c))
			TH_LOG("no multishot completion for message %d", i);
		ASSERT_EQ(7U, c.ud);
		EXPECT_EQ(POLLIN,
			  c.res & (POLLIN | POLLOUT | POLLHUP | POLLERR));
		EXPECT_TRUE(!!(c.flags & IORING_CQE_F_MORE));
		/* One event, one completion. */
		ASSERT_QUIET(&ring);
		/* Consume every other message: the rest stay queued. */
		if (i % 2)
			ASSERT_EQ(3, read(rx, buf, sizeof(buf)));
	}
	EXPECT_EQ(2U, stats_of(fd).queued_msgs);
	ASSERT_EQ(3, read(rx, buf, sizeof(buf)));
	ASSERT_EQ(3, read(rx, buf, sizeof(buf)));
	ASSERT_QUIET(&ring);

	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(7U, c.ud);
	EXPECT_EQ(POLLIN | POLLHUP,
		  c.res & (POLLIN | POLLOUT | POLLHUP | POLLERR));

	/* Drain whatever HUP completions came, then remove. */
	while (!get_cqe(&ring, QUIET_MS, &c))
		ASSERT_TRUE(!!(c.flags & IORING_CQE_F_MORE));
	sqe = get_sqe(&ring);
	io_uring_prep_poll_remove(sqe, 7);
	sqe->user_data = 8;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(2, get_cqes(&ring, 2, cs));
	ASSERT_NE(NULL, find_ud(cs, 2, 7));
	ASSERT_NE(NULL, find_ud(cs, 2, 8));
	EXPECT_EQ(-ECANCELED, find_ud(cs, 2, 7)->res);
	EXPECT_FALSE(!!(find_ud(cs, 2, 7)->flags & IORING_CQE_F_MORE));
	EXPECT_EQ(0, find_ud(cs, 2, 8)->res);
	io_uring_queue_exit(&ring);
	close(rx);
	close(tx);
	close(fd);
}

/* A READ with a too small buffer: EMSGSIZE, and the message stays. */
TEST(read_too_small_emsgsize)
{
	struct io_uring ring;
	char buf[128], msg[100];
	struct cqe c;
	int fd;

	fd = mpmc_test_open_cfg(8, 128);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 8);
	memset(msg, 'q', sizeof(msg));
	msg[0] = 'A';
	ASSERT_EQ(100, write(fd, msg, 100));
	ASSERT_EQ(50, write(fd, msg, 50));

	ASSERT_EQ(-EMSGSIZE, sync_rw(&ring, false, fd, buf, 10));
	ASSERT_EQ(-EMSGSIZE, sync_rw(&ring, false, fd, buf, 99));
	EXPECT_EQ(100, fionread(fd));
	EXPECT_EQ(2U, stats_of(fd).queued_msgs);
	EXPECT_EQ(0U, stats_of(fd).total_received);
	ASSERT_EQ(100, sync_rw(&ring, false, fd, buf, 100));
	ASSERT_EQ(0, memcmp(buf, msg, 100));
	ASSERT_EQ(-EMSGSIZE, sync_rw(&ring, false, fd, buf, 49));
	ASSERT_EQ(50, sync_rw(&ring, false, fd, buf, sizeof(buf)));
	ASSERT_EQ(0, memcmp(buf, msg, 50));
	EXPECT_EQ(0U, stats_of(fd).queued_msgs);

	/* Parked on an empty channel, woken by a message too big for it. */
	prep_read(&ring, fd, buf, 10, 77);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	ASSERT_EQ(20, write(fd, msg, 20));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(77U, c.ud);
	ASSERT_EQ(-EMSGSIZE, c.res);
	EXPECT_EQ(20, fionread(fd));
	EXPECT_EQ(1U, stats_of(fd).queued_msgs);
	ASSERT_EQ(20, sync_rw(&ring, false, fd, buf, sizeof(buf)));
	ASSERT_EQ(0, memcmp(buf, msg, 20));
	io_uring_queue_exit(&ring);
	close(fd);
}

/*
 * A READ on an empty channel parks on the poll queue (it is not a blocked
 * receiver and no io-wq thread exists) and completes when a message is
 * written later.
 */
TEST(read_parks_until_write)
{
	struct io_uring ring;
	char buf[64];
	struct cqe c;
	int fd;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 8);
	prep_read(&ring, fd, buf, sizeof(buf), 42);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	EXPECT_EQ(0U, stats_of(fd).blocked_receivers);
	EXPECT_EQ(0, count_iou_wrk(NULL, 0));
	ASSERT_EQ(4, write(fd, "late", 4));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(42U, c.ud);
	ASSERT_EQ(4, c.res);
	ASSERT_EQ(0, memcmp(buf, "late", 4));
	EXPECT_EQ(0, count_iou_wrk(NULL, 0));
	EXPECT_EQ(0U, stats_of(fd).queued_msgs);
	io_uring_queue_exit(&ring);
	close(fd);
}

/*
 * A receiver blocked in read(2) is served before a READ parked earlier:
 * parked requests are pollers and only see what is left after hand-off.
 */
TEST(blocked_read_before_parked_read)
{
	struct io_uring ring;
	struct op rd;
	char buf[64];
	struct cqe c;
	int fd;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 8);
	memset(buf, 0, sizeof(buf));
	prep_read(&ring, fd, buf, sizeof(buf), 5);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);

	ASSERT_EQ(0, start_reader(&rd, fd, 64));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	ASSERT_EQ(5, write(fd, "first", 5));
	ASSERT_EQ(0, op_join(&rd));
	ASSERT_EQ(5, rd.ret);
	ASSERT_EQ(0, memcmp(rd.buf, "first", 5));
	ASSERT_QUIET(&ring);

	ASSERT_EQ(6, write(fd, "second", 6));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(5U, c.ud);
	ASSERT_EQ(6, c.res);
	ASSERT_EQ(0, memcmp(buf, "second", 6));
	EXPECT_EQ(0, count_iou_wrk(NULL, 0));
	io_uring_queue_exit(&ring);
	close(fd);
}

#define NR_PARKED	64

/*
 * 64 READs parked on one empty channel use no io-wq thread; then 64
 * writes complete all of them, each with a different message.
 */
TEST(sixty_four_parked_reads)
{
	static char bufs[NR_PARKED][32];
	bool seen[NR_PARKED] = { false };
	struct cqe c[NR_PARKED];
	struct io_uring ring;
	char msg[32];
	int fd, i, id;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 2 * NR_PARKED);
	for (i = 0; i < NR_PARKED; i++)
		prep_read(&ring, fd, bufs[i], sizeof(bufs[i]), i);
	ASSERT_EQ(NR_PARKED, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	ASSERT_EQ(0, count_iou_wrk(NULL, 0))
		TH_LOG("parked READs created io-wq workers");
	EXPECT_EQ(0U, stats_of(fd).blocked_receivers);

	for (i = 0; i < NR_PARKED; i++) {
		snprintf(msg, sizeof(msg), "parked-%02d", i);
		ASSERT_EQ((ssize_t)strlen(msg), write(fd, msg, strlen(msg)));
	}
	ASSERT_EQ(NR_PARKED, get_cqes(&ring, NR_PARKED, c));
	for (i = 0; i < NR_PARKED; i++) {
		ASSERT_GT(NR_PARKED, (int)c[i].ud);
		ASSERT_EQ(9, c[i].res) TH_LOG("READ %llu: %d",
					      (unsigned long long)c[i].ud,
					      c[i].res);
		bufs[c[i].ud][9] = '\0';
		ASSERT_EQ(1, sscanf(bufs[c[i].ud], "parked-%d", &id));
		ASSERT_LE(0, id);
		ASSERT_GT(NR_PARKED, id);
		ASSERT_FALSE(seen[id]) TH_LOG("message %d received twice", id);
		seen[id] = true;
	}
	EXPECT_EQ(0, count_iou_wrk(NULL, 0));
	EXPECT_EQ(0U, stats_of(fd).queued_msgs);
	EXPECT_EQ((__u64)NR_PARKED, stats_of(fd).total_received);
	io_uring_queue_exit(&ring);
	close(fd);
}

/* IORING_OP_ASYNC_CANCEL of a parked READ: the next message is not lost. */
TEST(cancel_pending_read)
{
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	struct cqe c[2];
	char buf[64];
	int fd;

	fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 8);
	prep_read(&ring, fd, buf, sizeof(buf), 1);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	sqe = get_sqe(&ring);
	io_uring_prep_cancel64(sqe, 1, 0);
	sqe->user_data = 2;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(2, get_cqes(&ring, 2, c));
	ASSERT_NE(NULL, find_ud(c, 2, 1));
	ASSERT_NE(NULL, find_ud(c, 2, 2));
	EXPECT_EQ(-ECANCELED, find_ud(c, 2, 1)->res);
	EXPECT_EQ(0, find_ud(c, 2, 2)->res);

	ASSERT_EQ(12, write(fd, "after cancel", 12));
	ASSERT_QUIET(&ring);
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(12, read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, memcmp(buf, "after cancel", 12));
	EXPECT_EQ(1U, stats_of(fd).total_received);
	io_uring_queue_exit(&ring);
	close(fd);
}

/* Writes message "race-N" once told to: races with the main thread's cancel. */
struct racer {
	pthread_t th;
	int fd;
	int rounds;
	atomic_int go;		/* round to write */
	atomic_int started;	/* round being written */
	atomic_int done;	/* rounds written */
	int err;
};

static void *racer_fn(void *arg)
{
	struct racer *r = arg;
	char msg[16];
	int i;

	for (i = 1; i <= r->rounds; i++) {
		long long end = now_ms() + WAIT_MS;

		while (atomic_load(&r->go) < i) {
			if (now_ms() > end) {
				r->err = ETIMEDOUT;
				return NULL;
			}
		}
		snprintf(msg, sizeof(msg), "race-%05d", i);
		atomic_store(&r->started, i);
		if (write(r->fd, msg, 10) != 10) {
			r->err = errno ? errno : -1;
			return NULL;
		}
		atomic_store(&r->done, i);
	}
	return NULL;
}

#define RACE_ROUNDS	150

/*
 * Cancel a parked READ while another thread writes: in every round the
 * message is received exactly once, by the READ or by read(2) after it.
 */
TEST(cancel_races_write)
{
	int fd, i, by_read = 0, by_cancel = 0, n;
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	struct cqe c[2];
	const struct cqe *rc;
	char buf[64], want[16];
	struct racer r;
	long long end;

	fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 8);
	memset(&r, 0, sizeof(r));
	r.fd = fd;
	r.rounds = RACE_ROUNDS;
	ASSERT_EQ(0, pthread_create(&r.th, NULL, racer_fn, &r));

	for (i = 1; i <= RACE_ROUNDS; i++) {
		snprintf(want, sizeof(want), "race-%05d", i);
		memset(buf, 0, sizeof(buf));
		prep_read(&ring, fd, buf, sizeof(buf), 1000 + i);
		ASSERT_EQ(1, io_uring_submit(&ring));
		atomic_store(&r.go, i);
		/*
		 * Vary the race: cancel at once, once the write has started,
		 * or once it is done (the READ's completion may be pending),
		 * each after a varying spin.
		 */
		end = now_ms() + WAIT_MS;
		if (i % 4 == 1) {
			while (atomic_load(&r.started) < i)
				ASSERT_GT(end, now_ms());
		} else if (i % 4 >= 2) {
			while (atomic_load(&r.done) < i)
				ASSERT_GT(end, now_ms());
		}
		for (n = 0; n < (i / 4 % 8) * 300; n++)
			__asm__ __volatile__("" ::: "memory");
		sqe = get_sqe(&ring);
		io_uring_prep_cancel64(sqe, 1000 + i, 0);
		sqe->user_data = 1;
		ASSERT_EQ(1, io_uring_submit(&ring));
		ASSERT_EQ(2, get_cqes(&ring, 2, c));
		rc = find_ud(c, 2, 1000 + i);
		ASSERT_NE(NULL, rc);
		ASSERT_NE(NULL, find_ud(c, 2, 1));
		end = now_ms() + WAIT_MS;
		while (atomic_load(&r.done) < i)
			ASSERT_GT(end, now_ms()) TH_LOG("writer stuck: %d", r.err);
		if (rc->res > 0) {
			ASSERT_EQ(10, rc->res);
			ASSERT_EQ(0, memcmp(buf, want, 10));
			by_read++;
			ASSERT_EQ(-1, read(fd, buf, sizeof(buf)))
				TH_LOG("round %d: message delivered twice", i);
			ASSERT_EQ(EAGAIN, errno);
		} else {
			ASSERT_TRUE(rc->res == -ECANCELED || rc->res == -EINTR)
				TH_LOG("round %d: READ res %d", i, rc->res);
			by_cancel++;
			ASSERT_EQ(10, read(fd, buf, sizeof(buf)))
				TH_LOG("round %d: message lost after cancel", i);
			ASSERT_EQ(0, memcmp(buf, want, 10));
		}
	}
	ASSERT_EQ(0, pthread_join(r.th, NULL));
	ASSERT_EQ(0, r.err);
	EXPECT_EQ((__u64)RACE_ROUNDS, stats_of(fd).total_received);
	EXPECT_EQ(0U, stats_of(fd).queued_msgs);
	TH_LOG("%d rounds: %d delivered to the READ, %d after the cancel",
	       RACE_ROUNDS, by_read, by_cancel);
	io_uring_queue_exit(&ring);
	close(fd);
}

/* Write @n messages "exit-NN" and read them all back, in order, with read(2). */
static void write_then_read_all(struct __test_metadata *_metadata, int fd,
				int n)
{
	char msg[32], buf[64];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(msg, sizeof(msg), "exit-%02d", i);
		ASSERT_EQ(7, write(fd, msg, 7));
	}
	for (i = 0; i < n; i++) {
		snprintf(msg, sizeof(msg), "exit-%02d", i);
		memset(buf, 0, sizeof(buf));
		ASSERT_EQ(7, read(fd, buf, sizeof(buf)))
			TH_LOG("message %d of %d lost", i, n);
		ASSERT_EQ(0, memcmp(buf, msg, 7));
	}
	ASSERT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));
	EXPECT_EQ((__u64)n, stats_of(fd).total_received);
	EXPECT_EQ(0U, stats_of(fd).blocked_receivers);
}

#define NR_DEAD		8

/* io_uring_queue_exit() with READs parked: they take no later message. */
TEST(ring_exit_with_pending_reads)
{
	static char bufs[NR_DEAD][64];
	struct io_uring ring;
	int fd, i;

	fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 16);
	for (i = 0; i < NR_DEAD; i++)
		prep_read(&ring, fd, bufs[i], sizeof(bufs[i]), i);
	ASSERT_EQ(NR_DEAD, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	io_uring_queue_exit(&ring);
	write_then_read_all(_metadata, fd, NR_DEAD);
	close(fd);
}

/*
 * A child parks READs on the shared channel and then exits (@kill: is
 * killed while waiting for completions). No message written afterwards
 * may have been consumed by the dead requests.
 */
static void child_dies(struct __test_metadata *_metadata, bool kill_it)
{
	static char bufs[NR_DEAD][64];
	int fd, p[2], status, i;
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	char ok = 0;
	pid_t pid;

	fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (io_uring_queue_init(16, &ring, 0))
			_exit(2);
		for (i = 0; i < NR_DEAD; i++)
			prep_read(&ring, fd, bufs[i], sizeof(bufs[i]), i);
		if (io_uring_submit(&ring) != NR_DEAD)
			_exit(3);
		usleep(QUIET_MS * 1000);
		if (io_uring_peek_cqe(&ring, &cqe) != -EAGAIN)
			_exit(4);
		ok = 1;
		if (write(p[1], &ok, 1) != 1)
			_exit(5);
		if (kill_it)
			io_uring_wait_cqe(&ring, &cqe);	/* killed in here */
		_exit(0);
	}
	close(p[1]);
	ASSERT_EQ(1, read(p[0], &ok, 1)) TH_LOG("child failed to park READs");
	close(p[0]);
	if (kill_it) {
		usleep(50000);
		ASSERT_EQ(0, kill(pid, SIGKILL));
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	if (kill_it) {
		ASSERT_TRUE(WIFSIGNALED(status));
		ASSERT_EQ(SIGKILL, WTERMSIG(status));
	} else {
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ(0, WEXITSTATUS(status));
	}
	write_then_read_all(_metadata, fd, NR_DEAD);
	close(fd);
}

TEST(child_exit_with_pending_reads)
{
	child_dies(_metadata, false);
}

TEST(child_killed_with_pending_reads)
{
	child_dies(_metadata, true);
}

/* RWF_NOWAIT: EAGAIN instead of parking, in both directions. */
TEST(rwf_nowait)
{
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	char buf[64];
	struct cqe c;
	int fd;

	fd = mpmc_test_open_cfg(2, 64);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 8);

	sqe = get_sqe(&ring);
	io_uring_prep_read(sqe, fd, buf, sizeof(buf), 0);
	sqe->rw_flags = RWF_NOWAIT;
	sqe->user_data = 1;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(-EAGAIN, c.res);

	ASSERT_EQ(2, write(fd, "n1", 2));
	ASSERT_EQ(2, write(fd, "n2", 2));
	sqe = get_sqe(&ring);
	io_uring_prep_write(sqe, fd, "n3", 2, 0);
	sqe->rw_flags = RWF_NOWAIT;
	sqe->user_data = 2;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(-EAGAIN, c.res);
	EXPECT_EQ(2U, stats_of(fd).queued_msgs);

	sqe = get_sqe(&ring);
	io_uring_prep_read(sqe, fd, buf, sizeof(buf), 0);
	sqe->rw_flags = RWF_NOWAIT;
	sqe->user_data = 3;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(2, c.res);
	ASSERT_EQ(0, memcmp(buf, "n1", 2));
	io_uring_queue_exit(&ring);
	close(fd);
}

/* A WRITE on a full channel parks and completes when a reader makes room. */
TEST(write_parks_until_room)
{
	struct io_uring ring;
	char buf[64];
	struct cqe c;
	int fd;

	fd = mpmc_test_open_cfg(2, 64);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 8);
	ASSERT_EQ(2, write(fd, "m1", 2));
	ASSERT_EQ(2, write(fd, "m2", 2));
	prep_write(&ring, fd, "m3", 2, 3);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	EXPECT_EQ(0U, stats_of(fd).blocked_senders);
	EXPECT_EQ(2U, stats_of(fd).queued_msgs);
	EXPECT_EQ(0, count_iou_wrk(NULL, 0));

	ASSERT_EQ(2, read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, memcmp(buf, "m1", 2));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(3U, c.ud);
	ASSERT_EQ(2, c.res);
	EXPECT_EQ(2U, stats_of(fd).queued_msgs);
	ASSERT_EQ(2, read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, memcmp(buf, "m2", 2));
	ASSERT_EQ(2, read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, memcmp(buf, "m3", 2));
	EXPECT_EQ(0, count_iou_wrk(NULL, 0));
	io_uring_queue_exit(&ring);
	close(fd);
}

/* Shutdown completes parked READs with EOF and a parked WRITE with EPIPE. */
TEST(shutdown_completes_parked)
{
	static char bufs[4][64];
	struct io_uring ring;
	struct cqe c[4];
	int fd, fd2, i;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	fd2 = mpmc_test_open_cfg(1, 64);
	ASSERT_LE(0, fd2);
	RING_INIT(&ring, 8);
	for (i = 0; i < 4; i++)
		prep_read(&ring, fd, bufs[i], sizeof(bufs[i]), i);
	ASSERT_EQ(4, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	ASSERT_EQ(4, get_cqes(&ring, 4, c));
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, c[i].res);

	ASSERT_EQ(1, write(fd2, "x", 1));
	prep_write(&ring, fd2, "y", 1, 9);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_QUIET(&ring);
	ASSERT_EQ(0, ioctl(fd2, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RD));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c[0]));
	ASSERT_EQ(9U, c[0].ud);
	EXPECT_EQ(-EPIPE, c[0].res);
	io_uring_queue_exit(&ring);
	close(fd);
	close(fd2);
}

TEST_HARNESS_MAIN
