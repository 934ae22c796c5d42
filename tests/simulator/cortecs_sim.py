# -*- coding: utf-8 -*-
# Copyright (c) cortecs.management contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline simulator of the Cortecs Management API (base path /v1).

Standard library only.  Run it as a script (see README.md next to this file)
or import it and call ``make_server(config)`` / ``main(argv)``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import copy
import datetime
import hashlib
import json
import os
import random
import re
import secrets
import signal
import socket
import socketserver
import sys
import threading
import time

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


SEED_FORMAT = "cortecs-sim-seed/1"
CURRENCY = "EUR"
DEFAULT_PROVIDERS = ["ionos", "nebius", "scaleway", "ovhcloud", "mistral", "stackit", "deepinfra", "fireworks"]
BOOL_FIELDS = ("eu_native", "allow_quantization", "allow_zero_data_retention", "enable_model_fallback", "include_metadata")
INFERENCE_FIELDS = ("allowed_providers",) + BOOL_FIELDS[:4] + ("preference", "max_tokens", "include_metadata")
PREFERENCES = ("speed", "cost", "balanced")
MAX_TOKENS_LIMIT = 2 ** 31 - 1
KEY_NAME_MAX = 100
MAX_BODY = 1024 * 1024
READ_METHODS = ("GET", "HEAD", "OPTIONS")

# Values a PUT resets omitted inference_config fields to.
RESET_INFERENCE_CONFIG = {
    "allowed_providers": [],
    "eu_native": False,
    "allow_quantization": False,
    "allow_zero_data_retention": False,
    "enable_model_fallback": False,
    "preference": None,
    "max_tokens": None,
    "include_metadata": False,
}

# What generated tenants (and seed projects whose "config" is omitted) start with.
SEEDED_INFERENCE_CONFIG = {
    "allowed_providers": [],
    "eu_native": False,
    "allow_quantization": False,
    "allow_zero_data_retention": False,
    "enable_model_fallback": True,
    "preference": "balanced",
    "max_tokens": None,
    "include_metadata": False,
}
SEEDED_ALLOW_OVERWRITE = True

ROUTES = {
    "/v1/manage/api-keys": ("GET", "POST", "DELETE"),
    "/v1/manage/project-configs": ("GET", "PUT"),
    "/v1/manage/users/balance": ("GET",),
}
SIDE_ROUTES = {
    "/_sim/counters": ("GET",),
    "/_sim/reset-counters": ("POST",),
    "/_sim/reset": ("POST",),
    "/_sim/state": ("GET",),
    "/_sim/faults": ("GET", "POST"),
    "/_sim/balance": ("POST",),
}

DEFAULTS = {
    "host": "127.0.0.1",
    "port": 8080,
    "port_file": None,
    "key": "sim-admin-key",
    "projects": 0,
    "seed_file": None,
    "seed": None,
    "state_file": None,
    "key_limit": 20,
    "balance": 100.0,
    "latency_ms": 0.0,
    "fail_rate": 0.0,
    "fail_status": 503,
    "fail_methods": None,
    "fail_next": 0,
    "rate_limit_rate": 0.0,
    "rate_limit_next": 0,
    "retry_after": 1,
    "lose_reply_rate": 0.0,
    "lose_reply_next": 0,
    "lose_reply_methods": "POST",
    "fault_seed": None,
    "quiet": False,
}

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SimError(Exception):
    """An API error: HTTP status plus message, rendered as {"error": message}."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class ConfigError(Exception):
    """Invalid simulator configuration, seed or state file."""


# ---------------------------------------------------------------- helpers

def _hash_secret(secret):
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _stable_id(kind, name):
    return hashlib.sha256((kind + ":" + name).encode("utf-8")).hexdigest()[:24]


def format_timestamp(dt):
    """Render an aware datetime as ISO-8601 UTC with microseconds and a Z suffix."""
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value):
    """Parse an RFC 3339 date-time string; return an aware datetime or None if invalid."""
    if not isinstance(value, str):
        return None
    match = _RFC3339.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    frac = match.group(7)
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    zone = match.group(8)
    if zone in ("Z", "z"):
        tzinfo = datetime.timezone.utc
    else:
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            return None
        tzinfo = datetime.timezone(sign * datetime.timedelta(hours=hours, minutes=minutes))
    try:
        return datetime.datetime(year, month, day, hour, minute, second, micro, tzinfo=tzinfo)
    except ValueError:
        return None


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _reject_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate key %r" % key)
        result[key] = value
    return result


def _reject_constant(name):
    raise ValueError("invalid JSON constant %s" % name)


def parse_json(raw):
    """Strict JSON parsing: UTF-8, no duplicate keys, no NaN/Infinity."""
    text = raw.decode("utf-8")
    return json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)


def _validate_key_name(name, what="name"):
    if not isinstance(name, str):
        raise SimError(400, "'%s' must be a string, got %s" % (what, _type_name(name)))
    if not name:
        raise SimError(400, "'%s' must not be empty" % what)
    if len(name) > KEY_NAME_MAX:
        raise SimError(400, "'%s' must be at most %d characters" % (what, KEY_NAME_MAX))
    if name != name.strip():
        raise SimError(400, "'%s' must not have leading or trailing whitespace" % what)
    if _CONTROL.search(name):
        raise SimError(400, "'%s' must not contain control characters" % what)


def _pad_width(count):
    return max(2, len(str(count)))


def _atomic_write(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, ".%s.tmp.%d.%d" % (os.path.basename(path), os.getpid(), threading.get_ident()))
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------- seeding

def default_seed(key="sim-admin-key", projects=0, balance=100.0):
    """The generated tenants: project "default" plus env01..envNN."""
    names = ["default"]
    width = _pad_width(projects)
    names.extend("env%0*d" % (width, i) for i in range(1, projects + 1))
    result = []
    for name in names:
        if name == "default":
            admin, plain, member = key, "sim-plain-key", "sim-member-key"
        else:
            admin, plain, member = "sim-%s-admin" % name, "sim-%s-plain" % name, "sim-%s-member" % name
        result.append({
            "name": name,
            "balance": balance,
            "users": [
                {"name": "admin", "role": "admin", "keys": [
                    {"name": "management", "secret": admin, "is_management_key": True},
                    {"name": "default", "secret": plain, "is_management_key": False},
                ]},
                {"name": "member", "role": "member", "keys": [
                    {"name": "management", "secret": member, "is_management_key": True},
                ]},
            ],
        })
    return {"format": SEED_FORMAT, "providers": list(DEFAULT_PROVIDERS), "projects": result}


def _seed_config(raw, project_name, project_id, now_iso, where):
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError("%s.config must be an object or null" % where)
    unknown = set(raw) - set(("_id", "project_id", "inference_config", "allow_overwrite", "created_at", "updated_at"))
    if unknown:
        raise ConfigError("%s.config has unknown fields: %s" % (where, ", ".join(sorted(unknown))))
    inference = raw.get("inference_config", {})
    if not isinstance(inference, dict):
        raise ConfigError("%s.config.inference_config must be an object" % where)
    unknown = set(inference) - set(INFERENCE_FIELDS)
    if unknown:
        raise ConfigError("%s.config.inference_config has unknown fields: %s" % (where, ", ".join(sorted(unknown))))
    merged = copy.deepcopy(SEEDED_INFERENCE_CONFIG)
    merged.update(copy.deepcopy(inference))
    config = {
        "_id": raw.get("_id", _stable_id("config", project_name)),
        "project_id": project_id,
        "inference_config": merged,
        "allow_overwrite": raw.get("allow_overwrite", SEEDED_ALLOW_OVERWRITE),
        "created_at": raw.get("created_at", now_iso),
        "updated_at": raw.get("updated_at", raw.get("created_at", now_iso)),
    }
    if not isinstance(config["_id"], str) or not isinstance(config["allow_overwrite"], bool):
        raise ConfigError("%s.config: _id must be a string and allow_overwrite a boolean" % where)
    for field in ("created_at", "updated_at"):
        if parse_timestamp(config[field]) is None:
            raise ConfigError("%s.config.%s must be an RFC 3339 date-time string" % (where, field))
    if raw.get("project_id", project_id) != project_id:
        raise ConfigError("%s.config.project_id must match the project's project_id" % where)
    return config


def normalize_seed(doc, balance=100.0, now=None):
    """Validate a seed (or state) document and return it in canonical form.

    The canonical form stores only secret_sha256 for keys, so it never holds secrets.
    """
    now = time.time() if now is None else now
    now_iso = format_timestamp(datetime.datetime.fromtimestamp(now, datetime.timezone.utc))
    if not isinstance(doc, dict):
        raise ConfigError("seed must be a JSON object")
    unknown = set(doc) - set(("format", "providers", "projects", "comment"))
    if unknown:
        raise ConfigError("seed has unknown top-level fields: %s" % ", ".join(sorted(unknown)))
    if doc.get("format", SEED_FORMAT) != SEED_FORMAT:
        raise ConfigError("unsupported seed format %r (expected %r)" % (doc.get("format"), SEED_FORMAT))
    providers = doc.get("providers", DEFAULT_PROVIDERS)
    if not isinstance(providers, list) or not all(isinstance(p, str) and p for p in providers):
        raise ConfigError("seed.providers must be a list of non-empty strings")
    projects = doc.get("projects")
    if not isinstance(projects, list) or not projects:
        raise ConfigError("seed.projects must be a non-empty list")
    seen_projects = set()
    seen_secrets = set()
    out_projects = []
    for pindex, project in enumerate(projects):
        where = "projects[%d]" % pindex
        if not isinstance(project, dict):
            raise ConfigError("%s must be an object" % where)
        unknown = set(project) - set(("name", "project_id", "balance", "currency", "config", "users"))
        if unknown:
            raise ConfigError("%s has unknown fields: %s" % (where, ", ".join(sorted(unknown))))
        name = project.get("name")
        if not isinstance(name, str) or not name or name in seen_projects or name == "unauthenticated":
            raise ConfigError("%s.name must be a unique non-empty string (not 'unauthenticated')" % where)
        seen_projects.add(name)
        project_id = project.get("project_id", _stable_id("project", name))
        if not isinstance(project_id, str) or not project_id:
            raise ConfigError("%s.project_id must be a non-empty string" % where)
        bal = project.get("balance", balance)
        if not _is_number(bal):
            raise ConfigError("%s.balance must be a number" % where)
        currency = project.get("currency", CURRENCY)
        if not isinstance(currency, str):
            raise ConfigError("%s.currency must be a string" % where)
        raw_config = project["config"] if "config" in project else {}
        config = _seed_config(raw_config, name, project_id, now_iso, where)
        users = project.get("users", [])
        if not isinstance(users, list):
            raise ConfigError("%s.users must be a list" % where)
        out_users = []
        seen_users = set()
        for uindex, user in enumerate(users):
            uwhere = "%s.users[%d]" % (where, uindex)
            if not isinstance(user, dict):
                raise ConfigError("%s must be an object" % uwhere)
            unknown = set(user) - set(("name", "role", "keys"))
            if unknown:
                raise ConfigError("%s has unknown fields: %s" % (uwhere, ", ".join(sorted(unknown))))
            uname = user.get("name")
            if not isinstance(uname, str) or not uname or uname in seen_users:
                raise ConfigError("%s.name must be a unique non-empty string" % uwhere)
            seen_users.add(uname)
            role = user.get("role", "member")
            if role not in ("admin", "member"):
                raise ConfigError("%s.role must be 'admin' or 'member'" % uwhere)
            keys = user.get("keys", [])
            if not isinstance(keys, list):
                raise ConfigError("%s.keys must be a list" % uwhere)
            out_keys = []
            seen_keys = set()
            for kindex, key in enumerate(keys):
                kwhere = "%s.keys[%d]" % (uwhere, kindex)
                if not isinstance(key, dict):
                    raise ConfigError("%s must be an object" % kwhere)
                unknown = set(key) - set(("name", "secret", "secret_sha256", "is_management_key", "created_at"))
                if unknown:
                    raise ConfigError("%s has unknown fields: %s" % (kwhere, ", ".join(sorted(unknown))))
                kname = key.get("name")
                try:
                    _validate_key_name(kname)
                except SimError as exc:
                    raise ConfigError("%s: %s" % (kwhere, exc.message)) from None
                if kname in seen_keys:
                    raise ConfigError("%s: duplicate key name %r for this user" % (kwhere, kname))
                seen_keys.add(kname)
                if ("secret" in key) == ("secret_sha256" in key):
                    raise ConfigError("%s needs exactly one of 'secret' or 'secret_sha256'" % kwhere)
                if "secret" in key:
                    if not isinstance(key["secret"], str) or not key["secret"] or re.search(r"\s", key["secret"]):
                        raise ConfigError("%s.secret must be a non-empty string without whitespace" % kwhere)
                    digest = _hash_secret(key["secret"])
                else:
                    digest = key["secret_sha256"]
                    if not isinstance(digest, str) or not re.match(r"^[0-9a-f]{64}$", digest):
                        raise ConfigError("%s.secret_sha256 must be 64 lowercase hex digits" % kwhere)
                if digest in seen_secrets:
                    raise ConfigError("%s: secret is already used by another key" % kwhere)
                seen_secrets.add(digest)
                mgmt = key.get("is_management_key", False)
                created = key.get("created_at", int(now))
                if not isinstance(mgmt, bool) or not _is_int(created):
                    raise ConfigError("%s: is_management_key must be a boolean and created_at an integer" % kwhere)
                out_keys.append({"name": kname, "secret_sha256": digest, "is_management_key": mgmt, "created_at": created})
            out_users.append({"name": uname, "role": role, "keys": out_keys})
        out_projects.append({
            "name": name,
            "project_id": project_id,
            "balance": float(bal),
            "currency": currency,
            "config": config,
            "users": out_users,
        })
    return {"format": SEED_FORMAT, "providers": list(providers), "projects": out_projects}


# ---------------------------------------------------------------- configuration

def _bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("not a boolean: %r" % value)


def _methods(value):
    if value is None:
        return None
    if isinstance(value, str):
        value = [m for m in value.replace(",", " ").split() if m]
    return [str(m).upper() for m in value] or None


_OPTIONS = [
    # (name, flag, type, help)
    ("host", "--host", str, "address to bind (default 127.0.0.1)"),
    ("port", "--port", int, "port to bind, 0 picks a free one (default 8080)"),
    ("port_file", "--port-file", str, "write the bound port to this file once listening"),
    ("key", "--key", str, "admin management key secret of project 'default' (default sim-admin-key)"),
    ("projects", "--projects", int, "also create projects env01..envNN (default 0)"),
    ("seed_file", "--seed-file", str, "JSON seed replacing the generated tenants"),
    ("state_file", "--state-file", str, "load state from here if it exists; save after every applied write"),
    ("key_limit", "--key-limit", int, "max keys per user, management key included (default 20)"),
    ("balance", "--balance", float, "balance of generated projects in EUR (default 100.0)"),
    ("latency_ms", "--latency-ms", float, "added latency for every /v1 request in ms (default 0)"),
    ("fail_rate", "--fail-rate", float, "fraction 0..1 of /v1 requests answered with --fail-status"),
    ("fail_status", "--fail-status", int, "status used by --fail-rate/--fail-next (default 503)"),
    ("fail_methods", "--fail-methods", str, "comma-separated methods --fail-rate/--fail-next apply to (default all)"),
    ("fail_next", "--fail-next", int, "answer the next N /v1 requests with --fail-status"),
    ("rate_limit_rate", "--rate-limit-rate", float, "fraction 0..1 of /v1 requests answered 429"),
    ("rate_limit_next", "--rate-limit-next", int, "answer the next N /v1 requests 429"),
    ("retry_after", "--retry-after", int, "Retry-After seconds sent with 429 (default 1)"),
    ("lose_reply_rate", "--lose-reply-rate", float, "fraction 0..1 of requests applied but answered by closing the connection"),
    ("lose_reply_next", "--lose-reply-next", int, "lose the reply of the next N matching requests"),
    ("lose_reply_methods", "--lose-reply-methods", str, "comma-separated methods lost replies apply to (default POST)"),
    ("fault_seed", "--fault-seed", str, "seed for the fault randomness (reproducible runs)"),
    ("quiet", "--quiet", _bool, "do not log requests to stderr"),
]


def parse_config(argv=None, environ=None):
    """Build the configuration dict from command-line flags, SIM_* env vars and defaults."""
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="cortecs_sim.py", description="Offline simulator of the Cortecs Management API.")
    for name, flag, conv, text in _OPTIONS:
        env = "SIM_" + name.upper()
        default = DEFAULTS[name]
        raw = environ.get(env)
        if raw is not None and raw != "":
            try:
                default = conv(raw)
            except ValueError:
                raise ConfigError("invalid value for %s: %r" % (env, raw)) from None
        if conv is _bool:
            parser.add_argument(flag, dest=name, action="store_true", default=default, help=text + " [env %s]" % env)
        else:
            parser.add_argument(flag, dest=name, type=conv, default=default, help=text + " [env %s]" % env)
    return dict(vars(parser.parse_args(argv)))


def _full_config(config):
    merged = dict(DEFAULTS)
    if config is None:
        return merged
    if isinstance(config, argparse.Namespace):
        config = vars(config)
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise ConfigError("unknown configuration keys: %s" % ", ".join(sorted(unknown)))
    merged.update(config)
    return merged


def faults_from_config(config):
    """Translate the fault flags into a /_sim/faults document."""
    doc = {}
    if config["latency_ms"]:
        doc["latency_ms"] = config["latency_ms"]
    fail_methods = _methods(config["fail_methods"])
    lose_methods = _methods(config["lose_reply_methods"])
    if config["fail_next"]:
        doc["fail_next"] = {"count": config["fail_next"], "status": config["fail_status"], "methods": fail_methods}
    if config["fail_rate"]:
        doc["fail_rate"] = {"rate": config["fail_rate"], "status": config["fail_status"], "methods": fail_methods}
    if config["rate_limit_next"]:
        doc["rate_limit_next"] = {"count": config["rate_limit_next"], "retry_after": config["retry_after"]}
    if config["rate_limit_rate"]:
        doc["rate_limit_rate"] = {"rate": config["rate_limit_rate"], "retry_after": config["retry_after"]}
    if config["lose_reply_next"]:
        doc["lose_reply_next"] = {"count": config["lose_reply_next"], "methods": lose_methods}
    if config["lose_reply_rate"]:
        doc["lose_reply_rate"] = {"rate": config["lose_reply_rate"], "methods": lose_methods}
    return doc


_FAULT_FIELDS = {
    "fail_next": ("count", "status", "methods"),
    "fail_rate": ("rate", "status", "methods"),
    "rate_limit_next": ("count", "retry_after", "methods"),
    "rate_limit_rate": ("rate", "retry_after", "methods"),
    "lose_reply_next": ("count", "methods"),
    "lose_reply_rate": ("rate", "methods"),
}


def normalize_faults(doc):
    """Validate a fault document; raise ValueError with a readable message if invalid."""
    if not isinstance(doc, dict):
        raise ValueError("fault configuration must be a JSON object")
    unknown = set(doc) - set(_FAULT_FIELDS) - set(("latency_ms",))
    if unknown:
        raise ValueError("unknown fault kinds: %s" % ", ".join(sorted(unknown)))
    out = {}
    if "latency_ms" in doc and doc["latency_ms"] is not None:
        if not _is_number(doc["latency_ms"]) or doc["latency_ms"] < 0:
            raise ValueError("latency_ms must be a non-negative number")
        if doc["latency_ms"]:
            out["latency_ms"] = doc["latency_ms"]
    for kind, fields in _FAULT_FIELDS.items():
        spec = doc.get(kind)
        if spec is None:
            continue
        if not isinstance(spec, dict):
            raise ValueError("%s must be an object" % kind)
        unknown = set(spec) - set(fields)
        if unknown:
            raise ValueError("%s has unknown fields: %s" % (kind, ", ".join(sorted(unknown))))
        item = {}
        if "count" in fields:
            count = spec.get("count", 1)
            if not _is_int(count) or count < 0:
                raise ValueError("%s.count must be a non-negative integer" % kind)
            item["count"] = count
        if "rate" in fields:
            rate = spec.get("rate", 0)
            if not _is_number(rate) or rate < 0 or rate > 1:
                raise ValueError("%s.rate must be a number between 0 and 1" % kind)
            item["rate"] = rate
        if "status" in fields:
            status = spec.get("status", 503)
            if not _is_int(status) or status < 400 or status > 599:
                raise ValueError("%s.status must be an integer 400..599" % kind)
            item["status"] = status
        if "retry_after" in fields:
            retry = spec.get("retry_after", 1)
            if not _is_int(retry) or retry < 0:
                raise ValueError("%s.retry_after must be a non-negative integer" % kind)
            item["retry_after"] = retry
        methods = spec.get("methods", ["POST"] if kind.startswith("lose_reply") else None)
        if methods is not None:
            if not isinstance(methods, list) or not all(isinstance(m, str) and m for m in methods):
                raise ValueError("%s.methods must be a list of HTTP method names or null" % kind)
            methods = [m.upper() for m in methods]
        item["methods"] = methods
        if item.get("count", 1) and item.get("rate", 1):
            out[kind] = item
    return out


# ---------------------------------------------------------------- the simulator

class Simulator:
    """All state, counters and faults, guarded by one lock."""

    def __init__(self, config=None):
        self.config = _full_config(config)
        self.lock = threading.RLock()
        self.quiet = bool(self.config["quiet"])
        self.key_limit = int(self.config["key_limit"])
        self.state_file = self.config["state_file"]
        self.rng = random.Random(self.config["fault_seed"])
        now = time.time()
        if self.config["seed"] is not None:
            seed = self.config["seed"]
        elif self.config["seed_file"]:
            try:
                with open(self.config["seed_file"], "r", encoding="utf-8") as handle:
                    seed = json.load(handle)
            except (IOError, OSError, ValueError) as exc:
                raise ConfigError("cannot read seed file %s: %s" % (self.config["seed_file"], exc)) from exc
        else:
            seed = default_seed(self.config["key"], int(self.config["projects"]), self.config["balance"])
        self.initial = normalize_seed(seed, balance=self.config["balance"], now=now)
        loaded = None
        if self.state_file and os.path.exists(self.state_file):
            try:
                with open(self.state_file, "r", encoding="utf-8") as handle:
                    loaded = normalize_seed(json.load(handle), balance=self.config["balance"], now=now)
            except (IOError, OSError, ValueError) as exc:
                raise ConfigError("cannot read state file %s: %s" % (self.state_file, exc)) from exc
        self.providers = []
        self.projects = {}
        self.token_index = {}
        self._load(loaded or self.initial)
        try:
            self.startup_faults = normalize_faults(faults_from_config(self.config))
        except ValueError as exc:
            raise ConfigError("invalid fault flags: %s" % exc) from exc
        self.faults = copy.deepcopy(self.startup_faults)
        self.counters = None
        self.reset_counters()

    # -- state ------------------------------------------------------------
    def _load(self, doc):
        doc = copy.deepcopy(doc)
        self.providers = doc["providers"]
        self.projects = {}
        self.token_index = {}
        for project in doc["projects"]:
            users = {}
            for user in project["users"]:
                keys = {}
                for key in user["keys"]:
                    keys[key["name"]] = key
                    self.token_index[key["secret_sha256"]] = (project["name"], user["name"], key["name"])
                users[user["name"]] = {"name": user["name"], "role": user["role"], "keys": keys}
            project["users"] = users
            self.projects[project["name"]] = project

    def dump(self, with_hashes=True):
        """The state in seed format (secret hashes only; without_hashes for /_sim/state)."""
        projects = []
        for project in self.projects.values():
            users = []
            for user in project["users"].values():
                keys = []
                for key in user["keys"].values():
                    item = {"name": key["name"], "is_management_key": key["is_management_key"], "created_at": key["created_at"]}
                    if with_hashes:
                        item["secret_sha256"] = key["secret_sha256"]
                    keys.append(item)
                users.append({"name": user["name"], "role": user["role"], "keys": keys})
            projects.append({
                "name": project["name"],
                "project_id": project["project_id"],
                "balance": project["balance"],
                "currency": project["currency"],
                "config": copy.deepcopy(project["config"]),
                "users": users,
            })
        return {"format": SEED_FORMAT, "providers": list(self.providers), "projects": projects}

    def public_state(self):
        with self.lock:
            projects = {}
            for item in self.dump(with_hashes=False)["projects"]:
                name = item.pop("name")
                users = {}
                for user in item["users"]:
                    users[user.pop("name")] = dict(user, is_admin=user["role"] == "admin")
                item["users"] = users
                item["balance"] = {"current_balance": item["balance"], "currency": item.pop("currency")}
                projects[name] = item
            return {"providers": list(self.providers), "key_limit": self.key_limit, "projects": projects}

    def save(self):
        if self.state_file:
            _atomic_write(self.state_file, json.dumps(self.dump(), indent=2, sort_keys=True) + "\n")

    def reset(self):
        with self.lock:
            self._load(self.initial)
            self.faults = {}
            self.reset_counters()
            self.save()

    def set_balance(self, project, value):
        with self.lock:
            if project not in self.projects:
                raise SimError(404, "unknown project %r" % (project,))
            self.projects[project]["balance"] = float(value)
            self.save()

    def get_faults(self):
        with self.lock:
            return copy.deepcopy(self.faults)

    def set_faults(self, doc):
        faults = normalize_faults(doc)
        with self.lock:
            self.faults = faults

    # -- counters ---------------------------------------------------------
    def reset_counters(self):
        with self.lock:
            self.counters = {
                "total": {"reads": 0, "writes": 0},
                "by_route": {},
                "by_project": dict((name, {"reads": 0, "writes": 0}) for name in self.projects),
                "by_status": {},
            }
            self.counters["by_project"]["unauthenticated"] = {"reads": 0, "writes": 0}

    def get_counters(self):
        with self.lock:
            return copy.deepcopy(self.counters)

    def _count_request(self, method, path, project):
        kind = "reads" if method in READ_METHODS else "writes"
        self.counters["total"][kind] += 1
        route = method + " " + path
        self.counters["by_route"][route] = self.counters["by_route"].get(route, 0) + 1
        bucket = self.counters["by_project"].setdefault(project, {"reads": 0, "writes": 0})
        bucket[kind] += 1

    def _count_status(self, status):
        with self.lock:
            key = str(status)
            self.counters["by_status"][key] = self.counters["by_status"].get(key, 0) + 1

    # -- faults -----------------------------------------------------------
    def _applies(self, spec, method):
        return spec["methods"] is None or method in spec["methods"]

    def _take_next(self, kind, method):
        spec = self.faults.get(kind)
        if spec and spec["count"] > 0 and self._applies(spec, method):
            spec["count"] -= 1
            if not spec["count"]:
                del self.faults[kind]
            return spec
        return None

    def _take_rate(self, kind, method):
        spec = self.faults.get(kind)
        if spec and self._applies(spec, method) and self.rng.random() < spec["rate"]:
            return spec
        return None

    def _decide_faults(self, method):
        """Return (latency_seconds, SimError or None, lose_reply)."""
        latency = self.faults.get("latency_ms", 0) / 1000.0
        spec = self._take_next("rate_limit_next", method) or self._take_rate("rate_limit_rate", method)
        if spec:
            retry = spec["retry_after"]
            return latency, SimError(429, "Too many requests: rate limit exceeded, retry after %d second(s)" % retry,
                                     {"Retry-After": str(retry)}), False
        spec = self._take_next("fail_next", method) or self._take_rate("fail_rate", method)
        if spec:
            status = spec["status"]
            phrase = BaseHTTPRequestHandler.responses.get(status, ("Error",))[0]
            return latency, SimError(status, "Simulated fault: %s" % phrase), False
        lose = bool(self._take_next("lose_reply_next", method) or self._take_rate("lose_reply_rate", method))
        return latency, None, lose

    # -- the API ----------------------------------------------------------
    def handle_api(self, method, path, auth_headers, content_type, body):
        """Handle one /v1 request.

        Returns (status, payload, headers, lose_reply); lose_reply means the
        caller must close the connection without answering.
        """
        token = None
        if len(auth_headers) == 1:
            parts = auth_headers[0].split(" ")
            if len(parts) == 2 and parts[0] == "Bearer" and parts[1] and not re.search(r"\s", parts[1]):
                token = parts[1]
        with self.lock:
            ident = self.token_index.get(_hash_secret(token)) if token else None
            self._count_request(method, path, ident[0] if ident else "unauthenticated")
            latency, fault, lose = self._decide_faults(method)
        if latency:
            time.sleep(latency)
        if fault is not None:
            self._count_status(fault.status)
            return fault.status, {"error": fault.message}, fault.headers, False
        try:
            status, payload = self._dispatch(method, path, auth_headers, token, content_type, body)
            headers = {}
        except SimError as exc:
            status, payload, headers = exc.status, {"error": exc.message}, exc.headers
        self._count_status("no_reply" if lose else status)
        return status, payload, headers, lose

    def _dispatch(self, method, path, auth_headers, token, content_type, body):
        allowed = ROUTES.get(path)
        if allowed is None:
            raise SimError(404, "Not found: %s" % path)
        if method not in allowed:
            raise SimError(405, "Method %s not allowed for %s" % (method, path), {"Allow": ", ".join(allowed)})
        with self.lock:
            ctx = self._authenticate(auth_headers, token)
            handler = {
                ("GET", "/v1/manage/api-keys"): self._list_keys,
                ("POST", "/v1/manage/api-keys"): self._create_key,
                ("DELETE", "/v1/manage/api-keys"): self._delete_key,
                ("GET", "/v1/manage/project-configs"): self._get_config,
                ("PUT", "/v1/manage/project-configs"): self._put_config,
                ("GET", "/v1/manage/users/balance"): self._get_balance,
            }[(method, path)]
            return handler(ctx, lambda: _json_body(content_type, body))

    def _authenticate(self, auth_headers, token):
        if not auth_headers:
            raise SimError(401, "Missing Authorization header")
        if token is None:
            raise SimError(401, "Malformed Authorization header: expected 'Bearer <api key>'")
        ident = self.token_index.get(_hash_secret(token))
        if ident is None:
            raise SimError(401, "Invalid API key")
        project = self.projects[ident[0]]
        user = project["users"][ident[1]]
        key = user["keys"][ident[2]]
        if not key["is_management_key"]:
            raise SimError(403, "The provided API key is not a management key")
        return {"project": project, "user": user, "key": key}

    def _list_keys(self, ctx, _body):
        keys = [{"name": k["name"], "created_at": k["created_at"], "is_management_key": k["is_management_key"]}
                for k in ctx["user"]["keys"].values()]
        return 200, {"api_keys": keys}

    def _create_key(self, ctx, read_body):
        body = read_body()
        unknown = sorted(set(body) - set(("name", "is_management_key")))
        if unknown:
            raise SimError(400, "Unknown field(s): %s" % ", ".join(unknown))
        if "name" not in body:
            raise SimError(400, "Missing required field 'name'")
        name = body["name"]
        _validate_key_name(name)
        mgmt = body.get("is_management_key", False)
        if not isinstance(mgmt, bool):
            raise SimError(400, "'is_management_key' must be a boolean, got %s" % _type_name(mgmt))
        keys = ctx["user"]["keys"]
        if name in keys:
            raise SimError(400, "API key with name '%s' already exists" % name)
        if len(keys) >= self.key_limit:
            raise SimError(400, "API key limit reached (%d)" % self.key_limit)
        secret = "ck-" + secrets.token_urlsafe(32)
        digest = _hash_secret(secret)
        keys[name] = {"name": name, "secret_sha256": digest, "is_management_key": mgmt, "created_at": int(time.time())}
        self.token_index[digest] = (ctx["project"]["name"], ctx["user"]["name"], name)
        self.save()
        return 201, {"name": name, "is_management_key": mgmt, "api_key": secret}

    def _delete_key(self, ctx, read_body):
        body = read_body()
        unknown = sorted(set(body) - set(("name",)))
        if unknown:
            raise SimError(400, "Unknown field(s): %s" % ", ".join(unknown))
        if "name" not in body:
            raise SimError(400, "Missing required field 'name'")
        name = body["name"]
        if not isinstance(name, str) or not name:
            raise SimError(400, "'name' must be a non-empty string")
        keys = ctx["user"]["keys"]
        if name not in keys:
            raise SimError(404, "API key '%s' not found" % name)
        if name == ctx["key"]["name"]:
            raise SimError(400, "Cannot delete the API key '%s': it is in use for this request" % name)
        del self.token_index[keys[name]["secret_sha256"]]
        del keys[name]
        self.save()
        return 200, {"success": True, "deleted": name}

    def _get_config(self, ctx, _body):
        config = ctx["project"]["config"]
        if config is None:
            raise SimError(404, "Project configuration not found")
        return 200, copy.deepcopy(config)

    def _put_config(self, ctx, read_body):
        if ctx["user"]["role"] != "admin":
            raise SimError(403, "Forbidden: user is not a project admin")
        body = read_body()
        unknown = sorted(set(body) - set(("inference_config", "allow_overwrite", "created_at", "updated_at")))
        if unknown:
            raise SimError(400, "Unknown field(s): %s" % ", ".join(unknown))
        for field in ("inference_config", "created_at", "updated_at"):
            if field not in body:
                raise SimError(400, "Missing required field '%s'" % field)
        for field in ("created_at", "updated_at"):
            if parse_timestamp(body[field]) is None:
                raise SimError(400, "'%s' must be an RFC 3339 date-time string" % field)
        overwrite = body.get("allow_overwrite")
        if overwrite is not None and not isinstance(overwrite, bool):
            raise SimError(400, "'allow_overwrite' must be a boolean or null, got %s" % _type_name(overwrite))
        inference = self._validate_inference(body["inference_config"])
        config = ctx["project"]["config"]
        if config is None:
            raise SimError(404, "Project configuration not found")
        if body["created_at"] != config["created_at"] or body["updated_at"] != config["updated_at"]:
            raise SimError(400, "stale project configuration: the configuration was modified, re-read it "
                                "(created_at/updated_at do not match the stored values)")
        previous = parse_timestamp(config["updated_at"])
        now = datetime.datetime.now(datetime.timezone.utc)
        if now <= previous:
            now = previous + datetime.timedelta(microseconds=1)
        config["inference_config"] = inference
        if overwrite is not None:
            config["allow_overwrite"] = overwrite
        config["updated_at"] = format_timestamp(now)
        self.save()
        return 200, {"success": True}

    def _validate_inference(self, value):
        if not isinstance(value, dict):
            raise SimError(400, "'inference_config' must be an object, got %s" % _type_name(value))
        unknown = sorted(set(value) - set(INFERENCE_FIELDS))
        if unknown:
            raise SimError(400, "Unknown inference_config field(s): %s" % ", ".join(unknown))
        result = copy.deepcopy(RESET_INFERENCE_CONFIG)
        for field in BOOL_FIELDS:
            if field in value:
                if not isinstance(value[field], bool):
                    raise SimError(400, "inference_config.%s must be a boolean, got %s" % (field, _type_name(value[field])))
                result[field] = value[field]
        if "preference" in value:
            pref = value["preference"]
            if pref is not None and (not isinstance(pref, str) or pref not in PREFERENCES):
                raise SimError(400, "inference_config.preference must be one of %s or null" % ", ".join(PREFERENCES))
            result["preference"] = pref
        if "max_tokens" in value:
            tokens = value["max_tokens"]
            if tokens is not None and (not _is_int(tokens) or tokens < 1 or tokens > MAX_TOKENS_LIMIT):
                raise SimError(400, "inference_config.max_tokens must be an integer between 1 and %d, or null" % MAX_TOKENS_LIMIT)
            result["max_tokens"] = tokens
        if "allowed_providers" in value:
            providers = value["allowed_providers"]
            if not isinstance(providers, list) or not all(isinstance(p, str) for p in providers):
                raise SimError(400, "inference_config.allowed_providers must be a list of strings")
            if len(set(providers)) != len(providers):
                raise SimError(400, "inference_config.allowed_providers must not contain duplicates")
            unknown = [p for p in providers if p not in self.providers]
            if unknown:
                raise SimError(400, "Provider registry validation failed: unknown provider(s): %s" % ", ".join(unknown))
            result["allowed_providers"] = list(providers)
        return result

    def _get_balance(self, ctx, _body):
        return 200, {"current_balance": float(ctx["project"]["balance"]), "currency": ctx["project"]["currency"]}


def _json_body(content_type, body):
    media = (content_type or "").split(";")
    if media[0].strip().lower() != "application/json":
        raise SimError(400, "Content-Type must be application/json")
    for param in media[1:]:
        name, _sep, val = param.partition("=")
        if name.strip().lower() == "charset" and val.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise SimError(400, "Request body must be UTF-8 encoded JSON")
    if not body:
        raise SimError(400, "Request body must be a JSON object")
    try:
        data = parse_json(body)
    except ValueError as exc:
        raise SimError(400, "Invalid JSON body: %s" % exc) from None
    if not isinstance(data, dict):
        raise SimError(400, "Request body must be a JSON object, got %s" % _type_name(data))
    return data


# ---------------------------------------------------------------- HTTP layer

class _BodyError(Exception):
    pass


class SimHandler(BaseHTTPRequestHandler):
    """Maps HTTP requests onto the Simulator; every reply is JSON."""

    server_version = "CortecsSimulator/1.0"
    protocol_version = "HTTP/1.1"
    timeout = 120
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        if not self.server.sim.quiet:
            sys.stderr.write("%s - [%s] %s\n" % (self.address_string(), self.log_date_time_string(), format % args))

    def send_error(self, code, message=None, explain=None):
        self.close_connection = True
        if message is None:
            message = self.responses.get(code, ("Error",))[0]
        self._send_json(code, {"error": message})

    def _send_json(self, status, payload, headers=None):
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(data)

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise _BodyError("invalid chunked encoding") from None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise _BodyError("request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
        except ValueError:
            raise _BodyError("invalid Content-Length") from None
        if size < 0:
            raise _BodyError("invalid Content-Length")
        if size > MAX_BODY:
            raise _BodyError("request body too large")
        return self.rfile.read(size) if size else b""

    def _handle(self):
        sim = self.server.sim
        path = urlsplit(self.path).path
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            self._send_json(400, {"error": str(exc)})
            return
        try:
            if path == "/v1" or path.startswith("/v1/"):
                status, payload, headers, lose = sim.handle_api(
                    self.command, path, self.headers.get_all("Authorization") or [], self.headers.get("Content-Type"), body)
                if lose:
                    self.close_connection = True
                    return
                self._send_json(status, payload, headers)
            elif path.startswith("/_sim/"):
                status, payload, headers = self._side(sim, path, body)
                self._send_json(status, payload, headers)
            else:
                self._send_json(404, {"error": "Not found: %s" % path})
        except Exception as exc:  # pylint: disable=broad-exception-caught
            self.close_connection = True
            self._send_json(500, {"error": "Internal simulator error: %s" % exc})

    def _side(self, sim, path, body):
        allowed = SIDE_ROUTES.get(path)
        if allowed is None:
            return 404, {"error": "Not found: %s" % path}, {}
        if self.command not in allowed:
            return 405, {"error": "Method %s not allowed for %s" % (self.command, path)}, {"Allow": ", ".join(allowed)}
        if path == "/_sim/counters":
            return 200, sim.get_counters(), {}
        if path == "/_sim/reset-counters":
            sim.reset_counters()
            return 200, {"success": True}, {}
        if path == "/_sim/reset":
            sim.reset()
            return 200, {"success": True}, {}
        if path == "/_sim/state":
            return 200, sim.public_state(), {}
        if path == "/_sim/faults" and self.command == "GET":
            return 200, sim.get_faults(), {}
        try:
            doc = parse_json(body or b"{}")
        except ValueError as exc:
            return 400, {"error": "Invalid JSON body: %s" % exc}, {}
        if path == "/_sim/faults":
            try:
                sim.set_faults(doc)
            except ValueError as exc:
                return 400, {"error": str(exc)}, {}
            return 200, sim.get_faults(), {}
        # /_sim/balance
        if not isinstance(doc, dict) or set(doc) != set(("project", "current_balance")):
            return 400, {"error": "expected {\"project\": name, \"current_balance\": number}"}, {}
        if not isinstance(doc["project"], str) or not _is_number(doc["current_balance"]):
            return 400, {"error": "project must be a string and current_balance a number"}, {}
        try:
            sim.set_balance(doc["project"], doc["current_balance"])
        except SimError as exc:
            return exc.status, {"error": exc.message}, {}
        return 200, {"success": True, "project": doc["project"], "current_balance": float(doc["current_balance"])}, {}

    def __getattr__(self, name):
        # Every method (GET, PATCH, QUERY, ...) is routed through _handle, so
        # methods the API does not support get a JSON 405 instead of a 501.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)


class SimServer(ThreadingHTTPServer):
    """ThreadingHTTPServer carrying a Simulator in ``.sim``."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, sim, family=None):
        self.sim = sim
        if family is not None:
            self.address_family = family
        ThreadingHTTPServer.__init__(self, address, SimHandler)

    def server_bind(self):
        # HTTPServer.server_bind() calls socket.getfqdn(), which can block on DNS; not needed here.
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]

    @property
    def port(self):
        return self.server_address[1]

    @property
    def root_url(self):
        host = self.server_address[0]
        if ":" in host:
            host = "[%s]" % host
        return "http://%s:%d" % (host, self.port)

    @property
    def base_url(self):
        return self.root_url + "/v1"


def make_server(config=None):
    """Create (bind, not start) a simulator server.

    ``config`` is a dict (keys as in DEFAULTS, e.g. {"port": 0, "projects": 3,
    "seed": {...}}), an argparse Namespace, or None for the defaults.  Start it
    with ``threading.Thread(target=server.serve_forever, daemon=True).start()``
    and stop it with ``server.shutdown(); server.server_close()``.
    """
    sim = Simulator(config)
    host = sim.config["host"]
    if ":" in host:
        return SimServer((host, int(sim.config["port"])), sim, socket.AF_INET6)
    return SimServer((host, int(sim.config["port"])), sim)


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    try:
        config = parse_config(argv)
        server = make_server(config)
    except (ConfigError, OSError) as exc:
        sys.stderr.write("cortecs simulator: %s\n" % exc)
        return 2
    stop = threading.Event()

    def _on_signal(_signum, _frame):
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="cortecs-sim")
    thread.daemon = True
    thread.start()
    if config["port_file"]:
        _atomic_write(config["port_file"], "%d\n" % server.port)
    host = server.server_address[0]
    sys.stdout.write("cortecs simulator listening on http://%s:%d/v1\n" % ("[%s]" % host if ":" in host else host, server.port))
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
