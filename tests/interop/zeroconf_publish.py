#!/usr/bin/env python3
"""Publish DNS-SD services with python-zeroconf until SIGTERM/SIGINT, then unregister (goodbye).

  zeroconf_publish.py --name micro02 --address 10.7.0.2 --port 9443 \
      --txt pv=1 --txt id=0123… [--name other …] [--interface-address 10.7.0.2]

Every --name registers one instance of --type (default _microcloud._tcp.local.) with SRV target
`<--server or NAME>.local.`, the given --address list (A/AAAA) and TXT. --interface-address
limits the sockets to those interface addresses (default: every interface, IPv4 and IPv6).

Once every service is registered (probing and announcing done) it prints one JSON line on stdout:
  {"ready": true, "names": [...], "process_t0": MONO, "register_t0": MONO, "registered": MONO,
   "register_ms": ms}
where MONO are CLOCK_MONOTONIC seconds (comparable across lab namespaces on this machine).
On SIGTERM it prints {"stopped": true, "unregister_ms": ms} after sending goodbyes, and exits 0.
"""
import time

PROCESS_T0 = time.monotonic()

import argparse
import ipaddress
import json
import signal
import socket
import sys
import threading

from zeroconf import IPVersion, InterfaceChoice, ServiceInfo, Zeroconf

DEFAULT_TYPE = "_microcloud._tcp.local."


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--type", default=DEFAULT_TYPE)
    ap.add_argument("--name", action="append", required=True, help="instance name (repeatable)")
    ap.add_argument("--server", help="SRV target host label (default: the instance name)")
    ap.add_argument("--address", action="append", default=[], help="A/AAAA address (repeatable)")
    ap.add_argument("--port", type=int, default=9443)
    ap.add_argument("--txt", action="append", default=[], help="TXT key=value or key (repeatable)")
    ap.add_argument("--interface-address", action="append", default=[],
                    help="bind to these interface addresses only (repeatable)")
    ap.add_argument("--allow-name-change", action="store_true")
    args = ap.parse_args()
    stype = args.type if args.type.endswith(".") else args.type + "."
    if not stype.endswith(".local."):
        stype += "local."

    props = {}
    for kv in args.txt:
        k, sep, v = kv.partition("=")
        props[k] = v if sep else None
    addrs = [ipaddress.ip_address(a).packed for a in args.address]

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    interfaces = args.interface_address or InterfaceChoice.All
    zc = Zeroconf(interfaces=interfaces, ip_version=IPVersion.All)
    infos = []
    register_t0 = time.monotonic()
    for name in args.name:
        server = (args.server or name).rstrip(".")
        if not server.endswith(".local"):
            server += ".local"
        info = ServiceInfo(stype, f"{name}.{stype}", addresses=addrs or None, port=args.port,
                           properties=props, server=server + ".")
        infos.append(info)
    # Register concurrently (as an agent announcing several instances would), one thread each.
    errors = []

    def reg(info):
        try:
            zc.register_service(info, allow_name_change=args.allow_name_change)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{info.name}: {e!r}")

    threads = [threading.Thread(target=reg, args=(i,)) for i in infos]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    registered = time.monotonic()
    if errors:
        print(json.dumps({"ready": False, "errors": errors}), flush=True)
        zc.close()
        sys.exit(1)
    print(json.dumps({
        "ready": True,
        "names": [i.name for i in infos],
        "process_t0": PROCESS_T0,
        "register_t0": register_t0,
        "registered": registered,
        "register_ms": round((registered - register_t0) * 1000, 1),
    }), flush=True)

    while not stop.wait(3600):
        pass
    t = time.monotonic()
    zc.unregister_all_services()
    zc.close()
    print(json.dumps({"stopped": True, "unregister_ms": round((time.monotonic() - t) * 1000, 1)}),
          flush=True)


if __name__ == "__main__":
    main()
