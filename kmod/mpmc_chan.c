// SPDX-License-Identifier: GPL-2.0
/*
 * mpmc channel core: the message queue, FIFO hand-off to blocked callers,
 * configuration limits and readiness. The file operations that expose a
 * channel live in mpmc_main.c, message buffers in mpmc_msg.c.
 *
 * Locking: ch->lock (a spinlock, never taken from interrupt context)
 * protects the queue, both waiter lists, the configuration and the
 * counters. Nothing that can sleep or fault runs under it: a sender copies
 * its message from user memory into a private buffer before taking the
 * lock, and a receiver unlinks a message under the lock and copies it out
 * after dropping it.
 *
 * Sleeping: a caller that must wait puts a struct mpmc_waiter (on its own
 * stack) at the tail of ch->waiters[dir] and sleeps until a peer finishes
 * the operation for it:
 *  - a sender that finds a blocked receiver hands it the message;
 *  - a receiver that makes room moves the oldest blocked sender's message
 *    into the queue;
 *  - shutdown completes every waiter with EOF or EPIPE.
 * The peer stores the result in waiter->state with release semantics and
 * notes the task in ch->wake; mpmc_unlock() wakes it after dropping the
 * lock, so the woken task never finds the lock still held by its waker.
 * The sleeper reads the state with acquire semantics and, once it is no
 * longer MPMC_WAITING, never touches the lock again. As in ipc/mqueue.c,
 * the waker pins the task first, because the waiter's stack frame may
 * vanish the moment the state is stored:
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
 * mqueue collects such tasks on a wake_q, but wake_q_add() and wake_up_q()
 * are not exported to modules: ch->wake holds up to MPMC_WAKE_MAX tasks.
 * A hold of the lock that completes more (a shutdown or a resize with
 * many sleepers, a batch that serves many blocked receivers) wakes the
 * tasks past that under the lock: still correct, those tasks may only
 * spin briefly on the lock.
 *
 * A sleeper that gives up (signal, timeout) takes ch->lock and unlinks
 * itself only if its state is still MPMC_WAITING; otherwise the operation
 * completed first and the caller reports success. Because a message is
 * handed to one chosen waiter under the lock, an abandoned wait never
 * strands a message and never needs to pass a wakeup on.
 *
 * Pollers (poll, epoll, io_uring) sleep on ch->pollers[] and are woken by
 * mpmc_unlock() too, with a single-direction key, for what is left once
 * blocked callers have been served.
 *
 * Throughput mode (MPMC_CONFIG_THROUGHPUT) keeps the waiter lists but not
 * the hand-off: a message or room goes to whoever reaches the queue first,
 * and each enqueue (dequeue) wakes the oldest blocked receiver (sender)
 * with MPMC_RETRY instead of completing its operation. A woken caller
 * always tries once more before it gives up, so a wakeup is never lost to
 * a signal or a timeout: it either moves its message, or finds the queue
 * empty (full) again, when nothing waits for it. One case would leave a
 * message waiting while receivers sleep, a woken receiver whose buffer is
 * too small; it passes its wakeup on (mpmc_pass_on()):
 *
 *   receiver A (small buffer)            receiver B (asleep)
 *   -------------------------            -------------------
 *   woken by an enqueue: MPMC_RETRY
 *   spin_lock(&ch->lock)
 *   head message too big: EMSGSIZE
 *   mpmc_pass_on(): B gets MPMC_RETRY
 *   spin_unlock(&ch->lock)
 *                                        takes the message
 *
 * Turning the mode on or off while callers sleep is safe: both kinds of
 * waiter loop on MPMC_RETRY, and turning it off serves the queue to the
 * receivers still asleep (mpmc_serve_receivers()) so the invariants of
 * struct mpmc_chan hold again.
 *
 * The rest of SPEC 13 fits the same frame. The queue is a list per
 * priority and a bitmap of the non-empty ones (mpmc_head()). A rendezvous
 * channel (capacity 0) never has room, so every sender blocks holding its
 * message in its waiter until a receiver takes it from there
 * (mpmc_take_next()). Overwrite mode always has room: mpmc_make_room()
 * unlinks the victim under the lock and mpmc_unlock() frees it. A peek
 * waits on the pollers' queue, not on a waiter list, and copies messages
 * it holds by a reference (struct mpmc_msg), without the lock.
 */

#include <linux/atomic.h>
#include <linux/hrtimer.h>
#include <linux/lockdep.h>
#include <linux/minmax.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/sched/clock.h>
#include <linux/sched/signal.h>
#include <linux/sched/stat.h>
#include <linux/sched/task.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "mpmc_chan.h"
#include "mpmc_ring.h"

#define CREATE_TRACE_POINTS
#include "mpmc_trace.h"

/* ---- Limits ----------------------------------------------------------- */

/*
 * A module parameter with the range it is checked against when it is set,
 * so that every use can trust it.
 */
struct mpmc_param {
	unsigned long val;
	unsigned long min;
	unsigned long max;
};

static struct mpmc_param mpmc_max_capacity = { 65536, 1, U32_MAX };
/* A message length fits in an int (FIONREAD, read()). */
static struct mpmc_param mpmc_max_msg_size = { 65536, 1, INT_MAX };
static struct mpmc_param mpmc_max_channel_bytes = { 8UL << 20, 1, ULONG_MAX };
/*
 * Most a waiter spins before it sleeps (mpmc_spin()); 0: never, the
 * default: measured in the same guest boot, 10 us made neither capacity 1
 * nor ping-pong faster (bench/results/experiments/2026-12-06-ab.txt).
 */
static struct mpmc_param mpmc_spin_max_ns = { 0, 0, NSEC_PER_MSEC };
/* A ring is allocated whole (ring mode): twice max_channel_bytes. */
static struct mpmc_param mpmc_max_ring_bytes = { 16UL << 20, 1, ULONG_MAX };

static int mpmc_param_set(const char *val, const struct kernel_param *kp)
{
	struct mpmc_param *p = kp->arg;
	unsigned long v;
	int ret = kstrtoul(val, 0, &v);

	if (ret)
		return ret;
	if (v < p->min || v > p->max)
		return -EINVAL;
	WRITE_ONCE(p->val, v);
	return 0;
}

static int mpmc_param_get(char *buf, const struct kernel_param *kp)
{
	const struct mpmc_param *p = kp->arg;

	return sysfs_emit(buf, "%lu\n", READ_ONCE(p->val));
}

static const struct kernel_param_ops mpmc_param_ops = {
	.set = mpmc_param_set,
	.get = mpmc_param_get,
};

/* The value of a parameter, for one decision. */
static unsigned long mpmc_param(const struct mpmc_param *p)
{
	return READ_ONCE(p->val);
}

module_param_cb(max_capacity, &mpmc_param_ops, &mpmc_max_capacity, 0644);
MODULE_PARM_DESC(max_capacity, "Largest channel capacity in messages (default 65536)");
module_param_cb(max_msg_size, &mpmc_param_ops, &mpmc_max_msg_size, 0644);
MODULE_PARM_DESC(max_msg_size, "Largest message size in bytes (default 65536)");
module_param_cb(max_channel_bytes, &mpmc_param_ops, &mpmc_max_channel_bytes,
		0644);
MODULE_PARM_DESC(max_channel_bytes,
		 "Largest capacity * max_msg_size of one channel (default 8 MiB)");
module_param_cb(max_ring_bytes, &mpmc_param_ops, &mpmc_max_ring_bytes, 0644);
MODULE_PARM_DESC(max_ring_bytes,
		 "Largest ring of a channel in ring mode, control page included (default 16 MiB)");
module_param_cb(spin_max_ns, &mpmc_param_ops, &mpmc_spin_max_ns, 0644);
MODULE_PARM_DESC(spin_max_ns,
		 "Longest spin of a blocked caller before it sleeps, in ns, 0..1000000 (default 0: never)");

/* ---- Waking after unlock ------------------------------------------------ */

/* waiter->state while asleep; any other value but MPMC_RETRY is final. */
#define MPMC_WAITING	1
/* Woken in throughput mode: try the operation again. */
#define MPMC_RETRY	2
/* Not an errno a caller sees: a list path found the channel turned ring. */
#define MPMC_TO_RING	(-EXDEV)

/**
 * struct mpmc_waiter - a caller asleep in send or receive
 * @link:  entry in mpmc_chan.waiters[] of its direction
 * @task:  the sleeping task
 * @msg:   send: the message to enqueue; receive: the message handed over
 *         (NULL on end of file)
 * @room:  receive: size of the caller's buffer
 * @seq:   send: the sequence number its message was accepted with
 * @state: MPMC_WAITING, then MPMC_RETRY, 0 or a negative errno
 * @head:  it was the oldest waiter of its direction when it was queued
 */
struct mpmc_waiter {
	struct list_head link;
	struct task_struct *task;
	struct mpmc_msg *msg;
	size_t room;
	u32 seq;
	int state;
	bool head;
};

/* The shortest spin budget: what a waiter that never gains still pays. */
#define MPMC_SPIN_MIN_NS	256

static atomic64_t mpmc_next_id = ATOMIC64_INIT(0);

/* Wake @task (pinned) once ch->lock is dropped; see the top comment. */
static void mpmc_wake_later(struct mpmc_chan *ch, struct task_struct *task)
{
	lockdep_assert_held(&ch->lock);
	if (ch->wake.nr < MPMC_WAKE_MAX) {
		ch->wake.task[ch->wake.nr++] = task;
		return;
	}
	wake_up_process(task);
	put_task_struct(task);
}

static void mpmc_notify_dir(struct mpmc_chan *ch, enum mpmc_dir dir)
{
	static const __poll_t key[MPMC_NR_DIRS] = {
		[MPMC_SEND] = EPOLLOUT | EPOLLWRNORM,
		[MPMC_RECV] = EPOLLIN | EPOLLRDNORM,
	};

	/* Pairs with mpmc_chan_poll(): see the diagram there. */
	if (READ_ONCE(ch->polled) && wq_has_sleeper(&ch->pollers[dir]))
		wake_up_interruptible_sync_poll(&ch->pollers[dir], key[dir]);
	/* kill_fasync() reads it again, under its RCU lock. */
	if (READ_ONCE(ch->fasync))
		kill_fasync(&ch->fasync, SIGIO,
			    dir == MPMC_RECV ? POLL_IN : POLL_OUT);
}

/* Shutdown is a level state: wake every poller, exclusive or not. */
static void mpmc_notify_shutdown(struct mpmc_chan *ch)
{
	__wake_up(&ch->pollers[MPMC_RECV], TASK_INTERRUPTIBLE, 0,
		  poll_to_key(EPOLLIN | EPOLLRDNORM | EPOLLHUP));
	__wake_up(&ch->pollers[MPMC_SEND], TASK_INTERRUPTIBLE, 0,
		  poll_to_key(EPOLLOUT | EPOLLWRNORM | EPOLLERR));
	kill_fasync(&ch->fasync, SIGIO, POLL_HUP);
}

/*
 * Drop ch->lock, then do what the hold collected in ch->wake: free the
 * messages overwrite mode dropped, wake the tasks whose operations were
 * completed under it, then the pollers. The one exit from every hold of
 * the lock.
 */
static void mpmc_unlock(struct mpmc_chan *ch)
	__releases(&ch->lock)
{
	struct task_struct *task[MPMC_WAKE_MAX];
	unsigned int i, nr = ch->wake.nr, events = ch->wake.events;
	LIST_HEAD(drop);

	ch->wake.events = 0;
	if (likely(!nr && list_empty(&ch->wake.drop))) {
		/* Most holds complete nobody's operation: keep them short. */
		spin_unlock(&ch->lock);
		goto notify;
	}
	for (i = 0; i < nr; i++)
		task[i] = ch->wake.task[i];
	ch->wake.nr = 0;
	list_splice_init(&ch->wake.drop, &drop);
	spin_unlock(&ch->lock);

	mpmc_msg_free_list(&ch->pool, &drop);
	for (i = 0; i < nr; i++) {
		wake_up_process(task[i]);
		put_task_struct(task[i]);
	}
notify:
	if (!events)
		return;
	if (events & MPMC_EV_HUP) {
		mpmc_notify_shutdown(ch);
		return;
	}
	if (events & MPMC_EV_IN)
		mpmc_notify_dir(ch, MPMC_RECV);
	if (events & MPMC_EV_OUT)
		mpmc_notify_dir(ch, MPMC_SEND);
}

/* ---- The queue and hand-off -------------------------------------------- */

/* Does whoever comes first take messages and room (MPMC_CONFIG_THROUGHPUT)? */
static bool mpmc_barging(const struct mpmc_chan *ch)
{
	lockdep_assert_held(&ch->lock);
	/* A rendezvous is a hand-off in every mode; a ring always barges. */
	return (ch->flags & MPMC_CONFIG_THROUGHPUT || ch->ring) &&
	       ch->capacity;
}

/*
 * The oldest blocked sender of a rendezvous channel (capacity 0), whose
 * message a receive takes when nothing is queued; NULL if none.
 */
static struct mpmc_waiter *mpmc_rendezvous_sender(struct mpmc_chan *ch)
{
	lockdep_assert_held(&ch->lock);
	if (ch->capacity)
		return NULL;
	return list_first_entry_or_null(&ch->waiters[MPMC_SEND],
					struct mpmc_waiter, link);
}

/* Is there room for one more message (in overwrite mode, always)? */
static bool mpmc_has_room(const struct mpmc_chan *ch)
{
	lockdep_assert_held(&ch->lock);
	return ch->nr_msgs < ch->capacity || ch->flags & MPMC_CONFIG_OVERWRITE;
}

/* Would a send complete now without waiting? */
static bool mpmc_can_send(const struct mpmc_chan *ch)
{
	lockdep_assert_held(&ch->lock);
	if (mpmc_barging(ch))
		return mpmc_has_room(ch);
	if (!list_empty(&ch->waiters[MPMC_SEND]))
		return false;
	return mpmc_has_room(ch) || !list_empty(&ch->waiters[MPMC_RECV]);
}

/* Room was made: pollers of EPOLLOUT hear of it if a send can now go. */
static void mpmc_note_room(struct mpmc_chan *ch)
{
	if (mpmc_can_send(ch))
		ch->wake.events |= MPMC_EV_OUT;
}

/*
 * Change the count of sleepers of @dir; a ring channel also tells its
 * ring peers (mpmc_ring_set_waiters()).
 */
static void mpmc_waiters_add(struct mpmc_chan *ch, enum mpmc_dir dir, int d)
{
	lockdep_assert_held(&ch->lock);
	ch->nr_waiters[dir] += d;
	if (unlikely(ch->ring))
		mpmc_ring_set_waiters(ch->ring, dir == MPMC_RECV,
				      ch->nr_waiters[dir]);
}

/*
 * Finish @w's operation in direction @dir with @state; its task is woken
 * by mpmc_unlock(). See the top comment.
 */
static void mpmc_waiter_complete(struct mpmc_chan *ch, enum mpmc_dir dir,
				 struct mpmc_waiter *w, struct mpmc_msg *msg,
				 int state)
{
	struct task_struct *task = w->task;

	lockdep_assert_held(&ch->lock);
	trace_mpmc_wake(ch->id, dir, task->pid, state);
	list_del(&w->link);
	mpmc_waiters_add(ch, dir, -1);
	get_task_struct(task);
	w->msg = msg;
	/* Publish w->msg before the state; pairs with mpmc_wait(). */
	smp_store_release(&w->state, state);
	mpmc_wake_later(ch, task);
}

/*
 * Throughput mode: wake the oldest waiter of @dir, if any, to try again.
 * Its operation is not done for it; see the top comment.
 */
static bool mpmc_pass_on(struct mpmc_chan *ch, enum mpmc_dir dir)
{
	struct mpmc_waiter *w;

	w = list_first_entry_or_null(&ch->waiters[dir], struct mpmc_waiter,
				     link);
	if (w)
		mpmc_waiter_complete(ch, dir, w, NULL, MPMC_RETRY);
	return w;
}

/*
 * Queue @msg at the tail of its priority, or at the head for a message
 * put back.
 */
static void mpmc_enqueue(struct mpmc_chan *ch, struct mpmc_msg *msg,
			 bool at_head)
{
	struct list_head *q = &ch->msgs[msg->prio];

	lockdep_assert_held(&ch->lock);
	if (at_head)
		list_add(&msg->link, q);
	else
		list_add_tail(&msg->link, q);
	ch->prio_map |= BIT(msg->prio);
	WRITE_ONCE(ch->nr_msgs, ch->nr_msgs + 1);
	ch->nr_bytes += msg->len;
	ch->wake.events |= MPMC_EV_IN;
	/* Ring receivers go to the kernel while the front queue is not empty. */
	if (unlikely(ch->ring))
		mpmc_ring_set_flags(ch->ring, MPMC_RING_F_FRONT, 0);
}

/* The message a receive takes next: the oldest of the highest priority. */
static struct mpmc_msg *mpmc_head(const struct mpmc_chan *ch)
{
	lockdep_assert_held(&ch->lock);
	if (!ch->prio_map)
		return NULL;
	return list_first_entry(&ch->msgs[__fls(ch->prio_map)],
				struct mpmc_msg, link);
}

/* Unlink queued @msg from the list of its priority. */
static void mpmc_unlink(struct mpmc_chan *ch, struct mpmc_msg *msg)
{
	lockdep_assert_held(&ch->lock);
	list_del(&msg->link);
	if (list_empty(&ch->msgs[msg->prio]))
		ch->prio_map &= ~BIT(msg->prio);
	WRITE_ONCE(ch->nr_msgs, ch->nr_msgs - 1);
	ch->nr_bytes -= msg->len;
	if (unlikely(ch->ring) && !ch->nr_msgs)
		mpmc_ring_set_flags(ch->ring, 0, MPMC_RING_F_FRONT);
}

/* Unlink the message at the head of the queue (there is one). */
static struct mpmc_msg *mpmc_unlink_head(struct mpmc_chan *ch)
{
	struct mpmc_msg *msg = mpmc_head(ch);

	mpmc_unlink(ch, msg);
	return msg;
}

/* Move every queued message onto @list, highest priority first. */
static void mpmc_unlink_all(struct mpmc_chan *ch, struct list_head *list)
{
	lockdep_assert_held(&ch->lock);
	while (ch->prio_map) {
		list_splice_tail_init(&ch->msgs[__fls(ch->prio_map)], list);
		ch->prio_map &= ~BIT(__fls(ch->prio_map));
	}
	WRITE_ONCE(ch->nr_msgs, 0);
	ch->nr_bytes = 0;
	if (ch->ring)
		mpmc_ring_set_flags(ch->ring, 0, MPMC_RING_F_FRONT);
}

/*
 * Overwrite mode: make room for one more message by dropping the oldest
 * of the lowest priority, to be freed by mpmc_unlock().
 */
static void mpmc_make_room(struct mpmc_chan *ch)
{
	struct mpmc_msg *msg;

	lockdep_assert_held(&ch->lock);
	if (!(ch->flags & MPMC_CONFIG_OVERWRITE))
		return;
	while (ch->nr_msgs && ch->nr_msgs >= ch->capacity) {
		msg = list_first_entry(&ch->msgs[__ffs(ch->prio_map)],
				       struct mpmc_msg, link);
		mpmc_unlink(ch, msg);
		ch->total_dropped++;
		trace_mpmc_drop(ch->id, msg->len, msg->prio, msg->seq);
		list_add_tail(&msg->link, &ch->wake.drop);
	}
}

/*
 * Take the message at the head of the queue for a receiver. Until it is
 * copied out (or put back) it counts in ch->nr_taken.
 */
static struct mpmc_msg *mpmc_dequeue(struct mpmc_chan *ch)
{
	ch->total_received++;
	atomic_inc(&ch->nr_taken);
	return mpmc_unlink_head(ch);
}

/*
 * Give @msg to the oldest blocked receiver whose buffer can take it.
 * Blocked receivers whose buffer is too small are completed with EMSGSIZE
 * on the way, so the message goes to the next receiver in order. Returns
 * false, with nothing done to @msg, when no receiver is left.
 */
static bool mpmc_hand_off(struct mpmc_chan *ch, struct mpmc_msg *msg)
{
	struct mpmc_waiter *w, *tmp;

	lockdep_assert_held(&ch->lock);
	list_for_each_entry_safe(w, tmp, &ch->waiters[MPMC_RECV], link) {
		if (w->room < msg->len) {
			mpmc_waiter_complete(ch, MPMC_RECV, w, NULL, -EMSGSIZE);
			continue;
		}
		ch->total_received++;
		atomic_inc(&ch->nr_taken);
		mpmc_waiter_complete(ch, MPMC_RECV, w, msg, 0);
		return true;
	}
	return false;
}

/*
 * A sent message enters the channel: handed off, or queued at the tail
 * (in throughput mode always queued, and a blocked receiver woken).
 * Returns its sequence number (@msg may be gone once handed off).
 */
static u32 mpmc_accept(struct mpmc_chan *ch, struct mpmc_msg *msg)
{
	u32 seq = ch->total_sent++;

	msg->seq = seq;
	if (mpmc_barging(ch)) {
		mpmc_make_room(ch);
		mpmc_enqueue(ch, msg, false);
		mpmc_pass_on(ch, MPMC_RECV);
	} else if (!mpmc_hand_off(ch, msg)) {
		mpmc_make_room(ch);
		mpmc_enqueue(ch, msg, false);
	}
	return seq;
}

/* Move blocked senders' messages in, oldest first, while there is room. */
static void mpmc_move_senders_in(struct mpmc_chan *ch)
{
	struct mpmc_waiter *w;

	lockdep_assert_held(&ch->lock);
	while (mpmc_has_room(ch) && !list_empty(&ch->waiters[MPMC_SEND])) {
		w = list_first_entry(&ch->waiters[MPMC_SEND],
				     struct mpmc_waiter, link);
		w->seq = mpmc_accept(ch, w->msg);
		mpmc_waiter_complete(ch, MPMC_SEND, w, NULL, 0);
	}
}

/*
 * Room was made: move blocked senders' messages in. In throughput mode,
 * wake one blocked sender per slot made (@made) instead, or one per free
 * slot for a resize (@made 0).
 */
static void mpmc_admit_senders(struct mpmc_chan *ch, u32 made)
{
	u32 room;

	lockdep_assert_held(&ch->lock);
	if (mpmc_barging(ch)) {
		room = ch->nr_msgs < ch->capacity ?
		       ch->capacity - ch->nr_msgs : 0;
		if (ch->flags & MPMC_CONFIG_OVERWRITE)
			room = U32_MAX;
		if (made)
			room = min(room, made);
		while (room-- && mpmc_pass_on(ch, MPMC_SEND))
			;
		return;
	}
	mpmc_move_senders_in(ch);
}

/*
 * Leaving throughput mode: receivers may sleep while messages are queued
 * (woken ones are on their way). Hand the queue to them, oldest first, so
 * that FIFO hand-off starts from its invariants again.
 */
static void mpmc_serve_receivers(struct mpmc_chan *ch)
{
	struct mpmc_msg *msg;

	lockdep_assert_held(&ch->lock);
	while (ch->nr_msgs && !list_empty(&ch->waiters[MPMC_RECV])) {
		msg = mpmc_unlink_head(ch);
		if (!mpmc_hand_off(ch, msg)) {
			mpmc_enqueue(ch, msg, true);
			break;
		}
	}
}

/* ---- Waiting ------------------------------------------------------------ */

/*
 * Before it sleeps, the oldest waiter spins a while: a peer on another CPU
 * often completes its operation within microseconds, and a waiter that
 * sees that while still running saves a sleep and a wakeup (the waker's
 * wake_up_process() finds it running). Only the head spins, its FIFO
 * place already taken; only while nothing else wants the CPU and no
 * signal is pending. The budget of each direction doubles after a spin
 * that succeeded and halves after one that did not, between
 * MPMC_SPIN_MIN_NS and the spin_max_ns parameter, which bounds it by
 * about the cost of a sleep and a wakeup. Returns true if @w completed.
 */
static bool mpmc_spin(struct mpmc_chan *ch, enum mpmc_dir dir,
		      struct mpmc_waiter *w)
{
	u32 max = mpmc_param(&mpmc_spin_max_ns), budget;
	bool done;
	u64 end;

	if (!w->head || max < MPMC_SPIN_MIN_NS)
		return false;
	budget = clamp_t(u32, READ_ONCE(ch->spin_ns[dir]), MPMC_SPIN_MIN_NS,
			 max);
	end = local_clock() + budget;
	for (;;) {
		done = READ_ONCE(w->state) != MPMC_WAITING;
		if (done || need_resched() || signal_pending(current) ||
		    !single_task_running() || local_clock() > end)
			break;
		cpu_relax();
	}
	budget = done ? min(budget * 2, max) : budget / 2;
	WRITE_ONCE(ch->spin_ns[dir], budget);
	return done;
}

/*
 * Sleep until @w is completed, a signal arrives or @deadline (NULL:
 * none) passes. Returns the final state: 0 or a negative errno
 * (-ERESTARTSYS on a signal, -ETIMEDOUT on expiry) when the operation did
 * not happen. See mpmc_block().
 */
static int mpmc_wait(struct mpmc_chan *ch, enum mpmc_dir dir,
		     struct mpmc_waiter *w, ktime_t *deadline)
{
	int state, ret;

	mpmc_spin(ch, dir, w);
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
		/* A NULL deadline is schedule(), and never returns 0. */
		if (!schedule_hrtimeout_range(deadline, current->timer_slack_ns,
					      HRTIMER_MODE_ABS)) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	__set_current_state(TASK_RUNNING);

	spin_lock(&ch->lock);
	state = w->state;
	if (state == MPMC_WAITING) {
		trace_mpmc_wake(ch->id, dir, current->pid, ret);
		list_del(&w->link);
		mpmc_waiters_add(ch, dir, -1);
		state = ret;
	}
	mpmc_unlock(ch);
	return state;
}

/*
 * Queue @w (its @msg or @room set by the caller) at the tail of the
 * waiters of @dir, drop ch->lock and sleep as @opts allow. Returns as
 * mpmc_wait().
 */
static int mpmc_block(struct mpmc_chan *ch, enum mpmc_dir dir,
		      struct mpmc_waiter *w, const struct mpmc_wait_opts *opts)
	__releases(&ch->lock)
{
	lockdep_assert_held(&ch->lock);
	if (unlikely(ch->ring)) {
		/* Ring mode was turned on since this caller looked. */
		mpmc_unlock(ch);
		return MPMC_TO_RING;
	}
	w->task = current;
	w->state = MPMC_WAITING;
	w->head = list_empty(&ch->waiters[dir]);
	list_add_tail(&w->link, &ch->waiters[dir]);
	mpmc_waiters_add(ch, dir, 1);
	/* On a rendezvous, a blocked caller is what its peers poll for. */
	if (!ch->capacity)
		ch->wake.events |= dir == MPMC_RECV ? MPMC_EV_OUT : MPMC_EV_IN;
	trace_mpmc_block(ch->id, dir, ch->nr_waiters[dir]);
	mpmc_unlock(ch);
	return mpmc_wait(ch, dir, w, opts->deadline);
}

/* ---- Ring channels -------------------------------------------------------- */

/*
 * A ring channel (MPMC_CONFIG_RING) keeps its messages in a ring that
 * processes map and use without system calls (mpmc_ring.c). The paths
 * below are the kernel's part: the system calls run the same protocol on
 * the ring, and sleep and wake as throughput mode does, with one addition.
 * A ring peer changes the ring without ch->lock, so a sleeper publishes
 * itself in the control page's waiter word of its direction, and a peer
 * that changed the ring looks at that word after a full barrier and rings
 * the doorbell (mpmc_chan_ring_wake()) if it is not 0. The sleeper looks
 * at the ring once more after its own barrier, so one of the two always
 * sees the other (Documentation/ring-mode.rst, section 5.2):
 *
 *   ring sender (user space)             receiver (mpmc_ring_block())
 *   ------------------------             ----------------------------
 *                                        spin_lock(&ch->lock)
 *                                        queue waiter; recv_waiters = n + 1
 *                                        smp_mb()
 *   store_release(word, FULL(p))
 *   atomic_thread_fence(seq_cst)
 *   recv_waiters != 0: RING_WAKE         look at the ring: FULL(p)?
 *
 * Either the receiver sees FULL(p) and does not sleep, or the sender sees
 * the word and its doorbell, which takes ch->lock after the receiver
 * queued itself, wakes it with MPMC_RETRY. Pollers arm the same word
 * (MPMC_RING_W_POLL) in mpmc_chan_poll() and after a non-blocking EAGAIN.
 *
 * ch->msgs is the front queue: messages put back after a faulting
 * copy-out or reaped from a dead receiver's claim, older than the ring.
 * Receivers take it first; MPMC_RING_F_FRONT sends ring receivers to the
 * kernel while it is not empty.
 */

static int mpmc_build_batch(struct mpmc_chan *ch, const struct mpmc_msgvec *vec,
			    unsigned int n, struct list_head *msgs);

static bool mpmc_dir_recv(enum mpmc_dir dir)
{
	return dir == MPMC_RECV;
}

/*
 * Would a caller of @dir get an answer from the ring now (a message or
 * room, end of file, an error)? Under the lock; bounded.
 */
static bool mpmc_ring_ready(struct mpmc_chan *ch, enum mpmc_dir dir)
{
	struct mpmc_ring *r = ch->ring;
	u32 len;

	lockdep_assert_held(&ch->lock);
	if (mpmc_ring_broken(r))
		return true;
	if (dir == MPMC_SEND)
		return ch->shutdown || mpmc_ring_can_push(r);
	if (ch->nr_msgs || ch->shutdown & MPMC_SHUT_RD)
		return true;
	if (mpmc_ring_pop(r, NULL, 0, &len) != -EAGAIN)
		return true;
	return ch->shutdown && mpmc_ring_drained(r);
}

/*
 * Sleep in direction @dir of a ring channel until a doorbell, a shutdown
 * or the deadline; see the diagram above. Returns MPMC_RETRY when the
 * caller should look at the ring again, else as mpmc_wait().
 */
static int mpmc_ring_block(struct mpmc_chan *ch, enum mpmc_dir dir,
			   const struct mpmc_wait_opts *opts)
	__releases(&ch->lock)
{
	struct mpmc_waiter w = { .task = current, .state = MPMC_WAITING };

	lockdep_assert_held(&ch->lock);
	w.head = list_empty(&ch->waiters[dir]);
	list_add_tail(&w.link, &ch->waiters[dir]);
	mpmc_waiters_add(ch, dir, 1);
	/* Pairs with a ring peer's fence between its change and its look. */
	smp_mb();
	if (mpmc_ring_ready(ch, dir)) {
		list_del(&w.link);
		mpmc_waiters_add(ch, dir, -1);
		mpmc_unlock(ch);
		return MPMC_RETRY;
	}
	trace_mpmc_block(ch->id, dir, ch->nr_waiters[dir]);
	mpmc_unlock(ch);
	return mpmc_wait(ch, dir, &w, opts->deadline);
}

/**
 * mpmc_chan_ring_wake - the doorbell: wake one sleeper and the pollers
 * @ch:    a ring channel
 * @roles: MPMC_ROLE_RECV to wake receivers (a message was published),
 *         MPMC_ROLE_SEND to wake senders (a slot was freed), or both
 *
 * One doorbell wakes the oldest sleeper of each direction asked, with
 * MPMC_RETRY, and the armed pollers. A SIGIO subscriber keeps the poll
 * bit armed, so that it hears of every change.
 */
void mpmc_chan_ring_wake(struct mpmc_chan *ch, unsigned int roles)
{
	struct mpmc_ring *r = ch->ring;
	enum mpmc_dir dir;

	atomic64_inc(&r->doorbells);
	spin_lock(&ch->lock);
	for (dir = 0; dir < MPMC_NR_DIRS; dir++) {
		if (!(roles & (mpmc_dir_recv(dir) ? MPMC_ROLE_RECV :
			       MPMC_ROLE_SEND)))
			continue;
		mpmc_pass_on(ch, dir);
		if (mpmc_ring_disarm(r, mpmc_dir_recv(dir)))
			ch->wake.events |= BIT(dir);
		if (READ_ONCE(ch->fasync))
			mpmc_ring_arm(r, mpmc_dir_recv(dir));
	}
	mpmc_unlock(ch);
}

/* After the kernel changed the ring for @dir: ring if someone waits. */
static void mpmc_ring_notify(struct mpmc_chan *ch, enum mpmc_dir dir)
{
	/* Order the ring change before the look at the waiter word. */
	smp_mb();
	if (mpmc_ring_wanted(ch->ring, mpmc_dir_recv(dir)))
		mpmc_chan_ring_wake(ch, mpmc_dir_recv(dir) ? MPMC_ROLE_RECV :
						      MPMC_ROLE_SEND);
}

/*
 * A non-blocking caller of @dir found nothing: arm the pollers' bit so
 * that ring peers ring for the next change (edge-triggered epoll needs
 * it). Returns true if the ring became ready meanwhile: look again.
 */
static bool mpmc_ring_arm_pollers(struct mpmc_chan *ch, enum mpmc_dir dir)
{
	bool ready;

	if (!READ_ONCE(ch->polled) && !READ_ONCE(ch->fasync))
		return false;
	spin_lock(&ch->lock);
	mpmc_ring_arm(ch->ring, mpmc_dir_recv(dir));
	/* Arm, then look: pairs with a ring peer's fence (diagram above). */
	smp_mb();
	ready = mpmc_ring_ready(ch, dir);
	mpmc_unlock(ch);
	return ready;
}

/* The ring is broken: wake everyone to see EIO. */
static void mpmc_ring_failed(struct mpmc_chan *ch)
{
	struct mpmc_waiter *w, *tmp;
	enum mpmc_dir dir;

	spin_lock(&ch->lock);
	for (dir = 0; dir < MPMC_NR_DIRS; dir++)
		list_for_each_entry_safe(w, tmp, &ch->waiters[dir], link)
			mpmc_waiter_complete(ch, dir, w, NULL, MPMC_RETRY);
	ch->wake.events |= MPMC_EV_HUP;
	mpmc_unlock(ch);
}

/*
 * Wait (as @opts allow) until the ring answers a caller of @dir that got
 * @err (-EAGAIN or -EBUSY) from it. Returns 0 to try again, or the errno
 * the caller returns.
 */
static int mpmc_ring_wait(struct mpmc_chan *ch, enum mpmc_dir dir, int err,
			  const struct mpmc_wait_opts *opts, bool *armed)
{
	int ret;

	if (opts->nonblock) {
		if (err == -EAGAIN && !*armed) {
			*armed = true;
			if (mpmc_ring_arm_pollers(ch, dir))
				return 0;
		}
		return -EAGAIN;
	}
	if (err == -EBUSY) {
		/* Peers keep changing the ring under us: let them run. */
		if (signal_pending(current))
			return -ERESTARTSYS;
		if (opts->deadline && ktime_after(ktime_get(), *opts->deadline))
			return -ETIMEDOUT;
		schedule_timeout_interruptible(1);
		return 0;
	}
	spin_lock(&ch->lock);
	ret = mpmc_ring_block(ch, dir, opts);
	return ret == MPMC_RETRY ? 0 : ret;
}

/* Send @len bytes at @data (kernel memory) through the ring. */
static int mpmc_ring_send(struct mpmc_chan *ch, const void *data, u32 len,
			  const struct mpmc_wait_opts *opts)
{
	bool armed = false;
	int ret;

	for (;;) {
		ret = mpmc_ring_push(ch->ring, data, len);
		if (!ret) {
			mpmc_ring_notify(ch, MPMC_RECV);
			/* A doorbell woke one sender: more room, wake more. */
			if (mpmc_ring_wanted(ch->ring, false) &&
			    mpmc_ring_can_push(ch->ring))
				mpmc_chan_ring_wake(ch, MPMC_ROLE_SEND);
			return 0;
		}
		if (ret == -EIO)
			mpmc_ring_failed(ch);
		if (ret != -EAGAIN && ret != -EBUSY)
			return ret;
		ret = mpmc_ring_wait(ch, MPMC_SEND, ret, opts, &armed);
		if (ret)
			return ret;
	}
}

/* Send @msg, copied in by the caller, through the ring; frees it. */
static ssize_t mpmc_ring_chan_send(struct mpmc_chan *ch, struct mpmc_msg *msg,
				   const struct mpmc_wait_opts *opts)
{
	u32 len = msg->len;
	int ret = mpmc_ring_send(ch, mpmc_msg_data(msg), len, opts);

	mpmc_msg_free(&ch->pool, msg);
	return ret ? ret : (ssize_t)len;
}

/*
 * Take the message at the head of the front queue if it fits @room.
 * Returns 0 with *@msgp, -EMSGSIZE, or -EAGAIN if the queue is empty.
 */
static int mpmc_ring_take_front(struct mpmc_chan *ch, u32 room,
				struct mpmc_msg **msgp)
{
	struct mpmc_msg *msg;
	int ret = -EAGAIN;

	spin_lock(&ch->lock);
	msg = ch->nr_msgs ? mpmc_head(ch) : NULL;
	if (msg && msg->len > room) {
		ret = -EMSGSIZE;
	} else if (msg) {
		mpmc_unlink(ch, msg);
		*msgp = msg;
		ret = 0;
	}
	mpmc_unlock(ch);
	return ret;
}

/*
 * Take the next message for a buffer of @room bytes into a message buffer
 * of its own: the front queue's head, else the ring's. Returns 0 with
 * *@msgp, or -EAGAIN, -EMSGSIZE, -EIO, -EBUSY, -ENOMEM.
 */
static int mpmc_ring_take_msg(struct mpmc_chan *ch, u32 room,
			      const struct mpmc_wait_opts *opts,
			      struct mpmc_msg **msgp)
{
	struct mpmc_msg *msg;
	u32 len;
	int ret;

	if (READ_ONCE(ch->nr_msgs)) {
		ret = mpmc_ring_take_front(ch, room, msgp);
		if (ret != -EAGAIN)
			return ret;
	}
	/* Size the buffer by the head, then take whatever is the head. */
	ret = mpmc_ring_pop(ch->ring, NULL, 0, &len);
	if (ret != -EMSGSIZE)
		return ret;
	if (len > room)
		return -EMSGSIZE;
	msg = mpmc_msg_alloc(&ch->pool, len, opts->nowait_alloc);
	if (!msg)
		return opts->nowait_alloc ? -EAGAIN : -ENOMEM;
	ret = mpmc_ring_pop(ch->ring, mpmc_msg_data(msg), len, &len);
	if (ret) {
		mpmc_msg_free(&ch->pool, msg);
		/* Another head, longer than the first: look again. */
		return ret == -EMSGSIZE ? -EBUSY : ret;
	}
	msg->len = len;
	msg->prio = 0;
	mpmc_ring_notify(ch, MPMC_SEND);
	/* A doorbell woke one receiver: if more is queued, wake more. */
	if (mpmc_ring_wanted(ch->ring, true) &&
	    mpmc_ring_pop(ch->ring, NULL, 0, &len) == -EMSGSIZE)
		mpmc_chan_ring_wake(ch, MPMC_ROLE_RECV);
	*msgp = msg;
	return 0;
}

/*
 * Receive one message for a buffer of @room bytes, waiting as @opts
 * allow. Returns 0 with *@msgp, 1 at end of file, or a negative errno.
 */
static int mpmc_ring_recv_msg(struct mpmc_chan *ch, u32 room,
			      const struct mpmc_wait_opts *opts,
			      struct mpmc_msg **msgp)
{
	bool armed = false;
	int ret;

	for (;;) {
		/* A broken channel delivers nothing, front queue included. */
		if (mpmc_ring_broken(ch->ring))
			return -EIO;
		if (READ_ONCE(ch->shutdown) & MPMC_SHUT_RD)
			return 1;
		ret = mpmc_ring_take_msg(ch, room, opts, msgp);
		if (ret == -EIO)
			mpmc_ring_failed(ch);
		if (ret != -EAGAIN && ret != -EBUSY)
			return ret;
		if (READ_ONCE(ch->shutdown) && mpmc_ring_drained(ch->ring) &&
		    !READ_ONCE(ch->nr_msgs))
			return 1;
		ret = mpmc_ring_wait(ch, MPMC_RECV, ret, opts, &armed);
		if (ret)
			return ret;
	}
}

/*
 * Put messages taken from a ring channel back at the head of the front
 * queue, in their order (a faulting copy-out). After SHUT_RD they are
 * discarded. Empties @msgs.
 */
static void mpmc_ring_put_back(struct mpmc_chan *ch, struct list_head *msgs)
{
	struct mpmc_msg *msg, *tmp;
	LIST_HEAD(discard);

	spin_lock(&ch->lock);
	if (ch->shutdown & MPMC_SHUT_RD)
		list_splice_init(msgs, &discard);
	list_for_each_entry_safe_reverse(msg, tmp, msgs, link) {
		list_del(&msg->link);
		mpmc_enqueue(ch, msg, true);
		mpmc_pass_on(ch, MPMC_RECV);
	}
	mpmc_unlock(ch);
	mpmc_msg_free_list(&ch->pool, &discard);
}

/**
 * mpmc_chan_ring_put_back - a reaped receive goes to the front queue
 * @ch:  a ring channel
 * @msg: the message a dead mapper was receiving (its receive never
 *       returned), queued behind older put-back messages
 */
void mpmc_chan_ring_put_back(struct mpmc_chan *ch, struct mpmc_msg *msg)
{
	spin_lock(&ch->lock);
	if (ch->shutdown & MPMC_SHUT_RD) {
		list_add(&msg->link, &ch->wake.drop);
	} else {
		msg->prio = 0;
		mpmc_enqueue(ch, msg, false);
		mpmc_pass_on(ch, MPMC_RECV);
	}
	mpmc_unlock(ch);
}

static ssize_t mpmc_ring_chan_recv(struct mpmc_chan *ch, struct iov_iter *to,
				   const struct mpmc_wait_opts *opts)
{
	u32 room = min_t(size_t, iov_iter_count(to), U32_MAX);
	struct mpmc_msg *msg;
	LIST_HEAD(back);
	int ret;

	ret = mpmc_ring_recv_msg(ch, room, opts, &msg);
	if (ret)
		return ret == 1 ? 0 : ret;
	ret = msg->len;
	if (copy_to_iter(mpmc_msg_data(msg), msg->len, to) != msg->len) {
		list_add(&msg->link, &back);
		mpmc_ring_put_back(ch, &back);
		return -EFAULT;
	}
	mpmc_msg_free(&ch->pool, msg);
	return ret;
}

static int mpmc_ring_chan_send_batch(struct mpmc_chan *ch,
				     const struct mpmc_msgvec *vec,
				     unsigned int n,
				     const struct mpmc_wait_opts *opts)
{
	struct mpmc_wait_opts rest = { .nonblock = true };
	struct mpmc_msg *msg, *tmp;
	int ret = 0, sent = 0;
	LIST_HEAD(msgs);

	ret = mpmc_build_batch(ch, vec, n, &msgs);
	if (list_empty(&msgs))
		return ret;
	list_for_each_entry_safe(msg, tmp, &msgs, link) {
		ret = mpmc_ring_send(ch, mpmc_msg_data(msg), msg->len,
				     sent ? &rest : opts);
		if (ret)
			break;
		sent++;
	}
	mpmc_msg_free_list(&ch->pool, &msgs);
	return sent ?: ret;
}

static int mpmc_ring_chan_recv_batch(struct mpmc_chan *ch,
				     struct mpmc_msgvec *vec,
				     struct mpmc_msgvec __user *uvec,
				     unsigned int n,
				     const struct mpmc_wait_opts *opts)
{
	struct mpmc_wait_opts rest = { .nonblock = true };
	unsigned int got = 0, i;
	struct mpmc_msg *msg;
	LIST_HEAD(taken);
	int ret = 0;

	while (got < n) {
		ret = mpmc_ring_recv_msg(ch, vec[got].len, got ? &rest : opts,
					 &msg);
		if (ret)
			break;
		list_add_tail(&msg->link, &taken);
		if (copy_to_user(u64_to_user_ptr(vec[got].buf),
				 mpmc_msg_data(msg), msg->len)) {
			ret = -EFAULT;
			break;
		}
		vec[got].len = msg->len;
		vec[got].prio = 0;
		got++;
	}
	if (got && copy_to_user(uvec, vec, array_size(got, sizeof(*vec)))) {
		got = 0;
		ret = -EFAULT;
	}
	/* Received: the first @got; the rest go back, in order. */
	for (i = 0; i < got; i++) {
		msg = list_first_entry(&taken, struct mpmc_msg, link);
		list_del(&msg->link);
		mpmc_msg_free(&ch->pool, msg);
	}
	if (!list_empty(&taken))
		mpmc_ring_put_back(ch, &taken);
	if (got)
		return got;
	return ret == 1 ? 0 : ret;
}

/* ---- Sending ------------------------------------------------------------ */

/* A cheap early answer for a full channel, rechecked under the lock. */
static bool mpmc_looks_full(struct mpmc_chan *ch)
{
	return READ_ONCE(ch->nr_msgs) >= READ_ONCE(ch->capacity) &&
	       !(READ_ONCE(ch->flags) & MPMC_CONFIG_OVERWRITE) &&
	       list_empty_careful(&ch->waiters[MPMC_RECV]);
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

/* Under the lock: 0 if a message of @len bytes may enter now, else why not. */
static int mpmc_send_check(struct mpmc_chan *ch, u32 len)
{
	lockdep_assert_held(&ch->lock);
	if (ch->shutdown)
		return -EPIPE;
	if (len > ch->max_msg_size)
		return -EMSGSIZE;
	return mpmc_can_send(ch) ? 0 : -EAGAIN;
}

/*
 * Enqueue or hand off @msg, waiting for room as @opts allow. On success
 * the message is the channel's: a receiver may already have freed it.
 */
static int mpmc_send_msg(struct mpmc_chan *ch, struct mpmc_msg *msg,
			 const struct mpmc_wait_opts *opts)
{
	struct mpmc_waiter w;
	u32 len = msg->len, seq;
	int ret;

	spin_lock(&ch->lock);
	while ((ret = mpmc_send_check(ch, len)) == -EAGAIN && !opts->nonblock) {
		w.msg = msg;
		/* A receiver that admits us also notifies the pollers. */
		ret = mpmc_block(ch, MPMC_SEND, &w, opts);
		if (ret != MPMC_RETRY) {
			if (!ret)
				trace_mpmc_send(ch->id, len,
						READ_ONCE(ch->nr_msgs), w.seq);
			return ret;
		}
		spin_lock(&ch->lock);
	}
	if (!ret) {
		/* Once in the channel, a receiver may free @msg at any time. */
		seq = mpmc_accept(ch, msg);
		trace_mpmc_send(ch->id, len, ch->nr_msgs, seq);
	}
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
	int ret;

	ret = mpmc_send_precheck(ch, len, opts);
	if (ret)
		return ret;
	msg = mpmc_msg_alloc(&ch->pool, len, opts->nowait_alloc);
	if (!msg)
		return opts->nowait_alloc ? -EAGAIN : -ENOMEM;
	if (!copy_from_iter_full(mpmc_msg_data(msg), len, from)) {
		mpmc_msg_free(&ch->pool, msg);
		return -EFAULT;
	}
	msg->len = len;
	msg->prio = 0;
	if (unlikely(mpmc_chan_ring(ch)))
		return mpmc_ring_chan_send(ch, msg, opts);
	ret = mpmc_send_msg(ch, msg, opts);
	if (unlikely(ret == MPMC_TO_RING))
		return mpmc_ring_chan_send(ch, msg, opts);
	if (ret) {
		mpmc_msg_free(&ch->pool, msg);
		return ret;
	}
	return len;
}

/*
 * Copy in the messages of @vec, stopping at the first that cannot be.
 * Buffers come from the pool in one go, sized as the first message.
 */
static int mpmc_build_batch(struct mpmc_chan *ch, const struct mpmc_msgvec *vec,
			    unsigned int n, struct list_head *msgs)
{
	u32 max = READ_ONCE(ch->max_msg_size);
	struct mpmc_msg *msg;
	LIST_HEAD(stash);
	unsigned int i;
	int ret = 0;

	mpmc_pool_take(&ch->pool, vec[0].len, n, &stash);
	for (i = 0; i < n; i++) {
		if (vec[i].len > max) {
			ret = -EMSGSIZE;
			break;
		}
		msg = mpmc_msg_alloc_stash(&stash, vec[i].len) ?:
		      mpmc_msg_alloc(&ch->pool, vec[i].len, false);
		if (!msg) {
			ret = -ENOMEM;
			break;
		}
		if (copy_from_user(mpmc_msg_data(msg),
				   u64_to_user_ptr(vec[i].buf), vec[i].len)) {
			mpmc_msg_free(&ch->pool, msg);
			ret = -EFAULT;
			break;
		}
		msg->len = vec[i].len;
		msg->prio = vec[i].prio;
		list_add_tail(&msg->link, msgs);
	}
	mpmc_msg_free_list(&ch->pool, &stash);
	return ret;
}

/*
 * Move messages from @msgs into the channel while that needs no waiting:
 * hand-offs to blocked receivers first, then as many as there is room for
 * spliced onto the queue at once. Returns how many moved.
 */
static unsigned int mpmc_send_more(struct mpmc_chan *ch,
				   struct list_head *msgs)
{
	struct mpmc_msg *msg, *tmp;
	unsigned int sent = 0;

	lockdep_assert_held(&ch->lock);
	list_for_each_entry_safe(msg, tmp, msgs, link) {
		u32 len = msg->len, seq;

		if (mpmc_send_check(ch, len))
			break;
		list_del(&msg->link);
		/* Once in the channel, a receiver may free @msg at any time. */
		seq = mpmc_accept(ch, msg);
		trace_mpmc_send(ch->id, len, ch->nr_msgs, seq);
		sent++;
	}
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
 * Every message is copied in first; they then move under one hold of the
 * lock for as long as they can without waiting. Only when the first one
 * must wait does the lock get taken again, after it moved, for the rest. A
 * message that cannot be copied in (too big, bad pointer, no memory) ends
 * the batch before it.
 *
 * Return: the number of messages sent (at least 1), or a negative errno
 * as for mpmc_chan_send() with nothing sent.
 */
int mpmc_chan_send_batch(struct mpmc_chan *ch, const struct mpmc_msgvec *vec,
			 unsigned int n, const struct mpmc_wait_opts *opts)
{
	struct mpmc_msg *first;
	LIST_HEAD(msgs);
	int ret;

	if (unlikely(mpmc_chan_ring(ch)))
		return mpmc_ring_chan_send_batch(ch, vec, n, opts);
	ret = mpmc_send_precheck(ch, vec[0].len, opts);
	if (ret)
		return ret;
	ret = mpmc_build_batch(ch, vec, n, &msgs);
	if (list_empty(&msgs))
		return ret;

	spin_lock(&ch->lock);
	ret = mpmc_send_more(ch, &msgs);
	if (!ret) {
		/* The first message must wait, or fails: as a single send. */
		mpmc_unlock(ch);
		first = list_first_entry(&msgs, struct mpmc_msg, link);
		list_del(&first->link);
		ret = mpmc_send_msg(ch, first, opts);
		if (ret) {
			mpmc_msg_free(&ch->pool, first);
			mpmc_msg_free_list(&ch->pool, &msgs);
			if (ret == MPMC_TO_RING)
				return mpmc_ring_chan_send_batch(ch, vec, n,
								 opts);
			return ret;
		}
		spin_lock(&ch->lock);
		ret = 1 + mpmc_send_more(ch, &msgs);
	}
	mpmc_unlock(ch);
	mpmc_msg_free_list(&ch->pool, &msgs);
	return ret;
}

/* ---- Receiving ---------------------------------------------------------- */

/*
 * The message a receive would take now: the head of the queue, or on a
 * rendezvous channel the oldest blocked sender's; NULL if none.
 */
static struct mpmc_msg *mpmc_next(struct mpmc_chan *ch)
{
	struct mpmc_waiter *w;

	if (ch->nr_msgs)
		return mpmc_head(ch);
	w = mpmc_rendezvous_sender(ch);
	return w ? w->msg : NULL;
}

/*
 * Take the message mpmc_next() returned: dequeue it and let a blocked
 * sender into the room made, or take it from the blocked sender of a
 * rendezvous, whose send completes at this moment.
 */
static struct mpmc_msg *mpmc_take_next(struct mpmc_chan *ch)
{
	struct mpmc_waiter *w;
	struct mpmc_msg *msg;

	if (ch->nr_msgs) {
		msg = mpmc_dequeue(ch);
		mpmc_admit_senders(ch, 1);
		return msg;
	}
	w = mpmc_rendezvous_sender(ch);
	msg = w->msg;
	msg->seq = ch->total_sent++;
	w->seq = msg->seq;
	ch->total_received++;
	atomic_inc(&ch->nr_taken);
	mpmc_waiter_complete(ch, MPMC_SEND, w, NULL, 0);
	return msg;
}

/*
 * Take queued messages (on a rendezvous channel, blocked senders') for the
 * buffers of @vec, in receive order, while the next one fits the next
 * entry; every message taken makes room that is owed to blocked senders
 * at once. *@queued[i] is the queue length right after the i-th was taken
 * (for tracing). Returns how many were taken.
 */
static unsigned int mpmc_take_queued(struct mpmc_chan *ch,
				     const struct mpmc_msgvec *vec,
				     unsigned int n, struct list_head *taken,
				     u32 *queued)
{
	struct mpmc_msg *msg;
	unsigned int i;

	lockdep_assert_held(&ch->lock);
	for (i = 0; i < n; i++) {
		msg = mpmc_next(ch);
		if (!msg || msg->len > vec[i].len)
			break;
		list_add_tail(&mpmc_take_next(ch)->link, taken);
		queued[i] = ch->nr_msgs;
	}
	if (i)
		mpmc_note_room(ch);
	return i;
}

/*
 * A blocked receiver was handed @msg for @vec[0]: take what was queued
 * meanwhile for the rest of @vec, as mpmc_take_queued(). Returns how many
 * messages the receiver has.
 */
static int mpmc_take_handed(struct mpmc_chan *ch, struct mpmc_msg *msg,
			    const struct mpmc_msgvec *vec, unsigned int n,
			    struct list_head *taken, u32 *queued)
{
	int ret = 1;

	/* Receivers wait only while nothing is queued. */
	list_add_tail(&msg->link, taken);
	queued[0] = 0;
	if (n > 1) {
		spin_lock(&ch->lock);
		ret += mpmc_take_queued(ch, vec + 1, n - 1, taken, queued + 1);
		mpmc_unlock(ch);
	}
	return ret;
}

/*
 * Take up to @n messages for the buffers of @vec onto @taken: what is
 * queued, or by waiting (as @opts allow) for a sender to hand one over,
 * then what was queued meanwhile. Called with ch->lock held, returns with
 * it dropped: how many were taken (0 at end of file), or a negative errno
 * with none taken.
 */
static int mpmc_take(struct mpmc_chan *ch, const struct mpmc_msgvec *vec,
		     unsigned int n, const struct mpmc_wait_opts *opts,
		     struct list_head *taken, u32 *queued)
	__releases(&ch->lock)
{
	struct mpmc_waiter w;
	int ret;

	lockdep_assert_held(&ch->lock);
	while (!mpmc_next(ch) && !ch->shutdown && !opts->nonblock) {
		w.msg = NULL;
		w.room = vec[0].len;
		ret = mpmc_block(ch, MPMC_RECV, &w, opts);
		if (ret == MPMC_RETRY) {
			spin_lock(&ch->lock);
			continue;
		}
		if (ret || !w.msg)
			return ret;
		return mpmc_take_handed(ch, w.msg, vec, n, taken, queued);
	}
	if (mpmc_next(ch)) {
		ret = mpmc_take_queued(ch, vec, n, taken, queued);
		if (!ret) {
			/* Throughput mode: a receiver that fits may sleep. */
			if (mpmc_barging(ch))
				mpmc_pass_on(ch, MPMC_RECV);
			ret = -EMSGSIZE;
		}
	} else {
		ret = ch->shutdown ? 0 : -EAGAIN;
	}
	mpmc_unlock(ch);
	return ret;
}

/*
 * Put back messages whose copy-out faulted (or whose receipt could not be
 * reported), ahead of everything else and in their order: to blocked
 * receivers first (they wait only while the queue is empty), the rest at
 * the head of the queue. After SHUT_RD they are discarded, as the queue
 * was. Empties @msgs.
 */
static void mpmc_put_back(struct mpmc_chan *ch, struct list_head *msgs)
{
	struct mpmc_msg *msg, *tmp;
	unsigned int n = list_count_nodes(msgs);
	LIST_HEAD(discard);

	spin_lock(&ch->lock);
	ch->total_received -= n;
	atomic_sub(n, &ch->nr_taken);
	if (ch->shutdown & MPMC_SHUT_RD)
		list_splice_init(msgs, &discard);
	list_for_each_entry_safe(msg, tmp, msgs, link) {
		if (mpmc_barging(ch))
			break;
		list_del(&msg->link);
		if (!mpmc_hand_off(ch, msg)) {
			list_add(&msg->link, msgs);
			break;
		}
	}
	/* What no receiver took goes back at the head, in order. */
	list_for_each_entry_safe_reverse(msg, tmp, msgs, link) {
		list_del(&msg->link);
		mpmc_enqueue(ch, msg, true);
		if (mpmc_barging(ch))
			mpmc_pass_on(ch, MPMC_RECV);
	}
	mpmc_unlock(ch);
	mpmc_msg_free_list(&ch->pool, &discard);
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
	struct mpmc_msgvec vec = { .len = min_t(size_t, iov_iter_count(to),
						U32_MAX) };
	struct mpmc_msg *msg;
	LIST_HEAD(taken);
	ssize_t ret;
	u32 queued;

	if (unlikely(mpmc_chan_ring(ch)))
		return mpmc_ring_chan_recv(ch, to, opts);
	spin_lock(&ch->lock);
	msg = mpmc_next(ch);
	if (likely(msg && msg->len <= vec.len)) {
		/* What mpmc_take() does for one message there, without lists. */
		msg = mpmc_take_next(ch);
		mpmc_note_room(ch);
		queued = ch->nr_msgs;
		mpmc_unlock(ch);
	} else {
		ret = mpmc_take(ch, &vec, 1, opts, &taken, &queued);
		if (unlikely(ret == MPMC_TO_RING))
			return mpmc_ring_chan_recv(ch, to, opts);
		if (ret <= 0)
			return ret;
		msg = list_first_entry(&taken, struct mpmc_msg, link);
		list_del(&msg->link);
	}
	ret = msg->len;
	if (copy_to_iter(mpmc_msg_data(msg), msg->len, to) != msg->len) {
		list_add(&msg->link, &taken);
		mpmc_put_back(ch, &taken);
		return -EFAULT;
	}
	atomic_dec(&ch->nr_taken);
	trace_mpmc_recv(ch->id, ret, queued, msg->seq);
	mpmc_msg_free(&ch->pool, msg);
	return ret;
}

/*
 * Copy the messages of @taken out to the buffers of @vec and their
 * lengths to @vec, then @vec back to @uvec in one write. Returns how many
 * the caller has now received: those before the first copy-out that
 * faulted, or none if the lengths could not be written back.
 */
static unsigned int mpmc_copy_out(struct list_head *taken,
				  struct mpmc_msgvec *vec,
				  struct mpmc_msgvec __user *uvec)
{
	struct mpmc_msg *msg;
	unsigned int i = 0;

	list_for_each_entry(msg, taken, link) {
		if (copy_to_user(u64_to_user_ptr(vec[i].buf),
				 mpmc_msg_data(msg), msg->len))
			break;
		vec[i].len = msg->len;
		vec[i++].prio = msg->prio;
	}
	if (i && copy_to_user(uvec, vec, array_size(i, sizeof(*vec))))
		return 0;
	return i;
}

/**
 * mpmc_chan_recv_batch - receive up to @n messages into the buffers of @vec
 * @ch:   the channel
 * @vec:  @n entries (a kernel copy of @uvec): in, buffer and size; out,
 *        for each message received, its length
 * @uvec: the caller's entries, to which @vec is written back
 * @n:    number of entries, at most MPMC_BATCH_CHUNK
 * @opts: how the first message may wait; the others never wait
 *
 * The messages are taken under one hold of the lock (two if the first
 * must be waited for) while the next queued message fits the next entry,
 * copied out, and their lengths written back in one write. A message that
 * is not received, because its copy-out faulted or the lengths could not
 * be written back, is put back at the head of the queue with the ones
 * after it, in order: every message is received exactly once.
 *
 * Return: the number of messages received, 0 at end of file, or a
 * negative errno as for mpmc_chan_recv() with nothing received.
 */
int mpmc_chan_recv_batch(struct mpmc_chan *ch, struct mpmc_msgvec *vec,
			 struct mpmc_msgvec __user *uvec, unsigned int n,
			 const struct mpmc_wait_opts *opts)
{
	u32 queued[MPMC_BATCH_CHUNK];
	struct list_head *last;
	struct mpmc_msg *msg;
	unsigned int i, got;
	LIST_HEAD(taken);
	LIST_HEAD(done);
	int ret;

	if (WARN_ON_ONCE(n > MPMC_BATCH_CHUNK))
		n = MPMC_BATCH_CHUNK;
	if (unlikely(mpmc_chan_ring(ch)))
		return mpmc_ring_chan_recv_batch(ch, vec, uvec, n, opts);
	spin_lock(&ch->lock);
	ret = mpmc_take(ch, vec, n, opts, &taken, queued);
	if (unlikely(ret == MPMC_TO_RING))
		return mpmc_ring_chan_recv_batch(ch, vec, uvec, n, opts);
	if (ret <= 0)
		return ret;
	got = mpmc_copy_out(&taken, vec, uvec);

	/* The first @got are received: cut them off @taken in one go. */
	last = &taken;
	for (i = 0; i < got; i++) {
		last = last->next;
		msg = list_entry(last, struct mpmc_msg, link);
		trace_mpmc_recv(ch->id, msg->len, queued[i], msg->seq);
	}
	list_cut_position(&done, &taken, last);
	atomic_sub(got, &ch->nr_taken);
	mpmc_msg_free_list(&ch->pool, &done);
	if (!list_empty(&taken))
		mpmc_put_back(ch, &taken);
	return got ? got : -EFAULT;
}

/* ---- Peeking ------------------------------------------------------------ */

/*
 * Take a reference on up to @n queued messages, in the order receives
 * would take them, stopping at the first that does not fit its entry of
 * @vec. Returns how many (0 if nothing is queued), or -EMSGSIZE if the
 * first does not fit.
 */
static int mpmc_peek_collect(struct mpmc_chan *ch,
			     const struct mpmc_msgvec *vec, unsigned int n,
			     struct mpmc_msg **got)
{
	unsigned long map = ch->prio_map;
	struct mpmc_msg *msg;
	unsigned int i = 0;

	lockdep_assert_held(&ch->lock);
	for (; map && i < n; map &= ~BIT(__fls(map))) {
		list_for_each_entry(msg, &ch->msgs[__fls(map)], link) {
			if (i == n || msg->len > vec[i].len)
				return i ? i : -EMSGSIZE;
			/* See struct mpmc_msg: freed by the last user. */
			WRITE_ONCE(msg->peeked, true);
			refcount_inc(&msg->users);
			got[i++] = msg;
		}
	}
	return i;
}

/* Sleep as @deadline allows; 0 when woken, else why the wait must end. */
static int mpmc_sleep(ktime_t *deadline)
{
	if (signal_pending(current))
		return -ERESTARTSYS;
	if (!schedule_hrtimeout_range(deadline, current->timer_slack_ns,
				      HRTIMER_MODE_ABS))
		return -ETIMEDOUT;
	return 0;
}

/*
 * Wait as a poller does until something is queued (or end of file), then
 * take references on up to @n messages. Peekers sleep on the pollers'
 * queue, never on ch->waiters[], so they take no part in hand-off and do
 * not count as blocked receivers; ch->polled orders them against wakers
 * as in mpmc_chan_poll().
 */
static int mpmc_peek_wait(struct mpmc_chan *ch, const struct mpmc_msgvec *vec,
			  unsigned int n, const struct mpmc_wait_opts *opts,
			  struct mpmc_msg **got)
{
	DEFINE_WAIT(wait);
	int ret;

	for (;;) {
		prepare_to_wait(&ch->pollers[MPMC_RECV], &wait,
				TASK_INTERRUPTIBLE);
		if (!READ_ONCE(ch->polled))
			WRITE_ONCE(ch->polled, true);
		spin_lock(&ch->lock);
		/* A ring has no peek (ring mode may start while we wait). */
		ret = ch->ring ? -EINVAL : mpmc_peek_collect(ch, vec, n, got);
		if (!ret && !ch->shutdown && opts->nonblock)
			ret = -EAGAIN;
		if (ret || ch->shutdown) {
			mpmc_unlock(ch);
			break;
		}
		mpmc_unlock(ch);
		ret = mpmc_sleep(opts->deadline);
		if (ret)
			break;
	}
	finish_wait(&ch->pollers[MPMC_RECV], &wait);
	return ret;
}

/**
 * mpmc_chan_peek - copy up to @n messages without removing them
 * @ch:   the channel
 * @vec:  @n entries (a kernel copy of @uvec): in, buffer and size; out,
 *        for each message copied, its length and priority
 * @uvec: the caller's entries, to which @vec is written back
 * @n:    number of entries
 * @opts: how long to wait for a message to be queued
 *
 * The messages are those a receive would take next, in that order; a
 * message that does not fit its entry ends the copy. Each is held by a
 * reference while it is copied, so a receiver may take and free it
 * meanwhile.
 *
 * Return: how many were copied, 0 at end of file, or -EMSGSIZE (the first
 * does not fit), -EFAULT, -EAGAIN, -ERESTARTSYS, -ETIMEDOUT, -ENOMEM.
 */
int mpmc_chan_peek(struct mpmc_chan *ch, struct mpmc_msgvec *vec,
		   struct mpmc_msgvec __user *uvec, unsigned int n,
		   const struct mpmc_wait_opts *opts)
{
	struct mpmc_msg **got;
	int i, ret;

	if (mpmc_chan_ring(ch))
		return -EINVAL;
	got = kmalloc_array(n, sizeof(*got), GFP_KERNEL);
	if (!got)
		return -ENOMEM;
	ret = mpmc_peek_wait(ch, vec, n, opts, got);
	for (i = 0; i < ret; i++) {
		if (copy_to_user(u64_to_user_ptr(vec[i].buf),
				 mpmc_msg_data(got[i]), got[i]->len))
			break;
		vec[i].len = got[i]->len;
		vec[i].prio = got[i]->prio;
	}
	if (ret > 0) {
		if (i && copy_to_user(uvec, vec, array_size(i, sizeof(*vec))))
			i = 0;
		while (ret--)
			mpmc_msg_free(&ch->pool, got[ret]);
		ret = i ? i : -EFAULT;
	}
	kfree(got);
	return ret;
}

/* ---- Shutdown and lifetime --------------------------------------------- */

/*
 * Apply shutdown bits @how (those not yet in effect): complete every
 * blocked sender with EPIPE and every blocked receiver with end of file;
 * SHUT_RD also moves the queue to @discard, for freeing after the lock is
 * dropped.
 */
static void mpmc_shutdown_locked(struct mpmc_chan *ch, unsigned int how,
				 struct list_head *discard)
{
	struct mpmc_waiter *w, *tmp;

	lockdep_assert_held(&ch->lock);
	how &= ~ch->shutdown;
	if (!how)
		return;
	WRITE_ONCE(ch->shutdown, ch->shutdown | how);
	trace_mpmc_shutdown(ch->id, how, ch->shutdown,
			    how & MPMC_SHUT_RD ? ch->nr_msgs : 0);
	if (how & MPMC_SHUT_RD)
		mpmc_unlink_all(ch, discard);
	if (ch->ring)
		mpmc_ring_shutdown(ch->ring, how);
	list_for_each_entry_safe(w, tmp, &ch->waiters[MPMC_SEND], link)
		mpmc_waiter_complete(ch, MPMC_SEND, w, NULL, -EPIPE);
	/*
	 * End of file for blocked receivers; but in throughput mode messages
	 * may still be queued while some sleep: those try again and drain.
	 */
	list_for_each_entry_safe(w, tmp, &ch->waiters[MPMC_RECV], link)
		mpmc_waiter_complete(ch, MPMC_RECV, w, NULL,
				     ch->nr_msgs || ch->ring ? MPMC_RETRY : 0);
	ch->wake.events |= MPMC_EV_HUP;
}

/* Shut down @how and drop the lock; the one tail of shutdown and release. */
static void mpmc_shutdown_unlock(struct mpmc_chan *ch, unsigned int how)
	__releases(&ch->lock)
{
	LIST_HEAD(discard);

	mpmc_shutdown_locked(ch, how, &discard);
	mpmc_unlock(ch);
	mpmc_msg_free_list(&ch->pool, &discard);
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
int mpmc_chan_shutdown(struct mpmc_chan *ch, unsigned long how)
{
	if (!how || how & ~MPMC_SHUT_RDWR)
		return -EINVAL;
	spin_lock(&ch->lock);
	mpmc_shutdown_unlock(ch, how);
	return 0;
}

/* The largest pool a channel of this configuration keeps when drained. */
static size_t mpmc_pool_budget(u32 capacity, u32 max_msg_size)
{
	return clamp_t(u64, (u64)capacity * max_msg_size / 8, PAGE_SIZE,
		       SZ_64K);
}

/* The default configuration, within limits an administrator may lower. */
static void mpmc_default_config(u32 *capacity, u32 *max_msg_size)
{
	unsigned long bytes = mpmc_param(&mpmc_max_channel_bytes);
	u32 size = min_t(unsigned long, mpmc_param(&mpmc_max_msg_size),
			 MPMC_DEFAULT_MSG_SIZE);
	u32 cap = min_t(unsigned long, mpmc_param(&mpmc_max_capacity),
			MPMC_DEFAULT_CAPACITY);

	if ((u64)cap * size > bytes)
		cap = max_t(u64, bytes / size, 1);
	*capacity = cap;
	*max_msg_size = size;
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
	struct mpmc_chan *ch;
	enum mpmc_dir dir;
	unsigned int i;

	ch = kzalloc(sizeof(*ch), GFP_KERNEL_ACCOUNT);
	if (!ch)
		return NULL;
	spin_lock_init(&ch->lock);
	for (i = 0; i < MPMC_PRIO_MAX; i++)
		INIT_LIST_HEAD(&ch->msgs[i]);
	INIT_LIST_HEAD(&ch->wake.drop);
	for (dir = 0; dir < MPMC_NR_DIRS; dir++) {
		INIT_LIST_HEAD(&ch->waiters[dir]);
		init_waitqueue_head(&ch->pollers[dir]);
	}
	refcount_set(&ch->ref, 1);
	ch->id = atomic64_inc_return(&mpmc_next_id);
	mpmc_default_config(&ch->capacity, &ch->max_msg_size);
	mpmc_pool_init(&ch->pool,
		       mpmc_pool_budget(ch->capacity, ch->max_msg_size));

	if (roles & MPMC_ROLE_SEND)
		ch->files[MPMC_SEND] = 1;
	else
		ch->shutdown |= MPMC_SHUT_WR;
	if (roles & MPMC_ROLE_RECV)
		ch->files[MPMC_RECV] = 1;
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
		ch->files[MPMC_SEND]++;
	if (roles & MPMC_ROLE_RECV)
		ch->files[MPMC_RECV]++;
	mpmc_unlock(ch);
}

static void mpmc_chan_free(struct mpmc_chan *ch)
{
	LIST_HEAD(msgs);

	spin_lock(&ch->lock);
	mpmc_unlink_all(ch, &msgs);
	spin_unlock(&ch->lock);
	mpmc_msg_free_list(&ch->pool, &msgs);
	mpmc_ring_destroy(ch->ring);
	mpmc_pool_destroy(&ch->pool);
	kfree(ch);
}

/**
 * mpmc_chan_get - take a reference on @ch that is not a file's
 * @ch: the channel (a reaper of its ring holds one)
 */
void mpmc_chan_get(struct mpmc_chan *ch)
{
	refcount_inc(&ch->ref);
}

/**
 * mpmc_chan_put - drop a reference taken by mpmc_chan_get()
 * @ch: the channel; freed with the last reference
 */
void mpmc_chan_put(struct mpmc_chan *ch)
{
	if (refcount_dec_and_test(&ch->ref))
		mpmc_chan_free(ch);
}

/**
 * mpmc_chan_msg_alloc - a message buffer of @ch's pool, for @len bytes
 * @ch:  the channel
 * @len: payload bytes
 *
 * Return: the buffer (may sleep), or NULL.
 */
struct mpmc_msg *mpmc_chan_msg_alloc(struct mpmc_chan *ch, u32 len)
{
	struct mpmc_msg *msg = mpmc_msg_alloc(&ch->pool, len, false);

	if (msg)
		msg->len = len;
	return msg;
}

/**
 * mpmc_chan_msg_free - give back a buffer of mpmc_chan_msg_alloc()
 * @ch:  the channel
 * @msg: the buffer
 */
void mpmc_chan_msg_free(struct mpmc_chan *ch, struct mpmc_msg *msg)
{
	mpmc_msg_free(&ch->pool, msg);
}

/**
 * mpmc_chan_ring - the ring of @ch in ring mode
 * @ch: the channel
 *
 * Return: the ring, or NULL if @ch is not in ring mode. Once set, the ring
 * stays until the channel is freed.
 */
struct mpmc_ring *mpmc_chan_ring(const struct mpmc_chan *ch)
{
	/* Pairs with mpmc_ring_config(): the ring is initialized. */
	return smp_load_acquire(&ch->ring);
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

	spin_lock(&ch->lock);
	if ((roles & MPMC_ROLE_SEND) && !--ch->files[MPMC_SEND])
		how |= MPMC_SHUT_WR;
	if ((roles & MPMC_ROLE_RECV) && !--ch->files[MPMC_RECV])
		how |= MPMC_SHUT_RD;
	mpmc_shutdown_unlock(ch, how);
	if (refcount_dec_and_test(&ch->ref))
		mpmc_chan_free(ch);
}

/* ---- Configuration, stats and readiness --------------------------------- */

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
	cfg->flags = ch->flags;
	mpmc_unlock(ch);
}

/* Is @cfg valid and within the module's limits? */
static int mpmc_config_check(const struct mpmc_config *cfg)
{
	int i;

	if (cfg->flags & ~MPMC_CONFIG_FLAGS)
		return -EINVAL;
	if (!cfg->capacity && cfg->flags & MPMC_CONFIG_OVERWRITE)
		return -EINVAL;
	if (cfg->flags & MPMC_CONFIG_RING &&
	    (!is_power_of_2(cfg->capacity) ||
	     cfg->flags & MPMC_CONFIG_OVERWRITE ||
	     mpmc_ring_bytes(cfg->capacity, cfg->max_msg_size) >
	     mpmc_param(&mpmc_max_ring_bytes)))
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(cfg->reserved); i++)
		if (cfg->reserved[i])
			return -EINVAL;
	if (cfg->capacity > mpmc_param(&mpmc_max_capacity))
		return -EINVAL;
	if (!cfg->max_msg_size ||
	    cfg->max_msg_size > mpmc_param(&mpmc_max_msg_size))
		return -EINVAL;
	if ((u64)cfg->capacity * cfg->max_msg_size >
	    mpmc_param(&mpmc_max_channel_bytes))
		return -EINVAL;
	return 0;
}

/*
 * Ring mode: turned on once, while nothing is queued, taken or waiting;
 * from then on the geometry is the ring's and cannot change. Only
 * MPMC_CONFIG_THROUGHPUT may still be toggled (a ring always barges).
 */
static int mpmc_ring_config(struct mpmc_chan *ch, const struct mpmc_config *cfg)
{
	struct mpmc_ring *r = NULL;
	int ret = 0;

	if (!mpmc_chan_ring(ch)) {
		r = mpmc_ring_create(ch, cfg->capacity, cfg->max_msg_size);
		if (!r)
			return -ENOMEM;
	}
	spin_lock(&ch->lock);
	if (ch->ring) {
		if (!(cfg->flags & MPMC_CONFIG_RING) ||
		    cfg->capacity != ch->capacity ||
		    cfg->max_msg_size != ch->max_msg_size)
			ret = -EBUSY;
		else
			WRITE_ONCE(ch->flags, cfg->flags);
	} else if (ch->nr_msgs || atomic_read(&ch->nr_taken) ||
		   ch->nr_waiters[MPMC_SEND] || ch->nr_waiters[MPMC_RECV]) {
		ret = -EBUSY;
	} else {
		WRITE_ONCE(ch->capacity, cfg->capacity);
		WRITE_ONCE(ch->max_msg_size, cfg->max_msg_size);
		WRITE_ONCE(ch->flags, cfg->flags);
		if (ch->shutdown)
			mpmc_ring_shutdown(r, ch->shutdown);
		if (READ_ONCE(ch->fasync)) {
			mpmc_ring_arm(r, true);
			mpmc_ring_arm(r, false);
		}
		/* Pairs with mpmc_chan_ring(). */
		smp_store_release(&ch->ring, r);
		r = NULL;
	}
	mpmc_unlock(ch);
	mpmc_ring_destroy(r);
	return ret;
}

/**
 * mpmc_chan_set_config - change the configuration of @ch
 * @ch:  the channel
 * @cfg: the new configuration
 *
 * Capacity may change at any time but not below the queued count; growing
 * it admits blocked senders. max_msg_size may change only while nothing is
 * queued. Throughput mode may be turned on or off at any time. Either all
 * of @cfg is applied or nothing is.
 *
 * Return: 0, -EINVAL for a value out of range, or -EBUSY.
 */
int mpmc_chan_set_config(struct mpmc_chan *ch, const struct mpmc_config *cfg)
{
	bool was_rendezvous;
	int ret;

	ret = mpmc_config_check(cfg);
	if (ret)
		return ret;
	if (cfg->flags & MPMC_CONFIG_RING || mpmc_chan_ring(ch))
		return mpmc_ring_config(ch, cfg);

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
		was_rendezvous = !ch->capacity;
		WRITE_ONCE(ch->capacity, cfg->capacity);
		WRITE_ONCE(ch->max_msg_size, cfg->max_msg_size);
		WRITE_ONCE(ch->flags, cfg->flags);
		if (!mpmc_barging(ch))
			mpmc_serve_receivers(ch);
		/* Growing from 0 queues blocked senders in order, any mode. */
		if (was_rendezvous)
			mpmc_move_senders_in(ch);
		mpmc_admit_senders(ch, 0);
		mpmc_note_room(ch);
	}
	mpmc_unlock(ch);
	if (!ret)
		mpmc_pool_set_budget(&ch->pool,
				     mpmc_pool_budget(cfg->capacity,
						      cfg->max_msg_size));
	return ret;
}

/*
 * A ring channel's traffic is counted by the ring's positions: what the
 * kernel saw is only part of it. The front queue holds messages that left
 * the ring but were not delivered.
 */
static void mpmc_ring_stats(struct mpmc_chan *ch, struct mpmc_stats *st)
{
	u64 sent, received, bytes;
	u32 queued;

	mpmc_ring_counts(ch->ring, &sent, &received, &queued, &bytes);
	/* After SHUT_RD what is left in the ring is no longer queued. */
	if (st->shutdown & MPMC_SHUT_RD)
		queued = bytes = 0;
	st->total_sent += sent;
	received += st->total_received;
	st->total_received = received > st->queued_msgs ?
			     received - st->queued_msgs : 0;
	st->queued_msgs += queued;
	st->queued_bytes += bytes;
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
	st->send_files = ch->files[MPMC_SEND];
	st->recv_files = ch->files[MPMC_RECV];
	st->blocked_senders = ch->nr_waiters[MPMC_SEND];
	st->blocked_receivers = ch->nr_waiters[MPMC_RECV];
	st->total_sent = ch->total_sent;
	st->total_received = ch->total_received;
	st->total_dropped = ch->total_dropped;
	mpmc_unlock(ch);
	if (mpmc_chan_ring(ch))
		mpmc_ring_stats(ch, st);
}

/**
 * mpmc_chan_id - the unique id of @ch, as fdinfo and tracepoints show it
 * @ch: the channel
 *
 * Return: the id, never 0.
 */
u64 mpmc_chan_id(const struct mpmc_chan *ch)
{
	return ch->id;
}

/**
 * mpmc_chan_fasync - add or remove a SIGIO subscriber (fasync_helper())
 * @ch:   the channel
 * @fd:   the file descriptor
 * @file: its file
 * @on:   subscribe or not
 *
 * Return: as fasync_helper().
 */
int mpmc_chan_fasync(struct mpmc_chan *ch, int fd, struct file *file, int on)
{
	return fasync_helper(fd, file, on, &ch->fasync);
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
	msg = mpmc_next(ch);
	len = msg ? msg->len : 0;
	if (!msg && ch->ring && mpmc_ring_pop(ch->ring, NULL, 0, &len) !=
	    -EMSGSIZE)
		len = 0;
	mpmc_unlock(ch);
	return len;
}

/*
 * Ready in direction @dir of a ring channel, arming the pollers' bit
 * first if not: a ring peer that changes the ring after our look sees
 * the bit and rings (the pattern of mpmc_ring_block()).
 */
static bool mpmc_ring_poll_dir(struct mpmc_chan *ch, enum mpmc_dir dir)
{
	if (mpmc_ring_ready(ch, dir))
		return true;
	mpmc_ring_arm(ch->ring, mpmc_dir_recv(dir));
	/* Arm, then look: pairs with a ring peer's fence (mpmc_ring_block()). */
	smp_mb();
	return mpmc_ring_ready(ch, dir);
}

/* mpmc_chan_poll() of a ring channel: the answers of the same calls. */
static __poll_t mpmc_ring_poll(struct mpmc_chan *ch, unsigned int roles)
{
	__poll_t mask = 0;
	bool broken;

	spin_lock(&ch->lock);
	broken = mpmc_ring_broken(ch->ring);
	if (roles & MPMC_ROLE_RECV) {
		if (mpmc_ring_poll_dir(ch, MPMC_RECV))
			mask |= EPOLLIN | EPOLLRDNORM;
		if (ch->shutdown && !ch->nr_msgs &&
		    (ch->shutdown & MPMC_SHUT_RD ||
		     mpmc_ring_drained(ch->ring)))
			mask |= EPOLLHUP;
	}
	if (roles & MPMC_ROLE_SEND) {
		if (mpmc_ring_poll_dir(ch, MPMC_SEND))
			mask |= EPOLLOUT | EPOLLWRNORM;
		if (ch->shutdown)
			mask |= EPOLLERR;
	}
	if (broken)
		mask |= EPOLLERR;
	mpmc_unlock(ch);
	return mask;
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
 * ch->polled is set and the wait queues are registered before the state
 * is read. A waker changes the state under ch->lock and checks ch->polled
 * and the queues after dropping it, so either this poll sees the new
 * state or the waker sees this poller (the lock orders ch->polled; the
 * barriers of poll_wait() and wq_has_sleeper() order the queue):
 *
 *   poll                                 send
 *   ----                                 ----
 *   WRITE_ONCE(ch->polled, true)
 *   poll_wait(&ch->pollers[MPMC_RECV])
 *   spin_lock(&ch->lock)
 *   nr_msgs == 0: no EPOLLIN
 *   spin_unlock(&ch->lock)
 *                                        spin_lock(&ch->lock)
 *                                        enqueue
 *                                        spin_unlock(&ch->lock)
 *                                        ch->polled: true
 *                                        wq_has_sleeper(): sees the poller
 *                                        wake_up(EPOLLIN)
 *
 * Return: the ready events.
 */
__poll_t mpmc_chan_poll(struct mpmc_chan *ch, struct file *file,
			poll_table *wait, unsigned int roles)
{
	__poll_t mask = 0;

	if (!READ_ONCE(ch->polled))
		WRITE_ONCE(ch->polled, true);
	if (roles & MPMC_ROLE_RECV)
		poll_wait(file, &ch->pollers[MPMC_RECV], wait);
	if (roles & MPMC_ROLE_SEND)
		poll_wait(file, &ch->pollers[MPMC_SEND], wait);

	if (mpmc_chan_ring(ch))
		return mpmc_ring_poll(ch, roles);
	spin_lock(&ch->lock);
	if (roles & MPMC_ROLE_RECV) {
		if (mpmc_next(ch) || ch->shutdown)
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
