/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of the ring mode selftests (ring_*.c, lib/ring_*.c): mapping a
 * ring channel with the raw ABI (<linux/mpmc.h>, Documentation/ring-mode.rst)
 * and running the ring protocol by hand, step by step, as the contract
 * (/work/notes/ring-contract.md, section "The fast path") describes it.
 * Everything is static inline: the tests that do not use a helper do not
 * carry it. Plain C, return codes and errno or -errno, no assertions.
 * Include after mpmc_test.h.
 */
#ifndef RING_TEST_H
#define RING_TEST_H

#include <sys/mman.h>
#include "mpmc_test.h"

/* One process's view of a mapped ring channel. */
struct rmap {
	int fd;				/* for the doorbell; -1: none */
	struct mpmc_ring_ctrl *ctrl;	/* the control page (PROT_READ) */
	unsigned char *ring;		/* the ring region (RW) */
	size_t ring_size;
	__u32 id;			/* this mapping's mapper id */
	__u32 nr, mask, slot_size, max, slots_offset;
};

static inline size_t ring_page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/*
 * A new O_RDWR channel (@oflags added) in ring mode with @cap slots of
 * @msg_size bytes: its fd, or -1 with errno.
 */
static inline int ring_open(__u32 cap, __u32 msg_size, int oflags)
{
	struct mpmc_config cfg = {
		.capacity = cap, .max_msg_size = msg_size,
		.flags = MPMC_CONFIG_RING,
	};
	int fd = mpmc_test_open(O_RDWR | oflags);

	if (fd < 0)
		return -1;
	if (ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* SET_CONFIG with exactly these values: ioctl()'s result. */
static inline int ring_set(int fd, __u32 cap, __u32 msg_size, __u32 flags)
{
	struct mpmc_config cfg = {
		.capacity = cap, .max_msg_size = msg_size, .flags = flags,
	};

	return ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg);
}

/* mmap of the control page of @fd: the address or MAP_FAILED (errno). */
static inline void *map_ctrl(int fd)
{
	return mmap(NULL, ring_page(), PROT_READ, MAP_SHARED, fd,
		    MPMC_RING_OFF_CTRL);
}

/* mmap of the ring region of @fd, @size bytes: address or MAP_FAILED. */
static inline void *map_ring(int fd, size_t size)
{
	return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    MPMC_RING_OFF_RING);
}

/* MPMC_IOC_RING_INFO for the mapping at @addr: ioctl()'s result. */
static inline int ring_info(int fd, void *addr, struct mpmc_ring_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	ri->addr = (uintptr_t)addr;
	return ioctl(fd, MPMC_IOC_RING_INFO, ri);
}

/*
 * rmap_open() - map both regions of @fd's ring and learn the mapper id
 * @m: filled in
 * @fd: a ring channel's fd with both roles
 *
 * Return: 0, or -1 with errno (nothing stays mapped).
 */
static inline int rmap_open(struct rmap *m, int fd)
{
	struct mpmc_ring_info ri;
	int e;

	memset(m, 0, sizeof(*m));
	m->fd = fd;
	m->ctrl = map_ctrl(fd);
	if (m->ctrl == MAP_FAILED)
		return -1;
	m->ring_size = m->ctrl->ring_size;
	m->nr = m->ctrl->nr_slots;
	m->mask = m->ctrl->slot_mask;
	m->slot_size = m->ctrl->slot_size;
	m->max = m->ctrl->max_msg_size;
	m->slots_offset = m->ctrl->slots_offset;
	m->ring = map_ring(fd, m->ring_size);
	if (m->ring == MAP_FAILED) {
		e = errno;
		munmap(m->ctrl, ring_page());
		errno = e;
		return -1;
	}
	if (ring_info(fd, m->ring, &ri)) {
		e = errno;
		munmap(m->ring, m->ring_size);
		munmap(m->ctrl, ring_page());
		errno = e;
		return -1;
	}
	m->id = ri.mapper_id;
	return 0;
}

/* Unmap both regions: 0, or -1 if a munmap() failed. */
static inline int rmap_close(struct rmap *m)
{
	int ret = 0;

	if (m->ring && munmap(m->ring, m->ring_size))
		ret = -1;
	if (m->ctrl && munmap(m->ctrl, ring_page()))
		ret = -1;
	m->ring = NULL;
	m->ctrl = NULL;
	return ret;
}

/* ---- words and positions ---------------------------------------------- */

#define W_POS(w)	((w) >> MPMC_RING_POS_SHIFT)
#define W_OWNER(w)	(((w) >> MPMC_RING_OWNER_SHIFT) & MPMC_RING_OWNER_MAX)
#define W_STATE(w)	((w) & MPMC_RING_STATE_MASK)
#define P48(p)		((p) & MPMC_RING_POS_MASK)

static inline __u64 *r_enq(const struct rmap *m)
{
	return (__u64 *)(m->ring + MPMC_RING_ENQ_OFF);
}

static inline __u64 *r_deq(const struct rmap *m)
{
	return (__u64 *)(m->ring + MPMC_RING_DEQ_OFF);
}

/* The slot of position @pos. */
static inline struct mpmc_ring_slot *r_slot(const struct rmap *m, __u64 pos)
{
	return (struct mpmc_ring_slot *)(m->ring + m->slots_offset +
					 (size_t)(pos & m->mask) * m->slot_size);
}

static inline __u64 ld64(const __u64 *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline __u32 ld32(const __u32 *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void st64(__u64 *p, __u64 v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static inline bool cas64(__u64 *p, __u64 old, __u64 new)
{
	return __atomic_compare_exchange_n(p, &old, new, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/* The slot word of position @pos. */
static inline __u64 r_word(const struct rmap *m, __u64 pos)
{
	return ld64(&r_slot(m, pos)->word);
}

/* ---- the protocol by hand --------------------------------------------- */

#define RT_TRIES	1000

/*
 * rt_claim_send() - claim the slot at enq_pos for this mapping
 * @m: the mapping
 *
 * FREE(p) -> CLAIMED(p, id), then enq_pos p -> p + 1 (helping as needed).
 *
 * Return: the position claimed; -EAGAIN when the fast path may not be used
 * (ctrl->flags, closed, full, or no luck after RT_TRIES); -EPIPE when
 * enq_pos was closed under the claim (the slot is then made SKIP).
 */
static inline long long rt_claim_send(struct rmap *m)
{
	int i;

	for (i = 0; i < RT_TRIES; i++) {
		struct mpmc_ring_slot *s;
		__u64 p, w;

		if (ld32(&m->ctrl->flags))
			return -EAGAIN;
		p = ld64(r_enq(m));
		if (p & MPMC_RING_CLOSED)
			return -EAGAIN;
		s = r_slot(m, p);
		w = ld64(&s->word);
		if (w == MPMC_RING_WORD(p, 0, MPMC_RING_FREE)) {
			if (!cas64(&s->word, w, MPMC_RING_WORD(p, m->id,
							       MPMC_RING_CLAIMED)))
				continue;
			if (!cas64(r_enq(m), p, p + 1) &&
			    ld64(r_enq(m)) == (p | MPMC_RING_CLOSED)) {
				__atomic_store_n(&s->len, MPMC_RING_LEN_SKIP,
						 __ATOMIC_RELAXED);
				st64(&s->word, MPMC_RING_WORD(p, 0,
							      MPMC_RING_FULL));
				return -EPIPE;
			}
			return (long long)p;
		}
		if (W_POS(w) == P48(p) && W_STATE(w) != MPMC_RING_FREE) {
			cas64(r_enq(m), p, p + 1);
			continue;
		}
		if (W_POS(w) == P48(p - m->nr))
			return -EAGAIN;		/* full */
	}
	return -EAGAIN;
}

/* Ring the doorbell of @role if @waiters says so (after a fence). */
static inline void rt_doorbell(struct rmap *m, const __u32 *waiters,
			       unsigned int role)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(waiters, __ATOMIC_RELAXED) && m->fd >= 0)
		ioctl(m->fd, MPMC_IOC_RING_WAKE, role);
}

/* Fill the slot claimed at @p with @len bytes of @buf and publish it. */
static inline void rt_publish(struct rmap *m, __u64 p, const void *buf,
			      __u32 len)
{
	struct mpmc_ring_slot *s = r_slot(m, p);

	__atomic_store_n(&s->len, len, __ATOMIC_RELAXED);
	memcpy(s->data, buf, len);
	st64(&s->word, MPMC_RING_WORD(p, 0, MPMC_RING_FULL));
	rt_doorbell(m, &m->ctrl->recv_waiters, MPMC_ROLE_RECV);
}

/* One send through the ring: @len, or -EAGAIN (use the system call), -EPIPE. */
static inline ssize_t rt_send(struct rmap *m, const void *buf, size_t len)
{
	long long p;

	if (len > m->max)
		return -EMSGSIZE;
	p = rt_claim_send(m);
	if (p < 0)
		return p;
	rt_publish(m, p, buf, len);
	return len;
}

/*
 * rt_claim_recv() - claim the head slot for reading
 * @m: the mapping
 * @size: the caller's buffer size
 * @len: receives the slot's len (MPMC_RING_LEN_SKIP: deliver nothing)
 *
 * FULL(q) -> READING(q, id), then deq_pos q -> q + 1.
 *
 * Return: the position claimed; -EAGAIN when the fast path may not be used
 * or the ring is empty; -EMSGSIZE when the head message is longer than
 * @size (nothing claimed); -EIO when the claimed slot's len is impossible
 * (the slot is released again).
 */
static inline long long rt_claim_recv(struct rmap *m, size_t size, __u32 *len)
{
	int i;

	for (i = 0; i < RT_TRIES; i++) {
		struct mpmc_ring_slot *s;
		__u64 q, w;
		__u32 n;

		if (ld32(&m->ctrl->flags))
			return -EAGAIN;
		q = ld64(r_deq(m));
		if (q & MPMC_RING_CLOSED)
			return -EAGAIN;
		s = r_slot(m, q);
		w = ld64(&s->word);
		if (w == MPMC_RING_WORD(q, 0, MPMC_RING_FULL)) {
			n = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
			if (n != MPMC_RING_LEN_SKIP && n > size)
				return -EMSGSIZE;
			if (!cas64(&s->word, w, MPMC_RING_WORD(q, m->id,
							       MPMC_RING_READING)))
				continue;
			cas64(r_deq(m), q, q + 1);
			n = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
			if (n != MPMC_RING_LEN_SKIP && n > m->max) {
				st64(&s->word, MPMC_RING_WORD(q + m->nr, 0,
							      MPMC_RING_FREE));
				return -EIO;
			}
			*len = n;
			return (long long)q;
		}
		if (W_POS(w) == P48(q) && W_STATE(w) == MPMC_RING_READING) {
			cas64(r_deq(m), q, q + 1);
			continue;
		}
		if (W_POS(w) == P48(q))
			return -EAGAIN;		/* FREE or CLAIMED: empty */
	}
	return -EAGAIN;
}

/* Release the slot read at @q: FREE(q + nr_slots), and the doorbell. */
static inline void rt_release(struct rmap *m, __u64 q)
{
	st64(&r_slot(m, q)->word, MPMC_RING_WORD(q + m->nr, 0,
						 MPMC_RING_FREE));
	rt_doorbell(m, &m->ctrl->send_waiters, MPMC_ROLE_SEND);
}

/*
 * One receive through the ring into @buf of @size bytes: the length, or
 * -EAGAIN (use the system call), -EMSGSIZE, -EIO (see rt_claim_recv()).
 */
static inline ssize_t rt_recv(struct rmap *m, void *buf, size_t size)
{
	for (;;) {
		__u32 n = 0;
		long long q = rt_claim_recv(m, size, &n);

		if (q < 0)
			return q;
		if (n == MPMC_RING_LEN_SKIP) {
			rt_release(m, q);
			continue;
		}
		if (n > size)
			n = size;
		memcpy(buf, r_slot(m, q)->data, n);
		rt_release(m, q);
		return n;
	}
}

/* ---- the kernel's view ------------------------------------------------ */

/* "@key: N" from /proc/self/fdinfo/@fd, or @none. */
static inline long long fdinfo_val(int fd, const char *key, long long none)
{
	char path[64], fmt[80];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	snprintf(fmt, sizeof(fmt), "%s: %%lld", key);
	return scan_file(path, fmt, none);
}

/* Wait up to @ms for fdinfo @key of @fd to reach @want: the last value. */
static inline long long wait_fdinfo_ge(int fd, const char *key,
				       long long want, int ms)
{
	long long end = now_ms() + ms, v;

	for (;;) {
		v = fdinfo_val(fd, key, -1);
		if (v >= want || now_ms() > end)
			return v;
		usleep(2000);
	}
}

#endif /* RING_TEST_H */
