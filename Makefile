# semanticsplat_ros — one-command set-up, tests and demo on a plain machine (no GPU, no ROS install).
#   make setup   .venv with pinned deps, semanticsplat_msgs built into it, package editable
#   make test    setup + ruff + pytest
#   make demo    the main job on the embedded synthetic world (writes out/demo/)
#   make bench   benchmarks to JSON (out/bench/) and BENCHMARKS.md figures

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMPS := $(VENV)/.stamps
BUILD := build

MSG_SOURCES := $(shell find msg -type f 2>/dev/null)
DEV_IFACE_SOURCES := $(shell find tools/dev_interfaces -type f 2>/dev/null)

# Keep DDS traffic on this machine (tests also pick a domain id of their own per run).
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export FASTDDS_BUILTIN_TRANSPORTS ?= LARGE_DATA
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup test lint format demo bench clean distclean

setup: $(STAMPS)/package

$(STAMPS)/venv: requirements.txt requirements-core.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# pip warns once per package about local index folders it does not hold; keep the real output.
	set -o pipefail; $(PIP) install --quiet -r requirements.txt 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@mkdir -p $(STAMPS) && touch $@

# Interfaces: generated with the ROS 2 wheels' rosidl and installed into the venv prefix, so they
# import with no environment variables. The stamp depends on every file under msg/.
$(STAMPS)/msgs: $(STAMPS)/venv $(MSG_SOURCES)
	@mkdir -p $(BUILD)
	AMENT_PREFIX_PATH=$(abspath $(VENV)) cmake -S msg -B $(BUILD)/msg -Wno-dev \
	  -DCMAKE_PREFIX_PATH=$(abspath $(VENV)) -DCMAKE_INSTALL_PREFIX=$(abspath $(VENV)) \
	  -DPython3_EXECUTABLE=$(abspath $(PY)) -DBUILD_TESTING=OFF > $(BUILD)/msg.log 2>&1 \
	  || (cat $(BUILD)/msg.log; exit 1)
	cmake --build $(BUILD)/msg -j2 >> $(BUILD)/msg.log 2>&1 || (tail -50 $(BUILD)/msg.log; exit 1)
	cmake --install $(BUILD)/msg >> $(BUILD)/msg.log 2>&1 || (tail -50 $(BUILD)/msg.log; exit 1)
	@touch $@

# tf2_msgs/TFMessage for this pip environment only (no tf2_msgs wheel exists); never shipped or
# installed on a ROS 2 system, where the real tf2_msgs comes with tf2_ros.
$(STAMPS)/dev_interfaces: $(STAMPS)/msgs $(DEV_IFACE_SOURCES)
	AMENT_PREFIX_PATH=$(abspath $(VENV)) cmake -S tools/dev_interfaces/tf2_msgs -B $(BUILD)/tf2_msgs \
	  -Wno-dev -DCMAKE_PREFIX_PATH=$(abspath $(VENV)) -DCMAKE_INSTALL_PREFIX=$(abspath $(VENV)) \
	  -DPython3_EXECUTABLE=$(abspath $(PY)) -DBUILD_TESTING=OFF > $(BUILD)/tf2_msgs.log 2>&1 \
	  || (cat $(BUILD)/tf2_msgs.log; exit 1)
	cmake --build $(BUILD)/tf2_msgs -j2 >> $(BUILD)/tf2_msgs.log 2>&1 || (tail -50 $(BUILD)/tf2_msgs.log; exit 1)
	cmake --install $(BUILD)/tf2_msgs >> $(BUILD)/tf2_msgs.log 2>&1 || (tail -50 $(BUILD)/tf2_msgs.log; exit 1)
	@touch $@

$(STAMPS)/package: $(STAMPS)/dev_interfaces setup.py setup.cfg package.xml
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	@touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(VENV)/bin/pytest

demo: setup
	$(VENV)/bin/semanticsplat demo --out out/demo

bench: setup
	$(VENV)/bin/semanticsplat bench all --out out/bench --markdown BENCHMARKS.md

clean:
	rm -rf $(BUILD) out .pytest_cache .ruff_cache

distclean: clean
	rm -rf $(VENV)
