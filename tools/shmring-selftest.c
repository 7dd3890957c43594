// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * shmring-selftest: the host check of tools/shmring.h (no module needed).
 *
 *   cc -O2 -Wall -Wextra -pthread -I uapi -o shmring-selftest \
 *      tools/shmring-selftest.c && ./shmring-selftest [messages]
 *
 * Runs P producer and C consumer threads over one ring, for (P, C) = (1,
 * 1) and (2, 2), each with a small ring (4 slots: the futex waits and the
 * wrap-around all the time) and a larger one (256 slots), and checks that
 * every one of the messages (default 1000000 per run) is received exactly
 * once, intact, that each consumer sees each producer's messages in order,
 * and that after shutdown the consumers drain and get end of file. Also
 * the single-threaded edge cases: EMSGSIZE both ways, EAGAIN on empty and
 * full, EPIPE after shutdown. Exit status 0 when all pass.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shmring.h"

#define MAX_PEERS	2
#define MSG_MAX		64

struct msg {
	uint32_t prod;
	uint32_t seq;
	uint32_t csum;		/* of prod, seq and the payload */
	unsigned char pad[MSG_MAX - 12];
};

struct run {
	struct shmring ring;
	unsigned int nprod, ncons;
	uint32_t per_prod;	/* messages each producer sends */
	unsigned char *seen;	/* [prod * per_prod + seq]: times received */
	unsigned long bad;	/* torn, out of order, or unknown */
	unsigned long eof;	/* consumers that reached end of file */
	unsigned long received;
};

struct peer {
	pthread_t th;
	struct run *run;
	struct shmring ring;	/* own owner id */
	unsigned int id;
};

static uint32_t msg_csum(const struct msg *m, size_t len)
{
	uint32_t h = 2166136261u ^ m->prod ^ (m->seq << 7);
	size_t i;

	for (i = 0; i + 12 < len; i++)
		h = (h ^ m->pad[i]) * 16777619u;
	return h;
}

/* A length 12..MSG_MAX and a payload that derive from (prod, seq). */
static size_t msg_fill(struct msg *m, uint32_t prod, uint32_t seq)
{
	size_t len = 12 + (seq * 2654435761u >> 7) % (MSG_MAX - 11);
	size_t i;

	m->prod = prod;
	m->seq = seq;
	for (i = 0; i + 12 < len; i++)
		m->pad[i] = (unsigned char)(prod * 31 + seq + i);
	m->csum = msg_csum(m, len);
	return len;
}

static void *producer(void *arg)
{
	struct peer *p = arg;
	struct run *run = p->run;
	struct msg m;
	uint32_t seq;
	size_t len;

	for (seq = 0; seq < run->per_prod; seq++) {
		len = msg_fill(&m, p->id, seq);
		if (shmring_send(&p->ring, &m, len, 0) != (ssize_t)len) {
			__atomic_fetch_add(&run->bad, 1, __ATOMIC_RELAXED);
			break;
		}
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct peer *p = arg;
	struct run *run = p->run;
	int64_t last[MAX_PEERS];
	unsigned long got = 0;
	struct msg m;
	ssize_t n;
	size_t i;

	for (i = 0; i < MAX_PEERS; i++)
		last[i] = -1;
	for (;;) {
		n = shmring_recv(&p->ring, &m, sizeof(m), 0);
		if (n <= 0)
			break;
		if (n < 12 || m.prod >= run->nprod || m.seq >= run->per_prod ||
		    m.csum != msg_csum(&m, (size_t)n) ||
		    (int64_t)m.seq <= last[m.prod]) {
			__atomic_fetch_add(&run->bad, 1, __ATOMIC_RELAXED);
			continue;
		}
		last[m.prod] = m.seq;
		__atomic_fetch_add(&run->seen[(size_t)m.prod * run->per_prod +
					      m.seq], 1, __ATOMIC_RELAXED);
		got++;
	}
	if (n == 0)
		__atomic_fetch_add(&run->eof, 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&run->bad, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&run->received, got, __ATOMIC_RELAXED);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One run: @nprod producers, @ncons consumers, @total messages. */
static int run_one(unsigned int nprod, unsigned int ncons, uint32_t slots,
		   unsigned long total)
{
	struct peer prod[MAX_PEERS], cons[MAX_PEERS];
	unsigned long missing = 0, dup = 0, i;
	struct run run;
	double t0;
	int fd;
	unsigned int k;

	memset(&run, 0, sizeof(run));
	run.nprod = nprod;
	run.ncons = ncons;
	run.per_prod = (uint32_t)(total / nprod);
	run.seen = calloc((size_t)nprod * run.per_prod, 1);
	fd = shmring_create(&run.ring, slots, MSG_MAX);
	if (!run.seen || fd < 0) {
		fprintf(stderr, "setup: %s\n", strerror(fd < 0 ? -fd : ENOMEM));
		return 1;
	}
	t0 = now_s();
	for (k = 0; k < ncons; k++) {
		cons[k].run = &run;
		cons[k].id = k;
		shmring_clone(&cons[k].ring, &run.ring);
		pthread_create(&cons[k].th, NULL, consumer, &cons[k]);
	}
	for (k = 0; k < nprod; k++) {
		prod[k].run = &run;
		prod[k].id = k;
		shmring_clone(&prod[k].ring, &run.ring);
		pthread_create(&prod[k].th, NULL, producer, &prod[k]);
	}
	for (k = 0; k < nprod; k++)
		pthread_join(prod[k].th, NULL);
	shmring_shutdown(&run.ring);
	for (k = 0; k < ncons; k++)
		pthread_join(cons[k].th, NULL);

	for (i = 0; i < (unsigned long)nprod * run.per_prod; i++) {
		missing += run.seen[i] == 0;
		dup += run.seen[i] > 1;
	}
	printf("%s %u:%u slots %-3u %lu messages: received %lu, missing %lu, "
	       "duplicated %lu, bad %lu, eof %lu/%u, %.2f s\n",
	       missing || dup || run.bad || run.eof != ncons ? "FAIL" : "ok  ",
	       nprod, ncons, slots, (unsigned long)nprod * run.per_prod,
	       run.received, missing, dup, run.bad, run.eof, ncons,
	       now_s() - t0);
	shmring_unmap(&run.ring);
	close(fd);
	free(run.seen);
	return missing || dup || run.bad || run.eof != ncons;
}

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		printf("FAIL edge cases: %s (line %d)\n", #cond, __LINE__);	\
		return 1;						\
	}								\
} while (0)

/* Single-threaded: the errors, and a second mapping of the memfd. */
static int edge_cases(void)
{
	char big[MSG_MAX + 1], buf[MSG_MAX];
	struct shmring r, r2;
	int fd, i;

	fd = shmring_create(&r, 4, MSG_MAX);
	CHECK(fd >= 0);
	CHECK(shmring_map(&r2, fd) == 0);
	memset(big, 'b', sizeof(big));
	CHECK(shmring_send(&r, big, sizeof(big), 0) == -EMSGSIZE);
	CHECK(shmring_recv(&r, buf, sizeof(buf), 1) == -EAGAIN);
	CHECK(shmring_send(&r, "", 0, 0) == 0);
	for (i = 0; i < 4; i++)
		CHECK(shmring_send(&r, "abcdef", 6, 1) == 6);
	CHECK(shmring_send(&r, "g", 1, 1) == -EAGAIN);
	CHECK(shmring_recv(&r2, buf, 5, 1) == -EMSGSIZE);
	CHECK(shmring_recv(&r2, buf, 0, 1) == 0);
	CHECK(shmring_recv(&r2, buf, 6, 1) == 6);
	CHECK(!memcmp(buf, "abcdef", 6));
	CHECK(shmring_send(&r2, "g", 1, 1) == 1);
	shmring_shutdown(&r);
	CHECK(shmring_send(&r, "h", 1, 0) == -EPIPE);
	for (i = 0; i < 3; i++)
		CHECK(shmring_recv(&r, buf, sizeof(buf), 0) == 6);
	CHECK(shmring_recv(&r, buf, sizeof(buf), 0) == 1 && buf[0] == 'g');
	CHECK(shmring_recv(&r, buf, sizeof(buf), 0) == 0);
	CHECK(shmring_recv(&r2, buf, sizeof(buf), 1) == 0);
	shmring_unmap(&r2);
	shmring_unmap(&r);
	close(fd);
	printf("ok   edge cases\n");
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long total = argc > 1 ? strtoul(argv[1], NULL, 0) : 1000000;
	int fail = 0;

	fail |= edge_cases();
	fail |= run_one(1, 1, 4, total);
	fail |= run_one(1, 1, 256, total);
	fail |= run_one(2, 2, 4, total);
	fail |= run_one(2, 2, 256, total);
	printf("%s\n", fail ? "FAIL" : "PASS");
	return fail;
}
