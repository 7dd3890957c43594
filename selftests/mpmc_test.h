/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small helpers shared by the mpmc selftests. Include after
 * kselftest_harness.h. Everything here is static inline so that each test
 * program stays a single translation unit.
 */
#ifndef MPMC_TEST_H
#define MPMC_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/mpmc.h>

#define MPMC_DEV "/dev/mpmc"

/* Open a new channel; returns the fd or -1 with errno set. */
static inline int mpmc_test_open(int flags)
{
	return open(MPMC_DEV, flags | O_CLOEXEC);
}

/* Open a channel and give it @capacity and @msg_size; -1 on error. */
static inline int mpmc_test_open_cfg(__u32 capacity, __u32 msg_size)
{
	struct mpmc_config cfg = { .capacity = capacity, .max_msg_size = msg_size };
	int fd = mpmc_test_open(O_RDWR);

	if (fd < 0)
		return -1;
	if (ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Read a module parameter from /sys/module/mpmc/parameters; 0 on error. */
static inline unsigned long long mpmc_test_param(const char *name)
{
	char path[256];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/mpmc/parameters/%s", name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/* CLOCK_MONOTONIC in milliseconds. */
static inline long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* How long to wait for something that must happen: the guest is emulated. */
#define MPMC_TEST_WAIT_MS	10000

/*
 * Wait until the channel of @fd has exactly @want blocked receivers (@rx)
 * or senders (!@rx). 0 when reached, -1 after MPMC_TEST_WAIT_MS or on error.
 */
static inline int wait_blocked(int fd, bool rx, unsigned int want)
{
	long long end = now_ms() + MPMC_TEST_WAIT_MS;
	struct mpmc_stats st;

	for (;;) {
		if (ioctl(fd, MPMC_IOC_GET_STATS, &st))
			return -1;
		if ((rx ? st.blocked_receivers : st.blocked_senders) == want)
			return 0;
		if (now_ms() > end)
			return -1;
		usleep(1000);
	}
}

/* Fetch the stats of @fd's channel; aborts the test on failure. */
#define MPMC_STATS(fd, st) \
	ASSERT_EQ(0, ioctl((fd), MPMC_IOC_GET_STATS, (st)))

#endif /* MPMC_TEST_H */
