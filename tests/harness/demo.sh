#!/usr/bin/env bash
# make demo: three local node containers stand in for bare hosts, and site.yml turns them into
# a swarm, exactly as `ansible-playbook site.yml -i inventory` does for real hosts.
# `make demo-clean` removes the nodes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
nodes='{"nodes_platforms": [{"name": "node0"}, {"name": "node1"}, {"name": "node2"}]}'

bash tests/harness/engine.sh
bash tests/harness/images.sh
ansible-playbook molecule/resources/create.yml -e "$nodes"
start=$SECONDS
ansible-playbook site.yml -i tests/harness/demo-inventory.yml
echo
echo "site.yml took $((SECONDS - start)) s. The swarm, as node0 sees it:"
docker exec node0 docker node ls
docker exec node0 docker network ls --filter name=ddp-net
echo
echo "Reach a node:  docker exec -it node0 bash      Remove the nodes:  make demo-clean"
