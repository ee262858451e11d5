#!/usr/bin/env bash
# avahi-daemon (and avahi-browse) inside one lab host, with nothing on the machine touched.
#
#   avahi.sh daemon --dir DIR --host-name NAME [--interface eth0] [--dbus] [--debug]
#                   [--type _microcloud._tcp] [--service NAME --port P [--txt k=v]...]...
#       Run avahi-daemon in the foreground (exec'd, so the caller's pid is avahi's unless --dbus).
#       Call it INSIDE the host (`ip netns exec NS avahi.sh daemon …`, Host::spawn). It re-execs
#       itself under `unshare --mount --propagation private`, writes DIR/etc/avahi-daemon.conf and
#       DIR/etc/services/*.service, bind-mounts DIR/etc over /etc/avahi (avahi's service directory
#       is compiled in; this gives each instance its own static services) and a tmpfs over
#       /run/avahi-daemon (its pid file would collide otherwise). These mounts live only in the
#       process's private mount namespace: no /etc/netns/<ns> files, nothing to clean on the host.
#       --dbus: also start a private dbus-daemon on unix:path=DIR/bus and let avahi use it as
#       its "system bus" (for avahi-browse); the script then stays as the parent of both, and
#       SIGTERM stops avahi (goodbyes) then the bus. Without --dbus: enable-dbus=no.
#       Each --service adds one service of --type (default _microcloud._tcp) with SRV target
#       NAME.local (the daemon's host name), port --port (default 9443) and the --txt records.
#
#   avahi.sh browse --dir DIR [--type _microcloud._tcp] [--timeout SECS]
#       `avahi-browse -rtp TYPE` over the private bus of a `daemon --dbus` started with the same
#       DIR (unix socket paths are not per network namespace, but run it in the same host anyway).
#       Prints avahi-browse's parsable lines (`=;eth0;IPv4;NAME;TYPE;local;HOST;ADDR;PORT;"k=v" …`).
#
#   avahi.sh wait-bus --dir DIR [--timeout SECS]   exit 0 once the private bus answers and avahi owns
#                                                 org.freedesktop.Avahi on it.
set -euo pipefail

die() { echo "avahi.sh: $*" >&2; exit 2; }

xml_escape() { local s=$1; s=${s//&/&amp;}; s=${s//</&lt;}; s=${s//>/&gt;}; printf '%s' "$s"; }

cmd=${1:-}; shift || true
ORIG_ARGS=("$@")
dir= host= iface=eth0 dbus=0 debug=0 stype=_microcloud._tcp timeout=10
services=()   # "name|port|txt1\x1ftxt2…"
cur_name= cur_port=9443 cur_txt=()
flush_service() {
  if [[ -n "$cur_name" ]]; then
    local IFS=$'\x1f'
    services+=("$cur_name|$cur_port|${cur_txt[*]:-}")
  fi
  cur_name= cur_port=9443 cur_txt=()
}
while (($#)); do
  case $1 in
    --dir) dir=$2; shift ;;
    --host-name) host=$2; shift ;;
    --interface) iface=$2; shift ;;
    --dbus) dbus=1 ;;
    --debug) debug=1 ;;
    --type) stype=$2; shift ;;
    --timeout) timeout=$2; shift ;;
    --service) flush_service; cur_name=$2; shift ;;
    --port) cur_port=$2; shift ;;
    --txt) cur_txt+=("$2"); shift ;;
    --private) ;;  # internal: already re-exec'd under unshare
    *) die "unknown argument $1" ;;
  esac
  shift
done
flush_service
[[ -n "$dir" ]] || die "--dir is required"
bus_addr="unix:path=$dir/bus"

case $cmd in
daemon)
  [[ -n "$host" ]] || die "--host-name is required"
  if [[ "${AVAHI_SH_PRIVATE:-}" != 1 ]]; then
    # Mount namespace of our own, propagation private: the mounts below can never reach the host.
    export AVAHI_SH_PRIVATE=1
    exec unshare --mount --propagation private "$0" daemon "${ORIG_ARGS[@]}"
  fi
  mkdir -p "$dir/etc/services"
  rm -f "$dir"/etc/services/*.service
  cat > "$dir/etc/avahi-daemon.conf" <<CONF
[server]
host-name=$host
domain-name=local
use-ipv4=yes
use-ipv6=yes
allow-interfaces=$iface
enable-dbus=$( ((dbus)) && echo yes || echo no )
ratelimit-interval-usec=1000000
ratelimit-burst=1000

[wide-area]
enable-wide-area=no

[publish]
publish-hinfo=no
publish-workstation=no

[reflector]
enable-reflector=no

[rlimits]
CONF
  i=0
  for s in "${services[@]}"; do
    IFS='|' read -r name port txts <<<"$s"
    {
      echo '<?xml version="1.0" standalone="no"?>'
      echo '<!DOCTYPE service-group SYSTEM "avahi-service.dtd">'
      echo "<service-group><name>$(xml_escape "$name")</name><service>"
      echo "<type>$(xml_escape "$stype")</type><port>$port</port>"
      IFS=$'\x1f' read -ra tl <<<"$txts"
      for t in "${tl[@]}"; do [[ -n "$t" ]] && echo "<txt-record>$(xml_escape "$t")</txt-record>"; done
      echo "</service></service-group>"
    } > "$dir/etc/services/$i.service"
    i=$((i + 1))
  done
  mount --bind "$dir/etc" /etc/avahi
  mount -t tmpfs -o mode=0755 none /run/avahi-daemon 2>/dev/null || {
    mkdir -p /run/avahi-daemon && mount -t tmpfs -o mode=0755 none /run/avahi-daemon; }
  args=(--no-drop-root --no-chroot --no-rlimits)
  ((debug)) && args+=(--debug)
  if ((dbus == 0)); then
    exec avahi-daemon "${args[@]}"
  fi
  rm -f "$dir/bus"
  dbus-daemon --session --nofork --nopidfile --address="$bus_addr" 2>"$dir/dbus.log" &
  dbus_pid=$!
  for _ in $(seq 100); do [[ -S "$dir/bus" ]] && break; sleep 0.02; done
  [[ -S "$dir/bus" ]] || { kill "$dbus_pid"; die "private dbus did not start: $(cat "$dir/dbus.log")"; }
  export DBUS_SYSTEM_BUS_ADDRESS=$bus_addr
  avahi-daemon "${args[@]}" &
  avahi_pid=$!
  stop() { kill -TERM "$avahi_pid" 2>/dev/null || true; wait "$avahi_pid" 2>/dev/null || true
           kill -TERM "$dbus_pid" 2>/dev/null || true; wait "$dbus_pid" 2>/dev/null || true; exit 0; }
  trap stop TERM INT
  set +e
  wait "$avahi_pid"; rc=$?
  kill -TERM "$dbus_pid" 2>/dev/null; wait "$dbus_pid" 2>/dev/null
  exit "$rc"
  ;;
browse)
  DBUS_SYSTEM_BUS_ADDRESS=$bus_addr exec timeout "$timeout" avahi-browse -rtp "$stype"
  ;;
wait-bus)
  end=$((SECONDS + ${timeout%.*}))
  while ((SECONDS <= end)); do
    if DBUS_SYSTEM_BUS_ADDRESS=$bus_addr timeout 2 dbus-send --system --print-reply --dest=org.freedesktop.DBus \
        /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.Avahi 2>/dev/null \
        | grep -q 'boolean true'; then
      exit 0
    fi
    sleep 0.05
  done
  die "avahi did not appear on $bus_addr within ${timeout}s"
  ;;
*) die "usage: avahi.sh daemon|browse|wait-bus --dir DIR …" ;;
esac
