# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Merge, compare, validation and every write/recovery branch of the project configuration, on a fake server."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy
import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.cortecs.management.plugins.module_utils import project_config as pc
from ansible_collections.cortecs.management.plugins.module_utils.api import CortecsAPIError, CortecsClient, CortecsConnectionError
from ansible_collections.cortecs.management.plugins.module_utils.runner import execute
from ansible_collections.cortecs.management.plugins.modules import cortecs_project_config, cortecs_project_config_info

PATH = '/manage/project-configs'
CREATED = '2025-01-01T00:00:00.000000Z'
UPDATED = '2025-01-02T00:00:00.000000Z'
STALE_TEXT = 'stale project configuration: the configuration was modified, re-read it'


def server_config(**inference):
    ic = dict(allowed_providers=['ionos', 'scaleway'], eu_native=False, allow_quantization=False,
              allow_zero_data_retention=False, enable_model_fallback=True, preference='balanced',
              max_tokens=None, include_metadata=True)
    ic.update(inference)
    return dict(_id='cfg-1', project_id='prj-1', inference_config=ic, allow_overwrite=True,
                created_at=CREATED, updated_at=UPDATED)


class FakeServer:
    """Behaves like the API: GET returns the config, PUT checks the timestamps and replaces inference_config.

    `put_errors` are raised by the first PUTs. Then `put_script` items run in order for each PUT, one of
    'apply' (default), 'apply_then_stale' (the first attempt was applied, its retry refused as stale),
    'concurrent' (someone else changes the config just before this PUT arrives),
    'other_writer_then_retry_stale' (someone else changed it and a retried PUT is refused as stale).
    `get_errors` holds one exception per GET (None = answer normally).
    """

    def __init__(self, config=None, put_script=(), put_errors=(), get_errors=()):
        self.config = server_config() if config is None else config
        self.put_script = list(put_script)
        self.put_errors = list(put_errors)
        self.get_errors = list(get_errors)
        self.calls = []
        self.tick = 0

    def methods(self):
        return [method for method, dummy, dummy in self.calls]

    def get(self, path):
        self.calls.append(('GET', path, None))
        error = self.get_errors.pop(0) if self.get_errors else None
        if error is not None:
            raise error
        return copy.deepcopy(self.config)

    def put(self, path, body):
        self.calls.append(('PUT', path, copy.deepcopy(body)))
        if self.put_errors:
            raise self.put_errors.pop(0)
        action = self.put_script.pop(0) if self.put_script else 'apply'
        if action == 'concurrent':
            self._store(dict(inference_config=dict(self.config['inference_config'], eu_native=True)))
        if action == 'other_writer_then_retry_stale':
            self._store(dict(inference_config=dict(self.config['inference_config'], max_tokens=7)))
            raise CortecsAPIError('PUT', path, 400, STALE_TEXT, attempts=2)
        if (body['created_at'], body['updated_at']) != (self.config['created_at'], self.config['updated_at']):
            raise CortecsAPIError('PUT', path, 400, STALE_TEXT, attempts=1)
        self._store(body)
        if action == 'apply_then_stale':
            raise CortecsAPIError('PUT', path, 400, STALE_TEXT, attempts=2)
        return dict(success=True)

    def _store(self, body):
        self.tick += 1
        self.config['inference_config'] = copy.deepcopy(body['inference_config'])
        if body.get('allow_overwrite') is not None:
            self.config['allow_overwrite'] = body['allow_overwrite']
        self.config['updated_at'] = '2025-02-%02dT00:00:00.000000Z' % self.tick


def run(server, check_mode=False, diff_mode=False, resource=pc.PROJECT_CONFIG, **params):
    full = dict(inference_config=None, allow_overwrite=None)
    full.update(params)
    return execute(resource, full, check_mode, diff_mode, client_factory=lambda p: server)


def ic(**options):
    """inference_config as the argument spec hands it over: every suboption present."""
    full = dict((name, None) for name in pc.INFERENCE_CONFIG_SPEC)
    full.update(options)
    return full


def api_error(method, status, text, attempts=1):
    return CortecsAPIError(method, PATH, status, text, attempts=attempts)


# ---------------------------------------------------------------- validation before any request

@pytest.mark.parametrize('options, fragment', [
    (ic(preference='cost', clear=['preference']), 'preference cannot be set and listed in inference_config.clear'),
    (ic(max_tokens=5, preference='speed', clear=['max_tokens', 'preference']), 'preference and max_tokens cannot be set'),
    (ic(max_tokens=0), 'max_tokens must be 1 or more, got 0'),
    (ic(max_tokens=-3), 'max_tokens must be 1 or more, got -3'),
    (ic(allowed_providers=['ionos', '']), 'must not contain an empty provider name'),
    (ic(allowed_providers=['   ']), 'must not contain an empty provider name'),
    (ic(allowed_providers=[' ionos']), "provider name ' ionos' has leading or trailing whitespace"),
    (ic(allowed_providers=['ionos\n']), 'has leading or trailing whitespace'),
    (ic(allowed_providers=['io\x00nos']), 'contains a control character'),
])
def test_bad_input_fails_before_any_request(options, fragment):
    made = []
    failed, result, dummy = execute(pc.PROJECT_CONFIG, dict(inference_config=options, allow_overwrite=None), False, False,
                                    client_factory=made.append)
    assert failed
    assert fragment in result['msg']
    assert result['changed'] is False
    assert made == []


def test_desired_state_holds_only_managed_fields():
    assert pc.desired_state(dict(inference_config=None, allow_overwrite=None)) == dict(inference_config={})
    assert pc.desired_state(dict(inference_config=ic(), allow_overwrite=False)) == dict(inference_config={}, allow_overwrite=False)
    desired = pc.desired_state(dict(inference_config=ic(eu_native=False, max_tokens=1, allowed_providers=['b', 'a', 'b'],
                                                        clear=['preference']), allow_overwrite=None))
    assert desired == dict(inference_config=dict(eu_native=False, max_tokens=1, allowed_providers=['b', 'a'], preference=None))


def test_clear_listed_twice_is_fine():
    assert pc.desired_inference(ic(clear=['max_tokens', 'max_tokens'])) == dict(max_tokens=None)


# ---------------------------------------------------------------- compare

@pytest.mark.parametrize('server_providers, wanted, differs', [
    (['ionos', 'scaleway'], ['scaleway', 'ionos'], False),
    (['ionos', 'scaleway'], ['ionos', 'scaleway', 'ionos'], False),
    (['ionos', 'scaleway'], ['ionos'], True),             # a subset is not equal
    (['ionos'], ['ionos', 'scaleway'], True),             # nor a superset
    (['ionos'], ['nebius'], True),
    ([], [], False),
    (None, [], True),                                     # null on the server is not an empty list
])
def test_allowed_providers_are_compared_as_sets(server_providers, wanted, differs):
    current = server_config(allowed_providers=server_providers)
    desired = pc.desired_state(dict(inference_config=ic(allowed_providers=wanted)))
    assert pc.differences(current, desired) == (['inference_config.allowed_providers'] if differs else [])


@pytest.mark.parametrize('current_value, wanted, differs', [
    (True, True, False),
    (False, True, True),
    (1, True, True),          # a server 1 is not a boolean true
    (True, 1, True),
    (None, False, True),
])
def test_values_compare_strictly(current_value, wanted, differs):
    assert (not pc.same_value(current_value, wanted)) is differs


def test_differences_names_each_managed_field_that_differs():
    current = server_config(eu_native=False, preference='balanced', max_tokens=100)
    desired = dict(inference_config=dict(eu_native=True, preference='balanced', max_tokens=None), allow_overwrite=False)
    assert pc.differences(current, desired) == ['inference_config.eu_native', 'inference_config.max_tokens', 'allow_overwrite']
    assert pc.differences(current, dict(inference_config={})) == []


def test_a_missing_nullable_field_reads_as_null():
    current = server_config()
    del current['inference_config']['max_tokens']
    assert pc.differences(current, dict(inference_config=dict(max_tokens=None))) == []
    assert pc.differences(current, dict(inference_config=dict(max_tokens=10))) == ['inference_config.max_tokens']


# ---------------------------------------------------------------- merge

def test_merge_keeps_unknown_fields_and_does_not_touch_the_input():
    current = server_config()
    before = copy.deepcopy(current)
    merged = pc.merge(current, dict(inference_config=dict(eu_native=True, preference=None), allow_overwrite=False))
    assert current == before
    assert merged['inference_config'] == dict(before['inference_config'], eu_native=True, preference=None)
    assert merged['inference_config']['include_metadata'] is True
    assert merged['allow_overwrite'] is False
    assert (merged['_id'], merged['created_at'], merged['updated_at']) == ('cfg-1', CREATED, UPDATED)


def test_merge_leaves_allow_overwrite_when_unmanaged():
    assert pc.merge(server_config(), dict(inference_config={}))['allow_overwrite'] is True


def test_update_body_is_full_inference_config_with_the_read_timestamps():
    current = server_config()
    merged = pc.merge(current, dict(inference_config=dict(eu_native=True)))
    assert pc.update_body(current, merged) == dict(inference_config=merged['inference_config'], allow_overwrite=True,
                                                   created_at=CREATED, updated_at=UPDATED)


# ---------------------------------------------------------------- run: converge, change, check, diff

BASELINE = dict(inference_config=ic(eu_native=True, allow_zero_data_retention=True, allowed_providers=['scaleway', 'ionos']),
                allow_overwrite=False)


def test_a_change_puts_the_merged_config_and_reads_it_back():
    server = FakeServer()
    failed, result, warnings = run(server, **BASELINE)
    assert not failed and not warnings
    assert result['changed'] is True
    assert server.methods() == ['GET', 'PUT', 'GET']
    body = server.calls[1][2]
    assert set(body) == {'inference_config', 'allow_overwrite', 'created_at', 'updated_at'}
    assert (body['created_at'], body['updated_at']) == (CREATED, UPDATED)
    assert body['allow_overwrite'] is False
    assert body['inference_config'] == dict(server_config()['inference_config'], eu_native=True, allow_zero_data_retention=True,
                                            allowed_providers=['scaleway', 'ionos'])
    assert body['inference_config']['include_metadata'] is True
    # config is the server's truth after the write, new updated_at included
    assert result['config'] == server.config
    assert result['config']['updated_at'] != UPDATED
    assert 'diff' not in result


def test_second_run_is_one_read_and_no_write():
    server = FakeServer()
    run(server, **BASELINE)
    server.calls = []
    failed, result, dummy = run(server, **BASELINE)
    assert not failed
    assert result['changed'] is False
    assert server.methods() == ['GET']
    assert result['config'] == server.config


def test_check_mode_predicts_without_writing():
    server = FakeServer()
    failed, result, dummy = run(server, check_mode=True, diff_mode=True, **BASELINE)
    assert not failed
    assert result['changed'] is True
    assert server.methods() == ['GET']
    assert server.config == server_config()
    assert result['config']['inference_config']['eu_native'] is True
    assert result['config']['allow_overwrite'] is False
    assert result['config']['updated_at'] == UPDATED
    assert result['diff']['after'] == dict(inference_config=result['config']['inference_config'], allow_overwrite=False)


def test_check_mode_reports_no_change_when_converged():
    server = FakeServer(server_config(eu_native=True))
    failed, result, dummy = run(server, check_mode=True, inference_config=ic(eu_native=True))
    assert not failed and result['changed'] is False
    assert server.methods() == ['GET']


def test_diff_shows_the_managed_config_before_and_after():
    server = FakeServer()
    failed, result, dummy = run(server, diff_mode=True, **BASELINE)
    assert not failed
    before, after = result['diff']['before'], result['diff']['after']
    assert set(before) == set(after) == {'inference_config', 'allow_overwrite'}
    assert before == dict(inference_config=server_config()['inference_config'], allow_overwrite=True)
    assert after == dict(inference_config=server.config['inference_config'], allow_overwrite=False)


def test_diff_is_equal_when_nothing_changes():
    server = FakeServer()
    failed, result, dummy = run(server, diff_mode=True, inference_config=ic(eu_native=False))
    assert not failed and result['changed'] is False
    assert result['diff']['before'] == result['diff']['after']


def test_no_options_only_reads():
    server = FakeServer()
    failed, result, dummy = run(server)
    assert not failed and result['changed'] is False
    assert server.methods() == ['GET']


def test_clear_sends_null_and_keeps_the_rest():
    server = FakeServer(server_config(preference='speed', max_tokens=512))
    failed, result, dummy = run(server, inference_config=ic(clear=['preference', 'max_tokens']))
    assert not failed and result['changed'] is True
    sent = server.calls[1][2]['inference_config']
    assert sent['preference'] is None and sent['max_tokens'] is None
    assert sent['include_metadata'] is True and sent['allowed_providers'] == ['ionos', 'scaleway']
    assert result['config']['inference_config']['preference'] is None
    server.calls = []
    failed, result, dummy = run(server, inference_config=ic(clear=['preference', 'max_tokens']))
    assert result['changed'] is False and server.methods() == ['GET']


def test_unmanaged_allow_overwrite_is_carried_through():
    server = FakeServer(server_config())
    server.config['allow_overwrite'] = False
    failed, result, dummy = run(server, inference_config=ic(max_tokens=64))
    assert not failed
    assert server.calls[1][2]['allow_overwrite'] is False
    assert result['config']['allow_overwrite'] is False


# ---------------------------------------------------------------- recovery and errors on PUT

def test_retried_put_refused_as_stale_after_the_first_attempt_applied_succeeds():
    server = FakeServer(put_script=['apply_then_stale'])
    failed, result, warnings = run(server, **BASELINE)
    assert not failed, result
    assert result['changed'] is True
    assert server.methods() == ['GET', 'PUT', 'GET']
    assert result['config'] == server.config
    assert result['config']['inference_config']['eu_native'] is True
    assert warnings == []


def test_retried_put_refused_when_the_server_holds_other_values_fails_with_the_api_text():
    # The retry is refused as stale, but the server does not hold what was asked: someone else wrote meanwhile.
    server = FakeServer(put_script=['other_writer_then_retry_stale'])
    failed, result, dummy = run(server, **BASELINE)
    assert failed
    assert 'changed by someone else' in result['msg'] and 're-run' in result['msg']
    assert STALE_TEXT in result['msg']
    assert result['status'] == 400 and result['api_error'] == STALE_TEXT
    assert server.methods() == ['GET', 'PUT', 'GET']
    assert server.config['inference_config']['eu_native'] is False


def test_retried_put_refused_for_its_content_fails_with_the_api_text():
    text = 'Provider registry validation failed: unknown provider(s): nowhere'
    server = FakeServer(put_errors=[api_error('PUT', 400, text, attempts=2)])
    failed, result, dummy = run(server, inference_config=ic(allowed_providers=['nowhere']))
    assert failed
    assert result['msg'].startswith('Could not update the project configuration: Cortecs API PUT %s answered HTTP 400: %s' % (PATH, text))
    assert server.methods() == ['GET', 'PUT', 'GET']


def test_first_attempt_stale_says_someone_else_changed_it():
    server = FakeServer(put_script=['concurrent'])
    failed, result, dummy = run(server, **BASELINE)
    assert failed
    assert 'changed by someone else while this task ran' in result['msg']
    assert 'updated_at was %s, is now %s' % (UPDATED, server.config['updated_at']) in result['msg']
    assert 're-run the task' in result['msg'] and STALE_TEXT in result['msg']
    assert result['changed'] is False
    assert server.methods() == ['GET', 'PUT', 'GET']


def test_first_attempt_stale_fails_even_when_the_other_writer_set_the_same_values():
    server = FakeServer(put_script=['concurrent'])
    failed, result, dummy = run(server, inference_config=ic(eu_native=True))
    assert failed and 'changed by someone else' in result['msg']


def test_registry_rejection_shows_the_api_text():
    text = 'Provider registry validation failed: unknown provider(s): nowhere'
    server = FakeServer(put_errors=[api_error('PUT', 400, text)])
    failed, result, dummy = run(server, inference_config=ic(allowed_providers=['nowhere']))
    assert failed
    assert text in result['msg'] and 'someone else' not in result['msg']
    assert result['status'] == 400 and result['api_error'] == text
    assert server.config == server_config()


def test_rejection_whose_check_read_fails_reports_the_rejection():
    text = 'Provider registry validation failed: unknown provider(s): nowhere'
    server = FakeServer(put_errors=[api_error('PUT', 400, text, attempts=2)],
                        get_errors=[None, CortecsConnectionError('no reply', maybe_applied=False)])
    failed, result, dummy = run(server, inference_config=ic(allowed_providers=['nowhere']))
    assert failed
    assert text in result['msg'] and result['status'] == 400


@pytest.mark.parametrize('status, text, fragments', [
    (403, 'Forbidden: user is not a project admin', ['Could not update', 'HTTP 403: Forbidden: user is not a project admin',
                                                     'admin of the project']),
    (404, 'Project configuration not found', ['HTTP 404: Project configuration not found', 'cannot create one']),
    (503, 'Simulated fault: Service Unavailable', ['HTTP 503: Simulated fault']),
    (401, 'Invalid API key', ['HTTP 401', 'check the management key']),
])
def test_other_put_errors_fail_with_text_and_explanation_without_recovery(status, text, fragments):
    server = FakeServer(put_errors=[api_error('PUT', status, text, attempts=6 if status == 503 else 1)])
    failed, result, dummy = run(server, **BASELINE)
    assert failed
    for fragment in fragments:
        assert fragment in result['msg']
    assert result['status'] == status
    assert server.methods() == ['GET', 'PUT']


def test_connection_error_on_put_passes_through():
    error = CortecsConnectionError('Could not get a reply ... may have applied this PUT', maybe_applied=True)
    server = FakeServer(put_errors=[error])
    failed, result, dummy = run(server, **BASELINE)
    assert failed and result['msg'] == error.msg


def test_failed_read_back_warns_and_returns_what_was_sent():
    server = FakeServer(get_errors=[None, CortecsConnectionError('timed out', maybe_applied=False)])
    failed, result, warnings = run(server, **BASELINE)
    assert not failed and result['changed'] is True
    assert len(warnings) == 1 and 'reading it back failed (timed out)' in warnings[0]
    assert result['config']['inference_config']['eu_native'] is True
    assert result['config']['updated_at'] == UPDATED


def test_read_back_that_differs_warns():
    server = FakeServer()
    original_put = server.put

    def put(path, body):
        answer = original_put(path, body)
        server.config['inference_config']['eu_native'] = False
        return answer
    server.put = put
    failed, result, warnings = run(server, **BASELINE)
    assert not failed and result['changed'] is True
    assert len(warnings) == 1 and 'inference_config.eu_native' in warnings[0]
    assert result['config']['inference_config']['eu_native'] is False


# ---------------------------------------------------------------- errors on GET

@pytest.mark.parametrize('status, text, fragments', [
    (403, 'The provided API key is not a management key', ['Could not read the project configuration', 'HTTP 403',
                                                           'needs a management key']),
    (404, 'Project configuration not found', ['Could not read', 'HTTP 404: Project configuration not found',
                                              'has no configuration', 'cannot create one']),
    (401, 'Invalid API key', ['HTTP 401: Invalid API key', 'check the management key']),
])
@pytest.mark.parametrize('resource', [pc.PROJECT_CONFIG, pc.PROJECT_CONFIG_INFO])
def test_read_errors_are_explained(resource, status, text, fragments):
    server = FakeServer(get_errors=[api_error('GET', status, text)])
    failed, result, dummy = run(server, resource=resource, **(BASELINE if resource is pc.PROJECT_CONFIG else {}))
    assert failed
    for fragment in fragments:
        assert fragment in result['msg']
    assert result['status'] == status and result['api_error'] == text
    assert server.methods() == ['GET']


@pytest.mark.parametrize('reply', [None, [], 'text', {'inference_config': None, 'created_at': CREATED, 'updated_at': UPDATED},
                                   {'inference_config': {}, 'updated_at': UPDATED}, {'inference_config': {}, 'created_at': CREATED, 'updated_at': 5}])
def test_unexpected_read_reply_fails(reply):
    server = FakeServer()
    server.config = reply
    failed, result, dummy = run(server, **BASELINE)
    assert failed and 'unexpected reply' in result['msg']
    assert server.methods() == ['GET']


def test_info_returns_the_config_with_unknown_fields():
    server = FakeServer()
    failed, result, dummy = execute(pc.PROJECT_CONFIG_INFO, {}, True, False, client_factory=lambda p: server)
    assert not failed
    assert result == dict(changed=False, config=server_config())
    assert server.methods() == ['GET']


# ---------------------------------------------------------------- the module shells

class ModuleExit(Exception):
    pass


def drive_module(monkeypatch, module, args, server):
    """Run a module's main() with a fake HTTP layer; returns (failed, result)."""
    def request(self, method, path, body=None):
        return server.get(path) if method == 'GET' else server.put(path, body)

    def leave(failed):
        def handler(self, **result):
            raise ModuleExit(failed, result)
        return handler
    monkeypatch.setattr(CortecsClient, 'request', request)
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', leave(False))
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', leave(True))
    args = dict(args, management_key='sim-admin-key', base_url='http://127.0.0.1:9/v1')
    with patch_module_args(args):
        with pytest.raises(ModuleExit) as exc:
            module.main()
    return exc.value.args


def test_module_main_changes_and_hides_the_key(monkeypatch):
    server = FakeServer()
    failed, result = drive_module(monkeypatch, cortecs_project_config, dict(inference_config=dict(eu_native=True)), server)
    assert not failed and result['changed'] is True
    assert result['config'] == server.config
    assert 'sim-admin-key' not in json.dumps(result)


def test_module_main_rejects_a_bad_choice_before_any_request(monkeypatch):
    server = FakeServer()
    failed, result = drive_module(monkeypatch, cortecs_project_config, dict(inference_config=dict(clear=['eu_native'])), server)
    assert failed and 'clear' in result['msg']
    assert server.calls == []


def test_info_module_main(monkeypatch):
    server = FakeServer()
    failed, result = drive_module(monkeypatch, cortecs_project_config_info, {}, server)
    assert not failed and result['config'] == server_config() and result['changed'] is False
