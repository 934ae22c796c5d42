# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.cortecs.management.plugins.module_utils.api import COMMON_ARGUMENT_SPEC, CortecsError
from ansible_collections.cortecs.management.plugins.module_utils.runner import Resource, execute


def test_resource_adds_the_common_options():
    resource = Resource('x', dict(name=dict(type='str')), lambda ctx: {})
    assert set(resource.argument_spec) == set(COMMON_ARGUMENT_SPEC) | {'name'}
    assert resource.argument_spec['management_key']['no_log'] is True


def test_execute_maps_expected_errors_to_a_failed_result_with_warnings():
    def run(ctx):
        ctx.warn('careful')
        raise CortecsError('it broke', api_key='ck-kept-for-the-user')

    failed, result, warnings = execute(Resource('x', {}, run), {}, False, False)
    assert failed
    assert result == {'msg': 'it broke', 'changed': False, 'api_key': 'ck-kept-for-the-user'}
    assert warnings == ['careful']


def test_execute_passes_flags_and_creates_the_client_lazily():
    made = []

    def factory(params):
        made.append(params)
        return 'client'

    def run(ctx):
        assert made == []
        return dict(changed=False, flags=(ctx.check_mode, ctx.diff_mode), client=ctx.client)

    failed, result, dummy = execute(Resource('x', {}, run), {'a': 1}, True, False, client_factory=factory)
    assert not failed
    assert result == dict(changed=False, flags=(True, False), client='client')
    assert made == [{'a': 1}]


def test_unexpected_errors_propagate():
    def run(ctx):
        raise ValueError('bug')

    with pytest.raises(ValueError):
        execute(Resource('x', {}, run), {}, False, False)
