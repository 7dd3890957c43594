// SPDX-License-Identifier: GPL-2.0
/*
 * mpmc ring mode: the ring a channel shares with the processes that map
 * it (Documentation/ring-mode.rst).
 *
 * The ring is kernel memory: a control page that only the kernel writes
 * and a ring region of slots that every mapper writes. The kernel keeps
 * its own copy of the geometry and reaches the ring only through its own
 * mapping (vmap() of pages allocated for the life of the channel), so no
 * access here can fault, and nothing read from the ring is trusted:
 *  - every slot index is a position masked with the kernel's mask;
 *  - a length is read once into a local, checked, and only the local used;
 *  - every loop over values user space may change is bounded by
 *    MPMC_RING_TRIES, or visits each slot once;
 *  - a value an honest ring never holds marks the ring MPMC_RING_F_BROKEN,
 *    after which the channel fails every send and receive with EIO.
 *
 * The protocol is Vyukov's bounded queue with the claim made on the slot
 * word, which carries the claimer's mapper id (0 for the kernel):
 *
 *   send at p:    FREE(p) -> CLAIMED(p, id), enq p -> p + 1, fill,
 *                 FULL(p, 0)
 *   receive at q: FULL(q, 0) -> READING(q, id), deq q -> q + 1, copy,
 *                 FREE(q + nr_slots)
 *
 * Anyone who sees a claimed slot at the position advances the position
 * for its claimer, so a claimer that dies between its two steps stalls
 * nobody; a claim it never finished is reaped when its mapping goes away
 * (mpmc_ring_reap_work()). The kernel itself never holds a claim across
 * anything that can fault or sleep: it copies between a message buffer
 * and the slot with memcpy().
 */

#include <linux/bitmap.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "mpmc_chan.h"
#include "mpmc_ring.h"

/* Bytes before slot 0: the two positions, each in its own 128 bytes. */
#define MPMC_RING_HEAD_BYTES	PAGE_SIZE

static struct workqueue_struct *mpmc_ring_wq;

static void mpmc_ring_reap_work(struct work_struct *work);

/* ---- Memory -------------------------------------------------------------- */

static u32 mpmc_ring_slot_size(u32 max_msg_size)
{
	return ALIGN(sizeof(struct mpmc_ring_slot) + max_msg_size, 64);
}

/**
 * mpmc_ring_bytes - memory a ring of this geometry takes
 * @nr_slots:     slots
 * @max_msg_size: payload bytes per slot
 *
 * Return: the bytes of the control page and the ring region together.
 */
u64 mpmc_ring_bytes(u32 nr_slots, u32 max_msg_size)
{
	return PAGE_SIZE + PAGE_ALIGN(MPMC_RING_HEAD_BYTES +
				      (u64)nr_slots *
				      mpmc_ring_slot_size(max_msg_size));
}

static u64 *mpmc_ring_enq(const struct mpmc_ring *r)
{
	return r->base + MPMC_RING_ENQ_OFF;
}

static u64 *mpmc_ring_deq(const struct mpmc_ring *r)
{
	return r->base + MPMC_RING_DEQ_OFF;
}

/* The slot of position @pos: always inside the ring, whatever @pos is. */
static struct mpmc_ring_slot *mpmc_ring_slot(const struct mpmc_ring *r,
					     u64 pos)
{
	return r->base + MPMC_RING_HEAD_BYTES +
	       (size_t)(pos & r->mask) * r->slot_size;
}

static void mpmc_ring_free_pages(struct mpmc_ring *r)
{
	unsigned int i;

	for (i = 0; i < r->nr_pages; i++)
		if (r->pages[i])
			__free_page(r->pages[i]);
	kvfree(r->pages);
}

static void mpmc_ring_fill_ctrl(struct mpmc_ring *r)
{
	struct mpmc_ring_ctrl *c = r->ctrl;
	u32 i;

	c->magic = MPMC_RING_MAGIC;
	c->version = MPMC_RING_VERSION;
	c->nr_slots = r->nr_slots;
	c->slot_mask = r->mask;
	c->slot_size = r->slot_size;
	c->max_msg_size = r->max_msg_size;
	c->slots_offset = MPMC_RING_HEAD_BYTES;
	c->pos_bits = 48;
	c->ring_size = r->ring_size;
	for (i = 0; i < r->nr_slots; i++)
		mpmc_ring_slot(r, i)->word = MPMC_RING_WORD(i, 0,
							    MPMC_RING_FREE);
}

/**
 * mpmc_ring_create - allocate an empty ring
 * @ch:           the channel it belongs to
 * @nr_slots:     slots, a power of two (checked by the caller)
 * @max_msg_size: payload bytes per slot
 *
 * The pages are zeroed and charged to the caller's memory cgroup.
 *
 * Return: the ring, or NULL without memory.
 */
struct mpmc_ring *mpmc_ring_create(struct mpmc_chan *ch, u32 nr_slots,
				   u32 max_msg_size)
{
	u64 bytes = mpmc_ring_bytes(nr_slots, max_msg_size);
	struct mpmc_ring *r;
	unsigned int i;

	r = kzalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);
	if (!r)
		return NULL;
	r->ch = ch;
	r->nr_slots = nr_slots;
	r->mask = nr_slots - 1;
	r->slot_size = mpmc_ring_slot_size(max_msg_size);
	r->max_msg_size = max_msg_size;
	r->ring_size = bytes - PAGE_SIZE;
	r->nr_pages = bytes >> PAGE_SHIFT;
	ida_init(&r->ids);
	INIT_WORK(&r->reap_work, mpmc_ring_reap_work);
	r->pages = kvcalloc(r->nr_pages, sizeof(*r->pages), GFP_KERNEL_ACCOUNT);
	r->reap = bitmap_zalloc(MPMC_RING_NR_IDS, GFP_KERNEL_ACCOUNT);
	if (!r->pages || !r->reap)
		goto fail;
	for (i = 0; i < r->nr_pages; i++) {
		r->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!r->pages[i])
			goto fail;
	}
	r->ctrl = page_address(r->pages[0]);
	r->base = vmap(r->pages + 1, r->nr_pages - 1, VM_MAP, PAGE_KERNEL);
	if (!r->base)
		goto fail;
	mpmc_ring_fill_ctrl(r);
	return r;
fail:
	if (r->pages)
		mpmc_ring_free_pages(r);
	bitmap_free(r->reap);
	kfree(r);
	return NULL;
}

/**
 * mpmc_ring_destroy - free a ring nobody maps any more
 * @r: the ring, or NULL
 *
 * Called when the channel is freed: every mapping holds a file of the
 * channel, and a pending reap holds a reference, so neither is left.
 */
void mpmc_ring_destroy(struct mpmc_ring *r)
{
	if (!r)
		return;
	vunmap(r->base);
	mpmc_ring_free_pages(r);
	ida_destroy(&r->ids);
	bitmap_free(r->reap);
	kfree(r);
}

/* ---- The control page ------------------------------------------------------ */

/**
 * mpmc_ring_set_flags - change the MPMC_RING_F_* bits of the control page
 * @r:     the ring
 * @set:   bits to set
 * @clear: bits to clear
 *
 * Only the kernel writes the control page, so this loop ends.
 */
void mpmc_ring_set_flags(struct mpmc_ring *r, u32 set, u32 clear)
{
	u32 old = READ_ONCE(r->ctrl->flags), new;

	do {
		new = (old & ~clear) | set;
		if (new == old)
			return;
	} while (!try_cmpxchg(&r->ctrl->flags, &old, new));
}

/**
 * mpmc_ring_broken - has the kernel found the ring inconsistent?
 * @r: the ring
 *
 * Return: true once MPMC_RING_F_BROKEN is set; it is never cleared.
 */
bool mpmc_ring_broken(const struct mpmc_ring *r)
{
	return READ_ONCE(r->ctrl->flags) & MPMC_RING_F_BROKEN;
}

/* The ring holds a value no honest peer writes: EIO from now on. */
static int mpmc_ring_mark_broken(struct mpmc_ring *r, const char *why,
				 u64 pos, u64 word)
{
	if (!mpmc_ring_broken(r))
		pr_debug("mpmc: channel %llu: ring broken (%s) at %llu: %llx\n",
			 mpmc_chan_id(r->ch), why, pos, word);
	mpmc_ring_set_flags(r, MPMC_RING_F_BROKEN, 0);
	return -EIO;
}

static u32 *mpmc_ring_waiter_word(struct mpmc_ring *r, bool recv)
{
	return recv ? &r->ctrl->recv_waiters : &r->ctrl->send_waiters;
}

/**
 * mpmc_ring_set_waiters - publish how many callers of a direction sleep
 * @r:    the ring
 * @recv: receivers (true) or senders
 * @nr:   the count
 *
 * Called under the channel lock at every change of the count, as the
 * poll bit is changed, so the two never race. Pairs with the fence a ring
 * peer executes between publishing and reading the word; the caller
 * follows an increase with smp_mb() and a look at the ring (see
 * mpmc_ring_block() in mpmc_chan.c).
 */
void mpmc_ring_set_waiters(struct mpmc_ring *r, bool recv, u32 nr)
{
	u32 *w = mpmc_ring_waiter_word(r, recv);

	WRITE_ONCE(*w, (READ_ONCE(*w) & MPMC_RING_W_POLL) |
		   min_t(u32, nr, ~MPMC_RING_W_POLL));
}

/**
 * mpmc_ring_arm - ask ring peers to ring the doorbell for a poller
 * @r:    the ring
 * @recv: for EPOLLIN (true) or EPOLLOUT
 *
 * Under the channel lock; the caller follows it with smp_mb() and a look
 * at the ring, as for a sleeper.
 */
void mpmc_ring_arm(struct mpmc_ring *r, bool recv)
{
	u32 *w = mpmc_ring_waiter_word(r, recv);

	WRITE_ONCE(*w, READ_ONCE(*w) | MPMC_RING_W_POLL);
}

/**
 * mpmc_ring_disarm - the pollers of a direction are being woken
 * @r:    the ring
 * @recv: EPOLLIN (true) or EPOLLOUT
 *
 * Under the channel lock. A woken poller polls again and arms again if it
 * still waits.
 *
 * Return: whether the direction was armed.
 */
bool mpmc_ring_disarm(struct mpmc_ring *r, bool recv)
{
	u32 *w = mpmc_ring_waiter_word(r, recv), old = READ_ONCE(*w);

	WRITE_ONCE(*w, old & ~MPMC_RING_W_POLL);
	return old & MPMC_RING_W_POLL;
}

/**
 * mpmc_ring_wanted - must the doorbell of a direction be rung?
 * @r:    the ring
 * @recv: after a publish (true) or after freeing a slot
 *
 * The caller has just changed the ring and executed smp_mb().
 *
 * Return: whether someone sleeps or polls in that direction.
 */
bool mpmc_ring_wanted(const struct mpmc_ring *r, bool recv)
{
	return READ_ONCE(*mpmc_ring_waiter_word((struct mpmc_ring *)r, recv));
}

/* ---- The protocol, as the kernel runs it ------------------------------------ */

/* Position, owner and state of a slot word. */
static u64 mpmc_word_pos(u64 w)
{
	return w >> MPMC_RING_POS_SHIFT;
}

static u32 mpmc_word_state(u64 w)
{
	return w & MPMC_RING_STATE_MASK;
}

static u32 mpmc_word_owner(u64 w)
{
	return (w >> MPMC_RING_OWNER_SHIFT) & MPMC_RING_OWNER_MAX;
}

static bool mpmc_pos_eq(u64 word_pos, u64 pos)
{
	return word_pos == (pos & MPMC_RING_POS_MASK);
}

/*
 * The shared position at @at moved on from @pos, or holds a value no
 * peer can have written honestly after the slot word we saw for it.
 */
static bool mpmc_ring_moved(u64 *at, u64 pos)
{
	return READ_ONCE(*at) != pos;
}

/*
 * Publish @len bytes of @data in slot @s, claimed by the kernel at @pos.
 * Nothing here can fault or sleep, so a kernel claim always completes.
 */
static void mpmc_ring_fill(struct mpmc_ring *r, struct mpmc_ring_slot *s,
			   u64 pos, const void *data, u32 len)
{
	WRITE_ONCE(s->len, len);
	if (data)
		memcpy(s->data, data, len);
	/* Pairs with the acquire of a receiver's look at the word. */
	smp_store_release(&s->word, MPMC_RING_WORD(pos, 0, MPMC_RING_FULL));
}

/* A send found the enqueue position closed: by the kernel, or forged. */
static int mpmc_ring_closed_send(struct mpmc_ring *r, u64 p)
{
	if (READ_ONCE(r->closed))
		return -EPIPE;
	return mpmc_ring_mark_broken(r, "enqueue closed", p, 0);
}

/**
 * mpmc_ring_push - put one message in the ring
 * @r:    the ring
 * @data: the message, in kernel memory
 * @len:  its length, 1..max_msg_size
 *
 * The caller rings the receivers' doorbell afterwards if they want it.
 *
 * Return: 0, -EAGAIN (full), -EPIPE (closed), -EIO (broken) or -EBUSY
 * (peers kept changing the ring: try again later).
 */
int mpmc_ring_push(struct mpmc_ring *r, const void *data, u32 len)
{
	u64 *enq = mpmc_ring_enq(r), p, w, old;
	struct mpmc_ring_slot *s;
	int tries;

	for (tries = 0; tries < MPMC_RING_TRIES; tries++) {
		if (mpmc_ring_broken(r))
			return -EIO;
		/* Acquire: the slot word we then read is at least as new. */
		p = smp_load_acquire(enq);
		if (p & MPMC_RING_CLOSED)
			return mpmc_ring_closed_send(r, p);
		s = mpmc_ring_slot(r, p);
		/* Pairs with the release that freed the slot. */
		w = smp_load_acquire(&s->word);
		if (w == MPMC_RING_WORD(p, 0, MPMC_RING_FREE)) {
			if (cmpxchg64(&s->word, w,
				      MPMC_RING_WORD(p, 0, MPMC_RING_CLAIMED)) != w)
				continue;
			old = cmpxchg64(enq, p, p + 1);
			if (old == (p | MPMC_RING_CLOSED)) {
				/* Closed under us: the claim becomes a hole. */
				mpmc_ring_fill(r, s, p, NULL, MPMC_RING_LEN_SKIP);
				return mpmc_ring_closed_send(r, p);
			}
			mpmc_ring_fill(r, s, p, data, len);
			return 0;
		}
		if (mpmc_pos_eq(mpmc_word_pos(w), p)) {
			/* Claimed at p: move the position on for its claimer. */
			cmpxchg64(enq, p, p + 1);
			continue;
		}
		if (mpmc_pos_eq(mpmc_word_pos(w), p - r->nr_slots) &&
		    mpmc_word_state(w) != MPMC_RING_FREE)
			return -EAGAIN;
		if (!mpmc_ring_moved(enq, p))
			return mpmc_ring_mark_broken(r, "send slot", p, w);
	}
	return -EBUSY;
}

/* Release slot @s of position @q after its contents were taken. */
static void mpmc_ring_release(struct mpmc_ring *r, struct mpmc_ring_slot *s,
			      u64 q)
{
	/* Pairs with the acquire of a sender's look at the word. */
	smp_store_release(&s->word,
			  MPMC_RING_WORD(q + r->nr_slots, 0, MPMC_RING_FREE));
}

/*
 * The message at the head, position @q with word @w, is FULL: take it
 * into @buf. Returns 0 with *@len set, 1 for a hole (taken, nothing to
 * deliver), -EAGAIN if someone else took it first, or as
 * mpmc_ring_pop().
 */
static int mpmc_ring_take(struct mpmc_ring *r, struct mpmc_ring_slot *s,
			  u64 q, u64 w, void *buf, u32 room, u32 *len)
{
	u32 n = READ_ONCE(s->len);

	if (!n || (n != MPMC_RING_LEN_SKIP && n > r->max_msg_size))
		return mpmc_ring_mark_broken(r, "length", q, n);
	if (n != MPMC_RING_LEN_SKIP && n > room) {
		*len = n;
		return -EMSGSIZE;
	}
	if (cmpxchg64(&s->word, w, MPMC_RING_WORD(q, 0, MPMC_RING_READING)) != w)
		return -EAGAIN;
	cmpxchg64(mpmc_ring_deq(r), q, q + 1);
	if (READ_ONCE(s->len) != n) {
		mpmc_ring_release(r, s, q);
		return mpmc_ring_mark_broken(r, "length changed", q, n);
	}
	if (n == MPMC_RING_LEN_SKIP) {
		mpmc_ring_release(r, s, q);
		return 1;
	}
	memcpy(buf, s->data, n);
	mpmc_ring_release(r, s, q);
	*len = n;
	return 0;
}

/**
 * mpmc_ring_pop - take the message at the head of the ring
 * @r:    the ring
 * @buf:  where to copy it (kernel memory of @room bytes), or NULL to only
 *        learn its length (with @room 0)
 * @room: bytes at @buf
 * @len:  set to the message's length (also with -EMSGSIZE)
 *
 * Holes left by dead or closed-out senders are taken on the way. The
 * caller rings the senders' doorbell afterwards if they want it.
 *
 * Return: 0, -EAGAIN (empty, or the head is still being written),
 * -EMSGSIZE (longer than @room: left at the head), -EIO (broken) or
 * -EBUSY (peers kept changing the ring).
 */
int mpmc_ring_pop(struct mpmc_ring *r, void *buf, u32 room, u32 *len)
{
	u64 *deq = mpmc_ring_deq(r), q, w, wp;
	struct mpmc_ring_slot *s;
	int tries, ret;

	for (tries = 0; tries < MPMC_RING_TRIES; tries++) {
		if (mpmc_ring_broken(r))
			return -EIO;
		/* Acquire: the slot word we then read is at least as new. */
		q = smp_load_acquire(deq);
		/* Nobody closes the dequeue position. */
		if (q & MPMC_RING_CLOSED)
			return mpmc_ring_mark_broken(r, "dequeue closed", q, 0);
		s = mpmc_ring_slot(r, q);
		/* Pairs with the release that published the slot. */
		w = smp_load_acquire(&s->word);
		wp = mpmc_word_pos(w);
		if (w == MPMC_RING_WORD(q, 0, MPMC_RING_FULL)) {
			ret = mpmc_ring_take(r, s, q, w, buf, room, len);
			if (ret == 1 || ret == -EAGAIN)
				continue;
			return ret;
		}
		if (mpmc_pos_eq(wp, q)) {
			switch (mpmc_word_state(w)) {
			case MPMC_RING_READING:
				cmpxchg64(deq, q, q + 1);
				continue;
			case MPMC_RING_FREE:
			case MPMC_RING_CLAIMED:
				return -EAGAIN;
			}
		} else if (mpmc_pos_eq(wp, q - r->nr_slots) &&
			   mpmc_word_state(w) == MPMC_RING_READING) {
			/* The last lap's receiver still copies: nothing yet. */
			return -EAGAIN;
		}
		if (!mpmc_ring_moved(deq, q))
			return mpmc_ring_mark_broken(r, "receive slot", q, w);
	}
	return -EBUSY;
}

/**
 * mpmc_ring_can_push - would a send find a free slot now?
 * @r: the ring
 *
 * May move the enqueue position on for a claimer, nothing else. Bounded.
 *
 * Return: true if the slot at the enqueue position is free (or the ring
 * is closed or broken: a send would not block).
 */
bool mpmc_ring_can_push(struct mpmc_ring *r)
{
	u64 *enq = mpmc_ring_enq(r), p, w;
	int tries;

	for (tries = 0; tries < MPMC_RING_TRIES; tries++) {
		/* As in mpmc_ring_push(). */
		p = smp_load_acquire(enq);
		if (p & MPMC_RING_CLOSED || mpmc_ring_broken(r))
			return true;
		/* As in mpmc_ring_push(). */
		w = smp_load_acquire(&mpmc_ring_slot(r, p)->word);
		if (w == MPMC_RING_WORD(p, 0, MPMC_RING_FREE))
			return true;
		if (!mpmc_pos_eq(mpmc_word_pos(w), p))
			return false;
		cmpxchg64(enq, p, p + 1);
	}
	return false;
}

/**
 * mpmc_ring_drained - has every message sent before the close been taken?
 * @r: the ring, closed (MPMC_RING_CLOSED set on the enqueue position)
 *
 * Return: true once the dequeue position reached the final one.
 */
bool mpmc_ring_drained(struct mpmc_ring *r)
{
	u64 q = READ_ONCE(*mpmc_ring_deq(r)) & ~MPMC_RING_CLOSED;

	if (!READ_ONCE(r->closed))
		return false;
	return (s64)(q - READ_ONCE(r->final_pos)) >= 0;
}

/**
 * mpmc_ring_counts - what the ring says about traffic
 * @r:        the ring
 * @sent:     messages that entered the ring (its enqueue position)
 * @received: messages that left it (its dequeue position)
 * @queued:   FULL slots between the two
 * @bytes:    their lengths, each clamped to max_msg_size
 *
 * As exact as the peers are honest; holes count as messages sent and
 * received. The dequeue position is read first, so @received never
 * exceeds @sent. One look at each slot at most.
 */
void mpmc_ring_counts(struct mpmc_ring *r, u64 *sent, u64 *received,
		      u32 *queued, u64 *bytes)
{
	/* Dequeue first: a receive is counted after its send (acquire). */
	u64 d = smp_load_acquire(mpmc_ring_deq(r)) & ~MPMC_RING_CLOSED;
	/* Acquire: ordered after the dequeue position. */
	u64 e = smp_load_acquire(mpmc_ring_enq(r)) & ~MPMC_RING_CLOSED;
	u64 pos, n = (s64)(e - d) <= 0 ? 0 : min_t(u64, e - d, r->nr_slots);
	struct mpmc_ring_slot *s;
	u32 len;

	*sent = e;
	*received = min(d, e);
	*queued = 0;
	*bytes = 0;
	for (pos = d; pos < d + n; pos++) {
		s = mpmc_ring_slot(r, pos);
		if (READ_ONCE(s->word) != MPMC_RING_WORD(pos, 0, MPMC_RING_FULL))
			continue;
		len = READ_ONCE(s->len);
		if (len == MPMC_RING_LEN_SKIP)
			continue;
		(*queued)++;
		*bytes += clamp_t(u32, len, 1, r->max_msg_size);
	}
}

/**
 * mpmc_ring_close - close the ring to senders (shutdown)
 * @r: the ring
 *
 * Sets MPMC_RING_CLOSED on the enqueue position and remembers where it
 * was: senders that claimed before it complete, receivers drain up to
 * it. Called under the channel lock, once.
 */
void mpmc_ring_close(struct mpmc_ring *r)
{
	u64 *enq = mpmc_ring_enq(r), p;
	int tries;

	if (READ_ONCE(r->closed))
		return;
	for (tries = 0; tries < MPMC_RING_TRIES; tries++) {
		p = READ_ONCE(*enq);
		if (p & MPMC_RING_CLOSED)
			break;
		WRITE_ONCE(r->final_pos, p);
		if (cmpxchg64(enq, p, p | MPMC_RING_CLOSED) == p) {
			WRITE_ONCE(r->closed, true);
			return;
		}
	}
	/* Closed by someone else, or never closable: forged. */
	WRITE_ONCE(r->closed, true);
	mpmc_ring_mark_broken(r, "close", p, 0);
}

/**
 * mpmc_ring_shutdown - mirror a channel shutdown in the ring
 * @r:   the ring
 * @how: the MPMC_SHUT_* bits newly in effect
 *
 * Either direction closes the ring to senders (a send after any shutdown
 * fails with EPIPE); the flags send ring peers to the kernel, which
 * drains or discards as the channel does. Under the channel lock.
 */
void mpmc_ring_shutdown(struct mpmc_ring *r, unsigned int how)
{
	mpmc_ring_set_flags(r, (how & MPMC_SHUT_WR ? MPMC_RING_F_SHUT_WR : 0) |
			       (how & MPMC_SHUT_RD ? MPMC_RING_F_SHUT_RD : 0), 0);
	mpmc_ring_close(r);
}

/* ---- Mappings and their reaper ------------------------------------------ */

/*
 * Reap the claims of mapper @id, whose mapping is gone: a send it never
 * finished becomes a hole, a receive it never finished goes back to the
 * channel's front queue. Each slot is visited once.
 */
static void mpmc_ring_reap_id(struct mpmc_ring *r, u32 id)
{
	struct mpmc_ring_slot *s;
	struct mpmc_msg *msg;
	u64 w, pos;
	u32 i, n;

	for (i = 0; i < r->nr_slots; i++) {
		s = mpmc_ring_slot(r, i);
		w = READ_ONCE(s->word);
		if (mpmc_word_owner(w) != id)
			continue;
		pos = mpmc_word_pos(w);
		if (mpmc_word_state(w) == MPMC_RING_CLAIMED) {
			WRITE_ONCE(s->len, MPMC_RING_LEN_SKIP);
			if (cmpxchg64(&s->word, w,
				      MPMC_RING_WORD(pos, 0, MPMC_RING_FULL)) == w)
				atomic64_inc(&r->reaped);
			continue;
		}
		if (mpmc_word_state(w) != MPMC_RING_READING)
			continue;
		n = READ_ONCE(s->len);
		if (!n || n > r->max_msg_size) {
			mpmc_ring_mark_broken(r, "reaped length", pos, n);
			continue;
		}
		msg = mpmc_chan_msg_alloc(r->ch, n);
		if (!msg) {
			mpmc_ring_mark_broken(r, "reap: no memory", pos, n);
			continue;
		}
		memcpy(mpmc_msg_data(msg), s->data, n);
		if (cmpxchg64(&s->word, w,
			      MPMC_RING_WORD(pos + r->nr_slots, 0,
					     MPMC_RING_FREE)) != w) {
			mpmc_chan_msg_free(r->ch, msg);
			continue;
		}
		atomic64_inc(&r->reaped);
		mpmc_chan_ring_put_back(r->ch, msg);
	}
}

static void mpmc_ring_reap_work(struct work_struct *work)
{
	struct mpmc_ring *r = container_of(work, struct mpmc_ring, reap_work);
	struct mpmc_chan *ch = r->ch;
	unsigned long id;

	for_each_set_bit(id, r->reap, MPMC_RING_NR_IDS) {
		clear_bit(id, r->reap);
		mpmc_ring_reap_id(r, id);
		ida_free(&r->ids, id);
	}
	mpmc_chan_ring_wake(ch, MPMC_ROLE_SEND | MPMC_ROLE_RECV);
	mpmc_chan_put(ch);
}

/* The ring-region vma's mapper id, kept in vm_private_data. */
static u32 mpmc_vma_id(const struct vm_area_struct *vma)
{
	return (unsigned long)vma->vm_private_data;
}

static struct mpmc_ring *mpmc_vma_ring(const struct vm_area_struct *vma)
{
	return mpmc_chan_ring(vma->vm_file->private_data);
}

/* A new id for a new ring-region vma; 0 (no id: no ring access) if none. */
static u32 mpmc_ring_new_id(struct mpmc_ring *r)
{
	int id = ida_alloc_range(&r->ids, 1, MPMC_RING_OWNER_MAX, GFP_KERNEL);

	return id < 0 ? 0 : id;
}

/* fork: the child's copy of the vma is another mapper. */
static void mpmc_ring_vm_open(struct vm_area_struct *vma)
{
	struct mpmc_ring *r = mpmc_vma_ring(vma);

	vma->vm_private_data = (void *)(unsigned long)mpmc_ring_new_id(r);
	atomic_inc(&r->nr_mappers);
}

/* The mapping is gone: no late write is possible, reap its claims. */
static void mpmc_ring_vm_close(struct vm_area_struct *vma)
{
	struct mpmc_ring *r = mpmc_vma_ring(vma);
	u32 id = mpmc_vma_id(vma);

	atomic_dec(&r->nr_mappers);
	if (!id)
		return;
	set_bit(id, r->reap);
	mpmc_chan_get(r->ch);
	if (!queue_work(mpmc_ring_wq, &r->reap_work))
		mpmc_chan_put(r->ch);
}

/* Ring vmas are unmapped or moved only whole. */
static int mpmc_ring_vm_split(struct vm_area_struct *vma, unsigned long addr)
{
	return -EINVAL;
}

static int mpmc_ring_vm_mremap(struct vm_area_struct *vma)
{
	return -EINVAL;
}

static const struct vm_operations_struct mpmc_ring_vm_ops = {
	.open		= mpmc_ring_vm_open,
	.close		= mpmc_ring_vm_close,
	.may_split	= mpmc_ring_vm_split,
	.mremap		= mpmc_ring_vm_mremap,
};

static const struct vm_operations_struct mpmc_ctrl_vm_ops = {
	.may_split	= mpmc_ring_vm_split,
	.mremap		= mpmc_ring_vm_mremap,
};

static int mpmc_ring_remap(struct vm_area_struct *vma, struct page **pages,
			   unsigned int n)
{
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = remap_pfn_range(vma, vma->vm_start + i * PAGE_SIZE,
				      page_to_pfn(pages[i]), PAGE_SIZE,
				      vma->vm_page_prot);
		if (ret)
			return ret;
	}
	return 0;
}

/**
 * mpmc_ring_mmap - map the control page or the ring region
 * @r:   the ring
 * @vma: the new vma (the caller checked the file's roles)
 *
 * remap_pfn_range() makes the vma VM_PFNMAP | VM_IO: get_user_pages()
 * refuses it, so no ring page can be pinned and written after the
 * mapping is gone.
 *
 * Return: 0, -EINVAL (private, bad offset or length), -EACCES (exec, or
 * write on the control page), -ENOSPC (no mapper id left), or as
 * remap_pfn_range().
 */
int mpmc_ring_mmap(struct mpmc_ring *r, struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start;
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u32 id;
	int ret;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EACCES;
	if (off == MPMC_RING_OFF_CTRL) {
		if (len != PAGE_SIZE)
			return -EINVAL;
		if (vma->vm_flags & VM_WRITE)
			return -EACCES;
		vma->vm_flags &= ~(VM_MAYWRITE | VM_MAYEXEC);
		vma->vm_flags |= VM_DONTEXPAND | VM_DONTDUMP;
		vma->vm_ops = &mpmc_ctrl_vm_ops;
		return mpmc_ring_remap(vma, r->pages, 1);
	}
	if (off != MPMC_RING_OFF_RING || len != r->ring_size)
		return -EINVAL;
	id = mpmc_ring_new_id(r);
	if (!id)
		return -ENOSPC;
	vma->vm_flags &= ~VM_MAYEXEC;
	vma->vm_flags |= VM_DONTEXPAND | VM_DONTDUMP;
	ret = mpmc_ring_remap(vma, r->pages + 1, r->nr_pages - 1);
	if (ret) {
		ida_free(&r->ids, id);
		return ret;
	}
	vma->vm_private_data = (void *)(unsigned long)id;
	vma->vm_ops = &mpmc_ring_vm_ops;
	atomic_inc(&r->nr_mappers);
	WRITE_ONCE(r->mapped, true);
	return 0;
}

/**
 * mpmc_ring_info - MPMC_IOC_RING_INFO: the caller's mapper id
 * @r:    the ring
 * @file: the channel file the ioctl came on
 * @info: in: the address of a ring-region mapping; out: the rest
 *
 * Return: 0, -EINVAL (reserved fields), -ENXIO (@info->addr is not in a
 * ring-region mapping of this channel) or -ENOSPC (that mapping got no
 * id, at fork).
 */
int mpmc_ring_info(struct mpmc_ring *r, struct file *file,
		   struct mpmc_ring_info *info)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	int ret = -ENXIO;
	u32 id = 0;

	if (info->reserved[0] || info->reserved[1] || info->mapper_id ||
	    info->nr_slots || info->slot_size || info->flags)
		return -EINVAL;
	mmap_read_lock(mm);
	vma = vma_lookup(mm, info->addr);
	if (vma && vma->vm_ops == &mpmc_ring_vm_ops && vma->vm_file &&
	    mpmc_vma_ring(vma) == r) {
		id = mpmc_vma_id(vma);
		ret = id ? 0 : -ENOSPC;
	}
	mmap_read_unlock(mm);
	if (ret)
		return ret;
	info->mapper_id = id;
	info->nr_slots = r->nr_slots;
	info->slot_size = r->slot_size;
	info->flags = READ_ONCE(r->ctrl->flags);
	return 0;
}

/**
 * mpmc_ring_show_fdinfo - the ring's lines of a channel's fdinfo
 * @r: the ring
 * @m: the seq_file
 */
void mpmc_ring_show_fdinfo(struct mpmc_ring *r, struct seq_file *m)
{
	seq_printf(m, "ring_slots:\t%u\n", r->nr_slots);
	seq_printf(m, "ring_slot_size:\t%u\n", r->slot_size);
	seq_printf(m, "ring_enq_pos:\t%llu\n", READ_ONCE(*mpmc_ring_enq(r)));
	seq_printf(m, "ring_deq_pos:\t%llu\n", READ_ONCE(*mpmc_ring_deq(r)));
	seq_printf(m, "ring_flags:\t%u\n", READ_ONCE(r->ctrl->flags));
	seq_printf(m, "ring_mappers:\t%d\n", atomic_read(&r->nr_mappers));
	seq_printf(m, "ring_doorbells:\t%lld\n",
		   (s64)atomic64_read(&r->doorbells));
	seq_printf(m, "ring_reaped:\t%lld\n", (s64)atomic64_read(&r->reaped));
}

/**
 * mpmc_ring_init - module init: the reapers' workqueue
 *
 * Return: 0 or -ENOMEM.
 */
int mpmc_ring_init(void)
{
	mpmc_ring_wq = alloc_workqueue("mpmc_ring", WQ_UNBOUND, 0);
	return mpmc_ring_wq ? 0 : -ENOMEM;
}

/**
 * mpmc_ring_exit - module exit: wait for the last reaps
 */
void mpmc_ring_exit(void)
{
	destroy_workqueue(mpmc_ring_wq);
}
