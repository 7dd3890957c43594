// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * libmpmc ring mode (LIBMPMC_1.2): the user-space half of the ring
 * protocol of Documentation/ring-mode.rst, section 4, and the fallback to
 * the system calls.
 *
 * Everything read from the shared ring region is untrusted: any process
 * that maps the channel may write anything there. Indices are masked with
 * our own copy of slot_mask, lengths are checked against our own copy of
 * max_msg_size before a copy, and every retry loop is bounded; when the
 * ring looks wrong the call goes to the kernel, which decides (EIO for a
 * broken ring). The control page is written only by the kernel.
 *
 * errno is saved and restored around every libc call, as in mpmc.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "mpmc.h"

/* Attempts of one ring operation before it gives up and asks the kernel. */
#define MPMC_RING_SPIN		64

/* Largest ring region we accept from a control page (sanity only). */
#define MPMC_RING_SIZE_MAX	(1ULL << 40)

struct mpmc_ring {
	int fd;
	uint32_t id;		/* our owner id; 0: use the system calls */
	unsigned long gen;	/* mpmc_ring_fork_gen when id was fetched */
	const struct mpmc_ring_ctrl *ctrl;
	unsigned char *ring;	/* the ring region */
	size_t ctrl_size;
	size_t ring_size;
	/* Our copy of the geometry: never read back from shared memory. */
	uint64_t nr_slots;
	uint64_t slot_mask;
	size_t slot_size;
	size_t slots_offset;
	uint32_t max_msg_size;
};

/* Bumped in every child after fork(): mapper ids are per mapping. */
static unsigned long mpmc_ring_fork_gen;
static pthread_once_t mpmc_ring_once = PTHREAD_ONCE_INIT;

static void mpmc_ring_atfork_child(void)
{
	__atomic_fetch_add(&mpmc_ring_fork_gen, 1, __ATOMIC_RELAXED);
}

static void mpmc_ring_init_once(void)
{
	pthread_atfork(NULL, NULL, mpmc_ring_atfork_child);
}

/* What one attempt at the ring came to. */
enum mpmc_ring_res {
	MPMC_RING_DONE,		/* moved one message */
	MPMC_RING_NONE,		/* full (send) or empty (receive) */
	MPMC_RING_SLOW,		/* flags, closed, contention, bad ring */
	MPMC_RING_TOOBIG,	/* receive: the head does not fit */
};

/* ---- shared words --------------------------------------------------- */

static inline __u64 *mpmc_ring_enq(const struct mpmc_ring *r)
{
	return (__u64 *)(r->ring + MPMC_RING_ENQ_OFF);
}

static inline __u64 *mpmc_ring_deq(const struct mpmc_ring *r)
{
	return (__u64 *)(r->ring + MPMC_RING_DEQ_OFF);
}

static inline struct mpmc_ring_slot *mpmc_ring_slot(const struct mpmc_ring *r,
						     uint64_t pos)
{
	return (struct mpmc_ring_slot *)(r->ring + r->slots_offset +
					 (pos & r->slot_mask) * r->slot_size);
}

static inline uint64_t mpmc_load_acq(const __u64 *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline int mpmc_cas(__u64 *p, __u64 old, __u64 new)
{
	return __atomic_compare_exchange_n(p, &old, new, 0, __ATOMIC_ACQ_REL,
					   __ATOMIC_ACQUIRE);
}

/* Position of a slot word (48 bits) minus position @p, sign-extended. */
static inline int64_t mpmc_pos_diff(uint64_t w, uint64_t p)
{
	uint64_t d = (w >> MPMC_RING_POS_SHIFT) - p;

	return (int64_t)(d << (64 - 48)) >> (64 - 48);
}

static inline unsigned int mpmc_state(uint64_t w)
{
	return w & MPMC_RING_STATE_MASK;
}

/* The kernel lets the ring be used now (no MPMC_RING_F_* flag set). */
static inline int mpmc_ring_open(const struct mpmc_ring *r)
{
	return !__atomic_load_n(&r->ctrl->flags, __ATOMIC_ACQUIRE);
}

/*
 * The doorbell: after publishing (MPMC_ROLE_RECV) or freeing
 * (MPMC_ROLE_SEND) a slot, wake a waiter of that direction if the
 * control page says there is one. The fence pairs with the kernel's
 * smp_mb() between publishing its waiter count and rechecking the ring.
 */
static void mpmc_ring_doorbell(const struct mpmc_ring *r, unsigned int role)
{
	const uint32_t *waiters = role == MPMC_ROLE_RECV ?
		&r->ctrl->recv_waiters : &r->ctrl->send_waiters;
	int saved;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!__atomic_load_n(waiters, __ATOMIC_RELAXED))
		return;
	saved = errno;
	ioctl(r->fd, MPMC_IOC_RING_WAKE, (unsigned long)role);
	errno = saved;
}

/* ---- mapper id and fork --------------------------------------------- */

/* MPMC_IOC_RING_INFO for our ring mapping; 0 or a negative errno. */
static int mpmc_ring_info(const struct mpmc_ring *r, struct mpmc_ring_info *info)
{
	int saved = errno;
	int ret;

	memset(info, 0, sizeof(*info));
	info->addr = (uint64_t)(uintptr_t)r->ring;
	ret = ioctl(r->fd, MPMC_IOC_RING_INFO, info);
	if (ret < 0)
		ret = -errno;
	errno = saved;
	if (ret)
		return ret;
	if (!info->mapper_id || info->mapper_id > MPMC_RING_OWNER_MAX ||
	    info->nr_slots != r->nr_slots || info->slot_size != r->slot_size)
		return -EPROTO;
	return 0;
}

/*
 * Our owner id, fetched again in a child after fork (its copy of the
 * mapping has an id of its own). 0 (no id: use the system calls) if the
 * kernel does not give one.
 */
static uint32_t mpmc_ring_id(struct mpmc_ring *r)
{
	unsigned long gen = __atomic_load_n(&mpmc_ring_fork_gen,
					    __ATOMIC_ACQUIRE);
	struct mpmc_ring_info info;

	if (__atomic_load_n(&r->gen, __ATOMIC_ACQUIRE) == gen)
		return __atomic_load_n(&r->id, __ATOMIC_RELAXED);
	if (mpmc_ring_info(r, &info))
		info.mapper_id = 0;
	__atomic_store_n(&r->id, info.mapper_id, __ATOMIC_RELAXED);
	__atomic_store_n(&r->gen, gen, __ATOMIC_RELEASE);
	return info.mapper_id;
}

/* ---- map and unmap -------------------------------------------------- */

/* The geometry of @c is one we can use safely; copies it into @r. */
static int mpmc_ring_geometry(struct mpmc_ring *r,
			      const struct mpmc_ring_ctrl *c)
{
	struct mpmc_ring_ctrl g;
	uint64_t need;

	memcpy(&g, c, sizeof(g));
	if (g.magic != MPMC_RING_MAGIC || g.version != MPMC_RING_VERSION)
		return -EPROTO;
	if (!g.nr_slots || (g.nr_slots & (g.nr_slots - 1)) ||
	    g.slot_mask != g.nr_slots - 1 || g.pos_bits != 48 ||
	    !g.max_msg_size || g.slot_size % 8 ||
	    g.slot_size < sizeof(struct mpmc_ring_slot) + (uint64_t)g.max_msg_size ||
	    g.slots_offset % 8 || g.slots_offset < MPMC_RING_DEQ_OFF + 8)
		return -EPROTO;
	need = g.slots_offset + (uint64_t)g.nr_slots * g.slot_size;
	if (g.ring_size < need || g.ring_size > MPMC_RING_SIZE_MAX)
		return -EPROTO;
	r->nr_slots = g.nr_slots;
	r->slot_mask = g.slot_mask;
	r->slot_size = g.slot_size;
	r->slots_offset = g.slots_offset;
	r->max_msg_size = g.max_msg_size;
	r->ring_size = g.ring_size;
	return 0;
}

/* mmap(2) of the channel with the library's error convention. */
static int mpmc_ring_mmap(int fd, size_t len, int prot, uint64_t off,
			  void **addr)
{
	int saved = errno;
	void *p = mmap(NULL, len, prot, MAP_SHARED, fd, (off_t)off);
	int ret = 0;

	*addr = NULL;
	if (p == MAP_FAILED)
		ret = -errno;
	else
		*addr = p;
	errno = saved;
	return ret;
}

/* Undo what mpmc_ring_map() did so far; keeps errno. */
static void mpmc_ring_free(struct mpmc_ring *r)
{
	int saved = errno;

	if (r->ring)
		munmap(r->ring, r->ring_size);
	if (r->ctrl)
		munmap((void *)r->ctrl, r->ctrl_size);
	free(r);
	errno = saved;
}

int mpmc_ring_map(int fd, struct mpmc_ring **ringp)
{
	struct mpmc_ring_info info;
	struct mpmc_ring *r;
	long page;
	void *p;
	int ret;

	pthread_once(&mpmc_ring_once, mpmc_ring_init_once);
	page = sysconf(_SC_PAGESIZE);
	r = calloc(1, sizeof(*r));
	if (!r || page <= 0) {
		free(r);
		return -ENOMEM;
	}
	r->fd = fd;
	r->ctrl_size = page;
	ret = mpmc_ring_mmap(fd, r->ctrl_size, PROT_READ, MPMC_RING_OFF_CTRL, &p);
	if (ret)
		goto fail;
	r->ctrl = p;
	ret = mpmc_ring_geometry(r, r->ctrl);
	if (ret)
		goto fail;
	ret = mpmc_ring_mmap(fd, r->ring_size, PROT_READ | PROT_WRITE,
			     MPMC_RING_OFF_RING, &p);
	if (ret)
		goto fail;
	r->ring = p;
	r->gen = __atomic_load_n(&mpmc_ring_fork_gen, __ATOMIC_ACQUIRE);
	ret = mpmc_ring_info(r, &info);
	if (ret)
		goto fail;
	r->id = info.mapper_id;
	*ringp = r;
	return 0;
fail:
	mpmc_ring_free(r);
	return ret;
}

void mpmc_ring_unmap(struct mpmc_ring *r)
{
	if (r)
		mpmc_ring_free(r);
}

int mpmc_ring_fd(const struct mpmc_ring *r)
{
	return r->fd;
}

/* ---- the fast path: send -------------------------------------------- */

/*
 * Our claim of slot @s at position @p is in; advance enq_pos for us (or
 * see a helper did). Returns 0, or -EPIPE when the ring was closed at @p
 * under us: the slot becomes a SKIP, the caller goes to the kernel.
 */
static int mpmc_ring_advance_enq(struct mpmc_ring *r,
				 struct mpmc_ring_slot *s, uint64_t p)
{
	__u64 *enq = mpmc_ring_enq(r);
	__u64 cur = p;

	if (__atomic_compare_exchange_n(enq, &cur, p + 1, 0, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		return 0;
	if (cur != (p | MPMC_RING_CLOSED))
		return 0;
	__atomic_store_n(&s->len, MPMC_RING_LEN_SKIP, __ATOMIC_RELAXED);
	__atomic_store_n(&s->word, MPMC_RING_WORD(p, 0, MPMC_RING_FULL),
			 __ATOMIC_RELEASE);
	return -EPIPE;
}

/* One message of @len bytes (1..max_msg_size) into the ring. */
static enum mpmc_ring_res mpmc_ring_put(struct mpmc_ring *r, uint32_t id,
					const void *buf, uint32_t len)
{
	struct mpmc_ring_slot *s;
	uint64_t p, w;
	int i;

	if (!id || !mpmc_ring_open(r))
		return MPMC_RING_SLOW;
	p = mpmc_load_acq(mpmc_ring_enq(r));
	for (i = 0; i < MPMC_RING_SPIN; i++) {
		if (p & MPMC_RING_CLOSED)
			return MPMC_RING_SLOW;
		s = mpmc_ring_slot(r, p);
		w = mpmc_load_acq(&s->word);
		if (w == MPMC_RING_WORD(p, 0, MPMC_RING_FREE)) {
			if (!mpmc_cas(&s->word, w,
				      MPMC_RING_WORD(p, id, MPMC_RING_CLAIMED)))
				continue;
			if (mpmc_ring_advance_enq(r, s, p))
				return MPMC_RING_SLOW;
			__atomic_store_n(&s->len, len, __ATOMIC_RELAXED);
			memcpy(s->data, buf, len);
			__atomic_store_n(&s->word,
					 MPMC_RING_WORD(p, 0, MPMC_RING_FULL),
					 __ATOMIC_RELEASE);
			return MPMC_RING_DONE;
		}
		if (!mpmc_pos_diff(w, p)) {
			/* Claimed by another: help it advance, then retry. */
			mpmc_cas(mpmc_ring_enq(r), p, p + 1);
		} else if (mpmc_pos_diff(w, p) == -(int64_t)r->nr_slots) {
			return MPMC_RING_NONE;
		}
		p = mpmc_load_acq(mpmc_ring_enq(r));
	}
	return MPMC_RING_SLOW;
}

/* ---- the fast path: receive ----------------------------------------- */

/*
 * Our claim of slot @s at position @q is in: copy the message out (@n
 * bytes, checked before the claim) and free the slot. Returns @n, 0 for
 * a SKIP slot (nothing delivered), or -1 if the length changed under our
 * claim (a hostile writer): the slot is freed with nothing delivered and
 * the caller goes to the kernel.
 */
static int64_t mpmc_ring_take(struct mpmc_ring *r, struct mpmc_ring_slot *s,
			      uint64_t q, uint32_t n, void *buf)
{
	int64_t ret = n;

	if (__atomic_load_n(&s->len, __ATOMIC_RELAXED) != n)
		ret = -1;
	else if (n == MPMC_RING_LEN_SKIP)
		ret = 0;
	else
		memcpy(buf, s->data, n);
	__atomic_store_n(&s->word,
			 MPMC_RING_WORD(q + r->nr_slots, 0, MPMC_RING_FREE),
			 __ATOMIC_RELEASE);
	return ret;
}

/*
 * One message from the head of the ring into @buf (@size bytes). *@len
 * gets its length; *@freed is set when a slot was freed (a doorbell for
 * senders is due), also for SKIP slots passed over.
 */
static enum mpmc_ring_res mpmc_ring_get(struct mpmc_ring *r, uint32_t id,
					void *buf, size_t size, uint32_t *len,
					int *freed)
{
	struct mpmc_ring_slot *s;
	uint64_t q, w;
	uint32_t n;
	int64_t got;
	int i;

	if (!id || !mpmc_ring_open(r))
		return MPMC_RING_SLOW;
	q = mpmc_load_acq(mpmc_ring_deq(r));
	for (i = 0; i < MPMC_RING_SPIN; i++) {
		if (q & MPMC_RING_CLOSED)
			return MPMC_RING_SLOW;
		s = mpmc_ring_slot(r, q);
		w = mpmc_load_acq(&s->word);
		if (w == MPMC_RING_WORD(q, 0, MPMC_RING_FULL)) {
			n = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
			/* Impossible: let the kernel see it (EIO). */
			if (!n || (n != MPMC_RING_LEN_SKIP &&
				   n > r->max_msg_size))
				return MPMC_RING_SLOW;
			if (n != MPMC_RING_LEN_SKIP && n > size)
				return MPMC_RING_TOOBIG;
			if (!mpmc_cas(&s->word, w,
				      MPMC_RING_WORD(q, id, MPMC_RING_READING)))
				continue;
			mpmc_cas(mpmc_ring_deq(r), q, q + 1);
			got = mpmc_ring_take(r, s, q, n, buf);
			*freed = 1;
			if (got < 0)
				return MPMC_RING_SLOW;
			if (got > 0) {
				*len = got;
				return MPMC_RING_DONE;
			}
			/* A SKIP slot: nothing delivered, take the next. */
		} else if (!mpmc_pos_diff(w, q)) {
			if (mpmc_state(w) != MPMC_RING_READING)
				return MPMC_RING_NONE;
			mpmc_cas(mpmc_ring_deq(r), q, q + 1);
		} else if (mpmc_pos_diff(w, q) == -(int64_t)r->nr_slots &&
			   mpmc_state(w) == MPMC_RING_READING) {
			/* The last lap's receiver still copies: nothing yet. */
			return MPMC_RING_NONE;
		}
		q = mpmc_load_acq(mpmc_ring_deq(r));
	}
	return MPMC_RING_SLOW;
}

/* ---- single messages ------------------------------------------------ */

static inline int mpmc_ring_flags_ok(int flags)
{
	return !(flags & ~MPMC_RING_NONBLOCK);
}

ssize_t mpmc_ring_send(struct mpmc_ring *r, const void *buf, size_t len,
		       int flags)
{
	if (!mpmc_ring_flags_ok(flags))
		return -EINVAL;
	if (!len)
		return 0;
	if (len > r->max_msg_size)
		return -EMSGSIZE;
	if (mpmc_ring_put(r, mpmc_ring_id(r), buf, len) == MPMC_RING_DONE) {
		mpmc_ring_doorbell(r, MPMC_ROLE_RECV);
		return len;
	}
	if (flags & MPMC_RING_NONBLOCK)
		return mpmc_try_send(r->fd, buf, len);
	return mpmc_send(r->fd, buf, len);
}

ssize_t mpmc_ring_recv(struct mpmc_ring *r, void *buf, size_t size, int flags)
{
	enum mpmc_ring_res res;
	uint32_t len = 0;
	int freed = 0;

	if (!mpmc_ring_flags_ok(flags))
		return -EINVAL;
	if (!size)
		return 0;
	res = mpmc_ring_get(r, mpmc_ring_id(r), buf, size, &len, &freed);
	if (freed)
		mpmc_ring_doorbell(r, MPMC_ROLE_SEND);
	if (res == MPMC_RING_DONE)
		return len;
	if (res == MPMC_RING_TOOBIG)
		return -EMSGSIZE;
	if (flags & MPMC_RING_NONBLOCK)
		return mpmc_try_recv(r->fd, buf, size);
	return mpmc_recv(r->fd, buf, size);
}

/* ---- batches -------------------------------------------------------- */

/*
 * The batch is one the ring may start on: otherwise the kernel reports
 * what is wrong with it (EINVAL for a bad count, timeout, length or
 * priority; a ring channel takes priority 0 only).
 */
static int mpmc_ring_batch_ok(const struct mpmc_msgvec *v, unsigned int n,
			      int64_t timeout_ns, int send)
{
	unsigned int i;

	if (!n || n > MPMC_BATCH_MAX || timeout_ns < -1)
		return 0;
	for (i = 0; send && i < n; i++)
		if (!v[i].len || v[i].prio)
			return 0;
	return 1;
}

int mpmc_ring_send_batch(struct mpmc_ring *r, const struct mpmc_msgvec *v,
			 unsigned int n, int64_t timeout_ns)
{
	enum mpmc_ring_res res = MPMC_RING_SLOW;
	unsigned int i = 0;
	uint32_t id;
	int ret;

	if (!mpmc_ring_batch_ok(v, n, timeout_ns, 1))
		return mpmc_send_batch(r->fd, v, n, timeout_ns);
	id = mpmc_ring_id(r);
	for (; i < n; i++) {
		if (v[i].len > r->max_msg_size) {
			/* The kernel stops there too: -EMSGSIZE if first. */
			res = i ? MPMC_RING_NONE : MPMC_RING_SLOW;
			break;
		}
		res = mpmc_ring_put(r, id, (const void *)(uintptr_t)v[i].buf,
				    v[i].len);
		if (res != MPMC_RING_DONE)
			break;
	}
	if (i)
		mpmc_ring_doorbell(r, MPMC_ROLE_RECV);
	if (!i)
		return mpmc_send_batch(r->fd, v, n, timeout_ns);
	if (i == n || res != MPMC_RING_SLOW)
		return i;
	/* Not for lack of room: the kernel may move more, without waiting. */
	ret = mpmc_send_batch(r->fd, v + i, n - i, MPMC_TIMEOUT_NONE);
	return ret > 0 ? (int)i + ret : (int)i;
}

int mpmc_ring_recv_batch(struct mpmc_ring *r, struct mpmc_msgvec *v,
			 unsigned int n, int64_t timeout_ns)
{
	enum mpmc_ring_res res = MPMC_RING_SLOW;
	unsigned int i = 0;
	int freed = 0;
	uint32_t id, len;
	int ret;

	if (!mpmc_ring_batch_ok(v, n, timeout_ns, 0))
		return mpmc_recv_batch(r->fd, v, n, timeout_ns);
	id = mpmc_ring_id(r);
	for (; i < n; i++) {
		res = mpmc_ring_get(r, id, (void *)(uintptr_t)v[i].buf,
				    v[i].len, &len, &freed);
		if (res != MPMC_RING_DONE)
			break;
		v[i].len = len;
		v[i].prio = 0;
	}
	if (freed)
		mpmc_ring_doorbell(r, MPMC_ROLE_SEND);
	if (!i && res == MPMC_RING_TOOBIG)
		return -EMSGSIZE;
	if (!i)
		return mpmc_recv_batch(r->fd, v, n, timeout_ns);
	if (i == n || res != MPMC_RING_SLOW)
		return i;
	ret = mpmc_recv_batch(r->fd, v + i, n - i, MPMC_TIMEOUT_NONE);
	return ret > 0 ? (int)i + ret : (int)i;
}
