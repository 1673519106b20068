#!/usr/bin/env python3
"""Validates a JSON array of OCSF Compliance Finding events (class 2003)
with the pinned PyPI package py-ocsf-models (0.10.0, OCSF 1.5.0).

Usage: ocsf_validate.py EVENTS.json. Exit 0 when every event is valid;
exit 1 naming the first problem.

The models ignore fields they do not know, so on top of a strict validation
this compares every key of the input with what the model kept (a typo such
as `severty_id` is then caught), and checks what the models leave as plain
integers: class, category and type ids, and times in milliseconds.
"""
import json
import sys

from pydantic import ValidationError
from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding

MIN_MS = 946_684_800_000  # 2000-01-01, in ms: a time in seconds is below it
MAX_MS = 4_102_444_800_000  # 2100-01-01


def unique_keys(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def unknown(given, kept, path="$"):
    """The first key of `given` the model did not keep, or a JSON boolean
    taken as a number (pydantic accepts true for 1 even when strict)."""
    if isinstance(given, bool) and not isinstance(kept, bool):
        return f"{path} is a boolean where a number is expected"
    if isinstance(given, dict) and isinstance(kept, dict):
        for key, value in given.items():
            if key not in kept:
                return f"unknown field {path}.{key}"
            found = unknown(value, kept[key], f"{path}.{key}")
            if found:
                return found
    elif isinstance(given, list) and isinstance(kept, list):
        for i, (g, k) in enumerate(zip(given, kept)):
            found = unknown(g, k, f"{path}[{i}]")
            if found:
                return found
    return None


def problem(event):
    if not isinstance(event, dict):
        return "not a JSON object"
    try:
        model = ComplianceFinding.model_validate_json(json.dumps(event), strict=True)
    except ValidationError as e:
        return str(e)
    found = unknown(event, model.model_dump(mode="json", exclude_unset=True))
    if found:
        return found
    for field in ("class_uid", "category_uid", "type_uid", "activity_id"):
        if field not in event:
            return f"missing {field}"
    if event["class_uid"] != 2003:
        return f"class_uid {event['class_uid']!r} is not 2003 (Compliance Finding)"
    if event["category_uid"] != 2:
        return f"category_uid {event['category_uid']!r} is not 2 (Findings)"
    if event["type_uid"] != event["class_uid"] * 100 + event["activity_id"]:
        return f"type_uid {event['type_uid']} is not class_uid * 100 + activity_id"
    for field in ("time", "start_time", "end_time"):
        t = event.get(field)
        if t is not None and not MIN_MS <= t < MAX_MS:
            return f"{field} {t} is not in epoch milliseconds"
    return None


def main(argv):
    if len(argv) != 2:
        print("usage: ocsf_validate.py EVENTS.json", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            events = json.load(f, object_pairs_hook=unique_keys)
    except (OSError, ValueError) as e:
        print(f"{argv[1]}: {e}")
        return 1
    if not isinstance(events, list):
        print(f"{argv[1]}: not a JSON array")
        return 1
    for i, event in enumerate(events):
        found = problem(event)
        if found:
            print(f"{argv[1]}: event {i}: {found}")
            return 1
    print(f"{argv[1]}: {len(events)} valid Compliance Finding events")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
