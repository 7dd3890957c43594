// SPDX-License-Identifier: GPL-2.0
/*
 * Message semantics of /dev/mpmc: one write = one message, one read = at
 * most one whole message, FIFO order, EMSGSIZE on both sides, FIONREAD,
 * zero-length calls, bad user pointers (EFAULT with the channel unchanged),
 * payloads on both sides of the size where the kernel stops keeping one
 * inline after its header, ESPIPE, ENOTTY, one channel per open() and
 * sharing through dup() and fork().
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

#define BIG	65536

static char bigbuf[BIG];

static int open_nb(void)
{
	return mpmc_test_open(O_RDWR | O_NONBLOCK);
}

static void noop_handler(int sig)
{
	(void)sig;
}

/*
 * Arm a watchdog for a call that must not block: SIGALRM without SA_RESTART
 * turns an unexpected sleep into EINTR instead of a test timeout.
 */
static void arm_guard(unsigned int sec)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = noop_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm(sec);
}

/* Fill @buf with the pattern of message @seq. */
static size_t make_msg(char *buf, unsigned int seq)
{
	size_t len = 4 + (seq * 37u) % 200;
	size_t i;

	memcpy(buf, &seq, 4);
	for (i = 4; i < len; i++)
		buf[i] = (char)(seq + i);
	return len;
}

static bool check_msg(const char *buf, ssize_t len, unsigned int seq)
{
	char want[256];
	size_t wl = make_msg(want, seq);

	return len == (ssize_t)wl && !memcmp(buf, want, wl);
}

/*
 * Nothing was received from @fd: @msgs messages of @bytes bytes in all are
 * queued, the next @next bytes long.
 */
#define EXPECT_KEPT(fd, next, msgs, bytes) do {				\
	EXPECT_EQ(next, fionread(fd));					\
	EXPECT_STATS(fd, STAT(queued_msgs, msgs),			\
		     STAT(queued_bytes, bytes), STAT(total_received, 0));	\
} while (0)

TEST(round_trip)
{
	char buf[64];
	int fd = open_nb();

	ASSERT_LE(0, fd);
	ASSERT_EQ(5, write(fd, "hello", 5));
	memset(buf, 0, sizeof(buf));
	CHECK_READ(fd, buf, "hello");
	EXPECT_EQ(0, buf[5]);
	EXPECT_STATS(fd, STAT(queued_msgs, 0), STAT(queued_bytes, 0));
	EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));
	close(fd);
}

/* 1000 messages of varying length through a queue that never fully drains. */
TEST(fifo_order)
{
	unsigned int sent = 0, recvd = 0, take;
	char buf[256];
	int fd = open_nb();

	ASSERT_LE(0, fd);
	while (recvd < 1000) {
		/* Fill until the channel is full (or all are sent). */
		while (sent < 1000) {
			size_t len = make_msg(buf, sent);
			ssize_t r = write(fd, buf, len);

			if (r < 0) {
				ASSERT_EQ(EAGAIN, errno);
				ASSERT_EQ(64, sent - recvd);
				break;
			}
			ASSERT_EQ((ssize_t)len, r);
			sent++;
		}
		/* Take a part of what is queued, or all at the end. */
		take = sent < 1000 ? 23 : sent - recvd;
		while (take--) {
			ssize_t r = read(fd, buf, sizeof(buf));

			ASSERT_TRUE(check_msg(buf, r, recvd)) {
				TH_LOG("message %u: got %zd bytes", recvd, r);
			}
			recvd++;
		}
	}
	EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));
	close(fd);
}

TEST(one_message_per_read)
{
	char buf[4096];
	int fd = open_nb();

	ASSERT_LE(0, fd);
	ASSERT_EQ(3, write(fd, "abc", 3));
	ASSERT_EQ(5, write(fd, "defgh", 5));
	memset(buf, 0, sizeof(buf));
	CHECK_READ(fd, buf, "abc");
	EXPECT_EQ(0, buf[3]);
	EXPECT_EQ(5, fionread(fd));
	CHECK_READ(fd, buf, "defgh");
	EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));
	close(fd);
}

TEST(writev_gathers_one_message)
{
	char a[] = "ab", c[] = "cdef", g[] = "ghi";
	struct iovec iov[4] = {
		{ a, 2 }, { bigbuf, 0 }, { c, 4 }, { g, 3 },
	};
	char buf[64];
	int fd = open_nb();

	ASSERT_LE(0, fd);
	ASSERT_EQ(9, writev(fd, iov, 4));
	EXPECT_STATS(fd, STAT(queued_msgs, 1), STAT(queued_bytes, 9));
	EXPECT_EQ(9, fionread(fd));
	CHECK_READ(fd, buf, "abcdefghi");
	close(fd);
}

TEST(readv_scatters_one_message)
{
	char b0[3], b2[4], b3[8], b4[8];
	struct iovec iov[4] = {
		{ b0, 3 }, { bigbuf, 0 }, { b2, 4 }, { b3, 8 },
	};
	struct iovec small[2] = { { b3, 3 }, { b4, 2 } };
	int fd = open_nb();

	ASSERT_LE(0, fd);
	ASSERT_EQ(10, write(fd, "0123456789", 10));
	ASSERT_EQ(2, write(fd, "XY", 2));

	/* A vector too small in total is EMSGSIZE; the message stays. */
	EXPECT_ERRNO(EMSGSIZE, readv(fd, small, 2));
	EXPECT_EQ(10, fionread(fd));

	memset(b3, 0, sizeof(b3));
	ASSERT_EQ(10, readv(fd, iov, 4));
	EXPECT_EQ(0, memcmp(b0, "012", 3));
	EXPECT_EQ(0, memcmp(b2, "3456", 4));
	EXPECT_EQ(0, memcmp(b3, "789", 3));
	EXPECT_EQ(0, b3[3]);
	EXPECT_STATS(fd, STAT(queued_msgs, 1), STAT(queued_bytes, 2));

	/* The second message is not merged into the first readv. */
	memset(b3, 0, sizeof(b3));
	ASSERT_EQ(2, readv(fd, small, 2));
	EXPECT_EQ(0, memcmp(b3, "XY", 2));
	close(fd);
}

TEST(emsgsize_keeps_message)
{
	char msg[100], buf[128];
	int fd = open_nb();

	ASSERT_LE(0, fd);
	memset(msg, 'm', sizeof(msg));
	msg[99] = 'z';
	ASSERT_EQ(100, write(fd, msg, 100));
	ASSERT_EQ(3, write(fd, "two", 3));

	EXPECT_ERRNO(EMSGSIZE, read(fd, buf, 99));
	EXPECT_ERRNO(EMSGSIZE, read(fd, buf, 1));
	EXPECT_KEPT(fd, 100, 2, 103);

	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(100, read(fd, buf, 100));
	EXPECT_EQ(0, memcmp(buf, msg, 100));
	CHECK_READ(fd, buf, "two");
	close(fd);
}

TEST(write_too_long)
{
	struct mpmc_config cfg = { .capacity = 64, .max_msg_size = 16 };
	int fd = open_nb();

	ASSERT_LE(0, fd);
	EXPECT_ERRNO(EMSGSIZE, write(fd, bigbuf, 4097));
	EXPECT_ERRNO(EMSGSIZE, write(fd, bigbuf, BIG));
	EXPECT_EQ(0, fionread(fd));
	EXPECT_STATS(fd, STAT(queued_msgs, 0), STAT(queued_bytes, 0),
		     STAT(total_sent, 0));

	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg));
	EXPECT_ERRNO(EMSGSIZE, write(fd, bigbuf, 17));
	EXPECT_ERRNO(EMSGSIZE, write(fd, bigbuf, 4096));
	EXPECT_STATS(fd, STAT(queued_msgs, 0), STAT(total_sent, 0));
	close(fd);
}

TEST(write_exactly_max)
{
	struct mpmc_config cfg = { .capacity = 64, .max_msg_size = 16 };
	static char out[4096];
	int fd = open_nb();
	int i;

	ASSERT_LE(0, fd);
	for (i = 0; i < 4096; i++)
		bigbuf[i] = (char)(i * 7);
	ASSERT_EQ(4096, write(fd, bigbuf, 4096));
	EXPECT_EQ(4096, fionread(fd));
	ASSERT_EQ(4096, read(fd, out, sizeof(out)));
	EXPECT_EQ(0, memcmp(out, bigbuf, 4096));

	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg));
	ASSERT_EQ(16, write(fd, bigbuf, 16));
	ASSERT_EQ(16, read(fd, out, 16));
	EXPECT_EQ(0, memcmp(out, bigbuf, 16));
	close(fd);
}

TEST(fionread_next_length)
{
	char buf[64];
	int fd = open_nb();

	ASSERT_LE(0, fd);
	EXPECT_EQ(0, fionread(fd));
	ASSERT_EQ(7, write(fd, "seven!!", 7));
	EXPECT_EQ(7, fionread(fd));
	ASSERT_EQ(3, write(fd, "two", 3));
	/* Still the length of the head, not of the queue. */
	EXPECT_EQ(7, fionread(fd));
	ASSERT_EQ(7, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(3, fionread(fd));
	ASSERT_EQ(3, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, fionread(fd));
	close(fd);
}

TEST(zero_write)
{
	struct iovec iov[2] = { { bigbuf, 0 }, { bigbuf, 0 } };
	struct mpmc_config cfg = { .capacity = 1, .max_msg_size = 16 };
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	EXPECT_EQ(0, write(fd, bigbuf, 0));
	EXPECT_EQ(0, write(fd, NULL, 0));
	EXPECT_EQ(0, writev(fd, iov, 2));
	EXPECT_EQ(0, fionread(fd));
	EXPECT_STATS(fd, STAT(queued_msgs, 0), STAT(total_sent, 0));

	/* A full channel: a 0-byte write still returns 0 and does not block. */
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg));
	ASSERT_EQ(1, write(fd, "x", 1));
	arm_guard(3);
	EXPECT_EQ(0, write(fd, bigbuf, 0));
	alarm(0);
	EXPECT_STATS(fd, STAT(queued_msgs, 1), STAT(total_sent, 1));
	EXPECT_EQ(1, fionread(fd));
	close(fd);
}

TEST(zero_write_after_shutdown)
{
	static const int how[] = { MPMC_SHUT_WR, MPMC_SHUT_RD, MPMC_SHUT_RDWR };
	unsigned int i;

	for (i = 0; i < 3; i++) {
		int fd = mpmc_test_open(O_RDWR);

		ASSERT_LE(0, fd);
		ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, how[i]));
		/* The shutdown is in effect for real writes... */
		EXPECT_ERRNO(EPIPE, write(fd, "x", 1));
		/* ...but a 0-byte write returns 0. */
		arm_guard(3);
		EXPECT_EQ(0, write(fd, bigbuf, 0));
		alarm(0);
		EXPECT_STATS(fd, STAT(queued_msgs, 0), STAT(total_sent, 0));
		close(fd);
	}
}

TEST(zero_read)
{
	char buf[8];
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	/* Empty, blocking fd: a 0-byte read returns 0 at once. */
	arm_guard(3);
	EXPECT_EQ(0, read(fd, buf, 0));
	alarm(0);

	ASSERT_EQ(3, write(fd, "abc", 3));
	EXPECT_EQ(0, read(fd, buf, 0));
	EXPECT_EQ(0, read(fd, NULL, 0));
	EXPECT_KEPT(fd, 3, 1, 3);
	CHECK_READ(fd, buf, "abc");
	close(fd);
}

TEST(efault_write)
{
	char buf[32];
	void *gone = unmapped_page();
	char *two;
	int fd = open_nb();

	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, gone);
	EXPECT_ERRNO(EFAULT, write(fd, BAD_PTR, 10));
	EXPECT_ERRNO(EFAULT, write(fd, gone, 10));

	/* Half of the buffer readable, the rest unmapped: still nothing. */
	two = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, two);
	ASSERT_EQ(0, munmap(two + 4096, 4096));
	memset(two, 'h', 4096);
	EXPECT_ERRNO(EFAULT, write(fd, two + 4096 - 50, 100));

	EXPECT_STATS(fd, STAT(queued_msgs, 0), STAT(queued_bytes, 0),
		     STAT(total_sent, 0));
	EXPECT_EQ(0, fionread(fd));

	/* The channel still works and holds only the good message. */
	ASSERT_EQ(4, write(fd, "good", 4));
	CHECK_READ(fd, buf, "good");
	EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));
	munmap(two, 4096);
	close(fd);
}

TEST(efault_writev)
{
	struct iovec iov[2] = { { bigbuf, 8 }, { BAD_PTR, 8 } };
	int fd = open_nb();

	ASSERT_LE(0, fd);
	EXPECT_ERRNO(EFAULT, writev(fd, iov, 2));
	EXPECT_STATS(fd, STAT(queued_msgs, 0), STAT(queued_bytes, 0),
		     STAT(total_sent, 0));
	close(fd);
}

TEST(efault_read_keeps_head)
{
	char buf[32];
	void *gone = unmapped_page();
	int fd = open_nb();

	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, gone);
	ASSERT_EQ(5, write(fd, "first", 5));
	ASSERT_EQ(6, write(fd, "second", 6));

	EXPECT_ERRNO(EFAULT, read(fd, BAD_PTR, 4096));
	EXPECT_ERRNO(EFAULT, read(fd, gone, 4096));

	EXPECT_KEPT(fd, 5, 2, 11);

	ASSERT_EQ(5, write(fd, "third", 5));
	memset(buf, 0, sizeof(buf));
	CHECK_READ(fd, buf, "first");
	CHECK_READ(fd, buf, "second");
	CHECK_READ(fd, buf, "third");
	EXPECT_STATS(fd, STAT(total_received, 3), STAT(queued_msgs, 0));
	close(fd);
}

/* The copy-out succeeds for the first half and faults on the second. */
TEST(efault_read_partial)
{
	char msg[100], buf[128];
	char *two;
	int fd = open_nb();
	int i;

	ASSERT_LE(0, fd);
	two = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, two);
	ASSERT_EQ(0, munmap(two + 4096, 4096));

	for (i = 0; i < 100; i++)
		msg[i] = (char)(i + 1);
	ASSERT_EQ(100, write(fd, msg, 100));
	ASSERT_EQ(4, write(fd, "next", 4));

	EXPECT_ERRNO(EFAULT, read(fd, two + 4096 - 50, 100));
	EXPECT_KEPT(fd, 100, 2, 104);

	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(100, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, msg, 100));
	CHECK_READ(fd, buf, "next");
	munmap(two, 4096);
	close(fd);
}

/* A faulting read on a full channel must not lose the message either. */
TEST(efault_read_full_channel)
{
	struct mpmc_config cfg = { .capacity = 2, .max_msg_size = 16 };
	char buf[16];
	int fd = open_nb();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg));
	ASSERT_EQ(1, write(fd, "1", 1));
	ASSERT_EQ(1, write(fd, "2", 1));
	EXPECT_ERRNO(EFAULT, read(fd, BAD_PTR, 16));
	/* No room was freed by the failed read. */
	EXPECT_ERRNO(EAGAIN, write(fd, "3", 1));
	CHECK_READ(fd, buf, "1");
	CHECK_READ(fd, buf, "2");
	close(fd);
}

/*
 * Sizes on both sides of where a payload stops sharing one allocation with
 * its header (PAGE_SIZE less the 32-byte header: beyond, it is allocated
 * apart), mixed so that both kinds alternate, come back intact through
 * write/read and MPMC_IOC_SEND/RECV, and a faulting copy-out (read or
 * batch) puts a message allocated apart back intact.
 */
TEST(sizes_around_inline_limit)
{
	static const __u32 sizes[] = {
		1, 4063, 4064, 4065, 4066, 4096, 100, 4097, 8192, 65535, BIG, 4000,
	};
	enum { N = ARRAY_SIZE(sizes) };
	static char in[N][BIG], out[N][BIG];
	struct mpmc_config cfg = { .capacity = N, .max_msg_size = BIG };
	struct mpmc_msgvec vec[N];
	struct mpmc_batch b = { .vec = (uintptr_t)vec, .count = N };
	unsigned int i, j;
	char *two;
	int fd = open_nb();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg));
	for (i = 0; i < N; i++)
		for (j = 0; j < sizes[i]; j++)
			in[i][j] = (char)(j * 31 + (j >> 8) + i * 7);

	for (i = 0; i < N; i++)
		ASSERT_EQ((ssize_t)sizes[i], write(fd, in[i], sizes[i]));
	for (i = 0; i < N; i++) {
		ASSERT_EQ((ssize_t)sizes[i], read(fd, out[i], BIG));
		EXPECT_EQ(0, memcmp(out[i], in[i], sizes[i])) {
			TH_LOG("read: message %u (%u bytes) differs", i, sizes[i]);
		}
	}

	for (i = 0; i < N; i++)
		vec[i] = (struct mpmc_msgvec){ (uintptr_t)in[i], sizes[i], 0 };
	ASSERT_EQ(N, ioctl(fd, MPMC_IOC_SEND, &b));
	memset(out, 0, sizeof(out));
	for (i = 0; i < N; i++)
		vec[i] = (struct mpmc_msgvec){ (uintptr_t)out[i], BIG, 0 };
	ASSERT_EQ(N, ioctl(fd, MPMC_IOC_RECV, &b));
	for (i = 0; i < N; i++) {
		EXPECT_EQ(sizes[i], vec[i].len);
		EXPECT_EQ(0, memcmp(out[i], in[i], sizes[i])) {
			TH_LOG("batch: message %u (%u bytes) differs", i, sizes[i]);
		}
	}

	/* The second half of the destination is not mapped. */
	two = mmap(NULL, 2 * BIG, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, two);
	ASSERT_EQ(0, munmap(two + BIG, BIG));
	ASSERT_EQ(BIG, write(fd, in[10], BIG));
	EXPECT_ERRNO(EFAULT, read(fd, two + BIG / 2, BIG));
	EXPECT_EQ(BIG, fionread(fd));
	ASSERT_EQ(4096, write(fd, in[5], 4096));
	vec[0] = (struct mpmc_msgvec){ (uintptr_t)out[0], BIG, 0 };
	vec[1] = (struct mpmc_msgvec){ (uintptr_t)(two + BIG - 2048), BIG, 0 };
	b.count = 2;
	/* The first is received, the second faults and is put back. */
	ASSERT_EQ(1, ioctl(fd, MPMC_IOC_RECV, &b));
	EXPECT_EQ((__u32)BIG, vec[0].len);
	EXPECT_EQ(0, memcmp(out[0], in[10], BIG));
	EXPECT_EQ(4096, fionread(fd));
	ASSERT_EQ(4096, read(fd, out[1], BIG));
	EXPECT_EQ(0, memcmp(out[1], in[5], 4096));
	munmap(two, BIG);
	close(fd);
}

TEST(espipe)
{
	char buf[16];
	int fd = open_nb();

	ASSERT_LE(0, fd);
	EXPECT_ERRNO(ESPIPE, lseek(fd, 0, SEEK_SET));
	EXPECT_ERRNO(ESPIPE, lseek(fd, 0, SEEK_CUR));
	EXPECT_ERRNO(ESPIPE, lseek(fd, 0, SEEK_END));

	EXPECT_ERRNO(ESPIPE, pwrite(fd, "abc", 3, 0));
	EXPECT_STATS(fd, STAT(queued_msgs, 0), STAT(total_sent, 0));

	ASSERT_EQ(3, write(fd, "abc", 3));
	EXPECT_ERRNO(ESPIPE, pread(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(3, fionread(fd));
	EXPECT_STATS(fd, STAT(queued_msgs, 1), STAT(total_received, 0));
	close(fd);
}

TEST(unknown_ioctl)
{
	struct mpmc_config cfg;
	struct termios tio;
	int fd = open_nb();

	ASSERT_LE(0, fd);
	ASSERT_EQ(3, write(fd, "abc", 3));
	EXPECT_ERRNO(ENOTTY, ioctl(fd, _IO(MPMC_IOC_MAGIC, 99)));
	memset(&cfg, 0, sizeof(cfg));
	EXPECT_EQ(-1, ioctl(fd, _IOWR(MPMC_IOC_MAGIC, 99, struct mpmc_config),
			    &cfg));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_ERRNO(ENOTTY, ioctl(fd, _IOR(0xB6, 1, struct mpmc_config), &cfg));
	EXPECT_ERRNO(ENOTTY, ioctl(fd, TCGETS, &tio));
	EXPECT_EQ(0, isatty(fd));
	/* Nothing changed. */
	EXPECT_EQ(3, fionread(fd));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(64U, cfg.capacity);
	EXPECT_EQ(4096U, cfg.max_msg_size);
	close(fd);
}

TEST(each_open_is_a_new_channel)
{
	struct mpmc_stats sa, sb;
	char buf[16];
	int a = open_nb(), b = open_nb();

	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ASSERT_EQ(3, write(a, "AAA", 3));
	EXPECT_EQ(0, fionread(b));
	EXPECT_ERRNO(EAGAIN, read(b, buf, sizeof(buf)));
	ASSERT_EQ(2, write(b, "BB", 2));
	CHECK_READ(b, buf, "BB");
	MPMC_STATS(a, &sa);
	MPMC_STATS(b, &sb);
	EXPECT_EQ(1U, sa.queued_msgs);
	EXPECT_EQ(1U, sa.total_sent);
	EXPECT_EQ(0U, sb.queued_msgs);
	EXPECT_EQ(1U, sb.total_received);
	CHECK_READ(a, buf, "AAA");
	close(a);
	close(b);
}

TEST(shared_by_dup)
{
	char buf[16];
	int fd = open_nb();
	int fd2;

	ASSERT_LE(0, fd);
	fd2 = dup(fd);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(4, write(fd, "ping", 4));
	EXPECT_EQ(4, fionread(fd2));
	CHECK_READ(fd2, buf, "ping");
	ASSERT_EQ(4, write(fd2, "pong", 4));
	CHECK_READ(fd, buf, "pong");
	/* Closing one descriptor leaves the channel to the other. */
	close(fd);
	ASSERT_EQ(3, write(fd2, "end", 3));
	CHECK_READ(fd2, buf, "end");
	close(fd2);
}

TEST(shared_by_fork)
{
	char buf[16];
	int status, i;
	pid_t pid;
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* Let the parent block in read() first. */
		usleep(100000);
		for (i = 0; i < 3; i++) {
			char m[8];

			snprintf(m, sizeof(m), "msg%d", i);
			if (write(fd, m, 4) != 4)
				_exit(1);
		}
		_exit(0);
	}
	arm_guard(10);
	for (i = 0; i < 3; i++) {
		char want[8];

		snprintf(want, sizeof(want), "msg%d", i);
		ASSERT_EQ(4, read(fd, buf, sizeof(buf)));
		EXPECT_EQ(0, memcmp(buf, want, 4));
	}
	alarm(0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));

	/* And the other way: the parent writes, a child reads. */
	ASSERT_EQ(5, write(fd, "hello", 5));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		alarm(10);
		if (read(fd, buf, sizeof(buf)) != 5 || memcmp(buf, "hello", 5))
			_exit(1);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* The children's exits did not shut the channel down. */
	EXPECT_STATS(fd, STAT_TOTALS(0, 4, 4), STAT(shutdown, 0),
		     STAT(send_files, 1), STAT(recv_files, 1));
	close(fd);
}

TEST_HARNESS_MAIN
