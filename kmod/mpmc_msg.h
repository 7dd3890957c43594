/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mpmc message store: the buffers that hold queued messages, recycled
 * through a small per-channel pool (mpmc_msg.c).
 */
#ifndef _MPMC_MSG_H
#define _MPMC_MSG_H

#include <linux/list.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/stddef.h>
#include <linux/types.h>

/* Size classes of inline messages: header and payload in 64..4096 bytes. */
#define MPMC_MSG_MIN_SHIFT	6
#define MPMC_NR_CLASSES		7
/* mpmc_msg.class of a message whose payload is allocated apart. */
#define MPMC_MSG_EXTERNAL	0xff

/**
 * struct mpmc_msg - one message, queued or in flight
 * @link:  entry in a channel's queue, in a caller's list, or in the pool
 * @len:   payload length, 1..max_msg_size
 * @class: size class of an inline message (its header and payload are
 *         one object of 64 << @class bytes), or MPMC_MSG_EXTERNAL
 * @prio:  priority, 0..MPMC_PRIO_MAX-1
 * @peeked: a peek holds a reference in @users: whoever frees the message
 *         drops one, and the last frees it. Set only while the message is
 *         queued, under the channel lock, so stable for its receiver.
 * @users: references while @peeked (1 for the queue or the receiver)
 * @seq:   the channel's total_sent when it was accepted (its low 32
 *         bits): a per-channel sequence number from enqueue to dequeue,
 *         in the mpmc_send, mpmc_recv and mpmc_drop tracepoints
 * @payload: external payload (kvmalloc)
 * @data:  inline payload
 *
 * Only @len bytes of the payload are ever written by a sender or copied
 * out to a receiver; the rest of a recycled buffer holds stale bytes of
 * an earlier message of the same channel and never leaves the kernel.
 */
struct mpmc_msg {
	struct list_head link;
	u32 len;
	u8 class;
	u8 prio;
	bool peeked;
	refcount_t users;
	u32 seq;
	union {
		u8 *payload;
		DECLARE_FLEX_ARRAY(u8, data);
	} __aligned(8);
};

/**
 * struct mpmc_pool - free message buffers kept by one channel
 * @lock:   protects the fields below; never held with the channel's lock
 * @free:   free inline buffers, one LIFO list per size class
 * @bytes:  bytes of the buffers on @free
 * @budget: at most this many bytes are kept on @free
 * @spare:  one more free inline buffer, or NULL, taken and given back
 *          with xchg()/cmpxchg() and no lock: the buffer that a sender and
 *          a receiver pass back and forth message after message
 *
 * Buffers stay charged to the memory cgroup of the task that allocated
 * them, so a channel shared between cgroups may charge up to @budget
 * bytes (and the spare) to the wrong one; a drained channel keeps at most
 * @budget bytes and the spare, at most 4 KiB.
 */
struct mpmc_pool {
	struct mpmc_msg *spare;
	spinlock_t lock;	/* see the kernel-doc above */
	struct list_head free[MPMC_NR_CLASSES];
	size_t bytes;
	size_t budget;
} ____cacheline_aligned_in_smp;

int mpmc_msg_init(void);
void mpmc_msg_exit(void);

void mpmc_pool_init(struct mpmc_pool *pool, size_t budget);
void mpmc_pool_set_budget(struct mpmc_pool *pool, size_t budget);
void mpmc_pool_destroy(struct mpmc_pool *pool);

struct mpmc_msg *mpmc_msg_alloc(struct mpmc_pool *pool, size_t len,
				bool nowait);
void mpmc_pool_take(struct mpmc_pool *pool, size_t len, unsigned int n,
		    struct list_head *stash);
struct mpmc_msg *mpmc_msg_alloc_stash(struct list_head *stash, size_t len);
void mpmc_msg_free(struct mpmc_pool *pool, struct mpmc_msg *msg);
void mpmc_msg_free_list(struct mpmc_pool *pool, struct list_head *list);

/* The payload of @msg, inline or not: the one way to reach it. */
static inline u8 *mpmc_msg_data(struct mpmc_msg *msg)
{
	return msg->class == MPMC_MSG_EXTERNAL ? msg->payload : msg->data;
}

#endif /* _MPMC_MSG_H */
