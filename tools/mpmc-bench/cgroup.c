// SPDX-License-Identifier: GPL-2.0
/*
 * mpmc-bench --cgroup DIR: run inside a child cgroup (v2) with the memory
 * controller on, where every GFP_KERNEL_ACCOUNT / __GFP_ACCOUNT allocation
 * is charged (in the root cgroup charging is skipped, which flatters
 * whoever allocates per message).
 */
#include "bench.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

static void cg_path(char *buf, const char *dir, const char *file)
{
	if (snprintf(buf, PATH_MAX, "%s/%s", dir, file) >= PATH_MAX)
		die("cgroup path too long: %s", dir);
}

/* A value of DIR/memory.stat, or -1. */
static long memory_stat(const char *dir, const char *key)
{
	char path[PATH_MAX], k[64];
	long v, found = -1;
	FILE *f;

	cg_path(path, dir, "memory.stat");
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (found < 0 && fscanf(f, "%63s %ld", k, &v) == 2)
		if (!strcmp(k, key))
			found = v;
	fclose(f);
	return found;
}

/* Create DIR with the memory controller on and move this process into it. */
void cgroup_enter(const char *dir)
{
	char *dup = strdup(dir), path[PATH_MAX], pid[32];

	cg_path(path, dirname(dup), "cgroup.subtree_control");
	free(dup);
	if (write_file(path, "+memory"))
		die("%s: cannot enable the memory controller (%s); is cgroup2 mounted?",
		    path, strerror(errno));
	if (mkdir(dir, 0755) && errno != EEXIST)
		die("mkdir %s: %s", dir, strerror(errno));
	cg_path(path, dir, "memory.current");
	if (access(path, R_OK))
		die("%s: no memory controller in the child cgroup", path);
	cg_path(path, dir, "cgroup.procs");
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (write_file(path, pid))
		die("%s: cannot move into the cgroup: %s", path, strerror(errno));
	note("in cgroup %s (memory controller on): slab %ld bytes", dir, memory_stat(dir, "slab"));
}

/* What is charged now, and the most that was. */
void cgroup_report(const char *dir)
{
	char cur[PATH_MAX], peak[PATH_MAX];

	cg_path(cur, dir, "memory.current");
	cg_path(peak, dir, "memory.peak");
	note("cgroup %s: slab %ld bytes, %ld in all, peak %ld", dir, memory_stat(dir, "slab"),
	     read_long_file(cur), read_long_file(peak));
}
