#!/usr/bin/env python3
"""The bare bootstrap for scripts/bench-bootstrap: just the LXD API calls that form a 3-member
cluster with a btrfs `local` pool, the `lxdbr0` bridge and the default profile, from one process
with one HTTP client per host (standard library only).

Usage: bootstrap_bare.py LAB_JSON SOCKET1 SOCKET2 SOCKET3
Prints {"pool_create_s": ...}: how long LXD took to create the pool (see bench-bootstrap).
Each SOCKET is a host's LXD socket reached from here (/proc/<lxd pid>/root/var/lib/lxd/unix.socket).
"""
import base64
import http.client
import json
import socket
import sys
import time


class Lxd(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("lxd", timeout=180)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.unix_path)
        self.sock = s

    def call(self, method, path, body=None, wait=True):
        data = None if body is None else json.dumps(body).encode()
        self.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = json.loads(self.getresponse().read())
        if r.get("type") == "error":
            sys.exit(f"bare: {method} {path}: {r.get('error')}")
        if r.get("type") == "async" and wait:
            op = r["operation"]
            self.request("GET", f"{op}/wait?timeout=120")
            w = json.loads(self.getresponse().read())
            if w["metadata"]["status"] != "Success":
                sys.exit(f"bare: {method} {path}: {w['metadata'].get('err')}")
            return w["metadata"]
        return r["metadata"]


def main():
    lab = json.load(open(sys.argv[1]))
    hosts = [h["name"] for h in lab["hosts"]]
    addr = {h["name"]: h["links"][0]["v4"] + ":8443" for h in lab["hosts"]}
    disk = {h["name"]: h["disks"][0]["device"] for h in lab["hosts"]}
    c = {name: Lxd(path) for name, path in zip(hosts, sys.argv[2:5])}
    first = hosts[0]
    a1 = addr[first]
    c[first].call("PATCH", "/1.0", {"config": {"core.https_address": a1, "cluster.https_address": a1}})
    c[first].call("PUT", "/1.0/cluster", {"server_name": first, "enabled": True})
    cert = c[first].call("GET", "/1.0")["environment"]["certificate"]
    for h in hosts[1:]:
        op = c[first].call("POST", "/1.0/cluster/members", {"server_name": h}, wait=False)
        md = op["metadata"]
        token = base64.b64encode(json.dumps({
            "server_name": md["serverName"], "fingerprint": md["fingerprint"],
            "addresses": md["addresses"], "secret": md["secret"],
        }).encode()).decode()
        c[h].call("PUT", "/1.0/cluster", {
            "server_name": h, "server_address": addr[h], "cluster_address": a1,
            "cluster_certificate": cert, "cluster_password": token, "enabled": True,
        })
    for h in hosts:
        c[first].call("POST", f"/1.0/storage-pools?target={h}",
                      {"name": "local", "driver": "btrfs", "config": {"source": disk[h]}})
    t0 = time.monotonic()
    c[first].call("POST", "/1.0/storage-pools", {"name": "local", "driver": "btrfs"})
    pool_create = time.monotonic() - t0
    for h in hosts:
        c[first].call("POST", f"/1.0/networks?target={h}", {"name": "lxdbr0", "type": "bridge"})
    c[first].call("POST", "/1.0/networks", {"name": "lxdbr0", "type": "bridge"})
    c[first].call("PATCH", "/1.0/profiles/default", {"devices": {
        "root": {"type": "disk", "path": "/", "pool": "local"},
        "eth0": {"type": "nic", "name": "eth0", "network": "lxdbr0"},
    }})
    print(json.dumps({"pool_create_s": pool_create}))


if __name__ == "__main__":
    main()
