# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Decision logic of cortecs_api_key / cortecs_api_key_info against a fake client (no HTTP)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import stat

import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.cortecs.management.plugins.module_utils import api_key as mod
from ansible_collections.cortecs.management.plugins.module_utils.api import (
    CortecsAPIError,
    CortecsConnectionError,
    CortecsError,
)
from ansible_collections.cortecs.management.plugins.module_utils.api_key import API_KEY, API_KEY_INFO, KEYS_PATH
from ansible_collections.cortecs.management.plugins.module_utils.runner import RunContext

MGMT_TOKEN = 'mgmt-token-Never-Printed'


class FakeClient:
    """An in-memory key store with the API's rules; records every call; hooks inject races and faults."""

    def __init__(self, keys=None, in_use='management', limit=20, created_at_in_reply=False):
        self.keys = {}
        for name, mgmt in (keys if keys is not None else [('management', True), ('default', False)]):
            self.keys[name] = dict(name=name, is_management_key=mgmt, created_at=1000 + len(self.keys))
        self.in_use = in_use
        self.limit = limit
        self.created_at_in_reply = created_at_in_reply
        self.calls = []
        self.secrets = {}
        self.before = {}   # method -> list of callables run before the request is handled (raise to fail it)
        self.after = {}    # method -> list of callables run after it was applied (raise to lose the reply)
        self.clock = 2000

    def hook(self, table, method, func):
        table.setdefault(method, []).append(func)

    def _run_hooks(self, table, method):
        if table.get(method):
            table[method].pop(0)()

    @property
    def writes(self):
        return [call for call in self.calls if call[0] != 'GET']

    @property
    def reads(self):
        return [call for call in self.calls if call[0] == 'GET']

    def get(self, path):
        assert path == KEYS_PATH
        self.calls.append(('GET', path, None))
        self._run_hooks(self.before, 'GET')
        return dict(api_keys=[dict(key) for key in self.keys.values()])

    def post(self, path, body):
        assert path == KEYS_PATH
        self.calls.append(('POST', path, body))
        self._run_hooks(self.before, 'POST')
        if body['name'] in self.keys:
            raise CortecsAPIError('POST', path, 400, "API key with name '%s' already exists" % body['name'])
        if len(self.keys) >= self.limit:
            raise CortecsAPIError('POST', path, 400, 'API key limit reached (%d)' % self.limit)
        self.clock += 1
        self.keys[body['name']] = dict(name=body['name'], is_management_key=body['is_management_key'], created_at=self.clock)
        secret = 'ck-secret-%s-%d' % (body['name'], self.clock)
        self.secrets[body['name']] = secret
        self._run_hooks(self.after, 'POST')
        reply = dict(name=body['name'], is_management_key=body['is_management_key'], api_key=secret)
        if self.created_at_in_reply:
            reply['created_at'] = self.clock
        return reply

    def delete(self, path, body):
        assert path == KEYS_PATH
        self.calls.append(('DELETE', path, body))
        self._run_hooks(self.before, 'DELETE')
        if body['name'] not in self.keys:
            raise CortecsAPIError('DELETE', path, 404, "API key '%s' not found" % body['name'])
        if body['name'] == self.in_use:
            raise CortecsAPIError('DELETE', path, 400, "Cannot delete the API key '%s': it is in use for this request" % body['name'])
        del self.keys[body['name']]
        self._run_hooks(self.after, 'DELETE')
        return dict(success=True, deleted=body['name'])


def raising(exc):
    """A hook that fails the request with `exc`."""
    def hook():
        raise exc
    return hook


def validated(resource, args):
    args = dict(args)
    args.setdefault('management_key', MGMT_TOKEN)
    result = ArgumentSpecValidator(resource.argument_spec, **resource.validation).validate(args)
    if result.error_messages:
        raise CortecsError('invalid arguments: %s' % result.errors.msg)
    return result.validated_parameters


def run(client, resource=API_KEY, check_mode=False, diff_mode=False, **args):
    """Run the resource; returns (failed, result, warnings) like runner.execute."""
    ctx = None
    try:
        ctx = RunContext(validated(resource, args), check_mode=check_mode, diff_mode=diff_mode, client_factory=lambda params: client)
        result = resource.run(ctx)
    except CortecsError as exc:
        result = dict(exc.result)
        result['msg'] = exc.msg
        return True, result, ctx.warnings if ctx else []
    return False, result, ctx.warnings


def ok(client, **kwargs):
    failed, result, warnings = run(client, **kwargs)
    assert not failed, result
    return result, warnings


def fail(client, **kwargs):
    failed, result, warnings = run(client, **kwargs)
    assert failed, result
    return result, warnings


def secrets_in(value):
    """Every string anywhere in a result, to look for secrets."""
    return json.dumps(value, sort_keys=True, default=str)


# --- input validation: fails before any request --------------------------------------------------

class NoCallClient:
    def __getattr__(self, name):
        raise AssertionError('no request expected, got %s' % name)


@pytest.mark.parametrize('args, text', [
    (dict(name=''), 'must not be empty'),
    (dict(name='x' * 101), 'at most 100 characters'),
    (dict(name=' lead'), 'whitespace'),
    (dict(name='trail\t'), 'whitespace'),
    (dict(name='nul\x00'), 'NUL'),
    (dict(api_keys=[dict(name='a'), dict(name='')]), "api_keys[1] () : an API key name must not be empty".replace(' :', ':')),
    (dict(api_keys=[dict(name='a'), dict(name='b'), dict(name='a')]), 'more than once: a'),
    (dict(api_keys=[dict(name='a', secret_file='/tmp/x'), dict(name='b', secret_file='/tmp/x')]), 'same file: /tmp/x'),
    (dict(name='a', secret_file='relative/file'), 'secret_file must be an absolute path'),
    (dict(name='a', secret_dir='relative'), 'secret_dir must be an absolute path'),
    (dict(name='a/b', secret_dir='/tmp/s'), 'cannot be used as a file name in secret_dir'),
    (dict(name='..', secret_dir='/tmp/s'), 'cannot be used as a file name in secret_dir'),
    (dict(api_keys=[dict(name='a')], purge_management_keys=True), 'purge_management_keys=true requires purge=true'),
    (dict(name='a', purge=True), 'api_keys'),
    (dict(name='a', api_keys=[dict(name='b')]), 'mutually exclusive'),
    (dict(api_keys=[dict(name='b')], secret_file='/tmp/x'), 'mutually exclusive'),
    (dict(state='present'), 'one of the following is required'),
])
def test_bad_input_fails_before_any_request(args, text):
    result, dummy = fail(NoCallClient(), **args)
    assert text in result['msg']


def test_name_of_100_characters_is_accepted():
    client = FakeClient()
    result, dummy = ok(client, name='x' * 100)
    assert result['action'] == 'created'


def test_info_bad_name_fails_before_any_request():
    result, dummy = fail(NoCallClient(), resource=API_KEY_INFO, name=' x')
    assert 'whitespace' in result['msg']


def test_spec_has_no_top_level_keys_result_and_secrets_only_under_api_key():
    client = FakeClient()
    result, dummy = ok(client, api_keys=[dict(name='a')], diff_mode=True)
    assert 'keys' not in result
    secret = client.secrets['a']
    assert result['api_keys'][0]['api_key'] == secret
    without = json.loads(json.dumps(result))
    del without['api_keys'][0]['api_key']
    assert secret not in secrets_in(without)


# --- single key ---------------------------------------------------------------------------------

def test_create_returns_secret_once_then_converges_with_one_list():
    client = FakeClient()
    result, warnings = ok(client, name='app')
    assert result['changed'] is True and result['action'] == 'created'
    assert result['api_key'] == client.secrets['app']
    assert result['key'] == dict(name='app', is_management_key=False, created_at=client.keys['app']['created_at'])
    assert [c[0] for c in client.calls] == ['GET', 'POST', 'GET']  # the reply has no created_at: one more list
    assert client.calls[1][2] == dict(name='app', is_management_key=False)
    assert warnings == []

    client.calls = []
    result, warnings = ok(client, name='app')
    assert result == dict(changed=False, action='unchanged', key=dict(client.keys['app']))
    assert [c[0] for c in client.calls] == ['GET']


def test_created_at_from_reply_needs_no_second_list():
    client = FakeClient(created_at_in_reply=True)
    result, dummy = ok(client, name='app', is_management_key=True)
    assert result['key'] == dict(name='app', is_management_key=True, created_at=client.keys['app']['created_at'])
    assert [c[0] for c in client.calls] == ['GET', 'POST']


def test_created_at_relist_failure_only_warns():
    client = FakeClient()
    client.hook(client.before, 'GET', lambda: None)
    client.hook(client.before, 'GET', raising(CortecsAPIError('GET', KEYS_PATH, 500, 'boom')))
    result, warnings = ok(client, name='app')
    assert result['api_key'] == client.secrets['app'] and result['key']['created_at'] is None
    assert 'Could not read created_at' in warnings[0]


def test_present_existing_key_is_unchanged_without_secret():
    client = FakeClient()
    result, dummy = ok(client, name='default')
    assert result == dict(changed=False, action='unchanged', key=dict(name='default', is_management_key=False, created_at=1001))
    assert client.writes == []


def test_absent_deletes_existing_key():
    client = FakeClient()
    result, dummy = ok(client, name='default', state='absent', diff_mode=True)
    assert result['changed'] is True and result['action'] == 'deleted' and 'key' not in result
    assert result['diff'] == dict(before=dict(name='default', is_management_key=False, created_at=1001), after={})
    assert client.writes == [('DELETE', KEYS_PATH, dict(name='default'))]
    assert 'default' not in client.keys


def test_absent_missing_key_is_unchanged_with_one_list():
    client = FakeClient()
    result, dummy = ok(client, name='nope', state='absent')
    assert result == dict(changed=False, action='unchanged')
    assert [c[0] for c in client.calls] == ['GET']


def test_absent_404_race_on_delete_is_unchanged():
    client = FakeClient()
    client.hook(client.before, 'DELETE', lambda: client.keys.pop('default'))
    result, dummy = ok(client, name='default', state='absent')
    assert result['changed'] is False and result['action'] == 'unchanged'


def test_delete_reply_lost_but_applied_counts_as_deleted():
    client = FakeClient()
    client.hook(client.after, 'DELETE', raising(CortecsConnectionError('reset', maybe_applied=True)))
    result, dummy = ok(client, name='default', state='absent')
    assert result['action'] == 'deleted'
    assert [c[0] for c in client.calls] == ['GET', 'DELETE', 'GET']


def test_delete_reply_lost_and_not_applied_fails():
    client = FakeClient()
    client.hook(client.before, 'DELETE', raising(CortecsConnectionError('reset', maybe_applied=True)))
    result, dummy = fail(client, name='default', state='absent')
    assert 'reset' in result['msg'] and 'default' in client.keys


def test_deleting_the_key_in_use_fails_with_clear_message():
    client = FakeClient()
    result, dummy = fail(client, name='management', state='absent')
    assert "cannot be deleted" in result['msg'] and 'another management key' in result['msg']
    assert result['status'] == 400 and 'in_use' not in result
    assert 'management' in client.keys


@pytest.mark.parametrize('have, want', [(False, True), (True, False)])
def test_mismatch_with_recreate_never_fails_and_explains(have, want):
    client = FakeClient(keys=[('management', True), ('app', have)])
    result, dummy = fail(client, name='app', is_management_key=want)
    assert 'recreate=on_change' in result['msg'] and 'Nothing was changed' in result['msg']
    assert 'is_management_key=%s but %s is requested' % (str(have).lower(), str(want).lower()) in result['msg']
    assert client.writes == []


def test_mismatch_with_recreate_on_change_recreates():
    client = FakeClient(keys=[('management', True), ('app', False)])
    result, dummy = ok(client, name='app', is_management_key=True, recreate='on_change', diff_mode=True)
    assert result['action'] == 'recreated' and result['changed'] is True
    assert result['api_key'] == client.secrets['app']
    assert client.keys['app']['is_management_key'] is True
    assert [c[0] for c in client.writes] == ['DELETE', 'POST']
    assert result['diff']['before']['is_management_key'] is False and result['diff']['after']['is_management_key'] is True
    assert client.secrets['app'] not in secrets_in(result['diff'])

    client.calls = []
    result, dummy = ok(client, name='app', is_management_key=True, recreate='on_change')
    assert result['changed'] is False and client.writes == []


def test_recreate_always_rotates_every_run():
    client = FakeClient()
    first, dummy = ok(client, name='default', recreate='always')
    first_secret = client.secrets['default']
    second, dummy = ok(client, name='default', recreate='always')
    assert first['action'] == second['action'] == 'recreated'
    assert first['api_key'] == first_secret and second['api_key'] == client.secrets['default'] != first_secret


def test_recreate_always_creates_a_missing_key():
    client = FakeClient()
    result, dummy = ok(client, name='new', recreate='always')
    assert result['action'] == 'created' and [c[0] for c in client.writes] == ['POST']


def test_recreate_of_the_key_in_use_fails_before_creating():
    client = FakeClient()
    result, dummy = fail(client, name='management', is_management_key=True, recreate='always')
    assert 'cannot be deleted' in result['msg'] and [c[0] for c in client.writes] == ['DELETE']


def test_recreate_whose_create_fails_tells_the_key_is_gone():
    client = FakeClient()
    client.hook(client.before, 'POST', raising(CortecsAPIError('POST', KEYS_PATH, 500, 'boom')))
    result, warnings = fail(client, name='default', recreate='always')
    assert 'already deleted the key' in result['msg'] and result['changed'] is True and warnings == []
    assert result['action'] == 'deleted' and 'default' not in client.keys and 'key' not in result


@pytest.mark.parametrize('args, action', [
    (dict(name='new'), 'created'),
    (dict(name='default', state='absent'), 'deleted'),
    (dict(name='default', is_management_key=True, recreate='on_change'), 'recreated'),
    (dict(name='default', recreate='always'), 'recreated'),
    (dict(name='default'), 'unchanged'),
    (dict(name='nope', state='absent'), 'unchanged'),
])
def test_check_mode_predicts_without_writes(tmp_path, args, action):
    client = FakeClient()
    before = json.dumps(client.keys, sort_keys=True)
    secret_file = tmp_path / 'secret'
    if args.get('state') != 'absent':
        args = dict(args, secret_file=str(secret_file))
    result, dummy = ok(client, check_mode=True, diff_mode=True, **args)
    assert result['action'] == action and result['changed'] is (action != 'unchanged')
    assert client.writes == [] and [c[0] for c in client.calls] == ['GET']
    assert json.dumps(client.keys, sort_keys=True) == before
    assert 'api_key' not in result and 'secret_file' not in result
    assert not secret_file.exists()
    if action in ('created', 'recreated'):
        assert result['key'] == dict(name=args['name'], is_management_key=args.get('is_management_key', False), created_at=None)
        assert result['diff']['after'] == result['key']


def test_check_mode_does_not_create_secret_dir(tmp_path):
    client = FakeClient()
    secret_dir = tmp_path / 'secrets'
    result, dummy = ok(client, check_mode=True, api_keys=[dict(name='a')], secret_dir=str(secret_dir))
    assert result['created'] == ['a'] and not secret_dir.exists() and client.writes == []


def test_diff_of_a_created_key_never_holds_the_secret():
    client = FakeClient()
    result, dummy = ok(client, name='app', diff_mode=True)
    assert result['diff'] == dict(before={}, after=result['key'])
    assert result['key']['created_at'] == client.keys['app']['created_at']
    assert client.secrets['app'] not in secrets_in(result['diff'])


def test_no_diff_without_diff_mode():
    result, dummy = ok(FakeClient(), name='app')
    assert 'diff' not in result


# --- secret files -------------------------------------------------------------------------------

def mode_of(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def test_secret_file_gets_the_secret_with_mode_0600_and_result_has_only_the_path(tmp_path):
    client = FakeClient()
    path = tmp_path / 'app.key'
    result, dummy = ok(client, name='app', secret_file=str(path))
    assert path.read_text() == client.secrets['app']
    assert mode_of(path) == 0o600
    assert result['secret_file'] == str(path) and 'api_key' not in result
    assert client.secrets['app'] not in secrets_in(result)
    assert [p.name for p in tmp_path.iterdir()] == ['app.key']  # no temporary file left behind


def test_secret_file_with_a_long_name_is_written(tmp_path):
    client = FakeClient()
    path = tmp_path / ('k' * 250)
    result, dummy = ok(client, name='app', secret_file=str(path))
    assert path.read_text() == client.secrets['app'] and result['secret_file'] == str(path)


def test_existing_secret_file_is_not_overwritten_by_a_create(tmp_path):
    client = FakeClient()
    path = tmp_path / 'app.key'
    path.write_text('old-secret')
    result, dummy = fail(client, name='app', secret_file=str(path))
    assert 'already exists' in result['msg'] and 'Nothing was changed' in result['msg']
    assert client.writes == [] and path.read_text() == 'old-secret'


def test_rotation_overwrites_the_existing_secret_file(tmp_path):
    client = FakeClient()
    path = tmp_path / 'default.key'
    path.write_text('old-secret')
    os.chmod(str(path), 0o644)
    result, dummy = ok(client, name='default', recreate='always', secret_file=str(path))
    assert result['action'] == 'recreated' and path.read_text() == client.secrets['default']
    assert mode_of(path) == 0o600 and 'api_key' not in result


def test_missing_directory_of_secret_file_fails_before_any_write(tmp_path):
    client = FakeClient()
    result, dummy = fail(client, name='app', secret_file=str(tmp_path / 'missing' / 'app.key'))
    assert 'does not exist' in result['msg'] and client.writes == []


def test_secret_file_that_is_a_directory_fails_before_any_write(tmp_path):
    client = FakeClient()
    result, dummy = fail(client, name='default', recreate='always', secret_file=str(tmp_path))
    assert 'is a directory' in result['msg'] and client.writes == []


def test_unchanged_key_with_missing_secret_file_warns(tmp_path):
    client = FakeClient()
    result, warnings = ok(client, name='default', secret_file=str(tmp_path / 'default.key'))
    assert result['changed'] is False
    assert 'default' in warnings[0] and 'recreate=always' in warnings[0]


def test_write_failure_after_create_fails_with_the_secret_and_a_warning(tmp_path, monkeypatch):
    client = FakeClient()

    def broken_rename(src, dst):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(mod.os, 'rename', broken_rename)
    path = tmp_path / 'app.key'
    result, warnings = fail(client, name='app', secret_file=str(path))
    assert result['api_key'] == client.secrets['app']
    assert result['changed'] is True and result['action'] == 'created'
    assert 'was created' in result['msg'] and 'under api_key' in result['msg'] and 'No space left' in result['msg']
    assert "'app'" in warnings[0] and 'under api_key' in warnings[0]
    assert client.secrets['app'] not in result['msg'] + warnings[0]
    assert list(tmp_path.iterdir()) == []  # the temporary file was removed


def test_secret_dir_is_created_0700_and_gets_one_file_per_key(tmp_path):
    client = FakeClient()
    secret_dir = tmp_path / 'a' / 'secrets'
    result, dummy = ok(client, api_keys=[dict(name='one'), dict(name='two', secret_file=str(tmp_path / 'two.key'))],
                       secret_dir=str(secret_dir))
    assert mode_of(secret_dir) == 0o700
    assert (secret_dir / 'one').read_text() == client.secrets['one']
    assert (tmp_path / 'two.key').read_text() == client.secrets['two']
    assert [entry.get('secret_file') for entry in result['api_keys']] == [str(secret_dir / 'one'), str(tmp_path / 'two.key')]
    assert all('api_key' not in entry for entry in result['api_keys'])


def test_secret_dir_that_cannot_be_created_fails_before_any_create(tmp_path):
    client = FakeClient()
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    result, dummy = fail(client, api_keys=[dict(name='one'), dict(name='default', state='absent')], secret_dir=str(blocker / 'sub'))
    assert client.writes == []
    assert 'Could not create secret_dir' in result['msg'] and 'no key was created' in result['msg']


# --- races and faults ---------------------------------------------------------------------------

def test_duplicate_race_reports_the_existing_key_unchanged_with_warning():
    client = FakeClient()

    def someone_else_creates():
        client.keys['app'] = dict(name='app', is_management_key=True, created_at=1500)
    client.hook(client.before, 'POST', someone_else_creates)
    result, warnings = ok(client, name='app')
    assert result == dict(changed=False, action='unchanged', key=dict(name='app', is_management_key=True, created_at=1500))
    assert 'created by someone else' in warnings[0] and 'is_management_key=true, not false' in warnings[0]
    assert [c[0] for c in client.calls] == ['GET', 'POST', 'GET']


def test_create_reply_lost_after_it_was_applied_fails_saying_the_secret_is_lost():
    client = FakeClient()
    client.hook(client.after, 'POST', raising(CortecsConnectionError('connection reset', maybe_applied=True)))
    result, dummy = fail(client, name='app')
    assert 'WAS created' in result['msg'] and 'secret was lost' in result['msg']
    assert 'recreate=always' in result['msg'] and 'state=absent' in result['msg']
    assert result['changed'] is True and 'api_key' not in result
    assert [c[0] for c in client.calls] == ['GET', 'POST', 'GET']


def test_create_reply_lost_before_it_was_applied_fails_saying_rerun_is_safe():
    client = FakeClient()
    client.hook(client.before, 'POST', raising(CortecsConnectionError('connection reset', maybe_applied=True)))
    result, dummy = fail(client, name='app')
    assert 'NOT created' in result['msg'] and 'safe' in result['msg'] and result['changed'] is False


def test_create_reply_lost_and_relist_fails():
    client = FakeClient()
    client.hook(client.after, 'POST', raising(CortecsConnectionError('connection reset', maybe_applied=True)))
    client.hook(client.before, 'GET', lambda: None)
    client.hook(client.before, 'GET', raising(CortecsConnectionError('down', maybe_applied=False)))
    result, dummy = fail(client, name='app')
    assert 'got no reply' in result['msg'] and 'failed too' in result['msg']


def test_create_not_sent_is_a_plain_connection_error():
    client = FakeClient()
    client.hook(client.before, 'POST', raising(CortecsConnectionError('refused', maybe_applied=False)))
    result, dummy = fail(client, name='app')
    assert result['msg'] == 'refused'
    assert [c[0] for c in client.calls] == ['GET', 'POST']


def test_create_reply_without_secret_fails_clearly():
    client = FakeClient()
    client.post = lambda path, body: dict(name=body['name'])
    result, dummy = fail(client, name='app')
    assert 'held no secret' in result['msg'] and 'recreate=always' in result['msg'] and result['changed'] is True


def test_key_limit_fails_with_clear_message():
    client = FakeClient(limit=2)
    result, dummy = fail(client, name='app')
    assert 'limit of API keys' in result['msg'] and 'state=absent' in result['msg']
    assert result['status'] == 400 and 'limit reached' in result['api_error']


def test_other_400_on_create_is_reported():
    client = FakeClient()
    client.hook(client.before, 'POST', raising(CortecsAPIError('POST', KEYS_PATH, 400, 'bad name')))
    result, dummy = fail(client, name='app')
    assert 'refused to create' in result['msg'] and 'bad name' in result['msg']


@pytest.mark.parametrize('status, text', [(401, 'unknown, revoked or mistyped'), (403, 'not a management key')])
@pytest.mark.parametrize('method', ['GET', 'POST', 'DELETE'])
def test_auth_errors_have_specific_messages(status, text, method):
    client = FakeClient()
    client.hook(client.before, method, raising(CortecsAPIError(method, KEYS_PATH, status, 'nope')))
    args = dict(name='default', state='absent') if method == 'DELETE' else dict(name='app')
    result, dummy = fail(client, **args)
    assert text in result['msg'] and 'HTTP %d' % status in result['msg'] and result['status'] == status


def test_server_error_on_list_is_reported():
    client = FakeClient()
    client.hook(client.before, 'GET', raising(CortecsAPIError('GET', KEYS_PATH, 500, 'internal')))
    result, dummy = fail(client, name='app')
    assert 'HTTP 500' in result['msg'] and client.writes == []


@pytest.mark.parametrize('reply', [None, [], dict(), dict(api_keys='x'), dict(api_keys=[dict(nom='x')])])
def test_unexpected_list_reply_fails(reply):
    client = FakeClient()
    client.get = lambda path: reply
    result, dummy = fail(client, name='app')
    assert 'unexpected reply' in result['msg']


# --- set mode -----------------------------------------------------------------------------------

def test_set_creates_reports_and_converges_with_one_list():
    client = FakeClient()
    declared = [dict(name='a'), dict(name='b', is_management_key=True), dict(name='default'), dict(name='gone', state='absent')]
    result, warnings = ok(client, api_keys=declared)
    assert result['changed'] is True and result['created'] == ['a', 'b'] and result['deleted'] == []
    assert [(e['name'], e['action'], e['state']) for e in result['api_keys']] == [
        ('a', 'created', 'present'), ('b', 'created', 'present'), ('default', 'unchanged', 'present'), ('gone', 'unchanged', 'absent')]
    assert result['api_keys'][0]['api_key'] == client.secrets['a'] and result['api_keys'][1]['api_key'] == client.secrets['b']
    assert result['api_keys'][1]['is_management_key'] is True and result['api_keys'][1]['created_at'] == client.keys['b']['created_at']
    assert result['api_keys'][3]['is_management_key'] is None
    assert 'kept' not in result and warnings == []

    client.calls = []
    result, dummy = ok(client, api_keys=declared)
    assert result['changed'] is False and result['created'] == [] and result['deleted'] == []
    assert all(e['action'] == 'unchanged' and 'api_key' not in e for e in result['api_keys'])
    assert [c[0] for c in client.calls] == ['GET']


def test_set_entries_inherit_top_level_defaults():
    client = FakeClient(keys=[('management', True), ('x', False)])
    result, dummy = ok(client, api_keys=[dict(name='x'), dict(name='y', is_management_key=False)], is_management_key=True, recreate='on_change')
    assert client.keys['x']['is_management_key'] is True and client.keys['y']['is_management_key'] is False
    assert [e['action'] for e in result['api_keys']] == ['recreated', 'created']
    result, dummy = ok(client, api_keys=[dict(name='x'), dict(name='y', state='present')], state='absent')
    assert [e['action'] for e in result['api_keys']] == ['deleted', 'unchanged']


def test_set_mismatches_are_all_reported_before_any_write():
    client = FakeClient(keys=[('management', True), ('p', False), ('q', True)])
    result, dummy = fail(client, api_keys=[dict(name='p', is_management_key=True), dict(name='q', is_management_key=False)])
    assert "'p'" in result['msg'] and "'q'" in result['msg'] and client.writes == []


def test_purge_deletes_undeclared_plain_keys_and_keeps_management_keys():
    client = FakeClient(keys=[('management', True), ('default', False), ('other-admin', True), ('stale', False)])
    result, warnings = ok(client, api_keys=[dict(name='app')], purge=True, diff_mode=True)
    assert result['deleted'] == ['default', 'stale'] and result['created'] == ['app']
    assert result['kept'] == ['management', 'other-admin']
    assert sorted(client.keys) == ['app', 'management', 'other-admin']
    assert [(e['name'], e['action'], e['state']) for e in result['api_keys']] == [
        ('app', 'created', 'present'), ('default', 'deleted', 'absent'), ('stale', 'deleted', 'absent')]
    assert [c[0] for c in client.writes] == ['DELETE', 'DELETE', 'POST']  # deletions first free key slots
    assert [k['name'] for k in result['diff']['before']['api_keys']] == ['default', 'management', 'other-admin', 'stale']
    assert [k['name'] for k in result['diff']['after']['api_keys']] == ['app', 'management', 'other-admin']
    assert client.secrets['app'] not in secrets_in(result['diff'])

    client.calls = []
    result, dummy = ok(client, api_keys=[dict(name='app')], purge=True)
    assert result['changed'] is False and [c[0] for c in client.calls] == ['GET']


def test_purge_management_keys_never_deletes_the_key_in_use():
    client = FakeClient(keys=[('management', True), ('other-admin', True), ('default', False)])
    result, warnings = ok(client, api_keys=[], purge=True, purge_management_keys=True)
    assert result['deleted'] == ['other-admin', 'default'] and result['kept'] == ['management']
    assert sorted(client.keys) == ['management']
    assert "purge kept the API key 'management'" in warnings[0]
    assert [e['name'] for e in result['api_keys']] == ['other-admin', 'default']

    client.calls = []
    result, warnings = ok(client, api_keys=[], purge=True, purge_management_keys=True)
    assert result['changed'] is False and result['kept'] == ['management'] and len(warnings) == 1


def test_purge_in_check_mode_predicts_without_writes():
    client = FakeClient(keys=[('management', True), ('default', False)])
    result, dummy = ok(client, api_keys=[dict(name='new')], purge=True, check_mode=True)
    assert result['created'] == ['new'] and result['deleted'] == ['default'] and result['kept'] == ['management']
    assert client.writes == [] and sorted(client.keys) == ['default', 'management']


def test_set_failure_midway_keeps_the_created_secrets_in_the_result():
    client = FakeClient(limit=3)
    result, warnings = fail(client, api_keys=[dict(name='a'), dict(name='b'), dict(name='c')])
    assert 'limit of API keys' in result['msg'] and 'already created: a' in result['msg']
    assert warnings == [result['msg'] + ' (The task output is hidden because the result holds new secrets under api_key; register it to keep them.)']
    assert result['changed'] is True and result['created'] == ['a']
    assert [e['name'] for e in result['api_keys']] == ['a']
    assert result['api_keys'][0]['api_key'] == client.secrets['a']


def test_set_explicit_delete_of_the_key_in_use_fails():
    client = FakeClient()
    result, dummy = fail(client, api_keys=[dict(name='management', state='absent')])
    assert 'cannot be deleted' in result['msg'] and result['changed'] is False


def test_set_write_failure_keeps_secret_and_names_key(tmp_path, monkeypatch):
    client = FakeClient()
    calls = []

    def rename_second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(13, 'Permission denied')
        os.replace(src, dst)
    monkeypatch.setattr(mod.os, 'rename', rename_second_fails)
    result, warnings = fail(client, api_keys=[dict(name='a'), dict(name='b'), dict(name='c')], secret_dir=str(tmp_path))
    assert [(e['name'], e.get('secret_file'), e.get('api_key')) for e in result['api_keys']] == [
        ('a', str(tmp_path / 'a'), None), ('b', None, client.secrets['b'])]
    assert "'b'" in warnings[0] and 'c' not in client.keys
    assert 'already created: a, b' in result['msg']


def test_set_diff_lists_public_fields_only():
    client = FakeClient()
    result, dummy = ok(client, api_keys=[dict(name='a'), dict(name='default', state='absent')], diff_mode=True)
    before = result['diff']['before']['api_keys']
    after = result['diff']['after']['api_keys']
    assert before == [dict(name='default', is_management_key=False, created_at=1001), dict(name='management', is_management_key=True, created_at=1000)]
    assert after == [dict(name='a', is_management_key=False, created_at=client.keys['a']['created_at']),
                     dict(name='management', is_management_key=True, created_at=1000)]


def test_set_race_reports_existing_key_unchanged():
    client = FakeClient()
    client.hook(client.before, 'POST', lambda: client.keys.update(b=dict(name='b', is_management_key=False, created_at=5)))
    result, warnings = ok(client, api_keys=[dict(name='b')])
    assert result['changed'] is False and result['created'] == [] and result['api_keys'][0]['action'] == 'unchanged'
    assert 'someone else' in warnings[0]


# --- info ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('args, names', [
    (dict(), ['management', 'default', 'ops']),
    (dict(name='ops'), ['ops']),
    (dict(name='missing'), []),
    (dict(is_management_key=True), ['management', 'ops']),
    (dict(is_management_key=False), ['default']),
    (dict(name='ops', is_management_key=False), []),
])
def test_info_filters(args, names):
    client = FakeClient(keys=[('management', True), ('default', False), ('ops', True)])
    for check_mode in (False, True):
        client.calls = []
        result, dummy = ok(client, resource=API_KEY_INFO, check_mode=check_mode, **args)
        assert result['changed'] is False and [k['name'] for k in result['api_keys']] == names
        assert all(set(k) == set(['name', 'is_management_key', 'created_at']) for k in result['api_keys'])
        assert [c[0] for c in client.calls] == ['GET']


def test_info_auth_error():
    client = FakeClient()
    client.hook(client.before, 'GET', raising(CortecsAPIError('GET', KEYS_PATH, 403, 'no')))
    result, dummy = fail(client, resource=API_KEY_INFO)
    assert 'not a management key' in result['msg']
