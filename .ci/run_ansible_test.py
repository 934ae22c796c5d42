# Copyright (c) cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run ansible-test on a copy of this collection, without Docker.

Usage (with the Python of the venv whose ansible-test should run)::

    .venv/bin/python .ci/run_ansible_test.py [--fresh] [--keep] sanity|units|integration [options]
    .venv/bin/python .ci/run_ansible_test.py --clean

What it does:

* syncs the work tree (tracked files plus untracked files that are not ignored, and ``.git``;
  never ``tests/output``, venvs or build output) into a copy at
  ``$TMPDIR/cortecs-ansible-test-<uid>/<hash of this path>/pyX.Y/ansible_collections/cortecs/management``
  -- ansible-test only works from such a path, and a symlink is not enough. The copy is kept
  between runs (ansible-test then reuses the venv it made in the copy's tests/output/.tmp) and
  locked while in use; if it is busy, or with ``--fresh``, a throwaway copy is used (``--keep``
  keeps that one). ``--clean`` removes the kept copies of this work tree;
* places .ci/get_pip.py where ansible-test looks for its pip bootstrap script
  (``~/.ansible/test/cache/get_pip_<pip version>.py``, the version ansible-test pins);
* runs ``ansible-test <args> --venv --python X.Y`` (X.Y = this interpreter's version) there;
* copies the copy's ``tests/output`` (minus ``.tmp``) back into the work tree;
* stops processes still running from the copy when ansible-test ends or is interrupted (SIGTERM);
* for ``sanity``: fails if ``tests/sanity/ignore-*.txt`` has any entry (none are allowed).

The exit code is ansible-test's, or 1 for sanity ignore entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import typing as t

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMESPACE, NAME = 'cortecs', 'management'

# Never copied: ansible-test output, virtual environments, build output and caches.
EXCLUDED_TOP = ('tests/output', 'build', 'collections', '.ansible', '.pytest_cache')
EXCLUDED_TOP_PREFIXES = ('.venv',)
# Not copied back from the copy's tests/output.
OUTPUT_SKIP = ('.tmp',)


def log(msg: str) -> None:
    """Print a progress line of this wrapper."""
    print('[run_ansible_test] %s' % msg, flush=True)


def excluded(path: str) -> bool:
    """Return True if a repository-relative path must not be copied."""
    top = path.split('/', 1)[0]
    if top.startswith(EXCLUDED_TOP_PREFIXES):
        return True
    if '__pycache__' in path.split('/'):
        return True
    return any(path == item or path.startswith(item + '/') for item in EXCLUDED_TOP)


def work_tree_files() -> list[str]:
    """Tracked files and untracked files that are not ignored, relative to ROOT."""
    out = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                         cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout
    paths = sorted({p for p in out.decode('utf-8', 'surrogateescape').split('\0') if p})
    return [p for p in paths if not excluded(p) and os.path.lexists(os.path.join(ROOT, p))]


def copy_git_dir(dest: str) -> None:
    """Replace dest/.git with a fresh copy of the work tree's .git."""
    target = os.path.join(dest, '.git')
    if os.path.islink(target) or os.path.isfile(target):
        os.remove(target)
    elif os.path.isdir(target):
        shutil.rmtree(target)
    git_dir = os.path.join(ROOT, '.git')
    if os.path.isdir(git_dir):
        shutil.copytree(git_dir, target, symlinks=True)
    elif os.path.isfile(git_dir):  # a worktree or submodule: .git is a pointer file
        shutil.copy2(git_dir, target)


def sync_tree(dest: str) -> tuple[int, int]:
    """Make dest a copy of the work tree (files listed by git, plus .git), keeping dest/tests/output.

    Returns (number of files, number of files copied or removed).
    """
    files = work_tree_files()
    wanted = set(files)
    changes = 0
    if os.path.isdir(dest):
        for dirpath, dirnames, filenames in os.walk(dest):
            rel_dir = os.path.relpath(dirpath, dest)
            rel_dir = '' if rel_dir == '.' else rel_dir + '/'
            if not rel_dir:
                dirnames[:] = [d for d in dirnames if d != '.git']
            if rel_dir == 'tests/':
                dirnames[:] = [d for d in dirnames if d != 'output']
            for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                if rel_dir + name not in wanted:
                    os.remove(os.path.join(dirpath, name))
                    changes += 1
    for rel in files:
        src = os.path.join(ROOT, rel)
        dst = os.path.join(dest, rel)
        if os.path.islink(src):
            if os.path.islink(dst) and os.readlink(dst) == os.readlink(src):
                continue
            if os.path.lexists(dst):
                os.remove(dst)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.symlink(os.readlink(src), dst)
        else:
            if not os.path.islink(dst) and os.path.isfile(dst):
                s_stat, d_stat = os.stat(src), os.stat(dst)
                if (s_stat.st_size, s_stat.st_mtime_ns, s_stat.st_mode) == (d_stat.st_size, d_stat.st_mtime_ns, d_stat.st_mode):
                    continue
            if os.path.lexists(dst):
                os.remove(dst)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst)
        changes += 1
    copy_git_dir(dest)
    return len(files), changes


def pip_version() -> str:
    """The pip version ansible-test bootstraps into its virtual environments."""
    spec = importlib.util.find_spec('ansible_test')
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit('ansible-test is not installed for %s' % sys.executable)
    base = list(spec.submodule_search_locations)[0]
    with open(os.path.join(base, '_internal', 'python_requirements.py'), encoding='utf-8') as handle:
        match = re.search(r"\bpip='([0-9.]+)'", handle.read())
    if not match:
        raise SystemExit('cannot find the pip version pinned by ansible-test in %s' % base)
    return match.group(1)


def install_get_pip_shim() -> str:
    """Put .ci/get_pip.py where ansible-test looks for its cached get-pip script."""
    version = pip_version()
    target = os.path.expanduser('~/.ansible/test/cache/get_pip_%s.py' % version.replace('.', '_'))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(os.path.join(ROOT, '.ci', 'get_pip.py'), target)
    return target


def copy_output_back(dest: str) -> None:
    """Copy the copy's tests/output (junit, coverage, bot results) back into the work tree."""
    src = os.path.join(dest, 'tests', 'output')
    if not os.path.isdir(src):
        return
    out = os.path.join(ROOT, 'tests', 'output')
    for entry in os.listdir(src):
        if entry in OUTPUT_SKIP:
            continue
        shutil.copytree(os.path.join(src, entry), os.path.join(out, entry), symlinks=True, dirs_exist_ok=True)


def copies_root() -> str:
    """Directory holding the reusable copies of this work tree (one per Python version)."""
    key = hashlib.sha1(ROOT.encode('utf-8', 'surrogateescape')).hexdigest()[:10]
    return os.path.join(tempfile.gettempdir(), 'cortecs-ansible-test-%d' % os.getuid(), key)


@contextlib.contextmanager
def collection_copy(fresh: bool, keep: bool) -> t.Iterator[str]:
    """Yield the path of an up-to-date copy at .../ansible_collections/cortecs/management.

    By default the copy is kept between runs (so ansible-test can reuse the virtual environment it
    creates under tests/output/.tmp) and locked while in use; when it is busy, or with fresh=True,
    a throwaway copy is used instead and removed afterwards unless keep=True.
    """
    base = os.path.join(copies_root(), 'py%d.%d' % sys.version_info[:2])
    lock_handle = None
    if not fresh:
        os.makedirs(copies_root(), exist_ok=True)
        lock_handle = open(base + '.lock', 'w', encoding='utf-8')  # pylint: disable=consider-using-with
        try:
            fcntl.flock(lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            log('reusable copy %s is in use by another run: using a throwaway copy' % base)
            lock_handle.close()
            lock_handle = None
    if lock_handle is None:
        base = tempfile.mkdtemp(prefix='cortecs-ansible-test-')
    dest = os.path.join(base, 'ansible_collections', NAMESPACE, NAME)
    try:
        try:
            count, changes = sync_tree(dest)
        except OSError as ex:  # an odd leftover (a file where a folder should be): start over
            log('resync failed (%s): copying again' % ex)
            shutil.rmtree(dest, ignore_errors=True)
            count, changes = sync_tree(dest)
        log('copy of %d files at %s (%d updated)' % (count, dest, changes))
        yield dest
    finally:
        if lock_handle is not None:
            lock_handle.close()
        elif keep:
            log('kept %s' % base)
        else:
            shutil.rmtree(base, ignore_errors=True)


def stop_leftovers(dest: str) -> None:
    """Stop processes still running from the copy: background servers of an integration target
    that was interrupted (the copy's path is unique to this run and locked, so they are ours)."""
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as handle:
                cmdline = handle.read().replace(b'\0', b' ').decode('utf-8', 'replace')
        except OSError:
            continue
        if dest + '/' in cmdline:
            pids.append(int(entry))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    if pids:
        log('stopped %d leftover process(es) started from the copy: %s' % (len(pids), ' '.join(map(str, pids))))


def sanity_ignore_entries() -> list[str]:
    """Entries in tests/sanity/ignore-*.txt: this collection allows none."""
    entries = []
    folder = os.path.join(ROOT, 'tests', 'sanity')
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if name.startswith('ignore-') and name.endswith('.txt'):
            with open(os.path.join(folder, name), encoding='utf-8') as handle:
                entries += ['tests/sanity/%s: %s' % (name, line.strip()) for line in handle
                            if line.strip() and not line.lstrip().startswith('#')]
    return entries


def main(argv: list[str]) -> int:
    """Entry point."""
    options = {'--keep': False, '--fresh': False, '--clean': False}
    while argv and argv[0] in options:
        options[argv[0]] = True
        argv = argv[1:]
    if options['--clean']:
        shutil.rmtree(copies_root(), ignore_errors=True)
        log('removed %s' % copies_root())
        return 0
    if not argv or argv[0] in ('-h', '--help'):
        print(__doc__)
        return 0 if argv else 2

    bindir = os.path.dirname(sys.executable)  # the venv's bin/, not resolved: keeps the venv
    ansible_test = os.path.join(bindir, 'ansible-test')
    if not os.path.exists(ansible_test):
        raise SystemExit('%s not found: run this with the Python of a venv that has ansible-core' % ansible_test)

    args = list(argv)
    if not {'--venv', '--docker', '--remote', '--controller', '--target'} & set(args):
        args.append('--venv')
    if '--python' not in args:
        args += ['--python', '%d.%d' % sys.version_info[:2]]

    shim = install_get_pip_shim()
    log('get-pip shim for pip %s at %s' % (pip_version(), shim))
    with collection_copy(fresh=options['--fresh'] or options['--keep'], keep=options['--keep']) as dest:
        env = dict(os.environ)
        # ansible-test looks up pythonX.Y on PATH: let it find this venv's interpreter first,
        # not a broken pyenv shim.
        env['PATH'] = bindir + os.pathsep + env.get('PATH', '')
        env.pop('ANSIBLE_COLLECTIONS_PATH', None)
        env.pop('ANSIBLE_COLLECTIONS_PATHS', None)
        cmd = [ansible_test] + args
        log('running: %s' % ' '.join(cmd))
        # A SIGTERM (make test's step timeout, CI) ends ansible-test and then the processes it left.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
        try:
            result = subprocess.run(cmd, cwd=dest, env=env, check=False)
        finally:
            stop_leftovers(dest)
        copy_output_back(dest)
        log('ansible-test %s exited with %d' % (args[0], result.returncode))
    if args[0] == 'sanity':
        entries = sanity_ignore_entries()
        if entries:
            print('ERROR: sanity ignore entries are not allowed in this collection; fix the code instead:')
            print('\n'.join('ERROR: ' + entry for entry in entries))
            return 1
    return result.returncode


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
