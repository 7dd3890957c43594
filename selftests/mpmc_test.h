/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the mpmc selftests, implemented in mpmc_test.c, which
 * every test program links. The functions have a plain C interface (return
 * codes, errno); the kselftest ASSERT_* macros stay in the tests and in the
 * macros at the end of this file, so mpmc_test.c does not include
 * kselftest_harness.h (whose 6.1 version defines a non-static object).
 * Include after kselftest_harness.h.
 */
#ifndef MPMC_TEST_H
#define MPMC_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <liburing.h>
#include <linux/mpmc.h>

#define MPMC_DEV "/dev/mpmc"

/* How long to wait for something that must happen: the guest is emulated. */
#define MPMC_TEST_WAIT_MS	10000
#define WAIT_MS			MPMC_TEST_WAIT_MS

/* ---- channels ------------------------------------------------------- */

int mpmc_test_open(int flags);
int mpmc_test_open_cfg(__u32 capacity, __u32 msg_size);
unsigned long long mpmc_test_param(const char *name);

/* The module's limits, from /sys/module/mpmc/parameters. */
struct limits {
	unsigned long long max_capacity, max_msg_size, max_channel_bytes;
};

bool read_limits(struct limits *l);
int new_ep_exact(int fd, __u32 roles, __u32 flags);
int new_ep(int fd, __u32 roles, __u32 flags);
int fionread(int fd);
int write_str(int fd, const char *s);
int open_queued(__u32 capacity, __u32 msg_size, ...);
int wait_blocked(int fd, bool rx, unsigned int want);
struct mpmc_stats stats_of(int fd);

/* ---- configuration, scheduling ---------------------------------------- */

int set_config(int fd, __u32 capacity, __u32 flags);
int set_flags(int fd, __u32 flags);
int pin_cpu(int cpu);
int sched_fifo(bool on);

/* ---- batches of one -------------------------------------------------- */

int batch_of_one(int fd, unsigned long cmd, struct mpmc_msgvec *v,
		 __u32 flags, __s64 timeout);
int send_one(int fd, const char *s, __u32 prio, __s64 timeout);
int recv_msg(int fd, char *buf, size_t size, __u32 *prio, __u32 flags);
void name_vec(struct mpmc_msgvec *v, char *bufs, size_t size, int n,
	      const char *fmt);

/* name_vec() of an array @v and an array of arrays @bufs. */
#define NAME_VEC(v, bufs, n, fmt) \
	name_vec((v), (bufs)[0], sizeof((bufs)[0]), (n), (fmt))

/*
 * An address that is not mapped, hidden from the compiler (a volatile
 * read) so that it does not warn about the bad access.
 */
extern volatile uintptr_t mpmc_bad_addr;
#define BAD_PTR ((void *)mpmc_bad_addr)

void *unmapped_page(void);

/* ---- time, files, signals ------------------------------------------- */

long long now_ms(void);
ssize_t read_file(const char *path, char *buf, size_t size);
int read_line(const char *path, char *buf, size_t size);
int write_file(const char *path, const char *s, int oflags);
long long scan_file(const char *path, const char *fmt, long long none);
int epoll_for(int fd, unsigned int events);

extern atomic_int sig_count;
int set_sigusr1(bool restart);
int wait_sig_count(int want);

/* ---- one blocking call in its own thread ---------------------------- */

/* read(), write(), or an MPMC_IOC_RECV / MPMC_IOC_SEND batch of one. */
enum op_kind { OP_READ, OP_WRITE, OP_BRECV, OP_BSEND };

#define OP_BUF	4096	/* the largest message an op moves */

struct op {
	pthread_t th;
	int fd;
	enum op_kind kind;
	size_t len;		/* bytes to write, or the read buffer size */
	ssize_t ret;		/* bytes moved (a batch's too), or -1 */
	int err;		/* errno when ret < 0, else 0 */
	int tid;		/* the thread's gettid(): op_tid() */
	atomic_int done;
	char buf[OP_BUF + 1];	/* a received message is NUL-terminated */
};

int join_within(pthread_t th);
int op_start(struct op *op, int fd, enum op_kind kind, const void *msg,
	     size_t len);
int start_reader(struct op *op, int fd, size_t len);
int start_writer(struct op *op, int fd, const char *msg);
bool op_done(struct op *op);
int op_tid(struct op *op);
int op_join(struct op *op);
ssize_t read_str(int fd, char *buf, size_t size);
int blocked_reader(struct op *rd, size_t len);
int blocked_writer(struct op *wr, const char *queued, const char *msg);

/* ---- threads that share a context ----------------------------------- */

/* Peer i of an array runs its function on &peers[i], with id i. */
struct peer {
	pthread_t th;
	void *ctx;
	int id;
};

int peers_start(struct peer *p, int n, void *ctx, void *(*fn)(void *));
void peers_join(struct peer *p, int n);

/* A thread that flips @bit of a channel's flags every @period_us. */
struct flipper {
	pthread_t th;
	int fd;
	__u32 flags, bit;
	unsigned int period_us;
	atomic_bool stop;
};

int flipper_start(struct flipper *f, int fd, __u32 flags, __u32 bit,
		  unsigned int period_us);
void flipper_stop(struct flipper *f);

/* poll() of @fd for @events with timeout 2 * WAIT_MS, in a thread. */
struct poller {
	pthread_t th;
	int fd;
	short events;
	int ret;		/* poll()'s */
	short revents;
};

int poller_start(struct poller *p, int fd, short events);
short revents(int fd, short events);

/* ---- unloading and loading the module (lifecycle.c, modcycle.c) ----- */

#define MOD_NAME	"mpmc"
#define MOD_NPARAMS	4

extern const char *mod_ko;
extern const char *const mod_param_names[MOD_NPARAMS];
extern unsigned long long mod_saved[MOD_NPARAMS];

void mod_init(void);
bool mod_loaded(void);
bool dev_exists(void);
bool wait_dev(bool present, int ms);
int mod_unload(void);
int mod_unload_within(int ms);
int mod_load(void);
void mod_ensure_loaded(void);
const char *mod_skip_reason(void);
int mod_ready(void);

/*
 * MOD_FIXTURE(name, dev): the fixture of the tests that unload the module.
 * Its tests start with MOD_SKIP_IF_NEEDED(): they are skipped without root
 * or a readable $MPMC_KO. Setup loads the module if it is not loaded;
 * teardown loads it again and expects it loaded (and with @dev, expects
 * /dev/mpmc within WAIT_MS).
 */
#define MOD_FIXTURE(name, dev)						\
FIXTURE(name) {								\
	const char *skip;						\
};									\
FIXTURE_SETUP(name)							\
{									\
	self->skip = mod_skip_reason();					\
	if (!self->skip)						\
		ASSERT_EQ(0, mod_ready());				\
}									\
FIXTURE_TEARDOWN(name)							\
{									\
	if (self->skip)							\
		return;							\
	mod_ensure_loaded();						\
	EXPECT_TRUE(mod_loaded());					\
	if (dev)							\
		EXPECT_TRUE(wait_dev(true, WAIT_MS));			\
}

#define SKIP_IF_NEEDED() do {						\
	if (self->skip)							\
		SKIP(return, "%s", self->skip);				\
} while (0)

/* ---- io_uring -------------------------------------------------------- */

/* One completion, copied out of the CQ ring. */
struct cqe {
	__u64 ud;
	int res;
	unsigned int flags;
};

struct io_uring_sqe *get_sqe(struct io_uring *ring);
int get_cqe(struct io_uring *ring, int ms, struct cqe *c);
void prep_read(struct io_uring *ring, int fd, void *buf, unsigned int len,
	       __u64 ud);
void prep_write(struct io_uring *ring, int fd, const void *buf,
		unsigned int len, __u64 ud);
int count_iou_wrk(pid_t *tids, int max);

#define RING_INIT(ring, entries) \
	ASSERT_EQ(0, io_uring_queue_init((entries), (ring), 0))

/* ---- the stress tests' messages ------------------------------------- */

#define STRESS_MAGIC	0x6d706d63u

/* The head of a stress message; the payload derives from (prod, seq). */
struct stress_hdr {
	uint32_t magic;
	uint32_t prod;
	uint32_t seq;
	uint32_t len;
	uint32_t csum;	/* of the whole message with csum = 0 */
};

uint32_t xorshift(uint32_t *s);
size_t stress_msg(unsigned char *buf, uint32_t prod, uint32_t seq,
		uint32_t *rnd, size_t max, size_t spread);
const char *stress_check(unsigned char *buf, size_t n, size_t max,
			 uint32_t nprod, uint32_t nseq, struct stress_hdr *h);

/* ---- assertions ------------------------------------------------------ */

/* Fetch the stats of @fd's channel; aborts the test on failure. */
#define MPMC_STATS(fd, st) \
	ASSERT_EQ(0, ioctl((fd), MPMC_IOC_GET_STATS, (st)))

/*
 * STAT(field, value): a field of struct mpmc_stats and the value expected
 * in it, for EXPECT_STATS(); STAT_TOTALS(queued, sent, received) stands
 * for the three of EXPECT_TOTALS(), STAT_FILES(send, recv) for the two of
 * EXPECT_FILES().
 */
struct stat_want {
	const char *name;
	size_t off, size;
	unsigned long long val;
};

#define STAT(field, v) {						\
	#field, offsetof(struct mpmc_stats, field),			\
	sizeof(((struct mpmc_stats *)0)->field), (v)			\
}
#define STAT_TOTALS(queued, sent, received)				\
	STAT(queued_msgs, queued), STAT(total_sent, sent),		\
	STAT(total_received, received)
#define STAT_FILES(send, recv)						\
	STAT(send_files, send), STAT(recv_files, recv)

int stats_mismatches(const struct mpmc_stats *st,
		     const struct stat_want *want, size_t n);

/*
 * Expect each field of the STAT()s that follow to hold its value in the
 * stats @st: EXPECT_EQ(value, st.field) each.
 */
#define EXPECT_STATS_OF(st, ...) do {					\
	const struct stat_want want_[] = { __VA_ARGS__ };		\
									\
	EXPECT_EQ(0, stats_mismatches(&(st), want_, ARRAY_SIZE(want_)));	\
} while (0)

/* The same of the stats of @fd's channel, fetched with MPMC_STATS(). */
#define EXPECT_STATS(fd, ...) do {					\
	struct mpmc_stats st_;						\
									\
	MPMC_STATS((fd), &st_);						\
	EXPECT_STATS_OF(st_, __VA_ARGS__);				\
} while (0)

/*
 * Run on CPU @cpu only, and skip the test unless it may run under
 * SCHED_FIFO (which it leaves again: back to SCHED_OTHER).
 */
#define PIN_CPU_FIFO_OR_SKIP(cpu) do {					\
	ASSERT_EQ(0, pin_cpu(cpu));					\
	if (sched_fifo(true))						\
		SKIP(return, "no SCHED_FIFO here: %s", strerror(errno));	\
	ASSERT_EQ(0, sched_fifo(false));				\
} while (0)

/* @expr fails: it returns -1 with errno @e. */
#define EXPECT_ERRNO(e, expr) do {					\
	EXPECT_EQ(-1, expr);						\
	EXPECT_EQ(e, errno);						\
} while (0)

#define ASSERT_ERRNO(e, expr) do {					\
	ASSERT_EQ(-1, expr);						\
	ASSERT_EQ(e, errno);						\
} while (0)

/* The call of @op (anything with ret and err) failed with errno @e. */
#define EXPECT_OP_ERR(op, e) do {					\
	EXPECT_EQ(-1, (op).ret);					\
	EXPECT_EQ(e, (op).err);					\
} while (0)

#define ASSERT_OP_ERR(op, e) do {					\
	ASSERT_EQ(-1, (op).ret);					\
	ASSERT_EQ(e, (op).err);					\
} while (0)

/* Expect queued_msgs, total_sent and total_received of stats @st. */
#define EXPECT_TOTALS(st, queued, sent, received) do {			\
	EXPECT_EQ(queued, (st).queued_msgs);				\
	EXPECT_EQ(sent, (st).total_sent);				\
	EXPECT_EQ(received, (st).total_received);			\
} while (0)

/* Expect (or assert) the send_files and recv_files counts of stats @st. */
#define EXPECT_FILES(st, send, recv) do {				\
	EXPECT_EQ(send, (st).send_files);				\
	EXPECT_EQ(recv, (st).recv_files);				\
} while (0)

#define ASSERT_FILES(st, send, recv) do {				\
	ASSERT_EQ(send, (st).send_files);				\
	ASSERT_EQ(recv, (st).recv_files);				\
} while (0)

/*
 * read() one message from @fd into the array @buf: assert that it is as
 * long as the string literal @s, expect the same bytes.
 */
#define CHECK_READ(fd, buf, s) do {					\
	ASSERT_EQ((ssize_t)sizeof(s) - 1,				\
		  read((fd), (buf), sizeof(buf)));			\
	EXPECT_EQ(0, memcmp((buf), (s), sizeof(s) - 1));		\
} while (0)

/* The same through read_str() (bounded wait, NUL-terminated @buf). */
#define CHECK_READ_STR(fd, buf, s) do {					\
	ASSERT_EQ((ssize_t)sizeof(s) - 1,				\
		  read_str((fd), (buf), sizeof(buf)));		\
	EXPECT_STREQ((s), (buf));					\
} while (0)

#endif /* MPMC_TEST_H */
