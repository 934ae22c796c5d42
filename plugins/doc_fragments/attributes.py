# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    # Every module: member of the action group used with module_defaults.
    DOCUMENTATION = r'''
attributes:
  action_group:
    description: Use C(group/cortecs.management.all) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - cortecs.management.all
'''

    # Modules that change things: full check mode and diff support.
    CHECK_DIFF = r'''
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target; makes no write request.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode; never shows a secret.
    support: full
'''

    IDEMPOTENT = r'''
attributes:
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change and makes no write request.
    support: full
'''

    # Read-only modules.
    INFO_MODULE = r'''
attributes:
  check_mode:
    description: Read-only; runs normally in check mode.
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    description: Will return details on what has changed when in diff mode.
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    description: Read-only; never changes anything.
    support: full
'''
