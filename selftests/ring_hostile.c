// SPDX-License-Identifier: GPL-2.0
/*
 * Ring mode against a hostile mapper (Documentation/ring-mode.rst 6.1-6.3),
 * through the raw ABI.
 *
 * Deterministic cases: a FULL slot whose len is max_msg_size + 1 makes the
 * ring BROKEN (read -> EIO, sticky, for every kind of send and receive;
 * poll reports EPOLLERR; stats, shutdown, munmap and close still work); a
 * reader asleep when such a slot is published and the doorbell rung gets
 * EIO; and a table of forged values (a slot word with an impossible
 * position at the head, positions far apart, a closed bit the kernel never
 * set, an owner id never handed out, ...), each followed by non-blocking
 * calls that must come back with a message, EAGAIN, EMSGSIZE or EIO.
 *
 * The random case: a child maps channel A and writes random values
 * (seeded; the seed is logged and can be set with RING_HOSTILE_SEED) over
 * its positions, slot words, lengths and payload in a loop, while user
 * processes use A with read/write (blocking ones under an interval timer),
 * MPMC_IOC_SEND/RECV with timeouts, poll and the ring protocol by hand,
 * and a producer and a consumer move a numbered stream through channel B,
 * another ring channel, at the same time. Checks: every call on A returns
 * an allowed result within a bound (no hang); EIO, once seen, stays; B
 * stays exact (every message once, in order); everything ends when told
 * (or at worst with SIGKILL); then munmap and close work, and a BROKEN A
 * answers EIO and EPOLLERR. The kernel log must stay clean (the VM runner
 * fails the run on a warning, KASAN or UBSAN report).
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"
#include "ring_test.h"

#define MSG		64
#define SLOTS		16
#define OP_MAX_MS	8000	/* any one call on A: longer is a hang */
#define TIMER_MS	300	/* the interval timer of blocking calls */
#define BATCH_TMO_NS	20000000LL
#define B_MAGIC		0x42424242u

/* ---- deterministic ---------------------------------------------------- */

/* Every send and receive of a BROKEN channel fails with EIO. */
static void expect_broken(struct __test_metadata *_metadata, int fd,
			  struct rmap *m)
{
	struct mpmc_ring_info ri;
	struct mpmc_msgvec v;
	char buf[4096];
	short ev;

	EXPECT_NE(0, ld32(&m->ctrl->flags) & MPMC_RING_F_BROKEN);
	EXPECT_ERRNO(EIO, read(fd, buf, sizeof(buf)));
	EXPECT_ERRNO(EIO, write(fd, "x", 1));
	v = (struct mpmc_msgvec){ .buf = (uintptr_t)buf, .len = 1 };
	EXPECT_ERRNO(EIO, batch_of_one(fd, MPMC_IOC_SEND, &v, 0, 0));
	v = (struct mpmc_msgvec){ .buf = (uintptr_t)buf, .len = sizeof(buf) };
	EXPECT_ERRNO(EIO, batch_of_one(fd, MPMC_IOC_RECV, &v, 0, 0));
	v = (struct mpmc_msgvec){ .buf = (uintptr_t)buf, .len = sizeof(buf) };
	EXPECT_ERRNO(EIO, batch_of_one(fd, MPMC_IOC_RECV, &v, 0, -1));
	/* Blocking calls do not block. */
	EXPECT_ERRNO(EIO, read(fd, buf, sizeof(buf)));
	ev = revents(fd, POLLIN | POLLOUT);
	EXPECT_EQ(POLLERR | POLLIN | POLLOUT,
		  ev & (POLLERR | POLLIN | POLLOUT)) TH_LOG("revents %#x", ev);
	/* The fast path is closed too: the flags say so. */
	EXPECT_EQ(-EAGAIN, rt_send(m, "y", 1));
	EXPECT_EQ(-EAGAIN, rt_recv(m, buf, sizeof(buf)));
	ASSERT_EQ(0, ring_info(fd, m->ring, &ri));
	EXPECT_NE(0, ri.flags & MPMC_RING_F_BROKEN);
	/* What still works. */
	EXPECT_EQ(0, ioctl(fd, MPMC_IOC_GET_STATS, &(struct mpmc_stats){ 0 }));
	EXPECT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &(struct mpmc_config){ 0 }));
	EXPECT_EQ(0, ioctl(fd, MPMC_IOC_RING_WAKE, MPMC_ROLE_RECV));
}

TEST(len_over_max_is_broken)
{
	char buf[4096];
	struct rmap m;
	int fd;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	ASSERT_EQ(0, write_str(fd, "abc"));
	ASSERT_EQ(MPMC_RING_WORD(0, 0, MPMC_RING_FULL), r_word(&m, 0));
	r_slot(&m, 0)->len = MSG + 1;
	EXPECT_ERRNO(EIO, read(fd, buf, sizeof(buf)));
	expect_broken(_metadata, fd, &m);
	/* Sticky: a good len again does not repair it. */
	r_slot(&m, 0)->len = 3;
	EXPECT_ERRNO(EIO, read(fd, buf, sizeof(buf)));
	EXPECT_ERRNO(EIO, write(fd, "x", 1));
	EXPECT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RDWR));
	EXPECT_ERRNO(EIO, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, rmap_close(&m));
	EXPECT_EQ(0, close(fd));
}

/* The same found by a kernel receive batch, and by a hand-protocol peer. */
TEST(huge_len_batch_is_broken)
{
	struct mpmc_msgvec v;
	char buf[4096];
	struct rmap m;
	long long p;
	int fd;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	p = rt_claim_send(&m);
	ASSERT_EQ(0, p);
	r_slot(&m, 0)->len = 0x7fffffff;
	st64(&r_slot(&m, 0)->word, MPMC_RING_WORD(0, 0, MPMC_RING_FULL));
	v = (struct mpmc_msgvec){ .buf = (uintptr_t)buf, .len = sizeof(buf) };
	EXPECT_ERRNO(EIO, batch_of_one(fd, MPMC_IOC_RECV, &v, 0, 0));
	expect_broken(_metadata, fd, &m);
	EXPECT_EQ(0, rmap_close(&m));
	EXPECT_EQ(0, close(fd));
}

/* A reader asleep when a bad slot is published gets EIO, not a hang. */
TEST(sleeper_gets_eio)
{
	struct rmap m;
	struct op rd;
	long long p;
	int fd;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	ASSERT_EQ(0, start_reader(&rd, fd, 4096));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	/* A publish with an impossible len, then the doorbell. */
	p = rt_claim_send(&m);
	ASSERT_EQ(0, p);
	memcpy(r_slot(&m, 0)->data, "bad", 3);
	r_slot(&m, 0)->len = MSG + 1;
	st64(&r_slot(&m, 0)->word, MPMC_RING_WORD(0, 0, MPMC_RING_FULL));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_RING_WAKE, MPMC_ROLE_RECV));
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_OP_ERR(rd, EIO);
	expect_broken(_metadata, fd, &m);
	EXPECT_EQ(0, rmap_close(&m));
	EXPECT_EQ(0, close(fd));
}

/*
 * A message in the kernel's front queue (from a reaped READING claim) is
 * not received once the ring is BROKEN: EIO for every receive from then on.
 */
TEST(broken_with_front_queue)
{
	char buf[4096];
	struct rmap m, m2;
	long long q;
	__u32 len;
	int fd;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	ASSERT_EQ(0, rmap_open(&m2, fd));
	ASSERT_EQ(0, write_str(fd, "front"));
	q = rt_claim_recv(&m2, MSG, &len);
	ASSERT_EQ(0, q);
	ASSERT_EQ(0, rmap_close(&m2));	/* reaped: to the front queue */
	ASSERT_LE(1, wait_fdinfo_ge(fd, "ring_reaped", 1, WAIT_MS));
	EXPECT_EQ(MPMC_RING_F_FRONT, ld32(&m.ctrl->flags));
	/* An impossible word at enq_pos: the kernel's send finds it. */
	st64(&r_slot(&m, 1)->word, MPMC_RING_WORD(777, 0, MPMC_RING_FULL));
	EXPECT_ERRNO(EIO, write(fd, "x", 1));
	EXPECT_NE(0, ld32(&m.ctrl->flags) & MPMC_RING_F_BROKEN);
	EXPECT_ERRNO(EIO, read(fd, buf, sizeof(buf)));
	expect_broken(_metadata, fd, &m);
	EXPECT_EQ(0, rmap_close(&m));
	EXPECT_EQ(0, close(fd));
}

/* One read() of @fd: a message, EAGAIN or EIO (not a hang: @fd is O_NONBLOCK or has a message). */
static void n_read_any(struct __test_metadata *_metadata, int fd, char *buf,
		       size_t size)
{
	ssize_t n = read(fd, buf, size);

	EXPECT_TRUE(n > 0 || errno == EAGAIN || errno == EIO)
		TH_LOG("read: %zd %s", n, n < 0 ? strerror(errno) : "");
}

/* A forgery applied to a ring with the messages "m0", "m1" queued. */
struct forgery {
	const char *name;
	void (*apply)(struct rmap *m);
};

static void f_head_word_far(struct rmap *m)
{
	st64(&r_slot(m, 0)->word, MPMC_RING_WORD(12345, 0, MPMC_RING_FULL));
}

static void f_head_word_lap_ahead(struct rmap *m)
{
	st64(&r_slot(m, 0)->word, MPMC_RING_WORD(2 * m->nr, 0, MPMC_RING_FULL));
}

static void f_head_word_random(struct rmap *m)
{
	st64(&r_slot(m, 0)->word, 0xdeadbeefcafef00dULL);
}

static void f_head_reading_bad_owner(struct rmap *m)
{
	st64(&r_slot(m, 0)->word, MPMC_RING_WORD(0, MPMC_RING_OWNER_MAX,
						 MPMC_RING_READING));
	st64(r_deq(m), 1);
}

static void f_tail_claimed_bad_owner(struct rmap *m)
{
	st64(&r_slot(m, 2)->word, MPMC_RING_WORD(2, 0x1234, MPMC_RING_CLAIMED));
	st64(r_enq(m), 3);
}

static void f_enq_far_ahead(struct rmap *m)
{
	st64(r_enq(m), 1000000);
}

static void f_enq_behind_deq(struct rmap *m)
{
	st64(r_deq(m), 100);
}

static void f_deq_far_ahead(struct rmap *m)
{
	st64(r_deq(m), 1ULL << 47);
}

static void f_enq_closed(struct rmap *m)
{
	st64(r_enq(m), ld64(r_enq(m)) | MPMC_RING_CLOSED);
}

static void f_deq_closed(struct rmap *m)
{
	st64(r_deq(m), ld64(r_deq(m)) | MPMC_RING_CLOSED);
}

static void f_len_skip_garbage(struct rmap *m)
{
	r_slot(m, 0)->len = MPMC_RING_LEN_SKIP - 1;
}

static void f_all_ones(struct rmap *m)
{
	memset(m->ring, 0xff, m->ring_size);
}

static void f_all_zero(struct rmap *m)
{
	memset(m->ring, 0, m->ring_size);
}

static const struct forgery forgeries[] = {
	{ "head word far position", f_head_word_far },
	{ "head word two laps ahead", f_head_word_lap_ahead },
	{ "head word random", f_head_word_random },
	{ "head READING by an unknown owner", f_head_reading_bad_owner },
	{ "tail CLAIMED by an unknown owner", f_tail_claimed_bad_owner },
	{ "enq_pos far ahead", f_enq_far_ahead },
	{ "deq_pos past enq_pos", f_enq_behind_deq },
	{ "deq_pos far ahead", f_deq_far_ahead },
	{ "enq_pos closed bit", f_enq_closed },
	{ "deq_pos closed bit", f_deq_closed },
	{ "len 0xfffffffe", f_len_skip_garbage },
	{ "ring all ones", f_all_ones },
	{ "ring all zero", f_all_zero },
};

/* A call that finished within @t0 + OP_MAX_MS. */
#define QUICK(t0) (now_ms() - (t0) < OP_MAX_MS)

/* A blocking call on a forged ring, in a thread, so that a hang shows. */
enum bkind { B_RECV_TMO, B_SEND_TMO, B_READ };

struct bcall {
	pthread_t th;
	int fd;
	enum bkind kind;
	ssize_t ret;
	int err;
	atomic_int tid, done;
	char buf[MSG + 1];
};

static void on_usr1(int sig)
{
	(void)sig;
}

static void *bcall_fn(void *arg)
{
	struct bcall *c = arg;
	struct mpmc_msgvec v;

	atomic_store(&c->tid, gettid());
	switch (c->kind) {
	case B_RECV_TMO:
		v = (struct mpmc_msgvec){ .buf = (uintptr_t)c->buf, .len = MSG };
		c->ret = batch_of_one(c->fd, MPMC_IOC_RECV, &v, 0, 50000000LL);
		break;
	case B_SEND_TMO:
		v = (struct mpmc_msgvec){ .buf = (uintptr_t)"b", .len = 1 };
		c->ret = batch_of_one(c->fd, MPMC_IOC_SEND, &v, 0, 50000000LL);
		break;
	case B_READ:
		c->ret = read(c->fd, c->buf, sizeof(c->buf));
		break;
	}
	c->err = c->ret < 0 ? errno : 0;
	atomic_store(&c->done, 1);
	return NULL;
}

/* Wait up to @ms for @c to return. */
static bool bcall_wait(struct bcall *c, int ms)
{
	long long end = now_ms() + ms;

	while (!atomic_load(&c->done) && now_ms() < end)
		usleep(1000);
	return atomic_load(&c->done);
}

/* How many of 10 looks over 200 ms find thread @tid asleep (state S). */
static int asleep_count(pid_t tid)
{
	char path[64], buf[512], *p;
	int i, n = 0;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	for (i = 0; i < 10; i++) {
		if (read_file(path, buf, sizeof(buf)) > 0 &&
		    (p = strrchr(buf, ')')) && p[1] == ' ' && p[2] == 'S')
			n++;
		usleep(20000);
	}
	return n;
}

FIXTURE(forged) {
	int fd, blk;
	struct rmap m;
};

FIXTURE_VARIANT(forged) {
	const struct forgery *f;
};

#define FORGED(name, i) FIXTURE_VARIANT_ADD(forged, name) { .f = &forgeries[i] }
FORGED(head_word_far, 0);
FORGED(head_word_lap_ahead, 1);
FORGED(head_word_random, 2);
FORGED(head_reading_bad_owner, 3);
FORGED(tail_claimed_bad_owner, 4);
FORGED(enq_far_ahead, 5);
FORGED(deq_past_enq, 6);
FORGED(deq_far_ahead, 7);
FORGED(enq_closed_bit, 8);
FORGED(deq_closed_bit, 9);
FORGED(len_fffffffe, 10);
FORGED(all_ones, 11);
FORGED(all_zero, 12);

FIXTURE_SETUP(forged)
{
	struct sigaction sa = { .sa_handler = on_usr1 };

	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));	/* no SA_RESTART */
	self->fd = ring_open(SLOTS, MSG, O_NONBLOCK);
	ASSERT_LE(0, self->fd);
	self->blk = new_ep(self->fd, MPMC_ROLE_SEND | MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, self->blk);
	ASSERT_EQ(0, rmap_open(&self->m, self->fd));
	ASSERT_EQ(0, write_str(self->fd, "m0"));
	ASSERT_EQ(0, write_str(self->fd, "m1"));
}

FIXTURE_TEARDOWN(forged)
{
}

/*
 * Non-blocking calls come back at once with a message, EAGAIN, EMSGSIZE
 * or EIO; blocking calls with a timeout come back in time; a blocking
 * read() either comes back or sleeps (it does not spin) and a signal
 * ends it; poll, stats, FIONREAD answer; BROKEN means EIO everywhere;
 * shutdown, munmap and close work.
 */
TEST_F(forged, calls_return)
{
	const char *name = variant->f->name;
	int fd = self->fd, k, asleep;
	struct mpmc_stats st;
	struct bcall *c;
	char buf[MSG + 1];
	long long t0;
	ssize_t n;
	short ev;

	variant->f->apply(&self->m);
	for (k = 0; k < 4; k++) {
		t0 = now_ms();
		n = read(fd, buf, sizeof(buf));
		EXPECT_TRUE(QUICK(t0)) TH_LOG("%s: read hangs", name);
		EXPECT_TRUE(n > 0 || errno == EAGAIN || errno == EIO ||
			    errno == EMSGSIZE)
			TH_LOG("%s: read %zd %s", name, n,
			       n < 0 ? strerror(errno) : "");
		t0 = now_ms();
		n = write(fd, "w", 1);
		EXPECT_TRUE(QUICK(t0)) TH_LOG("%s: write hangs", name);
		EXPECT_TRUE(n == 1 || errno == EAGAIN || errno == EIO)
			TH_LOG("%s: write %zd %s", name, n,
			       n < 0 ? strerror(errno) : "");
	}
	/* Batches with a 50 ms timeout on a blocking file. */
	for (k = B_RECV_TMO; k <= B_SEND_TMO; k++) {
		c = calloc(1, sizeof(*c));	/* leaked if it hangs */
		ASSERT_NE(NULL, c);
		c->fd = self->blk;
		c->kind = k;
		ASSERT_EQ(0, pthread_create(&c->th, NULL, bcall_fn, c));
		ASSERT_TRUE(bcall_wait(c, OP_MAX_MS))
			TH_LOG("%s: a batch %s with a 50 ms timeout is still in the kernel after %d ms (%d of 10 looks asleep)",
			       name, k == B_RECV_TMO ? "receive" : "send",
			       OP_MAX_MS, asleep_count(atomic_load(&c->tid)));
		pthread_join(c->th, NULL);
		if (k == B_RECV_TMO) {
			EXPECT_TRUE(c->ret == 1 || c->err == ETIMEDOUT ||
				    c->err == EIO || c->err == EMSGSIZE)
				TH_LOG("%s: batch recv %zd %s", name, c->ret,
				       strerror(c->err));
		} else {
			EXPECT_TRUE(c->ret == 1 || c->err == ETIMEDOUT ||
				    c->err == EIO)
				TH_LOG("%s: batch send %zd %s", name, c->ret,
				       strerror(c->err));
		}
		free(c);
	}
	/* A blocking read: a message, an error, or asleep until a signal. */
	c = calloc(1, sizeof(*c));
	ASSERT_NE(NULL, c);
	c->fd = self->blk;
	c->kind = B_READ;
	ASSERT_EQ(0, pthread_create(&c->th, NULL, bcall_fn, c));
	if (!bcall_wait(c, 300)) {
		while (!atomic_load(&c->tid))
			usleep(1000);
		asleep = asleep_count(atomic_load(&c->tid));
		if (!atomic_load(&c->done)) {
			EXPECT_LE(8, asleep)
				TH_LOG("%s: a blocking read spins: asleep in %d of 10 looks",
				       name, asleep);
		}
		pthread_kill(c->th, SIGUSR1);
		ASSERT_TRUE(bcall_wait(c, OP_MAX_MS))
			TH_LOG("%s: a blocking read ignores a signal", name);
	}
	pthread_join(c->th, NULL);
	EXPECT_TRUE(c->ret > 0 || c->err == EINTR || c->err == EIO ||
		    c->err == EMSGSIZE)
		TH_LOG("%s: blocking read %zd %s", name, c->ret,
		       strerror(c->err));
	free(c);
	t0 = now_ms();
	ev = revents(fd, POLLIN | POLLOUT);
	EXPECT_LE(0, ev);
	EXPECT_EQ(0, ioctl(fd, MPMC_IOC_GET_STATS, &st));
	k = fionread(fd);
	EXPECT_TRUE(k >= 0 || errno == EIO)
		TH_LOG("%s: FIONREAD %s", name, strerror(errno));
	EXPECT_TRUE(QUICK(t0)) TH_LOG("%s: poll/stats hang", name);
	if (ld32(&self->m.ctrl->flags) & MPMC_RING_F_BROKEN) {
		TH_LOG("%s: BROKEN", name);
		EXPECT_ERRNO(EIO, read(fd, buf, sizeof(buf)));
		EXPECT_ERRNO(EIO, write(fd, "x", 1));
		EXPECT_NE(0, revents(fd, POLLIN) & POLLERR);
	}
	EXPECT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RDWR));
	EXPECT_EQ(0, rmap_close(&self->m));
	EXPECT_EQ(0, close(self->blk));
	EXPECT_EQ(0, close(fd));
}

/*
 * Minimal case of a spin: deq_pos with the closed bit that the kernel
 * never set, after one message was taken. A blocking receive with a
 * timeout must come back (with ETIMEDOUT or EIO) in time.
 */
TEST(deq_closed_bit_timeout)
{
	struct bcall *c;
	char buf[MSG];
	struct rmap m;
	int fd;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	ASSERT_EQ(0, write_str(fd, "m0"));
	st64(r_deq(&m), ld64(r_deq(&m)) | MPMC_RING_CLOSED);
	n_read_any(_metadata, fd, buf, sizeof(buf));
	c = calloc(1, sizeof(*c));
	ASSERT_NE(NULL, c);
	c->fd = fd;
	c->kind = B_RECV_TMO;
	ASSERT_EQ(0, pthread_create(&c->th, NULL, bcall_fn, c));
	ASSERT_TRUE(bcall_wait(c, OP_MAX_MS))
		TH_LOG("MPMC_IOC_RECV with a 50 ms timeout still in the kernel after %d ms (%d of 10 looks asleep)",
		       OP_MAX_MS, asleep_count(atomic_load(&c->tid)));
	pthread_join(c->th, NULL);
	EXPECT_TRUE(c->err == ETIMEDOUT || c->err == EIO)
		TH_LOG("%zd %s", c->ret, strerror(c->err));
	free(c);
	EXPECT_EQ(0, rmap_close(&m));
	EXPECT_EQ(0, close(fd));
}

/* ---- random ------------------------------------------------------------ */

#define NUSERS		4
#define NWHY		8

enum opk {
	U_WR_NB, U_RD_NB, U_RD_NB_SMALL, U_RD_BLK, U_WR_BLK, U_BSEND,
	U_BRECV, U_HAND_SEND, U_HAND_RECV, U_POLL, U_STATS, NOPK
};

static const char *const opk_name[NOPK] = {
	"write-nb", "read-nb", "read-nb-small", "read-blk", "write-blk",
	"batch-send", "batch-recv", "hand-send", "hand-recv", "poll", "stats",
};

enum res { RS_OK, RS_EAGAIN, RS_EIO, RS_EMSGSIZE, RS_EINTR, RS_ETIMEDOUT, RS_OTHER,
	   NRES };

/* Shared between the test process and its children. */
struct shared {
	atomic_int stop;	/* users: finish */
	atomic_int nwhy;
	char why[NWHY][200];
	atomic_long res[NOPK][NRES];
	atomic_long b_sent, b_received;
	atomic_int b_done;
	atomic_int b_stop;	/* B: finish */
	atomic_long scribbles;
};

static struct shared *sh;

static void failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void failure(const char *fmt, ...)
{
	int i = atomic_fetch_add(&sh->nwhy, 1);
	va_list ap;

	if (i >= NWHY)
		return;
	va_start(ap, fmt);
	vsnprintf(sh->why[i], sizeof(sh->why[i]), fmt, ap);
	va_end(ap);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* An interval timer for the next blocking call (0: off). */
static void timer_ms(int ms)
{
	struct itimerval it = {
		.it_value = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 },
	};

	setitimer(ITIMER_REAL, &it, NULL);
}

static void child_setup(void)
{
	struct sigaction sa = { .sa_handler = on_alarm };

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);	/* no SA_RESTART: EINTR */
}

enum { M_RANDOM, M_PLAUSIBLE, M_PAYLOAD };

/* A value near @around, or not at all. */
static __u64 pick_pos(uint32_t *rnd, __u64 around, __u32 nr)
{
	uint32_t r = xorshift(rnd);

	switch (r % 9) {
	case 0: return around;
	case 1: return around + 1;
	case 2: return around - 1;
	case 3: return around + nr;
	case 4: return around - nr;
	case 5: return around + (r >> 8) % (4 * nr);
	case 6: return ((__u64)xorshift(rnd) << 32) | xorshift(rnd);
	case 7: return around | MPMC_RING_CLOSED;
	default: return (r >> 4) & 0xff;
	}
}

/*
 * One random write over the ring region. @mode M_PLAUSIBLE: mostly values
 * an honest ring has, near the current positions (the hard ones to
 * detect); M_PAYLOAD: lengths in range and payload bytes only.
 */
static void scribble(struct rmap *m, uint32_t *rnd, int mode)
{
	bool plausible = mode == M_PLAUSIBLE;
	__u64 enq = ld64(r_enq(m)), deq = ld64(r_deq(m));
	uint32_t r = xorshift(rnd);
	__u64 base = (r & 1) ? enq : deq, pos;
	struct mpmc_ring_slot *s;
	static const __u32 lens[] = {
		0, 1, MSG, MSG + 1, MPMC_RING_LEN_SKIP, 0x80000000u, 4096,
	};
	__u32 owner;

	r >>= 1;
	pos = base + (xorshift(rnd) % 5) - 2;
	s = r_slot(m, pos);
	if (mode == M_PAYLOAD) {
		/* Only contents: lengths in range and payload bytes. */
		if (r & 1)
			s->len = 1 + (r >> 1) % m->max;
		else
			s->data[(r >> 1) % m->max] = r >> 16;
		return;
	}
	switch (r % 12) {
	case 0:
		st64(r_enq(m), plausible ? enq + (r >> 4) % 3 - 1 :
			       pick_pos(rnd, enq, m->nr));
		break;
	case 1:
		st64(r_deq(m), plausible ? deq + (r >> 4) % 3 - 1 :
			       pick_pos(rnd, deq, m->nr));
		break;
	case 2: case 3: case 4: case 5:
		owner = (r >> 4) % 4 == 0 ? 0 : (r >> 4) % 4 == 1 ? m->id :
			(r >> 6) & MPMC_RING_OWNER_MAX;
		if (plausible)
			st64(&s->word, MPMC_RING_WORD(pos + ((r >> 20) % 2) * m->nr,
						      owner, (r >> 24) & 3));
		else if (r & 0x10000)
			st64(&s->word, ((__u64)xorshift(rnd) << 32) |
				       xorshift(rnd));
		else
			st64(&s->word, MPMC_RING_WORD(pick_pos(rnd, pos, m->nr),
						      owner, (r >> 24) & 3));
		break;
	case 6: case 7:
		s->len = plausible && (r & 0x100) ? (r >> 9) % (MSG + 1) :
			 (r & 0x200) ? lens[(r >> 10) % ARRAY_SIZE(lens)] :
			 xorshift(rnd);
		break;
	case 8: {
		unsigned int i, n = 1 + (r >> 4) % m->max;

		for (i = 0; i < n; i++)
			s->data[i] = xorshift(rnd);
		break;
	}
	case 9:
		/* A well-formed publish at enq_pos, bypassing the claim. */
		s = r_slot(m, enq);
		s->len = (r >> 4) % (MSG + 2);
		st64(&s->word, MPMC_RING_WORD(enq, 0, MPMC_RING_FULL));
		cas64(r_enq(m), enq, enq + 1);
		break;
	case 10:
		ioctl(m->fd, MPMC_IOC_RING_WAKE,
		      1 + (r >> 4) % 3);	/* SEND, RECV or both */
		break;
	default:
		usleep(200);
		break;
	}
}

static void hostile(int fd, uint32_t seed, int mode, int pause_us)
{
	struct rmap m;
	uint32_t rnd = seed ? seed : 1;
	long i;

	child_setup();
	if (rmap_open(&m, fd)) {
		failure("hostile: rmap_open: %s", strerror(errno));
		_exit(1);
	}
	for (i = 0;; i++) {
		scribble(&m, &rnd, mode);
		atomic_fetch_add(&sh->scribbles, 1);
		if (pause_us)
			usleep(pause_us);
		else if (!(i & 15))
			usleep(50);
	}
}

static enum res classify(ssize_t n)
{
	if (n >= 0)
		return RS_OK;
	switch (errno) {
	case EAGAIN: return RS_EAGAIN;
	case EIO: return RS_EIO;
	case EMSGSIZE: return RS_EMSGSIZE;
	case EINTR: return RS_EINTR;
	case ETIMEDOUT: return RS_ETIMEDOUT;
	default: return RS_OTHER;
	}
}

/*
 * One user of channel A: random calls until told to stop. @blk and @nb
 * are its own files (blocking, O_NONBLOCK) of A, @m its own mapping.
 */
static void user(int fd, int id, uint32_t seed)
{
	unsigned char buf[4096], msg[MSG];
	bool broken = false;
	uint32_t rnd = seed * 2654435761u + id + 1;
	struct rmap m;
	int blk, nb;

	child_setup();
	blk = new_ep(fd, MPMC_ROLE_SEND | MPMC_ROLE_RECV, 0);
	nb = new_ep(fd, MPMC_ROLE_SEND | MPMC_ROLE_RECV, O_NONBLOCK);
	if (blk < 0 || nb < 0 || rmap_open(&m, blk)) {
		failure("user %d: setup: %s", id, strerror(errno));
		_exit(1);
	}
	memset(msg, 'u', sizeof(msg));
	while (!atomic_load(&sh->stop)) {
		enum opk k = xorshift(&rnd) % NOPK;
		size_t len = 1 + xorshift(&rnd) % MSG;
		struct mpmc_msgvec v[4];
		struct pollfd pfd;
		struct mpmc_stats st;
		bool ok = false, is_io = true;
		long long t0 = now_ms(), dt;
		ssize_t n = -1;
		enum res res;
		int i, cnt;

		errno = 0;
		switch (k) {
		case U_WR_NB:
			n = write(nb, msg, len);
			ok = n == (ssize_t)len || errno == EAGAIN || errno == EIO;
			break;
		case U_RD_NB:
			n = read(nb, buf, MSG);
			ok = (n >= 0 && n <= MSG) || errno == EAGAIN ||
			     errno == EIO;
			break;
		case U_RD_NB_SMALL:
			n = read(nb, buf, 16);
			ok = (n >= 0 && n <= 16) || errno == EAGAIN ||
			     errno == EIO || errno == EMSGSIZE;
			break;
		case U_RD_BLK:
			timer_ms(TIMER_MS);
			n = read(blk, buf, sizeof(buf));
			timer_ms(0);
			ok = (n >= 0 && n <= MSG) || errno == EINTR ||
			     errno == EIO;
			break;
		case U_WR_BLK:
			timer_ms(TIMER_MS);
			n = write(blk, msg, len);
			timer_ms(0);
			ok = n == (ssize_t)len || errno == EINTR || errno == EIO;
			break;
		case U_BSEND:
			cnt = 1 + xorshift(&rnd) % 4;
			for (i = 0; i < cnt; i++)
				v[i] = (struct mpmc_msgvec){
					.buf = (uintptr_t)msg, .len = len };
			n = ioctl(blk, MPMC_IOC_SEND, &(struct mpmc_batch){
				.vec = (uintptr_t)v, .count = cnt,
				.timeout_ns = BATCH_TMO_NS });
			ok = (n >= 1 && n <= cnt) || errno == ETIMEDOUT ||
			     errno == EIO;
			break;
		case U_BRECV:
			cnt = 1 + xorshift(&rnd) % 4;
			for (i = 0; i < cnt; i++)
				v[i] = (struct mpmc_msgvec){
					.buf = (uintptr_t)(buf + i * 1024),
					.len = 1024 };
			n = ioctl(blk, MPMC_IOC_RECV, &(struct mpmc_batch){
				.vec = (uintptr_t)v, .count = cnt,
				.timeout_ns = BATCH_TMO_NS });
			ok = (n >= 1 && n <= cnt) || errno == ETIMEDOUT ||
			     errno == EIO;
			for (i = 0; n > 0 && i < n; i++)
				if (v[i].len > MSG)
					ok = false;
			break;
		case U_HAND_SEND:
			n = rt_send(&m, msg, len);
			if (n < 0) {
				n = write(nb, msg, len);
				ok = n == (ssize_t)len || errno == EAGAIN ||
				     errno == EIO;
			} else {
				ok = true;
				is_io = false;
			}
			break;
		case U_HAND_RECV:
			n = rt_recv(&m, buf, MSG);
			if (n < 0) {
				n = read(nb, buf, MSG);
				ok = (n >= 0 && n <= MSG) ||
				     errno == EAGAIN || errno == EIO;
			} else {
				ok = true;
				is_io = false;
			}
			break;
		case U_POLL:
			pfd = (struct pollfd){ .fd = nb, .events = POLLIN | POLLOUT };
			n = poll(&pfd, 1, 10);
			ok = n >= 0;
			if (broken && n == 1 && !(pfd.revents & POLLERR)) {
				failure("user %d: poll %#x without POLLERR on a broken ring",
					id, pfd.revents);
			}
			is_io = false;
			break;
		case U_STATS:
			n = ioctl(nb, MPMC_IOC_GET_STATS, &st);
			ok = n == 0;
			is_io = false;
			break;
		default:
			break;
		}
		res = classify(n);
		dt = now_ms() - t0;
		atomic_fetch_add(&sh->res[k][res], 1);
		if (!ok)
			failure("user %d: %s: %zd (%s)", id, opk_name[k], n,
				n < 0 ? strerror(errno) : "bad length");
		if (dt > OP_MAX_MS)
			failure("user %d: %s took %lld ms", id, opk_name[k], dt);
		if (is_io && broken && res != RS_EIO &&
		    !(res == RS_EINTR && n < 0))
			failure("user %d: %s: %zd (%s) after EIO: not sticky",
				id, opk_name[k], n, strerror(errno));
		if (is_io && res == RS_EIO) {
			broken = true;
			if (!(ld32(&m.ctrl->flags) & MPMC_RING_F_BROKEN))
				failure("user %d: %s: EIO but no BROKEN flag",
					id, opk_name[k]);
		}
	}
	rmap_close(&m);
	_exit(0);
}

struct bmsg {
	uint32_t magic, seq, end, check;
	unsigned char pad[MSG - 16];
};

/* Channel B's producer: a numbered stream, half by ring, half by write. */
static void b_producer(int fd)
{
	struct bmsg b = { .magic = B_MAGIC };
	struct rmap m;
	uint32_t seq;

	child_setup();
	if (rmap_open(&m, fd)) {
		failure("B producer: rmap_open: %s", strerror(errno));
		_exit(1);
	}
	for (seq = 0;; seq++) {
		b.seq = seq;
		b.end = atomic_load(&sh->b_stop);
		b.check = seq * 2654435761u;
		memset(b.pad, seq, sizeof(b.pad));
		if (!(seq & 1) && rt_send(&m, &b, sizeof(b)) == sizeof(b)) {
			/* sent by ring */
		} else if (write(fd, &b, sizeof(b)) != sizeof(b)) {
			failure("B producer: write: %s", strerror(errno));
			_exit(1);
		}
		atomic_fetch_add(&sh->b_sent, 1);
		if (b.end)
			break;
	}
	rmap_close(&m);
	_exit(0);
}

static void b_consumer(int fd)
{
	unsigned char pad[MSG - 16];
	struct bmsg b;
	struct rmap m;
	uint32_t want;
	ssize_t n;

	child_setup();
	if (rmap_open(&m, fd)) {
		failure("B consumer: rmap_open: %s", strerror(errno));
		_exit(1);
	}
	for (want = 0;; want++) {
		n = (want & 2) ? rt_recv(&m, &b, sizeof(b)) : -EAGAIN;
		if (n < 0)
			n = read(fd, &b, sizeof(b));
		if (n != sizeof(b)) {
			failure("B consumer: read %zd (%s) at %u", n,
				n < 0 ? strerror(errno) : "short", want);
			_exit(1);
		}
		memset(pad, want, sizeof(pad));
		if (b.magic != B_MAGIC || b.seq != want ||
		    b.check != want * 2654435761u ||
		    memcmp(b.pad, pad, sizeof(pad))) {
			failure("B consumer: want seq %u, got magic %#x seq %u",
				want, b.magic, b.seq);
			_exit(1);
		}
		atomic_fetch_add(&sh->b_received, 1);
		if (b.end)
			break;
	}
	atomic_store(&sh->b_done, 1);
	rmap_close(&m);
	_exit(0);
}

/* Wait up to @ms for @pid: true if it ended (and was reaped). */
static bool reap_within(pid_t pid, int ms, int *status)
{
	long long end = now_ms() + ms;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return true;
		if (r < 0 || now_ms() > end)
			return false;
		usleep(2000);
	}
}

FIXTURE(hostile) {
	int b;
};

FIXTURE_VARIANT(hostile) {
	int mode;
	int pause_us;		/* the hostile child's pause per write */
	int rounds, round_ms;
};

FIXTURE_VARIANT_ADD(hostile, random) {
	.mode = M_RANDOM, .pause_us = 0, .rounds = 8, .round_ms = 500,
};

FIXTURE_VARIANT_ADD(hostile, plausible) {
	.mode = M_PLAUSIBLE, .pause_us = 0, .rounds = 8, .round_ms = 500,
};

/* Only lengths (in range) and payload: often not detectable at all. */
FIXTURE_VARIANT_ADD(hostile, payload) {
	.mode = M_PAYLOAD, .pause_us = 200, .rounds = 6, .round_ms = 500,
};

/* Slow: the users get real traffic through between two writes. */
FIXTURE_VARIANT_ADD(hostile, slow) {
	.mode = M_PLAUSIBLE, .pause_us = 3000, .rounds = 8, .round_ms = 500,
};

FIXTURE_SETUP(hostile)
{
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	self->b = ring_open(SLOTS, MSG, 0);
	ASSERT_LE(0, self->b);
}

FIXTURE_TEARDOWN(hostile)
{
	munmap(sh, sizeof(*sh));
}

/*
 * One round on a fresh channel A: the users and the hostile child for
 * @ms, then the hostile child killed and the users told to stop. Checks
 * that everything ends in time and that A answers as it must afterwards.
 * Returns whether A ended up BROKEN.
 */
static bool round_a(struct __test_metadata *_metadata, uint32_t seed,
		    int mode, int pause_us, int ms)
{
	pid_t users[NUSERS], hpid;
	struct mpmc_stats st;
	struct rmap m;
	int a, i, r, status;
	bool broken;

	a = ring_open(SLOTS, MSG, 0);
	ASSERT_LE(0, a) TH_LOG("ring_open: %s", strerror(errno));
	ASSERT_EQ(0, rmap_open(&m, a));
	atomic_store(&sh->stop, 0);
	for (i = 0; i < NUSERS; i++) {
		users[i] = fork();
		if (users[i] == 0)
			user(a, i, seed);
		ASSERT_LT(0, users[i]);
	}
	hpid = fork();
	if (hpid == 0)
		hostile(a, seed, mode, pause_us);
	ASSERT_LT(0, hpid);
	usleep(ms * 1000);

	/* The hostile child first, then the users. */
	ASSERT_EQ(0, kill(hpid, SIGKILL));
	EXPECT_TRUE(reap_within(hpid, WAIT_MS, &status))
		TH_LOG("the hostile child does not die");
	atomic_store(&sh->stop, 1);
	for (i = 0; i < NUSERS; i++) {
		if (reap_within(users[i], WAIT_MS, &status)) {
			EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
				TH_LOG("user %d: status %#x", i, status);
			continue;
		}
		EXPECT_TRUE(0) TH_LOG("user %d does not stop: hung", i);
		kill(users[i], SIGKILL);
		EXPECT_TRUE(reap_within(users[i], WAIT_MS, &status))
			TH_LOG("user %d survives SIGKILL", i);
	}

	/* A afterwards: the calls still come back; BROKEN is thorough. */
	broken = ld32(&m.ctrl->flags) & MPMC_RING_F_BROKEN;
	EXPECT_EQ(0, ioctl(a, MPMC_IOC_GET_STATS, &st));
	if (broken) {
		char buf[MSG];

		EXPECT_ERRNO(EIO, read(a, buf, sizeof(buf)));
		EXPECT_ERRNO(EIO, write(a, "x", 1));
		EXPECT_NE(0, revents(a, POLLIN) & POLLERR);
	} else {
		struct mpmc_msgvec v;
		char buf[MSG];
		long long t0 = now_ms();

		v = (struct mpmc_msgvec){ .buf = (uintptr_t)buf, .len = MSG };
		r = batch_of_one(a, MPMC_IOC_RECV, &v, 0, 0);
		EXPECT_TRUE(r == 1 || errno == EAGAIN || errno == EIO)
			TH_LOG("recv: %d %s", r, strerror(errno));
		v = (struct mpmc_msgvec){ .buf = (uintptr_t)"z", .len = 1 };
		r = batch_of_one(a, MPMC_IOC_SEND, &v, 0, 0);
		EXPECT_TRUE(r == 1 || errno == EAGAIN || errno == EIO)
			TH_LOG("send: %d %s", r, strerror(errno));
		EXPECT_TRUE(QUICK(t0));
	}
	EXPECT_EQ(0, rmap_close(&m));
	EXPECT_EQ(0, close(a));
	return broken;
}

TEST_F_TIMEOUT(hostile, channels, 150)
{
	const char *env = getenv("RING_HOSTILE_SEED");
	uint32_t seed = env ? strtoul(env, NULL, 0) : (uint32_t)now_ms() ^ getpid();
	int i, k, r, status, nbroken = 0;
	pid_t bp, bc;

	TH_LOG("seed %u (RING_HOSTILE_SEED=%u to repeat)", seed, seed);
	bp = fork();
	if (bp == 0)
		b_producer(self->b);
	ASSERT_LT(0, bp);
	bc = fork();
	if (bc == 0)
		b_consumer(self->b);
	ASSERT_LT(0, bc);
	for (i = 0; i < variant->rounds; i++)
		nbroken += round_a(_metadata, seed + i, variant->mode,
				   variant->pause_us, variant->round_ms);

	/* B: told to end, it ends, exact. */
	atomic_store(&sh->b_stop, 1);
	EXPECT_TRUE(reap_within(bp, 2 * WAIT_MS, &status))
		TH_LOG("B producer hung");
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	EXPECT_TRUE(reap_within(bc, 2 * WAIT_MS, &status))
		TH_LOG("B consumer hung");
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	kill(bp, SIGKILL);
	kill(bc, SIGKILL);

	for (i = 0; i < atomic_load(&sh->nwhy) && i < NWHY; i++)
		TH_LOG("failure: %s", sh->why[i]);
	if (atomic_load(&sh->nwhy) > NWHY)
		TH_LOG("... %d failures in all", atomic_load(&sh->nwhy));
	EXPECT_EQ(0, atomic_load(&sh->nwhy));
	EXPECT_EQ(1, atomic_load(&sh->b_done));
	EXPECT_EQ(atomic_load(&sh->b_sent), atomic_load(&sh->b_received));
	EXPECT_LT(100, atomic_load(&sh->b_received));
	TH_LOG("B: %ld messages exact; %ld scribbles on A; A broken in %d of %d rounds",
	       atomic_load(&sh->b_received), atomic_load(&sh->scribbles),
	       nbroken, variant->rounds);
	for (k = 0; k < NOPK; k++) {
		char line[200];
		int off = 0;

		for (r = 0; r < NRES; r++)
			off += snprintf(line + off, sizeof(line) - off, " %ld",
					atomic_load(&sh->res[k][r]));
		TH_LOG("A %-13s ok/EAGAIN/EIO/EMSGSIZE/EINTR/ETIMEDOUT/other:%s",
		       opk_name[k], line);
	}
	EXPECT_EQ(0, close(self->b));
}

TEST_HARNESS_MAIN
