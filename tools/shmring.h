/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/*
 * shmring.h: the mpmc ring protocol without the module, for benchmarks.
 *
 * The same bounded MPMC ring as a /dev/mpmc ring channel
 * (Documentation/ring-mode.rst, section 4; uapi/linux/mpmc.h): the same
 * ring region layout (enq_pos at MPMC_RING_ENQ_OFF, deq_pos at
 * MPMC_RING_DEQ_OFF, struct mpmc_ring_slot at slots_offset + i *
 * slot_size), the same slot words and the same claim/publish protocol
 * (claim the slot word with the owner id, then help the position along).
 * What the kernel does is replaced by a small control block of our own,
 * struct shmring_ctrl, beside the region: the geometry, and one futex
 * event count per direction whose waiter word a publisher reads after a
 * seq_cst fence, exactly where libmpmc reads ctrl->recv_waiters and
 * rings the doorbell.
 *
 * Both live in one memfd (shmring_create()), so threads and processes
 * (fork, SCM_RIGHTS + shmring_map()) can share a ring. Shutdown is one
 * direction, as MPMC_SHUT_WR: bit 63 of enq_pos; receivers drain, then
 * get 0. No SKIP slots appear except from a send that claimed a slot as
 * the ring was closed. All memory is trusted: no process here is hostile
 * (the kernel's bounds and broken-ring checks are not modelled), but
 * every loop is bounded before it sleeps or yields.
 *
 * Header-only, no libmpmc: static inline functions, Linux, C11 or GNU C,
 * -I uapi for <linux/mpmc.h>'s layout constants. Results: a length,
 * 0 (end of file), or a negative errno (-EAGAIN, -EPIPE, -EMSGSIZE).
 */
#ifndef SHMRING_H
#define SHMRING_H

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <linux/futex.h>
#include <linux/mpmc.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>

/* Attempts at the ring before waiting (or yielding, under contention). */
#define SHMRING_SPIN		64

/* The control block that stands in for the kernel's control page. */
struct shmring_ctrl {
	uint32_t magic;			/* SHMRING_MAGIC */
	uint32_t nr_slots;
	uint32_t slot_mask;
	uint32_t slot_size;
	uint32_t max_msg_size;
	uint32_t slots_offset;
	uint64_t ring_size;		/* the region, before this block */
	uint32_t next_id;		/* owner ids handed out, 1.. */
	uint32_t reserved[7];
	/* Receivers asleep, and the futex word they sleep on. */
	uint32_t recv_waiters __attribute__((aligned(64)));
	uint32_t recv_seq;
	/* Senders asleep (ring full), and theirs. */
	uint32_t send_waiters __attribute__((aligned(64)));
	uint32_t send_seq;
} __attribute__((aligned(64)));

#define SHMRING_MAGIC	0x53485247	/* "SHRG" */

/* One user's view: the mappings and an owner id. */
struct shmring {
	struct shmring_ctrl *ctrl;
	unsigned char *ring;
	size_t map_size;		/* region + ctrl, one mapping */
	uint64_t slot_mask;
	uint64_t nr_slots;
	size_t slot_size;
	size_t slots_offset;
	uint32_t max_msg_size;
	uint32_t id;
};

/* ---- layout ----------------------------------------------------------- */

/* The ring region's size for a geometry, as the kernel computes it. */
static inline size_t shmring_slot_size(uint32_t max_msg_size)
{
	return (sizeof(struct mpmc_ring_slot) + (size_t)max_msg_size + 63) &
	       ~(size_t)63;
}

static inline size_t shmring_region_size(uint32_t nr_slots,
					 uint32_t max_msg_size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t sz = page + (size_t)nr_slots * shmring_slot_size(max_msg_size);

	return (sz + page - 1) & ~(page - 1);
}

static inline __u64 *shmring_enq(const struct shmring *r)
{
	return (__u64 *)(r->ring + MPMC_RING_ENQ_OFF);
}

static inline __u64 *shmring_deq(const struct shmring *r)
{
	return (__u64 *)(r->ring + MPMC_RING_DEQ_OFF);
}

static inline struct mpmc_ring_slot *shmring_slot(const struct shmring *r,
						  uint64_t pos)
{
	return (struct mpmc_ring_slot *)(r->ring + r->slots_offset +
					 (pos & r->slot_mask) * r->slot_size);
}

/* Position of slot word @w minus @p, modulo 2^48, sign-extended. */
static inline int64_t shmring_pos_diff(uint64_t w, uint64_t p)
{
	uint64_t d = (w >> MPMC_RING_POS_SHIFT) - p;

	return (int64_t)(d << 16) >> 16;
}

static inline int shmring_cas(__u64 *p, __u64 old, __u64 new)
{
	return __atomic_compare_exchange_n(p, &old, new, 0, __ATOMIC_ACQ_REL,
					   __ATOMIC_ACQUIRE);
}

/* ---- futex event counts ------------------------------------------------ */

static inline void shmring_futex_wait(uint32_t *word, uint32_t val)
{
	syscall(SYS_futex, word, FUTEX_WAIT, val, NULL, NULL, 0);
}

static inline void shmring_futex_wake(uint32_t *word, int n)
{
	syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}

/*
 * The doorbell: after a publish (receivers) or a free (senders). The
 * fence pairs with the one in shmring_sleep(): either the sleeper sees
 * our slot word, or we see its waiter count.
 */
static inline void shmring_wake(uint32_t *waiters, uint32_t *seq, int n)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!__atomic_load_n(waiters, __ATOMIC_RELAXED))
		return;
	__atomic_fetch_add(seq, 1, __ATOMIC_SEQ_CST);
	shmring_futex_wake(seq, n);
}

/* ---- create, map, close ----------------------------------------------- */

/* Map @size bytes of memfd @fd; take the geometry from its control block. */
static inline int shmring_mmap(struct shmring *r, int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct shmring_ctrl *c;

	if (p == MAP_FAILED)
		return -errno;
	c = (struct shmring_ctrl *)((unsigned char *)p + size - sizeof(*c));
	memset(r, 0, sizeof(*r));
	r->ring = (unsigned char *)p;
	r->map_size = size;
	r->ctrl = c;
	r->nr_slots = c->nr_slots;
	r->slot_mask = c->slot_mask;
	r->slot_size = c->slot_size;
	r->slots_offset = c->slots_offset;
	r->max_msg_size = c->max_msg_size;
	r->id = __atomic_add_fetch(&c->next_id, 1, __ATOMIC_RELAXED) &
		MPMC_RING_OWNER_MAX;
	if (!r->id)
		r->id = 1;
	return 0;
}

/*
 * A new ring of @nr_slots (a power of two) slots of @max_msg_size bytes
 * in a new memfd: the ring region, then struct shmring_ctrl. Maps it into
 * @r. Returns the memfd (pass it on and shmring_map() it elsewhere; close
 * it when done) or -errno.
 */
static inline int shmring_create(struct shmring *r, uint32_t nr_slots,
				 uint32_t max_msg_size)
{
	size_t region = shmring_region_size(nr_slots, max_msg_size);
	size_t size = region + sizeof(struct shmring_ctrl);
	struct shmring_ctrl c;
	uint32_t i;
	int fd, ret;

	if (!nr_slots || (nr_slots & (nr_slots - 1)) || !max_msg_size)
		return -EINVAL;
	fd = (int)syscall(SYS_memfd_create, "shmring", 1U /* MFD_CLOEXEC */);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	/* A fresh memfd reads as zeroes: write the geometry, then map. */
	memset(&c, 0, sizeof(c));
	c.magic = SHMRING_MAGIC;
	c.nr_slots = nr_slots;
	c.slot_mask = nr_slots - 1;
	c.slot_size = (uint32_t)shmring_slot_size(max_msg_size);
	c.max_msg_size = max_msg_size;
	c.slots_offset = (uint32_t)sysconf(_SC_PAGESIZE);
	c.ring_size = region;
	if (pwrite(fd, &c, sizeof(c), (off_t)region) != (ssize_t)sizeof(c)) {
		close(fd);
		return -EIO;
	}
	ret = shmring_mmap(r, fd, size);
	if (ret) {
		close(fd);
		return ret;
	}
	for (i = 0; i < nr_slots; i++)
		shmring_slot(r, i)->word = MPMC_RING_WORD(i, 0, MPMC_RING_FREE);
	return fd;
}

/* Map the memfd @fd of a ring made by shmring_create(); 0 or -errno. */
static inline int shmring_map(struct shmring *r, int fd)
{
	struct shmring_ctrl c;
	off_t end = lseek(fd, 0, SEEK_END);

	if (end < (off_t)sizeof(c) ||
	    pread(fd, &c, sizeof(c), end - (off_t)sizeof(c)) != (ssize_t)sizeof(c) ||
	    c.magic != SHMRING_MAGIC || c.ring_size + sizeof(c) != (uint64_t)end)
		return -EINVAL;
	return shmring_mmap(r, fd, (size_t)end);
}

/*
 * Another owner id on the same mapping (one per thread, for example).
 * The clone shares the mapping: shmring_unmap() only the original.
 */
static inline void shmring_clone(struct shmring *dst, const struct shmring *src)
{
	*dst = *src;
	dst->id = __atomic_add_fetch(&src->ctrl->next_id, 1, __ATOMIC_RELAXED) &
		  MPMC_RING_OWNER_MAX;
	if (!dst->id)
		dst->id = 1;
}

static inline void shmring_unmap(struct shmring *r)
{
	munmap(r->ring, r->map_size);
	r->ring = NULL;
	r->ctrl = NULL;
}

/*
 * Shut down for writing, as MPMC_SHUT_WR: bit 63 on enq_pos; sends fail
 * with -EPIPE, receivers drain what was sent, then get 0. Wakes all.
 */
static inline void shmring_shutdown(struct shmring *r)
{
	__u64 *enq = shmring_enq(r);
	__u64 p = __atomic_load_n(enq, __ATOMIC_ACQUIRE);

	while (!(p & MPMC_RING_CLOSED) &&
	       !__atomic_compare_exchange_n(enq, &p, p | MPMC_RING_CLOSED, 0,
					    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
	__atomic_fetch_add(&r->ctrl->recv_seq, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&r->ctrl->send_seq, 1, __ATOMIC_SEQ_CST);
	shmring_futex_wake(&r->ctrl->recv_seq, INT_MAX);
	shmring_futex_wake(&r->ctrl->send_seq, INT_MAX);
}

/* ---- the protocol ------------------------------------------------------ */

enum shmring_res {
	SHMRING_DONE,		/* moved one message */
	SHMRING_NONE,		/* full (send) or empty (receive): wait */
	SHMRING_BUSY,		/* contention: try again */
	SHMRING_CLOSED,		/* send: shut down; receive: end of file */
	SHMRING_TOOBIG,		/* receive: the head does not fit */
};

/* One message into the ring: section 4's send, libmpmc's mpmc_ring_put(). */
static inline enum shmring_res shmring_put(struct shmring *r, const void *buf,
					   uint32_t len)
{
	__u64 *enq = shmring_enq(r);
	struct mpmc_ring_slot *s;
	uint64_t p, w;
	__u64 cur;
	int i;

	p = __atomic_load_n(enq, __ATOMIC_ACQUIRE);
	for (i = 0; i < SHMRING_SPIN; i++) {
		if (p & MPMC_RING_CLOSED)
			return SHMRING_CLOSED;
		s = shmring_slot(r, p);
		w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
		if (w == MPMC_RING_WORD(p, 0, MPMC_RING_FREE)) {
			if (!shmring_cas(&s->word, w,
					 MPMC_RING_WORD(p, r->id, MPMC_RING_CLAIMED)))
				continue;
			cur = p;
			if (!__atomic_compare_exchange_n(enq, &cur, p + 1, 0,
							 __ATOMIC_ACQ_REL,
							 __ATOMIC_ACQUIRE) &&
			    cur == (p | MPMC_RING_CLOSED)) {
				__atomic_store_n(&s->len, MPMC_RING_LEN_SKIP,
						 __ATOMIC_RELAXED);
				__atomic_store_n(&s->word,
						 MPMC_RING_WORD(p, 0, MPMC_RING_FULL),
						 __ATOMIC_RELEASE);
				return SHMRING_CLOSED;
			}
			__atomic_store_n(&s->len, len, __ATOMIC_RELAXED);
			memcpy(s->data, buf, len);
			__atomic_store_n(&s->word,
					 MPMC_RING_WORD(p, 0, MPMC_RING_FULL),
					 __ATOMIC_RELEASE);
			return SHMRING_DONE;
		}
		if (!shmring_pos_diff(w, p))
			shmring_cas(enq, p, p + 1);	/* help */
		else if (shmring_pos_diff(w, p) == -(int64_t)r->nr_slots)
			return SHMRING_NONE;		/* full */
		p = __atomic_load_n(enq, __ATOMIC_ACQUIRE);
	}
	return SHMRING_BUSY;
}

/*
 * End of file at @q: the ring is closed and nothing was claimed at or
 * after @q (a claim in flight at @q is waited for: it publishes or SKIPs).
 */
static inline int shmring_eof(const struct shmring *r, uint64_t q, uint64_t w)
{
	uint64_t e = __atomic_load_n(shmring_enq(r), __ATOMIC_ACQUIRE);

	return (e & MPMC_RING_CLOSED) &&
	       w == MPMC_RING_WORD(q, 0, MPMC_RING_FREE) &&
	       (int64_t)((e & ~MPMC_RING_CLOSED) - q) <= 0;
}

/*
 * One message from the head: section 4's receive, libmpmc's
 * mpmc_ring_get(). *@len gets its length; *@freed is set when a slot was
 * freed (senders may need a wakeup).
 */
static inline enum shmring_res shmring_get(struct shmring *r, void *buf,
					   size_t size, uint32_t *len,
					   int *freed)
{
	__u64 *deq = shmring_deq(r);
	struct mpmc_ring_slot *s;
	uint64_t q, w;
	uint32_t n;
	int i;

	q = __atomic_load_n(deq, __ATOMIC_ACQUIRE);
	for (i = 0; i < SHMRING_SPIN; i++) {
		s = shmring_slot(r, q);
		w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
		if (w == MPMC_RING_WORD(q, 0, MPMC_RING_FULL)) {
			n = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
			if (n != MPMC_RING_LEN_SKIP && n > size)
				return SHMRING_TOOBIG;
			if (!shmring_cas(&s->word, w,
					 MPMC_RING_WORD(q, r->id, MPMC_RING_READING)))
				continue;
			shmring_cas(deq, q, q + 1);
			n = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
			if (n != MPMC_RING_LEN_SKIP)
				memcpy(buf, s->data, n);
			__atomic_store_n(&s->word,
					 MPMC_RING_WORD(q + r->nr_slots, 0,
							MPMC_RING_FREE),
					 __ATOMIC_RELEASE);
			*freed = 1;
			if (n != MPMC_RING_LEN_SKIP) {
				*len = n;
				return SHMRING_DONE;
			}
		} else if (!shmring_pos_diff(w, q)) {
			if ((w & MPMC_RING_STATE_MASK) != MPMC_RING_READING)
				return shmring_eof(r, q, w) ? SHMRING_CLOSED :
							       SHMRING_NONE;
			shmring_cas(deq, q, q + 1);	/* help */
		}
		q = __atomic_load_n(deq, __ATOMIC_ACQUIRE);
	}
	return SHMRING_BUSY;
}

/*
 * A sleeper counts itself in the direction's waiter word and fences
 * before it tries the ring once more and waits on the futex word it read
 * before counting itself: a publisher that fenced after its publish
 * either is seen by that last try, or sees the count and bumps the word.
 */
static inline void shmring_sleep_enter(uint32_t *waiters)
{
	__atomic_fetch_add(waiters, 1, __ATOMIC_SEQ_CST);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static inline void shmring_sleep_leave(uint32_t *waiters)
{
	__atomic_fetch_sub(waiters, 1, __ATOMIC_RELAXED);
}

/* ---- the calls --------------------------------------------------------- */

/*
 * Send @len bytes: @len, or -EAGAIN (full and @nonblock), -EPIPE (shut
 * down), -EMSGSIZE (over max_msg_size). 0 for 0 bytes.
 */
static inline ssize_t shmring_send(struct shmring *r, const void *buf,
				   size_t len, int nonblock)
{
	struct shmring_ctrl *c = r->ctrl;
	enum shmring_res res;
	uint32_t seq;

	if (!len)
		return 0;
	if (len > r->max_msg_size)
		return -EMSGSIZE;
	for (;;) {
		res = shmring_put(r, buf, (uint32_t)len);
		if (res == SHMRING_BUSY) {
			sched_yield();
			continue;
		}
		if (res != SHMRING_NONE || nonblock)
			break;
		seq = __atomic_load_n(&c->send_seq, __ATOMIC_ACQUIRE);
		shmring_sleep_enter(&c->send_waiters);
		res = shmring_put(r, buf, (uint32_t)len);
		if (res == SHMRING_NONE)
			shmring_futex_wait(&c->send_seq, seq);
		shmring_sleep_leave(&c->send_waiters);
		if (res != SHMRING_NONE && res != SHMRING_BUSY)
			break;
	}
	if (res == SHMRING_DONE) {
		shmring_wake(&c->recv_waiters, &c->recv_seq, 1);
		return (ssize_t)len;
	}
	if (res == SHMRING_CLOSED) {
		/* A SKIP may have been published: let receivers see it. */
		shmring_wake(&c->recv_waiters, &c->recv_seq, 1);
		return -EPIPE;
	}
	return -EAGAIN;
}

/*
 * Receive into @buf of @size bytes: the length, 0 at end of file, or
 * -EAGAIN (empty and @nonblock), -EMSGSIZE (the head does not fit; it
 * stays). 0 for a @size of 0.
 */
static inline ssize_t shmring_recv(struct shmring *r, void *buf, size_t size,
				   int nonblock)
{
	struct shmring_ctrl *c = r->ctrl;
	enum shmring_res res;
	uint32_t len = 0, seq;
	int freed = 0;

	if (!size)
		return 0;
	for (;;) {
		res = shmring_get(r, buf, size, &len, &freed);
		if (res == SHMRING_BUSY) {
			sched_yield();
			continue;
		}
		if (res != SHMRING_NONE || nonblock)
			break;
		seq = __atomic_load_n(&c->recv_seq, __ATOMIC_ACQUIRE);
		shmring_sleep_enter(&c->recv_waiters);
		res = shmring_get(r, buf, size, &len, &freed);
		if (res == SHMRING_NONE)
			shmring_futex_wait(&c->recv_seq, seq);
		shmring_sleep_leave(&c->recv_waiters);
		if (res != SHMRING_NONE && res != SHMRING_BUSY)
			break;
	}
	if (freed)
		shmring_wake(&c->send_waiters, &c->send_seq, 1);
	switch (res) {
	case SHMRING_DONE:
		return len;
	case SHMRING_CLOSED:
		return 0;
	case SHMRING_TOOBIG:
		return -EMSGSIZE;
	default:
		return -EAGAIN;
	}
}

#endif /* SHMRING_H */
