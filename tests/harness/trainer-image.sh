#!/usr/bin/env bash
# Build the training image here, where no registry is reachable: a local Debian base with python3
# and pip, and a wheelhouse of the CPU torch wheel made on the host. Docker's layer cache makes a
# rebuild with nothing changed take seconds.
#   usage: trainer-image.sh [TAG]        (default torchswarm/trainer:latest)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
tag="${1:-torchswarm/trainer:latest}"
base=torchswarm/python-base:latest
wheels="$root/.cache/wheels"

bash "$root/tests/harness/images.sh" >/dev/null
if ! docker image inspect "$base" >/dev/null 2>&1; then
  echo "trainer-image.sh: building $base"
  printf 'FROM torchswarm/bookworm-base:latest\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-pip && apt-get clean && rm -rf /var/lib/apt/lists/*\n' \
    | docker build -q -t "$base" - >/dev/null
fi

# Same Python (3.11) on host and image, so the host's pip picks wheels the image can use.
mkdir -p "$wheels"
if ! cmp -s "$root/training/requirements.txt" "$wheels/requirements.txt"; then
  echo "trainer-image.sh: downloading wheels into $wheels"
  pip download --quiet --only-binary :all: -r "$root/training/requirements.txt" -d "$wheels"
  cp "$root/training/requirements.txt" "$wheels/requirements.txt"
fi

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$root"/training/{Dockerfile,training_code.py,snapshot.py,workloads.py,allreduce_check.py} "$context/"
cp -r "$root/training/torchswarm" "$context/torchswarm"
rm -rf "$context/torchswarm/__pycache__"
# Hard links keep the 200 MB wheelhouse from being copied.
cp -al "$wheels" "$context/wheels" 2>/dev/null || cp -a "$wheels" "$context/wheels"
docker build -q --build-arg BASE_IMAGE="$base" -t "$tag" "$context" >/dev/null
echo "trainer-image.sh: $tag is ready ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
