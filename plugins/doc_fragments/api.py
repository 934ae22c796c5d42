# -*- coding: utf-8 -*-
# Copyright: cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    # The connection options every Cortecs module shares (module_utils/api.py COMMON_ARGUMENT_SPEC).
    DOCUMENTATION = r'''
options:
  management_key:
    description:
      - A Cortecs B(management) API key, sent as the bearer token.
      - If not set, the value of the E(CORTECS_MANAGEMENT_KEY) environment variable is used.
      - It is never logged, returned, or shown in a diff or an error message.
      - Set it once for all modules with C(module_defaults) and the action group
        C(group/cortecs.management.all).
    type: str
    required: true
  base_url:
    description:
      - Base URL of the Cortecs Management API, up to and including the version path.
      - If not set, the value of the E(CORTECS_BASE_URL) environment variable is used,
        and if that is unset too, V(https://api.cortecs.ai/v1).
      - Must be C(https) unless the host is a loopback address (for the bundled simulator);
        the management key is never sent in plain text over a network.
    type: str
    default: https://api.cortecs.ai/v1
  timeout:
    description:
      - Seconds to wait for the connection and for each reply. Must be positive.
    type: float
    default: 30
  validate_certs:
    description:
      - Whether to verify the API's TLS certificate. Only set to V(false) against a test endpoint.
    type: bool
    default: true
  retries:
    description:
      - How often a request is repeated after HTTP 429 (rate limited), HTTP 502/503/504 or a connection
        error, with capped exponential backoff and jitter, honouring the C(Retry-After) header.
      - A request that may change something (C(POST), creating a key) is only repeated when the server
        surely did not act on it (HTTP 429 or a refused connection), never after it may have been processed.
      - V(0) disables retries.
    type: int
    default: 5
  max_retry_delay:
    description:
      - Upper bound in seconds for a single wait between two attempts, including a server's C(Retry-After).
    type: float
    default: 30
requirements:
  - requests (Python library, on the host that runs the module; in-process execution uses the controller's)
notes:
  - "The tasks talk to a remote API; run them on the controller (C(connection: local) or
    C(delegate_to: localhost)). There the collection's action plugin runs the module's logic inside
    the controller process, which is much faster than executing a module. Set the variable
    C(cortecs_execution) (or the environment variable E(CORTECS_EXECUTION)) to V(module) to force
    normal module execution, or to V(controller) to force in-process execution."
'''
