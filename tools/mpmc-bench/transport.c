// SPDX-License-Identifier: GPL-2.0
/*
 * mpmc-bench: the transports. main.c's top comment says how each one is
 * given its capacity; here each is opened, and one message is sent or
 * received on any of them.
 */
#include "bench.h"
#include "mpmc.h"
#include "../shmring.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>

#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#endif
#ifndef MPMC_CONFIG_THROUGHPUT
#define MPMC_CONFIG_THROUGHPUT 2	/* SPEC section 14: no FIFO hand-off */
#endif
#ifndef MPMC_CONFIG_RING
#define MPMC_CONFIG_RING 4		/* Documentation/ring-mode.rst */
#endif
#ifndef SO_SNDBUFFORCE
#define SO_SNDBUFFORCE 32
#endif

const char *const xport_name[X_NR] = {
	"mpmc", "mpmc-ep", "mpmc-tp", "pipe-pkt", "pipe", "pipe-64k", "seqpacket", "mqueue",
	"mpmc-ring", "shmring", "null",
};

/* The device of transport mpmc: $MPMC_BENCH_DEV or /dev/mpmc. */
const char *mpmc_dev = "/dev/mpmc";

/* ------------------------------------------------------------------ mpmc */

static int new_endpoint(int fd, unsigned int roles, int flags)
{
	struct mpmc_endpoint ep = {
		.roles = roles,
		.flags = O_CLOEXEC | (flags & CH_RD_NONBLOCK ? O_NONBLOCK : 0),
	};
	int ret = ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &ep);

	if (ret < 0)
		DIE_ERRNO("MPMC_IOC_NEW_ENDPOINT");
	return ret;
}

/* A new channel of @cap messages of @size bytes, or -1 (errno). */
static int mpmc_new(int size, int cap, unsigned int cfg_flags)
{
	struct mpmc_config cfg = { .capacity = cap, .max_msg_size = size, .flags = cfg_flags };
	int fd = open(mpmc_dev, O_RDWR | O_CLOEXEC), err;

	if (fd < 0)
		die("open %s: %s", mpmc_dev, strerror(errno));
	if (ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg)) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* Whether the module has the throughput mode (mpmc-tp). */
bool mpmc_has_throughput(void)
{
	int fd = mpmc_new(64, 64, MPMC_CONFIG_THROUGHPUT);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Whether the module has ring mode (mpmc-ring). */
bool mpmc_has_ring(void)
{
	int fd = mpmc_new(64, 64, MPMC_CONFIG_RING);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static unsigned int mpmc_cfg_flags(int xp)
{
	return xp == X_MPMC_TP ? MPMC_CONFIG_THROUGHPUT : xp == X_MPMC_RING ? MPMC_CONFIG_RING : 0;
}

/*
 * mpmc: one O_RDWR file that both sides share (the receivers' own
 * non-blocking endpoint for epoll); mpmc-ep: a send-only endpoint for the
 * producers and a receive-only one for the consumers, as two pipe ends;
 * mpmc-tp: as mpmc, in throughput mode; mpmc-ring: as mpmc, a ring channel
 * that every worker maps (chans_attach()).
 */
static void open_mpmc(struct chan *c, int size, int cap, int flags)
{
	int fd = mpmc_new(size, cap, mpmc_cfg_flags(c->xp));

	if (fd < 0)
		DIE_ERRNO("MPMC_IOC_SET_CONFIG");
	c->s = c->r = fd;
	if (c->xp == X_MPMC_EP) {
		c->s = new_endpoint(fd, MPMC_ROLE_SEND, 0);
		c->r = new_endpoint(fd, MPMC_ROLE_RECV, flags);
		close(fd);
	} else if (flags & CH_RD_NONBLOCK) {
		c->r = new_endpoint(fd, MPMC_ROLE_RECV, flags);
	}
}

/* ----------------------------------------------------------------- pipes */

static void set_nonblock(int fd, int flags)
{
	if ((flags & CH_RD_NONBLOCK) && fcntl(fd, F_SETFL, O_NONBLOCK))
		DIE_ERRNO("fcntl O_NONBLOCK");
}

static void open_pipe(struct chan *c, int size, int cap, int flags)
{
	bool pkt = c->xp == X_PIPEPKT;
	int p[2], v;

	if (pipe2(p, O_CLOEXEC | (pkt ? O_DIRECT : 0)))
		DIE_ERRNO("pipe2");
	v = pkt ? cap * 4096 : cap * size;
	if (v < 4096)
		v = 4096;
	if (fcntl(p[1], F_SETPIPE_SZ, v) < 0) {
		static int warned;

		if (!warned++)
			note("F_SETPIPE_SZ(%d): %s", v, strerror(errno));
	}
	c->s = p[1];
	c->r = p[0];
	set_nonblock(c->r, flags);
}

/* pipe-64k: a pipe as pipe() makes it, 16 pages (64 KiB). */
static void open_pipe64k(struct chan *c, int flags)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		DIE_ERRNO("pipe2");
	c->s = p[1];
	c->r = p[0];
	set_nonblock(c->r, flags);
}

/* ------------------------------------------------------------- seqpacket */

/*
 * SEQPACKET capacity: a message costs its skb truesize in the sender's
 * sk_wmem_alloc, and a send is admitted while wmem < sndbuf. Measure the
 * truesize once per size by filling a socket, then size the buffer so that
 * @cap messages fit. Cached per (size, cap).
 */
struct seqcap { int size, cap, val, eff; };
static struct seqcap seqcaps[64];
static int nseqcaps;

static int seq_fill_count(int s, int r, int size)
{
	char *buf = calloc(1, size);
	int k = 0;

	while (send(s, buf, size, MSG_DONTWAIT) == size)
		k++;
	if (errno != EAGAIN)
		DIE_ERRNO("seqpacket fill");
	while (recv(r, buf, size, MSG_DONTWAIT) > 0)
		;
	free(buf);
	return k;
}

static int seq_setbuf(int s, int val)
{
	if (setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &val, sizeof(val)) == 0)
		return 0;
	return setsockopt(s, SOL_SOCKET, SO_SNDBUF, &val, sizeof(val));
}

static void seq_measure(struct seqcap *c)
{
	int sv[2], k, actual;
	socklen_t len = sizeof(actual);
	double per;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		DIE_ERRNO("socketpair");
	seq_setbuf(sv[0], 1 << 20);
	getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &actual, &len);
	k = seq_fill_count(sv[0], sv[1], c->size);
	if (k < 2)
		die("seqpacket: cannot measure the per-message cost");
	per = (double)actual / k;
	/* setsockopt doubles the value; admit exactly cap messages. */
	c->val = (int)((c->cap - 0.5) * per / 2);
	if (c->val < 1)
		c->val = 1;
	seq_setbuf(sv[0], c->val);
	c->eff = seq_fill_count(sv[0], sv[1], c->size);
	close(sv[0]);
	close(sv[1]);
	note("seqpacket: %d-byte messages cost ~%.0f bytes of sndbuf; capacity %d -> %d messages",
	     c->size, per, c->cap, c->eff);
}

static struct seqcap *seq_capacity(int size, int cap)
{
	struct seqcap *c;
	int i;

	for (i = 0; i < nseqcaps; i++)
		if (seqcaps[i].size == size && seqcaps[i].cap == cap)
			return &seqcaps[i];
	if (nseqcaps == 64)
		die("too many seqpacket configurations");
	c = &seqcaps[nseqcaps++];
	c->size = size;
	c->cap = cap;
	seq_measure(c);
	return c;
}

static void open_seqpacket(struct chan *c, int size, int cap, int flags)
{
	struct seqcap *sc = seq_capacity(size, cap);
	int p[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p))
		DIE_ERRNO("socketpair");
	seq_setbuf(p[0], sc->val);
	c->s = p[0];
	c->r = p[1];
	set_nonblock(c->r, flags);
}

/* ---------------------------------------------------------------- mqueue */

static void raise_sysctl(const char *path, int want)
{
	char v[32];

	if (read_long_file(path) < want) {
		snprintf(v, sizeof(v), "%d", want);
		write_file(path, v);
	}
}

/* Raise the mqueue limits (as root) so that @cap x @size is accepted. */
static void mq_limits(int cap, int size)
{
	static int done_cap, done_size;

	if (cap > done_cap)
		raise_sysctl("/proc/sys/fs/mqueue/msg_max", cap);
	if (size > done_size)
		raise_sysctl("/proc/sys/fs/mqueue/msgsize_max", size);
	if (!done_cap) {
		struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

		if (setrlimit(RLIMIT_MSGQUEUE, &rl)) {
			/* Not root: take what the hard limit allows. */
			getrlimit(RLIMIT_MSGQUEUE, &rl);
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_MSGQUEUE, &rl);
		}
	}
	if (cap > done_cap)
		done_cap = cap;
	if (size > done_size)
		done_size = size;
}

static void open_mqueue(struct chan *c, int size, int cap, int flags)
{
	static int mq_seq;
	struct mq_attr attr = { .mq_maxmsg = cap, .mq_msgsize = size };
	char name[64];

	mq_limits(cap, size);
	snprintf(name, sizeof(name), "/mpmc-bench-%d-%d", (int)getpid(), mq_seq++);
	c->s = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
	if (c->s < 0)
		die("mq_open(%s, maxmsg %d, msgsize %d): %s (is /dev/mqueue mounted?)",
		    name, cap, size, strerror(errno));
	c->r = c->s;
	if (flags & CH_RD_NONBLOCK) {
		c->r = mq_open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (c->r < 0)
			DIE_ERRNO("mq_open O_NONBLOCK");
	}
	mq_unlink(name);
}

/* --------------------------------------------------------------- shmring */

/* tools/shmring.h in a memfd of @cap slots of @size bytes; c->s is the memfd. */
static void open_shmring(struct chan *c, int size, int cap)
{
	struct shmring sr;
	int fd = shmring_create(&sr, cap, size);

	if (fd < 0)
		die("shmring_create(%d, %d): %s", cap, size, strerror(-fd));
	shmring_unmap(&sr);
	c->s = c->r = fd;
}

/*
 * A worker's own mapping of each channel of the run that needs one
 * (mpmc-ring: mpmc_ring_map(), its own mapper id; shmring: shmring_map(),
 * its own owner id), by the channel's index: threads and processes alike
 * map every channel for themselves, as separate programs would. The
 * calling thread's set is found through xlocal.
 */
struct xlocal {
	struct mpmc_ring *ring;
	struct shmring sr;
};

static __thread struct xlocal *xlocal;

struct xlocal *chans_attach(struct chan *c, int n)
{
	struct xlocal *l = calloc(n, sizeof(*l));
	int i, ret = 0;

	if (!l)
		die("out of memory");
	for (i = 0; i < n; i++) {
		if (c[i].xp == X_MPMC_RING)
			ret = mpmc_ring_map(c[i].s, &l[i].ring);
		else if (c[i].xp == X_SHMRING)
			ret = shmring_map(&l[i].sr, c[i].s);
		if (ret)
			die("%s: map: %s", xport_name[c[i].xp], strerror(-ret));
	}
	xlocal = l;
	return l;
}

/* Unmap a set of chans_attach(), from any thread of the process. */
void chans_detach(struct xlocal *l, struct chan *c, int n)
{
	int i;

	for (i = 0; l && i < n; i++) {
		if (c[i].xp == X_MPMC_RING)
			mpmc_ring_unmap(l[i].ring);
		else if (c[i].xp == X_SHMRING)
			shmring_unmap(&l[i].sr);
	}
	free(l);
}

/* A library result (length or -errno) as a system call's (-1 and errno). */
static ssize_t lib_ret(ssize_t n)
{
	if (n >= 0)
		return n;
	errno = -n;
	return -1;
}

/* ------------------------------------------------------------ any of them */

void chan_open(struct chan *c, int xp, int size, int cap, int flags)
{
	c->xp = xp;
	switch (xp) {
	case X_MPMC:
	case X_MPMC_EP:
	case X_MPMC_TP:
	case X_MPMC_RING:
		open_mpmc(c, size, cap, flags);
		break;
	case X_SHMRING:
		open_shmring(c, size, cap);
		break;
	case X_PIPEPKT:
	case X_PIPE:
		open_pipe(c, size, cap, flags);
		break;
	case X_PIPE64K:
		open_pipe64k(c, flags);
		break;
	case X_SEQPACKET:
		open_seqpacket(c, size, cap, flags);
		break;
	case X_MQUEUE:
		open_mqueue(c, size, cap, flags);
		break;
	default:
		die("no channel for transport %d", xp);
	}
}

void chan_close(struct chan *c)
{
	if (c->r != c->s)
		close(c->r);
	close(c->s);
}

/* One send or receive call, as the transport spells it. */
static ssize_t xfer_once(struct chan *c, void *buf, size_t len, bool rx)
{
	struct xlocal *l = xlocal ? &xlocal[c->idx] : NULL;

	/* The ring transports block (flags 0); they run no epoll cell. */
	switch (c->xp) {
	case X_MPMC_RING:
		if (rx)
			return lib_ret(mpmc_ring_recv(l->ring, buf, len, 0));
		return lib_ret(mpmc_ring_send(l->ring, buf, len, 0));
	case X_SHMRING:
		if (rx)
			return lib_ret(shmring_recv(&l->sr, buf, len, 0));
		return lib_ret(shmring_send(&l->sr, buf, len, 0));
	case X_SEQPACKET:
		return rx ? recv(c->r, buf, len, 0) : send(c->s, buf, len, 0);
	case X_MQUEUE:
		if (rx)
			return mq_receive(c->r, buf, len, NULL);
		return mq_send(c->s, buf, len, 0) ? -1 : (ssize_t)len;
	default:
		return rx ? read(c->r, buf, len) : write(c->s, buf, len);
	}
}

/* One whole message, retried after EINTR; -1 for EAGAIN (receive only). */
static ssize_t xfer(struct chan *c, void *buf, size_t len, bool recv)
{
	const char *what = recv ? "recv" : "send";
	ssize_t n;

	for (;;) {
		n = xfer_once(c, buf, len, recv);
		if (n == (ssize_t)len)
			return n;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && recv)
			return -1;
		if (n < 0)
			die("%s %s: %s", xport_name[c->xp], what, strerror(errno));
		die("%s %s: %zd bytes of %zu (message boundary lost)", xport_name[c->xp], what, n, len);
	}
}

void chan_send(struct chan *c, const void *buf, size_t len)
{
	xfer(c, (void *)buf, len, false);
}

/* Returns the message length, or -1 with errno EAGAIN (non-blocking). */
ssize_t chan_recv(struct chan *c, void *buf, size_t len)
{
	return xfer(c, buf, len, true);
}
