#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: cortecs_api_key
short_description: Manage Cortecs API keys and hand off their one-time secrets safely
version_added: 0.1.0
description:
  - Creates and deletes Cortecs API keys of the user that owns the management key.
  - Manages either B(one key) by O(name), or B(a whole declared set) of keys in one task with O(api_keys),
    optionally deleting every key that is not declared (O(purge)).
  - The API shows the secret of a key only once, in the reply that creates it, and never again.
    A created secret is either written to a file (O(secret_file) or O(secret_dir)) and then not returned,
    or returned as RV(api_key) (single key) or RV(api_keys[].api_key) (set) - never neither.
    When a result holds a secret, the collection's action plugin hides the task output as with C(no_log);
    the registered variable still holds it. Still set C(no_log) on tasks that register a secret.
  - The API cannot change an existing key. When O(is_management_key) differs from the existing key,
    the key must be deleted and created again (it gets a new secret); see O(recreate).
  - A run that changes nothing makes exactly one request (it lists the keys).
author:
  - cortecs.management contributors (@cortecs-ai)
extends_documentation_fragment:
  - cortecs.management.api
  - cortecs.management.attributes
  - cortecs.management.attributes.check_diff
attributes:
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change and makes no write request.
    support: partial
    details:
      - Idempotent except with O(recreate=always) (or O(api_keys[].recreate=always)), which issues a new secret on every run.
options:
  name:
    description:
      - Name of the one key to manage. Names are unique per user.
      - Must not be empty, longer than 100 characters, or start or end with whitespace.
      - Exactly one of O(name) and O(api_keys) is required.
    type: str
  state:
    description:
      - V(present) creates the key when it is missing; V(absent) deletes it when it exists.
      - With O(api_keys), the default for entries that do not set O(api_keys[].state).
    type: str
    choices: [present, absent]
    default: present
  is_management_key:
    description:
      - Whether the key may use the Management API (and so manage keys itself).
      - With O(api_keys), the default for entries that do not set O(api_keys[].is_management_key).
    type: bool
    default: false
  recreate:
    description:
      - What to do when the key exists. The API cannot change a key, so recreating means deleting it and
        creating it again under the same name; it gets a new secret and the old secret stops working at once.
      - V(never) keeps the key; when its O(is_management_key) differs, the task fails and explains how to proceed.
      - V(on_change) recreates the key only when its O(is_management_key) differs.
      - V(always) recreates (rotates) the key on every run; the task is then B(not) idempotent.
        Use it in a rotation playbook, or once to get a new secret for a key whose secret was lost.
      - With O(api_keys), the default for entries that do not set O(api_keys[].recreate).
    type: str
    choices: [never, on_change, always]
    default: never
  secret_file:
    description:
      - Absolute path of a file to write the secret of a newly created key to, instead of returning it.
      - The file is written atomically (a temporary file in the same directory, synced, then renamed) with mode C(0600)
        before the task reports success. It holds exactly the secret, without a trailing newline.
      - An existing file is only replaced when the key is recreated (O(recreate)); when the key has to be created
        and the file already exists, the task fails before creating anything.
      - The path is on the host that runs the task's logic, which is the controller when the task runs there
        (the recommended way; see the notes).
      - Not used with O(state=absent). Overrides O(secret_dir) for this key. Cannot be combined with O(api_keys);
        use O(api_keys[].secret_file) there.
    type: path
  secret_dir:
    description:
      - Absolute path of a directory to write the secret of each newly created key to, as a file named like the key,
        C(<secret_dir>/<name>), written like O(secret_file).
      - The directory is created with mode C(0700) when it is missing (only when a key is created).
      - Keys whose name contains C(/), or is C(.) or C(..), need their own O(secret_file) or O(api_keys[].secret_file).
    type: path
  api_keys:
    description:
      - The declared set of keys to manage in one task, instead of O(name).
      - Each entry takes the options of a single key; unset entry options default to the top-level options
        O(state), O(is_management_key) and O(recreate).
      - Names must be unique in the list.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Name of the key; same rules as O(name).
        type: str
        required: true
      state:
        description:
          - Whether the key should exist. Defaults to O(state).
        type: str
        choices: [present, absent]
      is_management_key:
        description:
          - Whether the key may use the Management API. Defaults to O(is_management_key).
        type: bool
      recreate:
        description:
          - When to recreate the existing key, as O(recreate). Defaults to O(recreate).
        type: str
        choices: [never, on_change, always]
      secret_file:
        description:
          - Absolute path of the file that receives this key's secret when it is created; as O(secret_file).
          - Overrides O(secret_dir) for this key.
        type: path
  purge:
    description:
      - With O(api_keys), also delete every existing key that is not in O(api_keys).
      - Management keys are kept unless O(purge_management_keys=true).
      - The key this task authenticates with is never deleted; when the API refuses to delete it,
        it is kept and the task warns.
    type: bool
    default: false
  purge_management_keys:
    description:
      - With O(purge=true), also delete undeclared management keys (never the key in use).
      - Declare the management key the task authenticates with in O(api_keys). Otherwise every run asks the API
        to delete it, which the API refuses; the task then keeps it and warns, and a converged run costs one
        more request than the list.
    type: bool
    default: false
notes:
  - Secrets are only ever returned under the name C(api_key) (RV(api_key) or RV(api_keys[].api_key)), so that the collection's
    action plugin can hide them.
  - When the task fails B(after) a key was created (for example the secret file could not be written, or a later key
    of the set failed), the secret is still in the registered result under RV(api_key) or RV(api_keys[].api_key) and the task
    warns, naming the key.
  - When the reply of a create request is lost (a connection error after sending it), the task lists the keys again
    and fails either saying that the key was created but its secret is lost (rotate it with O(recreate=always) once,
    or delete it and run again), or that nothing was created and running again is safe. A create request is never repeated.
  - When someone else creates a key with the same name between this task's list and create requests, the task reports
    the existing key unchanged and warns.
  - The API does not tell which key a request authenticates with. So in check mode, with O(purge_management_keys=true),
    the task predicts deleting that key when it is not declared in O(api_keys), although a real run keeps it.
seealso:
  - module: cortecs.management.cortecs_api_key_info
'''

EXAMPLES = r'''
- name: Manage the Cortecs API keys from the controller
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/cortecs.management.all:
      management_key: "{{ vault_cortecs_management_key }}"
  tasks:
    - name: Create a key for the chat app; the secret goes to a file (mode 0600), never into the output
      cortecs.management.cortecs_api_key:
        name: chat-app
        secret_file: /etc/chat-app/cortecs.key

    - name: Create a key and register its secret (only returned when the key is created)
      cortecs.management.cortecs_api_key:
        name: ci-runner
      register: ci_key
      no_log: true

    - name: Store the new secret in a vault of your choice (only when it was just created)
      ansible.builtin.copy:
        content: "{{ ci_key.api_key }}"
        dest: /root/ci-runner.key
        mode: "0600"
      when: ci_key.api_key is defined
      no_log: true

    - name: Turn an existing key into a management key (deletes and recreates it; new secret)
      cortecs.management.cortecs_api_key:
        name: automation
        is_management_key: true
        recreate: on_change
        secret_file: /root/automation.key

    - name: Rotate a key (new secret on every run)
      cortecs.management.cortecs_api_key:
        name: chat-app
        recreate: always
        secret_file: /etc/chat-app/cortecs.key

    - name: Delete a key
      cortecs.management.cortecs_api_key:
        name: old-app
        state: absent

    - name: Declare all keys in one task, write new secrets to a directory, delete undeclared plain keys
      cortecs.management.cortecs_api_key:
        api_keys:
          - name: chat-app
          - name: batch-jobs
          - name: automation
            is_management_key: true
          - name: legacy
            state: absent
        secret_dir: /root/cortecs-keys
        purge: true
      register: keys

    - name: Show what changed
      ansible.builtin.debug:
        msg: "created {{ keys.created }}, deleted {{ keys.deleted }}"
'''

RETURN = r'''
action:
  description:
    - What the task did to the key (single key, O(name)). In check mode, what it would do.
    - V(created), V(recreated) (deleted and created again), V(deleted) or V(unchanged).
  returned: success, with O(name)
  type: str
  sample: created
key:
  description: The public fields of the key after the task (single key, O(state=present)).
  returned: success, with O(name) and O(state=present)
  type: dict
  contains:
    name:
      description: Name of the key.
      type: str
      returned: success
      sample: chat-app
    is_management_key:
      description: Whether the key may use the Management API.
      type: bool
      returned: success
      sample: false
    created_at:
      description: Unix timestamp (seconds) of the key's creation; V(null) for a key that check mode would create.
      type: int
      returned: success
      sample: 1767225600
api_key:
  description:
    - The secret of the key created by this task (single key), when it was not written to O(secret_file) or O(secret_dir).
    - Only returned by the run that creates (or recreates) the key; the API cannot show it again.
    - Also returned when the task fails after creating the key because the secret file could not be written.
    - The task output is hidden when this is returned; set C(no_log) on the task as well.
  returned: when a key was created and its secret not written to a file
  type: str
  sample: ctx-0123456789abcdef
secret_file:
  description: The file the new secret was written to (single key).
  returned: when a key was created and its secret written to a file
  type: str
  sample: /etc/chat-app/cortecs.key
api_keys:
  description:
    - One entry per declared key (in the order of O(api_keys)), then one per key deleted by O(purge) (set mode).
    - Entries of keys that a failed task did not reach are missing.
  returned: success, with O(api_keys)
  type: list
  elements: dict
  contains:
    name:
      description: Name of the key.
      type: str
      returned: always
      sample: chat-app
    state:
      description: The declared state of the key; V(absent) for purged keys.
      type: str
      returned: always
      sample: present
    is_management_key:
      description: Whether the key may use the Management API; V(null) for a declared absent key that did not exist.
      type: bool
      returned: always
      sample: false
    created_at:
      description: Unix timestamp of the key's creation; V(null) when unknown (a key check mode would create, or missing).
      type: int
      returned: always
      sample: 1767225600
    action:
      description: V(created), V(recreated), V(deleted) or V(unchanged). In check mode, what would be done.
      type: str
      returned: always
      sample: created
    api_key:
      description: The secret of the key created by this task, when it was not written to a file. Only ever shown once.
      type: str
      returned: when the key was created and its secret not written to a file
      sample: ctx-0123456789abcdef
    secret_file:
      description: The file the new secret was written to.
      type: str
      returned: when the key was created and its secret written to a file
      sample: /root/cortecs-keys/chat-app
created:
  description: Names of the keys that got a new secret (created or recreated), set mode.
  returned: success, with O(api_keys)
  type: list
  elements: str
  sample: [chat-app]
deleted:
  description: Names of the keys deleted (declared absent or purged), set mode.
  returned: success, with O(api_keys)
  type: list
  elements: str
  sample: [legacy]
kept:
  description: Names of undeclared keys that O(purge) kept (management keys, and the key the task authenticates with).
  returned: success, with O(purge=true)
  type: list
  elements: str
  sample: [management]
diff:
  description:
    - In diff mode, the public fields (name, is_management_key, created_at) of the key before and after
      (single key), or of all keys under C(api_keys) (set mode). Never a secret.
  returned: diff mode
  type: dict
  sample: {"before": {}, "after": {"name": "chat-app", "is_management_key": false, "created_at": 1767225600}}
'''

from ansible_collections.cortecs.management.plugins.module_utils.api_key import API_KEY
from ansible_collections.cortecs.management.plugins.module_utils.runner import run_module


def main():
    run_module(API_KEY)


if __name__ == '__main__':
    main()
