// SPDX-License-Identifier: GPL-2.0
/*
 * Exactly-once stress of one /dev/mpmc channel under chaos. Producer and
 * consumer PROCESSES share one channel, each on its own endpoint made with
 * MPMC_IOC_NEW_ENDPOINT before forking, using blocking read()/write(),
 * O_NONBLOCK + epoll, or MPMC_IOC_SEND/MPMC_IOC_RECV batches. Meanwhile the
 * parent, as controller:
 *  - sends SIGUSR1 storms to every worker (half of them have a no-op handler
 *    without SA_RESTART, half with SA_RESTART);
 *  - changes the capacity at random (1..256) with MPMC_IOC_SET_CONFIG
 *    (EBUSY below the queued count is fine);
 *  - SIGKILLs a random worker every so often and restarts it.
 * Messages carry the producer, a per-producer sequence number, their length
 * and a checksum. Producers record in shared memory the range they tried
 * (attempted) and the messages write/batch reported as sent (acked); a
 * restarted producer continues after its last attempted number, so a
 * message is never sent twice by the test itself. Consumers set a bit per
 * (producer, seq) with an atomic fetch-or: a bit already set is a duplicate.
 * At the end: no duplicate, every acked message received except at most
 * RECV_BATCH per consumer kill (messages read by a consumer killed before it
 * recorded them), nothing received that was never attempted, and each
 * consumer slot saw each producer's sequence numbers in increasing order.
 * Duration: MPMC_CHAOS_SECONDS (default 15), seed: MPMC_CHAOS_SEED.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

#define NP		6	/* producers */
#define NC		6	/* consumers */
#define NW		(NP + NC)
#define MAX_MSG		512	/* channel max_msg_size */
#define MAXSEQ		(1u << 22)	/* per producer */
#define SEND_BATCH	8
#define RECV_BATCH	8
#define BATCH_TMO_NS	50000000LL
#define TICK_US		5000
#define MAGIC		0x6d706d63u

enum method { M_BLOCK, M_EPOLL, M_BATCH, NMETH };

static const char * const meth_name[NMETH] = { "blocking", "epoll", "batch" };

struct hdr {
	uint32_t magic;
	uint32_t prod;
	uint32_t seq;
	uint32_t len;
	uint32_t csum;
};

struct shm {
	atomic_int failed;
	char why[256];
	atomic_int stop;			/* producers: finish now */
	atomic_uint attempted[NP];		/* next seq never tried */
	atomic_uint acked[NP];			/* seqs below are acked */
	atomic_long last[NC][NP];		/* per consumer slot order */
	atomic_long received;
	atomic_long handled;			/* SIGUSR1 handler runs */
	atomic_ulong bits[NP][MAXSEQ / 64];
	atomic_ulong ackbits[NP][MAXSEQ / 64];	/* write/batch said sent */
};


static struct shm *g;

static void ack(int p, uint32_t from, uint32_t to)
{
	for (; from < to; from++)
		atomic_fetch_or(&g->ackbits[p][from / 64], 1UL << (from % 64));
}

static void sigusr1(int sig)
{
	(void)sig;
	if (g)
		atomic_fetch_add(&g->handled, 1);
}

static void set_handler(bool restart)
{
	struct sigaction sa = { .sa_handler = sigusr1 };

	sigemptyset(&sa.sa_mask);
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(SIGUSR1, &sa, NULL);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	int zero = 0;
	va_list ap;

	if (!atomic_compare_exchange_strong(&g->failed, &zero, 2))
		return;
	va_start(ap, fmt);
	vsnprintf(g->why, sizeof(g->why), fmt, ap);
	va_end(ap);
	atomic_store(&g->failed, 1);
}

static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static uint32_t checksum(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

static void fill_payload(unsigned char *p, size_t n, uint32_t prod, uint32_t seq)
{
	uint32_t x = prod * 0x9e3779b1u + seq * 0x85ebca6bu + 1;

	while (n--) {
		x = x * 1664525u + 1013904223u;
		*p++ = x >> 24;
	}
}

static size_t make_msg(unsigned char *buf, uint32_t prod, uint32_t seq,
		       uint32_t *rnd)
{
	struct hdr h = { .magic = MAGIC, .prod = prod, .seq = seq };
	uint32_t r = xorshift(rnd);
	size_t len;

	if (r % 16 == 0)
		len = sizeof(h);
	else if (r % 16 == 1)
		len = MAX_MSG;
	else
		len = sizeof(h) + (r >> 8) % 240;
	h.len = len;
	fill_payload(buf + sizeof(h), len - sizeof(h), prod, seq);
	memcpy(buf, &h, sizeof(h));
	h.csum = checksum(buf, len);
	memcpy(buf, &h, sizeof(h));
	return len;
}

/* Check and record one received message. */
static void verify(int slot, unsigned char *buf, size_t n)
{
	unsigned char want[MAX_MSG];
	unsigned long bit, old;
	struct hdr h;
	uint32_t sum;

	if (n < sizeof(h) || n > MAX_MSG) {
		fail("consumer %d: message of %zu bytes", slot, n);
		return;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.magic != MAGIC || h.len != n || h.prod >= NP || h.seq >= MAXSEQ) {
		fail("consumer %d: bad header (magic %#x len %u/%zu prod %u seq %u)",
		     slot, h.magic, h.len, n, h.prod, h.seq);
		return;
	}
	sum = h.csum;
	h.csum = 0;
	memcpy(buf, &h, sizeof(h));
	fill_payload(want, n - sizeof(h), h.prod, h.seq);
	if (checksum(buf, n) != sum || memcmp(buf + sizeof(h), want, n - sizeof(h))) {
		fail("consumer %d: bad checksum/payload (prod %u seq %u, %zu bytes)",
		     slot, h.prod, h.seq, n);
		return;
	}
	if (h.seq >= atomic_load(&g->attempted[h.prod])) {
		fail("consumer %d: prod %u seq %u never sent (attempted %u)",
		     slot, h.prod, h.seq, atomic_load(&g->attempted[h.prod]));
		return;
	}
	if ((long)h.seq <= atomic_load(&g->last[slot][h.prod])) {
		fail("consumer %d: prod %u seq %u after seq %ld", slot, h.prod,
		     h.seq, atomic_load(&g->last[slot][h.prod]));
		return;
	}
	atomic_store(&g->last[slot][h.prod], h.seq);
	bit = 1UL << (h.seq % 64);
	old = atomic_fetch_or(&g->bits[h.prod][h.seq / 64], bit);
	if (old & bit) {
		fail("consumer %d: duplicate prod %u seq %u", slot, h.prod, h.seq);
		return;
	}
	atomic_fetch_add(&g->received, 1);
}

static int epoll_for(int fd, unsigned int events)
{
	struct epoll_event ev = { .events = events };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
		close(ep);
		ep = -1;
	}
	return ep;
}

/* epoll_wait with a short timeout; false on a real error. */
static bool wait_ready(int ep)
{
	struct epoll_event ev;

	if (epoll_wait(ep, &ev, 1, 100) < 0 && errno != EINTR) {
		fail("epoll_wait: %s", strerror(errno));
		return false;
	}
	return true;
}

/* --- Producers --------------------------------------------------------- */

static void producer(int p, enum method m, int fd, uint32_t rnd)
{
	static unsigned char bufs[SEND_BATCH][MAX_MSG];
	struct mpmc_msgvec vec[SEND_BATCH];
	int ep = -1;

	if (m == M_EPOLL) {
		ep = epoll_for(fd, EPOLLOUT);
		if (ep < 0) {
			fail("epoll setup: %s", strerror(errno));
			return;
		}
	}
	while (!atomic_load(&g->stop) && !atomic_load(&g->failed)) {
		uint32_t seq = atomic_load(&g->attempted[p]);
		uint32_t k = m == M_BATCH ? 1 + xorshift(&rnd) % SEND_BATCH : 1;
		uint32_t i = 0;

		if (seq + k > MAXSEQ) {
			/* Out of numbers (a fast host): idle until the end. */
			while (!atomic_load(&g->stop))
				usleep(10000);
			break;
		}
		for (i = 0; i < k; i++) {
			vec[i].buf = (uintptr_t)bufs[i];
			vec[i].len = make_msg(bufs[i], p, seq + i, &rnd);
			vec[i].prio = 0;
		}
		/* Tried from now on: a restart never reuses these numbers. */
		atomic_store(&g->attempted[p], seq + k);
		i = 0;
		while (i < k && !atomic_load(&g->failed)) {
			if (m == M_BATCH) {
				struct mpmc_batch b = {
					.vec = (uintptr_t)&vec[i], .count = k - i,
					.timeout_ns = BATCH_TMO_NS,
				};
				int n = ioctl(fd, MPMC_IOC_SEND, &b);

				if (n > 0 && (uint32_t)n <= k - i) {
					ack(p, seq + i, seq + i + n);
					i += n;
					atomic_store(&g->acked[p], seq + i);
					continue;
				}
				if (n < 0 && (errno == ETIMEDOUT || errno == EINTR)) {
					if (atomic_load(&g->stop))
						break;
					continue;
				}
				fail("producer %d: batch send of %u: %d (%s)", p,
				     k - i, n, strerror(errno));
				return;
			} else {
				ssize_t n = write(fd, bufs[0], vec[0].len);

				if (n == (ssize_t)vec[0].len) {
					i = 1;
					ack(p, seq, seq + 1);
					atomic_store(&g->acked[p], seq + 1);
					continue;
				}
				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0 && errno == EAGAIN && m == M_EPOLL) {
					if (!wait_ready(ep))
						return;
					continue;
				}
				fail("producer %d (%s): write: %zd (%s)", p,
				     meth_name[m], n, strerror(errno));
				return;
			}
		}
		if (i < k)
			break;	/* stopping with a partial batch */
	}
}

/* --- Consumers --------------------------------------------------------- */

static void consumer(int slot, enum method m, int fd)
{
	static unsigned char bufs[RECV_BATCH][MAX_MSG];
	struct mpmc_msgvec vec[RECV_BATCH];
	int ep = -1, i;

	if (m == M_EPOLL) {
		ep = epoll_for(fd, EPOLLIN);
		if (ep < 0) {
			fail("epoll setup: %s", strerror(errno));
			return;
		}
	}
	while (!atomic_load(&g->failed)) {
		if (m == M_BATCH) {
			struct mpmc_batch b = {
				.vec = (uintptr_t)vec, .count = RECV_BATCH,
				.timeout_ns = BATCH_TMO_NS,
			};
			int n;

			for (i = 0; i < RECV_BATCH; i++) {
				vec[i].buf = (uintptr_t)bufs[i];
				vec[i].len = MAX_MSG;
				vec[i].prio = 0;
			}
			n = ioctl(fd, MPMC_IOC_RECV, &b);
			if (n == 0)
				return;
			if (n < 0 && (errno == ETIMEDOUT || errno == EINTR))
				continue;
			if (n < 0 || n > RECV_BATCH) {
				fail("consumer %d: batch receive: %d (%s)", slot, n,
				     strerror(errno));
				return;
			}
			for (i = 0; i < n; i++)
				verify(slot, bufs[i], vec[i].len);
		} else {
			ssize_t n = read(fd, bufs[0], MAX_MSG);

			if (n == 0)
				return;
			if (n > 0) {
				verify(slot, bufs[0], n);
				continue;
			}
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && m == M_EPOLL) {
				if (!wait_ready(ep))
					return;
				continue;
			}
			fail("consumer %d (%s): read: %s", slot, meth_name[m],
			     strerror(errno));
			return;
		}
	}
}

/* --- Controller -------------------------------------------------------- */

struct wslot {
	pid_t pid;
	int fd;
	enum method m;
	bool restart;
	bool producer;
	int idx;	/* producer id or consumer slot */
};

static pid_t spawn(struct wslot *w, uint32_t seed)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	set_handler(w->restart);
	if (w->producer)
		producer(w->idx, w->m, w->fd, seed | 1);
	else
		consumer(w->idx, w->m, w->fd);
	/* The parent holds a send endpoint: no end of file before it stops. */
	if (!atomic_load(&g->stop))
		fail("%s %d (%s, %sSA_RESTART) returned before the end",
		     w->producer ? "producer" : "consumer", w->idx, meth_name[w->m],
		     w->restart ? "" : "no ");
	_exit(0);
}

/* Wait for the workers in [from, to) to exit by themselves, until @deadline. */
static bool reap(struct wslot *w, int from, int to, long long deadline)
{
	int i, st, left;

	do {
		left = 0;
		for (i = from; i < to; i++) {
			if (!w[i].pid)
				continue;
			if (waitpid(w[i].pid, &st, WNOHANG) == w[i].pid) {
				if (!WIFEXITED(st) || WEXITSTATUS(st))
					fail("worker %d ended with status %#x", i, st);
				w[i].pid = 0;
			} else {
				left++;
			}
		}
		if (left)
			usleep(10000);
	} while (left && now_ms() < deadline);
	return !left;
}

FIXTURE(chaos) {
	struct wslot w[NW];
	int fd;
};

FIXTURE_SETUP(chaos)
{
	g = mmap(NULL, sizeof(*g), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, g);
	self->fd = -1;
	memset(self->w, 0, sizeof(self->w));
}

FIXTURE_TEARDOWN(chaos)
{
	int i;

	for (i = 0; i < NW; i++) {
		if (self->w[i].pid) {
			kill(self->w[i].pid, SIGKILL);
			waitpid(self->w[i].pid, NULL, 0);
		}
		if (self->w[i].fd > 0)
			close(self->w[i].fd);
	}
	if (self->fd >= 0)
		close(self->fd);
	munmap(g, sizeof(*g));
	g = NULL;
}

TEST_F_TIMEOUT(chaos, exactly_once, 120)
{
	long long t0, t_end, t_stop, t_prod, t_done;
	long sigs = 0, caps = 0, cap_busy = 0, pkills = 0, ckills = 0;
	long missing = 0, unacked_arrived = 0, acked_total = 0;
	const char *env;
	uint32_t seed, rnd;
	struct mpmc_stats st;
	int secs = 15, i, p;

	env = getenv("MPMC_CHAOS_SECONDS");
	if (env && atoi(env) > 0)
		secs = atoi(env);
	env = getenv("MPMC_CHAOS_SEED");
	seed = env ? (uint32_t)strtoul(env, NULL, 0) : (uint32_t)time(NULL) ^ getpid();
	if (!seed)
		seed = 1;
	rnd = seed;
	TH_LOG("seed %u (MPMC_CHAOS_SEED), %d s (MPMC_CHAOS_SECONDS)", seed, secs);

	/* Workers inherit a handler before they set their own. */
	set_handler(false);
	for (p = 0; p < NP; p++)
		for (i = 0; i < NC; i++)
			atomic_store(&g->last[i][p], -1);

	self->fd = mpmc_test_open_cfg(16, MAX_MSG);
	ASSERT_LE(0, self->fd);
	for (i = 0; i < NW; i++) {
		struct wslot *w = &self->w[i];
		struct mpmc_endpoint ep = {};

		w->producer = i < NP;
		w->idx = w->producer ? i : i - NP;
		w->m = w->idx % NMETH;
		w->restart = (w->idx / NMETH) % 2;
		ep.roles = w->producer ? MPMC_ROLE_SEND : MPMC_ROLE_RECV;
		ep.flags = O_CLOEXEC | (w->m == M_EPOLL ? O_NONBLOCK : 0);
		w->fd = ioctl(self->fd, MPMC_IOC_NEW_ENDPOINT, &ep);
		ASSERT_LE(0, w->fd);
	}
	MPMC_STATS(self->fd, &st);
	ASSERT_EQ((__u32)NP + 1, st.send_files);
	ASSERT_EQ((__u32)NC + 1, st.recv_files);

	for (i = 0; i < NW; i++) {
		self->w[i].pid = spawn(&self->w[i], xorshift(&rnd));
		ASSERT_LT(0, self->w[i].pid);
	}

	t0 = now_ms();
	t_end = t0 + secs * 1000LL;
	while (now_ms() < t_end && !atomic_load(&g->failed)) {
		uint32_t r = xorshift(&rnd);

		usleep(TICK_US);
		/* (a) a signal storm: every worker, every tick. */
		for (i = 0; i < NW; i++)
			if (self->w[i].pid && !kill(self->w[i].pid, SIGUSR1))
				sigs++;
		/* (b) a new capacity, about every 4th tick. */
		if (r % 4 == 0) {
			struct mpmc_config cfg = {
				.capacity = 1 + xorshift(&rnd) % 256,
				.max_msg_size = MAX_MSG,
			};

			if (!ioctl(self->fd, MPMC_IOC_SET_CONFIG, &cfg))
				caps++;
			else if (errno == EBUSY)
				cap_busy++;
			else
				ASSERT_EQ(0, errno);
		}
		/* (c) kill and restart a worker, about every 60th tick. */
		if (r % 60 == 1) {
			struct wslot *w = &self->w[xorshift(&rnd) % NW];
			int status;

			ASSERT_EQ(0, kill(w->pid, SIGKILL));
			ASSERT_EQ(w->pid, waitpid(w->pid, &status, 0));
			if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
				fail("worker pid %d ended by itself (status %#x)",
				     w->pid, status);
			if (w->producer)
				pkills++;
			else
				ckills++;
			w->pid = spawn(w, xorshift(&rnd));
			ASSERT_LT(0, w->pid);
		}
	}
	t_stop = now_ms();

	/* Producers finish, then end of file lets the consumers drain. */
	atomic_store(&g->stop, 1);
	EXPECT_TRUE(reap(self->w, 0, NP, t_stop + 20000)) {
		TH_LOG("producers did not finish");
	}
	t_prod = now_ms();
	ASSERT_EQ(0, ioctl(self->fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	EXPECT_TRUE(reap(self->w, NP, NW, t_prod + 20000)) {
		TH_LOG("consumers did not drain to end of file");
	}
	t_done = now_ms();

	ASSERT_EQ(0, atomic_load(&g->failed)) {
		TH_LOG("%s", g->why);
	}
	for (p = 0; p < NP; p++) {
		uint32_t att = atomic_load(&g->attempted[p]);
		uint32_t s;

		for (s = 0; s < att; s++) {
			bool got = atomic_load(&g->bits[p][s / 64]) & (1UL << (s % 64));
			bool acked = atomic_load(&g->ackbits[p][s / 64]) & (1UL << (s % 64));

			acked_total += acked;

			if (acked && !got && missing++ < 5)
				TH_LOG("unaccounted: producer %d seq %u", p, s);
			if (!acked && got)
				unacked_arrived++;
		}
		/* Nothing beyond what was attempted (verify() checks too). */
		for (s = att; s < MAXSEQ; s += 64 - s % 64)
			ASSERT_EQ(0UL, atomic_load(&g->bits[p][s / 64]) &
				       (~0UL << (s % 64)));
	}
	MPMC_STATS(self->fd, &st);
	EXPECT_EQ(0U, st.queued_msgs);
	EXPECT_EQ(0U, st.blocked_senders);
	EXPECT_EQ(0U, st.blocked_receivers);
	EXPECT_EQ(st.total_sent, st.total_received);
	/* Delivered but never recorded: only by consumers killed meanwhile. */
	EXPECT_LE(atomic_load(&g->received), (long)st.total_received);
	EXPECT_LE((long)st.total_received - atomic_load(&g->received),
		  (long)RECV_BATCH * ckills);
	EXPECT_LE(missing, (long)RECV_BATCH * ckills);

	TH_LOG("%ld messages verified (%ld acked, %ld arrived unacked, %ld unaccounted after %ld consumer kills); channel total_sent %llu total_received %llu",
	       atomic_load(&g->received), acked_total, unacked_arrived, missing,
	       ckills, (unsigned long long)st.total_sent,
	       (unsigned long long)st.total_received);
	TH_LOG("kills: %ld producers, %ld consumers; signals sent %ld (handled %ld); capacity changes %ld (+%ld EBUSY)",
	       pkills, ckills, sigs, atomic_load(&g->handled), caps, cap_busy);
	TH_LOG("chaos %lld ms, producers stopped in %lld ms, drain %lld ms",
	       t_stop - t0, t_prod - t_stop, t_done - t_prod);
}

TEST_HARNESS_MAIN
