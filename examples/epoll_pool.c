// SPDX-License-Identifier: MIT
/*
 * epoll_pool: an epoll worker pool on one shared queue.
 *
 * P producer processes send fixed-size jobs, each stamped with its send
 * time, into one queue; M consumer threads each wait in their own epoll
 * instance, with EPOLLEXCLUSIVE, on the same receive fd, and take jobs
 * with non-blocking reads. The queue is an mpmc channel, a pipe or an
 * AF_UNIX SOCK_SEQPACKET socket pair (--transport), so the same workload
 * compares the three. When every producer has exited the consumers get
 * end of file and the program checks that every job arrived exactly once
 * and intact, then prints a table: messages, throughput, each consumer's
 * share and wakeups, and latency percentiles from the send time stamps.
 *
 * Exit status 0 when every job was received exactly once and intact.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <mpmc.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* The head of every job; the rest of the message is a checkable pattern. */
struct job {
	uint64_t sent_ns;	/* CLOCK_MONOTONIC when sent */
	uint32_t producer;
	uint32_t seq;
};

struct consumer {
	pthread_t thread;
	unsigned int id;
	uint64_t msgs;
	uint64_t wakeups;	/* epoll_wait returns with the queue ready */
	uint64_t empty;		/* ... of which found nothing to read */
	char err[160];
};

/* One way to move messages; every function returns -errno on failure. */
struct transport {
	const char *name;
	int (*setup)(int *tx, int *rx);
	ssize_t (*send)(int fd, const void *buf, size_t len);
	ssize_t (*recv)(int fd, void *buf, size_t len);
	const char *(*describe)(int tx, int rx);
};

static struct {
	const struct transport *t;
	unsigned int producers, consumers, per_producer, size, burst, capacity;
	unsigned int rate;	/* jobs per second per producer, 0: flat out */
	bool batch;		/* mpmc: consumers take a burst in one call */
	bool quiet;
	int rx, stop_fd;
	_Atomic uint64_t received;
	_Atomic uint64_t bad;
	_Atomic uint64_t nlat;
	_Atomic uint8_t *seen;	/* [producer * per_producer + seq] */
	uint64_t *lat_ns;
	struct consumer *cons;
	atomic_uint done;
} pool = {
	.producers = 4,
	.consumers = 4,
	.per_producer = 5000,
	.size = 64,
	.burst = 8,
	.capacity = 1024,
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint8_t pattern(uint32_t producer, uint32_t seq, size_t i)
{
	return (uint8_t)(producer * 131 + seq * 7 + i);
}

/* --- transports ------------------------------------------------------- */

static ssize_t sys_result(ssize_t ret)
{
	return ret < 0 ? -errno : ret;
}

static int mpmc_setup(int *tx, int *rx)
{
	struct mpmc_config cfg;
	int ch;

	mpmc_config_init(&cfg, pool.capacity, pool.size);
	ch = mpmc_open(&cfg, O_RDWR | O_CLOEXEC);
	if (ch < 0)
		return ch;
	/* One role per side, so that the producers' exit gives EOF. */
	*tx = mpmc_new_endpoint(ch, MPMC_ROLE_SEND, 0);
	*rx = mpmc_new_endpoint(ch, MPMC_ROLE_RECV, O_NONBLOCK | O_CLOEXEC);
	mpmc_close(ch);
	if (*tx < 0)
		return *tx;
	return *rx < 0 ? *rx : 0;
}

static const char *mpmc_describe(int tx, int rx)
{
	static char d[128];
	struct mpmc_config cfg;

	(void)tx;
	if (mpmc_get_config(rx, &cfg) < 0)
		return "?";
	snprintf(d, sizeof(d), "mpmc channel, capacity %u messages of <= %u bytes",
		 cfg.capacity, cfg.max_msg_size);
	return d;
}

static int pipe_setup(int *tx, int *rx)
{
	int p[2];

	if (pool.size > PIPE_BUF) {
		fprintf(stderr, "pipe: --size over PIPE_BUF (%d) would not be atomic\n",
			PIPE_BUF);
		return -EINVAL;
	}
	if (pipe2(p, 0) < 0)
		return -errno;
	*rx = p[0];
	*tx = p[1];
	if (fcntl(*rx, F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(*rx, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

static const char *pipe_describe(int tx, int rx)
{
	static char d[128];

	(void)tx;
	snprintf(d, sizeof(d), "pipe, %d-byte buffer, fixed-size writes <= PIPE_BUF",
		 fcntl(rx, F_GETPIPE_SZ));
	return d;
}

static int seqpacket_setup(int *tx, int *rx)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
		return -errno;
	*tx = sv[0];
	*rx = sv[1];
	if (fcntl(*rx, F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(*rx, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

static const char *seqpacket_describe(int tx, int rx)
{
	static char d[128];
	socklen_t l = sizeof(int);
	int snd = 0;

	(void)rx;
	getsockopt(tx, SOL_SOCKET, SO_SNDBUF, &snd, &l);
	snprintf(d, sizeof(d), "AF_UNIX SOCK_SEQPACKET pair, SO_SNDBUF %d bytes",
		 snd);
	return d;
}

static ssize_t fd_send(int fd, const void *buf, size_t len)
{
	return sys_result(write(fd, buf, len));
}

static ssize_t fd_recv(int fd, void *buf, size_t len)
{
	return sys_result(read(fd, buf, len));
}

static ssize_t sock_send(int fd, const void *buf, size_t len)
{
	return sys_result(send(fd, buf, len, MSG_NOSIGNAL));
}

static const struct transport transports[] = {
	{ "mpmc", mpmc_setup, mpmc_send, mpmc_recv, mpmc_describe },
	{ "pipe", pipe_setup, fd_send, fd_recv, pipe_describe },
	{ "seqpacket", seqpacket_setup, sock_send, fd_recv, seqpacket_describe },
};

/* --- producers and consumers ------------------------------------------ */

static void __attribute__((noreturn)) producer(unsigned int id, int tx)
{
	char *buf = malloc(pool.size);
	struct job *j = (struct job *)buf;
	uint64_t next = now_ns();
	struct timespec ts;
	uint32_t seq;
	size_t i;
	ssize_t r;

	if (!buf)
		_exit(2);
	for (seq = 0; seq < pool.per_producer; seq++) {
		for (i = sizeof(*j); i < pool.size; i++)
			buf[i] = pattern(id, seq, i);
		if (pool.rate) {
			/* Open loop: job k is due at start + k / rate. */
			next += 1000000000ULL / pool.rate;
			ts.tv_sec = next / 1000000000;
			ts.tv_nsec = next % 1000000000;
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
					       &ts, NULL) == EINTR)
				;
		}
		j->producer = id;
		j->seq = seq;
		j->sent_ns = now_ns();
		r = pool.t->send(tx, buf, pool.size);
		if (r != (ssize_t)pool.size) {
			fprintf(stderr, "producer %u: send: %s\n", id,
				r < 0 ? strerror(-r) : "short write");
			_exit(1);
		}
	}
	_exit(0);
}

/* Check one received job; returns an error message or NULL. */
static const char *check_job(const char *buf, ssize_t len)
{
	const struct job *j = (const struct job *)buf;
	size_t i;

	if (len != (ssize_t)pool.size)
		return "wrong length";
	if (j->producer >= pool.producers || j->seq >= pool.per_producer)
		return "bad job header";
	for (i = sizeof(*j); i < pool.size; i++)
		if ((uint8_t)buf[i] != pattern(j->producer, j->seq, i))
			return "corrupt payload";
	if (atomic_exchange(&pool.seen[(size_t)j->producer * pool.per_producer +
				       j->seq], 1))
		return "job received twice";
	return NULL;
}

/*
 * Take up to @max jobs into @bufs (pool.size bytes each), their lengths
 * into @lens: returns how many, 0 at end of file, or -errno (-EAGAIN when
 * there is nothing to take). One call per job, or one per batch with
 * --batch.
 */
static int take(char *bufs, uint32_t *lens, unsigned int max)
{
	struct mpmc_msgvec v[64];
	unsigned int k;
	ssize_t r;
	int n;

	if (!pool.batch) {
		r = pool.t->recv(pool.rx, bufs, pool.size);
		if (r <= 0)
			return r;
		lens[0] = r;
		return 1;
	}
	if (max > 64)
		max = 64;
	for (k = 0; k < max; k++)
		mpmc_msgvec_set(&v[k], bufs + (size_t)k * pool.size, pool.size);
	n = mpmc_recv_batch(pool.rx, v, max, MPMC_TIMEOUT_NONE);
	for (k = 0; k < (unsigned int)(n > 0 ? n : 0); k++)
		lens[k] = v[k].len;
	return n;
}

static void *consumer(void *arg)
{
	struct consumer *c = arg;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	char *buf = malloc((size_t)pool.size * 64);
	bool eof = false, stop = false;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	const char *err, *job;
	uint32_t lens[64];
	unsigned int i, k;
	int r;

	if (!buf || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, pool.rx, &ev) < 0) {
		snprintf(c->err, sizeof(c->err), "setup: %s", strerror(errno));
		goto out;
	}
	/* Stop: any consumer that sees EOF wakes all the others. */
	ev.events = EPOLLIN;
	ev.data.u32 = 1;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, pool.stop_fd, &ev) < 0) {
		snprintf(c->err, sizeof(c->err), "setup: %s", strerror(errno));
		goto out;
	}
	while (!eof && !stop) {
		struct epoll_event evs[2];
		int n = epoll_wait(ep, evs, 2, 1000);
		bool ready = false;

		if (n < 0 && errno != EINTR) {
			snprintf(c->err, sizeof(c->err), "epoll_wait: %s",
				 strerror(errno));
			break;
		}
		for (i = 0; i < (unsigned int)(n > 0 ? n : 0); i++) {
			if (evs[i].data.u32 == 1)
				stop = true;
			else
				ready = true;
		}
		if (!ready && !stop)
			continue;
		if (ready)
			c->wakeups++;
		/* After a stop, drain whatever is left to be sure. */
		for (i = 0; stop || i < pool.burst; i += r) {
			r = take(buf, lens, stop ? 64 : pool.burst - i);
			if (r == -EAGAIN) {
				r = 0;
				break;
			}
			if (r == 0) {
				eof = true;
				break;
			}
			if (r < 0) {
				snprintf(c->err, sizeof(c->err), "recv: %s",
					 strerror(-r));
				goto out;
			}
			for (k = 0; k < (unsigned int)r; k++) {
				job = buf + (size_t)k * pool.size;
				err = check_job(job, lens[k]);
				if (err) {
					snprintf(c->err, sizeof(c->err), "%s", err);
					atomic_fetch_add(&pool.bad, 1);
					continue;
				}
				pool.lat_ns[atomic_fetch_add(&pool.nlat, 1)] =
					now_ns() - ((const struct job *)job)->sent_ns;
				c->msgs++;
				atomic_fetch_add_explicit(&pool.received, 1,
							  memory_order_relaxed);
			}
		}
		if (ready && i == 0 && !eof)
			c->empty++;
	}
	if (eof) {
		uint64_t one = 1;

		if (write(pool.stop_fd, &one, sizeof(one)) != sizeof(one))
			snprintf(c->err, sizeof(c->err), "eventfd: %s",
				 strerror(errno));
	}
out:
	if (ep >= 0)
		close(ep);
	free(buf);
	atomic_fetch_add(&pool.done, 1);
	return NULL;
}

/* --- report --------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double percentile_us(const uint64_t *v, uint64_t n, double p)
{
	uint64_t i;

	if (!n)
		return 0;
	i = (uint64_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i] / 1000.0;
}

static void progress(uint64_t total, uint64_t t0, uint64_t *last,
		     uint64_t *last_t)
{
	uint64_t got = atomic_load(&pool.received), t = now_ns();
	double rate = (got - *last) * 1e9 / (double)(t - *last_t);

	printf("[%s] %8llu / %llu messages  %5.1f%%  %9.0f msg/s  %6.1f s\n",
	       pool.t->name, (unsigned long long)got, (unsigned long long)total,
	       total ? 100.0 * got / total : 0.0, rate, (t - t0) / 1e9);
	fflush(stdout);
	*last = got;
	*last_t = t;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: epoll_pool [OPTIONS]\n"
"  -t, --transport mpmc|pipe|seqpacket   the queue (default mpmc)\n"
"  -p, --producers N     producer processes (default 4)\n"
"  -c, --consumers N     consumer threads, one epoll instance each (default 4)\n"
"  -n, --messages N      jobs per producer (default 5000)\n"
"  -s, --size BYTES      job size, %zu..65536 (default 64; pipe: <= PIPE_BUF)\n"
"  -b, --burst N         jobs taken per wakeup at most (default 8)\n"
"  -B, --batch           mpmc: take them with one mpmc_recv_batch() call\n"
"  -r, --rate N          jobs per second per producer (default 0: flat out)\n"
"  -C, --capacity N      mpmc channel capacity in messages (default 1024)\n"
"  -q, --quiet           no progress lines\n", sizeof(struct job));
}

static unsigned int parse_uint(const char *s, const char *what, unsigned int min,
			       unsigned int max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || v < min || v > max) {
		fprintf(stderr, "epoll_pool: bad %s '%s' (%u..%u)\n", what, s,
			min, max);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "transport", required_argument, NULL, 't' },
		{ "producers", required_argument, NULL, 'p' },
		{ "consumers", required_argument, NULL, 'c' },
		{ "messages", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "burst", required_argument, NULL, 'b' },
		{ "batch", no_argument, NULL, 'B' },
		{ "rate", required_argument, NULL, 'r' },
		{ "capacity", required_argument, NULL, 'C' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	unsigned int i;
	int o;

	pool.t = &transports[0];
	while ((o = getopt_long(argc, argv, "t:p:c:n:s:b:Br:C:qh", opts, NULL)) != -1) {
		switch (o) {
		case 't':
			pool.t = NULL;
			for (i = 0; i < ARRAY_SIZE(transports); i++)
				if (!strcmp(optarg, transports[i].name))
					pool.t = &transports[i];
			if (!pool.t) {
				usage(stderr);
				exit(2);
			}
			break;
		case 'p':
			pool.producers = parse_uint(optarg, "producers", 1, 256);
			break;
		case 'c':
			pool.consumers = parse_uint(optarg, "consumers", 1, 256);
			break;
		case 'n':
			pool.per_producer = parse_uint(optarg, "messages", 1, 10000000);
			break;
		case 's':
			pool.size = parse_uint(optarg, "size", sizeof(struct job), 65536);
			break;
		case 'b':
			pool.burst = parse_uint(optarg, "burst", 1, 1 << 20);
			break;
		case 'B':
			pool.batch = true;
			break;
		case 'r':
			pool.rate = parse_uint(optarg, "rate", 0, 1000000);
			break;
		case 'C':
			pool.capacity = parse_uint(optarg, "capacity", 1, 1 << 20);
			break;
		case 'q':
			pool.quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
	if (pool.batch && strcmp(pool.t->name, "mpmc")) {
		fprintf(stderr, "epoll_pool: --batch needs --transport mpmc\n");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	uint64_t total, t0, t1, last = 0, last_t, missing = 0, i;
	unsigned int p, c, failed_producers = 0;
	int tx = -1, ret, status;
	double secs;
	bool ok;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	total = (uint64_t)pool.producers * pool.per_producer;
	pool.seen = calloc(total, 1);
	pool.lat_ns = calloc(total, sizeof(*pool.lat_ns));
	pool.cons = calloc(pool.consumers, sizeof(*pool.cons));
	pool.stop_fd = eventfd(0, EFD_CLOEXEC);
	if (!pool.seen || !pool.lat_ns || !pool.cons || pool.stop_fd < 0) {
		perror("epoll_pool: setup");
		return 1;
	}
	ret = pool.t->setup(&tx, &pool.rx);
	if (ret < 0) {
		fprintf(stderr, "epoll_pool: %s: %s\n", pool.t->name, strerror(-ret));
		return 1;
	}

	printf("epoll_pool: %u producer processes -> %s -> %u consumer threads\n",
	       pool.producers, pool.t->describe(tx, pool.rx), pool.consumers);
	printf("epoll_pool: %llu jobs of %u bytes, %s, epoll with EPOLLEXCLUSIVE, "
	       "up to %u jobs per wakeup%s\n", (unsigned long long)total,
	       pool.size, pool.rate ? "paced" : "flat out", pool.burst,
	       pool.batch ? " in one batch call" : "");
	if (pool.rate)
		printf("epoll_pool: each producer sends %u jobs/s\n", pool.rate);
	fflush(stdout);

	/* Producers first, so that no thread exists when we fork. */
	t0 = now_ns();
	for (p = 0; p < pool.producers; p++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("epoll_pool: fork");
			return 1;
		}
		if (pid == 0) {
			close(pool.rx);
			producer(p, tx);
		}
	}
	/* Only the producers hold the send side now. */
	close(tx);
	for (c = 0; c < pool.consumers; c++) {
		pool.cons[c].id = c;
		if (pthread_create(&pool.cons[c].thread, NULL, consumer,
				   &pool.cons[c])) {
			fprintf(stderr, "epoll_pool: pthread_create failed\n");
			return 1;
		}
	}

	last_t = t0;
	while (atomic_load(&pool.done) < pool.consumers) {
		usleep(100000);
		if (!pool.quiet && now_ns() - last_t >= 1000000000)
			progress(total, t0, &last, &last_t);
	}
	t1 = now_ns();
	for (c = 0; c < pool.consumers; c++)
		pthread_join(pool.cons[c].thread, NULL);
	for (p = 0; p < pool.producers; p++) {
		if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			failed_producers++;
	}

	for (i = 0; i < total; i++)
		missing += !pool.seen[i];
	qsort(pool.lat_ns, pool.nlat, sizeof(*pool.lat_ns), cmp_u64);
	secs = (t1 - t0) / 1e9;
	ok = !missing && !pool.bad && !failed_producers &&
	     pool.received == total;

	printf("\n%-11s %s%s: %u producers, %u consumers, %u-byte jobs, %s\n",
	       "transport", pool.t->name, pool.batch ? " (batch)" : "",
	       pool.producers, pool.consumers, pool.size,
	       pool.rate ? "paced" : "flat out");
	printf("%-11s %llu received of %llu sent, %llu missing, %llu bad: %s\n",
	       "messages", (unsigned long long)pool.received,
	       (unsigned long long)total, (unsigned long long)missing,
	       (unsigned long long)pool.bad, ok ? "verified" : "FAILED");
	printf("%-11s %.3f s, %.0f msg/s, %.2f MB/s\n", "throughput", secs,
	       pool.received / secs, pool.received * (double)pool.size / secs / 1e6);
	printf("%-11s p50 %.1f us, p99 %.1f us, max %.1f us (send to receive)\n",
	       "latency", percentile_us(pool.lat_ns, pool.nlat, 50),
	       percentile_us(pool.lat_ns, pool.nlat, 99),
	       percentile_us(pool.lat_ns, pool.nlat, 100));
	printf("\n%-9s %10s %7s %9s %13s %10s\n", "consumer", "messages",
	       "share", "wakeups", "empty wakeups", "msg/wakeup");
	for (c = 0; c < pool.consumers; c++) {
		struct consumer *k = &pool.cons[c];

		printf("%-9u %10llu %6.1f%% %9llu %13llu %10.2f\n", c,
		       (unsigned long long)k->msgs,
		       pool.received ? 100.0 * k->msgs / pool.received : 0.0,
		       (unsigned long long)k->wakeups,
		       (unsigned long long)k->empty,
		       k->wakeups ? (double)k->msgs / k->wakeups : 0.0);
		if (k->err[0])
			fprintf(stderr, "consumer %u: %s\n", c, k->err);
	}
	/* One line for scripts that compare transports. */
	printf("\nsummary: transport=%s%s rate=%u messages=%llu seconds=%.3f msg_per_s=%.0f "
	       "p50_us=%.1f p99_us=%.1f result=%s\n", pool.t->name,
	       pool.batch ? "-batch" : "", pool.rate,
	       (unsigned long long)pool.received, secs, pool.received / secs,
	       percentile_us(pool.lat_ns, pool.nlat, 50),
	       percentile_us(pool.lat_ns, pool.nlat, 99), ok ? "ok" : "FAILED");
	if (failed_producers)
		fprintf(stderr, "epoll_pool: %u producers failed\n", failed_producers);
	return ok ? 0 : 1;
}
