# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.cortecs.management.plugins.plugin_utils.action import holds_secret


def test_holds_secret_finds_api_key_at_any_depth():
    assert holds_secret({'api_key': 'ck-1'})
    assert holds_secret({'api_keys': [{'name': 'a'}, {'name': 'b', 'api_key': 'ck-2'}]})
    assert holds_secret({'x': {'y': [{'api_key': 'ck-3'}]}})


def test_holds_secret_ignores_empty_and_other_keys():
    assert not holds_secret({'api_key': None, 'key': {'name': 'api_key'}})
    assert not holds_secret({'api_keys': [{'name': 'a', 'api_key': ''}]})
    assert not holds_secret({'changed': True, 'msg': 'api_key'})
