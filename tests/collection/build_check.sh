#!/usr/bin/env bash
# The built collection is what users install: build it, install it into an empty path, and
# check that its roles, playbooks and plugins resolve by FQCN from there alone.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

ansible-galaxy collection build "$root" --output-path "$work" >/dev/null
tarball="$(ls "$work"/torchswarm-ddp-*.tar.gz)"
if tar -tzf "$tarball" | grep -E '^(tests|molecule|collections|\.venv|\.ci|\.ansible)/' ; then
  echo "build_check: the tarball holds files that build_ignore should keep out" >&2
  exit 1
fi
# community.docker comes from the ansible package here (Galaxy is not reachable): --no-deps.
# Only the installed copy and the bundled collections may be found, never the checkout.
export ANSIBLE_COLLECTIONS_PATH="$work/installed"
cd "$work"
ansible-galaxy collection install --force --no-deps -p "$work/installed" "$tarball" >/dev/null
cat > inventory.ini <<'INV'
[managers]
m0 ansible_connection=local
[workers]
INV
ansible-playbook -i inventory.ini --syntax-check torchswarm.ddp.site >/dev/null
for playbook in cluster status logs results stop preflight maintenance; do
  ansible-playbook -i inventory.ini --syntax-check "torchswarm.ddp.$playbook" >/dev/null
done
ansible-doc -t module torchswarm.ddp.docker_daemon_config >/dev/null
ansible-doc -t module torchswarm.ddp.training_stack >/dev/null
# Action plugins (they import plugin_utils) and the lookup, from the installed copy.
ansible-doc -t module torchswarm.ddp.training_results >/dev/null
ansible-doc -t lookup torchswarm.ddp.script_files >/dev/null
ansible-doc -t role torchswarm.ddp.job >/dev/null
# The image role builds from the collection's training/ directory.
[ -f "$work/installed/ansible_collections/torchswarm/ddp/training/Dockerfile" ] \
  || { echo "build_check: training/Dockerfile is missing from the installed collection" >&2; exit 1; }
ansible-doc -t role torchswarm.ddp.swarm >/dev/null
found="$(ansible-galaxy collection list torchswarm.ddp 2>/dev/null | grep -c 'torchswarm.ddp')"
[ "$found" -ge 1 ] || { echo "build_check: torchswarm.ddp not installed" >&2; exit 1; }
echo "build_check: $(basename "$tarball") installs; roles, playbooks and modules resolve by FQCN"
