// SPDX-License-Identifier: GPL-2.0
/*
 * Ring mode readiness and limits (Documentation/ring-mode.rst 5.3 and
 * 2.3): an io_uring READ parked on an empty ring channel completes when a
 * ring peer publishes (through the poll bit and the doorbell, no io-wq
 * worker); edge-triggered epoll hears of a publish after the reader's
 * non-blocking EAGAIN re-armed it; max_ring_bytes bounds the ring.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"
#include "ring_test.h"

#define MSG	64

static int wait_cqe_ms(struct io_uring *ring, int ms, struct io_uring_cqe **cqe)
{
	struct __kernel_timespec ts = {
		.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000LL,
	};

	return io_uring_wait_cqe_timeout(ring, cqe, &ts);
}

/* A READ on an empty ring channel parks; a ring publish completes it. */
TEST(uring_read_parked_woken_by_ring_send)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	char buf[MSG] = { 0 };
	struct rmap m;
	int fd = ring_open(8, MSG, 0);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	ASSERT_EQ(0, io_uring_queue_init(4, &ring, 0));
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_read(sqe, fd, buf, sizeof(buf), 0);
	sqe->user_data = 7;
	ASSERT_EQ(1, io_uring_submit(&ring));
	/* Parked: nothing completes while the ring is empty. */
	EXPECT_EQ(-ETIME, wait_cqe_ms(&ring, 200, &cqe));
	ASSERT_EQ(5, rt_send(&m, "uring", 5));
	ASSERT_EQ(0, wait_cqe_ms(&ring, WAIT_MS, &cqe));
	EXPECT_EQ(7U, cqe->user_data);
	EXPECT_EQ(5, cqe->res);
	EXPECT_EQ(0, memcmp(buf, "uring", 5));
	io_uring_cqe_seen(&ring, cqe);
	EXPECT_EQ(0, count_iou_wrk(NULL, 0));
	io_uring_queue_exit(&ring);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/*
 * Edge-triggered epoll: a publish into an empty ring raises EPOLLIN; after
 * the reader drained the ring through it and its non-blocking read() said
 * EAGAIN (which re-arms the poll bit), the next publish raises it again.
 */
TEST(epoll_et_edge_after_eagain)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	char buf[MSG];
	struct rmap m;
	int ep, round;
	int fd = ring_open(8, MSG, O_NONBLOCK);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	EXPECT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	for (round = 0; round < 5; round++) {
		ASSERT_EQ(4, rt_send(&m, "edge", 4));
		ASSERT_EQ(1, epoll_wait(ep, &ev, 1, WAIT_MS))
			TH_LOG("round %d: no EPOLLIN edge", round);
		EXPECT_TRUE(ev.events & EPOLLIN);
		/* Drain through the ring, then the syscall that re-arms. */
		ASSERT_EQ(4, rt_recv(&m, buf, sizeof(buf)));
		EXPECT_EQ(-1, read(fd, buf, sizeof(buf)));
		EXPECT_EQ(EAGAIN, errno);
		EXPECT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	}
	close(ep);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

static int set_param(const char *name, unsigned long long v)
{
	char path[128], val[32];
	int fd, n, ret;

	snprintf(path, sizeof(path), "/sys/module/mpmc/parameters/%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = snprintf(val, sizeof(val), "%llu", v);
	ret = write(fd, val, n) == n ? 0 : -1;
	close(fd);
	return ret;
}

/* A ring over max_ring_bytes is refused with EINVAL; nothing changes. */
TEST(max_ring_bytes_bounds_the_ring)
{
	unsigned long long old = mpmc_test_param("max_ring_bytes");
	struct mpmc_config cfg;
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_LT(0ULL, old);
	/* 64 slots of 64 bytes: 128-byte slots, 8 KiB + head + control. */
	ASSERT_EQ(0, set_param("max_ring_bytes", 16384));
	EXPECT_EQ(-1, ring_set(fd, 128, MSG, MPMC_CONFIG_RING));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(0U, cfg.flags);
	EXPECT_EQ(0, ring_set(fd, 64, MSG, MPMC_CONFIG_RING));
	ASSERT_EQ(0, set_param("max_ring_bytes", old));
	close(fd);
}

TEST_HARNESS_MAIN
