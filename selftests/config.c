// SPDX-License-Identifier: GPL-2.0
/*
 * Channel configuration: MPMC_IOC_GET_CONFIG / MPMC_IOC_SET_CONFIG defaults,
 * round trip, every validation error (EINVAL, EBUSY) leaving the config
 * unchanged, the module limits read from /sys/module/mpmc/parameters,
 * capacity honoured exactly (by non-blocking writes, send batches that
 * may wait, and poll), max_msg_size changes, growing capacity waking
 * blocked writers, EFAULT, and config ioctls on files of every access mode.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

static int get_cfg(int fd, struct mpmc_config *cfg)
{
	memset(cfg, 0xa5, sizeof(*cfg));
	return ioctl(fd, MPMC_IOC_GET_CONFIG, cfg);
}

static int set_cfg(int fd, __u32 capacity, __u32 msg_size)
{
	struct mpmc_config cfg = { .capacity = capacity, .max_msg_size = msg_size };

	return ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg);
}

static bool reserved_zero(const struct mpmc_config *cfg)
{
	unsigned int i;

	if (cfg->flags)
		return false;
	for (i = 0; i < 5; i++)
		if (cfg->reserved[i])
			return false;
	return true;
}

/* Assert that @fd's channel has config (@cap, @size) and zeroed extras. */
#define ASSERT_CFG(fd, cap, size) do {					\
	struct mpmc_config __c;						\
	ASSERT_EQ(0, get_cfg((fd), &__c));				\
	ASSERT_EQ((__u32)(cap), __c.capacity);				\
	ASSERT_EQ((__u32)(size), __c.max_msg_size);			\
	ASSERT_TRUE(reserved_zero(&__c));				\
} while (0)

/* SET_CONFIG with @cfg must fail with @err and leave (@cap, @size). */
#define ASSERT_SET_FAILS(fd, cfgp, err, cap, size) do {			\
	errno = 0;							\
	ASSERT_EQ(-1, ioctl((fd), MPMC_IOC_SET_CONFIG, (cfgp)));		\
	ASSERT_EQ((err), errno);					\
	ASSERT_CFG((fd), (cap), (size));				\
} while (0)

TEST(defaults)
{
	static const int modes[] = { O_RDWR, O_RDONLY, O_WRONLY };
	unsigned int i;

	for (i = 0; i < 3; i++) {
		int fd = mpmc_test_open(modes[i]);

		ASSERT_LE(0, fd);
		ASSERT_CFG(fd, 64, 4096);
		EXPECT_STATS(fd, STAT(capacity, 64),
			     STAT(max_msg_size, 4096));
		close(fd);
	}
}

TEST(set_get_round_trip)
{
	struct limits l;
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_TRUE(read_limits(&l));

	ASSERT_EQ(0, set_cfg(fd, 10, 100));
	ASSERT_CFG(fd, 10, 100);
	EXPECT_STATS(fd, STAT(capacity, 10), STAT(max_msg_size, 100));

	ASSERT_EQ(0, set_cfg(fd, 1, 1));
	ASSERT_CFG(fd, 1, 1);

	/* The limits themselves are allowed. */
	if (l.max_capacity <= l.max_channel_bytes) {
		ASSERT_EQ(0, set_cfg(fd, l.max_capacity, 1));
		ASSERT_CFG(fd, l.max_capacity, 1);
	}
	if (l.max_msg_size <= l.max_channel_bytes) {
		ASSERT_EQ(0, set_cfg(fd, 1, l.max_msg_size));
		ASSERT_CFG(fd, 1, l.max_msg_size);
	}
	/* As many of the largest messages as max_channel_bytes allows. */
	{
		unsigned long long m = l.max_msg_size;
		unsigned long long c = l.max_channel_bytes / m;

		if (c > l.max_capacity)
			c = l.max_capacity;
		if (c >= 1) {
			ASSERT_EQ(0, set_cfg(fd, c, m));
			ASSERT_CFG(fd, c, m);
		}
	}

	/* Back to the defaults. */
	ASSERT_EQ(0, set_cfg(fd, 64, 4096));
	ASSERT_CFG(fd, 64, 4096);
	close(fd);
}

TEST(set_einval)
{
	struct mpmc_config cfg;
	struct limits l;
	unsigned int i;
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_TRUE(read_limits(&l));
	/* A non-default config, so a reset to defaults would show too. */
	ASSERT_EQ(0, set_cfg(fd, 7, 300));

#define BAD(c, s) do {							\
	memset(&cfg, 0, sizeof(cfg));					\
	cfg.capacity = (c);						\
	cfg.max_msg_size = (s);						\
} while (0)

	/* Capacity 0 is a rendezvous channel, but never in overwrite mode. */
	BAD(0, 100);
	cfg.flags = MPMC_CONFIG_OVERWRITE;
	ASSERT_SET_FAILS(fd, &cfg, EINVAL, 7, 300);
	BAD(10, 0);
	ASSERT_SET_FAILS(fd, &cfg, EINVAL, 7, 300);
	BAD(0, 0);
	ASSERT_SET_FAILS(fd, &cfg, EINVAL, 7, 300);

	/* Unknown flags: every bit above the known ones. */
	BAD(10, 100);
	cfg.flags = 8;
	ASSERT_SET_FAILS(fd, &cfg, EINVAL, 7, 300);
	BAD(10, 100);
	cfg.flags = ~(__u32)(MPMC_CONFIG_OVERWRITE | MPMC_CONFIG_THROUGHPUT |
			     MPMC_CONFIG_RING);
	ASSERT_SET_FAILS(fd, &cfg, EINVAL, 7, 300);
	BAD(10, 100);
	cfg.flags = 0x80000000u;
	ASSERT_SET_FAILS(fd, &cfg, EINVAL, 7, 300);
	for (i = 0; i < 5; i++) {
		BAD(10, 100);
		cfg.reserved[i] = 1;
		ASSERT_SET_FAILS(fd, &cfg, EINVAL, 7, 300);
		BAD(10, 100);
		cfg.reserved[i] = 0xffffffffu;
		ASSERT_SET_FAILS(fd, &cfg, EINVAL, 7, 300);
	}

	/* Over each module limit. */
	if (l.max_capacity < 0xffffffffull) {
		BAD(l.max_capacity + 1, 1);
		ASSERT_SET_FAILS(fd, &cfg, EINVAL, 7, 300);
	}
	BAD(0xffffffffu, 1);
	ASSERT_SET_FAILS(fd, &cfg, EINVAL, 7, 300);
	if (l.max_msg_size < 0xffffffffull) {
		BAD(1, l.max_msg_size + 1);
		ASSERT_SET_FAILS(fd, &cfg, EINVAL, 7, 300);
	}
	BAD(1, 0xffffffffu);
	ASSERT_SET_FAILS(fd, &cfg, EINVAL, 7, 300);

#undef BAD
	close(fd);
}

/*
 * SET_CONFIG of each of the @n configs @bad must fail with @err and leave
 * (@cap, @size).
 */
static void set_all_fail(struct __test_metadata *_metadata, int fd,
			 const struct mpmc_config *bad, unsigned int n,
			 int err, __u32 cap, __u32 size)
{
	struct mpmc_config cfg;
	unsigned int i;

	for (i = 0; i < n; i++) {
		cfg = bad[i];
		ASSERT_SET_FAILS(fd, &cfg, err, cap, size);
	}
}

/* SET_CONFIG of (@c, @m) must fail with EINVAL and leave (7, 300). */
static void set_overflow_fails(struct __test_metadata *_metadata, int fd,
			       unsigned long long c, unsigned long long m)
{
	struct mpmc_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.capacity = c;
	cfg.max_msg_size = m;
	TH_LOG("capacity %llu x max_msg_size %llu", c, m);
	set_all_fail(_metadata, fd, &cfg, 1, EINVAL, 7, 300);
}

/* Each value within its own limit, the product over max_channel_bytes. */
TEST(set_einval_product)
{
	static char buf[301];
	unsigned long long c, m;
	struct limits l;
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_TRUE(read_limits(&l));
	if (l.max_capacity * l.max_msg_size <= l.max_channel_bytes)
		SKIP(return, "max_channel_bytes can never be exceeded");
	ASSERT_EQ(0, set_cfg(fd, 7, 300));

	/* Largest capacity, smallest message size that overflows. */
	c = l.max_capacity;
	m = l.max_channel_bytes / c + 1;
	if (m <= l.max_msg_size)
		set_overflow_fails(_metadata, fd, c, m);
	/* Largest message size, smallest capacity that overflows. */
	m = l.max_msg_size;
	c = l.max_channel_bytes / m + 1;
	if (c <= l.max_capacity)
		set_overflow_fails(_metadata, fd, c, m);
	/* Both at their limit (65536 x 65536 wraps a 32-bit product to 0). */
	set_overflow_fails(_metadata, fd, l.max_capacity, l.max_msg_size);

	/* The channel still takes messages of the old size only. */
	ASSERT_EQ(300, write(fd, buf, 300));
	EXPECT_ERRNO(EMSGSIZE, write(fd, buf, 301));
	close(fd);
}

TEST(set_ebusy_shrink_below_queued)
{
	static const struct mpmc_config bad[] = {
		{ .capacity = 2, .max_msg_size = 100 },
		{ .capacity = 1, .max_msg_size = 100 },
	};
	char buf[16];
	int fd = mpmc_test_open(O_RDWR | O_NONBLOCK);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_cfg(fd, 8, 100));
	ASSERT_EQ(1, write(fd, "a", 1));
	ASSERT_EQ(1, write(fd, "b", 1));
	ASSERT_EQ(1, write(fd, "c", 1));

	set_all_fail(_metadata, fd, bad, 2, EBUSY, 8, 100);

	/* Exactly the queued count is fine, and then the channel is full. */
	ASSERT_EQ(0, set_cfg(fd, 3, 100));
	ASSERT_CFG(fd, 3, 100);
	EXPECT_ERRNO(EAGAIN, write(fd, "d", 1));

	CHECK_READ(fd, buf, "a");
	CHECK_READ(fd, buf, "b");
	CHECK_READ(fd, buf, "c");
	close(fd);
}

TEST(set_ebusy_msg_size_while_queued)
{
	static const struct mpmc_config bad[] = {
		{ .capacity = 64, .max_msg_size = 8192 },
		{ .capacity = 64, .max_msg_size = 100 },
		{ .capacity = 10, .max_msg_size = 100 },
	};
	char buf[16];
	int fd = mpmc_test_open(O_RDWR | O_NONBLOCK);

	ASSERT_LE(0, fd);
	ASSERT_EQ(3, write(fd, "abc", 3));
	/* Growing or shrinking max_msg_size while non-empty: EBUSY. */
	set_all_fail(_metadata, fd, bad, 3, EBUSY, 64, 4096);

	/* The same max_msg_size is no change: capacity may still change. */
	ASSERT_EQ(0, set_cfg(fd, 10, 4096));
	ASSERT_CFG(fd, 10, 4096);
	ASSERT_EQ(0, set_cfg(fd, 64, 4096));
	ASSERT_CFG(fd, 64, 4096);

	/* Once empty, max_msg_size may change. */
	ASSERT_EQ(3, read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, set_cfg(fd, 64, 100));
	ASSERT_CFG(fd, 64, 100);
	close(fd);
}

FIXTURE(capacity)
{
	int fd;
};

FIXTURE_VARIANT(capacity)
{
	unsigned int n;
	bool set;	/* false: rely on the default capacity */
};

FIXTURE_VARIANT_ADD(capacity, one) { .n = 1, .set = true };
FIXTURE_VARIANT_ADD(capacity, three) { .n = 3, .set = true };
FIXTURE_VARIANT_ADD(capacity, sixty_four) { .n = 64, .set = true };
FIXTURE_VARIANT_ADD(capacity, default_64) { .n = 64, .set = false };

FIXTURE_SETUP(capacity)
{
	self->fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, self->fd);
	if (variant->set)
		ASSERT_EQ(0, set_cfg(self->fd, variant->n, 64));
}

FIXTURE_TEARDOWN(capacity)
{
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * The channel of @fd (O_NONBLOCK) is full: the paths that may wait see
 * it too, not only a non-blocking write (which is refused early, before
 * the channel is locked). A send batch that may wait times out, with
 * nothing sent, and poll() reports no POLLOUT.
 */
static void expect_full(struct __test_metadata *_metadata, int fd,
			unsigned int v)
{
	struct mpmc_msgvec vec = { .buf = (uintptr_t)&v, .len = 4 };
	struct mpmc_batch b = {
		.vec = (uintptr_t)&vec, .count = 1, .timeout_ns = 20000000,
	};
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT };
	int fl = fcntl(fd, F_GETFL);

	ASSERT_LE(0, fl);
	ASSERT_EQ(0, fcntl(fd, F_SETFL, fl & ~O_NONBLOCK));
	errno = 0;
	EXPECT_ERRNO(ETIMEDOUT, ioctl(fd, MPMC_IOC_SEND, &b));
	ASSERT_EQ(0, fcntl(fd, F_SETFL, fl));
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN, pfd.revents);
}

TEST_F(capacity, honoured_exactly)
{
	unsigned int i, next_rd = 0, next_wr = 0;
	char buf[64];
	int fd = self->fd;

	for (i = 0; i < variant->n; i++, next_wr++)
		ASSERT_EQ(4, write(fd, &next_wr, 4));
	EXPECT_ERRNO(EAGAIN, write(fd, &next_wr, 4));
	expect_full(_metadata, fd, next_wr);
	EXPECT_STATS(fd, STAT(queued_msgs, variant->n),
		     STAT(total_sent, variant->n));

	/* One read makes room for exactly one more write. */
	ASSERT_EQ(4, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, &next_rd, 4));
	next_rd++;
	ASSERT_EQ(4, write(fd, &next_wr, 4));
	next_wr++;
	EXPECT_ERRNO(EAGAIN, write(fd, &next_wr, 4));
	expect_full(_metadata, fd, next_wr);
	EXPECT_STATS(fd, STAT(queued_msgs, variant->n));

	for (i = 0; i < variant->n; i++, next_rd++) {
		ASSERT_EQ(4, read(fd, buf, sizeof(buf)));
		EXPECT_EQ(0, memcmp(buf, &next_rd, 4));
	}
	EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));
}

TEST(raise_msg_size)
{
	static char big[8192], out[8192];
	struct limits l;
	unsigned int size;
	int fd = mpmc_test_open(O_RDWR | O_NONBLOCK);

	ASSERT_LE(0, fd);
	ASSERT_TRUE(read_limits(&l));
	size = l.max_msg_size < 8192 ? l.max_msg_size : 8192;
	if (size <= 16)
		SKIP(return, "module max_msg_size too small");
	memset(big, 'q', sizeof(big));
	big[size - 1] = 'Q';

	ASSERT_EQ(0, set_cfg(fd, 4, 16));
	EXPECT_ERRNO(EMSGSIZE, write(fd, big, 17));
	ASSERT_EQ(0, set_cfg(fd, 4, size));
	ASSERT_EQ(17, write(fd, big, 17));
	ASSERT_EQ((ssize_t)size, write(fd, big, size));
	EXPECT_ERRNO(EMSGSIZE, write(fd, big, size + 1));
	ASSERT_EQ(17, read(fd, out, sizeof(out)));
	ASSERT_EQ((ssize_t)size, read(fd, out, sizeof(out)));
	EXPECT_EQ(0, memcmp(out, big, size));

	/* And lowering it again stops the big message. */
	ASSERT_EQ(0, set_cfg(fd, 4, 16));
	EXPECT_ERRNO(EMSGSIZE, write(fd, big, 17));
	close(fd);
}

TEST(grow_wakes_blocked_writer)
{
	struct op w;
	char buf[16];
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_cfg(fd, 2, 16));
	ASSERT_EQ(1, write(fd, "1", 1));
	ASSERT_EQ(1, write(fd, "2", 1));

	ASSERT_EQ(0, start_writer(&w, fd, "3"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	usleep(50000);
	ASSERT_FALSE(op_done(&w));

	ASSERT_EQ(0, set_cfg(fd, 3, 16));
	ASSERT_EQ(0, op_join(&w));
	EXPECT_EQ(1, w.ret);
	EXPECT_STATS(fd, STAT(queued_msgs, 3), STAT(blocked_senders, 0),
		     STAT(capacity, 3));

	CHECK_READ(fd, buf, "1");
	CHECK_READ(fd, buf, "2");
	CHECK_READ(fd, buf, "3");
	close(fd);
}

/* Growing by two with two blocked writers wakes both, in order. */
TEST(grow_wakes_all_writers_that_fit)
{
	struct op w[2];
	char buf[16];
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_cfg(fd, 1, 16));
	ASSERT_EQ(1, write(fd, "1", 1));
	ASSERT_EQ(0, start_writer(&w[0], fd, "2"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	ASSERT_EQ(0, start_writer(&w[1], fd, "3"));
	ASSERT_EQ(0, wait_blocked(fd, false, 2));

	ASSERT_EQ(0, set_cfg(fd, 3, 16));
	ASSERT_EQ(0, op_join(&w[0]));
	ASSERT_EQ(0, op_join(&w[1]));
	EXPECT_EQ(1, w[0].ret);
	EXPECT_EQ(1, w[1].ret);
	EXPECT_STATS(fd, STAT(queued_msgs, 3), STAT(blocked_senders, 0));
	CHECK_READ(fd, buf, "1");
	CHECK_READ(fd, buf, "2");
	CHECK_READ(fd, buf, "3");
	close(fd);
}

TEST(config_efault)
{
	void *gone;
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	gone = unmapped_page();
	ASSERT_NE(NULL, gone);
	ASSERT_EQ(0, set_cfg(fd, 5, 50));

	EXPECT_ERRNO(EFAULT, ioctl(fd, MPMC_IOC_GET_CONFIG, NULL));
	EXPECT_ERRNO(EFAULT, ioctl(fd, MPMC_IOC_GET_CONFIG, BAD_PTR));
	EXPECT_ERRNO(EFAULT, ioctl(fd, MPMC_IOC_GET_CONFIG, gone));
	EXPECT_ERRNO(EFAULT, ioctl(fd, MPMC_IOC_SET_CONFIG, NULL));
	EXPECT_ERRNO(EFAULT, ioctl(fd, MPMC_IOC_SET_CONFIG, BAD_PTR));
	EXPECT_ERRNO(EFAULT, ioctl(fd, MPMC_IOC_SET_CONFIG, gone));
	ASSERT_CFG(fd, 5, 50);
	close(fd);
}

TEST(config_on_every_access_mode)
{
	struct mpmc_endpoint ep = { .roles = MPMC_ROLE_RECV };
	int rd = mpmc_test_open(O_RDONLY);
	int wr = mpmc_test_open(O_WRONLY);
	int rw = mpmc_test_open(O_RDWR);
	int efd;

	ASSERT_LE(0, rd);
	ASSERT_LE(0, wr);
	ASSERT_LE(0, rw);

	ASSERT_EQ(0, set_cfg(rd, 10, 100));
	ASSERT_CFG(rd, 10, 100);
	ASSERT_EQ(0, set_cfg(wr, 11, 101));
	ASSERT_CFG(wr, 11, 101);

	/* An endpoint configures the channel it shares with its parent. */
	efd = ioctl(rw, MPMC_IOC_NEW_ENDPOINT, &ep);
	ASSERT_LE(0, efd);
	ASSERT_EQ(0, set_cfg(efd, 12, 102));
	ASSERT_CFG(efd, 12, 102);
	ASSERT_CFG(rw, 12, 102);
	close(efd);
	close(rd);
	close(wr);
	close(rw);
}

TEST_HARNESS_MAIN
