// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation failures: failslab and fail_page_alloc (debugfs) aimed at the
 * threads of a producer/consumer stress run (task-filter plus
 * /proc/thread-self/make-it-fail), sleeping allocations included
 * (ignore-gfp-wait=N). Every failure must reach the caller as a clean
 * ENOMEM (EAGAIN for RWF_NOWAIT, which must not sleep in the allocator),
 * and no message may be lost or duplicated: every acknowledged send is
 * received exactly once, and nothing that was not acknowledged is
 * received. Leaks are caught by kmemleak on the debug kernels
 * (tools/vm-run scans after the run).
 *
 * Skipped on kernels without fault injection (CONFIG_FAULT_INJECTION,
 * CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS) and when not root.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

#define DBG		"/sys/kernel/debug"
#define NPROD		2
#define NCONS		2
#define PER_PROD	1200
#define MAX_ATTEMPTS	(PER_PROD * 8)
#define MSG_MAX		8192
#define PROBABILITY	"10"

struct hdr {
	uint32_t prod;
	uint32_t seq;
	uint32_t len;
	uint32_t magic;
};

#define MAGIC 0x6d706d63

static int chan;
static _Atomic unsigned char acked[NPROD][MAX_ATTEMPTS];
static _Atomic unsigned char got[NPROD][MAX_ATTEMPTS];
static atomic_ulong nomem, nowait_again, bad_errno, corrupt, sent_ok;
static atomic_int last_bad_errno;
static _Atomic(const char *) last_bad_op;

/* The fault injection knobs we touch, and their values before the test. */
static const char *const knobs[] = {
	"failslab/probability", "failslab/interval", "failslab/times",
	"failslab/space", "failslab/verbose", "failslab/task-filter",
	"failslab/ignore-gfp-wait", "failslab/cache-filter",
	"fail_page_alloc/probability", "fail_page_alloc/interval",
	"fail_page_alloc/times", "fail_page_alloc/space",
	"fail_page_alloc/verbose", "fail_page_alloc/task-filter",
	"fail_page_alloc/ignore-gfp-wait", "fail_page_alloc/ignore-gfp-highmem",
	"fail_page_alloc/min-order",
};
#define NKNOBS (sizeof(knobs) / sizeof(knobs[0]))

static int knob(const char *name, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), DBG "/%s", name);
	return write_file(path, val, 0);
}

static void make_it_fail(bool on)
{
	write_file("/proc/thread-self/make-it-fail", on ? "1" : "0", 0);
}

static void bad(const char *op, int err)
{
	atomic_fetch_add(&bad_errno, 1);
	atomic_store(&last_bad_errno, err);
	atomic_store(&last_bad_op, op);
}

static uint32_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s >> 11;
}

static void fill(char *buf, uint32_t prod, uint32_t seq, uint32_t len)
{
	struct hdr h = { prod, seq, len, MAGIC };
	uint32_t i;

	memcpy(buf, &h, sizeof(h));
	for (i = sizeof(h); i < len; i++)
		buf[i] = (char)(seq * 31 + i);
}

static void check(const char *buf, ssize_t n)
{
	struct hdr h;
	ssize_t i;

	if (n < (ssize_t)sizeof(h)) {
		atomic_fetch_add(&corrupt, 1);
		return;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.magic != MAGIC || h.prod >= NPROD || h.seq >= MAX_ATTEMPTS ||
	    h.len != n) {
		atomic_fetch_add(&corrupt, 1);
		return;
	}
	for (i = sizeof(h); i < n; i++) {
		if (buf[i] != (char)(h.seq * 31 + i)) {
			atomic_fetch_add(&corrupt, 1);
			return;
		}
	}
	atomic_fetch_add(&got[h.prod][h.seq], 1);
}

static void *producer(void *arg)
{
	uint32_t prod = (uintptr_t)arg, seq = 0, acks = 0;
	static __thread char buf[4][MSG_MAX];
	uint64_t s = 0x1234567ULL * (prod + 1);

	make_it_fail(true);
	while (acks < PER_PROD && seq + 4 < MAX_ATTEMPTS) {
		uint32_t len = sizeof(struct hdr) + rnd(&s) % 200;
		uint32_t op = rnd(&s) % 8;
		struct iovec iov[10];
		ssize_t n;
		int i, k;

		if (rnd(&s) % 8 == 0)
			len = sizeof(struct hdr) + rnd(&s) % (MSG_MAX - sizeof(struct hdr) + 1);
		fill(buf[0], prod, seq, len);
		if (op <= 2) {
			n = write(chan, buf[0], len);
			if (n == len) {
				atomic_store(&acked[prod][seq], 1);
				acks++;
			} else if (n >= 0) {
				bad("write (short)", 0);
			} else if (errno == ENOMEM) {
				atomic_fetch_add(&nomem, 1);
			} else {
				bad("write", errno);
			}
			seq++;
		} else if (op <= 4) {
			/*
			 * writev: more than UIO_FASTIOV segments, so the VFS
			 * allocates the iovec array (ENOMEM possible there too).
			 * RWF_NOWAIT: few segments, no VFS allocation: the only
			 * allocation is the module's, which must give EAGAIN.
			 */
			int nseg = op == 3 ? 10 : 4;

			for (i = 0; i < nseg; i++) {
				iov[i].iov_base = buf[0] + i * (len / nseg);
				iov[i].iov_len = i < nseg - 1 ? len / nseg :
					len - (nseg - 1) * (len / nseg);
			}
			n = op == 3 ? writev(chan, iov, nseg) :
				      pwritev2(chan, iov, nseg, -1, RWF_NOWAIT);
			if (n == len) {
				atomic_store(&acked[prod][seq], 1);
				acks++;
			} else if (n >= 0) {
				bad("writev (short)", 0);
			} else if (errno == ENOMEM && op == 3) {
				atomic_fetch_add(&nomem, 1);
			} else if (errno == EAGAIN && op == 4) {
				atomic_fetch_add(&nowait_again, 1);
			} else {
				bad(op == 3 ? "writev" : "pwritev2(RWF_NOWAIT)", errno);
			}
			seq++;
		} else {
			struct mpmc_msgvec v[4];
			struct mpmc_batch b = {
				.vec = (uintptr_t)v, .count = 1 + rnd(&s) % 4,
				.timeout_ns = -1,
			};

			for (k = 0; k < (int)b.count; k++) {
				uint32_t l = sizeof(struct hdr) + rnd(&s) % 300;

				fill(buf[k], prod, seq + k, l);
				v[k].buf = (uintptr_t)buf[k];
				v[k].len = l;
				v[k].prio = 0;
			}
			n = ioctl(chan, MPMC_IOC_SEND, &b);
			if (n > 0 && n <= (ssize_t)b.count) {
				for (k = 0; k < n; k++)
					atomic_store(&acked[prod][seq + k], 1);
				acks += n;
			} else if (n >= 0) {
				bad("MPMC_IOC_SEND (count)", 0);
			} else if (errno == ENOMEM) {
				atomic_fetch_add(&nomem, 1);
			} else {
				bad("MPMC_IOC_SEND", errno);
			}
			seq += b.count;
		}
	}
	make_it_fail(false);
	atomic_fetch_add(&sent_ok, acks);
	return NULL;
}

static void *consumer(void *arg)
{
	static __thread char buf[4][MSG_MAX];
	uint64_t s = 0xabcdefULL * ((uintptr_t)arg + 1);

	make_it_fail(true);
	for (;;) {
		uint32_t op = rnd(&s) % 8;
		struct iovec iov[10];
		ssize_t n;
		int i;

		if (op <= 2) {
			n = read(chan, buf[0], MSG_MAX);
			if (n > 0)
				check(buf[0], n);
			else if (n == 0)
				break;
			else if (errno == ENOMEM)
				atomic_fetch_add(&nomem, 1);
			else
				bad("read", errno);
		} else if (op <= 4) {
			/* As for writev above: 10 segments, or 4 with NOWAIT. */
			int nseg = op == 3 ? 10 : 4;

			for (i = 0; i < nseg; i++) {
				iov[i].iov_base = buf[0] + i * (MSG_MAX / nseg);
				iov[i].iov_len = i < nseg - 1 ? MSG_MAX / nseg :
					MSG_MAX - (nseg - 1) * (MSG_MAX / nseg);
			}
			n = op == 3 ? readv(chan, iov, nseg) :
				      preadv2(chan, iov, nseg, -1, RWF_NOWAIT);
			if (n > 0)
				check(buf[0], n);
			else if (n == 0)
				break;
			else if (errno == ENOMEM && op == 3)
				atomic_fetch_add(&nomem, 1);
			else if (errno == EAGAIN && op == 4)
				atomic_fetch_add(&nowait_again, 1);
			else
				bad(op == 3 ? "readv" : "preadv2(RWF_NOWAIT)", errno);
			if (op == 4 && n < 0)
				usleep(100);
		} else {
			struct mpmc_msgvec v[4];
			struct mpmc_batch b = {
				.vec = (uintptr_t)v, .count = 1 + rnd(&s) % 4,
				.timeout_ns = -1,
			};
			int k;

			for (k = 0; k < (int)b.count; k++) {
				v[k].buf = (uintptr_t)buf[k];
				v[k].len = MSG_MAX;
				v[k].prio = 0;
			}
			n = ioctl(chan, MPMC_IOC_RECV, &b);
			if (n > 0 && n <= (ssize_t)b.count) {
				for (k = 0; k < n; k++)
					check(buf[k], v[k].len);
			} else if (n == 0) {
				break;
			} else if (n > 0) {
				bad("MPMC_IOC_RECV (count)", 0);
			} else if (errno == ENOMEM) {
				atomic_fetch_add(&nomem, 1);
			} else {
				bad("MPMC_IOC_RECV", errno);
			}
		}
	}
	make_it_fail(false);
	return NULL;
}

/* Endpoints and channels come and go while allocations fail. */
static volatile int churn_stop;

static void *churner(void *arg)
{
	struct mpmc_endpoint ep = { .roles = MPMC_ROLE_RECV | MPMC_ROLE_SEND };
	int fd;

	(void)arg;
	make_it_fail(true);
	while (!churn_stop) {
		fd = ioctl(chan, MPMC_IOC_NEW_ENDPOINT, &ep);
		if (fd >= 0)
			close(fd);
		else if (errno == ENOMEM)
			atomic_fetch_add(&nomem, 1);
		else
			bad("MPMC_IOC_NEW_ENDPOINT", errno);
		fd = open(MPMC_DEV, O_RDWR | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0) {
			if (write(fd, "x", 1) != 1 && errno != ENOMEM)
				bad("write (new channel)", errno);
			close(fd);
		} else if (errno == ENOMEM) {
			atomic_fetch_add(&nomem, 1);
		} else {
			bad("open", errno);
		}
		usleep(200);
	}
	make_it_fail(false);
	return NULL;
}

FIXTURE(fault)
{
	char saved[NKNOBS][64];
	bool have[NKNOBS];
	bool armed;
};

FIXTURE_SETUP(fault)
{
	unsigned int i;
	char path[128];

	self->armed = false;
	if (geteuid() != 0)
		return;
	if (access(DBG "/failslab/probability", W_OK) ||
	    access("/proc/thread-self/make-it-fail", W_OK))
		return;
	for (i = 0; i < NKNOBS; i++) {
		snprintf(path, sizeof(path), DBG "/%s", knobs[i]);
		self->have[i] = !read_line(path, self->saved[i], sizeof(self->saved[i]));
	}
	self->armed = true;
}

FIXTURE_TEARDOWN(fault)
{
	unsigned int i;

	if (!self->armed)
		return;
	/* Probability first: stop failing before anything else changes. */
	knob("failslab/probability", "0");
	knob("fail_page_alloc/probability", "0");
	for (i = 0; i < NKNOBS; i++)
		if (self->have[i])
			knob(knobs[i], self->saved[i]);
}

TEST_F_TIMEOUT(fault, stress_exactly_once, 240)
{
	struct mpmc_config cfg = { .capacity = 16, .max_msg_size = MSG_MAX };
	pthread_t prod[NPROD], cons[NCONS], churn;
	unsigned long acks = 0, recvd = 0, dup = 0, lost = 0, ghost = 0;
	bool page_alloc;
	struct mpmc_stats st;
	unsigned int i, j;

	if (geteuid() != 0)
		SKIP(return, "needs root (debugfs fault injection)");
	if (!self->armed)
		SKIP(return, "no failslab in debugfs or no make-it-fail (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)");
	page_alloc = !access(DBG "/fail_page_alloc/probability", W_OK);

	/* No page faults while allocations fail: they would turn into EFAULT. */
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		TH_LOG("mlockall: %s (continuing)", strerror(errno));

	chan = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, chan);
	ASSERT_EQ(0, ioctl(chan, MPMC_IOC_SET_CONFIG, &cfg));

	ASSERT_EQ(0, knob("failslab/verbose", "0"));
	ASSERT_EQ(0, knob("failslab/task-filter", "Y"));
	ASSERT_EQ(0, knob("failslab/ignore-gfp-wait", "N"));
	knob("failslab/cache-filter", "N");
	ASSERT_EQ(0, knob("failslab/interval", "1"));
	ASSERT_EQ(0, knob("failslab/space", "0"));
	ASSERT_EQ(0, knob("failslab/times", "-1"));
	if (page_alloc) {
		ASSERT_EQ(0, knob("fail_page_alloc/verbose", "0"));
		ASSERT_EQ(0, knob("fail_page_alloc/task-filter", "Y"));
		ASSERT_EQ(0, knob("fail_page_alloc/ignore-gfp-wait", "N"));
		ASSERT_EQ(0, knob("fail_page_alloc/ignore-gfp-highmem", "N"));
		ASSERT_EQ(0, knob("fail_page_alloc/min-order", "0"));
		ASSERT_EQ(0, knob("fail_page_alloc/interval", "1"));
		ASSERT_EQ(0, knob("fail_page_alloc/space", "0"));
		ASSERT_EQ(0, knob("fail_page_alloc/times", "-1"));
		ASSERT_EQ(0, knob("fail_page_alloc/probability", PROBABILITY));
	}
	ASSERT_EQ(0, knob("failslab/probability", PROBABILITY));

	for (i = 0; i < NCONS; i++)
		ASSERT_EQ(0, pthread_create(&cons[i], NULL, consumer, (void *)(uintptr_t)i));
	for (i = 0; i < NPROD; i++)
		ASSERT_EQ(0, pthread_create(&prod[i], NULL, producer, (void *)(uintptr_t)i));
	ASSERT_EQ(0, pthread_create(&churn, NULL, churner, NULL));
	for (i = 0; i < NPROD; i++)
		pthread_join(prod[i], NULL);
	churn_stop = 1;
	pthread_join(churn, NULL);
	/* Producers are done: consumers drain what is queued, then see EOF. */
	ASSERT_EQ(0, ioctl(chan, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	for (i = 0; i < NCONS; i++)
		pthread_join(cons[i], NULL);

	knob("failslab/probability", "0");
	if (page_alloc)
		knob("fail_page_alloc/probability", "0");
	munlockall();

	for (i = 0; i < NPROD; i++) {
		for (j = 0; j < MAX_ATTEMPTS; j++) {
			unsigned int a = atomic_load(&acked[i][j]);
			unsigned int g = atomic_load(&got[i][j]);

			acks += a;
			recvd += g;
			if (g > 1)
				dup++;
			if (a && !g)
				lost++;
			if (!a && g)
				ghost++;
		}
	}
	ksft_print_msg("fault: %lu acknowledged, %lu received, %lu ENOMEM, %lu EAGAIN (RWF_NOWAIT), failslab%s at %s%%\n",
		       acks, recvd, atomic_load(&nomem), atomic_load(&nowait_again),
		       page_alloc ? "+fail_page_alloc" : "", PROBABILITY);
	fflush(stdout);

	EXPECT_EQ(0UL, atomic_load(&bad_errno)) {
		TH_LOG("%lu calls failed with something else than ENOMEM/EAGAIN; last: %s: %s",
		       atomic_load(&bad_errno), atomic_load(&last_bad_op),
		       strerror(atomic_load(&last_bad_errno)));
	}
	EXPECT_EQ(0UL, atomic_load(&corrupt));
	EXPECT_EQ(0UL, dup);
	EXPECT_EQ(0UL, lost);
	EXPECT_EQ(0UL, ghost);
	/* Each producer stops once it has PER_PROD acks (a batch may overshoot). */
	EXPECT_LE((unsigned long)NPROD * PER_PROD, acks);
	/* The injection reached the module. */
	EXPECT_LT(0UL, atomic_load(&nomem));

	MPMC_STATS(chan, &st);
	EXPECT_EQ(acks, st.total_sent);
	EXPECT_EQ(recvd, st.total_received);
	EXPECT_EQ(0U, st.queued_msgs);
	EXPECT_EQ(0ULL, st.queued_bytes);
	close(chan);

	/* And the module still works. */
	chan = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, chan);
	ASSERT_EQ(2, write(chan, "ok", 2));
	{
		char b[4];

		ASSERT_EQ(2, read(chan, b, sizeof(b)));
	}
	close(chan);
}

TEST_HARNESS_MAIN
