// SPDX-License-Identifier: GPL-2.0
/*
 * mpmc-bench: the uring scenario. The producer (role 0) keeps qd WRITEs in
 * flight on its own io_uring, the consumer qd READs, on blocking fds.
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <liburing.h>

unsigned uring_flags;

struct uring_worker {
	struct io_uring ring;
	int fd, size, qd;
	bool prod;
	char *data;			/* qd slots of stride bytes */
	size_t stride;
	int freeslot[MAX_QD], nfree, inflight;
	long sub, done;
	uint64_t sum;
};

static void uring_init(struct io_uring *ring, int qd)
{
	int ret = io_uring_queue_init(qd, ring, uring_flags);

	if (ret == -EINVAL)
		ret = io_uring_queue_init(qd, ring, 0);
	if (ret)
		die("io_uring_queue_init: %s", strerror(-ret));
}

/* Fill the free slots with new requests, up to @total submitted in all. */
static void uring_fill(struct uring_worker *u, long total)
{
	while (u->inflight < u->qd && u->sub < total) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
		int slot = u->freeslot[--u->nfree];
		char *b = u->data + slot * u->stride;

		if (!sqe)
			die("io_uring: no SQE");
		if (u->prod) {
			put_value(b, msg_value(0, u->sub));
			io_uring_prep_write(sqe, u->fd, b, u->size, (__u64)-1);
		} else {
			io_uring_prep_read(sqe, u->fd, b, u->size, (__u64)-1);
		}
		io_uring_sqe_set_data64(sqe, slot);
		u->sub++;
		u->inflight++;
	}
}

/* Reap every completion there is. */
static void uring_reap(struct uring_worker *u, const char *xname)
{
	struct io_uring_cqe *cqe;
	unsigned int head, seen = 0;

	io_uring_for_each_cqe(&u->ring, head, cqe) {
		int slot = (int)cqe->user_data;

		if (cqe->res != u->size)
			die("io_uring %s on %s: res %d (%s)", u->prod ? "write" : "read",
			    xname, cqe->res, cqe->res < 0 ? strerror(-cqe->res) : "short");
		if (!u->prod)
			u->sum += get_value(u->data + slot * u->stride);
		u->freeslot[u->nfree++] = slot;
		u->inflight--;
		u->done++;
		seen++;
	}
	io_uring_cq_advance(&u->ring, seen);
}

void w_uring(struct worker *w)
{
	struct run *r = w->r;
	struct chan *c = &r->chans[0];
	struct uring_worker *u = calloc(1, sizeof(*u));
	int ret;

	u->size = r->cell.size;
	u->qd = r->cell.qd;
	u->prod = !r->res[w->id].consumer;
	u->fd = u->prod ? c->s : c->r;
	u->stride = (u->size + 63) & ~63;
	u->data = aligned_alloc(64, u->qd * u->stride);
	memset(u->data, 0x5a, u->qd * u->stride);
	for (u->nfree = 0; u->nfree < u->qd; u->nfree++)
		u->freeslot[u->nfree] = u->nfree;
	uring_init(&u->ring, u->qd);
	worker_begin(w);
	while (u->done < r->total) {
		uring_fill(u, r->total);
		ret = io_uring_submit_and_wait(&u->ring, 1);
		if (ret < 0 && ret != -EINTR)
			die("io_uring_submit_and_wait: %s", strerror(-ret));
		uring_reap(u, xport_name[c->xp]);
	}
	io_uring_queue_exit(&u->ring);
	if (!u->prod)
		consumer_done(w, u->sum, u->done);
	free(u->data);
	free(u);
}
