#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: cortecs_project_config
short_description: Manage the inference settings of a Cortecs project
version_added: 0.1.0
description:
  - Manages the project configuration of the project that owns the management key, that is which providers may
    serve requests (for example only EU-native or zero-data-retention providers), quantization, model fallback,
    the routing preference, an output token limit, and whether single API calls may override these settings.
  - The configuration is a singleton that always exists for a set-up project; this module reads it, compares
    the options you set, and updates it only when one of them differs. It cannot create or delete it.
  - Only the options you set are managed. An option you leave out (or set to V(null)) keeps the value the
    server holds. Every field of RV(config.inference_config) the server returned, including fields this module does
    not know, is sent back unchanged with the update, because the API replaces RV(config.inference_config) as a whole.
  - The update echoes RV(config.created_at) and RV(config.updated_at) from the read, so the API refuses it (HTTP 400, stale)
    when someone else changed the configuration in between. The task then fails and says so; run it again.
  - A successful update is followed by one more read, so RV(config) holds the server's values, including the
    new RV(config.updated_at). A run that finds nothing to change makes exactly one read and no write.
  - Changing the configuration needs a management key of a project B(admin); reading works for any management key.
author:
  - cortecs.management contributors (@cortecs-ai)
extends_documentation_fragment:
  - cortecs.management.api
  - cortecs.management.attributes
  - cortecs.management.attributes.check_diff
  - cortecs.management.attributes.idempotent
options:
  inference_config:
    description:
      - The project-wide inference settings to enforce.
      - Only the suboptions you set are managed; the others keep their server values.
    type: dict
    suboptions:
      allowed_providers:
        description:
          - The providers that may serve requests of this project, by name, for example V(ionos) or V(scaleway).
          - Compared as a set, so order and duplicates do not matter, but the set must be B(equal) to the server's;
            a provider the server allows and this list does not name is removed.
          - An empty list V([]) sets an empty list on the server.
          - The API checks each name against its provider registry and refuses unknown names (HTTP 400).
          - Names must not be empty or start or end with whitespace.
        type: list
        elements: str
      eu_native:
        description:
          - Whether only providers based in and regulated within the EU are used.
          - Even when V(false), all Cortecs endpoints are GDPR compliant.
        type: bool
      allow_quantization:
        description:
          - Whether quantized endpoints may be used. Only some providers offer them.
        type: bool
      allow_zero_data_retention:
        description:
          - Whether only zero-data-retention (ZDR) providers are used.
        type: bool
      enable_model_fallback:
        description:
          - Whether another model may answer when the requested one is unavailable.
        type: bool
      preference:
        description:
          - How requests are routed among the allowed providers.
          - To set it back to null (no preference), use O(inference_config.clear=[preference]); V(null) here means
            "not managed".
        type: str
        choices: [speed, cost, balanced]
      max_tokens:
        description:
          - The maximum number of tokens allowed in an output. Must be 1 or more.
          - To remove the limit (null on the server), use O(inference_config.clear=[max_tokens]); V(null) here means
            "not managed".
        type: int
      clear:
        description:
          - The nullable fields to set to null on the server.
          - Naming a field here and setting it (O(inference_config.preference) or O(inference_config.max_tokens))
            in the same task is an error, reported before any request.
        type: list
        elements: str
        choices: [preference, max_tokens]
  allow_overwrite:
    description:
      - Whether single API calls may bring their own inference settings.
      - If V(false), the settings in O(inference_config) are enforced for every request of the project,
        which is what a compliance baseline wants.
    type: bool
notes:
  - Diff mode shows C(inference_config) and C(allow_overwrite) before and after; the configuration holds no secrets.
  - In check mode RV(config) is the predicted configuration with the timestamps of the read.
  - "Retries: after HTTP 502, 503 or 504 the update is sent again. If the first attempt had been applied, the API
    refuses the repeat as stale; the module then reads the configuration once more and succeeds when the server holds
    the requested values, and otherwise fails with the API's text."
  - Any other HTTP 400 (for example an unknown provider name) is checked with one extra read; the task fails with the
    API's text, or says the configuration was changed concurrently when its RV(config.updated_at) moved.
seealso:
  - module: cortecs.management.cortecs_project_config_info
  - module: cortecs.management.cortecs_balance_info
'''

EXAMPLES = r'''
# A compliance baseline: only EU-native, zero-data-retention providers, enforced for every request.
# The configuration belongs to the key's project, so one run per project is enough (run_once).
- name: Enforce the EU data protection baseline on the project
  module_defaults:
    group/cortecs.management.all:
      management_key: "{{ vault_cortecs_management_key }}"
  delegate_to: localhost
  run_once: true
  block:
    - name: Apply the baseline
      cortecs.management.cortecs_project_config:
        inference_config:
          eu_native: true
          allow_zero_data_retention: true
          allowed_providers:
            - ionos
            - scaleway
            - ovhcloud
            - stackit
          allow_quantization: false
        allow_overwrite: false
      register: baseline

    - name: Show when the settings were last changed
      ansible.builtin.debug:
        msg: "Project {{ baseline.config.project_id }} settings as of {{ baseline.config.updated_at }}"

# Audit without changing anything: check mode reports drift, diff mode shows it.
- name: Report whether the project drifted from the baseline
  cortecs.management.cortecs_project_config:
    management_key: "{{ vault_cortecs_management_key }}"
    inference_config:
      eu_native: true
      allow_zero_data_retention: true
    allow_overwrite: false
  delegate_to: localhost
  check_mode: true
  diff: true
  register: drift

- name: Fail the audit on drift
  ansible.builtin.assert:
    that: not drift.changed
    fail_msg: The project settings differ from the compliance baseline

# Tune routing only; every other setting keeps its current value.
- name: Prefer cheap providers and cap the output length
  cortecs.management.cortecs_project_config:
    management_key: "{{ vault_cortecs_management_key }}"
    inference_config:
      preference: cost
      max_tokens: 4096
  delegate_to: localhost

# Null the nullable fields again (no routing preference, no token limit).
- name: Remove the routing preference and the token limit
  cortecs.management.cortecs_project_config:
    management_key: "{{ vault_cortecs_management_key }}"
    inference_config:
      clear:
        - preference
        - max_tokens
  delegate_to: localhost
'''

RETURN = r'''
config:
  description:
    - The project configuration after the task, as the server holds it.
    - After an update it comes from a fresh read, so RV(config.updated_at) is the new timestamp.
    - In check mode, it is the predicted configuration with the timestamps of the read.
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

from ansible_collections.cortecs.management.plugins.module_utils.project_config import PROJECT_CONFIG
from ansible_collections.cortecs.management.plugins.module_utils.runner import run_module


def main():
    run_module(PROJECT_CONFIG)


if __name__ == '__main__':
    main()
