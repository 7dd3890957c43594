#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The cross-language demo: one /dev/mpmc channel, a Python asyncio
producer (this process), a Rust tokio consumer (its receive endpoint
passed over a Unix socket with SCM_RIGHTS) and a C epoll consumer (its
endpoint inherited). The producer closes its sender, the consumers get
end of file; every message must have been received exactly once.

Usage: xlang.py [-n MESSAGES] C_CONSUMER RUST_CONSUMER
"""

import argparse
import asyncio
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import mpmc  # noqa: E402
import mpmc.aio  # noqa: E402


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("c_consumer")
    ap.add_argument("rust_consumer")
    args = ap.parse_args()

    ch = mpmc.aio.Channel.new(capacity=32)
    rx_c = ch.receiver()  # inherited by the C consumer
    rx_rust = ch.receiver()  # passed to the Rust consumer with SCM_RIGHTS
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    c = await asyncio.create_subprocess_exec(
        args.c_consumer, str(rx_c.fileno()), pass_fds=[rx_c.fileno()],
        stdout=asyncio.subprocess.PIPE)
    r = await asyncio.create_subprocess_exec(
        args.rust_consumer, str(theirs.fileno()), pass_fds=[theirs.fileno()],
        stdout=asyncio.subprocess.PIPE)
    theirs.close()
    mpmc.send_endpoint(mine, rx_rust)
    rx_rust.close()
    rx_c.close()
    tx = mpmc.aio.Sender(ch.sender().detach())
    ch.close()  # from here on this process only sends
    st = tx.stats()
    print(f"xlang: channel capacity {st.capacity}: 1 sender (python asyncio), "
          f"{st.recv_files} receivers (rust tokio, SCM_RIGHTS; C epoll, inherited)")

    async def produce() -> None:
        for i in range(args.n):
            await tx.send(b"%d" % i)  # waits on the event loop while full
        tx.close()  # the last sender: the consumers get end of file

    t0 = time.monotonic()
    (c_out, _), (r_out, _), _ = await asyncio.gather(c.communicate(), r.communicate(), produce())
    secs = time.monotonic() - t0
    got = {"C epoll": [int(x) for x in c_out.split()], "Rust tokio": [int(x) for x in r_out.split()]}
    ok = c.returncode == 0 and r.returncode == 0

    print(f"{'consumer':<12} {'messages':>9} {'share':>7}  first ids")
    for who, ids in got.items():
        share = 100.0 * len(ids) / args.n if args.n else 0
        print(f"{who:<12} {len(ids):>9} {share:>6.1f}%  {ids[:8]}")
        if ids != sorted(ids):
            print(f"xlang: FAIL: {who} received out of order")
            ok = False
    everything = sorted(got["C epoll"] + got["Rust tokio"])
    exactly_once = everything == list(range(args.n))
    print(f"xlang: {args.n} messages sent by Python in {secs:.2f}s, "
          f"{len(everything)} received, exactly once: {'yes' if exactly_once else 'NO'}")
    return 0 if ok and exactly_once else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
