// SPDX-License-Identifier: GPL-2.0
/*
 * mpmc channel core: the message queue, FIFO hand-off to blocked callers,
 * configuration limits and readiness. The file operations that expose a
 * channel live in mpmc_main.c.
 *
 * Locking: ch->lock (a spinlock, never taken from interrupt context)
 * protects the queue, both waiter lists, the configuration and the
 * counters. Nothing that can sleep or fault runs under it: a sender copies
 * its message from user memory into a private buffer before taking the
 * lock, and a receiver unlinks a message under the lock and copies it out
 * after dropping it.
 *
 * Sleeping: a caller that must wait puts a struct mpmc_waiter (on its own
 * stack) at the tail of ch->recv_waiters or ch->send_waiters and sleeps
 * until a peer finishes the operation for it:
 *  - a sender that finds a blocked receiver hands it the message;
 *  - a receiver that makes room moves the oldest blocked sender's message
 *    into the queue;
 *  - shutdown completes every waiter with EOF or EPIPE.
 * The peer stores the result in waiter->state with release semantics and
 * wakes the task after dropping the lock (mpmc_unlock()), so the woken task
 * never finds the lock still held by its waker. The sleeper reads the state
 * with acquire semantics and, once it is no longer MPMC_WAITING, never
 * touches the lock again. As in ipc/mqueue.c, the waker pins the task
 * first, because the waiter's stack frame may vanish the moment the state
 * is stored:
 *
 *   waker                                sleeper
 *   -----                                -------
 *   spin_lock(&ch->lock)
 *   list_del(&w->link)
 *   task = w->task; get_task_struct()
 *   w->msg = msg
 *   smp_store_release(&w->state, 0)
 *                                        smp_load_acquire(&w->state) == 0
 *                                        use w->msg; return (frame gone)
 *   spin_unlock(&ch->lock)
 *   wake_up_process(task)                (harmless: already running)
 *   put_task_struct(task)
 *
 * A sleeper that gives up (signal, timeout) takes ch->lock and unlinks
 * itself only if its state is still MPMC_WAITING; otherwise the operation
 * completed first and the caller reports success. Because a message is
 * handed to one chosen waiter under the lock, an abandoned wait never
 * strands a message and never needs to pass a wakeup on.
 *
 * Pollers (poll, epoll, io_uring) sleep on ch->rd_wait and ch->wr_wait and
 * are woken after ch->lock is dropped, with a single-direction key, for
 * what is left once blocked callers have been served.
 */

#include <linux/atomic.h>
#include <linux/hrtimer.h>
#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>

#include "mpmc_chan.h"

#define CREATE_TRACE_POINTS
#include "mpmc_trace.h"

/* waiter->state while asleep; any other value is the final result. */
#define MPMC_WAITING	1

/**
 * struct mpmc_msg - one queued message
 * @link: entry in mpmc_chan.msgs
 * @len:  payload length, 1..max_msg_size
 * @size: room for the payload: for an inline message, what the kmalloc
 *        object holds after the header (it may be more than @len); for
 *        an external one, the length it was allocated for
 * @queued: queue length right after a receiver took it, for tracing
 * @external: the payload is in its own allocation, at @payload; else it
 *        follows the header, at @data
 * @payload: external payload (kvmalloc)
 * @data: inline payload
 *
 * A message whose header and payload fit in MPMC_INLINE_MAX bytes is one
 * kmalloc object. A larger one would take the next power of two (a 4096
 * byte payload a kmalloc-8k object, 65536 bytes an order-5 block): its
 * payload is allocated apart, with kvmalloc(@len), and its header alone.
 * Only mpmc_msg_data() decides where the payload is. @external sits in
 * the hole after @queued, so the header in front of an inline payload is
 * still MPMC_MSG_HDR bytes (32 on 64-bit); @payload shares its place with
 * @data and counts only in sizeof(), what an external header takes.
 */
struct mpmc_msg {
	struct list_head link;
	u32 len;
	u32 size;
	u32 queued;
	bool external;
	union {
		u8 *payload;
		DECLARE_FLEX_ARRAY(u8, data);
	} __aligned(8);
};

/* Bytes in front of an inline payload. */
#define MPMC_MSG_HDR	offsetof(struct mpmc_msg, data)
static_assert(sizeof(struct list_head) + 4 * sizeof(u32) == MPMC_MSG_HDR);

/*
 * Messages whose header and payload fit in this many bytes are allocated
 * as one object, and recycled through ch->spare.
 */
#define MPMC_INLINE_MAX	PAGE_SIZE

/**
 * struct mpmc_waiter - a caller asleep in send or receive
 * @link:  entry in mpmc_chan.recv_waiters or mpmc_chan.send_waiters
 * @task:  the sleeping task
 * @msg:   send: the message to enqueue; receive: the message handed over
 *         (NULL on end of file)
 * @room:  receive: size of the caller's buffer
 * @state: MPMC_WAITING, then 0 or a negative errno
 * @dir:   MPMC_TRACE_SEND or MPMC_TRACE_RECV
 * @queued: messages queued when the operation completed, for tracing
 */
struct mpmc_waiter {
	struct list_head link;
	struct task_struct *task;
	struct mpmc_msg *msg;
	size_t room;
	int state;
	int dir;
	u32 queued;
};

static atomic64_t mpmc_next_id = ATOMIC64_INIT(0);

/* The payload of @msg, inline or not: the one way to reach it. */
static u8 *mpmc_msg_data(struct mpmc_msg *msg)
{
	return msg->external ? msg->payload : msg->data;
}

/* Free @msg (may be NULL) and its payload. */
static void mpmc_msg_destroy(struct mpmc_msg *msg)
{
	if (msg && msg->external)
		kvfree(msg->payload);
	kfree(msg);
}

/* A message too big to be inline: header and payload apart. */
static struct mpmc_msg *mpmc_msg_alloc_external(size_t len, gfp_t gfp)
{
	struct mpmc_msg *msg = kmalloc(sizeof(*msg), gfp);

	if (!msg)
		return NULL;
	msg->payload = kvmalloc(len, gfp);
	if (!msg->payload) {
		kfree(msg);
		return NULL;
	}
	msg->external = true;
	msg->size = len;
	return msg;
}

/*
 * A message with room for @len bytes: ch->spare if it is big enough, else
 * a new one, charged to the caller's memory cgroup. An inline message's
 * allocation is rounded up to its kmalloc size, so that the spare can
 * take any later message that would fit in the same object.
 */
static struct mpmc_msg *mpmc_msg_alloc(struct mpmc_chan *ch, size_t len,
				       bool nowait)
{
	gfp_t gfp = nowait ? GFP_NOWAIT | __GFP_ACCOUNT : GFP_KERNEL_ACCOUNT;
	size_t size = size_add(MPMC_MSG_HDR, len);
	struct mpmc_msg *msg;

	gfp |= __GFP_NOWARN;
	/* Never fits the spare, which is inline: leave it for the next. */
	if (size > MPMC_INLINE_MAX)
		return mpmc_msg_alloc_external(len, gfp);

	msg = xchg(&ch->spare, NULL);
	if (msg) {
		if (msg->size >= len)
			return msg;
		mpmc_msg_destroy(msg);
	}
	size = kmalloc_size_roundup(size);
	msg = kmalloc(size, gfp);
	if (!msg)
		return NULL;
	msg->external = false;
	msg->size = size - MPMC_MSG_HDR;
	return msg;
}

/* Done with @msg: keep it as ch->spare if it is inline, else free it. */
static void mpmc_msg_free(struct mpmc_chan *ch, struct mpmc_msg *msg)
{
	if (!msg->external)
		msg = xchg(&ch->spare, msg);
	mpmc_msg_destroy(msg);
}

static void mpmc_msg_free_list(struct mpmc_chan *ch, struct list_head *list)
{
	struct mpmc_msg *msg, *tmp;

	list_for_each_entry_safe(msg, tmp, list, link)
		mpmc_msg_free(ch, msg);
}

static void mpmc_enqueue(struct mpmc_chan *ch, struct mpmc_msg *msg,
			 bool at_head)
{
	lockdep_assert_held(&ch->lock);
	if (at_head)
		list_add(&msg->link, &ch->msgs);
	else
		list_add_tail(&msg->link, &ch->msgs);
	WRITE_ONCE(ch->nr_msgs, ch->nr_msgs + 1);
	ch->nr_bytes += msg->len;
}

static struct mpmc_msg *mpmc_dequeue(struct mpmc_chan *ch)
{
	struct mpmc_msg *msg = list_first_entry(&ch->msgs, struct mpmc_msg,
						 link);

	lockdep_assert_held(&ch->lock);
	list_del(&msg->link);
	WRITE_ONCE(ch->nr_msgs, ch->nr_msgs - 1);
	ch->nr_bytes -= msg->len;
	return msg;
}

/*
 * Finish @w's operation with @state; its task is woken by mpmc_unlock()
 * (or here, if too many wakeups are pending). See the top comment.
 */
static void mpmc_waiter_complete(struct mpmc_chan *ch, struct mpmc_waiter *w,
				 struct mpmc_msg *msg, int state)
{
	struct task_struct *task = w->task;

	lockdep_assert_held(&ch->lock);
	trace_mpmc_wake(ch->id, w->dir, task->pid, state);
	list_del(&w->link);
	get_task_struct(task);
	w->msg = msg;
	w->queued = ch->nr_msgs;
	/* Publish w->msg before the state; pairs with mpmc_wait(). */
	smp_store_release(&w->state, state);
	if (ch->nr_wake < ARRAY_SIZE(ch->wake)) {
		ch->wake[ch->nr_wake++] = task;
		return;
	}
	wake_up_process(task);
	put_task_struct(task);
}

/*
 * Drop ch->lock, then wake the tasks whose operations were completed
 * under it: a task woken while the lock is held would only spin on it.
 */
static void mpmc_unlock(struct mpmc_chan *ch)
	__releases(&ch->lock)
{
	struct task_struct *wake[MPMC_WAKE_BATCH];
	unsigned int i, n = ch->nr_wake;

	for (i = 0; i < n; i++)
		wake[i] = ch->wake[i];
	ch->nr_wake = 0;
	spin_unlock(&ch->lock);
	for (i = 0; i < n; i++) {
		wake_up_process(wake[i]);
		put_task_struct(wake[i]);
	}
}

/* Would a send complete now without waiting? */
static bool mpmc_can_send(const struct mpmc_chan *ch)
{
	lockdep_assert_held(&ch->lock);
	if (!list_empty(&ch->send_waiters))
		return false;
	return ch->nr_msgs < ch->capacity || !list_empty(&ch->recv_waiters);
}

/*
 * A receiver has taken @msg out of the channel; until it has copied it out
 * (or put it back) the message counts in ch->nr_taken.
 */
static void mpmc_mark_taken(struct mpmc_chan *ch, struct mpmc_msg *msg)
{
	lockdep_assert_held(&ch->lock);
	ch->total_received++;
	msg->queued = ch->nr_msgs;
	atomic_inc(&ch->nr_taken);
}

/*
 * Give @msg to the oldest blocked receiver, or queue it (at the head for a
 * message put back after a faulting read). Blocked receivers whose buffer
 * is too small for it are completed with EMSGSIZE on the way, so the
 * message goes to the next receiver in order. Returns true if the message
 * was queued, i.e. pollers have something new to see.
 */
static bool mpmc_deliver(struct mpmc_chan *ch, struct mpmc_msg *msg,
			 bool at_head)
{
	struct mpmc_waiter *w, *tmp;

	lockdep_assert_held(&ch->lock);
	list_for_each_entry_safe(w, tmp, &ch->recv_waiters, link) {
		ch->nr_recv_waiters--;
		if (w->room < msg->len) {
			mpmc_waiter_complete(ch, w, NULL, -EMSGSIZE);
			continue;
		}
		mpmc_mark_taken(ch, msg);
		mpmc_waiter_complete(ch, w, msg, 0);
		return false;
	}
	mpmc_enqueue(ch, msg, at_head);
	return true;
}

/*
 * Move blocked senders' messages in, oldest first, while there is room.
 * Returns true if any message was queued.
 */
static bool mpmc_admit_senders(struct mpmc_chan *ch)
{
	struct mpmc_waiter *w;
	bool queued = false;

	lockdep_assert_held(&ch->lock);
	while (ch->nr_msgs < ch->capacity && !list_empty(&ch->send_waiters)) {
		w = list_first_entry(&ch->send_waiters, struct mpmc_waiter,
				     link);
		ch->nr_send_waiters--;
		ch->total_sent++;
		queued |= mpmc_deliver(ch, w->msg, false);
		mpmc_waiter_complete(ch, w, NULL, 0);
	}
	return queued;
}

static void mpmc_notify_readable(struct mpmc_chan *ch)
{
	if (wq_has_sleeper(&ch->rd_wait))
		wake_up_interruptible_sync_poll(&ch->rd_wait,
						EPOLLIN | EPOLLRDNORM);
	kill_fasync(&ch->fasync, SIGIO, POLL_IN);
}

static void mpmc_notify_writable(struct mpmc_chan *ch)
{
	if (wq_has_sleeper(&ch->wr_wait))
		wake_up_interruptible_sync_poll(&ch->wr_wait,
						EPOLLOUT | EPOLLWRNORM);
	kill_fasync(&ch->fasync, SIGIO, POLL_OUT);
}

/* Shutdown is a level state: wake every poller, exclusive or not. */
static void mpmc_notify_shutdown(struct mpmc_chan *ch)
{
	__wake_up(&ch->rd_wait, TASK_INTERRUPTIBLE, 0,
		  poll_to_key(EPOLLIN | EPOLLRDNORM | EPOLLHUP));
	__wake_up(&ch->wr_wait, TASK_INTERRUPTIBLE, 0,
		  poll_to_key(EPOLLOUT | EPOLLWRNORM | EPOLLERR));
	kill_fasync(&ch->fasync, SIGIO, POLL_HUP);
}

/*
 * Sleep until @w is completed, a signal arrives or the deadline passes.
 * Returns the final state: 0 or a negative errno (-ERESTARTSYS on a signal,
 * -ETIMEDOUT on expiry) when the operation did not happen. See
 * mpmc_block().
 */
static int mpmc_wait(struct mpmc_chan *ch, struct mpmc_waiter *w,
		     const struct mpmc_wait_opts *opts, u32 *nr_waiters)
{
	ktime_t deadline = opts->deadline;
	int state, ret = 0;

	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		/* Pairs with mpmc_waiter_complete(): w->msg is valid. */
		state = smp_load_acquire(&w->state);
		if (state != MPMC_WAITING) {
			__set_current_state(TASK_RUNNING);
			return state;
		}
		if (signal_pending(current)) {
			ret = -ERESTARTSYS;
			break;
		}
		if (!opts->has_deadline) {
			schedule();
		} else if (!schedule_hrtimeout_range(&deadline,
						      current->timer_slack_ns,
						      HRTIMER_MODE_ABS)) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	__set_current_state(TASK_RUNNING);

	spin_lock(&ch->lock);
	state = w->state;
	if (state == MPMC_WAITING) {
		trace_mpmc_wake(ch->id, w->dir, current->pid, ret);
		list_del(&w->link);
		(*nr_waiters)--;
		state = ret;
	}
	mpmc_unlock(ch);
	return state;
}

/*
 * Queue @w (its @msg or @room set by the caller) at the tail of the
 * waiters of direction @dir, drop ch->lock and sleep as @opts allow.
 * Returns as mpmc_wait().
 */
static int mpmc_block(struct mpmc_chan *ch, struct mpmc_waiter *w, int dir,
		      const struct mpmc_wait_opts *opts)
	__releases(&ch->lock)
{
	bool send = dir == MPMC_TRACE_SEND;
	u32 *nr = send ? &ch->nr_send_waiters : &ch->nr_recv_waiters;

	lockdep_assert_held(&ch->lock);
	w->task = current;
	w->state = MPMC_WAITING;
	w->dir = dir;
	list_add_tail(&w->link, send ? &ch->send_waiters : &ch->recv_waiters);
	(*nr)++;
	trace_mpmc_block(ch->id, dir, *nr);
	mpmc_unlock(ch);
	return mpmc_wait(ch, w, opts, nr);
}

/* A cheap early answer for a full channel, rechecked under the lock. */
static bool mpmc_looks_full(struct mpmc_chan *ch)
{
	return READ_ONCE(ch->nr_msgs) >= READ_ONCE(ch->capacity) &&
	       list_empty_careful(&ch->recv_waiters);
}

/*
 * The checks a send can make before copying a message of @len bytes in,
 * without the lock; mpmc_send_msg() makes them again under it.
 */
static int mpmc_send_precheck(struct mpmc_chan *ch, size_t len,
			      const struct mpmc_wait_opts *opts)
{
	if (len > READ_ONCE(ch->max_msg_size))
		return -EMSGSIZE;
	if (READ_ONCE(ch->shutdown))
		return -EPIPE;
	if (opts->nonblock && mpmc_looks_full(ch))
		return -EAGAIN;
	return 0;
}

/*
 * Enqueue or hand off @msg, waiting for room as @opts allow. *@queued is
 * the queue length right after, for tracing.
 */
static int mpmc_send_msg(struct mpmc_chan *ch, struct mpmc_msg *msg,
			 const struct mpmc_wait_opts *opts, u32 *queued)
{
	struct mpmc_waiter w;
	bool visible;
	int ret;

	spin_lock(&ch->lock);
	if (ch->shutdown) {
		ret = -EPIPE;
		goto unlock;
	}
	if (msg->len > ch->max_msg_size) {
		ret = -EMSGSIZE;
		goto unlock;
	}
	if (mpmc_can_send(ch)) {
		ch->total_sent++;
		visible = mpmc_deliver(ch, msg, false);
		*queued = ch->nr_msgs;
		mpmc_unlock(ch);
		if (visible)
			mpmc_notify_readable(ch);
		return 0;
	}
	if (opts->nonblock) {
		ret = -EAGAIN;
		goto unlock;
	}
	w.msg = msg;
	/* A receiver that admits us also notifies the pollers. */
	ret = mpmc_block(ch, &w, MPMC_TRACE_SEND, opts);
	*queued = w.queued;
	return ret;

unlock:
	mpmc_unlock(ch);
	return ret;
}

/**
 * mpmc_chan_send - send the contents of @from as one message
 * @ch:   the channel
 * @from: the message, 1..max_msg_size bytes (the caller handles 0)
 * @opts: whether and how long to wait for room
 *
 * The message is copied in before the channel is locked, so a bad user
 * pointer fails with -EFAULT and changes nothing.
 *
 * Return: the message length, or -EMSGSIZE, -EFAULT, -EPIPE, -EAGAIN,
 * -ENOMEM, -ERESTARTSYS or -ETIMEDOUT with nothing sent.
 */
ssize_t mpmc_chan_send(struct mpmc_chan *ch, struct iov_iter *from,
		       const struct mpmc_wait_opts *opts)
{
	size_t len = iov_iter_count(from);
	struct mpmc_msg *msg;
	u32 queued;
	int ret;

	ret = mpmc_send_precheck(ch, len, opts);
	if (ret)
		return ret;
	msg = mpmc_msg_alloc(ch, len, opts->nowait_alloc);
	if (!msg)
		return opts->nowait_alloc ? -EAGAIN : -ENOMEM;
	if (!copy_from_iter_full(mpmc_msg_data(msg), len, from)) {
		mpmc_msg_free(ch, msg);
		return -EFAULT;
	}
	msg->len = len;
	ret = mpmc_send_msg(ch, msg, opts, &queued);
	if (ret) {
		mpmc_msg_free(ch, msg);
		return ret;
	}
	trace_mpmc_send(ch->id, len, queued);
	return len;
}

/*
 * Take the next message for a caller with a @room byte buffer: from the
 * queue, or by waiting for a sender to hand one over. On success *msgp is
 * the message, or NULL at end of file.
 */
static int mpmc_take(struct mpmc_chan *ch, size_t room,
		     const struct mpmc_wait_opts *opts, struct mpmc_msg **msgp)
{
	struct mpmc_waiter w;
	struct mpmc_msg *msg;
	bool admitted, has_room;
	int ret;

	spin_lock(&ch->lock);
	if (ch->nr_msgs) {
		msg = list_first_entry(&ch->msgs, struct mpmc_msg, link);
		if (msg->len > room) {
			mpmc_unlock(ch);
			return -EMSGSIZE;
		}
		mpmc_dequeue(ch);
		admitted = mpmc_admit_senders(ch);
		has_room = mpmc_can_send(ch);
		mpmc_mark_taken(ch, msg);
		mpmc_unlock(ch);
		if (admitted)
			mpmc_notify_readable(ch);
		if (has_room)
			mpmc_notify_writable(ch);
		*msgp = msg;
		return 0;
	}
	if (ch->shutdown) {
		mpmc_unlock(ch);
		*msgp = NULL;
		return 0;
	}
	if (opts->nonblock) {
		mpmc_unlock(ch);
		return -EAGAIN;
	}
	w.msg = NULL;
	w.room = room;
	ret = mpmc_block(ch, &w, MPMC_TRACE_RECV, opts);
	if (!ret)
		*msgp = w.msg;
	return ret;
}

/* Put back a message whose copy-out faulted, ahead of everything else. */
static void mpmc_put_back(struct mpmc_chan *ch, struct mpmc_msg *msg)
{
	bool discard, queued = false;

	spin_lock(&ch->lock);
	ch->total_received--;
	atomic_dec(&ch->nr_taken);
	/* After SHUT_RD the queue is discarded, and so is this message. */
	discard = ch->shutdown & MPMC_SHUT_RD;
	if (!discard)
		queued = mpmc_deliver(ch, msg, true);
	mpmc_unlock(ch);
	if (discard)
		mpmc_msg_free(ch, msg);
	if (queued)
		mpmc_notify_readable(ch);
}

/**
 * mpmc_chan_recv - receive one whole message into @to
 * @ch:   the channel
 * @to:   the caller's buffer (the caller handles a 0-byte buffer)
 * @opts: whether and how long to wait for a message
 *
 * A buffer smaller than the next message fails with -EMSGSIZE and leaves
 * the message queued. A copy-out that faults puts the message back at the
 * head of the queue and fails with -EFAULT.
 *
 * Return: the message length, 0 at end of file, or -EMSGSIZE, -EFAULT,
 * -EAGAIN, -ERESTARTSYS or -ETIMEDOUT with nothing received.
 */
ssize_t mpmc_chan_recv(struct mpmc_chan *ch, struct iov_iter *to,
		       const struct mpmc_wait_opts *opts)
{
	struct mpmc_msg *msg = NULL;
	ssize_t ret;

	ret = mpmc_take(ch, iov_iter_count(to), opts, &msg);
	if (ret || !msg)
		return ret;
	ret = msg->len;
	if (copy_to_iter(mpmc_msg_data(msg), msg->len, to) != msg->len) {
		mpmc_put_back(ch, msg);
		return -EFAULT;
	}
	atomic_dec(&ch->nr_taken);
	trace_mpmc_recv(ch->id, ret, msg->queued);
	mpmc_msg_free(ch, msg);
	return ret;
}

/* Copy in the messages of @vec, stopping at the first that cannot be. */
static int mpmc_build_batch(struct mpmc_chan *ch, const struct mpmc_msgvec *vec,
			    unsigned int n, struct list_head *msgs)
{
	u32 max = READ_ONCE(ch->max_msg_size);
	struct mpmc_msg *msg;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (vec[i].len > max)
			return -EMSGSIZE;
		msg = mpmc_msg_alloc(ch, vec[i].len, false);
		if (!msg)
			return -ENOMEM;
		if (copy_from_user(mpmc_msg_data(msg),
				   u64_to_user_ptr(vec[i].buf), vec[i].len)) {
			mpmc_msg_free(ch, msg);
			return -EFAULT;
		}
		msg->len = vec[i].len;
		list_add_tail(&msg->link, msgs);
	}
	return 0;
}

/*
 * Move messages from @msgs while that needs no waiting, under one hold of
 * the lock. Returns how many moved.
 */
static unsigned int mpmc_send_more(struct mpmc_chan *ch, struct list_head *msgs)
{
	struct mpmc_msg *msg, *tmp;
	unsigned int sent = 0;
	bool visible = false;

	spin_lock(&ch->lock);
	list_for_each_entry_safe(msg, tmp, msgs, link) {
		u32 len = msg->len;

		if (ch->shutdown || len > ch->max_msg_size ||
		    !mpmc_can_send(ch))
			break;
		list_del(&msg->link);
		ch->total_sent++;
		/* Once delivered, a receiver may free @msg at any time. */
		visible |= mpmc_deliver(ch, msg, false);
		trace_mpmc_send(ch->id, len, ch->nr_msgs);
		sent++;
	}
	mpmc_unlock(ch);
	if (visible)
		mpmc_notify_readable(ch);
	return sent;
}

/**
 * mpmc_chan_send_batch - send the messages of a batch
 * @ch:   the channel
 * @vec:  @n entries (a kernel copy), each 1..max_msg_size bytes long (the
 *        caller has checked that lengths are not 0)
 * @n:    number of entries
 * @opts: how the first message may wait; the others never wait
 *
 * Every message is copied in first; the first is then sent as by
 * mpmc_chan_send(), and the rest under one hold of the lock for as long as
 * they can move without waiting. A message that cannot be copied in (too
 * big, bad pointer, no memory) ends the batch before it.
 *
 * Return: the number of messages sent (at least 1), or a negative errno
 * as for mpmc_chan_send() with nothing sent.
 */
int mpmc_chan_send_batch(struct mpmc_chan *ch, const struct mpmc_msgvec *vec,
			 unsigned int n, const struct mpmc_wait_opts *opts)
{
	struct mpmc_msg *msg, *tmp;
	LIST_HEAD(msgs);
	u32 len, queued;
	int ret;

	ret = mpmc_send_precheck(ch, vec[0].len, opts);
	if (ret)
		return ret;
	ret = mpmc_build_batch(ch, vec, n, &msgs);
	if (list_empty(&msgs))
		return ret;

	msg = list_first_entry(&msgs, struct mpmc_msg, link);
	list_del(&msg->link);
	len = msg->len;
	ret = mpmc_send_msg(ch, msg, opts, &queued);
	if (ret) {
		mpmc_msg_free(ch, msg);
	} else {
		/* @msg is the channel's now: a receiver may have freed it. */
		trace_mpmc_send(ch->id, len, queued);
		ret = 1;
		if (!list_empty(&msgs))
			ret += mpmc_send_more(ch, &msgs);
	}
	list_for_each_entry_safe(msg, tmp, &msgs, link)
		mpmc_msg_free(ch, msg);
	return ret;
}

/*
 * Take more queued messages for entries @vec[1..n-1], under one hold of
 * the lock, stopping at the first that does not fit its entry.
 */
static void mpmc_take_more(struct mpmc_chan *ch, const struct mpmc_msgvec *vec,
			   unsigned int n, struct list_head *taken)
{
	bool admitted = false, has_room;
	struct mpmc_msg *msg;
	unsigned int i;

	spin_lock(&ch->lock);
	for (i = 1; i < n && ch->nr_msgs; i++) {
		msg = list_first_entry(&ch->msgs, struct mpmc_msg, link);
		if (msg->len > vec[i].len)
			break;
		mpmc_dequeue(ch);
		/* Room made is owed to blocked senders, at once. */
		admitted |= mpmc_admit_senders(ch);
		mpmc_mark_taken(ch, msg);
		list_add_tail(&msg->link, taken);
	}
	has_room = i > 1 && mpmc_can_send(ch);
	mpmc_unlock(ch);
	if (admitted)
		mpmc_notify_readable(ch);
	if (has_room)
		mpmc_notify_writable(ch);
}

/**
 * mpmc_chan_recv_batch - receive up to @n messages into the buffers of @vec
 * @ch:   the channel
 * @vec:  @n entries (a kernel copy): in, buffer and size; out, for each
 *        message received, its length
 * @n:    number of entries
 * @opts: how the first message may wait; the others never wait
 *
 * The first message is taken as by mpmc_chan_recv(), the rest under one
 * hold of the lock while the next queued message fits the next entry. A
 * copy-out that faults puts that message and the ones after it back at
 * the head of the queue, in order.
 *
 * Return: the number of messages received, 0 at end of file, or a
 * negative errno as for mpmc_chan_recv() with nothing received.
 */
int mpmc_chan_recv_batch(struct mpmc_chan *ch, struct mpmc_msgvec *vec,
			 unsigned int n, const struct mpmc_wait_opts *opts)
{
	struct mpmc_msg *msg = NULL, *tmp;
	LIST_HEAD(taken);
	unsigned int i = 0;
	int ret;

	ret = mpmc_take(ch, vec[0].len, opts, &msg);
	if (ret || !msg)
		return ret;
	list_add_tail(&msg->link, &taken);
	if (n > 1)
		mpmc_take_more(ch, vec, n, &taken);

	list_for_each_entry_safe(msg, tmp, &taken, link) {
		if (copy_to_user(u64_to_user_ptr(vec[i].buf),
				 mpmc_msg_data(msg), msg->len))
			break;
		vec[i++].len = msg->len;
		list_del(&msg->link);
		atomic_dec(&ch->nr_taken);
		trace_mpmc_recv(ch->id, msg->len, msg->queued);
		mpmc_msg_free(ch, msg);
	}
	list_for_each_entry_safe_reverse(msg, tmp, &taken, link) {
		list_del(&msg->link);
		mpmc_put_back(ch, msg);
	}
	return i ? i : -EFAULT;
}

/*
 * Apply shutdown bits @how (not yet in effect): complete every blocked
 * sender with EPIPE and every blocked receiver with end of file; SHUT_RD
 * also moves the queue to @discard, for freeing after the lock is dropped.
 */
static void mpmc_shutdown_locked(struct mpmc_chan *ch, unsigned int how,
				 struct list_head *discard)
{
	struct mpmc_waiter *w, *tmp;

	lockdep_assert_held(&ch->lock);
	WRITE_ONCE(ch->shutdown, ch->shutdown | how);
	trace_mpmc_shutdown(ch->id, how, ch->shutdown,
			    how & MPMC_SHUT_RD ? ch->nr_msgs : 0);
	if (how & MPMC_SHUT_RD) {
		list_splice_init(&ch->msgs, discard);
		WRITE_ONCE(ch->nr_msgs, 0);
		ch->nr_bytes = 0;
	}
	list_for_each_entry_safe(w, tmp, &ch->send_waiters, link)
		mpmc_waiter_complete(ch, w, NULL, -EPIPE);
	ch->nr_send_waiters = 0;
	list_for_each_entry_safe(w, tmp, &ch->recv_waiters, link)
		mpmc_waiter_complete(ch, w, NULL, 0);
	ch->nr_recv_waiters = 0;
}

/**
 * mpmc_chan_shutdown - shut down one or both directions
 * @ch:  the channel
 * @how: MPMC_SHUT_RD, MPMC_SHUT_WR or MPMC_SHUT_RDWR
 *
 * Repeating a shutdown is a no-op.
 *
 * Return: 0, or -EINVAL for a bad @how.
 */
int mpmc_chan_shutdown(struct mpmc_chan *ch, unsigned int how)
{
	LIST_HEAD(discard);

	if (!how || how & ~MPMC_SHUT_RDWR)
		return -EINVAL;
	spin_lock(&ch->lock);
	how &= ~ch->shutdown;
	if (how)
		mpmc_shutdown_locked(ch, how, &discard);
	mpmc_unlock(ch);
	if (how) {
		mpmc_msg_free_list(ch, &discard);
		mpmc_notify_shutdown(ch);
	}
	return 0;
}

/**
 * mpmc_chan_create - create a channel with the default configuration
 * @roles: MPMC_ROLE_* bits of the first file; a missing role counts as
 *         already shut down, since no file can ever gain it
 *
 * Return: the channel, holding one reference for the first file, or NULL.
 */
struct mpmc_chan *mpmc_chan_create(unsigned int roles)
{
	unsigned int cap = min(READ_ONCE(mpmc_limits.max_capacity),
			       MPMC_DEFAULT_CAPACITY);
	unsigned int size = min(READ_ONCE(mpmc_limits.max_msg_size),
				MPMC_DEFAULT_MSG_SIZE);
	unsigned long bytes = READ_ONCE(mpmc_limits.max_channel_bytes);
	struct mpmc_chan *ch;

	ch = kzalloc(sizeof(*ch), GFP_KERNEL_ACCOUNT);
	if (!ch)
		return NULL;
	spin_lock_init(&ch->lock);
	INIT_LIST_HEAD(&ch->msgs);
	INIT_LIST_HEAD(&ch->recv_waiters);
	INIT_LIST_HEAD(&ch->send_waiters);
	init_waitqueue_head(&ch->rd_wait);
	init_waitqueue_head(&ch->wr_wait);
	refcount_set(&ch->ref, 1);
	ch->id = atomic64_inc_return(&mpmc_next_id);

	/* Stay within limits an administrator may have lowered. */
	size = max(size, 1U);
	if ((u64)cap * size > bytes)
		cap = max_t(u64, bytes / size, 1);
	ch->capacity = max(cap, 1U);
	ch->max_msg_size = size;

	if (roles & MPMC_ROLE_SEND)
		ch->send_files = 1;
	else
		ch->shutdown |= MPMC_SHUT_WR;
	if (roles & MPMC_ROLE_RECV)
		ch->recv_files = 1;
	else
		ch->shutdown |= MPMC_SHUT_RD;
	return ch;
}

/**
 * mpmc_chan_attach - account a new file with @roles on @ch
 * @ch:    the channel
 * @roles: MPMC_ROLE_* bits of the new file
 *
 * Takes a reference, dropped by mpmc_chan_release().
 */
void mpmc_chan_attach(struct mpmc_chan *ch, unsigned int roles)
{
	refcount_inc(&ch->ref);
	spin_lock(&ch->lock);
	if (roles & MPMC_ROLE_SEND)
		ch->send_files++;
	if (roles & MPMC_ROLE_RECV)
		ch->recv_files++;
	mpmc_unlock(ch);
}

static void mpmc_chan_free(struct mpmc_chan *ch)
{
	mpmc_msg_free_list(ch, &ch->msgs);
	mpmc_msg_destroy(ch->spare);
	kfree(ch);
}

/**
 * mpmc_chan_release - a file with @roles on @ch is gone
 * @ch:    the channel
 * @roles: MPMC_ROLE_* bits of the file
 *
 * The last sender leaving acts as MPMC_SHUT_WR, the last receiver as
 * MPMC_SHUT_RD. Drops the file's reference; the last one frees @ch.
 */
void mpmc_chan_release(struct mpmc_chan *ch, unsigned int roles)
{
	unsigned int how = 0;
	LIST_HEAD(discard);

	spin_lock(&ch->lock);
	if ((roles & MPMC_ROLE_SEND) && !--ch->send_files)
		how |= MPMC_SHUT_WR;
	if ((roles & MPMC_ROLE_RECV) && !--ch->recv_files)
		how |= MPMC_SHUT_RD;
	how &= ~ch->shutdown;
	if (how)
		mpmc_shutdown_locked(ch, how, &discard);
	mpmc_unlock(ch);
	if (how) {
		mpmc_msg_free_list(ch, &discard);
		mpmc_notify_shutdown(ch);
	}
	if (refcount_dec_and_test(&ch->ref))
		mpmc_chan_free(ch);
}

/**
 * mpmc_chan_get_config - read the configuration of @ch
 * @ch:  the channel
 * @cfg: filled in, reserved fields zeroed
 */
void mpmc_chan_get_config(struct mpmc_chan *ch, struct mpmc_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	spin_lock(&ch->lock);
	cfg->capacity = ch->capacity;
	cfg->max_msg_size = ch->max_msg_size;
	mpmc_unlock(ch);
}

static int mpmc_config_check(const struct mpmc_config *cfg)
{
	int i;

	if (cfg->flags)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(cfg->reserved); i++)
		if (cfg->reserved[i])
			return -EINVAL;
	if (!cfg->capacity ||
	    cfg->capacity > READ_ONCE(mpmc_limits.max_capacity))
		return -EINVAL;
	if (!cfg->max_msg_size ||
	    cfg->max_msg_size > READ_ONCE(mpmc_limits.max_msg_size))
		return -EINVAL;
	if ((u64)cfg->capacity * cfg->max_msg_size >
	    READ_ONCE(mpmc_limits.max_channel_bytes))
		return -EINVAL;
	return 0;
}

/**
 * mpmc_chan_set_config - change the configuration of @ch
 * @ch:  the channel
 * @cfg: the new configuration
 *
 * Capacity may change at any time but not below the queued count; growing
 * it admits blocked senders. max_msg_size may change only while nothing is
 * queued. Either all of @cfg is applied or nothing is.
 *
 * Return: 0, -EINVAL for a value out of range, or -EBUSY.
 */
int mpmc_chan_set_config(struct mpmc_chan *ch, const struct mpmc_config *cfg)
{
	bool admitted = false, has_room = false;
	int ret;

	ret = mpmc_config_check(cfg);
	if (ret)
		return ret;

	spin_lock(&ch->lock);
	/*
	 * A message taken by a receiver may still be put back (copy-out
	 * fault): the channel is not empty until it is copied out.
	 */
	if (cfg->capacity < ch->nr_msgs ||
	    (cfg->max_msg_size != ch->max_msg_size &&
	     (ch->nr_msgs || atomic_read(&ch->nr_taken)))) {
		ret = -EBUSY;
	} else {
		WRITE_ONCE(ch->capacity, cfg->capacity);
		WRITE_ONCE(ch->max_msg_size, cfg->max_msg_size);
		admitted = mpmc_admit_senders(ch);
		has_room = mpmc_can_send(ch);
	}
	mpmc_unlock(ch);
	if (admitted)
		mpmc_notify_readable(ch);
	if (has_room)
		mpmc_notify_writable(ch);
	return ret;
}

/**
 * mpmc_chan_get_stats - take a consistent snapshot of @ch
 * @ch: the channel
 * @st: filled in, reserved fields zeroed
 */
void mpmc_chan_get_stats(struct mpmc_chan *ch, struct mpmc_stats *st)
{
	memset(st, 0, sizeof(*st));
	spin_lock(&ch->lock);
	st->capacity = ch->capacity;
	st->max_msg_size = ch->max_msg_size;
	st->queued_msgs = ch->nr_msgs;
	st->shutdown = ch->shutdown;
	st->queued_bytes = ch->nr_bytes;
	st->send_files = ch->send_files;
	st->recv_files = ch->recv_files;
	st->blocked_senders = ch->nr_send_waiters;
	st->blocked_receivers = ch->nr_recv_waiters;
	st->total_sent = ch->total_sent;
	st->total_received = ch->total_received;
	mpmc_unlock(ch);
}

/**
 * mpmc_chan_next_len - length of the next message (FIONREAD)
 * @ch: the channel
 *
 * Return: the length of the message at the head of the queue, 0 if empty.
 */
u32 mpmc_chan_next_len(struct mpmc_chan *ch)
{
	struct mpmc_msg *msg;
	u32 len;

	spin_lock(&ch->lock);
	msg = list_first_entry_or_null(&ch->msgs, struct mpmc_msg, link);
	len = msg ? msg->len : 0;
	mpmc_unlock(ch);
	return len;
}

/**
 * mpmc_chan_poll - readiness of @ch for a file with @roles
 * @ch:    the channel
 * @file:  the polled file
 * @wait:  the poll table
 * @roles: MPMC_ROLE_* bits of @file; only their directions are reported
 *
 * EPOLLIN: a read would not block (a message is queued, or end of file).
 * EPOLLHUP: a read would return end of file. EPOLLOUT: a write of
 * max_msg_size bytes would not block. EPOLLERR: a write would fail with
 * EPIPE. These match the non-blocking calls exactly: both are decided
 * under ch->lock from the same state.
 *
 * The wait queues are registered before the state is read. A waker changes
 * the state under ch->lock and checks for sleepers after dropping it, so
 * either this poll sees the new state or the waker sees this poller:
 *
 *   poll                                 send
 *   ----                                 ----
 *   poll_wait(&ch->rd_wait)
 *   spin_lock(&ch->lock)
 *   nr_msgs == 0: no EPOLLIN
 *   spin_unlock(&ch->lock)
 *                                        spin_lock(&ch->lock)
 *                                        enqueue
 *                                        spin_unlock(&ch->lock)
 *                                        wq_has_sleeper(): sees the poller
 *                                        wake_up(EPOLLIN)
 *
 * Return: the ready events.
 */
__poll_t mpmc_chan_poll(struct mpmc_chan *ch, struct file *file,
			poll_table *wait, unsigned int roles)
{
	__poll_t mask = 0;

	if (roles & MPMC_ROLE_RECV)
		poll_wait(file, &ch->rd_wait, wait);
	if (roles & MPMC_ROLE_SEND)
		poll_wait(file, &ch->wr_wait, wait);

	spin_lock(&ch->lock);
	if (roles & MPMC_ROLE_RECV) {
		if (ch->nr_msgs || ch->shutdown)
			mask |= EPOLLIN | EPOLLRDNORM;
		if (ch->shutdown && !ch->nr_msgs)
			mask |= EPOLLHUP;
	}
	if (roles & MPMC_ROLE_SEND) {
		if (ch->shutdown)
			mask |= EPOLLOUT | EPOLLWRNORM | EPOLLERR;
		else if (mpmc_can_send(ch))
			mask |= EPOLLOUT | EPOLLWRNORM;
	}
	mpmc_unlock(ch);
	return mask;
}
