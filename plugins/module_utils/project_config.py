# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The project configuration, a singleton: GET, compare the managed fields, PUT only when something differs.

The API replaces `inference_config` as a whole on PUT (an omitted field is reset), so the PUT always
carries the full `inference_config` the server returned, with only the managed fields changed; fields
this collection does not know (such as `include_metadata`) are sent back unchanged. `created_at` and
`updated_at` are echoed from the GET; the server rejects a PUT with stale timestamps (HTTP 400).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy

from ansible_collections.cortecs.management.plugins.module_utils.api import HINTS, CortecsAPIError, CortecsError
from ansible_collections.cortecs.management.plugins.module_utils.runner import Resource

CONFIG_PATH = '/manage/project-configs'
PREFERENCES = ('speed', 'cost', 'balanced')
# The nullable fields `inference_config.clear` can set back to null.
NULLABLE_FIELDS = ('preference', 'max_tokens')
# The inference_config fields this collection manages, in API order.
INFERENCE_FIELDS = ('allowed_providers', 'eu_native', 'allow_quantization', 'allow_zero_data_retention',
                    'enable_model_fallback', 'preference', 'max_tokens')

INFERENCE_CONFIG_SPEC = dict(
    allowed_providers=dict(type='list', elements='str'),
    eu_native=dict(type='bool'),
    allow_quantization=dict(type='bool'),
    allow_zero_data_retention=dict(type='bool'),
    enable_model_fallback=dict(type='bool'),
    preference=dict(type='str', choices=list(PREFERENCES)),
    max_tokens=dict(type='int', no_log=False),
    clear=dict(type='list', elements='str', choices=list(NULLABLE_FIELDS)),
)

PROJECT_CONFIG_SPEC = dict(
    inference_config=dict(type='dict', options=INFERENCE_CONFIG_SPEC),
    allow_overwrite=dict(type='bool'),
)

# Why the API refused, in the words of this collection; other statuses use the client's generic hints.
EXPLANATIONS = {
    ('GET', 403): 'reading project settings needs a management key, that is an API key created with is_management_key=true',
    ('PUT', 403): 'updating project settings needs a management key whose user is an admin of the project: '
                  'the key is not a management key, or its user is only a member of the project',
    ('GET', 404): 'the project of this management key has no configuration; the Management API can read and '
                  'update an existing configuration but cannot create one',
    ('PUT', 404): 'the project of this management key has no configuration (any more); the Management API '
                  'cannot create one',
}
VERBS = {'GET': 'read', 'PUT': 'update'}


# ---------------------------------------------------------------- desired state from the options

def validate_providers(providers):
    for name in providers:
        if not name.strip():
            raise CortecsError('inference_config.allowed_providers must not contain an empty provider name')
        if name != name.strip():
            raise CortecsError('inference_config.allowed_providers: provider name %r has leading or trailing whitespace' % name)
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise CortecsError('inference_config.allowed_providers: provider name %r contains a control character' % name)


def validate_inference_options(options):
    """Checks the argument spec cannot express; raises CortecsError before any request."""
    clear = options.get('clear') or []
    both = [field for field in NULLABLE_FIELDS if field in clear and options.get(field) is not None]
    if both:
        raise CortecsError('inference_config: %s cannot be set and listed in inference_config.clear at the same time'
                           % ' and '.join(both))
    if options.get('max_tokens') is not None and options['max_tokens'] < 1:
        raise CortecsError('inference_config.max_tokens must be 1 or more, got %d (to remove the limit use clear: [max_tokens])'
                           % options['max_tokens'])
    if options.get('allowed_providers') is not None:
        validate_providers(options['allowed_providers'])


def desired_inference(options):
    """The managed inference_config fields: those with a value, plus the cleared ones as None."""
    validate_inference_options(options)
    desired = dict((field, options[field]) for field in INFERENCE_FIELDS if options.get(field) is not None)
    if 'allowed_providers' in desired:
        # Order and duplicates carry no meaning (and the API rejects duplicates).
        desired['allowed_providers'] = list(dict.fromkeys(desired['allowed_providers']))
    for field in options.get('clear') or []:
        desired[field] = None
    return desired


def desired_state(params):
    """{'inference_config': {managed fields}, 'allow_overwrite': bool (only when managed)}."""
    desired = dict(inference_config=desired_inference(params.get('inference_config') or {}))
    if params.get('allow_overwrite') is not None:
        desired['allow_overwrite'] = params['allow_overwrite']
    return desired


# ---------------------------------------------------------------- reading and comparing

def api_failure(exc):
    """A CortecsError that says which operation failed, with the API's own text and an explanation."""
    hint = EXPLANATIONS.get((exc.method, exc.status)) or HINTS.get(exc.status)
    msg = 'Could not %s the project configuration: Cortecs API %s %s answered HTTP %d: %s' % (
        VERBS.get(exc.method, exc.method), exc.method, exc.path, exc.status, exc.api_error or 'no error text')
    if hint:
        msg += ' (%s)' % hint
    return CortecsError(msg, status=exc.status, api_error=exc.api_error)


def check_config_reply(data):
    if (not isinstance(data, dict) or not isinstance(data.get('inference_config'), dict)
            or not isinstance(data.get('created_at'), str) or not isinstance(data.get('updated_at'), str)):
        raise CortecsError('Cortecs API GET %s returned an unexpected reply (expected an object with inference_config, '
                           'created_at and updated_at): %.300r' % (CONFIG_PATH, data))
    return data


def read_config(client):
    try:
        return check_config_reply(client.get(CONFIG_PATH))
    except CortecsAPIError as exc:
        raise api_failure(exc) from None


def same_value(current, wanted):
    """Equality that does not let True pass for 1 (or the other way round)."""
    if isinstance(current, bool) or isinstance(wanted, bool):
        return current is wanted
    return current == wanted


def same_field(field, current, wanted):
    if field == 'allowed_providers' and isinstance(current, list) and isinstance(wanted, list):
        # A set comparison: the declared set must equal the server's set (not merely contain it).
        return set(current) == set(wanted)
    return same_value(current, wanted)


def differences(current, desired):
    """The managed fields whose server value differs from the desired one, as dotted paths."""
    found = []
    current_inference = current.get('inference_config') or {}
    for field, wanted in desired['inference_config'].items():
        # A missing nullable field reads as null.
        if not same_field(field, current_inference.get(field), wanted):
            found.append('inference_config.%s' % field)
    if 'allow_overwrite' in desired and not same_value(current.get('allow_overwrite'), desired['allow_overwrite']):
        found.append('allow_overwrite')
    return found


def merge(current, desired):
    """The full configuration as the server would hold it after the update (timestamps unchanged)."""
    merged = copy.deepcopy(current)
    merged['inference_config'].update(copy.deepcopy(desired['inference_config']))
    if 'allow_overwrite' in desired:
        merged['allow_overwrite'] = desired['allow_overwrite']
    return merged


def managed_view(config):
    """What diff mode shows: the parts of the configuration this module writes."""
    return dict(inference_config=config.get('inference_config'), allow_overwrite=config.get('allow_overwrite'))


def update_body(current, merged):
    """The PUT body: the whole merged inference_config and the timestamps of the GET it is based on."""
    return dict(
        inference_config=merged['inference_config'],
        allow_overwrite=merged.get('allow_overwrite'),
        created_at=current['created_at'],
        updated_at=current['updated_at'],
    )


def timestamps(config):
    return config.get('created_at'), config.get('updated_at')


# ---------------------------------------------------------------- writing

def recover_rejected_update(client, current, desired, exc):
    """Decide what an HTTP 400 on the PUT means, with one fresh GET; return the config or raise.

    - A retried PUT (exc.attempts > 1) whose earlier attempt was applied is refused as stale:
      succeed when the server now holds the desired state.
    - Timestamps that moved mean someone else changed the configuration meanwhile: say so.
    - Otherwise the API refused the content (for example an unknown provider): show its text.
    """
    rejected = api_failure(exc)
    try:
        now = read_config(client)
    except CortecsError:
        raise rejected from None
    if exc.attempts > 1 and not differences(now, desired):
        return now
    if timestamps(now) != timestamps(current):
        raise CortecsError(
            'The project configuration was changed by someone else while this task ran (updated_at was %s, is now %s), '
            'so the API refused the update as stale and nothing of this task was applied; re-run the task to apply the '
            'settings on top of the new state. API answer: HTTP %d: %s' % (current.get('updated_at'), now.get('updated_at'),
                                                                           exc.status, exc.api_error or 'no error text'),
            status=exc.status, api_error=exc.api_error)
    raise rejected


def put_config(client, current, merged, desired):
    """PUT the merged configuration; returns the server's config when a retry recovery read it, else None."""
    try:
        client.put(CONFIG_PATH, update_body(current, merged))
    except CortecsAPIError as exc:
        if exc.status != 400:
            raise api_failure(exc) from None
        return recover_rejected_update(client, current, desired, exc)
    return None


def read_back(ctx, merged, desired):
    """One GET after a successful PUT so `config` is the server's truth (updated_at included)."""
    try:
        fresh = read_config(ctx.client)
    except CortecsError as exc:
        ctx.warn('The project configuration was updated, but reading it back failed (%s); config shows the values that '
                 'were sent, with the previous updated_at' % exc.msg)
        return merged
    drift = differences(fresh, desired)
    if drift:
        ctx.warn('Right after the update the server holds other values than requested for %s (changed concurrently, or '
                 'normalised by the server); the next run will compare again' % ', '.join(drift))
    return fresh


def update_config(ctx, current, merged, desired):
    recovered = put_config(ctx.client, current, merged, desired)
    if recovered is not None:
        return recovered
    return read_back(ctx, merged, desired)


# ---------------------------------------------------------------- the two resources

def run_project_config(ctx):
    desired = desired_state(ctx.params)
    current = read_config(ctx.client)
    changes = differences(current, desired)
    after = current
    if changes:
        after = merge(current, desired)
        if not ctx.check_mode:
            after = update_config(ctx, current, after, desired)
    result = dict(changed=bool(changes), config=after)
    if ctx.diff_mode:
        result['diff'] = dict(before=managed_view(current), after=managed_view(after))
    return result


def run_project_config_info(ctx):
    return dict(changed=False, config=read_config(ctx.client))


PROJECT_CONFIG = Resource('cortecs_project_config', PROJECT_CONFIG_SPEC, run_project_config)
PROJECT_CONFIG_INFO = Resource('cortecs_project_config_info', {}, run_project_config_info)
