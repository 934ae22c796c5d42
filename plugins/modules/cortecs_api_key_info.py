#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: cortecs_api_key_info
short_description: List Cortecs API keys
version_added: 0.1.0
description:
  - Lists the API keys of the user that owns the management key, optionally filtered.
  - Returns only public fields; the API never returns a key's secret after its creation.
  - Makes exactly one request.
author:
  - cortecs.management contributors (@cortecs-ai)
extends_documentation_fragment:
  - cortecs.management.api
  - cortecs.management.attributes
  - cortecs.management.attributes.info_module
options:
  name:
    description:
      - Only return the key with this name (an empty list when there is none).
      - Must not be empty, longer than 100 characters, or start or end with whitespace.
    type: str
  is_management_key:
    description:
      - Only return management keys (V(true)) or only plain keys (V(false)). By default both.
    type: bool
seealso:
  - module: cortecs.management.cortecs_api_key
'''

EXAMPLES = r'''
- name: List all API keys
  cortecs.management.cortecs_api_key_info:
    management_key: "{{ vault_cortecs_management_key }}"
  delegate_to: localhost
  register: cortecs_keys

- name: Show their names
  ansible.builtin.debug:
    msg: "{{ cortecs_keys.api_keys | map(attribute='name') | list }}"

- name: List the management keys only
  cortecs.management.cortecs_api_key_info:
    management_key: "{{ vault_cortecs_management_key }}"
    is_management_key: true
  delegate_to: localhost
  register: cortecs_management_keys

- name: Check whether the key chat-app exists
  cortecs.management.cortecs_api_key_info:
    management_key: "{{ vault_cortecs_management_key }}"
    name: chat-app
  delegate_to: localhost
  register: chat_app_key

- name: Fail when it is missing
  ansible.builtin.assert:
    that: chat_app_key.api_keys | length == 1
'''

RETURN = r'''
api_keys:
  description: The keys that match the filters, in the order the API lists them. Never holds a secret.
  returned: success
  type: list
  elements: dict
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
      description: Unix timestamp (seconds) of the key's creation.
      type: int
      returned: success
      sample: 1767225600
'''

from ansible_collections.cortecs.management.plugins.module_utils.api_key import API_KEY_INFO
from ansible_collections.cortecs.management.plugins.module_utils.runner import run_module


def main():
    run_module(API_KEY_INFO)


if __name__ == '__main__':
    main()
