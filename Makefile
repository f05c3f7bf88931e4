# Every check has a name; `make test` runs them all and is what CI runs (.ci/run).
# It installs what it needs: the virtualenv, a Docker engine (as root, Debian's docker.io, when
# none answers) and the test images (built locally, reused when present).

SHELL := /bin/bash
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# The newest ansible-core claimed (requirements-newest.txt) on Python 3.12 or later: unit-newest,
# sanity-newest and molecule-gpu run on it, everything else on the oldest (requirements-dev.txt).
VENV_NEWEST := .venv-newest
NEWEST := PATH=$(CURDIR)/$(VENV_NEWEST)/bin:$$PATH
PYTHON ?= python3
export PATH := $(BIN):$(PATH)
# Molecule's own ansible.cfg replaces ours; this keeps torchswarm.ddp resolvable from the checkout.
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/collections:$(HOME)/.ansible/collections
export ANSIBLE_FORCE_COLOR := $(if $(CI),0,1)
export PY_COLORS := $(if $(CI),0,1)

MODULES := docker_daemon_config validate_inventory training_stack training_job_info training_job_wait host_state \
  training_results training_run_files image_relay image_push training_output data_relay relay_wait
FILTERS := network_recreate_reasons network_driver_options network_services_using \
  training_status_table nvidia_gpu_uuids swarm_gpu_resources \
  preflight_problems image_fanout_rounds image_registry swarm_node_ids swarm_node_changes swarm_cert_report swarm_settings_changes daemon_config_unchanged job_host_paths \
  fanout_chain_after job_data_host_dir maintenance_verdict apt_pinned package_drift swarm_manager

.PHONY: help demo demo-clean test lint unit unit-newest sanity sanity-newest venv-newest ee doc-fragment trainer trainer-image image-test gpu-check benchmark-trainer benchmark-trainer-exits benchmark-recovery benchmark-maintenance benchmark-stall benchmark-user-script benchmark-image benchmark-data benchmark-site build-check molecule-cluster molecule-default molecule-registry molecule-gpu engine images venv clean

help:
	@echo "make demo              three local node containers -> site.yml -> a finished DDP job"
	@echo "make test              everything CI runs: lint, unit, sanity (and both on the newest ansible-core),"
	@echo "                       trainer, build-check, image-test, ee, molecule-cluster, molecule-default,"
	@echo "                       molecule-registry, molecule-gpu"
	@echo "make lint              ansible-lint (production profile), ruff, ansible-doc renders, changelog"
	@echo "make unit              pytest over plugins/module_utils and the modules"
	@echo "make sanity            ansible-test sanity on a copy of the collection, each test in its own venv"
	@echo "make unit-newest, sanity-newest  the same on the newest ansible-core (.venv-newest)"
	@echo "make trainer           the trainer through real torchrun (2 processes, gloo, CPU)"
	@echo "make trainer-image     build torchswarm/trainer here (local base + CPU torch wheelhouse)"
	@echo "make image-test        the guide's two-node docker run commands, verbatim, on the image"
	@echo "make gpu-check         the trainer with NCCL on every GPU of this machine (needs a GPU)"
	@echo "make benchmark-trainer training_code.py against a plain DDP loop: samples/s ratio"
	@echo "make benchmark-trainer-exits  300 short trainer runs at once: how many exit non-zero"
	@echo "make benchmark-recovery  an elastic job's recovery after a lost worker and node 0, several runs"
	@echo "make benchmark-maintenance  a host out for maintenance against a lost host: time at N-1, samples retrained"
	@echo "make benchmark-stall   the stall watchdog: seconds from a hung rank to the next trained step"
	@echo "make benchmark-user-script  the default scenario, a user's script ten runs in a row"
	@echo "make benchmark-image   the image to 3, 6 and 12 hosts on tc-limited links: chain, rounds, star"
	@echo "make benchmark-data    a 1 GB dataset (job_data_src) to 3, 6 and 12 hosts on tc-limited links"
	@echo "make benchmark-site    site.yml against the guide's steps by hand on 3, 6 and 12 fresh nodes"
	@echo "make build-check       build the collection, install it, resolve roles/playbooks by FQCN"
	@echo "make ee                the execution environment torchswarm/ee (ansible-builder, ee/)"
	@echo "make molecule-cluster  bare nodes -> swarm + overlay; idempotence, bad inventories, scaling,"
	@echo "                       certificates, autolock and unlock"
	@echo "make molecule-default  bare nodes -> site.yml -> finished job; idempotence, bad input,"
	@echo "                       node loss, scale-out to four nodes, a worker and node 0 serviced"
	@echo "                       (maintenance.yml)"
	@echo "make molecule-registry nodes over SSH as a sudo user; the image from a real registry (TLS, basic"
	@echo "                       auth), then streamed from the controller over SSH"
	@echo "make molecule-gpu      site.yml on nodes with STAND-IN nvidia-smi and runtime (no GPUs here):"
	@echo "                       daemon.json, config.toml, swarm GPU resources, GPUs per task;"
	@echo "                       on the newest ansible-core, as a new user installs it, and from the EE"

# make test: the two quick checks that build what both lanes use, one after another, then two
# lanes side by side of about equal length: the units, the default scenario (the longest) and the
# units on the newest ansible-core (its virtualenv made by then, by sanity-newest); beside them
# lint, sanity on both ansible-cores, the trainer's checks and the other three scenarios (each
# scenario has containers, storage and a network of its own, molecule/resources/vars/nodes.yml;
# the trainer's torchrun processes run on this machine). Each target is timed
# (tests/harness/timings.py), its output lines tagged with its name; the table at the end holds
# every target, every molecule step and every check. A failed target ends its lane. A target
# still running after its limit (seconds) is stopped and named: a hang fails in minutes, not at
# CI's limit. The limits are about twice what each takes on CI's slowest machines; the default
# scenario's (2900 s on a slow day) is less, to stay under CI's own 90 minutes.
TEST_FIRST := build-check image-test
LANE_A := unit molecule-default unit-newest
LANE_B := lint sanity-newest sanity trainer molecule-cluster molecule-registry molecule-gpu
TIMINGS := $(CURDIR)/.cache/timings/records.tsv
LIMIT_trainer := 1200
LIMIT_sanity := 1200
LIMIT_sanity-newest := 1200
LIMIT_image-test := 1200
LIMIT_molecule-cluster := 1800
LIMIT_molecule-default := 3600
LIMIT_molecule-registry := 1200
LIMIT_molecule-gpu := 1200
limit = $(or $(LIMIT_$(1)),600)
# Shell: run these targets in order while $$status is 0 (a failure sets it); $(2) tags their lines.
in_order = $(foreach t,$(1),[ $$status != 0 ] || TORCHSWARM_TIMINGS=$(TIMINGS) \
  python tests/harness/timings.py run $(t) --limit $(call limit,$(t)) $(if $(2),--tag) \
  -- $(MAKE) --no-print-directory $(t) || { status=$$?; echo "make test: $(t) failed (exit $$status)"; };)
test: venv
	@rm -f $(TIMINGS); status=0; \
	$(call in_order,$(TEST_FIRST)) \
	if [ $$status = 0 ]; then \
	  ( $(call in_order,$(LANE_A),tag) exit $$status ) & lane_a=$$!; \
	  $(call in_order,$(LANE_B),tag) \
	  wait $$lane_a; lane_a_status=$$?; [ $$status != 0 ] || status=$$lane_a_status; \
	fi; \
	TORCHSWARM_TIMINGS=$(TIMINGS) python tests/harness/timings.py report; exit $$status

demo: venv
	bash tests/harness/demo.sh

demo-clean: venv
	ansible-playbook molecule/resources/destroy.yml \
	  -e '{"nodes_platforms": [{"name": "node0"}, {"name": "node1"}, {"name": "node2"}]}'

venv: $(VENV)/.installed
$(VENV)/.installed: requirements-dev.txt training/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -r training/requirements.txt
	touch $@

venv-newest: $(VENV_NEWEST)/.installed
$(VENV_NEWEST)/.installed: requirements-newest.txt
	python="$$(bash tests/harness/python_newest.sh)" && "$$python" -m venv $(VENV_NEWEST)
	$(VENV_NEWEST)/bin/pip install --quiet --upgrade pip
	$(VENV_NEWEST)/bin/pip install --quiet -r requirements-newest.txt
	touch $@

# ansible-test sanity, as Galaxy and Automation Hub run it (tests/sanity/run.sh says how).
sanity: venv
	bash tests/sanity/run.sh

sanity-newest: venv-newest
	SANITY_VENV=$(VENV_NEWEST) bash tests/sanity/run.sh

lint: venv
	ansible-lint
	antsibull-changelog lint
	ruff check .
	ruff format --check .
	@for m in $(MODULES); do \
	  ansible-doc -t module torchswarm.ddp.$$m >/dev/null || { echo "ansible-doc cannot render $$m"; exit 1; }; done
	@for f in $(FILTERS); do \
	  ansible-doc -t filter torchswarm.ddp.$$f >/dev/null || { echo "ansible-doc cannot render $$f"; exit 1; }; done
	@for l in script_files job_options data_digest; do \
	  ansible-doc -t lookup torchswarm.ddp.$$l >/dev/null || { echo "ansible-doc cannot render lookup $$l"; exit 1; }; done
	@for r in docker nvidia swarm network validate image job preflight maintenance; do \
	  ansible-doc -t role torchswarm.ddp.$$r >/dev/null || { echo "ansible-doc cannot render role $$r"; exit 1; }; done
	@echo "lint: ok"

unit: venv
	pytest tests/unit

unit-newest: venv-newest
	$(NEWEST) pytest tests/unit

trainer: venv
	pytest tests/training

trainer-image: venv engine
	bash tests/harness/trainer-image.sh

image-test: trainer-image
	pytest tests/image

gpu-check: venv
	cd training && python gpu_check.py

benchmark-trainer: venv
	python benchmarks/trainer_vs_plain.py

benchmark-trainer-exits: venv
	python benchmarks/trainer_exits.py

# The default scenario with the user-script check run ten times in a row (make test runs one).
benchmark-user-script: venv images trainer-image
	TORCHSWARM_USER_SCRIPT_RUNS=10 molecule test -s default

benchmark-recovery: venv
	python benchmarks/recovery.py

benchmark-maintenance: venv
	python benchmarks/maintenance.py

# The stall watchdog: seconds from a rank that stops answering to the next trained step.
benchmark-stall: venv
	python benchmarks/stall.py

benchmark-image: venv images trainer-image
	python benchmarks/image_fanout.py

benchmark-data: venv images
	python benchmarks/data_fanout.py $(if $(BENCH_HOSTS),--hosts $(BENCH_HOSTS))

# After a job option changes in module_utils/_job_options.py (a unit test fails until this ran).
doc-fragment: venv
	PYTHONPATH=collections python tests/harness/job_doc_fragment.py

benchmark-site: venv images trainer-image
	python benchmarks/site_vs_by_hand.py $(if $(BENCH_HOSTS),--hosts $(BENCH_HOSTS)) $(if $(BENCH_REPEAT),--repeat $(BENCH_REPEAT))

build-check: venv
	bash tests/collection/build_check.sh

engine:
	bash tests/harness/engine.sh

images: engine
	bash tests/harness/images.sh

molecule-cluster: venv images
	molecule test -s cluster

molecule-default: venv images trainer-image
	molecule test -s default

molecule-registry: venv images trainer-image
	molecule test -s registry

# The execution environment: ansible-builder on a local Debian 13 base, offline (tests/harness/ee.sh).
ee: venv venv-newest images
	bash tests/harness/ee.sh

molecule-gpu: venv-newest images trainer-image ee
	$(NEWEST) molecule test -s gpu

clean:
	-molecule destroy -s cluster
	-molecule destroy -s default
	-molecule destroy -s registry
	-molecule destroy -s gpu
	rm -rf $(VENV) $(VENV_NEWEST) .ansible *.tar.gz
