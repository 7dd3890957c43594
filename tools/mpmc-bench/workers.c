// SPDX-License-Identifier: GPL-2.0
/*
 * mpmc-bench: the threads (or processes) of each scenario. A worker body
 * does its setup, calls worker_begin() (the start barrier), moves its
 * messages and returns; worker_main() around it gives it a message buffer
 * and records its CPU time and context switches.
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <sys/resource.h>

/* A consumer's right to receive @want messages more, or fewer at the end. */
static long reserve(struct run *r, long want)
{
	long cur = __atomic_load_n(&r->claimed, __ATOMIC_RELAXED);

	for (;;) {
		long k = r->total - cur;

		if (k <= 0)
			return 0;
		if (k > want)
			k = want;
		if (__atomic_compare_exchange_n(&r->claimed, &cur, cur + k, false,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return k;
	}
}

void worker_begin(struct worker *w)
{
	pthread_barrier_wait(&w->r->bar);
	w->cpu0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	w->csw0 = ctxsw(RUSAGE_THREAD);
}

void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct wres *res = &w->r->res[w->id];
	int size = w->r->cell.size;

	w->buf = aligned_alloc(64, (size + 63) & ~63);
	memset(w->buf, 0x5a, size);
	/*
	 * Each worker maps the ring transports' channels itself, before the
	 * start barrier; a thread's mappings are undone by run_once() after
	 * the timing, a process's at its exit.
	 */
	if (xport_mapped(w->r->cell.xp))
		w->xl = chans_attach(w->r->chans, w->r->nchans);
	w->fn(w);
	res->cpu_ns = cpu_ns(CLOCK_THREAD_CPUTIME_ID) - w->cpu0;
	res->csw = ctxsw(RUSAGE_THREAD) - w->csw0;
	free(w->buf);
	return NULL;
}

void consumer_done(struct worker *w, uint64_t sum, long n)
{
	w->r->res[w->id].sum = sum;
	w->r->res[w->id].count = n;
}

static void w_producer(struct worker *w)
{
	struct run *r = w->r;
	struct timespec gap = { 0, r->gap_ns };
	bool wakeup = r->cell.scen == S_WAKEUP;
	long i;

	worker_begin(w);
	for (i = 0; i < r->per_prod; i++) {
		if (wakeup)
			clock_nanosleep(CLOCK_MONOTONIC, 0, &gap, NULL);
		put_value(w->buf, msg_value(w->role, i));
		/* wakeup: when the send started, for the receiver's wake time. */
		if (wakeup)
			put_value(w->buf + 8, now_ns());
		chan_send(&r->chans[0], w->buf, r->cell.size);
	}
}

static void w_consumer(struct worker *w)
{
	struct run *r = w->r;
	uint64_t sum = 0;
	long n = 0;

	worker_begin(w);
	while (reserve(r, 1)) {
		chan_recv(&r->chans[0], w->buf, r->cell.size);
		sum += get_value(w->buf);
		n++;
	}
	consumer_done(w, sum, n);
}

/* wakeup: a consumer that also adds up how long each message took to wake it. */
static void w_wakeup_consumer(struct worker *w)
{
	struct run *r = w->r;
	uint64_t sum = 0, wake = 0;
	long n = 0;

	worker_begin(w);
	while (reserve(r, 1)) {
		chan_recv(&r->chans[0], w->buf, r->cell.size);
		wake += now_ns() - get_value(w->buf + 8);
		sum += get_value(w->buf);
		n++;
	}
	r->res[w->id].wake_ns = wake;
	consumer_done(w, sum, n);
}

/* fair: a consumer that also times the wait for each of its messages. */
static void w_fair_consumer(struct worker *w)
{
	struct run *r = w->r;
	uint64_t sum = 0, t, last, gap = 0;
	long n = 0;

	worker_begin(w);
	for (last = now_ns(); reserve(r, 1); n++, last = t) {
		chan_recv(&r->chans[0], w->buf, r->cell.size);
		t = now_ns();
		if (t - last > gap)
			gap = t - last;
		sum += get_value(w->buf);
	}
	r->res[w->id].max_gap_ns = gap;
	consumer_done(w, sum, n);
}

static void w_batch_producer(struct worker *w)
{
	struct run *r = w->r;
	int size = r->cell.size, bs = r->cell.batch;
	struct batchbuf *b = batch_alloc(bs, size);
	long i = 0;
	int k, j, off;

	worker_begin(w);
	for (i = 0; i < r->per_prod; i += k) {
		k = r->per_prod - i < bs ? r->per_prod - i : bs;
		for (j = 0; j < k; j++)
			put_value(b->data + (size_t)j * size, msg_value(w->role, i + j));
		/* A partial batch: send the rest from where it stopped. */
		for (off = 0; off < k; )
			off += chan_send_batch(&r->chans[0], b, off, k - off, size);
	}
	batch_free(b);
}

static void w_batch_consumer(struct worker *w)
{
	struct run *r = w->r;
	int size = r->cell.size;
	struct batchbuf *b = batch_alloc(r->cell.batch, size);
	uint64_t sum = 0;
	long n = 0, k;
	int got, j;

	worker_begin(w);
	while ((k = reserve(r, r->cell.batch))) {
		for (; k; k -= got, n += got) {
			got = chan_recv_batch(&r->chans[0], b, k, size);
			for (j = 0; j < got; j++)
				sum += get_value(b->data + (size_t)j * size);
		}
	}
	consumer_done(w, sum, n);
	batch_free(b);
}

/* Ping-pong: role 0 is the client (counts round trips), role 1 the echo. */
static void w_pingpong(struct worker *w)
{
	struct run *r = w->r;
	struct chan *to = &r->chans[w->role], *from = &r->chans[!w->role];
	int size = r->cell.size;
	uint64_t sum = 0;
	long i;

	worker_begin(w);
	for (i = 0; i < r->total; i++) {
		if (w->role == 0) {
			put_value(w->buf, msg_value(0, i));
			chan_send(to, w->buf, size);
		}
		chan_recv(from, w->buf, size);
		sum += get_value(w->buf);
		if (w->role == 1)
			chan_send(to, w->buf, size);
	}
	if (w->role == 0)
		consumer_done(w, sum, r->total);
}

/* epoll fan-in: producer p owns channels p, p + P, p + 2P, ... */
static void w_epoll_producer(struct worker *w)
{
	struct run *r = w->r;
	int P = r->cell.prod, mine = (r->nchans - w->role + P - 1) / P;
	long i;

	worker_begin(w);
	for (i = 0; i < r->per_prod; i++) {
		put_value(w->buf, msg_value(w->role, i));
		chan_send(&r->chans[w->role + (i % mine) * P], w->buf, r->cell.size);
	}
}

static int epoll_all(struct run *r)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), i;

	if (ep < 0)
		DIE_ERRNO("epoll_create1");
	for (i = 0; i < r->nchans; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u32 = i };

		if (epoll_ctl(ep, EPOLL_CTL_ADD, r->chans[i].r, &e))
			DIE_ERRNO("epoll_ctl");
	}
	return ep;
}

static void w_epoll_consumer(struct worker *w)
{
	struct run *r = w->r;
	struct epoll_event ev[EPOLL_CHANS];
	int ep = epoll_all(r), i, k;
	uint64_t sum = 0;
	long n = 0;

	worker_begin(w);
	while (n < r->total) {
		k = epoll_wait(ep, ev, EPOLL_CHANS, -1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			DIE_ERRNO("epoll_wait");
		for (i = 0; i < k; i++) {
			struct chan *c = &r->chans[ev[i].data.u32];

			for (; chan_recv(c, w->buf, r->cell.size) > 0; n++)
				sum += get_value(w->buf);
		}
	}
	close(ep);
	consumer_done(w, sum, n);
}

/* The body of a producer or a consumer of scenario @scen. */
void (*worker_fn(int scen, bool producer))(struct worker *)
{
	switch (scen) {
	case S_THREADS:
	case S_PROCS:
		return producer ? w_producer : w_consumer;
	case S_WAKEUP:
		return producer ? w_producer : w_wakeup_consumer;
	case S_FAIR:
		return producer ? w_producer : w_fair_consumer;
	case S_BATCH:
		return producer ? w_batch_producer : w_batch_consumer;
	case S_EPOLL:
		return producer ? w_epoll_producer : w_epoll_consumer;
	case S_PINGPONG:
		return w_pingpong;
	case S_URING:
		return w_uring;
	default:
		die("bad scenario %d", scen);
	}
}
