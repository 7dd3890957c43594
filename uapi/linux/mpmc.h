/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * /dev/mpmc: bounded multi-producer multi-consumer message channels.
 *
 * This header is the whole ABI. The module, libmpmc and every test include
 * it; nothing else defines an ioctl number or an ABI struct.
 *
 * Every open() of /dev/mpmc creates a new channel. write() enqueues one
 * whole message, read() dequeues at most one whole message. A read buffer
 * smaller than the next message fails with EMSGSIZE and leaves the message
 * queued. FIONREAD gives the length of the next message (0 when empty).
 *
 * Design choices recorded here (see also mpmc(4) and README.md):
 *  - All structs have the same layout on 32- and 64-bit userspace (explicit
 *    __u64 for pointers, no implicit padding), so compat_ioctl needs no
 *    translation.
 *  - Reserved fields and flags must be zero on input (EINVAL otherwise) and
 *    are zeroed on output. New fields are only ever added at the end of a
 *    struct, inside or after its reserved space.
 *  - A message put back after a read faulted (EFAULT) goes back to the head
 *    of the queue even when that briefly makes the queue hold more than
 *    `capacity` messages: no message is ever dropped for lack of room. New
 *    sends are admitted again once the count is below capacity.
 *  - EPOLLOUT means a message of max_msg_size bytes can be written without
 *    blocking, i.e. the queue holds fewer than `capacity` messages and no
 *    blocked sender is owed the free space.
 */
#ifndef _UAPI_LINUX_MPMC_H
#define _UAPI_LINUX_MPMC_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* Documentation/userspace-api/ioctl/ioctl-number.rst: 0xB7 is unassigned. */
#define MPMC_IOC_MAGIC		0xB7

/* Defaults of a freshly opened channel. */
#define MPMC_DEFAULT_CAPACITY	64
#define MPMC_DEFAULT_MSG_SIZE	4096

/*
 * struct mpmc_config - channel configuration
 * @capacity:     maximum number of queued messages, 1..max_capacity
 *                (0 is reserved for rendezvous channels: EINVAL for now)
 * @max_msg_size: largest message in bytes, 1..max_msg_size (module limit);
 *                capacity * max_msg_size must not exceed max_channel_bytes
 * @flags:        MPMC_CONFIG_* bits; unknown bits: EINVAL
 * @reserved:     must be 0
 */
struct mpmc_config {
	__u32 capacity;
	__u32 max_msg_size;
	__u32 flags;
	__u32 reserved[5];
};

/*
 * mpmc_config.flags, each may be turned on and off at any time:
 * MPMC_CONFIG_OVERWRITE: a send to a full channel never blocks nor fails
 *   for lack of room; the oldest message of the lowest priority queued is
 *   dropped (counted in mpmc_stats.total_dropped). Not with capacity 0.
 * MPMC_CONFIG_THROUGHPUT: no FIFO hand-off; a message or room goes to
 *   whoever reaches the queue first (as with a pipe), while blocked
 *   callers are still woken one per message, and every other promise
 *   holds. No effect on capacity 0, which is always a hand-off.
 */
#define MPMC_CONFIG_OVERWRITE	1
#define MPMC_CONFIG_THROUGHPUT	2
/*
 * A mappable ring (Documentation/ring-mode.rst): capacity a power of two,
 * set while the channel is empty; frozen by the first mmap. Excludes
 * MPMC_CONFIG_OVERWRITE, capacity 0, priorities and MPMC_RECV_PEEK.
 */
#define MPMC_CONFIG_RING	4

/* Message priorities are 0..MPMC_PRIO_MAX-1; higher is received first. */
#define MPMC_PRIO_MAX		32

/* Bits of mpmc_stats.shutdown and values of the MPMC_IOC_SHUTDOWN argument. */
#define MPMC_SHUT_RD	1
#define MPMC_SHUT_WR	2
#define MPMC_SHUT_RDWR	(MPMC_SHUT_RD | MPMC_SHUT_WR)

/*
 * struct mpmc_stats - a consistent snapshot of a channel
 * @capacity, @max_msg_size: current configuration
 * @queued_msgs, @queued_bytes: messages (and their payload bytes) queued now
 * @shutdown:          MPMC_SHUT_* bits in effect (also set when the last
 *                     sender or receiver file was released)
 * @send_files, @recv_files: open files holding the send / receive role
 *                     (an O_RDWR file counts once in each)
 * @blocked_senders, @blocked_receivers: callers asleep in write, read or a
 *                     batch ioctl (pollers are not counted)
 * @total_sent, @total_received: messages accepted / delivered since creation
 * @total_dropped:     messages dropped by MPMC_CONFIG_OVERWRITE since
 *                     creation (not those MPMC_SHUT_RD discards)
 * @reserved:          zero
 */
struct mpmc_stats {
	__u32 capacity;
	__u32 max_msg_size;
	__u32 queued_msgs;
	__u32 shutdown;
	__u64 queued_bytes;
	__u32 send_files;
	__u32 recv_files;
	__u32 blocked_senders;
	__u32 blocked_receivers;
	__u64 total_sent;
	__u64 total_received;
	__u64 total_dropped;
	__u64 reserved[3];
};

/* Roles of a file on its channel. */
#define MPMC_ROLE_SEND	1
#define MPMC_ROLE_RECV	2

/*
 * struct mpmc_endpoint - argument of MPMC_IOC_NEW_ENDPOINT
 * @roles:    MPMC_ROLE_* bits, non-zero, a subset of the caller's roles
 *            (EPERM otherwise)
 * @flags:    O_CLOEXEC and/or O_NONBLOCK for the new file descriptor
 * @reserved: must be 0
 */
struct mpmc_endpoint {
	__u32 roles;
	__u32 flags;
	__u64 reserved;
};

/*
 * struct mpmc_msgvec - one message of a batch
 * @buf:  user address of the message (send) or of the buffer (receive)
 * @len:  send: message length (>0); receive: in buffer size, out message length
 * @prio: send: the message's priority, 0..MPMC_PRIO_MAX-1 (EINVAL else);
 *        receive: out, the message's priority (ignored on input)
 */
struct mpmc_msgvec {
	__u64 buf;
	__u32 len;
	__u32 prio;
};

/*
 * struct mpmc_batch - argument of MPMC_IOC_SEND and MPMC_IOC_RECV
 * @vec:        user address of struct mpmc_msgvec[count]
 * @count:      number of entries, 1..MPMC_BATCH_MAX
 * @flags:      0, or MPMC_RECV_PEEK on MPMC_IOC_RECV (EINVAL else)
 * @timeout_ns: relative CLOCK_MONOTONIC timeout: -1 waits forever, 0 never
 *              blocks; other negative values are EINVAL. A positive
 *              timeout may be lowered to the time left when the wait is
 *              restarted after task work that is not a signal.
 *
 * Waits (up to the timeout) until at least one message can move, then moves
 * as many as possible without waiting further; returns how many moved.
 */
struct mpmc_batch {
	__u64 vec;
	__u32 count;
	__u32 flags;
	__s64 timeout_ns;
};

#define MPMC_BATCH_MAX		1024

/*
 * mpmc_batch.flags of MPMC_IOC_RECV: copy up to count messages from the
 * head, in the order receives would take them, without removing them.
 * Waits as a poller does (never takes part in hand-off, not counted in
 * blocked_receivers).
 */
#define MPMC_RECV_PEEK		1

/* ---- Ring mode (MPMC_CONFIG_RING; Documentation/ring-mode.rst) ---------- */

/* mmap offsets of a ring channel's two regions (MAP_SHARED only). */
#define MPMC_RING_OFF_CTRL	0x0ULL		/* one page, PROT_READ only */
#define MPMC_RING_OFF_RING	0x10000000ULL	/* ctrl->ring_size bytes, RW */

#define MPMC_RING_MAGIC		0x4d505247	/* "MPRG" */
#define MPMC_RING_VERSION	1

/*
 * struct mpmc_ring_ctrl - the control page, written only by the kernel
 * @magic, @version: MPMC_RING_MAGIC, MPMC_RING_VERSION
 * @nr_slots:     slots in the ring (the capacity), a power of two
 * @slot_mask:    nr_slots - 1
 * @slot_size:    bytes from one slot to the next (a multiple of 64)
 * @max_msg_size: payload bytes a slot holds
 * @slots_offset: offset of slot 0 in the ring region
 * @pos_bits:     bits of a position kept in a slot word (48)
 * @ring_size:    length of the ring region
 * @flags:        MPMC_RING_F_*; while not 0, use the system calls
 * @recv_waiters: non-zero: after publishing a message, ring the doorbell
 *                (MPMC_IOC_RING_WAKE, MPMC_ROLE_RECV)
 * @send_waiters: non-zero: after freeing a slot, ring the doorbell
 *                (MPMC_IOC_RING_WAKE, MPMC_ROLE_SEND)
 */
struct mpmc_ring_ctrl {
	__u32 magic;
	__u32 version;
	__u32 nr_slots;
	__u32 slot_mask;
	__u32 slot_size;
	__u32 max_msg_size;
	__u32 slots_offset;
	__u32 pos_bits;
	__u64 ring_size;
	__u64 reserved0[3];
	/* offset 64: read by every fast-path operation */
	__u32 flags;
	__u32 recv_waiters;
	__u32 send_waiters;
	__u32 reserved1[13];
};

#define MPMC_RING_F_BROKEN	1	/* inconsistent ring: EIO, sticky */
#define MPMC_RING_F_FRONT	2	/* the kernel holds older messages */
#define MPMC_RING_F_SHUT_WR	4	/* mirrors MPMC_SHUT_WR */
#define MPMC_RING_F_SHUT_RD	8	/* mirrors MPMC_SHUT_RD */

/* In a waiter word: a poller of that direction is armed. */
#define MPMC_RING_W_POLL	0x80000000U

/*
 * The ring region starts with the two positions, each alone in 128 bytes:
 * __u64 at MPMC_RING_ENQ_OFF (producers) and MPMC_RING_DEQ_OFF (consumers).
 * Bit 63 (MPMC_RING_CLOSED) set: closed, use the system calls. Positions
 * count up from 0 and never wrap in practice (2^63).
 */
#define MPMC_RING_ENQ_OFF	0
#define MPMC_RING_DEQ_OFF	128
#define MPMC_RING_CLOSED	0x8000000000000000ULL

/*
 * struct mpmc_ring_slot - one slot, at slots_offset + i * slot_size
 * @word: position (mod 2^48) << 16 | owner << 2 | state
 * @len:  payload length of a FULL slot; MPMC_RING_LEN_SKIP: deliver nothing
 * @data: max_msg_size bytes of payload
 *
 * Slot i starts FREE at position i. A sender at position p claims
 * FREE(p) -> CLAIMED(p, id), advances the enqueue position, writes @len
 * and @data, then stores FULL(p, 0). A receiver at q claims FULL(q, 0) ->
 * READING(q, id), advances the dequeue position, copies out, then stores
 * FREE(q + nr_slots). See Documentation/ring-mode.rst, section 4.
 */
struct mpmc_ring_slot {
	__u64 word;
	__u32 len;
	__u32 reserved;
	__u8 data[];
};

#define MPMC_RING_POS_SHIFT	16
#define MPMC_RING_POS_MASK	((1ULL << 48) - 1)
#define MPMC_RING_OWNER_SHIFT	2
#define MPMC_RING_OWNER_MAX	0x3fff	/* ids 1..MPMC_RING_OWNER_MAX; 0: kernel */
#define MPMC_RING_STATE_MASK	3
#define MPMC_RING_FREE		0
#define MPMC_RING_CLAIMED	1
#define MPMC_RING_FULL		2
#define MPMC_RING_READING	3
#define MPMC_RING_LEN_SKIP	0xffffffffU

#define MPMC_RING_WORD(pos, owner, state)				\
	((((__u64)(pos) & MPMC_RING_POS_MASK) << MPMC_RING_POS_SHIFT) |	\
	 ((__u64)(owner) << MPMC_RING_OWNER_SHIFT) | (state))

/*
 * struct mpmc_ring_info - argument of MPMC_IOC_RING_INFO
 * @addr:      in: the address of the caller's ring region mapping
 * @mapper_id: out: the owner id this mapping claims slots with
 * @nr_slots, @slot_size: out: as in the control page
 * @flags:     out: the control page's flags now
 * @reserved:  must be 0
 */
struct mpmc_ring_info {
	__u64 addr;
	__u32 mapper_id;
	__u32 nr_slots;
	__u32 slot_size;
	__u32 flags;
	__u64 reserved[2];
};

#define MPMC_IOC_GET_CONFIG	_IOR(MPMC_IOC_MAGIC, 1, struct mpmc_config)
#define MPMC_IOC_SET_CONFIG	_IOW(MPMC_IOC_MAGIC, 2, struct mpmc_config)
#define MPMC_IOC_GET_STATS	_IOR(MPMC_IOC_MAGIC, 3, struct mpmc_stats)
#define MPMC_IOC_SHUTDOWN	_IO(MPMC_IOC_MAGIC, 4)
#define MPMC_IOC_NEW_ENDPOINT	_IOW(MPMC_IOC_MAGIC, 5, struct mpmc_endpoint)
#define MPMC_IOC_SEND		_IOWR(MPMC_IOC_MAGIC, 6, struct mpmc_batch)
#define MPMC_IOC_RECV		_IOWR(MPMC_IOC_MAGIC, 7, struct mpmc_batch)
#define MPMC_IOC_RING_INFO	_IOWR(MPMC_IOC_MAGIC, 8, struct mpmc_ring_info)
/* The doorbell: argument MPMC_ROLE_RECV and/or MPMC_ROLE_SEND, by value. */
#define MPMC_IOC_RING_WAKE	_IO(MPMC_IOC_MAGIC, 9)

#endif /* _UAPI_LINUX_MPMC_H */
