#!/usr/bin/env python3
"""A bad network link on this machine, in user space, for kernels without
sch_netem: two TUN devices with this process between them, forwarding every
IP packet after a fixed delay and dropping a share of them at random, as
`tc qdisc add dev X root netem delay D loss L` would on the way out of X.

    impaired_link.py NEAR FAR DELAY_MS LOSS_PERCENT

NEAR and FAR are the names of the two TUN devices to create; the caller
moves FAR into the players' network namespace and gives both addresses once
this prints "ready". Packets from NEAR (the server's side) to FAR are delayed
and dropped; the way back passes at once (netem on the server's egress).
The delay is constant, so packets keep their order. Runs until killed;
prints what it forwarded and dropped on SIGTERM.
"""

import fcntl
import heapq
import os
import random
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main():
    near_name, far_name, delay_ms, loss_pct = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    near, far = open_tun(near_name), open_tun(far_name)
    delay = delay_ms / 1000.0
    loss = loss_pct / 100.0
    rng = random.Random(0x11CE)
    # (due time, sequence, destination fd, packet): the sequence keeps order.
    queue = []
    seq = 0
    counts = {"forwarded": 0, "dropped": 0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    print("ready", flush=True)
    while not stop:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 0.5
        try:
            readable, _, _ = select.select([near, far], [], [], min(timeout, 0.5))
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in readable:
            while True:
                try:
                    packet = os.read(fd, 65535)
                except BlockingIOError:
                    break
                if fd == near and rng.random() < loss:
                    counts["dropped"] += 1
                    continue
                seq += 1
                due = now + delay if fd == near else now
                heapq.heappush(queue, (due, seq, far if fd == near else near, packet))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, fd, packet = heapq.heappop(queue)
            try:
                os.write(fd, packet)
                counts["forwarded"] += 1
            except OSError:
                counts["dropped"] += 1
    print(f"forwarded {counts['forwarded']} dropped {counts['dropped']}", flush=True)


if __name__ == "__main__":
    main()
