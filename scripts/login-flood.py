#!/usr/bin/env python3
"""Login flood for docs/ROBUSTNESS.md: N distinct source addresses (spread over
127.0.2.0-127.0.9.255, one datagram each) each send LOGIN_REQ with a fresh nickname to a
chat-server on loopback, while one well-behaved user keeps talking; prints the server's RSS
before and after and whether the user was still served.

usage: scripts/login-flood.py PORT SERVER_PID [N]
"""
import socket
import struct
import sys
import time

LOGIN, JOIN, PUBLIC, PUBLIC_MSG = 20, 50, 90, 100


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


def dgram(code, text):
    return struct.pack(">H", code) + text.encode()


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 50_000
    server = ("127.0.0.1", port)
    good = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    good.bind(("127.0.0.1", 0))
    good.settimeout(5)
    good.sendto(dgram(LOGIN, "steady"), server)
    good.recvfrom(2048)
    good.sendto(dgram(JOIN, "Pets"), server)
    good.recvfrom(2048)
    before = rss_kib(pid)
    start = time.time()
    for i in range(n):
        ip = f"127.0.{2 + i // 65000 % 8}.{1 + i % 250}"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ip, 0))
        s.sendto(dgram(LOGIN, f"flood{i}"), server)
        s.close()
        if i % 5000 == 0:
            good.sendto(dgram(PUBLIC, f"during {i}"), server)
    took = time.time() - start
    time.sleep(2)
    good.sendto(dgram(PUBLIC, "after the flood"), server)
    served = False
    deadline = time.time() + 5
    while time.time() < deadline:
        data, _ = good.recvfrom(2048)
        code = struct.unpack(">H", data[:2])[0]
        if code == PUBLIC_MSG and data[2:].decode().endswith("after the flood"):
            served = True
            break
    after = rss_kib(pid)
    print(f"flood: {n} addresses in {took:.1f} s ({n / took:.0f}/s)")
    print(f"server RSS: {before} KiB before, {after} KiB after ({after - before:+d} KiB)")
    print(f"steady user still served: {served}")
    return 0 if served else 1


if __name__ == "__main__":
    sys.exit(main())
