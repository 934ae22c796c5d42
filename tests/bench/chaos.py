# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""`make chaos`: converge the bench fleet through injected faults; no duplicate key, no secret unaccounted for.

1. Start the simulator with N environments and inject faults (POST /_sim/faults): 429 with Retry-After at a
   rate, 503 at a rate plus short outages (every request 503 for a second) every few seconds, lost replies of a
   share of the key creations (the key is created, the reply with its one-time secret never arrives), and
   latency on every request.
2. Run cortecs.management.provision; re-run it with the faults still on while an environment failed (the
   documented re-run: a failed run is safe to repeat), at most --max-runs runs.
3. Faults off: one more run must change nothing and make no API write (converged).
4. Audit with GET /_sim/state: per environment no duplicate key name, every declared key present, no
   undeclared non-management key left; for every key the runs created, its secret is in its file (mode
   0600, directory 0700, and the secret authenticates against the simulator) OR the run reported it lost
   with the remediation (rotate with recreate=always). Also: no created secret appears in any run output.
5. Remediation, as the failure message tells: re-run with recreate=always for the lost keys only; then every
   declared key has a working secret on disk, and a last run is a no-op again.

Prints the counts and writes build/chaos/results.json. Exit 1 when a duplicate exists, a secret is
unaccounted for or leaked, or the fleet does not converge; 2 on harness errors.
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
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402 pylint: disable=wrong-import-position

LOST_MARK = 'The key WAS created, but its secret was lost'
REMEDIATION_MARK = 'recreate=always'
DUPLICATE_MARK = 'was created by someone else'


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--environments', type=int, default=50, help='fleet size N (default 50)')
    parser.add_argument('--keys', type=int, default=3, help='declared keys per environment K (default 3)')
    parser.add_argument('--forks', type=int, default=10, help='ansible-playbook --forks (default 10)')
    parser.add_argument('--max-runs', type=int, default=6, help='runs with faults until no environment fails (default 6)')
    parser.add_argument('--rate-limit', type=float, default=0.05, help='share of requests answered 429 (default 0.05)')
    parser.add_argument('--retry-after', type=int, default=1, help='Retry-After seconds of the 429 (default 1)')
    parser.add_argument('--fail-rate', type=float, default=0.03, help='share of requests answered 503 (default 0.03)')
    parser.add_argument('--burst-every', type=float, default=4.0, help='seconds between 503 outages (default 4; 0: none)')
    parser.add_argument('--burst-seconds', type=float, default=1.0,
                        help='length of each outage: every request (any method, any environment) gets 503 (default 1)')
    parser.add_argument('--lose-create', type=float, default=0.15, help='share of key creations whose reply is lost (default 0.15)')
    parser.add_argument('--latency-ms', type=float, default=20.0, help='latency added to every request (default 20 ms)')
    parser.add_argument('--seed', default='8', help='seed of the simulator fault randomness (default 8)')
    parser.add_argument('--no-remediation', action='store_true', help='skip step 5')
    parser.add_argument('--out', default=os.path.join(benchlib.ROOT, 'build', 'chaos'), help='output directory (default build/chaos)')
    args = parser.parse_args(argv)
    if args.environments < 1 or args.keys < 1 or args.forks < 1 or args.max_runs < 1:
        parser.error('environments, keys, forks and max-runs must be positive')
    return args


def fault_doc(args, burst=False):
    doc = dict(
        latency_ms=args.latency_ms,
        rate_limit_rate=dict(rate=args.rate_limit, retry_after=args.retry_after),
        fail_rate=dict(rate=args.fail_rate, status=503),
        lose_reply_rate=dict(rate=args.lose_create, methods=['POST']),
    )
    if burst:
        doc['fail_rate'] = dict(rate=1.0, status=503)
    return doc


class HarnessError(Exception):
    """The chaos run itself went wrong (not the collection): exit 2."""


class Bursts(threading.Thread):
    """Every --burst-every seconds an outage of --burst-seconds: every request in that time gets 503.

    Time-bound like a real gateway outage, not a count of requests: a count-bound burst would fall entirely on
    whichever environment happens to be the only one still running at the end of a play."""

    def __init__(self, sim, args):
        super(Bursts, self).__init__(name='chaos-bursts')
        self.daemon = True
        self.sim = sim
        self.args = args
        self.stopped = threading.Event()
        self.count = 0

    def run(self):
        while not self.stopped.wait(self.args.burst_every):
            try:
                self.sim.set_faults(fault_doc(self.args, burst=True))
                self.count += 1
                self.stopped.wait(self.args.burst_seconds)
            except Exception:  # pylint: disable=broad-except
                pass
            finally:
                self.restore()

    def restore(self):
        try:
            self.sim.set_faults(fault_doc(self.args))
        except Exception:  # pylint: disable=broad-except
            pass

    def stop(self):
        self.stopped.set()
        self.join(10)


class Chaos:

    def __init__(self, args):
        self.args = args
        self.workdir = args.out
        self.logs = os.path.join(self.workdir, 'logs')
        os.makedirs(self.logs)
        self.secret_root = os.path.join(self.workdir, 'secrets')
        self.events_path = os.path.join(self.workdir, 'events.jsonl')
        self.env = benchlib.ansible_env(self.workdir, dict(
            ANSIBLE_CALLBACK_PLUGINS=benchlib.CALLBACK_DIR,
            ANSIBLE_CALLBACKS_ENABLED='cortecs_bench_events',
            CORTECS_BENCH_EVENTS=self.events_path,
        ))
        self.keys = benchlib.declared_keys(args.keys)
        self.sim = benchlib.Simulator(self.workdir, args.environments, ['--fault-seed', args.seed])
        self.inventory, self.hosts = benchlib.write_inventory(self.workdir, self.sim, self.keys)
        self.runs = []

    def run(self, label, faults):
        """One playbook run; returns its record with the events it produced."""
        self.sim.reset_counters()
        if os.path.exists(self.events_path):
            os.unlink(self.events_path)
        log = os.path.join(self.logs, '%02d-%s.log' % (len(self.runs) + 1, label))
        run = benchlib.run_playbook(self.env, self.inventory, benchlib.ROLE_PLAYBOOK, self.args.forks, log,
                                    ['-e', 'bench_secret_root=%s' % self.secret_root])
        counters = self.sim.counters()
        events = []
        if os.path.exists(self.events_path):
            with open(self.events_path) as handle:
                events = [json.loads(line) for line in handle if line.strip()]
        failed = sorted(host for host, item in run['recap'].items() if item['failed'] or item['unreachable'])
        if run['rc'] not in (0, 2) or sorted(run['recap']) != self.hosts:
            raise HarnessError('run %s exited %d or its recap does not list the %d environments; see %s'
                               % (label, run['rc'], len(self.hosts), log))
        record = dict(label=label, faults=faults, wall_s=round(run['wall'], 2), rc=run['rc'], failed_hosts=failed,
                      changed=sum(item['changed'] for item in run['recap'].values()),
                      reads=counters['total']['reads'], writes=counters['total']['writes'], by_status=counters['by_status'],
                      log=os.path.relpath(log, benchlib.ROOT), events=events)
        self.runs.append(record)
        print('  run %d (%s): wall %.1f s, exit %d, %d environments failed, %d changed tasks, %d reads, %d writes, statuses %s' % (
            len(self.runs), label, run['wall'], run['rc'], len(failed), record['changed'], record['reads'], record['writes'],
            json.dumps(counters['by_status'], sort_keys=True)), flush=True)
        for event in events:
            if event['status'] == 'failed':
                print('      %s: %s' % (event['host'], (event['msg'] or '(censored)')[:300]))
        return record

    def admin_keys(self, state):
        return dict((host, [(key['name'], key['is_management_key']) for key in state['projects'][host]['users']['admin']['keys']])
                    for host in self.hosts)

    def converge_with_faults(self):
        bursts = Bursts(self.sim, self.args) if self.args.burst_every > 0 else None
        self.sim.set_faults(fault_doc(self.args))
        if bursts:
            bursts.start()
        try:
            for attempt in range(self.args.max_runs):
                record = self.run('faults' if attempt == 0 else 'faults-rerun', True)
                if not record['failed_hosts']:
                    break
        finally:
            if bursts:
                bursts.stop()
            self.sim.set_faults({})
        return bursts.count if bursts else 0

    def audit(self, initial, final):
        """Duplicates, declared keys present, and every created key's secret accounted for."""
        declared = dict((key['name'], bool(key.get('is_management_key'))) for key in self.keys)
        lost_reports = {}
        duplicate_warnings = []
        for record in self.runs:
            for event in record['events']:
                text = ' '.join([event['msg']] + event['warnings'])
                if LOST_MARK in text:
                    for name in declared:
                        if ("API key %r" % name) in text and REMEDIATION_MARK in text:
                            lost_reports.setdefault(event['host'], set()).add(name)
                if DUPLICATE_MARK in text:
                    duplicate_warnings.append('%s: %s' % (event['host'], text[:200]))
        refusals = sum(int(record['by_status'].get('400', 0)) for record in self.runs)
        counts = dict(keys_created=0, secrets_on_disk=0, secrets_reported_lost=0, unaccounted=0, invalid_secret_files=0,
                      duplicates=0, missing_declared=0, undeclared_left=0, duplicate_create_warnings=len(duplicate_warnings),
                      http_400_refusals=refusals)
        problems = []
        for host in self.hosts:
            names = [name for name, dummy in final[host]]
            flags = dict(final[host])
            duplicates = sorted(set(name for name in names if names.count(name) > 1))
            counts['duplicates'] += len(duplicates)
            problems.extend('%s: duplicate key %s' % (host, name) for name in duplicates)
            for name, mgmt in declared.items():
                if name not in flags:
                    counts['missing_declared'] += 1
                    problems.append('%s: declared key %s missing' % (host, name))
                elif flags[name] != mgmt:
                    problems.append('%s: key %s has is_management_key=%s' % (host, name, flags[name]))
            for name, mgmt in flags.items():
                if name not in declared and not mgmt:
                    counts['undeclared_left'] += 1
                    problems.append('%s: undeclared key %s left' % (host, name))
            before = set(name for name, dummy in initial[host])
            for name in sorted(set(names) - before):
                counts['keys_created'] += 1
                verdict = self.secret_verdict(host, name, flags[name])
                if verdict == 'ok':
                    counts['secrets_on_disk'] += 1
                    if name in lost_reports.get(host, ()):
                        problems.append('%s/%s: reported lost although its secret is on disk' % (host, name))
                elif name in lost_reports.get(host, ()) and verdict == 'missing':
                    counts['secrets_reported_lost'] += 1
                else:
                    counts['unaccounted'] += 1
                    if verdict not in ('ok', 'missing'):
                        counts['invalid_secret_files'] += 1
                    problems.append('%s/%s: secret unaccounted for (file: %s, not reported lost)' % (host, name, verdict))
        return counts, problems, duplicate_warnings, lost_reports

    def secret_verdict(self, host, name, mgmt):
        path = os.path.join(self.secret_root, host, name)
        if not os.path.lexists(path):
            return 'missing'
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or stat.S_IMODE(info.st_mode) != 0o600:
            return 'mode %04o' % stat.S_IMODE(info.st_mode)
        if stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) != 0o700:
            return 'directory mode %04o' % stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)
        with open(path) as handle:
            secret = handle.read().strip()
        status = self.sim.status_with_token(secret) if secret else None
        if status != (200 if mgmt else 403):
            return 'secret does not authenticate (HTTP %s)' % status
        return 'ok'

    def leaks(self):
        """Created secrets found in any run output or event record."""
        secrets = []
        for dirpath, dummy, names in os.walk(self.secret_root):
            for name in names:
                with open(os.path.join(dirpath, name)) as handle:
                    value = handle.read().strip()
                if value:
                    secrets.append(value)
        found = 0
        for record in self.runs:
            with open(os.path.join(benchlib.ROOT, record['log'])) as handle:
                text = handle.read()
            text += json.dumps(record['events'])
            found += sum(1 for secret in secrets if secret in text)
        return found, len(secrets)

    def remediate(self, lost_reports):
        """The remediation the failure message names: rotate the lost keys once with recreate=always."""
        host_vars = os.path.join(self.inventory, 'host_vars')
        os.makedirs(host_vars, exist_ok=True)
        for host, names in lost_reports.items():
            keys = [dict(key, recreate='always') if key['name'] in names else key for key in self.keys]
            with open(os.path.join(host_vars, '%s.yml' % host), 'w') as handle:
                handle.write('---\ncortecs_project_api_keys: %s\n' % json.dumps(keys))
        record = self.run('remediation', False)
        shutil.rmtree(host_vars)
        return record


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    benchlib.banner('Chaos: %d environments x %d keys, forks %d; 429 %.0f%% (Retry-After %d s), 503 %.0f%% + outages of %g s every %g s, '
                    '%.0f%% of create replies lost, %g ms latency' % (
                        args.environments, args.keys, args.forks, 100 * args.rate_limit, args.retry_after, 100 * args.fail_rate,
                        args.burst_seconds, args.burst_every, 100 * args.lose_create, args.latency_ms))
    chaos = Chaos(args)
    report = dict(date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'), machine=benchlib.machine_facts(),
                  parameters=dict((k, v) for k, v in vars(args).items() if k != 'out'))
    try:
        initial = chaos.admin_keys(chaos.sim.state())
        report['bursts'] = chaos.converge_with_faults()
        fault_runs = len(chaos.runs)
        converged_with_faults = not chaos.runs[-1]['failed_hosts']
        verify = chaos.run('no-faults-verify', False)
        converged = not verify['failed_hosts'] and verify['changed'] == 0 and verify['writes'] == 0
        final = chaos.admin_keys(chaos.sim.state())
        counts, problems, duplicate_warnings, lost_reports = chaos.audit(initial, final)
        leaked, secrets_checked = chaos.leaks()
        counts.update(runs_with_faults=fault_runs, reruns_needed=fault_runs - 1, converged_with_faults=converged_with_faults,
                      verify_run_noop=converged, leaked_secrets=leaked, secret_files_checked_for_leaks=secrets_checked)
        remediation = None
        if lost_reports and not args.no_remediation:
            record = chaos.remediate(lost_reports)
            after = chaos.admin_keys(chaos.sim.state())
            working = sum(1 for host in chaos.hosts for key in chaos.keys
                          if chaos.secret_verdict(host, key['name'], bool(key.get('is_management_key'))) == 'ok')
            final_noop = chaos.run('after-remediation-verify', False)
            remediation = dict(lost_keys_rotated=sum(len(names) for names in lost_reports.values()), failed_hosts=record['failed_hosts'],
                               declared_keys_with_working_secret=working, declared_keys=len(chaos.hosts) * len(chaos.keys),
                               duplicates_after=sum(len(names) - len(set(names)) for names in
                                                    ([n for n, dummy in item] for item in after.values())),
                               noop_after=not final_noop['failed_hosts'] and final_noop['changed'] == 0 and final_noop['writes'] == 0)
            counts['remediated'] = remediation['lost_keys_rotated'] if not record['failed_hosts'] else 0
    except HarnessError as exc:
        print('HARNESS ERROR: %s' % exc, file=sys.stderr)
        return 2
    finally:
        chaos.sim.stop()
    ok = (counts['duplicates'] == 0 and counts['unaccounted'] == 0 and counts['leaked_secrets'] == 0 and converged
          and counts['missing_declared'] == 0 and counts['undeclared_left'] == 0 and counts['duplicate_create_warnings'] == 0
          and counts['http_400_refusals'] == 0
          and (remediation is None or (remediation['declared_keys_with_working_secret'] == remediation['declared_keys']
                                       and remediation['noop_after'] and not remediation['failed_hosts'])))
    report.update(counts=counts, problems=problems, duplicate_warnings=duplicate_warnings, remediation=remediation,
                  lost=dict((host, sorted(names)) for host, names in sorted(lost_reports.items())),
                  runs=[dict((k, v) for k, v in record.items() if k != 'events') for record in chaos.runs], passed=ok)
    with open(os.path.join(args.out, 'results.json'), 'w') as handle:
        json.dump(report, handle, indent=2, sort_keys=True)
        handle.write('\n')
    benchlib.banner('Chaos results')
    print('runs with faults          %d (re-runs needed: %d; last one without a failed environment: %s)' % (
        fault_runs, fault_runs - 1, 'yes' if converged_with_faults else 'NO'))
    print('503 outages injected      %d' % report['bursts'])
    print('verify run without faults %s' % ('no change, 0 writes: converged' if converged else 'NOT a no-op'))
    print('keys created              %d' % counts['keys_created'])
    print('  secrets on disk (0600)  %d  (each authenticates against the simulator)' % counts['secrets_on_disk'])
    print('  secrets reported lost   %d  (message with the remediation: rotate with recreate=always)' % counts['secrets_reported_lost'])
    print('  unaccounted             %d' % counts['unaccounted'])
    print('duplicates                %d  (duplicate-create warnings: %d; HTTP 400 answers, e.g. "already exists": %d)' % (
        counts['duplicates'], counts['duplicate_create_warnings'], counts['http_400_refusals']))
    print('declared keys missing     %d; undeclared keys left %d' % (counts['missing_declared'], counts['undeclared_left']))
    print('secrets in run output     %d (of %d secrets checked)' % (counts['leaked_secrets'], counts['secret_files_checked_for_leaks']))
    if remediation:
        print('remediation run           %d lost keys rotated; %d/%d declared keys have a working secret on disk; next run a no-op: %s' % (
            remediation['lost_keys_rotated'], remediation['declared_keys_with_working_secret'], remediation['declared_keys'],
            'yes' if remediation['noop_after'] else 'NO'))
    for problem in problems:
        print('PROBLEM: %s' % problem)
    print('\n%s; results: %s' % ('PASS' if ok else 'FAIL', os.path.relpath(os.path.join(args.out, 'results.json'), benchlib.ROOT)))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
