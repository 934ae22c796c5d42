# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Glue between a resource's logic and its two shells: the module's main() and the action plugin.

A resource is described by a `Resource`: its argument spec and a `run(ctx)` function that reads,
compares, decides, writes and returns the result dict, raising `CortecsError` for expected failures.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.cortecs.management.plugins.module_utils.api import (
    COMMON_ARGUMENT_SPEC,
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    CortecsClient,
    CortecsError,
)


class Resource:
    """What both shells need to know about one module."""

    def __init__(self, name, argument_spec, run, **validation):
        self.name = name
        self.argument_spec = dict(COMMON_ARGUMENT_SPEC)
        self.argument_spec.update(argument_spec)
        self.run = run
        # mutually_exclusive, required_if, ... exactly as AnsibleModule takes them
        self.validation = validation


class RunContext:
    """The parameters, the check/diff flags, warnings, and the lazily created API client."""

    def __init__(self, params, check_mode=False, diff_mode=False, client_factory=CortecsClient):
        self.params = params
        self.check_mode = check_mode
        self.diff_mode = diff_mode
        self.warnings = []
        self._client_factory = client_factory
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = self._client_factory(self.params)
        return self._client

    def warn(self, msg):
        self.warnings.append(msg)


def execute(resource, params, check_mode, diff_mode, client_factory=CortecsClient):
    """Run a resource's logic; returns (failed, result, warnings) and never raises for expected errors."""
    ctx = RunContext(params, check_mode=check_mode, diff_mode=diff_mode, client_factory=client_factory)
    try:
        result = resource.run(ctx)
    except CortecsError as exc:
        result = dict(exc.result)
        result.setdefault('changed', False)
        result['msg'] = exc.msg
        return True, result, ctx.warnings
    return False, result, ctx.warnings


def run_module(resource):
    """The whole body of a module's main()."""
    module = AnsibleModule(argument_spec=resource.argument_spec, supports_check_mode=True, **resource.validation)
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib('requests'), exception=REQUESTS_IMPORT_ERROR)
    failed, result, warnings = execute(resource, module.params, module.check_mode, module._diff)
    for warning in warnings:
        module.warn(warning)
    if failed:
        module.fail_json(**result)
    module.exit_json(**result)
