// SPDX-License-Identifier: GPL-2.0
/*
 * Exactly-once stress of one /dev/mpmc channel under chaos. Producer and
 * consumer PROCESSES share one channel, each on its own endpoint made with
 * MPMC_IOC_NEW_ENDPOINT before forking, using blocking read()/write(),
 * O_NONBLOCK + epoll, MPMC_IOC_SEND/MPMC_IOC_RECV batches, or io_uring
 * (liburing) with several requests in flight. Each method runs in one
 * producer and one consumer with a no-op SIGUSR1 handler without
 * SA_RESTART, and in one of each with SA_RESTART. Meanwhile the parent, as
 * controller:
 *  - sends SIGUSR1 storms to every worker (io_uring_wait_cqe() then fails
 *    with EINTR, SA_RESTART or not: the io_uring workers wait again);
 *  - changes the configuration with MPMC_IOC_SET_CONFIG (ctl_tick()): the
 *    capacity at random (1..256), capacity 0 (a rendezvous channel) for
 *    stretches, asked for at once (EBUSY unless the channel is empty) or
 *    reached by squeezing the capacity down to the queued count tick by
 *    tick, and MPMC_CONFIG_THROUGHPUT and MPMC_CONFIG_OVERWRITE on and off
 *    at random. Expected failures, and only those: EBUSY when shrinking
 *    (below the queued count, or to 0 while anything is queued), EINVAL
 *    for capacity 0 with overwrite mode. A change that succeeds reads back
 *    from MPMC_IOC_GET_CONFIG. Overwrite mode stays off during the first
 *    third of the minimum time (the calm phase) and at the end;
 *  - SIGKILLs a random worker every so often and restarts it.
 * Messages carry the producer, a per-producer sequence number, their length
 * and a checksum. Producers record in shared memory the range they tried
 * (attempted) and the messages write/batch reported as sent (acked); a
 * restarted producer continues after its last attempted number, so a
 * message is never sent twice by the test itself. Batch producers send each
 * message at a priority 0..31 that is a function of (producer, seq) and the
 * seed (prio_of()), so consumers know it whatever path they read with; the
 * rest send at priority 0. Consumers set a bit per (producer, seq) with an
 * atomic fetch-or: a bit already set is a duplicate; a batch receive must
 * write back each message's priority. Batch consumers also peek now and
 * then and check what they see as they check what they receive, without
 * recording it.
 *
 * At the end: no duplicate; nothing received that was never attempted;
 * every acked message received except those that were dropped by
 * overwrite mode or that a consumer killed meanwhile had taken but not yet
 * recorded; and each consumer slot saw each producer's sequence numbers in
 * increasing order within each priority. The accounting, with the
 * channel's counters from MPMC_IOC_GET_STATS after the drain:
 *  - total_sent == total_received + total_dropped, nothing queued: every
 *    message the channel took left it exactly one of these two ways;
 *  - unrecorded = total_received - (messages the consumers recorded) is
 *    exact, as every message a receive takes counts in total_received
 *    (one put back after a fault is uncounted again) and every one a live
 *    consumer takes is recorded; it must be 0..kill allowance (below);
 *  - acked but never recorded <= total_dropped + unrecorded: an acked
 *    message entered the channel, so if no consumer recorded it, it was
 *    dropped or taken by a consumer that was killed. Drops are counted,
 *    not named: the check is by count. And total_dropped + unrecorded <=
 *    attempted but never recorded, since both kinds are such messages;
 *  - drops only happen in overwrite mode: while the flag is off, every
 *    controller tick checks that total_dropped has not moved since the
 *    flag went off (SET_CONFIG changes the flags under the channel lock,
 *    under which drops are made and counted), so it is 0 through the calm
 *    phase, unchanged from the final switch back to a plain channel to the
 *    end, and 0 in a run that never turns overwrite mode on, where the
 *    check above is the plain "every acked message arrived".
 *
 * Why the order check stays sound with priorities, rendezvous, throughput
 * and overwrite modes: a receive takes the oldest message of the highest
 * priority queued, so the messages of one priority leave the channel in
 * the order they entered it, whatever else is queued. Each producer has
 * one send in flight at a time (an io_uring chain issues a link only when
 * the one before completed) and enqueues its messages in sequence order,
 * the batch ones in array order; blocked senders are admitted in the
 * order they blocked, and growing from capacity 0 moves them in in that
 * order, so one producer's messages of one priority enter the queue, or
 * are handed to a receiver, in increasing sequence order. Throughput mode
 * changes who takes the head, not the order of the queue; a rendezvous
 * hands over the oldest blocked sender's message; overwrite mode removes
 * messages and never reorders the rest. So whoever takes two messages of
 * one (producer, priority) takes the older first, and a consumer that
 * takes one message or batch at a time must see increasing seqs per
 * (producer, priority): last[slot][producer][priority]. Across priorities
 * no order holds (a later message of a higher priority is received
 * first), hence no check there.
 *
 * io_uring producers keep one chain of up to URING_CHAIN WRITEs linked
 * with IOSQE_IO_LINK in flight: a link is issued only when the one before
 * it has completed, so the producer's messages are enqueued in sequence
 * order, as the order check needs (independent WRITEs parked on a full
 * channel could be retried, or punted to io-wq, in any order). A WRITE is
 * acked only when its CQE says res == len; a producer killed mid-chain
 * leaves the rest attempted, never acked (arrival allowed, not required).
 *
 * A request that 6.1 punts to io-wq (after 128 poll wake-ups) may complete
 * with ECANCELED unissued: the io-wq thread is created by the submitting
 * task, copy_process() refuses while a signal is pending, and io-wq gives
 * up after WORKER_INIT_LIMIT tries. Under SIGUSR1 storms that happens. A
 * READ so cancelled is submitted again; a WRITE so cancelled (and the
 * links after it) stays attempted and unacked, its number is not reused,
 * and the end check requires that no WRITE whose CQE said it failed was
 * ever received.
 *
 * io_uring consumers keep URING_READS READs in flight on a blocking
 * endpoint: on an empty channel they park on its poll queue (after 128
 * wake-ups 6.1 punts one to an io-wq thread's blocking read). Their CQEs
 * need not come in the order the channel gave their messages out, so the
 * order check for them is the one that remains valid: a READ's message was
 * dequeued after every message whose CQE had been reaped before that READ
 * was submitted, so its seq must exceed the highest seq of its producer and
 * priority recorded for the slot at submission (a snapshot per READ); for
 * the other methods, which take one message or batch at a time, that is
 * the last one. On a rendezvous channel the READs park as pollers and take
 * a blocked sender's message when one comes; WRITEs wait for a blocked
 * receiver; the blocking and batch workers are the ones that block.
 *
 * Allowed loss per consumer kill (kill_loss[]): each message that the
 * kernel handed to the killed process but that it had not yet recorded.
 * A blocking or epoll consumer has at most one such message (one read()),
 * a batch consumer RECV_BATCH (one MPMC_IOC_RECV), an io_uring consumer
 * URING_READS: each READ in flight takes at most one message, and at the
 * kill any of them may have completed (CQE posted, or not yet reaped) but
 * not been verified. A READ still parked when its process dies is
 * cancelled and takes nothing (mpmc(4), "io_uring"), and by the time waitpid()
 * returns no thread of the process (io-wq ones included) can dequeue any
 * more, so the restarted consumer's order check stays valid too.
 *
 * Duration: at least MPMC_CHAOS_SECONDS (default 15), then on until
 * MPMC_CHAOS_TARGET messages (default 1000000, 0 for no target) have been
 * verified or MPMC_CHAOS_MAX_SECONDS (default 120) have passed; seed:
 * MPMC_CHAOS_SEED.
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
#include <liburing.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

#define NP		8	/* producers: NMETH x {no SA_RESTART, SA_RESTART} */
#define NC		8	/* consumers: the same */
#define NW		(NP + NC)
#define MAX_MSG		512	/* channel max_msg_size */
#define MAXSEQ		(1u << 22)	/* per producer */
#define SEND_BATCH	8
#define RECV_BATCH	8
#define URING_CHAIN	8	/* linked WRITEs in flight per producer */
#define URING_READS	8	/* READs in flight per consumer */
#define BATCH_TMO_NS	50000000LL
#define TICK_US		5000

enum method { M_BLOCK, M_EPOLL, M_BATCH, M_URING, NMETH };

static const char * const meth_name[NMETH] = {
	"blocking", "epoll", "batch", "io_uring",
};

/* Messages a consumer killed at the worst moment took but never recorded. */
static const long kill_loss[NMETH] = { 1, 1, RECV_BATCH, URING_READS };

struct shm {
	atomic_int failed;
	char why[256];
	atomic_int stop;			/* producers: finish now */
	atomic_uint attempted[NP];		/* next seq never tried */
	atomic_uint acked[NP];			/* seqs below are acked */
	uint32_t prio_seed;			/* prio_of() */
	atomic_long last[NC][NP][MPMC_PRIO_MAX];	/* highest seq per slot */
	atomic_long received;
	atomic_long handled;			/* SIGUSR1 handler runs */
	atomic_long uring_eintr;		/* io_uring waits interrupted */
	atomic_long uring_cancelled;		/* io_uring ECANCELED CQEs */
	atomic_long sent_by[NMETH];		/* acked, per producer method */
	atomic_long recv_by[NMETH];		/* recorded, per consumer method */
	atomic_long recv_prio;			/* recorded with a priority > 0 */
	atomic_long peeked;			/* checked by peeks */
	atomic_ulong bits[NP][MAXSEQ / 64];
	atomic_ulong ackbits[NP][MAXSEQ / 64];	/* write/batch said sent */
	atomic_ulong nackbits[NP][MAXSEQ / 64];	/* io_uring WRITE failed */
};

static struct shm *g;
static enum method my_method;	/* of this worker process */

/*
 * The priority of message @seq of producer @p: random (from the run's
 * seed) for the batch producers, which send with MPMC_IOC_SEND, else 0
 * (write() and io_uring WRITE send at priority 0). A function of the
 * message, so that every consumer knows it, whatever path it reads with.
 */
static uint32_t prio_of(uint32_t p, uint32_t seq)
{
	uint32_t h;

	if (p % NMETH != M_BATCH)
		return 0;
	h = (seq + 1) * 0x9e3779b1u ^ (p + 1) * 0x85ebca6bu ^ g->prio_seed;
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	return h % MPMC_PRIO_MAX;
}

static void ack(int p, uint32_t from, uint32_t to)
{
	atomic_fetch_add(&g->sent_by[my_method], to - from);
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

/* Message @seq of producer @prod; returns its length. */
static size_t make_msg(unsigned char *buf, uint32_t prod, uint32_t seq,
		       uint32_t *rnd)
{
	return stress_msg(buf, prod, seq, rnd, MAX_MSG, 240);
}

/*
 * Check a message a receive or a peek copied out: well formed, attempted,
 * and with its priority (@prio, as MPMC_IOC_RECV wrote it back; -1 when
 * the path does not tell). NULL if it is, else its header after fail().
 */
static const struct stress_hdr *check_msg(int slot, unsigned char *buf,
					  size_t n, long prio,
					  struct stress_hdr *h)
{
	const char *bad;

	bad = stress_check(buf, n, MAX_MSG, NP, MAXSEQ, h);
	if (bad) {
		fail("consumer %d: %s (magic %#x len %u/%zu prod %u seq %u)",
		     slot, bad, h->magic, h->len, n, h->prod, h->seq);
		return NULL;
	}
	if (h->seq >= atomic_load(&g->attempted[h->prod])) {
		fail("consumer %d: prod %u seq %u never sent (attempted %u)",
		     slot, h->prod, h->seq, atomic_load(&g->attempted[h->prod]));
		return NULL;
	}
	if (prio >= 0 && prio != prio_of(h->prod, h->seq)) {
		fail("consumer %d: prod %u seq %u sent at priority %u, received as %ld",
		     slot, h->prod, h->seq, prio_of(h->prod, h->seq), prio);
		return NULL;
	}
	return h;
}

/*
 * Check and record one received message (@prio as for check_msg()). Its
 * seq must exceed @above[prod][its priority] (NULL: the slot's last seq of
 * that producer and priority).
 */
static void verify(int slot, long (*above)[MPMC_PRIO_MAX], unsigned char *buf,
		   size_t n, long prio)
{
	struct stress_hdr h;
	unsigned long bit, old;
	long last, min;
	uint32_t q;

	if (!check_msg(slot, buf, n, prio, &h))
		return;
	q = prio_of(h.prod, h.seq);
	last = atomic_load(&g->last[slot][h.prod][q]);
	min = above ? above[h.prod][q] : last;
	if ((long)h.seq <= min) {
		fail("consumer %d (%s): prod %u seq %u after seq %ld (priority %u)",
		     slot, meth_name[my_method], h.prod, h.seq, min, q);
		return;
	}
	if ((long)h.seq > last)
		atomic_store(&g->last[slot][h.prod][q], h.seq);
	bit = 1UL << (h.seq % 64);
	old = atomic_fetch_or(&g->bits[h.prod][h.seq / 64], bit);
	if (old & bit) {
		fail("consumer %d: duplicate prod %u seq %u", slot, h.prod, h.seq);
		return;
	}
	atomic_fetch_add(&g->received, 1);
	atomic_fetch_add(&g->recv_by[my_method], 1);
	if (q)
		atomic_fetch_add(&g->recv_prio, 1);
}

/* epoll_for(@fd, @events), or -1 after fail() if it cannot be made. */
static int epoll_or_fail(int fd, unsigned int events)
{
	int ep = epoll_for(fd, events);

	if (ep < 0)
		fail("epoll setup: %s", strerror(errno));
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

/* Submit every SQE prepared; false (after fail()) on an error. */
static bool uring_submit(struct io_uring *ring, int idx)
{
	while (io_uring_sq_ready(ring)) {
		int ret = io_uring_submit(ring);

		if (ret == -EINTR)
			continue;
		if (ret <= 0) {
			fail("worker %d: io_uring_submit: %d (%s)", idx, ret,
			     ret ? strerror(-ret) : "none taken");
			return false;
		}
	}
	return true;
}

/*
 * Wait for the next CQE: a signal makes io_uring_enter() fail with EINTR
 * whether or not the handler has SA_RESTART, so wait again. NULL once the
 * test failed or on an error.
 */
static struct io_uring_cqe *uring_wait(struct io_uring *ring, int idx)
{
	struct io_uring_cqe *cqe;
	int ret;

	while ((ret = io_uring_wait_cqe(ring, &cqe)) == -EINTR) {
		atomic_fetch_add(&g->uring_eintr, 1);
		if (atomic_load(&g->failed))
			return NULL;
	}
	if (ret) {
		fail("worker %d: io_uring_wait_cqe: %s", idx, strerror(-ret));
		return NULL;
	}
	return cqe;
}

/* --- Producers --------------------------------------------------------- */

/*
 * One chain of up to URING_CHAIN linked WRITEs in flight at a time: each
 * link starts only when the one before it has completed, so the messages
 * are enqueued in sequence order.
 */
static void produce_uring(int p, int fd, uint32_t *rnd)
{
	static unsigned char bufs[URING_CHAIN][MAX_MSG];
	unsigned int lens[URING_CHAIN];
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	int ret;

	ret = io_uring_queue_init(2 * URING_CHAIN, &ring, 0);
	if (ret) {
		fail("producer %d: io_uring_queue_init: %s", p, strerror(-ret));
		return;
	}
	while (!atomic_load(&g->stop) && !atomic_load(&g->failed)) {
		uint32_t seq = atomic_load(&g->attempted[p]);
		uint32_t k = 1 + xorshift(rnd) % URING_CHAIN, i, done;

		if (seq + k > MAXSEQ) {
			while (!atomic_load(&g->stop))
				usleep(10000);
			break;
		}
		for (i = 0; i < k; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			lens[i] = make_msg(bufs[i], p, seq + i, rnd);
			io_uring_prep_write(sqe, fd, bufs[i], lens[i], (__u64)-1);
			sqe->user_data = i;
			if (i < k - 1)
				sqe->flags |= IOSQE_IO_LINK;
		}
		/* Tried from now on: a restart never reuses these numbers. */
		atomic_store(&g->attempted[p], seq + k);
		if (!uring_submit(&ring, p))
			break;
		/* The chain finishes even after stop: consumers still drain. */
		for (done = 0; done < k; done++) {
			cqe = uring_wait(&ring, p);
			if (!cqe)
				goto out;
			i = cqe->user_data;
			ret = cqe->res;
			io_uring_cqe_seen(&ring, cqe);
			if (i < k && ret == -ECANCELED) {
				/* Not issued: see the top of the file. */
				atomic_fetch_add(&g->uring_cancelled, 1);
				atomic_fetch_or(&g->nackbits[p][(seq + i) / 64],
						1UL << ((seq + i) % 64));
				continue;
			}
			if (i >= k || ret != (int)lens[i]) {
				fail("producer %d (io_uring): WRITE %u of %u: %d (%s)",
				     p, i, k, ret, ret < 0 ? strerror(-ret) : "short");
				goto out;
			}
			ack(p, seq + i, seq + i + 1);
			atomic_store(&g->acked[p], seq + i + 1);
		}
	}
out:
	io_uring_queue_exit(&ring);
}

static void producer(int p, enum method m, int fd, uint32_t rnd)
{
	static unsigned char bufs[SEND_BATCH][MAX_MSG];
	struct mpmc_msgvec vec[SEND_BATCH];
	int ep;

	if (m == M_URING) {
		produce_uring(p, fd, &rnd);
		return;
	}
	ep = m == M_EPOLL ? epoll_or_fail(fd, EPOLLOUT) : -1;
	if (m == M_EPOLL && ep < 0)
		return;
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
			vec[i].prio = prio_of(p, seq + i);
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

/*
 * URING_READS READs in flight, each re-armed once its message is recorded;
 * after end of file, none is re-armed and the rest are reaped.
 */
static void consume_uring(int slot, int fd)
{
	static unsigned char bufs[URING_READS][MAX_MSG];
	static long above[URING_READS][NP][MPMC_PRIO_MAX];
	int idle[URING_READS], nidle = 0, inflight = 0, i, p, q, res;
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	bool eof = false;

	res = io_uring_queue_init(2 * URING_READS, &ring, 0);
	if (res) {
		fail("consumer %d: io_uring_queue_init: %s", slot, strerror(-res));
		return;
	}
	for (i = 0; i < URING_READS; i++)
		idle[nidle++] = i;
	while (!atomic_load(&g->failed)) {
		while (!eof && nidle) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			i = idle[--nidle];
			/* All reaped so far left the channel before this READ. */
			for (p = 0; p < NP; p++)
				for (q = 0; q < MPMC_PRIO_MAX; q++)
					above[i][p][q] =
						atomic_load(&g->last[slot][p][q]);
			io_uring_prep_read(sqe, fd, bufs[i], MAX_MSG, (__u64)-1);
			sqe->user_data = i;
			inflight++;
		}
		if (!uring_submit(&ring, NP + slot))
			break;
		if (!inflight)
			break;	/* every READ saw end of file */
		cqe = uring_wait(&ring, NP + slot);
		if (!cqe)
			break;
		i = cqe->user_data;
		res = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		if (i < 0 || i >= URING_READS) {
			fail("consumer %d (io_uring): CQE for READ %d", slot, i);
			break;
		}
		inflight--;
		if (res == -ECANCELED) {
			/* Not issued: see the top of the file. */
			atomic_fetch_add(&g->uring_cancelled, 1);
			idle[nidle++] = i;
			continue;
		}
		if (res < 0) {
			fail("consumer %d (io_uring): READ: %s", slot, strerror(-res));
			break;
		}
		if (res)
			verify(slot, above[i], bufs[i], res, -1);
		else
			eof = true;
		idle[nidle++] = i;
	}
	io_uring_queue_exit(&ring);
}

/*
 * Peek (MPMC_RECV_PEEK, timeout 0) at what the next receive would take and
 * check it as received messages are checked, without recording anything:
 * the messages stay queued for whoever receives them. Nothing queued
 * (EAGAIN; always so on a rendezvous channel) is fine.
 */
static void peek_check(int slot, int fd)
{
	static unsigned char bufs[RECV_BATCH][MAX_MSG];
	struct mpmc_msgvec vec[RECV_BATCH];
	struct mpmc_batch b = {
		.vec = (uintptr_t)vec, .count = RECV_BATCH,
		.flags = MPMC_RECV_PEEK,
	};
	struct stress_hdr h;
	int i, n;

	for (i = 0; i < RECV_BATCH; i++) {
		vec[i].buf = (uintptr_t)bufs[i];
		vec[i].len = MAX_MSG;
		vec[i].prio = 0;
	}
	n = ioctl(fd, MPMC_IOC_RECV, &b);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0 || n > RECV_BATCH) {
		fail("consumer %d: peek: %d (%s)", slot, n, strerror(errno));
		return;
	}
	for (i = 0; i < n; i++)
		if (!check_msg(slot, bufs[i], vec[i].len, vec[i].prio, &h))
			return;
	atomic_fetch_add(&g->peeked, n);
}

static void consumer(int slot, enum method m, int fd)
{
	static unsigned char bufs[RECV_BATCH][MAX_MSG];
	struct mpmc_msgvec vec[RECV_BATCH];
	unsigned int round = 0;
	int ep, i;

	if (m == M_URING) {
		consume_uring(slot, fd);
		return;
	}
	ep = m == M_EPOLL ? epoll_or_fail(fd, EPOLLIN) : -1;
	if (m == M_EPOLL && ep < 0)
		return;
	while (!atomic_load(&g->failed)) {
		if (m == M_BATCH) {
			struct mpmc_batch b = {
				.vec = (uintptr_t)vec, .count = RECV_BATCH,
				.timeout_ns = BATCH_TMO_NS,
			};
			int n;

			if (++round % 8 == 0)
				peek_check(slot, fd);
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
				verify(slot, NULL, bufs[i], vec[i].len,
				       vec[i].prio);
		} else {
			ssize_t n = read(fd, bufs[0], MAX_MSG);

			if (n == 0)
				return;
			if (n > 0) {
				verify(slot, NULL, bufs[0], n, -1);
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
	my_method = w->m;
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

/*
 * The controller's view of the channel's configuration, which it alone
 * sets, and what its changes did.
 */
struct ctl {
	int fd;
	struct mpmc_config cur;
	long long since;	/* ms: cur in force since */
	long long rdv_ms;	/* time spent at capacity 0 */
	long long ow_ms;	/* time spent in overwrite mode */
	long long tp_ms;	/* time spent in throughput mode */
	__u64 dropped_base;	/* total_dropped when overwrite last went off */
	bool squeeze;		/* shrinking to capacity 0 */
	long sets, busy, inval, squeezes, to_rdv, ow_on, tp_on, drop_checks;
};

/* Add the time since the last change to the modes in force. */
static void ctl_clock(struct ctl *c)
{
	long long t = now_ms();

	if (!c->cur.capacity)
		c->rdv_ms += t - c->since;
	if (c->cur.flags & MPMC_CONFIG_OVERWRITE)
		c->ow_ms += t - c->since;
	if (c->cur.flags & MPMC_CONFIG_THROUGHPUT)
		c->tp_ms += t - c->since;
	c->since = t;
}

/*
 * While overwrite mode is off, nothing may be dropped: total_dropped
 * stays what it was when the flag went off (SET_CONFIG changes the flags
 * under the channel lock, under which drops are made and counted).
 */
static void ctl_check_drops(struct ctl *c)
{
	struct mpmc_stats st;

	if (c->cur.flags & MPMC_CONFIG_OVERWRITE)
		return;
	if (ioctl(c->fd, MPMC_IOC_GET_STATS, &st)) {
		fail("controller: MPMC_IOC_GET_STATS: %s", strerror(errno));
		return;
	}
	c->drop_checks++;
	if (st.total_dropped != c->dropped_base)
		fail("controller: %llu messages dropped while overwrite mode was off",
		     (unsigned long long)(st.total_dropped - c->dropped_base));
}

/*
 * Set capacity @cap and @flags. Expected failures: EINVAL for capacity 0
 * with MPMC_CONFIG_OVERWRITE, EBUSY when shrinking (to 0, or below the
 * queued count); anything else fails the test. A change that succeeded
 * must read back from MPMC_IOC_GET_CONFIG. Returns whether it was made.
 */
static bool ctl_set(struct ctl *c, __u32 cap, __u32 flags)
{
	struct mpmc_config cfg = {
		.capacity = cap, .max_msg_size = MAX_MSG, .flags = flags,
	}, got;
	__u32 was = c->cur.flags;
	struct mpmc_stats st;

	if (ioctl(c->fd, MPMC_IOC_SET_CONFIG, &cfg)) {
		if (errno == EINVAL && !cap && flags & MPMC_CONFIG_OVERWRITE) {
			c->inval++;
			return false;
		}
		if (errno == EBUSY && cap < c->cur.capacity) {
			c->busy++;
			return false;
		}
		fail("controller: capacity %u flags %#x (from %u %#x): %s", cap,
		     flags, c->cur.capacity, c->cur.flags, strerror(errno));
		return false;
	}
	if (ioctl(c->fd, MPMC_IOC_GET_CONFIG, &got) || got.capacity != cap ||
	    got.flags != flags || got.max_msg_size != MAX_MSG)
		fail("controller: set capacity %u flags %#x, read back %u %#x",
		     cap, flags, got.capacity, got.flags);
	ctl_clock(c);
	c->sets++;
	c->to_rdv += !cap && c->cur.capacity;
	c->ow_on += flags & ~was & MPMC_CONFIG_OVERWRITE ? 1 : 0;
	c->tp_on += flags & ~was & MPMC_CONFIG_THROUGHPUT ? 1 : 0;
	c->cur = cfg;
	if (was & ~flags & MPMC_CONFIG_OVERWRITE) {
		if (ioctl(c->fd, MPMC_IOC_GET_STATS, &st))
			fail("controller: MPMC_IOC_GET_STATS: %s", strerror(errno));
		c->dropped_base = st.total_dropped;
	}
	return true;
}

/* Random flags: throughput mode or not; overwrite mode one time in 3. */
static __u32 rand_flags(uint32_t x, bool calm)
{
	__u32 flags = x % 2 ? MPMC_CONFIG_THROUGHPUT : 0;

	if (!calm && (x >> 1) % 3 == 0)
		flags |= MPMC_CONFIG_OVERWRITE;
	return flags;
}

/*
 * One tick of the controller's configuration changes; @change: about
 * every 4th tick; @calm: overwrite mode stays off.
 *
 * A queued channel (capacity > 0) gets a new capacity 1..256, and one time
 * in 4 new flags. One time in 16 it is asked for capacity 0 at once (EBUSY
 * unless empty, EINVAL in overwrite mode), and one time in 16 it is
 * squeezed to 0: the flags lose overwrite mode, then every tick the
 * capacity is set to the queued count, which only consumers can lower
 * while senders find the channel full, until it is 0. A rendezvous
 * channel stays one, changing flags (EINVAL with overwrite) one time in 8,
 * until it grows again one time in 8.
 */
static void ctl_tick(struct ctl *c, uint32_t *rnd, bool change, bool calm)
{
	struct mpmc_stats st;
	uint32_t x;

	if (c->squeeze) {
		if (ioctl(c->fd, MPMC_IOC_GET_STATS, &st)) {
			fail("controller: MPMC_IOC_GET_STATS: %s", strerror(errno));
			return;
		}
		if (st.queued_msgs < c->cur.capacity)
			ctl_set(c, st.queued_msgs, c->cur.flags);
		if (!c->cur.capacity) {
			c->squeeze = false;
			c->squeezes++;
		}
		return;
	}
	if (!change)
		return;
	x = xorshift(rnd);
	if (!c->cur.capacity) {
		if (x % 8 == 0)
			ctl_set(c, 1 + xorshift(rnd) % 256, c->cur.flags);
		else if (x % 8 == 1)
			ctl_set(c, 0, rand_flags(x >> 8, calm));
		return;
	}
	if (x % 16 == 0) {
		ctl_set(c, 0, c->cur.flags);
	} else if (x % 16 == 1) {
		c->squeeze = true;
		ctl_set(c, c->cur.capacity,
			c->cur.flags & ~MPMC_CONFIG_OVERWRITE);
	} else {
		ctl_set(c, 1 + xorshift(rnd) % 256, (x >> 8) % 4 ?
			c->cur.flags : rand_flags(x >> 10, calm));
	}
}

/* A non-negative integer from the environment, or @def. */
static long env_long(const char *name, long def)
{
	const char *env = getenv(name);

	return env && atol(env) >= 0 ? atol(env) : def;
}

TEST_F_TIMEOUT(chaos, exactly_once, 240)
{
	long long t0, t_min, t_max, t_stop, t_prod, t_done;
	long target;
	long long t_calm;
	long sigs = 0, pkills = 0, ckills = 0;
	long missing = 0, unacked_arrived = 0, acked_total = 0, loss = 0;
	long nacked_arrived = 0, unarrived = 0, unrecorded;
	__u64 calm_dropped = 0;
	bool calm = true;
	struct ctl ctl = { .cur = { .capacity = 16, .max_msg_size = MAX_MSG } };
	long ckills_by[NMETH] = { 0 };
	char by[512];
	const char *env;
	uint32_t seed, rnd;
	struct mpmc_stats st;
	long secs, max_secs;
	int i, k, p;

	secs = env_long("MPMC_CHAOS_SECONDS", 15);
	max_secs = env_long("MPMC_CHAOS_MAX_SECONDS", 120);
	if (max_secs < secs)
		max_secs = secs;
	target = env_long("MPMC_CHAOS_TARGET", 1000000);
	env = getenv("MPMC_CHAOS_SEED");
	seed = env ? (uint32_t)strtoul(env, NULL, 0) : (uint32_t)time(NULL) ^ getpid();
	if (!seed)
		seed = 1;
	rnd = seed;
	g->prio_seed = xorshift(&rnd);
	TH_LOG("seed %u (MPMC_CHAOS_SEED), %ld..%ld s until %ld messages (MPMC_CHAOS_SECONDS, MPMC_CHAOS_MAX_SECONDS, MPMC_CHAOS_TARGET)",
	       seed, secs, max_secs, target);

	/* Workers inherit a handler before they set their own. */
	set_handler(false);
	for (p = 0; p < NP; p++)
		for (i = 0; i < NC; i++)
			for (k = 0; k < MPMC_PRIO_MAX; k++)
				atomic_store(&g->last[i][p][k], -1);

	self->fd = mpmc_test_open_cfg(ctl.cur.capacity, MAX_MSG);
	ASSERT_LE(0, self->fd);
	ctl.fd = self->fd;
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

	t0 = ctl.since = now_ms();
	t_min = t0 + secs * 1000LL;
	t_max = t0 + max_secs * 1000LL;
	t_calm = t0 + secs * 1000LL / 3;
	while (!atomic_load(&g->failed)) {
		long long t = now_ms();

		if (t >= t_max ||
		    (t >= t_min && atomic_load(&g->received) >= target))
			break;
		uint32_t r = xorshift(&rnd);

		usleep(TICK_US);
		/* (a) a signal storm: every worker, every tick. */
		for (i = 0; i < NW; i++)
			if (self->w[i].pid && !kill(self->w[i].pid, SIGUSR1))
				sigs++;
		/* (b) capacity and mode changes: ctl_tick(). */
		if (calm && t >= t_calm) {
			calm = false;
			MPMC_STATS(self->fd, &st);
			calm_dropped = st.total_dropped;
		}
		ctl_check_drops(&ctl);
		ctl_tick(&ctl, &rnd, r % 4 == 0, calm);
		/* (c) kill and restart a worker, about every 60th tick. */
		if (r % 60 == 1) {
			struct wslot *w = &self->w[xorshift(&rnd) % NW];
			int status;

			ASSERT_EQ(0, kill(w->pid, SIGKILL));
			ASSERT_EQ(w->pid, waitpid(w->pid, &status, 0));
			if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
				fail("worker pid %d ended by itself (status %#x)",
				     w->pid, status);
			if (w->producer) {
				pkills++;
			} else {
				ckills++;
				ckills_by[w->m]++;
				loss += kill_loss[w->m];
			}
			w->pid = spawn(w, xorshift(&rnd));
			ASSERT_LT(0, w->pid);
		}
	}
	t_stop = now_ms();

	/*
	 * Back to a plain queued channel that nothing is dropped from (256:
	 * never below the queued count), then producers finish, then end of
	 * file lets the consumers drain.
	 */
	ASSERT_TRUE(ctl_set(&ctl, 256, 0)) {
		TH_LOG("%s", g->why);
	}
	ctl_clock(&ctl);
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
			bool nacked = atomic_load(&g->nackbits[p][s / 64]) & (1UL << (s % 64));

			acked_total += acked;
			if (nacked && (got || acked) && nacked_arrived++ < 5)
				TH_LOG("failed io_uring WRITE arrived: producer %d seq %u",
				       p, s);

			if (acked && !got && missing++ < 5 && !ctl.ow_on)
				TH_LOG("unaccounted: producer %d seq %u", p, s);
			if (!acked && got)
				unacked_arrived++;
			if (!got)
				unarrived++;
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
	/* Every message the channel took was received or dropped. */
	EXPECT_EQ(st.total_sent, st.total_received + st.total_dropped);
	/* Nothing dropped in the calm phase, nor since overwrite went off. */
	EXPECT_EQ(0ULL, calm_dropped);
	EXPECT_EQ(ctl.dropped_base, st.total_dropped);
	if (!ctl.ow_on)
		EXPECT_EQ(0ULL, st.total_dropped);
	/* Delivered but never recorded: only by consumers killed meanwhile. */
	unrecorded = (long)st.total_received - atomic_load(&g->received);
	EXPECT_LE(0, unrecorded);
	EXPECT_LE(unrecorded, loss);
	/*
	 * Acked but never recorded: dropped, or taken by a killed consumer.
	 * Both kinds were attempted and never recorded, as are the sends
	 * that failed or were cut short: those are at least as many.
	 */
	EXPECT_LE(missing, (long)st.total_dropped + unrecorded);
	EXPECT_LE((long)st.total_dropped + unrecorded, unarrived);
	EXPECT_EQ(0, nacked_arrived);

	TH_LOG("%ld messages verified (%ld acked, %ld arrived unacked, %ld acked unrecorded <= %llu dropped + %ld taken by %ld killed consumers, allowed %ld); channel total_sent %llu total_received %llu total_dropped %llu",
	       atomic_load(&g->received), acked_total, unacked_arrived, missing,
	       (unsigned long long)st.total_dropped, unrecorded, ckills, loss,
	       (unsigned long long)st.total_sent,
	       (unsigned long long)st.total_received,
	       (unsigned long long)st.total_dropped);
	TH_LOG("priorities: %ld received above 0; %ld peeked and checked",
	       atomic_load(&g->recv_prio), atomic_load(&g->peeked));
	for (i = 0, by[0] = '\0'; i < NMETH; i++)
		snprintf(by + strlen(by), sizeof(by) - strlen(by),
			 "%s%s %ld sent %ld received %ld consumer kills",
			 i ? ", " : "", meth_name[i], atomic_load(&g->sent_by[i]),
			 atomic_load(&g->recv_by[i]), ckills_by[i]);
	TH_LOG("per method: %s", by);
	TH_LOG("kills: %ld producers, %ld consumers; signals sent %ld (handled %ld, io_uring waits interrupted %ld, io_uring requests cancelled unissued %ld)",
	       pkills, ckills, sigs, atomic_load(&g->handled),
	       atomic_load(&g->uring_eintr), atomic_load(&g->uring_cancelled));
	TH_LOG("config changes %ld (+%ld EBUSY, %ld EINVAL for capacity 0 with overwrite): %ld to rendezvous (%ld squeezed; %lld ms in all), overwrite on %ld times (%lld ms), throughput on %ld times (%lld ms); %ld checks that nothing was dropped with overwrite off",
	       ctl.sets, ctl.busy, ctl.inval, ctl.to_rdv, ctl.squeezes,
	       ctl.rdv_ms, ctl.ow_on,
	       ctl.ow_ms, ctl.tp_on, ctl.tp_ms, ctl.drop_checks);
	TH_LOG("chaos %lld ms, producers stopped in %lld ms, drain %lld ms",
	       t_stop - t0, t_prod - t_stop, t_done - t_prod);
}

TEST_HARNESS_MAIN
