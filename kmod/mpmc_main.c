// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/mpmc: every open() creates a bounded multi-producer multi-consumer
 * message channel. This file is the glue between the VFS and the channel
 * (mpmc_chan.c): the misc device, file operations, ioctls, fdinfo and the
 * module parameters that bound what an unprivileged user may configure.
 *
 * A file's roles are its access mode: FMODE_WRITE is the send role and
 * FMODE_READ the receive role, so the VFS already refuses read(2) and
 * write(2) in a direction the file lacks (EBADF). Files made by
 * MPMC_IOC_NEW_ENDPOINT are anonymous-inode files on the same channel.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/compat.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/termios.h>
#include <linux/uio.h>

#include "mpmc_chan.h"
#include "mpmc_ring.h"

static const struct file_operations mpmc_fops;

static unsigned int mpmc_file_roles(const struct file *file)
{
	unsigned int roles = 0;

	if (file->f_mode & FMODE_WRITE)
		roles |= MPMC_ROLE_SEND;
	if (file->f_mode & FMODE_READ)
		roles |= MPMC_ROLE_RECV;
	return roles;
}

/* Channels are streams with io_uring's non-blocking fast path. */
static void mpmc_file_setup(struct file *file)
{
	stream_open(file_inode(file), file);
	file->f_mode |= FMODE_NOWAIT;
}

static int mpmc_open(struct inode *inode, struct file *file)
{
	struct mpmc_chan *ch = mpmc_chan_create(mpmc_file_roles(file));

	if (!ch)
		return -ENOMEM;
	file->private_data = ch;
	mpmc_file_setup(file);
	return 0;
}

static int mpmc_release(struct inode *inode, struct file *file)
{
	mpmc_chan_release(file->private_data, mpmc_file_roles(file));
	return 0;
}

static void mpmc_iocb_opts(const struct kiocb *iocb,
			   struct mpmc_wait_opts *opts)
{
	opts->nowait_alloc = iocb->ki_flags & IOCB_NOWAIT;
	opts->nonblock = opts->nowait_alloc ||
			 (READ_ONCE(iocb->ki_filp->f_flags) & O_NONBLOCK);
	opts->deadline = NULL;
}

static ssize_t mpmc_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct mpmc_wait_opts opts;

	if (!iov_iter_count(to))
		return 0;
	mpmc_iocb_opts(iocb, &opts);
	return mpmc_chan_recv(iocb->ki_filp->private_data, to, &opts);
}

static ssize_t mpmc_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct mpmc_wait_opts opts;

	if (!iov_iter_count(from))
		return 0;
	mpmc_iocb_opts(iocb, &opts);
	return mpmc_chan_send(iocb->ki_filp->private_data, from, &opts);
}

static __poll_t mpmc_poll(struct file *file, poll_table *wait)
{
	return mpmc_chan_poll(file->private_data, file, wait,
			      mpmc_file_roles(file));
}

/* Ring mode: a mapping can send and receive, so it needs both roles. */
static int mpmc_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct mpmc_ring *r = mpmc_chan_ring(file->private_data);

	if (!r)
		return -ENODEV;
	if (mpmc_file_roles(file) != (MPMC_ROLE_SEND | MPMC_ROLE_RECV))
		return -EACCES;
	return mpmc_ring_mmap(r, vma);
}

static long mpmc_ioctl_ring_info(struct file *file, void __user *arg)
{
	struct mpmc_ring *r = mpmc_chan_ring(file->private_data);
	struct mpmc_ring_info info;
	long ret;

	if (!r)
		return -ENODEV;
	if (copy_from_user(&info, arg, sizeof(info)))
		return -EFAULT;
	ret = mpmc_ring_info(r, file, &info);
	if (ret)
		return ret;
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long mpmc_ioctl_ring_wake(struct mpmc_chan *ch, unsigned long arg)
{
	if (!mpmc_chan_ring(ch))
		return -ENODEV;
	if (!arg || arg & ~(unsigned long)(MPMC_ROLE_SEND | MPMC_ROLE_RECV))
		return -EINVAL;
	mpmc_chan_ring_wake(ch, arg);
	return 0;
}

static int mpmc_fasync(int fd, struct file *file, int on)
{
	return mpmc_chan_fasync(file->private_data, fd, file, on);
}

static long mpmc_ioctl_get_config(struct mpmc_chan *ch, void __user *arg)
{
	struct mpmc_config cfg;

	mpmc_chan_get_config(ch, &cfg);
	return copy_to_user(arg, &cfg, sizeof(cfg)) ? -EFAULT : 0;
}

static long mpmc_ioctl_set_config(struct mpmc_chan *ch, void __user *arg)
{
	struct mpmc_config cfg;

	if (copy_from_user(&cfg, arg, sizeof(cfg)))
		return -EFAULT;
	return mpmc_chan_set_config(ch, &cfg);
}

static long mpmc_ioctl_get_stats(struct mpmc_chan *ch, void __user *arg)
{
	struct mpmc_stats st;

	mpmc_chan_get_stats(ch, &st);
	return copy_to_user(arg, &st, sizeof(st)) ? -EFAULT : 0;
}

static long mpmc_ioctl_new_endpoint(struct file *file, void __user *arg)
{
	struct mpmc_chan *ch = file->private_data;
	struct mpmc_endpoint ep;
	struct file *nfile;
	int fd, accmode;

	if (copy_from_user(&ep, arg, sizeof(ep)))
		return -EFAULT;
	if (!ep.roles || ep.roles & ~(MPMC_ROLE_SEND | MPMC_ROLE_RECV) ||
	    ep.flags & ~(O_CLOEXEC | O_NONBLOCK) || ep.reserved)
		return -EINVAL;
	if (ep.roles & ~mpmc_file_roles(file))
		return -EPERM;

	if (ep.roles == (MPMC_ROLE_SEND | MPMC_ROLE_RECV))
		accmode = O_RDWR;
	else if (ep.roles == MPMC_ROLE_SEND)
		accmode = O_WRONLY;
	else
		accmode = O_RDONLY;

	fd = get_unused_fd_flags(ep.flags & O_CLOEXEC);
	if (fd < 0)
		return fd;
	mpmc_chan_attach(ch, ep.roles);
	nfile = anon_inode_getfile("[mpmc]", &mpmc_fops, ch,
				   accmode | (ep.flags & O_NONBLOCK));
	if (IS_ERR(nfile)) {
		put_unused_fd(fd);
		mpmc_chan_release(ch, ep.roles);
		return PTR_ERR(nfile);
	}
	mpmc_file_setup(nfile);
	fd_install(fd, nfile);
	return fd;
}

/*
 * Batches: the first message may wait as the timeout allows; the rest move
 * only if they can without waiting. A positive timeout becomes *@deadline.
 */
static int mpmc_batch_opts(struct file *file, const struct mpmc_batch *b,
			   struct mpmc_wait_opts *opts, ktime_t *deadline,
			   fmode_t mode)
{
	u32 flags = mode == FMODE_READ ? MPMC_RECV_PEEK : 0;

	if (b->flags & ~flags || !b->count || b->count > MPMC_BATCH_MAX)
		return -EINVAL;
	if (b->timeout_ns < -1)
		return -EINVAL;
	opts->nowait_alloc = false;
	opts->nonblock = !b->timeout_ns ||
			 (READ_ONCE(file->f_flags) & O_NONBLOCK);
	opts->deadline = NULL;
	if (b->timeout_ns > 0) {
		*deadline = ktime_add_safe(ktime_get(),
					   ns_to_ktime(b->timeout_ns));
		opts->deadline = deadline;
	}
	return 0;
}

/*
 * The result of a batch that moved nothing.
 *
 * An interrupted wait (-ERESTARTSYS, nothing moved) restarts
 * transparently under SA_RESTART only when the timeout is -1: a signal
 * ends a bounded wait with EINTR. But the wait also ends for task work
 * queued with TIF_NOTIFY_SIGNAL (io_uring completions of this task),
 * which is no signal and must not surface as EINTR. The call then returns
 * to let the task work run and is restarted for the time left, written
 * back to @ub->timeout_ns as select(2) does with its timeout:
 *
 *   batch (deadline D)                    io_uring, another CPU
 *   ------------------                    ---------------------
 *   mpmc_wait() asleep
 *                                         task_work_add(TWA_SIGNAL)
 *   signal_pending(): -ERESTARTSYS
 *   !task_sigpending(): timeout_ns = D - now
 *   return -ERESTARTNOHAND
 *   exit to user: task work runs; no
 *   handler ran, so the call restarts
 *   and waits until now + (D - now) = D
 *
 * A signal whose handler runs between the check and the exit still gets
 * EINTR (-ERESTARTNOHAND), only with timeout_ns updated.
 */
static long mpmc_batch_result(struct mpmc_batch __user *ub,
			      const struct mpmc_batch *b,
			      const struct mpmc_wait_opts *opts, long ret)
{
	ktime_t left;

	if (ret != -ERESTARTSYS || b->timeout_ns == -1)
		return ret;
	if (task_sigpending(current))
		return -EINTR;
	left = ktime_sub(*opts->deadline, ktime_get());
	if (left <= 0)
		return -ETIMEDOUT;
	if (put_user(ktime_to_ns(left), &ub->timeout_ns))
		return -EINTR;
	return -ERESTARTNOHAND;
}

/*
 * The start of both batch ioctls: check that @file may move messages that
 * way (@mode), and read the batch into @b and @opts.
 */
static int mpmc_batch_get(struct file *file, fmode_t mode, void __user *arg,
			  struct mpmc_batch *b, struct mpmc_wait_opts *opts,
			  ktime_t *deadline)
{
	if (!(file->f_mode & mode))
		return -EBADF;
	if (copy_from_user(b, arg, sizeof(*b)))
		return -EFAULT;
	return mpmc_batch_opts(file, b, opts, deadline, mode);
}

/* Read @n entries of a batch, a chunk, onto the stack. */
static int mpmc_vec_read(struct mpmc_msgvec *vec,
			 const struct mpmc_msgvec __user *uvec, unsigned int n)
{
	if (copy_from_user(vec, uvec, array_size(n, sizeof(*vec))))
		return -EFAULT;
	return 0;
}

/*
 * Send entries have a length and a priority in range (a ring channel has
 * only priority 0).
 */
static int mpmc_send_vec_check(struct mpmc_chan *ch,
			       const struct mpmc_msgvec *vec, unsigned int n)
{
	u32 nr_prio = mpmc_chan_ring(ch) ? 1 : MPMC_PRIO_MAX;
	unsigned int i;

	for (i = 0; i < n; i++)
		if (!vec[i].len || vec[i].prio >= nr_prio)
			return -EINVAL;
	return 0;
}

/*
 * A bad entry (one that cannot be read, or a bad send entry) fails the
 * whole batch before anything moves: a batch longer than a chunk is read
 * through once to check it. Each chunk is checked again when it is read
 * to move, so entries changed meanwhile end the batch there.
 */
static int mpmc_batch_check(struct mpmc_chan *ch,
			    const struct mpmc_msgvec __user *uvec,
			    unsigned int count, struct mpmc_msgvec *vec,
			    fmode_t mode)
{
	unsigned int done, n;
	int ret;

	for (done = 0; done < count; done += n) {
		n = min_t(unsigned int, count - done, MPMC_BATCH_CHUNK);
		ret = mpmc_vec_read(vec, uvec + done, n);
		if (!ret && mode == FMODE_WRITE)
			ret = mpmc_send_vec_check(ch, vec, n);
		if (ret)
			return ret;
	}
	return 0;
}

/* Send one chunk of @n entries from @uvec; returns as the channel does. */
static int mpmc_send_chunk(struct mpmc_chan *ch, struct mpmc_msgvec *vec,
			   const struct mpmc_msgvec __user *uvec,
			   unsigned int n, const struct mpmc_wait_opts *opts)
{
	int ret = mpmc_vec_read(vec, uvec, n);

	if (!ret)
		ret = mpmc_send_vec_check(ch, vec, n);
	if (!ret)
		ret = mpmc_chan_send_batch(ch, vec, n, opts);
	return ret;
}

/* Receive into one chunk of @n entries at @uvec; returns as the channel. */
static int mpmc_recv_chunk(struct mpmc_chan *ch, struct mpmc_msgvec *vec,
			   struct mpmc_msgvec __user *uvec, unsigned int n,
			   const struct mpmc_wait_opts *opts)
{
	int ret = mpmc_vec_read(vec, uvec, n);

	if (ret)
		return ret;
	return mpmc_chan_recv_batch(ch, vec, uvec, n, opts);
}

/*
 * A peek is not a hot path: its entries are copied in whole, and it holds
 * every message it copies at once.
 */
static long mpmc_ioctl_peek(struct file *file, struct mpmc_batch __user *arg,
			    const struct mpmc_batch *b,
			    const struct mpmc_wait_opts *opts)
{
	struct mpmc_msgvec __user *uvec = u64_to_user_ptr(b->vec);
	struct mpmc_msgvec *vec;
	long ret;

	vec = vmemdup_user(uvec, array_size(b->count, sizeof(*vec)));
	if (IS_ERR(vec))
		return PTR_ERR(vec);
	ret = mpmc_chan_peek(file->private_data, vec, uvec, b->count, opts);
	kvfree(vec);
	return mpmc_batch_result(arg, b, opts, ret);
}

/*
 * Both batch ioctls move a chunk at a time, the entries read onto the
 * stack; only the first chunk may wait. A chunk that moves less than all
 * of its entries ends the batch. Returns how many moved, or the error of
 * the first chunk.
 */
static long mpmc_ioctl_batch(struct file *file, void __user *arg,
			     fmode_t mode)
{
	struct mpmc_msgvec vec[MPMC_BATCH_CHUNK];
	struct mpmc_chan *ch = file->private_data;
	struct mpmc_msgvec __user *uvec;
	struct mpmc_wait_opts opts;
	unsigned int done = 0, n;
	struct mpmc_batch b;
	ktime_t deadline;
	long ret;

	ret = mpmc_batch_get(file, mode, arg, &b, &opts, &deadline);
	if (ret)
		return ret;
	if (b.flags & MPMC_RECV_PEEK)
		return mpmc_ioctl_peek(file, arg, &b, &opts);
	uvec = u64_to_user_ptr(b.vec);
	if (b.count > MPMC_BATCH_CHUNK) {
		ret = mpmc_batch_check(ch, uvec, b.count, vec, mode);
		if (ret)
			return ret;
	}
	do {
		n = min_t(unsigned int, b.count - done, MPMC_BATCH_CHUNK);
		if (mode == FMODE_WRITE)
			ret = mpmc_send_chunk(ch, vec, uvec + done, n, &opts);
		else
			ret = mpmc_recv_chunk(ch, vec, uvec + done, n, &opts);
		if (ret > 0)
			done += ret;
		opts.nonblock = true;
	} while (ret == n && done < b.count);
	return done ? done : mpmc_batch_result(arg, &b, &opts, ret);
}

static long mpmc_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct mpmc_chan *ch = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case FIONREAD:
		return put_user((int)mpmc_chan_next_len(ch), (int __user *)argp);
	case MPMC_IOC_GET_CONFIG:
		return mpmc_ioctl_get_config(ch, argp);
	case MPMC_IOC_SET_CONFIG:
		return mpmc_ioctl_set_config(ch, argp);
	case MPMC_IOC_GET_STATS:
		return mpmc_ioctl_get_stats(ch, argp);
	case MPMC_IOC_SHUTDOWN:
		return mpmc_chan_shutdown(ch, arg);
	case MPMC_IOC_NEW_ENDPOINT:
		return mpmc_ioctl_new_endpoint(file, argp);
	case MPMC_IOC_SEND:
		return mpmc_ioctl_batch(file, argp, FMODE_WRITE);
	case MPMC_IOC_RECV:
		return mpmc_ioctl_batch(file, argp, FMODE_READ);
	case MPMC_IOC_RING_INFO:
		return mpmc_ioctl_ring_info(file, argp);
	case MPMC_IOC_RING_WAKE:
		return mpmc_ioctl_ring_wake(ch, arg);
	default:
		return -ENOTTY;
	}
}

#ifdef CONFIG_PROC_FS
static void mpmc_show_fdinfo(struct seq_file *m, struct file *file)
{
	struct mpmc_chan *ch = file->private_data;
	struct mpmc_config cfg;
	struct mpmc_stats st;

	mpmc_chan_get_stats(ch, &st);
	mpmc_chan_get_config(ch, &cfg);
	seq_printf(m, "id:\t%llu\n", mpmc_chan_id(ch));
	seq_printf(m, "roles:\t%u\n", mpmc_file_roles(file));
	seq_printf(m, "config_flags:\t%u\n", cfg.flags);
	seq_printf(m, "capacity:\t%u\n", st.capacity);
	seq_printf(m, "max_msg_size:\t%u\n", st.max_msg_size);
	seq_printf(m, "queued_msgs:\t%u\n", st.queued_msgs);
	seq_printf(m, "queued_bytes:\t%llu\n", st.queued_bytes);
	seq_printf(m, "shutdown:\t%u\n", st.shutdown);
	seq_printf(m, "send_files:\t%u\n", st.send_files);
	seq_printf(m, "recv_files:\t%u\n", st.recv_files);
	seq_printf(m, "blocked_senders:\t%u\n", st.blocked_senders);
	seq_printf(m, "blocked_receivers:\t%u\n", st.blocked_receivers);
	seq_printf(m, "total_sent:\t%llu\n", st.total_sent);
	seq_printf(m, "total_received:\t%llu\n", st.total_received);
	seq_printf(m, "total_dropped:\t%llu\n", st.total_dropped);
	if (mpmc_chan_ring(ch))
		mpmc_ring_show_fdinfo(mpmc_chan_ring(ch), m);
}
#endif

static const struct file_operations mpmc_fops = {
	.owner		= THIS_MODULE,
	.open		= mpmc_open,
	.release	= mpmc_release,
	.read_iter	= mpmc_read_iter,
	.write_iter	= mpmc_write_iter,
	.poll		= mpmc_poll,
	.fasync		= mpmc_fasync,
	.mmap		= mpmc_mmap,
	.unlocked_ioctl	= mpmc_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
#ifdef CONFIG_PROC_FS
	.show_fdinfo	= mpmc_show_fdinfo,
#endif
};

static struct miscdevice mpmc_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "mpmc",
	.fops	= &mpmc_fops,
	.mode	= 0666,
};

static int __init mpmc_init(void)
{
	int ret = mpmc_msg_init();

	if (ret)
		return ret;
	ret = mpmc_ring_init();
	if (ret)
		goto out_msg;
	ret = misc_register(&mpmc_misc);
	if (ret)
		goto out_ring;
	return 0;
out_ring:
	mpmc_ring_exit();
out_msg:
	mpmc_msg_exit();
	return ret;
}

static void __exit mpmc_exit(void)
{
	misc_deregister(&mpmc_misc);
	mpmc_ring_exit();
	mpmc_msg_exit();
}

module_init(mpmc_init);
module_exit(mpmc_exit);

MODULE_DESCRIPTION("Bounded multi-producer multi-consumer message channels");
MODULE_AUTHOR("The mpmc developers");
MODULE_VERSION(MPMC_VERSION);
MODULE_LICENSE("GPL");
