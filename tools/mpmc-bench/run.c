// SPDX-License-Identifier: GPL-2.0
/*
 * mpmc-bench: one timed repetition of a cell (fresh channels, the workers
 * started behind a barrier, joined, their messages checked), the
 * null-syscall floor, and the calibration of the message count.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

uint64_t gap_ns = 1000000;

/* The run's shared state (shared memory, for procs), its channels open. */
static struct run *run_new(const struct cell *cell, long n)
{
	struct run *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int i;

	if (r == MAP_FAILED)
		DIE_ERRNO("mmap");
	memset(r, 0, sizeof(*r));
	r->cell = *cell;
	r->gap_ns = gap_ns;
	if (n < 1)
		n = 1;
	if (cell->scen == S_PINGPONG || cell->scen == S_URING) {
		r->total = n;
		r->per_prod = n;
	} else {
		r->per_prod = (n + cell->prod - 1) / cell->prod;
		r->total = r->per_prod * cell->prod;
	}
	r->nchans = cell->scen == S_EPOLL ? EPOLL_CHANS : cell->scen == S_PINGPONG ? 2 : 1;
	for (i = 0; i < r->nchans; i++) {
		chan_open(&r->chans[i], cell->xp, cell->size, cell->cap,
			  cell->scen == S_EPOLL ? CH_RD_NONBLOCK : 0);
		r->chans[i].idx = i;
	}
	return r;
}

static void run_free(struct run *r)
{
	int i;

	for (i = 0; i < r->nchans; i++)
		chan_close(&r->chans[i]);
	pthread_barrier_destroy(&r->bar);
	munmap(r, sizeof(*r));
}

/* The workers: producers first, then consumers; ping-pong: client, echo. */
static void workers_init(struct run *r, struct worker *w)
{
	const struct cell *cell = &r->cell;
	pthread_barrierattr_t ba;
	int i, P = cell->prod;

	r->nworkers = P + cell->cons;
	if (r->nworkers > MAX_WORKERS)
		die("too many workers");
	for (i = 0; i < r->nworkers; i++) {
		bool prod = i < P;

		w[i].r = r;
		w[i].xl = NULL;
		w[i].id = i;
		w[i].role = cell->scen == S_PINGPONG ? i : prod ? i : i - P;
		w[i].fn = worker_fn(cell->scen, prod);
		r->res[i].consumer = cell->scen == S_PINGPONG ? i == 0 : !prod;
	}
	pthread_barrierattr_init(&ba);
	pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
	pthread_barrier_init(&r->bar, &ba, r->nworkers + 1);
}

/* Start every worker, as a thread or (procs) as a process. */
static void workers_start(struct run *r, struct worker *w, pthread_t *tid, pid_t *pid)
{
	pthread_attr_t at;
	int i;

	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 256 << 10);
	for (i = 0; i < r->nworkers; i++) {
		if (r->cell.scen != S_PROCS) {
			if (pthread_create(&tid[i], &at, worker_main, &w[i]))
				die("pthread_create failed");
			continue;
		}
		pid[i] = fork();
		if (pid[i] < 0)
			DIE_ERRNO("fork");
		if (!pid[i]) {
			worker_main(&w[i]);
			_exit(0);
		}
	}
	pthread_attr_destroy(&at);
}

static void workers_join(struct run *r, pthread_t *tid, pid_t *pid)
{
	int i, st;

	for (i = 0; i < r->nworkers; i++) {
		if (r->cell.scen != S_PROCS) {
			pthread_join(tid[i], NULL);
			continue;
		}
		if (waitpid(pid[i], &st, 0) < 0)
			DIE_ERRNO("waitpid");
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			die("a worker process failed");
	}
}

static uint64_t expected_sum(struct run *r)
{
	uint64_t s = 0;
	int p;

	if (r->cell.scen == S_PINGPONG || r->cell.scen == S_URING)
		return (uint64_t)r->total * (1ull << 40) +
		       (uint64_t)r->total * (r->total + 1) / 2;
	for (p = 0; p < r->cell.prod; p++)
		s += (uint64_t)r->per_prod * ((uint64_t)(p + 1) << 40) +
		     (uint64_t)r->per_prod * (r->per_prod + 1) / 2;
	return s;
}

/*
 * The consumers' shares: the fewest and the most messages one got, over
 * an even share (NAN with one consumer), the longest wait of fair, and
 * the mean send-to-receive time of wakeup.
 */
static void run_shares(struct run *r, struct sample *s)
{
	double lo = INFINITY, hi = 0, even;
	uint64_t gap = 0, wake = 0;
	int i, nc = 0;

	for (i = 0; i < r->nworkers; i++) {
		if (!r->res[i].consumer)
			continue;
		nc++;
		lo = r->res[i].count < lo ? r->res[i].count : lo;
		hi = r->res[i].count > hi ? r->res[i].count : hi;
		gap = r->res[i].max_gap_ns > gap ? r->res[i].max_gap_ns : gap;
		wake += r->res[i].wake_ns;
	}
	even = (double)r->total / nc;
	s->min_share = nc > 1 ? lo / even : NAN;
	s->max_share = nc > 1 ? hi / even : NAN;
	s->max_wait_us = r->cell.scen == S_FAIR ? gap / 1e3 : NAN;
	s->wake_us = r->cell.scen == S_WAKEUP ? wake / 1e3 / r->total : NAN;
}

/*
 * Every message received exactly once; the workers' own CPU time and
 * switches (wakeup: the receivers' switches only) into @cpu and @csw.
 */
static void run_check(struct run *r, uint64_t *cpu, uint64_t *csw)
{
	uint64_t sum = 0, cnt = 0;
	int i;

	*cpu = *csw = 0;
	for (i = 0; i < r->nworkers; i++) {
		if (r->res[i].consumer) {
			sum += r->res[i].sum;
			cnt += r->res[i].count;
		}
		*cpu += r->res[i].cpu_ns;
		if (r->cell.scen != S_WAKEUP || r->res[i].consumer)
			*csw += r->res[i].csw;
	}
	if (cnt != (uint64_t)r->total || sum != expected_sum(r))
		die("%s %s: received %llu of %ld messages, value sum %s: messages lost or duplicated",
		    xport_name[r->cell.xp], scen_name[r->cell.scen], (unsigned long long)cnt,
		    r->total, sum == expected_sum(r) ? "ok" : "WRONG");
}

static void pin_to_cpu0(cpu_set_t *old)
{
	cpu_set_t one;

	sched_getaffinity(0, sizeof(*old), old);
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		DIE_ERRNO("sched_setaffinity");
}

/* One timed repetition of @cell moving about @n messages. */
static struct sample run_once(const struct cell *cell, long n)
{
	struct run *r = run_new(cell, n);
	struct worker w[MAX_WORKERS];
	pthread_t tid[MAX_WORKERS];
	pid_t pid[MAX_WORKERS];
	uint64_t t0, t1, pcpu0, pcsw0, cpu, csw;
	bool procs = cell->scen == S_PROCS;
	struct sample s;
	cpu_set_t old;
	int i;

	workers_init(r, w);
	if (cell->pinned)
		pin_to_cpu0(&old);
	workers_start(r, w, tid, pid);
	pthread_barrier_wait(&r->bar);
	t0 = now_ns();
	pcpu0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
	pcsw0 = ctxsw(RUSAGE_SELF);
	workers_join(r, tid, pid);
	t1 = now_ns();
	if (cell->pinned)
		sched_setaffinity(0, sizeof(old), &old);
	run_check(r, &cpu, &csw);
	/*
	 * Threads: the whole process's CPU time and switches (io-wq workers
	 * too); processes: the sum of what each worker measured itself.
	 */
	if (!procs) {
		cpu = cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - pcpu0;
		if (cell->scen != S_WAKEUP)
			csw = ctxsw(RUSAGE_SELF) - pcsw0;
	}
	/* The threads' own mappings (mpmc-ring, shmring), untimed. */
	for (i = 0; !procs && i < r->nworkers; i++)
		chans_detach(w[i].xl, r->chans, r->nchans);
	s.secs = (t1 - t0) / 1e9;
	s.rate = r->total / s.secs;
	s.cpu_per_msg = (double)cpu / r->total;
	s.csw_per_msg = (double)csw / r->total;
	run_shares(r, &s);
	run_free(r);
	return s;
}

/* The null-syscall floor: getppid() in a loop. */
struct sample run_null(long n)
{
	uint64_t t0, c0, t1, c1, csw0;
	struct sample s;
	long i;

	t0 = now_ns();
	c0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	csw0 = ctxsw(RUSAGE_THREAD);
	for (i = 0; i < n; i++)
		syscall(SYS_getppid);
	c1 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	t1 = now_ns();
	s.secs = (t1 - t0) / 1e9;
	s.rate = n / s.secs;
	s.cpu_per_msg = (double)(c1 - c0) / n;
	s.csw_per_msg = (double)(ctxsw(RUSAGE_THREAD) - csw0) / n;
	s.min_share = s.max_share = s.max_wait_us = s.wake_us = NAN;
	return s;
}

struct sample run_any(const struct cell *c, long n)
{
	return c->scen == S_NULL ? run_null(n) : run_once(c, n);
}

/*
 * Warm up and find the message count that takes about @time_ms: double
 * (x8) until a run takes an eighth of it, then scale linearly.
 */
long calibrate(const struct cell *c, int time_ms, int wakeup_msgs)
{
	/* Several times what the channels hold, and a few per worker. */
	long min_n = 4L * c->cap > 256 ? 4L * c->cap : 256;
	struct sample s;
	double best, worst;
	long n, cap;
	int k;

	if (c->prod + c->cons > 0 && min_n < 16L * (c->prod + c->cons))
		min_n = 16L * (c->prod + c->cons);
	if (c->scen == S_WAKEUP) {
		run_any(c, wakeup_msgs / 4 > 8 ? wakeup_msgs / 4 : 8);
		return wakeup_msgs;
	}
	n = c->scen == S_NULL ? 20000 : 400;
	for (k = 0; k < 8; k++) {
		s = run_any(c, n);
		if (s.secs >= time_ms / 1e3 / 8)
			break;
		n *= 8;
	}
	/*
	 * Twice more at half the final size (the first runs are cold), and
	 * the faster of the two decides: a stall of the host (other guests)
	 * must not shrink the count to a burst that fits in the channel. But
	 * a repetition stays within 4 x time_ms at the slower one's rate, so
	 * that one lucky run on a loaded host cannot make it take minutes.
	 */
	n = (long)(n * (time_ms / 1e3) / s.secs);
	if (n < min_n)
		n = min_n;
	n /= 2;
	best = worst = run_any(c, n).secs;
	s = run_any(c, n);
	best = s.secs < best ? s.secs : best;
	worst = s.secs > worst ? s.secs : worst;
	cap = (long)(n * (4 * time_ms / 1e3) / worst);
	n = (long)(n * (time_ms / 1e3) / best);
	n = n > cap ? cap : n;
	return n < min_n ? min_n : n;
}
