// SPDX-License-Identifier: MIT
/*
 * rendezvous: a handshake between processes over capacity-0 channels (Go's
 * unbuffered channels). Nothing is ever queued on them: a send completes
 * only when a receiver has taken the message.
 *
 * The parent hands out numbered requests on one rendezvous channel to a
 * pool of forked workers and takes each reply on a second one before it
 * sends the next request (ping-pong). It checks:
 *   - with no receiver waiting, a send cannot complete (-EAGAIN);
 *   - the workers start receiving only 50 ms after the parent started
 *     them, and the first send returns no earlier than that: it waited
 *     for a receiver, it was not queued;
 *   - a worker never sees a message queued on the channel;
 *   - every reply answers the request just sent (right number, and the
 *     worker that took it), and each worker saw its requests in order;
 *   - after MPMC_SHUT_WR every worker gets end of file and exits 0.
 *
 * Usage: rendezvous [-n ROUNDS] [-c WORKERS] [-q]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <mpmc.h>

#define MAX_WORKERS	64
#define LATE_NS		50000000LL	/* workers start receiving 50 ms late */

struct request {
	uint32_t seq;
};

struct reply {
	uint32_t seq;		/* the request answered */
	uint32_t worker;	/* who took it */
	uint32_t handled;	/* requests this worker took so far */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A worker: take requests until end of file, answer each at once. */
static int worker(int id, int req, int rep, int64_t start)
{
	struct request rq;
	struct reply rp = { .worker = id };
	struct mpmc_stats st;
	uint32_t last = 0;
	ssize_t n;

	struct timespec at = {
		.tv_sec = (start + LATE_NS) / 1000000000,
		.tv_nsec = (start + LATE_NS) % 1000000000,
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL))
		;
	while ((n = mpmc_recv(req, &rq, sizeof(rq))) > 0) {
		if (n != sizeof(rq) || (rp.handled && rq.seq <= last)) {
			fprintf(stderr, "worker %d: request %u after %u\n",
				id, rq.seq, last);
			return 1;
		}
		last = rq.seq;
		rp.seq = rq.seq;
		rp.handled++;
		/* Never anything queued on a rendezvous channel. */
		if (mpmc_get_stats(req, &st) || st.queued_msgs) {
			fprintf(stderr, "worker %d: %u queued\n", id,
				st.queued_msgs);
			return 1;
		}
		n = mpmc_send(rep, &rp, sizeof(rp));
		if (n != sizeof(rp)) {
			fprintf(stderr, "worker %d: send: %s\n", id,
				strerror(-n));
			return 1;
		}
	}
	if (n < 0) {
		fprintf(stderr, "worker %d: recv: %s\n", id, strerror(-n));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int handled[MAX_WORKERS] = { 0 };
	struct mpmc_config cfg, got;
	int rounds = 1000, workers = 3, quiet = 0;
	int req, rep, i, opt, status, bad = 0;
	pid_t pids[MAX_WORKERS];
	int64_t start, first_done = 0;
	struct request rq;
	struct reply rp;
	ssize_t n;

	while ((opt = getopt(argc, argv, "n:c:q")) != -1) {
		switch (opt) {
		case 'n':
			rounds = atoi(optarg);
			break;
		case 'c':
			workers = atoi(optarg);
			break;
		case 'q':
			quiet = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-n ROUNDS] [-c WORKERS] [-q]\n",
				argv[0]);
			return 2;
		}
	}
	if (rounds < 1 || workers < 1 || workers > MAX_WORKERS)
		return fprintf(stderr, "bad -n or -c\n"), 2;

	/* Capacity 0: a rendezvous channel. */
	mpmc_config_init(&cfg, 0, sizeof(struct reply));
	req = mpmc_open(&cfg, O_RDWR | O_CLOEXEC);
	if (req < 0)
		return fprintf(stderr, "mpmc_open (capacity 0): %s%s\n",
			       strerror(-req), req == -EINVAL ?
			       " (a module without rendezvous channels?)" : ""), 1;
	rep = mpmc_open(&cfg, O_RDWR | O_CLOEXEC);
	if (rep < 0)
		return fprintf(stderr, "mpmc_open: %s\n", strerror(-rep)), 1;
	if (mpmc_get_config(req, &got) || got.capacity != 0)
		return fprintf(stderr, "not a rendezvous channel\n"), 1;

	/* Nobody is receiving yet: a send cannot complete. */
	rq.seq = 0;
	n = mpmc_try_send(req, &rq, sizeof(rq));
	if (n != -EAGAIN) {
		fprintf(stderr, "try_send with no receiver: %zd, not -EAGAIN\n", n);
		return 1;
	}

	start = now_ns();
	for (i = 0; i < workers; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			return perror("fork"), 1;
		if (pids[i] == 0)
			_exit(worker(i, req, rep, start));
	}

	/* A send returns only once a worker has taken the request. */
	for (i = 1; i <= rounds; i++) {
		rq.seq = i;
		n = mpmc_send(req, &rq, sizeof(rq));
		if (i == 1)
			first_done = now_ns() - start;
		if (n != sizeof(rq)) {
			fprintf(stderr, "send %d: %s\n", i, strerror(-n));
			bad = 1;
			break;
		}
		n = mpmc_recv(rep, &rp, sizeof(rp));
		if (n != sizeof(rp) || rp.seq != (uint32_t)i ||
		    rp.worker >= (uint32_t)workers ||
		    rp.handled != handled[rp.worker] + 1) {
			fprintf(stderr, "round %d: bad reply (%zd bytes, seq %u, worker %u)\n",
				i, n, rp.seq, rp.worker);
			bad = 1;
			break;
		}
		handled[rp.worker]++;
	}
	/* Go's close(ch): every worker sees end of file. */
	mpmc_shutdown(req, MPMC_SHUT_WR);
	if (bad)	/* a worker may be waiting to reply: EPIPE for it */
		mpmc_shutdown(rep, MPMC_SHUT_RD);
	for (i = 0; i < workers; i++) {
		if (waitpid(pids[i], &status, 0) != pids[i] ||
		    !WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "worker %d failed\n", i);
			bad = 1;
		}
	}
	if (first_done < LATE_NS) {
		fprintf(stderr, "the first send returned %lld ns after the start, before any receiver (%lld ns)\n",
			(long long)first_done, LATE_NS);
		bad = 1;
	}

	if (!quiet || bad) {
		printf("rendezvous: %d handshakes with %d worker process%s%s\n",
		       bad ? i - 1 : rounds, workers, workers > 1 ? "es" : "",
		       bad ? " before a FAILURE" : ", all in order");
		printf("  first send returned %.1f ms after the start (receivers began at %.0f ms)\n",
		       first_done / 1e6, LATE_NS / 1e6);
		for (i = 0; i < workers; i++)
			printf("  worker %d took %u requests\n", i, handled[i]);
	}
	mpmc_close(req);
	mpmc_close(rep);
	return bad;
}
