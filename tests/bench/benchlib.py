# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Shared plumbing of `make bench` and `make chaos`: the simulator, the fleet inventory, timed playbook runs.

Nothing here is collection logic: it starts tests/simulator/cortecs_sim.py on a free port, writes an
inventory of N environments (env01..envNN, one management key each) into build/, makes this checkout
importable as cortecs.management, and runs ansible-playbook with time.monotonic() around the subprocess.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import platform
import re
import resource
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
SIMULATOR = os.path.join(ROOT, 'tests', 'simulator', 'cortecs_sim.py')
URI_PLAYBOOK = os.path.join(HERE, 'uri.yml')
FLOOR_PLAYBOOK = os.path.join(HERE, 'floor.yml')
CALLBACK_DIR = os.path.join(HERE, 'callback_plugins')
ROLE_PLAYBOOK = 'cortecs.management.provision'

# The declared state of every environment (same shape as tests/demo and docs/examples/fleet).
MIN_BALANCE = 5
INFERENCE_CONFIG = dict(eu_native=True, allow_zero_data_retention=True, allowed_providers=['ionos', 'scaleway', 'ovhcloud'], preference='cost')
ALLOW_OVERWRITE = False

RECAP = re.compile(r'^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)', re.M)


def banner(text):
    print('\n' + '=' * 100 + '\n== ' + text + '\n' + '=' * 100, flush=True)


def declared_keys(count):
    """K declared keys per environment; the last one a management key (as in the demo fleet)."""
    keys = [dict(name='svc-%02d' % index) for index in range(1, count + 1)]
    if count > 1:
        keys[-1]['is_management_key'] = True
    return keys


# --- the simulator --------------------------------------------------------------------------------

class Simulator:
    """tests/simulator/cortecs_sim.py in a child process, on a free port, quiet."""

    def __init__(self, workdir, projects, extra_args=()):
        self.workdir = workdir
        self.projects = projects
        port_file = os.path.join(workdir, 'sim.port')
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.log = open(os.path.join(workdir, 'simulator.log'), 'w')
        command = [sys.executable, SIMULATOR, '--host', '127.0.0.1', '--port', '0', '--port-file', port_file,
                   '--projects', str(projects), '--quiet'] + list(extra_args)
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


# --- the fleet --------------------------------------------------------------------------------------

def collections_path(workdir):
    """Make this checkout importable as cortecs.management without installing it."""
    base = os.path.join(workdir, 'collections')
    namespace = os.path.join(base, 'ansible_collections', 'cortecs')
    link = os.path.join(namespace, 'management')
    if not os.path.islink(link):
        os.makedirs(namespace, exist_ok=True)
        os.symlink(ROOT, link)
    return base


def yaml_value(value):
    """JSON is YAML: good enough for the generated inventory."""
    return json.dumps(value)


def write_inventory(workdir, sim, keys, purge=True):
    """build/<...>/inventory/: one host per simulated environment, the shared declaration in group_vars."""
    inventory = os.path.join(workdir, 'inventory')
    shutil.rmtree(inventory, ignore_errors=True)
    os.makedirs(os.path.join(inventory, 'group_vars'))
    hosts = sim.environments()
    lines = ['---', '# Generated by tests/bench for a simulator at %s; do not edit.' % sim.url, 'all:', '  hosts:']
    for host in hosts:
        lines.append('    %s: {cortecs_project_management_key: %s}' % (host, yaml_value('sim-%s-admin' % host)))
    with open(os.path.join(inventory, 'hosts.yml'), 'w') as handle:
        handle.write('\n'.join(lines) + '\n')
    group_vars = [
        '---',
        'ansible_connection: local',
        'ansible_python_interpreter: "{{ ansible_playbook_python }}"',
        'cortecs_project_base_url: %s' % yaml_value(sim.url + '/v1'),
        'cortecs_project_min_balance: %s' % yaml_value(MIN_BALANCE),
        'cortecs_project_inference_config: %s' % yaml_value(INFERENCE_CONFIG),
        'cortecs_project_allow_overwrite: %s' % yaml_value(ALLOW_OVERWRITE),
        'cortecs_project_api_keys: %s' % yaml_value(keys),
        'cortecs_project_purge_keys: %s' % yaml_value(purge),
        'cortecs_project_secret_dir: "{{ bench_secret_root }}/{{ inventory_hostname }}"',
    ]
    with open(os.path.join(inventory, 'group_vars', 'all.yml'), 'w') as handle:
        handle.write('\n'.join(group_vars) + '\n')
    return inventory, hosts


def ansible_env(workdir, extra=None):
    """The environment of every run: no user ansible.cfg, no stray ANSIBLE_*/CORTECS_* settings."""
    config = os.path.join(workdir, 'ansible.cfg')
    with open(config, 'w') as handle:
        handle.write('# Generated by tests/bench: isolates the runs from any user configuration.\n[defaults]\n')
    env = dict(os.environ)
    for name in list(env):
        if name.startswith('ANSIBLE_') or name.startswith('CORTECS_'):
            del env[name]
    env.update(
        ANSIBLE_COLLECTIONS_PATH=collections_path(workdir),
        ANSIBLE_FORCE_COLOR='0',
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_LOCALHOST_WARNING='0',
        ANSIBLE_INVENTORY_UNPARSED_WARNING='0',
        ANSIBLE_RETRY_FILES_ENABLED='0',
        ANSIBLE_HOST_KEY_CHECKING='0',
        ANSIBLE_LOCAL_TEMP=os.path.join(workdir, 'ansible-tmp', 'local'),
        ANSIBLE_REMOTE_TEMP=os.path.join(workdir, 'ansible-tmp', 'remote'),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_CONFIG=config,
    )
    env.update(extra or {})
    return env


def ansible_playbook():
    candidate = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    if os.path.exists(candidate):
        return candidate
    found = shutil.which('ansible-playbook')
    if not found:
        raise SystemExit('ansible-playbook not found next to %s or on PATH' % sys.executable)
    return found


def recap(output):
    """Per-host counts from the PLAY RECAP."""
    hosts = {}
    for match in RECAP.finditer(output):
        values = [int(v) for v in match.groups()[1:]]
        hosts[match.group(1)] = dict(zip(('ok', 'changed', 'unreachable', 'failed', 'skipped', 'rescued', 'ignored'), values))
    return hosts


def run_playbook(env, inventory, playbook, forks, log_path, extra_args=()):
    """One timed ansible-playbook run.

    Returns dict(wall=seconds (time.monotonic around the subprocess), cpu=user+system seconds of ansible-playbook
    and all its workers and modules, rc, output, recap=per-host counts).
    """
    command = [ansible_playbook(), '-i', inventory, '-f', str(forks), playbook] + list(extra_args)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, cwd=os.path.dirname(inventory), check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    with open(log_path, 'w') as handle:
        handle.write('$ %s\n# wall %.3f s, cpu %.3f s, exit %d\n\n' % (' '.join(command), wall, cpu, proc.returncode))
        handle.write(proc.stdout)
    return dict(wall=wall, cpu=cpu, rc=proc.returncode, output=proc.stdout, recap=recap(proc.stdout))


def per_env(counters, hosts):
    """Reads and writes per environment from /_sim/counters by_project (mean and max over the fleet)."""
    by_project = counters.get('by_project', {})
    reads = [by_project.get(host, {}).get('reads', 0) for host in hosts]
    writes = [by_project.get(host, {}).get('writes', 0) for host in hosts]
    count = max(1, len(hosts))
    return dict(
        reads=counters['total']['reads'], writes=counters['total']['writes'],
        reads_per_env=sum(reads) / float(count), writes_per_env=sum(writes) / float(count),
        max_reads_per_env=max(reads) if reads else 0, max_writes_per_env=max(writes) if writes else 0,
        unattributed=counters.get('by_project', {}).get('unauthenticated', {}),
    )


def machine_facts():
    facts = dict(
        cpus=os.cpu_count(),
        platform=platform.platform(),
        python=platform.python_version(),
        loadavg_at_start=[round(x, 2) for x in os.getloadavg()],
    )
    try:
        with open('/proc/cpuinfo') as handle:
            models = [line.split(':', 1)[1].strip() for line in handle if line.startswith('model name')]
        if models:
            facts['cpu_model'] = models[0]
    except (IOError, OSError):
        pass
    try:
        import ansible.release
        facts['ansible_core'] = ansible.release.__version__
    except ImportError:
        facts['ansible_core'] = None
    return facts
