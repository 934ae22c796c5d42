# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Metadata that must stay in step with the plugins: action group, action plugins, version."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

import yaml

from ansible_collections.cortecs.management.plugins.module_utils.api import COLLECTION_VERSION

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))


def load_yaml(*parts):
    with open(os.path.join(ROOT, *parts)) as handle:
        return yaml.safe_load(handle)


def plugin_names(kind):
    folder = os.path.join(ROOT, 'plugins', kind)
    return sorted(name[:-3] for name in os.listdir(folder) if name.endswith('.py') and not name.startswith('_'))


def test_every_module_is_in_the_action_group():
    group = load_yaml('meta', 'runtime.yml')['action_groups']['all']
    assert sorted(group) == plugin_names('modules')


def test_every_module_has_an_action_plugin_of_the_same_name():
    assert plugin_names('action') == plugin_names('modules')


def test_user_agent_version_matches_galaxy_version():
    assert load_yaml('galaxy.yml')['version'] == COLLECTION_VERSION
