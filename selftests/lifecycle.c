// SPDX-License-Identifier: GPL-2.0
/*
 * Module lifecycle: mpmc cannot be unloaded while a channel is open, through
 * the fd from open() or only through an endpoint fd; once everything is
 * closed it unloads cleanly, /dev/mpmc goes away, and it loads again from
 * $MPMC_KO with the same parameters.
 *
 * It unloads the module, so run-all.sh runs it after the programs that
 * need the module (its list "last"). Whatever happens (failed assertion,
 * test killed by its timeout), the module is loaded again before the
 * program exits: by the fixture teardown in the test child and by an
 * atexit() handler in the harness parent. Needs root and $MPMC_KO; skipped otherwise.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

/* Runs in the harness parent before any test is forked. */
static void __attribute__((constructor)) lifecycle_init(void)
{
	mod_init();
}

MOD_FIXTURE(lifecycle, true);

/* delete_module must fail because the module is in use (6.1: EWOULDBLOCK). */
#define ASSERT_UNLOAD_BUSY() do {					\
	errno = 0;							\
	ASSERT_EQ(-1, mod_unload()) {					\
		TH_LOG("module unloaded with a channel still open");	\
	}								\
	ASSERT_EQ(EWOULDBLOCK, errno);					\
	ASSERT_TRUE(mod_loaded());					\
	ASSERT_TRUE(dev_exists());					\
} while (0)

TEST_F(lifecycle, busy_while_channel_open)
{
	char buf[8];
	int fd;

	SKIP_IF_NEEDED();
	fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_UNLOAD_BUSY();

	/* The channel is untouched. */
	ASSERT_EQ(2, write(fd, "ok", 2));
	CHECK_READ(fd, buf, "ok");
	close(fd);

	/* O_RDONLY and O_WRONLY channels pin the module too. */
	fd = mpmc_test_open(O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_UNLOAD_BUSY();
	close(fd);
	fd = mpmc_test_open(O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_UNLOAD_BUSY();
	close(fd);
}

TEST_F(lifecycle, busy_while_only_endpoint_open)
{
	static const __u32 roles[] = {
		MPMC_ROLE_SEND | MPMC_ROLE_RECV, MPMC_ROLE_SEND, MPMC_ROLE_RECV,
	};
	unsigned int i;
	char buf[8];

	SKIP_IF_NEEDED();
	for (i = 0; i < 3; i++) {
		struct mpmc_endpoint ep = {
			.roles = roles[i], .flags = O_CLOEXEC | O_NONBLOCK,
		};
		int fd = mpmc_test_open(O_RDWR);
		int efd;

		ASSERT_LE(0, fd);
		efd = ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &ep);
		ASSERT_LE(0, efd);
		ASSERT_EQ(0, close(fd));
		ASSERT_UNLOAD_BUSY();

		/* The endpoint still works on its channel. */
		if (roles[i] == (MPMC_ROLE_SEND | MPMC_ROLE_RECV)) {
			ASSERT_EQ(2, write(efd, "ep", 2));
			CHECK_READ(efd, buf, "ep");
		} else {
			struct mpmc_stats st;

			MPMC_STATS(efd, &st);
			EXPECT_EQ(roles[i] == MPMC_ROLE_SEND ? 1U : 0U,
				  st.send_files);
			EXPECT_EQ(roles[i] == MPMC_ROLE_RECV ? 1U : 0U,
				  st.recv_files);
		}
		ASSERT_EQ(0, close(efd));
	}
}

TEST_F(lifecycle, unload_after_close_and_reload)
{
	struct mpmc_endpoint ep = { .roles = MPMC_ROLE_RECV };
	struct mpmc_config cfg;
	long long end;
	unsigned int i;
	char buf[8];
	int fd, efd, ret;

	SKIP_IF_NEEDED();
	/* Use the module a little first: a channel and an endpoint. */
	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	efd = ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &ep);
	ASSERT_LE(0, efd);
	ASSERT_EQ(3, write(fd, "bye", 3));
	ASSERT_EQ(0, close(fd));
	ASSERT_EQ(0, close(efd));

	/*
	 * Everything is closed. Files of earlier test programs may still be
	 * on their way out (io_uring ring teardown runs from a workqueue),
	 * so allow a bounded wait for EWOULDBLOCK to clear.
	 */
	end = now_ms() + WAIT_MS;
	for (;;) {
		errno = 0;
		ret = mod_unload();
		if (!ret || errno != EWOULDBLOCK || now_ms() > end)
			break;
		usleep(50000);
	}
	ASSERT_EQ(0, ret) {
		TH_LOG("delete_module: %s", strerror(errno));
	}
	EXPECT_FALSE(mod_loaded());
	EXPECT_TRUE(wait_dev(false, WAIT_MS));
	errno = 0;
	EXPECT_ERRNO(ENOENT, open(MPMC_DEV, O_RDWR | O_CLOEXEC));

	/* And back. */
	ASSERT_EQ(0, mod_load()) {
		TH_LOG("finit_module(%s): %s", mod_ko, strerror(errno));
	}
	ASSERT_TRUE(mod_loaded());
	for (i = 0; i < 3; i++)
		if (mod_saved[i])
			EXPECT_EQ(mod_saved[i], mpmc_test_param(mod_param_names[i]));

	fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(64U, cfg.capacity);
	EXPECT_EQ(4096U, cfg.max_msg_size);
	ASSERT_EQ(5, write(fd, "again", 5));
	CHECK_READ(fd, buf, "again");
	close(fd);
}

TEST_HARNESS_MAIN
