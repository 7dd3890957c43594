// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers shared by the mpmc selftests (see mpmc_test.h), linked into every
 * test program. Plain C: results are return codes and errno, never
 * assertions, so this file does without kselftest_harness.h.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "mpmc_test.h"

/* ---- channels ------------------------------------------------------- */

/**
 * mpmc_test_open() - open a new channel
 * @flags: open(2) flags; O_CLOEXEC is added
 *
 * Return: the fd, or -1 with errno set.
 */
int mpmc_test_open(int flags)
{
	return open(MPMC_DEV, flags | O_CLOEXEC);
}

/**
 * mpmc_test_open_cfg() - open an O_RDWR channel with a given configuration
 * @capacity: its capacity
 * @msg_size: its max_msg_size
 *
 * Return: the fd, or -1 with errno set.
 */
int mpmc_test_open_cfg(__u32 capacity, __u32 msg_size)
{
	struct mpmc_config cfg = {
		.capacity = capacity, .max_msg_size = msg_size,
	};
	int fd = mpmc_test_open(O_RDWR);

	if (fd < 0)
		return -1;
	if (ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/**
 * mpmc_test_param() - read a module parameter
 * @name: its name under /sys/module/mpmc/parameters
 *
 * Return: its value, 0 on error.
 */
unsigned long long mpmc_test_param(const char *name)
{
	char path[256];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/mpmc/parameters/%s", name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/**
 * read_limits() - read the module's three limits into @l
 * @l: filled in, 0 for a limit that cannot be read
 *
 * Return: true if all three were read.
 */
bool read_limits(struct limits *l)
{
	l->max_capacity = mpmc_test_param("max_capacity");
	l->max_msg_size = mpmc_test_param("max_msg_size");
	l->max_channel_bytes = mpmc_test_param("max_channel_bytes");
	return l->max_capacity && l->max_msg_size && l->max_channel_bytes;
}

/**
 * new_ep_exact() - MPMC_IOC_NEW_ENDPOINT with exactly @roles and @flags
 * @fd: a file of the channel
 * @roles: MPMC_ROLE_* bits
 * @flags: O_CLOEXEC, O_NONBLOCK or anything else to pass as is
 *
 * Return: the new fd, or -1 with errno set.
 */
int new_ep_exact(int fd, __u32 roles, __u32 flags)
{
	struct mpmc_endpoint ep = { .roles = roles, .flags = flags };

	return ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &ep);
}

/* new_ep_exact() that is always O_CLOEXEC. */
int new_ep(int fd, __u32 roles, __u32 flags)
{
	return new_ep_exact(fd, roles, flags | O_CLOEXEC);
}

/* FIONREAD of @fd: the next message's length, or -1 with errno set. */
int fionread(int fd)
{
	int n = -1;

	if (ioctl(fd, FIONREAD, &n))
		return -1;
	return n;
}

/* Write @s (without its NUL) as one message; 0 if it went whole, else -1. */
int write_str(int fd, const char *s)
{
	ssize_t n = write(fd, s, strlen(s));

	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/*
 * A new channel of @capacity and @msg_size with the strings that follow,
 * up to a NULL, written to it one by one: its fd, or -1 if any step failed.
 */
int open_queued(__u32 capacity, __u32 msg_size, ...)
{
	int fd = mpmc_test_open_cfg(capacity, msg_size);
	const char *s;
	va_list ap;

	if (fd < 0)
		return -1;
	va_start(ap, msg_size);
	while ((s = va_arg(ap, const char *)) && !write_str(fd, s))
		;
	va_end(ap);
	if (s) {
		close(fd);
		return -1;
	}
	return fd;
}

/**
 * wait_blocked() - wait for a number of blocked callers
 * @fd: a file of the channel
 * @rx: count blocked receivers (true) or blocked senders (false)
 * @want: how many there must be, exactly
 *
 * Return: 0 when reached, -1 after WAIT_MS or if GET_STATS fails.
 */
int wait_blocked(int fd, bool rx, unsigned int want)
{
	long long end = now_ms() + WAIT_MS;
	struct mpmc_stats st;

	for (;;) {
		if (ioctl(fd, MPMC_IOC_GET_STATS, &st))
			return -1;
		if ((rx ? st.blocked_receivers : st.blocked_senders) == want)
			return 0;
		if (now_ms() > end)
			return -1;
		usleep(1000);
	}
}

/* ---- configuration, scheduling ---------------------------------------- */

/* GET_CONFIG, then SET_CONFIG with @capacity and @flags: 0, or -1 (errno). */
int set_config(int fd, __u32 capacity, __u32 flags)
{
	struct mpmc_config cfg;

	if (ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg))
		return -1;
	cfg.capacity = capacity;
	cfg.flags = flags;
	return ioctl(fd, MPMC_IOC_SET_CONFIG, &cfg);
}

/* The same with only the flags changed. */
int set_flags(int fd, __u32 flags)
{
	struct mpmc_config cfg;

	if (ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg))
		return -1;
	return set_config(fd, cfg.capacity, flags);
}

/* Run the calling thread on @cpu only: sched_setaffinity()'s result. */
int pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

/* The calling thread under SCHED_FIFO priority 1 (@on), or SCHED_OTHER. */
int sched_fifo(bool on)
{
	struct sched_param sp = { .sched_priority = on ? 1 : 0 };

	return sched_setscheduler(0, on ? SCHED_FIFO : SCHED_OTHER, &sp);
}

/* ---- batches of one -------------------------------------------------- */

/* MPMC_IOC_SEND or _RECV (@cmd) of the one entry @v: what ioctl() returns. */
int batch_of_one(int fd, unsigned long cmd, struct mpmc_msgvec *v,
		 __u32 flags, __s64 timeout)
{
	struct mpmc_batch b = {
		.vec = (uintptr_t)v, .count = 1, .flags = flags,
		.timeout_ns = timeout,
	};

	return ioctl(fd, cmd, &b);
}

/* One MPMC_IOC_SEND of @s at priority @prio: what ioctl() returns. */
int send_one(int fd, const char *s, __u32 prio, __s64 timeout)
{
	struct mpmc_msgvec v = {
		.buf = (uintptr_t)s, .len = strlen(s), .prio = prio,
	};

	return batch_of_one(fd, MPMC_IOC_SEND, &v, 0, timeout);
}

/*
 * One MPMC_IOC_RECV (timeout 0, @flags) of a message into @buf of @size
 * bytes, NUL-terminated: its length and (if @prio) its priority; 0 if the
 * ioctl returned 0, else -1 with errno.
 */
int recv_msg(int fd, char *buf, size_t size, __u32 *prio, __u32 flags)
{
	struct mpmc_msgvec v = {
		.buf = (uintptr_t)buf, .len = size - 1, .prio = 0xdead,
	};
	int ret = batch_of_one(fd, MPMC_IOC_RECV, &v, flags, 0);

	if (ret != 1)
		return ret == 0 ? 0 : -1;
	buf[v.len] = '\0';
	if (prio)
		*prio = v.prio;
	return v.len;
}

/* The stats of @fd's channel; all ones if GET_STATS fails. */
struct mpmc_stats stats_of(int fd)
{
	struct mpmc_stats st;

	if (ioctl(fd, MPMC_IOC_GET_STATS, &st))
		memset(&st, 0xff, sizeof(st));
	return st;
}

/**
 * stats_mismatches() - compare fields of stats with the values expected
 * @st: the stats
 * @want: the fields (STAT()) and their expected values
 * @n: how many
 *
 * Each field that differs is printed as a "# " line.
 *
 * Return: how many of the @n fields differ.
 */
int stats_mismatches(const struct mpmc_stats *st,
		     const struct stat_want *want, size_t n)
{
	const unsigned char *base = (const unsigned char *)st;
	int bad = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned long long v;

		if (want[i].size == sizeof(__u64)) {
			__u64 v64;

			memcpy(&v64, base + want[i].off, sizeof(v64));
			v = v64;
		} else {
			__u32 v32;

			memcpy(&v32, base + want[i].off, sizeof(v32));
			v = v32;
		}
		if (v == want[i].val)
			continue;
		fprintf(stderr, "# stats.%s is %llu, expected %llu\n",
			want[i].name, v, want[i].val);
		bad++;
	}
	return bad;
}

volatile uintptr_t mpmc_bad_addr = 1;

/* A page that is certainly not mapped (was, then unmapped); NULL on error. */
void *unmapped_page(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	munmap(p, 4096);
	return p;
}

/* ---- time, files, signals ------------------------------------------- */

/* CLOCK_MONOTONIC in milliseconds. */
long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/**
 * read_file() - read the start of a (small, virtual) file as a string
 * @path: the file
 * @buf: filled with up to @size - 1 bytes and a NUL
 * @size: the size of @buf
 *
 * Return: the number of bytes read, or -1 with errno set.
 */
ssize_t read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* The first line of @path, without its newline; 0, or -1 with errno. */
int read_line(const char *path, char *buf, size_t size)
{
	if (read_file(path, buf, size) < 0)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/**
 * write_file() - write a string to a (virtual) file in one write()
 * @path: the file
 * @s: what to write, without its NUL
 * @oflags: open(2) flags besides O_WRONLY | O_CLOEXEC (O_TRUNC for tracefs)
 *
 * Return: 0 if all of @s was written, else -1.
 */
int write_file(const char *path, const char *s, int oflags)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | oflags);
	ssize_t n = -1;

	if (fd >= 0) {
		n = write(fd, s, strlen(s));
		close(fd);
	}
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/**
 * scan_file() - a number from the first matching line of a text file
 * @path: the file
 * @fmt: a sscanf() format with one %lld, e.g. "voluntary_ctxt_switches: %lld"
 * @none: what to return when the file or the line is missing
 *
 * Return: the number of the first line @fmt matches, else @none.
 */
long long scan_file(const char *path, const char *fmt, long long none)
{
	char line[512];
	long long v;
	FILE *f = fopen(path, "re");

	if (!f)
		return none;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, fmt, &v) == 1) {
			fclose(f);
			return v;
		}
	fclose(f);
	return none;
}

/* An epoll instance watching @fd for @events; -1 on error. */
int epoll_for(int fd, unsigned int events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
		close(ep);
		ep = -1;
	}
	return ep;
}

/* SIGUSR1s handled since set_sigusr1(). */
atomic_int sig_count;

static void on_sig(int sig)
{
	(void)sig;
	atomic_fetch_add(&sig_count, 1);
}

/* Count SIGUSR1 in sig_count (reset to 0), with SA_RESTART if @restart. */
int set_sigusr1(bool restart)
{
	struct sigaction sa = { .sa_handler = on_sig };

	sigemptyset(&sa.sa_mask);
	sa.sa_flags = restart ? SA_RESTART : 0;
	atomic_store(&sig_count, 0);
	return sigaction(SIGUSR1, &sa, NULL);
}

/* Wait up to WAIT_MS until sig_count reaches @want; 0, or -1 on timeout. */
int wait_sig_count(int want)
{
	long long end = now_ms() + WAIT_MS;

	while (atomic_load(&sig_count) < want) {
		if (now_ms() > end)
			return -1;
		usleep(1000);
	}
	return 0;
}

/* ---- one blocking call in its own thread ---------------------------- */

/**
 * join_within() - join a thread within WAIT_MS
 * @th: the thread
 *
 * On timeout @th is detached: what it uses must stay valid.
 *
 * Return: 0 once joined, else an errno value (ETIMEDOUT).
 */
int join_within(pthread_t th)
{
	struct timespec ts;
	int ret;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	ret = pthread_timedjoin_np(th, NULL, &ts);
	if (ret)
		pthread_detach(th);
	return ret;
}

static void *op_fn(void *arg)
{
	struct op *op = arg;
	struct mpmc_msgvec v = { .buf = (uintptr_t)op->buf, .len = op->len };
	struct mpmc_batch b = {
		.vec = (uintptr_t)&v, .count = 1, .timeout_ns = -1,
	};

	__atomic_store_n(&op->tid, gettid(), __ATOMIC_SEQ_CST);
	switch (op->kind) {
	case OP_READ:
		op->ret = read(op->fd, op->buf, op->len);
		break;
	case OP_WRITE:
		op->ret = write(op->fd, op->buf, op->len);
		break;
	case OP_BRECV:
		op->ret = ioctl(op->fd, MPMC_IOC_RECV, &b);
		if (op->ret == 1)
			op->ret = v.len;
		break;
	case OP_BSEND:
		op->ret = ioctl(op->fd, MPMC_IOC_SEND, &b);
		if (op->ret == 1)
			op->ret = op->len;
		break;
	}
	op->err = op->ret < 0 ? errno : 0;
	if (op->ret >= 0 && (op->kind == OP_READ || op->kind == OP_BRECV))
		op->buf[op->ret] = '\0';
	atomic_store(&op->done, 1);
	return NULL;
}

/**
 * op_start() - start one blocking call in a new thread
 * @op: the call; its results are read after op_join()
 * @fd: the file to call on
 * @kind: which call
 * @msg: for a writer, the @len bytes to send (NULL: @len zero bytes)
 * @len: bytes to send, or the size of the receive buffer (<= OP_BUF)
 *
 * Return: 0, or an errno value (pthread_create()'s, or EINVAL).
 */
int op_start(struct op *op, int fd, enum op_kind kind, const void *msg,
	     size_t len)
{
	if (len > OP_BUF)
		return EINVAL;
	memset(op, 0, sizeof(*op));
	op->fd = fd;
	op->kind = kind;
	op->len = len;
	if (msg)
		memcpy(op->buf, msg, len);
	return pthread_create(&op->th, NULL, op_fn, op);
}

/* Start a read() with a @len byte buffer. */
int start_reader(struct op *op, int fd, size_t len)
{
	return op_start(op, fd, OP_READ, NULL, len);
}

/* Start a write() of @msg (without its NUL). */
int start_writer(struct op *op, int fd, const char *msg)
{
	return op_start(op, fd, OP_WRITE, msg, strlen(msg));
}

/* Has the call of @op returned? */
bool op_done(struct op *op)
{
	return atomic_load(&op->done);
}

/* The thread id of @op's thread (0 until it has started). */
int op_tid(struct op *op)
{
	return __atomic_load_n(&op->tid, __ATOMIC_SEQ_CST);
}

/**
 * op_join() - join @op's thread within WAIT_MS (join_within())
 * @op: a started op, which the thread keeps using on timeout
 *
 * Return: 0 once joined, else an errno value (ETIMEDOUT).
 */
int op_join(struct op *op)
{
	return join_within(op->th);
}

/**
 * read_str() - read one message as a C string, waiting at most WAIT_MS
 * @fd: the file to read
 * @buf: receives the message and a NUL
 * @size: the size of @buf
 *
 * The read runs in a thread, so that a module that never delivers fails
 * the test instead of hanging it.
 *
 * Return: the length, 0 at EOF, -1 with errno set (ETIMEDOUT if it hung).
 */
ssize_t read_str(int fd, char *buf, size_t size)
{
	struct op *op = malloc(sizeof(*op));
	ssize_t ret;

	if (!op)
		return -1;
	if (start_reader(op, fd, size - 1)) {
		free(op);
		return -1;
	}
	if (op_join(op)) {
		/* Leak @op: the thread still owns it. */
		errno = ETIMEDOUT;
		return -1;
	}
	ret = op->ret;
	if (ret < 0) {
		errno = op->err;
	} else {
		memcpy(buf, op->buf, ret);
		buf[ret] = '\0';
	}
	free(op);
	return ret;
}

/*
 * Entry i of @v points at @bufs + i * @size, which holds the string @fmt
 * makes of i; its length is the string's (priority 0): a batch to send.
 */
void name_vec(struct mpmc_msgvec *v, char *bufs, size_t size, int n,
	      const char *fmt)
{
	int i;

	for (i = 0; i < n; i++) {
		char *s = bufs + i * size;

		snprintf(s, size, fmt, i);
		v[i] = (struct mpmc_msgvec){
			.buf = (uintptr_t)s, .len = strlen(s),
		};
	}
}

/* ---- threads that share a context ----------------------------------- */

/* Start @n peers running @fn on @ctx: 0, or pthread_create()'s error. */
int peers_start(struct peer *p, int n, void *ctx, void *(*fn)(void *))
{
	int i, err;

	for (i = 0; i < n; i++) {
		p[i] = (struct peer){ .ctx = ctx, .id = i };
		err = pthread_create(&p[i].th, NULL, fn, &p[i]);
		if (err)
			return err;
	}
	return 0;
}

void peers_join(struct peer *p, int n)
{
	int i;

	for (i = 0; i < n; i++)
		pthread_join(p[i].th, NULL);
}

static void *flipper_fn(void *arg)
{
	struct flipper *f = arg;

	while (!atomic_load(&f->stop)) {
		f->flags ^= f->bit;
		set_flags(f->fd, f->flags);
		usleep(f->period_us);
	}
	return NULL;
}

/* Flip @bit of @fd's flags, from @flags on: 0, or pthread_create()'s error. */
int flipper_start(struct flipper *f, int fd, __u32 flags, __u32 bit,
		  unsigned int period_us)
{
	*f = (struct flipper){
		.fd = fd, .flags = flags, .bit = bit, .period_us = period_us,
	};
	return pthread_create(&f->th, NULL, flipper_fn, f);
}

void flipper_stop(struct flipper *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->th, NULL);
}

static void *poller_fn(void *arg)
{
	struct poller *p = arg;
	struct pollfd pfd = { .fd = p->fd, .events = p->events };

	p->ret = poll(&pfd, 1, 2 * WAIT_MS);
	p->revents = pfd.revents;
	return NULL;
}

/* Start @p polling @fd for @events: 0, or pthread_create()'s error. */
int poller_start(struct poller *p, int fd, short events)
{
	*p = (struct poller){ .fd = fd, .events = events };
	return pthread_create(&p->th, NULL, poller_fn, p);
}

/* poll() of @fd for @events, timeout 0: the revents, or -1. */
short revents(int fd, short events)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	if (poll(&pfd, 1, 0) < 0)
		return -1;
	return pfd.revents;
}

/* ---- unloading and loading the module (lifecycle.c, modcycle.c) ----- */

/* $MPMC_KO, the module to load again; NULL when unset or empty. */
const char *mod_ko;
const char *const mod_param_names[MOD_NPARAMS] = {
	"max_capacity", "max_msg_size", "max_channel_bytes", "spin_max_ns",
};
/* The parameters when the program started (0: unreadable). */
unsigned long long mod_saved[MOD_NPARAMS];
static char mod_params[256];

/*
 * mod_init() - note $MPMC_KO and the module's parameters
 *
 * Call it from a constructor, in the harness parent before any test is
 * forked. It registers mod_ensure_loaded() with atexit(): the test
 * children leave through _exit(), so only the parent runs it.
 */
void mod_init(void)
{
	size_t off = 0;
	unsigned int i;

	mod_ko = getenv("MPMC_KO");
	if (mod_ko && !*mod_ko)
		mod_ko = NULL;
	for (i = 0; i < MOD_NPARAMS; i++) {
		mod_saved[i] = mpmc_test_param(mod_param_names[i]);
		if (mod_saved[i] && off < sizeof(mod_params))
			off += snprintf(mod_params + off,
					sizeof(mod_params) - off, "%s%s=%llu",
					off ? " " : "", mod_param_names[i],
					mod_saved[i]);
	}
	atexit(mod_ensure_loaded);
}

/* Is the module loaded (in /sys/module)? */
bool mod_loaded(void)
{
	return access("/sys/module/" MOD_NAME, F_OK) == 0;
}

/* Does /dev/mpmc exist? */
bool dev_exists(void)
{
	return access(MPMC_DEV, F_OK) == 0;
}

/* Wait up to @ms for /dev/mpmc to be @present (or absent); true if so. */
bool wait_dev(bool present, int ms)
{
	long long end = now_ms() + ms;

	while (dev_exists() != present) {
		if (now_ms() > end)
			return false;
		usleep(2000);
	}
	return true;
}

/* delete_module(), not waiting: -1 with errno (EWOULDBLOCK while in use). */
int mod_unload(void)
{
	return syscall(SYS_delete_module, MOD_NAME, O_NONBLOCK);
}

/* mod_unload(), retried for @ms while something (async release) holds it. */
int mod_unload_within(int ms)
{
	long long end = now_ms() + ms;
	int ret;

	for (;;) {
		errno = 0;
		ret = mod_unload();
		if (!ret || errno != EWOULDBLOCK || now_ms() > end)
			return ret;
		usleep(10000);
	}
}

/*
 * Load $MPMC_KO with the parameters it had when the program started and
 * wait WAIT_MS for /dev/mpmc; 0 (also if it was loaded), or -1 with errno.
 */
int mod_load(void)
{
	int fd, ret, err;

	if (!mod_ko)
		return -1;
	fd = open(mod_ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ret = syscall(SYS_finit_module, fd, mod_params, 0);
	err = errno;
	close(fd);
	if (ret && err != EEXIST) {
		errno = err;
		return -1;
	}
	return wait_dev(true, WAIT_MS) ? 0 : -1;
}

/* Load the module again if it is not loaded (and we can). */
void mod_ensure_loaded(void)
{
	if (geteuid() != 0 || !mod_ko)
		return;
	if (!mod_loaded() && mod_load())
		fprintf(stderr, "# could not reload %s: %s\n", mod_ko,
			strerror(errno));
}

/* Why the module tests cannot run here (no root, no $MPMC_KO), or NULL. */
const char *mod_skip_reason(void)
{
	if (geteuid() != 0)
		return "needs root";
	if (!mod_ko)
		return "$MPMC_KO not set";
	if (access(mod_ko, R_OK))
		return "$MPMC_KO not readable";
	return NULL;
}

/* Load the module if it is not loaded, wait for /dev/mpmc: 0, or -1. */
int mod_ready(void)
{
	if (!mod_loaded() && mod_load())
		return -1;
	return wait_dev(true, WAIT_MS) ? 0 : -1;
}

/* ---- io_uring -------------------------------------------------------- */

/* A free SQE of @ring, submitting what is queued first if there is none. */
struct io_uring_sqe *get_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe) {
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
	}
	return sqe;
}

/**
 * get_cqe() - take one completion off @ring
 * @ring: the ring
 * @ms: how long to wait for it; 0: only look
 * @c: receives it
 *
 * Return: 0, or -ETIME when none came (another negative errno on error).
 */
int get_cqe(struct io_uring *ring, int ms, struct cqe *c)
{
	struct __kernel_timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (ms % 1000) * 1000000LL,
	};
	struct io_uring_cqe *cqe;
	int ret;

	if (ms)
		ret = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
	else
		ret = io_uring_peek_cqe(ring, &cqe);
	if (ret)
		return ret == -EAGAIN ? -ETIME : ret;
	c->ud = cqe->user_data;
	c->res = cqe->res;
	c->flags = cqe->flags;
	io_uring_cqe_seen(ring, cqe);
	return 0;
}

/* Queue (not submit) a READ of @len bytes into @buf, user_data @ud. */
void prep_read(struct io_uring *ring, int fd, void *buf, unsigned int len,
	       __u64 ud)
{
	struct io_uring_sqe *sqe = get_sqe(ring);

	io_uring_prep_read(sqe, fd, buf, len, 0);
	sqe->user_data = ud;
}

/* Queue (not submit) a WRITE of @len bytes from @buf, user_data @ud. */
void prep_write(struct io_uring *ring, int fd, const void *buf,
		unsigned int len, __u64 ud)
{
	struct io_uring_sqe *sqe = get_sqe(ring);

	io_uring_prep_write(sqe, fd, buf, len, 0);
	sqe->user_data = ud;
}

/**
 * count_iou_wrk() - count this process's io-wq worker threads
 * @tids: receives up to @max of their thread ids (may be NULL)
 * @max: the room in @tids
 *
 * Return: how many threads have a comm starting with "iou-wrk", or -1.
 */
int count_iou_wrk(pid_t *tids, int max)
{
	char path[300], comm[64];
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir("/proc/self/task");
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 de->d_name);
		if (read_file(path, comm, sizeof(comm)) < 7 ||
		    strncmp(comm, "iou-wrk", 7))
			continue;
		if (tids && n < max)
			tids[n] = atoi(de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/**
 * blocked_reader() - a new channel with a reader asleep on it
 * @rd: started as start_reader(@rd, fd, @len), asleep when this returns
 * @len: the size of its buffer
 *
 * Return: the channel's fd (O_RDWR, default config), or -1.
 */
int blocked_reader(struct op *rd, size_t len)
{
	int fd = mpmc_test_open(O_RDWR);

	if (fd < 0 || start_reader(rd, fd, len) ||
	    wait_blocked(fd, true, 1))
		return -1;
	return fd;
}

/**
 * blocked_writer() - a full channel of capacity 1 with a writer asleep on it
 * @wr: started as start_writer(@wr, fd, @msg), asleep when this returns
 * @queued: the message that fills the channel
 * @msg: what @wr writes
 *
 * Return: the channel's fd (capacity 1, max_msg_size 64), or -1.
 */
int blocked_writer(struct op *wr, const char *queued, const char *msg)
{
	int fd = mpmc_test_open_cfg(1, 64);

	if (fd < 0 || write_str(fd, queued) || start_writer(wr, fd, msg) ||
	    wait_blocked(fd, false, 1))
		return -1;
	return fd;
}

/* ---- the stress tests' messages ------------------------------------- */

/* The next number of the xorshift32 sequence in *@s. */
uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* FNV-1a of @n bytes at @p. */
static uint32_t checksum(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

/* The payload of message @seq of producer @prod. */
static void fill_payload(unsigned char *p, size_t n, uint32_t prod,
			 uint32_t seq)
{
	uint32_t x = prod * 0x9e3779b1u + seq * 0x85ebca6bu + 1;

	while (n--) {
		x = x * 1664525u + 1013904223u;
		*p++ = x >> 24;
	}
}

/**
 * stress_msg() - build message @seq of producer @prod
 * @buf: receives it (at least @max bytes)
 * @prod: the producer
 * @seq: its sequence number
 * @rnd: the producer's xorshift() state, which picks the length
 * @max: the largest length (the channel's max_msg_size)
 * @spread: most lengths are the header plus up to @spread - 1 bytes
 *
 * Return: its length: mostly small, sometimes exactly the header or @max.
 */
size_t stress_msg(unsigned char *buf, uint32_t prod, uint32_t seq,
		uint32_t *rnd, size_t max, size_t spread)
{
	struct stress_hdr h = {
		.magic = STRESS_MAGIC, .prod = prod, .seq = seq,
	};
	uint32_t r = xorshift(rnd);
	size_t len;

	if (r % 16 == 0)
		len = sizeof(h);
	else if (r % 16 == 1)
		len = max;
	else
		len = sizeof(h) + (r >> 8) % spread;
	h.len = len;
	fill_payload(buf + sizeof(h), len - sizeof(h), prod, seq);
	memcpy(buf, &h, sizeof(h));
	h.csum = checksum(buf, len);
	memcpy(buf, &h, sizeof(h));
	return len;
}

/**
 * stress_check() - check a received stress message
 * @buf: the message (its csum field is zeroed)
 * @n: its length
 * @max: the largest valid length
 * @nprod: producers are numbered below this
 * @nseq: sequence numbers are below this
 * @h: receives its header
 *
 * Return: NULL if it is intact, else what is wrong with it.
 */
const char *stress_check(unsigned char *buf, size_t n, size_t max,
			 uint32_t nprod, uint32_t nseq, struct stress_hdr *h)
{
	unsigned char want[max];
	uint32_t sum;

	memset(h, 0, sizeof(*h));
	if (n < sizeof(*h) || n > max)
		return "bad size";
	memcpy(h, buf, sizeof(*h));
	if (h->magic != STRESS_MAGIC || h->len != n || h->prod >= nprod ||
	    h->seq >= nseq)
		return "bad header";
	sum = h->csum;
	h->csum = 0;
	memcpy(buf, h, sizeof(*h));
	if (checksum(buf, n) != sum)
		return "bad checksum";
	fill_payload(want, n - sizeof(*h), h->prod, h->seq);
	if (memcmp(buf + sizeof(*h), want, n - sizeof(*h)))
		return "corrupt payload";
	return NULL;
}
