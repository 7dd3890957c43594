# SPDX-License-Identifier: (LGPL-2.1 OR MIT)
"""The blocking API against the real device."""

import errno
import os
import socket
import threading
import time

import pytest

import mpmc

pytestmark = pytest.mark.needs_device


def test_send_recv_fifo_and_stats():
    with mpmc.Channel.new() as ch:
        assert ch.capacity == 64 and ch.config().max_msg_size == 4096
        for i in range(10):
            ch.send(b"m%d" % i)
        assert len(ch) == 10
        assert [ch.recv() for _ in range(10)] == [b"m%d" % i for i in range(10)]
        st = ch.stats()
        assert (st.total_sent, st.total_received, st.queued_msgs) == (10, 10, 0)
        assert (st.send_files, st.recv_files) == (1, 1)
        assert not ch.is_closed


def test_try_calls_tell_full_empty_closed_apart():
    with mpmc.Channel.new(capacity=2) as ch:
        with pytest.raises(mpmc.Empty):
            ch.try_recv()
        ch.try_send(b"a")
        ch.try_send(b"b")
        with pytest.raises(mpmc.Full):
            ch.try_send(b"c")
        ch.shutdown()
        assert ch.is_closed
        with pytest.raises(mpmc.Closed):
            ch.try_send(b"c")
        with pytest.raises(mpmc.Closed):
            ch.send(b"c")
        assert ch.try_recv() == b"a"  # receivers drain first
        assert ch.recv() == b"b"
        with pytest.raises(mpmc.Closed):
            ch.try_recv()
        with pytest.raises(mpmc.Closed):
            ch.recv()


def test_timeouts():
    with mpmc.Channel.new(capacity=1) as ch:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            ch.recv_timeout(0.2)
        assert time.monotonic() - t0 >= 0.19
        ch.send_timeout(b"x", 0.2)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            ch.send_timeout(b"y", 0.2)
        assert time.monotonic() - t0 >= 0.19
        assert ch.recv_timeout(0.2) == b"x"


def test_blocked_recv_is_woken_by_a_send():
    with mpmc.Channel.new() as ch:
        got = []
        t = threading.Thread(target=lambda: got.append(ch.recv()))
        t.start()
        time.sleep(0.2)
        assert ch.stats().blocked_receivers == 1
        ch.send(b"wake")
        t.join(10)
        assert got == [b"wake"]


def test_batches():
    with mpmc.Channel.new(capacity=5) as ch:
        assert ch.send_batch([b"%d" % i for i in range(8)]) == 5  # as many as fit
        assert ch.recv_batch(3) == [b"0", b"1", b"2"]
        assert ch.recv_batch(10, timeout=0) == [b"3", b"4"]
        with pytest.raises(mpmc.Empty):
            ch.recv_batch(10, timeout=0)
        with pytest.raises(TimeoutError):
            ch.recv_batch(10, timeout=0.05)
        ch.shutdown()
        assert ch.recv_batch(4) == []  # end of file


def test_priorities_and_peek():
    with mpmc.Channel.new() as ch:
        assert ch.peek(2) == []
        with pytest.raises(TimeoutError):
            ch.peek(2, timeout=0.05)
        ch.send(b"low")
        ch.send(b"high", prio=7)
        assert ch.peek(2) == [b"high", b"low"]
        assert ch.recv_prio() == (b"high", 7)
        assert ch.recv_prio() == (b"low", 0)


def test_message_size_limits_and_config():
    with mpmc.Channel.with_config(mpmc.Config(capacity=4, max_msg_size=16)) as ch:
        assert ch.config() == mpmc.Config(4, 16, 0)
        with pytest.raises(OSError) as e:
            ch.send(b"x" * 17)
        assert e.value.errno == errno.EMSGSIZE
        ch.send(b"")  # 0 bytes: nothing enqueued
        assert len(ch) == 0
        rx = ch.receiver()
        with pytest.raises(mpmc.Empty):
            rx.try_recv()  # rx's buffers are now sized for 16 bytes
        ch.set_config(mpmc.Config(4, 8192, 0))
        ch.send(b"y" * 5000)
        ch.send(b"z" * 6000)
        assert rx.recv() == b"y" * 5000  # EMSGSIZE, then a bigger buffer
        assert rx.try_recv() == b"z" * 6000
        rx.close()


def test_endpoints_roles_and_last_sender_gives_eof():
    tx, rx = mpmc.Channel.new().split()
    assert not hasattr(rx, "send") and not hasattr(tx, "recv")
    # The kernel enforces the roles whatever the Python type says.
    with mpmc.Channel.from_fd(os.dup(rx.fileno())) as as_both:
        with pytest.raises(OSError) as e:
            as_both.send(b"x")
        assert e.value.errno == errno.EBADF
    with mpmc.Channel.from_fd(os.dup(tx.fileno())) as as_both:
        with pytest.raises(OSError) as e:
            as_both.try_recv()
        assert e.value.errno == errno.EBADF
    tx2 = tx.clone()
    assert tx.stats().send_files == 2
    tx.send(b"one")
    tx.close()
    tx2.send(b"two")
    tx2.close()  # the last sender: the channel behaves as after SHUT_WR
    assert list(rx) == [b"one", b"two"]
    rx.close()


def test_fork_and_scm_rights_exactly_once():
    ch = mpmc.Channel.new(capacity=8)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # the producer gets its sender over SCM_RIGHTS
        try:
            ch.close()
            tx = mpmc.recv_endpoint(b, mpmc.Sender)
            for i in range(500):
                tx.send(b"%d" % i)
            os._exit(0)
        except BaseException:
            os._exit(1)
    tx, rx = ch.split()
    mpmc.send_endpoint(a, tx)
    tx.close()  # only the child holds a sender now
    got = [int(m) for m in rx]
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert got == list(range(500))


def test_many_threads_exactly_once():
    ch = mpmc.Channel.new(capacity=4)
    out = []
    lock = threading.Lock()

    def consume():
        rx = ch.receiver()
        for m in rx:
            with lock:
                out.append(m)

    def produce(k):
        tx = ch.sender()
        for i in range(200):
            tx.send(b"%d:%d" % (k, i))
        tx.close()

    cons = [threading.Thread(target=consume) for _ in range(3)]
    prods = [threading.Thread(target=produce, args=(k,)) for k in range(3)]
    for t in cons + prods:
        t.start()
    for t in prods:
        t.join()
    ch.shutdown()
    for t in cons:
        t.join(30)
    assert sorted(out) == sorted(b"%d:%d" % (k, i) for k in range(3) for i in range(200))
    ch.close()
