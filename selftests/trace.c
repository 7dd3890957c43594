// SPDX-License-Identifier: GPL-2.0
/*
 * Tracepoints (mpmc(4), TRACEPOINTS): mpmc:mpmc_send, mpmc_recv, mpmc_block, mpmc_wake
 * and mpmc_shutdown, read back from tracefs after known sequences: sends
 * and receives, a blocked read woken by a write from another thread, a
 * blocked write woken by a read, a blocked reader whose buffer is too
 * small, batches and a batch that times out, shutdowns with queued
 * messages and with blocked callers, last closes. Every field is checked:
 * chan is the "id:" line of /proc/self/fdinfo/FD, len, queued, seq, dir, the
 * woken thread's gettid() (and each event's own task pid column), result,
 * how, shutdown and discarded. Also: the format files list the fields,
 * a per-event enable and a filter on "id" work, and everything is put
 * back at the end. seq_pairs_once: the seq of every mpmc_send pairs it with
 * one mpmc_recv or mpmc_drop of the same length, with blocking, batches,
 * a rendezvous and overwrite drops; seq_of_blocked_senders: senders moved
 * in while blocked trace the seq their message was accepted with.
 *
 * The events are enabled in a private tracefs instance
 * (instances/mpmc_selftest.PID), so the top-level buffer and whatever is
 * traced there are left alone; with MPMC_TRACE_TOPLEVEL=1 set, or where
 * instances cannot be made, the top-level buffer is used and tracing_on,
 * trace_clock, the events' enable and mpmc_send's filter are saved first
 * and restored at the end. SKIPs when tracefs or the events are missing.
 * The pids in the trace are global: run in the initial pid namespace.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"

#define NR_EVENTS	5
#define MAX_SEL		64

static const char *const event_names[NR_EVENTS] = {
	"mpmc_send", "mpmc_recv", "mpmc_block", "mpmc_wake", "mpmc_shutdown",
};

/*
 * Set up once, by the harness's main process, before any test forks; put
 * back by it at exit (and checked by the last test, "restore").
 */
static struct {
	bool ready;
	bool instance;		/* tr.dir is our own instance */
	pid_t owner;
	char why[200];		/* SKIP reason when !ready */
	char root[64];		/* the tracefs mount */
	char dir[128];		/* root, or root/instances/mpmc_selftest.PID */
	char saved_on[16];	/* tracing_on of dir */
	char saved_clock[32];	/* trace_clock of dir */
	char saved_filter[256];	/* mpmc_send's filter of dir */
	char saved_enable[NR_EVENTS][16];	/* enable files of dir */
	char top_enable[NR_EVENTS][16];		/* enable files of root */
} tr;

#define EVLEN		128	/* one event's text */

/* One parsed line of the trace file. */
struct tev {
	int tid;		/* the task-pid column: who emitted it */
	unsigned long long chan;
	char text[EVLEN];	/* "mpmc_send: chan=1 len=2 queued=3" */
};

struct tlog {
	struct tev *ev;
	int n;
	int lost;
};

/* ---- tracefs files ---------------------------------------------------- */

static void pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

/* Write @s to @name in our tracing directory. */
static int tr_write(const char *name, const char *s)
{
	char p[256];

	pathf(p, sizeof(p), "%s/%s", tr.dir, name);
	return write_file(p, s, O_TRUNC);
}

static int tr_read(const char *name, char *buf, size_t size)
{
	char p[256];

	pathf(p, sizeof(p), "%s/%s", tr.dir, name);
	return read_line(p, buf, size);
}

static int event_write(const char *ev, const char *file, const char *s)
{
	char p[256];

	pathf(p, sizeof(p), "%s/events/mpmc/%s/%s", tr.dir, ev, file);
	return write_file(p, s, O_TRUNC);
}

/* Enable (@on) every event, or put their enable files back as saved. */
static int events_set(bool on)
{
	char v[2] = "0";
	int i, err = 0;

	for (i = 0; i < NR_EVENTS; i++) {
		v[0] = on ? '1' : tr.saved_enable[i][0] == '1' ? '1' : '0';
		err |= event_write(event_names[i], "enable", v);
	}
	return err;
}

/* A filter file reads "none" when there is none; writing "0" clears it. */
static int filter_restore(void)
{
	if (!strcmp(tr.saved_filter, "none") || !tr.saved_filter[0])
		return event_write("mpmc_send", "filter", "0");
	return event_write("mpmc_send", "filter", tr.saved_filter);
}

/*
 * Put our tracing directory back as trace_init() found it: the events'
 * enable, mpmc_send's filter, trace_clock and tracing_on.
 */
static int tr_put_back(void)
{
	int err = 0;

	err |= events_set(false);
	err |= filter_restore();
	err |= tr_write("trace_clock", tr.saved_clock);
	err |= tr_write("tracing_on", tr.saved_on);
	return err;
}

/* Undo trace_init(): also run by trace_fini() at exit. */
static int tr_restore(void)
{
	if (!tr.instance)
		return tr_put_back();
	events_set(false);
	if (rmdir(tr.dir) && errno != ENOENT)
		return -1;
	return 0;
}

static void __attribute__((constructor)) trace_init(void)
{
	static const char *const roots[] = {
		"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
	};
	char p[256], clk[512], *b, *e;
	unsigned int i;

	tr.owner = getpid();
	for (i = 0; i < ARRAY_SIZE(roots); i++) {
		pathf(p, sizeof(p), "%s/trace", roots[i]);
		if (!access(p, R_OK | W_OK)) {
			snprintf(tr.root, sizeof(tr.root), "%s", roots[i]);
			break;
		}
	}
	if (!tr.root[0]) {
		snprintf(tr.why, sizeof(tr.why),
			 "no tracefs at %s or %s (not mounted, or not root)",
			 roots[0], roots[1]);
		return;
	}
	for (i = 0; i < NR_EVENTS; i++) {
		pathf(p, sizeof(p), "%s/events/mpmc/%s/enable", tr.root,
		      event_names[i]);
		if (read_line(p, tr.top_enable[i], sizeof(tr.top_enable[i]))) {
			snprintf(tr.why, sizeof(tr.why),
				 "no event mpmc:%s in %s/events (module not loaded, or without tracepoints)",
				 event_names[i], tr.root);
			return;
		}
	}

	snprintf(tr.dir, sizeof(tr.dir), "%s", tr.root);
	if (!getenv("MPMC_TRACE_TOPLEVEL")) {
		pathf(tr.dir, sizeof(tr.dir), "%s/instances/mpmc_selftest.%d",
		      tr.root, (int)tr.owner);
		tr.instance = !mkdir(tr.dir, 0700);
		if (!tr.instance)
			snprintf(tr.dir, sizeof(tr.dir), "%s", tr.root);
	}
	for (i = 0; i < NR_EVENTS; i++) {
		pathf(p, sizeof(p), "events/mpmc/%s/enable", event_names[i]);
		if (tr_read(p, tr.saved_enable[i], sizeof(tr.saved_enable[i])))
			goto fail;
	}
	if (tr_read("events/mpmc/mpmc_send/filter", tr.saved_filter,
		    sizeof(tr.saved_filter)) ||
	    tr_read("tracing_on", tr.saved_on, sizeof(tr.saved_on)) ||
	    tr_read("trace_clock", clk, sizeof(clk)))
		goto fail;
	/* "[local] global counter ...": the bracketed one is in use. */
	b = strchr(clk, '[');
	e = b ? strchr(b, ']') : NULL;
	if (!e)
		goto fail;
	*e = '\0';
	snprintf(tr.saved_clock, sizeof(tr.saved_clock), "%s", b + 1);
	tr.ready = true;
	return;
fail:
	snprintf(tr.why, sizeof(tr.why), "cannot read the state of %s: %s",
		 tr.dir, strerror(errno));
	if (tr.instance)
		rmdir(tr.dir);
}

static void __attribute__((destructor)) trace_fini(void)
{
	/* Test children leave with _exit(): only the harness gets here. */
	if (tr.ready && getpid() == tr.owner)
		tr_restore();
}

/* ---- the trace -------------------------------------------------------- */

static bool known_event(const char *text)
{
	int i;

	if (!strncmp(text, "mpmc_drop:", 10))
		return true;
	for (i = 0; i < NR_EVENTS; i++) {
		size_t n = strlen(event_names[i]);

		if (!strncmp(text, event_names[i], n) && text[n] == ':')
			return true;
	}
	return false;
}

/*
 * Parse one line of the trace file:
 *   "          trace-123     [001] .....  12.345678: mpmc_send: chan=1 ..."
 * The comm may hold anything; the pid is what precedes the last "[CPU]".
 */
static void parse_line(struct tlog *log, char *line)
{
	char *text, *q, *end, *c;
	struct tev *ev;

	line[strcspn(line, "\n")] = '\0';
	if (!strncmp(line, "CPU:", 4) && strstr(line, "LOST")) {
		log->lost++;
		return;
	}
	if (line[0] == '#')
		return;
	text = strstr(line, ": mpmc_");
	if (!text)
		return;
	*text = '\0';
	text += 2;
	if (!known_event(text))
		return;
	q = strrchr(line, '[');
	if (!q)
		return;
	while (q > line && q[-1] == ' ')
		q--;
	end = q;
	while (q > line && isdigit((unsigned char)q[-1]))
		q--;
	if (q == end || q == line || q[-1] != '-')
		return;

	if (!(log->n % 64)) {
		struct tev *more = realloc(log->ev, (log->n + 64) * sizeof(*more));

		if (!more)
			return;
		log->ev = more;
	}
	ev = &log->ev[log->n++];
	ev->tid = atoi(q);
	c = strstr(text, " chan=");
	ev->chan = c ? strtoull(c + 6, NULL, 10) : 0;
	snprintf(ev->text, sizeof(ev->text), "%s", text);
}

/* Read the whole trace buffer of our instance (it is not consumed). */
static int trace_read(struct tlog *log)
{
	char p[256], *line = NULL;
	size_t cap = 0;
	FILE *f;

	memset(log, 0, sizeof(*log));
	pathf(p, sizeof(p), "%s/trace", tr.dir);
	f = fopen(p, "re");
	if (!f)
		return -1;
	while (getline(&line, &cap, f) > 0)
		parse_line(log, line);
	free(line);
	fclose(f);
	return 0;
}

static void trace_free(struct tlog *log)
{
	free(log->ev);
	memset(log, 0, sizeof(*log));
}

/* Events of @chan, and emitted by thread @tid unless it is 0, in order. */
static int select_events(const struct tlog *log, unsigned long long chan,
			 int tid, const struct tev **out)
{
	int i, n = 0;

	for (i = 0; i < log->n && n < MAX_SEL; i++)
		if (log->ev[i].chan == chan && (!tid || log->ev[i].tid == tid))
			out[n++] = &log->ev[i];
	return n;
}

/* Position in the trace of the first event reading exactly @text. */
static int event_pos(const struct tlog *log, const char *text)
{
	int i;

	for (i = 0; i < log->n; i++)
		if (!strcmp(log->ev[i].text, text))
			return i;
	return -1;
}

static int count_chan(const struct tlog *log, unsigned long long chan)
{
	int i, n = 0;

	for (i = 0; i < log->n; i++)
		n += log->ev[i].chan == chan;
	return n;
}

static void dump_chan(struct __test_metadata *_metadata,
		      const struct tlog *log, unsigned long long chan)
{
	int i;

	for (i = 0; i < log->n; i++)
		if (log->ev[i].chan == chan)
			TH_LOG("  trace[%d] tid %d: %s", i, log->ev[i].tid,
			       log->ev[i].text);
}

/*
 * The events of @chan emitted by thread @tid (every thread if 0) must be
 * exactly @want[0..@n), in this order.
 */
static void check_seq(struct __test_metadata *_metadata,
		      const struct tlog *log, unsigned long long chan, int tid,
		      const char (*want)[EVLEN], int n)
{
	const struct tev *got[MAX_SEL];
	int i, ng = select_events(log, chan, tid, got);
	bool bad = ng != n;

	for (i = 0; i < n || i < ng; i++) {
		const char *w = i < n ? want[i] : "(nothing)";
		const char *g = i < ng ? got[i]->text : "(nothing)";

		EXPECT_STREQ(w, g) {
			TH_LOG("event %d of chan %llu, tid %d", i, chan, tid);
			bad = true;
		}
	}
	if (bad) {
		TH_LOG("all events of chan %llu (%d lost lines):", chan,
		       log->lost);
		dump_chan(_metadata, log, chan);
	}
	ASSERT_EQ(n, ng);
}

/* ---- expected event text, as the events' TP_printk() prints it ------- */

static void ev_msg(char s[EVLEN], const char *name, unsigned long long id,
		   unsigned int len, unsigned int queued, unsigned int seq)
{
	snprintf(s, EVLEN, "%s: chan=%llu len=%u queued=%u seq=%u", name, id,
		 len, queued, seq);
}

static void ev_block(char s[EVLEN], unsigned long long id, const char *dir,
		     unsigned int waiters)
{
	snprintf(s, EVLEN, "mpmc_block: chan=%llu dir=%s waiters=%u",
		 id, dir, waiters);
}

static void ev_wake(char s[EVLEN], unsigned long long id, const char *dir,
		    int pid, int result)
{
	snprintf(s, EVLEN,
		 "mpmc_wake: chan=%llu dir=%s pid=%d result=%d", id, dir, pid,
		 result);
}

static void ev_shut(char s[EVLEN], unsigned long long id, unsigned int how,
		    unsigned int state, unsigned int discarded)
{
	snprintf(s, EVLEN,
		 "mpmc_shutdown: chan=%llu how=%u shutdown=%u discarded=%u",
		 id, how, state, discarded);
}

/* ---- channels and threads --------------------------------------------- */

static int my_tid(void)
{
	return (int)syscall(SYS_gettid);
}

/* The "id:" line of /proc/self/fdinfo/@fd; 0 if there is none. */
static unsigned long long chan_id(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	return scan_file(path, "id:\t%lld", 0);
}

/* Start a blocking read() with a @len byte buffer, or a write() of @len 'w's. */
static int op_start_n(struct op *o, int fd, bool wr, size_t len)
{
	char msg[256];

	memset(msg, 'w', sizeof(msg));
	return op_start(o, fd, wr ? OP_WRITE : OP_READ, wr ? msg : NULL, len);
}

static void send_n(struct __test_metadata *_metadata, int fd, size_t len)
{
	char buf[512];

	memset(buf, 's', len);
	ASSERT_EQ((ssize_t)len, write(fd, buf, len));
}

static void recv_n(struct __test_metadata *_metadata, int fd, size_t len)
{
	char buf[512];

	ASSERT_EQ((ssize_t)len, read(fd, buf, sizeof(buf)));
}

/*
 * @fd, a channel just opened (asserted), with its id (asserted non-zero)
 * in *@id.
 */
static int chan_of(struct __test_metadata *_metadata, int fd,
		   unsigned long long *id)
{
	ASSERT_LE(0, fd);
	*id = chan_id(fd);
	ASSERT_NE(0, *id);
	return fd;
}

/*
 * Start @o, a read() with a @len byte buffer or with @wr a write() of @len
 * bytes, on @fd and wait until it is the @nth caller blocked there.
 */
static void start_blocked(struct __test_metadata *_metadata, struct op *o,
			  int fd, bool wr, size_t len, unsigned int nth)
{
	ASSERT_EQ(0, op_start_n(o, fd, wr, len));
	ASSERT_EQ(0, wait_blocked(fd, !wr, nth));
}

/* ---- the tests ------------------------------------------------------ */

FIXTURE(trace) {
	int tid;		/* the test's main thread */
};

FIXTURE_SETUP(trace)
{
	if (!tr.ready)
		SKIP(return, "%s", tr.why);
	self->tid = my_tid();
	/* One clock for every CPU, so that the merged trace is in order. */
	ASSERT_EQ(0, tr_write("trace_clock", "global"));
	ASSERT_EQ(0, events_set(true));
	ASSERT_EQ(0, tr_write("tracing_on", "1"));
	/* echo > trace */
	ASSERT_EQ(0, tr_write("trace", "\n"));
}

FIXTURE_TEARDOWN(trace)
{
	if (tr.ready)
		tr_put_back();
}

/* The 6.1 harness runs the test body after a SKIP in the setup. */
#define NEED_TRACE() do { if (_metadata->skip) return; } while (0)

/* Every event has a format file with its fields and print format. */
TEST_F(trace, format_files)
{
	static const struct {
		const char *event;
		const char *fields[4][2];	/* type, name */
		const char *print;
	} fmt[] = {
		{ "mpmc_send", { { "u64", "id" }, { "u32", "len" },
				 { "u32", "queued" }, { "u32", "seq" } },
		  "\"chan=%llu len=%u queued=%u seq=%u\"" },
		{ "mpmc_recv", { { "u64", "id" }, { "u32", "len" },
				 { "u32", "queued" }, { "u32", "seq" } },
		  "\"chan=%llu len=%u queued=%u seq=%u\"" },
		{ "mpmc_block", { { "u64", "id" }, { "int", "dir" },
				  { "u32", "waiters" } },
		  "\"chan=%llu dir=%s waiters=%u\"" },
		{ "mpmc_wake", { { "u64", "id" }, { "int", "dir" },
				 { "pid_t", "pid" }, { "int", "result" } },
		  "\"chan=%llu dir=%s pid=%d result=%d\"" },
		{ "mpmc_shutdown", { { "u64", "id" }, { "u32", "how" },
				     { "u32", "state" }, { "u32", "discarded" } },
		  "\"chan=%llu how=%u shutdown=%u discarded=%u\"" },
	};
	unsigned int i, j;

	NEED_TRACE();
	ASSERT_EQ(NR_EVENTS, ARRAY_SIZE(fmt));
	for (i = 0; i < ARRAY_SIZE(fmt); i++) {
		char path[256], text[4096], want[64], *p;
		ssize_t n;
		int fd;

		pathf(path, sizeof(path), "%s/events/mpmc/%s/format", tr.dir,
		      fmt[i].event);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		ASSERT_LE(0, fd) TH_LOG("%s: %s", path, strerror(errno));
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
		ASSERT_LT(0, n);
		text[n] = '\0';

		snprintf(want, sizeof(want), "name: %s\n", fmt[i].event);
		EXPECT_NE(NULL, strstr(text, want)) TH_LOG("%s", text);
		for (j = 0; j < 4 && fmt[i].fields[j][0]; j++) {
			unsigned int off, size;
			int sign;
			bool is_signed = strcmp(fmt[i].fields[j][0], "u32") &&
					 strcmp(fmt[i].fields[j][0], "u64");

			snprintf(want, sizeof(want), "\tfield:%s %s;",
				 fmt[i].fields[j][0], fmt[i].fields[j][1]);
			p = strstr(text, want);
			EXPECT_NE(NULL, p) {
				TH_LOG("%s: no \"%s\" in\n%s", fmt[i].event,
				       want + 1, text);
				continue;
			}
			ASSERT_EQ(3, sscanf(p + strlen(want),
					    "\toffset:%u;\tsize:%u;\tsigned:%d;",
					    &off, &size, &sign));
			EXPECT_EQ(fmt[i].fields[j][0][1] == '6' ? 8U : 4U,
				  size) TH_LOG("%s.%s", fmt[i].event, want);
			EXPECT_EQ(is_signed, sign)
				TH_LOG("%s.%s", fmt[i].event, want);
		}
		p = strstr(text, "print fmt: ");
		ASSERT_NE(NULL, p) TH_LOG("%s", text);
		EXPECT_EQ(0, strncmp(p + 11, fmt[i].print,
				     strlen(fmt[i].print)))
			TH_LOG("%s: %s", fmt[i].event, p);
		if (!strcmp(fmt[i].event, "mpmc_block") ||
		    !strcmp(fmt[i].event, "mpmc_wake")) {
			EXPECT_NE(NULL, strstr(p, "\"send\""));
			EXPECT_NE(NULL, strstr(p, "\"recv\""));
		}
	}
}

/* Plain sends and receives: len and the queue depth after each. */
TEST_F(trace, send_recv)
{
	unsigned long long id;
	char want[4][EVLEN];
	struct tlog log;
	int fd;

	NEED_TRACE();
	fd = chan_of(_metadata, mpmc_test_open(O_RDWR), &id);

	send_n(_metadata, fd, 10);
	send_n(_metadata, fd, 300);
	recv_n(_metadata, fd, 10);
	recv_n(_metadata, fd, 300);
	ASSERT_EQ(0, trace_read(&log));
	EXPECT_EQ(0, log.lost);

	ev_msg(want[0], "mpmc_send", id, 10, 1, 0);
	ev_msg(want[1], "mpmc_send", id, 300, 2, 1);
	ev_msg(want[2], "mpmc_recv", id, 10, 1, 0);
	ev_msg(want[3], "mpmc_recv", id, 300, 0, 1);
	/* All from this thread, and nothing else on the channel. */
	check_seq(_metadata, &log, id, self->tid, want, 4);
	check_seq(_metadata, &log, id, 0, want, 4);
	trace_free(&log);
	close(fd);
}

/* A read blocked on an empty channel is handed a write's message. */
TEST_F(trace, blocked_read_woken_by_write)
{
	char rd[2][EVLEN], wr[2][EVLEN];
	unsigned long long id;
	struct tlog log;
	struct op o;
	int fd;

	NEED_TRACE();
	fd = chan_of(_metadata, mpmc_test_open(O_RDWR), &id);

	start_blocked(_metadata, &o, fd, false, 64, 1);
	send_n(_metadata, fd, 7);
	ASSERT_EQ(0, pthread_join(o.th, NULL));
	ASSERT_EQ(7, o.ret) TH_LOG("read: %s", strerror(o.err));
	ASSERT_NE(self->tid, o.tid);

	ASSERT_EQ(0, trace_read(&log));
	/* The reader: it blocked, then received the message. */
	ev_block(rd[0], id, "recv", 1);
	ev_msg(rd[1], "mpmc_recv", id, 7, 0, 0);
	check_seq(_metadata, &log, id, o.tid, rd, 2);
	/* The writer woke the reader (its tid, result 0), queueing nothing. */
	ev_wake(wr[0], id, "recv", o.tid, 0);
	ev_msg(wr[1], "mpmc_send", id, 7, 0, 0);
	check_seq(_metadata, &log, id, self->tid, wr, 2);
	EXPECT_EQ(4, count_chan(&log, id)) dump_chan(_metadata, &log, id);
	/* It blocked before it was woken. */
	EXPECT_LT(event_pos(&log, rd[0]), event_pos(&log, wr[0]));
	trace_free(&log);
	close(fd);
}

/* A write blocked on a full channel is admitted by a read. */
TEST_F(trace, blocked_write_woken_by_read)
{
	char mn[4][EVLEN], wr[2][EVLEN];
	unsigned long long id;
	struct tlog log;
	struct op o;
	int fd;

	NEED_TRACE();
	fd = chan_of(_metadata, mpmc_test_open_cfg(1, 64), &id);

	send_n(_metadata, fd, 3);
	start_blocked(_metadata, &o, fd, true, 5, 1);
	recv_n(_metadata, fd, 3);
	ASSERT_EQ(0, pthread_join(o.th, NULL));
	ASSERT_EQ(5, o.ret) TH_LOG("write: %s", strerror(o.err));
	recv_n(_metadata, fd, 5);

	ASSERT_EQ(0, trace_read(&log));
	/*
	 * The reader took the first message, moved the blocked writer's
	 * message into the queue and woke the writer (its tid, result 0).
	 */
	ev_msg(mn[0], "mpmc_send", id, 3, 1, 0);
	ev_wake(mn[1], id, "send", o.tid, 0);
	ev_msg(mn[2], "mpmc_recv", id, 3, 1, 0);
	ev_msg(mn[3], "mpmc_recv", id, 5, 0, 1);
	check_seq(_metadata, &log, id, self->tid, mn, 4);
	/* The writer blocked, and its message counts as sent once admitted. */
	ev_block(wr[0], id, "send", 1);
	ev_msg(wr[1], "mpmc_send", id, 5, 1, 1);
	check_seq(_metadata, &log, id, o.tid, wr, 2);
	EXPECT_EQ(6, count_chan(&log, id)) dump_chan(_metadata, &log, id);
	EXPECT_LT(event_pos(&log, mn[0]), event_pos(&log, wr[0]));
	EXPECT_LT(event_pos(&log, wr[0]), event_pos(&log, mn[1]));
	EXPECT_LT(event_pos(&log, mn[1]), event_pos(&log, wr[1]));
	EXPECT_LT(event_pos(&log, wr[1]), event_pos(&log, mn[3]));
	trace_free(&log);
	close(fd);
}

/* A blocked reader whose buffer is too small is woken with EMSGSIZE. */
TEST_F(trace, blocked_reader_too_small)
{
	char mn[3][EVLEN], rd[1][EVLEN];
	unsigned long long id;
	struct tlog log;
	struct op o;
	int fd;

	NEED_TRACE();
	fd = chan_of(_metadata, mpmc_test_open(O_RDWR), &id);

	start_blocked(_metadata, &o, fd, false, 4, 1);
	send_n(_metadata, fd, 16);
	ASSERT_EQ(0, pthread_join(o.th, NULL));
	ASSERT_OP_ERR(o, EMSGSIZE);
	recv_n(_metadata, fd, 16);

	ASSERT_EQ(0, trace_read(&log));
	ev_block(rd[0], id, "recv", 1);
	check_seq(_metadata, &log, id, o.tid, rd, 1);
	/* The message was queued after the reader was turned away. */
	ev_wake(mn[0], id, "recv", o.tid, -EMSGSIZE);
	ev_msg(mn[1], "mpmc_send", id, 16, 1, 0);
	ev_msg(mn[2], "mpmc_recv", id, 16, 0, 0);
	check_seq(_metadata, &log, id, self->tid, mn, 3);
	EXPECT_EQ(4, count_chan(&log, id)) dump_chan(_metadata, &log, id);
	trace_free(&log);
	close(fd);
}

/*
 * Two blocked readers: waiters counts them, a write wakes the first, and
 * SHUT_WR wakes the second with end of file (result 0, no mpmc_recv).
 */
TEST_F(trace, shutdown_wakes_blocked_reader)
{
	char mn[4][EVLEN], r1[2][EVLEN], r2[1][EVLEN];
	unsigned long long id;
	struct op o1, o2;
	struct tlog log;
	int fd;

	NEED_TRACE();
	fd = chan_of(_metadata, mpmc_test_open(O_RDWR), &id);

	start_blocked(_metadata, &o1, fd, false, 64, 1);
	start_blocked(_metadata, &o2, fd, false, 64, 2);
	send_n(_metadata, fd, 5);
	ASSERT_EQ(0, pthread_join(o1.th, NULL));
	ASSERT_EQ(5, o1.ret) TH_LOG("read: %s", strerror(o1.err));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	ASSERT_EQ(0, pthread_join(o2.th, NULL));
	ASSERT_EQ(0, o2.ret) TH_LOG("read: %s", strerror(o2.err));

	ASSERT_EQ(0, trace_read(&log));
	ev_block(r1[0], id, "recv", 1);
	ev_msg(r1[1], "mpmc_recv", id, 5, 0, 0);
	check_seq(_metadata, &log, id, o1.tid, r1, 2);
	ev_block(r2[0], id, "recv", 2);
	check_seq(_metadata, &log, id, o2.tid, r2, 1);
	ev_wake(mn[0], id, "recv", o1.tid, 0);
	ev_msg(mn[1], "mpmc_send", id, 5, 0, 0);
	ev_shut(mn[2], id, MPMC_SHUT_WR, MPMC_SHUT_WR, 0);
	ev_wake(mn[3], id, "recv", o2.tid, 0);
	check_seq(_metadata, &log, id, self->tid, mn, 4);
	EXPECT_EQ(7, count_chan(&log, id)) dump_chan(_metadata, &log, id);
	EXPECT_LT(event_pos(&log, r1[0]), event_pos(&log, r2[0]));
	EXPECT_LT(event_pos(&log, r2[0]), event_pos(&log, mn[0]));
	trace_free(&log);
	close(fd);
}

/* SHUT_RD discards the queue and fails the blocked writer with EPIPE. */
TEST_F(trace, shutdown_fails_blocked_writer)
{
	unsigned long long id;
	char mn[3][EVLEN], wr[1][EVLEN];
	struct tlog log;
	struct op o;
	int fd;

	NEED_TRACE();
	fd = chan_of(_metadata, mpmc_test_open_cfg(1, 64), &id);

	send_n(_metadata, fd, 9);
	start_blocked(_metadata, &o, fd, true, 11, 1);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RD));
	ASSERT_EQ(0, pthread_join(o.th, NULL));
	ASSERT_OP_ERR(o, EPIPE);

	ASSERT_EQ(0, trace_read(&log));
	ev_block(wr[0], id, "send", 1);
	check_seq(_metadata, &log, id, o.tid, wr, 1);
	ev_msg(mn[0], "mpmc_send", id, 9, 1, 0);
	ev_shut(mn[1], id, MPMC_SHUT_RD, MPMC_SHUT_RD, 1);
	ev_wake(mn[2], id, "send", o.tid, -EPIPE);
	check_seq(_metadata, &log, id, self->tid, mn, 3);
	EXPECT_EQ(4, count_chan(&log, id)) dump_chan(_metadata, &log, id);
	trace_free(&log);
	close(fd);
}

/*
 * Shutdowns with messages queued, on two channels at once: each event
 * carries its own channel's id; SHUT_RD reports the discarded messages,
 * SHUT_WR keeps them; how holds only the new bits, and a repeated
 * shutdown records nothing.
 */
TEST_F(trace, shutdown_with_queued)
{
	unsigned long long ida, idb;
	char wa[5][EVLEN], wb[5][EVLEN];
	struct tlog log;
	char buf[64];
	int a, b;

	NEED_TRACE();
	a = chan_of(_metadata, mpmc_test_open(O_RDWR), &ida);
	b = chan_of(_metadata, mpmc_test_open(O_RDWR), &idb);
	ASSERT_NE(ida, idb);

	send_n(_metadata, a, 10);
	send_n(_metadata, a, 20);
	send_n(_metadata, b, 1);
	send_n(_metadata, b, 2);
	send_n(_metadata, b, 3);
	ASSERT_EQ(0, ioctl(b, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RD));
	ASSERT_EQ(0, ioctl(b, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RDWR));
	ASSERT_EQ(0, ioctl(b, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RDWR));
	ASSERT_EQ(0, ioctl(a, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	recv_n(_metadata, a, 10);
	recv_n(_metadata, a, 20);
	ASSERT_EQ(0, read(a, buf, sizeof(buf)));
	ASSERT_EQ(0, read(b, buf, sizeof(buf)));

	ASSERT_EQ(0, trace_read(&log));
	ev_msg(wa[0], "mpmc_send", ida, 10, 1, 0);
	ev_msg(wa[1], "mpmc_send", ida, 20, 2, 1);
	ev_shut(wa[2], ida, MPMC_SHUT_WR, MPMC_SHUT_WR, 0);
	ev_msg(wa[3], "mpmc_recv", ida, 10, 1, 0);
	ev_msg(wa[4], "mpmc_recv", ida, 20, 0, 1);
	check_seq(_metadata, &log, ida, 0, wa, 5);
	ev_msg(wb[0], "mpmc_send", idb, 1, 1, 0);
	ev_msg(wb[1], "mpmc_send", idb, 2, 2, 1);
	ev_msg(wb[2], "mpmc_send", idb, 3, 3, 2);
	ev_shut(wb[3], idb, MPMC_SHUT_RD, MPMC_SHUT_RD, 3);
	ev_shut(wb[4], idb, MPMC_SHUT_WR, MPMC_SHUT_RDWR, 0);
	check_seq(_metadata, &log, idb, 0, wb, 5);
	trace_free(&log);
	close(a);
	close(b);
}

/*
 * The last close of each role shuts its direction down: the last sender
 * with SHUT_WR, the last receiver with SHUT_RD and the queue discarded.
 * O_RDONLY and O_WRONLY channels are born with the other bit set (no
 * event then), so their close adds only the missing bit.
 */
TEST_F(trace, last_close)
{
	struct mpmc_endpoint ep = { .roles = MPMC_ROLE_RECV,
				    .flags = O_CLOEXEC };
	unsigned long long id, idr, idw;
	char w[4][EVLEN], wr[1][EVLEN], ww[1][EVLEN];
	struct tlog log;
	int fd, rfd, ro, wo;

	NEED_TRACE();
	fd = chan_of(_metadata, mpmc_test_open(O_RDWR), &id);
	rfd = ioctl(fd, MPMC_IOC_NEW_ENDPOINT, &ep);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(id, chan_id(rfd));
	ro = chan_of(_metadata, mpmc_test_open(O_RDONLY), &idr);
	wo = chan_of(_metadata, mpmc_test_open(O_WRONLY), &idw);

	send_n(_metadata, fd, 4);
	send_n(_metadata, fd, 6);
	close(fd);	/* the only sender; rfd still receives */
	close(rfd);
	close(ro);
	close(wo);

	ASSERT_EQ(0, trace_read(&log));
	ev_msg(w[0], "mpmc_send", id, 4, 1, 0);
	ev_msg(w[1], "mpmc_send", id, 6, 2, 1);
	ev_shut(w[2], id, MPMC_SHUT_WR, MPMC_SHUT_WR, 0);
	ev_shut(w[3], id, MPMC_SHUT_RD, MPMC_SHUT_RDWR, 2);
	check_seq(_metadata, &log, id, self->tid, w, 4);
	check_seq(_metadata, &log, id, 0, w, 4);
	ev_shut(wr[0], idr, MPMC_SHUT_RD, MPMC_SHUT_RDWR, 0);
	check_seq(_metadata, &log, idr, 0, wr, 1);
	ev_shut(ww[0], idw, MPMC_SHUT_WR, MPMC_SHUT_RDWR, 0);
	check_seq(_metadata, &log, idw, 0, ww, 1);
	trace_free(&log);
}

/*
 * Batches: one mpmc_send/mpmc_recv per message. A receive batch that
 * times out blocks (mpmc_block) and then gives up itself: an mpmc_wake
 * from its own task with result -ETIMEDOUT.
 */
TEST_F(trace, batch)
{
	char b1[4] = "abc", b2[5] = "defg", b3[6] = "hijkl", r[3][64];
	struct mpmc_msgvec sv[3] = {
		{ .buf = (uintptr_t)b1, .len = sizeof(b1) },
		{ .buf = (uintptr_t)b2, .len = sizeof(b2) },
		{ .buf = (uintptr_t)b3, .len = sizeof(b3) },
	};
	struct mpmc_msgvec rv[3];
	struct mpmc_batch bt = { .vec = (uintptr_t)sv, .count = 3,
				 .timeout_ns = -1 };
	unsigned long long id;
	struct mpmc_stats st;
	struct tlog log;
	char w[8][EVLEN];
	int fd, i;

	NEED_TRACE();
	fd = chan_of(_metadata, mpmc_test_open(O_RDWR), &id);

	ASSERT_EQ(3, ioctl(fd, MPMC_IOC_SEND, &bt));
	for (i = 0; i < 3; i++)
		rv[i] = (struct mpmc_msgvec){ .buf = (uintptr_t)r[i],
					      .len = sizeof(r[i]) };
	bt.vec = (uintptr_t)rv;
	ASSERT_EQ(3, ioctl(fd, MPMC_IOC_RECV, &bt));
	bt.count = 1;
	bt.timeout_ns = 20 * 1000 * 1000;
	ASSERT_ERRNO(ETIMEDOUT, ioctl(fd, MPMC_IOC_RECV, &bt));
	MPMC_STATS(fd, &st);
	ASSERT_EQ(0, st.blocked_receivers);

	ASSERT_EQ(0, trace_read(&log));
	ev_msg(w[0], "mpmc_send", id, 4, 1, 0);
	ev_msg(w[1], "mpmc_send", id, 5, 2, 1);
	ev_msg(w[2], "mpmc_send", id, 6, 3, 2);
	ev_msg(w[3], "mpmc_recv", id, 4, 2, 0);
	ev_msg(w[4], "mpmc_recv", id, 5, 1, 1);
	ev_msg(w[5], "mpmc_recv", id, 6, 0, 2);
	ev_block(w[6], id, "recv", 1);
	ev_wake(w[7], id, "recv", gettid(), -ETIMEDOUT);
	check_seq(_metadata, &log, id, 0, w, 8);
	trace_free(&log);
	close(fd);
}

/* Each event has its own enable: only the enabled one records. */
TEST_F(trace, enable_per_event)
{
	unsigned long long id;
	struct tlog log;
	char w[1][EVLEN];
	int fd, i;

	NEED_TRACE();
	for (i = 0; i < NR_EVENTS; i++)
		ASSERT_EQ(0, event_write(event_names[i], "enable", "0"));
	fd = chan_of(_metadata, mpmc_test_open(O_RDWR), &id);

	send_n(_metadata, fd, 8);
	recv_n(_metadata, fd, 8);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	ASSERT_EQ(0, trace_read(&log));
	check_seq(_metadata, &log, id, 0, NULL, 0);
	trace_free(&log);

	ASSERT_EQ(0, event_write("mpmc_recv", "enable", "1"));
	close(fd);
	fd = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, fd);
	id = chan_id(fd);
	send_n(_metadata, fd, 9);
	recv_n(_metadata, fd, 9);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RDWR));
	ASSERT_EQ(0, trace_read(&log));
	ev_msg(w[0], "mpmc_recv", id, 9, 0, 0);
	check_seq(_metadata, &log, id, 0, w, 1);
	trace_free(&log);
	close(fd);
}

/* The "id" field filters mpmc_send down to one channel. */
TEST_F(trace, filter_by_id)
{
	unsigned long long ida, idb;
	char wa[1][EVLEN], wb[2][EVLEN];
	struct tlog log;
	char filter[64];
	int a, b;

	NEED_TRACE();
	a = chan_of(_metadata, mpmc_test_open(O_RDWR), &ida);
	b = chan_of(_metadata, mpmc_test_open(O_RDWR), &idb);
	snprintf(filter, sizeof(filter), "id == %llu", idb);
	ASSERT_EQ(0, event_write("mpmc_send", "filter", filter));

	send_n(_metadata, a, 3);
	send_n(_metadata, b, 4);
	recv_n(_metadata, a, 3);
	recv_n(_metadata, b, 4);
	ASSERT_EQ(0, filter_restore());
	ASSERT_EQ(0, trace_read(&log));
	ev_msg(wa[0], "mpmc_recv", ida, 3, 0, 0);
	check_seq(_metadata, &log, ida, 0, wa, 1);
	ev_msg(wb[0], "mpmc_send", idb, 4, 1, 0);
	ev_msg(wb[1], "mpmc_recv", idb, 4, 0, 0);
	check_seq(_metadata, &log, idb, 0, wb, 2);
	trace_free(&log);
	close(a);
	close(b);
}

/* ---- sequence numbers ------------------------------------------------ */

#define SEQ_PER_SENDER	120	/* messages of each of the two senders */
#define SEQ_MAX		(2 * SEQ_PER_SENDER)

/*
 * Two senders (write() and MPMC_IOC_SEND pairs) and two receivers (read()
 * and MPMC_IOC_RECV of 3) on a channel of capacity 4: senders block and
 * are moved in by receivers, receivers block and are handed messages.
 * Sender i's k-th message is 1 + i + 2k bytes long: the length names it.
 */
struct seqload {
	int fd;
	atomic_int errors;
};

static void *seq_sender(void *arg)
{
	struct peer *p = arg;
	struct seqload *l = p->ctx;
	static char buf[2][SEQ_MAX + 2];
	struct mpmc_msgvec v[2];
	struct mpmc_batch b = { .vec = (uintptr_t)v, .count = 2,
				.timeout_ns = -1 };
	int k, len, n;

	memset(buf[p->id], 'a' + p->id, sizeof(buf[p->id]));
	for (k = 0; k < SEQ_PER_SENDER; k++) {
		len = 1 + p->id + 2 * k;
		if (!p->id) {
			if (write(l->fd, buf[0], len) != len)
				atomic_fetch_add(&l->errors, 1);
			continue;
		}
		/* A pair in one batch; the second may stay for later. */
		v[0] = (struct mpmc_msgvec){ .buf = (uintptr_t)buf[1],
					     .len = len };
		v[1] = (struct mpmc_msgvec){ .buf = (uintptr_t)buf[1],
					     .len = len + 2 };
		b.count = k + 1 < SEQ_PER_SENDER ? 2 : 1;
		n = ioctl(l->fd, MPMC_IOC_SEND, &b);
		if (n < 1)
			atomic_fetch_add(&l->errors, 1);
		if (n == 2)
			k++;
	}
	return NULL;
}

static void *seq_receiver(void *arg)
{
	struct peer *p = arg;
	struct seqload *l = p->ctx;
	char buf[3][SEQ_MAX + 2];
	struct mpmc_msgvec v[3];
	struct mpmc_batch b = { .vec = (uintptr_t)v, .count = 3,
				.timeout_ns = -1 };
	int i, n;

	for (;;) {
		if (!p->id) {
			n = read(l->fd, buf[0], sizeof(buf[0]));
		} else {
			for (i = 0; i < 3; i++)
				v[i] = (struct mpmc_msgvec){
					.buf = (uintptr_t)buf[i],
					.len = sizeof(buf[i]) };
			n = ioctl(l->fd, MPMC_IOC_RECV, &b);
		}
		if (n == 0)
			return NULL;
		if (n < 0) {
			atomic_fetch_add(&l->errors, 1);
			return NULL;
		}
	}
}

/* A parsed mpmc_send, mpmc_recv or mpmc_drop with its seq field. */
static bool parse_seq(const struct tev *ev, char *kind, unsigned int *len,
		      unsigned int *seq)
{
	unsigned long long id;
	unsigned int q;

	if (sscanf(ev->text, "mpmc_send: chan=%llu len=%u queued=%u seq=%u",
		   &id, len, &q, seq) == 4) {
		*kind = 's';
		return true;
	}
	if (sscanf(ev->text, "mpmc_recv: chan=%llu len=%u queued=%u seq=%u",
		   &id, len, &q, seq) == 4) {
		*kind = 'r';
		return true;
	}
	if (sscanf(ev->text, "mpmc_drop: chan=%llu len=%u prio=%u seq=%u",
		   &id, len, &q, seq) == 4) {
		*kind = 'd';
		return true;
	}
	return false;
}

/*
 * The events of @chan for @n messages: the mpmc_send seqs are 0..@n-1,
 * each exactly once, increasing in the order each thread sent them; every
 * mpmc_recv and mpmc_drop carries the seq (and the length) of exactly one
 * mpmc_send, and no seq is received or dropped twice: @n in all, of which
 * @drops drops.
 */
static void check_seq_pairs(struct __test_metadata *_metadata,
			    const struct tlog *log, unsigned long long chan,
			    unsigned int n, unsigned int drops)
{
	int len_of[SEQ_MAX], taken[SEQ_MAX], tids[8], last[8];
	unsigned int i, len, seq, ntids = 0, nsend = 0, ntaken = 0, ndrop = 0;
	unsigned int t;
	char kind;

	ASSERT_GE(SEQ_MAX, n);
	for (i = 0; i < n; i++)
		len_of[i] = -1, taken[i] = 0;
	for (i = 0; i < (unsigned int)log->n; i++) {
		const struct tev *ev = &log->ev[i];

		if (ev->chan != chan || !parse_seq(ev, &kind, &len, &seq) ||
		    kind != 's')
			continue;
		ASSERT_GT(n, seq) dump_chan(_metadata, log, chan);
		ASSERT_EQ(-1, len_of[seq]) {
			TH_LOG("seq %u sent twice", seq);
			dump_chan(_metadata, log, chan);
		}
		len_of[seq] = len;
		nsend++;
		for (t = 0; t < ntids && tids[t] != ev->tid; t++)
			;
		if (t == ntids) {
			ASSERT_GT(ARRAY_SIZE(tids), ntids);
			tids[ntids++] = ev->tid;
		} else {
			ASSERT_LT(last[t], (int)seq) {
				TH_LOG("tid %d sent seq %u after %d", ev->tid,
				       seq, last[t]);
				dump_chan(_metadata, log, chan);
			}
		}
		last[t] = seq;
	}
	EXPECT_EQ(n, nsend) dump_chan(_metadata, log, chan);
	for (i = 0; i < (unsigned int)log->n; i++) {
		const struct tev *ev = &log->ev[i];

		if (ev->chan != chan || !parse_seq(ev, &kind, &len, &seq) ||
		    kind == 's')
			continue;
		ASSERT_GT(n, seq) dump_chan(_metadata, log, chan);
		ASSERT_EQ(len_of[seq], (int)len) {
			TH_LOG("%s: seq %u was sent with len %d", ev->text,
			       seq, len_of[seq]);
			dump_chan(_metadata, log, chan);
		}
		ASSERT_EQ(0, taken[seq]) {
			TH_LOG("%s: seq %u taken twice", ev->text, seq);
			dump_chan(_metadata, log, chan);
		}
		taken[seq] = 1;
		ntaken++;
		ndrop += kind == 'd';
	}
	EXPECT_EQ(n, ntaken) dump_chan(_metadata, log, chan);
	EXPECT_EQ(drops, ndrop);
}

static void *rdv_sender(void *arg)
{
	struct peer *p = arg;
	struct seqload *l = p->ctx;
	char buf[32];
	int len;

	memset(buf, 'r', sizeof(buf));
	for (len = 1; len <= 20; len++)
		if (write(l->fd, buf, len) != len)
			atomic_fetch_add(&l->errors, 1);
	return NULL;
}

/*
 * Every message carries a per-channel sequence number from its mpmc_send
 * to its mpmc_recv or mpmc_drop: with senders and receivers blocking and
 * batching, on a rendezvous channel, and in overwrite mode.
 */
TEST_F(trace, seq_pairs_once)
{
	unsigned long long id, idr, ido;
	struct peer snd[2], rcv[2], rdv[1];
	struct seqload l = { 0 }, lr = { 0 };
	char drop_on[16], w[11][EVLEN], buf[64];
	struct tlog log;
	int fd, len;

	NEED_TRACE();
	ASSERT_EQ(0, tr_read("events/mpmc/mpmc_drop/enable", drop_on,
			     sizeof(drop_on)));
	ASSERT_EQ(0, event_write("mpmc_drop", "enable", "1"));

	fd = chan_of(_metadata, mpmc_test_open_cfg(4, 4096), &id);
	l.fd = fd;
	ASSERT_EQ(0, peers_start(rcv, 2, &l, seq_receiver));
	ASSERT_EQ(0, peers_start(snd, 2, &l, seq_sender));
	peers_join(snd, 2);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	peers_join(rcv, 2);
	ASSERT_EQ(0, atomic_load(&l.errors));
	close(fd);

	/* Rendezvous: the receiver takes each message from its sender. */
	fd = chan_of(_metadata, mpmc_test_open_cfg(4, 64), &idr);
	ASSERT_EQ(0, set_config(fd, 0, 0));
	lr.fd = fd;
	ASSERT_EQ(0, peers_start(rdv, 1, &lr, rdv_sender));
	for (len = 1; len <= 20; len++)
		ASSERT_EQ(len, read(fd, buf, sizeof(buf)));
	peers_join(rdv, 1);
	ASSERT_EQ(0, atomic_load(&lr.errors));
	close(fd);

	/* Overwrite: the three oldest are dropped, with their seqs. */
	fd = chan_of(_metadata, mpmc_test_open_cfg(2, 64), &ido);
	ASSERT_EQ(0, set_flags(fd, MPMC_CONFIG_OVERWRITE));
	for (len = 1; len <= 5; len++)
		send_n(_metadata, fd, len);
	recv_n(_metadata, fd, 4);
	recv_n(_metadata, fd, 5);
	close(fd);

	ASSERT_EQ(0, event_write("mpmc_drop", "enable", drop_on));
	ASSERT_EQ(0, trace_read(&log));
	EXPECT_EQ(0, log.lost);
	check_seq_pairs(_metadata, &log, id, SEQ_MAX, 0);
	check_seq_pairs(_metadata, &log, idr, 20, 0);
	check_seq_pairs(_metadata, &log, ido, 5, 3);
	/* One thread, in trace order: each drop just before its sender. */
	ev_msg(w[0], "mpmc_send", ido, 1, 1, 0);
	ev_msg(w[1], "mpmc_send", ido, 2, 2, 1);
	for (len = 3; len <= 5; len++) {
		snprintf(w[2 * len - 4], EVLEN,
			 "mpmc_drop: chan=%llu len=%d prio=0 seq=%d", ido,
			 len - 2, len - 3);
		ev_msg(w[2 * len - 3], "mpmc_send", ido, len, 2, len - 1);
	}
	ev_msg(w[8], "mpmc_recv", ido, 4, 1, 3);
	ev_msg(w[9], "mpmc_recv", ido, 5, 0, 4);
	ev_shut(w[10], ido, MPMC_SHUT_RDWR, MPMC_SHUT_RDWR, 0);	/* close() */
	check_seq(_metadata, &log, ido, self->tid, w, 11);
	trace_free(&log);
}

/*
 * Two senders blocked on a full channel of capacity 1, both moved in by
 * one receive batch of 2 under one hold of the lock: each one's
 * mpmc_send, emitted when it returns, carries the seq its own message
 * was accepted with (1 and 2), not what the channel counts by then.
 */
TEST_F(trace, seq_of_blocked_senders)
{
	char r[2][64], buf[64];
	struct mpmc_msgvec rv[2] = {
		{ .buf = (uintptr_t)r[0], .len = sizeof(r[0]) },
		{ .buf = (uintptr_t)r[1], .len = sizeof(r[1]) },
	};
	struct mpmc_batch bt = { .vec = (uintptr_t)rv, .count = 2,
				 .timeout_ns = -1 };
	char w1[1][EVLEN], w2[1][EVLEN];
	unsigned long long id;
	struct op o1, o2;
	struct tlog log;
	int fd;

	NEED_TRACE();
	fd = chan_of(_metadata, mpmc_test_open_cfg(1, 64), &id);
	send_n(_metadata, fd, 3);			/* seq 0 */
	start_blocked(_metadata, &o1, fd, true, 5, 1);	/* seq 1 */
	start_blocked(_metadata, &o2, fd, true, 7, 2);	/* seq 2 */
	ASSERT_EQ(2, ioctl(fd, MPMC_IOC_RECV, &bt));
	EXPECT_EQ(3U, rv[0].len);
	EXPECT_EQ(5U, rv[1].len);
	ASSERT_EQ(0, pthread_join(o1.th, NULL));
	ASSERT_EQ(0, pthread_join(o2.th, NULL));
	ASSERT_EQ(5, o1.ret);
	ASSERT_EQ(7, o2.ret);
	ASSERT_EQ(7, read(fd, buf, sizeof(buf)));

	ASSERT_EQ(0, trace_read(&log));
	EXPECT_EQ(0, log.lost);
	check_seq_pairs(_metadata, &log, id, 3, 0);
	/* Each blocked writer: its block, then its own message's send. */
	ev_msg(w1[0], "mpmc_send", id, 5, 1, 1);
	ev_msg(w2[0], "mpmc_send", id, 7, 1, 2);
	{
		const struct tev *got[MAX_SEL];
		int n1 = select_events(&log, id, o1.tid, got);

		ASSERT_EQ(2, n1) dump_chan(_metadata, &log, id);
		EXPECT_STREQ(w1[0], got[1]->text);
		ASSERT_EQ(2, select_events(&log, id, o2.tid, got))
			dump_chan(_metadata, &log, id);
		EXPECT_STREQ(w2[0], got[1]->text);
	}
	trace_free(&log);
	close(fd);
}

/*
 * Last (tests run in file order): undo the setup and check that tracefs is
 * as we found it. The harness's exit does the same again, harmlessly.
 */
TEST_F(trace, restore)
{
	char p[256], v[512];
	int i;

	NEED_TRACE();
	ASSERT_EQ(0, tr_restore());
	for (i = 0; i < NR_EVENTS; i++) {
		pathf(p, sizeof(p), "%s/events/mpmc/%s/enable", tr.root,
		      event_names[i]);
		ASSERT_EQ(0, read_line(p, v, sizeof(v)));
		EXPECT_STREQ(tr.top_enable[i], v) TH_LOG("%s", p);
	}
	if (tr.instance) {
		EXPECT_ERRNO(ENOENT, access(tr.dir, F_OK));
		return;
	}
	ASSERT_EQ(0, tr_read("tracing_on", v, sizeof(v)));
	EXPECT_STREQ(tr.saved_on, v);
	ASSERT_EQ(0, tr_read("events/mpmc/mpmc_send/filter", v, sizeof(v)));
	EXPECT_STREQ(tr.saved_filter, v);
	ASSERT_EQ(0, tr_read("trace_clock", v, sizeof(v)));
	snprintf(p, sizeof(p), "[%s]", tr.saved_clock);
	EXPECT_NE(NULL, strstr(v, p)) TH_LOG("trace_clock: %s", v);
}

TEST_HARNESS_MAIN
