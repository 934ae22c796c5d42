# Copyright (c) cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the collection and check the artifact (``make build``).

1. ``ansible-galaxy collection build`` into build/, from a copy of the files git lists (so local
   venvs and caches cannot leak in); the artifact must not contain hidden files or caches;
2. ``ansible-galaxy collection install --offline`` of that tarball into a temporary collections path;
3. ``ansible-doc cortecs.management.<module>`` for every module under plugins/modules, from the
   installed copy;
4. ``python -m galaxy_importer.main <tarball>`` (what Galaxy runs on upload; its optional
   ansible-lint pass is left to ``make lint``);
5. if meta/execution-environment.yml exists: ``ansible-builder introspect --sanitize`` on the
   installed collection must list ``requests``;
6. if docs/examples/execution-environment/execution-environment.yml exists: ``ansible-builder create``
   accepts it (writes the build context into a temporary directory; no container engine needed).

Every check runs even if an earlier one failed (as far as it can); exit code 1 if any failed.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

from run_ansible_test import work_tree_files

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
        start = time.monotonic()
        result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False, **kwargs)
        sys.stdout.write(result.stdout)
        self.report(label, result.returncode == 0, 'exit code %d' % result.returncode, time.monotonic() - start)
        return result

    def report(self, label: str, ok: bool, why: str = '', seconds: float | None = None) -> None:
        """Print the outcome of one check."""
        took = ' [%.1fs]' % seconds if seconds is not None else ''
        if ok:
            print('build check PASS: %s%s' % (label, took), flush=True)
        else:
            self.failed.append(label)
            print('build check FAIL: %s%s%s' % (label, ' (%s)' % why if why else '', took), flush=True)


def module_names() -> list[str]:
    """Names of the modules in plugins/modules of the work tree."""
    names = []
    for path in sorted(glob.glob(os.path.join(ROOT, 'plugins', 'modules', '*.py'))):
        name = os.path.splitext(os.path.basename(path))[0]
        if name != '__init__':
            names.append(name)
    return names


def check_module_docs(checks: Checks, env: dict[str, str]) -> None:
    """ansible-doc for every module: exit code 0 is not enough, it only warns about missing or broken docs."""
    names = ['%s.%s.%s' % (NAMESPACE, NAME, module) for module in module_names()]
    if not names:
        print('no modules under plugins/modules yet')
        return
    cmd = [tool('ansible-doc'), '-t', 'module']
    print('+ %s' % ' '.join(cmd + names), flush=True)
    start = time.monotonic()
    result = subprocess.run(cmd + names, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
                            env=env, stdin=subprocess.DEVNULL)
    problems = re.findall(r'^\[(?:WARNING|ERROR)\].*$', result.stdout, re.MULTILINE)
    print('(%d lines of documentation)' % len(result.stdout.splitlines()))
    if problems:
        print('\n'.join(problems))
    checks.report('ansible-doc for %d modules (%s)' % (len(names), ', '.join(module_names())),
                  result.returncode == 0 and not problems, 'exit code %d, %d warning(s)' % (result.returncode, len(problems)),
                  time.monotonic() - start)


def unexpected_in_artifact(name: str) -> bool:
    """True for hidden files and folders, Python caches and ansible-test output."""
    parts = name.split('/')
    return (any(part.startswith('.') or part == '__pycache__' for part in parts)
            or name.endswith(('.pyc', '.pyo')) or name.startswith('tests/output/'))


def check_artifact_contents(checks: Checks, tarball: str) -> None:
    """The artifact must not carry hidden folders, caches or compiled files (build_ignore gaps)."""
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    unexpected = sorted(name for name in names if unexpected_in_artifact(name))
    for name in unexpected[:20]:
        print('  unexpected in artifact: %s' % name)
    checks.report('artifact has %d files, none hidden or cached' % len(names), not unexpected,
                  '%d unexpected path(s); add them to build_ignore in galaxy.yml' % len(unexpected))


def main() -> int:
    """Entry point."""
    # galaxy-importer and ansible-builder look up ansible-doc, ansible-lint, ... on PATH.
    os.environ['PATH'] = BINDIR + os.pathsep + os.environ.get('PATH', '')
    checks = Checks()
    os.makedirs(BUILD, exist_ok=True)
    for old in glob.glob(os.path.join(BUILD, '%s-%s-*.tar.gz' % (NAMESPACE, NAME))):
        os.remove(old)

    tmp = tempfile.mkdtemp(prefix='cortecs-build-check-')
    try:
        # Build from the files git lists (as a release from a clean checkout would), so that local
        # venvs, caches and test output never end up in the artifact.
        source = os.path.join(tmp, 'source')
        files = work_tree_files()
        for rel in files:
            os.makedirs(os.path.dirname(os.path.join(source, rel)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), os.path.join(source, rel), follow_symlinks=False)
        print('building from a copy of the %d files git lists (tracked, and untracked but not ignored)' % len(files))
        checks.run('ansible-galaxy collection build',
                   [tool('ansible-galaxy'), 'collection', 'build', '--force', '--output-path', BUILD, source])
        tarballs = glob.glob(os.path.join(BUILD, '%s-%s-*.tar.gz' % (NAMESPACE, NAME)))
        if len(tarballs) != 1:
            checks.report('one tarball in build/', False, 'found %d' % len(tarballs))
            return 1
        tarball = tarballs[0]
        print('artifact: %s (%d bytes)' % (os.path.relpath(tarball, ROOT), os.path.getsize(tarball)))
        check_artifact_contents(checks, tarball)

        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=tmp)
        result = checks.run('offline install', [tool('ansible-galaxy'), 'collection', 'install', '--offline',
                                                '--force', '-p', tmp, tarball], env=env)
        installed = os.path.join(tmp, 'ansible_collections', NAMESPACE, NAME)
        if result.returncode == 0:
            check_module_docs(checks, env)

            ee_file = os.path.join(installed, 'meta', 'execution-environment.yml')
            if os.path.exists(ee_file):
                result = checks.run('ansible-builder introspect',
                                    [tool('ansible-builder'), 'introspect', '--sanitize', tmp])
                listed = re.search(r'^\s*-?\s*[\'"]?requests\b', result.stdout, re.MULTILINE | re.IGNORECASE)
                checks.report('ansible-builder introspect lists requests', bool(listed))
            else:
                print('meta/execution-environment.yml not present: execution environment check skipped')

        ee_example = os.path.join(ROOT, 'docs', 'examples', 'execution-environment', 'execution-environment.yml')
        if os.path.exists(ee_example):
            checks.run('ansible-builder create (example execution environment)',
                       [tool('ansible-builder'), 'create', '-f', ee_example, '-c', os.path.join(tmp, 'ee-context')])

        # galaxy-importer writes importer_result.json into its working directory.
        importer_cwd = os.path.join(tmp, 'importer')
        os.makedirs(importer_cwd)
        # Its own ansible-lint run is switched off: it takes minutes here, only ever warns, and
        # `make lint` runs ansible-lint with the stricter production profile on the whole repo.
        result = checks.run('galaxy-importer', [sys.executable, '-m', 'galaxy_importer.main', tarball], cwd=importer_cwd,
                            env=dict(os.environ, GALAXY_IMPORTER_RUN_ANSIBLE_LINT='false'))
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
