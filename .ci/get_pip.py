# Copyright (c) cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the get-pip.py script that ansible-test downloads.

ansible-test bootstraps pip into every virtual environment it creates (``--venv``) by running
``~/.ansible/test/cache/get_pip_<version>.py`` and downloads that script from a host that is not
reachable here.  .ci/run_ansible_test.py copies this file to that cache path before ansible-test runs.

It is called as ``python get_pip_X_Y.py [pip options] pip==X.Y [--no-setuptools] [--no-wheel]``
with the new environment's interpreter: install the bundled pip with ``ensurepip``, then let that
pip install the requested packages from the package index.
"""

from __future__ import annotations

import subprocess
import sys

DROPPED = ('--no-setuptools', '--no-wheel')


def main(argv: list[str]) -> int:
    """Bootstrap pip, then install the requested packages with it."""
    subprocess.run([sys.executable, '-m', 'ensurepip', '--default-pip'], check=True, stdout=subprocess.DEVNULL)
    args = [arg for arg in argv if arg not in DROPPED]
    if not args:
        return 0
    return subprocess.run([sys.executable, '-m', 'pip', 'install', *args], check=False).returncode


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
