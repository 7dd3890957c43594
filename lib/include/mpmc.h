/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/*
 * libmpmc: a thin C library over the /dev/mpmc ABI (<linux/mpmc.h>).
 *
 * Every open() of /dev/mpmc creates a bounded multi-producer multi-consumer
 * message channel; this library wraps the calls on it. It keeps no state of
 * its own: any fd of a /dev/mpmc channel (from open(2), fork, dup,
 * SCM_RIGHTS or mpmc_new_endpoint()) works with every call, and every call
 * is exactly one system call. The one exception is mpmc_open() with a
 * configuration, which is open(2) followed by MPMC_IOC_SET_CONFIG.
 * Ring mode (libmpmc 1.2, the mpmc_ring_* calls) is the exception to both
 * rules: a ring handle holds the mappings of a channel's ring, and its
 * calls make no system call on the fast path, else at most one plus one
 * doorbell (Documentation/ring-mode.rst, section 11).
 *
 * Error convention (the liburing one): a call returns a non-negative value
 * on success and a negative errno value (-EAGAIN, -EPIPE, ...) on failure.
 * errno is never changed by the library, on success or failure.
 *
 * Define MPMC_WITH_LIBURING before including this header to get the
 * static inline io_uring helpers mpmc_prep_send() and friends (they need
 * <liburing.h> and -luring).
 *
 * See libmpmc(3), one page per call (mpmc_send(3), ...), and mpmc(4).
 */
#ifndef LIBMPMC_MPMC_H
#define LIBMPMC_MPMC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <linux/mpmc.h>
#ifdef MPMC_WITH_LIBURING
#include <sys/uio.h>
#include <liburing.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define LIBMPMC_VERSION_MAJOR	1
#define LIBMPMC_VERSION_MINOR	2

/* The device every channel is opened from. */
#define MPMC_DEVICE		"/dev/mpmc"

/* Timeouts of the *_timeout and batch calls. */
#define MPMC_TIMEOUT_NONE	0	/* do not wait at all */
#define MPMC_TIMEOUT_INF	(-1)	/* wait as long as it takes */

/**
 * mpmc_config_init() - fill in a channel configuration
 * @cfg:          the configuration to fill in; reserved fields are zeroed
 * @capacity:     maximum number of queued messages
 * @max_msg_size: largest message in bytes
 *
 * A helper for mpmc_open() and mpmc_set_config(); makes no system call.
 */
static inline void mpmc_config_init(struct mpmc_config *cfg,
				    uint32_t capacity, uint32_t max_msg_size)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->capacity = capacity;
	cfg->max_msg_size = max_msg_size;
}

/**
 * mpmc_config_init_flags() - fill in a channel configuration with flags
 * @cfg:          the configuration to fill in; reserved fields are zeroed
 * @capacity:     maximum number of queued messages (0: a rendezvous channel)
 * @max_msg_size: largest message in bytes
 * @flags:        MPMC_CONFIG_OVERWRITE and/or MPMC_CONFIG_THROUGHPUT, or 0
 *
 * mpmc_config_init() plus mpmc_config.flags; makes no system call.
 * Since libmpmc 1.1.
 */
static inline void mpmc_config_init_flags(struct mpmc_config *cfg,
					  uint32_t capacity,
					  uint32_t max_msg_size,
					  uint32_t flags)
{
	mpmc_config_init(cfg, capacity, max_msg_size);
	cfg->flags = flags;
}

/**
 * mpmc_msgvec_set() - fill in one entry of a batch
 * @v:   the entry
 * @buf: the message (send) or the buffer for it (receive)
 * @len: the message length (send) or the buffer size (receive)
 *
 * A helper for mpmc_send_batch() and mpmc_recv_batch(); makes no system
 * call. prio is set to 0.
 */
static inline void mpmc_msgvec_set(struct mpmc_msgvec *v, const void *buf,
				   uint32_t len)
{
	v->buf = (uint64_t)(uintptr_t)buf;
	v->len = len;
	v->prio = 0;
}

/**
 * mpmc_msgvec_set_prio() - fill in one entry of a send batch with a priority
 * @v:    the entry
 * @buf:  the message
 * @len:  its length
 * @prio: its priority, 0..MPMC_PRIO_MAX-1; higher is received first
 *
 * mpmc_msgvec_set() plus mpmc_msgvec.prio; makes no system call. Receive
 * entries need no priority: the receive calls write it back.
 * Since libmpmc 1.1.
 */
static inline void mpmc_msgvec_set_prio(struct mpmc_msgvec *v,
					const void *buf, uint32_t len,
					uint32_t prio)
{
	mpmc_msgvec_set(v, buf, len);
	v->prio = prio;
}

int mpmc_open(const struct mpmc_config *cfg, int flags);
int mpmc_close(int fd);

ssize_t mpmc_send(int fd, const void *buf, size_t len);
ssize_t mpmc_try_send(int fd, const void *buf, size_t len);
ssize_t mpmc_send_timeout(int fd, const void *buf, size_t len,
			  int64_t timeout_ns);
ssize_t mpmc_recv(int fd, void *buf, size_t len);
ssize_t mpmc_try_recv(int fd, void *buf, size_t len);
ssize_t mpmc_recv_timeout(int fd, void *buf, size_t len, int64_t timeout_ns);

int mpmc_send_batch(int fd, const struct mpmc_msgvec *v, unsigned int n,
		    int64_t timeout_ns);
int mpmc_recv_batch(int fd, struct mpmc_msgvec *v, unsigned int n,
		    int64_t timeout_ns);

int mpmc_shutdown(int fd, int how);
int mpmc_new_endpoint(int fd, unsigned int roles, int flags);

int mpmc_get_config(int fd, struct mpmc_config *cfg);
int mpmc_set_config(int fd, const struct mpmc_config *cfg);
int mpmc_get_stats(int fd, struct mpmc_stats *st);
int mpmc_next_len(int fd);

/* Since libmpmc 1.1 (symbol version LIBMPMC_1.1): SPEC section 13. */
ssize_t mpmc_send_prio(int fd, const void *buf, size_t len, unsigned int prio);
ssize_t mpmc_send_prio_timeout(int fd, const void *buf, size_t len,
			       unsigned int prio, int64_t timeout_ns);
ssize_t mpmc_recv_prio(int fd, void *buf, size_t len, unsigned int *prio);
ssize_t mpmc_recv_prio_timeout(int fd, void *buf, size_t len,
			       unsigned int *prio, int64_t timeout_ns);
int mpmc_peek(int fd, struct mpmc_msgvec *v, unsigned int n,
	      int64_t timeout_ns);

/*
 * Since libmpmc 1.2 (symbol version LIBMPMC_1.2): ring mode
 * (MPMC_CONFIG_RING, Documentation/ring-mode.rst). A channel configured
 * with MPMC_CONFIG_RING can be mapped; the calls below then move messages
 * through the shared ring without a system call while the ring allows it,
 * and fall back to the system calls on the fd otherwise (full, empty,
 * shutdown, broken, contention). Results and errnos are those of the
 * matching plain calls on the fd. See mpmc_ring_map(3).
 */
struct mpmc_ring;	/* opaque: one mapping of a channel's ring */

/* mpmc_ring_send() and mpmc_ring_recv() flags. */
#define MPMC_RING_NONBLOCK	1	/* never wait: -EAGAIN instead */

/**
 * mpmc_ring_map() - map the ring of a ring channel
 * @fd:    a channel fd with both roles, configured with MPMC_CONFIG_RING
 * @ringp: set to the new ring handle on success, untouched on failure
 *
 * Maps the control page (read-only) and the ring region (read-write),
 * checks the layout and fetches this mapping's owner id with
 * MPMC_IOC_RING_INFO. The handle keeps @fd (not a dup of it): @fd must
 * stay open while the handle is used. On any failure nothing is left
 * mapped or allocated.
 *
 * Return: 0, or a negative errno: -ENODEV (not a ring channel), -EACCES
 * (@fd lacks a role), -ENOSPC (out of mapper ids), -EPROTO (unknown ring
 * layout), -EBADF, -ENOMEM, or another errno of mmap(2) or ioctl(2).
 */
int mpmc_ring_map(int fd, struct mpmc_ring **ringp);

/**
 * mpmc_ring_unmap() - unmap a ring and free its handle
 * @r: the handle from mpmc_ring_map(), or NULL (nothing happens)
 *
 * Does not close the fd. No call on @r may be running or follow.
 */
void mpmc_ring_unmap(struct mpmc_ring *r);

/**
 * mpmc_ring_fd() - the channel fd a ring handle was mapped from
 * @r: the handle
 *
 * Return: the fd given to mpmc_ring_map().
 */
int mpmc_ring_fd(const struct mpmc_ring *r);

/**
 * mpmc_ring_send() - send one message through the ring
 * @r:     the handle
 * @buf:   the message
 * @len:   its length; 0 sends nothing and returns 0 (no system call)
 * @flags: 0 (wait for room as long as it takes, unless the fd is
 *         O_NONBLOCK) or MPMC_RING_NONBLOCK (never wait)
 *
 * Through the ring when it has room and is open, else with mpmc_send()
 * (flags 0) or mpmc_try_send() (MPMC_RING_NONBLOCK) on the fd. Rings the
 * doorbell when a receiver waits.
 *
 * Return: @len, or a negative errno: -EAGAIN (full, no wait), -EPIPE,
 * -EMSGSIZE (over max_msg_size, nothing sent), -EIO (broken ring),
 * -EINTR, -EBADF, -EFAULT, -ENOMEM.
 */
ssize_t mpmc_ring_send(struct mpmc_ring *r, const void *buf, size_t len,
		       int flags);

/**
 * mpmc_ring_recv() - receive one message through the ring
 * @r:     the handle
 * @buf:   the buffer
 * @size:  its size; 0 receives nothing and returns 0 (no system call)
 * @flags: 0 (wait for a message as long as it takes, unless the fd is
 *         O_NONBLOCK) or MPMC_RING_NONBLOCK (never wait)
 *
 * From the ring when its head holds a message, else with mpmc_recv()
 * (flags 0) or mpmc_try_recv() (MPMC_RING_NONBLOCK) on the fd. Rings the
 * doorbell when a sender waits.
 *
 * Return: the message length, 0 at end of file, or a negative errno:
 * -EAGAIN (empty, no wait), -EMSGSIZE (@size too small; the message
 * stays queued), -EIO (broken ring), -EINTR, -EBADF, -EFAULT.
 */
ssize_t mpmc_ring_recv(struct mpmc_ring *r, void *buf, size_t size,
		       int flags);

/**
 * mpmc_ring_send_batch() - send up to @n messages through the ring
 * @r:          the handle
 * @v:          the messages (buf, len > 0, prio 0)
 * @n:          their number, 1..MPMC_BATCH_MAX
 * @timeout_ns: how long to wait for the first one to fit (-1 forever, 0
 *              not at all); the rest are sent only if they fit without
 *              waiting
 *
 * As many as fit through the ring, then the rest with mpmc_send_batch()
 * on the fd if the first one did not fit (waiting up to @timeout_ns) or
 * without waiting otherwise. At most one doorbell.
 *
 * Return: the number of messages sent (the first that many of @v), or a
 * negative errno when none was, as mpmc_send_batch().
 */
int mpmc_ring_send_batch(struct mpmc_ring *r, const struct mpmc_msgvec *v,
			 unsigned int n, int64_t timeout_ns);

/**
 * mpmc_ring_recv_batch() - receive up to @n messages through the ring
 * @r:          the handle
 * @v:          the buffers: len in is the size of buf, out the length of
 *              the message received into it; prio out is 0
 * @n:          their number, 1..MPMC_BATCH_MAX
 * @timeout_ns: how long to wait for the first message (-1 forever, 0 not
 *              at all); the rest are taken only if already queued
 *
 * As many as are at the head of the ring, then from mpmc_recv_batch() on
 * the fd as that would. A buffer too small for the next message stops
 * the batch there, leaving the message queued. At most one doorbell.
 *
 * Return: the number of messages received, 0 at end of file, or a
 * negative errno when none was, as mpmc_recv_batch().
 */
int mpmc_ring_recv_batch(struct mpmc_ring *r, struct mpmc_msgvec *v,
			 unsigned int n, int64_t timeout_ns);

#ifdef MPMC_WITH_LIBURING
/*
 * A channel is a stream: io_uring READ/WRITE on it use offset -1 ("the
 * current position", which a stream does not have and ignores). One READ
 * completes with one whole message (cqe->res = its length, 0 at end of
 * file, or -errno); one WRITE enqueues one message (cqe->res = its length
 * or -errno). See mpmc_prep_send(3).
 */
#define MPMC_URING_OFFSET	((uint64_t)-1)

/**
 * mpmc_prep_send() - prepare an SQE that sends one message
 * @sqe: the submission queue entry
 * @fd:  a channel fd with the send role (or a registered file index if the
 *       caller sets IOSQE_FIXED_FILE)
 * @buf: the message
 * @len: its length
 */
static inline void mpmc_prep_send(struct io_uring_sqe *sqe, int fd,
				  const void *buf, unsigned int len)
{
	io_uring_prep_write(sqe, fd, buf, len, MPMC_URING_OFFSET);
}

/**
 * mpmc_prep_recv() - prepare an SQE that receives one message
 * @sqe: the submission queue entry
 * @fd:  a channel fd with the receive role
 * @buf: the buffer
 * @len: its size; a smaller size than the next message completes with
 *       -EMSGSIZE and leaves the message queued
 */
static inline void mpmc_prep_recv(struct io_uring_sqe *sqe, int fd,
				  void *buf, unsigned int len)
{
	io_uring_prep_read(sqe, fd, buf, len, MPMC_URING_OFFSET);
}

/**
 * mpmc_prep_sendv() - prepare an SQE that sends one message gathered from
 *                     @nr_vecs buffers
 * @sqe:     the submission queue entry
 * @fd:      a channel fd with the send role
 * @iovecs:  the pieces of the message; must stay valid until submitted
 * @nr_vecs: their number
 */
static inline void mpmc_prep_sendv(struct io_uring_sqe *sqe, int fd,
				   const struct iovec *iovecs,
				   unsigned int nr_vecs)
{
	io_uring_prep_writev(sqe, fd, iovecs, nr_vecs, MPMC_URING_OFFSET);
}

/**
 * mpmc_prep_recvv() - prepare an SQE that receives one message scattered
 *                     over @nr_vecs buffers
 * @sqe:     the submission queue entry
 * @fd:      a channel fd with the receive role
 * @iovecs:  the buffers; must stay valid until submitted
 * @nr_vecs: their number
 */
static inline void mpmc_prep_recvv(struct io_uring_sqe *sqe, int fd,
				   const struct iovec *iovecs,
				   unsigned int nr_vecs)
{
	io_uring_prep_readv(sqe, fd, iovecs, nr_vecs, MPMC_URING_OFFSET);
}
#endif /* MPMC_WITH_LIBURING */

#ifdef __cplusplus
}
#endif

#endif /* LIBMPMC_MPMC_H */
