/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mpmc ring mode: the shared ring of a channel, its memory, its protocol
 * as the kernel runs it, and its user mappings (mpmc_ring.c). The channel
 * side (waiting, waking, the front queue) is in mpmc_chan.c.
 * Documentation/ring-mode.rst tells the design.
 */
#ifndef _MPMC_RING_H
#define _MPMC_RING_H

#include <linux/idr.h>
#include <linux/mm_types.h>
#include <linux/seq_file.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <linux/mpmc.h>

struct mpmc_chan;

/* Most attempts of one ring operation against values user space changes. */
#define MPMC_RING_TRIES		64

/* Bits of the slot reaper's bitmap: every mapper id and the kernel's 0. */
#define MPMC_RING_NR_IDS	(MPMC_RING_OWNER_MAX + 1)

/**
 * struct mpmc_ring - the ring of a channel in ring mode
 * @ch:           the channel, for the reaper (it holds a reference then)
 * @pages:        @nr_pages pages: the control page, then the ring region
 * @nr_pages:     entries of @pages
 * @ctrl:         the control page (kernel address); only the kernel writes it
 * @base:         the ring region (a vmap of @pages + 1)
 * @nr_slots:     slots, a power of two; the kernel's own copy, like the
 *                fields below: nothing is read back from shared memory
 * @mask:         @nr_slots - 1
 * @slot_size:    bytes per slot
 * @max_msg_size: payload bytes per slot
 * @ring_size:    bytes of the ring region
 * @final_pos:    the enqueue position when the kernel closed it (valid
 *                once @closed)
 * @closed:       the kernel closed the enqueue position (shutdown); a
 *                closed bit the kernel did not set is forged
 * @mapped:       the ring was mapped once: its geometry is frozen
 * @ids:          mapper ids in use, 1..MPMC_RING_OWNER_MAX
 * @nr_mappers:   ring-region mappings alive
 * @reap:         ids whose mapping went away, claims not yet reaped
 * @reap_work:    reaps them (mpmc_ring_reap_work())
 * @doorbells:    MPMC_IOC_RING_WAKE calls and kernel-side rings
 * @reaped:       claims of dead mappers reaped
 */
struct mpmc_ring {
	struct mpmc_chan *ch;
	struct page **pages;
	unsigned int nr_pages;
	struct mpmc_ring_ctrl *ctrl;
	void *base;
	u32 nr_slots;
	u32 mask;
	u32 slot_size;
	u32 max_msg_size;
	u64 ring_size;
	u64 final_pos;
	bool closed;
	bool mapped;
	struct ida ids;
	atomic_t nr_mappers;
	unsigned long *reap;
	struct work_struct reap_work;
	atomic64_t doorbells;
	atomic64_t reaped;
};

int mpmc_ring_init(void);
void mpmc_ring_exit(void);

u64 mpmc_ring_bytes(u32 nr_slots, u32 max_msg_size);
struct mpmc_ring *mpmc_ring_create(struct mpmc_chan *ch, u32 nr_slots,
				   u32 max_msg_size);
void mpmc_ring_destroy(struct mpmc_ring *r);

int mpmc_ring_push(struct mpmc_ring *r, const void *data, u32 len);
int mpmc_ring_pop(struct mpmc_ring *r, void *buf, u32 room, u32 *len);
bool mpmc_ring_can_push(struct mpmc_ring *r);
bool mpmc_ring_drained(struct mpmc_ring *r);
void mpmc_ring_counts(struct mpmc_ring *r, u64 *sent, u64 *received,
		      u32 *queued, u64 *bytes);

void mpmc_ring_close(struct mpmc_ring *r);
void mpmc_ring_shutdown(struct mpmc_ring *r, unsigned int how);
bool mpmc_ring_broken(const struct mpmc_ring *r);
void mpmc_ring_set_flags(struct mpmc_ring *r, u32 set, u32 clear);
void mpmc_ring_set_waiters(struct mpmc_ring *r, bool recv, u32 nr);
void mpmc_ring_arm(struct mpmc_ring *r, bool recv);
bool mpmc_ring_disarm(struct mpmc_ring *r, bool recv);
bool mpmc_ring_wanted(const struct mpmc_ring *r, bool recv);

int mpmc_ring_mmap(struct mpmc_ring *r, struct vm_area_struct *vma);
int mpmc_ring_info(struct mpmc_ring *r, struct file *file,
		   struct mpmc_ring_info *info);
void mpmc_ring_show_fdinfo(struct mpmc_ring *r, struct seq_file *m);

#endif /* _MPMC_RING_H */
