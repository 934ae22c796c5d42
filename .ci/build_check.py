# Copyright (c) cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the collection and check the artifact (``make build``).

1. ``ansible-galaxy collection build`` into build/;
2. ``ansible-galaxy collection install --offline`` of that tarball into a temporary collections path;
3. ``ansible-doc cortecs.management.<module>`` for every module under plugins/modules, from the
   installed copy;
4. ``python -m galaxy_importer.main <tarball>`` (what Galaxy runs on upload);
5. if meta/execution-environment.yml exists: ``ansible-builder introspect --sanitize`` on the
   installed collection must list ``requests``.

Every check runs even if an earlier one failed (as far as it can); exit code 1 if any failed.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, 'build')
BINDIR = os.path.dirname(sys.executable)
NAMESPACE, NAME = 'cortecs', 'management'


def tool(name: str) -> str:
    """Path of a console script of this venv."""
    return os.path.join(BINDIR, name)


class Checks:
    """Runs commands as named checks and remembers which failed."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def run(self, label: str, cmd: list[str], **kwargs) -> subprocess.CompletedProcess | None:
        """Run cmd, echo its output, print PASS/FAIL for label."""
        print('+ %s' % ' '.join(cmd), flush=True)
        result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False, **kwargs)
        sys.stdout.write(result.stdout)
        self.report(label, result.returncode == 0, 'exit code %d' % result.returncode)
        return result

    def report(self, label: str, ok: bool, why: str = '') -> None:
        """Print the outcome of one check."""
        if ok:
            print('build check PASS: %s' % label, flush=True)
        else:
            self.failed.append(label)
            print('build check FAIL: %s%s' % (label, ' (%s)' % why if why else ''), flush=True)


def module_names() -> list[str]:
    """Names of the modules in plugins/modules of the work tree."""
    names = []
    for path in sorted(glob.glob(os.path.join(ROOT, 'plugins', 'modules', '*.py'))):
        name = os.path.splitext(os.path.basename(path))[0]
        if name != '__init__':
            names.append(name)
    return names


def main() -> int:
    """Entry point."""
    checks = Checks()
    os.makedirs(BUILD, exist_ok=True)
    for old in glob.glob(os.path.join(BUILD, '%s-%s-*.tar.gz' % (NAMESPACE, NAME))):
        os.remove(old)

    checks.run('ansible-galaxy collection build',
               [tool('ansible-galaxy'), 'collection', 'build', '--force', '--output-path', BUILD, ROOT])
    tarballs = glob.glob(os.path.join(BUILD, '%s-%s-*.tar.gz' % (NAMESPACE, NAME)))
    if len(tarballs) != 1:
        checks.report('one tarball in build/', False, 'found %d' % len(tarballs))
        return 1
    tarball = tarballs[0]
    print('artifact: %s (%d bytes)' % (os.path.relpath(tarball, ROOT), os.path.getsize(tarball)))

    tmp = tempfile.mkdtemp(prefix='cortecs-build-check-')
    try:
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=tmp)
        result = checks.run('offline install', [tool('ansible-galaxy'), 'collection', 'install', '--offline',
                                                '--force', '-p', tmp, tarball], env=env)
        installed = os.path.join(tmp, 'ansible_collections', NAMESPACE, NAME)
        if result.returncode == 0:
            modules = module_names()
            if not modules:
                print('no modules under plugins/modules yet')
            for module in modules:
                checks.run('ansible-doc %s.%s.%s' % (NAMESPACE, NAME, module),
                           [tool('ansible-doc'), '-t', 'module', '%s.%s.%s' % (NAMESPACE, NAME, module)],
                           env=env, stdin=subprocess.DEVNULL)

            ee_file = os.path.join(installed, 'meta', 'execution-environment.yml')
            if os.path.exists(ee_file):
                result = checks.run('ansible-builder introspect',
                                    [tool('ansible-builder'), 'introspect', '--sanitize', tmp])
                listed = re.search(r'^\s*-?\s*requests\b', result.stdout, re.MULTILINE | re.IGNORECASE)
                checks.report('ansible-builder introspect lists requests', bool(listed))
            else:
                print('meta/execution-environment.yml not present: execution environment check skipped')

        # galaxy-importer writes importer_result.json into its working directory.
        importer_cwd = os.path.join(tmp, 'importer')
        os.makedirs(importer_cwd)
        result = checks.run('galaxy-importer', [sys.executable, '-m', 'galaxy_importer.main', tarball], cwd=importer_cwd)
        warnings = [line for line in result.stdout.splitlines() if line.startswith('WARNING')]
        if warnings:
            print('galaxy-importer reported %d warning(s):' % len(warnings))
            print('\n'.join('  ' + line for line in warnings))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if checks.failed:
        print('build checks failed: %s' % ', '.join(checks.failed))
        return 1
    print('all build checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
