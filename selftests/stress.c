// SPDX-License-Identifier: GPL-2.0
/*
 * Exactly-once stress test of /dev/mpmc: several producer processes and
 * several consumer processes share one channel (producers hold SEND
 * endpoints, consumers RECV endpoints). Messages have random sizes and carry
 * their producer, a per-producer sequence number, their length and a
 * checksum; the payload is derived from (producer, seq) so consumers verify
 * every byte. Consumers record each (producer, seq) in shared memory. When
 * the producers are done they close their endpoints, which must give the
 * consumers EOF. Then every message must have been received exactly once,
 * and each consumer must have seen each producer's messages in increasing
 * sequence order (FIFO per producer). Run for capacities 1, 16 and 1024.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

#define MAX_PROCS	16
#define HDR_SIZE	8
#define MAX_SIZE	2048
#define DEADLINE_MS	25000	/* below the harness's 30 s per test */

/*
 * The 8-byte header: id = producer << 24 | seq, the message length, and a
 * 16-bit checksum (FNV-1a folded) of the whole message with csum = 0.
 */
struct msg_hdr {
	uint32_t id;
	uint16_t len;
	uint16_t csum;
};

/* Shared between the parent and every child (MAP_SHARED). */
struct shared {
	int ready;
	int go;
	int errors;
	char err[256];
	long received[MAX_PROCS];
	unsigned char seen[];	/* [producer * msgs + seq]: times received */
};

static uint32_t xorshift32(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

/* The payload of message @id: a byte stream seeded by the id alone. */
static void fill_payload(unsigned char *p, size_t n, uint32_t id)
{
	uint32_t s = id * 2654435761u + 0x9e3779b9u;
	size_t i;

	if (!s)
		s = 1;
	for (i = 0; i < n; i++)
		p[i] = (unsigned char)xorshift32(&s);
}

static uint16_t checksum(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return (uint16_t)(h ^ (h >> 16));
}

static void build_msg(unsigned char *buf, uint32_t id, uint16_t len)
{
	struct msg_hdr h = { .id = id, .len = len, .csum = 0 };

	memcpy(buf, &h, sizeof(h));
	fill_payload(buf + HDR_SIZE, len - HDR_SIZE, id);
	h.csum = checksum(buf, len);
	memcpy(buf, &h, sizeof(h));
}

static void report(struct shared *sh, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Record the first error (others only count) for the parent to print. */
static void report(struct shared *sh, const char *fmt, ...)
{
	va_list ap;

	if (__atomic_fetch_add(&sh->errors, 1, __ATOMIC_SEQ_CST) == 0) {
		va_start(ap, fmt);
		vsnprintf(sh->err, sizeof(sh->err), fmt, ap);
		va_end(ap);
	}
}

/* Child set-up: die with the test, take an endpoint, wait for "go". */
static int child_start(struct shared *sh, int fd, __u32 role)
{
	struct mpmc_endpoint ep = { .roles = role };
	long long end = now_ms() + DEADLINE_MS;
	int efd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(DEADLINE_MS / 1000 + 5);
	efd = ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &ep);
	if (efd < 0) {
		report(sh, "NEW_ENDPOINT(%u): %s", role, strerror(errno));
		_exit(1);
	}
	close(fd);
	__atomic_fetch_add(&sh->ready, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&sh->go, __ATOMIC_SEQ_CST)) {
		if (now_ms() > end)
			_exit(2);
		usleep(1000);
	}
	return efd;
}

static __attribute__((noreturn, noinline)) void
producer(struct shared *sh, int fd, int p, int msgs, int maxlen)
{
	unsigned char buf[MAX_SIZE];
	uint32_t rnd = 0x12345u + 7919u * (p + 1);
	uint16_t len;
	ssize_t n;
	int tx, seq;

	tx = child_start(sh, fd, MPMC_ROLE_SEND);
	for (seq = 0; seq < msgs; seq++) {
		len = HDR_SIZE + xorshift32(&rnd) % (maxlen - HDR_SIZE + 1);
		build_msg(buf, (uint32_t)p << 24 | seq, len);
		n = write(tx, buf, len);
		if (n != len) {
			report(sh, "producer %d seq %d: write(%u) = %zd (%s)",
			       p, seq, len, n, n < 0 ? strerror(errno) : "short");
			_exit(3);
		}
	}
	/* Closing the last SEND endpoint is what ends the consumers. */
	close(tx);
	_exit(0);
}

static __attribute__((noreturn, noinline)) void
consumer(struct shared *sh, int fd, int c, int nprod, int msgs,
	 int maxlen)
{
	unsigned char buf[MAX_SIZE], want[MAX_SIZE];
	int last[MAX_PROCS];
	struct msg_hdr h;
	uint16_t sum;
	uint32_t p, seq;
	ssize_t n;
	int rx, i;

	for (i = 0; i < MAX_PROCS; i++)
		last[i] = -1;
	rx = child_start(sh, fd, MPMC_ROLE_RECV);
	for (;;) {
		n = read(rx, buf, maxlen);
		if (n == 0)
			break;
		if (n < 0) {
			report(sh, "consumer %d: read: %s", c, strerror(errno));
			_exit(3);
		}
		if (n < HDR_SIZE || n > maxlen) {
			report(sh, "consumer %d: message of %zd bytes", c, n);
			_exit(4);
		}
		memcpy(&h, buf, sizeof(h));
		p = h.id >> 24;
		seq = h.id & 0xffffff;
		if (h.len != n) {
			report(sh, "consumer %d: header says %u bytes, read %zd",
			       c, h.len, n);
			_exit(5);
		}
		sum = h.csum;
		h.csum = 0;
		memcpy(buf, &h, sizeof(h));
		if (checksum(buf, n) != sum) {
			report(sh, "consumer %d: bad checksum (id %#x, %zd bytes)",
			       c, h.id, n);
			_exit(6);
		}
		if (p >= (uint32_t)nprod || seq >= (uint32_t)msgs) {
			report(sh, "consumer %d: bad id %#x", c, h.id);
			_exit(7);
		}
		fill_payload(want, n - HDR_SIZE, h.id);
		if (memcmp(buf + HDR_SIZE, want, n - HDR_SIZE)) {
			report(sh, "consumer %d: corrupt payload (producer %u seq %u)",
			       c, p, seq);
			_exit(8);
		}
		if ((int)seq <= last[p]) {
			report(sh, "consumer %d: producer %u seq %u after seq %d",
			       c, p, seq, last[p]);
			_exit(9);
		}
		last[p] = seq;
		__atomic_fetch_add(&sh->seen[p * msgs + seq], 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&sh->received[c], 1, __ATOMIC_RELAXED);
	}
	close(rx);
	_exit(0);
}

FIXTURE(stress) {
	struct shared *sh;
	size_t sh_size;
	pid_t pids[2 * MAX_PROCS];
	int npids;
};

FIXTURE_VARIANT(stress) {
	unsigned int capacity;
	int nprod;
	int ncons;
	int msgs;	/* per producer */
};

FIXTURE_VARIANT_ADD(stress, cap1) {
	.capacity = 1, .nprod = 4, .ncons = 4, .msgs = 3000,
};

FIXTURE_VARIANT_ADD(stress, cap16) {
	.capacity = 16, .nprod = 4, .ncons = 4, .msgs = 3000,
};

FIXTURE_VARIANT_ADD(stress, cap1024) {
	.capacity = 1024, .nprod = 4, .ncons = 4, .msgs = 3000,
};

FIXTURE_SETUP(stress)
{
	self->sh_size = sizeof(struct shared) +
			(size_t)variant->nprod * variant->msgs;
	self->sh = mmap(NULL, self->sh_size, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
	self->npids = 0;
}

FIXTURE_TEARDOWN(stress)
{
	int i;

	for (i = 0; i < self->npids; i++) {
		kill(self->pids[i], SIGKILL);
		waitpid(self->pids[i], NULL, 0);
	}
	if (self->sh && self->sh != MAP_FAILED)
		munmap(self->sh, self->sh_size);
}

TEST_F(stress, exactly_once)
{
	unsigned long long max_cap, max_msg, max_bytes;
	long total = (long)variant->nprod * variant->msgs;
	long missing = 0, dup = 0, sum = 0, i;
	struct mpmc_endpoint mon_ep = {
		.roles = MPMC_ROLE_RECV, .flags = O_CLOEXEC,
	};
	struct shared *sh = self->sh;
	struct mpmc_stats st;
	long long start, end, ms;
	char per[256];
	int fd, mon, maxlen, status, left, k;
	pid_t pid;

	ASSERT_GE(MAX_PROCS, variant->nprod);
	ASSERT_GE(MAX_PROCS, variant->ncons);
	ASSERT_GT(1 << 24, variant->msgs);

	max_cap = mpmc_test_param("max_capacity");
	max_msg = mpmc_test_param("max_msg_size");
	max_bytes = mpmc_test_param("max_channel_bytes");
	ASSERT_NE(0, max_cap);
	ASSERT_NE(0, max_msg);
	ASSERT_NE(0, max_bytes);
	if (variant->capacity > max_cap)
		SKIP(return, "capacity %u over max_capacity %llu",
		     variant->capacity, max_cap);
	maxlen = MAX_SIZE;
	if ((unsigned long long)maxlen > max_msg)
		maxlen = max_msg;
	if ((unsigned long long)maxlen * variant->capacity > max_bytes)
		maxlen = max_bytes / variant->capacity;
	if (maxlen < 2 * HDR_SIZE)
		SKIP(return, "module limits leave messages of %d bytes", maxlen);

	fd = mpmc_test_open_cfg(variant->capacity, maxlen);
	ASSERT_LE(0, fd);

	for (k = 0; k < variant->ncons + variant->nprod; k++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			if (k < variant->ncons)
				consumer(sh, fd, k, variant->nprod, variant->msgs,
					 maxlen);
			else
				producer(sh, fd, k - variant->ncons,
					 variant->msgs, maxlen);
		}
		self->pids[self->npids++] = pid;
	}

	/* Every child holds its own endpoint; then drop the parent's file. */
	end = now_ms() + DEADLINE_MS;
	while (__atomic_load_n(&sh->ready, __ATOMIC_SEQ_CST) <
	       variant->nprod + variant->ncons && now_ms() < end &&
	       !__atomic_load_n(&sh->errors, __ATOMIC_SEQ_CST))
		usleep(1000);
	ASSERT_EQ(0, sh->errors) {
		TH_LOG("%s", sh->err);
	}
	ASSERT_EQ(variant->nprod + variant->ncons, sh->ready);
	/* A monitor that never reads, to look at the stats after. */
	mon = ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &mon_ep);
	ASSERT_LE(0, mon);
	close(fd);
	MPMC_STATS(mon, &st);
	EXPECT_FILES(st, variant->nprod, variant->ncons + 1);

	start = now_ms();
	__atomic_store_n(&sh->go, 1, __ATOMIC_SEQ_CST);

	end = start + DEADLINE_MS;
	left = self->npids;
	while (left > 0) {
		pid = waitpid(-1, &status, WNOHANG);
		ASSERT_LE(0, pid);
		if (pid == 0) {
			/* A failed child may leave the others stuck: stop. */
			if (now_ms() > end ||
			    __atomic_load_n(&sh->errors, __ATOMIC_SEQ_CST))
				break;
			usleep(2000);
			continue;
		}
		for (k = 0; k < self->npids; k++) {
			if (self->pids[k] != pid)
				continue;
			self->pids[k] = self->pids[--self->npids];
			left--;
			EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) {
				TH_LOG("child %d ended with status %#x", pid, status);
			}
			break;
		}
	}
	ms = now_ms() - start;
	ASSERT_EQ(0, sh->errors) {
		TH_LOG("%d errors, first: %s", sh->errors, sh->err);
	}
	MPMC_STATS(mon, &st);
	ASSERT_EQ(0, left) {
		TH_LOG("%d children still running after %lld ms (queued %u, sent %llu, received %llu, blocked s/r %u/%u, shutdown %u)",
		       left, ms, st.queued_msgs,
		       (unsigned long long)st.total_sent,
		       (unsigned long long)st.total_received,
		       st.blocked_senders, st.blocked_receivers, st.shutdown);
	}

	for (i = 0; i < total; i++) {
		if (sh->seen[i] == 0)
			missing++;
		else if (sh->seen[i] > 1)
			dup++;
	}
	for (k = 0; k < variant->ncons; k++)
		sum += sh->received[k];
	EXPECT_EQ(0, missing);
	EXPECT_EQ(0, dup);
	EXPECT_EQ(total, sum);

	/* Every sender is gone: SHUT_WR only (the monitor still receives). */
	EXPECT_FILES(st, 0, 1);
	EXPECT_EQ(MPMC_SHUT_WR, st.shutdown);
	EXPECT_EQ(0, st.queued_msgs);
	EXPECT_EQ(0, st.queued_bytes);
	EXPECT_EQ(0, st.blocked_senders);
	EXPECT_EQ(0, st.blocked_receivers);
	EXPECT_EQ(total, (long)st.total_sent);
	EXPECT_EQ(total, (long)st.total_received);
	close(mon);

	per[0] = '\0';
	for (k = 0; k < variant->ncons; k++)
		snprintf(per + strlen(per), sizeof(per) - strlen(per), " %ld",
			 sh->received[k]);
	ksft_print_msg("capacity %u, msg 8..%d bytes: %d producers x %d msgs, %d consumers: %ld messages verified exactly once in %lld ms (per consumer:%s)\n",
		       variant->capacity, maxlen, variant->nprod, variant->msgs,
		       variant->ncons, sum, ms, per);
	/* The harness ends the test with _exit(): flush a piped stdout. */
	fflush(stdout);
}

TEST_HARNESS_MAIN
