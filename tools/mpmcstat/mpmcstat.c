// SPDX-License-Identifier: GPL-2.0
/*
 * mpmcstat: every /dev/mpmc channel on the machine, its holders, its
 * backlog, its rates and the time its messages spend in it.
 *
 * Channels are found by scanning /proc/PID/fd for files whose link reads
 * /dev/mpmc (or is the mpmc character device), or anon_inode:[mpmc] (an
 * endpoint from MPMC_IOC_NEW_ENDPOINT), and reading /proc/PID/fdinfo/FD,
 * whose "id:" line names the channel and whose other lines are its
 * MPMC_IOC_GET_STATS fields (mpmc(4)). A process that exits during the
 * scan is skipped; one whose fds cannot be read (EACCES: not ours) is
 * reported.
 *
 * --latency pairs the mpmc_send and mpmc_recv (or mpmc_drop) tracepoints
 * of each message by their (chan, seq) fields, in a private tracefs
 * instance, and prints the time in queue per channel. See mpmcstat(8).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <linux/mpmc.h>

#ifndef MPMCSTAT_VERSION
#define MPMCSTAT_VERSION "unknown"
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char *prog = "mpmcstat";

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the scan ------------------------------------------------------- */

struct holder {
	int pid;
	int fd;
	char comm[64];
	unsigned int roles;	/* MPMC_ROLE_* from fdinfo */
	bool nonblock;
};

struct chan {
	unsigned long long id;
	unsigned int config_flags;
	struct mpmc_stats st;
	double when;		/* CLOCK_MONOTONIC of the fdinfo read */
	struct holder *h;
	int nh;
	/* live mode */
	bool has_rate;
	double send_rate, recv_rate;
};

struct denied {
	int pid;
	char comm[64];
	int err;
};

struct scan {
	struct chan *ch;
	int nch;
	struct denied *den;
	int nden;
	int vanished;		/* processes or fds gone during the scan */
};

static dev_t mpmc_rdev;		/* the misc device's number, 0 if unknown */

static void find_rdev(void)
{
	unsigned int maj, min;
	FILE *f = fopen("/sys/class/misc/mpmc/dev", "re");

	if (!f)
		return;
	if (fscanf(f, "%u:%u", &maj, &min) == 2)
		mpmc_rdev = makedev(maj, min);
	fclose(f);
}

/* Errors that mean "the process or fd is gone": skip it silently. */
static bool gone(int err)
{
	return err == ENOENT || err == ESRCH;
}

static int read_small(int dirfd, const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	buf[n] = '\0';
	return n;
}

static void read_comm(int pid, char *comm, size_t size)
{
	char path[64], buf[64];

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if (read_small(AT_FDCWD, path, buf, sizeof(buf)) <= 0) {
		snprintf(comm, size, "?");
		return;
	}
	buf[strcspn(buf, "\n")] = '\0';
	snprintf(comm, size, "%s", buf);
}

static bool is_mpmc_link(int fddir, const char *name)
{
	char target[PATH_MAX];
	struct stat st;
	ssize_t n = readlinkat(fddir, name, target, sizeof(target) - 1);

	if (n < 0)
		return false;
	target[n] = '\0';
	if (!strcmp(target, "/dev/mpmc") || !strcmp(target, "anon_inode:[mpmc]"))
		return true;
	/* /dev/mpmc under another name (a container's /dev, a udev link). */
	if (mpmc_rdev && target[0] == '/' && !fstatat(fddir, name, &st, 0) &&
	    S_ISCHR(st.st_mode) && st.st_rdev == mpmc_rdev)
		return true;
	return false;
}

/* The value of "name:\t..." in fdinfo text @buf. */
static bool field(const char *buf, const char *name, unsigned long long *v,
		  int base)
{
	size_t n = strlen(name);
	const char *p = buf;

	while (p && *p) {
		if (!strncmp(p, name, n) && p[n] == ':') {
			char *end;

			errno = 0;
			*v = strtoull(p + n + 1, &end, base);
			return !errno && end != p + n + 1;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

static struct chan *chan_get(struct scan *s, unsigned long long id)
{
	int i;

	for (i = 0; i < s->nch; i++)
		if (s->ch[i].id == id)
			return &s->ch[i];
	s->ch = xrealloc(s->ch, (s->nch + 1) * sizeof(*s->ch));
	memset(&s->ch[s->nch], 0, sizeof(*s->ch));
	s->ch[s->nch].id = id;
	return &s->ch[s->nch++];
}

/*
 * Parse one fdinfo; false if it is not an mpmc file (an fd reused since
 * the readlink) or lacks a field.
 */
static bool parse_fdinfo(const char *buf, unsigned long long *id,
			 unsigned long long *flags, unsigned int *roles,
			 unsigned int *cfg, struct mpmc_stats *st)
{
	static const char *const names[] = {
		"capacity", "max_msg_size", "queued_msgs", "queued_bytes",
		"shutdown", "send_files", "recv_files", "blocked_senders",
		"blocked_receivers", "total_sent", "total_received",
		"total_dropped",
	};
	unsigned long long v[ARRAY_SIZE(names)], r, c;
	unsigned int i;

	if (!field(buf, "id", id, 10) || !field(buf, "roles", &r, 10) ||
	    !field(buf, "config_flags", &c, 10) || !field(buf, "flags", flags, 8))
		return false;
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (!field(buf, names[i], &v[i], 10))
			return false;
	*roles = r;
	*cfg = c;
	memset(st, 0, sizeof(*st));
	st->capacity = v[0];
	st->max_msg_size = v[1];
	st->queued_msgs = v[2];
	st->queued_bytes = v[3];
	st->shutdown = v[4];
	st->send_files = v[5];
	st->recv_files = v[6];
	st->blocked_senders = v[7];
	st->blocked_receivers = v[8];
	st->total_sent = v[9];
	st->total_received = v[10];
	st->total_dropped = v[11];
	return true;
}

static void add_denied(struct scan *s, int pid, int err)
{
	s->den = xrealloc(s->den, (s->nden + 1) * sizeof(*s->den));
	s->den[s->nden].pid = pid;
	s->den[s->nden].err = err;
	read_comm(pid, s->den[s->nden].comm, sizeof(s->den[s->nden].comm));
	s->nden++;
}

static void scan_pid(struct scan *s, int pid)
{
	char path[320], buf[4096], comm[64] = "";
	unsigned long long id, flags;
	struct mpmc_stats st;
	unsigned int roles, cfg;
	struct dirent *de;
	int fddir, n;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	fddir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fddir < 0) {
		if (gone(errno))
			s->vanished++;
		else
			add_denied(s, pid, errno);
		return;
	}
	d = fdopendir(fddir);
	if (!d) {
		close(fddir);
		return;
	}
	for (errno = 0; (de = readdir(d)); errno = 0) {
		struct holder *h;
		struct chan *c;

		if (de->d_name[0] == '.')
			continue;
		if (!is_mpmc_link(fddir, de->d_name))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", pid,
			 de->d_name);
		n = read_small(AT_FDCWD, path, buf, sizeof(buf));
		if (n < 0) {
			if (gone(-n)) {
				s->vanished++;
				continue;
			}
			add_denied(s, pid, -n);
			break;
		}
		if (!parse_fdinfo(buf, &id, &flags, &roles, &cfg, &st))
			continue;
		if (!comm[0])
			read_comm(pid, comm, sizeof(comm));
		c = chan_get(s, id);
		c->st = st;
		c->config_flags = cfg;
		c->when = now_s();
		c->h = xrealloc(c->h, (c->nh + 1) * sizeof(*c->h));
		h = &c->h[c->nh++];
		h->pid = pid;
		h->fd = atoi(de->d_name);
		snprintf(h->comm, sizeof(h->comm), "%s", comm);
		h->roles = roles;
		h->nonblock = flags & O_NONBLOCK;
	}
	/* readdir of a process that exited: ENOENT; nothing more to see. */
	if (errno && gone(errno))
		s->vanished++;
	closedir(d);
}

static int cmp_holder(const void *a, const void *b)
{
	const struct holder *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->fd < y->fd ? -1 : x->fd > y->fd;
}

static int cmp_id(const void *a, const void *b)
{
	const struct chan *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static void scan_free(struct scan *s)
{
	int i;

	for (i = 0; i < s->nch; i++)
		free(s->ch[i].h);
	free(s->ch);
	free(s->den);
	memset(s, 0, sizeof(*s));
}

static void scan_all(struct scan *s)
{
	struct dirent *de;
	DIR *d;
	int i;

	memset(s, 0, sizeof(*s));
	d = opendir("/proc");
	if (!d)
		die("cannot read /proc: %s", strerror(errno));
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		scan_pid(s, pid);
	}
	closedir(d);
	for (i = 0; i < s->nch; i++)
		qsort(s->ch[i].h, s->ch[i].nh, sizeof(*s->ch[i].h), cmp_holder);
	qsort(s->ch, s->nch, sizeof(*s->ch), cmp_id);
}

/* ---- filters --------------------------------------------------------- */

struct idlist {
	unsigned long long *v;
	int n;
};

static void parse_list(struct idlist *l, const char *arg, const char *what)
{
	char *copy = strdup(arg), *tok, *save, *end;

	if (!copy)
		die("out of memory");
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		errno = 0;
		if (!isdigit((unsigned char)*tok))
			die("bad %s '%s': want a number (or a list: 1,2,3)",
			    what, tok);
		l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
		l->v[l->n] = strtoull(tok, &end, 10);
		if (errno || *end || (!strcmp(what, "pid") && (!l->v[l->n] ||
							       l->v[l->n] > INT_MAX)))
			die("bad %s '%s'", what, tok);
		l->n++;
	}
	if (!l->n)
		die("empty %s list", what);
	free(copy);
}

static bool in_list(const struct idlist *l, unsigned long long v)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (l->v[i] == v)
			return true;
	return false;
}

static struct idlist f_pid, f_chan;

/* Does @c pass -p and -c? */
static bool wanted(const struct chan *c)
{
	int i;

	if (f_chan.n && !in_list(&f_chan, c->id))
		return false;
	if (!f_pid.n)
		return true;
	for (i = 0; i < c->nh; i++)
		if (in_list(&f_pid, c->h[i].pid))
			return true;
	return false;
}

/* ---- output ----------------------------------------------------------- */

static const char *roles_str(unsigned int roles)
{
	static const char *const s[] = { "-", "w", "r", "rw" };

	return s[roles & 3];
}

static void flags_str(unsigned int f, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s", f & MPMC_CONFIG_OVERWRITE ? "ow" : "",
		 (f & MPMC_CONFIG_OVERWRITE) && (f & MPMC_CONFIG_THROUGHPUT) ?
		 "," : "", f & MPMC_CONFIG_THROUGHPUT ? "tp" : "");
	if (!buf[0])
		snprintf(buf, size, "-");
}

static const char *shut_str(unsigned int s)
{
	static const char *const n[] = { "open", "rd", "wr", "rdwr" };

	return n[s & 3];
}

enum col {
	C_ID, C_CAP, C_MAXSIZE, C_FLAGS, C_QUEUED, C_BYTES, C_FILL, C_SENDF,
	C_RECVF, C_BSEND, C_BRECV, C_SHUT, C_SENT, C_RECVD, C_DROPPED,
	C_SRATE, C_RRATE, C_HOLDERS, NR_COLS
};

static const struct {
	const char *name;
	const char *head;
	int width;		/* negative: left-aligned */
	const char *help;
} cols[NR_COLS] = {
	[C_ID] = { "id", "ID", 6, "channel id (fdinfo id:)" },
	[C_CAP] = { "cap", "CAP", 6, "capacity in messages" },
	[C_MAXSIZE] = { "maxsize", "MAXSIZE", 7, "max_msg_size in bytes" },
	[C_FLAGS] = { "flags", "FLAGS", -5, "config flags: ow overwrite, tp throughput" },
	[C_QUEUED] = { "queued", "QUEUED", 6, "queued messages" },
	[C_BYTES] = { "bytes", "BYTES", 8, "queued bytes" },
	[C_FILL] = { "fill", "FILL%", 5, "queued / capacity, percent" },
	[C_SENDF] = { "sendf", "SENDF", 5, "files with the send role" },
	[C_RECVF] = { "recvf", "RECVF", 5, "files with the receive role" },
	[C_BSEND] = { "bsend", "BSEND", 5, "blocked senders" },
	[C_BRECV] = { "brecv", "BRECV", 5, "blocked receivers" },
	[C_SHUT] = { "shut", "SHUT", -4, "shutdown: open, rd, wr, rdwr" },
	[C_SENT] = { "sent", "SENT", 10, "total messages sent" },
	[C_RECVD] = { "recvd", "RECVD", 10, "total messages received" },
	[C_DROPPED] = { "dropped", "DROPPED", 8, "total dropped by overwrite mode" },
	[C_SRATE] = { "sendrate", "SEND/s", 9, "sends per second (live mode)" },
	[C_RRATE] = { "recvrate", "RECV/s", 9, "receives per second (live mode)" },
	[C_HOLDERS] = { "holders", "HOLDERS", -7, "comm(pid):fd:roles[:nb] of every holder" },
};

static enum col out_cols[NR_COLS];
static int n_out_cols;
static bool no_header, json;

static void parse_cols(const char *arg)
{
	char *copy = strdup(arg), *tok, *save;
	int i;

	if (!copy)
		die("out of memory");
	n_out_cols = 0;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < NR_COLS; i++)
			if (!strcmp(tok, cols[i].name))
				break;
		if (i == NR_COLS) {
			fprintf(stderr, "%s: unknown column '%s'; columns:\n",
				prog, tok);
			for (i = 0; i < NR_COLS; i++)
				fprintf(stderr, "  %-9s %s\n", cols[i].name,
					cols[i].help);
			exit(2);
		}
		if (n_out_cols == NR_COLS)
			die("too many columns in -o %s", arg);
		out_cols[n_out_cols++] = i;
	}
	if (!n_out_cols)
		die("-o wants a list of columns");
	free(copy);
}

static void default_cols(bool live)
{
	static const enum col list[] = {
		C_ID, C_CAP, C_MAXSIZE, C_FLAGS, C_QUEUED, C_BYTES, C_BSEND,
		C_BRECV, C_SHUT, C_SENT, C_RECVD, C_DROPPED, C_HOLDERS,
	};
	static const enum col live_list[] = {
		C_ID, C_CAP, C_QUEUED, C_FILL, C_SRATE, C_RRATE, C_BSEND,
		C_BRECV, C_SHUT, C_DROPPED, C_HOLDERS,
	};
	unsigned int i;

	if (live) {
		for (i = 0; i < ARRAY_SIZE(live_list); i++)
			out_cols[i] = live_list[i];
		n_out_cols = ARRAY_SIZE(live_list);
		return;
	}
	for (i = 0; i < ARRAY_SIZE(list); i++)
		out_cols[i] = list[i];
	n_out_cols = ARRAY_SIZE(list);
}

static void holders_str(const struct chan *c, char *buf, size_t size)
{
	size_t off = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < c->nh && off < size; i++) {
		const struct holder *h = &c->h[i];

		off += snprintf(buf + off, size - off, "%s%s(%d):%d:%s%s",
				i ? "," : "", h->comm, h->pid, h->fd,
				roles_str(h->roles), h->nonblock ? ":nb" : "");
	}
	if (!c->nh)
		snprintf(buf, size, "-");
}

static void cell(const struct chan *c, enum col col, char *buf, size_t size)
{
	const struct mpmc_stats *st = &c->st;

	switch (col) {
	case C_ID: snprintf(buf, size, "%llu", c->id); break;
	case C_CAP: snprintf(buf, size, "%u", st->capacity); break;
	case C_MAXSIZE: snprintf(buf, size, "%u", st->max_msg_size); break;
	case C_FLAGS: flags_str(c->config_flags, buf, size); break;
	case C_QUEUED: snprintf(buf, size, "%u", st->queued_msgs); break;
	case C_BYTES: snprintf(buf, size, "%llu", (unsigned long long)st->queued_bytes); break;
	case C_FILL:
		if (st->capacity)
			snprintf(buf, size, "%u",
				 (unsigned int)(100ULL * st->queued_msgs /
						st->capacity));
		else
			snprintf(buf, size, "-");
		break;
	case C_SENDF: snprintf(buf, size, "%u", st->send_files); break;
	case C_RECVF: snprintf(buf, size, "%u", st->recv_files); break;
	case C_BSEND: snprintf(buf, size, "%u", st->blocked_senders); break;
	case C_BRECV: snprintf(buf, size, "%u", st->blocked_receivers); break;
	case C_SHUT: snprintf(buf, size, "%s", shut_str(st->shutdown)); break;
	case C_SENT: snprintf(buf, size, "%llu", (unsigned long long)st->total_sent); break;
	case C_RECVD: snprintf(buf, size, "%llu", (unsigned long long)st->total_received); break;
	case C_DROPPED: snprintf(buf, size, "%llu", (unsigned long long)st->total_dropped); break;
	case C_SRATE:
	case C_RRATE:
		if (c->has_rate)
			snprintf(buf, size, "%.1f", col == C_SRATE ?
				 c->send_rate : c->recv_rate);
		else
			snprintf(buf, size, "-");
		break;
	case C_HOLDERS: holders_str(c, buf, size); break;
	default: buf[0] = '\0';
	}
}

static void print_table(const struct scan *s)
{
	char buf[4096];
	int i, j, w;

	if (!no_header) {
		for (j = 0; j < n_out_cols; j++) {
			w = cols[out_cols[j]].width;
			printf(j ? " %*s" : "%*s", w, cols[out_cols[j]].head);
		}
		putchar('\n');
	}
	for (i = 0; i < s->nch; i++) {
		if (!wanted(&s->ch[i]))
			continue;
		for (j = 0; j < n_out_cols; j++) {
			w = cols[out_cols[j]].width;
			/* The last column is not padded. */
			if (j == n_out_cols - 1 && w < 0)
				w = 0;
			cell(&s->ch[i], out_cols[j], buf, sizeof(buf));
			printf(j ? " %*s" : "%*s", w, buf);
		}
		putchar('\n');
	}
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_chan(const struct chan *c)
{
	const struct mpmc_stats *st = &c->st;
	int i;

	printf("{\"id\":%llu,\"capacity\":%u,\"max_msg_size\":%u,"
	       "\"config_flags\":%u,\"overwrite\":%s,\"throughput\":%s,"
	       "\"queued_msgs\":%u,\"queued_bytes\":%llu,\"send_files\":%u,"
	       "\"recv_files\":%u,\"blocked_senders\":%u,"
	       "\"blocked_receivers\":%u,\"shutdown\":%u,\"shutdown_state\":\"%s\","
	       "\"total_sent\":%llu,\"total_received\":%llu,"
	       "\"total_dropped\":%llu",
	       c->id, st->capacity, st->max_msg_size, c->config_flags,
	       c->config_flags & MPMC_CONFIG_OVERWRITE ? "true" : "false",
	       c->config_flags & MPMC_CONFIG_THROUGHPUT ? "true" : "false",
	       st->queued_msgs, (unsigned long long)st->queued_bytes,
	       st->send_files, st->recv_files, st->blocked_senders,
	       st->blocked_receivers, st->shutdown, shut_str(st->shutdown),
	       (unsigned long long)st->total_sent,
	       (unsigned long long)st->total_received,
	       (unsigned long long)st->total_dropped);
	if (c->has_rate)
		printf(",\"send_rate\":%.3f,\"recv_rate\":%.3f", c->send_rate,
		       c->recv_rate);
	printf(",\"holders\":[");
	for (i = 0; i < c->nh; i++) {
		const struct holder *h = &c->h[i];

		printf("%s{\"pid\":%d,\"comm\":", i ? "," : "", h->pid);
		json_str(h->comm);
		printf(",\"fd\":%d,\"roles\":\"%s\",\"send\":%s,\"recv\":%s,"
		       "\"nonblock\":%s}", h->fd, roles_str(h->roles),
		       h->roles & MPMC_ROLE_SEND ? "true" : "false",
		       h->roles & MPMC_ROLE_RECV ? "true" : "false",
		       h->nonblock ? "true" : "false");
	}
	printf("]}");
}

static void json_scan(const struct scan *s, double t, double interval)
{
	bool first = true;
	int i;

	printf("{");
	if (interval > 0)
		printf("\"time\":%.3f,\"interval\":%.3f,", t, interval);
	printf("\"channels\":[");
	for (i = 0; i < s->nch; i++) {
		if (!wanted(&s->ch[i]))
			continue;
		if (!first)
			putchar(',');
		first = false;
		json_chan(&s->ch[i]);
	}
	printf("],\"unreadable\":[");
	for (i = 0; i < s->nden; i++) {
		printf("%s{\"pid\":%d,\"comm\":", i ? "," : "", s->den[i].pid);
		json_str(s->den[i].comm);
		printf(",\"error\":");
		json_str(strerrorname_np(s->den[i].err) ?
			 strerrorname_np(s->den[i].err) : "?");
		printf("}");
	}
	printf("],\"vanished\":%d}\n", s->vanished);
}

/* Processes whose fds could not be read, on stderr. */
static void report_denied(const struct scan *s)
{
	int i, shown = 0;

	if (!s->nden)
		return;
	fprintf(stderr, "%s: cannot read the fds of %d process%s (%s):",
		prog, s->nden, s->nden == 1 ? "" : "es",
		geteuid() ? "not yours; run as root to see all" :
		"permission denied");
	for (i = 0; i < s->nden && shown < 20; i++, shown++)
		fprintf(stderr, " %d(%s)", s->den[i].pid, s->den[i].comm);
	if (i < s->nden)
		fprintf(stderr, " and %d more (--json lists all)", s->nden - i);
	fputc('\n', stderr);
}

/* ---- live mode -------------------------------------------------------- */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* Sleep until @t (CLOCK_MONOTONIC seconds) or a signal. */
static void sleep_until(double t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - ts.tv_sec) * 1e9);
	while (!stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
					NULL) == EINTR)
		;
}

static int cmp_fill(const void *a, const void *b)
{
	const struct chan *x = a, *y = b;
	/* queued / capacity, compared without division; capacity 0 last */
	unsigned long long fx = (unsigned long long)x->st.queued_msgs *
				(y->st.capacity ? y->st.capacity : 1);
	unsigned long long fy = (unsigned long long)y->st.queued_msgs *
				(x->st.capacity ? x->st.capacity : 1);

	if (!x->st.capacity != !y->st.capacity)
		return !x->st.capacity ? 1 : -1;
	if (fx != fy)
		return fx > fy ? -1 : 1;
	if (x->st.queued_msgs != y->st.queued_msgs)
		return x->st.queued_msgs > y->st.queued_msgs ? -1 : 1;
	return cmp_id(a, b);
}

static void live(double interval, long count)
{
	struct scan prev, cur;
	bool tty = isatty(STDOUT_FILENO) && !json;
	double start, t;
	long k;
	int i;

	catch_signals();
	scan_all(&prev);
	report_denied(&prev);
	start = now_s();
	for (k = 0; !stop && (count < 0 || k < count); k++) {
		sleep_until(start + (k + 1) * interval);
		if (stop)
			break;
		scan_all(&cur);
		t = now_s();
		for (i = 0; i < cur.nch; i++) {
			struct chan *c = &cur.ch[i];
			struct chan key = { .id = c->id }, *p;
			double dt;

			p = bsearch(&key, prev.ch, prev.nch, sizeof(key),
				    cmp_id);
			if (!p)
				continue;
			dt = c->when - p->when;
			if (dt <= 0)
				continue;
			c->has_rate = true;
			c->send_rate = (c->st.total_sent - p->st.total_sent) / dt;
			c->recv_rate = (c->st.total_received -
					p->st.total_received) / dt;
		}
		qsort(cur.ch, cur.nch, sizeof(*cur.ch), cmp_fill);
		if (json) {
			json_scan(&cur, t - start, interval);
		} else {
			int shown = 0;

			if (tty)
				printf("\033[H\033[2J");
			for (i = 0; i < cur.nch; i++)
				shown += wanted(&cur.ch[i]);
			printf("mpmcstat: %d channel%s, every %gs, fullest first (%ld)\n",
			       shown, shown == 1 ? "" : "s", interval, k + 1);
			print_table(&cur);
			if (!tty)
				putchar('\n');
		}
		fflush(stdout);
		/* Bsearch needs prev sorted by id. */
		qsort(cur.ch, cur.nch, sizeof(*cur.ch), cmp_id);
		scan_free(&prev);
		prev = cur;
	}
	scan_free(&prev);
}

/* ---- latency ---------------------------------------------------------- */

static char tdir[256];		/* our tracefs instance, "" if none */

static int tfile_write(const char *name, const char *val)
{
	char path[512];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static const char *const lat_events[] = { "mpmc_send", "mpmc_recv", "mpmc_drop" };

static void instance_remove(void)
{
	char path[512];
	unsigned int i;

	if (!tdir[0])
		return;
	tfile_write("tracing_on", "0");
	for (i = 0; i < ARRAY_SIZE(lat_events); i++) {
		snprintf(path, sizeof(path), "events/mpmc/%s/enable",
			 lat_events[i]);
		tfile_write(path, "0");
	}
	if (rmdir(tdir) && errno != ENOENT)
		fprintf(stderr, "%s: cannot remove %s: %s\n", prog, tdir,
			strerror(errno));
	tdir[0] = '\0';
}

struct pend {
	unsigned long long chan;	/* 0: empty slot */
	unsigned int seq;
	char kind;			/* 's', 'r' or 'd' */
	unsigned long long ts;
};

struct lchan {
	unsigned long long id;
	unsigned long long *ns;
	size_t n, cap;
	unsigned long long drops;
};

static struct {
	struct pend *tab;
	size_t size, used;
	struct lchan *ch;
	int nch;
	unsigned long long lost, events, unpaired_recv;
} L;

static size_t pend_hash(unsigned long long chan, unsigned int seq)
{
	unsigned long long h = chan * 0x9e3779b97f4a7c15ULL ^ seq;

	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return h & (L.size - 1);
}

static void pend_grow(void);

static struct pend *pend_find(unsigned long long chan, unsigned int seq)
{
	size_t i = pend_hash(chan, seq);

	while (L.tab[i].chan && !(L.tab[i].chan == chan && L.tab[i].seq == seq))
		i = (i + 1) & (L.size - 1);
	return &L.tab[i];
}

/* Remove @p keeping the linear probing chains intact. */
static void pend_del(struct pend *p)
{
	size_t i = p - L.tab, j = i, k;

	L.tab[i].chan = 0;
	L.used--;
	for (;;) {
		j = (j + 1) & (L.size - 1);
		if (!L.tab[j].chan)
			return;
		k = pend_hash(L.tab[j].chan, L.tab[j].seq);
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			L.tab[i] = L.tab[j];
			L.tab[j].chan = 0;
			i = j;
		}
	}
}

static void pend_put(unsigned long long chan, unsigned int seq, char kind,
		     unsigned long long ts)
{
	struct pend *p;

	if ((L.used + 1) * 2 > L.size)
		pend_grow();
	p = pend_find(chan, seq);
	if (!p->chan)
		L.used++;
	*p = (struct pend){ chan, seq, kind, ts };
}

static void pend_grow(void)
{
	struct pend *old = L.tab;
	size_t i, n = L.size;

	L.size = n ? n * 2 : 4096;
	L.tab = calloc(L.size, sizeof(*L.tab));
	if (!L.tab)
		die("out of memory");
	L.used = 0;
	for (i = 0; i < n; i++)
		if (old[i].chan)
			pend_put(old[i].chan, old[i].seq, old[i].kind,
				 old[i].ts);
	free(old);
}

static struct lchan *lchan_get(unsigned long long id)
{
	int i;

	for (i = 0; i < L.nch; i++)
		if (L.ch[i].id == id)
			return &L.ch[i];
	L.ch = xrealloc(L.ch, (L.nch + 1) * sizeof(*L.ch));
	memset(&L.ch[L.nch], 0, sizeof(*L.ch));
	L.ch[L.nch].id = id;
	return &L.ch[L.nch++];
}

static void sample(unsigned long long chan, unsigned long long ns)
{
	struct lchan *c = lchan_get(chan);

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 256;
		c->ns = xrealloc(c->ns, c->cap * sizeof(*c->ns));
	}
	c->ns[c->n++] = ns;
}

/*
 * One event. A message's mpmc_send normally comes first; a sender that
 * blocked emits it when it returns, possibly after the mpmc_recv (or the
 * mpmc_drop) of its message: then the message spent no time queued.
 */
static void lat_event(char kind, unsigned long long chan, unsigned int seq,
		      unsigned long long ts)
{
	struct pend *p;

	if (f_chan.n && !in_list(&f_chan, chan))
		return;
	L.events++;
	p = pend_find(chan, seq);
	if (!p->chan) {
		if (kind == 'd')
			lchan_get(chan)->drops++;
		pend_put(chan, seq, kind, ts);
		return;
	}
	if (kind == 's' && p->kind == 'r')
		sample(chan, 0);
	else if (kind == 'r' && p->kind == 's')
		sample(chan, ts > p->ts ? ts - p->ts : 0);
	else if (kind == 'd' && p->kind == 's')
		lchan_get(chan)->drops++;
	else if (!(kind == 's' && p->kind == 'd')) {
		/* The same seq twice (wrapped, or lost events): restart. */
		*p = (struct pend){ chan, seq, kind, ts };
		return;
	}
	pend_del(p);
}

/* "  task-123  [001] d..2.  812.345678: mpmc_send: chan=1 len=2 ..." */
static void lat_line(char *line)
{
	unsigned long long chan, sec, usec;
	unsigned int a, b, seq;
	char *ev, *ts;
	char kind;

	if (!strncmp(line, "CPU:", 4)) {
		unsigned long long n;
		char *lost = strstr(line, "LOST ");

		if (lost && sscanf(lost, "LOST %llu", &n) == 1)
			L.lost += n;
		return;
	}
	ev = strstr(line, ": mpmc_");
	if (!ev)
		return;
	*ev = '\0';
	ev += 2;
	ts = strrchr(line, ' ');
	if (!ts || sscanf(ts + 1, "%llu.%llu", &sec, &usec) != 2)
		return;
	if (sscanf(ev, "mpmc_send: chan=%llu len=%u queued=%u seq=%u", &chan,
		   &a, &b, &seq) == 4)
		kind = 's';
	else if (sscanf(ev, "mpmc_recv: chan=%llu len=%u queued=%u seq=%u",
			&chan, &a, &b, &seq) == 4)
		kind = 'r';
	else if (sscanf(ev, "mpmc_drop: chan=%llu len=%u prio=%u seq=%u",
			&chan, &a, &b, &seq) == 4)
		kind = 'd';
	else
		return;
	lat_event(kind, chan, seq, sec * 1000000000ULL + usec * 1000ULL);
}

static int cmp_ull(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a;
	unsigned long long y = *(const unsigned long long *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least @pct % at or below it. */
static unsigned long long pctl(const struct lchan *c, unsigned int pct)
{
	size_t r = (c->n * pct + 99) / 100;

	return c->ns[r ? r - 1 : 0];
}

/* The log2 bucket of @ns: 0 for 0, else 1 + floor(log2(ns)). */
static int bucket(unsigned long long ns)
{
	return ns ? 64 - __builtin_clzll(ns) : 0;
}

static void human_ns(unsigned long long ns, char *buf, size_t size)
{
	if (ns < 1000)
		snprintf(buf, size, "%lluns", ns);
	else if (ns < 1000000)
		snprintf(buf, size, "%.1fus", ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, size, "%.1fms", ns / 1e6);
	else
		snprintf(buf, size, "%.2fs", ns / 1e9);
}

/* bpftrace's hist() labels: 1K is 1024 (ns). */
static void pow2_label(int b, char *buf, size_t size)
{
	static const char *const sfx[] = { "", "K", "M", "G", "T", "P", "E" };
	int e = b - 1;

	if (b == 0) {
		snprintf(buf, size, "0");
		return;
	}
	snprintf(buf, size, "%llu%s", 1ULL << (e % 10), sfx[e / 10]);
}

static void lat_report(double secs)
{
	int i, b, lo, hi;

	qsort(L.ch, L.nch, sizeof(*L.ch), cmp_id);
	if (json)
		printf("{\"duration\":%.3f,\"events\":%llu,\"lost_events\":%llu,"
		       "\"unpaired_recv\":%llu,\"unpaired_send\":%zu,\"channels\":[",
		       secs, L.events, L.lost, L.unpaired_recv, L.used);
	else
		printf("time in queue, %.1fs of mpmc_send/mpmc_recv/mpmc_drop "
		       "events (%llu; %llu lost; %llu receives of messages "
		       "sent before, %zu sends not received yet)\n",
		       secs, L.events, L.lost, L.unpaired_recv, L.used);
	for (i = 0; i < L.nch; i++) {
		struct lchan *c = &L.ch[i];
		unsigned long long cnt[65] = { 0 }, top = 0;
		size_t k;

		qsort(c->ns, c->n, sizeof(*c->ns), cmp_ull);
		for (k = 0; k < c->n; k++)
			cnt[bucket(c->ns[k])]++;
		lo = 65;
		hi = -1;
		for (b = 0; b < 65; b++) {
			if (!cnt[b])
				continue;
			lo = b < lo ? b : lo;
			hi = b;
			top = cnt[b] > top ? cnt[b] : top;
		}
		if (json) {
			bool first = true;

			printf("%s{\"id\":%llu,\"count\":%zu,\"drops\":%llu",
			       i ? "," : "", c->id, c->n, c->drops);
			if (c->n)
				printf(",\"p50_ns\":%llu,\"p99_ns\":%llu,"
				       "\"max_ns\":%llu", pctl(c, 50),
				       pctl(c, 99), c->ns[c->n - 1]);
			printf(",\"buckets\":[");
			for (b = lo; b <= hi; b++) {
				if (!cnt[b])
					continue;
				printf("%s{\"low_ns\":%llu,\"high_ns\":%llu,"
				       "\"count\":%llu}", first ? "" : ",",
				       b ? 1ULL << (b - 1) : 0,
				       b ? (b < 64 ? 1ULL << b : ~0ULL) : 1,
				       cnt[b]);
				first = false;
			}
			printf("]}");
			continue;
		}
		printf("\nchan %llu: %zu messages, %llu dropped", c->id, c->n,
		       c->drops);
		if (c->n) {
			char p50[32], p99[32], mx[32];

			human_ns(pctl(c, 50), p50, sizeof(p50));
			human_ns(pctl(c, 99), p99, sizeof(p99));
			human_ns(c->ns[c->n - 1], mx, sizeof(mx));
			printf(", p50 %s, p99 %s, max %s\n", p50, p99, mx);
			printf("  time in queue (ns), log2 buckets:\n");
		} else {
			printf("\n");
		}
		for (b = lo; b <= hi; b++) {
			char l[16], h[16], bar[53];
			int w = (int)(cnt[b] * 52 / top);

			pow2_label(b, l, sizeof(l));
			pow2_label(b + 1, h, sizeof(h));
			memset(bar, '@', w);
			bar[w] = '\0';
			if (b)
				printf("  [%s, %s)%*s %8llu |%-52s|\n", l, h,
				       (int)(12 - strlen(l) - strlen(h)), "",
				       cnt[b], bar);
			else
				printf("  [0]%*s %8llu |%-52s|\n", 12, "",
				       cnt[b], bar);
		}
	}
	if (json)
		printf("]}\n");
}

static const char *tracefs_root(void)
{
	static const char *const roots[] = {
		"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
	};
	char path[128];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(roots); i++) {
		snprintf(path, sizeof(path), "%s/instances", roots[i]);
		if (!access(path, F_OK))
			return roots[i];
	}
	return NULL;
}

static void latency(double duration)
{
	const char *root = tracefs_root();
	char path[512], fmt[4096], buf[65536], *line, *nl;
	size_t have = 0;
	double start, end;
	unsigned int i;
	int fd, n, err;

	if (!root)
		die("no tracefs at /sys/kernel/tracing or /sys/kernel/debug/tracing (mount -t tracefs nodev /sys/kernel/tracing)");
	for (i = 0; i < ARRAY_SIZE(lat_events); i++) {
		snprintf(path, sizeof(path), "%s/events/mpmc/%s/format", root,
			 lat_events[i]);
		n = read_small(AT_FDCWD, path, fmt, sizeof(fmt));
		if (n == -EACCES || n == -EPERM)
			die("cannot read %s: %s (--latency needs root, or access to tracefs)",
			    path, strerror(-n));
		if (n < 0)
			die("no event mpmc:%s in %s/events (is the mpmc module loaded?)",
			    lat_events[i], root);
		if (!strstr(fmt, "field:u32 seq;"))
			die("mpmc:%s has no seq field: the loaded mpmc module is too old for --latency",
			    lat_events[i]);
	}
	snprintf(tdir, sizeof(tdir), "%s/instances/mpmcstat-%d", root,
		 (int)getpid());
	if (mkdir(tdir, 0700)) {
		err = errno;
		tdir[0] = '\0';
		die("cannot make the tracefs instance %s/instances/mpmcstat-%d: %s",
		    root, (int)getpid(), strerror(err));
	}
	atexit(instance_remove);
	catch_signals();
	pend_grow();
	/* A new instance traces at once: off until the events are set. */
	if (tfile_write("tracing_on", "0"))
		die("cannot write %s/tracing_on", tdir);
	/* One clock for every CPU: a send and its receive may be on two. */
	if (tfile_write("trace_clock", "mono") &&
	    tfile_write("trace_clock", "global"))
		die("cannot set %s/trace_clock", tdir);
	tfile_write("buffer_size_kb", "4096");
	/* -c: the kernel drops the other channels' events. */
	for (i = 0; i < ARRAY_SIZE(lat_events) && f_chan.n; i++) {
		char filter[1024];
		size_t off = 0;
		int k;

		for (k = 0; k < f_chan.n && off < sizeof(filter); k++)
			off += snprintf(filter + off, sizeof(filter) - off,
					"%sid == %llu", k ? " || " : "",
					f_chan.v[k]);
		snprintf(path, sizeof(path), "events/mpmc/%s/filter",
			 lat_events[i]);
		err = off < sizeof(filter) ? tfile_write(path, filter) : -E2BIG;
		if (err)
			die("cannot set the filter of mpmc:%s in %s: %s",
			    lat_events[i], tdir, strerror(-err));
	}
	for (i = 0; i < ARRAY_SIZE(lat_events); i++) {
		snprintf(path, sizeof(path), "events/mpmc/%s/enable",
			 lat_events[i]);
		err = tfile_write(path, "1");
		if (err)
			die("cannot enable mpmc:%s in %s: %s", lat_events[i],
			    tdir, strerror(-err));
	}
	snprintf(path, sizeof(path), "%s/trace_pipe", tdir);
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		die("cannot open %s: %s", path, strerror(errno));
	if (tfile_write("tracing_on", "1"))
		die("cannot turn tracing on in %s", tdir);
	if (!json)
		fprintf(stderr, "%s: tracing %s for %gs (Ctrl-C to stop)\n",
			prog, tdir, duration);
	start = now_s();
	end = duration > 0 ? start + duration : 0;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		double left = end ? end - now_s() : 1;
		bool draining = stop || left <= 0;

		if (draining)
			tfile_write("tracing_on", "0");
		else
			poll(&pfd, 1, left > 0.2 ? 200 : (int)(left * 1000) + 1);
		for (;;) {
			/* Under a flood, stop reading on time all the same. */
			if (!draining && (stop || (end && now_s() >= end)))
				break;
			n = read(fd, buf + have, sizeof(buf) - 1 - have);
			if (n <= 0)
				break;
			have += n;
			buf[have] = '\0';
			for (line = buf; (nl = strchr(line, '\n'));
			     line = nl + 1) {
				*nl = '\0';
				lat_line(line);
			}
			have = strlen(line);
			memmove(buf, line, have);
			if (have == sizeof(buf) - 1)
				have = 0;	/* a line this long is not ours */
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			die("read %s: %s", path, strerror(errno));
		if (draining)
			break;
	}
	close(fd);
	end = now_s();
	instance_remove();
	/* What is left: receives whose send came before we started. */
	for (i = 0; i < L.size; i++) {
		if (L.tab[i].chan && L.tab[i].kind == 'r') {
			L.unpaired_recv++;
			L.used--;
		} else if (L.tab[i].chan && L.tab[i].kind == 'd') {
			L.used--;
		}
	}
	if (L.lost)
		fprintf(stderr, "%s: %llu events lost: the reader fell behind the trace (the figures are of the events read; -c traces fewer channels)\n",
			prog, L.lost);
	lat_report(end - start);
}

/* ---- main ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"Usage: mpmcstat [-p PID,..] [-c ID,..] [-o COL,..] [-H] [--json]\n"
"       mpmcstat -i SECONDS [-n COUNT] [-p PID,..] [-c ID,..] [-o COL,..] [--json]\n"
"       mpmcstat --latency [-d SECONDS] [-c ID,..] [--json]\n"
"\n"
"Every /dev/mpmc channel on the machine, from /proc/*/fd and fdinfo.\n"
"  -p, --pid PID,..      only channels held by these processes\n"
"  -c, --chan ID,..      only these channels (fdinfo id:)\n"
"  -o, --output COL,..   columns (-o help lists them)\n"
"  -H, --no-header       no header line\n"
"  -j, --json            JSON (live mode: one object per line)\n"
"  -i, --interval SECS   live mode: every SECS, rates, fullest first\n"
"  -n, --count N         live mode: stop after N reports\n"
"  -l, --latency         time in queue from the tracepoints (root)\n"
"  -d, --duration SECS   --latency: trace this long (default 10; 0: until Ctrl-C)\n"
"  -V, --version         version\n"
"  -h, --help            this text\n");
}

static double parse_secs(const char *arg, const char *opt, bool zero_ok)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || *end || end == arg || v < 0 || v > 1e6 || (!zero_ok && v == 0) ||
	    v != v)
		die("bad %s '%s': want seconds%s", opt, arg,
		    zero_ok ? "" : " > 0");
	return v;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "chan", required_argument, NULL, 'c' },
		{ "output", required_argument, NULL, 'o' },
		{ "no-header", no_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "latency", no_argument, NULL, 'l' },
		{ "duration", required_argument, NULL, 'd' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double interval = 0, duration = 10;
	bool lat = false, have_d = false;
	const char *cols_arg = NULL;
	long count = -1;
	struct scan s;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "p:c:o:Hji:n:ld:Vh", lo, NULL)) != -1) {
		switch (c) {
		case 'p': parse_list(&f_pid, optarg, "pid"); break;
		case 'c': parse_list(&f_chan, optarg, "channel id"); break;
		case 'o':
			if (!strcmp(optarg, "help")) {
				for (c = 0; c < NR_COLS; c++)
					printf("%-9s %s\n", cols[c].name,
					       cols[c].help);
				return 0;
			}
			cols_arg = optarg;
			break;
		case 'H': no_header = true; break;
		case 'j': json = true; break;
		case 'i': interval = parse_secs(optarg, "-i", false); break;
		case 'n':
			errno = 0;
			count = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || count <= 0)
				die("bad -n '%s': want a count > 0", optarg);
			break;
		case 'l': lat = true; break;
		case 'd':
			duration = parse_secs(optarg, "-d", true);
			have_d = true;
			break;
		case 'V': printf("mpmcstat %s\n", MPMCSTAT_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		die("unexpected argument '%s' (see --help)", argv[optind]);
	if (lat && (interval > 0 || count > 0 || cols_arg || f_pid.n))
		die("--latency takes only -d, -c and --json");
	if (have_d && !lat)
		die("-d is for --latency (live mode: -i SECONDS -n COUNT)");
	if (count > 0 && interval == 0)
		die("-n is for live mode: give -i SECONDS too");
	if (lat) {
		latency(duration);
		return 0;
	}
	if (cols_arg)
		parse_cols(cols_arg);
	else
		default_cols(interval > 0);
	find_rdev();
	if (access("/sys/module/mpmc", F_OK))
		fprintf(stderr, "%s: the mpmc module is not loaded (no /sys/module/mpmc): no channels\n",
			prog);
	if (interval > 0) {
		live(interval, count);
		return 0;
	}
	scan_all(&s);
	if (json)
		json_scan(&s, 0, 0);
	else
		print_table(&s);
	report_denied(&s);
	scan_free(&s);
	return 0;
}
