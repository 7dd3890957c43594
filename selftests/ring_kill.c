// SPDX-License-Identifier: GPL-2.0
/*
 * Ring mode: a peer that goes away holding a slot (Documentation/
 * ring-mode.rst 6.4, the contract's reaping rules), deterministically,
 * through the raw ABI. A forked child maps the ring and takes a claim by
 * hand with its own mapper id, then is SIGKILLed (or exits, or only
 * munmaps): a dead sender's CLAIMED slot becomes SKIP and the channel
 * goes on (a message written after the kill is received, a reader asleep
 * behind the claim wakes up); a dead receiver's READING message is
 * received exactly once, first, from the kernel's front queue; fdinfo's
 * ring_reaped counts the claims. Also: fork gives the child's copy of a
 * mapping its own mapper id.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"
#include "ring_test.h"

#define MSG		64
#define REAP_MS		2000	/* the kill to the survivor's message */

/* What a child reports about the claims it took. */
struct claims {
	__u32 id;		/* its mapper id */
	int err;		/* 0, or the errno of what failed */
	long long send_pos;	/* CLAIMED there (-1: none) */
	long long recv_pos;	/* READING there (-1: none) */
	int nsend;		/* how many CLAIMED from send_pos on */
};

enum hold { HOLD_SEND = 1, HOLD_RECV = 2, HOLD_SEND3 = 4 };

enum how { BY_KILL, BY_EXIT, BY_MUNMAP };

/*
 * A child that maps @fd's ring, takes the claims @hold says, reports them
 * through @pfd and then waits to be killed (BY_KILL), exits (BY_EXIT) or
 * unmaps and waits (BY_MUNMAP).
 */
static void child(int fd, int pfd, int hold, enum how how)
{
	struct claims c = { .send_pos = -1, .recv_pos = -1 };
	struct rmap m;
	__u32 len;
	int i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (rmap_open(&m, fd)) {
		c.err = errno;
		goto out;
	}
	c.id = m.id;
	if (hold & HOLD_RECV) {
		c.recv_pos = rt_claim_recv(&m, MSG, &len);
		if (c.recv_pos < 0)
			c.err = (int)-c.recv_pos;
	}
	for (i = 0; i < ((hold & HOLD_SEND3) ? 3 : (hold & HOLD_SEND) ? 1 : 0);
	     i++) {
		long long p = rt_claim_send(&m);

		if (p < 0) {
			c.err = (int)-p;
			break;
		}
		if (!i)
			c.send_pos = p;
		c.nsend++;
	}
	if (how == BY_MUNMAP && rmap_close(&m))
		c.err = errno;
out:
	if (write(pfd, &c, sizeof(c)) != sizeof(c))
		_exit(3);
	if (how == BY_EXIT)
		_exit(0);
	for (;;)
		pause();
}

/* Read a child's report, waiting WAIT_MS at most: 0, or -1. */
static int get_report(int pfd, struct claims *c)
{
	struct pollfd p = { .fd = pfd, .events = POLLIN };

	if (poll(&p, 1, WAIT_MS) != 1)
		return -1;
	return read(pfd, c, sizeof(*c)) == sizeof(*c) ? 0 : -1;
}

/* Fork child(); its pid, its report in @c. */
static pid_t spawn(struct __test_metadata *_metadata, int fd, int hold,
		   enum how how, struct claims *c)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		child(fd, p[1], hold, how);
	}
	close(p[1]);
	EXPECT_LT(0, pid);
	EXPECT_EQ(0, get_report(p[0], c));
	close(p[0]);
	EXPECT_EQ(0, c->err) TH_LOG("child: %s", strerror(c->err));
	return pid;
}

/* SIGKILL @pid and reap it (bounded): 0, or -1. */
static int kill_wait(pid_t pid)
{
	long long end = now_ms() + WAIT_MS;
	int st;

	if (kill(pid, SIGKILL))
		return -1;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (now_ms() > end)
			return -1;
		usleep(1000);
	}
	return 0;
}

/* Reap an exiting @pid (bounded): its exit status, or -1. */
static int exit_wait(pid_t pid)
{
	long long end = now_ms() + WAIT_MS;
	int st;

	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(1000);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* One MPMC_IOC_RECV of up to @ms into @buf: the length, or -errno. */
static int recv_within(int fd, char *buf, size_t size, int ms)
{
	struct mpmc_msgvec v = { .buf = (uintptr_t)buf, .len = size - 1 };
	int ret = batch_of_one(fd, MPMC_IOC_RECV, &v, 0, ms * 1000000LL);

	if (ret != 1)
		return ret == 0 ? -ENODATA : -errno;
	buf[v.len] = '\0';
	return v.len;
}

/* The channel is empty and idle: no message, nothing reaped pending. */
static void expect_empty(struct __test_metadata *_metadata, int fd,
			 struct rmap *m)
{
	char buf[MSG + 1];

	EXPECT_EQ(-EAGAIN, recv_within(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(0, stats_of(fd).queued_msgs);
	EXPECT_EQ(0, ld32(&m->ctrl->flags));
	EXPECT_EQ(ld64(r_enq(m)), ld64(r_deq(m)));
}

/* A sender killed holding CLAIMED: a message written after is received. */
TEST(dead_sender_write_after)
{
	char buf[MSG + 1];
	struct claims c;
	struct rmap m;
	long long t0, reaped;
	pid_t pid;
	int fd, n;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	ASSERT_EQ(0, write_str(fd, "before"));
	pid = spawn(_metadata, fd, HOLD_SEND, BY_KILL, &c);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, c.err);
	ASSERT_EQ(1, c.send_pos);
	EXPECT_NE(m.id, c.id);
	EXPECT_EQ(MPMC_RING_WORD(1, c.id, MPMC_RING_CLAIMED), r_word(&m, 1));
	EXPECT_EQ(2, ld64(r_enq(&m)));
	EXPECT_EQ(0, fdinfo_val(fd, "ring_reaped", -1));
	ASSERT_EQ(0, kill_wait(pid));
	t0 = now_ms();
	ASSERT_EQ(0, write_str(fd, "after"));
	n = recv_within(fd, buf, sizeof(buf), REAP_MS);
	ASSERT_EQ(6, n);
	EXPECT_STREQ("before", buf);
	n = recv_within(fd, buf, sizeof(buf), REAP_MS);
	ASSERT_EQ(5, n) TH_LOG("the message after the dead claim: %s",
			       n < 0 ? strerror(-n) : buf);
	EXPECT_STREQ("after", buf);
	TH_LOG("received %lld ms after the kill", now_ms() - t0);
	reaped = wait_fdinfo_ge(fd, "ring_reaped", 1, REAP_MS);
	EXPECT_LE(1, reaped);
	/* The dead claim was consumed as a SKIP slot. */
	EXPECT_EQ(MPMC_RING_WORD(1 + 4, 0, MPMC_RING_FREE), r_word(&m, 1));
	EXPECT_EQ(3, ld64(r_deq(&m)));
	expect_empty(_metadata, fd, &m);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* A reader asleep behind a dead claim is woken by the reaper. */
TEST(dead_sender_wakes_reader)
{
	struct claims c;
	struct rmap m;
	struct op rd;
	long long t0, end;
	pid_t pid;
	int fd;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	pid = spawn(_metadata, fd, HOLD_SEND, BY_KILL, &c);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, c.send_pos);
	ASSERT_EQ(0, start_reader(&rd, fd, MSG));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	/* Queued behind the claim: the reader stays asleep. */
	ASSERT_EQ(0, write_str(fd, "behind"));
	usleep(100000);
	EXPECT_FALSE(op_done(&rd));
	EXPECT_EQ(1, stats_of(fd).queued_msgs);
	ASSERT_EQ(0, kill_wait(pid));
	t0 = now_ms();
	end = t0 + REAP_MS;
	while (!op_done(&rd) && now_ms() < end)
		usleep(1000);
	EXPECT_TRUE(op_done(&rd)) TH_LOG("reader still asleep %d ms after the kill",
					 REAP_MS);
	if (!op_done(&rd))
		ASSERT_EQ(0, write_str(fd, "nudge"));
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_EQ(6, rd.ret);
	EXPECT_STREQ("behind", rd.buf);
	TH_LOG("reader woken %lld ms after the kill", now_ms() - t0);
	EXPECT_LE(1, wait_fdinfo_ge(fd, "ring_reaped", 1, REAP_MS));
	expect_empty(_metadata, fd, &m);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/*
 * A receiver killed holding READING: its message goes to the front queue
 * and is received exactly once, before everything in the ring; a writer
 * asleep on the ring the claim kept full is woken.
 */
TEST(dead_receiver)
{
	char buf[MSG + 1];
	struct claims c;
	struct rmap m;
	struct op wr;
	long long t0, reaped;
	pid_t pid;
	int fd;

	fd = ring_open(2, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	ASSERT_EQ(0, write_str(fd, "m1"));
	ASSERT_EQ(0, write_str(fd, "m2"));
	pid = spawn(_metadata, fd, HOLD_RECV, BY_KILL, &c);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, c.recv_pos);
	EXPECT_EQ(MPMC_RING_WORD(0, c.id, MPMC_RING_READING), r_word(&m, 0));
	EXPECT_EQ(1, ld64(r_deq(&m)));
	/* Full: slot 0 is not free for position 2 until the claim goes. */
	ASSERT_EQ(0, start_writer(&wr, fd, "m3"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	ASSERT_EQ(0, kill_wait(pid));
	t0 = now_ms();
	reaped = wait_fdinfo_ge(fd, "ring_reaped", 1, REAP_MS);
	EXPECT_LE(1, reaped);
	TH_LOG("reaped %lld ms after the kill", now_ms() - t0);
	while (!op_done(&wr) && now_ms() < t0 + REAP_MS)
		usleep(1000);
	EXPECT_TRUE(op_done(&wr)) TH_LOG("writer still asleep");
	/* m1 first, from the front queue, exactly once; then the ring. */
	ASSERT_EQ(2, recv_within(fd, buf, sizeof(buf), REAP_MS));
	EXPECT_STREQ("m1", buf);
	ASSERT_EQ(2, recv_within(fd, buf, sizeof(buf), REAP_MS));
	EXPECT_STREQ("m2", buf);
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(2, wr.ret);
	if (wr.ret == 2) {
		ASSERT_EQ(2, recv_within(fd, buf, sizeof(buf), REAP_MS));
		EXPECT_STREQ("m3", buf);
	}
	expect_empty(_metadata, fd, &m);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* The front queue is seen in ctrl->flags and by poll, until drained. */
TEST(dead_receiver_front_flag)
{
	char buf[MSG + 1];
	struct claims c;
	struct rmap m;
	pid_t pid;
	int fd;

	fd = ring_open(4, MSG, O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	ASSERT_EQ(0, write_str(fd, "taken"));
	pid = spawn(_metadata, fd, HOLD_RECV, BY_KILL, &c);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, c.recv_pos);
	/* Held: the ring looks empty. */
	EXPECT_EQ(0, revents(fd, POLLIN) & POLLIN);
	ASSERT_EQ(0, kill_wait(pid));
	EXPECT_LE(1, wait_fdinfo_ge(fd, "ring_reaped", 1, REAP_MS));
	EXPECT_EQ(MPMC_RING_F_FRONT, ld32(&m.ctrl->flags));
	{
		struct mpmc_ring_info ri;

		ASSERT_EQ(0, ring_info(fd, m.ring, &ri));
		EXPECT_EQ(MPMC_RING_F_FRONT, ri.flags);
	}
	EXPECT_EQ(MPMC_RING_WORD(4, 0, MPMC_RING_FREE), r_word(&m, 0));
	EXPECT_EQ(POLLIN, revents(fd, POLLIN) & (POLLIN | POLLERR));
	EXPECT_EQ(1, stats_of(fd).queued_msgs);
	EXPECT_EQ(5, fionread(fd));
	/* The fast path must not be used meanwhile: flags != 0. */
	ASSERT_EQ(5, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "taken", 5));
	EXPECT_EQ(0, ld32(&m.ctrl->flags));
	EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));
	expect_empty(_metadata, fd, &m);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* Killed holding a READING and three CLAIMED slots at once. */
TEST(dead_holding_several)
{
	char buf[MSG + 1];
	struct claims c;
	struct rmap m;
	long long before;
	pid_t pid;
	int fd;

	fd = ring_open(8, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	ASSERT_EQ(0, write_str(fd, "held"));
	ASSERT_EQ(0, write_str(fd, "queued"));
	before = fdinfo_val(fd, "ring_reaped", -1);
	EXPECT_EQ(0, before);
	pid = spawn(_metadata, fd, HOLD_RECV | HOLD_SEND3, BY_KILL, &c);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, c.recv_pos);
	ASSERT_EQ(2, c.send_pos);
	ASSERT_EQ(3, c.nsend);
	ASSERT_EQ(0, write_str(fd, "last"));
	ASSERT_EQ(0, kill_wait(pid));
	EXPECT_LE(before + 4, wait_fdinfo_ge(fd, "ring_reaped", before + 4,
					     REAP_MS));
	ASSERT_EQ(4, recv_within(fd, buf, sizeof(buf), REAP_MS));
	EXPECT_STREQ("held", buf);
	ASSERT_EQ(6, recv_within(fd, buf, sizeof(buf), REAP_MS));
	EXPECT_STREQ("queued", buf);
	ASSERT_EQ(4, recv_within(fd, buf, sizeof(buf), REAP_MS));
	EXPECT_STREQ("last", buf);
	expect_empty(_metadata, fd, &m);
	EXPECT_EQ(6, ld64(r_deq(&m)));
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* A child that exits (no signal) holding a claim: reaped the same. */
TEST(exit_holding_claim)
{
	char buf[MSG + 1];
	struct claims c;
	struct rmap m;
	pid_t pid;
	int fd;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	pid = spawn(_metadata, fd, HOLD_SEND, BY_EXIT, &c);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, exit_wait(pid));
	ASSERT_EQ(0, write_str(fd, "after exit"));
	ASSERT_EQ(10, recv_within(fd, buf, sizeof(buf), REAP_MS));
	EXPECT_STREQ("after exit", buf);
	EXPECT_LE(1, wait_fdinfo_ge(fd, "ring_reaped", 1, REAP_MS));
	expect_empty(_metadata, fd, &m);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* munmap while holding claims (a bug in the user), no process death. */
TEST(munmap_holding_claim)
{
	char buf[MSG + 1];
	struct rmap m, m2;
	long long p;
	int fd;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	ASSERT_EQ(0, rmap_open(&m2, fd));
	ASSERT_NE(m.id, m2.id);
	p = rt_claim_send(&m2);
	ASSERT_EQ(0, p);
	EXPECT_EQ(MPMC_RING_WORD(0, m2.id, MPMC_RING_CLAIMED), r_word(&m, 0));
	ASSERT_EQ(0, rmap_close(&m2));
	ASSERT_EQ(0, write_str(fd, "after munmap"));
	ASSERT_EQ(12, recv_within(fd, buf, sizeof(buf), REAP_MS));
	EXPECT_STREQ("after munmap", buf);
	EXPECT_LE(1, wait_fdinfo_ge(fd, "ring_reaped", 1, REAP_MS));
	expect_empty(_metadata, fd, &m);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

TEST(munmap_holding_read)
{
	char buf[MSG + 1];
	struct rmap m, m2;
	long long q;
	__u32 len;
	int fd;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	ASSERT_EQ(0, rmap_open(&m2, fd));
	ASSERT_EQ(0, write_str(fd, "r1"));
	ASSERT_EQ(0, write_str(fd, "r2"));
	q = rt_claim_recv(&m2, MSG, &len);
	ASSERT_EQ(0, q);
	EXPECT_EQ(2, len);
	ASSERT_EQ(0, rmap_close(&m2));
	EXPECT_LE(1, wait_fdinfo_ge(fd, "ring_reaped", 1, REAP_MS));
	ASSERT_EQ(2, recv_within(fd, buf, sizeof(buf), REAP_MS));
	EXPECT_STREQ("r1", buf);
	ASSERT_EQ(2, recv_within(fd, buf, sizeof(buf), REAP_MS));
	EXPECT_STREQ("r2", buf);
	expect_empty(_metadata, fd, &m);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* A child process after a separate munmap, still alive: the same. */
TEST(child_munmap_holding_claim)
{
	char buf[MSG + 1];
	struct claims c;
	struct rmap m;
	pid_t pid;
	int fd;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	pid = spawn(_metadata, fd, HOLD_SEND, BY_MUNMAP, &c);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, write_str(fd, "alive"));
	ASSERT_EQ(5, recv_within(fd, buf, sizeof(buf), REAP_MS));
	EXPECT_STREQ("alive", buf);
	EXPECT_LE(1, wait_fdinfo_ge(fd, "ring_reaped", 1, REAP_MS));
	ASSERT_EQ(0, kill_wait(pid));
	expect_empty(_metadata, fd, &m);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* fork: the child's copy of the mapping gets its own mapper id. */
TEST(fork_new_id)
{
	struct mpmc_ring_info ri;
	char buf[MSG + 1];
	struct rmap m;
	__u32 ids[2];
	int p[2], st, fd;
	pid_t pid;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rmap cm = m;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		ids[0] = ids[1] = 0;
		if (!ring_info(fd, m.ring, &ri))
			ids[0] = ri.mapper_id;
		/* Any address inside names the same (copied) mapping. */
		if (!ring_info(fd, m.ring + m.ring_size / 2, &ri))
			ids[1] = ri.mapper_id;
		cm.id = ids[0];
		if (write(p[1], ids, sizeof(ids)) != sizeof(ids))
			_exit(2);
		/* Send with the child's own id. */
		_exit(rt_send(&cm, "from child", 10) == 10 ? 0 : 1);
	}
	close(p[1]);
	{
		struct pollfd pf = { .fd = p[0], .events = POLLIN };

		ASSERT_EQ(1, poll(&pf, 1, WAIT_MS));
		ASSERT_EQ(sizeof(ids), read(p[0], ids, sizeof(ids)));
	}
	close(p[0]);
	EXPECT_LE(1, ids[0]);
	EXPECT_GE(MPMC_RING_OWNER_MAX, ids[0]);
	EXPECT_NE(m.id, ids[0]);
	EXPECT_EQ(ids[0], ids[1]);
	st = exit_wait(pid);
	EXPECT_EQ(0, st);
	ASSERT_EQ(10, recv_within(fd, buf, sizeof(buf), REAP_MS));
	EXPECT_STREQ("from child", buf);
	/* The parent's id is unchanged, and nothing was reaped. */
	ASSERT_EQ(0, ring_info(fd, m.ring, &ri));
	EXPECT_EQ(m.id, ri.mapper_id);
	EXPECT_EQ(0, fdinfo_val(fd, "ring_reaped", -1));
	expect_empty(_metadata, fd, &m);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* Many children killed one after the other, each holding a claim. */
TEST(kill_loop)
{
	char buf[MSG + 1], msg[32];
	struct claims c;
	struct rmap m;
	int fd, i, n;

	fd = ring_open(2, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rmap_open(&m, fd));
	for (i = 0; i < 20; i++) {
		int hold = (i % 3 == 0) ? HOLD_RECV : HOLD_SEND;
		pid_t pid;

		n = snprintf(msg, sizeof(msg), "msg %d", i);
		if (hold == HOLD_RECV)
			ASSERT_EQ(n, write(fd, msg, n));
		pid = spawn(_metadata, fd, hold, BY_KILL, &c);
		ASSERT_LT(0, pid);
		ASSERT_EQ(0, c.err);
		ASSERT_EQ(0, kill_wait(pid));
		if (hold == HOLD_SEND)
			ASSERT_EQ(n, write(fd, msg, n));
		ASSERT_EQ(n, recv_within(fd, buf, sizeof(buf), REAP_MS))
			TH_LOG("round %d", i);
		EXPECT_STREQ(msg, buf);
	}
	EXPECT_LE(20, wait_fdinfo_ge(fd, "ring_reaped", 20, REAP_MS));
	expect_empty(_metadata, fd, &m);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

TEST_HARNESS_MAIN
