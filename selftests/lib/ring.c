// SPDX-License-Identifier: GPL-2.0
/*
 * libmpmc ring mode (LIBMPMC_1.2): one test per promise of the ring calls.
 * Results and errnos are those of the plain calls on the fd; the ring and
 * the system calls share one FIFO; the fast path makes no system call
 * (checked with a seccomp filter that fails read, write and ioctl); the
 * doorbell wakes blocked callers of the other side; a forked child uses
 * the ring with a mapper id of its own.
 *
 * Built by selftests/Makefile like selftests/lib/libmpmc.c: -I lib/include
 * and build/lib/libmpmc.a.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <mpmc.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

/* errno value no library call can produce: proves errno is untouched. */
#define CANARY		EXDEV
/* What a system call denied by deny_syscalls() fails with. */
#define DENIED		ENOTRECOVERABLE

#define CAP		4
#define MSG_MAX		64

/* A ring channel of @cap slots of @size bytes, O_RDWR. */
static int ring_chan(uint32_t cap, uint32_t size)
{
	struct mpmc_config cfg;

	mpmc_config_init_flags(&cfg, cap, size, MPMC_CONFIG_RING);
	return mpmc_open(&cfg, O_RDWR);
}

/* A line of /proc/self/maps maps a channel (/dev/mpmc, or an endpoint). */
static bool is_mpmc_map(const char *line)
{
	return strstr(line, " " MPMC_DEV "\n") || strstr(line, "[mpmc]");
}

/* Mappings of /dev/mpmc channels in this process (/proc/self/maps). */
static int nr_mpmc_maps(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += is_mpmc_map(line);
	fclose(f);
	return n;
}

/* Start of this process's ring-region mapping of a channel (maps), or 0. */
static uintptr_t ring_region_addr(void)
{
	unsigned long start, end, off;
	char line[512], perms[8];
	FILE *f = fopen("/proc/self/maps", "r");
	uintptr_t addr = 0;

	if (!f)
		return 0;
	while (!addr && fgets(line, sizeof(line), f)) {
		if (!is_mpmc_map(line))
			continue;
		if (sscanf(line, "%lx-%lx %7s %lx", &start, &end, perms, &off) == 4 &&
		    off == MPMC_RING_OFF_RING)
			addr = start;
	}
	fclose(f);
	return addr;
}

/* MPMC_IOC_RING_INFO's mapper id for the mapping at @addr, or -errno. */
static long ring_id(int fd, uintptr_t addr)
{
	struct mpmc_ring_info info;

	memset(&info, 0, sizeof(info));
	info.addr = addr;
	if (ioctl(fd, MPMC_IOC_RING_INFO, &info))
		return -errno;
	return info.mapper_id;
}

/*
 * From now on read(2) and write(2) fail with DENIED, and so does ioctl(2)
 * except MPMC_IOC_RING_INFO when @allow_info: what the ring calls do
 * without a system call still works, nothing else does. For a child
 * process (the filter cannot be removed).
 */
static int deny_syscalls(int allow_info)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_read, 4, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_write, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ioctl, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
			 allow_info ? MPMC_IOC_RING_INFO : 0xffffffffU, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | DENIED),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = ARRAY_SIZE(f),
		.filter = f,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* Wait for child @pid; its exit status, or -1 if it did not exit. */
static int child_status(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* A ring call run in a thread. */
struct rcall {
	pthread_t thread;
	struct mpmc_ring *r;
	char buf[MSG_MAX];
	size_t len;
	ssize_t ret;
	int err_after;
};

static void *ring_send_thread(void *arg)
{
	struct rcall *c = arg;

	errno = CANARY;
	c->ret = mpmc_ring_send(c->r, c->buf, c->len, 0);
	c->err_after = errno;
	return NULL;
}

static void *ring_recv_thread(void *arg)
{
	struct rcall *c = arg;

	errno = CANARY;
	c->ret = mpmc_ring_recv(c->r, c->buf, c->len, 0);
	c->err_after = errno;
	return NULL;
}

/* A channel that is not a ring: -ENODEV, nothing mapped, errno kept. */
TEST(map_not_ring)
{
	struct mpmc_ring *r = (struct mpmc_ring *)&r;
	int fd = mpmc_open(NULL, O_RDWR);
	int maps = nr_mpmc_maps();

	ASSERT_LE(0, fd);
	errno = CANARY;
	EXPECT_EQ(-ENODEV, mpmc_ring_map(fd, &r));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ((struct mpmc_ring *)&r, r);	/* untouched */
	EXPECT_EQ(maps, nr_mpmc_maps());
	EXPECT_EQ(-EBADF, mpmc_ring_map(-1, &r));
	EXPECT_EQ(0, mpmc_close(fd));
}

/*
 * map and unmap: both regions mapped, the fd kept, then nothing left
 * mapped and the fd still open. A failed map (a send-only endpoint may
 * not map) leaves nothing mapped either.
 */
TEST(map_unmap)
{
	struct mpmc_ring *r = NULL, *r2 = NULL;
	int fd = ring_chan(CAP, MSG_MAX);
	int maps = nr_mpmc_maps();
	int ep;

	ASSERT_LE(0, fd);
	errno = CANARY;
	ASSERT_EQ(0, mpmc_ring_map(fd, &r));
	EXPECT_EQ(CANARY, errno);
	ASSERT_NE(NULL, r);
	EXPECT_EQ(fd, mpmc_ring_fd(r));
	EXPECT_EQ(maps + 2, nr_mpmc_maps());
	ASSERT_EQ(0, mpmc_ring_map(fd, &r2));
	EXPECT_NE(r, r2);
	EXPECT_EQ(maps + 4, nr_mpmc_maps());
	mpmc_ring_unmap(r2);
	mpmc_ring_unmap(r);
	mpmc_ring_unmap(NULL);
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(maps, nr_mpmc_maps());
	EXPECT_EQ(1, mpmc_send(fd, "x", 1));	/* the fd stays open */

	ep = mpmc_new_endpoint(fd, MPMC_ROLE_SEND, 0);
	ASSERT_LE(0, ep);
	r = NULL;
	EXPECT_EQ(-EACCES, mpmc_ring_map(ep, &r));
	EXPECT_EQ(NULL, r);
	EXPECT_EQ(maps, nr_mpmc_maps());
	EXPECT_EQ(0, mpmc_close(ep));
	EXPECT_EQ(0, mpmc_close(fd));
}

/* Exact bytes both ways through the ring, every length 1..max. */
TEST(send_recv_roundtrip)
{
	unsigned char msg[MSG_MAX], buf[MSG_MAX + 8];
	struct mpmc_ring *r;
	size_t len, i;
	int fd = ring_chan(CAP, MSG_MAX);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mpmc_ring_map(fd, &r));
	for (len = 1; len <= MSG_MAX; len++) {
		for (i = 0; i < len; i++)
			msg[i] = (unsigned char)(len * 7 + i);
		errno = CANARY;
		ASSERT_EQ((ssize_t)len, mpmc_ring_send(r, msg, len, 0));
		memset(buf, 0xaa, sizeof(buf));
		ASSERT_EQ((ssize_t)len, mpmc_ring_recv(r, buf, sizeof(buf), 0));
		EXPECT_EQ(CANARY, errno);
		EXPECT_EQ(0, memcmp(msg, buf, len));
		EXPECT_EQ(0xaa, buf[len]);	/* nothing past the message */
	}
	/* Zero bytes: 0, nothing moved, as write/read of 0 bytes. */
	EXPECT_EQ(0, mpmc_ring_send(r, msg, 0, 0));
	EXPECT_EQ(0, mpmc_ring_recv(r, buf, 0, 0));
	EXPECT_EQ(-EAGAIN, mpmc_ring_recv(r, buf, sizeof(buf),
					  MPMC_RING_NONBLOCK));
	/* Unknown flags. */
	EXPECT_EQ(-EINVAL, mpmc_ring_send(r, msg, 1, 2));
	EXPECT_EQ(-EINVAL, mpmc_ring_recv(r, buf, sizeof(buf), 2));
	mpmc_ring_unmap(r);
	EXPECT_EQ(0, mpmc_close(fd));
}

/*
 * The fast path makes no system call: a child that mapped the ring, then
 * lost read, write and ioctl, still sends and receives single messages
 * and batches, around the ring more than once.
 */
TEST(fast_path_no_syscall)
{
	struct mpmc_msgvec v[CAP];
	char bufs[CAP][MSG_MAX], buf[MSG_MAX];
	int fd = ring_chan(CAP, MSG_MAX);
	pid_t pid;

	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct mpmc_ring *r;
		int i, j;

		if (mpmc_ring_map(fd, &r))
			_exit(10);
		if (deny_syscalls(0))
			_exit(11);
		if (write(fd, "x", 1) != -1 || errno != DENIED)
			_exit(12);	/* the filter works */
		for (i = 0; i < 3 * CAP; i++) {
			if (mpmc_ring_send(r, "ping", 4, 0) != 4)
				_exit(13);
			if (mpmc_ring_send(r, "pong!", 5, MPMC_RING_NONBLOCK) != 5)
				_exit(14);
			if (mpmc_ring_recv(r, buf, sizeof(buf), 0) != 4 ||
			    memcmp(buf, "ping", 4))
				_exit(15);
			if (mpmc_ring_recv(r, buf, sizeof(buf),
					   MPMC_RING_NONBLOCK) != 5 ||
			    memcmp(buf, "pong!", 5))
				_exit(16);
		}
		for (i = 0; i < 3; i++) {
			for (j = 0; j < CAP; j++)
				mpmc_msgvec_set(&v[j], "batch", 5);
			if (mpmc_ring_send_batch(r, v, CAP, -1) != CAP)
				_exit(17);
			for (j = 0; j < CAP; j++)
				mpmc_msgvec_set(&v[j], bufs[j], MSG_MAX);
			if (mpmc_ring_recv_batch(r, v, CAP, 0) != CAP)
				_exit(18);
			for (j = 0; j < CAP; j++)
				if (v[j].len != 5 || memcmp(bufs[j], "batch", 5))
					_exit(19);
		}
		/* Empty: the ring cannot answer, the denied syscall does. */
		if (mpmc_ring_recv(r, buf, sizeof(buf), MPMC_RING_NONBLOCK) !=
		    -DENIED)
			_exit(20);
		_exit(0);
	}
	EXPECT_EQ(0, child_status(pid));
	EXPECT_EQ(0, mpmc_close(fd));
}

/*
 * The ring and the system calls are one channel in one FIFO order: ring
 * sends are read by read(2), write(2)s are received from the ring.
 */
TEST(ring_and_syscalls_interleave)
{
	struct mpmc_ring *r;
	char buf[MSG_MAX];
	int fd = ring_chan(CAP, MSG_MAX);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mpmc_ring_map(fd, &r));
	ASSERT_EQ(2, mpmc_ring_send(r, "r1", 2, 0));
	ASSERT_EQ(2, write(fd, "w2", 2));
	ASSERT_EQ(2, mpmc_ring_send(r, "r3", 2, MPMC_RING_NONBLOCK));
	CHECK_READ(fd, buf, "r1");
	CHECK_READ(fd, buf, "w2");
	CHECK_READ(fd, buf, "r3");

	ASSERT_EQ(2, write(fd, "w4", 2));
	ASSERT_EQ(2, mpmc_ring_send(r, "r5", 2, 0));
	ASSERT_EQ(2, mpmc_send(fd, "w6", 2));
	ASSERT_EQ(2, mpmc_ring_recv(r, buf, sizeof(buf), 0));
	EXPECT_EQ(0, memcmp(buf, "w4", 2));
	ASSERT_EQ(2, mpmc_ring_recv(r, buf, sizeof(buf), MPMC_RING_NONBLOCK));
	EXPECT_EQ(0, memcmp(buf, "r5", 2));
	ASSERT_EQ(2, mpmc_ring_recv(r, buf, sizeof(buf), 0));
	EXPECT_EQ(0, memcmp(buf, "w6", 2));
	EXPECT_EQ(0, fionread(fd));
	mpmc_ring_unmap(r);
	EXPECT_EQ(0, mpmc_close(fd));
}

/*
 * EMSGSIZE without loss: a send over max_msg_size sends nothing; a
 * receive buffer smaller than the head message leaves it queued.
 */
TEST(emsgsize)
{
	char big[MSG_MAX + 1], buf[MSG_MAX];
	struct mpmc_msgvec v;
	struct mpmc_stats st;
	struct mpmc_ring *r;
	int fd = ring_chan(CAP, MSG_MAX);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mpmc_ring_map(fd, &r));
	memset(big, 'b', sizeof(big));
	errno = CANARY;
	EXPECT_EQ(-EMSGSIZE, mpmc_ring_send(r, big, sizeof(big), 0));
	EXPECT_EQ(-EMSGSIZE, mpmc_ring_send(r, big, sizeof(big),
					    MPMC_RING_NONBLOCK));
	EXPECT_EQ(CANARY, errno);
	mpmc_msgvec_set(&v, big, sizeof(big));
	EXPECT_EQ(-EMSGSIZE, mpmc_ring_send_batch(r, &v, 1, 0));
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(0, st.queued_msgs);

	ASSERT_EQ(10, mpmc_ring_send(r, "0123456789", 10, 0));
	EXPECT_EQ(-EMSGSIZE, mpmc_ring_recv(r, buf, 9, 0));
	EXPECT_EQ(-EMSGSIZE, mpmc_ring_recv(r, buf, 9, MPMC_RING_NONBLOCK));
	EXPECT_EQ(CANARY, errno);
	mpmc_msgvec_set(&v, buf, 9);
	EXPECT_EQ(-EMSGSIZE, mpmc_ring_recv_batch(r, &v, 1, 0));
	ASSERT_EQ(0, mpmc_get_stats(fd, &st));
	EXPECT_EQ(1, st.queued_msgs);
	EXPECT_EQ(10, mpmc_next_len(fd));
	EXPECT_EQ(10, mpmc_ring_recv(r, buf, 10, 0));
	EXPECT_EQ(0, memcmp(buf, "0123456789", 10));
	mpmc_ring_unmap(r);
	EXPECT_EQ(0, mpmc_close(fd));
}

/* MPMC_RING_NONBLOCK: -EAGAIN on an empty and on a full ring. */
TEST(nonblock_empty_full)
{
	struct mpmc_ring *r;
	char buf[MSG_MAX];
	int fd = ring_chan(CAP, MSG_MAX);
	int i;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mpmc_ring_map(fd, &r));
	errno = CANARY;
	EXPECT_EQ(-EAGAIN, mpmc_ring_recv(r, buf, sizeof(buf),
					  MPMC_RING_NONBLOCK));
	for (i = 0; i < CAP; i++)
		ASSERT_EQ(1, mpmc_ring_send(r, "f", 1, MPMC_RING_NONBLOCK));
	EXPECT_EQ(-EAGAIN, mpmc_ring_send(r, "g", 1, MPMC_RING_NONBLOCK));
	EXPECT_EQ(CANARY, errno);
	EXPECT_EQ(CAP, stats_of(fd).queued_msgs);
	for (i = 0; i < CAP; i++)
		ASSERT_EQ(1, mpmc_ring_recv(r, buf, sizeof(buf),
					    MPMC_RING_NONBLOCK));
	EXPECT_EQ(-EAGAIN, mpmc_ring_recv(r, buf, sizeof(buf),
					  MPMC_RING_NONBLOCK));
	mpmc_ring_unmap(r);
	EXPECT_EQ(0, mpmc_close(fd));
}

/* A receiver blocked in the kernel is woken by a ring send (doorbell). */
TEST(blocked_recv_woken_by_ring_send)
{
	struct rcall c = { 0 };
	struct mpmc_ring *r;
	long long t0;
	int fd = ring_chan(CAP, MSG_MAX);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mpmc_ring_map(fd, &r));
	c.r = r;
	c.len = sizeof(c.buf);
	ASSERT_EQ(0, pthread_create(&c.thread, NULL, ring_recv_thread, &c));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	t0 = now_ms();
	ASSERT_EQ(4, mpmc_ring_send(r, "ring", 4, 0));
	ASSERT_EQ(0, join_within(c.thread));
	EXPECT_GT(5000, now_ms() - t0);
	EXPECT_EQ(4, c.ret);
	EXPECT_EQ(0, memcmp(c.buf, "ring", 4));
	EXPECT_EQ(CANARY, c.err_after);
	EXPECT_EQ(0, stats_of(fd).blocked_receivers);
	mpmc_ring_unmap(r);
	EXPECT_EQ(0, mpmc_close(fd));
}

/* A sender blocked on a full ring is woken by a ring receive. */
TEST(blocked_send_woken_by_ring_recv)
{
	struct rcall c = { 0 };
	struct mpmc_ring *r;
	char buf[MSG_MAX];
	long long t0;
	int fd = ring_chan(CAP, MSG_MAX);
	int i;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mpmc_ring_map(fd, &r));
	for (i = 0; i < CAP; i++) {
		buf[0] = (char)('0' + i);
		ASSERT_EQ(1, mpmc_ring_send(r, buf, 1, 0));
	}
	c.r = r;
	memcpy(c.buf, "last", 4);
	c.len = 4;
	ASSERT_EQ(0, pthread_create(&c.thread, NULL, ring_send_thread, &c));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	t0 = now_ms();
	ASSERT_EQ(1, mpmc_ring_recv(r, buf, sizeof(buf), 0));
	EXPECT_EQ('0', buf[0]);
	ASSERT_EQ(0, join_within(c.thread));
	EXPECT_GT(5000, now_ms() - t0);
	EXPECT_EQ(4, c.ret);
	EXPECT_EQ(CANARY, c.err_after);
	for (i = 1; i < CAP; i++) {
		ASSERT_EQ(1, mpmc_ring_recv(r, buf, sizeof(buf), 0));
		EXPECT_EQ('0' + i, buf[0]);
	}
	ASSERT_EQ(4, mpmc_ring_recv(r, buf, sizeof(buf), 0));
	EXPECT_EQ(0, memcmp(buf, "last", 4));
	mpmc_ring_unmap(r);
	EXPECT_EQ(0, mpmc_close(fd));
}

/* After shutdown(SHUT_WR): the queued messages, then 0; sends: -EPIPE. */
TEST(eof_after_shutdown)
{
	struct mpmc_msgvec v;
	struct mpmc_ring *r;
	char buf[MSG_MAX];
	int fd = ring_chan(CAP, MSG_MAX);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mpmc_ring_map(fd, &r));
	ASSERT_EQ(1, mpmc_ring_send(r, "a", 1, 0));
	ASSERT_EQ(1, mpmc_ring_send(r, "b", 1, 0));
	ASSERT_EQ(0, mpmc_shutdown(fd, MPMC_SHUT_WR));
	errno = CANARY;
	EXPECT_EQ(-EPIPE, mpmc_ring_send(r, "c", 1, 0));
	EXPECT_EQ(-EPIPE, mpmc_ring_send(r, "c", 1, MPMC_RING_NONBLOCK));
	mpmc_msgvec_set(&v, "c", 1);
	EXPECT_EQ(-EPIPE, mpmc_ring_send_batch(r, &v, 1, -1));
	ASSERT_EQ(1, mpmc_ring_recv(r, buf, sizeof(buf), 0));
	EXPECT_EQ('a', buf[0]);
	ASSERT_EQ(1, mpmc_ring_recv(r, buf, sizeof(buf), MPMC_RING_NONBLOCK));
	EXPECT_EQ('b', buf[0]);
	EXPECT_EQ(0, mpmc_ring_recv(r, buf, sizeof(buf), 0));
	EXPECT_EQ(0, mpmc_ring_recv(r, buf, sizeof(buf), MPMC_RING_NONBLOCK));
	mpmc_msgvec_set(&v, buf, sizeof(buf));
	EXPECT_EQ(0, mpmc_ring_recv_batch(r, &v, 1, -1));
	EXPECT_EQ(CANARY, errno);
	mpmc_ring_unmap(r);
	EXPECT_EQ(0, mpmc_close(fd));
}

/*
 * Batches: all that fit, then the count; the first that cannot move
 * waits as the timeout says; bad batches fail whole as the ioctls do.
 */
TEST(batches)
{
	char bufs[CAP + 2][MSG_MAX], small[2];
	struct mpmc_msgvec v[CAP + 2];
	struct mpmc_ring *r;
	int fd = ring_chan(CAP, MSG_MAX);
	int i;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mpmc_ring_map(fd, &r));
	NAME_VEC(v, bufs, CAP + 2, "m%d");
	errno = CANARY;
	/* CAP fit, the rest do not and are not waited for. */
	EXPECT_EQ(CAP, mpmc_ring_send_batch(r, v, CAP + 2, -1));
	EXPECT_EQ(-EAGAIN, mpmc_ring_send_batch(r, v, 1, 0));
	EXPECT_EQ(-ETIMEDOUT, mpmc_ring_send_batch(r, v, 1, 10000000));
	for (i = 0; i < CAP + 2; i++)
		mpmc_msgvec_set(&v[i], bufs[i], MSG_MAX);
	memset(bufs, 0, sizeof(bufs));
	EXPECT_EQ(CAP, mpmc_ring_recv_batch(r, v, CAP + 2, -1));
	for (i = 0; i < CAP; i++) {
		char want[8];

		snprintf(want, sizeof(want), "m%d", i);
		EXPECT_EQ(strlen(want), v[i].len);
		EXPECT_STREQ(want, bufs[i]);
		EXPECT_EQ(0, v[i].prio);
	}
	EXPECT_EQ(-EAGAIN, mpmc_ring_recv_batch(r, v, 1, 0));
	EXPECT_EQ(-ETIMEDOUT, mpmc_ring_recv_batch(r, v, 1, 10000000));
	EXPECT_EQ(CANARY, errno);

	/* Ring and batch ioctls share the order. */
	ASSERT_EQ(1, mpmc_ring_send(r, "x", 1, 0));
	NAME_VEC(v, bufs, 2, "y%d");
	ASSERT_EQ(2, mpmc_send_batch(fd, v, 2, 0));
	for (i = 0; i < 3; i++)
		mpmc_msgvec_set(&v[i], bufs[i], MSG_MAX);
	memset(bufs, 0, sizeof(bufs));
	ASSERT_EQ(3, mpmc_ring_recv_batch(r, v, 3, 0));
	EXPECT_STREQ("x", bufs[0]);
	EXPECT_STREQ("y0", bufs[1]);
	EXPECT_STREQ("y1", bufs[2]);

	/* A small buffer stops the batch there, the message stays. */
	NAME_VEC(v, bufs, 2, "long%d");
	ASSERT_EQ(2, mpmc_ring_send_batch(r, v, 2, 0));
	mpmc_msgvec_set(&v[0], bufs[0], MSG_MAX);
	mpmc_msgvec_set(&v[1], small, sizeof(small));
	EXPECT_EQ(1, mpmc_ring_recv_batch(r, v, 2, 0));
	EXPECT_EQ(-EMSGSIZE, mpmc_ring_recv_batch(r, &v[1], 1, 0));
	mpmc_msgvec_set(&v[0], bufs[1], MSG_MAX);
	EXPECT_EQ(1, mpmc_ring_recv_batch(r, v, 1, 0));

	/* Bad batches: nothing moves. */
	NAME_VEC(v, bufs, 2, "p%d");
	v[1].prio = 1;		/* a ring channel has no priorities */
	EXPECT_EQ(-EINVAL, mpmc_ring_send_batch(r, v, 2, 0));
	v[1].prio = 0;
	v[1].len = 0;
	EXPECT_EQ(-EINVAL, mpmc_ring_send_batch(r, v, 2, 0));
	v[1].len = 2;
	EXPECT_EQ(-EINVAL, mpmc_ring_send_batch(r, v, 0, 0));
	EXPECT_EQ(-EINVAL, mpmc_ring_send_batch(r, v, MPMC_BATCH_MAX + 1, 0));
	EXPECT_EQ(-EINVAL, mpmc_ring_send_batch(r, v, 2, -2));
	EXPECT_EQ(-EINVAL, mpmc_ring_recv_batch(r, v, 0, 0));
	EXPECT_EQ(-EINVAL, mpmc_ring_recv_batch(r, v, 1, -2));
	EXPECT_EQ(0, stats_of(fd).queued_msgs);
	mpmc_ring_unmap(r);
	EXPECT_EQ(0, mpmc_close(fd));
}

/*
 * fork: the child's copy of the mapping has a mapper id of its own, and
 * the child sends through the ring (no read, write or other ioctl than
 * MPMC_IOC_RING_INFO) with the handle it inherited.
 */
TEST(fork_child_sends)
{
	struct mpmc_ring *r;
	char buf[MSG_MAX];
	uintptr_t addr;
	long parent_id;
	pid_t pid;
	int fd = ring_chan(CAP, MSG_MAX);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mpmc_ring_map(fd, &r));
	addr = ring_region_addr();
	ASSERT_NE(0, addr);
	parent_id = ring_id(fd, addr);
	ASSERT_LT(0, parent_id);
	ASSERT_EQ(5, mpmc_ring_send(r, "first", 5, 0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		long id = ring_id(fd, addr);

		if (id <= 0 || id == parent_id)
			_exit(10);
		if (deny_syscalls(1))
			_exit(11);
		if (mpmc_ring_send(r, "child", 5, 0) != 5)
			_exit(12);
		if (mpmc_ring_send(r, "again", 5, MPMC_RING_NONBLOCK) != 5)
			_exit(13);
		if (ring_id(fd, addr) != id)
			_exit(14);
		_exit(0);
	}
	EXPECT_EQ(0, child_status(pid));
	EXPECT_EQ(parent_id, ring_id(fd, addr));
	ASSERT_EQ(5, mpmc_ring_recv(r, buf, sizeof(buf), 0));
	EXPECT_EQ(0, memcmp(buf, "first", 5));
	ASSERT_EQ(5, mpmc_ring_recv(r, buf, sizeof(buf), 0));
	EXPECT_EQ(0, memcmp(buf, "child", 5));
	ASSERT_EQ(5, mpmc_ring_recv(r, buf, sizeof(buf), 0));
	EXPECT_EQ(0, memcmp(buf, "again", 5));
	/* The parent still sends with its own id. */
	ASSERT_EQ(6, mpmc_ring_send(r, "parent", 6, 0));
	ASSERT_EQ(6, mpmc_ring_recv(r, buf, sizeof(buf), 0));
	mpmc_ring_unmap(r);
	EXPECT_EQ(0, mpmc_close(fd));
}

/* ---- threads: ring and system call users on one small ring --------- */

#define MIX_PER		10000	/* messages per producer */
#define MIX_PROD	3	/* two through the ring, one with write(2) */
#define MIX_CONS	3	/* two through the ring, one with read(2) */

struct mix {
	int fd;
	struct mpmc_ring *r;
	atomic_uint seen[MIX_PROD][MIX_PER];
	atomic_int bad, eof;
};

struct mix_peer {
	pthread_t th;
	struct mix *mix;
	int id;
	int syscalls;		/* write/read instead of the ring */
};

static void *mix_producer(void *arg)
{
	struct mix_peer *p = arg;
	uint32_t msg[2] = { (uint32_t)p->id, 0 };
	ssize_t ret;

	for (; msg[1] < MIX_PER; msg[1]++) {
		if (p->syscalls)
			ret = write(p->mix->fd, msg, sizeof(msg));
		else
			ret = mpmc_ring_send(p->mix->r, msg, sizeof(msg),
					     msg[1] & 1 ? MPMC_RING_NONBLOCK : 0);
		if (ret == -EAGAIN)	/* full: now wait for room */
			ret = mpmc_ring_send(p->mix->r, msg, sizeof(msg), 0);
		if (ret != sizeof(msg)) {
			atomic_fetch_add(&p->mix->bad, 1);
			break;
		}
	}
	return NULL;
}

static void *mix_consumer(void *arg)
{
	struct mix_peer *p = arg;
	struct mpmc_msgvec v[4];
	uint32_t msg[4][4];
	int64_t last[MIX_PROD] = { -1, -1, -1 };
	int i, n;

	for (;;) {
		if (p->syscalls) {
			n = read(p->mix->fd, msg[0], sizeof(msg[0]));
			n = n == 8 ? 1 : n;
		} else if (p->id) {
			n = mpmc_ring_recv(p->mix->r, msg[0], sizeof(msg[0]), 0);
			n = n == 8 ? 1 : n;
		} else {
			for (i = 0; i < 4; i++)
				mpmc_msgvec_set(&v[i], msg[i], sizeof(msg[i]));
			n = mpmc_ring_recv_batch(p->mix->r, v, 4, -1);
			for (i = 0; i < n; i++)
				if (v[i].len != 8)
					atomic_fetch_add(&p->mix->bad, 1);
		}
		if (n <= 0)
			break;
		for (i = 0; i < n; i++) {
			uint32_t prod = msg[i][0], seq = msg[i][1];

			if (prod >= MIX_PROD || seq >= MIX_PER ||
			    (int64_t)seq <= last[prod]) {
				atomic_fetch_add(&p->mix->bad, 1);
				continue;
			}
			last[prod] = seq;
			atomic_fetch_add(&p->mix->seen[prod][seq], 1);
		}
	}
	if (n == 0)
		atomic_fetch_add(&p->mix->eof, 1);
	else
		atomic_fetch_add(&p->mix->bad, 1);
	return NULL;
}

/*
 * Exactly once, in each producer's order, through a ring of 4 slots:
 * ring senders (blocking and not) and a write(2) sender, ring receivers
 * (single and batch) and a read(2) receiver, all blocking on the ring in
 * turn, so every doorbell matters (a lost one hangs the test). Then
 * shutdown: every receiver gets end of file.
 */
TEST(threads_exactly_once)
{
	struct mix_peer prod[MIX_PROD], cons[MIX_CONS];
	struct mix *mix = calloc(1, sizeof(*mix));
	unsigned int missing = 0, dup = 0;
	int i, j;

	ASSERT_NE(NULL, mix);
	mix->fd = ring_chan(CAP, MSG_MAX);
	ASSERT_LE(0, mix->fd);
	ASSERT_EQ(0, mpmc_ring_map(mix->fd, &mix->r));
	for (i = 0; i < MIX_CONS; i++) {
		cons[i] = (struct mix_peer){ .mix = mix, .id = i,
					     .syscalls = i == 2 };
		ASSERT_EQ(0, pthread_create(&cons[i].th, NULL, mix_consumer,
					    &cons[i]));
	}
	for (i = 0; i < MIX_PROD; i++) {
		prod[i] = (struct mix_peer){ .mix = mix, .id = i,
					     .syscalls = i == 2 };
		ASSERT_EQ(0, pthread_create(&prod[i].th, NULL, mix_producer,
					    &prod[i]));
	}
	for (i = 0; i < MIX_PROD; i++)
		ASSERT_EQ(0, pthread_join(prod[i].th, NULL));
	ASSERT_EQ(0, mpmc_shutdown(mix->fd, MPMC_SHUT_WR));
	for (i = 0; i < MIX_CONS; i++)
		ASSERT_EQ(0, join_within(cons[i].th));
	for (i = 0; i < MIX_PROD; i++)
		for (j = 0; j < MIX_PER; j++) {
			missing += !mix->seen[i][j];
			dup += mix->seen[i][j] > 1;
		}
	EXPECT_EQ(0, missing);
	EXPECT_EQ(0, dup);
	EXPECT_EQ(0, mix->bad);
	EXPECT_EQ(MIX_CONS, mix->eof);
	mpmc_ring_unmap(mix->r);
	EXPECT_EQ(0, mpmc_close(mix->fd));
	free(mix);
}

TEST_HARNESS_MAIN
