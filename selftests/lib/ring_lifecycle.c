// SPDX-License-Identifier: GPL-2.0
/*
 * Ring mode and the life of files, mappings and processes
 * (Documentation/ring-mode.rst 8), with libmpmc's ring calls and, where
 * the library needs its fd (mpmc_ring_map(3): the handle keeps the fd)
 * but the test closes it, with the raw protocol of ring_test.h:
 *  - close(fd), then keep using the mapping: it still moves messages, and
 *    it holds the file: a receive-only observer sees end of file only
 *    once the mapping is gone;
 *  - mmap through a dup() and through a new endpoint after the original
 *    fd is closed;
 *  - munmap of either region and close(), in every order: EOF after the
 *    last of them;
 *  - fork: the child sends through the inherited ring handle, the parent
 *    receives; the parent may unmap while the child goes on;
 *  - exec with the fd inherited: the exec reaps the old image's claim,
 *    the new image (this program again, with --exec-child) maps the ring
 *    again and uses it;
 *  - exit without munmap or close: EOF after the exit.
 * The module is never unloaded here.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <mpmc.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"
#include "ring_test.h"

#define MSG		64
#define RECV_NS		(2 * 1000000000LL)	/* a receive that must come */
#define EXEC_FLAG	"--exec-child"

/* Receive one message through @r within RECV_NS into @buf (NUL-ended). */
static int ring_recv_within(struct mpmc_ring *r, char *buf, size_t size)
{
	struct mpmc_msgvec v;
	int n;

	mpmc_msgvec_set(&v, buf, size - 1);
	n = mpmc_ring_recv_batch(r, &v, 1, RECV_NS);
	if (n != 1)
		return n < 0 ? n : -ENODATA;
	buf[v.len] = '\0';
	return v.len;
}

/* The same through the fd. */
static int fd_recv_within(int fd, char *buf, size_t size)
{
	struct mpmc_msgvec v;
	int n;

	mpmc_msgvec_set(&v, buf, size - 1);
	n = mpmc_recv_batch(fd, &v, 1, RECV_NS);
	if (n != 1)
		return n < 0 ? n : 0;
	buf[v.len] = '\0';
	return v.len;
}

/* Non-blocking read of @rx: 0 at EOF, -EAGAIN when empty, else the length. */
static ssize_t peek_eof(int rx)
{
	char buf[MSG];
	ssize_t n = read(rx, buf, sizeof(buf));

	return n < 0 ? -errno : n;
}

/* Wait up to WAIT_MS for @rx to report EOF (the last sender gone). */
static ssize_t wait_eof(int rx)
{
	long long end = now_ms() + WAIT_MS;
	ssize_t n;

	while ((n = peek_eof(rx)) == -EAGAIN && now_ms() < end)
		usleep(2000);
	return n;
}

TEST(close_then_use_mapping)
{
	char buf[MSG + 1];
	struct mpmc_stats st;
	struct rmap m;
	int fd, rx, tx;

	fd = ring_open(8, MSG, 0);
	ASSERT_LE(0, fd);
	rx = new_ep(fd, MPMC_ROLE_RECV, O_NONBLOCK);
	tx = new_ep(fd, MPMC_ROLE_SEND, 0);
	ASSERT_LE(0, rx);
	ASSERT_LE(0, tx);
	ASSERT_EQ(0, rmap_open(&m, fd));
	ASSERT_EQ(0, close(fd));
	m.fd = rx;	/* the doorbell works from any file of the channel */
	/* The mapping alone still moves messages both ways. */
	ASSERT_EQ(11, rt_send(&m, "after close", 11));
	ASSERT_EQ(11, read(rx, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "after close", 11));
	ASSERT_EQ(0, write_str(tx, "to the ring"));
	ASSERT_EQ(11, rt_recv(&m, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "to the ring", 11));
	ASSERT_EQ(0, close(tx));
	/* The mapping holds the closed fd's file: a sender, so no EOF. */
	MPMC_STATS(rx, &st);
	EXPECT_EQ(1, st.send_files);
	EXPECT_EQ(0, st.shutdown);
	EXPECT_EQ(-EAGAIN, peek_eof(rx));
	ASSERT_EQ(4, rt_send(&m, "last", 4));
	ASSERT_EQ(0, rmap_close(&m));
	/* Gone with the mapping: what was queued, then EOF. */
	ASSERT_EQ(4, read(rx, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "last", 4));
	EXPECT_EQ(0, wait_eof(rx));
	MPMC_STATS(rx, &st);
	EXPECT_EQ(0, st.send_files);
	EXPECT_NE(0, st.shutdown & MPMC_SHUT_WR);
	close(rx);
}

TEST(map_through_dup_and_endpoint)
{
	struct mpmc_ring *r, *r2;
	struct mpmc_ring_info ri;
	char buf[MSG + 1];
	int fd, d, e;

	fd = ring_open(8, MSG, 0);
	ASSERT_LE(0, fd);
	d = dup(fd);
	ASSERT_LE(0, d);
	ASSERT_EQ(0, close(fd));
	ASSERT_EQ(0, mpmc_ring_map(d, &r));
	EXPECT_EQ(d, mpmc_ring_fd(r));
	e = new_ep(d, MPMC_ROLE_SEND | MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, e);
	ASSERT_EQ(0, close(d));
	/* The first handle's fd is gone: only the second one is used. */
	ASSERT_EQ(0, mpmc_ring_map(e, &r2));
	ASSERT_EQ(5, mpmc_ring_send(r2, "hello", 5, 0));
	ASSERT_EQ(5, ring_recv_within(r2, buf, sizeof(buf)));
	EXPECT_STREQ("hello", buf);
	/* RING_INFO through the endpoint: not a mapping at NULL. */
	EXPECT_ERRNO(ENXIO, ring_info(e, NULL, &ri));
	mpmc_ring_unmap(r);
	mpmc_ring_unmap(r2);
	/* Mapped once more after everything was unmapped. */
	ASSERT_EQ(0, mpmc_ring_map(e, &r));
	ASSERT_EQ(3, mpmc_ring_send(r, "abc", 3, 0));
	ASSERT_EQ(3, read(e, buf, sizeof(buf)));
	mpmc_ring_unmap(r);
	close(e);
}

/* Two raw mappings of a channel through different fds: distinct ids. */
TEST(two_fds_two_ids)
{
	struct rmap a, b;
	char buf[MSG];
	int fd, d;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	d = dup(fd);
	ASSERT_LE(0, d);
	ASSERT_EQ(0, rmap_open(&a, fd));
	ASSERT_EQ(0, rmap_open(&b, d));
	EXPECT_NE(a.id, b.id);
	ASSERT_EQ(2, rt_send(&a, "ab", 2));
	ASSERT_EQ(2, rt_recv(&b, buf, sizeof(buf)));
	EXPECT_EQ(0, rmap_close(&a));
	EXPECT_EQ(0, rmap_close(&b));
	close(d);
	close(fd);
}

/*
 * Close and munmap of both regions in every order: the observer sees EOF
 * only after the last of the three.
 */
TEST(munmap_close_orders)
{
	static const char *const orders[] = {
		"RCF", "CRF", "FRC", "FCR", "RFC", "CFR",
	};	/* R: munmap ring, C: munmap ctrl, F: close the fd */
	unsigned int o, k;

	for (o = 0; o < ARRAY_SIZE(orders); o++) {
		struct rmap m;
		int fd, rx;

		fd = ring_open(4, MSG, 0);
		ASSERT_LE(0, fd);
		rx = new_ep(fd, MPMC_ROLE_RECV, O_NONBLOCK);
		ASSERT_LE(0, rx);
		ASSERT_EQ(0, rmap_open(&m, fd));
		ASSERT_EQ(1, rt_send(&m, "x", 1));
		for (k = 0; k < 3; k++) {
			switch (orders[o][k]) {
			case 'R':
				EXPECT_EQ(0, munmap(m.ring, m.ring_size));
				break;
			case 'C':
				EXPECT_EQ(0, munmap(m.ctrl, ring_page()));
				break;
			case 'F':
				EXPECT_EQ(0, close(fd));
				break;
			}
			if (k < 2)
				EXPECT_EQ(k ? -EAGAIN : 1, peek_eof(rx))
					TH_LOG("order %s, after step %u",
					       orders[o], k);
		}
		EXPECT_EQ(0, wait_eof(rx)) TH_LOG("order %s", orders[o]);
		close(rx);
	}
}

/* fork: the child sends through the inherited handle, the parent receives. */
TEST(fork_child_sends)
{
	char buf[MSG + 1], want[32];
	struct mpmc_ring *r;
	int fd, i, st;
	pid_t pid;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mpmc_ring_map(fd, &r));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (i = 0; i < 300; i++) {
			int n = snprintf(want, sizeof(want), "child %d", i);

			if (mpmc_ring_send(r, want, n, 0) != n)
				_exit(1);
		}
		mpmc_ring_unmap(r);
		_exit(0);
	}
	for (i = 0; i < 300; i++) {
		int n = snprintf(want, sizeof(want), "child %d", i);

		ASSERT_EQ(n, ring_recv_within(r, buf, sizeof(buf)))
			TH_LOG("message %d", i);
		EXPECT_STREQ(want, buf);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_EQ(0, st);
	/* The child claimed with its own id, and left nothing behind. */
	EXPECT_EQ(0, fdinfo_val(fd, "ring_reaped", -1));
	EXPECT_EQ(0, stats_of(fd).queued_msgs);
	mpmc_ring_unmap(r);
	close(fd);
}

/* fork, then the parent unmaps and closes: the child's mapping goes on. */
TEST(fork_parent_unmaps)
{
	char buf[MSG + 1];
	struct mpmc_ring *r;
	int fd, rx, p[2], st;
	pid_t pid;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	rx = new_ep(fd, MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, rx);
	ASSERT_EQ(0, mpmc_ring_map(fd, &r));
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char go;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[1]);
		close(rx);
		if (read(p[0], &go, 1) != 1)
			_exit(2);
		if (mpmc_ring_send(r, "child alone", 11, 0) != 11)
			_exit(1);
		_exit(0);	/* no munmap, no close: exit does both */
	}
	close(p[0]);
	mpmc_ring_unmap(r);
	close(fd);
	ASSERT_EQ(1, write(p[1], "g", 1));
	close(p[1]);
	ASSERT_EQ(11, fd_recv_within(rx, buf, sizeof(buf)));
	EXPECT_STREQ("child alone", buf);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_EQ(0, st);
	/* The child's exit released the last sender: EOF. */
	EXPECT_EQ(0, fd_recv_within(rx, buf, sizeof(buf)));
	close(rx);
}

/*
 * exec with the fd inherited. The child claims a slot by hand (raw
 * mapping), then execs: the old image's mapping goes and its claim is
 * reaped; the new image maps again, receives what the parent sent and
 * answers through the ring.
 */
static int exec_child(int fd)
{
	char buf[MSG + 1];
	struct mpmc_ring *r;
	int n;

	if (mpmc_ring_map(fd, &r))
		return 10;
	n = ring_recv_within(r, buf, sizeof(buf));
	if (n != 7 || strcmp(buf, "to exec"))
		return 11;
	if (mpmc_ring_send(r, "from exec", 9, 0) != 9)
		return 12;
	mpmc_ring_unmap(r);
	return 0;
}

TEST(exec_maps_again)
{
	char buf[MSG + 1], fdstr[16];
	struct mpmc_ring *r;
	int fd, st;
	pid_t pid;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fcntl(fd, F_SETFD, 0));	/* inherited across exec */
	ASSERT_EQ(0, mpmc_ring_map(fd, &r));
	ASSERT_EQ(7, mpmc_ring_send(r, "to exec", 7, 0));
	snprintf(fdstr, sizeof(fdstr), "%d", fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rmap m;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		mpmc_ring_unmap(r);
		if (rmap_open(&m, fd) || rt_claim_send(&m) != 1)
			_exit(20);
		execl("/proc/self/exe", "ring_lifecycle", EXEC_FLAG, fdstr,
		      (char *)NULL);
		_exit(21);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
	/* The claim became a SKIP; the new image's answer comes after it. */
	ASSERT_EQ(9, ring_recv_within(r, buf, sizeof(buf)));
	EXPECT_STREQ("from exec", buf);
	EXPECT_LE(1, wait_fdinfo_ge(fd, "ring_reaped", 1, WAIT_MS));
	EXPECT_EQ(0, stats_of(fd).queued_msgs);
	mpmc_ring_unmap(r);
	close(fd);
}

/* An exiting process with a mapping and an fd: EOF after its exit. */
TEST(exit_without_cleanup)
{
	char buf[MSG + 1];
	int fd, rx, st, i;
	pid_t pid;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	rx = new_ep(fd, MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, rx);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct mpmc_ring *r;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(rx);
		if (mpmc_ring_map(fd, &r))
			_exit(1);
		for (i = 0; i < 3; i++)
			if (mpmc_ring_send(r, "bye", 3, 0) != 3)
				_exit(2);
		_exit(0);
	}
	close(fd);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(3, fd_recv_within(rx, buf, sizeof(buf)));
		EXPECT_STREQ("bye", buf);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_EQ(0, st);
	EXPECT_EQ(0, fd_recv_within(rx, buf, sizeof(buf)));
	close(rx);
}

/*
 * TEST_HARNESS_MAIN, except that the image exec_maps_again starts runs
 * exec_child() instead of the tests.
 */
static void __attribute__((constructor)) __constructor_order_last(void)
{
	if (!__constructor_order)
		__constructor_order = _CONSTRUCTOR_ORDER_BACKWARD;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], EXEC_FLAG))
		return exec_child(atoi(argv[2]));
	return test_harness_run(argc, argv);
}
