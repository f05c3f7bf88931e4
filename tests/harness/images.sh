#!/usr/bin/env bash
# Build the images the test cluster needs, without a registry, and reuse them when present:
#   torchswarm/bookworm-base  Debian 12 minbase from debootstrap (no registry to pull from here)
#   torchswarm/trixie-base    Debian 13 minbase, the same way
#   torchswarm/node           the base plus systemd and sshd: a bare test host (Debian 12)
#   torchswarm/node-trixie    the same on Debian 13 (its docker.io is 26.x)
#   torchswarm/node-docker, torchswarm/node-trixie-docker
#                             the same with docker.io, the Docker SDK and zstd installed, not
#                             started: for scenarios where the install is not what is tested
#   torchswarm/registry       the base plus Debian's docker-registry (the CNCF distribution registry)
#   torchswarm/probe          busybox alone, loaded into node engines for overlay checks
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
base=torchswarm/bookworm-base:latest
trixie_base=torchswarm/trixie-base:latest
node=torchswarm/node:latest
node_trixie=torchswarm/node-trixie:latest
node_docker=torchswarm/node-docker:latest
node_trixie_docker=torchswarm/node-trixie-docker:latest
registry=torchswarm/registry:latest
probe=torchswarm/probe:latest
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

need_packages() {
  local missing=()
  for cmd_pkg in "$@"; do
    command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || missing+=("${cmd_pkg##*:}")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "images.sh: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
  fi
}

debian_base() {  # debian_base IMAGE SUITE
  have_image "$1" && return
  need_packages debootstrap:debootstrap
  local root
  root="$(mktemp -d)"
  echo "images.sh: debootstrap $2 into $root"
  debootstrap --variant=minbase "$2" "$root" "$mirror" >/dev/null
  tar -C "$root" -c . | docker import - "$1" >/dev/null
  rm -rf "$root"
}
# What the scenarios run on this machine, the controller: zstd (the image stream), ssh-keygen and
# openssl (the registry scenario's SSH key and test CA).
need_packages zstd:zstd ssh-keygen:openssh-client openssl:openssl
debian_base "$base" bookworm
debian_base "$trixie_base" trixie

# docker's layer cache makes this a no-op when the Dockerfile has not changed.
docker build -q -t "$node" --build-arg BASE_IMAGE="$base" "$here/node" >/dev/null
docker build -q -t "$node_trixie" --build-arg BASE_IMAGE="$trixie_base" "$here/node" >/dev/null
preinstall="docker.io python3-docker zstd"
docker build -q -t "$node_docker" --build-arg BASE_IMAGE="$base" --build-arg PREINSTALL="$preinstall" \
  "$here/node" >/dev/null
docker build -q -t "$node_trixie_docker" --build-arg BASE_IMAGE="$trixie_base" \
  --build-arg PREINSTALL="$preinstall" "$here/node" >/dev/null
docker build -q -t "$registry" --build-arg BASE_IMAGE="$base" "$here/registry" >/dev/null

if ! have_image "$probe"; then
  # The static build: the image holds nothing but this one file.
  dpkg -s busybox-static >/dev/null 2>&1 || need_packages busybox-static:busybox-static
  dir="$(mktemp -d)"
  mkdir -p "$dir/bin"
  cp /bin/busybox "$dir/bin/busybox"
  for applet in sh httpd nc sleep cat echo mkdir printf; do ln -s busybox "$dir/bin/$applet"; done
  tar -C "$dir" -c . | docker import -c 'CMD ["/bin/sh"]' - "$probe" >/dev/null
  rm -rf "$dir"
fi
echo "images.sh: $base, $trixie_base, $node, $node_trixie, $node_docker, $node_trixie_docker, $registry and" \
  "$probe are ready"
