# Copyright (c) cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Contract tests: the simulator's responses against the OpenAPI spec (tests/simulator/openapi.json)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from conftest import ADMIN, MEMBER, PLAIN, SPEC_PATH, RunningSim, load_sim_module


SPEC_SERVER = "https://api.cortecs.ai"
NO_CONFIG_ADMIN = "sim-noconfig-admin"
NO_CONFIG_MEMBER = "sim-noconfig-member"


def _spec_dict():
    with open(SPEC_PATH, "r", encoding="utf-8") as handle:
        return json.load(handle)


def documented_statuses():
    """{(METHOD, /path): {status, ...}} as documented in the spec."""
    result = {}
    for path, item in _spec_dict()["paths"].items():
        for method, operation in item.items():
            result[(method.upper(), path)] = set(int(code) for code in operation["responses"])
    return result


class ContractRecorder:
    """Runs requests against the simulator and validates each response with openapi-core."""

    def __init__(self, running):
        self.sim = running
        self.openapi = OpenAPI.from_file_path(SPEC_PATH)
        self.seen = {}
        self.count = 0

    def _as_spec_request(self, prepared, path):
        spec_request = prepared.copy()
        spec_request.url = SPEC_SERVER + "/v1" + path
        return RequestsOpenAPIRequest(spec_request)

    def call(self, method, path, expected, token=ADMIN, body=None, valid_request=False):
        resp = self.sim.api(method, path, token=token, json=body)
        assert resp.status_code == expected, (method, path, resp.status_code, resp.text)
        assert resp.headers["Content-Type"] == "application/json"
        spec_request = self._as_spec_request(resp.request, path)
        # Raises (with details) on an undocumented status or a schema violation.
        self.openapi.validate_response(spec_request, RequestsOpenAPIResponse(resp))
        if valid_request:
            self.openapi.validate_request(spec_request)
        self.seen.setdefault((method, path), set()).add(resp.status_code)
        self.count += 1
        return resp

    def fail_next(self, method, status=500):
        self.sim.side_ok("POST", "faults", {"fail_next": {"count": 1, "status": status, "methods": [method]}})


@pytest.fixture
def contract_sim():
    module = load_sim_module()
    seed = module.default_seed(projects=1)
    seed["projects"].append({
        "name": "noconfig",
        "config": None,
        "users": [
            {"name": "admin", "role": "admin", "keys": [{"name": "management", "secret": NO_CONFIG_ADMIN, "is_management_key": True}]},
            {"name": "member", "role": "member", "keys": [{"name": "management", "secret": NO_CONFIG_MEMBER, "is_management_key": True}]},
        ],
    })
    running = RunningSim({"seed": seed})
    yield running
    running.close()


def test_scenario_every_response_matches_spec(contract_sim):
    rec = ContractRecorder(contract_sim)
    keys, configs, balance = "/manage/api-keys", "/manage/project-configs", "/manage/users/balance"

    # --- api keys: list
    listing = rec.call("GET", keys, 200, valid_request=True).json()
    assert [k["name"] for k in listing["api_keys"]] == ["management", "default"]
    rec.call("GET", keys, 401, token=None)
    rec.call("GET", keys, 401, token="not-a-key")
    rec.call("GET", keys, 403, token=PLAIN)
    rec.fail_next("GET")
    rec.call("GET", keys, 500)
    rec.call("GET", keys, 200, token=MEMBER, valid_request=True)

    # --- api keys: create
    created = rec.call("POST", keys, 201, body={"name": "ci", "is_management_key": True}, valid_request=True).json()
    rec.call("POST", keys, 201, body={"name": "plain-ci"}, valid_request=True)
    rec.call("POST", keys, 400, body={"name": "ci"})
    rec.call("POST", keys, 400, body={"name": ""})
    rec.call("POST", keys, 400, body={"name": "x", "is_management_key": "yes"})
    rec.call("POST", keys, 400, body={"name": "x", "unexpected": 1})
    rec.call("POST", keys, 401, token=None, body={"name": "nope"})
    rec.call("POST", keys, 403, token=PLAIN, body={"name": "nope"})
    for index in range(16):
        rec.call("POST", keys, 201, body={"name": "fill-%02d" % index})
    rec.call("POST", keys, 400, body={"name": "one-too-many"})

    # --- api keys: delete
    rec.call("DELETE", keys, 200, token=created["api_key"], body={"name": "fill-00"}, valid_request=True)
    rec.call("DELETE", keys, 400, body={"name": "management"})
    rec.call("DELETE", keys, 400, body={})
    rec.call("DELETE", keys, 404, body={"name": "fill-00"})
    rec.call("DELETE", keys, 401, token=None, body={"name": "ci"})
    rec.call("DELETE", keys, 403, token=PLAIN, body={"name": "ci"})
    rec.fail_next("DELETE")
    rec.call("DELETE", keys, 500, body={"name": "ci"})
    rec.call("DELETE", keys, 200, body={"name": "ci"})

    # --- project configs: read
    config = rec.call("GET", configs, 200, valid_request=True).json()
    assert config["inference_config"]["include_metadata"] is False
    rec.call("GET", configs, 200, token=MEMBER)
    rec.call("GET", configs, 401, token=None)
    rec.call("GET", configs, 403, token=PLAIN)
    rec.call("GET", configs, 404, token=NO_CONFIG_ADMIN)
    rec.fail_next("GET")
    rec.call("GET", configs, 500)

    # --- project configs: update
    update = {
        "inference_config": {"allowed_providers": ["ionos", "mistral"], "eu_native": True, "preference": "cost", "max_tokens": 512},
        "allow_overwrite": False,
        "created_at": config["created_at"],
        "updated_at": config["updated_at"],
    }
    rec.call("PUT", configs, 200, body=update, valid_request=True)
    rec.call("PUT", configs, 400, body=update)  # stale timestamps now
    fresh = rec.call("GET", configs, 200).json()
    update.update(created_at=fresh["created_at"], updated_at=fresh["updated_at"])
    rec.call("PUT", configs, 400, body=dict(update, inference_config={"allowed_providers": ["nowhere"]}))
    rec.call("PUT", configs, 400, body=dict(update, inference_config={"max_tokens": 0}))
    rec.call("PUT", configs, 400, body={"inference_config": {}})
    rec.call("PUT", configs, 401, token=None, body=update)
    rec.call("PUT", configs, 403, token=PLAIN, body=update)
    rec.call("PUT", configs, 403, token=MEMBER, body=update)
    rec.call("PUT", configs, 404, token=NO_CONFIG_ADMIN, body=update)
    rec.fail_next("PUT")
    rec.call("PUT", configs, 500, body=update)
    rec.call("PUT", configs, 200, body=dict(update, allow_overwrite=None), valid_request=True)

    # --- balance
    assert rec.call("GET", balance, 200, valid_request=True).json() == {"current_balance": 100.0, "currency": "EUR"}
    rec.call("GET", balance, 200, token="sim-env01-admin")
    rec.call("GET", balance, 401, token=None)
    rec.call("GET", balance, 403, token=PLAIN)
    rec.fail_next("GET")
    rec.call("GET", balance, 500)

    # Every documented (operation, status) pair was produced and validated.
    documented = documented_statuses()
    missing = {}
    for (method, path), statuses in documented.items():
        gap = statuses - rec.seen.get((method, path), set())
        if gap:
            missing["%s %s" % (method, path)] = sorted(gap)
    assert not missing, missing
    assert set(rec.seen) == set(documented)
    assert rec.count > 60


# ---------------------------------------------------------------- schemathesis

FUZZ_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
    unsupported_method,
]

# SIM_FUZZ_EXAMPLES=500 runs a deeper (slower) fuzz locally; the default keeps the suite fast.
FUZZ_EXAMPLES = int(os.environ.get("SIM_FUZZ_EXAMPLES", "25"))
fuzz_schema = schemathesis.openapi.from_path(SPEC_PATH)


@pytest.fixture(scope="module")
def fuzz_sim():
    running = RunningSim({"projects": 1})
    yield running
    running.close()


@fuzz_schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=2000, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_schemathesis_bounded_run(case, fuzz_sim):
    case.call_and_validate(
        base_url=fuzz_sim.base,
        session=fuzz_sim.session,
        headers={"Authorization": "Bearer " + ADMIN},
        checks=FUZZ_CHECKS,
        timeout=10,
    )
