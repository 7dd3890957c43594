// SPDX-License-Identifier: GPL-2.0
/*
 * libmpmc: one test per library call and per promise of the library: the
 * error convention (a negative errno returned, errno never changed), one
 * system call per call (checked with ptrace), no state beyond the fd (any
 * /dev/mpmc fd works), and the liburing helpers.
 *
 * Built by selftests/Makefile like every selftest, plus -I lib/include
 * and build/lib/libmpmc.a (made by make -C lib) linked before -luring.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define MPMC_WITH_LIBURING
#include <mpmc.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

/* errno value no library call can produce: proves errno is untouched. */
#define CANARY	EXDEV

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Poll the stats until @senders and @receivers are asleep (5 s at most). */
static int wait_waiters(int fd, unsigned int senders, unsigned int receivers)
{
	int64_t deadline = now_ns() + 5000000000LL;
	struct mpmc_stats st;

	do {
		if (mpmc_get_stats(fd, &st) < 0)
			return -1;
		if (st.blocked_senders == senders &&
		    st.blocked_receivers == receivers)
			return 0;
		usleep(2000);
	} while (now_ns() < deadline);
	return -1;
}

/* The lowest free fd number: tells whether a call leaked an fd. */
static int lowest_free_fd(void)
{
	int fd = dup(0);

	if (fd >= 0)
		close(fd);
	return fd;
}

/* A blocking call run in a thread. */
struct call {
	pthread_t thread;
	int fd;
	char buf[64];
	size_t len;
	int64_t timeout_ns;
	ssize_t ret;
	int err_after;		/* errno in the thread after the call */
};

static void *send_thread(void *arg)
{
	struct call *c = arg;

	errno = CANARY;
	c->ret = mpmc_send(c->fd, c->buf, c->len);
	c->err_after = errno;
	return NULL;
}

static void *recv_thread(void *arg)
{
	struct call *c = arg;

	errno = CANARY;
	c->ret = mpmc_recv(c->fd, c->buf, c->len);
	c->err_after = errno;
	return NULL;
}

static void *recv_timeout_thread(void *arg)
{
	struct call *c = arg;

	errno = CANARY;
	c->ret = mpmc_recv_timeout(c->fd, c->buf, c->len, c->timeout_ns);
	c->err_after = errno;
	return NULL;
}

static void noop_handler(int sig)
{
	(void)sig;
}

TEST(open_defaults)
{
	unsigned long long cap = mpmc_test_param("max_capacity");
	unsigned long long size = mpmc_test_param("max_msg_size");
	struct mpmc_config cfg;
	int fd;

	ASSERT_NE(0, cap);
	ASSERT_NE(0, size);
	errno = CANARY;
	fd = mpmc_open(NULL, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(O_RDWR, fcntl(fd, F_GETFL) & O_ACCMODE);
	ASSERT_EQ(0, mpmc_get_config(fd, &cfg));
	EXPECT_EQ(cap < MPMC_DEFAULT_CAPACITY ? cap : MPMC_DEFAULT_CAPACITY,
		  cfg.capacity);
	EXPECT_EQ(size < MPMC_DEFAULT_MSG_SIZE ? size : MPMC_DEFAULT_MSG_SIZE,
		  cfg.max_msg_size);
	EXPECT_EQ(0, mpmc_close(fd));
}

TEST(open_with_config)
{
	struct mpmc_config cfg, got;
	int fd;

	mpmc_config_init(&cfg, 5, 100);
	errno = CANARY;
	fd = mpmc_open(&cfg, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(CANARY, errno);
	memset(&got, 0xff, sizeof(got));
	ASSERT_EQ(0, mpmc_get_config(fd, &got));
	EXPECT_EQ(5, got.capacity);
	EXPECT_EQ(100, got.max_msg_size);
	EXPECT_EQ(0, got.flags);
	EXPECT_EQ(0, got.reserved[0]);
	EXPECT_EQ(0, mpmc_close(fd));
}

/* A configuration the module refuses: the error, and no fd left behind. */
TEST(open_bad_config_leaks_nothing)
{
	struct mpmc_config cfg;
	int before = lowest_free_fd();

	ASSERT_LE(0, before);
	mpmc_config_init(&cfg, 4, 0);
	errno = CANARY;
	EXPECT_EQ(-EINVAL, mpmc_open(&cfg, O_RDWR));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(before, lowest_free_fd());

	/* Capacity 0 (rendezvous) cannot overwrite. */
	mpmc_config_init_flags(&cfg, 0, 100, MPMC_CONFIG_OVERWRITE);
	EXPECT_EQ(-EINVAL, mpmc_open(&cfg, O_RDWR));
	EXPECT_EQ(before, lowest_free_fd());

	mpmc_config_init(&cfg, 4, 100);
	cfg.reserved[2] = 1;
	EXPECT_EQ(-EINVAL, mpmc_open(&cfg, O_RDWR));
	EXPECT_EQ(before, lowest_free_fd());

	mpmc_config_init(&cfg, mpmc_test_param("max_capacity") + 1, 1);
	EXPECT_EQ(-EINVAL, mpmc_open(&cfg, O_RDWR));
	EXPECT_EQ(before, lowest_free_fd());
}

/* The open flags go to open(2) as they are. */
TEST(open_flags)
{
	struct mpmc_stats st;
	char buf[8];
	int fd;

	fd = mpmc_open(NULL, O_RDONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(0, st.send_files);
	EXPECT_EQ(1, st.recv_files);
	EXPECT_EQ(MPMC_SHUT_WR, st.shutdown);
	EXPECT_EQ(-EBADF, mpmc_send(fd, "x", 1));
	EXPECT_EQ(0, mpmc_close(fd));

	fd = mpmc_open(NULL, O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	EXPECT_EQ(O_NONBLOCK, fcntl(fd, F_GETFL) & O_NONBLOCK);
	errno = CANARY;
	EXPECT_EQ(-EAGAIN, mpmc_recv(fd, buf, sizeof(buf)));
	EXPECT_EQ(CANARY, errno);
	/* O_NONBLOCK beats an infinite timeout. */
	EXPECT_EQ(-EAGAIN, mpmc_recv_timeout(fd, buf, sizeof(buf), -1));
	EXPECT_EQ(0, mpmc_close(fd));
}

TEST(close_fd)
{
	int fd = mpmc_open(NULL, O_RDWR);

	ASSERT_LE(0, fd);
	errno = CANARY;
	EXPECT_EQ(0, mpmc_close(fd));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(-EBADF, mpmc_close(fd));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(-1, fcntl(fd, F_GETFD));
}

TEST(send_recv)
{
	char buf[32];
	int fd = mpmc_open(NULL, O_RDWR);

	ASSERT_LE(0, fd);
	EXPECT_EQ(5, mpmc_send(fd, "hello", 5));
	EXPECT_EQ(3, mpmc_send(fd, "abc", 3));
	/* Zero bytes: nothing sent, nothing received, as write/read do. */
	EXPECT_EQ(0, mpmc_send(fd, "", 0));
	EXPECT_EQ(0, mpmc_recv(fd, buf, 0));
	EXPECT_EQ(5, mpmc_next_len(fd));

	memset(buf, 0, sizeof(buf));
	EXPECT_EQ(5, mpmc_recv(fd, buf, sizeof(buf)));
	EXPECT_STREQ("hello", buf);
	memset(buf, 0, sizeof(buf));
	EXPECT_EQ(3, mpmc_recv(fd, buf, sizeof(buf)));
	EXPECT_STREQ("abc", buf);
	EXPECT_EQ(0, mpmc_next_len(fd));
	EXPECT_EQ(0, mpmc_close(fd));
}

/* A buffer too small: -EMSGSIZE from every receive call, message kept. */
TEST(recv_small_buffer)
{
	struct mpmc_msgvec v;
	struct mpmc_stats st;
	char buf[16];
	int fd = mpmc_open(NULL, O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(10, mpmc_send(fd, "0123456789", 10));
	errno = CANARY;
	EXPECT_EQ(-EMSGSIZE, mpmc_recv(fd, buf, 9));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(-EMSGSIZE, mpmc_try_recv(fd, buf, 9));
	EXPECT_EQ(-EMSGSIZE, mpmc_recv_timeout(fd, buf, 9, 1000000));
	mpmc_msgvec_set(&v, buf, 9);
	EXPECT_EQ(-EMSGSIZE, mpmc_recv_batch(fd, &v, 1, 0));
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(1, st.queued_msgs);
	EXPECT_EQ(0, st.total_received);
	EXPECT_EQ(10, mpmc_recv(fd, buf, 10));
	EXPECT_EQ(0, memcmp(buf, "0123456789", 10));
	EXPECT_EQ(0, mpmc_close(fd));
}

TEST(send_too_big)
{
	struct mpmc_config cfg;
	struct mpmc_stats st;
	char buf[65];
	int fd;

	memset(buf, 'x', sizeof(buf));
	mpmc_config_init(&cfg, 4, 64);
	fd = mpmc_open(&cfg, O_RDWR);
	ASSERT_LE(0, fd);
	errno = CANARY;
	EXPECT_EQ(-EMSGSIZE, mpmc_send(fd, buf, 65));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(-EMSGSIZE, mpmc_try_send(fd, buf, 65));
	EXPECT_EQ(-EMSGSIZE, mpmc_send_timeout(fd, buf, 65, -1));
	/* Larger than any message can be: refused without a call. */
	EXPECT_EQ(-EMSGSIZE, mpmc_send_timeout(fd, buf, (size_t)UINT32_MAX + 1, 0));
	EXPECT_EQ(64, mpmc_send(fd, buf, 64));
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(1, st.total_sent);
	EXPECT_EQ(0, mpmc_close(fd));
}

/* try_send never waits, on a blocking fd too. */
TEST(try_send)
{
	struct mpmc_config cfg;
	struct mpmc_stats st;
	int fd;

	mpmc_config_init(&cfg, 2, 16);
	fd = mpmc_open(&cfg, O_RDWR);
	ASSERT_LE(0, fd);
	EXPECT_EQ(1, mpmc_try_send(fd, "a", 1));
	EXPECT_EQ(2, mpmc_try_send(fd, "bb", 2));
	errno = CANARY;
	EXPECT_EQ(-EAGAIN, mpmc_try_send(fd, "c", 1));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(0, mpmc_try_send(fd, "", 0));
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(2, st.queued_msgs);
	EXPECT_EQ(3, st.queued_bytes);
	EXPECT_EQ(2, st.total_sent);
	EXPECT_EQ(0, st.blocked_senders);
	EXPECT_EQ(0, mpmc_close(fd));
}

/* try_recv never waits; it reports end of file as 0. */
TEST(try_recv)
{
	char buf[8];
	int fd = mpmc_open(NULL, O_RDWR);

	ASSERT_LE(0, fd);
	errno = CANARY;
	EXPECT_EQ(-EAGAIN, mpmc_try_recv(fd, buf, sizeof(buf)));
	EXPECT_EQ(CANARY, errno);
	ASSERT_EQ(4, mpmc_send(fd, "ping", 4));
	EXPECT_EQ(4, mpmc_try_recv(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "ping", 4));
	EXPECT_EQ(-EAGAIN, mpmc_try_recv(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, mpmc_try_recv(fd, buf, 0));
	ASSERT_EQ(0, mpmc_shutdown(fd, MPMC_SHUT_WR));
	EXPECT_EQ(0, mpmc_try_recv(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, mpmc_close(fd));
}

TEST(send_timeout)
{
	struct mpmc_config cfg;
	struct mpmc_stats st;
	int64_t t0, dt;
	int fd;

	mpmc_config_init(&cfg, 1, 16);
	fd = mpmc_open(&cfg, O_RDWR);
	ASSERT_LE(0, fd);
	EXPECT_EQ(3, mpmc_send_timeout(fd, "one", 3, 50000000));
	t0 = now_ns();
	errno = CANARY;
	EXPECT_EQ(-ETIMEDOUT, mpmc_send_timeout(fd, "two", 3, 50000000));
	dt = now_ns() - t0;
	EXPECT_EQ(CANARY, errno);
	EXPECT_LE(50000000, dt);
	EXPECT_EQ(-EAGAIN, mpmc_send_timeout(fd, "two", 3, 0));
	EXPECT_EQ(-EINVAL, mpmc_send_timeout(fd, "two", 3, -2));
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(1, st.queued_msgs);
	EXPECT_EQ(1, st.total_sent);
	EXPECT_EQ(0, mpmc_close(fd));
}

TEST(recv_timeout_expires)
{
	char buf[8];
	int64_t t0, dt;
	int fd = mpmc_open(NULL, O_RDWR);

	ASSERT_LE(0, fd);
	t0 = now_ns();
	errno = CANARY;
	EXPECT_EQ(-ETIMEDOUT, mpmc_recv_timeout(fd, buf, sizeof(buf), 50000000));
	dt = now_ns() - t0;
	EXPECT_EQ(CANARY, errno);
	EXPECT_LE(50000000, dt);
	EXPECT_EQ(-EAGAIN, mpmc_recv_timeout(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(-EINVAL, mpmc_recv_timeout(fd, buf, sizeof(buf), -5));
	EXPECT_EQ(0, mpmc_close(fd));
}

/* A receiver waiting with a timeout gets a message sent meanwhile. */
TEST(recv_timeout_wakes)
{
	struct call c = { .len = 16, .timeout_ns = 20000000000LL };
	int fd = mpmc_open(NULL, O_RDWR);

	ASSERT_LE(0, fd);
	c.fd = fd;
	ASSERT_EQ(0, pthread_create(&c.thread, NULL, recv_timeout_thread, &c));
	ASSERT_EQ(0, wait_waiters(fd, 0, 1));
	EXPECT_EQ(5, mpmc_send(fd, "wake!", 5));
	ASSERT_EQ(0, pthread_join(c.thread, NULL));
	EXPECT_EQ(5, c.ret);
	EXPECT_EQ(0, memcmp(c.buf, "wake!", 5));
	EXPECT_EQ(CANARY, c.err_after);
	EXPECT_EQ(0, mpmc_close(fd));
}

/* mpmc_send waits for room on a blocking fd. */
TEST(send_blocks)
{
	struct call c = { .buf = "second", .len = 6 };
	struct mpmc_config cfg;
	char buf[16];
	int fd;

	mpmc_config_init(&cfg, 1, 16);
	fd = mpmc_open(&cfg, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(5, mpmc_send(fd, "first", 5));
	c.fd = fd;
	ASSERT_EQ(0, pthread_create(&c.thread, NULL, send_thread, &c));
	ASSERT_EQ(0, wait_waiters(fd, 1, 0));
	EXPECT_EQ(5, mpmc_recv(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, pthread_join(c.thread, NULL));
	EXPECT_EQ(6, c.ret);
	EXPECT_EQ(CANARY, c.err_after);
	EXPECT_EQ(6, mpmc_recv(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "second", 6));
	EXPECT_EQ(0, mpmc_close(fd));
}

/* mpmc_recv waits for a message on a blocking fd. */
TEST(recv_blocks)
{
	struct call c = { .len = 16 };
	int fd = mpmc_open(NULL, O_RDWR);

	ASSERT_LE(0, fd);
	c.fd = fd;
	ASSERT_EQ(0, pthread_create(&c.thread, NULL, recv_thread, &c));
	ASSERT_EQ(0, wait_waiters(fd, 0, 1));
	EXPECT_EQ(7, mpmc_send(fd, "payload", 7));
	ASSERT_EQ(0, pthread_join(c.thread, NULL));
	EXPECT_EQ(7, c.ret);
	EXPECT_EQ(0, memcmp(c.buf, "payload", 7));
	EXPECT_EQ(CANARY, c.err_after);
	EXPECT_EQ(0, mpmc_close(fd));
}

/* A signal without SA_RESTART: -EINTR, errno kept, nothing consumed. */
TEST(recv_eintr)
{
	struct sigaction sa = { .sa_handler = noop_handler };
	struct call c = { .len = 16 };
	struct mpmc_stats st;
	int fd = mpmc_open(NULL, O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	c.fd = fd;
	ASSERT_EQ(0, pthread_create(&c.thread, NULL, recv_thread, &c));
	ASSERT_EQ(0, wait_waiters(fd, 0, 1));
	ASSERT_EQ(0, pthread_kill(c.thread, SIGUSR1));
	ASSERT_EQ(0, pthread_join(c.thread, NULL));
	EXPECT_EQ(-EINTR, c.ret);
	EXPECT_EQ(CANARY, c.err_after);
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(0, st.blocked_receivers);
	EXPECT_EQ(0, st.total_received);
	EXPECT_EQ(0, mpmc_close(fd));
}

TEST(send_batch)
{
	static const char * const msgs[] = { "a", "bb", "ccc", "dddd", "eeeee" };
	struct mpmc_msgvec v[5];
	struct mpmc_config cfg;
	char buf[8];
	int fd, i;

	mpmc_config_init(&cfg, 3, 16);
	fd = mpmc_open(&cfg, O_RDWR);
	ASSERT_LE(0, fd);
	for (i = 0; i < 5; i++)
		mpmc_msgvec_set(&v[i], msgs[i], strlen(msgs[i]));
	errno = CANARY;
	/* Room for three: the first waits (if needed), the rest do not. */
	EXPECT_EQ(3, mpmc_send_batch(fd, v, 5, -1));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(-EAGAIN, mpmc_send_batch(fd, &v[3], 2, 0));
	EXPECT_EQ(-ETIMEDOUT, mpmc_send_batch(fd, &v[3], 2, 10000000));
	EXPECT_EQ(CANARY, errno);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(i + 1, mpmc_recv(fd, buf, sizeof(buf)));
		EXPECT_EQ(0, memcmp(buf, msgs[i], i + 1));
	}
	/* Bad batches change nothing. */
	EXPECT_EQ(-EINVAL, mpmc_send_batch(fd, v, 0, 0));
	EXPECT_EQ(-EINVAL, mpmc_send_batch(fd, v, MPMC_BATCH_MAX + 1, 0));
	v[1].len = 0;
	EXPECT_EQ(-EINVAL, mpmc_send_batch(fd, v, 2, 0));
	EXPECT_EQ(-EFAULT, mpmc_send_batch(fd, (void *)8, 1, 0));
	EXPECT_EQ(0, mpmc_next_len(fd));
	EXPECT_EQ(0, mpmc_close(fd));
}

TEST(recv_batch)
{
	char bufs[4][8], small[2];
	struct mpmc_msgvec v[4];
	int fd = mpmc_open(NULL, O_RDWR);
	int i;

	ASSERT_LE(0, fd);
	ASSERT_EQ(1, mpmc_send(fd, "1", 1));
	ASSERT_EQ(2, mpmc_send(fd, "22", 2));
	ASSERT_EQ(3, mpmc_send(fd, "333", 3));
	for (i = 0; i < 4; i++)
		mpmc_msgvec_set(&v[i], bufs[i], sizeof(bufs[i]));
	errno = CANARY;
	EXPECT_EQ(3, mpmc_recv_batch(fd, v, 4, -1));
	EXPECT_EQ(CANARY, errno);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(i + 1, v[i].len);
		EXPECT_EQ('1' + i, bufs[i][0]);
	}
	EXPECT_EQ(sizeof(bufs[3]), v[3].len);
	EXPECT_EQ(-EAGAIN, mpmc_recv_batch(fd, v, 4, 0));
	EXPECT_EQ(-ETIMEDOUT, mpmc_recv_batch(fd, v, 4, 10000000));

	/* An entry too small stops the batch there. */
	ASSERT_EQ(1, mpmc_send(fd, "x", 1));
	ASSERT_EQ(5, mpmc_send(fd, "yyyyy", 5));
	mpmc_msgvec_set(&v[0], bufs[0], sizeof(bufs[0]));
	mpmc_msgvec_set(&v[1], small, sizeof(small));
	EXPECT_EQ(1, mpmc_recv_batch(fd, v, 2, 0));
	EXPECT_EQ(5, mpmc_next_len(fd));
	EXPECT_EQ(-EMSGSIZE, mpmc_recv_batch(fd, &v[1], 1, 0));
	EXPECT_EQ(-EINVAL, mpmc_recv_batch(fd, v, 0, 0));
	EXPECT_EQ(0, mpmc_close(fd));
}

/* A receive batch on a shut-down, drained channel returns 0. */
TEST(recv_batch_eof)
{
	struct mpmc_msgvec v[2];
	char b0[8], b1[8];
	int fd = mpmc_open(NULL, O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(2, mpmc_send(fd, "hi", 2));
	ASSERT_EQ(0, mpmc_shutdown(fd, MPMC_SHUT_WR));
	mpmc_msgvec_set(&v[0], b0, sizeof(b0));
	mpmc_msgvec_set(&v[1], b1, sizeof(b1));
	EXPECT_EQ(1, mpmc_recv_batch(fd, v, 2, -1));
	EXPECT_EQ(0, mpmc_recv_batch(fd, v, 2, -1));
	EXPECT_EQ(0, mpmc_recv_batch(fd, v, 2, 0));
	EXPECT_EQ(0, mpmc_close(fd));
}

TEST(shutdown_wr)
{
	struct mpmc_msgvec v;
	struct mpmc_stats st;
	char buf[8];
	int fd = mpmc_open(NULL, O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(3, mpmc_send(fd, "end", 3));
	errno = CANARY;
	EXPECT_EQ(0, mpmc_shutdown(fd, MPMC_SHUT_WR));
	EXPECT_EQ(0, mpmc_shutdown(fd, MPMC_SHUT_WR));
	EXPECT_EQ(CANARY, errno);
	/* EPIPE from every send call, and no SIGPIPE (it would kill us). */
	EXPECT_EQ(-EPIPE, mpmc_send(fd, "x", 1));
	EXPECT_EQ(-EPIPE, mpmc_try_send(fd, "x", 1));
	EXPECT_EQ(-EPIPE, mpmc_send_timeout(fd, "x", 1, -1));
	mpmc_msgvec_set(&v, "x", 1);
	EXPECT_EQ(-EPIPE, mpmc_send_batch(fd, &v, 1, -1));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(3, mpmc_recv(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, mpmc_recv(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, mpmc_recv(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(MPMC_SHUT_WR, st.shutdown);
	EXPECT_EQ(-EINVAL, mpmc_shutdown(fd, 4));
	EXPECT_EQ(-EINVAL, mpmc_shutdown(fd, -1));
	EXPECT_EQ(0, mpmc_close(fd));
}

TEST(shutdown_rd)
{
	struct mpmc_stats st;
	char buf[8];
	int fd = mpmc_open(NULL, O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(3, mpmc_send(fd, "one", 3));
	ASSERT_EQ(3, mpmc_send(fd, "two", 3));
	EXPECT_EQ(0, mpmc_shutdown(fd, MPMC_SHUT_RD));
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(0, st.queued_msgs);
	EXPECT_EQ(0, st.queued_bytes);
	EXPECT_EQ(MPMC_SHUT_RD, st.shutdown);
	EXPECT_EQ(0, mpmc_recv(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, mpmc_try_recv(fd, buf, sizeof(buf)));
	EXPECT_EQ(-EPIPE, mpmc_send(fd, "x", 1));
	EXPECT_EQ(0, mpmc_shutdown(fd, MPMC_SHUT_RDWR));
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(MPMC_SHUT_RDWR, st.shutdown);
	EXPECT_EQ(0, mpmc_close(fd));
}

TEST(new_endpoint)
{
	struct mpmc_stats st;
	int fd, tx, rx, both;
	char buf[8];

	fd = mpmc_open(NULL, O_RDWR);
	ASSERT_LE(0, fd);
	errno = CANARY;
	tx = mpmc_new_endpoint(fd, MPMC_ROLE_SEND, O_CLOEXEC);
	ASSERT_LE(0, tx);
	EXPECT_EQ(CANARY, errno);
	rx = mpmc_new_endpoint(fd, MPMC_ROLE_RECV, O_NONBLOCK);
	ASSERT_LE(0, rx);
	both = mpmc_new_endpoint(fd, MPMC_ROLE_SEND | MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, both);

	EXPECT_EQ(O_WRONLY, fcntl(tx, F_GETFL) & O_ACCMODE);
	EXPECT_EQ(FD_CLOEXEC, fcntl(tx, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(O_RDONLY, fcntl(rx, F_GETFL) & O_ACCMODE);
	EXPECT_EQ(O_NONBLOCK, fcntl(rx, F_GETFL) & O_NONBLOCK);
	EXPECT_EQ(O_RDWR, fcntl(both, F_GETFL) & O_ACCMODE);
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(3, st.send_files);
	EXPECT_EQ(3, st.recv_files);

	/* The same channel, directions as the roles say. */
	EXPECT_EQ(2, mpmc_send(tx, "tx", 2));
	EXPECT_EQ(2, mpmc_recv(rx, buf, sizeof(buf)));
	EXPECT_EQ(-EAGAIN, mpmc_recv(rx, buf, sizeof(buf)));
	EXPECT_EQ(-EBADF, mpmc_recv(tx, buf, sizeof(buf)));
	EXPECT_EQ(-EBADF, mpmc_try_recv(tx, buf, sizeof(buf)));
	EXPECT_EQ(-EBADF, mpmc_send(rx, "x", 1));
	EXPECT_EQ(-EBADF, mpmc_try_send(rx, "x", 1));

	/* Only roles the file has; valid roles and flags only. */
	EXPECT_EQ(-EPERM, mpmc_new_endpoint(tx, MPMC_ROLE_RECV, 0));
	EXPECT_EQ(-EPERM, mpmc_new_endpoint(rx, MPMC_ROLE_SEND, 0));
	EXPECT_EQ(-EINVAL, mpmc_new_endpoint(fd, 0, 0));
	EXPECT_EQ(-EINVAL, mpmc_new_endpoint(fd, 4, 0));
	EXPECT_EQ(-EINVAL, mpmc_new_endpoint(fd, MPMC_ROLE_SEND, O_APPEND));
	EXPECT_EQ(CANARY, errno);

	EXPECT_EQ(0, mpmc_close(both));
	EXPECT_EQ(0, mpmc_close(rx));
	EXPECT_EQ(0, mpmc_close(tx));
	EXPECT_EQ(0, mpmc_close(fd));
}

/* Closing the last send-role fd gives the receivers end of file. */
TEST(endpoint_last_sender_eof)
{
	char buf[8];
	int fd, rx;

	fd = mpmc_open(NULL, O_RDWR);
	ASSERT_LE(0, fd);
	rx = mpmc_new_endpoint(fd, MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, rx);
	ASSERT_EQ(4, mpmc_send(fd, "last", 4));
	ASSERT_EQ(0, mpmc_close(fd));
	EXPECT_EQ(4, mpmc_recv(rx, buf, sizeof(buf)));
	EXPECT_EQ(0, mpmc_recv(rx, buf, sizeof(buf)));
	EXPECT_EQ(0, mpmc_close(rx));
}

TEST(get_set_config)
{
	struct mpmc_config cfg, got;
	int fd = mpmc_open(NULL, O_RDWR);

	ASSERT_LE(0, fd);
	mpmc_config_init(&cfg, 16, 256);
	errno = CANARY;
	EXPECT_EQ(0, mpmc_set_config(fd, &cfg));
	EXPECT_EQ(CANARY, errno);
	ASSERT_EQ(0, mpmc_get_config(fd, &got));
	EXPECT_EQ(16, got.capacity);
	EXPECT_EQ(256, got.max_msg_size);

	ASSERT_EQ(1, mpmc_send(fd, "a", 1));
	ASSERT_EQ(1, mpmc_send(fd, "b", 1));
	mpmc_config_init(&cfg, 1, 256);
	EXPECT_EQ(-EBUSY, mpmc_set_config(fd, &cfg));
	mpmc_config_init(&cfg, 16, 128);
	EXPECT_EQ(-EBUSY, mpmc_set_config(fd, &cfg));
	mpmc_config_init(&cfg, 16, 256);
	cfg.flags = 8;		/* not an MPMC_CONFIG_* bit */
	EXPECT_EQ(-EINVAL, mpmc_set_config(fd, &cfg));
	EXPECT_EQ(CANARY, errno);
	ASSERT_EQ(0, mpmc_get_config(fd, &got));
	EXPECT_EQ(16, got.capacity);
	EXPECT_EQ(256, got.max_msg_size);
	EXPECT_EQ(-EFAULT, mpmc_get_config(fd, NULL));
	EXPECT_EQ(-EFAULT, mpmc_set_config(fd, NULL));
	EXPECT_EQ(0, mpmc_close(fd));
}

TEST(get_stats)
{
	struct mpmc_stats st;
	char buf[8];
	int fd = mpmc_open(NULL, O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(3, mpmc_send(fd, "abc", 3));
	ASSERT_EQ(4, mpmc_send(fd, "defg", 4));
	ASSERT_EQ(3, mpmc_recv(fd, buf, sizeof(buf)));
	memset(&st, 0xff, sizeof(st));
	errno = CANARY;
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(1, st.queued_msgs);
	EXPECT_EQ(4, st.queued_bytes);
	EXPECT_EQ(2, st.total_sent);
	EXPECT_EQ(1, st.total_received);
	EXPECT_EQ(1, st.send_files);
	EXPECT_EQ(1, st.recv_files);
	EXPECT_EQ(0, st.shutdown);
	EXPECT_EQ(0, st.total_dropped);
	EXPECT_EQ(0, st.reserved[2]);
	EXPECT_EQ(-EFAULT, mpmc_get_stats(fd, NULL));
	EXPECT_EQ(0, mpmc_close(fd));
}

TEST(next_len)
{
	char buf[300];
	int fd = mpmc_open(NULL, O_RDWR);

	ASSERT_LE(0, fd);
	memset(buf, 'n', sizeof(buf));
	errno = CANARY;
	EXPECT_EQ(0, mpmc_next_len(fd));
	ASSERT_EQ(300, mpmc_send(fd, buf, 300));
	ASSERT_EQ(7, mpmc_send(fd, buf, 7));
	EXPECT_EQ(300, mpmc_next_len(fd));
	ASSERT_EQ(300, mpmc_recv(fd, buf, sizeof(buf)));
	EXPECT_EQ(7, mpmc_next_len(fd));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(0, mpmc_close(fd));
	EXPECT_EQ(-EBADF, mpmc_next_len(fd));
	EXPECT_EQ(CANARY, errno);
}

/*
 * No state beyond the fd: a channel made with open(2) and ioctl(2) works
 * with the library, and one made by the library with read(2)/write(2).
 */
TEST(any_fd_works)
{
	struct mpmc_config cfg = { .capacity = 3, .max_msg_size = 32 };
	struct mpmc_config got;
	char buf[32];
	int fd, dupfd, lfd;

	fd = open("/dev/mpmc", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg));
	dupfd = dup(fd);
	ASSERT_LE(0, dupfd);
	ASSERT_EQ(0, mpmc_get_config(dupfd, &got));
	EXPECT_EQ(3, got.capacity);
	ASSERT_EQ(5, write(fd, "plain", 5));
	EXPECT_EQ(5, mpmc_recv(dupfd, buf, sizeof(buf)));
	EXPECT_EQ(3, mpmc_try_send(dupfd, "lib", 3));
	EXPECT_EQ(3, read(fd, buf, sizeof(buf)));
	close(dupfd);
	close(fd);

	lfd = mpmc_open(NULL, O_RDWR);
	ASSERT_LE(0, lfd);
	ASSERT_EQ(4, write(lfd, "data", 4));
	EXPECT_EQ(4, mpmc_next_len(lfd));
	EXPECT_EQ(4, read(lfd, buf, sizeof(buf)));
	close(lfd);
}

/* Calls on an fd that is not a channel fail cleanly. */
TEST(not_a_channel)
{
	struct mpmc_config cfg;
	struct mpmc_stats st;
	char buf[8];
	int p[2];

	ASSERT_EQ(0, pipe(p));
	errno = CANARY;
	EXPECT_EQ(-ENOTTY, mpmc_get_config(p[0], &cfg));
	EXPECT_EQ(-ENOTTY, mpmc_get_stats(p[0], &st));
	EXPECT_EQ(-ENOTTY, mpmc_shutdown(p[0], MPMC_SHUT_WR));
	EXPECT_EQ(-ENOTTY, mpmc_try_recv(p[0], buf, sizeof(buf)));
	EXPECT_EQ(-ENOTTY, mpmc_new_endpoint(p[1], MPMC_ROLE_SEND, 0));
	EXPECT_EQ(CANARY, errno);
	close(p[0]);
	close(p[1]);
	EXPECT_EQ(-EBADF, mpmc_send(p[1], "x", 1));
	EXPECT_EQ(-EBADF, mpmc_try_send(p[1], "x", 1));
	EXPECT_EQ(-EBADF, mpmc_recv_timeout(p[0], buf, sizeof(buf), 1));
	EXPECT_EQ(CANARY, errno);
}

/* Bad pointers: -EFAULT and nothing moved. */
TEST(bad_pointers)
{
	struct mpmc_stats st;
	int fd = mpmc_open(NULL, O_RDWR);

	ASSERT_LE(0, fd);
	errno = CANARY;
	EXPECT_EQ(-EFAULT, mpmc_send(fd, (void *)8, 4));
	EXPECT_EQ(-EFAULT, mpmc_try_send(fd, (void *)8, 4));
	ASSERT_EQ(4, mpmc_send(fd, "kept", 4));
	EXPECT_EQ(-EFAULT, mpmc_recv(fd, (void *)8, 16));
	EXPECT_EQ(-EFAULT, mpmc_try_recv(fd, (void *)8, 16));
	EXPECT_EQ(CANARY, errno);
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(1, st.total_sent);
	EXPECT_EQ(1, st.queued_msgs);
	EXPECT_EQ(0, st.total_received);
	EXPECT_EQ(0, mpmc_close(fd));
}

/* --- libmpmc 1.1: priorities, peek, config flags (SPEC 13) ------------ */

/* Open a channel of @capacity messages of up to 64 bytes, with @flags. */
static int open_cfg(uint32_t capacity, uint32_t flags)
{
	struct mpmc_config cfg;

	mpmc_config_init_flags(&cfg, capacity, 64, flags);
	return mpmc_open(&cfg, O_RDWR | O_CLOEXEC);
}

/* Receive one message; 1 if it is @want at priority @prio. */
static int got(int fd, const char *want, unsigned int prio)
{
	unsigned int p = ~0u;
	char buf[64];
	ssize_t n;

	n = mpmc_recv_prio_timeout(fd, buf, sizeof(buf), &p, 0);
	return n == (ssize_t)strlen(want) && !memcmp(buf, want, n) && p == prio;
}

/* Higher priorities are received first, FIFO within a priority. */
TEST(send_prio)
{
	struct mpmc_stats st;
	char buf[8];
	int fd = open_cfg(8, 0);

	ASSERT_LE(0, fd);
	errno = CANARY;
	EXPECT_EQ(2, mpmc_send_prio(fd, "l1", 2, 0));
	EXPECT_EQ(2, mpmc_send_prio(fd, "h1", 2, MPMC_PRIO_MAX - 1));
	EXPECT_EQ(2, mpmc_send_prio(fd, "m1", 2, 7));
	EXPECT_EQ(2, mpmc_send_prio(fd, "h2", 2, MPMC_PRIO_MAX - 1));
	EXPECT_EQ(2, mpmc_send(fd, "l2", 2));		/* write(): prio 0 */
	EXPECT_EQ(CANARY, errno);
	/* An invalid priority: -EINVAL and nothing sent. */
	EXPECT_EQ(-EINVAL, mpmc_send_prio(fd, "xx", 2, MPMC_PRIO_MAX));
	EXPECT_EQ(-EINVAL, mpmc_send_prio(fd, "xx", 2, ~0u));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(0, mpmc_send_prio(fd, "", 0, 3));
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(5, st.queued_msgs);
	EXPECT_EQ(5, st.total_sent);
	/* read() takes the highest priority too. */
	EXPECT_EQ(2, mpmc_recv(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "h1", 2));
	EXPECT_TRUE(got(fd, "h2", MPMC_PRIO_MAX - 1));
	EXPECT_TRUE(got(fd, "m1", 7));
	EXPECT_TRUE(got(fd, "l1", 0));
	EXPECT_TRUE(got(fd, "l2", 0));
	ASSERT_EQ(0, mpmc_shutdown(fd, MPMC_SHUT_WR));
	EXPECT_EQ(-EPIPE, mpmc_send_prio(fd, "x", 1, 1));
	EXPECT_EQ(0, mpmc_close(fd));
}

TEST(send_prio_timeout)
{
	struct mpmc_stats st;
	int64_t t0, dt;
	int fd = open_cfg(1, 0);

	ASSERT_LE(0, fd);
	errno = CANARY;
	EXPECT_EQ(3, mpmc_send_prio_timeout(fd, "one", 3, 4, 50000000));
	/* Full: a priority does not make room. */
	t0 = now_ns();
	EXPECT_EQ(-ETIMEDOUT, mpmc_send_prio_timeout(fd, "two", 3, 31, 50000000));
	dt = now_ns() - t0;
	EXPECT_LE(50000000, dt);
	EXPECT_EQ(-EAGAIN, mpmc_send_prio_timeout(fd, "two", 3, 31, 0));
	EXPECT_EQ(-EINVAL, mpmc_send_prio_timeout(fd, "two", 3, 31, -2));
	EXPECT_EQ(-EINVAL, mpmc_send_prio_timeout(fd, "two", 3, 32, 0));
	EXPECT_EQ(-EMSGSIZE, mpmc_send_prio_timeout(fd, "two",
						    (size_t)UINT32_MAX + 1, 1, 0));
	EXPECT_EQ(CANARY, errno);
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(1, st.queued_msgs);
	EXPECT_EQ(1, st.total_sent);
	EXPECT_TRUE(got(fd, "one", 4));
	EXPECT_EQ(0, mpmc_close(fd));
}

/* A batch with priorities; the receive batch writes them back. */
TEST(msgvec_set_prio)
{
	static const unsigned int prio[4] = { 1, 9, 1, 0 };
	static const char * const msgs[4] = { "a", "b", "c", "d" };
	static const char order[] = "bacd";
	struct mpmc_msgvec v[4];
	char bufs[4][8];
	int fd = open_cfg(8, 0);
	int i;

	ASSERT_LE(0, fd);
	for (i = 0; i < 4; i++)
		mpmc_msgvec_set_prio(&v[i], msgs[i], 1, prio[i]);
	EXPECT_EQ(9, v[1].prio);
	EXPECT_EQ((uintptr_t)msgs[1], (uintptr_t)v[1].buf);
	EXPECT_EQ(4, mpmc_send_batch(fd, v, 4, 0));
	for (i = 0; i < 4; i++) {
		mpmc_msgvec_set(&v[i], bufs[i], sizeof(bufs[i]));
		v[i].prio = 77;		/* ignored on input */
	}
	EXPECT_EQ(4, mpmc_recv_batch(fd, v, 4, 0));
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(1, v[i].len);
		EXPECT_EQ(order[i], bufs[i][0]);
		EXPECT_EQ(prio[order[i] - 'a'], v[i].prio);
	}
	/* An invalid priority anywhere: -EINVAL, nothing sent. */
	mpmc_msgvec_set_prio(&v[0], "ok", 2, 0);
	mpmc_msgvec_set_prio(&v[1], "no", 2, MPMC_PRIO_MAX);
	EXPECT_EQ(-EINVAL, mpmc_send_batch(fd, v, 2, 0));
	EXPECT_EQ(0, mpmc_next_len(fd));
	EXPECT_EQ(0, mpmc_close(fd));
}

static void *recv_prio_thread(void *arg)
{
	struct call *c = arg;
	unsigned int prio = ~0u;

	errno = CANARY;
	c->ret = mpmc_recv_prio(c->fd, c->buf, c->len, &prio);
	c->err_after = errno;
	c->timeout_ns = prio;	/* the priority received */
	return NULL;
}

TEST(recv_prio)
{
	struct call c = { .len = 16 };
	unsigned int prio;
	char buf[8];
	int fd = open_cfg(8, 0);

	ASSERT_LE(0, fd);
	ASSERT_EQ(3, mpmc_send_prio(fd, "low", 3, 2));
	ASSERT_EQ(4, mpmc_send_prio(fd, "high", 4, 20));
	prio = ~0u;
	errno = CANARY;
	EXPECT_EQ(4, mpmc_recv_prio(fd, buf, sizeof(buf), &prio));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(20, prio);
	EXPECT_EQ(0, memcmp(buf, "high", 4));
	/* NULL: the priority is not wanted. */
	EXPECT_EQ(3, mpmc_recv_prio(fd, buf, sizeof(buf), NULL));
	EXPECT_EQ(0, memcmp(buf, "low", 3));

	/* A blocked receiver gets a message sent later, with its priority. */
	c.fd = fd;
	ASSERT_EQ(0, pthread_create(&c.thread, NULL, recv_prio_thread, &c));
	ASSERT_EQ(0, wait_waiters(fd, 0, 1));
	EXPECT_EQ(5, mpmc_send_prio(fd, "later", 5, 13));
	ASSERT_EQ(0, pthread_join(c.thread, NULL));
	EXPECT_EQ(5, c.ret);
	EXPECT_EQ(13, c.timeout_ns);
	EXPECT_EQ(0, memcmp(c.buf, "later", 5));
	EXPECT_EQ(CANARY, c.err_after);

	/* End of file: 0, *prio untouched. */
	ASSERT_EQ(0, mpmc_shutdown(fd, MPMC_SHUT_WR));
	prio = 12345;
	EXPECT_EQ(0, mpmc_recv_prio(fd, buf, sizeof(buf), &prio));
	EXPECT_EQ(12345, prio);
	EXPECT_EQ(0, mpmc_close(fd));
	EXPECT_EQ(-EBADF, mpmc_recv_prio(fd, buf, sizeof(buf), &prio));
}

TEST(recv_prio_timeout)
{
	unsigned int prio = 999;
	char buf[8];
	int64_t t0, dt;
	int fd = open_cfg(8, 0);

	ASSERT_LE(0, fd);
	t0 = now_ns();
	errno = CANARY;
	EXPECT_EQ(-ETIMEDOUT, mpmc_recv_prio_timeout(fd, buf, sizeof(buf),
						     &prio, 50000000));
	dt = now_ns() - t0;
	EXPECT_LE(50000000, dt);
	EXPECT_EQ(-EAGAIN, mpmc_recv_prio_timeout(fd, buf, sizeof(buf), &prio, 0));
	EXPECT_EQ(-EINVAL, mpmc_recv_prio_timeout(fd, buf, sizeof(buf), &prio, -3));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(999, prio);

	/* Too small: -EMSGSIZE, the message stays, *prio untouched. */
	ASSERT_EQ(6, mpmc_send_prio(fd, "sixsix", 6, 5));
	EXPECT_EQ(-EMSGSIZE, mpmc_recv_prio_timeout(fd, buf, 5, &prio, 0));
	EXPECT_EQ(999, prio);
	EXPECT_EQ(6, mpmc_next_len(fd));
	EXPECT_EQ(0, mpmc_recv_prio_timeout(fd, buf, 0, &prio, 0));
	EXPECT_EQ(6, mpmc_recv_prio_timeout(fd, buf, sizeof(buf), &prio, -1));
	EXPECT_EQ(5, prio);
	EXPECT_EQ(0, mpmc_close(fd));
}

static void *peek_thread(void *arg)
{
	struct call *c = arg;
	struct mpmc_msgvec v;

	mpmc_msgvec_set(&v, c->buf, c->len);
	errno = CANARY;
	c->ret = mpmc_peek(c->fd, &v, 1, c->timeout_ns);
	c->err_after = errno;
	c->len = v.len;
	return NULL;
}

/* Peek copies in receive order and removes nothing. */
TEST(peek)
{
	struct mpmc_msgvec v[4];
	struct mpmc_stats st;
	char bufs[4][8], small[2];
	int fd = open_cfg(8, 0);
	int i;

	ASSERT_LE(0, fd);
	for (i = 0; i < 4; i++)
		mpmc_msgvec_set(&v[i], bufs[i], sizeof(bufs[i]));
	errno = CANARY;
	EXPECT_EQ(-EAGAIN, mpmc_peek(fd, v, 4, 0));
	EXPECT_EQ(-ETIMEDOUT, mpmc_peek(fd, v, 4, 10000000));
	EXPECT_EQ(-EINVAL, mpmc_peek(fd, v, 0, 0));
	EXPECT_EQ(-EINVAL, mpmc_peek(fd, v, 4, -2));
	EXPECT_EQ(CANARY, errno);

	ASSERT_EQ(1, mpmc_send_prio(fd, "a", 1, 0));
	ASSERT_EQ(2, mpmc_send_prio(fd, "bb", 2, 3));
	ASSERT_EQ(3, mpmc_send_prio(fd, "ccc", 3, 0));
	EXPECT_EQ(3, mpmc_peek(fd, v, 4, -1));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(2, v[0].len);
	EXPECT_EQ(3, v[0].prio);
	EXPECT_EQ(0, memcmp(bufs[0], "bb", 2));
	EXPECT_EQ(1, v[1].len);
	EXPECT_EQ(0, v[1].prio);
	EXPECT_EQ(0, memcmp(bufs[1], "a", 1));
	EXPECT_EQ(3, v[2].len);
	EXPECT_EQ(0, memcmp(bufs[2], "ccc", 3));
	/* Again: nothing was removed. */
	mpmc_msgvec_set(&v[0], bufs[0], sizeof(bufs[0]));
	EXPECT_EQ(1, mpmc_peek(fd, v, 1, 0));
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(3, st.queued_msgs);
	EXPECT_EQ(0, st.total_received);

	/* The first too small: -EMSGSIZE; a later one ends the copy. */
	mpmc_msgvec_set(&v[0], small, 1);
	EXPECT_EQ(-EMSGSIZE, mpmc_peek(fd, v, 2, 0));
	mpmc_msgvec_set(&v[0], bufs[0], sizeof(bufs[0]));
	mpmc_msgvec_set(&v[1], bufs[1], sizeof(bufs[1]));
	mpmc_msgvec_set(&v[2], small, sizeof(small));	/* "ccc" needs 3 */
	EXPECT_EQ(2, mpmc_peek(fd, v, 3, 0));
	EXPECT_EQ(2, v[0].len);
	EXPECT_EQ(1, v[1].len);

	/* The receives still get them all, in the same order. */
	EXPECT_TRUE(got(fd, "bb", 3));
	EXPECT_TRUE(got(fd, "a", 0));
	EXPECT_TRUE(got(fd, "ccc", 0));
	ASSERT_EQ(0, mpmc_shutdown(fd, MPMC_SHUT_WR));
	EXPECT_EQ(0, mpmc_peek(fd, v, 1, -1));		/* end of file */
	EXPECT_EQ(0, mpmc_close(fd));
}

/* A waiting peek is a poller: not a blocked receiver, and it removes nothing. */
TEST(peek_waits)
{
	struct call c = { .len = 16, .timeout_ns = 20000000000LL };
	struct mpmc_msgvec v;
	struct mpmc_stats st;
	char buf[16];
	int fd = open_cfg(8, 0);
	int tx;

	ASSERT_LE(0, fd);
	c.fd = fd;
	ASSERT_EQ(0, pthread_create(&c.thread, NULL, peek_thread, &c));
	usleep(100000);
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(0, st.blocked_receivers);
	EXPECT_EQ(5, mpmc_send(fd, "peek!", 5));
	ASSERT_EQ(0, pthread_join(c.thread, NULL));
	EXPECT_EQ(1, c.ret);
	EXPECT_EQ(5, c.len);
	EXPECT_EQ(0, memcmp(c.buf, "peek!", 5));
	EXPECT_EQ(CANARY, c.err_after);
	EXPECT_EQ(5, mpmc_next_len(fd));
	EXPECT_EQ(5, mpmc_recv(fd, buf, sizeof(buf)));

	/* A send-only endpoint cannot peek. */
	tx = mpmc_new_endpoint(fd, MPMC_ROLE_SEND, O_CLOEXEC);
	ASSERT_LE(0, tx);
	mpmc_msgvec_set(&v, buf, sizeof(buf));
	EXPECT_EQ(-EBADF, mpmc_peek(tx, &v, 1, 0));
	EXPECT_EQ(0, mpmc_close(tx));
	EXPECT_EQ(0, mpmc_close(fd));
}

/* Overwrite mode through mpmc_config_init_flags(): senders never wait. */
TEST(config_init_flags)
{
	struct mpmc_config cfg, got_cfg;
	struct mpmc_stats st;
	char msg[8];
	int fd, i;

	mpmc_config_init_flags(&cfg, 4, 64, MPMC_CONFIG_OVERWRITE);
	EXPECT_EQ(4, cfg.capacity);
	EXPECT_EQ(64, cfg.max_msg_size);
	EXPECT_EQ(MPMC_CONFIG_OVERWRITE, cfg.flags);
	EXPECT_EQ(0, cfg.reserved[0]);
	EXPECT_EQ(0, cfg.reserved[4]);
	fd = mpmc_open(&cfg, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mpmc_get_config(fd, &got_cfg));
	EXPECT_EQ(MPMC_CONFIG_OVERWRITE, got_cfg.flags);
	EXPECT_EQ(4, got_cfg.capacity);

	for (i = 0; i < 10; i++) {
		int n = snprintf(msg, sizeof(msg), "s%d", i);

		EXPECT_EQ(n, mpmc_try_send(fd, msg, n));
	}
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(4, st.queued_msgs);
	EXPECT_EQ(10, st.total_sent);
	EXPECT_EQ(6, st.total_dropped);
	/* The latest four remain. */
	EXPECT_TRUE(got(fd, "s6", 0));
	EXPECT_TRUE(got(fd, "s7", 0));
	EXPECT_TRUE(got(fd, "s8", 0));
	EXPECT_TRUE(got(fd, "s9", 0));

	/* Both flags at once; then back to a plain channel that waits. */
	mpmc_config_init_flags(&cfg, 1, 64,
			       MPMC_CONFIG_OVERWRITE | MPMC_CONFIG_THROUGHPUT);
	EXPECT_EQ(0, mpmc_set_config(fd, &cfg));
	ASSERT_EQ(0, mpmc_get_config(fd, &got_cfg));
	EXPECT_EQ(MPMC_CONFIG_OVERWRITE | MPMC_CONFIG_THROUGHPUT, got_cfg.flags);
	EXPECT_EQ(1, mpmc_try_send(fd, "x", 1));
	EXPECT_EQ(1, mpmc_try_send(fd, "y", 1));
	mpmc_config_init_flags(&cfg, 1, 64, 0);
	EXPECT_EQ(0, mpmc_set_config(fd, &cfg));
	EXPECT_EQ(-EAGAIN, mpmc_try_send(fd, "z", 1));
	EXPECT_TRUE(got(fd, "y", 0));
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(7, st.total_dropped);

	/* Capacity 0 with overwrite, unknown bits: -EINVAL, nothing changed. */
	mpmc_config_init_flags(&cfg, 0, 64, MPMC_CONFIG_OVERWRITE);
	EXPECT_EQ(-EINVAL, mpmc_set_config(fd, &cfg));
	mpmc_config_init_flags(&cfg, 4, 64, 8);
	EXPECT_EQ(-EINVAL, mpmc_set_config(fd, &cfg));
	ASSERT_EQ(0, mpmc_get_config(fd, &got_cfg));
	EXPECT_EQ(1, got_cfg.capacity);
	EXPECT_EQ(0, got_cfg.flags);
	EXPECT_EQ(0, mpmc_close(fd));
}

/* Overwrite drops the oldest of the lowest priority; the new one enters. */
TEST(overwrite_priorities)
{
	struct mpmc_stats st;
	int fd = open_cfg(2, MPMC_CONFIG_OVERWRITE);

	ASSERT_LE(0, fd);
	ASSERT_EQ(2, mpmc_send_prio(fd, "hi", 2, 5));
	ASSERT_EQ(1, mpmc_send_prio(fd, "a", 1, 0));
	ASSERT_EQ(1, mpmc_send_prio(fd, "b", 1, 0));	/* drops "a" */
	ASSERT_EQ(1, mpmc_send_prio(fd, "c", 1, 0));	/* drops "b" */
	EXPECT_TRUE(got(fd, "hi", 5));
	EXPECT_TRUE(got(fd, "c", 0));
	ASSERT_EQ(1, mpmc_send_prio(fd, "x", 1, 9));
	ASSERT_EQ(1, mpmc_send_prio(fd, "y", 1, 9));
	ASSERT_EQ(1, mpmc_send_prio(fd, "z", 1, 1));	/* drops "x" */
	EXPECT_TRUE(got(fd, "y", 9));
	EXPECT_TRUE(got(fd, "z", 1));
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(3, st.total_dropped);
	EXPECT_EQ(7, st.total_sent);
	EXPECT_EQ(4, st.total_received);
	EXPECT_EQ(0, mpmc_close(fd));
}

/* Capacity 0: a send completes only when a receiver has taken the message. */
TEST(rendezvous_config)
{
	struct call c = { .len = 16 };
	struct mpmc_config got_cfg;
	struct mpmc_msgvec v;
	struct mpmc_stats st;
	char buf[16];
	int fd = open_cfg(0, 0);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mpmc_get_config(fd, &got_cfg));
	EXPECT_EQ(0, got_cfg.capacity);
	/* No receiver waiting: nothing can be sent without waiting. */
	EXPECT_EQ(-EAGAIN, mpmc_try_send(fd, "x", 1));
	EXPECT_EQ(-ETIMEDOUT, mpmc_send_prio_timeout(fd, "x", 1, 3, 10000000));
	EXPECT_EQ(-EAGAIN, mpmc_try_recv(fd, buf, sizeof(buf)));
	mpmc_msgvec_set(&v, buf, sizeof(buf));
	EXPECT_EQ(-EAGAIN, mpmc_peek(fd, &v, 1, 0));

	c.fd = fd;
	ASSERT_EQ(0, pthread_create(&c.thread, NULL, recv_prio_thread, &c));
	ASSERT_EQ(0, wait_waiters(fd, 0, 1));
	EXPECT_EQ(5, mpmc_send_prio(fd, "hand!", 5, 6));
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(0, st.queued_msgs);
	EXPECT_EQ(1, st.total_sent);
	ASSERT_EQ(0, pthread_join(c.thread, NULL));
	EXPECT_EQ(5, c.ret);
	EXPECT_EQ(6, c.timeout_ns);
	EXPECT_EQ(0, memcmp(c.buf, "hand!", 5));
	EXPECT_EQ(0, mpmc_close(fd));
}

/* --- one system call per call, checked by tracing a child ------------- */

/* The marker between two library calls in the traced child. */
#define MARK()	syscall(SYS_getppid)

/* What each call between two markers must be. */
static const struct {
	const char *call;
	long nr[2];
	int n;
} expected_calls[] = {
	{ "mpmc_open(NULL)", { SYS_openat }, 1 },
	{ "mpmc_open(cfg)", { SYS_openat, SYS_ioctl }, 2 },
	{ "mpmc_send", { SYS_write }, 1 },
	{ "mpmc_try_send", { SYS_ioctl }, 1 },
	{ "mpmc_send_timeout", { SYS_ioctl }, 1 },
	{ "mpmc_send_batch", { SYS_ioctl }, 1 },
	{ "mpmc_next_len", { SYS_ioctl }, 1 },
	{ "mpmc_recv", { SYS_read }, 1 },
	{ "mpmc_try_recv", { SYS_ioctl }, 1 },
	{ "mpmc_recv_timeout", { SYS_ioctl }, 1 },
	{ "mpmc_recv_batch", { SYS_ioctl }, 1 },
	{ "mpmc_try_recv (EAGAIN)", { SYS_ioctl }, 1 },
	{ "mpmc_send_prio", { SYS_ioctl }, 1 },
	{ "mpmc_send_prio_timeout", { SYS_ioctl }, 1 },
	{ "mpmc_peek", { SYS_ioctl }, 1 },
	{ "mpmc_recv_prio", { SYS_ioctl }, 1 },
	{ "mpmc_recv_prio_timeout", { SYS_ioctl }, 1 },
	{ "mpmc_get_config", { SYS_ioctl }, 1 },
	{ "mpmc_set_config", { SYS_ioctl }, 1 },
	{ "mpmc_get_stats", { SYS_ioctl }, 1 },
	{ "mpmc_new_endpoint", { SYS_ioctl }, 1 },
	{ "mpmc_shutdown", { SYS_ioctl }, 1 },
	{ "mpmc_close", { SYS_close }, 1 },
	{ "mpmc_close", { SYS_close }, 1 },
	{ "mpmc_close", { SYS_close }, 1 },
};

#define NR_EXPECTED ARRAY_SIZE(expected_calls)

/* The traced child: every library call between two markers. */
static void __attribute__((noreturn)) traced_child(void)
{
	struct mpmc_config cfg;
	struct mpmc_msgvec v[2];
	struct mpmc_stats st;
	char buf[16], b2[16];
	unsigned int prio;
	int fd, fd2, ep, bad = 0;

	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
		_exit(10);
	raise(SIGSTOP);
	mpmc_config_init(&cfg, 8, 16);
	mpmc_msgvec_set(&v[0], "b1", 2);
	mpmc_msgvec_set(&v[1], "b2", 2);

	MARK(); fd = mpmc_open(NULL, O_RDWR);
	MARK(); fd2 = mpmc_open(&cfg, O_RDWR);
	MARK(); bad |= mpmc_send(fd2, "s", 1) != 1;
	MARK(); bad |= mpmc_try_send(fd2, "t", 1) != 1;
	MARK(); bad |= mpmc_send_timeout(fd2, "u", 1, 1000) != 1;
	MARK(); bad |= mpmc_send_batch(fd2, v, 2, 0) != 2;
	MARK(); bad |= mpmc_next_len(fd2) != 1;
	MARK(); bad |= mpmc_recv(fd2, buf, sizeof(buf)) != 1;
	MARK(); bad |= mpmc_try_recv(fd2, buf, sizeof(buf)) != 1;
	MARK(); bad |= mpmc_recv_timeout(fd2, buf, sizeof(buf), 1000) != 1;
	mpmc_msgvec_set(&v[0], buf, sizeof(buf));
	mpmc_msgvec_set(&v[1], b2, sizeof(b2));
	MARK(); bad |= mpmc_recv_batch(fd2, v, 2, 0) != 2;
	MARK(); bad |= mpmc_try_recv(fd2, buf, sizeof(buf)) != -EAGAIN;
	/*
	 * The 1.1 calls: only their system calls are checked here (their
	 * results are their own tests'), so that this test keeps checking the
	 * 1.0 calls on a module without priorities or peek. Never blocks: at
	 * least "q" is queued for mpmc_recv_prio().
	 */
	MARK(); (void)mpmc_send_prio(fd2, "p", 1, 3);
	MARK(); (void)mpmc_send_prio_timeout(fd2, "q", 1, 0, 1000);
	MARK(); (void)mpmc_peek(fd2, v, 2, 0);
	MARK(); (void)mpmc_recv_prio(fd2, buf, sizeof(buf), &prio);
	MARK(); (void)mpmc_recv_prio_timeout(fd2, buf, sizeof(buf), &prio, 0);
	MARK(); bad |= mpmc_get_config(fd2, &cfg) != 0;
	MARK(); bad |= mpmc_set_config(fd2, &cfg) != 0;
	MARK(); bad |= mpmc_get_stats(fd2, &st) != 0;
	MARK(); ep = mpmc_new_endpoint(fd2, MPMC_ROLE_RECV, 0);
	MARK(); bad |= mpmc_shutdown(fd2, MPMC_SHUT_WR) != 0;
	MARK(); bad |= mpmc_close(ep) != 0;
	MARK(); bad |= mpmc_close(fd2) != 0;
	MARK(); bad |= mpmc_close(fd) != 0;
	MARK();
	_exit(bad || fd < 0 || fd2 < 0 || ep < 0 ? 11 : 0);
}

TEST(one_syscall_per_call)
{
	struct __ptrace_syscall_info info;
	long seen[NR_EXPECTED][4];
	int nseen[NR_EXPECTED] = { 0 };
	int status, seg = -1;
	unsigned int i;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		traced_child();
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSTOPPED(status));
	ASSERT_EQ(0, ptrace(PTRACE_SETOPTIONS, pid, NULL,
			    PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL));
	for (;;) {
		ASSERT_EQ(0, ptrace(PTRACE_SYSCALL, pid, NULL, NULL));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		if (WIFEXITED(status) || WIFSIGNALED(status))
			break;
		ASSERT_EQ(SIGTRAP | 0x80, WSTOPSIG(status));
		ASSERT_LT(0, ptrace(PTRACE_GET_SYSCALL_INFO, pid,
				    (void *)sizeof(info), &info));
		if (info.op != PTRACE_SYSCALL_INFO_ENTRY)
			continue;
		if (info.entry.nr == SYS_getppid) {
			seg++;
			continue;
		}
		if (seg < 0 || seg >= (int)NR_EXPECTED)
			continue;	/* before the first, after the last call */
		if (nseen[seg] < 4)
			seen[seg][nseen[seg]] = info.entry.nr;
		nseen[seg]++;
	}
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(NR_EXPECTED, seg);
	for (i = 0; i < NR_EXPECTED; i++) {
		EXPECT_EQ(expected_calls[i].n, nseen[i])
			TH_LOG("%s made %d system calls", expected_calls[i].call,
			       nseen[i]);
		if (nseen[i] != expected_calls[i].n)
			continue;
		EXPECT_EQ(expected_calls[i].nr[0], seen[i][0])
			TH_LOG("%s: syscall %ld", expected_calls[i].call,
			       seen[i][0]);
		if (expected_calls[i].n > 1)
			EXPECT_EQ(expected_calls[i].nr[1], seen[i][1]);
	}
}

/* --- liburing helpers -------------------------------------------------- */

FIXTURE(uring)
{
	struct io_uring ring;
	int fd;
};

FIXTURE_SETUP(uring)
{
	int ret = io_uring_queue_init(8, &self->ring, 0);

	if (ret == -ENOSYS || ret == -EPERM)
		SKIP(return, "io_uring not available: %s", strerror(-ret));
	ASSERT_EQ(0, ret);
	self->fd = mpmc_open(NULL, O_RDWR);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(uring)
{
	mpmc_close(self->fd);
	io_uring_queue_exit(&self->ring);
}

/* Wait for one completion; returns its res and user_data. */
static int uring_wait(struct io_uring *ring, __u64 *data)
{
	struct io_uring_cqe *cqe;
	int ret = io_uring_wait_cqe(ring, &cqe);

	if (ret)
		return ret;
	ret = cqe->res;
	*data = cqe->user_data;
	io_uring_cqe_seen(ring, cqe);
	return ret;
}

/* A parked receive completes when a send on the ring enqueues. */
TEST_F(uring, prep_send_recv)
{
	struct io_uring_sqe *sqe;
	char buf[32] = "";
	int i, res[2] = { -1, -1 };
	__u64 data;

	sqe = io_uring_get_sqe(&self->ring);
	ASSERT_NE(NULL, sqe);
	mpmc_prep_recv(sqe, self->fd, buf, sizeof(buf));
	sqe->user_data = 0;
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	EXPECT_EQ(0, mpmc_next_len(self->fd));

	sqe = io_uring_get_sqe(&self->ring);
	ASSERT_NE(NULL, sqe);
	mpmc_prep_send(sqe, self->fd, "via io_uring", 12);
	sqe->user_data = 1;
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	for (i = 0; i < 2; i++) {
		int r = uring_wait(&self->ring, &data);

		ASSERT_GT(2, data);
		res[data] = r;
	}
	EXPECT_EQ(12, res[0]);
	EXPECT_EQ(12, res[1]);
	EXPECT_EQ(0, memcmp(buf, "via io_uring", 12));
}

/* Vectored: several pieces make one message, and one message fills several. */
TEST_F(uring, prep_sendv_recvv)
{
	struct iovec out[3] = {
		{ .iov_base = "one-", .iov_len = 4 },
		{ .iov_base = "two-", .iov_len = 4 },
		{ .iov_base = "three", .iov_len = 5 },
	};
	char a[6], b[20];
	struct iovec in[2] = {
		{ .iov_base = a, .iov_len = sizeof(a) },
		{ .iov_base = b, .iov_len = sizeof(b) },
	};
	struct io_uring_sqe *sqe;
	__u64 data;

	sqe = io_uring_get_sqe(&self->ring);
	ASSERT_NE(NULL, sqe);
	mpmc_prep_sendv(sqe, self->fd, out, 3);
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	EXPECT_EQ(13, uring_wait(&self->ring, &data));
	EXPECT_EQ(13, mpmc_next_len(self->fd));

	sqe = io_uring_get_sqe(&self->ring);
	ASSERT_NE(NULL, sqe);
	mpmc_prep_recvv(sqe, self->fd, in, 2);
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	EXPECT_EQ(13, uring_wait(&self->ring, &data));
	EXPECT_EQ(0, memcmp(a, "one-tw", 6));
	EXPECT_EQ(0, memcmp(b, "o-three", 7));
	EXPECT_EQ(0, mpmc_next_len(self->fd));
}

/* Completions carry the same errors as the calls: EMSGSIZE, EOF, EPIPE. */
TEST_F(uring, prep_errors)
{
	struct io_uring_sqe *sqe;
	char small[2], buf[16];
	__u64 data;

	ASSERT_EQ(5, mpmc_send(self->fd, "12345", 5));
	sqe = io_uring_get_sqe(&self->ring);
	ASSERT_NE(NULL, sqe);
	mpmc_prep_recv(sqe, self->fd, small, sizeof(small));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	EXPECT_EQ(-EMSGSIZE, uring_wait(&self->ring, &data));
	EXPECT_EQ(5, mpmc_next_len(self->fd));

	ASSERT_EQ(0, mpmc_shutdown(self->fd, MPMC_SHUT_WR));
	sqe = io_uring_get_sqe(&self->ring);
	ASSERT_NE(NULL, sqe);
	mpmc_prep_send(sqe, self->fd, "late", 4);
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	EXPECT_EQ(-EPIPE, uring_wait(&self->ring, &data));

	sqe = io_uring_get_sqe(&self->ring);
	ASSERT_NE(NULL, sqe);
	mpmc_prep_recv(sqe, self->fd, buf, sizeof(buf));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	EXPECT_EQ(5, uring_wait(&self->ring, &data));
	sqe = io_uring_get_sqe(&self->ring);
	ASSERT_NE(NULL, sqe);
	mpmc_prep_recv(sqe, self->fd, buf, sizeof(buf));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	EXPECT_EQ(0, uring_wait(&self->ring, &data));
}

TEST_HARNESS_MAIN
