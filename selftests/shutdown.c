// SPDX-License-Identifier: GPL-2.0
/*
 * Closing and disconnection of /dev/mpmc channels: MPMC_IOC_SHUTDOWN
 * (SHUT_WR, SHUT_RD, SHUT_RDWR; repeats; bad arguments), EPIPE without
 * SIGPIPE, endpoints from MPMC_IOC_NEW_ENDPOINT (roles, access modes,
 * O_CLOEXEC/O_NONBLOCK, EINVAL/EPERM), channels opened O_RDONLY/O_WRONLY,
 * and what the release of the last sender or receiver does: EOF after
 * draining, woken sleepers, EPIPE; a producer process that exits or is
 * killed gives its consumer EOF; a channel passed with SCM_RIGHTS works in
 * the receiving process.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

static int shut(int fd, unsigned long how)
{
	return ioctl(fd, MPMC_IOC_SHUTDOWN, how);
}

/* Wait for @pid within WAIT_MS; SIGKILL it and return -1 on timeout. */
static int wait_child(pid_t pid, int *status)
{
	long long end = now_ms() + WAIT_MS;
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0)
			return -1;
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			return -1;
		}
		usleep(2000);
	}
}

static bool sigpipe_pending(void)
{
	sigset_t set;

	sigemptyset(&set);
	if (sigpending(&set))
		return true;
	return sigismember(&set, SIGPIPE);
}

/* SIGPIPE with its default (fatal) disposition and unblocked. */
static int default_sigpipe(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (signal(SIGPIPE, SIG_DFL) == SIG_ERR)
		return -1;
	return sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static int block_sigpipe(bool block)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	return sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

static int set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/*
 * A channel holding @n messages "m0", "m1"... and then shut down @how.
 * Return: its fd.
 */
static int shut_with(struct __test_metadata *_metadata, int n,
		     unsigned long how)
{
	char msg[8];
	int fd, i;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	for (i = 0; i < n; i++) {
		snprintf(msg, sizeof(msg), "m%d", i);
		ASSERT_EQ(0, write_str(fd, msg));
	}
	ASSERT_EQ(0, shut(fd, how));
	return fd;
}

/*
 * Put @op to sleep: a reader on an empty channel, or with @writer, a
 * writer of "b" behind "a" on a full one (with SIGPIPE's default
 * disposition); shut the channel down @how, which wakes @op: the reader
 * with EOF, the writer with EPIPE. Return: the channel.
 */
static int shut_wakes(struct __test_metadata *_metadata, struct op *op,
		      bool writer, unsigned long how)
{
	int fd;

	if (writer) {
		ASSERT_EQ(0, default_sigpipe());
		fd = blocked_writer(op, "a", "b");
	} else {
		fd = blocked_reader(op, OP_BUF);
	}
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, shut(fd, how));
	ASSERT_EQ(0, op_join(op));
	if (writer) {
		EXPECT_OP_ERR(*op, EPIPE);
	} else {
		EXPECT_EQ(0, op->ret);
	}
	return fd;
}

TEST(shut_wr_epipe_then_drain_then_eof)
{
	char buf[64];
	int fd, i, n;

	ASSERT_EQ(0, default_sigpipe());
	fd = shut_with(_metadata, 3, MPMC_SHUT_WR);
	EXPECT_STATS(fd, STAT(shutdown, MPMC_SHUT_WR), STAT(queued_msgs, 3));

	/* EPIPE, and no SIGPIPE: default disposition would kill us here. */
	EXPECT_ERRNO(EPIPE, write(fd, "x", 1));
	ASSERT_EQ(0, block_sigpipe(true));
	EXPECT_ERRNO(EPIPE, write(fd, "y", 1));
	EXPECT_FALSE(sigpipe_pending());
	ASSERT_EQ(0, block_sigpipe(false));
	EXPECT_EQ(0, write(fd, "", 0));
	EXPECT_STATS(fd, STAT(queued_msgs, 3), STAT(total_sent, 3));

	/* Queued messages still drain, in order. */
	for (i = 0; i < 3; i++) {
		char want[8];

		snprintf(want, sizeof(want), "m%d", i);
		ASSERT_EQ(2, read_str(fd, buf, sizeof(buf)));
		EXPECT_STREQ(want, buf);
	}
	/* Then EOF at once, every time, blocking or not. */
	for (i = 0; i < 3; i++)
		EXPECT_EQ(0, read_str(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, ioctl(fd, FIONREAD, &n));
	EXPECT_EQ(0, n);
	ASSERT_EQ(0, set_nonblock(fd, true));
	EXPECT_EQ(0, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, read(fd, buf, sizeof(buf)));
	EXPECT_ERRNO(EPIPE, write(fd, "z", 1));
	EXPECT_STATS(fd, STAT(total_sent, 3), STAT(total_received, 3),
		     STAT(shutdown, MPMC_SHUT_WR));
	close(fd);
}

TEST(shut_wr_wakes_blocked_reader)
{
	struct op rd;
	int fd;

	fd = shut_wakes(_metadata, &rd, false, MPMC_SHUT_WR);
	EXPECT_STATS(fd, STAT(blocked_receivers, 0), STAT(total_received, 0));
	close(fd);
}

TEST(shut_wr_wakes_blocked_writer)
{
	char buf[64];
	struct op wr;
	int fd;

	fd = shut_wakes(_metadata, &wr, true, MPMC_SHUT_WR);
	EXPECT_STATS(fd, STAT(blocked_senders, 0), STAT(queued_msgs, 1),
		     STAT(total_sent, 1));
	CHECK_READ_STR(fd, buf, "a");
	EXPECT_EQ(0, read_str(fd, buf, sizeof(buf)));
	close(fd);
}

TEST(shut_rd_discards_and_refuses)
{
	char buf[64];
	int fd, n;

	ASSERT_EQ(0, default_sigpipe());
	fd = shut_with(_metadata, 3, MPMC_SHUT_RD);
	EXPECT_STATS(fd, STAT(shutdown, MPMC_SHUT_RD), STAT(queued_msgs, 0),
		     STAT(queued_bytes, 0), STAT(total_sent, 3),
		     STAT(total_received, 0));
	ASSERT_EQ(0, ioctl(fd, FIONREAD, &n));
	EXPECT_EQ(0, n);

	EXPECT_EQ(0, read_str(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, read_str(fd, buf, sizeof(buf)));
	EXPECT_ERRNO(EPIPE, write(fd, "x", 1));
	EXPECT_FALSE(sigpipe_pending());
	ASSERT_EQ(0, set_nonblock(fd, true));
	EXPECT_EQ(0, read(fd, buf, sizeof(buf)));
	EXPECT_ERRNO(EPIPE, write(fd, "x", 1));
	EXPECT_STATS(fd, STAT_TOTALS(0, 3, 0));
	close(fd);
}

TEST(shut_rd_wakes_blocked_writer)
{
	struct op wr;
	int fd;

	fd = shut_wakes(_metadata, &wr, true, MPMC_SHUT_RD);
	EXPECT_STATS(fd, STAT(blocked_senders, 0), STAT(queued_msgs, 0),
		     STAT(total_sent, 1));
	close(fd);
}

TEST(shut_rd_wakes_blocked_reader)
{
	struct op rd;
	int fd;

	fd = shut_wakes(_metadata, &rd, false, MPMC_SHUT_RD);
	EXPECT_STATS(fd, STAT(blocked_receivers, 0));
	close(fd);
}

TEST(shut_rdwr_does_both)
{
	char buf[64];
	int fd;

	ASSERT_EQ(0, default_sigpipe());
	fd = shut_with(_metadata, 2, MPMC_SHUT_RDWR);
	EXPECT_STATS(fd, STAT(shutdown, MPMC_SHUT_RDWR), STAT(queued_msgs, 0),
		     STAT(queued_bytes, 0));
	EXPECT_ERRNO(EPIPE, write(fd, "x", 1));
	EXPECT_EQ(0, read_str(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, read_str(fd, buf, sizeof(buf)));
	close(fd);
}

TEST(shutdown_repeat_is_noop)
{
	char buf[64];
	int fd;

	fd = shut_with(_metadata, 2, MPMC_SHUT_WR);
	ASSERT_EQ(0, shut(fd, MPMC_SHUT_WR));
	EXPECT_STATS(fd, STAT(shutdown, MPMC_SHUT_WR), STAT(queued_msgs, 2));

	CHECK_READ_STR(fd, buf, "m0");
	ASSERT_EQ(0, shut(fd, MPMC_SHUT_WR));
	EXPECT_STATS(fd, STAT(queued_msgs, 1));
	CHECK_READ_STR(fd, buf, "m1");
	EXPECT_EQ(0, read_str(fd, buf, sizeof(buf)));

	ASSERT_EQ(0, shut(fd, MPMC_SHUT_RD));
	ASSERT_EQ(0, shut(fd, MPMC_SHUT_RD));
	ASSERT_EQ(0, shut(fd, MPMC_SHUT_RDWR));
	ASSERT_EQ(0, shut(fd, MPMC_SHUT_WR));
	EXPECT_STATS(fd, STAT(shutdown, MPMC_SHUT_RDWR), STAT(total_sent, 2),
		     STAT(total_received, 2));
	close(fd);
}

TEST(shutdown_bad_argument)
{
	static const unsigned long bad[] = {
		0, 4, 5, 7, 8, 0x100000002UL, 0x100000001UL, 0x80000002UL, ~0UL,
	};
	char buf[64];
	unsigned int i;
	int fd;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, write_str(fd, "keep"));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(-1, shut(fd, bad[i])) {
			TH_LOG("MPMC_IOC_SHUTDOWN(%#lx) succeeded", bad[i]);
		}
		EXPECT_EQ(EINVAL, errno);
	}
	EXPECT_STATS(fd, STAT(shutdown, 0), STAT(queued_msgs, 1));
	ASSERT_EQ(0, write_str(fd, "more"));
	CHECK_READ_STR(fd, buf, "keep");
	CHECK_READ_STR(fd, buf, "more");
	close(fd);
}

/* A send-only and a receive-only endpoint of @fd, with @flags. */
static void new_tx_rx(struct __test_metadata *_metadata, int fd, int flags,
		      int *tx, int *rx)
{
	*tx = new_ep_exact(fd, MPMC_ROLE_SEND, flags);
	ASSERT_LE(0, *tx);
	*rx = new_ep_exact(fd, MPMC_ROLE_RECV, flags);
	ASSERT_LE(0, *rx);
}

TEST(shutdown_from_any_endpoint)
{
	int fd, rx, tx;

	ASSERT_EQ(0, default_sigpipe());
	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	new_tx_rx(_metadata, fd, O_CLOEXEC, &tx, &rx);

	/* A receive-only file may close the sending side, and vice versa. */
	ASSERT_EQ(0, shut(rx, MPMC_SHUT_WR));
	EXPECT_ERRNO(EPIPE, write(fd, "x", 1));
	EXPECT_ERRNO(EPIPE, write(tx, "x", 1));
	ASSERT_EQ(0, shut(tx, MPMC_SHUT_RD));
	EXPECT_STATS(fd, STAT(shutdown, MPMC_SHUT_RDWR));
	close(tx);
	close(rx);
	close(fd);
}

/* ------------------------------------------------------------------ */
/* Endpoints                                                           */

/*
 * Open a channel and an endpoint of it with @roles: the endpoint's access
 * mode is @acc, and the channel counts one more sending file (two) if the
 * endpoint sends, one more receiving file if it receives.
 * Return: the channel; the endpoint in *@ep.
 */
static int open_with_ep(struct __test_metadata *_metadata, __u32 roles,
			int acc, int *ep)
{
	int fd;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	*ep = new_ep_exact(fd, roles, 0);
	ASSERT_LE(0, *ep);
	EXPECT_EQ(acc, fcntl(*ep, F_GETFL) & O_ACCMODE);
	EXPECT_STATS(fd, STAT(send_files, 1 + !!(roles & MPMC_ROLE_SEND)),
		     STAT(recv_files, 1 + !!(roles & MPMC_ROLE_RECV)));
	return fd;
}

TEST(endpoint_send_only)
{
	char buf[64];
	int fd, tx;

	fd = open_with_ep(_metadata, MPMC_ROLE_SEND, O_WRONLY, &tx);
	EXPECT_ERRNO(EBADF, read(tx, buf, sizeof(buf)));
	ASSERT_EQ(0, write_str(tx, "via tx"));
	CHECK_READ_STR(fd, buf, "via tx");

	close(tx);
	EXPECT_STATS(fd, STAT(send_files, 1), STAT(recv_files, 1),
		     STAT(shutdown, 0));
	close(fd);
}

TEST(endpoint_recv_only)
{
	char buf[64];
	int fd, rx;

	fd = open_with_ep(_metadata, MPMC_ROLE_RECV, O_RDONLY, &rx);
	EXPECT_ERRNO(EBADF, write(rx, "x", 1));
	EXPECT_STATS(fd, STAT(queued_msgs, 0));
	ASSERT_EQ(0, write_str(fd, "to rx"));
	CHECK_READ_STR(rx, buf, "to rx");

	close(rx);
	EXPECT_STATS(fd, STAT(recv_files, 1), STAT(shutdown, 0));
	close(fd);
}

TEST(endpoint_both_roles)
{
	char buf[64];
	int fd, ep;

	fd = open_with_ep(_metadata, MPMC_ROLE_SEND | MPMC_ROLE_RECV, O_RDWR,
			  &ep);
	ASSERT_EQ(0, write_str(ep, "one"));
	ASSERT_EQ(0, write_str(fd, "two"));
	CHECK_READ_STR(fd, buf, "one");
	CHECK_READ_STR(ep, buf, "two");

	/* The original can go; the endpoint keeps the channel whole. */
	close(fd);
	EXPECT_STATS(ep, STAT(send_files, 1), STAT(recv_files, 1),
		     STAT(shutdown, 0));
	ASSERT_EQ(0, write_str(ep, "three"));
	CHECK_READ_STR(ep, buf, "three");
	close(ep);
}

TEST(endpoint_flags)
{
	char buf[64];
	int fd, ep, fl;

	fd = mpmc_test_open_cfg(1, 64);
	ASSERT_LE(0, fd);

	ep = new_ep_exact(fd, MPMC_ROLE_SEND | MPMC_ROLE_RECV, O_CLOEXEC);
	ASSERT_LE(0, ep);
	EXPECT_EQ(FD_CLOEXEC, fcntl(ep, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(0, fcntl(ep, F_GETFL) & O_NONBLOCK);
	close(ep);

	ep = new_ep_exact(fd, MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, ep);
	EXPECT_EQ(0, fcntl(ep, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(0, fcntl(ep, F_GETFL) & O_NONBLOCK);
	close(ep);

	/* O_NONBLOCK on the endpoint only, not on the original. */
	ep = new_ep_exact(fd, MPMC_ROLE_RECV, O_NONBLOCK);
	ASSERT_LE(0, ep);
	fl = fcntl(ep, F_GETFL);
	EXPECT_EQ(O_NONBLOCK, fl & O_NONBLOCK);
	EXPECT_EQ(O_RDONLY, fl & O_ACCMODE);
	EXPECT_EQ(0, fcntl(ep, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(0, fcntl(fd, F_GETFL) & O_NONBLOCK);
	EXPECT_ERRNO(EAGAIN, read(ep, buf, sizeof(buf)));
	close(ep);

	ep = new_ep_exact(fd, MPMC_ROLE_SEND, O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, ep);
	fl = fcntl(ep, F_GETFL);
	EXPECT_EQ(O_NONBLOCK, fl & O_NONBLOCK);
	EXPECT_EQ(O_WRONLY, fl & O_ACCMODE);
	EXPECT_EQ(FD_CLOEXEC, fcntl(ep, F_GETFD) & FD_CLOEXEC);
	ASSERT_EQ(0, write_str(ep, "a"));
	EXPECT_ERRNO(EAGAIN, write(ep, "b", 1));
	close(ep);
	close(fd);
}

TEST(endpoint_invalid)
{
	static const struct mpmc_endpoint bad[] = {
		{ .roles = 0 },
		{ .roles = 4 },
		{ .roles = MPMC_ROLE_SEND | 4 },
		{ .roles = MPMC_ROLE_RECV | 0x80000000u },
		{ .roles = ~0u },
		{ .roles = MPMC_ROLE_SEND, .flags = O_APPEND },
		{ .roles = MPMC_ROLE_SEND, .flags = O_WRONLY },
		{ .roles = MPMC_ROLE_RECV, .flags = O_RDWR },
		{ .roles = MPMC_ROLE_RECV, .flags = O_CLOEXEC | O_TRUNC },
		{ .roles = MPMC_ROLE_RECV, .flags = O_NONBLOCK | O_DIRECT },
		{ .roles = MPMC_ROLE_RECV, .flags = 0x80000000u },
		{ .roles = MPMC_ROLE_RECV, .reserved = 1 },
		{ .roles = MPMC_ROLE_SEND, .reserved = 1ULL << 63 },
	};
	struct mpmc_endpoint ep;
	unsigned int i;
	int fd, probe, probe2;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	probe = dup(fd);
	ASSERT_LE(0, probe);
	close(probe);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ep = bad[i];
		EXPECT_EQ(-1, ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &ep)) {
			TH_LOG("entry %u (roles %#x flags %#x reserved %#llx) accepted",
			       i, bad[i].roles, bad[i].flags,
			       (unsigned long long)bad[i].reserved);
		}
		EXPECT_EQ(EINVAL, errno);
	}
	/* Nothing was created: no file counted, no descriptor used. */
	EXPECT_STATS(fd, STAT(send_files, 1), STAT(recv_files, 1));
	probe2 = dup(fd);
	ASSERT_LE(0, probe2);
	EXPECT_EQ(probe, probe2);
	close(probe2);
	close(fd);
}

TEST(endpoint_role_not_held)
{
	int fd, rx, tx, ep;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	new_tx_rx(_metadata, fd, 0, &tx, &rx);

	EXPECT_ERRNO(EPERM, new_ep_exact(rx, MPMC_ROLE_SEND, 0));
	EXPECT_ERRNO(EPERM, new_ep_exact(rx, MPMC_ROLE_SEND | MPMC_ROLE_RECV, 0));
	EXPECT_ERRNO(EPERM, new_ep_exact(tx, MPMC_ROLE_RECV, 0));
	EXPECT_ERRNO(EPERM, new_ep_exact(tx, MPMC_ROLE_SEND | MPMC_ROLE_RECV, 0));
	EXPECT_STATS(fd, STAT(send_files, 2), STAT(recv_files, 2));

	/* The roles a file has can be handed on. */
	ep = new_ep_exact(rx, MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, ep);
	EXPECT_EQ(O_RDONLY, fcntl(ep, F_GETFL) & O_ACCMODE);
	close(ep);
	ep = new_ep_exact(tx, MPMC_ROLE_SEND, 0);
	ASSERT_LE(0, ep);
	EXPECT_EQ(O_WRONLY, fcntl(ep, F_GETFL) & O_ACCMODE);
	close(ep);
	close(tx);
	close(rx);
	close(fd);
}

/*
 * Open a channel in @mode: it is born shut down @how (its other direction
 * open), with one sending file if it is O_WRONLY, one receiving file if it
 * is O_RDONLY. Return: its fd.
 */
static int open_born_shut(struct __test_metadata *_metadata, int mode,
			  __u32 how)
{
	struct mpmc_stats st;
	int fd;

	fd = mpmc_test_open(mode);
	ASSERT_LE(0, fd);
	MPMC_STATS(fd, &st);
	EXPECT_EQ(how, st.shutdown & how);
	EXPECT_EQ(0, st.shutdown & (MPMC_SHUT_RDWR & ~how));
	EXPECT_FILES(st, mode == O_WRONLY, mode == O_RDONLY);
	return fd;
}

TEST(open_rdonly_is_born_eof)
{
	char buf[64];
	int fd;

	fd = open_born_shut(_metadata, O_RDONLY, MPMC_SHUT_WR);

	/* No sender can ever exist: EOF at once. */
	EXPECT_EQ(0, read_str(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, read_str(fd, buf, sizeof(buf)));
	EXPECT_ERRNO(EBADF, write(fd, "x", 1));
	EXPECT_ERRNO(EPERM, new_ep_exact(fd, MPMC_ROLE_SEND, 0));
	ASSERT_EQ(0, set_nonblock(fd, true));
	EXPECT_EQ(0, read(fd, buf, sizeof(buf)));
	close(fd);
}

TEST(open_wronly_is_born_epipe)
{
	char buf[64];
	int fd;

	ASSERT_EQ(0, default_sigpipe());
	fd = open_born_shut(_metadata, O_WRONLY, MPMC_SHUT_RD);

	EXPECT_ERRNO(EPIPE, write(fd, "x", 1));
	EXPECT_FALSE(sigpipe_pending());
	EXPECT_ERRNO(EBADF, read(fd, buf, sizeof(buf)));
	EXPECT_ERRNO(EPERM, new_ep_exact(fd, MPMC_ROLE_RECV, 0));
	EXPECT_STATS(fd, STAT(queued_msgs, 0), STAT(total_sent, 0));
	close(fd);
}

/* ------------------------------------------------------------------ */
/* Release of the last sender / receiver                               */

TEST(last_sender_close_drains_then_eof)
{
	char buf[64];
	int fd, tx, rx;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	new_tx_rx(_metadata, fd, 0, &tx, &rx);
	ASSERT_EQ(0, write_str(fd, "a"));

	/* A sender is left (tx): no shutdown yet. */
	close(fd);
	EXPECT_STATS(rx, STAT(send_files, 1), STAT(recv_files, 1),
		     STAT(shutdown, 0));
	ASSERT_EQ(0, write_str(tx, "b"));

	/* The last sender goes. */
	close(tx);
	EXPECT_STATS(rx, STAT(send_files, 0), STAT(recv_files, 1),
		     STAT(shutdown, MPMC_SHUT_WR), STAT(queued_msgs, 2));

	CHECK_READ_STR(rx, buf, "a");
	CHECK_READ_STR(rx, buf, "b");
	EXPECT_EQ(0, read_str(rx, buf, sizeof(buf)));
	EXPECT_EQ(0, read_str(rx, buf, sizeof(buf)));
	close(rx);
}

TEST(last_sender_close_wakes_reader)
{
	struct op rd;
	int fd, rx;

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	rx = new_ep_exact(fd, MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, rx);
	ASSERT_EQ(0, start_reader(&rd, rx, OP_BUF));
	ASSERT_EQ(0, wait_blocked(rx, true, 1));
	close(fd);
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_EQ(0, rd.ret);
	EXPECT_STATS(rx, STAT(blocked_receivers, 0),
		     STAT(shutdown, MPMC_SHUT_WR));
	close(rx);
}

TEST(last_receiver_close_epipe)
{
	struct op wr;
	int fd, tx;

	ASSERT_EQ(0, default_sigpipe());
	fd = mpmc_test_open_cfg(1, 64);
	ASSERT_LE(0, fd);
	tx = new_ep_exact(fd, MPMC_ROLE_SEND, 0);
	ASSERT_LE(0, tx);
	ASSERT_EQ(0, write_str(tx, "a"));
	ASSERT_EQ(0, start_writer(&wr, tx, "b"));
	ASSERT_EQ(0, wait_blocked(tx, false, 1));

	close(fd);
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_OP_ERR(wr, EPIPE);
	EXPECT_STATS(tx, STAT(recv_files, 0), STAT(send_files, 1),
		     STAT(shutdown, MPMC_SHUT_RD), STAT(queued_msgs, 0),
		     STAT(blocked_senders, 0));
	EXPECT_ERRNO(EPIPE, write(tx, "c", 1));
	EXPECT_FALSE(sigpipe_pending());
	close(tx);
}

#define NPROD_MSGS 5

/*
 * A channel of capacity @cap (0: the defaults) with a send-only (*@tx)
 * and a receive-only endpoint (*@rx), both O_CLOEXEC, and a child that
 * writes "msg 0", "msg 1"... @n messages to *@tx and exits with @code (1
 * if a write fails). The parent keeps only *@rx. Return: the child's pid.
 */
static pid_t fork_producer(struct __test_metadata *_metadata, __u32 cap,
			   int n, int code, int *tx, int *rx)
{
	char msg[32];
	pid_t pid;
	int fd, i;

	fd = cap ? mpmc_test_open_cfg(cap, 64) : mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	new_tx_rx(_metadata, fd, O_CLOEXEC, tx, rx);
	close(fd);

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		alarm(20);	/* never outlive the test on a hang */
		close(*rx);
		for (i = 0; i < n; i++) {
			snprintf(msg, sizeof(msg), "msg %d", i);
			if (write_str(*tx, msg))
				_exit(1);
		}
		_exit(code);
	}
	close(*tx);
	return pid;
}

/* Read "msg 0", "msg 1"... @n messages from @rx, then EOF. */
static void drain_to_eof(struct __test_metadata *_metadata, int rx, int n)
{
	char buf[64], want[32];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "msg %d", i);
		ASSERT_EQ((ssize_t)strlen(want), read_str(rx, buf, sizeof(buf)));
		EXPECT_STREQ(want, buf);
	}
	EXPECT_EQ(0, read_str(rx, buf, sizeof(buf)));
}

TEST(producer_exit_gives_eof)
{
	int tx, rx, status;
	char buf[64];
	pid_t pid;

	pid = fork_producer(_metadata, 0, NPROD_MSGS, 0, &tx, &rx);
	drain_to_eof(_metadata, rx, NPROD_MSGS);
	ASSERT_EQ(0, wait_child(pid, &status));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, read_str(rx, buf, sizeof(buf)));
	close(rx);
}

TEST(producer_killed_gives_eof)
{
	int tx, rx, status;
	char buf[64];
	pid_t pid;

	/* The fourth write blocks: the child dies asleep in it. */
	pid = fork_producer(_metadata, 3, 4, 2, &tx, &rx);
	ASSERT_EQ(0, wait_blocked(rx, false, 1));
	EXPECT_STATS(rx, STAT(send_files, 1), STAT(queued_msgs, 3),
		     STAT(shutdown, 0));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(0, wait_child(pid, &status));
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGKILL, WTERMSIG(status));

	EXPECT_STATS(rx, STAT(send_files, 0), STAT(blocked_senders, 0),
		     STAT(shutdown, MPMC_SHUT_WR), STAT(total_sent, 3),
		     STAT(queued_msgs, 3));
	drain_to_eof(_metadata, rx, 3);
	EXPECT_EQ(0, read_str(rx, buf, sizeof(buf)));
	close(rx);
}

/* A message of one byte with room for one SCM_RIGHTS descriptor. */
struct fd_msg {
	char c;
	struct iovec iov;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg;
};

static void fd_msg_init(struct fd_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->c = 'F';
	m->iov.iov_base = &m->c;
	m->iov.iov_len = 1;
	m->msg.msg_iov = &m->iov;
	m->msg.msg_iovlen = 1;
	m->msg.msg_control = m->u.buf;
	m->msg.msg_controllen = sizeof(m->u.buf);
}

static int send_fd(int sock, int fd)
{
	struct cmsghdr *cm;
	struct fd_msg m;

	fd_msg_init(&m);
	cm = CMSG_FIRSTHDR(&m.msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &m.msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	struct cmsghdr *cm;
	struct fd_msg m;
	int fd;

	fd_msg_init(&m);
	if (recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&m.msg);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

TEST(scm_rights_passes_channel)
{
	char buf[64];
	int sv[2], fd, status;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	/* Fork first: the child must get the channel only through sv[1]. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int cfd;
		ssize_t n;

		close(sv[0]);
		alarm(20);	/* never outlive the test on a hang */
		cfd = recv_fd(sv[1]);
		if (cfd < 0)
			_exit(10);
		n = read(cfd, buf, sizeof(buf));
		if (n != 4 || memcmp(buf, "ping", 4))
			_exit(11);
		if (write_str(cfd, "pong"))
			_exit(12);
		_exit(0);
	}
	close(sv[1]);

	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, send_fd(sv[0], fd));
	/* The child sleeps in read() on the channel it received. */
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	ASSERT_EQ(0, write_str(fd, "ping"));
	ASSERT_EQ(0, wait_child(pid, &status));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));

	CHECK_READ_STR(fd, buf, "pong");
	EXPECT_STATS(fd, STAT(total_sent, 2), STAT(total_received, 2),
		     STAT(send_files, 1), STAT(recv_files, 1));
	close(sv[0]);
	close(fd);
}

TEST_HARNESS_MAIN
