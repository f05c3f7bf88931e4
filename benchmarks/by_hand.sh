#!/usr/bin/env bash
# The hand-run guide as a plain script, for the benchmark: on bare nodes, install Docker, form the
# swarm, create ddp-net, load the training image, deploy one service per node, wait for the job.
# `docker exec NODE` stands in for `ssh NODE`; steps that the guide runs on every node run on all
# nodes at once, as an operator with a terminal per node would.
#   usage: by_hand.sh IMAGE NODE0 NODE1 [NODE...]
set -euo pipefail
image="$1"; shift
nodes=("$@")
manager="${nodes[0]}"
on() { local n="$1"; shift; docker exec "$n" bash -c "$*"; }

for n in "${nodes[@]}"; do
  on "$n" 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null && systemctl start docker' &
done
wait

# The node's LAN address (hostname -I can list docker0 first once Docker runs).
addr="$(on "$manager" "ip -4 -o addr show dev eth0 | awk '{print \$4}' | cut -d/ -f1")"
on "$manager" "docker swarm init --advertise-addr $addr" >/dev/null
token="$(on "$manager" 'docker swarm join-token -q worker')"
for n in "${nodes[@]:1}"; do
  on "$n" "docker swarm join --token $token $addr:2377" >/dev/null &
done
wait
on "$manager" 'docker network create --driver overlay --attachable --subnet 10.42.0.0/24 ddp-net' >/dev/null

for n in "${nodes[@]}"; do
  docker save "$image" | docker exec -i "$n" docker load >/dev/null &
done
wait

{
  echo 'version: "3.8"'
  echo 'services:'
  for rank in "${!nodes[@]}"; do
    n="${nodes[$rank]}"
    cat <<YAML
  $n:
    image: $image
    command: torchrun --nproc_per_node=1 --nnodes=${#nodes[@]} --node_rank=$rank --master_addr=$manager --master_port=12355 training_code.py 10 2 --batch_size 32
    networks: [ddp-net]
    deploy:
      endpoint_mode: dnsrr
      restart_policy: {condition: on-failure}
      placement: {constraints: [node.hostname == $n]}
YAML
  done
  echo 'networks:'
  echo '  ddp-net: {external: true}'
} | docker exec -i "$manager" bash -c 'cat > /root/ddp.yml && docker stack deploy -c /root/ddp.yml ddp' >/dev/null

# Watch until every service's task is Complete.
until [ "$(on "$manager" "docker stack ps ddp --format '{{.CurrentState}}' | grep -c '^Complete'")" -eq "${#nodes[@]}" ]; do
  sleep 1
done
