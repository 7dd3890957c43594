// SPDX-License-Identifier: GPL-2.0
/*
 * Ring mode (issue 13, Documentation/ring-mode.rst), layout and ABI, through
 * the raw ABI only (no libmpmc): the control page's contents; SET_CONFIG's
 * errnos before and after the first mmap (frozen for life); mmap's errnos
 * (ENODEV, EACCES, EINVAL) and what mprotect, partial munmap and mremap may
 * do to a ring mapping; MPMC_IOC_RING_INFO and MPMC_IOC_RING_WAKE; the
 * syscall restrictions of a ring channel (no priorities, no peek); that a
 * message written with write() lies in the mapped ring exactly as the
 * protocol says and that a message placed there by hand is what read()
 * returns; the doorbell waking a blocked reader and writer; capacity 1 and
 * 2 over many laps; stats and poll derived from the ring.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/statvfs.h>

#include "kselftest_harness.h"
#include "mpmc_test.h"
#include "ring_test.h"

#define MSG	100	/* max_msg_size of most channels here */

/* Map @fd's ring into @m or abort the test. */
#define RMAP(m, fd) ASSERT_EQ(0, rmap_open((m), (fd))) \
	TH_LOG("rmap_open: %s", strerror(errno))

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Is /dev mounted noexec? (then PROT_EXEC fails in the VFS with EPERM) */
static bool dev_noexec(void)
{
	struct statvfs sv;

	return !statvfs(MPMC_DEV, &sv) && (sv.f_flag & ST_NOEXEC);
}

TEST(ctrl_page)
{
	size_t pg = ring_page(), need;
	struct mpmc_ring_ctrl *c;
	struct rmap m;
	unsigned int i;
	int fd;

	fd = ring_open(8, MSG, 0);
	ASSERT_LE(0, fd) TH_LOG("ring_open: %s", strerror(errno));
	RMAP(&m, fd);
	c = m.ctrl;
	EXPECT_EQ(MPMC_RING_MAGIC, c->magic);
	EXPECT_EQ(MPMC_RING_VERSION, c->version);
	EXPECT_EQ(8, c->nr_slots);
	EXPECT_EQ(7, c->slot_mask);
	EXPECT_EQ(MSG, c->max_msg_size);
	EXPECT_EQ(0, c->slot_size % 64);
	EXPECT_LE(16 + MSG, c->slot_size);
	EXPECT_EQ(48, c->pos_bits);
	/* The positions come first, each alone in 128 bytes. */
	EXPECT_LE(256, c->slots_offset);
	EXPECT_EQ(0, c->slots_offset % 64);
	need = c->slots_offset + (size_t)c->nr_slots * c->slot_size;
	EXPECT_EQ(0, c->ring_size % pg);
	EXPECT_LE(need, c->ring_size);
	EXPECT_GT(need + pg, c->ring_size);
	EXPECT_EQ(0, c->reserved0[0] | c->reserved0[1] | c->reserved0[2]);
	EXPECT_EQ(0, c->flags);
	EXPECT_EQ(0, c->recv_waiters);
	EXPECT_EQ(0, c->send_waiters);
	for (i = 0; i < 13; i++)
		EXPECT_EQ(0, c->reserved1[i]);
	/* A fresh ring: positions 0, slot i FREE at position i. */
	EXPECT_EQ(0, ld64(r_enq(&m)));
	EXPECT_EQ(0, ld64(r_deq(&m)));
	for (i = 0; i < 8; i++)
		EXPECT_EQ(MPMC_RING_WORD(i, 0, MPMC_RING_FREE), r_word(&m, i))
			TH_LOG("slot %u", i);
	/* The same geometry for a bigger message, and for capacity 1. */
	ASSERT_EQ(0, rmap_close(&m));
	close(fd);
	fd = ring_open(1, 4000, 0);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	EXPECT_EQ(1, m.ctrl->nr_slots);
	EXPECT_EQ(0, m.ctrl->slot_mask);
	EXPECT_EQ(4000, m.ctrl->max_msg_size);
	EXPECT_EQ(0, m.ctrl->slot_size % 64);
	EXPECT_LE(16 + 4000, m.ctrl->slot_size);
	EXPECT_EQ(MPMC_RING_WORD(0, 0, MPMC_RING_FREE), r_word(&m, 0));
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

TEST(config_einval)
{
	struct mpmc_config cfg;
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	EXPECT_ERRNO(EINVAL, ring_set(fd, 3, MSG, MPMC_CONFIG_RING));
	EXPECT_ERRNO(EINVAL, ring_set(fd, 12, MSG, MPMC_CONFIG_RING));
	EXPECT_ERRNO(EINVAL, ring_set(fd, 0, MSG, MPMC_CONFIG_RING));
	EXPECT_ERRNO(EINVAL, ring_set(fd, 8, MSG,
				      MPMC_CONFIG_RING | MPMC_CONFIG_OVERWRITE));
	/* Nothing changed: not a ring channel. */
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(0, cfg.flags);
	EXPECT_EQ(MPMC_DEFAULT_CAPACITY, cfg.capacity);
	EXPECT_EQ(MAP_FAILED, map_ctrl(fd));
	EXPECT_EQ(ENODEV, errno);
	/* A ring channel cannot get OVERWRITE later either. */
	ASSERT_EQ(0, ring_set(fd, 8, MSG, MPMC_CONFIG_RING));
	EXPECT_ERRNO(EINVAL, ring_set(fd, 8, MSG,
				      MPMC_CONFIG_RING | MPMC_CONFIG_OVERWRITE));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(MPMC_CONFIG_RING, cfg.flags);
	EXPECT_EQ(8, cfg.capacity);
	close(fd);
}

TEST(config_ebusy)
{
	struct mpmc_config cfg;
	struct op rd;
	char buf[64];
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	/* A message queued: EBUSY, and the message is still there. */
	ASSERT_EQ(0, write_str(fd, "queued"));
	EXPECT_ERRNO(EBUSY, ring_set(fd, 8, MSG, MPMC_CONFIG_RING));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(0, cfg.flags);
	CHECK_READ_STR(fd, buf, "queued");
	/* A blocked reader: EBUSY. */
	ASSERT_EQ(0, start_reader(&rd, fd, 64));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	EXPECT_ERRNO(EBUSY, ring_set(fd, 8, MSG, MPMC_CONFIG_RING));
	ASSERT_EQ(0, write_str(fd, "wake"));
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_EQ(4, rd.ret);
	/* Empty and nobody blocked: fine. */
	EXPECT_EQ(0, ring_set(fd, 8, MSG, MPMC_CONFIG_RING));
	/* A ring channel with a message queued: no geometry change. */
	ASSERT_EQ(0, write_str(fd, "in the ring"));
	EXPECT_ERRNO(EBUSY, ring_set(fd, 16, MSG, MPMC_CONFIG_RING));
	EXPECT_ERRNO(EBUSY, ring_set(fd, 8, MSG, 0));
	CHECK_READ_STR(fd, buf, "in the ring");
	close(fd);
}

/*
 * Ring mode is for the life of the channel (Documentation/ring-mode.rst,
 * section 13, a departure from the first draft and from the contract of
 * 2026-12-07, which let the geometry change until the first mmap): from
 * the SET_CONFIG that turns it on, no capacity or max_msg_size change and
 * no way back, mapped or not; the same values are no change.
 */
TEST(config_ring_for_life)
{
	struct mpmc_config cfg;
	char buf[64];
	void *ctrl;
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ring_set(fd, 8, MSG, MPMC_CONFIG_RING));
	EXPECT_ERRNO(EBUSY, ring_set(fd, 16, MSG, MPMC_CONFIG_RING));
	EXPECT_ERRNO(EBUSY, ring_set(fd, 8, 2 * MSG, MPMC_CONFIG_RING));
	EXPECT_ERRNO(EBUSY, ring_set(fd, 8, MSG, 0));
	EXPECT_ERRNO(EBUSY, ring_set(fd, 3, MSG, 0));
	EXPECT_EQ(0, ring_set(fd, 8, MSG, MPMC_CONFIG_RING));
	EXPECT_EQ(0, ring_set(fd, 8, MSG,
			      MPMC_CONFIG_RING | MPMC_CONFIG_THROUGHPUT));
	EXPECT_EQ(0, ring_set(fd, 8, MSG, MPMC_CONFIG_RING));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(8, cfg.capacity);
	EXPECT_EQ(MSG, cfg.max_msg_size);
	EXPECT_EQ(MPMC_CONFIG_RING, cfg.flags);
	/* The ring has the geometry it was created with. */
	ctrl = map_ctrl(fd);
	ASSERT_NE(MAP_FAILED, ctrl) TH_LOG("mmap: %s", strerror(errno));
	EXPECT_EQ(8, ((struct mpmc_ring_ctrl *)ctrl)->nr_slots);
	EXPECT_EQ(MSG, ((struct mpmc_ring_ctrl *)ctrl)->max_msg_size);
	EXPECT_EQ(0, munmap(ctrl, ring_page()));
	ASSERT_EQ(0, write_str(fd, "works"));
	CHECK_READ_STR(fd, buf, "works");
	close(fd);
}

TEST(config_frozen_by_mmap)
{
	struct mpmc_config cfg;
	char buf[64];
	void *ctrl;
	int fd = ring_open(4, MSG, 0);

	ASSERT_LE(0, fd);
	ctrl = map_ctrl(fd);
	ASSERT_NE(MAP_FAILED, ctrl) TH_LOG("mmap: %s", strerror(errno));
	/* Frozen: no capacity, max_msg_size change, RING stays. */
	EXPECT_ERRNO(EBUSY, ring_set(fd, 8, MSG, MPMC_CONFIG_RING));
	EXPECT_ERRNO(EBUSY, ring_set(fd, 4, 2 * MSG, MPMC_CONFIG_RING));
	EXPECT_ERRNO(EBUSY, ring_set(fd, 4, MSG, 0));
	EXPECT_ERRNO(EBUSY, ring_set(fd, 4, MSG, MPMC_CONFIG_THROUGHPUT));
	/* The same values are no change; THROUGHPUT may toggle. */
	EXPECT_EQ(0, ring_set(fd, 4, MSG, MPMC_CONFIG_RING));
	EXPECT_EQ(0, ring_set(fd, 4, MSG,
			      MPMC_CONFIG_RING | MPMC_CONFIG_THROUGHPUT));
	EXPECT_EQ(0, ring_set(fd, 4, MSG, MPMC_CONFIG_RING));
	EXPECT_ERRNO(EINVAL, ring_set(fd, 4, MSG,
				      MPMC_CONFIG_RING | MPMC_CONFIG_OVERWRITE));
	/* Frozen for life: also after the munmap. */
	ASSERT_EQ(0, munmap(ctrl, ring_page()));
	EXPECT_ERRNO(EBUSY, ring_set(fd, 8, MSG, MPMC_CONFIG_RING));
	EXPECT_ERRNO(EBUSY, ring_set(fd, 4, MSG, 0));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(4, cfg.capacity);
	EXPECT_EQ(MSG, cfg.max_msg_size);
	EXPECT_EQ(MPMC_CONFIG_RING, cfg.flags);
	/* And the ring still works. */
	ASSERT_EQ(0, write_str(fd, "still"));
	CHECK_READ_STR(fd, buf, "still");
	close(fd);
}

TEST(mmap_enodev)
{
	int fd = mpmc_test_open(O_RDWR);

	ASSERT_LE(0, fd);
	EXPECT_EQ(MAP_FAILED, map_ctrl(fd));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_EQ(MAP_FAILED, map_ring(fd, ring_page()));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_ERRNO(ENODEV, ioctl(fd, MPMC_IOC_RING_WAKE, MPMC_ROLE_RECV));
	close(fd);
}

TEST(mmap_eacces_roles)
{
	struct rmap m;
	size_t size;
	int fd, tx, rx, rw;

	fd = ring_open(8, MSG, 0);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	size = m.ring_size;
	tx = new_ep(fd, MPMC_ROLE_SEND, 0);
	rx = new_ep(fd, MPMC_ROLE_RECV, 0);
	rw = new_ep(fd, MPMC_ROLE_SEND | MPMC_ROLE_RECV, 0);
	ASSERT_LE(0, tx);
	ASSERT_LE(0, rx);
	ASSERT_LE(0, rw);
	EXPECT_EQ(MAP_FAILED, map_ctrl(tx));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(MAP_FAILED, map_ring(tx, size));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(MAP_FAILED, map_ctrl(rx));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(MAP_FAILED, map_ring(rx, size));
	EXPECT_EQ(EACCES, errno);
	/* Both roles: fine; and the syscalls of the others still work. */
	{
		struct rmap m2;

		ASSERT_EQ(0, rmap_open(&m2, rw)) TH_LOG("%s", strerror(errno));
		EXPECT_NE(m.id, m2.id);
		EXPECT_EQ(0, rmap_close(&m2));
	}
	ASSERT_EQ(0, write_str(tx, "tx"));
	{
		char buf[16];

		CHECK_READ_STR(rx, buf, "tx");
	}
	EXPECT_EQ(0, rmap_close(&m));
	close(tx);
	close(rx);
	close(rw);
	close(fd);
}

TEST(mmap_eacces_prot)
{
	int exec_err = dev_noexec() ? EPERM : EACCES;
	size_t pg = ring_page();
	struct rmap m;
	void *p;
	int fd;

	fd = ring_open(8, MSG, 0);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 MPMC_RING_OFF_CTRL);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EACCES, errno);
	p = mmap(NULL, pg, PROT_WRITE, MAP_SHARED, fd, MPMC_RING_OFF_CTRL);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EACCES, errno);
	p = mmap(NULL, pg, PROT_READ | PROT_EXEC, MAP_SHARED, fd,
		 MPMC_RING_OFF_CTRL);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(exec_err, errno);
	p = mmap(NULL, m.ring_size, PROT_READ | PROT_WRITE | PROT_EXEC,
		 MAP_SHARED, fd, MPMC_RING_OFF_RING);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(exec_err, errno);
	/* The read-only control page cannot become writable or executable. */
	EXPECT_ERRNO(EACCES, mprotect(m.ctrl, pg, PROT_READ | PROT_WRITE));
	EXPECT_ERRNO(EACCES, mprotect(m.ctrl, pg, PROT_READ | PROT_EXEC));
	EXPECT_EQ(MPMC_RING_MAGIC, m.ctrl->magic);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

TEST(mmap_einval)
{
	size_t pg = ring_page(), size;
	struct rmap m;
	void *p;
	int fd;

	/* 1000-byte messages: the ring region is several pages. */
	fd = ring_open(8, 1000, 0);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	size = m.ring_size;
	ASSERT_LE(3 * pg, size);
	p = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, MPMC_RING_OFF_CTRL);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd,
		 MPMC_RING_OFF_RING);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	/* Other offsets. */
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, pg);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, size - pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 MPMC_RING_OFF_RING + pg);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 2 * MPMC_RING_OFF_RING);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	/* Other lengths. */
	p = mmap(NULL, 2 * pg, PROT_READ, MAP_SHARED, fd, MPMC_RING_OFF_CTRL);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = map_ring(fd, size - pg);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = map_ring(fd, size + pg);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* A ring vma is unmapped, protected or moved only whole: EINVAL. */
TEST(mapping_not_split)
{
	size_t pg = ring_page(), size;
	char buf[64];
	struct rmap m;
	void *spare, *p;
	int fd;

	fd = ring_open(8, 1000, 0);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	size = m.ring_size;
	ASSERT_LE(3 * pg, size);
	EXPECT_ERRNO(EINVAL, munmap(m.ring + pg, pg));
	EXPECT_ERRNO(EINVAL, munmap(m.ring, pg));
	EXPECT_ERRNO(EINVAL, mprotect(m.ring + pg, pg, PROT_READ));
	p = mremap(m.ring, size, size - pg, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	spare = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, spare);
	p = mremap(m.ring, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, spare);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	munmap(spare, size);
	/* Still whole and working where it was. */
	ASSERT_EQ(0, write_str(fd, "whole"));
	EXPECT_EQ(MPMC_RING_WORD(0, 0, MPMC_RING_FULL), r_word(&m, 0));
	EXPECT_EQ(5, r_slot(&m, 0)->len);
	CHECK_READ_STR(fd, buf, "whole");
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

TEST(ring_info_ioctl)
{
	struct mpmc_ring_info ri, ri2;
	struct rmap m, m2, o;
	int fd, fd2, plain;
	int local;

	fd = ring_open(8, MSG, 0);
	ASSERT_LE(0, fd);
	/* No mapping yet. */
	EXPECT_ERRNO(ENXIO, ring_info(fd, &local, &ri));
	RMAP(&m, fd);
	RMAP(&m2, fd);
	ASSERT_EQ(0, ring_info(fd, m.ring, &ri));
	EXPECT_LE(1, ri.mapper_id);
	EXPECT_GE(MPMC_RING_OWNER_MAX, ri.mapper_id);
	EXPECT_EQ(8, ri.nr_slots);
	EXPECT_EQ(m.ctrl->slot_size, ri.slot_size);
	EXPECT_EQ(0, ri.flags);
	EXPECT_EQ(0, ri.reserved[0] | ri.reserved[1]);
	ASSERT_EQ(0, ring_info(fd, m2.ring, &ri2));
	EXPECT_LE(1, ri2.mapper_id);
	EXPECT_GE(MPMC_RING_OWNER_MAX, ri2.mapper_id);
	EXPECT_NE(ri.mapper_id, ri2.mapper_id);
	/* Any address inside the mapping names it. */
	ASSERT_EQ(0, ring_info(fd, m.ring + m.ring_size - 1, &ri2));
	EXPECT_EQ(ri.mapper_id, ri2.mapper_id);
	/* Not a ring-region mapping of this channel: ENXIO. */
	EXPECT_ERRNO(ENXIO, ring_info(fd, m.ctrl, &ri));
	EXPECT_ERRNO(ENXIO, ring_info(fd, &local, &ri));
	fd2 = ring_open(8, MSG, 0);
	ASSERT_LE(0, fd2);
	RMAP(&o, fd2);
	EXPECT_ERRNO(ENXIO, ring_info(fd, o.ring, &ri));
	EXPECT_ERRNO(ENXIO, ring_info(fd2, m.ring, &ri));
	/* Reserved must be 0. */
	memset(&ri, 0, sizeof(ri));
	ri.addr = (uintptr_t)m.ring;
	ri.reserved[0] = 1;
	EXPECT_ERRNO(EINVAL, ioctl(fd, MPMC_IOC_RING_INFO, &ri));
	memset(&ri, 0, sizeof(ri));
	ri.addr = (uintptr_t)m.ring;
	ri.reserved[1] = 1ULL << 63;
	EXPECT_ERRNO(EINVAL, ioctl(fd, MPMC_IOC_RING_INFO, &ri));
	/* Not a ring channel: ENODEV. */
	plain = mpmc_test_open(O_RDWR);
	ASSERT_LE(0, plain);
	EXPECT_ERRNO(ENODEV, ring_info(plain, m.ring, &ri));
	/* Gone with its munmap. */
	{
		unsigned char *old = m.ring;

		EXPECT_EQ(0, rmap_close(&m));
		EXPECT_ERRNO(ENXIO, ring_info(fd, old, &ri));
	}
	ASSERT_EQ(0, ring_info(fd, m2.ring, &ri));
	EXPECT_EQ(m2.id, ri.mapper_id);
	EXPECT_EQ(0, rmap_close(&m2));
	EXPECT_EQ(0, rmap_close(&o));
	close(plain);
	close(fd2);
	close(fd);
}

TEST(ring_wake_ioctl)
{
	int fd = ring_open(8, MSG, 0);
	unsigned long bad[] = { 0, 4, 8, 16, 0x80000000UL, 7 };
	unsigned int i;

	ASSERT_LE(0, fd);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-1, ioctl(fd, MPMC_IOC_RING_WAKE, bad[i]))
			TH_LOG("arg %#lx", bad[i]);
		EXPECT_EQ(EINVAL, errno) TH_LOG("arg %#lx", bad[i]);
	}
	/* Valid: 0, with or without a mapping, nobody waiting. */
	EXPECT_EQ(0, ioctl(fd, MPMC_IOC_RING_WAKE, MPMC_ROLE_RECV));
	EXPECT_EQ(0, ioctl(fd, MPMC_IOC_RING_WAKE, MPMC_ROLE_SEND));
	EXPECT_EQ(0, ioctl(fd, MPMC_IOC_RING_WAKE,
			   MPMC_ROLE_SEND | MPMC_ROLE_RECV));
	{
		struct rmap m;

		RMAP(&m, fd);
		EXPECT_EQ(0, ioctl(fd, MPMC_IOC_RING_WAKE, MPMC_ROLE_RECV));
		EXPECT_EQ(0, rmap_close(&m));
	}
	/* A doorbell rung for nothing changes nothing. */
	EXPECT_EQ(0, fionread(fd));
	close(fd);
}

TEST(no_prio_no_peek)
{
	struct mpmc_msgvec v[2];
	char bufs[2][16], buf[64];
	struct mpmc_batch b;
	int fd = ring_open(8, MSG, 0);

	ASSERT_LE(0, fd);
	EXPECT_ERRNO(EINVAL, send_one(fd, "prio", 1, 0));
	EXPECT_ERRNO(EINVAL, send_one(fd, "prio", MPMC_PRIO_MAX - 1, 0));
	/* A batch with one bad entry does nothing. */
	NAME_VEC(v, bufs, 2, "m%d");
	v[1].prio = 3;
	b = (struct mpmc_batch){ .vec = (uintptr_t)v, .count = 2 };
	EXPECT_ERRNO(EINVAL, ioctl(fd, MPMC_IOC_SEND, &b));
	EXPECT_EQ(0, stats_of(fd).queued_msgs);
	/* Priority 0 is fine. */
	EXPECT_EQ(1, send_one(fd, "zero", 0, 0));
	EXPECT_ERRNO(EINVAL, recv_msg(fd, buf, sizeof(buf), NULL,
				      MPMC_RECV_PEEK));
	EXPECT_EQ(1, stats_of(fd).queued_msgs);
	EXPECT_EQ(4, recv_msg(fd, buf, sizeof(buf), NULL, 0));
	EXPECT_STREQ("zero", buf);
	close(fd);
}

/* write() puts the message in the mapped ring: FULL(0, 0) at slot 0. */
TEST(write_lands_in_ring)
{
	const char msg[] = "hello, ring";
	size_t n = sizeof(msg) - 1;
	char buf[MSG];
	struct rmap m;
	int fd;

	fd = ring_open(8, MSG, 0);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	ASSERT_EQ((ssize_t)n, write(fd, msg, n));
	EXPECT_EQ(1, ld64(r_enq(&m)));
	EXPECT_EQ(0, ld64(r_deq(&m)));
	EXPECT_EQ(MPMC_RING_WORD(0, 0, MPMC_RING_FULL), r_word(&m, 0));
	EXPECT_EQ(n, r_slot(&m, 0)->len);
	EXPECT_EQ(0, memcmp(r_slot(&m, 0)->data, msg, n));
	EXPECT_EQ(MPMC_RING_WORD(1, 0, MPMC_RING_FREE), r_word(&m, 1));
	EXPECT_EQ((int)n, fionread(fd));
	/* read() takes it and frees the slot for the next lap. */
	ASSERT_EQ((ssize_t)n, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, msg, n));
	EXPECT_EQ(1, ld64(r_deq(&m)));
	EXPECT_EQ(MPMC_RING_WORD(8, 0, MPMC_RING_FREE), r_word(&m, 0));
	/* A second one goes to slot 1, a 0-byte read/write does nothing. */
	EXPECT_EQ(0, write(fd, msg, 0));
	ASSERT_EQ(3, write(fd, "two", 3));
	EXPECT_EQ(MPMC_RING_WORD(1, 0, MPMC_RING_FULL), r_word(&m, 1));
	EXPECT_EQ(3, r_slot(&m, 1)->len);
	EXPECT_EQ(0, read(fd, buf, 0));
	/* The hand protocol receives what write() sent. */
	EXPECT_EQ(3, rt_recv(&m, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "two", 3));
	EXPECT_EQ(2, ld64(r_deq(&m)));
	EXPECT_EQ(MPMC_RING_WORD(9, 0, MPMC_RING_FREE), r_word(&m, 1));
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* A message placed by hand (claim, advance, fill, publish) is read(). */
TEST(hand_placed_is_read)
{
	char buf[MSG], big[MSG];
	struct rmap m;
	long long p;
	int fd;

	fd = ring_open(8, MSG, O_NONBLOCK);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	ASSERT_NE(0, m.id);
	/* Claimed, not yet published: the ring looks empty. */
	p = rt_claim_send(&m);
	ASSERT_EQ(0, p);
	EXPECT_EQ(MPMC_RING_WORD(0, m.id, MPMC_RING_CLAIMED), r_word(&m, 0));
	EXPECT_EQ(1, ld64(r_enq(&m)));
	EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, fionread(fd));
	rt_publish(&m, p, "by hand", 7);
	EXPECT_EQ(7, fionread(fd));
	ASSERT_EQ(7, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "by hand", 7));
	EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));
	/* A full-size one, after a write(): FIFO across both. */
	memset(big, 'b', sizeof(big));
	ASSERT_EQ(5, write(fd, "first", 5));
	ASSERT_EQ(MSG, rt_send(&m, big, MSG));
	EXPECT_ERRNO(EMSGSIZE, read(fd, buf, 4));
	ASSERT_EQ(5, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "first", 5));
	EXPECT_ERRNO(EMSGSIZE, read(fd, buf, MSG - 1));
	ASSERT_EQ(MSG, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, big, MSG));
	/* A SKIP slot delivers nothing: the next message comes instead. */
	p = rt_claim_send(&m);
	ASSERT_LE(0, p);
	r_slot(&m, p)->len = MPMC_RING_LEN_SKIP;
	st64(&r_slot(&m, p)->word, MPMC_RING_WORD(p, 0, MPMC_RING_FULL));
	ASSERT_EQ(4, rt_send(&m, "next", 4));
	ASSERT_EQ(4, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "next", 4));
	EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, m.ctrl->flags);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* A reader asleep in read() is woken by a ring publish + the doorbell. */
TEST(doorbell_wakes_reader)
{
	struct rmap m;
	struct op rd;
	int fd;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	ASSERT_EQ(0, start_reader(&rd, fd, MSG));
	ASSERT_EQ(0, wait_blocked(fd, true, 1));
	EXPECT_NE(0, ld32(&m.ctrl->recv_waiters) & ~MPMC_RING_W_POLL);
	ASSERT_EQ(4, rt_send(&m, "ding", 4));	/* rings the doorbell */
	ASSERT_EQ(0, op_join(&rd));
	EXPECT_EQ(4, rd.ret);
	EXPECT_STREQ("ding", rd.buf);
	EXPECT_EQ(0, ld32(&m.ctrl->recv_waiters));
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* A writer asleep on a full ring is woken by a ring release + doorbell. */
TEST(doorbell_wakes_writer)
{
	char buf[MSG];
	struct rmap m;
	struct op wr;
	int fd;

	fd = ring_open(1, MSG, 0);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	ASSERT_EQ(0, write_str(fd, "full"));
	ASSERT_EQ(0, start_writer(&wr, fd, "waiting"));
	ASSERT_EQ(0, wait_blocked(fd, false, 1));
	EXPECT_NE(0, ld32(&m.ctrl->send_waiters) & ~MPMC_RING_W_POLL);
	ASSERT_EQ(4, rt_recv(&m, buf, sizeof(buf)));	/* doorbell */
	EXPECT_EQ(0, memcmp(buf, "full", 4));
	ASSERT_EQ(0, op_join(&wr));
	EXPECT_EQ(7, wr.ret);
	EXPECT_EQ(0, ld32(&m.ctrl->send_waiters));
	ASSERT_EQ(7, rt_recv(&m, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "waiting", 7));
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* Publish @s at enq_pos by hand, without the doorbell. */
static int publish_quiet(struct rmap *m, const char *str)
{
	long long p = rt_claim_send(m);
	struct mpmc_ring_slot *s;

	if (p < 0)
		return -1;
	s = r_slot(m, p);
	s->len = strlen(str);
	memcpy(s->data, str, strlen(str));
	st64(&s->word, MPMC_RING_WORD(p, 0, MPMC_RING_FULL));
	return 0;
}

/* Take the head by hand, without the doorbell: its length, or -1. */
static int take_quiet(struct rmap *m)
{
	__u32 len = 0;
	long long q = rt_claim_recv(m, m->max, &len);

	if (q < 0)
		return -1;
	st64(&r_slot(m, q)->word, MPMC_RING_WORD(q + m->nr, 0, MPMC_RING_FREE));
	return len;
}

/*
 * Wait up to WAIT_MS for @blocked callers of one direction (@rx) asleep
 * and @queued messages queued, at the same time: 0, or -1.
 */
static int wait_settled(int fd, bool rx, __u32 blocked, __u32 queued)
{
	long long end = now_ms() + WAIT_MS;
	struct mpmc_stats st;

	for (;;) {
		st = stats_of(fd);
		if ((rx ? st.blocked_receivers : st.blocked_senders) == blocked &&
		    st.queued_msgs == queued)
			return 0;
		if (now_ms() > end) {
			fprintf(stderr, "# %u blocked, %u queued\n",
				rx ? st.blocked_receivers : st.blocked_senders,
				st.queued_msgs);
			return -1;
		}
		usleep(1000);
	}
}

/* One doorbell wakes one blocked reader; the other sleeps on. */
TEST(doorbell_wakes_one)
{
	struct rmap m;
	struct op rd[2];
	int fd, done;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	ASSERT_EQ(0, start_reader(&rd[0], fd, MSG));
	ASSERT_EQ(0, start_reader(&rd[1], fd, MSG));
	ASSERT_EQ(0, wait_blocked(fd, true, 2));
	ASSERT_EQ(0, publish_quiet(&m, "one"));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_RING_WAKE, MPMC_ROLE_RECV));
	ASSERT_EQ(0, wait_settled(fd, true, 1, 0));
	{
		long long end = now_ms() + WAIT_MS;

		while (!op_done(&rd[0]) && !op_done(&rd[1]) && now_ms() < end)
			usleep(1000);
	}
	usleep(100000);
	done = op_done(&rd[0]) + op_done(&rd[1]);
	EXPECT_EQ(1, done);
	EXPECT_EQ(1, stats_of(fd).blocked_receivers);
	ASSERT_EQ(0, publish_quiet(&m, "two"));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_RING_WAKE, MPMC_ROLE_RECV));
	ASSERT_EQ(0, op_join(&rd[0]));
	ASSERT_EQ(0, op_join(&rd[1]));
	EXPECT_EQ(3, rd[0].ret);
	EXPECT_EQ(3, rd[1].ret);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/*
 * One doorbell after two ring publishes wakes both blocked readers (the
 * woken one passes the wakeup on while messages are left): a ring batch
 * rings once.
 */
TEST(doorbell_passes_on_readers)
{
	struct rmap m;
	struct op rd[3];
	int fd, i;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, start_reader(&rd[i], fd, MSG));
	ASSERT_EQ(0, wait_blocked(fd, true, 3));
	ASSERT_EQ(0, publish_quiet(&m, "m1"));
	ASSERT_EQ(0, publish_quiet(&m, "m2"));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_RING_WAKE, MPMC_ROLE_RECV));
	/* Both messages taken, one reader left asleep. */
	EXPECT_EQ(0, wait_settled(fd, true, 1, 0));
	ASSERT_EQ(3, write(fd, "end", 3));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, op_join(&rd[i]));
		EXPECT_LT(0, rd[i].ret);
	}
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* The same for writers asleep on a full ring and a batch of releases. */
TEST(doorbell_passes_on_writers)
{
	char buf[MSG];
	struct rmap m;
	struct op wr[3];
	int fd, i;

	fd = ring_open(2, MSG, 0);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	ASSERT_EQ(0, write_str(fd, "f1"));
	ASSERT_EQ(0, write_str(fd, "f2"));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, start_writer(&wr[i], fd, "w"));
	ASSERT_EQ(0, wait_blocked(fd, false, 3));
	ASSERT_EQ(2, take_quiet(&m));
	ASSERT_EQ(2, take_quiet(&m));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_RING_WAKE, MPMC_ROLE_SEND));
	/* Both slots refilled, one writer left asleep. */
	EXPECT_EQ(0, wait_settled(fd, false, 1, 2));
	ASSERT_EQ(1, read(fd, buf, sizeof(buf)));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, op_join(&wr[i]));
		EXPECT_EQ(1, wr[i].ret);
	}
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/*
 * Mapper ids run out at MPMC_RING_OWNER_MAX mappings: ENOSPC; reused.
 * 16k mappings take long on the debug kernels: a timeout of its own.
 */
FIXTURE(ids) {
	int unused;
};

FIXTURE_SETUP(ids)
{
}

FIXTURE_TEARDOWN(ids)
{
}

TEST_F_TIMEOUT(ids, mapper_ids_run_out, 300)
{
	long long t0 = now_ms();
	size_t size, n = 0, i;
	void **maps;
	long long end;
	void *p = NULL;
	struct rmap m;
	int fd;

	fd = ring_open(1, 16, 0);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);		/* one id in use */
	size = m.ring_size;
	maps = calloc(MPMC_RING_OWNER_MAX + 1, sizeof(*maps));
	ASSERT_NE(NULL, maps);
	for (i = 0; i < MPMC_RING_OWNER_MAX; i++) {
		p = map_ring(fd, size);
		if (p == MAP_FAILED)
			break;
		maps[n++] = p;
	}
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(ENOSPC, errno) TH_LOG("mmap %zu: %s", n, strerror(errno));
	EXPECT_EQ(MPMC_RING_OWNER_MAX - 1, n);
	TH_LOG("%zu mappings in %lld ms", n, now_ms() - t0);
	t0 = now_ms();
	/* One unmapped: its id comes back (after the reap). */
	ASSERT_LT(0, n);
	ASSERT_EQ(0, munmap(maps[--n], size));
	end = now_ms() + WAIT_MS;
	do {
		p = map_ring(fd, size);
	} while (p == MAP_FAILED && errno == ENOSPC && now_ms() < end &&
		 !usleep(2000));
	EXPECT_NE(MAP_FAILED, p) TH_LOG("no id after munmap: %s",
					strerror(errno));
	if (p != MAP_FAILED)
		maps[n++] = p;
	/* Still one channel that works. */
	ASSERT_EQ(0, write_str(fd, "ids"));
	{
		char buf[MSG];

		CHECK_READ_STR(fd, buf, "ids");
	}
	TH_LOG("id back %lld ms after the munmap", now_ms() - t0);
	t0 = now_ms();
	for (i = 0; i < n; i++)
		EXPECT_EQ(0, munmap(maps[i], size));
	TH_LOG("%zu munmaps in %lld ms", n, now_ms() - t0);
	free(maps);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* fdinfo's ring lines. */
TEST(ring_fdinfo)
{
	struct rmap m, m2;
	char buf[MSG];
	long long d0;
	int fd;

	fd = ring_open(8, MSG, 0);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	EXPECT_EQ(8, fdinfo_val(fd, "ring_slots", -1));
	EXPECT_EQ(m.ctrl->slot_size, fdinfo_val(fd, "ring_slot_size", -1));
	EXPECT_EQ(0, fdinfo_val(fd, "ring_enq_pos", -1));
	EXPECT_EQ(0, fdinfo_val(fd, "ring_deq_pos", -1));
	EXPECT_EQ(0, fdinfo_val(fd, "ring_flags", -1));
	EXPECT_EQ(0, fdinfo_val(fd, "ring_reaped", -1));
	EXPECT_EQ(1, fdinfo_val(fd, "ring_mappers", -1));
	RMAP(&m2, fd);
	EXPECT_EQ(2, fdinfo_val(fd, "ring_mappers", -1));
	ASSERT_EQ(0, write_str(fd, "one"));
	ASSERT_EQ(3, rt_send(&m, "two", 3));
	EXPECT_EQ(2, fdinfo_val(fd, "ring_enq_pos", -1));
	ASSERT_EQ(3, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(1, fdinfo_val(fd, "ring_deq_pos", -1));
	d0 = fdinfo_val(fd, "ring_doorbells", -1);
	EXPECT_LE(0, d0);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_RING_WAKE, MPMC_ROLE_RECV));
	EXPECT_LT(d0, fdinfo_val(fd, "ring_doorbells", -1));
	EXPECT_EQ(0, rmap_close(&m2));
	EXPECT_EQ(1, fdinfo_val(fd, "ring_mappers", -1));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	EXPECT_EQ(MPMC_RING_F_SHUT_WR, fdinfo_val(fd, "ring_flags", -1));
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/*
 * SHUT_WR: the flag and the closed bit in the ring; sends fail with EPIPE
 * (the fast path is closed: flags); a claim taken before completes and is
 * received; what was queued is drained, then EOF.
 */
TEST(shutdown_wr_ring)
{
	struct mpmc_ring_info ri;
	char buf[MSG];
	struct rmap m;
	long long p;
	int fd;

	fd = ring_open(8, MSG, O_NONBLOCK);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	ASSERT_EQ(0, write_str(fd, "q1"));
	ASSERT_EQ(2, rt_send(&m, "q2", 2));
	p = rt_claim_send(&m);
	ASSERT_EQ(2, p);
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_WR));
	EXPECT_EQ(MPMC_RING_F_SHUT_WR, ld32(&m.ctrl->flags));
	EXPECT_EQ(3 | MPMC_RING_CLOSED, ld64(r_enq(&m)));
	ASSERT_EQ(0, ring_info(fd, m.ring, &ri));
	EXPECT_EQ(MPMC_RING_F_SHUT_WR, ri.flags);
	EXPECT_ERRNO(EPIPE, write(fd, "no", 2));
	EXPECT_EQ(-EAGAIN, rt_send(&m, "no", 2));
	rt_publish(&m, p, "q3", 2);		/* claimed before: completes */
	EXPECT_NE(0, revents(fd, POLLIN) & POLLIN);
	ASSERT_EQ(2, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "q1", 2));
	ASSERT_EQ(2, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "q2", 2));
	ASSERT_EQ(2, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "q3", 2));
	EXPECT_EQ(0, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, stats_of(fd).queued_msgs);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* SHUT_RD: the flag, sends fail, what was queued is discarded: EOF. */
TEST(shutdown_rd_ring)
{
	char buf[MSG];
	struct rmap m;
	int fd;

	fd = ring_open(8, MSG, O_NONBLOCK);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	ASSERT_EQ(0, write_str(fd, "q1"));
	ASSERT_EQ(2, rt_send(&m, "q2", 2));
	ASSERT_EQ(0, ioctl(fd, MPMC_IOC_SHUTDOWN, MPMC_SHUT_RD));
	EXPECT_NE(0, ld32(&m.ctrl->flags) & MPMC_RING_F_SHUT_RD);
	EXPECT_NE(0, ld64(r_enq(&m)) & MPMC_RING_CLOSED);
	EXPECT_ERRNO(EPIPE, write(fd, "no", 2));
	EXPECT_EQ(-EAGAIN, rt_recv(&m, buf, sizeof(buf)));
	EXPECT_EQ(0, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, stats_of(fd).queued_msgs);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* @laps rounds of filling and draining a ring of @cap slots every way. */
static void laps(struct __test_metadata *_metadata, __u32 cap, int laps)
{
	char buf[MSG], msg[32];
	__u64 pos = 0;
	struct rmap m;
	int fd, lap;
	__u32 i;

	fd = ring_open(cap, MSG, O_NONBLOCK);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	for (lap = 0; lap < laps; lap++) {
		/* write() fills, the ring shows it, read() drains. */
		for (i = 0; i < cap; i++) {
			int n = snprintf(msg, sizeof(msg), "w%d.%u", lap, i);

			ASSERT_EQ(n, write(fd, msg, n));
			EXPECT_EQ(MPMC_RING_WORD(pos + i, 0, MPMC_RING_FULL),
				  r_word(&m, pos + i));
		}
		EXPECT_ERRNO(EAGAIN, write(fd, "x", 1));
		EXPECT_EQ(-EAGAIN, rt_send(&m, "x", 1));
		EXPECT_EQ(cap, stats_of(fd).queued_msgs);
		for (i = 0; i < cap; i++) {
			int n = snprintf(msg, sizeof(msg), "w%d.%u", lap, i);

			ASSERT_EQ(n, read(fd, buf, sizeof(buf)));
			EXPECT_EQ(0, memcmp(buf, msg, n));
		}
		EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));
		EXPECT_EQ(-EAGAIN, rt_recv(&m, buf, sizeof(buf)));
		pos += cap;
		/* The hand protocol fills, read() drains. */
		for (i = 0; i < cap; i++) {
			int n = snprintf(msg, sizeof(msg), "h%d.%u", lap, i);

			ASSERT_EQ(n, rt_send(&m, msg, n));
		}
		EXPECT_EQ(-EAGAIN, rt_send(&m, "x", 1));
		EXPECT_ERRNO(EAGAIN, write(fd, "x", 1));
		for (i = 0; i < cap; i++) {
			int n = snprintf(msg, sizeof(msg), "h%d.%u", lap, i);

			ASSERT_EQ(n, read(fd, buf, sizeof(buf)));
			EXPECT_EQ(0, memcmp(buf, msg, n));
		}
		pos += cap;
		/* write() fills, the hand protocol drains. */
		for (i = 0; i < cap; i++) {
			int n = snprintf(msg, sizeof(msg), "x%d.%u", lap, i);

			ASSERT_EQ(n, write(fd, msg, n));
		}
		for (i = 0; i < cap; i++) {
			int n = snprintf(msg, sizeof(msg), "x%d.%u", lap, i);

			ASSERT_EQ(n, rt_recv(&m, buf, sizeof(buf)));
			EXPECT_EQ(0, memcmp(buf, msg, n));
		}
		EXPECT_ERRNO(EAGAIN, read(fd, buf, sizeof(buf)));
		pos += cap;
		EXPECT_EQ(pos, ld64(r_enq(&m)));
		EXPECT_EQ(pos, ld64(r_deq(&m)));
		for (i = 0; i < cap; i++)
			EXPECT_EQ(MPMC_RING_WORD(pos + i, 0, MPMC_RING_FREE),
				  r_word(&m, pos + i));
	}
	EXPECT_EQ(0, stats_of(fd).queued_msgs);
	EXPECT_EQ(0, m.ctrl->flags);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

TEST(capacity_1)
{
	laps(_metadata, 1, 20);
}

TEST(capacity_2)
{
	laps(_metadata, 2, 12);
}

TEST(stats_count_ring)
{
	struct mpmc_stats st;
	char buf[MSG];
	struct rmap m;
	int fd;

	fd = ring_open(8, MSG, O_NONBLOCK);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	ASSERT_EQ(1, rt_send(&m, "a", 1));
	ASSERT_EQ(2, rt_send(&m, "bb", 2));
	ASSERT_EQ(3, rt_send(&m, "ccc", 3));
	MPMC_STATS(fd, &st);
	EXPECT_EQ(3, st.queued_msgs);
	EXPECT_EQ(6, st.queued_bytes);
	EXPECT_EQ(8, st.capacity);
	ASSERT_EQ(4, write(fd, "dddd", 4));
	MPMC_STATS(fd, &st);
	EXPECT_EQ(4, st.queued_msgs);
	EXPECT_EQ(10, st.queued_bytes);
	/* A claim in flight is not a message. */
	ASSERT_LE(0, rt_claim_send(&m));
	EXPECT_EQ(4, stats_of(fd).queued_msgs);
	ASSERT_EQ(1, rt_recv(&m, buf, sizeof(buf)));
	EXPECT_EQ(3, stats_of(fd).queued_msgs);
	ASSERT_EQ(2, read(fd, buf, sizeof(buf)));
	MPMC_STATS(fd, &st);
	EXPECT_EQ(2, st.queued_msgs);
	EXPECT_EQ(7, st.queued_bytes);
	EXPECT_EQ(0, st.blocked_senders);
	EXPECT_EQ(0, st.blocked_receivers);
	EXPECT_EQ(0, rmap_close(&m));	/* reaps the claim: a SKIP */
	close(fd);
}

/*
 * poll, epoll (level) and the non-blocking calls agree: POLLIN iff a
 * message is queued (a 1-byte read says EMSGSIZE, else EAGAIN), POLLOUT
 * iff a write would not block.
 */
static void check_ready(struct __test_metadata *_metadata, int fd, int ep,
			bool queued, bool full, const char *what)
{
	short want = (queued ? POLLIN : 0) | (full ? 0 : POLLOUT);
	struct epoll_event ev[2];
	short got = revents(fd, POLLIN | POLLOUT);
	unsigned int eev = 0;
	char b;
	int n, i;

	EXPECT_EQ(want, got & (POLLIN | POLLOUT | POLLERR | POLLHUP))
		TH_LOG("%s: revents %#x, want %#x", what, got, want);
	n = epoll_wait(ep, ev, 2, 0);
	for (i = 0; i < n; i++)
		eev |= ev[i].events;
	EXPECT_EQ((unsigned int)want, eev & (EPOLLIN | EPOLLOUT | EPOLLERR |
					     EPOLLHUP))
		TH_LOG("%s: epoll %#x, want %#x", what, eev, want);
	EXPECT_EQ(-1, read(fd, &b, 1)) TH_LOG("%s: read probe", what);
	EXPECT_EQ(queued ? EMSGSIZE : EAGAIN, errno)
		TH_LOG("%s: read probe", what);
	if (full) {
		EXPECT_EQ(-1, write(fd, "x", 1)) TH_LOG("%s: write probe", what);
		EXPECT_EQ(EAGAIN, errno) TH_LOG("%s: write probe", what);
	}
}

TEST(poll_matches_calls)
{
	char buf[MSG];
	struct rmap m;
	int fd, ep, i;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_nonblock(fd));
	RMAP(&m, fd);
	ep = epoll_for(fd, EPOLLIN | EPOLLOUT);
	ASSERT_LE(0, ep);
	check_ready(_metadata, fd, ep, false, false, "empty");
	/* Partly full through the ring alone: the kernel saw no syscall. */
	ASSERT_EQ(2, rt_send(&m, "r1", 2));
	check_ready(_metadata, fd, ep, true, false, "1 by ring");
	ASSERT_EQ(2, write(fd, "k2", 2));
	check_ready(_metadata, fd, ep, true, false, "2");
	ASSERT_EQ(2, rt_send(&m, "r3", 2));
	ASSERT_EQ(2, rt_send(&m, "r4", 2));
	check_ready(_metadata, fd, ep, true, true, "full");
	/* Drained by the ring: not full, then empty. */
	ASSERT_EQ(2, rt_recv(&m, buf, sizeof(buf)));
	check_ready(_metadata, fd, ep, true, false, "3 left");
	for (i = 0; i < 2; i++)
		ASSERT_EQ(2, rt_recv(&m, buf, sizeof(buf)));
	check_ready(_metadata, fd, ep, true, false, "1 left");
	ASSERT_EQ(2, read(fd, buf, sizeof(buf)));
	check_ready(_metadata, fd, ep, false, false, "empty again");
	/* A claim in flight at the head: empty for readers. */
	ASSERT_LE(0, rt_claim_send(&m));
	check_ready(_metadata, fd, ep, false, false, "claimed head");
	close(ep);
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

/* A poller asleep on an empty ring is woken by a ring send + doorbell. */
TEST(poll_woken_by_ring_send)
{
	struct poller p;
	struct rmap m;
	int fd;

	fd = ring_open(4, MSG, 0);
	ASSERT_LE(0, fd);
	RMAP(&m, fd);
	ASSERT_EQ(0, poller_start(&p, fd, POLLIN));
	/* Armed: the poll bit shows in the waiter word. */
	{
		long long end = now_ms() + WAIT_MS;

		while (!(ld32(&m.ctrl->recv_waiters) & MPMC_RING_W_POLL) &&
		       now_ms() < end)
			usleep(1000);
	}
	EXPECT_NE(0, ld32(&m.ctrl->recv_waiters) & MPMC_RING_W_POLL);
	ASSERT_EQ(3, rt_send(&m, "pol", 3));
	ASSERT_EQ(0, join_within(p.th));
	EXPECT_EQ(1, p.ret);
	EXPECT_EQ(POLLIN, p.revents & (POLLIN | POLLERR | POLLHUP));
	EXPECT_EQ(0, rmap_close(&m));
	close(fd);
}

TEST_HARNESS_MAIN
