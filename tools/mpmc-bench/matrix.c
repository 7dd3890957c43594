// SPDX-License-Identifier: GPL-2.0
/*
 * mpmc-bench: the matrix. Each group adds its cells for every transport
 * that can run them; the command line's filters then keep some, and the
 * cells that differ only in transport are put next to each other.
 */
#include "bench.h"

#include <stdlib.h>

const char *const scen_name[S_NR] = {
	"threads", "procs", "pingpong", "epoll64", "batch", "uring", "wakeup", "fair",
	"getppid",
};

const char *const group_name[G_NR] = {
	"mn", "procs", "pingpong", "epoll", "batch", "uring", "sizes", "caps",
	"pinned", "wakeup", "oob", "fair", "ring", "targets",
};

const char *const group_help[G_NR] = {
	"P:C threads on one channel: 1:1 4:1 1:4 4:4 16:16, 64 B, capacity 64",
	"P:C processes (fork): 1:1 4:4",
	"round trips between two threads over two channels",
	"4 producers -> 64 channels -> 1 epoll consumer",
	"1:1 batches of 1/8/64, capacity 1024: MPMC_IOC_SEND/RECV, sendmmsg/recvmmsg,\n"
	"            and a plain pipe with a batch of 64 B records per write",
	"1:1 io_uring at queue depth 1 and 32 (mpmc, mpmc-ep, pipe-pkt, seqpacket)",
	"1:1 with message sizes 8/64/512/4096",
	"1:1 with capacities 1/64/1024",
	"1:1 and ping-pong with every thread on CPU 0",
	"1 producer, 8 blocked receivers: receiver wakeups per message",
	"out of the box: 1:1 and 4:4 threads, mpmc at capacity 1024 vs a default pipe (64 KiB)",
	"1:4 threads, each consumer's share of the messages and its longest wait",
	"ring mode (issue 13): mpmc-ring and shmring vs pipe and mpmc; threads 1:1\n"
	"            4:4 1:4, capacity 1, procs 1:1 4:4, ping-pong, wakeup; 64 B and 4 KiB",
	"only the cells of the speed issue's targets (1:1, 4:4, 1:4, oob, batch 64,\n"
	"            capacity 1, ping-pong), mpmc-ring and shmring in those of\n"
	"            them they run (ring mode's targets): not in 'all'",
};

#define BASE_SIZE	64
#define BASE_CAP	64
#define NPAIRS		5
#define NSIZES		4

static const int pairs[NPAIRS][2] = { {1, 1}, {4, 1}, {1, 4}, {4, 4}, {16, 16} };
static const int sizes_all[NSIZES] = { 8, 64, 512, 4096 };
static const int caps_all[] = { 1, 64, 1024 };
static const int batches[] = { 1, 8, 64 };

struct cell *cells;
int ncells;
static int acells;

/* Whether transport @xp runs cell @c. */
static bool xport_ok(int xp, const struct cell *c)
{
	/* Blocking send and receive, each worker with its own mapping. */
	if (xport_mapped(xp))
		return c->scen == S_THREADS || c->scen == S_PROCS || c->scen == S_PINGPONG ||
		       c->scen == S_WAKEUP;
	if (xp == X_MPMC_EP && c->scen != S_THREADS && c->scen != S_BATCH && c->scen != S_URING &&
	    c->scen != S_FAIR)
		return false;
	/* Throughput mode matters where consumers compete. */
	if (xp == X_MPMC_TP)
		return (c->scen == S_THREADS || c->scen == S_FAIR) && c->cons > 1;
	/* One page of a plain pipe holds 4096 / size messages, not 1. */
	if (xp == X_PIPE && c->cap == 1)
		return false;
	/* A default pipe holds 64 KiB: only where the others hold as much. */
	if (xp == X_PIPE64K)
		return c->scen == S_THREADS && c->cap * c->size == 65536;
	switch (c->scen) {
	case S_BATCH:
		return xp == X_MPMC || xp == X_MPMC_EP || xp == X_SEQPACKET ||
		       (xp == X_PIPE && c->batch * c->size <= 4096);
	case S_URING:
		return xp == X_MPMC || xp == X_MPMC_EP || xp == X_PIPEPKT || xp == X_PIPE ||
		       xp == X_SEQPACKET;
	case S_NULL:
		return xp == X_NULL;
	default:
		return xp != X_NULL;
	}
}

static void add(int xp, int scen, int p, int c, int size, int cap, int batch, int qd, int pinned)
{
	struct cell cl = { xp, scen, p, c, size, cap, batch, qd, pinned };
	int i;

	if (!xport_ok(xp, &cl))
		return;
	for (i = 0; i < ncells; i++)
		if (!memcmp(&cells[i], &cl, sizeof(cl)))
			return;
	if (ncells == acells) {
		acells = acells ? acells * 2 : 64;
		cells = realloc(cells, acells * sizeof(*cells));
	}
	cells[ncells++] = cl;
}

/* 64 B at capacity 64; --full: every size and capacity. */
static void add_mn(int xp, bool full)
{
	int i, j, k;

	for (i = 0; i < NPAIRS; i++)
		for (j = 0; j < NSIZES; j++)
			for (k = 0; k < 3; k++)
				if (full || (sizes_all[j] == BASE_SIZE && caps_all[k] == BASE_CAP))
					add(xp, S_THREADS, pairs[i][0], pairs[i][1],
					    sizes_all[j], caps_all[k], 1, 0, 0);
}

/* 1:1 and 4:4 at 64 B; --full: every pair and size. */
static void add_procs(int xp, bool full)
{
	int i, j, p, c;

	for (i = 0; i < NPAIRS; i++) {
		p = pairs[i][0];
		c = pairs[i][1];
		for (j = 0; j < NSIZES; j++)
			if (full || (p == c && p <= 4 && sizes_all[j] == BASE_SIZE))
				add(xp, S_PROCS, p, c, sizes_all[j], BASE_CAP, 1, 0, 0);
	}
}

/* One 1:1 (epoll: 4:1) cell per size of --full, else 64 B only. */
static void add_per_size(int xp, int scen, int p, bool full)
{
	int j;

	for (j = 0; j < NSIZES; j++)
		if (full || sizes_all[j] == BASE_SIZE)
			add(xp, scen, p, 1, sizes_all[j], BASE_CAP, 1, 0, 0);
}

static void add_batch(int xp, bool full)
{
	int i;

	for (i = 0; i < 3; i++) {
		add(xp, S_BATCH, 1, 1, BASE_SIZE, 1024, batches[i], 0, 0);
		if (full) {
			add(xp, S_BATCH, 1, 1, BASE_SIZE, 64, batches[i], 0, 0);
			add(xp, S_BATCH, 4, 4, BASE_SIZE, 1024, batches[i], 0, 0);
			add(xp, S_BATCH, 1, 1, 512, 1024, batches[i], 0, 0);
		}
	}
}

/* Queue depths 1 and 32; --full: 8 too, every size, and the plain pipe. */
static void add_uring(int xp, bool full)
{
	static const int qds[] = { 1, 8, 32 };
	int i, j;

	if (!full && xp == X_PIPE)
		return;
	for (i = 0; i < 3; i++)
		for (j = 0; j < NSIZES; j++)
			if (full || (qds[i] != 8 && sizes_all[j] == BASE_SIZE))
				add(xp, S_URING, 1, 1, sizes_all[j], BASE_CAP, 1, qds[i], 0);
}

static void add_pinned(int xp, bool full)
{
	int i;

	add(xp, S_THREADS, 1, 1, BASE_SIZE, BASE_CAP, 1, 0, 1);
	add(xp, S_PINGPONG, 1, 1, BASE_SIZE, BASE_CAP, 1, 0, 1);
	if (!full)
		return;
	for (i = 1; i < NPAIRS; i++)
		add(xp, S_THREADS, pairs[i][0], pairs[i][1], BASE_SIZE, BASE_CAP, 1, 0, 1);
	add(xp, S_PROCS, 1, 1, BASE_SIZE, BASE_CAP, 1, 0, 1);
}

/*
 * Ring mode against a pipe (pipe-pkt where a plain pipe cannot hold one
 * message), plain mpmc and the same ring without the module; --full: 4 KiB
 * in every cell but capacity 1, and procs 1:4.
 */
static void add_ring(int xp, bool full)
{
	static const int rsizes[2] = { BASE_SIZE, 4096 };
	int j;

	if (xp != X_MPMC && xp != X_PIPE && xp != X_PIPEPKT && !xport_mapped(xp))
		return;
	add(xp, S_THREADS, 1, 1, BASE_SIZE, 1, 1, 0, 0);
	if (xp == X_PIPEPKT)
		return;
	for (j = 0; j < 2; j++) {
		int size = rsizes[j];

		add(xp, S_THREADS, 1, 1, size, BASE_CAP, 1, 0, 0);
		add(xp, S_PROCS, 1, 1, size, BASE_CAP, 1, 0, 0);
		add(xp, S_THREADS, 4, 4, size, BASE_CAP, 1, 0, 0);
		add(xp, S_PINGPONG, 1, 1, size, BASE_CAP, 1, 0, 0);
		if (size != BASE_SIZE && !full)
			continue;
		add(xp, S_THREADS, 1, 4, size, BASE_CAP, 1, 0, 0);
		add(xp, S_PROCS, 4, 4, size, BASE_CAP, 1, 0, 0);
	}
	add(xp, S_WAKEUP, 1, WAKEUP_RX, BASE_SIZE, BASE_CAP, 1, 0, 0);
}

static void add_groups(int xp, unsigned groups, bool full)
{
	int i;

	/* The ring transports run the ring group's cells (and the targets'). */
	if (xport_mapped(xp)) {
		if (groups & (1u << G_RING))
			add_ring(xp, full);
		return;
	}

	if (groups & (1u << G_MN))
		add_mn(xp, full);
	if (groups & (1u << G_PROCS))
		add_procs(xp, full);
	if (groups & (1u << G_PINGPONG))
		add_per_size(xp, S_PINGPONG, 1, full);
	if (groups & (1u << G_EPOLL))
		add_per_size(xp, S_EPOLL, 4, full);
	if (groups & (1u << G_BATCH))
		add_batch(xp, full);
	if (groups & (1u << G_URING))
		add_uring(xp, full);
	for (i = 0; (groups & (1u << G_SIZES)) && i < NSIZES; i++)
		add(xp, S_THREADS, 1, 1, sizes_all[i], BASE_CAP, 1, 0, 0);
	for (i = 0; (groups & (1u << G_CAPS)) && i < 3; i++)
		add(xp, S_THREADS, 1, 1, BASE_SIZE, caps_all[i], 1, 0, 0);
	if (groups & (1u << G_PINNED))
		add_pinned(xp, full);
	if (groups & (1u << G_WAKEUP))
		add(xp, S_WAKEUP, 1, WAKEUP_RX, BASE_SIZE, BASE_CAP, 1, 0, 0);
	if (groups & (1u << G_FAIR))
		add(xp, S_FAIR, 1, 4, BASE_SIZE, BASE_CAP, 1, 0, 0);
	if ((groups & (1u << G_OOB)) && (xp == X_MPMC || xp == X_MPMC_EP || xp == X_PIPE64K)) {
		add(xp, S_THREADS, 1, 1, BASE_SIZE, 1024, 1, 0, 0);
		add(xp, S_THREADS, 4, 4, BASE_SIZE, 1024, 1, 0, 0);
	}
	if (groups & (1u << G_RING))
		add_ring(xp, full);
}

/* The cells of the speed issue's target table. */
static void add_targets(int xp)
{
	add(xp, S_THREADS, 1, 1, BASE_SIZE, BASE_CAP, 1, 0, 0);
	add(xp, S_THREADS, 4, 4, BASE_SIZE, BASE_CAP, 1, 0, 0);
	add(xp, S_THREADS, 1, 4, BASE_SIZE, BASE_CAP, 1, 0, 0);
	add(xp, S_THREADS, 1, 1, BASE_SIZE, 1, 1, 0, 0);
	add(xp, S_PINGPONG, 1, 1, BASE_SIZE, BASE_CAP, 1, 0, 0);
	add(xp, S_BATCH, 1, 1, BASE_SIZE, 1024, 64, 0, 0);
	if (xp == X_MPMC || xp == X_MPMC_EP || xp == X_PIPE64K) {
		add(xp, S_THREADS, 1, 1, BASE_SIZE, 1024, 1, 0, 0);
		add(xp, S_THREADS, 4, 4, BASE_SIZE, 1024, 1, 0, 0);
	}
}

void build_matrix(unsigned groups, bool full)
{
	int xp;

	/* The floor comes first: every other row is expressed in it. */
	add(X_NULL, S_NULL, 1, 0, 0, 0, 1, 0, 0);
	for (xp = 0; xp < X_NULL; xp++) {
		add_groups(xp, groups, full);
		if (groups & (1u << G_TARGETS))
			add_targets(xp);
	}
}

static bool in_list(const struct intlist *l, int v)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (l->v[i] == v)
			return true;
	return !l->n;
}

static bool keep_cell(const struct filter *f, const struct cell *c)
{
	int k;

	if (c->scen == S_NULL)
		return true;	/* the floor always stays */
	if (!(f->xports & (1u << c->xp)) || !(f->scens & (1u << c->scen)) ||
	    !in_list(&f->sizes, c->size) ||
	    !in_list(&f->caps, c->cap) || !in_list(&f->batches, c->batch) ||
	    !in_list(&f->qds, c->qd))
		return false;
	for (k = 0; k < f->pairs_p.n; k++)
		if (f->pairs_p.v[k] == c->prod && f->pairs_c.v[k] == c->cons)
			return true;
	return !f->pairs_p.n;
}

void filter_cells(const struct filter *f)
{
	int i, j;

	for (i = j = 0; i < ncells; i++) {
		if (!keep_cell(f, &cells[i]))
			continue;
		cells[j] = cells[i];
		if (f->pin && cells[j].scen != S_NULL)
			cells[j].pinned = 1;
		j++;
	}
	ncells = j;
}

bool same_config(const struct cell *a, const struct cell *b)
{
	struct cell x = *a, y = *b;

	x.xp = y.xp = 0;
	return !memcmp(&x, &y, sizeof(x));
}

/* Put the transports of one configuration next to each other. */
void group_cells(void)
{
	struct cell *sorted = calloc(ncells ? ncells : 1, sizeof(*sorted));
	bool *taken = calloc(ncells ? ncells : 1, sizeof(*taken));
	int i, j, n = 0;

	for (i = 0; i < ncells; i++) {
		if (taken[i])
			continue;
		for (j = i; j < ncells; j++) {
			if (!taken[j] && same_config(&cells[i], &cells[j])) {
				sorted[n++] = cells[j];
				taken[j] = true;
			}
		}
	}
	memcpy(cells, sorted, ncells * sizeof(*cells));
	free(sorted);
	free(taken);
}

void cell_desc(const struct cell *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s %d:%d %dB cap%d%s%.0d%s%.0d%s", xport_name[c->xp],
		 scen_name[c->scen], c->prod, c->cons, c->size, c->cap,
		 c->batch > 1 ? " batch" : "", c->batch > 1 ? c->batch : 0,
		 c->qd ? " qd" : "", c->qd, c->pinned ? " pinned" : "");
}
