# Copyright (c) cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Semantics of the simulator, over real HTTP against servers started on port 0 in a thread."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import ADMIN, MEMBER, PLAIN, SEED_EXAMPLE, SIM_PATH


KEYS = "/manage/api-keys"
CONFIGS = "/manage/project-configs"
BALANCE = "/manage/users/balance"
ENDPOINTS = [("GET", KEYS), ("POST", KEYS), ("DELETE", KEYS), ("GET", CONFIGS), ("PUT", CONFIGS), ("GET", BALANCE)]
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
FULL_INFERENCE_FIELDS = {"allowed_providers", "eu_native", "allow_quantization", "allow_zero_data_retention",
                         "enable_model_fallback", "preference", "max_tokens", "include_metadata"}


def assert_error(resp, status, contains=None):
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"], body
    if contains is not None:
        assert contains in body["error"], body
    return body["error"]


def create_key(sim, name, token=ADMIN, management=None, expect=201):
    body = {"name": name}
    if management is not None:
        body["is_management_key"] = management
    resp = sim.api("POST", KEYS, token=token, json=body)
    assert resp.status_code == expect, resp.text
    return resp.json()


def put_body(config, inference=None, **extra):
    body = {
        "inference_config": config["inference_config"] if inference is None else inference,
        "created_at": config["created_at"],
        "updated_at": config["updated_at"],
    }
    body.update(extra)
    return body


def parse_ts(value):
    return time.mktime(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")), int(value[20:26])


# ---------------------------------------------------------------- authentication

@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_missing_authorization_is_401(sim, method, path):
    assert_error(sim.api(method, path, token=None, json={"name": "x"}), 401)


@pytest.mark.parametrize("header", ["Basic c2ltLWFkbWluLWtleQ==", "Bearer", "Bearer ", "Bearer  sim-admin-key",
                                    "sim-admin-key", "bearer sim-admin-key", "Bearer sim-admin-key extra", "Token sim-admin-key"])
def test_malformed_authorization_is_401(sim, header):
    resp = sim.api("GET", KEYS, token=None, headers={"Authorization": header})
    assert_error(resp, 401)


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_unknown_token_is_401(sim, method, path):
    assert_error(sim.api(method, path, token="ck-does-not-exist", json={"name": "x"}), 401)


@pytest.mark.parametrize("method,path", ENDPOINTS)
@pytest.mark.parametrize("token", [PLAIN, "sim-env01-plain"])
def test_non_management_key_is_403(sim, method, path, token):
    assert_error(sim.api(method, path, token=token, json={"name": "x"}), 403, "management key")


def test_every_seeded_management_key_authenticates(sim):
    for token in (ADMIN, MEMBER, "sim-env01-admin", "sim-env01-member", "sim-env02-admin", "sim-env02-member"):
        assert sim.api("GET", BALANCE, token=token).status_code == 200


# ---------------------------------------------------------------- listing keys

def test_list_returns_only_the_users_keys_without_secrets(sim):
    expected = {
        ADMIN: [("management", True), ("default", False)],
        MEMBER: [("management", True)],
        "sim-env01-admin": [("management", True), ("default", False)],
        "sim-env02-member": [("management", True)],
    }
    for token, keys in expected.items():
        resp = sim.api("GET", KEYS, token=token)
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == "application/json"
        body = resp.json()
        assert list(body) == ["api_keys"]
        assert [(k["name"], k["is_management_key"]) for k in body["api_keys"]] == keys
        for key in body["api_keys"]:
            assert set(key) == {"name", "created_at", "is_management_key"}
            assert isinstance(key["created_at"], int) and not isinstance(key["created_at"], bool)
        for secret in (ADMIN, PLAIN, MEMBER, "sim-env01-admin", "sim-env01-plain", "sim-env02-member"):
            assert secret not in resp.text


# ---------------------------------------------------------------- creating keys

def test_create_returns_secret_once_and_it_authenticates_as_the_user(sim):
    before = int(time.time())
    created = create_key(sim, "ci", management=True)
    assert set(created) == {"name", "is_management_key", "api_key"}
    assert created["name"] == "ci" and created["is_management_key"] is True
    secret = created["api_key"]
    assert secret.startswith("ck-") and len(secret) >= 40
    listing = sim.api("GET", KEYS).json()["api_keys"]
    assert listing[-1]["name"] == "ci" and listing[-1]["is_management_key"] is True
    assert before <= listing[-1]["created_at"] <= int(time.time()) + 1
    assert secret not in json.dumps(listing)
    # The new key is the same user: same key list, including itself.
    assert sim.key_names(token=secret) == ["management", "default", "ci"]
    # Never retrievable again: not in any listing, nor in the side state.
    assert secret not in sim.api("GET", KEYS, token=secret).text
    assert secret not in sim.side("GET", "state").text


def test_created_secrets_are_random(sim):
    first = create_key(sim, "a")["api_key"]
    second = create_key(sim, "b")["api_key"]
    assert first != second


def test_created_plain_key_is_known_but_not_management(sim):
    created = create_key(sim, "runtime")
    assert created["is_management_key"] is False
    assert_error(sim.api("GET", KEYS, token=created["api_key"]), 403)


def test_keys_belong_to_the_creating_user(sim):
    created = create_key(sim, "member-ci", token=MEMBER, management=True)
    assert sim.key_names(token=MEMBER) == ["management", "member-ci"]
    assert sim.key_names(token=ADMIN) == ["management", "default"]
    assert sim.key_names(token=created["api_key"]) == ["management", "member-ci"]
    # Another user's key name is simply unknown to this user.
    assert_error(sim.api("DELETE", KEYS, token=ADMIN, json={"name": "member-ci"}), 404)
    # Same name may exist for another user.
    create_key(sim, "member-ci", token=ADMIN)


@pytest.mark.parametrize("body", [
    {},
    {"name": ""},
    {"name": " padded"},
    {"name": "padded "},
    {"name": "tab\tinside"},
    {"name": "x" * 101},
    {"name": 5},
    {"name": None},
    {"name": ["x"]},
    {"name": "x", "is_management_key": "true"},
    {"name": "x", "is_management_key": 1},
    {"name": "x", "is_management_key": None},
    {"name": "x", "extra": 1},
    [{"name": "x"}],
    "x",
    None,
])
def test_create_rejects_invalid_bodies(sim, body):
    resp = sim.api("POST", KEYS, data=json.dumps(body), headers={"Content-Type": "application/json"})
    assert_error(resp, 400)
    assert sim.key_names() == ["management", "default"]


@pytest.mark.parametrize("data,content_type", [
    ('{"name": "x"', "application/json"),
    ('{"name": "x", "name": "y"}', "application/json"),
    ('{"name": "x", "n": NaN}', "application/json"),
    (b'{"name": "\xff"}', "application/json"),
    ("", "application/json"),
    ('{"name": "x"}', "text/plain"),
    ('{"name": "x"}', None),
    ('{"name": "x"}', "application/json; charset=latin-1"),
    ("name=x", "application/x-www-form-urlencoded"),
])
def test_create_rejects_malformed_payloads(sim, data, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    resp = sim.api("POST", KEYS, data=data, headers=headers)
    assert_error(resp, 400)
    assert sim.key_names() == ["management", "default"]


def test_create_accepts_json_with_utf8_charset_and_100_char_name(sim):
    resp = sim.api("POST", KEYS, data=json.dumps({"name": "n" * 100}), headers={"Content-Type": "application/json; charset=utf-8"})
    assert resp.status_code == 201


def test_duplicate_name_is_400_already_exists(sim):
    create_key(sim, "dup")
    assert_error(sim.api("POST", KEYS, json={"name": "dup", "is_management_key": True}), 400, "already exists")
    assert_error(sim.api("POST", KEYS, json={"name": "default"}), 400, "already exists")
    assert sim.key_names().count("dup") == 1


def test_default_key_limit_is_20_including_management_key(sim):
    for index in range(18):
        create_key(sim, "k%02d" % index)
    resp = sim.api("POST", KEYS, json={"name": "too-many"})
    assert resp.status_code == 400
    assert resp.json() == {"error": "API key limit reached (20)"}
    assert len(sim.key_names()) == 20
    # The limit is per user: the member still has room.
    create_key(sim, "member-extra", token=MEMBER)
    # Deleting one frees a slot.
    assert sim.api("DELETE", KEYS, json={"name": "k00"}).status_code == 200
    create_key(sim, "fits-again")


def test_key_limit_is_configurable(start_sim):
    sim = start_sim(key_limit=3)
    create_key(sim, "third")
    assert sim.api("POST", KEYS, json={"name": "fourth"}).json() == {"error": "API key limit reached (3)"}


def test_concurrent_creates_respect_limit_and_uniqueness(sim):
    url = sim.base + KEYS
    headers = {"Authorization": "Bearer " + ADMIN}

    def post(name):
        return requests.post(url, json={"name": name}, headers=headers, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        same = list(pool.map(post, ["same"] * 16))
        many = list(pool.map(post, ["n%02d" % i for i in range(30)]))
    assert same.count(201) == 1 and same.count(400) == 15
    assert many.count(201) == 17 and many.count(400) == 13
    assert len(sim.key_names()) == 20


# ---------------------------------------------------------------- deleting keys

def test_delete_key(sim):
    created = create_key(sim, "temp", management=True)
    resp = sim.api("DELETE", KEYS, json={"name": "temp"})
    assert resp.status_code == 200
    assert resp.json() == {"success": True, "deleted": "temp"}
    assert sim.key_names() == ["management", "default"]
    assert_error(sim.api("GET", KEYS, token=created["api_key"]), 401)
    assert_error(sim.api("DELETE", KEYS, json={"name": "temp"}), 404)


def test_delete_plain_key_revokes_it(sim):
    assert sim.api("DELETE", KEYS, json={"name": "default"}).status_code == 200
    assert_error(sim.api("GET", KEYS, token=PLAIN), 401)


def test_delete_unknown_name_is_404(sim):
    assert_error(sim.api("DELETE", KEYS, json={"name": "nope"}), 404)


def test_delete_key_in_use_is_400(sim):
    assert_error(sim.api("DELETE", KEYS, json={"name": "management"}), 400, "in use")
    assert sim.key_names() == ["management", "default"]
    # ...but another management key of the same user may delete it.
    other = create_key(sim, "other", management=True)
    assert sim.api("DELETE", KEYS, token=other["api_key"], json={"name": "management"}).status_code == 200
    assert_error(sim.api("GET", KEYS, token=ADMIN), 401)
    assert_error(sim.api("DELETE", KEYS, token=other["api_key"], json={"name": "other"}), 400, "in use")


@pytest.mark.parametrize("data,content_type", [
    ('{}', "application/json"),
    ('{"name": ""}', "application/json"),
    ('{"name": 1}', "application/json"),
    ('{"name": null}', "application/json"),
    ('{"name": "default", "force": true}', "application/json"),
    ('["default"]', "application/json"),
    ("", "application/json"),
    ("", None),
    ('{"name": "default"}', "text/plain"),
])
def test_delete_rejects_invalid_bodies(sim, data, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    assert_error(sim.api("DELETE", KEYS, data=data, headers=headers), 400)
    assert sim.key_names() == ["management", "default"]


# ---------------------------------------------------------------- project configs

def test_seeded_config_is_full_and_readable_by_members(sim):
    config = sim.config()
    assert set(config) == {"_id", "project_id", "inference_config", "allow_overwrite", "created_at", "updated_at"}
    assert set(config["inference_config"]) == FULL_INFERENCE_FIELDS
    assert config["inference_config"]["include_metadata"] is False
    assert ISO_Z.match(config["created_at"]) and ISO_Z.match(config["updated_at"])
    assert isinstance(config["allow_overwrite"], bool)
    assert sim.config(token=MEMBER) == config
    other = sim.config(token="sim-env01-admin")
    assert other["project_id"] != config["project_id"] and other["_id"] != config["_id"]


def test_missing_config_is_404(start_sim, sim_module):
    seed = sim_module.default_seed()
    seed["projects"][0]["config"] = None
    sim = start_sim(seed=seed)
    assert_error(sim.api("GET", CONFIGS), 404)
    body = {"inference_config": {}, "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}
    assert_error(sim.api("PUT", CONFIGS, json=body), 404)


def test_put_by_non_admin_is_403(sim):
    config = sim.config()
    assert_error(sim.api("PUT", CONFIGS, token=MEMBER, json=put_body(config)), 403, "not a project admin")
    assert_error(sim.api("PUT", CONFIGS, token=MEMBER, data="garbage", headers={"Content-Type": "application/json"}), 403)
    assert sim.config() == config


def test_put_success_bumps_updated_at(sim):
    config = sim.config()
    resp = sim.api("PUT", CONFIGS, json=put_body(config))
    assert resp.status_code == 200
    assert resp.json() == {"success": True}
    after = sim.config()
    assert after["created_at"] == config["created_at"]
    assert after["_id"] == config["_id"] and after["project_id"] == config["project_id"]
    assert ISO_Z.match(after["updated_at"])
    assert parse_ts(after["updated_at"]) > parse_ts(config["updated_at"])


def test_updated_at_strictly_increases_on_rapid_puts(sim):
    seen = [sim.config()["updated_at"]]
    for _attempt in range(15):
        config = sim.config()
        assert sim.api("PUT", CONFIGS, json=put_body(config)).status_code == 200
        seen.append(sim.config()["updated_at"])
    assert all(parse_ts(a) < parse_ts(b) for a, b in zip(seen, seen[1:])), seen


def test_updated_at_bump_is_strict_even_if_clock_is_behind(start_sim, sim_module):
    seed = sim_module.default_seed()
    seed["projects"][0]["config"] = {"created_at": "2999-12-31T23:59:59.999998Z", "updated_at": "2999-12-31T23:59:59.999998Z"}
    sim = start_sim(seed=seed)
    config = sim.config()
    assert sim.api("PUT", CONFIGS, json=put_body(config)).status_code == 200
    assert sim.config()["updated_at"] == "2999-12-31T23:59:59.999999Z"


@pytest.mark.parametrize("field,value", [("updated_at", "2020-01-01T00:00:00.000000Z"), ("created_at", "2020-01-01T00:00:00.000000Z")])
def test_put_with_stale_timestamps_is_400(sim, field, value):
    config = sim.config()
    body = put_body(config, inference={"eu_native": True})
    body[field] = value
    msg = assert_error(sim.api("PUT", CONFIGS, json=body), 400)
    assert "stale" in msg and "configuration was modified, re-read it" in msg
    assert sim.config() == config


def test_put_with_timestamps_from_before_the_last_write_is_stale(sim):
    config = sim.config()
    assert sim.api("PUT", CONFIGS, json=put_body(config, inference={"eu_native": True})).status_code == 200
    assert_error(sim.api("PUT", CONFIGS, json=put_body(config, inference={"eu_native": False})), 400, "stale")
    assert sim.config()["inference_config"]["eu_native"] is True


def test_put_timestamps_must_match_exactly_not_just_the_instant(sim):
    config = sim.config()
    body = put_body(config)
    body["updated_at"] = config["updated_at"].replace("Z", "+00:00")
    assert_error(sim.api("PUT", CONFIGS, json=body), 400, "stale")


def test_put_replaces_inference_config_as_a_whole(sim):
    config = sim.config()
    assert config["inference_config"]["enable_model_fallback"] is True
    assert config["inference_config"]["preference"] == "balanced"
    assert sim.api("PUT", CONFIGS, json=put_body(config, inference={"eu_native": True})).status_code == 200
    assert sim.config()["inference_config"] == {
        "allowed_providers": [], "eu_native": True, "allow_quantization": False, "allow_zero_data_retention": False,
        "enable_model_fallback": False, "preference": None, "max_tokens": None, "include_metadata": False,
    }


def test_put_full_config_round_trips_including_include_metadata(sim):
    config = sim.config()
    full = {
        "allowed_providers": ["stackit", "ionos"], "eu_native": True, "allow_quantization": True,
        "allow_zero_data_retention": True, "enable_model_fallback": True, "preference": "speed",
        "max_tokens": 2048, "include_metadata": True,
    }
    assert sim.api("PUT", CONFIGS, json=put_body(config, inference=full)).status_code == 200
    after = sim.config()
    assert after["inference_config"] == full
    # Leaving include_metadata out resets it: clients must carry it through.
    partial = dict(full)
    del partial["include_metadata"]
    assert sim.api("PUT", CONFIGS, json=put_body(after, inference=partial)).status_code == 200
    assert sim.config()["inference_config"]["include_metadata"] is False


@pytest.mark.parametrize("inference", [
    {"eu_native": 1},
    {"eu_native": "true"},
    {"eu_native": None},
    {"allow_quantization": 0},
    {"allow_zero_data_retention": "no"},
    {"enable_model_fallback": []},
    {"include_metadata": 0},
    {"include_metadata": None},
    {"preference": "fast"},
    {"preference": 1},
    {"preference": "Speed"},
    {"max_tokens": 0},
    {"max_tokens": -5},
    {"max_tokens": 1.5},
    {"max_tokens": 10.0},
    {"max_tokens": True},
    {"max_tokens": "100"},
    {"max_tokens": 2 ** 31},
    {"allowed_providers": "ionos"},
    {"allowed_providers": None},
    {"allowed_providers": [1]},
    {"allowed_providers": ["ionos", "ionos"]},
    {"temperature": 0.2},
    {"metadata": {}},
])
def test_put_validates_inference_config(sim, inference):
    config = sim.config()
    assert_error(sim.api("PUT", CONFIGS, json=put_body(config, inference=inference)), 400)
    assert sim.config() == config


@pytest.mark.parametrize("inference", [
    {"preference": None, "max_tokens": None},
    {"preference": "cost", "max_tokens": 1},
    {"preference": "speed", "max_tokens": 2 ** 31 - 1},
    {"allowed_providers": []},
    {"allowed_providers": ["ionos", "nebius", "scaleway", "ovhcloud", "mistral", "stackit", "deepinfra", "fireworks"]},
])
def test_put_accepts_valid_inference_config(sim, inference):
    config = sim.config()
    assert sim.api("PUT", CONFIGS, json=put_body(config, inference=inference)).status_code == 200


def test_unknown_provider_fails_registry_validation(sim):
    config = sim.config()
    body = put_body(config, inference={"allowed_providers": ["ionos", "openai"]})
    msg = assert_error(sim.api("PUT", CONFIGS, json=body), 400, "registry validation failed")
    assert "openai" in msg
    assert sim.config() == config


def test_provider_registry_comes_from_the_seed(start_sim, sim_module):
    seed = sim_module.default_seed()
    seed["providers"] = ["acme"]
    sim = start_sim(seed=seed)
    config = sim.config()
    assert sim.api("PUT", CONFIGS, json=put_body(config, inference={"allowed_providers": ["acme"]})).status_code == 200
    config = sim.config()
    assert_error(sim.api("PUT", CONFIGS, json=put_body(config, inference={"allowed_providers": ["ionos"]})), 400, "registry validation failed")


def test_allow_overwrite_optional_and_null_means_unchanged(sim):
    config = sim.config()
    assert config["allow_overwrite"] is True
    assert sim.api("PUT", CONFIGS, json=put_body(config, allow_overwrite=False)).status_code == 200
    config = sim.config()
    assert config["allow_overwrite"] is False
    assert sim.api("PUT", CONFIGS, json=put_body(config)).status_code == 200
    config = sim.config()
    assert config["allow_overwrite"] is False
    assert sim.api("PUT", CONFIGS, json=put_body(config, allow_overwrite=None)).status_code == 200
    config = sim.config()
    assert config["allow_overwrite"] is False
    assert sim.api("PUT", CONFIGS, json=put_body(config, allow_overwrite=True)).status_code == 200
    assert sim.config()["allow_overwrite"] is True


@pytest.mark.parametrize("mutate", [
    lambda b: b.pop("inference_config"),
    lambda b: b.pop("created_at"),
    lambda b: b.pop("updated_at"),
    lambda b: b.update(inference_config=None),
    lambda b: b.update(inference_config=[]),
    lambda b: b.update(inference_config="{}"),
    lambda b: b.update(created_at=None),
    lambda b: b.update(updated_at=1700000000),
    lambda b: b.update(updated_at="yesterday"),
    lambda b: b.update(updated_at="2025-13-01T00:00:00Z"),
    lambda b: b.update(allow_overwrite="yes"),
    lambda b: b.update(allow_overwrite=1),
    lambda b: b.update(_id="x"),
    lambda b: b.update(project_id="x"),
    lambda b: b.update(extra=True),
])
def test_put_validates_top_level(sim, mutate):
    config = sim.config()
    body = put_body(config)
    mutate(body)
    assert_error(sim.api("PUT", CONFIGS, json=body), 400)
    assert sim.config() == config


def test_put_rejects_non_json(sim):
    assert_error(sim.api("PUT", CONFIGS, data="{}", headers={"Content-Type": "text/plain"}), 400)
    assert_error(sim.api("PUT", CONFIGS, data="", headers={"Content-Type": "application/json"}), 400)


def test_configs_are_per_project(sim):
    config = sim.config()
    other = sim.config(token="sim-env01-admin")
    assert sim.api("PUT", CONFIGS, json=put_body(config, inference={"eu_native": True})).status_code == 200
    assert sim.config(token="sim-env01-admin") == other


# ---------------------------------------------------------------- balance

def test_balance_default(sim):
    for token in (ADMIN, MEMBER, "sim-env02-admin"):
        resp = sim.api("GET", BALANCE, token=token)
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.json() == {"current_balance": 100.0, "currency": "EUR"}
        assert isinstance(resp.json()["current_balance"], float)


def test_balance_flag_and_side_endpoint(start_sim):
    sim = start_sim(projects=1, balance=42.5)
    assert sim.api("GET", BALANCE).json()["current_balance"] == 42.5
    assert sim.side_ok("POST", "balance", {"project": "env01", "current_balance": 3}) == \
        {"success": True, "project": "env01", "current_balance": 3.0}
    assert sim.api("GET", BALANCE, token="sim-env01-member").json() == {"current_balance": 3.0, "currency": "EUR"}
    assert sim.api("GET", BALANCE).json()["current_balance"] == 42.5


@pytest.mark.parametrize("body,status", [
    ({"project": "nope", "current_balance": 1.0}, 404),
    ({"project": "default"}, 400),
    ({"project": "default", "current_balance": "1"}, 400),
    ({"project": "default", "current_balance": True}, 400),
    ({"project": 1, "current_balance": 1.0}, 400),
    ({"project": "default", "current_balance": 1.0, "currency": "USD"}, 400),
    ([], 400),
])
def test_side_balance_validation(sim, body, status):
    assert_error(sim.side("POST", "balance", body), status)


# ---------------------------------------------------------------- routing and error format

@pytest.mark.parametrize("path", ["/v1/manage/api-keys/", "/v1/manage", "/v1", "/v1/manage/keys", "/nothing", "/", "/v2/manage/api-keys"])
def test_unknown_path_is_404_json(sim, path):
    resp = sim.session.get(sim.root + path, headers={"Authorization": "Bearer " + ADMIN}, timeout=10)
    assert_error(resp, 404)


@pytest.mark.parametrize("method,path,allow", [
    ("PATCH", KEYS, "GET, POST, DELETE"),
    ("PUT", KEYS, "GET, POST, DELETE"),
    ("POST", CONFIGS, "GET, PUT"),
    ("DELETE", CONFIGS, "GET, PUT"),
    ("POST", BALANCE, "GET"),
    ("OPTIONS", BALANCE, "GET"),
    ("QUERY", KEYS, "GET, POST, DELETE"),
])
def test_wrong_method_is_405_json(sim, method, path, allow):
    resp = sim.api(method, path, json={"name": "x"})
    assert_error(resp, 405)
    assert resp.headers["Allow"] == allow


def test_head_is_405_without_body(sim):
    resp = sim.api("HEAD", KEYS)
    assert resp.status_code == 405 and resp.content == b""


def test_error_bodies_are_json_even_for_malformed_requests(sim):
    resp = sim.session.post(sim.base + KEYS, data="{}", timeout=10,
                            headers={"Authorization": "Bearer " + ADMIN, "Content-Type": "application/json", "Content-Length": "abc"})
    assert_error(resp, 400)


def test_chunked_request_body_is_accepted(sim):
    def chunks():
        yield b'{"name": '
        yield b'"chunked"}'

    resp = sim.session.post(sim.base + KEYS, data=chunks(), timeout=10,
                            headers={"Authorization": "Bearer " + ADMIN, "Content-Type": "application/json"})
    assert resp.status_code == 201, resp.text


# ---------------------------------------------------------------- faults

def test_latency_fault(sim):
    sim.side_ok("POST", "faults", {"latency_ms": 250})
    start = time.time()
    assert sim.api("GET", BALANCE).status_code == 200
    assert time.time() - start >= 0.25
    start = time.time()
    sim.side_ok("GET", "counters")
    assert time.time() - start < 0.2


def test_rate_limit_next(sim):
    sim.side_ok("POST", "faults", {"rate_limit_next": {"count": 2, "retry_after": 3}})
    for _attempt in range(2):
        resp = sim.api("GET", KEYS, token=None)  # faults are decided before authentication
        assert_error(resp, 429)
        assert resp.headers["Retry-After"] == "3"
    assert sim.api("GET", KEYS).status_code == 200
    assert sim.side_ok("GET", "faults") == {}


def test_rate_limit_rate(sim):
    sim.side_ok("POST", "faults", {"rate_limit_rate": {"rate": 1.0}})
    resp = sim.api("POST", KEYS, json={"name": "x"})
    assert_error(resp, 429)
    assert resp.headers["Retry-After"] == "1"
    assert "x" not in sim.side_ok("GET", "state")["projects"]["default"]["users"]["admin"]["keys"]


def test_fail_next_with_method_filter(sim):
    sim.side_ok("POST", "faults", {"fail_next": {"count": 2, "status": 500, "methods": ["GET"]}})
    create_key(sim, "unaffected")
    assert_error(sim.api("GET", KEYS), 500)
    assert sim.side_ok("GET", "faults")["fail_next"]["count"] == 1
    assert_error(sim.api("GET", BALANCE), 500)
    assert sim.api("GET", BALANCE).status_code == 200


def test_fail_rate_defaults_to_503_and_applies_only_to_v1(sim):
    sim.side_ok("POST", "faults", {"fail_rate": {"rate": 1.0}})
    assert_error(sim.api("GET", BALANCE), 503)
    assert_error(sim.api("PUT", CONFIGS, json={}), 503)
    assert sim.side("GET", "state").status_code == 200
    assert_error(sim.session.get(sim.root + "/elsewhere", timeout=10), 404)


def test_fail_rate_is_reproducible_with_fault_seed(start_sim):
    runs = []
    for _attempt in range(2):
        sim = start_sim(fault_seed="1234", fail_rate=0.5)
        runs.append([sim.api("GET", BALANCE).status_code for _request in range(30)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 503}


def test_lose_reply_next_applies_post_but_drops_reply(sim):
    sim.side_ok("POST", "faults", {"lose_reply_next": {"count": 1}})
    assert sim.side_ok("GET", "faults")["lose_reply_next"]["methods"] == ["POST"]
    assert sim.api("GET", KEYS).status_code == 200  # not a POST: unaffected
    with pytest.raises(requests.exceptions.ConnectionError):
        sim.api("POST", KEYS, json={"name": "ghost"})
    assert "ghost" in sim.key_names()  # it was applied
    assert_error(sim.api("POST", KEYS, json={"name": "ghost"}), 400, "already exists")
    assert sim.side_ok("GET", "counters")["by_status"]["no_reply"] == 1


def test_lose_reply_rate_for_configured_methods(sim):
    sim.side_ok("POST", "faults", {"lose_reply_rate": {"rate": 1.0, "methods": ["DELETE"]}})
    create_key(sim, "doomed")
    with pytest.raises(requests.exceptions.ConnectionError):
        sim.api("DELETE", KEYS, json={"name": "doomed"})
    assert "doomed" not in sim.key_names()


def test_faults_side_endpoint_replace_and_clear(sim):
    doc = {
        "latency_ms": 5,
        "fail_next": {"count": 2, "status": 503, "methods": ["GET"]},
        "fail_rate": {"rate": 0.1, "status": 500},
        "rate_limit_next": {"count": 1, "retry_after": 2},
        "rate_limit_rate": {"rate": 0.2, "retry_after": 1},
        "lose_reply_next": {"count": 1, "methods": ["POST"]},
        "lose_reply_rate": {"rate": 0.1},
    }
    current = sim.side_ok("POST", "faults", doc)
    assert current == sim.side_ok("GET", "faults")
    assert current["fail_rate"] == {"rate": 0.1, "status": 500, "methods": None}
    assert current["lose_reply_rate"]["methods"] == ["POST"]
    assert sim.side_ok("POST", "faults", {"latency_ms": 1}) == {"latency_ms": 1}  # replaces
    assert sim.side_ok("POST", "faults", {}) == {}


@pytest.mark.parametrize("doc", [
    {"explode": {}},
    {"latency_ms": -1},
    {"fail_rate": {"rate": 1.5}},
    {"fail_next": {"count": -1}},
    {"fail_next": {"count": 1, "status": 200}},
    {"fail_next": {"count": 1, "methods": "GET"}},
    {"rate_limit_next": {"count": 1, "retry_after": "1"}},
    {"lose_reply_next": {"count": 1, "status": 500}},
    [],
])
def test_faults_side_endpoint_validation(sim, doc):
    assert_error(sim.side("POST", "faults", doc), 400)


def test_fault_flags_at_start(start_sim):
    sim = start_sim(fail_rate=1.0, fail_status=500, fail_methods="PUT")
    assert sim.api("GET", BALANCE).status_code == 200
    assert_error(sim.api("PUT", CONFIGS, json={}), 500)
    sim = start_sim(rate_limit_next=1, retry_after=7)
    assert sim.api("GET", BALANCE).headers["Retry-After"] == "7"
    assert sim.api("GET", BALANCE).status_code == 200
    sim = start_sim(rate_limit_rate=1.0)
    assert sim.api("GET", BALANCE).status_code == 429
    sim = start_sim(lose_reply_rate=1.0)
    assert sim.api("GET", BALANCE).status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):
        sim.api("POST", KEYS, json={"name": "lost"})
    sim = start_sim(latency_ms=120, fail_next=1)
    start = time.time()
    assert sim.api("GET", BALANCE).status_code == 503
    assert time.time() - start >= 0.12


# ---------------------------------------------------------------- counters

def test_counters(sim):
    sim.side_ok("POST", "reset-counters")
    assert sim.side_ok("GET", "counters") == {
        "total": {"reads": 0, "writes": 0},
        "by_route": {},
        "by_project": {name: {"reads": 0, "writes": 0} for name in ("default", "env01", "env02", "unauthenticated")},
        "by_status": {},
    }
    sim.api("GET", KEYS)
    sim.api("GET", BALANCE, token=MEMBER)
    sim.api("POST", KEYS, token="sim-env01-admin", json={"name": "n"})
    sim.api("GET", KEYS, token=None)
    sim.api("GET", KEYS, token="bogus")
    sim.api("PUT", CONFIGS, token="sim-env01-plain", json={})
    sim.side_ok("POST", "faults", {"fail_next": {"count": 1}})
    sim.api("DELETE", KEYS, token="sim-env02-admin", json={"name": "default"})
    sim.side_ok("GET", "state")  # side endpoints are not counted
    counters = sim.side_ok("GET", "counters")
    assert counters["total"] == {"reads": 4, "writes": 3}
    assert counters["by_route"] == {
        "GET /v1/manage/api-keys": 3,
        "GET /v1/manage/users/balance": 1,
        "POST /v1/manage/api-keys": 1,
        "PUT /v1/manage/project-configs": 1,
        "DELETE /v1/manage/api-keys": 1,
    }
    assert counters["by_project"]["default"] == {"reads": 2, "writes": 0}
    assert counters["by_project"]["env01"] == {"reads": 0, "writes": 2}
    assert counters["by_project"]["env02"] == {"reads": 0, "writes": 1}
    assert counters["by_project"]["unauthenticated"] == {"reads": 2, "writes": 0}
    assert counters["by_status"] == {"200": 2, "201": 1, "401": 2, "403": 1, "503": 1}
    sim.side_ok("POST", "reset-counters")
    assert sim.side_ok("GET", "counters")["total"] == {"reads": 0, "writes": 0}


# ---------------------------------------------------------------- side endpoints

def test_state_has_no_secrets(sim):
    created = create_key(sim, "fresh", management=True)
    resp = sim.side("GET", "state")
    assert resp.status_code == 200
    text = resp.text
    for secret in (ADMIN, PLAIN, MEMBER, "sim-env01-admin", "sim-env02-member", created["api_key"]):
        assert secret not in text
    assert "secret" not in text
    state = resp.json()
    default = state["projects"]["default"]
    assert set(default) == {"project_id", "balance", "config", "users"}
    assert default["balance"] == {"current_balance": 100.0, "currency": "EUR"}
    assert default["users"]["admin"]["role"] == "admin" and default["users"]["admin"]["is_admin"] is True
    assert default["users"]["member"]["is_admin"] is False
    assert [k["name"] for k in default["users"]["admin"]["keys"]] == ["management", "default", "fresh"]
    assert set(default["users"]["admin"]["keys"][0]) == {"name", "is_management_key", "created_at"}
    assert default["config"] == sim.config()
    assert state["key_limit"] == 20 and "ionos" in state["providers"]
    assert sorted(state["projects"]) == ["default", "env01", "env02"]


def test_reset_restores_seed_and_clears_counters_and_faults(sim):
    initial = sim.side_ok("GET", "state")
    created = create_key(sim, "temp", management=True)
    sim.api("DELETE", KEYS, json={"name": "default"})
    config = sim.config()
    sim.api("PUT", CONFIGS, json=put_body(config, inference={"eu_native": True}))
    sim.side_ok("POST", "balance", {"project": "default", "current_balance": 1.0})
    sim.side_ok("POST", "faults", {"latency_ms": 1, "fail_rate": {"rate": 0.01}})
    assert sim.side_ok("POST", "reset") == {"success": True}
    assert sim.side_ok("GET", "state") == initial
    assert sim.side_ok("GET", "faults") == {}
    assert sim.side_ok("GET", "counters")["total"] == {"reads": 0, "writes": 0}
    assert_error(sim.api("GET", KEYS, token=created["api_key"]), 401)
    assert_error(sim.api("GET", KEYS, token=PLAIN), 403)  # the deleted plain key is back
    assert sim.config() == config


@pytest.mark.parametrize("method,name,status", [
    ("GET", "reset", 405), ("GET", "reset-counters", 405), ("POST", "counters", 405), ("POST", "state", 405),
    ("GET", "balance", 405), ("DELETE", "faults", 405), ("GET", "nothing", 404),
])
def test_side_routing(sim, method, name, status):
    assert_error(sim.side(method, name), status)


# ---------------------------------------------------------------- tenants, seeds and persistence

def test_generated_projects_and_keys(start_sim):
    sim = start_sim(projects=3, key="custom-admin")
    state = sim.side_ok("GET", "state")
    assert sorted(state["projects"]) == ["default", "env01", "env02", "env03"]
    assert sim.key_names(token="custom-admin") == ["management", "default"]
    assert_error(sim.api("GET", KEYS, token=ADMIN), 401)
    for name in ("env01", "env03"):
        assert sim.key_names(token="sim-%s-admin" % name) == ["management", "default"]
        assert sim.key_names(token="sim-%s-member" % name) == ["management"]
        assert_error(sim.api("GET", KEYS, token="sim-%s-plain" % name), 403)
        assert sim.config(token="sim-%s-admin" % name)["inference_config"]["include_metadata"] is False


def test_three_digit_project_names(start_sim):
    sim = start_sim(projects=100)
    names = sorted(sim.side_ok("GET", "state")["projects"])
    assert names[0] == "default" and names[1] == "env001" and names[-1] == "env100" and len(names) == 101
    assert sim.key_names(token="sim-env100-admin") == ["management", "default"]
    assert sim.key_names(token="sim-env007-member") == ["management"]


def test_seed_example_file(start_sim):
    sim = start_sim(seed_file=SEED_EXAMPLE)
    assert sim.key_names(token="seed-alice-admin") == ["management", "ci"]
    assert_error(sim.api("GET", KEYS, token="seed-alice-ci"), 403)
    config = sim.config(token="seed-bob-member")
    assert config["_id"] == "cfg-default-0001" and config["project_id"] == "prj-default-0001"
    assert config["inference_config"]["include_metadata"] is True
    assert_error(sim.api("PUT", CONFIGS, token="seed-bob-member", json=put_body(config)), 403)
    assert sim.api("PUT", CONFIGS, token="seed-alice-admin", json=put_body(config, inference={"allowed_providers": ["acme-eu"]})).status_code == 200
    assert sim.api("GET", BALANCE, token="seed-low-admin").json() == {"current_balance": 0.5, "currency": "EUR"}
    assert_error(sim.api("GET", CONFIGS, token="seed-unconfigured-admin"), 404)


@pytest.mark.parametrize("seed", [
    {},
    {"projects": []},
    {"projects": [{"name": "a"}, {"name": "a"}]},
    {"projects": [{"name": "a", "users": [{"name": "u", "role": "owner"}]}]},
    {"projects": [{"name": "a", "users": [{"name": "u", "keys": [{"name": "k"}]}]}]},
    {"projects": [{"name": "a", "users": [{"name": "u", "keys": [{"name": "k", "secret": "s"}, {"name": "k", "secret": "t"}]}]}]},
    {"projects": [{"name": "a", "users": [{"name": "u", "keys": [{"name": "k", "secret": "s"}]},
                                          {"name": "v", "keys": [{"name": "k", "secret": "s"}]}]}]},
    {"projects": [{"name": "a", "config": {"inference_config": {"bogus": 1}}}]},
    {"projects": [{"name": "a", "config": {"created_at": "not a date"}}]},
    {"projects": [{"name": "a", "balance": "lots"}]},
    {"format": "other/2", "projects": [{"name": "a"}]},
])
def test_invalid_seed_is_rejected(sim_module, seed):
    with pytest.raises(sim_module.ConfigError):
        sim_module.make_server({"port": 0, "seed": seed})


def test_main_reports_bad_seed_file(sim_module, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert sim_module.main(["--port", "0", "--seed-file", str(bad)]) == 2
    assert "seed file" in capsys.readouterr().err


def test_state_file_persists_across_restarts(start_sim, tmp_path):
    path = tmp_path / "state.json"
    first = start_sim(state_file=str(path))
    assert not path.exists()  # nothing applied yet

    def saved_project():
        return json.loads(path.read_text(encoding="utf-8"))["projects"][0]

    # Each applied write is saved immediately.
    created = create_key(first, "persisted", management=True)
    assert [k["name"] for k in saved_project()["users"][0]["keys"]] == ["management", "default", "persisted"]
    config = first.config()
    first.api("PUT", CONFIGS, json=put_body(config, inference={"max_tokens": 77}))
    assert saved_project()["config"]["inference_config"]["max_tokens"] == 77
    first.side_ok("POST", "balance", {"project": "default", "current_balance": 9.25})
    assert saved_project()["balance"] == 9.25
    first.api("DELETE", KEYS, json={"name": "default"})
    assert [k["name"] for k in saved_project()["users"][0]["keys"]] == ["management", "persisted"]
    saved = path.read_text(encoding="utf-8")
    assert created["api_key"] not in saved and ADMIN not in saved and MEMBER not in saved
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # tmp+rename left nothing behind
    first.close()

    second = start_sim(state_file=str(path))
    assert second.key_names(token=created["api_key"]) == ["management", "persisted"]
    assert second.config()["inference_config"]["max_tokens"] == 77
    assert second.api("GET", BALANCE).json()["current_balance"] == 9.25
    assert_error(second.api("GET", KEYS, token=PLAIN), 401)
    # The state file is itself a valid seed file.
    third = start_sim(seed_file=str(path))
    assert third.key_names(token=created["api_key"]) == ["management", "persisted"]
    # /_sim/reset goes back to the seed, and saves that.
    second.side_ok("POST", "reset")
    assert "persisted" not in path.read_text(encoding="utf-8")


def test_failed_writes_do_not_touch_the_state_file(start_sim, tmp_path):
    path = tmp_path / "state.json"
    sim = start_sim(state_file=str(path))
    sim.api("POST", KEYS, json={"name": "default"})
    sim.api("DELETE", KEYS, json={"name": "management"})
    assert not path.exists()


# ---------------------------------------------------------------- configuration and CLI

def test_parse_config_defaults(sim_module):
    config = sim_module.parse_config([], environ={})
    assert config["host"] == "127.0.0.1" and config["port"] == 8080 and config["key"] == "sim-admin-key"
    assert config["projects"] == 0 and config["key_limit"] == 20 and config["balance"] == 100.0
    assert config["fail_status"] == 503 and config["retry_after"] == 1 and config["lose_reply_methods"] == "POST"
    assert config["seed_file"] is None and config["state_file"] is None and config["port_file"] is None


def test_parse_config_env_and_flags(sim_module):
    environ = {
        "SIM_HOST": "0.0.0.0", "SIM_PORT": "9999", "SIM_KEY": "k", "SIM_PROJECTS": "4", "SIM_SEED_FILE": "/s.json",
        "SIM_STATE_FILE": "/st.json", "SIM_KEY_LIMIT": "5", "SIM_BALANCE": "1.5", "SIM_LATENCY_MS": "10",
        "SIM_FAIL_RATE": "0.25", "SIM_FAIL_STATUS": "500", "SIM_RATE_LIMIT_RATE": "0.5", "SIM_RETRY_AFTER": "4",
        "SIM_LOSE_REPLY_RATE": "0.1", "SIM_FAULT_SEED": "7", "SIM_PORT_FILE": "/p",
    }
    config = sim_module.parse_config([], environ=environ)
    assert (config["host"], config["port"], config["key"], config["projects"]) == ("0.0.0.0", 9999, "k", 4)
    assert (config["seed_file"], config["state_file"], config["key_limit"], config["balance"]) == ("/s.json", "/st.json", 5, 1.5)
    assert (config["latency_ms"], config["fail_rate"], config["fail_status"]) == (10.0, 0.25, 500)
    assert (config["rate_limit_rate"], config["retry_after"], config["lose_reply_rate"]) == (0.5, 4, 0.1)
    assert (config["fault_seed"], config["port_file"]) == ("7", "/p")
    flags = sim_module.parse_config(["--port", "0", "--projects", "2", "--key", "flag"], environ=environ)
    assert (flags["port"], flags["projects"], flags["key"]) == (0, 2, "flag")
    with pytest.raises(sim_module.ConfigError):
        sim_module.parse_config([], environ={"SIM_PORT": "eighty"})


def _start_cli(tmp_path, *args, **env):
    port_file = tmp_path / "port"
    environ = dict(os.environ)
    environ.update(env)
    start = time.time()
    proc = subprocess.Popen([sys.executable, SIM_PATH, "--port", "0", "--port-file", str(port_file), "--quiet"] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ)
    line = proc.stdout.readline().decode("utf-8")
    return proc, line, time.time() - start, port_file


def test_startup_is_fast(sim_module):
    start = time.time()
    server = sim_module.make_server({"port": 0, "projects": 20, "quiet": True})
    try:
        assert time.time() - start < 0.5
    finally:
        server.server_close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_starts_fast_and_exits_cleanly(tmp_path, signum):
    proc, line, elapsed, port_file = _start_cli(tmp_path, "--projects", "1", SIM_KEY="cli-key", SIM_BALANCE="7.5")
    try:
        port = int(port_file.read_text(encoding="utf-8").strip())
        assert line == "cortecs simulator listening on http://127.0.0.1:%d/v1\n" % port
        assert elapsed < 5.0  # includes interpreter start-up on a possibly loaded CI box; see test_startup_is_fast
        base = "http://127.0.0.1:%d/v1" % port
        resp = requests.get(base + BALANCE, headers={"Authorization": "Bearer sim-env01-admin"}, timeout=5)
        assert resp.json() == {"current_balance": 7.5, "currency": "EUR"}
        assert requests.get(base + KEYS, headers={"Authorization": "Bearer cli-key"}, timeout=5).status_code == 200
    finally:
        proc.send_signal(signum)
        assert proc.wait(timeout=5) == 0
        proc.stdout.close()
        proc.stderr.close()
