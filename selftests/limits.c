// SPDX-License-Identifier: GPL-2.0
/*
 * Limits and privilege: as an unprivileged user (uid/gid 65534), the
 * module's limits hold (capacity, message size, worst-case channel size
 * capacity x max_msg_size, all read from /sys/module/mpmc/parameters), the
 * user cannot change them or unload the module; queued data is charged to
 * the user's memory cgroup (memory.current grows with what is queued and
 * falls back when it is drained or the channel is closed), and a large
 * message costs about its payload there, not twice; and a user
 * cannot reach a channel they were not given (another user's
 * /proc/PID/fd, /proc/PID/fdinfo, pidfd_getfd), while one they were given
 * (inherited fd) works.
 *
 * Needs root to switch users (skipped otherwise). The memory cgroup tests
 * mount cgroup2 at /sys/fs/cgroup when nothing is mounted there and are
 * skipped when the kernel has no memory controller.
 */
#define _GNU_SOURCE
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

#define NOBODY		65534
#define CGROOT		"/sys/fs/cgroup"
#define CGROUP2_MAGIC	0x63677270

static int drop_privileges(void)
{
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		return -1;
	return geteuid() == NOBODY ? 0 : -1;
}

/* The largest message size and capacity whose product fits the limit. */
static void worst_case(const struct limits *l, __u32 *cap, __u32 *size)
{
	unsigned long long s = l->max_msg_size, c;

	if (s > l->max_channel_bytes)
		s = l->max_channel_bytes;
	c = l->max_channel_bytes / s;
	if (c > l->max_capacity)
		c = l->max_capacity;
	*cap = c;
	*size = s;
}

static int set_cfg(int fd, unsigned long long cap, unsigned long long size)
{
	struct mpmc_config c = { .capacity = cap, .max_msg_size = size };

	/* Values that do not fit the ABI's __u32 are out of range anyway. */
	if (cap > UINT32_MAX || size > UINT32_MAX) {
		errno = EINVAL;
		return -1;
	}
	return ioctl(fd, MPMC_IOC_SET_CONFIG, &c);
}

FIXTURE(unpriv)
{
	struct limits l;
};

FIXTURE_SETUP(unpriv)
{
	if (geteuid() != 0)
		SKIP(return, "needs root to switch to uid %d", NOBODY);
	if (access(MPMC_DEV, F_OK))
		SKIP(return, "no %s", MPMC_DEV);
	read_limits(&self->l);
	ASSERT_NE(0ULL, self->l.max_capacity);
	ASSERT_NE(0ULL, self->l.max_msg_size);
	ASSERT_NE(0ULL, self->l.max_channel_bytes);
	/* Each test runs in its own process: drop root for good. */
	ASSERT_EQ(0, drop_privileges());
}

FIXTURE_TEARDOWN(unpriv)
{
}

TEST_F(unpriv, config_limits_hold)
{
	const struct limits *l = &self->l;
	struct mpmc_config cfg;
	__u32 cap, size;
	int fd;

	fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd) {
		TH_LOG("an unprivileged user cannot open %s: %s", MPMC_DEV,
		       strerror(errno));
	}
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));

	/* Over each limit: EINVAL, and nothing changes. */
	errno = 0;
	EXPECT_ERRNO(EINVAL, set_cfg(fd, l->max_capacity + 1, 1));
	errno = 0;
	EXPECT_ERRNO(EINVAL, set_cfg(fd, 1, l->max_msg_size + 1));
	worst_case(l, &cap, &size);
	if ((unsigned long long)cap + 1 <= l->max_capacity &&
	    (unsigned long long)(cap + 1) * size > l->max_channel_bytes) {
		errno = 0;
		EXPECT_ERRNO(EINVAL, set_cfg(fd, cap + 1, size));
	}
	errno = 0;
	EXPECT_ERRNO(EINVAL, set_cfg(fd, UINT32_MAX, UINT32_MAX));
	{
		struct mpmc_config now;

		ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &now));
		EXPECT_EQ(cfg.capacity, now.capacity);
		EXPECT_EQ(cfg.max_msg_size, now.max_msg_size);
	}

	/* At the limits: allowed. */
	EXPECT_EQ(0, set_cfg(fd, 1, l->max_msg_size));
	if (l->max_capacity <= l->max_channel_bytes)
		EXPECT_EQ(0, set_cfg(fd, l->max_capacity, 1));
	ASSERT_EQ(0, set_cfg(fd, cap, size));
	close(fd);
}

TEST_F(unpriv, worst_case_channel_fills_and_stops)
{
	const struct limits *l = &self->l;
	struct mpmc_stats st;
	__u32 cap, size, i;
	char *buf;
	int fd;

	worst_case(l, &cap, &size);
	/* Keep this affordable in a small guest. */
	if ((unsigned long long)cap * size > (64ULL << 20))
		SKIP(return, "worst case %llu bytes is too big for this test",
		     (unsigned long long)cap * size);
	buf = malloc(size + 1);
	ASSERT_NE(NULL, buf);
	memset(buf, 0x5a, size + 1);

	fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_cfg(fd, cap, size));

	/* One byte over max_msg_size: EMSGSIZE. */
	errno = 0;
	EXPECT_ERRNO(EMSGSIZE, write(fd, buf, size + 1));

	for (i = 0; i < cap; i++)
		ASSERT_EQ((ssize_t)size, write(fd, buf, size)) {
			TH_LOG("message %u of %u: %s", i, cap, strerror(errno));
		}
	errno = 0;
	EXPECT_ERRNO(EAGAIN, write(fd, buf, 1));
	MPMC_STATS(fd, &st);
	EXPECT_EQ(cap, st.queued_msgs);
	EXPECT_EQ((unsigned long long)cap * size, st.queued_bytes);
	EXPECT_LE(st.queued_bytes, l->max_channel_bytes);

	/* Capacity cannot shrink below what is queued. */
	errno = 0;
	EXPECT_EQ(-1, set_cfg(fd, cap > 1 ? cap - 1 : 1, size));
	if (cap > 1)
		EXPECT_EQ(EBUSY, errno);

	for (i = 0; i < cap; i++)
		ASSERT_EQ((ssize_t)size, read(fd, buf, size));
	errno = 0;
	EXPECT_ERRNO(EAGAIN, read(fd, buf, size));
	close(fd);
	free(buf);
}

TEST_F(unpriv, cannot_change_limits_or_unload)
{
	static const char *const params[] = {
		"max_capacity", "max_msg_size", "max_channel_bytes",
	};
	struct limits after;
	unsigned int i;
	char path[128];
	int fd;

	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "/sys/module/mpmc/parameters/%s",
			 params[i]);
		errno = 0;
		fd = open(path, O_WRONLY | O_CLOEXEC);
		EXPECT_EQ(-1, fd) {
			TH_LOG("%s is writable by uid %d", path, NOBODY);
			if (fd >= 0) {
				EXPECT_EQ(-1, write(fd, "1000000000", 10));
				close(fd);
			}
		}
		EXPECT_EQ(EACCES, errno);
	}
	read_limits(&after);
	EXPECT_EQ(self->l.max_capacity, after.max_capacity);
	EXPECT_EQ(self->l.max_msg_size, after.max_msg_size);
	EXPECT_EQ(self->l.max_channel_bytes, after.max_channel_bytes);

	errno = 0;
	EXPECT_ERRNO(EPERM, syscall(SYS_delete_module, "mpmc", O_NONBLOCK));
	EXPECT_EQ(0, access("/sys/module/mpmc", F_OK));
}

/* ------------------------------------------------------------- ownership */

static int child_status(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/*
 * Root (this process) holds a channel; a child that became nobody cannot
 * reach it through /proc or pidfd_getfd. Returns a bit per way that
 * worked when it should not have.
 */
static int steal(pid_t owner, int fd)
{
	char path[64];
	int pidfd, f, bad = 0;

	if (drop_privileges())
		return 0x80;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", owner, fd);
	f = open(path, O_RDWR | O_CLOEXEC);
	if (f >= 0 || errno != EACCES)
		bad |= 1;
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f >= 0 || errno != EACCES)
		bad |= 2;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", owner, fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f >= 0 || errno != EACCES)
		bad |= 4;
	pidfd = syscall(SYS_pidfd_open, owner, 0);
	if (pidfd >= 0) {
		f = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
		if (f >= 0 || (errno != EPERM && errno != ENOSYS))
			bad |= 8;
	}
	return bad;
}

/* The child of cannot_reach_another_users_channel: steal() @fd, closed. */
static int steal_closed(int fd)
{
	/* Not given: the fd is closed before dropping root. */
	close(fd);
	return steal(getppid(), fd);
}

/* The child of given_channel_works_after_dropping_root. */
static int send_given(int fd)
{
	struct mpmc_endpoint ep = { .roles = MPMC_ROLE_SEND };
	int efd;

	if (drop_privileges())
		return 1;
	efd = ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &ep);
	if (efd < 0)
		return 2;
	if (write(efd, "given", 5) != 5)
		return 3;
	return 0;
}

/*
 * As root (else the test is skipped: -1), a non-blocking channel with
 * @msg queued unless it is NULL. Return: its fd.
 */
static int root_chan(struct __test_metadata *_metadata, const char *msg)
{
	int fd;

	if (geteuid() != 0)
		SKIP(return -1, "needs root to switch to uid %d", NOBODY);
	fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	if (msg)
		ASSERT_EQ((ssize_t)strlen(msg), write(fd, msg, strlen(msg)));
	return fd;
}

/* Run @child(@fd) in a child process. Return: child_status(). */
static int run_child(struct __test_metadata *_metadata, int fd,
		     int (*child)(int fd))
{
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid)
		_exit(child(fd));
	return child_status(pid);
}

TEST(cannot_reach_another_users_channel)
{
	char buf[16];
	int fd = root_chan(_metadata, "secret");

	if (fd < 0)
		return;
	EXPECT_EQ(0, run_child(_metadata, fd, steal_closed)) {
		TH_LOG("0x1 /proc/PID/fd O_RDWR, 0x2 O_RDONLY, 0x4 fdinfo, 0x8 pidfd_getfd, 0x80 setuid");
	}

	/* Untouched. */
	EXPECT_STATS(fd, STAT(queued_msgs, 1), STAT(total_received, 0),
		     STAT_FILES(1, 1));
	CHECK_READ(fd, buf, "secret");
	close(fd);
}

TEST(given_channel_works_after_dropping_root)
{
	char buf[16];
	int fd = root_chan(_metadata, NULL);

	if (fd < 0)
		return;
	EXPECT_EQ(0, run_child(_metadata, fd, send_given));
	CHECK_READ(fd, buf, "given");
	close(fd);
}

/* ---------------------------------------------------------------- memcg */

static long long read_ll(const char *path)
{
	char buf[64] = "";
	long long v;

	if (read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	if (sscanf(buf, "%lld", &v) != 1)
		return -1;
	return v;
}

static bool has_word(const char *path, const char *word)
{
	char buf[512] = "", *tok, *save;

	if (read_file(path, buf, sizeof(buf)) <= 0)
		return false;
	for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
		if (!strcmp(tok, word))
			return true;
	return false;
}

/* Write (@wr) or read @n messages of @size bytes from @buf; false on error. */
static bool move_all(int fd, char *buf, __u32 size, __u32 n, bool wr)
{
	__u32 i;

	for (i = 0; i < n; i++)
		if ((wr ? write(fd, buf, size) : read(fd, buf, size)) !=
		    (ssize_t)size)
			return false;
	return true;
}

/* The child's side: step by step, told to go on through a pipe. */
enum { STEP_OPEN = 'A', STEP_FULL, STEP_DRAINED, STEP_FULL2, STEP_CLOSED };

static void memcg_child(int go, int done, __u32 cap, __u32 size)
{
	char *buf = malloc(size);
	char c;
	int fd;

#define STEP(x) do {							\
		c = (x);						\
		if (write(done, &c, 1) != 1 || read(go, &c, 1) != 1)	\
			_exit(90);					\
	} while (0)

	if (!buf || drop_privileges())
		_exit(91);
	memset(buf, 0x33, size);
	fd = mpmc_test_open(O_RDWR | O_NONBLOCK);
	if (fd < 0 || set_cfg(fd, cap, size))
		_exit(92);
	STEP(STEP_OPEN);
	if (!move_all(fd, buf, size, cap, true))
		_exit(93);
	STEP(STEP_FULL);
	if (!move_all(fd, buf, size, cap, false))
		_exit(94);
	STEP(STEP_DRAINED);
	if (!move_all(fd, buf, size, cap, true))
		_exit(95);
	STEP(STEP_FULL2);
	close(fd);
	STEP(STEP_CLOSED);
	_exit(0);
#undef STEP
}

/*
 * Make sure cgroup2 is mounted at CGROOT with the memory controller on for
 * its children. SKIP()s when that cannot be (the caller checks
 * _metadata->skip); *@mounted says whether to unmount it when done.
 */
static void memcg_enable(struct __test_metadata *_metadata, bool *mounted)
{
	struct statfs sfs;

	*mounted = false;
	if (geteuid() != 0)
		SKIP(return, "needs root to create a cgroup");
	if (statfs(CGROOT, &sfs) || sfs.f_type != CGROUP2_MAGIC) {
		if (mount("cgroup2", CGROOT, "cgroup2", 0, NULL))
			SKIP(return, "cannot mount cgroup2 at %s: %s", CGROOT,
			     strerror(errno));
		*mounted = true;
	}
	if (!has_word(CGROOT "/cgroup.controllers", "memory")) {
		if (*mounted)
			umount(CGROOT);
		*mounted = false;
		SKIP(return, "no memory controller (CONFIG_MEMCG)");
	}
	if (!has_word(CGROOT "/cgroup.subtree_control", "memory"))
		ASSERT_EQ(0, write_file(CGROOT "/cgroup.subtree_control", "+memory", 0));
}

/* memory.current of the child's cgroup at each step of memcg_child(). */
struct memcg_steps {
	long long open, full, drained, full2, closed;
};

/*
 * Run memcg_child() with @cap messages of @size bytes in a fresh memory
 * cgroup, as nobody, and read the cgroup's memory.current at each step.
 */
static void memcg_measure(struct __test_metadata *_metadata, __u32 cap,
			  __u32 size, struct memcg_steps *m)
{
	char cg[128], path[192];
	int go[2], done[2];
	pid_t pid;
	char c;

	snprintf(cg, sizeof(cg), CGROOT "/mpmc-limits-%d", getpid());
	rmdir(cg);
	ASSERT_EQ(0, mkdir(cg, 0755));
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
		if (write_file(path, "0", 0))
			_exit(89);
		memcg_child(go[0], done[1], cap, size);
	}
	snprintf(path, sizeof(path), "%s/memory.current", cg);

#define WAIT_STEP(step, var) do {					\
		ASSERT_EQ(1, read(done[0], &c, 1)) {			\
			TH_LOG("child died before step %c (status %d)",	\
			       (step), child_status(pid));		\
		}							\
		ASSERT_EQ((step), c);					\
		(var) = read_ll(path);					\
		ASSERT_LE(0, (var));					\
		ASSERT_EQ(1, write(go[1], "g", 1));			\
	} while (0)

	WAIT_STEP(STEP_OPEN, m->open);
	WAIT_STEP(STEP_FULL, m->full);
	WAIT_STEP(STEP_DRAINED, m->drained);
	WAIT_STEP(STEP_FULL2, m->full2);
	WAIT_STEP(STEP_CLOSED, m->closed);
#undef WAIT_STEP
	EXPECT_EQ(0, child_status(pid));

	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
	EXPECT_EQ(0, rmdir(cg));
}

TEST(memcg_charges_queued_data)
{
	struct memcg_steps m;
	long long queued;
	struct limits l;
	__u32 cap, size;
	bool mounted;

	memcg_enable(_metadata, &mounted);
	if (_metadata->skip)
		return;

	read_limits(&l);
	worst_case(&l, &cap, &size);
	queued = (long long)cap * size;
	if (queued > (64LL << 20) || queued < (1LL << 20))
		SKIP(return, "worst case %lld bytes: not a useful size here", queued);

	memcg_measure(_metadata, cap, size, &m);
	ksft_print_msg("memcg: %u x %u bytes queued; memory.current: open %lld, full %lld, drained %lld, full again %lld, closed %lld\n",
		       cap, size, m.open, m.full, m.drained, m.full2, m.closed);
	fflush(stdout);
	/* Queued data is charged to the sender's cgroup... */
	EXPECT_LE(m.open + queued * 9 / 10, m.full);
	EXPECT_LE(m.open + queued * 9 / 10, m.full2);
	/* ...and uncharged once it is drained or the channel is closed. */
	EXPECT_GE(m.open + queued / 4, m.drained);
	EXPECT_GE(m.open + queued / 4, m.closed);

	if (mounted)
		umount(CGROOT);
}

/*
 * What one object of the kmalloc cache @name costs over its size: 1,
 * except on a debug kernel (KASAN's redzone makes a naturally aligned
 * kmalloc-4k object take 8 KiB). 1 when /sys/kernel/slab cannot tell.
 */
static double slab_cost(const char *name)
{
	long long obj, slab;
	char path[128];

	snprintf(path, sizeof(path), "/sys/kernel/slab/%s/object_size", name);
	obj = read_ll(path);
	snprintf(path, sizeof(path), "/sys/kernel/slab/%s/slab_size", name);
	slab = read_ll(path);
	if (obj <= 0 || slab < obj)
		return 1;
	return (double)slab / obj;
}

/*
 * A large message costs about its payload, not the next power of two:
 * with its header in the same allocation, a 4096-byte message would take
 * a kmalloc-8k object and a 65536-byte one an order-5 (128 KiB) block,
 * twice what is queued. Each size that the limits allow is queued up to
 * 8 MiB in a fresh cgroup; memory.current must grow by less than 1.5x
 * the payload (times what the allocator itself adds to an object of that
 * size, on a debug kernel), but by most of it (it is charged), and fall
 * back when the channel is drained or closed.
 */
TEST(memcg_large_messages_cost_their_payload)
{
	static const struct {
		__u32 size;
		const char *cache;	/* where the payload is, if a slab */
	} sizes[] = {
		{ 4096, "kmalloc-cg-4k" },
		{ 65536, NULL },	/* pages */
	};
	unsigned long long cap;
	struct memcg_steps m;
	unsigned int i, ran = 0;
	long long queued, most;
	struct limits l;
	bool mounted;
	double cost;
	__u32 size;

	memcg_enable(_metadata, &mounted);
	if (_metadata->skip)
		return;

	read_limits(&l);
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		size = sizes[i].size;
		cap = l.max_channel_bytes / size;
		if (cap > l.max_capacity)
			cap = l.max_capacity;
		if (cap > (8ULL << 20) / size)
			cap = (8ULL << 20) / size;
		queued = (long long)cap * size;
		if (size > l.max_msg_size || queued < (1LL << 20)) {
			ksft_print_msg("memcg: %u-byte messages: max_msg_size %llu, %llu of them allowed: skipped\n",
				       size, l.max_msg_size, cap);
			continue;
		}
		cost = sizes[i].cache ? slab_cost(sizes[i].cache) : 1;
		most = (long long)(queued * 1.5 * cost);

		memcg_measure(_metadata, cap, size, &m);
		ksft_print_msg("memcg: %llu x %u bytes queued (%lld); memory.current: open %lld, full %lld (+%.2fx), drained %lld, full again %lld (+%.2fx), closed %lld; allocator cost %.2fx, limit +%lld\n",
			       cap, size, queued, m.open, m.full,
			       (double)(m.full - m.open) / queued, m.drained,
			       m.full2, (double)(m.full2 - m.open) / queued,
			       m.closed, cost, most);
		fflush(stdout);
		/* Charged... */
		EXPECT_LE(m.open + queued * 9 / 10, m.full);
		/* ...but not twice over... */
		EXPECT_GT(m.open + most, m.full);
		EXPECT_GT(m.open + most, m.full2);
		/* ...and given back. */
		EXPECT_GE(m.open + queued / 4, m.drained);
		EXPECT_GE(m.open + queued / 4, m.closed);
		ran++;
	}

	if (mounted)
		umount(CGROOT);
	if (!ran)
		SKIP(return, "the limits allow no 4 KiB or 64 KiB test here");
}

TEST_HARNESS_MAIN
