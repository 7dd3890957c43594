// SPDX-License-Identifier: GPL-2.0
/*
 * mpmc-bench: batches of messages: MPMC_IOC_SEND / MPMC_IOC_RECV for mpmc,
 * sendmmsg / recvmmsg(MSG_WAITFORONE) for seqpacket, and for a plain pipe
 * fixed-size records, a batch per write (64 x 64 B: one 4 KiB write).
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/ioctl.h>

struct batchbuf *batch_alloc(int n, int size)
{
	struct batchbuf *b = calloc(1, sizeof(*b));
	int i;

	b->n = n;
	b->data = aligned_alloc(64, ((size_t)n * size + 63) & ~63ul);
	memset(b->data, 0x5a, (size_t)n * size);
	for (i = 0; i < n; i++) {
		b->vec[i].buf = (uintptr_t)(b->data + (size_t)i * size);
		b->vec[i].len = size;
		b->iov[i].iov_base = b->data + (size_t)i * size;
		b->iov[i].iov_len = size;
		b->mm[i].msg_hdr.msg_iov = &b->iov[i];
		b->mm[i].msg_hdr.msg_iovlen = 1;
	}
	return b;
}

void batch_free(struct batchbuf *b)
{
	free(b->data);
	free(b);
}

static int mpmc_batch(int fd, unsigned long req, struct mpmc_msgvec *vec, int n, int size)
{
	struct mpmc_batch mb = { .vec = (uintptr_t)vec, .count = n, .timeout_ns = -1 };
	int i, ret;

	for (i = 0; i < n; i++)
		vec[i].len = size;
	ret = ioctl(fd, req, &mb);
	for (i = 0; req == MPMC_IOC_RECV && i < ret; i++)
		if (vec[i].len != (unsigned int)size)
			die("mpmc batch recv: length %u", vec[i].len);
	return ret;
}

static int seq_recv_batch(struct chan *c, struct batchbuf *b, int n, int size)
{
	int i, ret = recvmmsg(c->r, b->mm, n, MSG_WAITFORONE, NULL);

	for (i = 0; i < ret; i++)
		if (b->mm[i].msg_len != (unsigned int)size)
			die("seqpacket recvmmsg: length %u", b->mm[i].msg_len);
	return ret;
}

/*
 * Every write is a whole number of records and at most PIPE_BUF bytes
 * (atomic), so a read of whole records gets whole records.
 */
static int pipe_batch(struct chan *c, struct batchbuf *b, int off, int n, int size, bool recv)
{
	char *p = b->data + (size_t)off * size;
	ssize_t ret = recv ? read(c->r, p, (size_t)n * size) : write(c->s, p, (size_t)n * size);

	if (ret > 0 && ret % size)
		die("pipe batch %s: %zd bytes, not whole %d-byte records",
		    recv ? "read" : "write", ret, size);
	return ret > 0 ? ret / size : ret;
}

/* One call moving up to @n messages from @off (receive: from 0). */
static int batch_once(struct chan *c, struct batchbuf *b, int off, int n, int size, bool recv)
{
	switch (c->xp) {
	case X_MPMC:
	case X_MPMC_EP:
		if (recv)
			return mpmc_batch(c->r, MPMC_IOC_RECV, b->vec, n, size);
		return mpmc_batch(c->s, MPMC_IOC_SEND, b->vec + off, n, size);
	case X_SEQPACKET:
		if (recv)
			return seq_recv_batch(c, b, n, size);
		return sendmmsg(c->s, b->mm + off, n, 0);
	case X_PIPE:
		return pipe_batch(c, b, off, n, size, recv);
	default:
		die("%s has no batch %s", xport_name[c->xp], recv ? "receive" : "send");
	}
}

/* Returns how many moved (>= 1), retrying after EINTR. */
static int batch_call(struct chan *c, struct batchbuf *b, int off, int n, int size, bool recv)
{
	int ret;

	for (;;) {
		ret = batch_once(c, b, off, n, size, recv);
		if (ret > 0)
			return ret;
		if (ret < 0 && errno == EINTR)
			continue;
		die("%s batch %s: %s", xport_name[c->xp], recv ? "recv" : "send",
		    ret ? strerror(errno) : "moved 0");
	}
}

/* Send messages [off, off + n) of @b; returns how many moved (>= 1). */
int chan_send_batch(struct chan *c, struct batchbuf *b, int off, int n, int size)
{
	return batch_call(c, b, off, n, size, false);
}

/* Receive up to @n messages into @b; returns how many (>= 1). */
int chan_recv_batch(struct chan *c, struct batchbuf *b, int n, int size)
{
	return batch_call(c, b, 0, n, size, true);
}
