#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: cortecs_balance_info
short_description: Read the Cortecs account balance
version_added: 0.1.0
description:
  - Returns the current balance of the user that owns the management key.
  - Use it to stop a run before any write when the balance is below a floor.
  - It only reads, so it runs normally in check mode and never reports a change.
author:
  - cortecs.management contributors (@cortecs-ai)
extends_documentation_fragment:
  - cortecs.management.api
  - cortecs.management.attributes
  - cortecs.management.attributes.info_module
options: {}
seealso:
  - module: cortecs.management.cortecs_project_config
  - module: cortecs.management.cortecs_project_config_info
'''

EXAMPLES = r'''
- name: Read the balance
  cortecs.management.cortecs_balance_info:
    management_key: "{{ vault_cortecs_management_key }}"
  delegate_to: localhost
  run_once: true
  register: cortecs

- name: Stop before spending when the balance is low
  ansible.builtin.assert:
    that: cortecs.balance.current_balance >= 10
    fail_msg: "Balance {{ cortecs.balance.current_balance }} {{ cortecs.balance.currency }} is below 10"
  run_once: true

# A fleet run that only goes on when the account can afford it; the check also runs in check mode.
- name: Roll out inference settings only with enough balance
  module_defaults:
    group/cortecs.management.all:
      management_key: "{{ vault_cortecs_management_key }}"
  delegate_to: localhost
  run_once: true
  block:
    - name: Read the balance
      cortecs.management.cortecs_balance_info:
      register: cortecs_funds

    - name: End the play for every host when the balance is below the floor
      ansible.builtin.meta: end_play
      when: cortecs_funds.balance.current_balance < 25

    - name: Enforce the EU-native baseline
      cortecs.management.cortecs_project_config:
        inference_config:
          eu_native: true
          allow_zero_data_retention: true
'''

RETURN = r'''
balance:
  description: The user's balance.
  returned: success
  type: dict
  contains:
    current_balance:
      description: The current balance.
      type: float
      returned: success
      sample: 42.5
    currency:
      description: The currency of RV(balance.current_balance).
      type: str
      returned: success
      sample: EUR
'''

from ansible_collections.cortecs.management.plugins.module_utils.balance import BALANCE_INFO
from ansible_collections.cortecs.management.plugins.module_utils.runner import run_module


def main():
    run_module(BALANCE_INFO)


if __name__ == '__main__':
    main()
