"""The training_stack module's ``job`` option, written by tests/harness/job_doc_fragment.py
from the one declaration of the job's options (module_utils/_job_options.py); do not edit."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  job:
    description:
    - What the job runs and how; required when O(state=present). In the C(torchswarm.ddp.job)
      role each option is the variable of its name with C(job_) in front (C(job_epochs),
      ...).
    type: dict
    suboptions:
      image:
        type: str
        required: true
        description: The training image, as every node's engine knows it.
      epochs:
        type: int
        default: 10
        description: Total epochs, the trainer's first argument.
      snapshot_every:
        type: int
        default: 2
        description: Snapshot interval in epochs, the trainer's second argument.
      batch_size:
        type: int
        default: 32
        description: Batch size per process (C(--batch_size)).
      script:
        type: str
        default: training_code.py
        description: The script torchrun runs, in the image's working directory (with
          job_script_src, one of its files).
      trainer_args:
        type: list
        elements: str
        default: []
        description: Extra arguments after the guide's, for example C([--model, gpt]).
      script_args:
        type: list
        elements: str
        description: The script's whole argument list, in place of the trainer's (epochs,
          snapshot interval, C(--batch_size) and trainer_args); for scripts other
          than the trainer, such as the preflight's C(allreduce_check.py).
      env:
        type: dict
        default: {}
        description:
        - Environment for every rank, for example C(NCCL_DEBUG=INFO). Values reach
          the task byte for byte (a C($) is not interpolated).
        - 'Not for secrets (use job_secrets): values are shown as C(<hidden>) in results,
          diffs and logged arguments, but kept in the stack file on the manager.'
      nccl_ib_disable:
        type: bool
        description:
        - C(NCCL_IB_DISABLE) for every rank, the guide's fix for NCCL hanging on InfiniBand
          it cannot use; env overrides it.
        - Default, V(true) on the overlay network (it carries only TCP) and NCCL's
          own choice on the host network.
      memlock:
        type: str
        description:
        - Locked-memory limit of every rank (the C(memlock) ulimit), which NCCL needs
          for InfiniBand and RoCE buffers. V(unlimited), a size such as V(64g), or
          an empty string for Docker's default.
        - Default, V(unlimited) on the host network and Docker's default on the overlay
          network, where NCCL uses only sockets.
      master_port:
        type: int
        default: 12355
        description: The rendezvous port on rank 0 (C(--master_port)).
      master_addr:
        type: str
        default: ''
        description: The rendezvous address. Empty, rank 0's service name on the overlay
          network, or rank 0's address on the host network.
      network:
        type: str
        default: ddp-net
        description: The attachable overlay network the services join.
      network_mode:
        type: str
        choices:
        - overlay
        - host
        default: overlay
        description: V(overlay) joins the network; V(host) runs on the hosts' network
          stacks, for NCCL over InfiniBand or RoCE NICs.
      subnet:
        type: str
        default: ''
        description: The overlay's subnet; the trainer picks the interface in it for
          NCCL and Gloo (C(TORCHSWARM_SUBNET)).
      snapshot_volume:
        type: str
        default: ''
        description: The named volume for snapshots and metrics on each node. Empty,
          C(<job name>-snapshots).
      mounts:
        type: list
        elements: dict
        default: []
        description:
        - 'What else every rank sees besides the image: host paths (a dataset on each
          host''s NVMe, a shared filesystem the hosts mount), named volumes (NFS through
          Docker''s own C(local) driver, declared in the stack) and sized tmpfs scratch
          space.'
        - 'A host path is checked on every training host before any host changes:
          missing, not a directory, not readable, or (V(read_only=false)) not writable
          stops the run naming the host and the path. A target inside or above C(/workspace),
          C(/snapshots), C(/dev/shm), C(/run/secrets) or another mount''s target is
          refused.'
        suboptions:
          type:
            type: str
            choices:
            - bind
            - volume
            - tmpfs
            default: bind
            description: V(bind), a host path; V(volume), a named volume; V(tmpfs),
              memory.
          source:
            type: str
            description:
            - V(bind), the absolute path on every training host; V(volume), the volume's
              name (a volume of that name that a node already has is used as it is).
            - None for V(tmpfs).
          target:
            type: str
            required: true
            description: The absolute path inside every rank.
          read_only:
            type: bool
            description: Mounted read-only. Default V(true) for V(bind) and V(volume);
              a V(tmpfs) is writable.
          driver_opts:
            type: dict
            default: {}
            description:
            - 'V(volume) only: the C(local) driver''s options, with which each node
              creates the volume on first use. NFS: C({type: nfs, o: ''addr=10.0.0.5,nfsvers=4'',
              device: '':/export/data''}).'
          size:
            type: str
            description: 'V(tmpfs) only, and required there: its size, for example
              V(8g).'
      data_dir:
        type: str
        default: ''
        description:
        - With job_data_src (a dataset on the controller, staged on every training
          host), where each host keeps it. Empty, C(/var/lib/torchswarm/data/<job
          name>). A directory that holds files no staging put there is never replaced.
      data_target:
        type: str
        default: /data
        description: With job_data_src, where every rank sees the staged dataset,
          read-only; C(TORCHSWARM_DATA_DIR) names it (the bundled trainer's C(--data)).
      snapshot_dir:
        type: str
        default: ''
        description:
        - 'A host path for the snapshots in place of the named volume: a filesystem
          the hosts share (mounted by themselves) or local NVMe. Each node writes
          under C(<snapshot_dir>/<job name>/<inventory host>/). It must exist and
          be writable on every training host (checked before any host changes).'
      snapshot_keep:
        type: int
        default: 2
        description: How many of its newest snapshots each node keeps; older ones
          are removed. A newest snapshot that cannot be read is skipped at start,
          with a line saying so, for the one before it.
      shm_size:
        type: str
        default: 1g
        description: Size of the C(/dev/shm) tmpfs, for example V(1g).
      cpus:
        type: float
        description: 'CPUs each training host''s task may use, Docker''s CPU limit
          (V(1.5): one and a half); unset, no limit. For a host that also does other
          work: it keeps that work, and the host''s Docker engine and swarm agent,
          responsive while the ranks keep every CPU busy.'
      restart_delay:
        type: str
        default: 10s
        description: Delay before the swarm restarts a failed task.
      restart_max_attempts:
        type: int
        default: 30
        description: 'How many times the swarm restarts a failed task before giving
          up. A lost node makes every torchrun fail and restart, and ranks that start
          before node rank 0 is back fail again: the default covers a few minutes
          of that.'
      start_attempts:
        type: int
        default: 3
        description:
        - How many times in a row a host's ranks may fail before their first training
          step (a missing module, a bad argument) before the job fails with their
          error instead of being restarted again. A step is what C(torchswarm.step)
          or C(torchswarm.report) says (the bundled trainer calls them); a script
          that calls neither counts as started after 5 minutes. A script that is not
          in the image fails the job at once.
      stall_timeout:
        type: int
        default: 600
        description:
        - 'Seconds without a training step on a host after which the job counts as
          stalled (a rank stuck in a collective, a deadlocked DataLoader worker, a
          filesystem that stopped answering): every worker prints its Python stacks
          into the logs, and the round is ended and re-formed from the newest snapshot,
          as after a lost host. A round''s first step may take twice as long. A step
          is what C(torchswarm.step) or C(torchswarm.report) says; a host that never
          reported one is never judged. V(0) turns the watchdog off.'
      stall_restarts:
        type: int
        default: 3
        description: How many stalls in a row the job re-forms from; the next fails
          it, with the reason. A round that trained for as long as the stall timeout
          starts the count again.
      stop_grace_period:
        type: str
        default: 60s
        description: Time between SIGTERM (the trainer snapshots) and SIGKILL.
      min_nodes:
        type: int
        description:
        - On the overlay the job is elastic; it trains in rounds over the hosts that
          are there, agreed in a rendezvous service on the managers. This many hosts
          are enough to go on.
        - Default N-1 for 3 or more training hosts, else N.
      peer_timeout:
        type: int
        default: 30
        description: Seconds without a heartbeat after which a host counts as lost
          and the others re-form without it (on the overlay).
      with_registry_auth:
        type: bool
        default: false
        description: Pass the manager's registry login to the nodes (C(--with-registry-auth)).
"""
