/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mpmc-bench: what the parts share. main.c says what the program measures
 * and what every CSV column means; transport.c and batch.c move messages
 * over each transport, workers.c and uring.c are the scenarios' threads,
 * run.c runs one cell once, matrix.c chooses the cells.
 */
#ifndef MPMC_BENCH_H
#define MPMC_BENCH_H

#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/mpmc.h>

#define MAX_WORKERS	64
#define EPOLL_CHANS	64
#define WAKEUP_RX	8
#define MAX_BATCH	1024
#define MAX_QD		256
#define MAX_REPS	64

/* util.c */
extern int verbose;
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define DIE_ERRNO(what) die("%s: %s (%s:%d)", what, strerror(errno), __FILE__, __LINE__)
uint64_t now_ns(void);
uint64_t cpu_ns(clockid_t clk);
uint64_t ctxsw(int who);
int write_file(const char *path, const char *val);
long read_long_file(const char *path);
double median(const double *v, int n);

/* cgroup.c */
void cgroup_enter(const char *dir);
void cgroup_report(const char *dir);

/* transport.c: one channel; producers use s, consumers r (the same fd for some). */
enum xport { X_MPMC, X_MPMC_EP, X_MPMC_TP, X_PIPEPKT, X_PIPE, X_PIPE64K, X_SEQPACKET, X_MQUEUE,
	     X_MPMC_RING, X_SHMRING, X_NULL, X_NR };
extern const char *const xport_name[X_NR];
extern const char *mpmc_dev;

struct chan {
	int xp;
	int s, r;
	int idx;		/* in run.chans: a worker's own mapping of it */
};

#define CH_RD_NONBLOCK	1	/* consumers' descriptor is O_NONBLOCK */

/* The transports every worker maps for itself (chans_attach()). */
static inline bool xport_mapped(int xp)
{
	return xp == X_MPMC_RING || xp == X_SHMRING;
}

bool mpmc_has_throughput(void);
bool mpmc_has_ring(void);
void chan_open(struct chan *c, int xp, int size, int cap, int flags);
void chan_close(struct chan *c);
struct xlocal;
struct xlocal *chans_attach(struct chan *c, int n);
void chans_detach(struct xlocal *l, struct chan *c, int n);
void chan_send(struct chan *c, const void *buf, size_t len);
ssize_t chan_recv(struct chan *c, void *buf, size_t len);

/* batch.c: the batch state of one thread. */
struct batchbuf {
	int n;
	char *data;			/* n * size bytes */
	struct mpmc_msgvec vec[MAX_BATCH];
	struct mmsghdr mm[MAX_BATCH];
	struct iovec iov[MAX_BATCH];
};

struct batchbuf *batch_alloc(int n, int size);
void batch_free(struct batchbuf *b);
int chan_send_batch(struct chan *c, struct batchbuf *b, int off, int n, int size);
int chan_recv_batch(struct chan *c, struct batchbuf *b, int n, int size);

/* The cells. */
enum scen { S_THREADS, S_PROCS, S_PINGPONG, S_EPOLL, S_BATCH, S_URING, S_WAKEUP, S_FAIR, S_NULL,
	    S_NR };
extern const char *const scen_name[S_NR];

struct cell {
	int xp, scen;
	int prod, cons;
	int size, cap;
	int batch, qd, pinned;
};

/* Shared between the workers of one run (threads or processes). */
struct wres {
	uint64_t cpu_ns;	/* this worker's CPU time during the run */
	uint64_t csw;		/* this worker's context switches */
	uint64_t sum;		/* consumers: sum of received values */
	uint64_t count;		/* consumers: messages received */
	uint64_t max_gap_ns;	/* fair: longest wait for a message */
	uint64_t wake_ns;	/* wakeup: sum of send-to-receive times */
	int consumer;
};

struct run {
	struct cell cell;
	long per_prod;		/* messages each producer sends */
	long total;		/* messages in all */
	long claimed;		/* consumers' reservations (atomic) */
	uint64_t gap_ns;	/* wakeup: producer pause between messages */
	pthread_barrier_t bar;
	int nchans;
	struct chan chans[EPOLL_CHANS];
	int nworkers;
	struct wres res[MAX_WORKERS];
};

struct worker {
	struct run *r;
	int id;			/* index in r->res */
	int role;		/* producer index, or consumer index */
	void (*fn)(struct worker *);
	char *buf;		/* one message */
	struct xlocal *xl;	/* its own mappings (mpmc-ring, shmring) */
	uint64_t cpu0, csw0;	/* at worker_begin() */
};

/* workers.c */
void worker_begin(struct worker *w);
void *worker_main(void *arg);
void (*worker_fn(int scen, bool producer))(struct worker *);
void consumer_done(struct worker *w, uint64_t sum, long n);

static inline uint64_t msg_value(int p, long i)	/* message i of producer p, never 0 */
{
	return ((uint64_t)(p + 1) << 40) + (uint64_t)i + 1;
}

static inline void put_value(char *buf, uint64_t v)
{
	memcpy(buf, &v, sizeof(v));
}

static inline uint64_t get_value(const char *buf)
{
	uint64_t v;

	memcpy(&v, buf, sizeof(v));
	return v;
}

/* uring.c */
extern unsigned uring_flags;
void w_uring(struct worker *w);

/* run.c: one timed repetition of a cell. */
struct sample {
	double secs;		/* wall time */
	double rate;		/* messages (round trips) per second */
	double cpu_per_msg;	/* ns */
	double csw_per_msg;
	double min_share, max_share;	/* of the fewest/most a consumer got, 1 = even; */
	double max_wait_us;		/* fair: the longest wait; else NAN */
	double wake_us;			/* wakeup: mean send-to-receive time; else NAN */
};

extern uint64_t gap_ns;
struct sample run_null(long n);
struct sample run_any(const struct cell *c, long n);
long calibrate(const struct cell *c, int time_ms, int wakeup_msgs);

/* matrix.c */
enum group {
	G_MN, G_PROCS, G_PINGPONG, G_EPOLL, G_BATCH, G_URING, G_SIZES, G_CAPS,
	G_PINNED, G_WAKEUP, G_OOB, G_FAIR, G_RING, G_TARGETS, G_NR
};
extern const char *const group_name[G_NR];
extern const char *const group_help[G_NR];

struct intlist { int n; int v[32]; };	/* an empty list lets everything through */

struct filter {
	unsigned xports, scens;
	struct intlist sizes, caps, pairs_p, pairs_c, batches, qds;
	bool pin;
};

extern struct cell *cells;
extern int ncells;
void build_matrix(unsigned groups, bool full);
void filter_cells(const struct filter *f);
void group_cells(void);
bool same_config(const struct cell *a, const struct cell *b);
void cell_desc(const struct cell *c, char *buf, size_t len);

#endif
