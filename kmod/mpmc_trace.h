/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of the mpmc channel, under tracefs as events/mpmc/. Every
 * event carries the channel id that fdinfo shows as "id".
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM mpmc

#if !defined(_MPMC_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _MPMC_TRACE_H

#include <linux/tracepoint.h>

#include "mpmc_chan.h"

/* Direction of a blocked or woken caller: enum mpmc_dir, as numbers. */
TRACE_DEFINE_ENUM(MPMC_SEND);
TRACE_DEFINE_ENUM(MPMC_RECV);

#define mpmc_trace_dir(dir) \
	__print_symbolic(dir, { MPMC_SEND, "send" }, { MPMC_RECV, "recv" })

/*
 * @seq numbers the messages of a channel in the order they were accepted
 * (low 32 bits of total_sent before the message): the mpmc_send and the
 * mpmc_recv (or mpmc_drop) of one message carry the same @seq, so a tool
 * can pair them and measure the time the message spent in the channel.
 */
DECLARE_EVENT_CLASS(mpmc_msg_class,
		    TP_PROTO(u64 id, u32 len, u32 queued, u32 seq),
		    TP_ARGS(id, len, queued, seq),
		    TP_STRUCT__entry(__field(u64, id)
				     __field(u32, len)
				     __field(u32, queued)
				     __field(u32, seq)),
		    TP_fast_assign(__entry->id = id;
				   __entry->len = len;
				   __entry->queued = queued;
				   __entry->seq = seq;),
		    TP_printk("chan=%llu len=%u queued=%u seq=%u",
			      __entry->id, __entry->len, __entry->queued,
			      __entry->seq)
);

/*
 * A message was accepted (queued, or handed to a blocked receiver), emitted
 * by the sender's task; @queued is the queue length right after, or, for a
 * sender that blocked, when it returns.
 */
DEFINE_EVENT(mpmc_msg_class, mpmc_send,
	     TP_PROTO(u64 id, u32 len, u32 queued, u32 seq),
	     TP_ARGS(id, len, queued, seq));

/*
 * A message was copied out to a receiver; @queued is the queue length right
 * after it was taken (0 for one handed to a blocked receiver).
 */
DEFINE_EVENT(mpmc_msg_class, mpmc_recv,
	     TP_PROTO(u64 id, u32 len, u32 queued, u32 seq),
	     TP_ARGS(id, len, queued, seq));

/* A caller is about to sleep; @waiters counts it. */
TRACE_EVENT(mpmc_block,
	    TP_PROTO(u64 id, int dir, u32 waiters),
	    TP_ARGS(id, dir, waiters),
	    TP_STRUCT__entry(__field(u64, id)
			     __field(int, dir)
			     __field(u32, waiters)),
	    TP_fast_assign(__entry->id = id;
			   __entry->dir = dir;
			   __entry->waiters = waiters;),
	    TP_printk("chan=%llu dir=%s waiters=%u", __entry->id,
		      mpmc_trace_dir(__entry->dir), __entry->waiters)
);

/*
 * A blocked caller finished waiting with @result: completed by a peer (0,
 * -EMSGSIZE, -EPIPE), woken to try again in throughput mode (2), or gave
 * up itself (-ERESTARTSYS, -ETIMEDOUT).
 */
TRACE_EVENT(mpmc_wake,
	    TP_PROTO(u64 id, int dir, pid_t pid, int result),
	    TP_ARGS(id, dir, pid, result),
	    TP_STRUCT__entry(__field(u64, id)
			     __field(int, dir)
			     __field(pid_t, pid)
			     __field(int, result)),
	    TP_fast_assign(__entry->id = id;
			   __entry->dir = dir;
			   __entry->pid = pid;
			   __entry->result = result;),
	    TP_printk("chan=%llu dir=%s pid=%d result=%d", __entry->id,
		      mpmc_trace_dir(__entry->dir), __entry->pid,
		      __entry->result)
);

/*
 * Overwrite mode dropped a message of @len bytes and priority @prio, the
 * one whose mpmc_send carried @seq.
 */
TRACE_EVENT(mpmc_drop,
	    TP_PROTO(u64 id, u32 len, u32 prio, u32 seq),
	    TP_ARGS(id, len, prio, seq),
	    TP_STRUCT__entry(__field(u64, id)
			     __field(u32, len)
			     __field(u32, prio)
			     __field(u32, seq)),
	    TP_fast_assign(__entry->id = id;
			   __entry->len = len;
			   __entry->prio = prio;
			   __entry->seq = seq;),
	    TP_printk("chan=%llu len=%u prio=%u seq=%u", __entry->id,
		      __entry->len, __entry->prio, __entry->seq)
);

/* Shutdown bits @how took effect; @state is the resulting set. */
TRACE_EVENT(mpmc_shutdown,
	    TP_PROTO(u64 id, u32 how, u32 state, u32 discarded),
	    TP_ARGS(id, how, state, discarded),
	    TP_STRUCT__entry(__field(u64, id)
			     __field(u32, how)
			     __field(u32, state)
			     __field(u32, discarded)),
	    TP_fast_assign(__entry->id = id;
			   __entry->how = how;
			   __entry->state = state;
			   __entry->discarded = discarded;),
	    TP_printk("chan=%llu how=%u shutdown=%u discarded=%u",
		      __entry->id, __entry->how, __entry->state,
		      __entry->discarded)
);

#endif /* _MPMC_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE mpmc_trace
#include <trace/define_trace.h>
