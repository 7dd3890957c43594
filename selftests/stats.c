// SPDX-License-Identifier: GPL-2.0
/*
 * Observability: MPMC_IOC_GET_STATS after known sequences of operations
 * (config, queue depth and bytes, shutdown bits, send/recv file counts for
 * every access mode, dup and endpoints, lifetime totals, blocked callers,
 * reserved words), /proc/self/fdinfo lines matching GET_STATS, and EFAULT.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

static int get_stats(int fd, struct mpmc_stats *st)
{
	memset(st, 0xa5, sizeof(*st));
	return ioctl(fd, MPMC_IOC_GET_STATS, st);
}

static bool reserved_zero(const struct mpmc_stats *st)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(st->reserved); i++)
		if (st->reserved[i])
			return false;
	/* Only overwrite mode drops messages. */
	return !st->total_dropped;
}

/*
 * Fetch the stats of @fd into @st with get_stats() (asserted) and expect
 * the STAT()s that follow.
 */
#define EXPECT_GOT_STATS(fd, st, ...) do {				\
	ASSERT_EQ(0, get_stats((fd), &(st)));				\
	EXPECT_STATS_OF(st, __VA_ARGS__);				\
} while (0)

/* The same for the send_files, recv_files and shutdown of @fd's channel. */
#define EXPECT_FILES_SHUT(fd, st, send, recv, how)			\
	EXPECT_GOT_STATS(fd, st, STAT_FILES(send, recv), STAT(shutdown, how))

/* Nothing queued, no shutdown, no caller blocked. */
#define STAT_IDLE							\
	STAT(queued_msgs, 0), STAT(queued_bytes, 0), STAT(shutdown, 0),	\
	STAT(blocked_senders, 0), STAT(blocked_receivers, 0)

TEST(fresh_channel)
{
	struct mpmc_stats st;
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	EXPECT_GOT_STATS(fd, st, STAT(capacity, 64), STAT(max_msg_size, 4096),
			 STAT_FILES(1, 1), STAT_TOTALS(0, 0, 0), STAT_IDLE);
	EXPECT_TRUE(reserved_zero(&st));
	close(fd);
}

TEST(known_sequence)
{
	struct mpmc_config cfg = { .capacity = 8, .max_msg_size = 128 };
	struct mpmc_stats st;
	static char buf[256];
	int fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	int i;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg));
	ASSERT_EQ(10, write(fd, buf, 10));
	ASSERT_EQ(20, write(fd, buf, 20));
	ASSERT_EQ(30, write(fd, buf, 30));
	EXPECT_GOT_STATS(fd, st, STAT(capacity, 8), STAT(max_msg_size, 128),
			 STAT(queued_msgs, 3), STAT(queued_bytes, 60),
			 STAT(total_sent, 3), STAT(total_received, 0));

	ASSERT_EQ(10, read(fd, buf, sizeof(buf)));
	EXPECT_GOT_STATS(fd, st, STAT(queued_msgs, 2), STAT(queued_bytes, 50),
			 STAT(total_sent, 3), STAT(total_received, 1));

	/* Failed calls count for nothing. */
	EXPECT_ERRNO(EMSGSIZE, write(fd, buf, 129));
	EXPECT_ERRNO(EMSGSIZE, read(fd, buf, 5));
	EXPECT_EQ(0, write(fd, buf, 0));
	EXPECT_EQ(0, read(fd, buf, 0));
	EXPECT_GOT_STATS(fd, st, STAT(queued_msgs, 2), STAT(queued_bytes, 50),
			 STAT(total_sent, 3), STAT(total_received, 1));

	/* Fill to capacity; the refused write is not counted. */
	for (i = 0; i < 6; i++)
		ASSERT_EQ(100, write(fd, buf, 100));
	EXPECT_ERRNO(EAGAIN, write(fd, buf, 1));
	EXPECT_GOT_STATS(fd, st, STAT(queued_msgs, 8), STAT(queued_bytes, 650),
			 STAT(total_sent, 9));

	/* Drain; the refused read is not counted. */
	for (i = 0; i < 8; i++)
		ASSERT_LT(0, read(fd, buf, sizeof(buf)));
	EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));
	EXPECT_GOT_STATS(fd, st, STAT(total_sent, 9), STAT(total_received, 9),
			 STAT_IDLE);
	EXPECT_TRUE(reserved_zero(&st));
	close(fd);
}

TEST(files_per_access_mode)
{
	struct mpmc_stats st;
	int rw = mpmc_test_open(O_RDWR);
	int rd = mpmc_test_open(O_RDONLY);
	int wr = mpmc_test_open(O_WRONLY);

	ASSERT_LE(0, rw);
	ASSERT_LE(0, rd);
	ASSERT_LE(0, wr);

	EXPECT_FILES_SHUT(rw, st, 1, 1, 0);

	/* O_RDONLY: no sender can ever exist, born with SHUT_WR. */
	EXPECT_FILES_SHUT(rd, st, 0, 1, MPMC_SHUT_WR);

	/* O_WRONLY: born with SHUT_RD. */
	EXPECT_FILES_SHUT(wr, st, 1, 0, MPMC_SHUT_RD);
	close(rw);
	close(rd);
	close(wr);
}

TEST(dup_and_fork_are_not_new_files)
{
	struct mpmc_stats st;
	int status;
	pid_t pid;
	int fd = mpmc_test_open(O_RDWR);
	int fd2;

	ASSERT_LE(0, fd);
	fd2 = dup(fd);
	ASSERT_LE(0, fd2);
	EXPECT_GOT_STATS(fd, st, STAT_FILES(1, 1));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct mpmc_stats cs;

		if (get_stats(fd, &cs) || cs.send_files != 1 ||
		    cs.recv_files != 1)
			_exit(1);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));

	/* Closing a dup, or the child's exit, releases nothing. */
	close(fd2);
	EXPECT_FILES_SHUT(fd, st, 1, 1, 0);
	close(fd);
}

TEST(endpoints_are_counted)
{
	struct mpmc_stats st;
	int fd = mpmc_test_open(O_RDWR);
	int snd, rcv, both;

	ASSERT_LE(0, fd);
	snd = new_ep(fd, MPMC_ROLE_SEND, 0);
	ASSERT_LE(0, snd);
	EXPECT_GOT_STATS(fd, st, STAT_FILES(2, 1));

	rcv = new_ep(fd, MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, rcv);
	EXPECT_GOT_STATS(fd, st, STAT_FILES(2, 2));

	both = new_ep(fd, MPMC_ROLE_SEND | MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, both);
	EXPECT_GOT_STATS(fd, st, STAT_FILES(3, 3));

	/* Every file sees the same channel. */
	EXPECT_GOT_STATS(snd, st, STAT_FILES(3, 3));

	close(both);
	EXPECT_GOT_STATS(fd, st, STAT_FILES(2, 2));

	/* The original gone, one sender and one receiver remain. */
	close(fd);
	EXPECT_FILES_SHUT(snd, st, 1, 1, 0);

	/* The last receiver gone: SHUT_RD. */
	close(rcv);
	EXPECT_FILES_SHUT(snd, st, 1, 0, MPMC_SHUT_RD);
	close(snd);
}

TEST(last_sender_gone_sets_shut_wr)
{
	struct mpmc_stats st;
	int fd = mpmc_test_open(O_RDWR);
	int snd, rcv;

	ASSERT_LE(0, fd);
	snd = new_ep(fd, MPMC_ROLE_SEND, 0);
	rcv = new_ep(fd, MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, snd);
	ASSERT_LE(0, rcv);
	close(fd);
	close(snd);
	EXPECT_FILES_SHUT(rcv, st, 0, 1, MPMC_SHUT_WR);
	close(rcv);
}

TEST(shutdown_bits)
{
	struct mpmc_stats st;
	char buf[8];
	int a = mpmc_test_open(O_RDWR | O_NONBLOCK);
	int b = mpmc_test_open(O_RDWR | O_NONBLOCK);

	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ASSERT_EQ(1, write(a, "x", 1));
	ASSERT_EQ(0, ioctl(a, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	EXPECT_GOT_STATS(a, st, STAT(shutdown, MPMC_SHUT_WR),
			 STAT(queued_msgs, 1));
	ASSERT_EQ(1, read(a, buf, sizeof(buf)));
	ASSERT_EQ(0, ioctl(a, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RD));
	/* Files keep their roles after a shutdown. */
	EXPECT_GOT_STATS(a, st, STAT(shutdown, MPMC_SHUT_RDWR),
			 STAT(total_sent, 1), STAT(total_received, 1),
			 STAT_FILES(1, 1));

	/* SHUT_RD discards what is queued. */
	ASSERT_EQ(1, write(b, "y", 1));
	ASSERT_EQ(2, write(b, "zz", 2));
	ASSERT_EQ(0, ioctl(b, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RD));
	EXPECT_GOT_STATS(b, st, STAT(shutdown, MPMC_SHUT_RD),
			 STAT(queued_msgs, 0), STAT(queued_bytes, 0),
			 STAT(total_sent, 2), STAT(total_received, 0));
	close(a);
	close(b);
}

TEST(blocked_receivers)
{
	struct mpmc_stats st;
	struct op r[2];
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, start_reader(&r[0], fd, 64));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	ASSERT_EQ(0, start_reader(&r[1], fd, 64));
	ASSERT_EQ(0, wait_blocked(fd, true, 2));
	EXPECT_GOT_STATS(fd, st, STAT(blocked_receivers, 2),
			 STAT(blocked_senders, 0), STAT(queued_msgs, 0));

	/* Which reader gets which message is blocking.c's business. */
	ASSERT_EQ(1, write(fd, "a", 1));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	ASSERT_EQ(1, write(fd, "b", 1));
	ASSERT_EQ(0, op_join(&r[0]));
	ASSERT_EQ(0, op_join(&r[1]));
	EXPECT_EQ(1, r[0].ret);
	EXPECT_EQ(1, r[1].ret);
	EXPECT_GOT_STATS(fd, st, STAT(blocked_receivers, 0),
			 STAT_TOTALS(0, 2, 2));
	close(fd);
}

TEST(blocked_senders)
{
	struct mpmc_config cfg = { .capacity = 1, .max_msg_size = 16 };
	struct mpmc_stats st;
	char buf[16];
	struct op w;
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg));
	ASSERT_EQ(1, write(fd, "1", 1));
	ASSERT_EQ(0, start_writer(&w, fd, "22"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	EXPECT_GOT_STATS(fd, st, STAT(blocked_senders, 1),
			 STAT(blocked_receivers, 0), STAT(queued_msgs, 1),
			 STAT(queued_bytes, 1), STAT(total_sent, 1));

	ASSERT_EQ(1, read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, op_join(&w));
	EXPECT_EQ(2, w.ret);
	EXPECT_GOT_STATS(fd, st, STAT(blocked_senders, 0), STAT(queued_msgs, 1),
			 STAT(queued_bytes, 2), STAT(total_sent, 2),
			 STAT(total_received, 1));
	close(fd);
}

/* The fields of /proc/self/fdinfo/@fd, in the order of the stats struct. */
static const char *const fdinfo_names[] = {
	"capacity", "max_msg_size", "queued_msgs", "queued_bytes", "shutdown",
	"send_files", "recv_files", "blocked_senders", "blocked_receivers",
	"total_sent", "total_received", "total_dropped",
};
#define NR_FIELDS (sizeof(fdinfo_names) / sizeof(fdinfo_names[0]))

static void stats_values(const struct mpmc_stats *st, unsigned long long *v)
{
	v[0] = st->capacity;
	v[1] = st->max_msg_size;
	v[2] = st->queued_msgs;
	v[3] = st->queued_bytes;
	v[4] = st->shutdown;
	v[5] = st->send_files;
	v[6] = st->recv_files;
	v[7] = st->blocked_senders;
	v[8] = st->blocked_receivers;
	v[9] = st->total_sent;
	v[10] = st->total_received;
	v[11] = st->total_dropped;
}

/*
 * Parse the fdinfo of @fd into @v. Each field must appear exactly once as
 * "name:\tvalue". Returns NULL on success, else what went wrong.
 */
static const char *read_fdinfo(int fd, unsigned long long *v, char *why,
			       size_t whylen)
{
	unsigned int seen[NR_FIELDS] = { 0 };
	char path[64], line[256];
	unsigned int i;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f) {
		snprintf(why, whylen, "open %s: %s", path, strerror(errno));
		return why;
	}
	while (fgets(line, sizeof(line), f)) {
		for (i = 0; i < NR_FIELDS; i++) {
			size_t n = strlen(fdinfo_names[i]);
			char *end;

			if (strncmp(line, fdinfo_names[i], n) || line[n] != ':')
				continue;
			if (line[n + 1] != '\t') {
				snprintf(why, whylen, "no tab: %s", line);
				fclose(f);
				return why;
			}
			errno = 0;
			v[i] = strtoull(line + n + 2, &end, 0);
			if (errno || end == line + n + 2 ||
			    (*end != '\n' && *end != '\0')) {
				snprintf(why, whylen, "bad value: %s", line);
				fclose(f);
				return why;
			}
			seen[i]++;
		}
	}
	fclose(f);
	for (i = 0; i < NR_FIELDS; i++) {
		if (seen[i] != 1) {
			snprintf(why, whylen, "field %s seen %u times",
				 fdinfo_names[i], seen[i]);
			return why;
		}
	}
	return NULL;
}

#define ASSERT_FDINFO_MATCHES(fd) do {					\
	unsigned long long __fi[NR_FIELDS], __sv[NR_FIELDS];		\
	struct mpmc_stats __st;						\
	const char *__err;						\
	char __why[300];						\
	unsigned int __i;						\
	__err = read_fdinfo((fd), __fi, __why, sizeof(__why));		\
	ASSERT_EQ(NULL, __err) {					\
		TH_LOG("%s", __err);					\
	}								\
	ASSERT_EQ(0, get_stats((fd), &__st));				\
	stats_values(&__st, __sv);					\
	for (__i = 0; __i < NR_FIELDS; __i++) {				\
		EXPECT_EQ(__sv[__i], __fi[__i]) {			\
			TH_LOG("fdinfo %s", fdinfo_names[__i]);		\
		}							\
	}								\
} while (0)

TEST(fdinfo_matches_stats)
{
	struct mpmc_config cfg = { .capacity = 10, .max_msg_size = 200 };
	struct mpmc_stats st;
	char buf[16];
	int fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	int snd, other;

	ASSERT_LE(0, fd);
	ASSERT_FDINFO_MATCHES(fd);

	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg));
	snd = new_ep(fd, MPMC_ROLE_SEND, 0);
	ASSERT_LE(0, snd);
	ASSERT_EQ(5, write(fd, "11111", 5));
	ASSERT_EQ(7, write(snd, "2222222", 7));
	ASSERT_EQ(3, write(snd, "333", 3));
	ASSERT_EQ(5, read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, get_stats(fd, &st));
	/* Make sure the comparison below is between interesting values. */
	ASSERT_EQ(10U, st.capacity);
	ASSERT_EQ(200U, st.max_msg_size);
	ASSERT_EQ(2U, st.queued_msgs);
	ASSERT_EQ(10U, st.queued_bytes);
	ASSERT_FILES(st, 2U, 1U);
	ASSERT_EQ(3U, st.total_sent);
	ASSERT_EQ(1U, st.total_received);
	ASSERT_FDINFO_MATCHES(fd);
	ASSERT_FDINFO_MATCHES(snd);

	/* Shutdown bits. */
	other = mpmc_test_open(O_RDONLY);
	ASSERT_LE(0, other);
	ASSERT_EQ(0, ioctl(other, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RD));
	ASSERT_EQ(0, get_stats(other, &st));
	ASSERT_EQ((__u32)MPMC_SHUT_RDWR, st.shutdown);
	ASSERT_FDINFO_MATCHES(other);
	close(other);
	close(snd);
	close(fd);
}

TEST(fdinfo_blocked_counts)
{
	struct mpmc_config cfg = { .capacity = 1, .max_msg_size = 16 };
	struct op r, w;
	char buf[16];
	int a = mpmc_test_open(O_RDWR);
	int b = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ASSERT_EQ(0, start_reader(&r, a, 64));
	ASSERT_EQ(0, wait_blocked(a, true, 1));
	ASSERT_FDINFO_MATCHES(a);

	ASSERT_EQ(0, ioctl(b, MPMC_IOC_SET_CONFIG, &cfg));
	ASSERT_EQ(1, write(b, "1", 1));
	ASSERT_EQ(0, start_writer(&w, b, "2"));
	ASSERT_EQ(0, wait_blocked(b, false, 1));
	ASSERT_FDINFO_MATCHES(b);

	ASSERT_EQ(1, write(a, "x", 1));
	ASSERT_EQ(0, op_join(&r));
	ASSERT_EQ(1, read(b, buf, sizeof(buf)));
	ASSERT_EQ(0, op_join(&w));
	ASSERT_FDINFO_MATCHES(a);
	ASSERT_FDINFO_MATCHES(b);
	close(a);
	close(b);
}

TEST(stats_efault)
{
	void *bad[3] = { NULL, BAD_PTR, unmapped_page() };
	int fd = mpmc_test_open(O_RDWR);
	unsigned int i;

	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, bad[2]);
	for (i = 0; i < 3; i++)
		EXPECT_ERRNO(EFAULT, ioctl(fd, MPMC_IOC_GET_STATS, bad[i]));
	close(fd);
}

TEST_HARNESS_MAIN
