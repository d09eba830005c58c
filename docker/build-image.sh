#!/usr/bin/env bash
# `make image`: build the Almoner node image without any container registry.
#
#   1. the base image ($ALMONER_BASE_IMAGE, default almoner-base:local): if it is missing
#      and is almoner-base:local, import it from a cached Debian bookworm rootfs tarball,
#      made once with `debootstrap --variant=minbase` (python3, python3-venv,
#      ca-certificates) and trimmed of docs, man pages, locales and apt lists;
#   2. a wheelhouse of almoner and every dependency, built on the host with `pip wheel`
#      (so the image build needs neither a package index nor a compiler);
#   3. `docker build -f docker/Dockerfile` on a small context (build/docker/context).
#
# With a registry at hand: ALMONER_BASE_IMAGE=python:3.11-slim-bookworm make image.
# Environment: DOCKER (client, default docker), ALMONER_IMAGE (tag, default
# almoner:latest), ALMONER_PYTHON (host Python with pip, default .venv/bin/python),
# ALMONER_CACHE_DIR (default /var/cache/almoner as root, else ~/.cache/almoner),
# ALMONER_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DOCKER=${DOCKER:-docker}
PY=${ALMONER_PYTHON:-$ROOT/.venv/bin/python}
IMAGE=${ALMONER_IMAGE:-almoner:latest}
BASE=${ALMONER_BASE_IMAGE:-almoner-base:local}
MIRROR=${ALMONER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ "$(id -u)" = 0 ]; then
    CACHE=${ALMONER_CACHE_DIR:-/var/cache/almoner}
else
    CACHE=${ALMONER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/almoner}
fi
BUILD=$ROOT/build/docker
TARBALL=$CACHE/base-bookworm.tar

say() { echo "build-image: $*"; }
die() { echo "build-image: ERROR: $*" >&2; exit 1; }
started=$(date +%s)

"$ROOT/docker/ensure-docker.sh"

# ---- 1. base image ----------------------------------------------------------------
make_rootfs_tarball() {
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed"
    [ "$(id -u)" = 0 ] || die "debootstrap needs root; or set ALMONER_BASE_IMAGE to a python:3.11 slim image"
    mkdir -p "$CACHE"
    local rootfs
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    # mktemp makes it 0700, and it becomes the image's "/": with the vfs storage driver
    # (no overlay mount on top) a non-root user could then reach nothing.
    chmod 0755 "$rootfs"
    say "debootstrap bookworm into $rootfs (once; about a minute)"
    if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1; then
        tail -n 20 "$CACHE/debootstrap.log" >&2
        rm -rf "$rootfs"
        die "debootstrap failed; full log in $CACHE/debootstrap.log"
    fi
    # What a container never needs: package caches and lists, docs (copyright files
    # stay), man and info pages, translations, logs of the bootstrap.
    rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
    find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
    tar --numeric-owner -C "$rootfs" -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$rootfs"
    say "cached the base rootfs: $TARBALL ($(du -h "$TARBALL" | cut -f1))"
}

if "$DOCKER" image inspect "$BASE" >/dev/null 2>&1; then
    say "base image $BASE is present"
elif [ "$BASE" = almoner-base:local ]; then
    [ -s "$TARBALL" ] || make_rootfs_tarball
    say "importing $TARBALL as $BASE"
    "$DOCKER" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        "$TARBALL" "$BASE" >/dev/null
else
    die "base image $BASE is not present; pull or load it first (no registry is used here)"
fi

base_py=$("$DOCKER" run --rm --entrypoint python3 "$BASE" \
    -c 'import sys; print("%d.%d" % sys.version_info[:2])')
host_py=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$base_py" = "$host_py" ] || die "the base image has Python $base_py but $PY is $host_py: \
the wheels would not fit; set ALMONER_PYTHON to a Python $base_py"

# ---- 2. wheelhouse and build context ---------------------------------------------------
mkdir -p "$BUILD/wheels"
rm -f "$BUILD"/wheels/almoner-*.whl
say "building wheels for almoner and its dependencies (pip wheel, on the host)"
if ! "$PY" -m pip wheel --disable-pip-version-check --wheel-dir "$BUILD/wheels" "$ROOT" \
    >"$BUILD/pip-wheel.log" 2>&1; then
    tail -n 30 "$BUILD/pip-wheel.log" >&2
    die "pip wheel failed; full log in $BUILD/pip-wheel.log"
fi
rm -rf "$BUILD/context"
mkdir -p "$BUILD/context/wheels"
cp "$BUILD"/wheels/*.whl "$BUILD/context/wheels/"
install -m 0755 "$ROOT/docker/entrypoint.sh" "$BUILD/context/entrypoint.sh"
install -m 0755 "$ROOT/docker/init.sh" "$BUILD/context/init.sh"
install -m 0755 "$ROOT/docker/healthcheck.py" "$BUILD/context/healthcheck.py"
wheel=$(basename "$(find "$BUILD/wheels" -name 'almoner-*.whl' | head -n 1)")
version=$(echo "$wheel" | sed -E 's/^almoner-([^-]+)-.*/\1/')

# ---- 3. the image ------------------------------------------------------------------------
old_id=$("$DOCKER" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
say "docker build $IMAGE (almoner $version) from $BASE"
"$DOCKER" build --quiet -f "$ROOT/docker/Dockerfile" --build-arg "BASE_IMAGE=$BASE" \
    -t "$IMAGE" -t "${IMAGE%:*}:$version" "$BUILD/context" >/dev/null
new_id=$("$DOCKER" image inspect --format '{{.Id}}' "$IMAGE")
# The build stage's image (left untagged by the legacy builder) and the previous build.
"$DOCKER" image prune --force --filter label=almoner.stage=build >/dev/null
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    "$DOCKER" rmi "$old_id" >/dev/null 2>&1 || true  # the previous build, if now unused
fi

# ---- checks: non-root, no compilers, the CLI works ---------------------------------------
user=$("$DOCKER" image inspect --format '{{.Config.User}}' "$IMAGE")
case "$user" in "" | 0 | 0:* | root | root:*) die "the image runs as root ($user)" ;; esac
cli=$("$DOCKER" run --rm "$IMAGE" almoner --version) || die "almoner does not run in $IMAGE"
# shellcheck disable=SC2016 # $c expands in the container
compilers=$("$DOCKER" run --rm --entrypoint sh "$IMAGE" -c \
    'for c in cc gcc g++ clang make; do command -v $c || true; done') ||
    die "cannot run sh in $IMAGE"
[ -z "$compilers" ] || die "the final image has compilers: $compilers"
size=$("$DOCKER" image inspect --format '{{.Size}}' "$IMAGE")
say "built $IMAGE: $cli, user $user, $(awk "BEGIN { printf \"%.1f\", $size / 1e6 }") MB, in $(($(date +%s) - started)) s"
