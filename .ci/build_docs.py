# Copyright (c) cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the documentation site into build/docs (``make docs``); nothing of it is committed.

1. ``antsibull-docs sphinx-init`` writes a Sphinx project for cortecs.management to build/docs;
2. ``antsibull-docs collection`` renders the module and role reference from the plugins' own
   documentation, plus the guides in docs/docsite/rst, into build/docs/rst;
3. ``sphinx-build`` renders HTML into build/docs/build/html.

The work tree is made visible to ansible-doc as the collection through a symlink in a temporary
directory. Intersphinx is switched off so that the build works offline and gives the same result
every time; the only Sphinx warnings tolerated are the links to the Ansible docsite that antsibull-docs'
templates contain (they need intersphinx). Any other warning fails the build.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEST = os.path.join(ROOT, 'build', 'docs')
BINDIR = os.path.dirname(sys.executable)
COLLECTION = 'cortecs.management'

# Labels of the Ansible docsite that antsibull-docs' page templates link to.
EXTERNAL_LABELS = ('action_plugins', 'common_return_values', 'ansible_configuration_settings')
TOLERATED = re.compile(r"WARNING: undefined label: '(%s)'" % '|'.join(EXTERNAL_LABELS))


def run(cmd: list[str], env: dict[str, str], cwd: str) -> None:
    """Run a command, fail the build when it fails."""
    print('+ %s' % ' '.join(cmd), flush=True)
    result = subprocess.run(cmd, env=env, cwd=cwd, check=False)
    if result.returncode != 0:
        raise SystemExit('docs build failed: %s exited with %d' % (cmd[0], result.returncode))


def main() -> int:
    """Entry point."""
    shutil.rmtree(DEST, ignore_errors=True)
    os.makedirs(DEST)
    os.chmod(DEST, 0o700)  # antsibull-docs only writes into directories that only their owner can write to
    with tempfile.TemporaryDirectory(prefix='cortecs-docs-') as tmp:
        namespace_dir = os.path.join(tmp, 'ansible_collections', 'cortecs')
        os.makedirs(namespace_dir)
        os.symlink(ROOT, os.path.join(namespace_dir, 'management'))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=tmp, PATH=BINDIR + os.pathsep + os.environ.get('PATH', ''))
        antsibull_docs = os.path.join(BINDIR, 'antsibull-docs')

        run([antsibull_docs, 'sphinx-init', '--use-current', '--squash-hierarchy', '--fail-on-error',
             '--sphinx-theme', 'alabaster', '--project', COLLECTION, '--title', '%s collection' % COLLECTION,
             '--copyright', 'cortecs.management contributors', '--dest-dir', DEST, COLLECTION], env, ROOT)
        with open(os.path.join(DEST, 'conf.py'), 'a', encoding='utf-8') as handle:
            handle.write('\n# make docs: build offline and reproducibly, without intersphinx inventories.\nintersphinx_mapping = {}\n')

        rst = os.path.join(DEST, 'rst')
        os.makedirs(rst, exist_ok=True)
        os.chmod(rst, 0o700)
        run([antsibull_docs, '--config-file', 'antsibull-docs.cfg', 'collection', '--cleanup', 'everything', '--fail-on-error',
             '--use-current', '--squash-hierarchy', '--dest-dir', 'rst', COLLECTION], env, DEST)

        warnings_file = os.path.join(DEST, 'sphinx-warnings.log')
        run([os.path.join(BINDIR, 'sphinx-build'), '-M', 'html', 'rst', 'build', '-c', '.', '--keep-going', '-q',
             '-w', warnings_file], env, DEST)

    with open(warnings_file, encoding='utf-8') as handle:
        warnings = [line.rstrip() for line in handle if 'WARNING' in line or 'ERROR' in line]
    unexpected = [line for line in warnings if not TOLERATED.search(line)]
    print('sphinx: %d warning(s), %d of them links to the Ansible docsite (no intersphinx offline)'
          % (len(warnings), len(warnings) - len(unexpected)))
    if unexpected:
        print('\n'.join(unexpected))
        print('docs build failed: %d unexpected Sphinx warning(s)' % len(unexpected))
        return 1
    guides = sorted(name[:-4] for name in os.listdir(os.path.join(ROOT, 'docs', 'docsite', 'rst')) if name.endswith('.rst'))
    missing = [guide for guide in guides if not os.path.exists(os.path.join(DEST, 'build', 'html', 'docsite', guide + '.html'))]
    if missing:
        print('docs build failed: guides missing from the site: %s' % ', '.join(missing))
        return 1
    print('docs built: %s' % os.path.relpath(os.path.join(DEST, 'build', 'html', 'index.html'), ROOT))
    return 0


if __name__ == '__main__':
    sys.exit(main())
