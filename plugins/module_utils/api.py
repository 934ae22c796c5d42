# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one HTTP client of the collection: options, safety checks, retries and error mapping."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import email.utils
import ipaddress
import random
import time
import traceback

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported, keeps sanity's compile checks quiet
    from urlparse import urlsplit  # type: ignore

from ansible.module_utils.common.parameters import env_fallback
from ansible.module_utils.errors import AnsibleFallbackNotFound

REQUESTS_IMPORT_ERROR = None
try:
    import requests
    from urllib3.exceptions import NewConnectionError, ConnectTimeoutError
    HAS_REQUESTS = True
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

COLLECTION_VERSION = '0.1.0'
DEFAULT_BASE_URL = 'https://api.cortecs.ai/v1'


def set_env_fallback(*names):
    """Like env_fallback, but an empty variable counts as unset (credential injectors export empty ones)."""
    value = env_fallback(*names)
    if value == '':
        raise AnsibleFallbackNotFound
    return value


# The options every module shares; documented once in the doc fragment cortecs.management.api.
COMMON_ARGUMENT_SPEC = dict(
    management_key=dict(type='str', required=True, no_log=True, fallback=(set_env_fallback, ['CORTECS_MANAGEMENT_KEY'])),
    base_url=dict(type='str', default=DEFAULT_BASE_URL, fallback=(set_env_fallback, ['CORTECS_BASE_URL'])),
    timeout=dict(type='float', default=30.0),
    validate_certs=dict(type='bool', default=True),
    retries=dict(type='int', default=5),
    max_retry_delay=dict(type='float', default=30.0),
)

# A 429 means the server refused the request before acting on it, so every method may repeat it.
RETRY_ANY_METHOD = frozenset([429])
# Gateway errors may hide a request that was applied: only idempotent methods repeat them.
RETRY_IDEMPOTENT = frozenset([502, 503, 504])
IDEMPOTENT_METHODS = frozenset(['GET', 'PUT', 'DELETE'])
BACKOFF_BASE = 0.5

HINTS = {
    401: 'check the management key (option management_key or environment variable CORTECS_MANAGEMENT_KEY)',
    403: 'the key is not a management key, or its user is not an admin of the project',
    404: 'the resource does not exist on the server',
    429: 'the API rate limit was hit; raise retries or max_retry_delay, or lower the number of forks',
}


class CortecsError(Exception):
    """An expected failure: becomes fail_json(msg=..., **result) without a traceback."""

    def __init__(self, msg, **result):
        super(CortecsError, self).__init__(msg)
        self.msg = msg
        self.result = result


class CortecsAPIError(CortecsError):
    """The API answered with an error status."""

    def __init__(self, method, path, status, api_error, attempts=1):
        self.method = method
        self.path = path
        self.status = status
        self.api_error = api_error
        self.attempts = attempts
        msg = 'Cortecs API %s %s failed with HTTP %d: %s' % (method, path, status, api_error or 'no error text')
        hint = HINTS.get(status)
        if hint:
            msg += ' (hint: %s)' % hint
        super(CortecsAPIError, self).__init__(msg, status=status, api_error=api_error)


class CortecsConnectionError(CortecsError):
    """No usable reply. `maybe_applied` tells whether a write may have reached the server."""

    def __init__(self, msg, maybe_applied):
        self.maybe_applied = maybe_applied
        super(CortecsConnectionError, self).__init__(msg)


def is_loopback(host):
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_common_params(params):
    """Reject option values that could never work, before any request is made."""
    base_url = (params.get('base_url') or '').strip()
    if not base_url:
        raise CortecsError('base_url must not be empty')
    parts = urlsplit(base_url)
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise CortecsError('base_url must be an absolute http(s) URL such as %s, got %r' % (DEFAULT_BASE_URL, base_url))
    if parts.username or parts.password:
        raise CortecsError('base_url must not contain credentials; use management_key')
    if parts.query or parts.fragment:
        raise CortecsError('base_url must not contain a query string or fragment, got %r' % base_url)
    if parts.scheme == 'http' and not is_loopback(parts.hostname):
        raise CortecsError('Refusing to send the management key over plain http to %s; use https '
                           '(plain http is only allowed for a loopback host such as the local simulator)' % parts.hostname)
    key = params.get('management_key') or ''
    if not key.strip():
        raise CortecsError('management_key must not be empty (set it or the environment variable CORTECS_MANAGEMENT_KEY)')
    if any(c.isspace() for c in key):
        raise CortecsError('management_key must not contain whitespace or line breaks')
    if params.get('timeout') is None or params['timeout'] <= 0:
        raise CortecsError('timeout must be a positive number of seconds, got %r' % params.get('timeout'))
    if params.get('retries') is None or params['retries'] < 0:
        raise CortecsError('retries must be 0 or more, got %r' % params.get('retries'))
    if params.get('max_retry_delay') is None or params['max_retry_delay'] < 0:
        raise CortecsError('max_retry_delay must be 0 or more seconds, got %r' % params.get('max_retry_delay'))
    return base_url.rstrip('/')


def parse_retry_after(value, now=None):
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def _never_reached_server(exc):
    """True when the connection failed before a request byte could have been processed."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    seen = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (NewConnectionError, ConnectTimeoutError, ConnectionRefusedError)):
            return True
        todo.extend([getattr(current, 'reason', None), current.__cause__, current.__context__])
        todo.extend(arg for arg in getattr(current, 'args', ()) if isinstance(arg, BaseException))
    return False


class CortecsClient:
    """One session per module run; JSON in and out; bounded retries that never repeat a write twice."""

    def __init__(self, params, sleep=time.sleep, rand=random.random, session=None):
        self.base_url = validate_common_params(params)
        self._token = params['management_key']
        self.timeout = params['timeout']
        self.validate_certs = params['validate_certs']
        self.retries = params['retries']
        self.max_retry_delay = params['max_retry_delay']
        self._sleep = sleep
        self._rand = rand
        self.session = session or requests.Session()
        self.session.headers.update({
            'Authorization': 'Bearer %s' % self._token,
            'Accept': 'application/json',
            'User-Agent': 'cortecs.management/%s (Ansible collection) python-requests/%s' % (COLLECTION_VERSION, requests.__version__),
        })

    def scrub(self, text):
        """Remove the management key from any text that may reach the user."""
        text = '%s' % (text,)
        return text.replace(self._token, '********') if self._token else text

    def backoff_delay(self, attempt, retry_after=None):
        """Delay before retry number `attempt` (0-based): Retry-After if given, else exponential with jitter; both capped."""
        if retry_after is not None:
            return min(self.max_retry_delay, retry_after)
        ceiling = min(self.max_retry_delay, BACKOFF_BASE * (2 ** attempt))
        return ceiling / 2 + self._rand() * ceiling / 2

    def get(self, path):
        return self.request('GET', path)

    def post(self, path, body):
        return self.request('POST', path, body)

    def put(self, path, body):
        return self.request('PUT', path, body)

    def delete(self, path, body):
        return self.request('DELETE', path, body)

    def request(self, method, path, body=None):
        url = self.base_url + path
        attempt = 0
        while True:
            retry_after = None
            try:
                response = self.session.request(method, url, json=body, timeout=self.timeout, verify=self.validate_certs)
            except requests.exceptions.RequestException as exc:
                untouched = _never_reached_server(exc)
                if attempt < self.retries and (untouched or method in IDEMPOTENT_METHODS):
                    self._sleep(self.backoff_delay(attempt))
                    attempt += 1
                    continue
                raise self._connection_error(method, path, exc, attempt + 1, maybe_applied=(method != 'GET' and not untouched))
            status = response.status_code
            if status in RETRY_ANY_METHOD or (status in RETRY_IDEMPOTENT and method in IDEMPOTENT_METHODS):
                if attempt < self.retries:
                    retry_after = parse_retry_after(response.headers.get('Retry-After'))
                    self._sleep(self.backoff_delay(attempt, retry_after))
                    attempt += 1
                    continue
            return self._decode(method, path, response, attempt + 1)

    def _connection_error(self, method, path, exc, attempts, maybe_applied):
        msg = 'Could not get a reply from the Cortecs API at %s for %s %s after %d attempt(s): %s' % (
            self.base_url, method, path, attempts, self.scrub('%s: %s' % (type(exc).__name__, exc)))
        if maybe_applied:
            msg += '. The server may have applied this %s; it was not repeated to avoid applying it twice' % method
        return CortecsConnectionError(msg, maybe_applied=maybe_applied)

    def _decode(self, method, path, response, attempts):
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = None
        if 200 <= response.status_code < 300:
            if data is None and response.content:
                raise CortecsError('Cortecs API %s %s returned HTTP %d with a body that is not JSON' % (method, path, response.status_code))
            return data
        if isinstance(data, dict) and isinstance(data.get('error'), str):
            api_error = data['error']
        else:
            api_error = response.text[:200].strip()
        raise CortecsAPIError(method, path, response.status_code, self.scrub(api_error), attempts=attempts)
