# Copyright (c) cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``make demo``: start the API simulator on a free port and run playbooks/demo.yml against it.

The playbook gets the simulator through the environment the modules read
(``CORTECS_BASE_URL``, ``CORTECS_MANAGEMENT_KEY``) and as extra variables
(``cortecs_base_url``, ``cortecs_management_key``). This work tree is made visible to Ansible as
the collection cortecs.management. Without playbooks/demo.yml it only shows that the simulator
answers. The simulator is stopped at the end in every case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIMULATOR = os.path.join(ROOT, 'tests', 'simulator', 'cortecs_sim.py')
PLAYBOOK = os.path.join(ROOT, 'playbooks', 'demo.yml')
KEY = os.environ.get('SIM_KEY') or 'sim-admin-key'


def wait_for_port(port_file: str, proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """Return the port the simulator wrote to port_file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit('the simulator exited with code %d' % proc.returncode)
        try:
            with open(port_file, encoding='utf-8') as handle:
                text = handle.read().strip()
            if text:
                return int(text)
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise SystemExit('the simulator did not write %s within %d s' % (port_file, timeout))


def main() -> int:
    """Entry point."""
    if not os.path.exists(SIMULATOR):
        print('%s does not exist' % os.path.relpath(SIMULATOR, ROOT))
        return 1
    with tempfile.TemporaryDirectory(prefix='cortecs-demo-') as tmp:
        port_file = os.path.join(tmp, 'port')
        with subprocess.Popen([sys.executable, SIMULATOR, '--host', '127.0.0.1', '--port', '0',
                               '--port-file', port_file, '--key', KEY, '--quiet'],
                              stdin=subprocess.DEVNULL) as sim:
            try:
                base_url = 'http://127.0.0.1:%d/v1' % wait_for_port(port_file, sim)
                return run_demo(tmp, base_url)
            finally:
                sim.terminate()
                try:
                    sim.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    sim.kill()


def run_demo(tmp: str, base_url: str) -> int:
    """Run the demo playbook (or a simulator check) against base_url."""
    print('simulator: %s (management key %s)' % (base_url, KEY), flush=True)
    if not os.path.exists(PLAYBOOK):
        request = urllib.request.Request(base_url + '/manage/users/balance', headers={'Authorization': 'Bearer ' + KEY})
        with urllib.request.urlopen(request, timeout=10) as reply:
            print('GET /manage/users/balance -> %s' % json.dumps(json.load(reply)))
        print('%s does not exist yet: nothing else to show' % os.path.relpath(PLAYBOOK, ROOT))
        return 0

    # Make this work tree the collection cortecs.management for Ansible.
    collections = os.path.join(tmp, 'collections')
    os.makedirs(os.path.join(collections, 'ansible_collections', 'cortecs'))
    os.symlink(ROOT, os.path.join(collections, 'ansible_collections', 'cortecs', 'management'))
    env = dict(os.environ,
               ANSIBLE_COLLECTIONS_PATH=collections,
               ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               CORTECS_BASE_URL=base_url,
               CORTECS_MANAGEMENT_KEY=KEY)
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), PLAYBOOK,
           '-e', 'cortecs_base_url=%s' % base_url, '-e', 'cortecs_management_key=%s' % KEY]
    inventory = os.path.join(ROOT, 'playbooks', 'inventory')
    if os.path.exists(inventory):
        cmd += ['-i', inventory]
    print('+ %s' % ' '.join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode


if __name__ == '__main__':
    sys.exit(main())
