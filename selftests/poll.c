// SPDX-License-Identifier: GPL-2.0
/*
 * Readiness of /dev/mpmc channels (mpmc(4), "Readiness"): poll(2), select(2)
 * and epoll report exactly what mpmc(4) says in every state (empty, partly
 * full, full, shut down either way with and without messages left, last
 * sender or receiver closed, opened without a role), and always agree with
 * the non-blocking read/write made in the same state; a file reports only
 * the directions of its roles. Also: poll/select sleep until a message
 * arrives, shutdown wakes sleeping pollers with HUP/ERR, edge-triggered
 * epoll gets an event per enqueue (readers) and per dequeue (writers),
 * EPOLLEXCLUSIVE waiters are woken one per message, a message handed to a
 * blocked read() is never seen (nor woken for) by pollers, and O_ASYNC
 * delivers SIGIO on enqueue, dequeue and shutdown.
 *
 * The non-blocking read probe uses a 1-byte buffer: every message in these
 * tests is longer, so it answers EMSGSIZE when a message is queued, 0 at
 * end of file and EAGAIN when a read would block, without consuming.
 * "Is this thread asleep in poll/epoll_wait" is checked through
 * /proc/self/task/TID/{stat,syscall} with a bounded deadline.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

/* Generous bounds: the tests run in an emulated (TCG) guest. */
#define SETTLE_US	150000	/* to let a wrongly woken thread show itself */
#define MSG_SIZE	64	/* max_msg_size of most test channels */

#define ROLE_RX		MPMC_ROLE_RECV
#define ROLE_TX		MPMC_ROLE_SEND
#define ROLE_RW		(MPMC_ROLE_SEND | MPMC_ROLE_RECV)

#define RD_EV		(POLLIN | POLLRDNORM)
#define WR_EV		(POLLOUT | POLLWRNORM)
#define ALL_EV		(RD_EV | WR_EV)

static const long poll_nrs[] = { SYS_poll, SYS_ppoll, -1 };
static const long select_nrs[] = { SYS_select, SYS_pselect6, -1 };
static const long epoll_nrs[] = { SYS_epoll_wait, SYS_epoll_pwait,
				  441 /* epoll_pwait2 */, -1 };

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int fill(int fd, int n, size_t len)
{
	char buf[MSG_SIZE];
	int i;

	memset(buf, 'x', sizeof(buf));
	for (i = 0; i < n; i++)
		if (write(fd, buf, len) != (ssize_t)len)
			return -1;
	return 0;
}

/*
 * Is thread @tid sleeping (state S) inside one of the syscalls @nrs
 * (terminated by -1)?
 */
static bool asleep_in(pid_t tid, const long *nrs)
{
	char path[64], buf[512], *p;
	long nr;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return false;
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || p[2] != 'S')
		return false;
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return false;
	if (sscanf(buf, "%ld", &nr) != 1)
		return false;	/* "running" */
	for (; *nrs >= 0; nrs++)
		if (nr == *nrs)
			return true;
	return false;
}

static int wait_asleep(pid_t tid, const long *nrs)
{
	long long end = now_ms() + WAIT_MS;

	while (!asleep_in(tid, nrs)) {
		if (now_ms() > end)
			return -1;
		usleep(1000);
	}
	/* Still there a moment later: really parked, not passing through. */
	usleep(20000);
	return asleep_in(tid, nrs) ? 0 : wait_asleep(tid, nrs);
}

/* voluntary_ctxt_switches of thread @tid, or -1. */
static long vol_switches(pid_t tid)
{
	char path[64], buf[4096], *p;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	p = strstr(buf, "\nvoluntary_ctxt_switches:");
	if (!p)
		return -1;
	return strtol(p + strlen("\nvoluntary_ctxt_switches:"), NULL, 10);
}

/*
 * The readiness mpmc(4) gives a file with @roles when a message is
 * @queued, the channel is @full and/or @shut down (any direction).
 */
static short want_events(unsigned int roles, bool queued, bool full,
			 bool shut)
{
	short ev = 0;

	if (roles & MPMC_ROLE_RECV) {
		if (queued || shut)
			ev |= RD_EV;
		if (shut && !queued)
			ev |= POLLHUP;
	}
	if (roles & MPMC_ROLE_SEND) {
		if (shut)
			ev |= WR_EV | POLLERR;
		else if (!full)
			ev |= WR_EV;
	}
	return ev;
}

/*
 * Check one file against the state: poll(2) with timeout 0, select(2),
 * level-triggered epoll, and the non-destructive non-blocking read probe.
 * @fd must be O_NONBLOCK.
 */
static void check_file(struct __test_metadata *_metadata, int fd,
		       unsigned int roles, bool queued, bool full, bool shut,
		       const char *what)
{
	short want = want_events(roles, queued, full, shut);
	struct pollfd pfd = { .fd = fd, .events = ALL_EV };
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLRDNORM | EPOLLOUT | EPOLLWRNORM,
	};
	struct timeval tv = { 0, 0 };
	fd_set r, w, e;
	bool sr, sw;
	int n, epfd;
	ssize_t got;
	char b;

	/* poll */
	ASSERT_EQ(want ? 1 : 0, poll(&pfd, 1, 0)) TH_LOG("%s: poll", what);
	EXPECT_EQ(want, pfd.revents)
		TH_LOG("%s: poll revents 0x%x, want 0x%x", what,
		       pfd.revents, want);
	/* A file reports only the directions of its roles. */
	if (!(roles & MPMC_ROLE_RECV))
		EXPECT_EQ(0, pfd.revents & (RD_EV | POLLHUP))
			TH_LOG("%s: send-only file reports 0x%x", what,
			       pfd.revents);
	if (!(roles & MPMC_ROLE_SEND))
		EXPECT_EQ(0, pfd.revents & (WR_EV | POLLERR))
			TH_LOG("%s: recv-only file reports 0x%x", what,
			       pfd.revents);

	/* select agrees (fs/select.c: POLLIN_SET, POLLOUT_SET, POLLEX_SET) */
	FD_ZERO(&r);
	FD_ZERO(&w);
	FD_ZERO(&e);
	FD_SET(fd, &r);
	FD_SET(fd, &w);
	FD_SET(fd, &e);
	sr = want & (RD_EV | POLLHUP | POLLERR);
	sw = want & (WR_EV | POLLERR);
	n = select(fd + 1, &r, &w, &e, &tv);
	EXPECT_EQ((int)sr + (int)sw, n) TH_LOG("%s: select", what);
	EXPECT_EQ(sr, !!FD_ISSET(fd, &r)) TH_LOG("%s: select read", what);
	EXPECT_EQ(sw, !!FD_ISSET(fd, &w)) TH_LOG("%s: select write", what);
	EXPECT_EQ(0, !!FD_ISSET(fd, &e)) TH_LOG("%s: select except", what);

	/* level-triggered epoll agrees */
	epfd = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, epfd);
	ASSERT_EQ(0, epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev));
	memset(&ev, 0, sizeof(ev));
	n = epoll_wait(epfd, &ev, 1, 0);
	EXPECT_EQ(want ? 1 : 0, n) TH_LOG("%s: epoll_wait", what);
	if (n == 1)
		EXPECT_EQ((unsigned int)want, ev.events)
			TH_LOG("%s: epoll events 0x%x, want 0x%x", what,
			       ev.events, want);
	close(epfd);

	/* the non-blocking read agrees */
	if (roles & MPMC_ROLE_RECV) {
		errno = 0;
		got = read(fd, &b, 1);
		if (!(want & POLLIN)) {
			EXPECT_EQ(-1, got) TH_LOG("%s: read not EAGAIN", what);
			EXPECT_EQ(EAGAIN, errno) TH_LOG("%s: read", what);
		} else if (queued) {
			EXPECT_EQ(-1, got) TH_LOG("%s: read probe", what);
			EXPECT_EQ(EMSGSIZE, errno) TH_LOG("%s: read", what);
		} else {
			EXPECT_EQ(0, got) TH_LOG("%s: read not EOF", what);
		}
	}
}

/*
 * The non-blocking write of a max_msg_size (@size) message on @fd agrees
 * with what poll says. Destructive: the message is queued if it fits.
 * Returns 1 if a message was queued.
 */
static int probe_write(struct __test_metadata *_metadata, int fd, size_t size,
		       const char *what)
{
	struct pollfd pfd = { .fd = fd, .events = ALL_EV };
	char buf[65536];
	ssize_t n;

	ASSERT_GE(sizeof(buf), size);
	ASSERT_LE(0, poll(&pfd, 1, 0));
	memset(buf, 'w', size);
	errno = 0;
	n = write(fd, buf, size);
	if (pfd.revents & POLLERR) {
		EXPECT_EQ(-1, n) TH_LOG("%s: write after ERR", what);
		EXPECT_EQ(EPIPE, errno) TH_LOG("%s: write after ERR", what);
	} else if (pfd.revents & POLLOUT) {
		EXPECT_EQ((ssize_t)size, n)
			TH_LOG("%s: POLLOUT but write: %s", what,
			       strerror(errno));
	} else {
		EXPECT_EQ(-1, n) TH_LOG("%s: no POLLOUT but write ok", what);
		EXPECT_EQ(EAGAIN, errno) TH_LOG("%s: write", what);
	}
	return n == (ssize_t)size;
}

/* The three kinds of file on one channel; -1 where absent. */
struct files {
	int rw;		/* the O_RDWR fd from open() */
	int rx;		/* a RECV endpoint */
	int tx;		/* a SEND endpoint */
};

static void check_chan(struct __test_metadata *_metadata,
		       const struct files *f, bool queued, bool full,
		       bool shut, const char *what)
{
	char name[128];

	if (f->rw >= 0) {
		snprintf(name, sizeof(name), "%s (O_RDWR)", what);
		check_file(_metadata, f->rw, ROLE_RW, queued, full, shut,
			   name);
	}
	if (f->rx >= 0) {
		snprintf(name, sizeof(name), "%s (RECV endpoint)", what);
		check_file(_metadata, f->rx, ROLE_RX, queued, full, shut,
			   name);
	}
	if (f->tx >= 0) {
		snprintf(name, sizeof(name), "%s (SEND endpoint)", what);
		check_file(_metadata, f->tx, ROLE_TX, queued, full, shut,
			   name);
	}
}

/* A channel with @cap x MSG_SIZE and non-blocking rw, rx and tx files. */
static void open_files(struct __test_metadata *_metadata, struct files *f,
		       __u32 cap)
{
	f->rw = mpmc_test_open_cfg(cap, MSG_SIZE);
	ASSERT_LE(0, f->rw);
	ASSERT_EQ(0, set_nonblock(f->rw));
	f->rx = new_ep(f->rw, ROLE_RX, O_NONBLOCK);
	ASSERT_LE(0, f->rx);
	f->tx = new_ep(f->rw, ROLE_TX, O_NONBLOCK);
	ASSERT_LE(0, f->tx);
}

static void close_files(struct files *f)
{
	if (f->rw >= 0)
		close(f->rw);
	if (f->rx >= 0)
		close(f->rx);
	if (f->tx >= 0)
		close(f->tx);
	f->rw = f->rx = f->tx = -1;
}

static __u32 queued(int fd)
{
	struct mpmc_stats st;

	if (ioctl(fd, MPMC_IOC_GET_STATS, &st))
		return ~0U;
	return st.queued_msgs;
}

/*
 * Empty, partly full and full, going up by non-blocking writes (each one a
 * probe that must agree with POLLOUT) and down by reads, for capacities 1
 * and 5.
 */
TEST(fill_levels)
{
	static const __u32 caps[] = { 1, 5 };
	char buf[MSG_SIZE], what[64];
	unsigned int i;
	struct files f;
	__u32 cap, k;

	for (i = 0; i < ARRAY_SIZE(caps); i++) {
		cap = caps[i];
		open_files(_metadata, &f, cap);
		for (k = 0; k <= cap; k++) {
			snprintf(what, sizeof(what), "cap %u, %u queued", cap,
				 k);
			check_chan(_metadata, &f, k > 0, k == cap, false, what);
			/* Alternate the sending file. */
			ASSERT_EQ(k < cap,
				  probe_write(_metadata, k % 2 ? f.rw : f.tx,
					      MSG_SIZE, what));
			ASSERT_EQ(k < cap ? k + 1 : cap, queued(f.rw));
		}
		for (k = cap; k > 0; k--) {
			ASSERT_EQ(MSG_SIZE,
				  read(k % 2 ? f.rx : f.rw, buf, sizeof(buf)));
			snprintf(what, sizeof(what),
				 "cap %u, drained to %u", cap, k - 1);
			check_chan(_metadata, &f, k > 1, false, false, what);
		}
		ASSERT_ERRNO(EAGAIN, read(f.rx, buf, sizeof(buf)));
		close_files(&f);
	}
}

/* The default configuration: full at its capacity of max_msg_size writes. */
TEST(full_default_config)
{
	struct mpmc_config cfg;
	struct files f;
	char *buf;
	__u32 k;

	f.rw = mpmc_test_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, f.rw);
	f.rx = new_ep(f.rw, ROLE_RX, O_NONBLOCK);
	ASSERT_LE(0, f.rx);
	f.tx = new_ep(f.rw, ROLE_TX, O_NONBLOCK);
	ASSERT_LE(0, f.tx);
	ASSERT_EQ(0, ioctl(f.rw, MPMC_IOC_GET_CONFIG, &cfg));
	ASSERT_LT(1U, cfg.max_msg_size);
	buf = malloc(cfg.max_msg_size);
	ASSERT_NE(NULL, buf);
	memset(buf, 'd', cfg.max_msg_size);

	check_chan(_metadata, &f, false, false, false, "default, empty");
	for (k = 0; k < cfg.capacity - 1; k++)
		ASSERT_EQ((ssize_t)cfg.max_msg_size,
			  write(f.tx, buf, cfg.max_msg_size));
	check_chan(_metadata, &f, true, false, false, "default, cap-1");
	ASSERT_EQ(1, probe_write(_metadata, f.tx, cfg.max_msg_size,
				 "default, cap-1"));
	check_chan(_metadata, &f, true, true, false, "default, full");
	ASSERT_EQ(0, probe_write(_metadata, f.rw, cfg.max_msg_size,
				 "default, full"));
	ASSERT_EQ(cfg.capacity, queued(f.rw));
	ASSERT_EQ((ssize_t)cfg.max_msg_size, read(f.rx, buf,
						  cfg.max_msg_size));
	check_chan(_metadata, &f, true, false, false, "default, one read");
	free(buf);
	close_files(&f);
}

/* SHUT_WR with messages left: IN without HUP; drained: IN|HUP. */
TEST(shut_wr_then_drained)
{
	char buf[MSG_SIZE];
	struct files f;

	open_files(_metadata, &f, 4);
	ASSERT_EQ(0, fill(f.tx, 2, 10));
	ASSERT_EQ(0, ioctl(f.rw, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	check_chan(_metadata, &f, true, false, true, "SHUT_WR, 2 left");
	ASSERT_EQ(0, probe_write(_metadata, f.tx, MSG_SIZE, "SHUT_WR"));
	ASSERT_EQ(0, probe_write(_metadata, f.rw, MSG_SIZE, "SHUT_WR"));
	ASSERT_EQ(10, read(f.rx, buf, sizeof(buf)));
	check_chan(_metadata, &f, true, false, true, "SHUT_WR, 1 left");
	ASSERT_EQ(10, read(f.rw, buf, sizeof(buf)));
	check_chan(_metadata, &f, false, false, true, "SHUT_WR, drained");
	ASSERT_EQ(0, read(f.rx, buf, sizeof(buf)));
	ASSERT_EQ(0, read(f.rx, buf, sizeof(buf)));
	check_chan(_metadata, &f, false, false, true, "SHUT_WR, after EOF");
	close_files(&f);
}

/* SHUT_RD discards the queue: IN|HUP for readers, OUT|ERR for writers. */
TEST(shut_rd)
{
	char buf[MSG_SIZE];
	struct files f;

	open_files(_metadata, &f, 3);
	ASSERT_EQ(0, fill(f.tx, 3, 20));
	check_chan(_metadata, &f, true, true, false, "full before SHUT_RD");
	ASSERT_EQ(0, ioctl(f.rx, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RD));
	check_chan(_metadata, &f, false, false, true, "SHUT_RD");
	ASSERT_EQ(0, probe_write(_metadata, f.tx, MSG_SIZE, "SHUT_RD"));
	ASSERT_EQ(0, read(f.rx, buf, sizeof(buf)));
	check_chan(_metadata, &f, false, false, true, "SHUT_RD, after read");
	close_files(&f);
}

/* SHUT_RDWR on an empty channel: the same as either. */
TEST(shut_rdwr_empty)
{
	struct files f;

	open_files(_metadata, &f, 2);
	ASSERT_EQ(0, ioctl(f.tx, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RDWR));
	check_chan(_metadata, &f, false, false, true, "SHUT_RDWR");
	ASSERT_EQ(0, probe_write(_metadata, f.tx, MSG_SIZE, "SHUT_RDWR"));
	close_files(&f);
}

/*
 * The last file with the send role closed: the receivers see IN while
 * messages are left, then IN|HUP.
 */
TEST(last_sender_closed)
{
	char buf[MSG_SIZE];
	struct files f;

	open_files(_metadata, &f, 4);
	ASSERT_EQ(0, fill(f.tx, 2, 12));
	/* The O_RDWR file goes; the SEND endpoint still holds the role. */
	close(f.rw);
	f.rw = -1;
	check_chan(_metadata, &f, true, false, false, "rw closed");
	close(f.tx);
	f.tx = -1;
	check_chan(_metadata, &f, true, false, true, "last sender closed");
	ASSERT_EQ(12, read(f.rx, buf, sizeof(buf)));
	ASSERT_EQ(12, read(f.rx, buf, sizeof(buf)));
	check_chan(_metadata, &f, false, false, true,
		   "last sender closed, drained");
	ASSERT_EQ(0, read(f.rx, buf, sizeof(buf)));
	close_files(&f);
}

/* The last file with the receive role closed: the senders see OUT|ERR. */
TEST(last_receiver_closed)
{
	struct files f;

	open_files(_metadata, &f, 2);
	ASSERT_EQ(0, fill(f.tx, 2, 12));
	check_chan(_metadata, &f, true, true, false, "full");
	close(f.rw);
	f.rw = -1;
	check_chan(_metadata, &f, true, true, false, "full, rw closed");
	close(f.rx);
	f.rx = -1;
	check_chan(_metadata, &f, false, false, true, "last receiver closed");
	ASSERT_EQ(0, probe_write(_metadata, f.tx, MSG_SIZE,
				 "last receiver closed"));
	close_files(&f);
}

/* A channel opened O_RDONLY has no sender ever, O_WRONLY no receiver. */
TEST(opened_with_one_role)
{
	int rd, wr;

	rd = mpmc_test_open(O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, rd);
	wr = mpmc_test_open(O_WRONLY | O_NONBLOCK);
	ASSERT_LE(0, wr);
	check_file(_metadata, rd, ROLE_RX, false, false, true, "O_RDONLY");
	check_file(_metadata, wr, ROLE_TX, false, false, true, "O_WRONLY");
	ASSERT_EQ(0, probe_write(_metadata, wr, 16, "O_WRONLY"));
	close(rd);
	close(wr);
}

/*
 * From another thread, once @target is asleep in @nrs: write "wake up" to
 * @fd, or (@rd) read one message from it.
 */
struct later {
	pthread_t th;
	pid_t target;
	const long *nrs;
	int fd;
	bool rd;
	atomic_int written;
	int not_asleep;
	int err;
};

static void *write_later(void *arg)
{
	struct later *l = arg;
	char buf[MSG_SIZE];

	l->not_asleep = wait_asleep(l->target, l->nrs);
	atomic_store(&l->written, 1);
	if (l->rd) {
		if (read(l->fd, buf, sizeof(buf)) != 7)
			l->err = errno ? errno : -1;
	} else if (write(l->fd, "wake up", 7) != 7) {
		l->err = errno ? errno : -1;
	}
	return NULL;
}

/* poll(2) sleeps until a message arrives. */
TEST(poll_blocks_until_message)
{
	struct pollfd pfd;
	struct later l;
	struct files f;
	long long t0;

	open_files(_metadata, &f, 4);
	memset(&l, 0, sizeof(l));
	l.target = gettid();
	l.nrs = poll_nrs;
	l.fd = f.tx;
	ASSERT_EQ(0, pthread_create(&l.th, NULL, write_later, &l));
	pfd.fd = f.rx;
	pfd.events = POLLIN;
	pfd.revents = 0;
	t0 = now_ms();
	ASSERT_EQ(1, poll(&pfd, 1, WAIT_MS));
	ASSERT_EQ(1, atomic_load(&l.written))
		TH_LOG("poll returned before the write");
	EXPECT_EQ(POLLIN, pfd.revents);
	ASSERT_EQ(0, pthread_join(l.th, NULL));
	EXPECT_EQ(0, l.not_asleep) TH_LOG("poll did not sleep");
	EXPECT_EQ(0, l.err);
	EXPECT_GT(now_ms() - t0, 15);
	check_chan(_metadata, &f, true, false, false, "after wakeup");
	close_files(&f);
}

/* select(2) sleeps until a message arrives, and until room appears. */
TEST(select_blocks_until_ready)
{
	struct timeval tv = { WAIT_MS / 1000, 0 };
	struct later l;
	struct files f;
	fd_set r, w;

	open_files(_metadata, &f, 1);
	memset(&l, 0, sizeof(l));
	l.target = gettid();
	l.nrs = select_nrs;
	l.fd = f.tx;
	ASSERT_EQ(0, pthread_create(&l.th, NULL, write_later, &l));
	FD_ZERO(&r);
	FD_SET(f.rx, &r);
	ASSERT_EQ(1, select(f.rx + 1, &r, NULL, NULL, &tv));
	ASSERT_EQ(1, atomic_load(&l.written));
	EXPECT_TRUE(FD_ISSET(f.rx, &r));
	ASSERT_EQ(0, pthread_join(l.th, NULL));
	EXPECT_EQ(0, l.not_asleep);
	EXPECT_EQ(0, l.err);

	/* Now full (capacity 1): select for writing sleeps until a read. */
	FD_ZERO(&w);
	FD_SET(f.tx, &w);
	tv.tv_sec = 0;
	tv.tv_usec = 0;
	ASSERT_EQ(0, select(f.tx + 1, NULL, &w, NULL, &tv));
	memset(&l, 0, sizeof(l));
	l.target = gettid();
	l.nrs = select_nrs;
	l.fd = f.rx;
	l.rd = true;
	ASSERT_EQ(0, pthread_create(&l.th, NULL, write_later, &l));
	FD_ZERO(&w);
	FD_SET(f.tx, &w);
	tv.tv_sec = WAIT_MS / 1000;
	tv.tv_usec = 0;
	ASSERT_EQ(1, select(f.tx + 1, NULL, &w, NULL, &tv));
	ASSERT_EQ(1, atomic_load(&l.written));
	EXPECT_TRUE(FD_ISSET(f.tx, &w));
	ASSERT_EQ(0, pthread_join(l.th, NULL));
	EXPECT_EQ(0, l.not_asleep);
	EXPECT_EQ(0, l.err);
	ASSERT_EQ(0U, queued(f.rw));
	close_files(&f);
}

/* A poll(2) or epoll_wait(2) run in a thread. */
struct waiter {
	pthread_t th;
	int fd;		/* polled file, or the epoll fd */
	bool epoll;
	short events;
	atomic_int tid;
	atomic_int done;
	int ret;
	unsigned int revents;
};

static void *waiter_fn(void *arg)
{
	struct waiter *wt = arg;
	struct pollfd pfd = { .fd = wt->fd, .events = wt->events };
	struct epoll_event ev = { 0 };

	atomic_store(&wt->tid, gettid());
	if (wt->epoll) {
		wt->ret = epoll_wait(wt->fd, &ev, 1, 2 * WAIT_MS);
		wt->revents = ev.events;
	} else {
		wt->ret = poll(&pfd, 1, 2 * WAIT_MS);
		wt->revents = pfd.revents;
	}
	atomic_store(&wt->done, 1);
	return NULL;
}

static int start_waiter(struct waiter *wt, int fd, bool epoll, short events)
{
	long long end = now_ms() + WAIT_MS;

	memset(wt, 0, sizeof(*wt));
	wt->fd = fd;
	wt->epoll = epoll;
	wt->events = events;
	if (pthread_create(&wt->th, NULL, waiter_fn, wt))
		return -1;
	while (!atomic_load(&wt->tid))
		if (now_ms() > end)
			return -1;
	return wait_asleep(atomic_load(&wt->tid),
			   epoll ? epoll_nrs : poll_nrs);
}

static int join_waiter(struct waiter *wt)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2 * WAIT_MS / 1000 + 5;
	return pthread_timedjoin_np(wt->th, NULL, &ts);
}

/*
 * Shutdown wakes sleeping pollers: a reader's poll and epoll_wait with
 * IN|HUP, a writer's poll on a full channel with OUT|ERR.
 */
TEST(shutdown_wakes_pollers)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct waiter rp, rep, wp;
	struct files a, b;
	int epfd;

	open_files(_metadata, &a, 4);
	open_files(_metadata, &b, 1);
	ASSERT_EQ(0, fill(b.tx, 1, 8));
	epfd = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, epfd);
	ASSERT_EQ(0, epoll_ctl(epfd, EPOLL_CTL_ADD, a.rx, &ev));

	ASSERT_EQ(0, start_waiter(&rp, a.rx, false, POLLIN));
	ASSERT_EQ(0, start_waiter(&rep, epfd, true, 0));
	ASSERT_EQ(0, start_waiter(&wp, b.tx, false, POLLOUT));
	usleep(SETTLE_US);
	ASSERT_EQ(0, atomic_load(&rp.done));
	ASSERT_EQ(0, atomic_load(&rep.done));
	ASSERT_EQ(0, atomic_load(&wp.done));

	ASSERT_EQ(0, ioctl(a.tx, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	ASSERT_EQ(0, join_waiter(&rp));
	ASSERT_EQ(0, join_waiter(&rep));
	EXPECT_EQ(1, rp.ret);
	EXPECT_EQ((unsigned int)(POLLIN | POLLHUP), rp.revents);
	EXPECT_EQ(1, rep.ret);
	EXPECT_EQ((unsigned int)(EPOLLIN | EPOLLHUP), rep.revents);
	/* The other channel's writer is still asleep. */
	ASSERT_EQ(0, atomic_load(&wp.done));

	ASSERT_EQ(0, ioctl(b.rx, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RD));
	ASSERT_EQ(0, join_waiter(&wp));
	EXPECT_EQ(1, wp.ret);
	EXPECT_EQ((unsigned int)(POLLOUT | POLLERR), wp.revents);
	close(epfd);
	close_files(&a);
	close_files(&b);
}

/* Level-triggered epoll keeps reporting a state until it changes. */
TEST(epoll_level_triggered)
{
	struct epoll_event ev;
	char buf[MSG_SIZE];
	struct files f;
	int rep, wep, i;

	open_files(_metadata, &f, 2);
	rep = epoll_create1(EPOLL_CLOEXEC);
	wep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, rep);
	ASSERT_LE(0, wep);
	ev.events = EPOLLIN;
	ev.data.u32 = 1;
	ASSERT_EQ(0, epoll_ctl(rep, EPOLL_CTL_ADD, f.rx, &ev));
	ev.events = EPOLLOUT;
	ev.data.u32 = 2;
	ASSERT_EQ(0, epoll_ctl(wep, EPOLL_CTL_ADD, f.tx, &ev));

	ASSERT_EQ(0, epoll_wait(rep, &ev, 1, 0));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(1, epoll_wait(wep, &ev, 1, 0));
		EXPECT_EQ((unsigned int)(EPOLLOUT), ev.events);
	}
	ASSERT_EQ(0, fill(f.tx, 1, 9));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(1, epoll_wait(rep, &ev, 1, 0));
		EXPECT_EQ((unsigned int)(EPOLLIN), ev.events);
		EXPECT_EQ(1U, ev.data.u32);
		ASSERT_EQ(1, epoll_wait(wep, &ev, 1, 0));
	}
	ASSERT_EQ(0, fill(f.tx, 1, 9));
	/* Full: no EPOLLOUT, however often asked. */
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, epoll_wait(wep, &ev, 1, 0));
	ASSERT_EQ(9, read(f.rx, buf, sizeof(buf)));
	ASSERT_EQ(1, epoll_wait(wep, &ev, 1, 0));
	EXPECT_EQ((unsigned int)(EPOLLOUT), ev.events);
	ASSERT_EQ(1, epoll_wait(rep, &ev, 1, 0));
	ASSERT_EQ(9, read(f.rx, buf, sizeof(buf)));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, epoll_wait(rep, &ev, 1, 0));
	/* A LT waiter sleeps until the next message. */
	ASSERT_EQ(0, epoll_wait(rep, &ev, 1, 50));
	close(rep);
	close(wep);
	close_files(&f);
}

/*
 * Edge-triggered reader: every enqueue is an event, also into a channel
 * that already holds messages; reads (with no blocked sender) are not.
 */
TEST(epoll_et_reader_event_per_write)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	char buf[MSG_SIZE];
	struct files f;
	int ep, i;

	open_files(_metadata, &f, 8);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, f.rx, &ev));
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));

	for (i = 1; i <= 5; i++) {
		ASSERT_EQ(0, fill(i % 2 ? f.tx : f.rw, 1, 10 + i));
		ASSERT_EQ(1, epoll_wait(ep, &ev, 1, 0))
			TH_LOG("no EPOLLET event for write %d (%d queued)",
			       i, i);
		EXPECT_EQ((unsigned int)(EPOLLIN), ev.events);
		/* The edge is consumed. */
		ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	}
	ASSERT_EQ(5U, queued(f.rw));
	/* Dequeues do not wake readers. */
	ASSERT_EQ(11, read(f.rx, buf, sizeof(buf)));
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	/* A message into a non-empty channel is still an edge. */
	ASSERT_EQ(0, fill(f.tx, 1, 30));
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, 0));
	EXPECT_EQ((unsigned int)(EPOLLIN), ev.events);
	close(ep);
	close_files(&f);
}

/*
 * Edge-triggered writer: every dequeue is an event, whether or not the
 * channel was full; writes are not.
 */
TEST(epoll_et_writer_event_per_read)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLET };
	char buf[MSG_SIZE];
	struct files f;
	int ep, i;

	open_files(_metadata, &f, 4);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, f.tx, &ev));
	/* Writable when added: one event, then the edge is consumed. */
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, 0));
	EXPECT_EQ((unsigned int)(EPOLLOUT), ev.events);
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));

	ASSERT_EQ(0, fill(f.tx, 4, 16));
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(16, read(i % 2 ? f.rx : f.rw, buf, sizeof(buf)));
		ASSERT_EQ(1, epoll_wait(ep, &ev, 1, 0))
			TH_LOG("no EPOLLET event for read %d", i);
		EXPECT_EQ((unsigned int)(EPOLLOUT), ev.events);
		ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	}
	close(ep);
	close_files(&f);
}

/*
 * Edge-triggered writer and receive batches: a batch that takes messages
 * is an event (as a read is), one that finds nothing is not.
 */
TEST(epoll_et_writer_event_per_recv_batch)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLET };
	struct mpmc_msgvec v[2];
	char bufs[2][MSG_SIZE];
	struct mpmc_batch b = {
		.vec = (__u64)(uintptr_t)v, .count = 2, .timeout_ns = 0,
	};
	struct files f;
	int ep, i;

	open_files(_metadata, &f, 4);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, f.tx, &ev));
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, 0));
	ASSERT_EQ(0, fill(f.tx, 4, 16));
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	for (i = 0; i < 2; i++) {
		v[0] = (struct mpmc_msgvec){ .buf = (__u64)(uintptr_t)bufs[0],
					     .len = MSG_SIZE };
		v[1] = (struct mpmc_msgvec){ .buf = (__u64)(uintptr_t)bufs[1],
					     .len = MSG_SIZE };
		ASSERT_EQ(2, ioctl(f.rx, MPMC_IOC_RECV, &b));
		ASSERT_EQ(1, epoll_wait(ep, &ev, 1, 0))
			TH_LOG("no EPOLLET event for receive batch %d", i);
		EXPECT_EQ((unsigned int)(EPOLLOUT), ev.events);
		ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	}
	/* Empty now: a batch that takes nothing makes no room. */
	ASSERT_EQ(-1, ioctl(f.rx, MPMC_IOC_RECV, &b));
	ASSERT_EQ(EAGAIN, errno);
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	close(ep);
	close_files(&f);
}

/*
 * One of the EPOLLEXCLUSIVE waiters: its own epoll instance. A reader
 * (@wr false) consumes a message from @fd when woken, a writer (@wr true)
 * refills the channel through @fd.
 */
struct xwaiter {
	pthread_t th;
	int epfd;
	int fd;		/* non-blocking endpoint to act with */
	bool wr;
	atomic_int tid;
	atomic_int wakes;
	atomic_int done;	/* messages read or written */
	atomic_int empty;	/* woken for nothing: EAGAIN */
	atomic_int hup;		/* woken by shutdown */
	atomic_int fail;
};

static void *xwaiter_fn(void *arg)
{
	struct xwaiter *x = arg;
	struct epoll_event ev;
	char buf[MSG_SIZE];
	ssize_t n;

	memset(buf, 'r', sizeof(buf));
	atomic_store(&x->tid, gettid());
	for (;;) {
		n = epoll_wait(x->epfd, &ev, 1, 3 * WAIT_MS);
		if (n != 1) {
			atomic_store(&x->fail, 1);
			break;
		}
		atomic_fetch_add(&x->wakes, 1);
		if (ev.events & (EPOLLHUP | EPOLLERR)) {
			atomic_store(&x->hup, 1);
			break;
		}
		if (x->wr)
			n = write(x->fd, buf, 20);
		else
			n = read(x->fd, buf, sizeof(buf));
		if (n > 0)
			atomic_fetch_add(&x->done, 1);
		else
			atomic_fetch_add(&x->empty, 1);
	}
	return NULL;
}

#define NR_XWAITERS	6
#define NR_XMSGS	5

static int sum(struct xwaiter *x, size_t off)
{
	int i, s = 0;

	for (i = 0; i < NR_XWAITERS; i++)
		s += atomic_load((atomic_int *)((char *)&x[i] + off));
	return s;
}

#define SUM(x, field) sum(x, offsetof(struct xwaiter, field))

/*
 * NR_XWAITERS threads, each asleep in epoll_wait on its own epoll instance
 * holding @epfd_target with @events|EPOLLEXCLUSIVE. Each of NR_XMSGS
 * events (a write for readers, a read for writers) must wake exactly one
 * of them, which then consumes (or refills); shutdown wakes them all.
 * Wakeups are counted both as returns from epoll_wait and as voluntary
 * context switches (a waiter woken for nothing sleeps again in the kernel).
 */
static void exclusive_one(struct __test_metadata *_metadata, bool wr)
{
	struct xwaiter x[NR_XWAITERS];
	struct epoll_event ev;
	long sw, sw0, sw1;
	char buf[MSG_SIZE];
	long long end;
	struct files f;
	int i, k;

	open_files(_metadata, &f, wr ? 2 : 16);
	if (wr)
		ASSERT_EQ(0, fill(f.tx, 2, 20));
	memset(x, 0, sizeof(x));
	for (i = 0; i < NR_XWAITERS; i++) {
		x[i].epfd = epoll_create1(EPOLL_CLOEXEC);
		ASSERT_LE(0, x[i].epfd);
		ev.events = (wr ? EPOLLOUT : EPOLLIN) | EPOLLEXCLUSIVE;
		ev.data.u32 = i;
		/* Readers: the O_RDWR fd; writers: the SEND endpoint. */
		ASSERT_EQ(0, epoll_ctl(x[i].epfd, EPOLL_CTL_ADD,
				       wr ? f.tx : f.rw, &ev));
		x[i].fd = wr ? f.tx : f.rx;
		x[i].wr = wr;
		ASSERT_EQ(0, pthread_create(&x[i].th, NULL, xwaiter_fn, &x[i]));
	}
	for (k = 1; k <= NR_XMSGS; k++) {
		sw0 = 0;
		for (i = 0; i < NR_XWAITERS; i++) {
			end = now_ms() + WAIT_MS;
			while (!atomic_load(&x[i].tid))
				ASSERT_GT(end, now_ms());
			ASSERT_EQ(0, wait_asleep(atomic_load(&x[i].tid),
						 epoll_nrs))
				TH_LOG("waiter %d not asleep in epoll_wait", i);
			sw = vol_switches(atomic_load(&x[i].tid));
			ASSERT_LE(0, sw);
			sw0 += sw;
		}
		if (wr) {
			ASSERT_EQ(20, read(f.rx, buf, sizeof(buf)));
		} else {
			ASSERT_EQ(0, fill(f.tx, 1, 20));
		}
		end = now_ms() + WAIT_MS;
		while (SUM(x, done) < k)
			ASSERT_GT(end, now_ms()) TH_LOG("event %d unserved", k);
		usleep(SETTLE_US);
		EXPECT_EQ(k, SUM(x, wakes))
			TH_LOG("%d wakeups for %d %s", SUM(x, wakes), k,
			       wr ? "reads" : "writes");
		EXPECT_EQ(0, SUM(x, empty));
		EXPECT_EQ(0, SUM(x, fail));
		/*
		 * A waiter woken for nothing goes back to sleep inside
		 * epoll_wait without returning: count how often the threads
		 * slept again instead. Exactly one was woken (and served).
		 */
		sw1 = 0;
		for (i = 0; i < NR_XWAITERS; i++) {
			ASSERT_EQ(0, wait_asleep(atomic_load(&x[i].tid),
						 epoll_nrs));
			sw = vol_switches(atomic_load(&x[i].tid));
			ASSERT_LE(0, sw);
			sw1 += sw;
		}
		EXPECT_EQ(1, sw1 - sw0)
			TH_LOG("event %d woke %ld waiters", k, sw1 - sw0);
	}
	ASSERT_EQ(NR_XMSGS, SUM(x, done));
	ASSERT_EQ(wr ? 2U : 0U, queued(f.rw));

	/* Shutdown is a level state: it wakes every exclusive waiter. */
	for (i = 0; i < NR_XWAITERS; i++)
		ASSERT_EQ(0, wait_asleep(atomic_load(&x[i].tid), epoll_nrs));
	ASSERT_EQ(0, ioctl(f.rw, MPMC_IOC_SHUTDOWN,
			   wr ? MPMC_SHUT_RD : MPMC_SHUT_WR));
	for (i = 0; i < NR_XWAITERS; i++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += WAIT_MS / 1000;
		ASSERT_EQ(0, pthread_timedjoin_np(x[i].th, NULL, &ts))
			TH_LOG("waiter %d not woken by shutdown", i);
		EXPECT_EQ(1, atomic_load(&x[i].hup));
		EXPECT_EQ(0, atomic_load(&x[i].fail));
		close(x[i].epfd);
	}
	EXPECT_EQ(NR_XMSGS + NR_XWAITERS, SUM(x, wakes));
	close_files(&f);
}

/*
 * EPOLLEXCLUSIVE readers: six threads with EPOLLIN|EPOLLEXCLUSIVE on the
 * same channel fd; every message wakes exactly one of them.
 */
TEST(epoll_exclusive_wakes_one_reader)
{
	exclusive_one(_metadata, false);
}

/*
 * EPOLLEXCLUSIVE writers on a full channel: every dequeue wakes exactly
 * one of them.
 */
TEST(epoll_exclusive_wakes_one_writer)
{
	exclusive_one(_metadata, true);
}

/* A blocking read() in a thread. */
struct reader {
	pthread_t th;
	int fd;
	char buf[MSG_SIZE];
	ssize_t ret;
};

static void *reader_fn(void *arg)
{
	struct reader *r = arg;

	r->ret = read(r->fd, r->buf, sizeof(r->buf));
	return NULL;
}

/*
 * A message handed off to a blocked read() never becomes visible to
 * pollers: no EPOLLIN (LT or ET), no poll(2) readiness, and a thread asleep
 * in epoll_wait is not even woken (its voluntary context switches do not
 * move). The next message, with no reader blocked, is seen.
 */
TEST(handoff_invisible_to_pollers)
{
	struct epoll_event ev;
	struct pollfd pfd;
	struct waiter ew;
	struct reader rd;
	int lt, et, rxb, k;
	struct files f;
	long sw0, sw1;

	open_files(_metadata, &f, 4);
	rxb = new_ep(f.rw, ROLE_RX, 0);		/* blocking */
	ASSERT_LE(0, rxb);
	lt = epoll_create1(EPOLL_CLOEXEC);
	et = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, lt);
	ASSERT_LE(0, et);
	ev.events = EPOLLIN;
	ASSERT_EQ(0, epoll_ctl(lt, EPOLL_CTL_ADD, f.rx, &ev));
	ev.events = EPOLLIN | EPOLLET;
	ASSERT_EQ(0, epoll_ctl(et, EPOLL_CTL_ADD, f.rx, &ev));
	ASSERT_EQ(0, epoll_wait(et, &ev, 1, 0));

	ASSERT_EQ(0, start_waiter(&ew, lt, true, 0));
	for (k = 0; k < 3; k++) {
		memset(&rd, 0, sizeof(rd));
		rd.fd = rxb;
		ASSERT_EQ(0, pthread_create(&rd.th, NULL, reader_fn, &rd));
		ASSERT_EQ(0, wait_blocked(f.rw, true, 1));
		ASSERT_EQ(0, wait_asleep(atomic_load(&ew.tid), epoll_nrs));
		sw0 = vol_switches(atomic_load(&ew.tid));
		ASSERT_LE(0, sw0);

		ASSERT_EQ(11, write(k % 2 ? f.rw : f.tx, "handed over", 11));
		ASSERT_EQ(0, pthread_join(rd.th, NULL));
		ASSERT_EQ(11, rd.ret);
		ASSERT_EQ(0, memcmp(rd.buf, "handed over", 11));

		usleep(SETTLE_US);
		sw1 = vol_switches(atomic_load(&ew.tid));
		EXPECT_EQ(sw0, sw1)
			TH_LOG("epoll waiter woken by a handed-off message");
		EXPECT_EQ(0, atomic_load(&ew.done));
		ASSERT_EQ(0, epoll_wait(et, &ev, 1, 0));
		ASSERT_EQ(0, epoll_wait(lt, &ev, 1, 0));
		pfd.fd = f.rx;
		pfd.events = POLLIN;
		ASSERT_EQ(0, poll(&pfd, 1, 0));
		ASSERT_EQ(0U, queued(f.rw));
	}

	/* No reader blocked: the message is queued and pollers see it. */
	ASSERT_EQ(0, fill(f.tx, 1, 6));
	ASSERT_EQ(0, join_waiter(&ew));
	EXPECT_EQ(1, ew.ret);
	EXPECT_EQ((unsigned int)(EPOLLIN), ew.revents);
	ASSERT_EQ(1, epoll_wait(et, &ev, 1, 0));
	close(lt);
	close(et);
	close(rxb);
	close_files(&f);
}

/* Wait up to @ms for one of the signals in @set; its info in @si. */
static int take_sig(const sigset_t *set, siginfo_t *si, int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	return sigtimedwait(set, si, &ts);
}

static int set_async(int fd, int sig, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETOWN, getpid()) ||
	    fcntl(fd, F_SETSIG, sig))
		return -1;
	return fcntl(fd, F_SETFL, on ? fl | O_ASYNC : fl & ~O_ASYNC);
}

/* Collected queued signals: count per (si_code, si_fd). */
struct sigs {
	int n;
	int code[16];
	int fd[16];
	long band[16];
};

static void drain_sigs(const sigset_t *set, struct sigs *s)
{
	siginfo_t si;

	memset(s, 0, sizeof(*s));
	while (s->n < 16 && take_sig(set, &si, 0) > 0) {
		s->code[s->n] = si.si_code;
		s->fd[s->n] = si.si_fd;
		s->band[s->n] = si.si_band;
		s->n++;
	}
}

static int count_sigs(const struct sigs *s, int code, int fd)
{
	int i, c = 0;

	for (i = 0; i < s->n; i++)
		if (s->code[i] == code && (fd < 0 || s->fd[i] == fd))
			c++;
	return c;
}

/*
 * O_ASYNC with F_SETSIG (a queued real-time signal carrying si_code and
 * si_fd): a reader-side owner gets POLL_IN on every enqueue, also into a
 * non-empty channel; a writer-side owner gets POLL_OUT on every dequeue;
 * both get POLL_HUP on shutdown; clearing O_ASYNC stops the signals.
 */
TEST(sigio_rt_enqueue_dequeue_shutdown)
{
	int sig = SIGRTMIN + 1;
	char buf[MSG_SIZE];
	struct files f;
	struct sigs s;
	sigset_t set;
	int i;

	sigemptyset(&set);
	sigaddset(&set, sig);
	sigaddset(&set, SIGIO);
	ASSERT_EQ(0, sigprocmask(SIG_BLOCK, &set, NULL));
	open_files(_metadata, &f, 4);
	ASSERT_EQ(0, set_async(f.rx, sig, true));
	drain_sigs(&set, &s);
	ASSERT_EQ(0, s.n);

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, fill(f.tx, 1, 12));
		drain_sigs(&set, &s);
		ASSERT_EQ(1, count_sigs(&s, POLL_IN, f.rx))
			TH_LOG("enqueue %d: %d signals", i, s.n);
		EXPECT_EQ(0, count_sigs(&s, POLL_OUT, -1));
		EXPECT_EQ(s.n, 1);
		EXPECT_NE(0, s.band[0] & POLLIN);
	}

	ASSERT_EQ(0, set_async(f.tx, sig, true));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(12, read(f.rx, buf, sizeof(buf)));
		drain_sigs(&set, &s);
		ASSERT_EQ(1, count_sigs(&s, POLL_OUT, f.tx))
			TH_LOG("dequeue %d: %d signals", i, s.n);
		EXPECT_EQ(0, count_sigs(&s, POLL_IN, -1));
	}

	/* O_ASYNC off on the reader side: its owner gets nothing more. */
	ASSERT_EQ(0, set_async(f.rx, sig, false));
	ASSERT_EQ(0, fill(f.tx, 1, 12));
	drain_sigs(&set, &s);
	EXPECT_EQ(0, count_sigs(&s, POLL_IN, f.rx));
	EXPECT_EQ(0, count_sigs(&s, POLL_OUT, f.rx));
	ASSERT_EQ(0, set_async(f.rx, sig, true));

	ASSERT_EQ(0, ioctl(f.rw, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	drain_sigs(&set, &s);
	EXPECT_EQ(1, count_sigs(&s, POLL_HUP, f.rx));
	EXPECT_EQ(1, count_sigs(&s, POLL_HUP, f.tx));
	close_files(&f);
}

/* Plain SIGIO (no F_SETSIG) on enqueue and on dequeue. */
TEST(sigio_plain)
{
	char buf[MSG_SIZE];
	struct files f;
	siginfo_t si;
	sigset_t set;
	int fl;

	sigemptyset(&set);
	sigaddset(&set, SIGIO);
	ASSERT_EQ(0, sigprocmask(SIG_BLOCK, &set, NULL));
	open_files(_metadata, &f, 4);
	ASSERT_EQ(0, fcntl(f.rx, F_SETOWN, getpid()));
	fl = fcntl(f.rx, F_GETFL);
	ASSERT_EQ(0, fcntl(f.rx, F_SETFL, fl | O_ASYNC));
	ASSERT_EQ(-1, take_sig(&set, &si, 0));

	ASSERT_EQ(0, fill(f.tx, 1, 5));
	ASSERT_EQ(SIGIO, take_sig(&set, &si, 0)) TH_LOG("no SIGIO on enqueue");
	ASSERT_EQ(-1, take_sig(&set, &si, 0));
	ASSERT_EQ(0, fill(f.tx, 1, 5));
	ASSERT_EQ(SIGIO, take_sig(&set, &si, 0))
		TH_LOG("no SIGIO on an enqueue into a non-empty channel");
	ASSERT_EQ(5, read(f.rx, buf, sizeof(buf)));
	ASSERT_EQ(SIGIO, take_sig(&set, &si, 0)) TH_LOG("no SIGIO on dequeue");
	/* Nothing happens, nothing is sent. */
	ASSERT_EQ(-1, read(f.tx, buf, sizeof(buf)));
	ASSERT_EQ(-1, take_sig(&set, &si, 0));

	ASSERT_EQ(0, fcntl(f.rx, F_SETFL, fl & ~O_ASYNC));
	ASSERT_EQ(0, fill(f.tx, 1, 5));
	ASSERT_EQ(-1, take_sig(&set, &si, 0)) TH_LOG("SIGIO without O_ASYNC");
	close_files(&f);
}

TEST_HARNESS_MAIN
