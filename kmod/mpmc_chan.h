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

/* Limits, set by module parameters (mpmc_main.c). */
struct mpmc_limits {
	unsigned int max_capacity;
	unsigned int max_msg_size;
	unsigned long max_channel_bytes;
};

extern struct mpmc_limits mpmc_limits;

/* Wakeups deferred until the channel lock is dropped, at most. */
#define MPMC_WAKE_BATCH	8

/**
 * struct mpmc_chan - one channel, shared by every file opened on it
 * @lock:          protects every field below up to @nr_wake
 * @msgs:          queued messages, oldest first (struct mpmc_msg.link)
 * @nr_msgs:       number of messages on @msgs
 * @nr_bytes:      payload bytes on @msgs
 * @capacity:      configured maximum of @nr_msgs for admission
 * @max_msg_size:  configured largest message
 * @shutdown:      MPMC_SHUT_* bits in effect
 * @send_files:    open files holding the send role
 * @recv_files:    open files holding the receive role
 * @recv_waiters:  receivers asleep waiting for a message, in arrival order
 * @send_waiters:  senders asleep waiting for room, in arrival order
 * @nr_recv_waiters: length of @recv_waiters
 * @nr_send_waiters: length of @send_waiters
 * @total_sent:    messages accepted since creation
 * @total_received: messages delivered since creation
 * @nr_taken:      messages taken by receivers and not yet copied out (a
 *                 fault puts them back); changed under @lock, except the
 *                 decrement after a successful copy-out
 * @wake:          tasks whose operations were completed under @lock, to
 *                 be woken once it is dropped
 * @nr_wake:       entries in @wake
 * @rd_wait:       pollers waiting for EPOLLIN (keyed wakeups only)
 * @wr_wait:       pollers waiting for EPOLLOUT (keyed wakeups only)
 * @fasync:        SIGIO subscribers
 * @spare:         one recycled inline message buffer (header and payload in
 *                 one object), taken and given with xchg()
 * @ref:           one reference per open file
 * @id:            unique id, for fdinfo and tracing
 *
 * Invariants, true whenever @lock is not held:
 *  - @recv_waiters is non-empty only while @msgs is empty: a sender hands
 *    its message straight to the oldest blocked receiver.
 *  - @send_waiters is non-empty only while @nr_msgs >= @capacity: a
 *    receiver that makes room moves the oldest blocked sender's message in.
 * Together they give FIFO hand-off: a caller that arrives later never
 * overtakes one that is asleep.
 *
 * @nr_msgs, @capacity, @max_msg_size and @shutdown are also read without
 * the lock (READ_ONCE) for early answers that are rechecked under it; they
 * are written with WRITE_ONCE.
 */
struct mpmc_chan {
	spinlock_t lock;	/* see the kernel-doc above */
	struct list_head msgs;
	u32 nr_msgs;
	u64 nr_bytes;
	u32 capacity;
	u32 max_msg_size;
	u32 shutdown;
	u32 send_files;
	u32 recv_files;
	struct list_head recv_waiters;
	struct list_head send_waiters;
	u32 nr_recv_waiters;
	u32 nr_send_waiters;
	u64 total_sent;
	u64 total_received;
	atomic_t nr_taken;
	struct task_struct *wake[MPMC_WAKE_BATCH];
	unsigned int nr_wake;

	wait_queue_head_t rd_wait;
	wait_queue_head_t wr_wait;
	struct fasync_struct *fasync;
	struct mpmc_msg *spare;
	refcount_t ref;
	u64 id;
};

/* How a send or receive may wait. */
struct mpmc_wait_opts {
	bool nonblock;		/* O_NONBLOCK, IOCB_NOWAIT or timeout 0 */
	bool nowait_alloc;	/* IOCB_NOWAIT: do not sleep in the allocator */
	bool has_deadline;	/* @deadline is valid; else wait forever */
	ktime_t deadline;	/* absolute, CLOCK_MONOTONIC */
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
			 unsigned int n, const struct mpmc_wait_opts *opts);

int mpmc_chan_shutdown(struct mpmc_chan *ch, unsigned int how);
void mpmc_chan_get_config(struct mpmc_chan *ch, struct mpmc_config *cfg);
int mpmc_chan_set_config(struct mpmc_chan *ch, const struct mpmc_config *cfg);
void mpmc_chan_get_stats(struct mpmc_chan *ch, struct mpmc_stats *st);
u32 mpmc_chan_next_len(struct mpmc_chan *ch);
__poll_t mpmc_chan_poll(struct mpmc_chan *ch, struct file *file,
			poll_table *wait, unsigned int roles);

#endif /* _MPMC_CHAN_H */
