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
#define LIBMPMC_VERSION_MINOR	1

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
