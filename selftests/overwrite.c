// SPDX-License-Identifier: GPL-2.0
/*
 * Overwrite mode (SPEC 13, MPMC_CONFIG_OVERWRITE):
 *  - the flag is set and read back (GET_CONFIG), alone and with
 *    MPMC_CONFIG_THROUGHPUT; unknown flag bits are EINVAL;
 *  - capacity 0 with the flag is EINVAL, also while messages are queued
 *    (argument errors before EBUSY), and changes nothing;
 *  - a send to a full channel (write, O_NONBLOCK write, batch with timeout
 *    0 or -1, a batch longer than the capacity) never blocks and never
 *    fails: the oldest message of the lowest priority present is dropped
 *    and the incoming one enters, whatever its priority;
 *  - total_dropped counts the drops, in MPMC_IOC_GET_STATS and in the
 *    fdinfo line "total_dropped:", and not what SHUT_RD discards; a
 *    shut-down channel still fails sends with EPIPE;
 *  - EPOLLOUT whenever a send would not fail (a full channel too), and a
 *    poller waiting for room is woken when the flag is set;
 *  - setting the flag completes every blocked sender, their messages
 *    enqueued in the order they blocked, dropping as needed;
 *  - the tracepoint mpmc:mpmc_drop exists with fields for the channel id,
 *    len and prio, and one drop emits one event with them;
 *  - exactly once for everything not dropped under 4 producers and 2
 *    consumers (sent = received + dropped), also while another thread
 *    turns the flag on and off.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

#define BUFSZ	256

static __u32 get_flags(int fd)
{
	struct mpmc_config cfg;

	if (ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg))
		return ~0U;
	return cfg.flags;
}

/* An overwrite channel of @capacity, max_msg_size 64. */
static int open_ow(__u32 capacity)
{
	int fd = mpmc_test_open_cfg(capacity, 64);

	if (fd >= 0 && set_flags(fd, MPMC_CONFIG_OVERWRITE)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Receive one message (timeout 0) as a string into @buf[BUFSZ]: its length. */
static int recv_str(int fd, char *buf, __u32 *prio)
{
	return recv_msg(fd, buf, BUFSZ, prio, 0);
}

/* Receive what is queued and expect exactly the strings of @want, in order. */
#define EXPECT_DRAIN(fd, ...) do {					\
	static const char *const __w[] = { __VA_ARGS__ };		\
	char __b[BUFSZ];						\
	unsigned int __i;						\
	for (__i = 0; __i < ARRAY_SIZE(__w); __i++) {			\
		ASSERT_EQ((int)strlen(__w[__i]), recv_str((fd), __b, NULL)) \
			TH_LOG("message %u, want %s", __i, __w[__i]);	\
		EXPECT_STREQ(__w[__i], __b);				\
	}								\
	EXPECT_ERRNO(EAGAIN, recv_str((fd), __b, NULL));		\
} while (0)

static long long fdinfo_dropped(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	return scan_file(path, "total_dropped:\t%lld", -1);
}

TEST(flag_set_and_get)
{
	struct mpmc_config cfg;
	int fd;

	fd = mpmc_test_open_cfg(4, 64);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0U, get_flags(fd));
	ASSERT_EQ(0, set_flags(fd, MPMC_CONFIG_OVERWRITE));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(MPMC_CONFIG_OVERWRITE, cfg.flags);
	EXPECT_EQ(4U, cfg.capacity);
	EXPECT_EQ(64U, cfg.max_msg_size);
	ASSERT_EQ(0, set_flags(fd, MPMC_CONFIG_OVERWRITE |
			       MPMC_CONFIG_THROUGHPUT));
	EXPECT_EQ(MPMC_CONFIG_OVERWRITE | MPMC_CONFIG_THROUGHPUT,
		  get_flags(fd));
	/* Unknown bits: EINVAL, nothing changed. */
	EXPECT_ERRNO(EINVAL, set_flags(fd, MPMC_CONFIG_OVERWRITE | 4));
	EXPECT_ERRNO(EINVAL, set_flags(fd, 0x80000000u));
	EXPECT_EQ(MPMC_CONFIG_OVERWRITE | MPMC_CONFIG_THROUGHPUT,
		  get_flags(fd));
	ASSERT_EQ(0, set_flags(fd, 0));
	EXPECT_EQ(0U, get_flags(fd));
	/* The fdinfo line shows the drops count from the start. */
	EXPECT_EQ(0, fdinfo_dropped(fd));
	close(fd);
}

TEST(capacity_0_with_overwrite_einval)
{
	struct mpmc_config cfg;
	int fd;

	fd = mpmc_test_open_cfg(4, 64);
	ASSERT_LE(0, fd);
	EXPECT_ERRNO(EINVAL, set_config(fd, 0, MPMC_CONFIG_OVERWRITE));
	EXPECT_ERRNO(EINVAL, set_config(fd, 0, MPMC_CONFIG_OVERWRITE |
				     MPMC_CONFIG_THROUGHPUT));
	/* Queued messages would make capacity 0 EBUSY: EINVAL comes first. */
	ASSERT_EQ(0, write_str(fd, "q"));
	EXPECT_ERRNO(EINVAL, set_config(fd, 0, MPMC_CONFIG_OVERWRITE));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(4U, cfg.capacity);
	EXPECT_EQ(0U, cfg.flags);
	/* An overwrite channel cannot become a rendezvous one keeping it. */
	ASSERT_EQ(0, set_flags(fd, MPMC_CONFIG_OVERWRITE));
	ASSERT_EQ(1, read(fd, (char[8]){ 0 }, 8));
	EXPECT_ERRNO(EINVAL, set_config(fd, 0, MPMC_CONFIG_OVERWRITE));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(4U, cfg.capacity);
	EXPECT_EQ(MPMC_CONFIG_OVERWRITE, cfg.flags);
	/* Nor a rendezvous channel take the flag. */
	ASSERT_EQ(0, set_config(fd, 0, 0));
	EXPECT_ERRNO(EINVAL, set_config(fd, 0, MPMC_CONFIG_OVERWRITE));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(0U, cfg.capacity);
	EXPECT_EQ(0U, cfg.flags);
	close(fd);
}

/*
 * Capacity 3, full: an O_NONBLOCK write, a timeout-0 batch and a blocking
 * write each get in at once, each dropping the oldest message.
 */
TEST(full_send_never_blocks_drops_oldest)
{
	struct mpmc_stats st;
	struct op wr;
	int fd, nb;

	fd = open_ow(3);
	ASSERT_LE(0, fd);
	nb = new_ep(fd, MPMC_ROLE_SEND, O_NONBLOCK);
	ASSERT_LE(0, nb);
	ASSERT_EQ(0, write_str(fd, "a"));
	ASSERT_EQ(0, write_str(fd, "b"));
	ASSERT_EQ(0, write_str(fd, "c"));
	EXPECT_EQ(0U, stats_of(fd).total_dropped);
	ASSERT_EQ(1, write(nb, "d", 1));
	ASSERT_EQ(1, send_one(fd, "e", 0, 0));
	ASSERT_EQ(0, start_writer(&wr, fd, "f"));
	ASSERT_EQ(0, op_join(&wr)) TH_LOG("a write to a full channel blocked");
	EXPECT_EQ(1, wr.ret);
	ASSERT_EQ(1, send_one(fd, "g", 0, -1));
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 3U, 7U, 0U);
	EXPECT_EQ(4U, st.total_dropped);
	EXPECT_EQ(0U, st.blocked_senders);
	EXPECT_EQ(4, fdinfo_dropped(fd));
	EXPECT_DRAIN(fd, "e", "f", "g");
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 0U, 7U, 3U);
	EXPECT_EQ(4U, st.total_dropped);
	close(nb);
	close(fd);
}

/* A batch of 10 into capacity 3 moves all 10; the last 3 stay. */
TEST(batch_longer_than_capacity_moves_all)
{
	struct mpmc_batch b = { .count = 10 };
	struct mpmc_msgvec v[10];
	char bufs[10][4];
	struct mpmc_stats st;
	int fd = open_ow(3);

	b.vec = (uintptr_t)v;
	ASSERT_LE(0, fd);
	NAME_VEC(v, bufs, 10, "m%d");
	ASSERT_EQ(10, ioctl(fd, MPMC_IOC_SEND, &b));
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 3U, 10U, 0U);
	EXPECT_EQ(7U, st.total_dropped);
	EXPECT_DRAIN(fd, "m7", "m8", "m9");
	close(fd);
}

/*
 * The oldest message of the lowest priority present goes; the incoming one
 * always enters, even when it is lower than everything queued.
 */
TEST(drops_oldest_of_lowest_priority)
{
	struct mpmc_stats st;
	int fd;

	fd = open_ow(4);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, send_one(fd, "x0", 0, 0));
	ASSERT_EQ(1, send_one(fd, "y2", 2, 0));
	ASSERT_EQ(1, send_one(fd, "z0", 0, 0));
	ASSERT_EQ(1, send_one(fd, "w5", 5, 0));
	/* Full. Lowest is 0, its oldest x0. */
	ASSERT_EQ(1, send_one(fd, "n1", 1, 0));
	EXPECT_EQ(1U, stats_of(fd).total_dropped);
	/* Then z0. */
	ASSERT_EQ(1, send_one(fd, "n9", 9, 0));
	/* Now the lowest is n1, though the incoming k0 is lower still. */
	ASSERT_EQ(1, send_one(fd, "k0", 0, 0));
	/* The lowest is k0 alone: it goes, and j0 enters. */
	ASSERT_EQ(1, send_one(fd, "j0", 0, 0));
	MPMC_STATS(fd, &st);
	EXPECT_TOTALS(st, 4U, 8U, 0U);
	EXPECT_EQ(4U, st.total_dropped);
	EXPECT_DRAIN(fd, "n9", "w5", "y2", "j0");
	close(fd);
}

/* Several of the lowest level queued: they go oldest first, others stay. */
TEST(drops_fifo_within_the_lowest_priority)
{
	int fd;

	fd = open_ow(4);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, send_one(fd, "h", 7, 0));
	ASSERT_EQ(1, send_one(fd, "l1", 3, 0));
	ASSERT_EQ(1, send_one(fd, "l2", 3, 0));
	ASSERT_EQ(1, send_one(fd, "l3", 3, 0));
	ASSERT_EQ(1, send_one(fd, "t1", 20, 0));
	ASSERT_EQ(1, send_one(fd, "t2", 20, 0));
	EXPECT_EQ(2U, stats_of(fd).total_dropped);
	EXPECT_DRAIN(fd, "t1", "t2", "h", "l3");
	close(fd);
}

TEST(total_dropped_in_stats_and_fdinfo)
{
	struct mpmc_stats st;
	char buf[BUFSZ];
	int fd, i;

	fd = open_ow(2);
	ASSERT_LE(0, fd);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, write_str(fd, "fill"));
	EXPECT_EQ(0, fdinfo_dropped(fd));
	for (i = 1; i <= 5; i++) {
		ASSERT_EQ(0, write_str(fd, "more"));
		MPMC_STATS(fd, &st);
		EXPECT_EQ((__u64)i, st.total_dropped);
		EXPECT_EQ(i, fdinfo_dropped(fd));
		EXPECT_EQ(2U, st.queued_msgs);
		EXPECT_EQ(8U, st.queued_bytes);
	}
	/* Receiving is not dropping; neither is a write with room. */
	ASSERT_EQ(4, read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, write_str(fd, "room"));
	EXPECT_EQ(5U, stats_of(fd).total_dropped);
	/* The field replaced reserved[0]: the rest stays zero. */
	MPMC_STATS(fd, &st);
	EXPECT_EQ(0U, st.reserved[0]);
	EXPECT_EQ(0U, st.reserved[1]);
	EXPECT_EQ(0U, st.reserved[2]);
	/* Turning the mode off keeps the count. */
	ASSERT_EQ(0, set_flags(fd, 0));
	EXPECT_EQ(5U, stats_of(fd).total_dropped);
	EXPECT_EQ(5, fdinfo_dropped(fd));
	close(fd);
}

/* SHUT_RD discards the queue: not drops. Shut down, sends fail EPIPE. */
TEST(shut_rd_discards_not_counted)
{
	struct mpmc_stats st;
	int fd, fd2;

	fd = open_ow(2);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, write_str(fd, "a"));
	ASSERT_EQ(0, write_str(fd, "b"));
	ASSERT_EQ(0, write_str(fd, "c"));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RD));
	MPMC_STATS(fd, &st);
	EXPECT_EQ(0U, st.queued_msgs);
	EXPECT_EQ(1U, st.total_dropped);
	EXPECT_EQ(1, fdinfo_dropped(fd));
	EXPECT_ERRNO(EPIPE, write(fd, "d", 1));
	EXPECT_ERRNO(EPIPE, send_one(fd, "d", 0, 0));
	EXPECT_EQ(1U, stats_of(fd).total_dropped);
	close(fd);

	/* SHUT_WR: EPIPE too, though a full overwrite channel never blocks. */
	fd2 = open_ow(1);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, write_str(fd2, "a"));
	ASSERT_EQ(0, ioctl(fd2, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	EXPECT_ERRNO(EPIPE, write(fd2, "b", 1));
	MPMC_STATS(fd2, &st);
	EXPECT_EQ(0U, st.total_dropped);
	EXPECT_EQ(1U, st.queued_msgs);
	close(fd2);
}

/* EPOLLOUT whenever a send would not fail: full or not. */
TEST(epollout_while_full)
{
	char big[64];
	int fd, i;

	memset(big, 'x', sizeof(big));
	fd = open_ow(2);
	ASSERT_LE(0, fd);
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(POLLOUT, revents(fd, POLLOUT)) TH_LOG("after %d", i);
		ASSERT_EQ(64, write(fd, big, sizeof(big)));
	}
	EXPECT_EQ(POLLOUT | POLLWRNORM,
		  revents(fd, POLLOUT | POLLWRNORM));
	/* Without the flag the same full channel is not writable. */
	ASSERT_EQ(0, set_flags(fd, 0));
	EXPECT_EQ(0, revents(fd, POLLOUT));
	ASSERT_EQ(0, set_flags(fd, MPMC_CONFIG_OVERWRITE));
	EXPECT_EQ(POLLOUT, revents(fd, POLLOUT));
	/* A send-only endpoint agrees. */
	i = new_ep(fd, MPMC_ROLE_SEND, O_NONBLOCK);
	ASSERT_LE(0, i);
	EXPECT_EQ(POLLOUT, revents(i, POLLOUT));
	ASSERT_EQ(64, write(i, big, sizeof(big)));
	close(i);
	close(fd);
}

/* A poller asleep on a full channel is woken when the flag is set. */
TEST(setting_flag_wakes_pollers)
{
	struct poller p;
	int fd;

	fd = mpmc_test_open_cfg(1, 64);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, write_str(fd, "full"));
	ASSERT_EQ(0, poller_start(&p, fd, POLLOUT));
	usleep(200000);
	ASSERT_EQ(0, set_flags(fd, MPMC_CONFIG_OVERWRITE));
	ASSERT_EQ(0, join_within(p.th));
	EXPECT_EQ(1, p.ret);
	EXPECT_TRUE(p.revents & POLLOUT);
	close(fd);
}

/*
 * Capacity 2, full; three senders asleep (write, batch, write). Setting
 * the flag completes all three, their messages enqueued in the order they
 * blocked: the survivors are the last two to block.
 */
TEST(setting_flag_completes_blocked_senders)
{
	struct mpmc_stats st;
	struct op wr[3];
	int fd, i;

	fd = mpmc_test_open_cfg(2, 64);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, write_str(fd, "a"));
	ASSERT_EQ(0, write_str(fd, "b"));
	ASSERT_EQ(0, op_start(&wr[0], fd, OP_WRITE, "c", 1));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	ASSERT_EQ(0, op_start(&wr[1], fd, OP_BSEND, "d", 1));
	ASSERT_EQ(0, wait_blocked(fd, false, 2));
	ASSERT_EQ(0, op_start(&wr[2], fd, OP_WRITE, "e", 1));
	ASSERT_EQ(0, wait_blocked(fd, false, 3));
	ASSERT_EQ(0, set_flags(fd, MPMC_CONFIG_OVERWRITE));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, op_join(&wr[i])) TH_LOG("sender %d still asleep", i);
		EXPECT_EQ(1, wr[i].ret);
	}
	MPMC_STATS(fd, &st);
	EXPECT_EQ(0U, st.blocked_senders);
	EXPECT_TOTALS(st, 2U, 5U, 0U);
	EXPECT_EQ(3U, st.total_dropped);
	EXPECT_DRAIN(fd, "d", "e");
	close(fd);
}

/* Setting the flag together with a larger capacity: no drop needed. */
TEST(setting_flag_with_room_drops_nothing)
{
	struct mpmc_stats st;
	struct op wr[2];
	int fd, i;

	fd = mpmc_test_open_cfg(1, 64);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, write_str(fd, "a"));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, start_writer(&wr[i], fd, i ? "c" : "b"));
		ASSERT_EQ(0, wait_blocked(fd, false, i + 1));
	}
	ASSERT_EQ(0, set_config(fd, 3, MPMC_CONFIG_OVERWRITE));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, op_join(&wr[i]));
		EXPECT_EQ(1, wr[i].ret);
	}
	MPMC_STATS(fd, &st);
	EXPECT_EQ(0U, st.total_dropped);
	EXPECT_DRAIN(fd, "a", "b", "c");
	close(fd);
}

/* ---- the mpmc:mpmc_drop tracepoint ---------------------------------- */

static const char *tracefs_root(void)
{
	static const char *const roots[] = {
		"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
	};
	char p[128];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(roots); i++) {
		snprintf(p, sizeof(p), "%s/events", roots[i]);
		if (!access(p, R_OK))
			return roots[i];
	}
	return NULL;
}

/* Does a format file's text have a field named @name (any type)? */
static bool has_field(const char *text, const char *name)
{
	const char *p = text;
	size_t n = strlen(name);

	while ((p = strstr(p, "\tfield:"))) {
		const char *semi = strchr(p, ';');
		const char *q = semi;

		if (!semi)
			return false;
		/* The name is the last word before ';' (maybe "name[N]"). */
		while (q > p && q[-1] != ' ')
			q--;
		if ((size_t)(semi - q) == n && !strncmp(q, name, n))
			return true;
		p = semi;
	}
	return false;
}

TEST(drop_tracepoint_has_id_len_prio)
{
	const char *root = tracefs_root();
	char path[256], text[4096];

	if (!root)
		SKIP(return, "no tracefs (not mounted, or not root)");
	snprintf(path, sizeof(path), "%s/events/mpmc/mpmc_send/format", root);
	if (access(path, R_OK))
		SKIP(return, "no mpmc events in %s/events", root);
	snprintf(path, sizeof(path), "%s/events/mpmc/mpmc_drop/format", root);
	ASSERT_LT(0, read_file(path, text, sizeof(text)))
		TH_LOG("%s: %s", path, strerror(errno));
	EXPECT_NE(NULL, strstr(text, "name: mpmc_drop\n")) TH_LOG("%s", text);
	EXPECT_TRUE(has_field(text, "id") || has_field(text, "chan"))
		TH_LOG("%s", text);
	EXPECT_TRUE(has_field(text, "len")) TH_LOG("%s", text);
	EXPECT_TRUE(has_field(text, "prio")) TH_LOG("%s", text);
}

/* The number after "@name=" or "@name: " in @line; -1 if none. */
static long long field_in(const char *line, const char *name)
{
	const char *p = line;
	size_t n = strlen(name);

	while ((p = strstr(p, name))) {
		bool word = p == line || p[-1] == ' ' || p[-1] == '\t';
		const char *q = p + n;

		p += n;
		if (!word || (*q != '=' && *q != ':'))
			continue;
		q++;
		while (*q == ' ')
			q++;
		if (*q >= '0' && *q <= '9')
			return strtoll(q, NULL, 10);
	}
	return -1;
}

/*
 * One drop, traced in a private tracefs instance: one mpmc_drop event,
 * with the dropped message's length and priority.
 */
TEST(drop_tracepoint_fires)
{
	const char *root = tracefs_root();
	char dir[200], path[300], *text, *line, *save;
	int fd, events = 0, good = 0;
	size_t size = 1 << 16;

	if (!root)
		SKIP(return, "no tracefs (not mounted, or not root)");
	snprintf(path, sizeof(path), "%s/events/mpmc/mpmc_drop/format", root);
	if (access(path, R_OK))
		SKIP(return, "no mpmc:mpmc_drop in %s/events", root);
	snprintf(dir, sizeof(dir), "%s/instances/mpmc_overwrite.%d", root,
		 (int)getpid());
	if (mkdir(dir, 0700))
		SKIP(return, "cannot make a tracefs instance: %s",
		     strerror(errno));
	snprintf(path, sizeof(path), "%s/events/mpmc/mpmc_drop/enable", dir);
	ASSERT_EQ(0, write_file(path, "1", O_TRUNC));
	snprintf(path, sizeof(path), "%s/tracing_on", dir);
	ASSERT_EQ(0, write_file(path, "1", O_TRUNC));

	fd = open_ow(2);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, send_one(fd, "hi", 30, 0));
	ASSERT_EQ(1, send_one(fd, "dropme", 7, 0));
	ASSERT_EQ(1, send_one(fd, "new", 9, 0));	/* drops "dropme" */
	EXPECT_EQ(1U, stats_of(fd).total_dropped);
	close(fd);

	snprintf(path, sizeof(path), "%s/events/mpmc/mpmc_drop/enable", dir);
	write_file(path, "0", O_TRUNC);
	text = malloc(size);
	ASSERT_NE(NULL, text);
	snprintf(path, sizeof(path), "%s/trace", dir);
	ASSERT_LE(0, read_file(path, text, size));
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' || !strstr(line, "mpmc_drop:"))
			continue;
		events++;
		if (field_in(line, "len") == 6 && field_in(line, "prio") == 7)
			good++;
		else
			TH_LOG("unexpected event: %s", line);
	}
	EXPECT_EQ(1, events);
	EXPECT_EQ(1, good);
	free(text);
	EXPECT_EQ(0, rmdir(dir));
}

/* ---- exactly once under load ---------------------------------------- */

#define PRODUCERS	4
#define CONSUMERS	2
#define PER_PRODUCER	3000

struct load {
	int fd;
	atomic_int producers_left;
	atomic_uint seen[PRODUCERS][PER_PRODUCER];
	atomic_int bad;
	atomic_long received;
	atomic_long sent;
};

/* Message (prod, seq) at priority seq % 4; every 7th goes through write(). */
static void *producer(void *arg)
{
	struct peer *w = arg;
	struct load *load = w->ctx;
	uint32_t m[3] = { w->id };
	int i;

	for (i = 0; i < PER_PRODUCER; i++) {
		struct mpmc_msgvec v = {
			.buf = (uintptr_t)m, .len = sizeof(m), .prio = i % 4,
		};

		m[1] = i;
		m[2] = ~(uint32_t)i;
		if (i % 7 == 0) {
			v.prio = 0;
			if (write(load->fd, m, sizeof(m)) != sizeof(m))
				break;
		} else if (batch_of_one(load->fd, MPMC_IOC_SEND, &v, 0,
					-1) != 1) {
			break;
		}
		atomic_fetch_add(&load->sent, 1);
	}
	if (atomic_fetch_sub(&load->producers_left, 1) == 1)
		ioctl(load->fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR);
	return NULL;
}

/*
 * Count message @m as received: false if it is malformed (then not
 * counted) or out of order within its (producer, priority).
 */
static bool take(struct load *load, int last[PRODUCERS][4], const uint32_t *m)
{
	bool in_order;
	int prio;

	if (m[0] >= PRODUCERS || m[1] >= PER_PRODUCER || m[2] != ~m[1])
		return false;
	prio = m[1] % 7 == 0 ? 0 : m[1] % 4;
	/* FIFO within a priority, for each producer. */
	in_order = (int)m[1] > last[m[0]][prio];
	last[m[0]][prio] = m[1];
	atomic_fetch_add(&load->seen[m[0]][m[1]], 1);
	atomic_fetch_add(&load->received, 1);
	return in_order;
}

static void *consumer(void *arg)
{
	struct load *load = ((struct peer *)arg)->ctx;
	int last[PRODUCERS][4];
	uint32_t m[3];
	ssize_t n;

	memset(last, 0xff, sizeof(last));	/* all -1 */
	while ((n = read(load->fd, m, sizeof(m))) == sizeof(m))
		if (!take(load, last, m))
			atomic_fetch_add(&load->bad, 1);
	if (n != 0)
		atomic_fetch_add(&load->bad, 1);
	return NULL;
}

static void run_load(struct __test_metadata *_metadata, bool flip)
{
	struct peer p[PRODUCERS], c[CONSUMERS];
	struct load *load = calloc(1, sizeof(*load));
	long long twice = 0, got = 0;
	struct mpmc_stats st;
	struct flipper f;
	int i, j;

	ASSERT_NE(NULL, load);
	load->fd = open_ow(4);
	ASSERT_LE(0, load->fd);
	atomic_store(&load->producers_left, PRODUCERS);
	if (flip)
		ASSERT_EQ(0, flipper_start(&f, load->fd, MPMC_CONFIG_OVERWRITE,
					   MPMC_CONFIG_OVERWRITE, 1000));
	ASSERT_EQ(0, peers_start(c, CONSUMERS, load, consumer));
	ASSERT_EQ(0, peers_start(p, PRODUCERS, load, producer));
	peers_join(p, PRODUCERS);
	if (flip)
		flipper_stop(&f);
	peers_join(c, CONSUMERS);
	for (i = 0; i < PRODUCERS; i++)
		for (j = 0; j < PER_PRODUCER; j++) {
			got += load->seen[i][j] > 0;
			twice += load->seen[i][j] > 1;
		}
	MPMC_STATS(load->fd, &st);
	TH_LOG("sent %ld received %ld dropped %llu",
		       atomic_load(&load->sent), atomic_load(&load->received),
		       (unsigned long long)st.total_dropped);
	EXPECT_EQ(PRODUCERS * PER_PRODUCER, atomic_load(&load->sent));
	EXPECT_EQ(0, twice);
	EXPECT_EQ(0, atomic_load(&load->bad));
	EXPECT_EQ(0U, st.queued_msgs);
	EXPECT_EQ((__u64)PRODUCERS * PER_PRODUCER, st.total_sent);
	EXPECT_EQ((__u64)atomic_load(&load->received), st.total_received);
	/* Everything sent was received once or dropped (and counted). */
	EXPECT_EQ(got, atomic_load(&load->received));
	EXPECT_EQ((__u64)PRODUCERS * PER_PRODUCER,
		  st.total_received + st.total_dropped);
	close(load->fd);
	free(load);
}

TEST(exactly_once_or_dropped_4_to_2)
{
	run_load(_metadata, false);
}

TEST(exactly_once_or_dropped_while_the_flag_flips)
{
	run_load(_metadata, true);
}

TEST_HARNESS_MAIN
