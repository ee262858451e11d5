#!/usr/bin/env python3
"""Raw mDNS listener: report when the first response naming an instance arrives.

Joins 224.0.0.251 and ff02::fb on one interface (default eth0), bound to *:5353 with
SO_REUSEADDR/SO_REUSEPORT (so it can sit beside a responder), and waits for the first mDNS
*response* (QR=1) carrying a record that names `<instance>.<type>` (as owner of SRV/TXT or as
PTR target; case-insensitive; probes are queries and do not count). Without --instance, any
response naming any instance of the type counts.

Prints {"listening": true, "t": MONO} once the sockets are ready, then
{"instance", "arrived": MONO, "src", "family", "ttl": ...} on arrival (MONO = CLOCK_MONOTONIC
seconds, comparable across lab namespaces of one machine) and exits 0; exits 1 after --timeout.
"""
import argparse
import json
import select
import socket
import struct
import sys
import time

GROUP4, GROUP6, PORT = "224.0.0.251", "ff02::fb", 5353


def read_name(buf, off):
    labels, jumps, end = [], 0, None
    while True:
        if off >= len(buf):
            raise ValueError("name past end")
        n = buf[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(buf):
                raise ValueError("truncated pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | buf[off + 1]
            jumps += 1
            if jumps > 64:
                raise ValueError("pointer loop")
            continue
        if n == 0:
            return ".".join(labels).lower() + ".", (end if end is not None else off + 1)
        labels.append(buf[off + 1: off + 1 + n].decode("utf-8", "replace"))
        off += 1 + n


def names_in_response(buf):
    """(owner, type, rdata-name-or-None, ttl) of every record of a response; [] for queries."""
    if len(buf) < 12:
        return []
    _id, flags, qd, an, ns, ar = struct.unpack("!6H", buf[:12])
    if not flags & 0x8000:
        return []
    off, out = 12, []
    for _ in range(qd):
        _, off = read_name(buf, off)
        off += 4
    for _ in range(an + ns + ar):
        owner, off = read_name(buf, off)
        rtype, _cls, ttl, rdlen = struct.unpack("!HHIH", buf[off: off + 10])
        off += 10
        target = read_name(buf, off)[0] if rtype == 12 else None
        out.append((owner, rtype, target, ttl))
        off += rdlen
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--instance", help="instance label (default: any instance of --type)")
    ap.add_argument("--type", default="_microcloud._tcp.local.")
    ap.add_argument("--interface", default="eth0")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    stype = args.type.lower().rstrip(".") + "."
    if not stype.endswith(".local."):
        stype += "local."
    want = f"{args.instance.lower()}.{stype}" if args.instance else None

    ifindex = socket.if_nametoindex(args.interface)
    socks = []
    s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s4.bind(("0.0.0.0", PORT))
    # struct ip_mreqn: group, local address (any), ifindex
    s4.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                  socket.inet_aton(GROUP4) + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex))
    socks.append(s4)
    try:
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s6.bind(("::", PORT))
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                      socket.inet_pton(socket.AF_INET6, GROUP6) + struct.pack("@I", ifindex))
        socks.append(s6)
    except OSError as e:
        print(f"mdns_first_answer: no IPv6 listener: {e}", file=sys.stderr)
    print(json.dumps({"listening": True, "t": time.monotonic()}), flush=True)

    deadline = time.monotonic() + args.timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            print(json.dumps({"instance": args.instance, "arrived": None, "timeout": True}), flush=True)
            sys.exit(1)
        ready, _, _ = select.select(socks, [], [], left)
        for s in ready:
            buf, src = s.recvfrom(9000)
            t = time.monotonic()
            try:
                records = names_in_response(buf)
            except (ValueError, struct.error):
                continue
            for owner, rtype, target, ttl in records:
                named = target if rtype == 12 else owner
                hit = named == want if want else (named.endswith("." + stype) and named != stype)
                if hit and ttl > 0:
                    print(json.dumps({
                        "instance": named[: -len(stype) - 1],
                        "arrived": t,
                        "src": src[0],
                        "family": "ipv6" if s.family == socket.AF_INET6 else "ipv4",
                        "rtype": rtype,
                        "ttl": ttl,
                    }), flush=True)
                    sys.exit(0)


if __name__ == "__main__":
    main()
