#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: cortecs_project_config_info
short_description: Read the inference settings of a Cortecs project
version_added: 0.1.0
description:
  - Returns the project configuration of the project that owns the management key, with its allowed providers,
    EU-native and zero-data-retention settings, routing preference, token limit, and whether single API calls
    may override them.
  - Any management key can read it; changing it needs a project admin (see M(cortecs.management.cortecs_project_config)).
  - Fails with an explanation when the project has no configuration (HTTP 404), because the Management API cannot
    create one.
author:
  - cortecs.management contributors (@cortecs-ai)
extends_documentation_fragment:
  - cortecs.management.api
  - cortecs.management.attributes
  - cortecs.management.attributes.info_module
options: {}
seealso:
  - module: cortecs.management.cortecs_project_config
  - module: cortecs.management.cortecs_balance_info
'''

EXAMPLES = r'''
- name: Read the project settings
  cortecs.management.cortecs_project_config_info:
    management_key: "{{ vault_cortecs_management_key }}"
  delegate_to: localhost
  run_once: true
  register: project

- name: Refuse to go on unless only EU-native zero-data-retention providers are used
  ansible.builtin.assert:
    that:
      - project.config.inference_config.eu_native
      - project.config.inference_config.allow_zero_data_retention
      - not project.config.allow_overwrite
    fail_msg: "Project {{ project.config.project_id }} is not on the EU data protection baseline"
'''

RETURN = r'''
config:
  description:
    - The project configuration of the project that owns the management key, as the server holds it.
  returned: success
  type: dict
  contains:
    _id:
      description: Identifier of the project configuration.
      type: str
      returned: success
      sample: 66f1c0ffee0123456789abcd
    project_id:
      description: Identifier of the project this configuration belongs to.
      type: str
      returned: success
      sample: 66f1c0ffee0123456789abce
    inference_config:
      description:
        - The inference settings. Holds every field the server returned, also fields this module does not manage
          (for example C(include_metadata)).
        - The fields described here are the ones M(cortecs.management.cortecs_project_config) manages.
      type: dict
      returned: success
      contains:
        allowed_providers:
          description: The providers that may serve requests.
          type: list
          elements: str
          returned: success
          sample: [ionos, scaleway]
        eu_native:
          description: Whether only EU-native providers are used.
          type: bool
          returned: success
          sample: true
        allow_quantization:
          description: Whether quantized endpoints may be used.
          type: bool
          returned: success
          sample: false
        allow_zero_data_retention:
          description: Whether only zero-data-retention providers are used.
          type: bool
          returned: success
          sample: true
        enable_model_fallback:
          description: Whether another model may answer when the requested one is unavailable.
          type: bool
          returned: success
          sample: true
        preference:
          description: The routing preference, V(null) when none is set.
          type: str
          returned: success
          sample: balanced
        max_tokens:
          description: The output token limit, V(null) when none is set.
          type: int
          returned: success
          sample: 4096
    allow_overwrite:
      description: Whether single API calls may bring their own inference settings.
      type: bool
      returned: success
      sample: false
    created_at:
      description: When the configuration was created (RFC 3339 date-time).
      type: str
      returned: success
      sample: '2025-01-15T09:30:00.000000Z'
    updated_at:
      description: When the configuration was last changed (RFC 3339 date-time).
      type: str
      returned: success
      sample: '2025-06-01T12:00:00.000000Z'
'''

from ansible_collections.cortecs.management.plugins.module_utils.project_config import PROJECT_CONFIG_INFO
from ansible_collections.cortecs.management.plugins.module_utils.runner import run_module


def main():
    run_module(PROJECT_CONFIG_INFO)


if __name__ == '__main__':
    main()
