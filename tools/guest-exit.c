// SPDX-License-Identifier: GPL-2.0
/*
 * guest-exit: power off a QEMU x86 guest with an exit status, through the
 * isa-debug-exit device (-device isa-debug-exit,iobase=0xf4,iosize=0x04).
 * Writing V to the port makes QEMU exit with status (V << 1) | 1, so the
 * host sees an odd status and recovers V as status >> 1. Only 0..127
 * survive the host's 8-bit exit status; larger values are sent as 127.
 *
 * Usage (in the guest, as root): guest-exit [STATUS] [PORT]
 * Built static by tools/vm-run; busybox has no way to do port I/O.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/io.h>

int main(int argc, char **argv)
{
	long status = argc > 1 ? strtol(argv[1], NULL, 0) : 0;
	unsigned long port = argc > 2 ? strtoul(argv[2], NULL, 0) : 0xf4;

	if (status < 0 || status > 127)
		status = 127;
	if (ioperm(port, 1, 1)) {
		perror("guest-exit: ioperm");
		return 1;
	}
	sync();
	outb((unsigned char)status, port);
	/* Not reached when the device is there. */
	fprintf(stderr, "guest-exit: no isa-debug-exit device at 0x%lx\n", port);
	return 1;
}
