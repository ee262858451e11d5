#!/usr/bin/env python3
"""Browse one DNS-SD service type with python-zeroconf and resolve every instance.

Prints one JSON document on stdout and exits, either after --timeout seconds or as soon as
--expect N instances are resolved:

  {"type": "_microcloud._tcp.local.",
   "services": [{"name", "server", "port", "addresses": ["10.1.0.2", "fe80::…%3"],
                 "properties": {"k": "v" | null}, "resolved_after_ms"}],
   "expected": N | null, "complete": bool,
   "elapsed_ms", "process_elapsed_ms"}

`resolved_after_ms` and `elapsed_ms` count from the moment the Zeroconf instance is created
("browse start": sockets, then the first query); `process_elapsed_ms` also counts the Python
start and imports. Exit status: 0, or 1 when --expect was given and not reached in time.

Run inside a lab host: `ip netns exec NS python3 tests/interop/zeroconf_browse.py --expect 3`.
"""
import time

PROCESS_T0 = time.monotonic()

import argparse
import json
import sys
import threading

from zeroconf import IPVersion, InterfaceChoice, ServiceBrowser, ServiceStateChange, Zeroconf

DEFAULT_TYPE = "_microcloud._tcp.local."


def decode(v):
    if v is None:
        return None
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError:
        return v.hex()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("type", nargs="?", default=DEFAULT_TYPE, help=f"service type (default {DEFAULT_TYPE})")
    ap.add_argument("--timeout", type=float, default=5.0, help="give up after SECS (default 5)")
    ap.add_argument("--expect", type=int, help="return as soon as N instances are resolved")
    ap.add_argument("--resolve-timeout-ms", type=int, default=1500,
                    help="per-attempt timeout of get_service_info (retried until --timeout)")
    ap.add_argument("--ipv4-only", action="store_true", help="IPVersion.V4Only instead of All")
    args = ap.parse_args()
    stype = args.type if args.type.endswith(".") else args.type + "."
    if not stype.endswith(".local."):
        stype += "local."

    t0 = time.monotonic()
    deadline = t0 + args.timeout
    zc = Zeroconf(interfaces=InterfaceChoice.All,
                  ip_version=IPVersion.V4Only if args.ipv4_only else IPVersion.All)
    lock = threading.Lock()
    done = threading.Event()
    resolved = {}      # name -> record
    pending = set()    # names being resolved

    def resolve(name):
        while time.monotonic() < deadline and not done.is_set():
            left_ms = int((deadline - time.monotonic()) * 1000)
            info = zc.get_service_info(stype, name, max(1, min(args.resolve_timeout_ms, left_ms)))
            if info is not None and info.port is not None:
                addrs = info.parsed_scoped_addresses()
                if addrs:
                    rec = {
                        "name": name[: -len(stype) - 1] if name.endswith("." + stype) else name,
                        "full_name": name,
                        "server": info.server,
                        "port": info.port,
                        "addresses": addrs,
                        "properties": {decode(k): decode(v) for k, v in info.properties.items()},
                        "resolved_after_ms": round((time.monotonic() - t0) * 1000, 1),
                    }
                    with lock:
                        resolved[name] = rec
                        pending.discard(name)
                        if args.expect is not None and len(resolved) >= args.expect:
                            done.set()
                    return
            time.sleep(0.05)
        with lock:
            pending.discard(name)

    def on_change(zeroconf, service_type, name, state_change):
        if state_change not in (ServiceStateChange.Added, ServiceStateChange.Updated):
            return
        with lock:
            if name in resolved or name in pending:
                return
            pending.add(name)
        threading.Thread(target=resolve, args=(name,), daemon=True).start()

    browser = ServiceBrowser(zc, stype, handlers=[on_change])
    done.wait(max(0.0, deadline - time.monotonic()))
    t_end = time.monotonic()
    with lock:
        services = sorted(resolved.values(), key=lambda r: r["resolved_after_ms"])
    complete = args.expect is None or len(services) >= args.expect
    out = {
        "type": stype,
        "services": services,
        "expected": args.expect,
        "complete": complete,
        "elapsed_ms": round((t_end - t0) * 1000, 1),
        "process_elapsed_ms": round((t_end - PROCESS_T0) * 1000, 1),
    }
    print(json.dumps(out), flush=True)
    done.set()
    browser.cancel()
    zc.close()
    sys.exit(0 if complete else 1)


if __name__ == "__main__":
    main()
