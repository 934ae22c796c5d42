# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Test helper of `make chaos` (not part of the collection): record task outcomes as JSON lines.

Enabled only by tests/bench/chaos.py (ANSIBLE_CALLBACK_PLUGINS + ANSIBLE_CALLBACKS_ENABLED); writes one
line per task result to the file named by CORTECS_BENCH_EVENTS: host, task, status, changed, msg,
warnings and the per-key outcomes of cortecs_api_key (names and actions only). It sees results after
Ansible's no_log censoring and never copies a field named api_key.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os

from ansible.plugins.callback import CallbackBase


def _key_outcomes(result):
    outcomes = []
    for item in result.get('api_keys') or []:
        if isinstance(item, dict):
            outcomes.append(dict(name=item.get('name'), action=item.get('action'), secret_file=item.get('secret_file')))
    return outcomes


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'cortecs_bench_events'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._path = os.environ.get('CORTECS_BENCH_EVENTS')

    def _record(self, status, result):
        if not self._path:
            return
        data = result._result
        event = dict(
            host=result._host.get_name(),
            task=result._task.get_name(),
            action=result._task.action,
            status=status,
            changed=bool(data.get('changed')),
            censored=bool(data.get('censored')),
            msg='%s' % data.get('msg', ''),
            warnings=['%s' % warning for warning in data.get('warnings') or []],
            created=list(data.get('created') or []),
            deleted=list(data.get('deleted') or []),
            keys=_key_outcomes(data),
        )
        with open(self._path, 'a') as handle:
            handle.write(json.dumps(event, sort_keys=True) + '\n')

    def v2_runner_on_ok(self, result):
        self._record('ok', result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record('failed', result)

    def v2_runner_on_skipped(self, result):
        self._record('skipped', result)

    def v2_runner_on_unreachable(self, result):
        self._record('unreachable', result)
