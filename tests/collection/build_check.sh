#!/usr/bin/env bash
# The built collection is what users install: build it, install it into an empty path, and
# check that its roles, playbooks and plugins resolve by FQCN from there alone.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The version: galaxy.yml's is a release in changelogs/changelog.yaml or after the last one, and no
# plugin says it was added in a later version.
python - "$root" <<'PY'
import pathlib, re, sys
import yaml
root = pathlib.Path(sys.argv[1])
def key(v): return tuple(int(p) for p in str(v).split("."))
version = yaml.safe_load((root / "galaxy.yml").read_text())["version"]
released = sorted((yaml.safe_load((root / "changelogs/changelog.yaml").read_text())["releases"] or {}), key=key)
if released and key(version) < key(released[-1]):
    sys.exit(f"build_check: galaxy.yml's version {version} is older than the last release, {released[-1]}")
later = [f"{p.relative_to(root)}: {v}" for p in (root / "plugins").rglob("*.*") if p.suffix in (".py", ".yml")
         for v in re.findall(r"version_added: \"?([0-9.]+)", p.read_text()) if key(v) > key(version)]
if later:
    sys.exit(f"build_check: version_added after galaxy.yml's version {version}: " + ", ".join(later))
PY
ansible-galaxy collection build "$root" --output-path "$work" >/dev/null
tarball="$(ls "$work"/torchswarm-ddp-*.tar.gz)"
if tar -tzf "$tarball" | grep -E '^(tests|molecule|collections|\.venv|\.ci|\.ansible)/' ; then
  echo "build_check: the tarball holds files that build_ignore should keep out" >&2
  exit 1
fi
# Into an empty path, with its dependencies resolved offline (Galaxy is not reachable here): the
# installer is given community.docker, and what that needs, as the directories the ansible package
# bundles, and must find the versions galaxy.yml asks for among them. Nothing else may be found: not
# the checkout, not the bundled collections on Python's path.
export ANSIBLE_COLLECTIONS_PATH="$work/installed" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
bundled="$(python "$root/tests/harness/bundled_collections.py")"
cd "$work"
ansible-galaxy collection install --offline -p "$work/installed" "$tarball" \
  "$bundled/community/docker" "$bundled/community/library_inventory_filtering_v1" >/dev/null
for dependency in community/docker community/library_inventory_filtering_v1; do
  [ -f "$work/installed/ansible_collections/$dependency/MANIFEST.json" ] \
    || { echo "build_check: $dependency was not installed beside torchswarm.ddp" >&2; exit 1; }
done
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
for shipped in LICENSE CHANGELOG.rst; do
  [ -f "$work/installed/ansible_collections/torchswarm/ddp/$shipped" ] \
    || { echo "build_check: $shipped is missing from the installed collection" >&2; exit 1; }
done
# The image role builds from the collection's training/ directory.
[ -f "$work/installed/ansible_collections/torchswarm/ddp/training/Dockerfile" ] \
  || { echo "build_check: training/Dockerfile is missing from the installed collection" >&2; exit 1; }
ansible-doc -t role torchswarm.ddp.swarm >/dev/null
found="$(ansible-galaxy collection list torchswarm.ddp 2>/dev/null | grep -c 'torchswarm.ddp')"
[ "$found" -ge 1 ] || { echo "build_check: torchswarm.ddp not installed" >&2; exit 1; }
echo "build_check: $(basename "$tarball") installs; roles, playbooks and modules resolve by FQCN"
