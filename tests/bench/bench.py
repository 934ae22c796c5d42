# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""`make bench`: what converging a fleet of Cortecs environments costs, against Ansible's floor and a uri playbook.

For every fleet size N (env01..envNN, K declared keys each, same forks for every run) it measures four
variants side by side:

  floor        tests/bench/floor.yml: the role's converged task shape with ansible.builtin.set_fact (no API)
  collection   cortecs.management.provision, the collection's tasks run in the controller process
  module       the same playbook with -e cortecs_execution=module (normal module execution)
  uri          tests/bench/uri.yml: the same job hand-written with ansible.builtin.uri

in three phases, each variant against its own simulator (fresh state at the start):

  check        --check on the fresh fleet (the dry run before the first apply): must write nothing
  first        the first converge
  noop         the converged fleet again (best of --noop-runs, variants alternating order)

Wall time is time.monotonic() around the ansible-playbook subprocess; CPU time is the user+system time
of ansible-playbook and everything it started. API reads and writes per environment come from the
simulator's counters (reset before every run). The targets are checked and printed PASS/FAIL; the
exit code only reflects errors of the harness (a run that failed, a wrong end state), never a missed
target. Results: build/bench/results.json, logs: build/bench/n<N>/logs/.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import datetime
import json
import os
import shutil
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402 pylint: disable=wrong-import-position

VARIANTS = ('floor', 'collection', 'module', 'uri')
LABELS = dict(floor='floor (set_fact)', collection='collection in-process', module='collection, module exec', uri='uri playbook')
API_VARIANTS = ('collection', 'module', 'uri')
PHASES = ('first', 'noop', 'check')
PHASE_LABELS = dict(first='first converge', noop='converged no-op', check='check (fresh fleet)')

# The targets of issues 8 and 9, on the converged (no-op) run.
MAX_READS_PER_ENV = 3
MAX_RATIO_URI_ISSUE8 = 0.5
MAX_RATIO_FLOOR = 1.5
MAX_RATIO_URI = 0.15
# Linear growth: the per-environment wall time at the larger size at most this factor of the smaller one.
MAX_LINEAR_FACTOR = 1.25


class HarnessError(Exception):
    """Something that makes the measurement meaningless: a failed run, a wrong end state."""


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--sizes', default='50', help='comma-separated fleet sizes N (default 50; the 4x fleet: 50,200)')
    parser.add_argument('--keys', type=int, default=3, help='declared keys per environment K (default 3)')
    parser.add_argument('--forks', type=int, default=10, help='ansible-playbook --forks for every run (default 10)')
    parser.add_argument('--noop-runs', type=int, default=2, help='no-op runs per variant, the best counts (default 2)')
    parser.add_argument('--variants', default=','.join(VARIANTS), help='subset of %s' % ','.join(VARIANTS))
    parser.add_argument('--out', default=os.path.join(benchlib.ROOT, 'build', 'bench'), help='output directory (default build/bench)')
    parser.add_argument('--pipelining', action='store_true',
                        help='run every variant with ANSIBLE_PIPELINING=1 (default: Ansible defaults, pipelining off)')
    parser.add_argument('--nice', type=int, default=None,
                        help='run the harness, the simulators and every ansible-playbook at this nice value '
                             '(negative needs root; reduces interference from other work on a shared machine)')
    parser.add_argument('--wait-idle', type=float, default=None, metavar='LOAD',
                        help='before each size wait (up to --wait-timeout s) until the 1-minute load average is below LOAD')
    parser.add_argument('--wait-timeout', type=float, default=900.0)
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(size) for size in args.sizes.split(',') if size.strip()]
    except ValueError:
        parser.error('--sizes must be comma-separated integers, got %r' % args.sizes)
    args.variants = [v.strip() for v in args.variants.split(',') if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown or not args.variants:
        parser.error('--variants: unknown %s (choose from %s)' % (', '.join(unknown), ', '.join(VARIANTS)))
    if not args.sizes or min(args.sizes) < 1 or args.keys < 1 or args.forks < 1 or args.noop_runs < 1:
        parser.error('sizes, keys, forks and noop-runs must be positive')
    return args


def wait_idle(limit, timeout):
    if limit is None:
        return
    deadline = time.monotonic() + timeout
    while os.getloadavg()[0] >= limit and time.monotonic() < deadline:
        print('  waiting for an idle machine: load average %.2f >= %.2f' % (os.getloadavg()[0], limit), flush=True)
        time.sleep(20)


# --- one fleet size ---------------------------------------------------------------------------------

class Fleet:
    """One size: a simulator and an inventory per API variant, the runs and their checks."""

    def __init__(self, args, size, workdir):
        self.args = args
        self.size = size
        self.workdir = workdir
        self.keys = benchlib.declared_keys(args.keys)
        self.sims = {}
        self.inventories = {}
        self.hosts = []
        self.logs = os.path.join(workdir, 'logs')
        os.makedirs(self.logs)
        self.env = benchlib.ansible_env(workdir, dict(ANSIBLE_PIPELINING='1') if args.pipelining else None)
        self.results = dict((variant, {}) for variant in args.variants)
        self.checks = []

    def start(self):
        for variant in API_VARIANTS:
            if variant not in self.args.variants and not (variant == 'collection' and 'floor' in self.args.variants):
                continue
            vdir = os.path.join(self.workdir, variant)
            os.makedirs(vdir)
            sim = self.sims[variant] = benchlib.Simulator(vdir, self.size)
            self.inventories[variant], self.hosts = benchlib.write_inventory(vdir, sim, self.keys)
        # The floor makes no API call; it reads the collection's inventory.
        self.inventories['floor'] = self.inventories.get('collection')

    def stop(self):
        for sim in self.sims.values():
            sim.stop()

    def secret_root(self, variant, phase):
        return os.path.join(self.workdir, variant, 'secrets' if phase != 'check' else 'secrets-check')

    def run(self, variant, phase, attempt=0):
        sim = self.sims.get(variant if variant != 'floor' else 'collection')
        extra = ['-e', 'bench_secret_root=%s' % self.secret_root(variant, phase)]
        if phase == 'check':
            extra.append('--check')
        if variant == 'module':
            extra += ['-e', 'cortecs_execution=module']
        playbook = dict(floor=benchlib.FLOOR_PLAYBOOK, uri=benchlib.URI_PLAYBOOK).get(variant, benchlib.ROLE_PLAYBOOK)
        if sim:
            sim.reset_counters()
        load_before = os.getloadavg()[0]
        log = os.path.join(self.logs, '%s-%s%s.log' % (phase, variant, '-%d' % (attempt + 1) if phase == 'noop' else ''))
        run = benchlib.run_playbook(self.env, self.inventories[variant], playbook, self.args.forks, log, extra)
        counters = sim.counters() if sim and variant != 'floor' else None
        if run['rc'] != 0:
            raise HarnessError('%s, %s: ansible-playbook exited %d; see %s' % (LABELS[variant], phase, run['rc'], log))
        if sorted(run['recap']) != self.hosts:
            raise HarnessError('%s, %s: the recap does not list exactly the %d environments; see %s' % (LABELS[variant], phase, self.size, log))
        totals = dict((name, sum(host[name] for host in run['recap'].values())) for name in ('ok', 'changed', 'failed', 'skipped'))
        record = dict(wall_s=round(run['wall'], 3), cpu_s=round(run['cpu'], 3), load_before=round(load_before, 2),
                      tasks_per_env=sum(totals[n] for n in ('ok', 'failed', 'skipped')) / float(self.size),
                      changed=totals['changed'], log=os.path.relpath(log, benchlib.ROOT))
        if counters is not None:
            record.update(benchlib.per_env(counters, self.hosts))
        print('  %-8s %-24s wall %7.2f s  cpu %7.2f s  %s  (load %.1f)' % (
            phase, LABELS[variant], run['wall'], run['cpu'],
            'reads/env %.2f writes/env %.2f' % (record['reads_per_env'], record['writes_per_env']) if counters else 'no API calls          ',
            load_before), flush=True)
        return record

    def measure(self):
        variants = self.args.variants
        for phase in ('check', 'first'):
            for variant in variants:
                self.results[variant][phase] = self.run(variant, phase)
            if phase == 'check':
                self.check_dry_run()
            else:
                self.check_end_state()
        runs = dict((variant, []) for variant in variants)
        for attempt in range(self.args.noop_runs):
            order = variants if attempt % 2 == 0 else list(reversed(variants))
            for variant in order:
                runs[variant].append(self.run(variant, 'noop', attempt))
        for variant in variants:
            best = min(runs[variant], key=lambda record: record['wall_s'])
            best = dict(best, all_wall_s=[record['wall_s'] for record in runs[variant]])
            self.results[variant]['noop'] = best
            if variant in API_VARIANTS and any(record['writes'] for record in runs[variant]):
                raise HarnessError('%s: a converged run made API writes' % LABELS[variant])
            if variant in ('collection', 'module') and any(record['changed'] for record in runs[variant]):
                raise HarnessError('%s: a converged run reported changes' % LABELS[variant])

    # --- correctness of the runs (harness errors) -----------------------------------------------

    def check_dry_run(self):
        for variant in self.args.variants:
            if variant == 'floor':
                continue
            record = self.results[variant]['check']
            root = self.secret_root(variant, 'check')
            files = [name for dirpath, dirs, names in os.walk(root) for name in names] if os.path.exists(root) else []
            if record['writes'] or files:
                raise HarnessError('%s: check mode wrote something: %d API writes, %d secret files' % (LABELS[variant], record['writes'], len(files)))
        self.checks.append(('check mode writes nothing (every variant: 0 API writes, no secret file)', True))

    def fingerprint(self, sim):
        """What the job is about, per environment: its settings and every user's keys (names, flags)."""
        state = sim.state()['projects']
        result = {}
        for host in self.hosts:
            project = state[host]
            users = dict((name, sorted((key['name'], key['is_management_key']) for key in user['keys'])) for name, user in project['users'].items())
            result[host] = dict(inference_config=project['config']['inference_config'], allow_overwrite=project['config']['allow_overwrite'], users=users)
        return result

    def check_end_state(self):
        declared = set(key['name'] for key in self.keys)
        prints = {}
        for variant in self.args.variants:
            if variant == 'floor':
                continue
            prints[variant] = fingerprint = self.fingerprint(self.sims[variant])
            for host, item in fingerprint.items():
                names = [name for name, dummy in item['users']['admin']]
                missing = declared - set(names)
                if missing or 'default' in names or len(names) != len(set(names)):
                    raise HarnessError('%s: %s did not converge: keys %s' % (LABELS[variant], host, names))
                for field, value in benchlib.INFERENCE_CONFIG.items():
                    if item['inference_config'].get(field) != value:
                        raise HarnessError('%s: %s has inference_config.%s=%r' % (LABELS[variant], host, field, item['inference_config'].get(field)))
            self.check_secret_files(variant)
        first = list(prints.values())[0] if prints else None
        for variant, fingerprint in prints.items():
            if fingerprint != first:
                raise HarnessError('%s ended in another state than %s: the playbooks do not do the same job' % (LABELS[variant], LABELS[list(prints)[0]]))
        self.checks.append(('every variant ends in the same converged state; every created secret is in a 0600 file', True))

    def check_secret_files(self, variant):
        root = self.secret_root(variant, 'first')
        for host in self.hosts:
            for key in self.keys:
                path = os.path.join(root, host, key['name'])
                try:
                    info = os.stat(path)
                except OSError:
                    raise HarnessError('%s: the secret of %s/%s is not in %s' % (LABELS[variant], host, key['name'], path))
                if stat.S_IMODE(info.st_mode) != 0o600 or info.st_size == 0:
                    raise HarnessError('%s: %s has mode %04o and %d bytes' % (LABELS[variant], path, stat.S_IMODE(info.st_mode), info.st_size))


# --- targets, table, JSON ---------------------------------------------------------------------------

def ratio(a, b):
    return a / b if b else None


def size_targets(results):
    """The per-size targets of issues 8 and 9 as (name, measured text, passed)."""
    targets = []
    coll = results.get('collection', {}).get('noop')
    if coll:
        targets.append(('I8 converged run: <= %d API reads per environment and 0 writes' % MAX_READS_PER_ENV,
                        'max %d reads, %d writes per environment' % (coll['max_reads_per_env'], coll['max_writes_per_env']),
                        coll['max_reads_per_env'] <= MAX_READS_PER_ENV and coll['writes'] == 0))
    uri = results.get('uri', {}).get('noop')
    floor = results.get('floor', {}).get('noop')
    if coll and uri:
        value = ratio(coll['wall_s'], uri['wall_s'])
        targets.append(('I8 no-op wall time collection/uri <= %.2f' % MAX_RATIO_URI_ISSUE8, '%.3f' % value, value <= MAX_RATIO_URI_ISSUE8))
    if coll and floor:
        value = ratio(coll['wall_s'], floor['wall_s'])
        targets.append(('I9 converged run collection/floor <= %.2f' % MAX_RATIO_FLOOR, '%.3f' % value, value <= MAX_RATIO_FLOOR))
    if coll and uri:
        value = ratio(coll['wall_s'], uri['wall_s'])
        targets.append(('I9 converged run collection/uri <= %.2f' % MAX_RATIO_URI, '%.3f' % value, value <= MAX_RATIO_URI))
    return targets


def linear_targets(sizes):
    """Linear growth between consecutive sizes: per-environment cost not worse, API calls per environment equal."""
    targets = []
    ordered = sorted(sizes, key=int)
    for small, big in zip(ordered, ordered[1:]):
        a, b = sizes[small]['results'].get('collection'), sizes[big]['results'].get('collection')
        if not a or not b:
            continue
        growth = int(big) / float(small)
        for phase in PHASES:
            value = b[phase]['wall_s'] / a[phase]['wall_s']
            same_api = (a[phase]['reads_per_env'], a[phase]['writes_per_env']) == (b[phase]['reads_per_env'], b[phase]['writes_per_env'])
            targets.append(('linear growth N=%s->%s, collection %s: wall x%.1f for fleet x%.1f (<= x%.1f), same API calls per env'
                            % (small, big, phase, value, growth, growth * MAX_LINEAR_FACTOR),
                            'x%.2f; %s' % (value, 'API per env equal' if same_api else 'API per env differs'),
                            value <= growth * MAX_LINEAR_FACTOR and same_api))
    return targets


def table_rows(results):
    """(variant, row, (no-op vs floor, no-op vs uri)) for every measured variant in table order; None without a base."""
    bases = [results.get(name, {}).get('noop') for name in ('floor', 'uri')]
    for variant in VARIANTS:
        if variant in results:
            row = results[variant]
            yield variant, row, tuple(ratio(row['noop']['wall_s'], base['wall_s']) if base else None for base in bases)


def cell(record, with_api=True):
    if not record:
        return '-'
    text = '%6.1f s (cpu %6.1f)' % (record['wall_s'], record['cpu_s'])
    if with_api and 'reads_per_env' in record:
        text += ' %4.1f r %4.1f w' % (record['reads_per_env'], record['writes_per_env'])
    elif with_api:
        text += '    no API   '
    return text


def print_table(size, keys, forks, noop_runs, results, targets):
    width = 40
    print('\nN=%d environments x K=%d keys, forks %d; wall (cpu) seconds; API reads (r) and writes (w) per environment; '
          'no-op: best of %d' % (size, keys, forks, noop_runs))
    header = ['variant'.ljust(24)] + [PHASE_LABELS[phase].ljust(width) for phase in PHASES] + ['no-op/floor', 'no-op/uri']
    print(' | '.join(header))
    print('-' * len(' | '.join(header)))
    for variant, row, (vs_floor, vs_uri) in table_rows(results):
        cells = [LABELS[variant].ljust(24)] + [cell(row.get(phase)).ljust(width) for phase in PHASES]
        cells += [('-' if value is None else '%.3f' % value).ljust(11) for value in (vs_floor, vs_uri)]
        print(' | '.join(cells))
    print_targets(targets)


def print_targets(targets):
    for name, measured, passed in targets:
        print('  [%s] %s: %s' % ('PASS' if passed else 'FAIL', name, measured))


def markdown(report):
    """The tables of docs/benchmarks.md, from results.json."""
    lines = []
    for size, item in sorted(report['sizes'].items(), key=lambda pair: int(pair[0])):
        lines.append('### N=%s environments x K=%d keys, forks %d' % (size, report['parameters']['keys'], report['parameters']['forks']))
        lines.append('')
        lines.append('| variant | first converge | converged no-op | check (fresh fleet) | no-op vs floor | no-op vs uri |')
        lines.append('| --- | --- | --- | --- | --- | --- |')
        for variant, row, (vs_floor, vs_uri) in table_rows(item['results']):
            cells = []
            for phase in PHASES:
                record = row[phase]
                text = '%.1f s' % record['wall_s']
                if 'reads_per_env' in record:
                    text += ' (%g r / %g w)' % (round(record['reads_per_env'], 2), round(record['writes_per_env'], 2))
                cells.append(text)
            cells.append('-' if vs_floor is None else '%.2f' % vs_floor)
            cells.append('-' if vs_uri is None else '%.3f' % vs_uri)
            lines.append('| %s | %s |' % (LABELS[variant], ' | '.join(cells)))
        lines.append('')
        for name, measured, passed in item['targets']:
            lines.append('- %s %s: %s' % ('PASS' if passed else '**FAIL**', name, measured))
        lines.append('')
    if report.get('linear_targets'):
        lines.append('### Growth')
        lines.append('')
        for name, measured, passed in report['linear_targets']:
            lines.append('- %s %s: %s' % ('PASS' if passed else '**FAIL**', name, measured))
        lines.append('')
    return '\n'.join(lines)


COLORS = dict(floor='#9e9e9e', collection='#2e7d32', module='#81c784', uri='#c62828')


def svg(report):
    """A hand-drawn SVG bar_h chart (no plotting dependency): wall seconds per variant, per phase and size."""
    sizes = sorted(report['sizes'], key=int)
    phases = ('noop', 'first')
    variants = [v for v in VARIANTS if any(v in report['sizes'][size]['results'] for size in sizes)]
    bar_h, gap, label_w, panel_w = 14, 10, 170, 330
    group_h = len(variants) * bar_h + gap
    height = 60 + len(sizes) * (group_h + 18) + 40
    width = label_w + len(phases) * (panel_w + 40)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="10" y="18" font-size="13" font-weight="bold">cortecs.management bench: wall seconds (K=%d keys, forks %d, %s)</text>'
           % (report['parameters']['keys'], report['parameters']['forks'], report['date'][:10])]
    for index, phase in enumerate(phases):
        left = label_w + index * (panel_w + 40)
        peak = max(report['sizes'][size]['results'][v][phase]['wall_s'] for size in sizes for v in variants
                   if v in report['sizes'][size]['results']) or 1.0
        out.append('<text x="%d" y="40" font-weight="bold">%s</text>' % (left, PHASE_LABELS[phase]))
        y = 52
        for size in sizes:
            results = report['sizes'][size]['results']
            if index == 0:
                out.append('<text x="10" y="%d" font-weight="bold">N=%s environments</text>' % (y + 10, size))
            y += 14
            for variant in variants:
                if variant not in results:
                    continue
                value = results[variant][phase]['wall_s']
                length = max(1.0, (panel_w - 60) * value / peak)
                if index == 0:
                    out.append('<text x="20" y="%d">%s</text>' % (y + bar_h - 3, LABELS[variant]))
                out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>' % (left, y, length, bar_h - 2, COLORS[variant]))
                out.append('<text x="%.1f" y="%d">%.1f s</text>' % (left + length + 4, y + bar_h - 3, value))
                y += bar_h
            y += gap
    out.append('</svg>')
    return '\n'.join(out) + '\n'


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.nice is not None:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    report = dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
        command=' '.join(['tests/bench/bench.py'] + (sys.argv[1:] if argv is None else list(argv))),
        machine=benchlib.machine_facts(),
        parameters=dict(sizes=args.sizes, keys=args.keys, forks=args.forks, noop_runs=args.noop_runs, variants=args.variants, pipelining=args.pipelining,
                        nice=os.getpriority(os.PRIO_PROCESS, 0),
                        declared_keys=benchlib.declared_keys(args.keys), inference_config=benchlib.INFERENCE_CONFIG,
                        min_balance=benchlib.MIN_BALANCE, purge_keys=True),
        sizes={},
    )
    started = time.monotonic()
    failed = None
    for size in args.sizes:
        wait_idle(args.wait_idle, args.wait_timeout)
        benchlib.banner('Fleet of %d environments x %d keys, forks %d' % (size, args.keys, args.forks))
        fleet = Fleet(args, size, os.path.join(args.out, 'n%d' % size))
        try:
            fleet.start()
            fleet.measure()
        except HarnessError as exc:
            failed = '%s (N=%d)' % (exc, size)
        finally:
            fleet.stop()
        if failed:
            break
        targets = size_targets(fleet.results)
        report['sizes'][str(size)] = dict(results=fleet.results, targets=targets, harness_checks=fleet.checks)
        print_table(size, args.keys, args.forks, args.noop_runs, fleet.results, targets)
    report['linear_targets'] = linear_targets(report['sizes'])
    report['total_wall_s'] = round(time.monotonic() - started, 1)
    report['machine']['loadavg_at_end'] = [round(x, 2) for x in os.getloadavg()]
    if report['linear_targets']:
        print('')
        print_targets(report['linear_targets'])
    path = os.path.join(args.out, 'results.json')
    with open(path, 'w') as handle:
        json.dump(report, handle, indent=2, sort_keys=True)
        handle.write('\n')
    with open(os.path.join(args.out, 'results.md'), 'w') as handle:
        handle.write(markdown(report) + '\n')
    if report['sizes']:
        with open(os.path.join(args.out, 'benchmarks.svg'), 'w') as handle:
            handle.write(svg(report))
    print('\nresults: %s, results.md and benchmarks.svg (%.0f s in total)' % (os.path.relpath(path, benchlib.ROOT), report['total_wall_s']))
    if failed:
        print('HARNESS ERROR: %s' % failed, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
