# Copyright (c) cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run several make targets as test steps and report on all of them (``make test``).

Usage: python .ci/orchestrate.py [-j N] STEP [STEP ...]   (each STEP is a make target)

Each step runs to its end even when another one failed; with ``-j N`` up to N steps run at the
same time, taken in the given order (list long steps first). Its whole output goes to
build/logs/<step>.log; the tail of the log of a failed step is printed. Per step it prints
PASS/FAIL/SKIP, the duration and the counts it could parse:

* pytest summaries (``N passed, N failed ...``), also those of ansible-test units;
* ansible-test sanity: one test per ``Running sanity test ...`` line;
* ansible-test integration: one test per target that ran.

A step with nothing to parse counts as one test. A step that exits 0 without test counts but with a line
starting with ``SKIPPED:`` (or ansible-test's ``All targets skipped``) is reported as skipped. The last line is ``N passed, N failed``;
the exit code is 1 if anything failed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG_DIR = os.path.join(ROOT, 'build', 'logs')
TAIL_LINES = 60
# Generous per-step limit so that a hung step cannot eat the whole CI budget.
STEP_TIMEOUT = int(os.environ.get('CI_STEP_TIMEOUT', '3600'))

PYTEST_SUMMARY = re.compile(r'^=+ (?P<body>(?:\d+ \w+(?:, )?)+)(?: in [\d.]+s.*)? =+$')
PYTEST_COUNT = re.compile(r'(\d+) (\w+)')
SANITY_START = re.compile(r'^Running sanity test "(?P<name>[^"]+)"(?: on Python (?P<py>[\d.]+))?')
SANITY_SKIP = re.compile(r'Skipping sanity test "')
# Lines that end the section of the sanity test before them: ansible-test's closing summary and
# the lines .ci/run_ansible_test.py prints before and after each ansible-test run.
SANITY_END = re.compile(r'^((?:ERROR|FATAL): The \d+ sanity test\(s\) listed below|\[run_ansible_test\] )')
INTEGRATION_START = re.compile(r'^Running (?P<name>\S+) integration test (?:role|script)$')
INTEGRATION_FAILED = re.compile(r'^(?:ERROR|FATAL): The \d+ integration test\(s\) listed below \(out of \d+\) failed')
# Colour (CSI) and hyperlink (OSC 8) escape sequences.
PRINT_LOCK = threading.Lock()
ANSI = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]|\x1b\]8;[^\x1b\x07]*(?:\x1b\\|\x07)')
# A step that exits 0 with one of these lines and no test counts is reported as skipped.
SKIP_LINE = re.compile(r'^(SKIPPED: |WARNING: All targets skipped\.)')
# Left out of the printed tails (still in the logs): pip's complaints about this machine's index config.
NOISE = re.compile(r"^WARNING: Location '[^']*' is ignored")
# Ask the tools for plain output: the logs are files.
PLAIN_ENV = {'NO_COLOR': '1', 'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_FORCE_COLOR': '0', 'PY_COLORS': '0', 'TERM': 'dumb'}


class Counts:
    """Test counts parsed from one step's output."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.parsed = False

    def add(self, passed: int = 0, failed: int = 0, skipped: int = 0) -> None:
        """Add counts."""
        self.passed += passed
        self.failed += failed
        self.skipped += skipped
        self.parsed = True


def parse_pytest(lines: list[str], counts: Counts) -> None:
    """Add every pytest summary line (ansible-test units prints one per test group)."""
    for line in lines:
        match = PYTEST_SUMMARY.match(line.strip())
        if not match:
            continue
        found = {word: int(num) for num, word in PYTEST_COUNT.findall(match.group('body'))}
        counts.add(passed=found.get('passed', 0),
                   failed=found.get('failed', 0) + found.get('error', 0) + found.get('errors', 0),
                   skipped=found.get('skipped', 0))


def parse_sanity(lines: list[str], counts: Counts) -> None:
    """One test per sanity test (and Python version); failed if its section reports an error."""
    sections: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        if SANITY_START.match(line):
            current = []
            sections.append(current)
        elif SANITY_END.match(line):
            current = None
        elif current is not None:
            current.append(line)
    for body in sections:
        if any(line.startswith(('ERROR:', 'FATAL:')) or line.startswith('Traceback') for line in body):
            counts.add(failed=1)
        elif any(SANITY_SKIP.search(line) for line in body):
            counts.add(skipped=1)
        else:
            counts.add(passed=1)


def parse_integration(lines: list[str], counts: Counts) -> None:
    """One test per integration target that ran; failed ones are listed by ansible-test at the end."""
    ran = [m.group('name') for m in map(INTEGRATION_START.match, lines) if m]
    ran = [name for name in ran if not name.startswith(('setup_', 'prepare_'))]
    if not ran:
        return
    failed: set[str] = set()
    for index, line in enumerate(lines):
        if INTEGRATION_FAILED.match(line):
            for name in lines[index + 1:]:
                if not name.strip() or name.startswith(('FATAL:', 'ERROR:', 'WARNING:')):
                    break
                failed.add(name.strip())
    finished = any(line.startswith('[run_ansible_test] ansible-test integration exited') for line in lines)
    if not failed and (not finished or any(line.startswith('FATAL:') for line in lines)):
        failed.add(ran[-1])  # aborted or killed: the last target that started did not pass
    counts.add(passed=len([n for n in ran if n not in failed]), failed=len([n for n in ran if n in failed]))


def run_step(step: str) -> tuple[str, float, Counts, str]:
    """Run `make <step>`; return status, duration, counts and the log path."""
    os.makedirs(LOG_DIR, exist_ok=True)
    log_path = os.path.join(LOG_DIR, '%s.log' % step)
    start = time.monotonic()
    with open(log_path, 'w', encoding='utf-8') as log:
        log.write('$ make %s\n' % step)
        log.flush()
        env = {k: v for k, v in os.environ.items() if k not in ('FORCE_COLOR', 'CLICOLOR_FORCE')}
        env.update(PLAIN_ENV)
        with subprocess.Popen(['make', '--no-print-directory', step], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, start_new_session=True, env=env) as proc:
            try:
                returncode = proc.wait(timeout=STEP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                returncode = -1
                log.write('\nTIMEOUT: step %s killed after %d s\n' % (step, STEP_TIMEOUT))
    duration = time.monotonic() - start
    with open(log_path, encoding='utf-8', errors='replace') as handle:
        lines = [ANSI.sub('', line.rstrip('\n')) for line in handle]

    counts = Counts()
    parse_sanity(lines, counts)
    parse_pytest(lines, counts)
    parse_integration(lines, counts)

    if returncode == 0:
        if not counts.parsed and any(SKIP_LINE.match(line) for line in lines):
            counts.add(skipped=1)
            return 'SKIP', duration, counts, log_path
        if not counts.parsed:
            counts.add(passed=1)
        return 'PASS', duration, counts, log_path
    if counts.failed == 0:
        counts.add(failed=1)  # the step failed beyond the tests it reported (setup error, crash, lint)
    return 'FAIL', duration, counts, log_path


def fmt_duration(seconds: float) -> str:
    """Format seconds as 1m23s."""
    minutes, secs = divmod(int(round(seconds)), 60)
    return '%dm%02ds' % (minutes, secs) if minutes else '%ds' % secs


def report_step(step: str, status: str, duration: float, counts: Counts, log_path: str) -> None:
    """Print the result line of a step, its SKIPPED reason or the tail of its log."""
    out = ['%s %s (%s): %d passed, %d failed, %d skipped  [log: %s]' % (
        status, step, fmt_duration(duration), counts.passed, counts.failed, counts.skipped,
        os.path.relpath(log_path, ROOT))]
    with open(log_path, encoding='utf-8', errors='replace') as handle:
        lines = [ANSI.sub('', line.rstrip('\n')) for line in handle if not NOISE.match(line)]
    if status == 'SKIP':
        out += ['    ' + line for line in lines if SKIP_LINE.match(line)]
    if status == 'FAIL':
        tail = lines[-TAIL_LINES:]
        out.append('---- last %d lines of %s ----' % (len(tail), os.path.relpath(log_path, ROOT)))
        out += tail
        out.append('---- end of %s ----' % step)
    with PRINT_LOCK:
        print('\n'.join(out), flush=True)


def main(argv: list[str]) -> int:
    """Entry point."""
    jobs = 1
    if argv[:1] == ['-j'] and len(argv) > 1:
        jobs, argv = max(1, int(argv[1])), argv[2:]
    steps = argv
    if not steps:
        print(__doc__)
        return 2
    os.makedirs(LOG_DIR, exist_ok=True)
    results: dict[str, tuple[str, float, Counts]] = {}
    pending = list(steps)
    start = time.monotonic()

    def worker() -> None:
        while True:
            with PRINT_LOCK:
                if not pending:
                    return
                step = pending.pop(0)
                print('==> %s started' % step, flush=True)
            status, duration, counts, log_path = run_step(step)
            results[step] = (status, duration, counts)
            report_step(step, status, duration, counts, log_path)

    threads = [threading.Thread(target=worker) for _slot in range(min(jobs, len(steps)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    summary = ['Summary (%s wall time, %d parallel; logs in %s):' % (
        fmt_duration(time.monotonic() - start), len(threads), os.path.relpath(LOG_DIR, ROOT))]
    for step in steps:
        status, duration, counts = results[step]
        summary.append('  %-4s %-16s %8s  %4d passed  %3d failed  %3d skipped' % (
            status, step, fmt_duration(duration), counts.passed, counts.failed, counts.skipped))
    failed_steps = [step for step in steps if results[step][0] == 'FAIL']
    if failed_steps:
        summary.append('Failed steps: %s' % ', '.join(failed_steps))
    total_skipped = sum(r[2].skipped for r in results.values())
    if total_skipped:
        summary.append('%d skipped' % total_skipped)
    summary.append('%d passed, %d failed' % (sum(r[2].passed for r in results.values()),
                                             sum(r[2].failed for r in results.values())))
    with open(os.path.join(LOG_DIR, 'summary.txt'), 'w', encoding='utf-8') as handle:
        handle.write('\n'.join(summary) + '\n')
    print('\n' + '\n'.join(summary), flush=True)
    return 1 if failed_steps else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
