// SPDX-License-Identifier: MIT
/* hello: a producer process sends three messages; the parent reads to EOF. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <mpmc.h>

int main(void)
{
	char msg[64];
	int fd, i, n, status;

	fd = mpmc_open(NULL, O_RDWR | O_CLOEXEC);	/* a new channel */
	if (fd < 0)
		return fprintf(stderr, "mpmc_open: %s\n", strerror(-fd)), 1;

	if (fork() == 0) {				/* the producer */
		for (i = 0; i < 3; i++) {
			n = snprintf(msg, sizeof(msg), "hello #%d", i);
			if (mpmc_send(fd, msg, n) != n)	/* one call, one message */
				_exit(1);
		}
		_exit(mpmc_shutdown(fd, MPMC_SHUT_WR) < 0);	/* Go's close(ch) */
	}

	for (i = 0; (n = mpmc_recv(fd, msg, sizeof(msg) - 1)) > 0; i++) {
		msg[n] = '\0';				/* whole messages only */
		printf("received \"%s\"\n", msg);
		if (n != 8 || msg[7] != '0' + i)
			return 1;
	}
	wait(&status);
	printf("%d messages, then %s\n", i, n ? strerror(-n) : "end of file");
	return n || i != 3 || status;
}
