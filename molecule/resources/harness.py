"""Helpers shared by the scenarios' checks: reach nodes, run playbooks on other inventories.

The nodes are containers on this machine, reached with testinfra's docker backend. Playbook runs
build a complete inventory from a scenario's molecule.yml (so the checks and the converge agree)
and change only what a case needs.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import re
import shlex
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import testinfra
import yaml
from PIL import Image  # Pillow comes with matplotlib, which draws the results' plots

RESOURCES = Path(__file__).resolve().parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The image role's line for each node it streamed to (what it held already, of how many layers).
STREAMED = re.compile(
    r'ok: \[(\S+)\] => \{? ?"?msg"?: "?\S+ \S+ from \S+ in [^;]*? image ID checked; '
    r"(\d+) of (\d+) layers"
)
# A failed task's result line, as the default callback prints it (a loop's item: "failed:").
FAILED_RESULT = re.compile(
    r"^(?:fatal|failed): \[(?P<host>[^\]]+)\](?: \(item=.*?\))?(?:: \w+!)? => (?P<result>.*)$"
)
# What failed in each playbook run that failed during the current check: conftest.py empties it
# before each check and adds it to the line CI keeps of why a check failed, since an assertion
# on a run's rc alone says only "assert 2 == 0".
FAILED_RUNS: list[str] = []
RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


# The manager the checks ask about the swarm; a test that stops node0 points this elsewhere.
MANAGER = {"name": "node0"}


# Each scenario's node containers are <scenario>-<node>, the node's name its hostname inside
# (molecule/resources/vars/nodes.yml), so that scenarios can run side by side.
SCENARIO = os.environ.get("MOLECULE_SCENARIO_NAME", "")


def container(name: str) -> str:
    """The container of this scenario's node ``name``."""
    return f"{SCENARIO}-{name}" if SCENARIO else name


def node(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"docker://{container(name)}")


def shared_dir() -> Path:
    """The directory of this machine that every node mounts at SHARED_MOUNT (nodes.yml), as node0's
    container says."""
    mounts = json.loads(
        subprocess.run(
            ["docker", "inspect", "--format", "{{json .Mounts}}", container("node0")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    return Path(next(m["Source"] for m in mounts if m["Destination"] == SHARED_MOUNT))


# Where every node sees shared_dir(), as molecule/resources/vars/nodes.yml says.
SHARED_MOUNT = yaml.safe_load((Path(__file__).parent / "vars" / "nodes.yml").read_text())[
    "nodes_shared_mount"
]


def controller() -> testinfra.host.Host:
    """This machine, where the controller's engine runs."""
    return testinfra.get_host("local://")


def image_id(host: testinfra.host.Host, image: str) -> str:
    """The ID a host's engine gives an image."""
    return host.check_output(f"docker image inspect --format '{{{{.Id}}}}' {image}")


def first_converge_log() -> str:
    """Everything the scenario's first converge showed and logged (ANSIBLE_LOG_PATH and the
    log_plays callback write into molecule's ephemeral directory; molecule.yml sets both)."""
    ephemeral = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
    files = [ephemeral / "ansible.log", *sorted((ephemeral / "log_plays").glob("*"))]
    return "\n".join(f.read_text(errors="replace") for f in files if f.is_file())


def results_of(job: str) -> Path:
    """The controller's results directory of a job's newest run (job_results_dir/<job>/<run>;
    molecule.yml puts job_results_dir in the ephemeral directory)."""
    ephemeral = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
    runs = [p for p in (ephemeral / "results" / job).glob("*") if p.is_dir()]
    assert runs, f"no results of job {job} on the controller"
    return max(runs, key=lambda p: (p / "summary.json").stat().st_mtime)


def png_size(path: Path) -> tuple[int, int]:
    """The size of a PNG, decoded in full (a truncated or corrupt file raises)."""
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG", path
        return image.size


def base_inventory(scenario: Path) -> dict:
    """The converged inventory, as the scenario's molecule.yml describes it, in YAML-inventory form."""
    # ${VARIABLES} as molecule interpolates them (job_results_dir names the ephemeral directory).
    config = yaml.safe_load(os.path.expandvars((scenario / "molecule.yml").read_text()))
    inventory: dict = {
        "all": {"vars": copy.deepcopy(config["provisioner"]["inventory"]["group_vars"]["all"])}
    }
    inventory["all"]["vars"]["ansible_connection"] = "community.docker.docker"
    host_vars = config["provisioner"]["inventory"].get("host_vars", {})
    for platform in config["platforms"]:
        for group in platform["groups"]:
            if group == "spare":
                continue
            hosts = inventory.setdefault(group, {"hosts": {}})["hosts"]
            hosts[platform["name"]] = copy.deepcopy(host_vars.get(platform["name"], {}))
    return inventory


def scenario_inventory(scenario: Path) -> dict:
    """base_inventory, with each node reached as the scenario's converge reached it: over SSH
    where molecule's instance config gives addresses and keys (the registry scenario)."""
    inventory = base_inventory(scenario)
    path = Path(os.environ.get("MOLECULE_INSTANCE_CONFIG", "/nonexistent"))
    config = (yaml.safe_load(path.read_text()) or []) if path.is_file() else []
    if not any("identity_file" in i for i in config):
        return inventory
    del inventory["all"]["vars"]["ansible_connection"]
    reach = {
        i["instance"]: {
            "ansible_connection": "ssh",
            "ansible_host": i["address"],
            "ansible_user": i["user"],
            "ansible_ssh_private_key_file": i["identity_file"],
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        }
        for i in config
    }
    for group in inventory.values():
        for name, host_vars in group.get("hosts", {}).items():
            host_vars.update(reach[name])
    return inventory


@dataclass
class PlaybookRun:
    rc: int
    output: str

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        return {
            m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
            for m in RECAP.finditer(self.output)
        }

    def streamed(self) -> dict[str, tuple[int, int]]:
        """Each node the image role streamed to: (layers it held already, the image's layers)."""
        text = re.sub(r"\s+", " ", self.output)  # long messages are wrapped
        # As the default callback shows a result in YAML (msg: ...) or JSON ({"msg": "..."}).
        found = re.findall(STREAMED, text)
        return {host: (int(held), int(total)) for host, held, total in found}

    @property
    def failure(self) -> str:
        """What failed, on one line: each failed task with its host and message (or Ansible's
        own error), else the output's last words."""
        failed, task = [], "?"
        lines = self.output.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("TASK ["):
                task = line[6 : line.find("]", 6)]
            elif found := FAILED_RESULT.match(line):
                # The result: JSON on this line, or YAML on the indented lines after it.
                block = [found["result"], *itertools.takewhile(lambda x: x[:1].isspace(), lines[i + 1 :])]
                result = " ".join(" ".join(block).split())
                msg = re.search(r'"msg": "((?:[^"\\]|\\.)*)"|\bmsg: (?:\|-? )?(.*)', result)
                failed.append(f"{task} on {found['host']}: {(msg[1] or msg[2]) if msg else result}"[:300])
            elif line.startswith("ERROR! "):
                failed.append(line)
        return " | ".join(failed) or " ".join(self.output.split()[-40:])

    def assert_unchanged(self, *hosts: str) -> None:
        """Each of ``hosts`` has a PLAY RECAP line, and no host changed anything. Hosts are named
        because a run that died before Ansible reported (no recap at all) changed nothing too."""
        recap = self.recap
        missing = sorted(set(hosts) - set(recap))
        assert not missing, f"no PLAY RECAP line for {missing}: the run ended before reporting on them"
        changed = {host: stats["changed"] for host, stats in recap.items() if stats["changed"]}
        assert not changed, f"changed on {changed}"


# A run that hangs (a job that never finishes) fails its check in minutes, within the check's
# own limit (pyproject.toml), with the playbook's output.
PLAYBOOK_TIMEOUT = 480


def reaching_containers(inventory: dict) -> dict:
    """The inventory with each host that a check put in it (added ones too) reached as its
    scenario's container, where hosts are reached through Docker. Per host: a group-wide
    ansible_host templated from inventory_hostname would name the wrong host under delegate_to."""
    inventory = copy.deepcopy(inventory)
    if inventory["all"]["vars"].get("ansible_connection") == "community.docker.docker":
        for group in inventory.values():
            for name, host_vars in (group.get("hosts") or {}).items():
                host_vars.setdefault("ansible_host", container(name))
    return inventory


# The execution environment (ee/, make ee), and what a run in it is given: the engine's socket
# (the docker connection, the controller's image) and the settings the checks read output by.
EE_IMAGE = "torchswarm/ee:latest"


def newest_ansible_core() -> str:
    """The newest ansible-core the collection is tested on, as requirements-newest.txt pins it."""
    pins = (RESOURCES.parents[1] / "requirements-newest.txt").read_text()
    return re.search(r"^ansible-core==(\S+)$", pins, re.M)[1]


PLAIN_OUTPUT = {
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_FORCE_COLOR": "0",
    "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
    # The scenario's -vvv is for its converge's logs; the checks read plain output.
    "ANSIBLE_VERBOSITY": "0",
}
# ansible-runner's event markers in ansible-navigator's stdout (erased on a terminal).
RUNNER_MARKS = re.compile(r"\x1b\[K[A-Za-z0-9+/=]*\x1b\[\d+D|\x1b\[K")


def navigator_run(playbook: Path, inventory: Path, extra_args: tuple[str, ...], tmp_path: Path) -> list[str]:
    """ansible-navigator running ``playbook`` in the execution environment, as a user would, with
    the collections installed in it (none from this checkout): on the host's network (the
    relays), with the engine's socket, and the ephemeral directory (job_results_dir) mounted."""
    ephemeral = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    settings = {**PLAIN_OUTPUT, "ANSIBLE_PIPELINING": "True", "ANSIBLE_TASK_TIMEOUT": "900"}
    return [
        "ansible-navigator", "run", str(playbook), "-i", str(inventory), *extra_args,
        "--ee", "true", "--ce", "docker", "--eei", EE_IMAGE, "--pp", "never",
        "--mode", "stdout", "--pae", "false", "--lf", str(tmp_path / "ansible-navigator.log"),
        "--co=--network=host", "--co=--user=0",
        "--eev", "/var/run/docker.sock:/var/run/docker.sock", "--eev", f"{ephemeral}:{ephemeral}",
        *(arg for k, v in settings.items() for arg in ("--senv", f"{k}={v}")),
    ]  # fmt: skip


def start_playbook(
    playbook: str, inventory: dict, tmp_path: Path, *extra_args: str, ee: bool = False
) -> subprocess.Popen:
    """ansible-playbook on one of molecule/resources' playbooks, with this inventory, running on
    while the caller does something to the cluster; finish_playbook collects it. ``ee``: with
    ansible-navigator in the execution environment."""
    path = tmp_path / f"inventory-{time.monotonic_ns()}.yml"
    path.write_text(yaml.safe_dump(reaching_containers(inventory)))
    env = dict(os.environ, **PLAIN_OUTPUT)
    if ee:
        command = navigator_run(RESOURCES / playbook, path, extra_args, tmp_path)
        # Molecule's Ansible settings (its ansible.cfg, this checkout's collections) stay out:
        # ansible-navigator passes ANSIBLE_* on into the EE.
        env = {k: v for k, v in env.items() if not k.startswith("ANSIBLE_")}
    else:
        command = ["ansible-playbook", *extra_args, "-i", str(path), str(RESOURCES / playbook)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish_playbook(proc: subprocess.Popen, timeout: float = 0) -> PlaybookRun:
    try:
        out, _unused = proc.communicate(timeout=timeout or PLAYBOOK_TIMEOUT)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _unused = proc.communicate()
        rc, out = 124, out + b"\n(killed: ran too long)"
    output = ANSI.sub("", RUNNER_MARKS.sub("", out.decode(errors="replace")))
    print(output)  # shown by pytest when a check fails
    run = PlaybookRun(rc, output)
    if rc:
        playbook = next((Path(a).name for a in proc.args if str(a).startswith(str(RESOURCES))), "?")
        FAILED_RUNS.append(f"{playbook} (rc {rc}): {run.failure}")
    return run


def run_playbook(
    playbook: str, inventory: dict, tmp_path: Path, *extra_args: str, ee: bool = False
) -> PlaybookRun:
    """ansible-playbook on one of molecule/resources' playbooks, with this inventory."""
    return finish_playbook(start_playbook(playbook, inventory, tmp_path, *extra_args, ee=ee))


def run_site_playbook(inventory: dict, tmp_path: Path, *extra_args: str, ee: bool = False) -> PlaybookRun:
    return run_playbook("converge-site.yml", inventory, tmp_path, *extra_args, ee=ee)


def run_cluster_playbook(inventory: dict, tmp_path: Path, *extra_args: str) -> PlaybookRun:
    return run_playbook("converge-cluster.yml", inventory, tmp_path, *extra_args)


def three_hosts_after_test_6(inventory: dict, **job_vars) -> None:
    """The hosts the default scenario has after test_6 (node2 gone, marked absent): node3 as node
    rank 0, node0 (the only manager) and node1; and the job's variables."""
    inventory["workers"]["hosts"]["node3"] = {"job_node_rank": 0}
    for rank, host in enumerate(("node0", "node1"), start=1):
        group = "managers" if host == "node0" else "workers"
        inventory[group]["hosts"][host] = {"job_node_rank": rank}
    inventory["workers"]["hosts"]["node2"] = {"swarm_node_state": "absent"}
    inventory["all"]["vars"].update(job_vars)


# maintenance.yml's maintenance_tasks, as a user writes them for an upgrade and a reboot: Docker
# restarted (as an upgrade of it does), a marker left, and the node container restarted from the
# controller (systemd shuts down and boots again), as a reboot is. Format with container=.
SERVICING_TASKS = """
- name: Restart Docker, as an upgrade of it does
  ansible.builtin.systemd_service:
    name: docker
    state: restarted
- name: Leave a marker
  ansible.builtin.copy:
    dest: /root/maintained
    content: "serviced\\n"
    mode: "0644"
- name: Reboot (the node container restarted)
  ansible.builtin.command: docker restart {container}
  delegate_to: localhost
  changed_when: true
- name: Wait for the host to answer again
  ansible.builtin.wait_for_connection:
    timeout: 300
"""
MAINTENANCE = "../../playbooks/maintenance.yml"


def service(
    host: str, inventory: dict, tmp_path: Path, *extra_args: str
) -> tuple[PlaybookRun, str, float, float]:
    """maintenance.yml -l ``host`` with SERVICING_TASKS: the run, its output on one line (long
    messages are wrapped), and when it began and returned."""
    tasks = tmp_path / f"upkeep-{host}.yml"
    tasks.write_text(SERVICING_TASKS.format(container=container(host)))
    started = time.time()
    run = run_playbook(
        MAINTENANCE, inventory, tmp_path, "-l", host, "-e", f"maintenance_tasks={tasks}", *extra_args
    )
    return run, " ".join(run.output.split()), started, time.time()


# Stand-in for a newer engine in a team's apt mirror (Debian's archive has one docker.io per
# release): the host's own docker.io, fetched from the archive again and re-stamped with a higher
# version, in a local apt repository on the host. apt and dpkg upgrade it for real (its
# maintainer scripts restart Docker). Prints the new version.
STANDIN_DOCKER_REPO = r"""set -e
VERSION="$(dpkg-query -W -f '${Version}' docker.io)+torchswarm1"
mkdir -p /srv/standin-apt && cd /srv/standin-apt
apt-get download -q docker.io >/dev/null
dpkg-deb -R docker.io_*.deb pkg && rm docker.io_*.deb
sed -i "s/^Version: .*/Version: $VERSION/" pkg/DEBIAN/control
dpkg-deb -Znone -b pkg docker.io_standin.deb >/dev/null && rm -r pkg
{ dpkg-deb -f docker.io_standin.deb
  echo "Filename: ./docker.io_standin.deb"
  echo "Size: $(stat -c%s docker.io_standin.deb)"
  echo "SHA256: $(sha256sum docker.io_standin.deb | cut -d' ' -f1)"; } > Packages
echo "deb [trusted=yes] file:/srv/standin-apt ./" > /etc/apt/sources.list.d/standin.list
echo "$VERSION"
"""


def standin_docker_upgrade(host: str) -> str:
    """A newer docker.io for ``host`` to upgrade to (STANDIN_DOCKER_REPO): its version."""
    return node(host).check_output(f"bash -c {shlex.quote(STANDIN_DOCKER_REPO)}").strip()


def installed_version(host: str, package: str) -> str:
    return node(host).check_output(f"dpkg-query -W -f '${{Version}}' {package}")


def power_off(name: str) -> None:
    """A host lost as to a power cut: its node container killed, so every process in it dies at
    once and its network goes with it; no service stops, no connection closes (docker stop would
    shut systemd down, which stops Docker's tasks with SIGTERM: a clean exit, not a loss)."""
    subprocess.run(["docker", "kill", container(name)], check=True, capture_output=True)


def power_on(name: str) -> None:
    """The host's power back: its node container boots again (systemd, then its Docker engine)."""
    subprocess.run(["docker", "start", container(name)], check=True, capture_output=True)


def docker_json(host: testinfra.host.Host, *args: str):
    return json.loads(host.check_output("docker " + " ".join(args)))


def swarm_nodes() -> dict[str, dict]:
    """The swarm's node list, by hostname, as the manager sees it."""
    manager = node(MANAGER["name"])
    ids = manager.check_output("docker node ls -q").split()
    return {n["Description"]["Hostname"]: n for n in docker_json(manager, "node inspect", *ids)}


def load_probe_image(*names: str) -> None:
    """Copy the busybox probe image into nodes' engines (no registry to pull from)."""
    for name in names:
        if node(name).run("docker image inspect torchswarm/probe:latest").rc == 0:
            continue
        save = subprocess.Popen(["docker", "save", "torchswarm/probe:latest"], stdout=subprocess.PIPE)
        load = ["docker", "exec", "-i", container(name), "docker", "load"]
        subprocess.run(load, stdin=save.stdout, check=True)
        save.wait()


def stack_tasks(stack: str) -> dict[str, list[dict]]:
    """Every task the swarm has started for each of the stack's services, newest first."""
    result = node(MANAGER["name"]).run(f"docker stack ps {stack} --no-trunc --format '{{{{json .}}}}'")
    if result.rc != 0 and "nothing found in stack" in result.stderr:
        return {}
    assert result.rc == 0, result.stderr
    out = result.stdout
    tasks: dict[str, list[dict]] = {}
    for line in out.splitlines():
        task = json.loads(line)
        tasks.setdefault(task["Name"].rsplit(".", 1)[0], []).append(task)
    return tasks


def failed_tasks(stack: str, states: tuple[str, ...] = ("Failed",)) -> list[str]:
    """The stack's tasks in one of ``states``, each as "name on node: state: error", so that a
    check which finds one says which and why."""
    return [
        f"{t['Name']} on {t['Node']}: {t['CurrentState']}: {t['Error']}"
        for history in stack_tasks(stack).values()
        for t in history
        if t["CurrentState"].split()[0] in states
    ]


# How the swarm may record the tasks that the drain stopped on the serviced host, both seen in CI on a
# loaded machine: the rank's exit after its snapshot (143) reached the agent before the drain's
# shutdown did; or two of the host's tasks on ddp-net stopped together and both removed the
# network, the second finding it gone (our reading, not reproduced: the agent's race, as in
# moby/moby#35804, not the job's).
DRAIN_STOPS = ("non-zero exit (143)", '"error while removing network: unknown network ')


def unplanned_failures(stack: str, serviced: str) -> list[str]:
    """failed_tasks but the serviced host's tasks that the drain stopped (DRAIN_STOPS); any other
    failure, or such a stop on a host that trained on, is a task that failed."""
    return [
        task
        for task in failed_tasks(stack)
        if not (f" on {serviced}: " in task and any(stop in task for stop in DRAIN_STOPS))
    ]


def ranks_complete(stack: str, ranks: int, lost: tuple[str, ...] = ()) -> bool:
    """Whether the newest task of each rank's service completed (the rendezvous service runs on,
    and ranks on ``lost`` hosts are not asked)."""
    tasks = {
        service: history
        for service, history in stack_tasks(stack).items()
        if not service.endswith("_rendezvous") and service.rsplit("_", 1)[1] not in lost
    }
    done = all(h[0]["CurrentState"].startswith("Complete") for h in tasks.values())
    return len(tasks) == ranks - len(lost) and done


def task_ids(stack: str) -> dict[str, list[str]]:
    """The stack's tasks by service: what changes when the swarm starts or restarts one (the
    CurrentState text, "Complete 2 minutes ago", changes by itself)."""
    return {service: [t["ID"] for t in history] for service, history in stack_tasks(stack).items()}


def metrics(stack: str, rank0: str = "node0", snapshot_dir: str = "") -> list[dict]:
    """The trainer's metrics.jsonl from node rank 0's snapshot volume, or from its directory under
    ``snapshot_dir`` (the job's job_snapshot_dir)."""
    directory = (
        f"{snapshot_dir}/{stack}/{rank0}"
        if snapshot_dir
        else f"/var/lib/docker/volumes/{stack}-snapshots/_data"
    )
    path = f"{directory}/metrics.jsonl"
    host = node(rank0)
    if not host.file(path).exists:
        return []
    records = []
    for line in host.file(path).content_string.splitlines():
        with contextlib.suppress(ValueError):  # a line being written
            records.append(json.loads(line))
    return records


FIRST_STEP = re.compile(r"first step trained at ([0-9.]+) \(world size (\d+)\)")


def first_steps_after(stack: str, hosts: tuple[str, ...], moment: float) -> list[tuple[float, int]]:
    """(wall time, world size) of each round's first trained step after ``moment``, from the
    trainer's line in the logs of these hosts' ranks (rank 0 prints it, wherever it runs)."""
    found = []
    for host in hosts:
        # From each host's own engine: while a node is down, `docker service logs` on a manager
        # can wait for it forever or stop half way. A stopped host answers nothing, which is fine.
        label = f"label=com.docker.swarm.service.name={stack}_{host}"
        script = f"for c in $(docker ps -aq --filter {label}); do docker logs $c 2>&1; done"
        log = node(host).run(f"timeout 20 sh -c '{script}'").stdout
        found += [(float(t), int(w)) for t, w in FIRST_STEP.findall(log) if float(t) > moment]
    return sorted(found)


def standin_gpus(scenario: Path) -> dict[str, list[str]]:
    """The fixed GPU UUIDs the stand-in nvidia-smi reports, by node, as the scenario's molecule.yml
    gives them (the gpu scenario)."""
    host_vars = yaml.safe_load((scenario / "molecule.yml").read_text())["provisioner"]["inventory"][
        "host_vars"
    ]
    return {name: v["standin_gpus"] for name, v in host_vars.items() if "standin_gpus" in v}


def epochs_of(records: list[dict]) -> list[int]:
    return [r["epoch"] for r in records if r["event"] == "epoch"]


def epoch_seconds(records: list[dict]) -> dict[int, float]:
    """The median seconds of an epoch at each world size the job trained at, for the figures that
    size a fault check's job (from the epochs' elapsed_s, which restarts with each round)."""
    epochs = [r for r in records if r["event"] == "epoch"]
    seconds: dict[int, list[float]] = {}
    for before, after in itertools.pairwise(epochs):
        if after["world_size"] == before["world_size"] and after["elapsed_s"] > before["elapsed_s"]:
            seconds.setdefault(after["world_size"], []).append(after["elapsed_s"] - before["elapsed_s"])
    return {world: round(statistics.median(s), 1) for world, s in sorted(seconds.items())}


# Figures the checks measure (wall times of fault cases); molecule/conftest.py prints them after
# the run, whether the checks passed or not.
FIGURES: list[str] = []


def figure(text: str) -> None:
    FIGURES.append(text)
    print(text)


# Seconds between two polls of a wait. Each poll is a few docker execs into a node; the two CPUs
# that make test's lanes share are busy throughout, and the events waited for take tens of seconds.
POLL_INTERVAL = 2


def wait_for(predicate, timeout: float, what: str, seen=None) -> None:
    """Poll ``predicate`` every POLL_INTERVAL seconds; past ``timeout``, fail naming ``what`` and,
    when given, what ``seen()`` then describes (the state the wait never left)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(POLL_INTERVAL)
    state = f"; seen: {seen()}" if seen else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{state}")
