# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Run this checkout of the collection against the simulator: shared by `make demo`, `make bench` and `make chaos`.

Starts tests/simulator/cortecs_sim.py as a child process on a free port, talks to its /_sim endpoints, makes
the checkout importable as cortecs.management without installing it, and finds ansible-playbook.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import shutil
import subprocess
import sys
import time

try:
    from urllib.request import Request, urlopen
except ImportError:  # pragma: no cover
    pass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SIMULATOR = os.path.join(HERE, 'cortecs_sim.py')


class Simulator:
    """The simulator in a child process on a free port; its log in <workdir>/simulator.log."""

    def __init__(self, workdir, projects, extra_args=(), quiet=True):
        self.workdir = workdir
        self.projects = projects
        port_file = os.path.join(workdir, 'sim.port')
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.log = open(os.path.join(workdir, 'simulator.log'), 'w')
        command = [sys.executable, SIMULATOR, '--host', '127.0.0.1', '--port', '0', '--port-file', port_file,
                   '--projects', str(projects)] + (['--quiet'] if quiet else []) + list(extra_args)
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit('the simulator exited early (code %s); see %s' % (self.proc.returncode, self.log.name))
            text = open(port_file).read().strip() if os.path.exists(port_file) else ''
            if text:
                self.url = 'http://127.0.0.1:%s' % text
                return
            time.sleep(0.05)
        self.stop()
        raise SystemExit('the simulator did not start within 30 s; see %s' % self.log.name)

    def call(self, path, method='GET', body=None, token=None):
        data = None
        headers = {}
        if body is not None or method == 'POST':
            data = json.dumps(body if body is not None else {}).encode()
            headers['Content-Type'] = 'application/json'
        if token:
            headers['Authorization'] = 'Bearer %s' % token
        request = Request(self.url + path, data=data, method=method, headers=headers)
        with urlopen(request, timeout=30) as reply:
            return json.loads(reply.read().decode() or 'null')

    def status_with_token(self, token):
        """HTTP status of GET /v1/manage/api-keys with `token`: 200 management key, 403 plain key, 401 unknown."""
        request = Request(self.url + '/v1/manage/api-keys', headers={'Authorization': 'Bearer %s' % token})
        try:
            with urlopen(request, timeout=30) as reply:
                return reply.status
        except Exception as exc:  # pylint: disable=broad-except
            return getattr(exc, 'code', None)

    def reset(self):
        self.call('/_sim/reset', 'POST')

    def reset_counters(self):
        self.call('/_sim/reset-counters', 'POST')

    def counters(self):
        return self.call('/_sim/counters')

    def state(self):
        return self.call('/_sim/state')

    def set_faults(self, doc):
        return self.call('/_sim/faults', 'POST', doc)

    def environments(self):
        return sorted(name for name in self.state()['projects'] if name != 'default')

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def collections_path(workdir):
    """Make this checkout importable as cortecs.management without installing it."""
    base = os.path.join(workdir, 'collections')
    namespace = os.path.join(base, 'ansible_collections', 'cortecs')
    link = os.path.join(namespace, 'management')
    if not os.path.islink(link):
        os.makedirs(namespace, exist_ok=True)
        os.symlink(ROOT, link)
    return base


def ansible_playbook():
    """ansible-playbook of the running Python's environment (the dev venv), else the one on PATH."""
    candidate = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    if os.path.exists(candidate):
        return candidate
    found = shutil.which('ansible-playbook')
    if not found:
        raise SystemExit('ansible-playbook not found next to %s or on PATH' % sys.executable)
    return found
