# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import socket
import threading

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from ansible_collections.cortecs.management.plugins.module_utils import api
from ansible_collections.cortecs.management.plugins.module_utils.api import (
    CortecsAPIError,
    CortecsClient,
    CortecsConnectionError,
    CortecsError,
    parse_retry_after,
)

TOKEN = 'mgmt-Secret-Token-0123456789'


def params(**overrides):
    values = dict(management_key=TOKEN, base_url='https://api.example.test/v1', timeout=5.0,
                  validate_certs=True, retries=3, max_retry_delay=10.0)
    values.update(overrides)
    return values


def response(status, body=None, headers=None):
    resp = requests.models.Response()
    resp.status_code = status
    resp._content = b'' if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    resp.headers.update(headers or {})
    return resp


def refused():
    reason = NewConnectionError(None, 'Failed to establish a new connection: [Errno 111] Connection refused')
    return requests.exceptions.ConnectionError(MaxRetryError(None, '/v1', reason))


def reset_by_peer():
    return requests.exceptions.ConnectionError(
        requests.packages.urllib3.exceptions.ProtocolError('Connection aborted.', ConnectionResetError(104, 'reset by peer')))


class FakeSession:
    """Replays a script of responses or exceptions and records each call."""

    def __init__(self, *script):
        self.script = list(script)
        self.calls = []
        self.headers = {}

    def request(self, method, url, **kwargs):
        self.calls.append((method, url, kwargs))
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


class Recorder:
    def __init__(self):
        self.delays = []

    def __call__(self, seconds):
        self.delays.append(seconds)


def client(*script, **overrides):
    sleeps = Recorder()
    session = FakeSession(*script)
    return CortecsClient(params(**overrides), sleep=sleeps, rand=lambda: 1.0, session=session), session, sleeps


def assert_no_token(exc, *extra):
    texts = [str(exc), exc.msg, repr(exc.result)] + [str(t) for t in extra]
    for text in texts:
        assert TOKEN not in text


# --- option validation happens before any request -------------------------------------------

@pytest.mark.parametrize('overrides, fragment', [
    (dict(base_url=''), 'base_url must not be empty'),
    (dict(base_url='   '), 'base_url must not be empty'),
    (dict(base_url='api.cortecs.ai/v1'), 'absolute http(s) URL'),
    (dict(base_url='ftp://api.cortecs.ai/v1'), 'absolute http(s) URL'),
    (dict(base_url='https://user:pw@api.cortecs.ai/v1'), 'must not contain credentials'),
    (dict(base_url='https://api.cortecs.ai/v1?x=1'), 'query string'),
    (dict(base_url='http://api.cortecs.ai/v1'), 'Refusing to send the management key over plain http'),
    (dict(base_url='http://10.0.0.5:8080/v1'), 'Refusing to send the management key over plain http'),
    (dict(timeout=0.0), 'timeout must be a positive'),
    (dict(timeout=-1.0), 'timeout must be a positive'),
    (dict(retries=-1), 'retries must be 0 or more'),
    (dict(max_retry_delay=-0.5), 'max_retry_delay must be 0 or more'),
    (dict(management_key=''), 'management_key must not be empty'),
    (dict(management_key='abc\ndef'), 'must not contain whitespace'),
])
def test_bad_options_fail_before_any_request(overrides, fragment):
    session = FakeSession()
    with pytest.raises(CortecsError) as err:
        CortecsClient(params(**overrides), session=session)
    assert fragment in err.value.msg
    assert session.calls == []
    assert_no_token(err.value)


@pytest.mark.parametrize('base_url', ['http://127.0.0.1:8080/v1', 'http://localhost:8080/v1', 'http://[::1]:8080/v1', 'http://127.0.0.2/v1'])
def test_plain_http_allowed_for_loopback_only(base_url):
    CortecsClient(params(base_url=base_url), session=FakeSession())


def test_session_headers_carry_token_and_user_agent():
    c, session, dummy = client()
    assert session.headers['Authorization'] == 'Bearer ' + TOKEN
    assert session.headers['User-Agent'].startswith('cortecs.management/%s ' % api.COLLECTION_VERSION)


def test_trailing_slash_in_base_url_is_ignored():
    c, session, dummy = client(response(200, {'api_keys': []}), base_url='https://api.example.test/v1/')
    c.get('/manage/api-keys')
    assert session.calls[0][1] == 'https://api.example.test/v1/manage/api-keys'


# --- retries and backoff ------------------------------------------------------------------------

def test_retry_after_is_honoured():
    c, session, sleeps = client(response(429, {'error': 'slow down'}, {'Retry-After': '3'}), response(200, {'ok': 1}))
    assert c.get('/x') == {'ok': 1}
    assert sleeps.delays == [3.0]
    assert len(session.calls) == 2


def test_retry_after_is_capped_by_max_retry_delay():
    c, dummy, sleeps = client(response(429, {}, {'Retry-After': '600'}), response(200, {}), max_retry_delay=7.0)
    c.get('/x')
    assert sleeps.delays == [7.0]


def test_retry_after_http_date():
    assert parse_retry_after('Wed, 21 Oct 2015 07:28:00 GMT', now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after('Wed, 21 Oct 2015 07:28:00 GMT', now=1445412490.0) == 0.0
    assert parse_retry_after('garbage') is None
    assert parse_retry_after(None) is None


def test_exponential_backoff_is_capped_and_jittered():
    c, dummy, sleeps = client(*([response(503, {'error': 'busy'})] * 6 + [response(200, {})]), retries=6, max_retry_delay=4.0)
    c.get('/x')
    # rand() == 1.0 gives the ceiling: 0.5, 1, 2, 4, then the cap
    assert sleeps.delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    low, dummy, low_sleeps = client(response(503, {}), response(200, {}))
    low._rand = lambda: 0.0
    low.get('/x')
    assert low_sleeps.delays == [0.25]


def test_retries_are_bounded_then_error_is_reported():
    c, session, sleeps = client(*[response(503, {'error': 'down for maintenance'})] * 4, retries=3)
    with pytest.raises(CortecsAPIError) as err:
        c.get('/manage/api-keys')
    assert len(session.calls) == 4
    assert len(sleeps.delays) == 3
    assert err.value.status == 503 and err.value.attempts == 4
    assert 'down for maintenance' in err.value.msg


def test_zero_retries_means_one_attempt():
    c, session, sleeps = client(response(503, {}), retries=0)
    with pytest.raises(CortecsAPIError):
        c.get('/x')
    assert len(session.calls) == 1 and sleeps.delays == []


@pytest.mark.parametrize('method', ['GET', 'PUT', 'DELETE'])
@pytest.mark.parametrize('status', [502, 503, 504])
def test_idempotent_methods_retry_gateway_errors(method, status):
    c, session, dummy = client(response(status, {}), response(200, {'done': True}))
    assert c.request(method, '/x', {'a': 1} if method != 'GET' else None) == {'done': True}
    assert len(session.calls) == 2


@pytest.mark.parametrize('status', [500, 502, 503, 504])
def test_post_is_not_retried_after_a_server_error(status):
    c, session, dummy = client(response(status, {'error': 'boom'}), response(201, {}))
    with pytest.raises(CortecsAPIError) as err:
        c.post('/manage/api-keys', {'name': 'k'})
    assert len(session.calls) == 1
    assert err.value.status == status


def test_500_is_not_retried_for_any_method():
    c, session, dummy = client(response(500, {'error': 'bug'}), response(200, {}))
    with pytest.raises(CortecsAPIError):
        c.get('/x')
    assert len(session.calls) == 1


def test_post_is_retried_after_429():
    c, session, sleeps = client(response(429, {}, {'Retry-After': '1'}), response(201, {'api_key': 'new'}))
    assert c.post('/manage/api-keys', {'name': 'k'}) == {'api_key': 'new'}
    assert len(session.calls) == 2 and sleeps.delays == [1.0]


def test_post_is_retried_when_the_connection_was_refused():
    c, session, dummy = client(refused(), response(201, {'api_key': 'new'}))
    assert c.post('/manage/api-keys', {'name': 'k'}) == {'api_key': 'new'}
    assert len(session.calls) == 2


def test_post_is_retried_after_connect_timeout():
    c, session, dummy = client(requests.exceptions.ConnectTimeout('connect timed out'), response(201, {}))
    c.post('/manage/api-keys', {'name': 'k'})
    assert len(session.calls) == 2


@pytest.mark.parametrize('failure', [reset_by_peer, lambda: requests.exceptions.ReadTimeout('read timed out')])
def test_post_is_never_retried_after_an_ambiguous_failure(failure):
    c, session, dummy = client(failure(), response(201, {}))
    with pytest.raises(CortecsConnectionError) as err:
        c.post('/manage/api-keys', {'name': 'k'})
    assert len(session.calls) == 1
    assert err.value.maybe_applied is True
    assert 'may have applied this POST' in err.value.msg


@pytest.mark.parametrize('failure', [reset_by_peer, refused])
def test_get_is_retried_after_connection_errors(failure):
    c, session, dummy = client(failure(), response(200, {'ok': True}))
    assert c.get('/x') == {'ok': True}
    assert len(session.calls) == 2


def test_connection_failure_of_get_is_not_a_maybe_applied_write():
    c, dummy, dummy2 = client(*[refused()] * 2, retries=1)
    with pytest.raises(CortecsConnectionError) as err:
        c.get('/x')
    assert err.value.maybe_applied is False
    assert 'after 2 attempt(s)' in err.value.msg


def test_refused_post_after_all_retries_was_not_applied():
    c, dummy, dummy2 = client(*[refused()] * 2, retries=1)
    with pytest.raises(CortecsConnectionError) as err:
        c.post('/x', {})
    assert err.value.maybe_applied is False


# --- error mapping ----------------------------------------------------------------------------

@pytest.mark.parametrize('status, hint', [
    (401, 'check the management key'),
    (403, 'not a management key, or its user is not an admin'),
    (404, 'does not exist'),
])
def test_error_mapping_per_status(status, hint):
    c, dummy, dummy2 = client(response(status, {'error': 'server says no'}))
    with pytest.raises(CortecsAPIError) as err:
        c.delete('/manage/api-keys', {'name': 'k'})
    msg = err.value.msg
    assert 'DELETE /manage/api-keys' in msg
    assert 'HTTP %d' % status in msg
    assert 'server says no' in msg
    assert hint in msg
    assert err.value.result == {'status': status, 'api_error': 'server says no'}


def test_400_has_api_text_and_no_hint():
    c, dummy, dummy2 = client(response(400, {'error': 'registry validation failed: unknown provider foo'}))
    with pytest.raises(CortecsAPIError) as err:
        c.put('/manage/project-configs', {})
    assert err.value.msg == 'Cortecs API PUT /manage/project-configs failed with HTTP 400: registry validation failed: unknown provider foo'


def test_error_body_that_is_not_json_is_reported_as_text():
    c, dummy, dummy2 = client(response(502, b'<html>Bad gateway</html>'), retries=0)
    with pytest.raises(CortecsAPIError) as err:
        c.get('/x')
    assert '<html>Bad gateway</html>' in err.value.msg


def test_success_body_that_is_not_json_is_an_error():
    c, dummy, dummy2 = client(response(200, b'not json'))
    with pytest.raises(CortecsError) as err:
        c.get('/x')
    assert 'not JSON' in err.value.msg


def test_empty_success_body_is_none():
    c, dummy, dummy2 = client(response(204))
    assert c.delete('/x', {'name': 'a'}) is None


# --- the token never leaks ----------------------------------------------------------------------

def test_token_echoed_by_the_server_is_scrubbed():
    c, dummy, dummy2 = client(response(401, {'error': 'unknown token %s' % TOKEN}))
    with pytest.raises(CortecsAPIError) as err:
        c.get('/x')
    assert_no_token(err.value)
    assert '********' in err.value.msg


def test_token_in_exception_text_is_scrubbed():
    failure = requests.exceptions.ConnectionError('failed while sending Authorization: Bearer %s' % TOKEN)
    c, dummy, dummy2 = client(failure, retries=0)
    with pytest.raises(CortecsConnectionError) as err:
        c.get('/x')
    assert_no_token(err.value)


def test_token_absent_from_every_failure():
    scenarios = [
        (response(401, {'error': 'Unauthorized'}),),
        (response(403, {'error': 'not a management key'}),),
        (response(503, {'error': 'x'}),) * 2,
        (refused(), refused()),
        (reset_by_peer(),),
    ]
    for script in scenarios:
        c, dummy, sleeps = client(*script, retries=1)
        with pytest.raises(CortecsError) as err:
            c.post('/manage/api-keys', {'name': 'k'})
        assert_no_token(err.value, sleeps.delays)


# --- against a real socket: the classification holds for what requests really raises ------------

class OneShotServer:
    """Accepts connections; `mode` decides whether to answer or to close after reading the request."""

    def __init__(self, mode):
        self.mode = mode
        self.requests = []
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve)
        self.thread.daemon = True
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, dummy = self.sock.accept()
            except OSError:
                return
            data = conn.recv(65536)
            self.requests.append(data)
            if self.mode == 'answer':
                body = b'{"ok": true}'
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' % (len(body), body))
            conn.close()

    def close(self):
        self.sock.close()


def test_real_lost_reply_on_post_is_not_repeated():
    server = OneShotServer('close')
    try:
        c = CortecsClient(params(base_url='http://127.0.0.1:%d/v1' % server.port, retries=3), sleep=lambda s: None)
        with pytest.raises(CortecsConnectionError) as err:
            c.post('/manage/api-keys', {'name': 'k'})
        assert err.value.maybe_applied is True
        assert len(server.requests) == 1
        assert_no_token(err.value)
    finally:
        server.close()


def test_real_lost_reply_on_get_is_retried():
    server = OneShotServer('close')
    try:
        c = CortecsClient(params(base_url='http://127.0.0.1:%d/v1' % server.port, retries=2), sleep=lambda s: None)
        with pytest.raises(CortecsConnectionError):
            c.get('/manage/api-keys')
        assert len(server.requests) == 3
    finally:
        server.close()


def test_real_refused_connection_retries_post():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    sleeps = Recorder()
    c = CortecsClient(params(base_url='http://127.0.0.1:%d/v1' % port, retries=2), sleep=sleeps)
    with pytest.raises(CortecsConnectionError) as err:
        c.post('/manage/api-keys', {'name': 'k'})
    assert err.value.maybe_applied is False
    assert len(sleeps.delays) == 2


def test_real_request_sends_json_and_bearer():
    server = OneShotServer('answer')
    try:
        c = CortecsClient(params(base_url='http://127.0.0.1:%d/v1' % server.port))
        assert c.post('/manage/api-keys', {'name': 'k'}) == {'ok': True}
        raw = server.requests[0].decode()
        assert raw.startswith('POST /v1/manage/api-keys HTTP/1.1')
        assert 'Authorization: Bearer %s' % TOKEN in raw
        assert 'Content-Type: application/json' in raw
    finally:
        server.close()


# --- environment fallbacks ----------------------------------------------------------------------

def validate_env(monkeypatch, environ, args):
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    for name in ('CORTECS_MANAGEMENT_KEY', 'CORTECS_BASE_URL'):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return ArgumentSpecValidator(api.COMMON_ARGUMENT_SPEC).validate(args)


def test_credentials_come_from_the_environment(monkeypatch):
    result = validate_env(monkeypatch, {'CORTECS_MANAGEMENT_KEY': TOKEN, 'CORTECS_BASE_URL': 'http://127.0.0.1:8080/v1'}, {})
    assert not result.error_messages
    assert result.validated_parameters['management_key'] == TOKEN
    assert result.validated_parameters['base_url'] == 'http://127.0.0.1:8080/v1'
    assert TOKEN in result._no_log_values


def test_empty_environment_variables_count_as_unset(monkeypatch):
    result = validate_env(monkeypatch, {'CORTECS_MANAGEMENT_KEY': '', 'CORTECS_BASE_URL': ''}, {})
    assert result.error_messages == ['missing required arguments: management_key']
    assert result.validated_parameters['base_url'] == api.DEFAULT_BASE_URL


def test_task_arguments_win_over_the_environment(monkeypatch):
    result = validate_env(monkeypatch, {'CORTECS_MANAGEMENT_KEY': 'from-env'}, {'management_key': TOKEN})
    assert result.validated_parameters['management_key'] == TOKEN
