// SPDX-License-Identifier: MIT
/*
 * c_consumer FD: the C member of the cross-language demo (xlang.py).
 * Receives from the inherited channel fd FD with epoll and libmpmc's
 * non-waiting receive until end of file; prints each message on a line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <mpmc.h>

int main(int argc, char **argv)
{
	struct epoll_event ev = { .events = EPOLLIN };
	char buf[4096];
	long n, got = 0;
	int fd, ep;

	if (argc != 2)
		return fprintf(stderr, "usage: c_consumer FD\n"), 2;
	fd = atoi(argv[1]);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		return perror("epoll"), 1;
	for (;;) {
		if (epoll_wait(ep, &ev, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return perror("epoll_wait"), 1;
		}
		/* Everything queued now; EAGAIN: another consumer was faster. */
		while ((n = mpmc_try_recv(fd, buf, sizeof(buf) - 1)) > 0) {
			buf[n] = '\0';
			printf("%s\n", buf);
			got++;
		}
		if (n == 0)
			break;			/* end of file: every sender is gone */
		if (n != -EAGAIN)
			return fprintf(stderr, "c_consumer: %s\n", strerror((int)-n)), 1;
	}
	fprintf(stderr, "c_consumer: %ld messages, then end of file\n", got);
	return 0;
}
