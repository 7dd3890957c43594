// SPDX-License-Identifier: GPL-2.0
/*
 * Module lifecycle under repetition: 100 unload/load cycles of $MPMC_KO
 * (finit_module/delete_module) with channels, endpoints and messages used
 * in between; and unload refused while anything holds a channel file: the
 * fd from open(), only an endpoint, an io_uring request parked on a closed
 * fd, an io_uring registered file. Once the holder lets go (cancel,
 * unregister, ring exit), the module unloads.
 *
 * run-all.sh runs it after the other programs (it unloads the module). The
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

#define CYCLES		100

/* Runs in the harness parent before any test is forked. */
static void __attribute__((constructor)) modcycle_init(void)
{
	mod_init();
}

MOD_FIXTURE(mod, false);

/* The module unloads within @ms (else log @when) and loads again. */
#define RELOAD_WITHIN(ms, when) do {					\
	ASSERT_EQ(0, mod_unload_within(ms)) {				\
		TH_LOG("%s: delete_module: %s", (when), strerror(errno));	\
	}								\
	ASSERT_EQ(0, mod_load());					\
} while (0)

#define ASSERT_BUSY(what) do {						\
	errno = 0;							\
	ASSERT_EQ(-1, mod_unload()) {					\
		TH_LOG("module unloaded while %s", what);		\
	}								\
	ASSERT_EQ(EWOULDBLOCK, errno);					\
	ASSERT_TRUE(mod_loaded());					\
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
	ASSERT_EQ(0, mod_unload_within(10000)) {
		TH_LOG("delete_module: %s", strerror(errno));
	}
	for (i = 0; i < CYCLES; i++) {
		ASSERT_FALSE(mod_loaded());
		ASSERT_TRUE(wait_dev(false, 5000));
		ASSERT_EQ(0, mod_load()) {
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
		ASSERT_EQ(0, mod_unload()) {
			TH_LOG("cycle %d: delete_module: %s", i, strerror(errno));
		}
	}
	ASSERT_EQ(0, mod_load());
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
	ASSERT_EQ(0, mod_unload_within(10000));
	ASSERT_EQ(0, mod_load());

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
	RELOAD_WITHIN(5000, "after the cancel");

	/* 2. A registered file holds the channel; unregistering releases. */
	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, io_uring_register_files(&ring, &fd, 1));
	close(fd);
	ASSERT_BUSY("an io_uring registered file held the channel");
	ASSERT_EQ(0, io_uring_unregister_files(&ring));
	RELOAD_WITHIN(5000, "after unregistering");

	/* 3. Ring exit with a READ parked on a fixed file: released too. */
	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, io_uring_register_files(&ring, &fd, 1));
	park_read(_metadata, &ring, fd, true, buf);
	close(fd);
	ASSERT_BUSY("a READ on a registered file held the channel");
	io_uring_queue_exit(&ring);
	/* Ring teardown runs from a workqueue. */
	RELOAD_WITHIN(10000, "after ring exit");
	ASSERT_EQ(0, exercise());
}

TEST_HARNESS_MAIN
