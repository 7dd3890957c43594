// SPDX-License-Identifier: GPL-2.0
/*
 * io_uring on /dev/mpmc channels (SPEC section 7): READ, WRITE, READV,
 * WRITEV, READ_FIXED/WRITE_FIXED (registered buffers), registered files,
 * an SQPOLL ring, POLL_ADD single-shot and multishot; one SQE moves one
 * whole message (EMSGSIZE leaves it queued); a READ on an empty channel
 * (and a WRITE on a full one) parks on the poll queue and completes later
 * without any io-wq worker thread; RWF_NOWAIT gives EAGAIN; cancelling a
 * pending read (ASYNC_CANCEL, ring exit, process exit or kill) never loses
 * a message; shutdown completes parked requests.
 *
 * The last test measures what 6.1's io_uring does with 64 READs parked on
 * one channel while thousands of messages are written one by one: every
 * event wakes every parked request, and a request gets 128 poll arms
 * before it falls back to a blocking read in an io-wq ("iou-wrk") worker.
 * It asserts only the contract (every message received exactly once) and
 * prints the figures: iou-wrk threads (peak and at the end), how many
 * messages were received by which path and, when tracefs is there, the
 * io_uring poll arms, poll wakeups and io-wq punts counted by hist
 * triggers.
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
#define WAIT_MS		10000	/* for something that must happen */
#define QUIET_MS	100	/* for something that must not happen */

static int new_ep(int fd, __u32 roles, __u32 flags)
{
	struct mpmc_endpoint ep = {
		.roles = roles,
		.flags = flags | O_CLOEXEC,
	};

	return ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &ep);
}

static struct mpmc_stats stats_of(int fd)
{
	struct mpmc_stats st;

	if (ioctl(fd, MPMC_IOC_GET_STATS, &st))
		memset(&st, 0xff, sizeof(st));
	return st;
}

static int next_len(int fd)
{
	int len = -1;

	if (ioctl(fd, FIONREAD, &len))
		return -1;
	return len;
}

/* Threads of this process whose comm starts with "iou-wrk"; their tids. */
static int count_iou_wrk(pid_t *tids, int max)
{
	char path[300], comm[64];
	struct dirent *de;
	int n = 0, fd;
	ssize_t len;
	DIR *d;

	d = opendir("/proc/self/task");
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (len < 7 || strncmp(comm, "iou-wrk", 7))
			continue;
		if (tids && n < max)
			tids[n] = atoi(de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static struct io_uring_sqe *get_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe) {
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
	}
	return sqe;
}

/* One completion, copied out of the CQ ring. */
struct cqe {
	__u64 ud;
	int res;
	unsigned int flags;
};

/* Wait up to @ms for a completion; 0, or -ETIME when none came. */
static int get_cqe(struct io_uring *ring, int ms, struct cqe *c)
{
	struct __kernel_timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (ms % 1000) * 1000000LL,
	};
	struct io_uring_cqe *cqe;
	int ret;

	if (ms)
		ret = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
	else
		ret = io_uring_peek_cqe(ring, &cqe);
	if (ret)
		return ret == -EAGAIN ? -ETIME : ret;
	c->ud = cqe->user_data;
	c->res = cqe->res;
	c->flags = cqe->flags;
	io_uring_cqe_seen(ring, cqe);
	return 0;
}

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

static void prep_read(struct io_uring *ring, int fd, void *buf,
		      unsigned int len, __u64 ud)
{
	struct io_uring_sqe *sqe = get_sqe(ring);

	io_uring_prep_read(sqe, fd, buf, len, 0);
	sqe->user_data = ud;
}

static void prep_write(struct io_uring *ring, int fd, const void *buf,
		       unsigned int len, __u64 ud)
{
	struct io_uring_sqe *sqe = get_sqe(ring);

	io_uring_prep_write(sqe, fd, buf, len, 0);
	sqe->user_data = ud;
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

#define RING_INIT(ring, entries) \
	ASSERT_EQ(0, io_uring_queue_init((entries), (ring), 0))

/* Nothing completes within QUIET_MS. */
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
	struct cqe c;
	int fd;

	fd = mpmc_test_open_cfg(8, 256);
	ASSERT_LE(0, fd);
	RING_INIT(&ring, 8);

	wv[0] = (struct iovec){ "ab", 2 };
	wv[1] = (struct iovec){ "cde", 3 };
	wv[2] = (struct iovec){ "f", 1 };
	sqe = get_sqe(&ring);
	io_uring_prep_writev(sqe, fd, wv, 3, 0);
	sqe->user_data = 1;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(6, c.res);
	EXPECT_EQ(1U, stats_of(fd).queued_msgs);
	EXPECT_EQ(6, next_len(fd));
	ASSERT_EQ(10, write(fd, "0123456789", 10));

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	rv[0] = (struct iovec){ a, 4 };
	rv[1] = (struct iovec){ b, 4 };
	rv[2] = (struct iovec){ d, 8 };
	sqe = get_sqe(&ring);
	io_uring_prep_readv(sqe, fd, rv, 3, 0);
	sqe->user_data = 2;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(6, c.res);
	ASSERT_EQ(0, memcmp(a, "abcd", 4));
	ASSERT_EQ(0, memcmp(b, "ef", 2));

	rv[0] = (struct iovec){ f, 3 };
	rv[1] = (struct iovec){ a, 3 };
	rv[2] = (struct iovec){ d, 10 };
	sqe = get_sqe(&ring);
	io_uring_prep_readv(sqe, fd, rv, 3, 0);
	sqe->user_data = 3;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(10, c.res);
	ASSERT_EQ(0, memcmp(f, "012", 3));
	ASSERT_EQ(0, memcmp(a, "345", 3));
	ASSERT_EQ(0, memcmp(d, "6789", 4));

	/* A READV whose iovecs add up to less than the message. */
	ASSERT_EQ(8, write(fd, "xyzxyzxy", 8));
	rv[0] = (struct iovec){ e, 2 };
	rv[1] = (struct iovec){ f, 3 };
	sqe = get_sqe(&ring);
	io_uring_prep_readv(sqe, fd, rv, 2, 0);
	sqe->user_data = 4;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(-EMSGSIZE, c.res);
	EXPECT_EQ(8, next_len(fd));
	rv[0] = (struct iovec){ g, 5 };
	rv[1] = (struct iovec){ h, 5 };
	sqe = get_sqe(&ring);
	io_uring_prep_readv(sqe, fd, rv, 2, 0);
	sqe->user_data = 5;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(8, c.res);
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
	sqe->user_data = 1;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(300, c.res);
	EXPECT_EQ(300, next_len(fd));

	sqe = get_sqe(&ring);
	io_uring_prep_read_fixed(sqe, fd, bufs[1], sizeof(bufs[1]), 0, 1);
	sqe->user_data = 2;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
	ASSERT_EQ(300, c.res);
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
	EXPECT_EQ(100, next_len(fd));
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
	EXPECT_EQ(20, next_len(fd));
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

/* A blocking read(2) in a thread. */
struct reader {
	pthread_t th;
	int fd;
	char buf[64];
	ssize_t ret;
};

static void *reader_fn(void *arg)
{
	struct reader *r = arg;

	r->ret = read(r->fd, r->buf, sizeof(r->buf));
	return NULL;
}

static int wait_blocked_receivers(int fd, unsigned int want)
{
	long long end = now_ms() + WAIT_MS;

	while (stats_of(fd).blocked_receivers != want) {
		if (now_ms() > end)
			return -1;
		usleep(1000);
	}
	return 0;
}

/*
 * A receiver blocked in read(2) is served before a READ parked earlier:
 * parked requests are pollers and only see what is left after hand-off.
 */
TEST(blocked_read_before_parked_read)
{
	struct io_uring ring;
	struct reader rd;
	struct timespec ts;
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

	memset(&rd, 0, sizeof(rd));
	rd.fd = fd;
	ASSERT_EQ(0, pthread_create(&rd.th, NULL, reader_fn, &rd));
	ASSERT_EQ(0, wait_blocked_receivers(fd, 1));
	ASSERT_EQ(5, write(fd, "first", 5));
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	ASSERT_EQ(0, pthread_timedjoin_np(rd.th, NULL, &ts));
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
	ASSERT_EQ(-1, read(fd, buf, sizeof(buf)));
	ASSERT_EQ(EAGAIN, errno);
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

/*
 * The measurement: io_uring events counted by hist triggers in tracefs
 * (when available), and mpmc:mpmc_wake (hand-offs to blocked receivers)
 * counted in the trace buffer.
 */
#define TRACEFS		"/sys/kernel/tracing"
#define HIST_TRIGGER	"hist:keys=common_pid"

static const char *const uring_events[] = {
	"io_uring_poll_arm",		/* a request parked on a poll queue */
	"io_uring_task_add",		/* a parked request woken */
	"io_uring_queue_async_work",	/* a request punted to io-wq */
};

#define NR_UEV	ARRAY_SIZE(uring_events)

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* "Hits: N" of the Totals section of an event's hist file; -1 if none. */
static long long hist_hits(const char *event)
{
	char path[256], line[256];
	long long hits = -1;
	FILE *f;

	snprintf(path, sizeof(path), TRACEFS "/events/io_uring/%s/hist", event);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " Hits: %lld", &hits) == 1)
			break;
	fclose(f);
	return hits;
}

static void uring_triggers(bool on)
{
	char path[256];
	unsigned int i;

	for (i = 0; i < NR_UEV; i++) {
		snprintf(path, sizeof(path),
			 TRACEFS "/events/io_uring/%s/trigger", uring_events[i]);
		/* Always remove first: a leftover trigger would add up. */
		write_file(path, "!" HIST_TRIGGER);
		if (on)
			write_file(path, HIST_TRIGGER);
	}
}

/* Count lines of the trace buffer that contain @what. */
static long long trace_lines(const char *what)
{
	char line[512];
	long long n = 0;
	FILE *f = fopen(TRACEFS "/trace", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, what))
			n++;
	fclose(f);
	return n;
}

FIXTURE(measure) {
	bool hist;	/* io_uring hist triggers installed */
	bool wake;	/* mpmc:mpmc_wake traced into the buffer */
};

FIXTURE_SETUP(measure)
{
	self->hist = false;
	self->wake = false;
	if (access(TRACEFS "/events/io_uring/io_uring_poll_arm/trigger",
		   W_OK) == 0) {
		uring_triggers(true);
		self->hist = hist_hits(uring_events[0]) >= 0;
	}
	if (access(TRACEFS "/events/mpmc/mpmc_wake/enable", W_OK) == 0) {
		write_file(TRACEFS "/trace", "");
		self->wake =
			!write_file(TRACEFS "/events/mpmc/mpmc_wake/filter",
				    "dir == 1 && result == 0") &&
			!write_file(TRACEFS "/events/mpmc/mpmc_wake/enable",
				    "1");
	}
}

FIXTURE_TEARDOWN(measure)
{
	if (self->hist)
		uring_triggers(false);
	if (self->wake) {
		write_file(TRACEFS "/events/mpmc/mpmc_wake/enable", "0");
		write_file(TRACEFS "/events/mpmc/mpmc_wake/filter", "0");
		write_file(TRACEFS "/trace", "");
	}
}

#define MAX_HERD	256
#define MAX_MSGS	10000
#define MSG_LEN		12

/*
 * @nr_parked READs parked on one channel; @nr_msgs messages written one by
 * one by this thread, each completed READ re-armed at once. Asserts that
 * every message is received exactly once; prints the cost.
 */
static void run_herd(struct __test_metadata *_metadata,
		     FIXTURE_DATA(measure) *self, int nr_parked, int nr_msgs)
{
	static char bufs[MAX_HERD][64];
	static unsigned char seen[MAX_MSGS];
	unsigned long long armed_at[MAX_HERD], written = 0;
	long long arms0[NR_UEV], arms1[NR_UEV], t0, t1, end, h = -1;
	int fd, rx, tx, i, nwrk, peak = 0, sample = 0, wait;
	long inline_done = 0, handoff_est = 0, received = 0;
	pid_t tids[256], all_tids[512];
	int nall = 0, j, k, id, submit;
	struct io_uring ring;
	struct mpmc_stats st;
	struct cqe c;
	char msg[32];
	unsigned int u;

	ASSERT_GE(MAX_HERD, nr_parked);
	ASSERT_GE(MAX_MSGS, nr_msgs);
	memset(seen, 0, sizeof(seen));
	/*
	 * The READs use a blocking RECV endpoint (an io-wq fallback then
	 * sleeps in read; on an O_NONBLOCK file it would complete with
	 * EAGAIN), the writes a non-blocking SEND endpoint.
	 */
	fd = mpmc_test_open_cfg(1024, 64);
	ASSERT_LE(0, fd);
	rx = new_ep(fd, MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, rx);
	tx = new_ep(fd, MPMC_ROLE_SEND, O_NONBLOCK);
	ASSERT_LE(0, tx);
	RING_INIT(&ring, 2 * nr_parked);
	for (u = 0; u < NR_UEV; u++)
		arms0[u] = self->hist ? hist_hits(uring_events[u]) : -1;

	for (i = 0; i < nr_parked; i++) {
		prep_read(&ring, rx, bufs[i], sizeof(bufs[i]), i);
		armed_at[i] = ~0ULL;	/* never "inline": the channel is empty */
	}
	ASSERT_EQ(nr_parked, io_uring_submit(&ring));
	ASSERT_EQ(0, count_iou_wrk(NULL, 0));

	t0 = now_ms();
	end = t0 + 45000;
	for (i = 0; i < nr_msgs || received < nr_msgs; ) {
		ASSERT_GT(end, now_ms())
			TH_LOG("stuck: %d written, %ld received", i, received);
		if (i < nr_msgs) {
			st = stats_of(fd);
			snprintf(msg, sizeof(msg), "msg-%08d", i);
			if (write(tx, msg, MSG_LEN) == MSG_LEN) {
				/* Blocked receivers are io-wq workers here. */
				if (st.blocked_receivers)
					handoff_est++;
				i++;
				written++;
			} else {
				ASSERT_EQ(EAGAIN, errno);
			}
		}
		/*
		 * Reap what is there (wait only when nothing is left to
		 * write) and re-arm; then look again at once, so that a READ
		 * completed inline by its submission is seen before the next
		 * write.
		 */
		wait = i < nr_msgs ? 0 : 100;
		for (;;) {
			submit = 0;
			while (!get_cqe(&ring, wait, &c)) {
				ASSERT_GT(nr_parked, (int)c.ud);
				ASSERT_EQ(MSG_LEN, c.res)
					TH_LOG("READ %llu: res %d",
					       (unsigned long long)c.ud, c.res);
				bufs[c.ud][MSG_LEN] = '\0';
				ASSERT_EQ(1, sscanf(bufs[c.ud], "msg-%d", &id));
				ASSERT_LE(0, id);
				ASSERT_GT(i, id);
				ASSERT_EQ(0, seen[id])
					TH_LOG("message %d received twice", id);
				seen[id] = 1;
				received++;
				if (armed_at[c.ud] == written)
					inline_done++;
				prep_read(&ring, rx, bufs[c.ud],
					  sizeof(bufs[c.ud]), c.ud);
				armed_at[c.ud] = written;
				submit++;
			}
			if (!submit)
				break;
			ASSERT_EQ(submit, io_uring_submit(&ring));
			wait = 0;
		}
		if (++sample % 25 == 0 || i == nr_msgs) {
			nwrk = count_iou_wrk(tids, 256);
			if (nwrk > peak)
				peak = nwrk;
			for (j = 0; j < nwrk && j < 256; j++) {
				for (k = 0; k < nall; k++)
					if (all_tids[k] == tids[j])
						break;
				if (k == nall && nall < 512)
					all_tids[nall++] = tids[j];
			}
		}
	}
	t1 = now_ms();
	nwrk = count_iou_wrk(NULL, 0);
	if (nwrk > peak)
		peak = nwrk;
	for (u = 0; u < NR_UEV; u++)
		arms1[u] = self->hist ? hist_hits(uring_events[u]) : -1;

	if (self->wake)
		h = trace_lines("mpmc_wake");	/* before shutdown wakes more */
	st = stats_of(fd);
	EXPECT_EQ((__u64)nr_msgs, st.total_sent);
	EXPECT_EQ((__u64)nr_msgs, st.total_received);
	EXPECT_EQ(0U, st.queued_msgs);
	for (j = 0; j < nr_msgs; j++)
		ASSERT_EQ(1, seen[j]) TH_LOG("message %d never received", j);

	/* The READs still outstanding get EOF on shutdown. */
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	for (j = 0; j < nr_parked; j++) {
		ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
		EXPECT_EQ(0, c.res);
	}

	ksft_print_msg("uring herd: %d parked READs, %d messages written one by one, %lld ms\n",
		       nr_parked, nr_msgs, t1 - t0);
	ksft_print_msg("uring herd: iou-wrk threads: %d at the end, peak %d (sampled every 25 writes), %d distinct\n",
		       nwrk, peak, nall);
	if (self->wake) {
		ksft_print_msg("uring herd: received by hand-off to a READ blocked in an io-wq worker: %lld (mpmc:mpmc_wake), %ld (stats estimate)\n",
			       h, handoff_est);
		ksft_print_msg("uring herd: received inline at submit: %ld; by a parked READ after a poll wakeup: %lld\n",
			       inline_done, nr_msgs - inline_done - h);
	} else {
		ksft_print_msg("uring herd: received by hand-off to io-wq (stats estimate): %ld; inline at submit: %ld; after a poll wakeup: %ld\n",
			       handoff_est, inline_done,
			       nr_msgs - inline_done - handoff_est);
	}
	if (self->hist) {
		for (u = 0; u < NR_UEV; u++)
			ksft_print_msg("uring herd: %s: %lld (%.1f per message)\n",
				       uring_events[u], arms1[u] - arms0[u],
				       (double)(arms1[u] - arms0[u]) /
				       nr_msgs);
	} else {
		ksft_print_msg("uring herd: tracefs hist triggers unavailable: no io_uring event counts\n");
	}
	/* The harness ends the test child with _exit(): flush the figures. */
	fflush(stdout);
	io_uring_queue_exit(&ring);
	close(rx);
	close(tx);
	close(fd);
}

/* Message count: @def, or $MPMC_HERD_MSGS (1..MAX_MSGS) for a longer run. */
static int herd_msgs(int def)
{
	const char *env = getenv("MPMC_HERD_MSGS");
	int n = env ? atoi(env) : 0;

	return n > 0 && n <= MAX_MSGS ? n : def;
}

/*
 * The figures the SPEC asks for: 64 READs parked while messages are
 * written one by one. The issue asks for 10,000 messages; the default is
 * 5,000 to keep the program short in an emulated guest (the costs are per
 * message); MPMC_HERD_MSGS=10000 runs the full count.
 */
TEST_F_TIMEOUT(measure, parked_reads_64_herd, 60)
{
	run_herd(_metadata, self, 64, herd_msgs(5000));
}

/*
 * For comparison: more parked READs than io_uring's poll retry budget
 * (128 arms), fewer messages.
 */
TEST_F_TIMEOUT(measure, parked_reads_160_herd, 60)
{
	run_herd(_metadata, self, 160, 1000);
}

TEST_HARNESS_MAIN
