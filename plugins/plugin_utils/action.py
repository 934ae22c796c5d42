# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The action-plugin shell shared by every Cortecs module.

A Cortecs module only talks HTTPS to a remote API, so when its task executes on the controller
anyway (connection local, or delegated to localhost) packaging the module and starting a new
interpreter buys nothing and costs ~0.45 s of CPU per task. This shell then validates the task's
arguments with the module's own argument spec and runs the same resource logic in the controller
process. On any other connection it executes the module on the target as usual.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import traceback

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase

from ansible_collections.cortecs.management.plugins.module_utils.api import HAS_REQUESTS
from ansible_collections.cortecs.management.plugins.module_utils.runner import execute

# Choose the path per host or task with the variable `cortecs_execution`, or per controller with the
# environment variable CORTECS_EXECUTION: `auto` (default), `controller` or `module`.
EXECUTION_VAR = 'cortecs_execution'
EXECUTION_ENV = 'CORTECS_EXECUTION'
EXECUTION_CHOICES = ('auto', 'controller', 'module')


def holds_secret(value):
    """True when a result carries a created key secret anywhere (always under the key `api_key`)."""
    if isinstance(value, dict):
        return any((k == 'api_key' and v) or holds_secret(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_secret(v) for v in value)
    return False


class CortecsActionBase(ActionBase):
    """Subclasses set RESOURCE to the module's `Resource` from module_utils."""

    RESOURCE = None
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(CortecsActionBase, self).run(tmp, task_vars)
        del tmp
        mode = self._execution_mode(task_vars)
        if mode not in EXECUTION_CHOICES:
            result.update(failed=True, msg='%s must be one of %s, got %r' % (EXECUTION_VAR, ', '.join(EXECUTION_CHOICES), mode))
            return result
        if mode == 'controller' or (mode == 'auto' and self._executes_on_controller()):
            result.update(self._run_in_process())
        else:
            result.update(self._execute_module(module_name=self._task.action, module_args=self._task.args, task_vars=task_vars))
        if holds_secret(result):
            # The registered variable keeps the secret; callbacks and logs show a censored result.
            result['_ansible_no_log'] = True
        return result

    def _execution_mode(self, task_vars):
        mode = task_vars.get(EXECUTION_VAR)
        if mode is not None:
            # Variables reach action plugins untemplated.
            mode = self._templar.template(mode)
        if mode is None:
            mode = os.environ.get(EXECUTION_ENV) or 'auto'
        return '%s' % (mode,)

    def _executes_on_controller(self):
        return HAS_REQUESTS and getattr(self._connection, 'transport', None) == 'local'

    def _run_in_process(self):
        resource = self.RESOURCE
        validator = ArgumentSpecValidator(resource.argument_spec, **resource.validation)
        validation = validator.validate(dict(self._task.args))
        no_log_values = validation._no_log_values
        if validation.error_messages:
            msg = validation.errors.msg
            if isinstance(validation.errors[0], UnsupportedError):
                # Word it as AnsibleModule does, so both execution paths fail alike.
                msg = 'Unsupported parameters for (%s) module: %s' % (self._task.action, msg)
            return remove_values(dict(failed=True, msg=msg), no_log_values)
        params = validation.validated_parameters
        try:
            failed, result, warnings = execute(resource, params, bool(self._task.check_mode), bool(self._task.diff))
        except Exception as exc:  # pylint: disable=broad-except
            # Unexpected bugs still end as a task failure, never with a credential in the text.
            failed, warnings = True, []
            result = dict(msg='Unexpected error in %s: %s: %s' % (resource.name, type(exc).__name__, exc), exception=traceback.format_exc())
        if failed:
            result['failed'] = True
        if warnings:
            result['warnings'] = warnings
        result['invocation'] = dict(module_args=params)
        return remove_values(result, no_log_values)
