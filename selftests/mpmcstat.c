// SPDX-License-Identifier: GPL-2.0
/*
 * mpmcstat(8), run as an operator would, against channels this program
 * sets up:
 *  - holders: channels held by several processes, with endpoints, are
 *    found with every holder (pid, comm, fd, roles, O_NONBLOCK), and every
 *    count equals MPMC_IOC_GET_STATS, in --json and in the table (-o);
 *  - filters and bad input: -p, -c, and clear errors for bad arguments;
 *  - live mode: the rates of a paced load (200 messages/s) are within 10%,
 *    and the fullest channel comes first;
 *  - --latency: a paced 1:1 load whose consumer sleeps 24 ms per message
 *    has its p50 in the log2 bucket that holds 24 ms, and the tracefs
 *    instance is gone afterwards, also after SIGINT;
 *  - processes that exit while being scanned do not break the scan;
 *  - unprivileged: mpmcstat as nobody sees its own channel and reports the
 *    processes it cannot read (EACCES).
 * The binary is bin/mpmcstat next to this program (the selftests Makefile
 * copies it there), or $MPMCSTAT.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

/* ---- a small JSON reader ---------------------------------------------- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
	enum jtype t;
	double num;
	bool b;
	char *str;		/* J_STR */
	struct jval *kid;	/* J_ARR, J_OBJ: n children */
	char **key;		/* J_OBJ: n keys */
	int n;
};

static const char *jskip(const char *p)
{
	while (*p && isspace((unsigned char)*p))
		p++;
	return p;
}

static const char *jparse(const char *p, struct jval *v);

static const char *jstring(const char *p, char **out)
{
	size_t cap = 16, n = 0;
	char *s = malloc(cap);

	if (!s || *p != '"')
		return free(s), NULL;
	for (p++; *p && *p != '"'; p++) {
		char c = *p;

		if (c == '\\') {
			p++;
			if (*p == 'u') {
				unsigned int u;

				if (sscanf(p + 1, "%4x", &u) != 1)
					return free(s), NULL;
				c = u < 0x80 ? (char)u : '?';
				p += 4;
			} else if (*p == 'n') {
				c = '\n';
			} else if (*p == '"' || *p == '\\' || *p == '/') {
				c = *p;
			} else {
				return free(s), NULL;
			}
		} else if ((unsigned char)c < 0x20) {
			return free(s), NULL;
		}
		if (n + 2 > cap) {
			char *m = realloc(s, cap *= 2);

			if (!m)
				return free(s), NULL;
			s = m;
		}
		s[n++] = c;
	}
	if (*p != '"')
		return free(s), NULL;
	s[n] = '\0';
	*out = s;
	return p + 1;
}

static const char *jlist(const char *p, struct jval *v, bool obj)
{
	char close = obj ? '}' : ']';

	v->t = obj ? J_OBJ : J_ARR;
	p = jskip(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		struct jval *k = realloc(v->kid, (v->n + 1) * sizeof(*k));
		char **keys = realloc(v->key, (v->n + 1) * sizeof(*keys));

		if (!k || !keys)
			return NULL;
		v->kid = k;
		v->key = keys;
		memset(&v->kid[v->n], 0, sizeof(*k));
		v->key[v->n] = NULL;
		if (obj) {
			p = jstring(jskip(p), &v->key[v->n]);
			if (!p)
				return NULL;
			p = jskip(p);
			if (*p++ != ':')
				return NULL;
		}
		p = jparse(p, &v->kid[v->n++]);
		if (!p)
			return NULL;
		p = jskip(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *jparse(const char *p, struct jval *v)
{
	char *end;

	memset(v, 0, sizeof(*v));
	p = jskip(p);
	if (*p == '{' || *p == '[')
		return jlist(p, v, *p == '{');
	if (*p == '"') {
		v->t = J_STR;
		return jstring(p, &v->str);
	}
	if (!strncmp(p, "true", 4) || !strncmp(p, "false", 5)) {
		v->t = J_BOOL;
		v->b = *p == 't';
		return p + (v->b ? 4 : 5);
	}
	if (!strncmp(p, "null", 4))
		return p + 4;
	v->t = J_NUM;
	v->num = strtod(p, &end);
	return end == p ? NULL : end;
}

static void jfree(struct jval *v)
{
	int i;

	for (i = 0; i < v->n; i++) {
		jfree(&v->kid[i]);
		if (v->key)
			free(v->key[i]);
	}
	free(v->kid);
	free(v->key);
	free(v->str);
	memset(v, 0, sizeof(*v));
}

/* A whole document: NULL on a syntax error or trailing garbage. */
static bool jdoc(const char *text, struct jval *v)
{
	const char *p = jparse(text, v);

	if (!p || *jskip(p)) {
		jfree(v);
		return false;
	}
	return true;
}

static struct jval *jget(struct jval *o, const char *key)
{
	int i;

	if (!o || o->t != J_OBJ)
		return NULL;
	for (i = 0; i < o->n; i++)
		if (!strcmp(o->key[i], key))
			return &o->kid[i];
	return NULL;
}

/* A number member, or -1 if missing. */
static double jnum(struct jval *o, const char *key)
{
	struct jval *v = jget(o, key);

	return v && v->t == J_NUM ? v->num : -1;
}

/* The element of array @a whose member "id" is @id. */
static struct jval *jby_id(struct jval *a, unsigned long long id)
{
	int i;

	if (!a || a->t != J_ARR)
		return NULL;
	for (i = 0; i < a->n; i++)
		if (jnum(&a->kid[i], "id") == (double)id)
			return &a->kid[i];
	return NULL;
}

/* ---- running mpmcstat ------------------------------------------------- */

static const char *stat_bin(void)
{
	static char path[512];
	char self[400];
	ssize_t n;

	if (getenv("MPMCSTAT"))
		return getenv("MPMCSTAT");
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return "mpmcstat";
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(path, sizeof(path), "%s/bin/mpmcstat", self);
	return path;
}

#define OUT_MAX	(1 << 20)

struct run {
	char *out;		/* stdout, NUL-terminated */
	char err[8192];		/* stderr */
	int status;		/* exit status, or 128 + signal */
};

static void slurp(int fd, char *buf, size_t size)
{
	size_t have = 0;
	ssize_t n;

	while (have < size - 1 && (n = read(fd, buf + have, size - 1 - have)) > 0)
		have += n;
	buf[have] = '\0';
}

static pid_t spawn(char *const argv[], int *outfd, int *errfd)
{
	int o[2], e[2];
	pid_t pid;

	if (pipe2(o, O_CLOEXEC) || pipe2(e, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		dup2(o[1], 1);
		dup2(e[1], 2);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(o[1]);
	close(e[1]);
	*outfd = o[0];
	*errfd = e[0];
	return pid;
}

static int reap(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run mpmcstat with the NULL-terminated arguments after @r. */
static int run_stat(struct run *r, ...)
{
	char *argv[32];
	int outfd, errfd, n = 1;
	va_list ap;
	pid_t pid;

	argv[0] = (char *)stat_bin();
	va_start(ap, r);
	while (n < 31 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	if (!r->out)
		r->out = malloc(OUT_MAX);
	if (!r->out)
		return -1;
	pid = spawn(argv, &outfd, &errfd);
	if (pid < 0)
		return -1;
	slurp(outfd, r->out, OUT_MAX);
	slurp(errfd, r->err, sizeof(r->err));
	close(outfd);
	close(errfd);
	r->status = reap(pid);
	return r->status;
}

/* ---- helpers ---------------------------------------------------------- */

static unsigned long long chan_id(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	return scan_file(path, "id:\t%lld", 0);
}

/* A child that sets its comm, runs @fn, then waits to be killed. */
static pid_t child(const char *comm, void (*fn)(void *), void *arg,
		   int ready[2])
{
	pid_t pid = fork();

	if (pid)
		return pid;
	prctl(PR_SET_NAME, comm);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (fn)
		fn(arg);
	if (write(ready[1], "x", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static int wait_ready(int ready[2])
{
	char c;

	return read(ready[0], &c, 1) == 1 ? 0 : -1;
}

/* The stats fields of @c equal @st. */
static void expect_stats(struct __test_metadata *_metadata, struct jval *c,
			 const struct mpmc_stats *st, __u32 flags)
{
	ASSERT_NE(NULL, c);
	EXPECT_EQ(st->capacity, jnum(c, "capacity"));
	EXPECT_EQ(st->max_msg_size, jnum(c, "max_msg_size"));
	EXPECT_EQ(st->queued_msgs, jnum(c, "queued_msgs"));
	EXPECT_EQ(st->queued_bytes, jnum(c, "queued_bytes"));
	EXPECT_EQ(st->send_files, jnum(c, "send_files"));
	EXPECT_EQ(st->recv_files, jnum(c, "recv_files"));
	EXPECT_EQ(st->blocked_senders, jnum(c, "blocked_senders"));
	EXPECT_EQ(st->blocked_receivers, jnum(c, "blocked_receivers"));
	EXPECT_EQ(st->shutdown, jnum(c, "shutdown"));
	EXPECT_EQ(st->total_sent, jnum(c, "total_sent"));
	EXPECT_EQ(st->total_received, jnum(c, "total_received"));
	EXPECT_EQ(st->total_dropped, jnum(c, "total_dropped"));
	EXPECT_EQ(flags, jnum(c, "config_flags"));
}

struct want_holder {
	int pid, fd;
	const char *roles;
	bool nonblock;
	const char *comm;
};

/* The holders of @c are exactly @w[0..@n), in any order. */
static void expect_holders(struct __test_metadata *_metadata, struct jval *c,
			   const struct want_holder *w, int n)
{
	struct jval *h = jget(c, "holders");
	int i, j, found;

	ASSERT_NE(NULL, h);
	ASSERT_EQ(J_ARR, h->t);
	EXPECT_EQ(n, h->n);
	for (i = 0; i < n; i++) {
		found = 0;
		for (j = 0; j < h->n; j++) {
			struct jval *x = &h->kid[j];
			struct jval *roles = jget(x, "roles");
			struct jval *nb = jget(x, "nonblock");
			struct jval *comm = jget(x, "comm");

			if (jnum(x, "pid") != w[i].pid ||
			    jnum(x, "fd") != w[i].fd)
				continue;
			found++;
			ASSERT_NE(NULL, roles);
			EXPECT_STREQ(w[i].roles, roles->str);
			ASSERT_NE(NULL, nb);
			EXPECT_EQ(w[i].nonblock, nb->b);
			ASSERT_NE(NULL, comm);
			EXPECT_STREQ(w[i].comm, comm->str);
		}
		EXPECT_EQ(1, found)
			TH_LOG("holder pid %d fd %d", w[i].pid, w[i].fd);
	}
}

/* ---- holders, roles, stats -------------------------------------------- */

/* A fixture only for the timeouts: the guest is emulated, maybe KASAN's. */
FIXTURE(stat) {
	int unused;
};

FIXTURE_SETUP(stat)
{
}

FIXTURE_TEARDOWN(stat)
{
}

#define STAT_TIMEOUT	180

struct setup {
	int a, eps, epr, b;
	unsigned long long ida, idb;
	pid_t c1, c2;
	int ready[2];
};

static void c1_fn(void *arg)
{
	struct setup *s = arg;

	close(s->b);
	close(s->epr);
}

static void c2_fn(void *arg)
{
	struct setup *s = arg;
	char buf[64];

	close(s->a);
	close(s->eps);
	close(s->epr);
	if (write(s->ready[1], "x", 1) != 1)
		_exit(1);
	/* Blocks: a blocked receiver of B. */
	if (read(s->b, buf, sizeof(buf)) < 0)
		_exit(1);
	_exit(0);
}

static void setup_two(struct __test_metadata *_metadata, struct setup *s)
{
	struct mpmc_config cfg;
	char msg[64] = "";

	memset(s, 0, sizeof(*s));
	ASSERT_EQ(0, pipe(s->ready));
	s->a = mpmc_test_open_cfg(8, 256);
	ASSERT_LE(0, s->a);
	ASSERT_EQ(0, ioctl(s->a, MPMC_IOC_GET_CONFIG, &cfg));
	cfg.flags = MPMC_CONFIG_THROUGHPUT;
	ASSERT_EQ(0, ioctl(s->a, MPMC_IOC_SET_CONFIG, &cfg));
	ASSERT_EQ(10, write(s->a, msg, 10));
	ASSERT_EQ(20, write(s->a, msg, 20));
	ASSERT_EQ(30, write(s->a, msg, 30));
	ASSERT_EQ(10, read(s->a, msg, sizeof(msg)));
	s->eps = new_ep(s->a, MPMC_ROLE_SEND, O_NONBLOCK);
	ASSERT_LE(0, s->eps);
	s->epr = new_ep(s->a, MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, s->epr);
	s->b = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, s->b);
	s->ida = chan_id(s->a);
	s->idb = chan_id(s->b);
	ASSERT_NE(0, s->ida);
	ASSERT_NE(0, s->idb);

	s->c1 = child("mpmcst-one", c1_fn, s, s->ready);
	ASSERT_LT(0, s->c1);
	ASSERT_EQ(0, wait_ready(s->ready));
	s->c2 = child("mpmcst-two", c2_fn, s, s->ready);
	ASSERT_LT(0, s->c2);
	ASSERT_EQ(0, wait_ready(s->ready));
	ASSERT_EQ(0, wait_blocked(s->b, true, 1));
}

static void teardown_two(struct setup *s)
{
	if (s->c1 > 0)
		kill(s->c1, SIGKILL), waitpid(s->c1, NULL, 0);
	if (s->c2 > 0)
		kill(s->c2, SIGKILL), waitpid(s->c2, NULL, 0);
	close(s->a);
	close(s->eps);
	close(s->epr);
	close(s->b);
	close(s->ready[0]);
	close(s->ready[1]);
}

TEST_F_TIMEOUT(stat, holders_roles_and_stats, STAT_TIMEOUT)
{
	struct run r = { 0 };
	struct setup s;
	struct jval doc, *chans, *ca, *cb;
	struct mpmc_stats sa, sb;
	char ids[64], comm[16], self_comm[32];
	int me = getpid();

	setup_two(_metadata, &s);
	snprintf(ids, sizeof(ids), "%llu,%llu", s.ida, s.idb);
	ASSERT_EQ(0, run_stat(&r, "--json", "-c", ids, NULL))
		TH_LOG("%s", r.err);
	sa = stats_of(s.a);
	sb = stats_of(s.b);
	ASSERT_TRUE(jdoc(r.out, &doc)) TH_LOG("not JSON: %s", r.out);
	chans = jget(&doc, "channels");
	ASSERT_NE(NULL, chans);
	EXPECT_EQ(2, chans->n);
	ca = jby_id(chans, s.ida);
	cb = jby_id(chans, s.idb);
	ASSERT_NE(NULL, ca) TH_LOG("%s", r.out);
	ASSERT_NE(NULL, cb) TH_LOG("%s", r.out);
	expect_stats(_metadata, ca, &sa, MPMC_CONFIG_THROUGHPUT);
	expect_stats(_metadata, cb, &sb, 0);
	/* What the channels went through, as GET_STATS says it too. */
	EXPECT_EQ(2U, sa.queued_msgs);
	EXPECT_EQ(50U, sa.queued_bytes);
	EXPECT_EQ(3U, sa.total_sent);
	EXPECT_EQ(1U, sa.total_received);
	EXPECT_EQ(1U, sb.blocked_receivers);

	ASSERT_EQ(0, prctl(PR_GET_NAME, comm));
	snprintf(self_comm, sizeof(self_comm), "%s", comm);
	{
		const struct want_holder wa[] = {
			{ me, s.a, "rw", false, self_comm },
			{ me, s.eps, "w", true, self_comm },
			{ me, s.epr, "r", false, self_comm },
			{ s.c1, s.a, "rw", false, "mpmcst-one" },
			{ s.c1, s.eps, "w", true, "mpmcst-one" },
		};
		const struct want_holder wb[] = {
			{ me, s.b, "rw", false, self_comm },
			{ s.c2, s.b, "rw", false, "mpmcst-two" },
		};

		expect_holders(_metadata, ca, wa, ARRAY_SIZE(wa));
		expect_holders(_metadata, cb, wb, ARRAY_SIZE(wb));
	}
	jfree(&doc);

	/* The table, with chosen columns and no header: the same counts. */
	snprintf(ids, sizeof(ids), "%llu", s.ida);
	ASSERT_EQ(0, run_stat(&r, "-H", "-c", ids, "-o",
			      "id,cap,maxsize,flags,queued,bytes,sendf,recvf,bsend,brecv,shut,sent,recvd,dropped",
			      NULL)) TH_LOG("%s", r.err);
	{
		char want[256];

		snprintf(want, sizeof(want), "%llu %u %u %s %u %llu %u %u %u %u %s %llu %llu %llu",
			 s.ida, sa.capacity, sa.max_msg_size, "tp",
			 sa.queued_msgs, (unsigned long long)sa.queued_bytes,
			 sa.send_files, sa.recv_files, sa.blocked_senders,
			 sa.blocked_receivers, "open",
			 (unsigned long long)sa.total_sent,
			 (unsigned long long)sa.total_received,
			 (unsigned long long)sa.total_dropped);
		/* Squeeze the padding out of the one line. */
		{
			char got[512], *p = r.out, *q = got;

			while (*p == ' ')
				p++;
			for (; *p && *p != '\n' && q < got + sizeof(got) - 1; p++)
				if (*p != ' ' || (q > got && q[-1] != ' '))
					*q++ = *p;
			*q = '\0';
			EXPECT_STREQ(want, got);
		}
		EXPECT_EQ(NULL, strchr(strchr(r.out, '\n') + 1, '\n'))
			TH_LOG("more than one line: %s", r.out);
	}
	free(r.out);
	teardown_two(&s);
}

TEST_F_TIMEOUT(stat, filters_and_bad_input, STAT_TIMEOUT)
{
	struct run r = { 0 };
	struct setup s;
	struct jval doc, *chans;
	char arg[64];

	setup_two(_metadata, &s);
	/* -p: the channels a process holds, with all their holders. */
	snprintf(arg, sizeof(arg), "%d", s.c1);
	ASSERT_EQ(0, run_stat(&r, "--json", "-p", arg, NULL)) TH_LOG("%s", r.err);
	ASSERT_TRUE(jdoc(r.out, &doc)) TH_LOG("%s", r.out);
	chans = jget(&doc, "channels");
	ASSERT_NE(NULL, chans);
	ASSERT_EQ(1, chans->n) TH_LOG("%s", r.out);
	EXPECT_EQ(s.ida, jnum(&chans->kid[0], "id"));
	EXPECT_EQ(5, jget(&chans->kid[0], "holders")->n);
	jfree(&doc);
	snprintf(arg, sizeof(arg), "%d,%d", s.c2, 1);
	ASSERT_EQ(0, run_stat(&r, "--json", "-p", arg, NULL));
	ASSERT_TRUE(jdoc(r.out, &doc));
	chans = jget(&doc, "channels");
	ASSERT_EQ(1, chans->n) TH_LOG("%s", r.out);
	EXPECT_EQ(s.idb, jnum(&chans->kid[0], "id"));
	jfree(&doc);
	/* -c with an id nobody holds: nothing, and no error. */
	ASSERT_EQ(0, run_stat(&r, "--json", "-c", "999999999", NULL));
	ASSERT_TRUE(jdoc(r.out, &doc));
	EXPECT_EQ(0, jget(&doc, "channels")->n);
	jfree(&doc);

	/* Bad input: a non-zero exit and a message naming the problem. */
	EXPECT_NE(0, run_stat(&r, "-p", "abc", NULL));
	EXPECT_NE(NULL, strstr(r.err, "bad pid 'abc'")) TH_LOG("%s", r.err);
	EXPECT_NE(0, run_stat(&r, "-o", "id,nosuch", NULL));
	EXPECT_NE(NULL, strstr(r.err, "unknown column 'nosuch'")) TH_LOG("%s", r.err);
	EXPECT_NE(0, run_stat(&r, "-i", "0", NULL));
	EXPECT_NE(NULL, strstr(r.err, "bad -i '0'")) TH_LOG("%s", r.err);
	EXPECT_NE(0, run_stat(&r, "-i", "1", "-n", "-3", NULL));
	EXPECT_NE(NULL, strstr(r.err, "bad -n '-3'")) TH_LOG("%s", r.err);
	EXPECT_NE(0, run_stat(&r, "-n", "3", NULL));
	EXPECT_NE(NULL, strstr(r.err, "-n is for live mode")) TH_LOG("%s", r.err);
	EXPECT_NE(0, run_stat(&r, "--latency", "-i", "1", NULL));
	EXPECT_NE(0, run_stat(&r, "extra", NULL));
	EXPECT_NE(NULL, strstr(r.err, "unexpected argument 'extra'")) TH_LOG("%s", r.err);
	free(r.out);
	teardown_two(&s);
}

/* ---- live mode -------------------------------------------------------- */

#define RATE		200	/* messages per second */
#define LIVE_REPORTS	3

struct paced {
	int fd;
	atomic_bool stop;
	atomic_int errors;
};

static void *paced_sender(void *arg)
{
	struct paced *p = arg;
	struct timespec t;
	char msg[16] = "tick";

	clock_gettime(CLOCK_MONOTONIC, &t);
	while (!atomic_load(&p->stop)) {
		t.tv_nsec += 1000000000L / RATE;
		if (t.tv_nsec >= 1000000000L) {
			t.tv_nsec -= 1000000000L;
			t.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
		if (write(p->fd, msg, sizeof(msg)) != sizeof(msg))
			atomic_fetch_add(&p->errors, 1);
	}
	return NULL;
}

static void *drainer(void *arg)
{
	struct paced *p = arg;
	char buf[64];
	ssize_t n;

	while ((n = read(p->fd, buf, sizeof(buf))) > 0)
		;
	if (n < 0)
		atomic_fetch_add(&p->errors, 1);
	return NULL;
}

TEST_F_TIMEOUT(stat, live_rates_and_order, STAT_TIMEOUT)
{
	struct paced p = { 0 };
	pthread_t snd, rcv;
	struct run r = { 0 };
	int full, half, i, lines = 0;
	unsigned long long idl, idf, idh;
	char ids[96], *line, *save;

	p.fd = mpmc_test_open_cfg(1024, 64);
	ASSERT_LE(0, p.fd);
	idl = chan_id(p.fd);
	full = open_queued(4, 64, "a", "b", "c", NULL);	/* 75% */
	half = open_queued(8, 64, "a", "b", "c", "d", NULL);	/* 50% */
	ASSERT_LE(0, full);
	ASSERT_LE(0, half);
	idf = chan_id(full);
	idh = chan_id(half);
	ASSERT_EQ(0, pthread_create(&rcv, NULL, drainer, &p));
	ASSERT_EQ(0, pthread_create(&snd, NULL, paced_sender, &p));
	usleep(200 * 1000);

	snprintf(ids, sizeof(ids), "%llu,%llu,%llu", idl, idh, idf);
	ASSERT_EQ(0, run_stat(&r, "-i", "1", "-n", "3", "--json", "-c", ids,
			      NULL)) TH_LOG("%s", r.err);
	atomic_store(&p.stop, true);
	pthread_join(snd, NULL);
	ASSERT_EQ(0, ioctl(p.fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	pthread_join(rcv, NULL);
	EXPECT_EQ(0, atomic_load(&p.errors));

	for (line = strtok_r(r.out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		struct jval doc, *chans, *c;
		double sr, rr;

		ASSERT_TRUE(jdoc(line, &doc)) TH_LOG("not JSON: %s", line);
		lines++;
		EXPECT_EQ(1.0, jnum(&doc, "interval"));
		chans = jget(&doc, "channels");
		ASSERT_NE(NULL, chans);
		ASSERT_EQ(3, chans->n) TH_LOG("%s", line);
		/* Fullest first: 3/4, 4/8, then the load's (nearly empty). */
		EXPECT_EQ(idf, jnum(&chans->kid[0], "id")) TH_LOG("%s", line);
		EXPECT_EQ(idh, jnum(&chans->kid[1], "id")) TH_LOG("%s", line);
		EXPECT_EQ(idl, jnum(&chans->kid[2], "id")) TH_LOG("%s", line);
		c = jby_id(chans, idl);
		sr = jnum(c, "send_rate");
		rr = jnum(c, "recv_rate");
		TH_LOG("report %d: send %.1f/s, receive %.1f/s (paced at %d/s)",
		       lines, sr, rr, RATE);
		EXPECT_LE(RATE * 0.9, sr);
		EXPECT_GE(RATE * 1.1, sr);
		EXPECT_LE(RATE * 0.9, rr);
		EXPECT_GE(RATE * 1.1, rr);
		c = jby_id(chans, idf);
		EXPECT_EQ(0.0, jnum(c, "send_rate"));
		jfree(&doc);
	}
	EXPECT_EQ(LIVE_REPORTS, lines);

	/* The table: a title line, a header, one line per channel. */
	ASSERT_EQ(0, run_stat(&r, "-i", "0.2", "-n", "2", "-c", ids, NULL))
		TH_LOG("%s", r.err);
	for (i = 0, line = r.out; (line = strstr(line, "fullest first")); line++)
		i++;
	EXPECT_EQ(2, i) TH_LOG("%s", r.out);
	EXPECT_NE(NULL, strstr(r.out, "SEND/s")) TH_LOG("%s", r.out);
	free(r.out);
	close(p.fd);
	close(full);
	close(half);
}

/* ---- latency ---------------------------------------------------------- */

#define SLEEP_MS	24
#define LAT_MSGS	25

static const char *tracing(void)
{
	if (!access("/sys/kernel/tracing/instances", W_OK))
		return "/sys/kernel/tracing";
	if (!access("/sys/kernel/debug/tracing/instances", W_OK))
		return "/sys/kernel/debug/tracing";
	return NULL;
}

/*
 * Wait until mpmcstat @pid traces: a new instance has tracing_on set,
 * which mpmcstat clears first, then enables the events (mpmc_drop last),
 * then sets tracing_on again.
 */
static int wait_tracing(const char *root, pid_t pid)
{
	long long end = now_ms() + WAIT_MS;
	char on[256], drop[256], v[16];

	snprintf(on, sizeof(on), "%s/instances/mpmcstat-%d/tracing_on",
		 root, (int)pid);
	snprintf(drop, sizeof(drop),
		 "%s/instances/mpmcstat-%d/events/mpmc/mpmc_drop/enable",
		 root, (int)pid);
	while (now_ms() < end) {
		if (!read_line(drop, v, sizeof(v)) && !strcmp(v, "1") &&
		    !read_line(on, v, sizeof(v)) && !strcmp(v, "1"))
			return 0;
		usleep(2000);
	}
	return -1;
}

static void *lat_producer(void *arg)
{
	struct paced *p = arg;
	char msg[32] = "job";
	int i;

	for (i = 0; i < LAT_MSGS; i++)
		if (write(p->fd, msg, sizeof(msg)) != sizeof(msg))
			atomic_fetch_add(&p->errors, 1);
	return NULL;
}

TEST_F_TIMEOUT(stat, latency_histogram, STAT_TIMEOUT)
{
	const char *root = tracing();
	char ids[32], path[256], *argv[8], *out;
	struct jval doc, *chans, *c, *bk;
	struct paced p = { 0 };
	unsigned long long id, d_ns = SLEEP_MS * 1000000ULL, p50;
	int outfd, errfd, i, in_bucket = 0;
	char buf[64], err[4096];
	pthread_t prod;
	pid_t pid;

	if (!root)
		SKIP(return, "no writable tracefs instances (not root?)");
	p.fd = mpmc_test_open_cfg(1, 64);
	ASSERT_LE(0, p.fd);
	id = chan_id(p.fd);
	snprintf(ids, sizeof(ids), "%llu", id);
	argv[0] = (char *)stat_bin();
	argv[1] = "--latency";
	argv[2] = "-d";
	argv[3] = "30";
	argv[4] = "--json";
	argv[5] = "-c";
	argv[6] = ids;
	argv[7] = NULL;
	pid = spawn(argv, &outfd, &errfd);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, wait_tracing(root, pid)) {
		slurp(errfd, err, sizeof(err));
		TH_LOG("mpmcstat did not start tracing: %s", err);
		kill(pid, SIGKILL);
	}

	/*
	 * 1:1, paced by the consumer: the producer blocks on the full
	 * channel (capacity 1) and each message waits while the consumer
	 * sleeps SLEEP_MS after taking the one before.
	 */
	ASSERT_EQ(0, pthread_create(&prod, NULL, lat_producer, &p));
	for (i = 0; i < LAT_MSGS; i++) {
		ASSERT_EQ(32, read(p.fd, buf, sizeof(buf)));
		usleep(SLEEP_MS * 1000);
	}
	pthread_join(prod, NULL);
	EXPECT_EQ(0, atomic_load(&p.errors));

	/* Ctrl-C ends the trace early; the report still comes. */
	ASSERT_EQ(0, kill(pid, SIGINT));
	out = malloc(OUT_MAX);
	ASSERT_NE(NULL, out);
	slurp(outfd, out, OUT_MAX);
	slurp(errfd, err, sizeof(err));
	EXPECT_EQ(0, reap(pid)) TH_LOG("%s", err);
	snprintf(path, sizeof(path), "%s/instances/mpmcstat-%d", root,
		 (int)pid);
	EXPECT_ERRNO(ENOENT, access(path, F_OK));

	ASSERT_TRUE(jdoc(out, &doc)) TH_LOG("not JSON: %s", out);
	EXPECT_EQ(0, jnum(&doc, "lost_events"));
	chans = jget(&doc, "channels");
	ASSERT_NE(NULL, chans);
	c = jby_id(chans, id);
	ASSERT_NE(NULL, c) TH_LOG("%s", out);
	EXPECT_EQ(LAT_MSGS, jnum(c, "count")) TH_LOG("%s", out);
	EXPECT_EQ(0, jnum(c, "drops"));
	p50 = jnum(c, "p50_ns");
	TH_LOG("p50 %.2f ms, p99 %.2f ms, max %.2f ms (consumer sleeps %d ms)",
	       p50 / 1e6, jnum(c, "p99_ns") / 1e6, jnum(c, "max_ns") / 1e6,
	       SLEEP_MS);
	bk = jget(c, "buckets");
	ASSERT_NE(NULL, bk);
	for (i = 0; i < bk->n; i++) {
		double lo = jnum(&bk->kid[i], "low_ns");
		double hi = jnum(&bk->kid[i], "high_ns");

		if (lo <= p50 && p50 < hi) {
			in_bucket++;
			EXPECT_LE(lo, (double)d_ns) TH_LOG("%s", out);
			EXPECT_GT(hi, (double)d_ns) TH_LOG("%s", out);
		}
	}
	EXPECT_EQ(1, in_bucket) TH_LOG("%s", out);
	jfree(&doc);

	/* The text report: a histogram line for the bucket of 24 ms. */
	EXPECT_EQ(0, run_stat(&(struct run){ .out = out }, "--latency",
			      "-d", "0.3", "-c", ids, NULL));
	EXPECT_NE(NULL, strstr(out, "time in queue")) TH_LOG("%s", out);
	free(out);
	close(p.fd);
}

/* ---- exits during the scan -------------------------------------------- */

#define CHURN_KIDS	2
#define SCANS		20

/* Fork, forever, children that open channels and exit at once. */
static void churn(void)
{
	int fd, i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		pid_t pid = fork();

		if (!pid) {
			for (i = 0; i < 8; i++) {
				fd = open(MPMC_DEV, O_RDWR);
				if (fd < 0)
					_exit(1);
			}
			_exit(0);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
}

TEST_F_TIMEOUT(stat, exits_during_scan, STAT_TIMEOUT)
{
	pid_t kids[CHURN_KIDS];
	struct run r = { 0 };
	struct jval doc, *chans, *c;
	int fd, i, vanished = 0, churned = 0;
	char ids[32];

	for (i = 0; i < CHURN_KIDS; i++) {
		kids[i] = fork();
		ASSERT_LE(0, kids[i]);
		if (!kids[i])
			churn();
	}
	/* After the forks: ours alone hold it. */
	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	snprintf(ids, sizeof(ids), "%llu", chan_id(fd));
	for (i = 0; i < SCANS; i++) {
		ASSERT_EQ(0, run_stat(&r, "--json", NULL)) TH_LOG("%s", r.err);
		ASSERT_TRUE(jdoc(r.out, &doc)) TH_LOG("not JSON: %s", r.out);
		chans = jget(&doc, "channels");
		ASSERT_NE(NULL, chans);
		c = jby_id(chans, strtoull(ids, NULL, 10));
		ASSERT_NE(NULL, c) TH_LOG("scan %d lost our channel", i);
		EXPECT_EQ(1, jget(c, "holders")->n);
		churned += chans->n > 1;
		vanished += jnum(&doc, "vanished") > 0;
		jfree(&doc);
	}
	for (i = 0; i < CHURN_KIDS; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	TH_LOG("%d of %d scans saw churning channels, %d saw a process or fd vanish",
	       churned, SCANS, vanished);
	free(r.out);
	close(fd);
}

/* ---- unprivileged ----------------------------------------------------- */

TEST_F_TIMEOUT(stat, unprivileged_sees_own, STAT_TIMEOUT)
{
	int rootfd, outfd, errfd, o[2], e[2];
	struct jval doc, *chans, *den, *c, *h;
	char *out, err[8192];
	pid_t pid;
	int i, saw_root = 0;

	if (geteuid())
		SKIP(return, "needs root to become nobody");
	rootfd = mpmc_test_open(O_RDWR);	/* not nobody's to see */
	ASSERT_LE(0, rootfd);
	ASSERT_EQ(0, pipe2(o, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(e, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int fd;

		dup2(o[1], 1);
		dup2(e[1], 2);
		close(rootfd);
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(126);
		/* Its own channel, inherited by mpmcstat itself. */
		fd = open(MPMC_DEV, O_RDWR);
		if (fd < 0)
			_exit(125);
		execl(stat_bin(), stat_bin(), "--json", NULL);
		_exit(127);
	}
	close(o[1]);
	close(e[1]);
	outfd = o[0];
	errfd = e[0];
	out = malloc(OUT_MAX);
	ASSERT_NE(NULL, out);
	slurp(outfd, out, OUT_MAX);
	slurp(errfd, err, sizeof(err));
	ASSERT_EQ(0, reap(pid)) TH_LOG("%s", err);
	ASSERT_TRUE(jdoc(out, &doc)) TH_LOG("not JSON: %s", out);
	chans = jget(&doc, "channels");
	ASSERT_NE(NULL, chans);
	/* Only its own: the channel it holds, and not ours. */
	ASSERT_EQ(1, chans->n) TH_LOG("%s", out);
	c = &chans->kid[0];
	EXPECT_NE(chan_id(rootfd), jnum(c, "id"));
	h = jget(c, "holders");
	ASSERT_EQ(1, h->n);
	EXPECT_EQ(pid, jnum(&h->kid[0], "pid"));
	EXPECT_STREQ("mpmcstat", jget(&h->kid[0], "comm")->str);
	/* Ours it could not read: we are in the list, with EACCES. */
	den = jget(&doc, "unreadable");
	ASSERT_NE(NULL, den);
	for (i = 0; i < den->n; i++)
		if (jnum(&den->kid[i], "pid") == getpid()) {
			saw_root++;
			EXPECT_STREQ("EACCES",
				     jget(&den->kid[i], "error")->str);
		}
	EXPECT_EQ(1, saw_root) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(err, "cannot read the fds of")) TH_LOG("%s", err);
	jfree(&doc);
	free(out);
	close(rootfd);
}

TEST_HARNESS_MAIN
