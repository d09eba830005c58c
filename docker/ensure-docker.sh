#!/usr/bin/env bash
# Make sure a Docker engine answers, and that debootstrap and a Compose are installed.
#
# On a fresh Debian machine (CI) this installs docker.io, docker-compose and debootstrap
# with apt (root only) and starts dockerd in the background, trying in turn:
#   1. dockerd with its defaults (overlay2, iptables);
#   2. --storage-driver=vfs             (when overlayfs is unavailable);
#   3. --storage-driver=vfs --iptables=false (when iptables cannot be programmed). The
#      compose network still works: containers on one bridge reach each other without
#      NAT, and published 127.0.0.1 ports go through docker-proxy. Where iptables works
#      but filters bridged traffic (br_netfilter and a FORWARD policy of DROP left by an
#      earlier dockerd), intra-bridge traffic is first allowed explicitly; without that
#      the nodes' APIs answer but the validators cannot reach each other (tested here).
# The engine is left running for the next run. Its log: $ALMONER_DOCKERD_LOG.
# Exits non-zero, saying what failed, when no engine can be started.
set -euo pipefail

DOCKER=${DOCKER:-docker}
LOG=${ALMONER_DOCKERD_LOG:-/var/log/almoner-dockerd.log}

say() { echo "ensure-docker: $*"; }
die() { echo "ensure-docker: ERROR: $*" >&2; exit 1; }

engine_up() { "$DOCKER" info >/dev/null 2>&1; }

have_compose() {
    "$DOCKER" compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1
}

missing=()
command -v "$DOCKER" >/dev/null 2>&1 || missing+=(docker.io)
command -v dockerd >/dev/null 2>&1 || engine_up || missing+=(docker.io)
have_compose || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap debian-archive-keyring)
if ((${#missing[@]})); then
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]} and not root: install them (apt-get install -y ${missing[*]})"
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q "${missing[@]}" >/dev/null
fi

if engine_up; then
    say "Docker engine is running ($("$DOCKER" info --format '{{.ServerVersion}}, storage {{.Driver}}'))"
    exit 0
fi
[ "$(id -u)" = 0 ] || die "no Docker engine answers and only root can start dockerd here"
command -v dockerd >/dev/null 2>&1 || die "dockerd is not installed (package docker.io)"

start_dockerd() {
    say "starting dockerd${*:+ $*} (log: $LOG)"
    mkdir -p "$(dirname "$LOG")"
    echo "=== $(date -u +%FT%TZ) dockerd $*" >>"$LOG"
    setsid nohup dockerd "$@" >>"$LOG" 2>&1 </dev/null &
    local pid=$!
    for _ in $(seq 1 60); do
        if engine_up; then
            say "Docker engine is up ($("$DOCKER" info --format '{{.ServerVersion}}, storage {{.Driver}}'))"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    say "dockerd $* did not come up; last log lines:"
    tail -n 5 "$LOG" | sed 's/^/    /' >&2
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # A failed start may leave its pid file behind, which blocks the next attempt.
    rm -f /var/run/docker.pid
    return 1
}

# A stale pid file from a dead daemon would make dockerd refuse to start.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
fi

# Without --iptables, dockerd adds no FORWARD rules for its bridges; if the kernel still
# passes bridged frames through iptables (br_netfilter) and an earlier dockerd left the
# FORWARD policy at DROP, containers on one compose network could not reach each other.
allow_bridged_traffic() {
    command -v iptables >/dev/null 2>&1 && iptables -S FORWARD >/dev/null 2>&1 || return 0
    for bridge in docker0 br-+; do
        iptables -C FORWARD -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null ||
            iptables -I FORWARD -i "$bridge" -o "$bridge" -j ACCEPT ||
            say "warning: could not allow traffic within $bridge in iptables FORWARD"
    done
}

start_dockerd && exit 0
start_dockerd --storage-driver=vfs && exit 0
allow_bridged_traffic
start_dockerd --storage-driver=vfs --iptables=false && exit 0
die "cannot start a Docker engine in this environment (tried dockerd with defaults, \
--storage-driver=vfs, and --storage-driver=vfs --iptables=false); see $LOG"
