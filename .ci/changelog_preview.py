# Copyright (c) cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Regenerate CHANGELOG.rst as a preview of the next release, without releasing.

``antsibull-changelog release`` moves the fragments into changelogs/changelog.yaml and deletes them
(keep_fragments: false). Until the release is cut, this script runs the release in a temporary copy of
the work tree (tracked and untracked-but-not-ignored files) and copies only CHANGELOG.rst back, so the
fragments stay where they are. Usage: ``.venv/bin/python .ci/changelog_preview.py [VERSION]``; VERSION
defaults to the version in galaxy.yml.

To cut the release for real, run ``antsibull-changelog release --version <VERSION>`` in the work tree
and commit CHANGELOG.rst, changelogs/changelog.yaml and the removed fragments.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINDIR = os.path.dirname(sys.executable)


def galaxy_version() -> str:
    """The version in galaxy.yml."""
    with open(os.path.join(ROOT, 'galaxy.yml'), encoding='utf-8') as handle:
        match = re.search(r'^version:\s*[\'"]?([^\s\'"]+)', handle.read(), re.MULTILINE)
    if not match:
        raise SystemExit('no version in galaxy.yml')
    return match.group(1)


def main() -> int:
    """Entry point."""
    version = sys.argv[1] if len(sys.argv) > 1 else galaxy_version()
    files = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT,
                           stdout=subprocess.PIPE, check=True).stdout.decode('utf-8').split('\0')
    with tempfile.TemporaryDirectory(prefix='cortecs-changelog-') as tmp:
        copy = os.path.join(tmp, 'ansible_collections', 'cortecs', 'management')
        for name in files:
            source = os.path.join(ROOT, name)
            if not name or not os.path.isfile(source):
                continue
            os.makedirs(os.path.dirname(os.path.join(copy, name)), exist_ok=True)
            shutil.copy2(source, os.path.join(copy, name))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=tmp, PATH=BINDIR + os.pathsep + os.environ.get('PATH', ''))
        result = subprocess.run([os.path.join(BINDIR, 'antsibull-changelog'), 'release', '--version', version],
                                cwd=copy, env=env, check=False)
        if result.returncode != 0:
            return result.returncode
        shutil.copy2(os.path.join(copy, 'CHANGELOG.rst'), os.path.join(ROOT, 'CHANGELOG.rst'))
    print('CHANGELOG.rst: preview of %s from the fragments in changelogs/fragments (nothing released)' % version)
    return 0


if __name__ == '__main__':
    sys.exit(main())
