// SPDX-License-Identifier: GPL-2.0
/*
 * The parked-READ herd: what 6.1's io_uring does with 64 READs parked on
 * one /dev/mpmc channel while thousands of messages are written one by
 * one: every event wakes every parked request, and a request gets 128 poll
 * arms before it falls back to a blocking read in an io-wq ("iou-wrk")
 * worker. It asserts only the contract (every message received exactly
 * once) and prints the figures: iou-wrk threads (peak and at the end), how
 * many messages were received by which path and, when tracefs is there,
 * the io_uring poll arms, poll wakeups and io-wq punts counted by hist
 * triggers. The functional io_uring tests are in uring.c.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <liburing.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

/*
 * The measurement: io_uring events counted by hist triggers in tracefs
 * (when available), and mpmc:mpmc_wake (hand-offs to blocked receivers)
 * counted in the trace buffer.
 */
#define TRACEFS		"/sys/kernel/tracing"
#define HIST_TRIGGER	"hist:keys=common_pid"

static const char *const uring_events[] = {
	"io_uring_poll_arm",		/* a request parked on a poll queue */
	"io_uring_task_add",		/* a parked request woken */
	"io_uring_queue_async_work",	/* a request punted to io-wq */
};

#define NR_UEV	ARRAY_SIZE(uring_events)

/* "Hits: N" of the Totals section of an event's hist file; -1 if none. */
static long long hist_hits(const char *event)
{
	char path[256];

	snprintf(path, sizeof(path), TRACEFS "/events/io_uring/%s/hist", event);
	return scan_file(path, " Hits: %lld", -1);
}

static void uring_triggers(bool on)
{
	char path[256];
	unsigned int i;

	for (i = 0; i < NR_UEV; i++) {
		snprintf(path, sizeof(path),
			 TRACEFS "/events/io_uring/%s/trigger", uring_events[i]);
		/* Always remove first: a leftover trigger would add up. */
		write_file(path, "!" HIST_TRIGGER, O_TRUNC);
		if (on)
			write_file(path, HIST_TRIGGER, O_TRUNC);
	}
}

/* Count lines of the trace buffer that contain @what. */
static long long trace_lines(const char *what)
{
	char line[512];
	long long n = 0;
	FILE *f = fopen(TRACEFS "/trace", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, what))
			n++;
	fclose(f);
	return n;
}

FIXTURE(measure) {
	bool hist;	/* io_uring hist triggers installed */
	bool wake;	/* mpmc:mpmc_wake traced into the buffer */
};

FIXTURE_SETUP(measure)
{
	self->hist = false;
	self->wake = false;
	if (access(TRACEFS "/events/io_uring/io_uring_poll_arm/trigger",
		   W_OK) == 0) {
		uring_triggers(true);
		self->hist = hist_hits(uring_events[0]) >= 0;
	}
	if (access(TRACEFS "/events/mpmc/mpmc_wake/enable", W_OK) == 0) {
		write_file(TRACEFS "/trace", "", O_TRUNC);
		self->wake =
			!write_file(TRACEFS "/events/mpmc/mpmc_wake/filter",
				    "dir == 1 && result == 0", O_TRUNC) &&
			!write_file(TRACEFS "/events/mpmc/mpmc_wake/enable",
				    "1", O_TRUNC);
	}
}

FIXTURE_TEARDOWN(measure)
{
	if (self->hist)
		uring_triggers(false);
	if (self->wake) {
		write_file(TRACEFS "/events/mpmc/mpmc_wake/enable", "0", O_TRUNC);
		write_file(TRACEFS "/events/mpmc/mpmc_wake/filter", "0", O_TRUNC);
		write_file(TRACEFS "/trace", "", O_TRUNC);
	}
}

#define MAX_HERD	256
#define MAX_MSGS	10000
#define MSG_LEN		12

/*
 * @nr_parked READs parked on one channel; @nr_msgs messages written one by
 * one by this thread, each completed READ re-armed at once. Asserts that
 * every message is received exactly once; prints the cost.
 */
static void run_herd(struct __test_metadata *_metadata,
		     FIXTURE_DATA(measure) *self, int nr_parked, int nr_msgs)
{
	static char bufs[MAX_HERD][64];
	static unsigned char seen[MAX_MSGS];
	unsigned long long armed_at[MAX_HERD], written = 0;
	long long arms0[NR_UEV], arms1[NR_UEV], t0, t1, end, h = -1;
	int fd, rx, tx, i, nwrk, peak = 0, sample = 0, wait;
	long inline_done = 0, handoff_est = 0, received = 0;
	pid_t tids[256], all_tids[512];
	int nall = 0, j, k, id, submit;
	struct io_uring ring;
	struct mpmc_stats st;
	struct cqe c;
	char msg[32];
	unsigned int u;

	ASSERT_GE(MAX_HERD, nr_parked);
	ASSERT_GE(MAX_MSGS, nr_msgs);
	memset(seen, 0, sizeof(seen));
	/*
	 * The READs use a blocking RECV endpoint (an io-wq fallback then
	 * sleeps in read; on an O_NONBLOCK file it would complete with
	 * EAGAIN), the writes a non-blocking SEND endpoint.
	 */
	fd = mpmc_test_open_cfg(1024, 64);
	ASSERT_LE(0, fd);
	rx = new_ep(fd, MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, rx);
	tx = new_ep(fd, MPMC_ROLE_SEND, O_NONBLOCK);
	ASSERT_LE(0, tx);
	RING_INIT(&ring, 2 * nr_parked);
	for (u = 0; u < NR_UEV; u++)
		arms0[u] = self->hist ? hist_hits(uring_events[u]) : -1;

	for (i = 0; i < nr_parked; i++) {
		prep_read(&ring, rx, bufs[i], sizeof(bufs[i]), i);
		armed_at[i] = ~0ULL;	/* never "inline": the channel is empty */
	}
	ASSERT_EQ(nr_parked, io_uring_submit(&ring));
	ASSERT_EQ(0, count_iou_wrk(NULL, 0));

	t0 = now_ms();
	end = t0 + 45000;
	for (i = 0; i < nr_msgs || received < nr_msgs; ) {
		ASSERT_GT(end, now_ms())
			TH_LOG("stuck: %d written, %ld received", i, received);
		if (i < nr_msgs) {
			st = stats_of(fd);
			snprintf(msg, sizeof(msg), "msg-%08d", i);
			if (write(tx, msg, MSG_LEN) == MSG_LEN) {
				/* Blocked receivers are io-wq workers here. */
				if (st.blocked_receivers)
					handoff_est++;
				i++;
				written++;
			} else {
				ASSERT_EQ(EAGAIN, errno);
			}
		}
		/*
		 * Reap what is there (wait only when nothing is left to
		 * write) and re-arm; then look again at once, so that a READ
		 * completed inline by its submission is seen before the next
		 * write.
		 */
		wait = i < nr_msgs ? 0 : 100;
		for (;;) {
			submit = 0;
			while (!get_cqe(&ring, wait, &c)) {
				ASSERT_GT(nr_parked, (int)c.ud);
				ASSERT_EQ(MSG_LEN, c.res)
					TH_LOG("READ %llu: res %d",
					       (unsigned long long)c.ud, c.res);
				bufs[c.ud][MSG_LEN] = '\0';
				ASSERT_EQ(1, sscanf(bufs[c.ud], "msg-%d", &id));
				ASSERT_LE(0, id);
				ASSERT_GT(i, id);
				ASSERT_EQ(0, seen[id])
					TH_LOG("message %d received twice", id);
				seen[id] = 1;
				received++;
				if (armed_at[c.ud] == written)
					inline_done++;
				prep_read(&ring, rx, bufs[c.ud],
					  sizeof(bufs[c.ud]), c.ud);
				armed_at[c.ud] = written;
				submit++;
			}
			if (!submit)
				break;
			ASSERT_EQ(submit, io_uring_submit(&ring));
			wait = 0;
		}
		if (++sample % 25 == 0 || i == nr_msgs) {
			nwrk = count_iou_wrk(tids, 256);
			if (nwrk > peak)
				peak = nwrk;
			for (j = 0; j < nwrk && j < 256; j++) {
				for (k = 0; k < nall; k++)
					if (all_tids[k] == tids[j])
						break;
				if (k == nall && nall < 512)
					all_tids[nall++] = tids[j];
			}
		}
	}
	t1 = now_ms();
	nwrk = count_iou_wrk(NULL, 0);
	if (nwrk > peak)
		peak = nwrk;
	for (u = 0; u < NR_UEV; u++)
		arms1[u] = self->hist ? hist_hits(uring_events[u]) : -1;

	if (self->wake)
		h = trace_lines("mpmc_wake");	/* before shutdown wakes more */
	st = stats_of(fd);
	EXPECT_EQ((__u64)nr_msgs, st.total_sent);
	EXPECT_EQ((__u64)nr_msgs, st.total_received);
	EXPECT_EQ(0U, st.queued_msgs);
	for (j = 0; j < nr_msgs; j++)
		ASSERT_EQ(1, seen[j]) TH_LOG("message %d never received", j);

	/* The READs still outstanding get EOF on shutdown. */
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	for (j = 0; j < nr_parked; j++) {
		ASSERT_EQ(0, get_cqe(&ring, WAIT_MS, &c));
		EXPECT_EQ(0, c.res);
	}

	ksft_print_msg("uring herd: %d parked READs, %d messages written one by one, %lld ms\n",
		       nr_parked, nr_msgs, t1 - t0);
	ksft_print_msg("uring herd: iou-wrk threads: %d at the end, peak %d (sampled every 25 writes), %d distinct\n",
		       nwrk, peak, nall);
	if (self->wake) {
		ksft_print_msg("uring herd: received by hand-off to a READ blocked in an io-wq worker: %lld (mpmc:mpmc_wake), %ld (stats estimate)\n",
			       h, handoff_est);
		ksft_print_msg("uring herd: received inline at submit: %ld; by a parked READ after a poll wakeup: %lld\n",
			       inline_done, nr_msgs - inline_done - h);
	} else {
		ksft_print_msg("uring herd: received by hand-off to io-wq (stats estimate): %ld; inline at submit: %ld; after a poll wakeup: %ld\n",
			       handoff_est, inline_done,
			       nr_msgs - inline_done - handoff_est);
	}
	if (self->hist) {
		for (u = 0; u < NR_UEV; u++)
			ksft_print_msg("uring herd: %s: %lld (%.1f per message)\n",
				       uring_events[u], arms1[u] - arms0[u],
				       (double)(arms1[u] - arms0[u]) /
				       nr_msgs);
	} else {
		ksft_print_msg("uring herd: tracefs hist triggers unavailable: no io_uring event counts\n");
	}
	/* The harness ends the test child with _exit(): flush the figures. */
	fflush(stdout);
	io_uring_queue_exit(&ring);
	close(rx);
	close(tx);
	close(fd);
}

/* Message count: @def, or $MPMC_HERD_MSGS (1..MAX_MSGS) for a longer run. */
static int herd_msgs(int def)
{
	const char *env = getenv("MPMC_HERD_MSGS");
	int n = env ? atoi(env) : 0;

	return n > 0 && n <= MAX_MSGS ? n : def;
}

/*
 * The figures: 64 READs parked while messages are written one by one,
 * 10,000 messages in the original measurement; the default is
 * 5,000 to keep the program short in an emulated guest (the costs are per
 * message); MPMC_HERD_MSGS=10000 runs the full count.
 */
TEST_F_TIMEOUT(measure, parked_reads_64_herd, 60)
{
	run_herd(_metadata, self, 64, herd_msgs(5000));
}

/*
 * For comparison: more parked READs than io_uring's poll retry budget
 * (128 arms), fewer messages.
 */
TEST_F_TIMEOUT(measure, parked_reads_160_herd, 60)
{
	run_herd(_metadata, self, 160, 1000);
}

TEST_HARNESS_MAIN
