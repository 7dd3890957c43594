// SPDX-License-Identifier: MIT
/*
 * telemetry: a "latest values" channel in overwrite mode. A fast producer
 * process publishes sequence-numbered samples into a channel of capacity N
 * with MPMC_CONFIG_OVERWRITE; a slow consumer reads a few while it runs.
 * A full channel drops its oldest sample instead of making the producer
 * wait, so the producer never blocks and the consumer always finds the
 * newest N samples.
 *
 * The producer sends at least SAMPLES samples and runs until the consumer
 * has done its slow reads; then it sends N more (so the channel surely
 * holds only samples sent after the last read) and stops: the newest N
 * are then known exactly, whatever the scheduling.
 *
 * Checks (exit status 1 if any fails):
 *   - every send of the producer succeeded without waiting (it uses
 *     mpmc_try_send(): a full channel would be -EAGAIN);
 *   - once the producer is done, a peek (mpmc_peek(), nothing removed)
 *     shows exactly the newest N samples, in order;
 *   - everything received is strictly increasing and ends with the last
 *     sample sent;
 *   - total_dropped + received == sent, from the channel's statistics.
 *
 * Usage: telemetry [-n SAMPLES] [-N CAPACITY] [-k SLOW_READS] [-q]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <mpmc.h>

#define MAX_CAPACITY	1024	/* MPMC_BATCH_MAX: one peek sees them all */

struct sample {
	uint64_t seq;		/* 1, 2, 3, ... */
	int64_t t_ns;		/* CLOCK_MONOTONIC when taken */
	double value;		/* the measurement */
};

/* Shared between the two processes. */
struct shared {
	int reads_done;		/* the consumer's slow reads are over */
	uint64_t total;		/* samples the producer sent */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * The producer: as fast as it can, at least @n samples and until the
 * consumer's reads are done, then @cap more; then end of stream.
 */
static int producer(int fd, uint64_t n, unsigned int cap, struct shared *sh)
{
	uint64_t i, end = UINT64_MAX;
	int64_t t0 = now_ns();
	struct sample s;
	ssize_t ret;

	for (i = 1; i <= end; i++) {
		if (end == UINT64_MAX && i > n &&
		    __atomic_load_n(&sh->reads_done, __ATOMIC_ACQUIRE))
			end = i + cap - 1;
		s.seq = i;
		s.t_ns = now_ns();
		s.value = (double)(i % 1000) / 10.0;
		ret = mpmc_try_send(fd, &s, sizeof(s));	/* never waits */
		if (ret != sizeof(s)) {
			fprintf(stderr, "producer: sample %llu: %s\n",
				(unsigned long long)i, strerror(-ret));
			return 1;
		}
	}
	sh->total = end;
	printf("producer: %llu samples sent in %.1f ms, none waited or failed (%.2f us a send)\n",
	       (unsigned long long)end, (now_ns() - t0) / 1e6,
	       (now_ns() - t0) / 1e3 / end);
	fflush(stdout);
	return mpmc_shutdown(fd, MPMC_SHUT_WR) < 0;
}

int main(int argc, char **argv)
{
	uint64_t sent = 100000, received = 0, last = 0, live = 0;
	unsigned int cap = 8, slow = 20, quiet = 0;
	static struct mpmc_msgvec v[MAX_CAPACITY];
	static struct sample window[MAX_CAPACITY];
	struct mpmc_config cfg;
	struct mpmc_stats st;
	struct shared *sh;
	struct sample s;
	int fd, opt, status, bad = 0, peeked, i;
	pid_t pid;
	ssize_t n;

	while ((opt = getopt(argc, argv, "n:N:k:q")) != -1) {
		switch (opt) {
		case 'n':
			sent = strtoull(optarg, NULL, 0);
			break;
		case 'N':
			cap = atoi(optarg);
			break;
		case 'k':
			slow = atoi(optarg);
			break;
		case 'q':
			quiet = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-n SAMPLES] [-N CAPACITY] [-k SLOW_READS] [-q]\n",
				argv[0]);
			return 2;
		}
	}
	if (cap < 1 || cap > MAX_CAPACITY)
		return fprintf(stderr, "need 1 <= N <= %d\n", MAX_CAPACITY), 2;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return perror("mmap"), 1;

	mpmc_config_init_flags(&cfg, cap, sizeof(struct sample),
			       MPMC_CONFIG_OVERWRITE);
	fd = mpmc_open(&cfg, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fprintf(stderr, "mpmc_open: %s\n", strerror(-fd)), 1;

	pid = fork();
	if (pid < 0)
		return perror("fork"), 1;
	if (pid == 0)
		_exit(producer(fd, sent, cap, sh));

	/* The slow consumer: a sample now and then while the producer runs. */
	for (live = 0; live < slow; live++) {
		n = mpmc_recv(fd, &s, sizeof(s));
		if (n != sizeof(s)) {
			fprintf(stderr, "recv: %zd\n", n);
			bad = 1;
			break;
		}
		if (s.seq <= last) {
			fprintf(stderr, "sample %llu after %llu\n",
				(unsigned long long)s.seq, (unsigned long long)last);
			bad = 1;
		}
		last = s.seq;
		received++;
		usleep(1000);
	}

	__atomic_store_n(&sh->reads_done, 1, __ATOMIC_RELEASE);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fprintf(stderr, "the producer failed\n");
		bad = 1;
	}
	sent = sh->total;

	/* The producer is done: the channel holds the newest N samples. */
	for (i = 0; i < (int)cap; i++)
		mpmc_msgvec_set(&v[i], &window[i], sizeof(window[i]));
	peeked = mpmc_peek(fd, v, cap, MPMC_TIMEOUT_NONE);
	if (peeked != (int)cap) {
		fprintf(stderr, "peek: %d of %u: %s\n", peeked, cap,
			peeked < 0 ? strerror(-peeked) : "too few");
		bad = 1;
	}
	for (i = 0; i < peeked; i++) {
		if (v[i].len != sizeof(struct sample) ||
		    window[i].seq != sent - cap + 1 + i) {
			fprintf(stderr, "window[%d] is sample %llu, not %llu\n", i,
				(unsigned long long)window[i].seq,
				(unsigned long long)(sent - cap + 1 + i));
			bad = 1;
		}
	}

	/* Drain them (a peek removed nothing), up to end of file. */
	while ((n = mpmc_recv(fd, &s, sizeof(s))) == sizeof(s)) {
		if (s.seq <= last) {
			fprintf(stderr, "sample %llu after %llu\n",
				(unsigned long long)s.seq, (unsigned long long)last);
			bad = 1;
		}
		last = s.seq;
		received++;
	}
	if (n != 0) {
		fprintf(stderr, "recv: %zd, not end of file\n", n);
		bad = 1;
	}
	if (last != sent) {
		fprintf(stderr, "the last sample received is %llu, not %llu\n",
			(unsigned long long)last, (unsigned long long)sent);
		bad = 1;
	}
	if (mpmc_get_stats(fd, &st)) {
		fprintf(stderr, "mpmc_get_stats failed\n");
		bad = 1;
	} else if (st.total_sent != sent || st.total_received != received ||
		   st.total_dropped + received != sent) {
		fprintf(stderr, "stats: sent %llu received %llu dropped %llu; counted %llu sent, %llu received\n",
			(unsigned long long)st.total_sent,
			(unsigned long long)st.total_received,
			(unsigned long long)st.total_dropped,
			(unsigned long long)sent, (unsigned long long)received);
		bad = 1;
	}

	if (!quiet || bad) {
		printf("consumer: received %llu (%llu while the producer ran, then the latest %d), dropped %llu: %llu + %llu = %llu sent\n",
		       (unsigned long long)received, (unsigned long long)live,
		       peeked, (unsigned long long)st.total_dropped,
		       (unsigned long long)received,
		       (unsigned long long)st.total_dropped,
		       (unsigned long long)(received + st.total_dropped));
		if (peeked > 0)
			printf("latest window: samples %llu..%llu, value %.1f\n",
			       (unsigned long long)window[0].seq,
			       (unsigned long long)window[peeked - 1].seq,
			       window[peeked - 1].value);
		printf("telemetry: %s\n", bad ? "FAILED" : "ok");
	}
	mpmc_close(fd);
	return bad;
}
