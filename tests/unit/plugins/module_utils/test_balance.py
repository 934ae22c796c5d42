# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.cortecs.management.plugins.module_utils.api import CortecsAPIError, CortecsClient
from ansible_collections.cortecs.management.plugins.module_utils.balance import BALANCE_INFO, BALANCE_PATH, read_balance
from ansible_collections.cortecs.management.plugins.module_utils.runner import execute
from ansible_collections.cortecs.management.plugins.modules import cortecs_balance_info


class FakeClient:
    def __init__(self, reply):
        self.reply = reply
        self.calls = []

    def get(self, path):
        self.calls.append(('GET', path))
        if isinstance(self.reply, BaseException):
            raise self.reply
        return self.reply


@pytest.mark.parametrize('reply, expected', [
    ({'current_balance': 42.5, 'currency': 'EUR'}, {'current_balance': 42.5, 'currency': 'EUR'}),
    ({'current_balance': 7, 'currency': 'EUR'}, {'current_balance': 7.0, 'currency': 'EUR'}),
    ({'current_balance': -1.25, 'currency': 'USD', 'extra': 1}, {'current_balance': -1.25, 'currency': 'USD'}),
    ({'current_balance': 0}, {'current_balance': 0.0, 'currency': None}),
])
def test_read_balance(reply, expected):
    client = FakeClient(reply)
    balance = read_balance(client)
    assert balance == expected
    assert isinstance(balance['current_balance'], float)
    assert client.calls == [('GET', BALANCE_PATH)]


@pytest.mark.parametrize('reply', [None, [], 'text', {}, {'current_balance': '3.5'}, {'current_balance': True}, {'current_balance': None}])
def test_unexpected_reply_fails(reply):
    failed, result, dummy = execute(BALANCE_INFO, {}, False, False, client_factory=lambda p: FakeClient(reply))
    assert failed
    assert result['msg'].startswith('Cortecs API GET %s returned an unexpected reply' % BALANCE_PATH)
    assert result['changed'] is False


@pytest.mark.parametrize('check_mode', [False, True])
def test_balance_info_never_changes_and_runs_in_check_mode(check_mode):
    client = FakeClient({'current_balance': 3.5, 'currency': 'EUR'})
    failed, result, warnings = execute(BALANCE_INFO, {}, check_mode, False, client_factory=lambda p: client)
    assert not failed and warnings == []
    assert result == {'changed': False, 'balance': {'current_balance': 3.5, 'currency': 'EUR'}}
    assert client.calls == [('GET', BALANCE_PATH)]


def test_api_errors_keep_status_and_text():
    error = CortecsAPIError('GET', BALANCE_PATH, 403, 'The provided API key is not a management key')
    failed, result, dummy = execute(BALANCE_INFO, {}, False, False, client_factory=lambda p: FakeClient(error))
    assert failed
    assert 'HTTP 403: The provided API key is not a management key' in result['msg']
    assert result['status'] == 403 and result['api_error'] == 'The provided API key is not a management key'


class ModuleExit(Exception):
    pass


def test_module_main(monkeypatch):
    seen = []

    def request(self, method, path, body=None):
        seen.append((method, path))
        return {'current_balance': 12.0, 'currency': 'EUR'}

    def leave(failed):
        def handler(self, **result):
            raise ModuleExit(failed, result)
        return handler
    monkeypatch.setattr(CortecsClient, 'request', request)
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', leave(False))
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', leave(True))
    with patch_module_args(dict(management_key='sim-admin-key', base_url='http://127.0.0.1:9/v1', _ansible_check_mode=True)):
        with pytest.raises(ModuleExit) as exc:
            cortecs_balance_info.main()
    failed, result = exc.value.args
    assert not failed
    assert result['balance'] == {'current_balance': 12.0, 'currency': 'EUR'} and result['changed'] is False
    assert seen == [('GET', BALANCE_PATH)]
    assert 'sim-admin-key' not in json.dumps(result)
