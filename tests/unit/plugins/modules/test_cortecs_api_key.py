# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""main() of cortecs_api_key and cortecs_api_key_info: argument handling, the real client, exit/fail."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

import pytest
import requests

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.cortecs.management.plugins.module_utils import api
from ansible_collections.cortecs.management.plugins.modules import cortecs_api_key, cortecs_api_key_info

TOKEN = 'mgmt-Token-For-Module-Tests'
BASE = 'http://127.0.0.1:9/v1'


class Exit(Exception):
    def __init__(self, failed, result):
        super(Exit, self).__init__(result.get('msg'))
        self.failed = failed
        self.result = result


def response(status, body):
    resp = requests.models.Response()
    resp.status_code = status
    resp._content = json.dumps(body).encode()
    return resp


class FakeSession:
    """Serves /manage/api-keys from memory, like the API; records the requests."""

    def __init__(self):
        self.headers = {}
        self.calls = []
        self.keys = [dict(name='management', is_management_key=True, created_at=100)]
        self.status = None

    def request(self, method, url, json=None, **kwargs):
        assert url == BASE + '/manage/api-keys'
        self.calls.append((method, json))
        if self.status:
            return response(self.status, dict(error='Invalid API key'))
        if method == 'GET':
            return response(200, dict(api_keys=self.keys))
        if method == 'POST':
            self.keys.append(dict(name=json['name'], is_management_key=json['is_management_key'], created_at=200))
            return response(201, dict(name=json['name'], is_management_key=json['is_management_key'], api_key='ck-new-secret'))
        self.keys = [key for key in self.keys if key['name'] != json['name']]
        return response(200, dict(success=True, deleted=json['name']))


@pytest.fixture
def session(monkeypatch):
    fake = FakeSession()
    monkeypatch.setattr(api.requests, 'Session', lambda: fake)

    def exit_json(self, **result):
        raise Exit(False, result)

    def fail_json(self, **result):
        raise Exit(True, result)
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    return fake


def main(module, **args):
    args.setdefault('management_key', TOKEN)
    args.setdefault('base_url', BASE)
    with patch_module_args(args):
        with pytest.raises(Exit) as caught:
            module.main()
    return caught.value


def test_create_through_main_uses_the_client_and_returns_the_secret(session):
    outcome = main(cortecs_api_key, name='app')
    assert not outcome.failed
    assert outcome.result['api_key'] == 'ck-new-secret'
    assert outcome.result['key'] == dict(name='app', is_management_key=False, created_at=200)
    assert [c[0] for c in session.calls] == ['GET', 'POST', 'GET']
    assert session.headers['Authorization'] == 'Bearer %s' % TOKEN


def test_converged_run_through_main_makes_one_request(session):
    session.keys.append(dict(name='app', is_management_key=False, created_at=150))
    outcome = main(cortecs_api_key, name='app')
    assert outcome.result['changed'] is False and 'api_key' not in outcome.result
    assert session.calls == [('GET', None)]


def test_check_mode_through_main_makes_no_write(session):
    outcome = main(cortecs_api_key, name='app', _ansible_check_mode=True, _ansible_diff=True)
    assert outcome.result['changed'] is True and outcome.result['action'] == 'created'
    assert outcome.result['diff']['after'] == dict(name='app', is_management_key=False, created_at=None)
    assert session.calls == [('GET', None)]


@pytest.mark.parametrize('args, text', [
    (dict(name='  padded'), 'whitespace'),
    (dict(name='a', api_keys=[dict(name='b')]), 'mutually exclusive'),
    (dict(api_keys=[dict(name='a'), dict(name='a')]), 'more than once'),
    (dict(name='a', recreate='sometimes'), 'recreate'),
    (dict(name='a', management_key=''), 'management_key must not be empty'),
])
def test_bad_input_through_main_fails_before_any_request(session, args, text):
    outcome = main(cortecs_api_key, **args)
    assert outcome.failed and text in outcome.result['msg']
    assert session.calls == []


def test_401_through_main_has_a_clear_message_without_the_token(session):
    session.status = 401
    outcome = main(cortecs_api_key, name='app')
    assert outcome.failed and 'unknown, revoked or mistyped' in outcome.result['msg']
    assert TOKEN not in json.dumps(outcome.result)


def test_set_mode_through_main(session):
    outcome = main(cortecs_api_key, api_keys=[dict(name='a'), dict(name='management', is_management_key=True)], purge=True)
    assert outcome.result['created'] == ['a'] and outcome.result['kept'] == []
    assert [e['action'] for e in outcome.result['api_keys']] == ['created', 'unchanged']
    assert 'keys' not in outcome.result


def test_info_through_main(session):
    session.keys.append(dict(name='plain', is_management_key=False, created_at=150))
    outcome = main(cortecs_api_key_info, is_management_key=False)
    assert outcome.result == dict(changed=False, api_keys=[dict(name='plain', is_management_key=False, created_at=150)])
    assert session.calls == [('GET', None)]
