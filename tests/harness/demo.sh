#!/usr/bin/env bash
# make demo: three local node containers stand in for bare hosts, and site.yml takes them to a
# finished DDP training run, exactly as `ansible-playbook site.yml -i inventory` does for real
# hosts: Docker, the swarm, the overlay network, the image (streamed node to node), a dataset
# staged from the controller, the stack, the wait with its progress lines, the summary and the
# results with their plots and the trained model. `make demo-clean` removes the nodes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
nodes='{"nodes_platforms": [{"name": "node0"}, {"name": "node1"}, {"name": "node2"}]}'

bash tests/harness/engine.sh
bash tests/harness/images.sh
bash tests/harness/trainer-image.sh
ansible-playbook molecule/resources/create.yml -e "$nodes"
# Data in: a small dataset written here, as a team's would sit on the controller (job_data_src),
# staged on every node down a chain and read by every rank at /data.
[ -d .cache/demo-dataset ] || python training/workloads.py linear 4096 .cache/demo-dataset
start=$SECONDS
ansible-playbook site.yml -i tests/harness/demo-inventory.yml
echo
echo "site.yml took $((SECONDS - start)) s, from bare nodes to the finished job above."
echo "Again, nothing changes:  ansible-playbook site.yml -i tests/harness/demo-inventory.yml"
echo "Results (summary, metrics, every rank's log, plots, and the trained model in output/model.pt):"
echo "                         the path printed above, under ./torchswarm-results"
echo "Status, results again:   ansible-playbook playbooks/status.yml -i tests/harness/demo-inventory.yml"
echo "                         ansible-playbook playbooks/results.yml -i tests/harness/demo-inventory.yml"
echo "Reach a node:            docker exec -it node0 bash      Remove the nodes:  make demo-clean"
