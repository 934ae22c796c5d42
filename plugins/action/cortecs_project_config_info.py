# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.cortecs.management.plugins.module_utils.project_config import PROJECT_CONFIG_INFO
from ansible_collections.cortecs.management.plugins.plugin_utils.action import CortecsActionBase


class ActionModule(CortecsActionBase):
    RESOURCE = PROJECT_CONFIG_INFO
