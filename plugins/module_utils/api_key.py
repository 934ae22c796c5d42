# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""API keys: one key by name or a declared set, with one-time secrets handed off safely.

Flow of cortecs_api_key: validate the input (no request) -> list the keys (the only request of a
converged run) -> plan one step per key -> check the secret files -> apply (or predict in check
mode) -> result and diff. A created secret is either written to a file or returned under `api_key`,
never neither, also when the task fails after the key was created.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import tempfile

from ansible_collections.cortecs.management.plugins.module_utils.api import (
    CortecsAPIError,
    CortecsConnectionError,
    CortecsError,
)
from ansible_collections.cortecs.management.plugins.module_utils.runner import Resource

KEYS_PATH = '/manage/api-keys'
NAME_MAX_LENGTH = 100
SECRET_FILE_MODE = 0o600
SECRET_DIR_MODE = 0o700

ROTATE_ACTIONS = 'run the task once with recreate=always, or delete the key (state=absent) and run the task again'
ROTATE_HINT = 'rotate it to get a new secret: ' + ROTATE_ACTIONS

API_KEY_ENTRY_SPEC = dict(
    name=dict(type='str', required=True),
    state=dict(type='str', choices=['present', 'absent']),
    is_management_key=dict(type='bool'),
    recreate=dict(type='str', choices=['never', 'on_change', 'always']),
    secret_file=dict(type='path'),
)

API_KEY_ARGUMENT_SPEC = dict(
    name=dict(type='str'),
    state=dict(type='str', default='present', choices=['present', 'absent']),
    is_management_key=dict(type='bool', default=False),
    recreate=dict(type='str', default='never', choices=['never', 'on_change', 'always']),
    secret_file=dict(type='path'),
    secret_dir=dict(type='path'),
    api_keys=dict(type='list', elements='dict', options=API_KEY_ENTRY_SPEC, no_log=False),
    purge=dict(type='bool', default=False),
    purge_management_keys=dict(type='bool', default=False),
)

API_KEY_INFO_ARGUMENT_SPEC = dict(
    name=dict(type='str'),
    is_management_key=dict(type='bool'),
)


# --- input -------------------------------------------------------------------------------------

class Wanted:
    """One declared key: what the user asked for."""

    def __init__(self, name, state, is_management_key, recreate, secret_path, explicit_file=False):
        self.name = name
        self.state = state
        self.is_management_key = is_management_key
        self.recreate = recreate
        self.secret_path = secret_path
        # True when secret_file names the file (not derived from secret_dir)
        self.explicit_file = explicit_file


def validate_name(name, where='name'):
    """Reject a name the API would refuse, before any request."""
    if not isinstance(name, str) or name == '':
        raise CortecsError('%s: an API key name must not be empty' % where)
    if len(name) > NAME_MAX_LENGTH:
        raise CortecsError('%s: an API key name must be at most %d characters, got %d' % (where, NAME_MAX_LENGTH, len(name)))
    if name != name.strip():
        raise CortecsError('%s: an API key name must not start or end with whitespace, got %r' % (where, name))
    if '\x00' in name:
        raise CortecsError('%s: an API key name must not contain a NUL character' % where)


def secret_path_for(name, secret_file, secret_dir, where):
    """The file that receives the secret of a key created for `name`, or None (then it is returned as api_key)."""
    if secret_file:
        path = secret_file
        option = 'secret_file'
    elif secret_dir:
        if '/' in name or name in ('.', '..'):
            raise CortecsError('%s: the key name %r cannot be used as a file name in secret_dir; set secret_file for this key' % (where, name))
        path = os.path.join(secret_dir, name)
        option = 'secret_dir'
    else:
        return None
    if not os.path.isabs(path):
        raise CortecsError('%s: %s must be an absolute path, got %r' % (where, option, path))
    return os.path.normpath(path)


def wanted_keys(params):
    """The declared keys from the options; raises before any request when the input cannot work."""
    secret_dir = params.get('secret_dir')
    if params.get('purge_management_keys') and not params.get('purge'):
        raise CortecsError('purge_management_keys=true requires purge=true')
    if params.get('api_keys') is None:
        entries = [dict(name=params['name'], secret_file=params.get('secret_file'))]
        where = ['name']
    else:
        entries = params['api_keys']
        where = ['api_keys[%d] (%s)' % (index, entry.get('name')) for index, entry in enumerate(entries)]
    wanted = []
    for entry, label in zip(entries, where):
        validate_name(entry.get('name'), label)
        wanted.append(Wanted(
            name=entry['name'],
            state=entry.get('state') or params['state'],
            is_management_key=params['is_management_key'] if entry.get('is_management_key') is None else entry['is_management_key'],
            recreate=entry.get('recreate') or params['recreate'],
            secret_path=secret_path_for(entry['name'], entry.get('secret_file'), secret_dir, label),
            explicit_file=bool(entry.get('secret_file')),
        ))
    reject_duplicates(wanted)
    return wanted


def reject_duplicates(wanted):
    names = [want.name for want in wanted]
    duplicates = sorted(set(name for name in names if names.count(name) > 1))
    if duplicates:
        raise CortecsError('api_keys declares these names more than once: %s' % ', '.join(duplicates))
    paths = [want.secret_path for want in wanted if want.secret_path and want.state == 'present']
    shared = sorted(set(path for path in paths if paths.count(path) > 1))
    if shared:
        raise CortecsError('several keys would write their secret to the same file: %s' % ', '.join(shared))


# --- API calls ---------------------------------------------------------------------------------

def explain(exc, doing):
    """A specific message for an authentication or permission failure; other errors unchanged."""
    if not isinstance(exc, CortecsAPIError) or exc.status not in (401, 403):
        return exc
    if exc.status == 401:
        why = ('the management key is unknown, revoked or mistyped; check the option management_key '
               'or the environment variable CORTECS_MANAGEMENT_KEY')
    else:
        why = ('the key given as management_key is not a management key (or lacks the permission); '
               'API keys can only be managed with a key created with is_management_key=true')
    msg = 'Cortecs API refused %s with HTTP %d (%s): %s' % (doing, exc.status, exc.api_error or 'no error text', why)
    return CortecsError(msg, status=exc.status, api_error=exc.api_error)


def as_bool(value):
    """A boolean as written in a playbook."""
    return 'true' if value else 'false'


def public_key(item):
    """The public fields of a key; never the secret."""
    return dict(name=item.get('name'), is_management_key=bool(item.get('is_management_key')), created_at=item.get('created_at'))


def list_keys(client):
    """All keys by name (in the API's order)."""
    try:
        data = client.get(KEYS_PATH)
    except CortecsAPIError as exc:
        raise explain(exc, 'to list API keys (GET %s)' % KEYS_PATH)
    items = data.get('api_keys') if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) and isinstance(item.get('name'), str) for item in items):
        raise CortecsError('Cortecs API GET %s returned an unexpected reply (no list api_keys of keys with a name)' % KEYS_PATH)
    existing = {}
    order = []
    for item in items:
        existing[item['name']] = public_key(item)
        order.append(item['name'])
    return KeyList(existing, order)


class KeyList:
    """The keys as listed: lookup by name, iteration in the API's order."""

    def __init__(self, by_name, order):
        self.by_name = by_name
        self.order = order

    def get(self, name):
        return self.by_name.get(name)

    def items(self):
        return [(name, self.by_name[name]) for name in self.order]


def relist_for(client, name, doing):
    """The key `name` as the API lists it now (None when missing); raises a message naming `doing` on failure."""
    try:
        return list_keys(client).get(name)
    except CortecsError as exc:
        raise CortecsError('%s; listing the keys again to find out what happened failed too: %s' % (doing, exc.msg))


def delete_key(client, name):
    """Delete a key. True when deleted, False when it was already gone (404). Raises for other failures."""
    try:
        client.delete(KEYS_PATH, dict(name=name))
        return True
    except CortecsAPIError as exc:
        if exc.status == 404:
            return False
        if exc.status == 400:
            raise CortecsError(
                'Cortecs API refused to delete the API key %r with HTTP 400 (%s). The key this task authenticates with '
                '(management_key) cannot be deleted; run the task with another management key to delete or rotate it'
                % (name, exc.api_error or 'no error text'), status=400, api_error=exc.api_error, in_use=True)
        raise explain(exc, 'to delete the API key %r (DELETE %s)' % (name, KEYS_PATH))
    except CortecsConnectionError as exc:
        if not exc.maybe_applied:
            raise
        if relist_for(client, name, 'Deleting the API key %r got no reply (%s)' % (name, exc.msg)) is None:
            return True
        raise


def create_key(ctx, want):
    """Create a key. Returns (public fields, secret); secret is None when someone else created it first."""
    body = dict(name=want.name, is_management_key=want.is_management_key)
    try:
        reply = ctx.client.post(KEYS_PATH, body)
    except CortecsAPIError as exc:
        if exc.status != 400:
            raise explain(exc, 'to create the API key %r (POST %s)' % (want.name, KEYS_PATH))
        return create_refused(ctx, want, exc)
    except CortecsConnectionError as exc:
        if not exc.maybe_applied:
            raise
        raise create_reply_lost(ctx.client, want, exc)
    secret = reply.get('api_key') if isinstance(reply, dict) else None
    if not isinstance(secret, str) or not secret:
        raise CortecsError('Cortecs API created the API key %r but its reply held no secret (api_key), so the secret is lost; %s'
                           % (want.name, ROTATE_HINT), changed=True)
    key = public_key(reply)
    key['name'] = want.name
    if 'is_management_key' not in reply:
        key['is_management_key'] = want.is_management_key
    return key, secret


def create_refused(ctx, want, exc):
    """HTTP 400 on create: a concurrent creation (duplicate name), the key limit, or another refusal."""
    doing = 'Cortecs API refused to create the API key %r with HTTP 400 (%s)' % (want.name, exc.api_error or 'no error text')
    existing = relist_for(ctx.client, want.name, doing)
    if existing is not None:
        warning = ('The API key %r did not exist when this task listed the keys, but was created by someone else before '
                   'this task could create it; reporting the existing key unchanged, without a secret' % want.name)
        if existing['is_management_key'] != want.is_management_key:
            warning += ('; note that it has is_management_key=%s, not %s as requested'
                        % (as_bool(existing['is_management_key']), as_bool(want.is_management_key)))
        ctx.warn(warning)
        return existing, None
    if 'limit' in (exc.api_error or '').lower():
        raise CortecsError('%s: the account has reached its limit of API keys. Delete keys that are no longer used '
                           '(state=absent, or purge=true with the declared set) and run the task again' % doing,
                           status=400, api_error=exc.api_error)
    raise CortecsError(doing, status=400, api_error=exc.api_error)


def create_reply_lost(client, want, exc):
    """The create request may have been applied but its reply (with the one-time secret) never arrived."""
    doing = 'Creating the API key %r got no reply (%s)' % (want.name, exc.msg)
    if relist_for(client, want.name, doing) is not None:
        return CortecsError('%s. The key WAS created, but its secret was lost with the reply and cannot be read back; %s'
                            % (doing, ROTATE_HINT), changed=True)
    return CortecsError('%s. The key was NOT created; nothing changed and running the task again is safe' % doing)


# --- secret files ------------------------------------------------------------------------------

def write_secret_file(path, secret):
    """Write atomically: a temporary file in the same directory, fsync, mode 0600, rename over `path`."""
    directory = os.path.dirname(path)
    fd, tmp_path = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path)[:32], suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'w') as handle:
            os.fchmod(handle.fileno(), SECRET_FILE_MODE)
            handle.write(secret)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        raise
    fsync_directory(directory)


def fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def ensure_secret_dir(secret_dir):
    """Create secret_dir with mode 0700 when it is missing."""
    if os.path.isdir(secret_dir):
        return
    try:
        os.makedirs(secret_dir, SECRET_DIR_MODE)
        os.chmod(secret_dir, SECRET_DIR_MODE)
    except OSError as exc:
        raise CortecsError('Could not create secret_dir %s: %s; no key was created' % (secret_dir, exc))


def check_secret_targets(ctx, steps, secret_dir):
    """Before any write: every secret file to write can be written and overwrites nothing it should not."""
    problems = []
    for step in steps:
        path = step.want.secret_path if step.want else None
        if not path:
            continue
        if step.action == 'unchanged' and step.want.state == 'present':
            if step.want.explicit_file and not os.path.exists(path):
                ctx.warn('The API key %r exists but its secret_file %s does not; a secret cannot be read back from the API. '
                         'To get a new secret into that file, %s' % (step.want.name, path, ROTATE_ACTIONS))
            continue
        if step.action not in ('create', 'recreate'):
            continue
        problems.extend(secret_target_problems(step, path, secret_dir))
    if problems:
        raise CortecsError('Nothing was changed: ' + '; '.join(problems))


def secret_target_problems(step, path, secret_dir):
    if os.path.isdir(path):
        return ['the secret file %s of the API key %r is a directory' % (path, step.want.name)]
    if step.action == 'create' and os.path.lexists(path):
        return ['the secret file %s of the API key %r to create already exists; it is only overwritten when a key is rotated '
                '(recreate). Move or delete it if it holds a secret that is no longer used, then run the task again' % (path, step.want.name)]
    directory = os.path.dirname(path)
    if secret_dir and directory == os.path.normpath(secret_dir) and not os.path.exists(directory):
        return []
    if not os.path.isdir(directory):
        return ['the directory %s for the secret file of the API key %r does not exist' % (directory, step.want.name)]
    if not os.access(directory, os.W_OK | os.X_OK):
        return ['the directory %s for the secret file of the API key %r is not writable' % (directory, step.want.name)]
    return []


def hand_off_secret(ctx, outcome, secret, path):
    """Write the secret to `path`, or return it under api_key; on a write failure fail WITH the secret."""
    if not path:
        outcome['api_key'] = secret
        return
    try:
        write_secret_file(path, secret)
    except (IOError, OSError) as exc:
        outcome['api_key'] = secret
        raise CortecsError('The API key %r was created, but writing its secret to %s failed (%s). The secret is returned '
                           'under api_key in the registered result; store it securely now, or %s'
                           % (outcome['name'], path, exc, ROTATE_ACTIONS))
    outcome['secret_file'] = path


# --- plan --------------------------------------------------------------------------------------

class Step:
    """What happens to one key: create, recreate, delete or unchanged. `want` is None for a purged key."""

    def __init__(self, action, want, have, purged=False):
        self.action = action
        self.want = want
        self.have = have
        self.purged = purged

    @property
    def name(self):
        return self.want.name if self.want else self.have['name']


def decide(want, have):
    """The action for one declared key, or an error text when it needs recreating but recreate=never."""
    if want.state == 'absent':
        return ('delete' if have else 'unchanged'), None
    if have is None:
        return 'create', None
    if want.recreate == 'always':
        return 'recreate', None
    if have['is_management_key'] == want.is_management_key:
        return 'unchanged', None
    if want.recreate == 'on_change':
        return 'recreate', None
    return None, ('the API key %r exists with is_management_key=%s but %s is requested'
                  % (want.name, as_bool(have['is_management_key']), as_bool(want.is_management_key)))


def plan_steps(wanted, existing, purge=False, purge_management_keys=False):
    """One step per declared key (in order), then one per purged key. Returns (steps, kept names)."""
    steps = []
    conflicts = []
    for want in wanted:
        have = existing.get(want.name)
        action, conflict = decide(want, have)
        if conflict:
            conflicts.append(conflict)
        steps.append(Step(action, want, have))
    if conflicts:
        raise CortecsError('Nothing was changed: %s. The API cannot change is_management_key of an existing key. Set recreate=on_change '
                           'to delete and recreate such a key (it gets a new secret, the old secret stops working at once), '
                           'or request the is_management_key the key has' % '; '.join(conflicts))
    kept = []
    if purge:
        declared = set(want.name for want in wanted)
        for name, have in existing.items():
            if name in declared:
                continue
            if have['is_management_key'] and not purge_management_keys:
                kept.append(name)
            else:
                steps.append(Step('delete', None, have, purged=True))
    return steps, kept


# --- apply -------------------------------------------------------------------------------------

ACTION_DONE = dict(create='created', recreate='recreated', delete='deleted', unchanged='unchanged')


def new_outcome(step, key, action):
    outcome = dict(name=step.name, state=step.want.state if step.want else 'absent', action=action)
    outcome.update(is_management_key=key['is_management_key'] if key else None, created_at=key['created_at'] if key else None)
    return outcome


def predict(step):
    """The outcome of a step in check mode: no request."""
    if step.action in ('create', 'recreate'):
        key = dict(name=step.name, is_management_key=step.want.is_management_key, created_at=None)
        return new_outcome(step, key, ACTION_DONE[step.action])
    return new_outcome(step, step.have, ACTION_DONE[step.action])


def apply_delete(ctx, step, kept):
    """Delete a key; a purged key the API refuses to delete (the key in use) is kept with a warning."""
    try:
        deleted = delete_key(ctx.client, step.name)
    except CortecsError as exc:
        if not (step.purged and exc.result.get('in_use')):
            raise
        ctx.warn('purge kept the API key %r: the API refused to delete it (%s); it is most likely the management key this task '
                 'authenticates with. Declare it in api_keys to keep it without this refused request and warning'
                 % (step.name, exc.result.get('api_error') or 'HTTP 400'))
        kept.append(step.name)
        return None
    return new_outcome(step, step.have, 'deleted' if deleted else 'unchanged')


def apply_create(ctx, step, outcomes):
    """Create (or delete and create) a key and hand off its secret; the outcome is recorded before the hand-off."""
    if step.action == 'recreate' and delete_key(ctx.client, step.name):
        # recorded in case the create fails: the result then tells that the key is gone
        outcomes[step] = new_outcome(step, step.have, 'deleted')
    key, secret = create_key(ctx, step.want)
    if secret is None:
        outcomes[step] = new_outcome(step, key, 'unchanged')
        return
    outcome = outcomes[step] = new_outcome(step, key, ACTION_DONE[step.action])
    hand_off_secret(ctx, outcome, secret, step.want.secret_path)


def apply_steps(ctx, steps, outcomes, kept):
    """Deletions first (they free key slots), then creations in the declared order."""
    creating = [step for step in steps if step.action in ('create', 'recreate')]
    if ctx.params.get('secret_dir') and any(step.want.secret_path and not step.want.explicit_file for step in creating):
        ensure_secret_dir(ctx.params['secret_dir'])
    for step in steps:
        if step.action == 'delete':
            outcome = apply_delete(ctx, step, kept)
            if outcome:
                outcomes[step] = outcome
    for step in steps:
        if step.action in ('create', 'recreate'):
            apply_create(ctx, step, outcomes)
        elif step.action == 'unchanged':
            outcomes[step] = new_outcome(step, step.have, 'unchanged')


def fill_created_at(ctx, outcomes):
    """The create reply has no created_at: read it with one more list, only after a key was created."""
    missing = [outcome for outcome in outcomes if outcome['action'] in ('created', 'recreated') and outcome['created_at'] is None]
    if not missing:
        return
    try:
        existing = list_keys(ctx.client)
    except CortecsError as exc:
        ctx.warn('Could not read created_at of the new API keys: %s' % exc.msg)
        return
    for outcome in missing:
        key = existing.get(outcome['name'])
        if key:
            outcome['created_at'] = key['created_at']


# --- result ------------------------------------------------------------------------------------

def public_fields(outcome):
    return dict(name=outcome['name'], is_management_key=outcome['is_management_key'], created_at=outcome['created_at'])


def after_state(existing, outcomes):
    """The keys after the run, by name, from the keys before and the outcomes."""
    after = dict((name, dict(key)) for name, key in existing.items())
    for outcome in outcomes:
        if outcome['action'] == 'deleted':
            after.pop(outcome['name'], None)
        elif outcome['state'] == 'present':
            after[outcome['name']] = public_fields(outcome)
    return after


def set_result(outcomes, existing, kept, diff_mode, purge):
    result = dict(
        changed=any(outcome['action'] != 'unchanged' for outcome in outcomes),
        api_keys=outcomes,
        created=[outcome['name'] for outcome in outcomes if outcome['action'] in ('created', 'recreated')],
        deleted=[outcome['name'] for outcome in outcomes if outcome['action'] == 'deleted'],
    )
    if purge:
        result['kept'] = kept
    if diff_mode:
        before = dict(existing.items())
        after = after_state(existing, outcomes)
        result['diff'] = dict(before=dict(api_keys=[before[name] for name in sorted(before)]),
                              after=dict(api_keys=[after[name] for name in sorted(after)]))
    return result


def single_result(outcome, have, diff_mode):
    result = dict(changed=outcome['action'] != 'unchanged', action=outcome['action'])
    present = outcome['state'] == 'present' and outcome['action'] != 'deleted'
    if present:
        result['key'] = public_fields(outcome)
    for name in ('api_key', 'secret_file'):
        if name in outcome:
            result[name] = outcome[name]
    if diff_mode:
        result['diff'] = dict(before=dict(have) if have else {}, after=public_fields(outcome) if present else {})
    return result


def build_result(ctx, steps, outcomes, existing, kept):
    """The module result from the outcomes (of the steps done so far, in the declared order)."""
    done = [outcomes[step] for step in steps if step in outcomes]
    if ctx.params.get('api_keys') is None:
        if not done:
            return dict(changed=False)
        return single_result(done[0], steps[0].have, ctx.diff_mode)
    return set_result(done, existing, kept, ctx.diff_mode, ctx.params.get('purge'))


def holds_secret(result):
    if 'api_key' in result:
        return True
    return any('api_key' in outcome for outcome in result.get('api_keys', []))


def failure_note(result):
    """What a failed run already changed, so the user knows what to look at."""
    if 'api_keys' in result:
        notes = []
        if result['deleted']:
            notes.append('deleted: %s' % ', '.join(result['deleted']))
        if result['created']:
            notes.append('created: %s' % ', '.join(result['created']))
        return (' Before this failure the task already %s.' % '; '.join(notes)) if notes else ''
    if result.get('action', 'unchanged') != 'unchanged':
        return ' Before this failure the task already %s the key.' % result['action']
    return ''


def run_api_key(ctx):
    wanted = wanted_keys(ctx.params)
    existing = list_keys(ctx.client)
    steps, kept = plan_steps(wanted, existing, ctx.params.get('purge'), ctx.params.get('purge_management_keys'))
    check_secret_targets(ctx, steps, ctx.params.get('secret_dir'))
    outcomes = {}
    try:
        if ctx.check_mode:
            outcomes.update((step, predict(step)) for step in steps)
        else:
            apply_steps(ctx, steps, outcomes, kept)
            fill_created_at(ctx, list(outcomes.values()))
    except CortecsError as exc:
        result = build_result(ctx, steps, outcomes, existing, kept)
        note = failure_note(result)
        extra = dict(exc.result)
        result['changed'] = bool(result.get('changed') or extra.pop('changed', False))
        extra.pop('in_use', None)
        result.update(extra)
        msg = exc.msg + note
        if holds_secret(result):
            # The action plugin hides a result that holds a secret; warnings stay visible.
            ctx.warn('%s (The task output is hidden because the result holds new secrets under api_key; register it to keep them.)' % msg)
        raise CortecsError(msg, **result)
    return build_result(ctx, steps, outcomes, existing, kept)


API_KEY = Resource(
    'cortecs_api_key', API_KEY_ARGUMENT_SPEC, run_api_key,
    mutually_exclusive=[['name', 'api_keys'], ['secret_file', 'api_keys']],
    required_one_of=[['name', 'api_keys']],
    required_if=[['purge', True, ['api_keys']]],
)


# --- info --------------------------------------------------------------------------------------

def run_api_key_info(ctx):
    name = ctx.params.get('name')
    if name is not None:
        validate_name(name)
    keys = [key for dummy, key in list_keys(ctx.client).items()]
    if name is not None:
        keys = [key for key in keys if key['name'] == name]
    if ctx.params.get('is_management_key') is not None:
        keys = [key for key in keys if key['is_management_key'] == ctx.params['is_management_key']]
    return dict(changed=False, api_keys=keys)


API_KEY_INFO = Resource('cortecs_api_key_info', API_KEY_INFO_ARGUMENT_SPEC, run_api_key_info)
