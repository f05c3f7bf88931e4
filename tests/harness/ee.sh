#!/usr/bin/env bash
# make ee: builds the execution environment torchswarm/ee (ee/execution-environment.yml) with
# ansible-builder, here, where no registry and no package index is in reach from a build: on the
# local Debian 13 base image (images.sh), with the Python packages from a wheelhouse downloaded on
# this machine for the image's Python, and the collections from the build context: this
# checkout's tarball and the community.docker that .venv-newest's ansible package bundles.
# Docker's build cache keeps a rebuild after a change to the collection to its last layers.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
image=torchswarm/ee:latest
# ansible-builder reads additional_build_files beside the definition: the definition, the
# collections and the wheelhouse go into one directory, the build context into another.
stage="$root/.cache/ee"
newest="$root/.venv-newest"
# The EE's ansible-core is the newest tested (requirements-newest.txt); ansible-builder's file,
# which cannot read it from there, must say the same.
core="$(sed -n 's/^ansible-core==//p' "$root/requirements-newest.txt")"
grep -q "package_pip: ansible-core==$core\$" "$root/ee/execution-environment.yml" || {
  echo "ee: ee/execution-environment.yml does not install ansible-core==$core (requirements-newest.txt)" >&2
  exit 1
}

bundled="$("$newest/bin/python" "$root/tests/harness/bundled_collections.py")"
rm -rf "$stage" && mkdir -p "$stage/wheels" "$stage/collections/community"
cp "$root/ee/execution-environment.yml" "$root/ee/requirements.yml" "$stage/"
ansible-galaxy collection build "$root" --output-path "$stage" >/dev/null
mv "$stage"/torchswarm-ddp-*.tar.gz "$stage/collections/torchswarm-ddp.tar.gz"
cp -r "$bundled/community/docker" "$bundled/community/library_inventory_filtering_v1" "$stage/collections/community/"

# Everything pip installs in the build, for Debian 13's Python 3.13 on this machine's architecture:
# what ansible-builder installs itself, and what the collections' EE files ask for.
python_requirements="$(cat "$root/meta/ee-requirements.txt" "$bundled/community/docker/meta/ee-requirements.txt" \
  | sed 's/#.*//' | grep -v '^\s*$')"
# (pip takes a platform given to it as that one only: Debian 13's glibc 2.41 runs every manylinux below.)
platforms=()
for tag in manylinux_2_39 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 \
  manylinux_2_17 manylinux2014 manylinux_2_12 manylinux2010 manylinux_2_5 manylinux1; do
  platforms+=(--platform "${tag}_$(uname -m)")
done
# shellcheck disable=SC2086  # one requirement per word
pip download --quiet --dest "$stage/wheels" --only-binary=:all: --python-version 3.13 --implementation cp \
  "${platforms[@]}" "ansible-core==$core" ansible-runner bindep pyyaml packaging dumb-init==1.2.5 $python_requirements \
  2>"$stage/pip.log" || { cat "$stage/pip.log" >&2; exit 1; }

ansible-builder build --file "$stage/execution-environment.yml" --context "$stage/context" \
  --container-runtime docker --tag "$image" --build-arg ANSIBLE_GALAXY_CLI_COLLECTION_OPTS=--offline \
  --verbosity 2 >"$stage/build.log" 2>&1 || { tail -n 40 "$stage/build.log" >&2; exit 1; }
echo "ee: built $image ($(docker image inspect --format '{{.Id}}' "$image"))"
