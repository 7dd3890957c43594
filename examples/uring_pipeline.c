// SPDX-License-Identifier: MIT
/*
 * uring_pipeline: three io_uring stages joined by mpmc channels.
 *
 *   feeder --ch0--> stage 0 --ch1--> stage 1 --ch2--> stage 2 --ch3--> collector
 *
 * The feeder sends numbered messages of varying length into channel 0 with
 * mpmc_send_batch() and then shuts it down for writing. Each stage is a
 * thread with its own io_uring: it keeps --depth READs in flight on its
 * input channel (mpmc_prep_recv()), transforms each message it gets, and
 * sends it on with an io_uring WRITE (mpmc_prep_send()) into the next
 * channel, reusing the buffer for a new READ once the WRITE completes.
 * When its input reaches end of file and its writes are done, it shuts its
 * output down, so end of file flows down the pipeline. The collector
 * receives with mpmc_recv_batch() and checks every message: each sequence
 * number exactly once, the right length, the payload transformed by all
 * three stages in order.
 *
 * Exit status 0 when everything checks out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MPMC_WITH_LIBURING
#include <mpmc.h>

#define NSTAGES		3
#define MAX_MSG		1024
#define MAX_DEPTH	64
#define FEED_BATCH	16

/* Every message starts with this; the payload follows. */
struct hdr {
	uint32_t seq;
	uint32_t len;		/* whole message */
	uint32_t trail;		/* each stage k appends digit k + 1 */
};

struct stage {
	pthread_t thread;
	unsigned int id;
	int in, out;
	uint64_t msgs;
	uint64_t reads;		/* READs submitted */
	char err[160];
};

static unsigned int nmsgs = 20000, depth = 8, capacity = 64;
static int ch[NSTAGES + 1];
static struct stage stages[NSTAGES];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint32_t msg_len(uint32_t seq)
{
	return sizeof(struct hdr) + (seq * 37) % (MAX_MSG - sizeof(struct hdr) + 1);
}

static uint8_t orig_byte(uint32_t seq, size_t i)
{
	return (uint8_t)(seq * 13 + i * 7);
}

/* Stage @k's transformation of a payload, in place. */
static void transform(unsigned int k, uint8_t *p, size_t n)
{
	size_t i;
	uint8_t t;

	switch (k) {
	case 0:			/* add one */
		for (i = 0; i < n; i++)
			p[i]++;
		break;
	case 1:			/* reverse */
		for (i = 0; i < n / 2; i++) {
			t = p[i];
			p[i] = p[n - 1 - i];
			p[n - 1 - i] = t;
		}
		break;
	case 2:			/* scramble */
		for (i = 0; i < n; i++)
			p[i] ^= 0x5a;
		break;
	}
}

static void fill(char *buf, uint32_t seq)
{
	struct hdr *h = (struct hdr *)buf;
	size_t i;

	h->seq = seq;
	h->len = msg_len(seq);
	h->trail = 0;
	for (i = sizeof(*h); i < h->len; i++)
		buf[i] = orig_byte(seq, i);
}

/* --- a stage ------------------------------------------------------------ */

enum { SLOT_READ, SLOT_WRITE };

struct slot {
	int state;
	unsigned int len;
	char buf[MAX_MSG];
};

static void queue_read(struct io_uring *ring, struct stage *s, struct slot *sl,
		       unsigned int idx)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	/* The ring has room for every slot's one request. */
	mpmc_prep_recv(sqe, s->in, sl->buf, sizeof(sl->buf));
	io_uring_sqe_set_data64(sqe, idx);
	sl->state = SLOT_READ;
	s->reads++;
}

static void queue_write(struct io_uring *ring, struct stage *s, struct slot *sl,
			unsigned int idx)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	mpmc_prep_send(sqe, s->out, sl->buf, sl->len);
	io_uring_sqe_set_data64(sqe, idx);
	sl->state = SLOT_WRITE;
}

/* Check and transform one message that stage @s read; NULL if fine. */
static const char *process(struct stage *s, struct slot *sl, int res)
{
	struct hdr *h = (struct hdr *)sl->buf;

	if (res < (int)sizeof(*h) || h->len != (uint32_t)res ||
	    h->len != msg_len(h->seq))
		return "message with a wrong length";
	h->trail = h->trail * 10 + s->id + 1;
	transform(s->id, (uint8_t *)sl->buf + sizeof(*h), res - sizeof(*h));
	sl->len = res;
	return NULL;
}

static void *stage_main(void *arg)
{
	struct stage *s = arg;
	struct slot *slots = calloc(depth, sizeof(*slots));
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	unsigned int i, active = depth;
	const char *err;
	int ret;

	if (!slots) {
		snprintf(s->err, sizeof(s->err), "out of memory");
		return NULL;
	}
	ret = io_uring_queue_init(depth, &ring, 0);
	if (ret < 0) {
		snprintf(s->err, sizeof(s->err), "io_uring_queue_init: %s",
			 strerror(-ret));
		free(slots);
		return NULL;
	}
	for (i = 0; i < depth; i++)
		queue_read(&ring, s, &slots[i], i);

	while (active) {
		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0 && ret != -EINTR) {
			snprintf(s->err, sizeof(s->err), "io_uring_submit: %s",
				 strerror(-ret));
			break;
		}
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			struct slot *sl = &slots[cqe->user_data];
			int res = cqe->res;

			io_uring_cqe_seen(&ring, cqe);
			if (res < 0) {
				snprintf(s->err, sizeof(s->err), "%s: %s",
					 sl->state == SLOT_READ ? "READ" : "WRITE",
					 strerror(-res));
				goto out;
			}
			if (sl->state == SLOT_WRITE) {
				if ((unsigned int)res != sl->len) {
					snprintf(s->err, sizeof(s->err),
						 "short WRITE");
					goto out;
				}
				s->msgs++;
				queue_read(&ring, s, sl, cqe->user_data);
			} else if (res == 0) {
				active--;	/* end of file on this slot */
			} else {
				err = process(s, sl, res);
				if (err) {
					snprintf(s->err, sizeof(s->err), "%s", err);
					goto out;
				}
				queue_write(&ring, s, sl, cqe->user_data);
			}
		}
	}
out:
	/* Pass end of file (or the failure) down the pipeline. */
	mpmc_shutdown(s->out, MPMC_SHUT_WR);
	if (s->err[0])
		mpmc_shutdown(s->in, MPMC_SHUT_RD);
	io_uring_queue_exit(&ring);
	free(slots);
	return NULL;
}

/* --- feeder and collector ---------------------------------------------- */

static void *feeder(void *arg)
{
	static char bufs[FEED_BATCH][MAX_MSG];
	struct mpmc_msgvec v[FEED_BATCH];
	unsigned int seq = 0, n, k, off;
	int ret;

	(void)arg;
	while (seq < nmsgs) {
		n = nmsgs - seq < FEED_BATCH ? nmsgs - seq : FEED_BATCH;
		for (k = 0; k < n; k++) {
			fill(bufs[k], seq + k);
			mpmc_msgvec_set(&v[k], bufs[k], msg_len(seq + k));
		}
		/* Up to n messages per call; resend what did not fit. */
		for (off = 0; off < n; off += ret) {
			ret = mpmc_send_batch(ch[0], &v[off], n - off,
					      MPMC_TIMEOUT_INF);
			if (ret < 0) {
				fprintf(stderr, "feeder: %s\n", strerror(-ret));
				mpmc_shutdown(ch[0], MPMC_SHUT_WR);
				return NULL;
			}
		}
		seq += n;
	}
	mpmc_shutdown(ch[0], MPMC_SHUT_WR);
	return NULL;
}

/* What the collector must see for message @seq; NULL if @buf is it. */
static const char *verify(const char *buf, uint32_t len)
{
	const struct hdr *h = (const struct hdr *)buf;
	uint8_t want[MAX_MSG];
	size_t i, n;
	unsigned int k;

	if (len < sizeof(*h) || h->len != len || h->seq >= nmsgs ||
	    len != msg_len(h->seq))
		return "wrong length or sequence number";
	if (h->trail != 123)
		return "stages not applied once each, in order";
	n = len - sizeof(*h);
	for (i = 0; i < n; i++)
		want[i] = orig_byte(h->seq, i + sizeof(*h));
	for (k = 0; k < NSTAGES; k++)
		transform(k, want, n);
	if (memcmp(want, buf + sizeof(*h), n))
		return "payload not transformed as expected";
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: uring_pipeline [-n MESSAGES] [-d DEPTH] [-C CAPACITY]\n"
"  -n, --messages N   messages through the pipeline (default 20000)\n"
"  -d, --depth N      READs in flight per stage, 1..%d (default 8)\n"
"  -C, --capacity N   capacity of each channel (default 64)\n", MAX_DEPTH);
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "messages", required_argument, NULL, 'n' },
		{ "depth", required_argument, NULL, 'd' },
		{ "capacity", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int o;

	while ((o = getopt_long(argc, argv, "n:d:C:h", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			nmsgs = strtoul(optarg, NULL, 0);
			break;
		case 'd':
			depth = strtoul(optarg, NULL, 0);
			break;
		case 'C':
			capacity = strtoul(optarg, NULL, 0);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc || !nmsgs || !depth || depth > MAX_DEPTH ||
	    !capacity) {
		usage(stderr);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	static char bufs[FEED_BATCH][MAX_MSG];
	struct mpmc_msgvec v[FEED_BATCH];
	uint64_t received = 0, bad = 0, missing = 0, reordered = 0, t0, t1;
	uint32_t expect_next = 0;
	struct mpmc_config cfg;
	struct mpmc_stats st;
	pthread_t feed;
	uint8_t *seen;
	unsigned int k, i;
	const char *err;
	bool ok = true;
	double secs;
	int n;

	parse_args(argc, argv);
	seen = calloc(nmsgs, 1);
	if (!seen)
		return 1;
	mpmc_config_init(&cfg, capacity, MAX_MSG);
	for (k = 0; k <= NSTAGES; k++) {
		ch[k] = mpmc_open(&cfg, O_RDWR | O_CLOEXEC);
		if (ch[k] < 0) {
			fprintf(stderr, "mpmc_open: %s\n", strerror(-ch[k]));
			return 1;
		}
	}
	printf("uring_pipeline: %u messages of %zu..%d bytes: feeder -> %d io_uring "
	       "stages (READs in flight per stage: %u) -> collector; channel capacity %u\n",
	       nmsgs, sizeof(struct hdr), MAX_MSG, NSTAGES, depth, capacity);

	t0 = now_ns();
	for (k = 0; k < NSTAGES; k++) {
		stages[k].id = k;
		stages[k].in = ch[k];
		stages[k].out = ch[k + 1];
		if (pthread_create(&stages[k].thread, NULL, stage_main, &stages[k]))
			return 1;
	}
	if (pthread_create(&feed, NULL, feeder, NULL))
		return 1;

	for (;;) {
		for (i = 0; i < FEED_BATCH; i++)
			mpmc_msgvec_set(&v[i], bufs[i], MAX_MSG);
		n = mpmc_recv_batch(ch[NSTAGES], v, FEED_BATCH, MPMC_TIMEOUT_INF);
		if (n == 0)
			break;		/* end of file: the pipeline is done */
		if (n < 0) {
			fprintf(stderr, "collector: %s\n", strerror(-n));
			ok = false;
			break;
		}
		for (i = 0; i < (unsigned int)n; i++) {
			const struct hdr *h = (const struct hdr *)bufs[i];

			received++;
			err = verify(bufs[i], v[i].len);
			if (!err && seen[h->seq])
				err = "received twice";
			if (err) {
				if (!bad++)
					fprintf(stderr, "collector: message %u: %s\n",
						h->seq, err);
				continue;
			}
			seen[h->seq] = 1;
			reordered += h->seq != expect_next;
			expect_next = h->seq + 1;
		}
	}
	t1 = now_ns();
	pthread_join(feed, NULL);
	for (k = 0; k < NSTAGES; k++) {
		pthread_join(stages[k].thread, NULL);
		if (stages[k].err[0]) {
			fprintf(stderr, "stage %u: %s\n", k, stages[k].err);
			ok = false;
		}
	}
	for (i = 0; i < nmsgs; i++)
		missing += !seen[i];
	ok = ok && !bad && !missing && received == nmsgs;
	secs = (t1 - t0) / 1e9;

	printf("\n%-8s %10s %10s %10s %12s\n", "channel", "sent", "received",
	       "queued", "shutdown");
	for (k = 0; k <= NSTAGES; k++) {
		if (mpmc_get_stats(ch[k], &st) < 0)
			continue;
		printf("ch%-6u %10llu %10llu %10u %12s\n", k,
		       (unsigned long long)st.total_sent,
		       (unsigned long long)st.total_received, st.queued_msgs,
		       st.shutdown & MPMC_SHUT_WR ? "WR (EOF)" : "none");
		if (st.total_sent != nmsgs || st.total_received != nmsgs)
			ok = false;
	}
	printf("\n%-8s %10s %10s\n", "stage", "messages", "READs");
	for (k = 0; k < NSTAGES; k++)
		printf("%-8u %10llu %10llu\n", k,
		       (unsigned long long)stages[k].msgs,
		       (unsigned long long)stages[k].reads);
	printf("\nmessages %llu of %u received, %llu missing, %llu bad, "
	       "%llu out of order: %s\n", (unsigned long long)received, nmsgs,
	       (unsigned long long)missing, (unsigned long long)bad,
	       (unsigned long long)reordered, ok ? "verified" : "FAILED");
	printf("time     %.3f s, %.0f msg/s through 3 stages\n", secs,
	       received / secs);
	for (k = 0; k <= NSTAGES; k++)
		mpmc_close(ch[k]);
	free(seen);
	return ok ? 0 : 1;
}
