# Copyright (c) cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures: start the simulator in a thread on port 0 and talk to it over real HTTP."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import importlib.util
import os
import socket
import sys
import threading

import pytest
import requests


SIM_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIM_PATH = os.path.join(SIM_DIR, "cortecs_sim.py")
SPEC_PATH = os.path.join(SIM_DIR, "openapi.json")
SEED_EXAMPLE = os.path.join(SIM_DIR, "seed-example.json")

ADMIN = "sim-admin-key"
PLAIN = "sim-plain-key"
MEMBER = "sim-member-key"


def load_sim_module():
    """Import tests/simulator/cortecs_sim.py by path (it is not a package)."""
    if "cortecs_sim" in sys.modules:
        return sys.modules["cortecs_sim"]
    spec = importlib.util.spec_from_file_location("cortecs_sim", SIM_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cortecs_sim"] = module
    spec.loader.exec_module(module)
    return module


class RunningSim:
    """A simulator server running in a background thread plus a small HTTP client."""

    def __init__(self, config):
        self.module = load_sim_module()
        cfg = {"port": 0, "quiet": True}
        cfg.update(config)
        self.server = self.module.make_server(cfg)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.5})
        self.thread.daemon = True
        self.thread.start()
        self.root = self.server.root_url
        self.base = self.server.base_url
        self.session = requests.Session()

    def close(self):
        self.session.close()
        # shutdown() only returns once serve_forever() notices the request; poke the
        # listening socket so that happens at once instead of after a poll interval.
        stopper = threading.Thread(target=self.server.shutdown)
        stopper.start()
        while stopper.is_alive():
            try:
                socket.create_connection(self.server.server_address[:2], timeout=1).close()
            except OSError:
                pass
            stopper.join(0.01)
        self.server.server_close()
        self.thread.join(5)

    def api(self, method, path, token=ADMIN, json=None, headers=None, data=None, session=None):
        """Call /v1<path>; token=None sends no Authorization header."""
        hdrs = {}
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        return (session or self.session).request(method, self.base + path, json=json, data=data, headers=hdrs, timeout=10)

    def side(self, method, name, json=None):
        resp = self.session.request(method, self.root + "/_sim/" + name, json=json, timeout=10)
        return resp

    def side_ok(self, method, name, json=None):
        resp = self.side(method, name, json)
        if resp.status_code != 200:
            raise AssertionError("side endpoint %s %s failed: %s %s" % (method, name, resp.status_code, resp.text))
        return resp.json()

    def config(self, token=ADMIN):
        resp = self.api("GET", "/manage/project-configs", token=token)
        if resp.status_code != 200:
            raise AssertionError(resp.text)
        return resp.json()

    def key_names(self, token=ADMIN):
        resp = self.api("GET", "/manage/api-keys", token=token)
        if resp.status_code != 200:
            raise AssertionError(resp.text)
        return [k["name"] for k in resp.json()["api_keys"]]


@pytest.fixture(scope="session")
def sim_module():
    return load_sim_module()


@pytest.fixture
def start_sim():
    """Factory: start_sim(**config) -> RunningSim, stopped at teardown."""
    started = []

    def _start(**config):
        running = RunningSim(config)
        started.append(running)
        return running

    yield _start
    for running in started:
        running.close()


@pytest.fixture
def sim(start_sim):
    """Default tenants plus env01..env02."""
    return start_sim(projects=2)
