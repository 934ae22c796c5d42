# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The user's balance (read-only)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.cortecs.management.plugins.module_utils.api import CortecsError
from ansible_collections.cortecs.management.plugins.module_utils.runner import Resource

BALANCE_PATH = '/manage/users/balance'


def read_balance(client):
    data = client.get(BALANCE_PATH)
    if not isinstance(data, dict) or not isinstance(data.get('current_balance'), (int, float)) or isinstance(data.get('current_balance'), bool):
        raise CortecsError('Cortecs API GET %s returned an unexpected reply: %r' % (BALANCE_PATH, data))
    return dict(current_balance=float(data['current_balance']), currency=data.get('currency'))


def run_balance_info(ctx):
    return dict(changed=False, balance=read_balance(ctx.client))


BALANCE_INFO = Resource('cortecs_balance_info', {}, run_balance_info)
