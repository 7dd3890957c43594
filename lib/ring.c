// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * libmpmc ring mode (LIBMPMC_1.2): placeholder until the fast path lands.
 */
#include <errno.h>
#include <stdint.h>

#include "mpmc.h"

int mpmc_ring_map(int fd, struct mpmc_ring **ringp)
{
	(void)fd;
	(void)ringp;
	return -ENOSYS;
}

void mpmc_ring_unmap(struct mpmc_ring *r)
{
	(void)r;
}

int mpmc_ring_fd(const struct mpmc_ring *r)
{
	(void)r;
	return -EBADF;
}

ssize_t mpmc_ring_send(struct mpmc_ring *r, const void *buf, size_t len,
		       int flags)
{
	(void)r; (void)buf; (void)len; (void)flags;
	return -ENOSYS;
}

ssize_t mpmc_ring_recv(struct mpmc_ring *r, void *buf, size_t size, int flags)
{
	(void)r; (void)buf; (void)size; (void)flags;
	return -ENOSYS;
}

int mpmc_ring_send_batch(struct mpmc_ring *r, const struct mpmc_msgvec *v,
			 unsigned int n, int64_t timeout_ns)
{
	(void)r; (void)v; (void)n; (void)timeout_ns;
	return -ENOSYS;
}

int mpmc_ring_recv_batch(struct mpmc_ring *r, struct mpmc_msgvec *v,
			 unsigned int n, int64_t timeout_ns)
{
	(void)r; (void)v; (void)n; (void)timeout_ns;
	return -ENOSYS;
}
