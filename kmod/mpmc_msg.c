// SPDX-License-Identifier: GPL-2.0
/*
 * mpmc message store: buffers for messages, from module-wide size-class
 * caches, recycled through a small pool in each channel.
 *
 * A message whose header and payload fit in a page is one object of a
 * size-class cache (64, 128, ... 4096 bytes). A larger one would waste up
 * to half of a power-of-two block, so its header comes from the smallest
 * class and its payload from kvmalloc(len): memory follows the payload.
 *
 * The caches have a constructor, so the slab allocator does not zero
 * their objects under init_on_alloc (slab_want_init_on_alloc() in
 * mm/slab.h): a sender overwrites the first len bytes, and nothing ever
 * copies more than len bytes out. They are SLAB_ACCOUNT, so every object
 * is charged to the memory cgroup of the task that allocates it, and
 * their usercopy window is the payload alone.
 *
 * Each channel keeps the buffers its receivers free, up to a budget, and
 * its senders take them back: at a steady rate a channel allocates
 * nothing. The pool has its own lock, on its own cache line, so senders
 * and receivers do not take the channel's lock for it.
 */

#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>

#include "mpmc_msg.h"

/* Bytes in front of an inline payload. */
#define MPMC_MSG_HDR	offsetof(struct mpmc_msg, data)

/* The largest inline message: header and payload in one object. */
#define MPMC_INLINE_MAX	(1U << (MPMC_MSG_MIN_SHIFT + MPMC_NR_CLASSES - 1))

static_assert(MPMC_INLINE_MAX <= PAGE_SIZE);
static_assert(sizeof(struct mpmc_msg) <= (1U << MPMC_MSG_MIN_SHIFT));

static struct kmem_cache *mpmc_msg_cache[MPMC_NR_CLASSES];

static const char *const mpmc_msg_cache_name[MPMC_NR_CLASSES] = {
	"mpmc_msg-64", "mpmc_msg-128", "mpmc_msg-256", "mpmc_msg-512",
	"mpmc_msg-1k", "mpmc_msg-2k", "mpmc_msg-4k",
};

static unsigned int mpmc_class_size(unsigned int class)
{
	return 1U << (MPMC_MSG_MIN_SHIFT + class);
}

/* The smallest class whose objects hold @size bytes (<= MPMC_INLINE_MAX). */
static unsigned int mpmc_size_class(size_t size)
{
	if (size <= mpmc_class_size(0))
		return 0;
	return order_base_2(size) - MPMC_MSG_MIN_SHIFT;
}

/* The class of a buffer for a @len-byte message, or MPMC_MSG_EXTERNAL. */
static unsigned int mpmc_len_class(size_t len)
{
	size_t size = size_add(MPMC_MSG_HDR, len);

	return size > MPMC_INLINE_MAX ? MPMC_MSG_EXTERNAL : mpmc_size_class(size);
}

/* Only its existence matters: see the top comment. */
static void mpmc_msg_ctor(void *obj)
{
	struct mpmc_msg *msg = obj;

	INIT_LIST_HEAD(&msg->link);
}

/**
 * mpmc_msg_init - create the size-class caches
 *
 * Return: 0, or -ENOMEM with nothing created.
 */
int mpmc_msg_init(void)
{
	unsigned int i, size;

	for (i = 0; i < MPMC_NR_CLASSES; i++) {
		size = mpmc_class_size(i);
		mpmc_msg_cache[i] =
			kmem_cache_create_usercopy(mpmc_msg_cache_name[i], size,
						   __alignof__(struct mpmc_msg),
						   SLAB_ACCOUNT, MPMC_MSG_HDR,
						   size - MPMC_MSG_HDR,
						   mpmc_msg_ctor);
		if (!mpmc_msg_cache[i]) {
			mpmc_msg_exit();
			return -ENOMEM;
		}
	}
	return 0;
}

/**
 * mpmc_msg_exit - destroy the size-class caches (every channel is gone)
 */
void mpmc_msg_exit(void)
{
	unsigned int i;

	for (i = 0; i < MPMC_NR_CLASSES; i++) {
		kmem_cache_destroy(mpmc_msg_cache[i]);
		mpmc_msg_cache[i] = NULL;
	}
}

/* Give @msg (not NULL) and its payload back to the allocator. */
static void mpmc_msg_destroy(struct mpmc_msg *msg)
{
	if (msg->class == MPMC_MSG_EXTERNAL) {
		kvfree(msg->payload);
		kmem_cache_free(mpmc_msg_cache[0], msg);
		return;
	}
	kmem_cache_free(mpmc_msg_cache[msg->class], msg);
}

/* A new message has one user: its sender, then the queue or a receiver. */
static void mpmc_msg_init_refs(struct mpmc_msg *msg)
{
	msg->peeked = false;
	refcount_set(&msg->users, 1);
}

/*
 * Drop one user of @msg; true if it was the last, and @msg may be freed.
 * Without a peek there is only one: no atomic operation.
 */
static bool mpmc_msg_put(struct mpmc_msg *msg)
{
	return !READ_ONCE(msg->peeked) || refcount_dec_and_test(&msg->users);
}

/* A message too big to be inline: header and payload apart. */
static struct mpmc_msg *mpmc_msg_alloc_external(size_t len, gfp_t gfp)
{
	struct mpmc_msg *msg = kmem_cache_alloc(mpmc_msg_cache[0], gfp);

	if (!msg)
		return NULL;
	msg->payload = kvmalloc(len, gfp);
	if (!msg->payload) {
		kmem_cache_free(mpmc_msg_cache[0], msg);
		return NULL;
	}
	msg->class = MPMC_MSG_EXTERNAL;
	mpmc_msg_init_refs(msg);
	return msg;
}

/**
 * mpmc_pool_init - set up an empty pool
 * @pool:   the pool
 * @budget: most bytes of free buffers it may keep
 */
void mpmc_pool_init(struct mpmc_pool *pool, size_t budget)
{
	unsigned int i;

	pool->spare = NULL;
	spin_lock_init(&pool->lock);
	for (i = 0; i < MPMC_NR_CLASSES; i++)
		INIT_LIST_HEAD(&pool->free[i]);
	pool->bytes = 0;
	pool->budget = budget;
}

/* Move free buffers to @excess until @pool keeps at most its budget. */
static void mpmc_pool_trim(struct mpmc_pool *pool, struct list_head *excess)
{
	struct mpmc_msg *msg;
	unsigned int i;

	lockdep_assert_held(&pool->lock);
	for (i = MPMC_NR_CLASSES; i-- > 0 && pool->bytes > pool->budget;) {
		while (pool->bytes > pool->budget &&
		       !list_empty(&pool->free[i])) {
			msg = list_first_entry(&pool->free[i], struct mpmc_msg,
					       link);
			list_move(&msg->link, excess);
			WRITE_ONCE(pool->bytes, pool->bytes - mpmc_class_size(i));
		}
	}
}

static void mpmc_msg_destroy_list(struct list_head *list)
{
	struct mpmc_msg *msg, *tmp;

	list_for_each_entry_safe(msg, tmp, list, link)
		mpmc_msg_destroy(msg);
}

/**
 * mpmc_pool_set_budget - change how much @pool may keep, freeing the excess
 * @pool:   the pool
 * @budget: the new budget in bytes
 */
void mpmc_pool_set_budget(struct mpmc_pool *pool, size_t budget)
{
	LIST_HEAD(excess);

	spin_lock(&pool->lock);
	pool->budget = budget;
	mpmc_pool_trim(pool, &excess);
	spin_unlock(&pool->lock);
	mpmc_msg_destroy_list(&excess);
}

/**
 * mpmc_pool_destroy - free every buffer of @pool (its channel is gone)
 * @pool: the pool
 */
void mpmc_pool_destroy(struct mpmc_pool *pool)
{
	struct mpmc_msg *spare = xchg(&pool->spare, NULL);

	if (spare)
		mpmc_msg_destroy(spare);
	mpmc_pool_set_budget(pool, 0);
}

/* A free buffer of @class from @pool, or NULL. */
static struct mpmc_msg *mpmc_pool_get(struct mpmc_pool *pool,
				      unsigned int class)
{
	struct mpmc_msg *msg;

	/* An empty pool is the common case of a new channel: no lock. */
	if (!READ_ONCE(pool->bytes))
		return NULL;
	spin_lock(&pool->lock);
	msg = list_first_entry_or_null(&pool->free[class], struct mpmc_msg,
				       link);
	if (msg) {
		list_del(&msg->link);
		WRITE_ONCE(pool->bytes, pool->bytes - mpmc_class_size(class));
	}
	spin_unlock(&pool->lock);
	return msg;
}

/* Keep @msg in @pool if it is inline and the budget allows; under the lock. */
static bool mpmc_pool_put(struct mpmc_pool *pool, struct mpmc_msg *msg)
{
	unsigned int size;

	lockdep_assert_held(&pool->lock);
	if (msg->class == MPMC_MSG_EXTERNAL)
		return false;
	size = mpmc_class_size(msg->class);
	if (pool->bytes + size > pool->budget)
		return false;
	list_add(&msg->link, &pool->free[msg->class]);
	WRITE_ONCE(pool->bytes, pool->bytes + size);
	return true;
}

/* Keep @msg, no longer used, on the pool's lists, or free it. */
static void mpmc_msg_recycle(struct mpmc_pool *pool, struct mpmc_msg *msg)
{
	bool kept;

	spin_lock(&pool->lock);
	kept = mpmc_pool_put(pool, msg);
	spin_unlock(&pool->lock);
	if (!kept)
		mpmc_msg_destroy(msg);
}

/*
 * Take the spare buffer if it is of @class. One of another class goes to
 * the pool's lists (a channel whose message sizes change pays a lock).
 */
static struct mpmc_msg *mpmc_spare_get(struct mpmc_pool *pool,
				       unsigned int class)
{
	struct mpmc_msg *msg;

	if (!READ_ONCE(pool->spare))
		return NULL;
	msg = xchg(&pool->spare, NULL);
	if (msg && msg->class != class) {
		mpmc_msg_recycle(pool, msg);
		return NULL;
	}
	return msg;
}

/**
 * mpmc_pool_take - take up to @n free buffers for @len-byte messages
 * @pool:  the channel's pool
 * @len:   payload length
 * @n:     how many are wanted
 * @stash: where they go, for mpmc_msg_alloc_stash()
 *
 * One hold of the pool's lock for a batch, instead of one per message.
 * The caller gives back what it did not use with mpmc_msg_free_list(),
 * which takes them as messages nobody uses (their references are set).
 */
void mpmc_pool_take(struct mpmc_pool *pool, size_t len, unsigned int n,
		    struct list_head *stash)
{
	unsigned int class = mpmc_len_class(len), i;
	struct list_head *free, *last;

	if (class == MPMC_MSG_EXTERNAL || !n || !READ_ONCE(pool->bytes))
		return;
	free = &pool->free[class];
	spin_lock(&pool->lock);
	last = free;
	for (i = 0; i < n && !list_is_last(last, free); i++) {
		last = last->next;
		mpmc_msg_init_refs(list_entry(last, struct mpmc_msg, link));
	}
	if (i) {
		list_cut_position(stash, free, last);
		WRITE_ONCE(pool->bytes, pool->bytes - i * mpmc_class_size(class));
	}
	spin_unlock(&pool->lock);
}

/**
 * mpmc_msg_alloc_stash - a buffer for @len bytes from @stash, if it has one
 * @stash: buffers from mpmc_pool_take()
 * @len:   payload length
 *
 * Return: the buffer, as mpmc_msg_alloc() returns one, or NULL.
 */
struct mpmc_msg *mpmc_msg_alloc_stash(struct list_head *stash, size_t len)
{
	struct mpmc_msg *msg;

	msg = list_first_entry_or_null(stash, struct mpmc_msg, link);
	if (!msg || msg->class != mpmc_len_class(len))
		return NULL;
	list_del(&msg->link);
	return msg;
}

/**
 * mpmc_msg_alloc - a buffer for a message of @len bytes
 * @pool:   the channel's pool, tried first
 * @len:    payload length, at least 1
 * @nowait: do not sleep in the allocator (IOCB_NOWAIT)
 *
 * A new buffer is charged to the caller's memory cgroup. Its payload is
 * not initialised: the caller writes @len bytes and sets msg->len.
 *
 * Return: the buffer, or NULL.
 */
struct mpmc_msg *mpmc_msg_alloc(struct mpmc_pool *pool, size_t len,
				bool nowait)
{
	gfp_t gfp = nowait ? GFP_NOWAIT | __GFP_ACCOUNT : GFP_KERNEL_ACCOUNT;
	unsigned int class = mpmc_len_class(len);
	struct mpmc_msg *msg;

	gfp |= __GFP_NOWARN;
	if (class == MPMC_MSG_EXTERNAL)
		return mpmc_msg_alloc_external(len, gfp);
	msg = mpmc_spare_get(pool, class);
	if (!msg)
		msg = mpmc_pool_get(pool, class);
	if (!msg) {
		msg = kmem_cache_alloc(mpmc_msg_cache[class], gfp);
		if (!msg)
			return NULL;
		msg->class = class;
	}
	mpmc_msg_init_refs(msg);
	return msg;
}

/**
 * mpmc_msg_free - done with @msg: keep it in @pool or free it
 * @pool: the channel's pool
 * @msg:  the message (not on any list)
 *
 * A message a peek still copies from is freed by the last of them.
 */
void mpmc_msg_free(struct mpmc_pool *pool, struct mpmc_msg *msg)
{
	if (!mpmc_msg_put(msg))
		return;
	/* No lock when the spare slot is free: see struct mpmc_pool. */
	if (msg->class != MPMC_MSG_EXTERNAL && !READ_ONCE(pool->spare) &&
	    !cmpxchg(&pool->spare, NULL, msg))
		return;
	mpmc_msg_recycle(pool, msg);
}

/**
 * mpmc_msg_free_list - mpmc_msg_free() every message of @list
 * @pool: the channel's pool
 * @list: the messages; empty on return
 */
void mpmc_msg_free_list(struct mpmc_pool *pool, struct list_head *list)
{
	struct mpmc_msg *msg, *tmp;
	LIST_HEAD(excess);

	if (list_empty(list))
		return;
	spin_lock(&pool->lock);
	list_for_each_entry_safe(msg, tmp, list, link) {
		list_del(&msg->link);
		if (mpmc_msg_put(msg) && !mpmc_pool_put(pool, msg))
			list_add_tail(&msg->link, &excess);
	}
	spin_unlock(&pool->lock);
	mpmc_msg_destroy_list(&excess);
}
