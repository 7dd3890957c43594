// SPDX-License-Identifier: GPL-2.0
/*
 * Module lifecycle under repetition: 100 unload/load cycles of $MPMC_KO
 * (finit_module/delete_module) with channels, endpoints and messages used
 * in between; and unload refused while anything holds a channel file: the
 * fd from open(), only an endpoint, an io_uring request parked on a closed
 * fd, an io_uring registered file. Once the holder lets go (cancel,
 * unregister, ring exit), the module unloads.
 *
 * Named to sort after the other programs (it unloads the module). The
 * module is always loaded again, with the parameters it had, before the
 * program exits (fixture teardown in the test, atexit in the parent).
 * Needs root and $MPMC_KO; skipped otherwise.
 */
#define _GNU_SOURCE
#include <liburing.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <time.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

#define MOD_NAME	"mpmc"
#define MOD_SYSFS	"/sys/module/" MOD_NAME
#define CYCLES		100

static const char *ko_path;
static char mod_params[256];

static bool loaded(void)
{
	return !access(MOD_SYSFS, F_OK);
}

static bool wait_dev(bool present, int ms)
{
	long long end = now_ms() + ms;

	while (!access(MPMC_DEV, F_OK) != present) {
		if (now_ms() > end)
			return false;
		usleep(2000);
	}
	return true;
}

static int unload(void)
{
	return syscall(SYS_delete_module, MOD_NAME, O_NONBLOCK);
}

/* Unload, retrying while something (async file release) still holds it. */
static int unload_within(int ms)
{
	long long end = now_ms() + ms;
	int ret;

	for (;;) {
		errno = 0;
		ret = unload();
		if (!ret || errno != EWOULDBLOCK || now_ms() > end)
			return ret;
		usleep(10000);
	}
}

static int load(void)
{
	int fd, ret, err;

	fd = open(ko_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ret = syscall(SYS_finit_module, fd, mod_params, 0);
	err = errno;
	close(fd);
	if (ret && err != EEXIST) {
		errno = err;
		return -1;
	}
	return wait_dev(true, 10000) ? 0 : -1;
}

static void ensure_loaded(void)
{
	if (ko_path && geteuid() == 0 && !loaded() && load())
		fprintf(stderr, "# could not reload %s: %s\n", ko_path,
			strerror(errno));
}

static void __attribute__((constructor)) modcycle_init(void)
{
	static const char *const names[] = {
		"max_capacity", "max_msg_size", "max_channel_bytes",
	};
	size_t off = 0;
	unsigned int i;

	ko_path = getenv("MPMC_KO");
	if (ko_path && !*ko_path)
		ko_path = NULL;
	for (i = 0; i < 3; i++) {
		unsigned long long v = mpmc_test_param(names[i]);

		if (v && off < sizeof(mod_params))
			off += snprintf(mod_params + off, sizeof(mod_params) - off,
					"%s%s=%llu", off ? " " : "", names[i], v);
	}
	atexit(ensure_loaded);
}

FIXTURE(mod)
{
	const char *skip;
};

FIXTURE_SETUP(mod)
{
	self->skip = NULL;
	if (geteuid() != 0)
		self->skip = "needs root";
	else if (!ko_path || access(ko_path, R_OK))
		self->skip = "$MPMC_KO not set or not readable";
	if (self->skip)
		return;
	if (!loaded())
		ASSERT_EQ(0, load());
	ASSERT_TRUE(wait_dev(true, 10000));
}

FIXTURE_TEARDOWN(mod)
{
	if (self->skip)
		return;
	ensure_loaded();
	EXPECT_TRUE(loaded());
}

#define SKIP_IF_NEEDED() do {						\
	if (self->skip)							\
		SKIP(return, "%s", self->skip);				\
} while (0)

#define ASSERT_BUSY(what) do {						\
	errno = 0;							\
	ASSERT_EQ(-1, unload()) {					\
		TH_LOG("module unloaded while %s", what);		\
	}								\
	ASSERT_EQ(EWOULDBLOCK, errno);					\
	ASSERT_TRUE(loaded());						\
} while (0)

/* Use a fresh module a little: a channel, an endpoint, a few messages. */
static int exercise(void)
{
	struct mpmc_endpoint ep = { .roles = MPMC_ROLE_RECV, .flags = O_NONBLOCK };
	char buf[16];
	int fd, efd, ok = 0;

	fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	if (fd < 0)
		return -1;
	efd = ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &ep);
	if (efd >= 0 && write(fd, "cycle", 5) == 5 && write(fd, "left", 4) == 4 &&
	    read(efd, buf, sizeof(buf)) == 5 && !memcmp(buf, "cycle", 5))
		ok = 1;
	/* One message stays queued: closing must free it. */
	if (efd >= 0)
		close(efd);
	close(fd);
	return ok ? 0 : -1;
}

TEST_F_TIMEOUT(mod, unload_load_100_cycles, 600)
{
	long long start = now_ms();
	int i, fd, efd;
	struct mpmc_endpoint ep = { .roles = MPMC_ROLE_SEND };

	SKIP_IF_NEEDED();
	/* Earlier programs' files may still be on their way out. */
	ASSERT_EQ(0, unload_within(10000)) {
		TH_LOG("delete_module: %s", strerror(errno));
	}
	for (i = 0; i < CYCLES; i++) {
		ASSERT_FALSE(loaded());
		ASSERT_TRUE(wait_dev(false, 5000));
		ASSERT_EQ(0, load()) {
			TH_LOG("cycle %d: finit_module: %s", i, strerror(errno));
		}
		ASSERT_EQ(0, exercise()) {
			TH_LOG("cycle %d: the fresh module does not work", i);
		}
		if (i % 10 == 0) {
			fd = mpmc_test_open(O_RDWR);
			ASSERT_LE(0, fd);
			ASSERT_BUSY("a channel was open");
			efd = ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &ep);
			ASSERT_LE(0, efd);
			close(fd);
			ASSERT_BUSY("an endpoint was open");
			close(efd);
		}
		/* Everything is closed, synchronously: no retry needed. */
		ASSERT_EQ(0, unload()) {
			TH_LOG("cycle %d: delete_module: %s", i, strerror(errno));
		}
	}
	ASSERT_EQ(0, load());
	ASSERT_EQ(0, exercise());
	ksft_print_msg("%d unload/load cycles in %lld ms\n", CYCLES,
		       now_ms() - start);
	fflush(stdout);
}

/* A READ parked on the channel's poll queue, its fd closed. */
static void park_read(struct __test_metadata *_metadata, struct io_uring *ring,
		      int fd, bool fixed, char *buf)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;

	ASSERT_NE(NULL, sqe);
	io_uring_prep_read(sqe, fixed ? 0 : fd, buf, 64, -1);
	if (fixed)
		sqe->flags |= IOSQE_FIXED_FILE;
	sqe->user_data = 1;
	ASSERT_EQ(1, io_uring_submit(ring));
	/* Parked, not completed. */
	usleep(50000);
	ASSERT_EQ(-EAGAIN, io_uring_peek_cqe(ring, &cqe));
}

TEST_F_TIMEOUT(mod, busy_while_io_uring_holds_a_file, 120)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	char buf[64];
	int fd;

	SKIP_IF_NEEDED();
	ASSERT_EQ(0, unload_within(10000));
	ASSERT_EQ(0, load());

	/* 1. A parked READ on a closed fd holds the file; cancel releases. */
	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	park_read(_metadata, &ring, fd, false, buf);
	close(fd);
	ASSERT_BUSY("an io_uring READ held the channel");
	sqe = io_uring_get_sqe(&ring);
	ASSERT_NE(NULL, sqe);
	io_uring_prep_cancel64(sqe, 1, 0);
	sqe->user_data = 2;
	ASSERT_EQ(1, io_uring_submit(&ring));
	for (int n = 0; n < 2; n++) {
		ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
		if (cqe->user_data == 1)
			EXPECT_EQ(-ECANCELED, cqe->res);
		io_uring_cqe_seen(&ring, cqe);
	}
	ASSERT_EQ(0, unload_within(5000)) {
		TH_LOG("after the cancel: delete_module: %s", strerror(errno));
	}
	ASSERT_EQ(0, load());

	/* 2. A registered file holds the channel; unregistering releases. */
	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, io_uring_register_files(&ring, &fd, 1));
	close(fd);
	ASSERT_BUSY("an io_uring registered file held the channel");
	ASSERT_EQ(0, io_uring_unregister_files(&ring));
	ASSERT_EQ(0, unload_within(5000)) {
		TH_LOG("after unregistering: delete_module: %s", strerror(errno));
	}
	ASSERT_EQ(0, load());

	/* 3. Ring exit with a READ parked on a fixed file: released too. */
	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, io_uring_register_files(&ring, &fd, 1));
	park_read(_metadata, &ring, fd, true, buf);
	close(fd);
	ASSERT_BUSY("a READ on a registered file held the channel");
	io_uring_queue_exit(&ring);
	/* Ring teardown runs from a workqueue. */
	ASSERT_EQ(0, unload_within(10000)) {
		TH_LOG("after ring exit: delete_module: %s", strerror(errno));
	}
	ASSERT_EQ(0, load());
	ASSERT_EQ(0, exercise());
}

TEST_HARNESS_MAIN
