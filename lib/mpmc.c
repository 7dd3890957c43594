// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * libmpmc: every call is one system call on a /dev/mpmc channel fd (open
 * with a configuration is the one exception: open + SET_CONFIG). Results
 * are a non-negative value or a negative errno; errno itself is saved and
 * restored around each call, so the library never changes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "mpmc.h"

/*
 * The result of a libc call that returned @ret: @ret itself on success,
 * -errno on failure. Puts back the caller's errno, @saved, either way.
 */
static long mpmc_result(long ret, int saved)
{
	if (ret < 0)
		ret = -errno;
	errno = saved;
	return ret;
}

/* ioctl(2) on @fd, with the library's error convention. */
static long mpmc_ioctl(int fd, unsigned long cmd, unsigned long arg)
{
	int saved = errno;

	return mpmc_result(ioctl(fd, cmd, arg), saved);
}

/**
 * mpmc_open() - create a new channel
 * @cfg:   its configuration, or NULL for the defaults (capacity
 *         MPMC_DEFAULT_CAPACITY, max_msg_size MPMC_DEFAULT_MSG_SIZE)
 * @flags: open(2) flags: O_RDWR (usual), O_RDONLY or O_WRONLY, optionally
 *         ORed with O_NONBLOCK and O_CLOEXEC
 *
 * One open(2); with a @cfg also one MPMC_IOC_SET_CONFIG. If that fails
 * the new fd is closed again.
 *
 * Return: the channel fd, or a negative errno.
 */
int mpmc_open(const struct mpmc_config *cfg, int flags)
{
	int saved = errno;
	int fd, ret;

	fd = open(MPMC_DEVICE, flags);
	if (fd < 0 || !cfg)
		return mpmc_result(fd, saved);
	ret = ioctl(fd, MPMC_IOC_SET_CONFIG, cfg);
	if (ret < 0) {
		ret = -errno;
		close(fd);
		errno = saved;
		return ret;
	}
	errno = saved;
	return fd;
}

/**
 * mpmc_close() - close a channel fd (close(2))
 * @fd: the fd
 *
 * Return: 0 or a negative errno.
 */
int mpmc_close(int fd)
{
	int saved = errno;

	return mpmc_result(close(fd), saved);
}

/**
 * mpmc_send() - send one message, waiting for room unless @fd is O_NONBLOCK
 * @fd:  a channel fd with the send role
 * @buf: the message
 * @len: its length; 0 sends nothing and returns 0
 *
 * One write(2).
 *
 * Return: @len, or a negative errno (-EAGAIN, -EPIPE, -EMSGSIZE, -EINTR,
 * -EBADF, -EFAULT, -ENOMEM).
 */
ssize_t mpmc_send(int fd, const void *buf, size_t len)
{
	int saved = errno;

	return mpmc_result(write(fd, buf, len), saved);
}

/**
 * mpmc_recv() - receive one message, waiting for one unless @fd is
 *               O_NONBLOCK
 * @fd:  a channel fd with the receive role
 * @buf: the buffer
 * @len: its size; 0 receives nothing and returns 0
 *
 * One read(2).
 *
 * Return: the message length, 0 at end of file, or a negative errno
 * (-EAGAIN, -EMSGSIZE with the message left queued, -EINTR, -EBADF,
 * -EFAULT).
 */
ssize_t mpmc_recv(int fd, void *buf, size_t len)
{
	int saved = errno;

	return mpmc_result(read(fd, buf, len), saved);
}

/*
 * Move one message with a one-entry MPMC_IOC_SEND or MPMC_IOC_RECV batch,
 * the send at priority @prio; a receive stores the message's priority in
 * *@prio_out (if not NULL). Returns the message length (0: end of file) or
 * a negative errno.
 */
static ssize_t mpmc_move_one(int fd, unsigned long cmd, const void *buf,
			     uint32_t len, uint32_t prio,
			     unsigned int *prio_out, int64_t timeout_ns)
{
	struct mpmc_msgvec v;
	struct mpmc_batch b = {
		.vec = (uint64_t)(uintptr_t)&v,
		.count = 1,
		.timeout_ns = timeout_ns,
	};
	long ret;

	mpmc_msgvec_set_prio(&v, buf, len, prio);
	ret = mpmc_ioctl(fd, cmd, (unsigned long)&b);
	if (ret <= 0)
		return ret;
	if (prio_out)
		*prio_out = v.prio;
	return v.len;
}

/**
 * mpmc_send_timeout() - send one message, waiting at most @timeout_ns
 * @fd:         a channel fd with the send role
 * @buf:        the message
 * @len:        its length; 0 sends nothing and returns 0 (write(2) of 0
 *              bytes), more than UINT32_MAX gives -EMSGSIZE
 * @timeout_ns: relative CLOCK_MONOTONIC timeout in nanoseconds; 0 does not
 *              wait, MPMC_TIMEOUT_INF (-1) waits as long as it takes
 *
 * One MPMC_IOC_SEND with a one-entry batch. O_NONBLOCK on @fd means no
 * waiting whatever @timeout_ns says.
 *
 * Return: @len, or a negative errno: -ETIMEDOUT when the timeout expired,
 * -EAGAIN for no room and no wait, -EPIPE, -EMSGSIZE, -EINTR, -EINVAL,
 * -EBADF, -EFAULT, -ENOMEM.
 */
ssize_t mpmc_send_timeout(int fd, const void *buf, size_t len,
			  int64_t timeout_ns)
{
	if (!len)
		return mpmc_send(fd, buf, 0);
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	return mpmc_move_one(fd, MPMC_IOC_SEND, buf, len, 0, NULL, timeout_ns);
}

/**
 * mpmc_try_send() - send one message if there is room now, never wait
 * @fd:  a channel fd with the send role
 * @buf: the message
 * @len: its length
 *
 * mpmc_send_timeout() with a timeout of 0: one MPMC_IOC_SEND, whether or
 * not @fd is O_NONBLOCK.
 *
 * Return: @len, or a negative errno (-EAGAIN when the channel is full).
 */
ssize_t mpmc_try_send(int fd, const void *buf, size_t len)
{
	return mpmc_send_timeout(fd, buf, len, MPMC_TIMEOUT_NONE);
}

/**
 * mpmc_recv_timeout() - receive one message, waiting at most @timeout_ns
 * @fd:         a channel fd with the receive role
 * @buf:        the buffer
 * @len:        its size; 0 receives nothing and returns 0 (read(2) of 0
 *              bytes); sizes over UINT32_MAX are used as UINT32_MAX
 * @timeout_ns: relative CLOCK_MONOTONIC timeout in nanoseconds; 0 does not
 *              wait, MPMC_TIMEOUT_INF (-1) waits as long as it takes
 *
 * One MPMC_IOC_RECV with a one-entry batch. O_NONBLOCK on @fd means no
 * waiting whatever @timeout_ns says.
 *
 * Return: the message length, 0 at end of file, or a negative errno:
 * -ETIMEDOUT when the timeout expired, -EAGAIN for nothing queued and no
 * wait, -EMSGSIZE (the message stays queued), -EINTR, -EINVAL, -EBADF,
 * -EFAULT.
 */
ssize_t mpmc_recv_timeout(int fd, void *buf, size_t len, int64_t timeout_ns)
{
	if (!len)
		return mpmc_recv(fd, buf, 0);
	if (len > UINT32_MAX)
		len = UINT32_MAX;
	return mpmc_move_one(fd, MPMC_IOC_RECV, buf, len, 0, NULL, timeout_ns);
}

/**
 * mpmc_try_recv() - receive one message if one is queued, never wait
 * @fd:  a channel fd with the receive role
 * @buf: the buffer
 * @len: its size
 *
 * mpmc_recv_timeout() with a timeout of 0: one MPMC_IOC_RECV, whether or
 * not @fd is O_NONBLOCK.
 *
 * Return: the message length, 0 at end of file, or a negative errno
 * (-EAGAIN when the channel is empty).
 */
ssize_t mpmc_try_recv(int fd, void *buf, size_t len)
{
	return mpmc_recv_timeout(fd, buf, len, MPMC_TIMEOUT_NONE);
}

/* One MPMC_IOC_SEND or MPMC_IOC_RECV of @n entries, with batch @flags. */
static int mpmc_batch(int fd, unsigned long cmd, const struct mpmc_msgvec *v,
		      unsigned int n, uint32_t flags, int64_t timeout_ns)
{
	struct mpmc_batch b = {
		.vec = (uint64_t)(uintptr_t)v,
		.count = n,
		.flags = flags,
		.timeout_ns = timeout_ns,
	};

	return mpmc_ioctl(fd, cmd, (unsigned long)&b);
}

/**
 * mpmc_send_batch() - send up to @n messages in one call
 * @fd:         a channel fd with the send role
 * @v:          the messages (buf, len > 0, prio 0..MPMC_PRIO_MAX-1)
 * @n:          their number, 1..MPMC_BATCH_MAX
 * @timeout_ns: how long to wait for the first one to fit (-1 forever, 0 not
 *              at all); the rest are sent only if they fit without waiting
 *
 * One MPMC_IOC_SEND.
 *
 * Return: the number of messages sent (the first that many of @v), or a
 * negative errno when none was: -ETIMEDOUT, -EAGAIN, -EPIPE, -EINTR,
 * -EINVAL, -EMSGSIZE, -EBADF, -EFAULT, -ENOMEM.
 */
int mpmc_send_batch(int fd, const struct mpmc_msgvec *v, unsigned int n,
		    int64_t timeout_ns)
{
	return mpmc_batch(fd, MPMC_IOC_SEND, v, n, 0, timeout_ns);
}

/**
 * mpmc_recv_batch() - receive up to @n messages in one call
 * @fd:         a channel fd with the receive role
 * @v:          the buffers: len in is the size of buf, out the length of
 *              the message received into it; prio out is its priority
 * @n:          their number, 1..MPMC_BATCH_MAX
 * @timeout_ns: how long to wait for the first message (-1 forever, 0 not
 *              at all); the rest are taken only if already queued
 *
 * One MPMC_IOC_RECV. A buffer too small for the next message stops the
 * batch there, leaving that message queued.
 *
 * Return: the number of messages received (into the first that many of
 * @v), 0 at end of file, or a negative errno when none was: -ETIMEDOUT,
 * -EAGAIN, -EMSGSIZE, -EINTR, -EINVAL, -EBADF, -EFAULT.
 */
int mpmc_recv_batch(int fd, struct mpmc_msgvec *v, unsigned int n,
		    int64_t timeout_ns)
{
	return mpmc_batch(fd, MPMC_IOC_RECV, v, n, 0, timeout_ns);
}

/**
 * mpmc_shutdown() - shut down one or both directions of the channel
 * @fd:  any fd of the channel
 * @how: MPMC_SHUT_WR (no more sends; receivers drain, then get end of
 *       file), MPMC_SHUT_RD (queued messages dropped, sends fail with
 *       EPIPE, receives return 0) or MPMC_SHUT_RDWR
 *
 * One MPMC_IOC_SHUTDOWN. Repeating a shutdown is not an error.
 *
 * Return: 0 or a negative errno (-EINVAL for a bad @how).
 */
int mpmc_shutdown(int fd, int how)
{
	return mpmc_ioctl(fd, MPMC_IOC_SHUTDOWN, (unsigned long)how);
}

/**
 * mpmc_new_endpoint() - make a new fd on the same channel
 * @fd:    a channel fd holding at least @roles
 * @roles: MPMC_ROLE_SEND, MPMC_ROLE_RECV or both
 * @flags: 0, O_CLOEXEC and/or O_NONBLOCK for the new fd
 *
 * One MPMC_IOC_NEW_ENDPOINT.
 *
 * Return: the new fd, or a negative errno (-EPERM for a role @fd lacks,
 * -EINVAL, -EMFILE, -EFAULT, -ENOMEM).
 */
int mpmc_new_endpoint(int fd, unsigned int roles, int flags)
{
	struct mpmc_endpoint ep = {
		.roles = roles,
		.flags = (uint32_t)flags,
	};

	return mpmc_ioctl(fd, MPMC_IOC_NEW_ENDPOINT, (unsigned long)&ep);
}

/**
 * mpmc_get_config() - read the channel's configuration
 * @fd:  any fd of the channel
 * @cfg: filled in
 *
 * One MPMC_IOC_GET_CONFIG.
 *
 * Return: 0 or a negative errno.
 */
int mpmc_get_config(int fd, struct mpmc_config *cfg)
{
	return mpmc_ioctl(fd, MPMC_IOC_GET_CONFIG, (unsigned long)cfg);
}

/**
 * mpmc_set_config() - change the channel's configuration
 * @fd:  any fd of the channel
 * @cfg: the new configuration: capacity (0: rendezvous), max_msg_size,
 *       flags (MPMC_CONFIG_OVERWRITE, MPMC_CONFIG_THROUGHPUT) and zero
 *       reserved fields; see mpmc_config_init_flags()
 *
 * One MPMC_IOC_SET_CONFIG; on failure nothing changed.
 *
 * Return: 0 or a negative errno (-EINVAL out of range, unknown flags or
 * capacity 0 with MPMC_CONFIG_OVERWRITE, -EBUSY for a capacity below the
 * queued count or a new max_msg_size while messages are queued).
 */
int mpmc_set_config(int fd, const struct mpmc_config *cfg)
{
	return mpmc_ioctl(fd, MPMC_IOC_SET_CONFIG, (unsigned long)cfg);
}

/**
 * mpmc_get_stats() - take a snapshot of the channel's state and counters
 * @fd: any fd of the channel
 * @st: filled in
 *
 * One MPMC_IOC_GET_STATS.
 *
 * Return: 0 or a negative errno.
 */
int mpmc_get_stats(int fd, struct mpmc_stats *st)
{
	return mpmc_ioctl(fd, MPMC_IOC_GET_STATS, (unsigned long)st);
}

/**
 * mpmc_next_len() - length of the next message
 * @fd: any fd of the channel
 *
 * One FIONREAD ioctl.
 *
 * Return: the length of the message at the head of the queue, 0 if there
 * is none, or a negative errno.
 */
int mpmc_next_len(int fd)
{
	int saved = errno;
	int len;

	if (ioctl(fd, FIONREAD, &len) < 0)
		return mpmc_result(-1, saved);
	errno = saved;
	return len;
}

/* --- libmpmc 1.1 (LIBMPMC_1.1): priorities, peek ----------------------- */

/**
 * mpmc_send_prio_timeout() - send one message at a priority, waiting at
 *                            most @timeout_ns
 * @fd:         a channel fd with the send role
 * @buf:        the message
 * @len:        its length; 0 sends nothing and returns 0 (write(2) of 0
 *              bytes), more than UINT32_MAX gives -EMSGSIZE
 * @prio:       its priority, 0..MPMC_PRIO_MAX-1; higher is received first
 * @timeout_ns: relative CLOCK_MONOTONIC timeout in nanoseconds; 0 does not
 *              wait, MPMC_TIMEOUT_INF (-1) waits as long as it takes
 *
 * One MPMC_IOC_SEND with a one-entry batch. O_NONBLOCK on @fd means no
 * waiting whatever @timeout_ns says.
 *
 * Return: @len, or a negative errno: -EINVAL for a @prio of MPMC_PRIO_MAX
 * or more (nothing sent) or a bad timeout, -ETIMEDOUT, -EAGAIN, -EPIPE,
 * -EMSGSIZE, -EINTR, -EBADF, -EFAULT, -ENOMEM.
 */
ssize_t mpmc_send_prio_timeout(int fd, const void *buf, size_t len,
			       unsigned int prio, int64_t timeout_ns)
{
	if (!len)
		return mpmc_send(fd, buf, 0);
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	return mpmc_move_one(fd, MPMC_IOC_SEND, buf, len, prio, NULL,
			     timeout_ns);
}

/**
 * mpmc_send_prio() - send one message at a priority, waiting for room
 *                    unless @fd is O_NONBLOCK
 * @fd:   a channel fd with the send role
 * @buf:  the message
 * @len:  its length
 * @prio: its priority, 0..MPMC_PRIO_MAX-1
 *
 * mpmc_send_prio_timeout() with MPMC_TIMEOUT_INF: one MPMC_IOC_SEND.
 *
 * Return: @len, or a negative errno.
 */
ssize_t mpmc_send_prio(int fd, const void *buf, size_t len, unsigned int prio)
{
	return mpmc_send_prio_timeout(fd, buf, len, prio, MPMC_TIMEOUT_INF);
}

/**
 * mpmc_recv_prio_timeout() - receive one message and its priority,
 *                            waiting at most @timeout_ns
 * @fd:         a channel fd with the receive role
 * @buf:        the buffer
 * @len:        its size; 0 receives nothing and returns 0 (read(2) of 0
 *              bytes); sizes over UINT32_MAX are used as UINT32_MAX
 * @prio:       where the message's priority is stored when one is
 *              received (return value > 0); may be NULL
 * @timeout_ns: relative CLOCK_MONOTONIC timeout in nanoseconds; 0 does not
 *              wait, MPMC_TIMEOUT_INF (-1) waits as long as it takes
 *
 * One MPMC_IOC_RECV with a one-entry batch: the oldest message of the
 * highest priority queued.
 *
 * Return: the message length, 0 at end of file, or a negative errno
 * (-ETIMEDOUT, -EAGAIN, -EMSGSIZE with the message left queued, -EINTR,
 * -EINVAL, -EBADF, -EFAULT).
 */
ssize_t mpmc_recv_prio_timeout(int fd, void *buf, size_t len,
			       unsigned int *prio, int64_t timeout_ns)
{
	if (!len)
		return mpmc_recv(fd, buf, 0);
	if (len > UINT32_MAX)
		len = UINT32_MAX;
	return mpmc_move_one(fd, MPMC_IOC_RECV, buf, len, 0, prio, timeout_ns);
}

/**
 * mpmc_recv_prio() - receive one message and its priority, waiting for
 *                    one unless @fd is O_NONBLOCK
 * @fd:   a channel fd with the receive role
 * @buf:  the buffer
 * @len:  its size
 * @prio: where the message's priority is stored; may be NULL
 *
 * mpmc_recv_prio_timeout() with MPMC_TIMEOUT_INF: one MPMC_IOC_RECV.
 *
 * Return: the message length, 0 at end of file, or a negative errno.
 */
ssize_t mpmc_recv_prio(int fd, void *buf, size_t len, unsigned int *prio)
{
	return mpmc_recv_prio_timeout(fd, buf, len, prio, MPMC_TIMEOUT_INF);
}

/**
 * mpmc_peek() - copy up to @n queued messages without removing them
 * @fd:         a channel fd with the receive role
 * @v:          the buffers: len in is the size of buf, out the length of
 *              the message copied into it; prio out is its priority
 * @n:          their number, 1..MPMC_BATCH_MAX
 * @timeout_ns: how long to wait for a first message to be queued (-1
 *              forever, 0 not at all)
 *
 * One MPMC_IOC_RECV with MPMC_RECV_PEEK: the messages at the head, in the
 * order receives would take them. A peek waits as a poller does: it never
 * takes a message handed to a blocked receiver, and is not counted in
 * blocked_receivers.
 *
 * Return: the number of messages copied, 0 at end of file, or a negative
 * errno: -ETIMEDOUT, -EAGAIN, -EMSGSIZE (the first does not fit), -EINTR,
 * -EINVAL, -EBADF, -EFAULT.
 */
int mpmc_peek(int fd, struct mpmc_msgvec *v, unsigned int n,
	      int64_t timeout_ns)
{
	return mpmc_batch(fd, MPMC_IOC_RECV, v, n, MPMC_RECV_PEEK, timeout_ns);
}
