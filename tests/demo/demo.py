# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""`make demo`: provision a fleet of three environments against the bundled simulator.

Starts the simulator, runs the collection playbook cortecs.management.provision with --check --diff,
then for real, then once more (nothing left to change), shows where the created secrets landed
(paths and modes, never contents) and stops the simulator.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import shutil
import stat
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'simulator'))

from sim_harness import ROOT, Simulator, ansible_playbook, collections_path  # noqa: E402 pylint: disable=wrong-import-position

INVENTORY = os.path.join(HERE, 'inventory')
ENVIRONMENTS = ['env01', 'env02', 'env03']


def banner(text):
    print('\n' + '=' * 78 + '\n== ' + text + '\n' + '=' * 78, flush=True)


def run_playbook(title, sim, env, extra):
    banner(title)
    command = [ansible_playbook(), '-i', INVENTORY, 'cortecs.management.provision'] + extra
    print('$ ansible-playbook ' + ' '.join(command[2:]), flush=True)
    sim.reset_counters()
    started = time.time()
    proc = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    elapsed = time.time() - started
    print(proc.stdout, flush=True)
    if proc.returncode != 0:
        raise SystemExit('ansible-playbook failed (exit %d)' % proc.returncode)
    counters = sim.counters()
    print('API requests seen by the simulator: %d reads, %d writes in %.1f s' % (
        counters['total']['reads'], counters['total']['writes'], elapsed))
    for name in ENVIRONMENTS:
        per = counters['by_project'].get(name, {'reads': 0, 'writes': 0})
        print('  %-6s %d reads, %d writes' % (name, per['reads'], per['writes']))
    return proc.stdout, counters


def changed_counts(output):
    return [int(n) for n in re.findall(r'changed=(\d+)', output)]


def show_secrets(secret_root):
    banner('Where the created secrets landed (paths and modes only, never contents)')
    for dirpath, dirnames, filenames in sorted(os.walk(secret_root)):
        dirnames.sort()
        mode = stat.S_IMODE(os.stat(dirpath).st_mode)
        print('%04o  %s/' % (mode, os.path.relpath(dirpath, os.path.dirname(secret_root))))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            info = os.stat(path)
            print('%04o  %s  (%d bytes)' % (stat.S_IMODE(info.st_mode), os.path.relpath(path, os.path.dirname(secret_root)), info.st_size))


def main():
    workdir = os.path.join(ROOT, 'build', 'demo')
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    secret_root = os.path.join(workdir, 'secrets')
    banner('Starting the Cortecs API simulator with %d environments' % len(ENVIRONMENTS))
    sim = Simulator(workdir, len(ENVIRONMENTS), quiet=False)
    print('simulator: %s/v1  (inventory: %s)' % (sim.url, os.path.relpath(INVENTORY, ROOT)))
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=collections_path(workdir),
        CORTECS_BASE_URL=sim.url + '/v1',
        ANSIBLE_FORCE_COLOR='0',
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_LOCALHOST_WARNING='0',
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    env.pop('CORTECS_MANAGEMENT_KEY', None)
    extra = ['-e', 'cortecs_demo_secret_root=%s' % secret_root]
    try:
        dry, dry_counters = run_playbook('1/3  Dry run: --check --diff shows what would change and writes nothing', sim, env, extra + ['--check', '--diff'])
        if dry_counters['total']['writes'] != 0 or os.path.exists(secret_root):
            raise SystemExit('check mode wrote something: %d API writes' % dry_counters['total']['writes'])
        run_playbook('2/3  Real run: balance guard, settings, keys; secrets go to disk', sim, env, extra)
        again, again_counters = run_playbook('3/3  Second run: everything converged, nothing to do', sim, env, extra)
        if any(changed_counts(again)) or again_counters['total']['writes'] != 0:
            raise SystemExit('the second run was not a no-op: changed=%s, %d writes' % (changed_counts(again), again_counters['total']['writes']))
        show_secrets(secret_root)
        banner('Done: dry run wrote nothing, the real run converged %d environments, the re-run changed nothing' % len(ENVIRONMENTS))
        print('The demo secrets stay in %s; in real life hand them to your vault.' % os.path.relpath(secret_root, ROOT))
    finally:
        sim.stop()
        print('simulator stopped', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
