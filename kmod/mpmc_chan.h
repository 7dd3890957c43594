/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mpmc channel: the queue, its waiters and its limits, independent of the
 * file operations that expose it (mpmc_main.c).
 */
#ifndef _MPMC_CHAN_H
#define _MPMC_CHAN_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/poll.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uio.h>
#include <linux/wait.h>
#include <linux/mpmc.h>

#include "mpmc_msg.h"

struct mpmc_ring;

/* The mpmc_config.flags this module implements. */
#define MPMC_CONFIG_FLAGS	(MPMC_CONFIG_OVERWRITE | MPMC_CONFIG_THROUGHPUT | \
				 MPMC_CONFIG_RING)

/* The two directions, indexing every per-direction field of a channel. */
enum mpmc_dir {
	MPMC_SEND,
	MPMC_RECV,
	MPMC_NR_DIRS
};

/* Most entries of a batch that move under one hold of the lock. */
#define MPMC_BATCH_CHUNK	64

/* Most tasks one hold of the channel lock wakes after dropping it. */
#define MPMC_WAKE_MAX	16

/* What mpmc_unlock() must tell pollers and SIGIO owners. */
#define MPMC_EV_IN	BIT(MPMC_RECV)	/* a message was queued */
#define MPMC_EV_OUT	BIT(MPMC_SEND)	/* room appeared for a sender */
#define MPMC_EV_HUP	BIT(2)		/* shutdown took effect */

/**
 * struct mpmc_wake - what to do once the channel lock is dropped
 * @task:   tasks whose operations were completed under the lock (each
 *          pinned with get_task_struct())
 * @nr:     entries in @task
 * @events: MPMC_EV_* bits
 * @drop:   messages dropped by overwrite mode, to free
 */
struct mpmc_wake {
	struct task_struct *task[MPMC_WAKE_MAX];
	unsigned int nr;
	unsigned int events;
	struct list_head drop;
};

/**
 * struct mpmc_chan - one channel, shared by every file opened on it
 * @lock:          protects every field below up to @wake
 * @msgs:          queued messages of each priority, oldest first
 *                 (struct mpmc_msg.link)
 * @prio_map:      bit p set iff @msgs[p] is not empty
 * @nr_msgs:       number of messages on @msgs
 * @capacity:      configured maximum of @nr_msgs for admission
 * @nr_bytes:      payload bytes on @msgs
 * @max_msg_size:  configured largest message
 * @shutdown:      MPMC_SHUT_* bits in effect
 * @flags:         MPMC_CONFIG_* bits in effect
 * @ring:          the ring of a channel in ring mode (mpmc_ring.c), set
 *                 once while the channel is empty and idle, never changed
 *                 again; @msgs is then its front queue (messages older
 *                 than anything in the ring)
 * @files:         open files holding the role of each direction
 * @waiters:       callers asleep in each direction, in arrival order:
 *                 receivers waiting for a message, senders for room
 * @nr_waiters:    length of each list of @waiters
 * @total_sent:    messages accepted since creation
 * @total_received: messages delivered since creation
 * @total_dropped: messages dropped by MPMC_CONFIG_OVERWRITE since creation
 * @nr_taken:      messages taken by receivers and not yet copied out (a
 *                 fault puts them back); changed under @lock, except the
 *                 decrement after a successful copy-out
 * @wake:          what mpmc_unlock() does after dropping @lock
 * @polled:        someone has polled the channel; until then there is no
 *                 poller to wake (set once, as fs/pipe.c's poll_usage)
 * @pollers:       poll, epoll and io_uring waiters of each direction:
 *                 [MPMC_RECV] wait for EPOLLIN, [MPMC_SEND] for EPOLLOUT
 * @spin_ns:       spin budget of a blocked caller of each direction
 *                 (racy on purpose: a hint, see mpmc_spin())
 * @fasync:        SIGIO subscribers
 * @pool:          free message buffers (its own lock)
 * @ref:           one reference per open file
 * @id:            unique id, for fdinfo and tracing
 *
 * Invariants, true whenever @lock is not held and MPMC_CONFIG_THROUGHPUT
 * is not in @flags:
 *  - @waiters[MPMC_RECV] is non-empty only while @nr_msgs is 0: a sender
 *    hands its message straight to the oldest blocked receiver.
 *  - @waiters[MPMC_SEND] is non-empty only while @nr_msgs >= @capacity: a
 *    receiver that makes room moves the oldest blocked sender's message in.
 * Together they give FIFO hand-off: a caller that arrives later never
 * overtakes one that is asleep. On a rendezvous channel (@capacity 0)
 * nothing is queued (but a message put back after a faulting copy-out):
 * blocked senders keep their messages until a receiver takes one, so
 * receivers and senders are never both blocked.
 *
 * @nr_msgs, @capacity, @max_msg_size and @shutdown are also read without
 * the lock (READ_ONCE) for early answers that are rechecked under it; they
 * are written with WRITE_ONCE.
 */
struct mpmc_chan {
	spinlock_t lock;	/* see the kernel-doc above */
	struct list_head msgs[MPMC_PRIO_MAX];
	u32 prio_map;
	u32 nr_msgs;
	u32 capacity;
	u64 nr_bytes;
	u32 max_msg_size;
	u32 shutdown;
	u32 flags;
	struct mpmc_ring *ring;
	u32 files[MPMC_NR_DIRS];
	struct list_head waiters[MPMC_NR_DIRS];
	u32 nr_waiters[MPMC_NR_DIRS];
	u64 total_sent;
	u64 total_received;
	u64 total_dropped;
	atomic_t nr_taken;
	struct mpmc_wake wake;

	bool polled;
	wait_queue_head_t pollers[MPMC_NR_DIRS];
	u32 spin_ns[MPMC_NR_DIRS];
	struct fasync_struct *fasync;
	struct mpmc_pool pool;
	refcount_t ref;
	u64 id;
};

/* How a send or receive may wait. */
struct mpmc_wait_opts {
	bool nonblock;		/* O_NONBLOCK, IOCB_NOWAIT or timeout 0 */
	bool nowait_alloc;	/* IOCB_NOWAIT: do not sleep in the allocator */
	ktime_t *deadline;	/* absolute, CLOCK_MONOTONIC; NULL: forever */
};

struct mpmc_chan *mpmc_chan_create(unsigned int roles);
void mpmc_chan_attach(struct mpmc_chan *ch, unsigned int roles);
void mpmc_chan_release(struct mpmc_chan *ch, unsigned int roles);

ssize_t mpmc_chan_send(struct mpmc_chan *ch, struct iov_iter *from,
		       const struct mpmc_wait_opts *opts);
ssize_t mpmc_chan_recv(struct mpmc_chan *ch, struct iov_iter *to,
		       const struct mpmc_wait_opts *opts);

int mpmc_chan_send_batch(struct mpmc_chan *ch, const struct mpmc_msgvec *vec,
			 unsigned int n, const struct mpmc_wait_opts *opts);
int mpmc_chan_recv_batch(struct mpmc_chan *ch, struct mpmc_msgvec *vec,
			 struct mpmc_msgvec __user *uvec, unsigned int n,
			 const struct mpmc_wait_opts *opts);

int mpmc_chan_peek(struct mpmc_chan *ch, struct mpmc_msgvec *vec,
		   struct mpmc_msgvec __user *uvec, unsigned int n,
		   const struct mpmc_wait_opts *opts);

int mpmc_chan_shutdown(struct mpmc_chan *ch, unsigned long how);
void mpmc_chan_get_config(struct mpmc_chan *ch, struct mpmc_config *cfg);
int mpmc_chan_set_config(struct mpmc_chan *ch, const struct mpmc_config *cfg);
void mpmc_chan_get_stats(struct mpmc_chan *ch, struct mpmc_stats *st);
u64 mpmc_chan_id(const struct mpmc_chan *ch);
int mpmc_chan_fasync(struct mpmc_chan *ch, int fd, struct file *file, int on);
u32 mpmc_chan_next_len(struct mpmc_chan *ch);
struct mpmc_ring *mpmc_chan_ring(const struct mpmc_chan *ch);
void mpmc_chan_ring_wake(struct mpmc_chan *ch, unsigned int roles);
void mpmc_chan_ring_put_back(struct mpmc_chan *ch, struct mpmc_msg *msg);
struct mpmc_msg *mpmc_chan_msg_alloc(struct mpmc_chan *ch, u32 len);
void mpmc_chan_msg_free(struct mpmc_chan *ch, struct mpmc_msg *msg);
void mpmc_chan_get(struct mpmc_chan *ch);
void mpmc_chan_put(struct mpmc_chan *ch);
__poll_t mpmc_chan_poll(struct mpmc_chan *ch, struct file *file,
			poll_table *wait, unsigned int roles);

#endif /* _MPMC_CHAN_H */
