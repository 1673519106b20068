"""moto server (5.2.5) with the patches compliance-rs needs to test against
real AWS behaviour. It serves moto's own WSGI app and changes only what is
listed here; everything else is moto as released.

Patches (each is a difference between moto 5.2.5 and AWS):
  1. IAM ListUsers pages: MaxItems (default 100, as AWS) and Marker are
     honoured, with IsTruncated; moto returns every user at once.
  2. IAM GetCredentialReport: a `<root_account>` row is added (moto has
     none), and tests may set per-user fields that moto cannot produce
     (password_last_used, *_last_used_date, user_creation_time, ...) through
     POST /_compliance/credential-report {"users": {name: {column: value}},
     "root": {column: value}}. moto never sets PasswordLastUsed and dates
     cannot be back-dated.
  3. AWS Config GetComplianceDetailsByConfigRule (HTTP 500 in moto) is
     answered from stored evaluations, paged by Limit/NextToken; evaluations
     are stored by PutEvaluations (which moto ignores outside TestMode; here
     the ResultToken names the rule) or by POST /_compliance/config-evaluations
     {"rule": name, "region": r, "results": [...]}. Unknown rules answer
     NoSuchConfigRuleException, as AWS does.
  4. S3 GetBucketVersioning answers with the XML root AWS uses,
     <VersioningConfiguration>; moto's <GetBucketVersioningResponse> is
     rejected by the Rust SDK.
  5. Every request is counted per service and action:
     GET /_compliance/calls, POST /_compliance/calls/reset.
  6. POST /_compliance/reset clears moto (like /moto-api/reset) and the
     state of these patches.
  7. Fault injection, for tests of retries and gaps (not an AWS difference):
     POST /_compliance/faults {"every": N, "status": 500|429|503,
     "delay_ms": D, "services": ["iam", ...]} answers every Nth AWS call
     (of those services, or all) with that status and AWS's error body
     (InternalError, Throttling, ServiceUnavailable), after waiting D ms;
     {"every": 0} turns it off. GET /_compliance/faults counts the faults.
     {"latency_ms": L} delays every AWS call by L ms (a network round trip,
     as against AWS; moto answers on loopback in a few ms).
  8. AWS Config conformance packs (moto has none): DescribeConformancePacks
     and DescribeConformancePackCompliance (each rule's compliance, from
     the evaluations of patch 3, and its `Controls`), each paged by
     Limit/NextToken as AWS does. A pack is made by POST
     /_compliance/conformance-packs {"name": pack, "region": r, "rules":
     [{"rule": name, "controls": [..]}]} over rules that exist (moto cannot
     deploy a pack's template). Unknown packs answer
     NoSuchConformancePackException.
  9. Smaller pages, so that tests reach every page (not an AWS difference):
     POST /_compliance/page-sizes {"Action": n} caps the page size of those
     actions of patch 8.

  10. STS AssumeRole refuses the roles named by POST /_compliance/refuse-roles
      {"roles": [arn, ...]} with AccessDenied, as AWS does when a role's
      trust policy does not name the caller (moto enforces no trust policy).
  11. AWS Account ListRegions (moto has none): the regions of the calling
      account with their RegionOptStatus, paged; an account's enabled
      regions are set by POST /_compliance/regions {"account": id,
      "enabled": [...]} (default: the 17 regions AWS enables by default).

  12. A region an account has not enabled (once patch 11 sets its
      regions) answers its regional services (AWS Config, CloudTrail) with
      UnrecognizedClientException, as AWS answers credentials used in a
      disabled opt-in region.

  13. AWS Config aggregators (moto stores them but answers no compliance):
      DescribeAggregateComplianceByConfigRules (per rule, account and
      region, from the evaluations of patch 3 in the aggregator's accounts
      and regions, every account for an organization aggregator) and
      GetAggregateComplianceDetailsByConfigRule, paged by Limit/NextToken.
      An unknown aggregator answers NoSuchConfigurationAggregatorException.

  14. Short-lived credentials: POST /_compliance/credential-lifetime
      {"seconds": N} makes AssumeRole's credentials expire N seconds after
      they are issued (AWS's minimum is 900 s; moto gives 12 h), so a test
      sees a client renew them during one scan. moto checks no expiry.

Patches 2, 3 and 8 act in the account of the request's credentials (an
assumed role's account, as moto maps it), so tests can seed many accounts;
their control endpoints take "account" (default 123456789012). Patch 9
also caps MaxResults of JSON-protocol actions moto pages itself
(organizations:ListAccounts).

Patch 7 also answers 403 AccessDenied ({"status": 403}), and can be limited
to actions ({"actions": ["s3control:GetPublicAccessBlock"]}), for tests of
denied calls through the real SDK. Calls are counted and faulted by
`service:Action`; S3 Control calls (signed as `s3`, path `/v20180820/`) count
as `s3control:<Action>`.

S3 Control needs no server patch: moto routes `/v20180820/` to it. The SDK
puts the account id in the host name (`123456789012.127.0.0.1`), which the
client resolves (`compliance_aws::endpoint`), as it would for any endpoint
given as an address.

Run: python patched_moto.py --host 127.0.0.1 --port 5000
"""

import argparse
import base64
import csv
import io
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
import zlib
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server

IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
ET.register_namespace("", IAM_NS)
ACCOUNT = "123456789012"
CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/")
# The regions AWS enables by default (opt-in regions are not).
DEFAULT_REGIONS = ["ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1", "ap-southeast-1", "ap-southeast-2",
                   "ca-central-1", "eu-central-1", "eu-north-1", "eu-west-1", "eu-west-2", "eu-west-3", "sa-east-1",
                   "us-east-1", "us-east-2", "us-west-1", "us-west-2"]
OPT_IN_REGIONS = ["af-south-1", "ap-east-1", "eu-south-1", "me-south-1"]

lock = threading.Lock()
state = {"calls": {}, "report_users": {}, "report_root": {}, "evaluations": {}, "packs": {}, "page_sizes": {},
         "refused_roles": set(), "regions": {}, "lifetime": None, "faults": None, "seen": 0, "injected": 0}


def reset_state():
    with lock:
        state["calls"] = {}
        state["report_users"] = {}
        state["report_root"] = {}
        state["evaluations"] = {}
        state["packs"] = {}
        state["page_sizes"] = {}
        state["refused_roles"] = set()
        state["regions"] = {}
        state["lifetime"] = None
        state["faults"] = None
        state["seen"] = 0
        state["injected"] = 0


FAULT_CODES = {403: ("AccessDenied", "Access Denied"),
               500: ("InternalError", "We encountered an internal error. Please try again."),
               429: ("Throttling", "Rate exceeded"),
               503: ("ServiceUnavailable", "Service is unable to handle request.")}


def injected_fault(start_response, service, action):
    """The fault for this call, if patch 7 says so: an AWS error in the
    service's protocol (XML for query and REST services, JSON for JSON ones)."""
    with lock:
        latency = (state["faults"] or {}).get("latency_ms", 0)
    if latency:
        time.sleep(latency / 1000)
    with lock:
        faults = state["faults"]
        if not faults or faults.get("every", 0) <= 0:
            return None
        if faults.get("services") and service not in faults["services"]:
            return None
        if faults.get("actions") and f"{service}:{action}" not in faults["actions"]:
            return None
        state["seen"] += 1
        if state["seen"] % faults["every"] != 0:
            return None
        state["injected"] += 1
    time.sleep(faults.get("delay_ms", 0) / 1000)
    status = int(faults.get("status", 500))
    code, message = FAULT_CODES.get(status, FAULT_CODES[500])
    reason = {403: "Forbidden", 500: "Internal Server Error", 429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "Error")
    if service in ("config", "cloudtrail", "organizations", "account"):
        return aws_json_error(start_response, code, message, f"{status} {reason}")
    body = (f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>fault</RequestId></ErrorResponse>").encode()
    if service == "s3control":
        body = f"<ErrorResponse><Error><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>".encode()
    if service == "s3":
        body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault</RequestId></Error>".encode()
    return respond(start_response, f"{status} {reason}", [("Content-Type", "text/xml")], body)


def scope(environ):
    match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    return (match.group(2), match.group(3)) if match else ("us-east-1", "unknown")


def account_of(environ):
    """The account of the request's credentials: an assumed role's, as moto maps its access key."""
    match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return ACCOUNT
    from moto.iam.models import get_account_id_from

    return get_account_id_from(match.group(1))


def read_body(environ):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def call_inner(app, environ):
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"] = status
        captured["headers"] = headers

    chunks = app(environ, start_response)
    body = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return captured["status"], captured["headers"], body


def respond(start_response, status, headers, body):
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(body))))
    start_response(status, headers)
    return [body]


def json_response(start_response, status, payload, content_type="application/json"):
    body = json.dumps(payload).encode()
    return respond(start_response, status, [("Content-Type", content_type)], body)


def aws_json_error(start_response, code, message, status="400 Bad Request"):
    return json_response(start_response, status, {"__type": code, "message": message}, "application/x-amz-json-1.1")


# ---- patch 1: IAM ListUsers paging ----
def page_list_users(params, body):
    root = ET.fromstring(body)
    users = root.find(f"{{{IAM_NS}}}ListUsersResult/{{{IAM_NS}}}Users")
    truncated = root.find(f"{{{IAM_NS}}}ListUsersResult/{{{IAM_NS}}}IsTruncated")
    if users is None or truncated is None:
        return body
    members = list(users)
    members.sort(key=lambda m: m.findtext(f"{{{IAM_NS}}}UserName") or "")
    start = int(params.get("Marker", ["0"])[0] or 0)
    size = int(params.get("MaxItems", ["100"])[0] or 100)
    page = members[start : start + size]
    for m in list(users):
        users.remove(m)
    for m in page:
        users.append(m)
    more = start + size < len(members)
    truncated.text = "true" if more else "false"
    result = root.find(f"{{{IAM_NS}}}ListUsersResult")
    if more:
        marker = ET.SubElement(result, f"{{{IAM_NS}}}Marker")
        marker.text = str(start + size)
    return b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root)


# ---- patch 2: credential report ----
def patch_credential_report(body, account):
    root = ET.fromstring(body)
    content = root.find(f"{{{IAM_NS}}}GetCredentialReportResult/{{{IAM_NS}}}Content")
    if content is None or not content.text:
        return body
    text = base64.b64decode(content.text).decode()
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    columns = list(reader.fieldnames or [])
    if not columns:
        return body
    with lock:
        users = dict(state["report_users"])
        root_fields = dict(state["report_root"])
    root_row = {c: "N/A" for c in columns}
    root_row.update(
        {
            "user": "<root_account>",
            "arn": f"arn:aws:iam::{account}:root",
            "user_creation_time": "2020-01-01T00:00:00+00:00",
            "password_enabled": "not_supported",
            "password_last_used": "no_information",
            "password_next_rotation": "not_supported",
            "mfa_active": "true",
            "access_key_1_active": "false",
            "access_key_2_active": "false",
            "cert_1_active": "false",
            "cert_2_active": "false",
        }
    )
    root_row.update(root_fields)
    out_rows = [root_row]
    for row in rows:
        row.update(users.get(row["user"], {}))
        out_rows.append(row)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(out_rows)
    content.text = base64.b64encode(buffer.getvalue().encode()).decode()
    return b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root)


# ---- patch 3: AWS Config compliance details ----
def config_rule_exists(account, region, name):
    from moto.config.models import config_backends

    return name in config_backends[account][region].config_rules


def store_evaluations(account, region, rule, results):
    now = time.time()
    with lock:
        stored = state["evaluations"].setdefault((account, region, rule), {})
        for r in results:
            # PutEvaluations names them ComplianceResource*; the control endpoint, Resource*.
            resource_type = r.get("ComplianceResourceType") or r["ResourceType"]
            resource_id = r.get("ComplianceResourceId") or r["ResourceId"]
            key = (resource_type, resource_id)
            stored[key] = {
                "EvaluationResultIdentifier": {
                    "EvaluationResultQualifier": {
                        "ConfigRuleName": rule,
                        "ResourceType": resource_type,
                        "ResourceId": resource_id,
                    },
                    "OrderingTimestamp": r.get("OrderingTimestamp", now),
                },
                "ComplianceType": r["ComplianceType"],
                "ResultRecordedTime": now,
                "ConfigRuleInvokedTime": now,
                **({"Annotation": r["Annotation"]} if r.get("Annotation") else {}),
            }


def compliance_details(start_response, account, region, request):
    rule = request.get("ConfigRuleName", "")
    if not config_rule_exists(account, region, rule):
        return aws_json_error(start_response, "NoSuchConfigRuleException", f"The ConfigRule '{rule}' provided in the request is invalid.")
    wanted = set(request.get("ComplianceTypes") or [])
    with lock:
        results = list(state["evaluations"].get((account, region, rule), {}).values())
    results.sort(key=lambda r: (r["EvaluationResultIdentifier"]["EvaluationResultQualifier"]["ResourceType"], r["EvaluationResultIdentifier"]["EvaluationResultQualifier"]["ResourceId"]))
    if wanted:
        results = [r for r in results if r["ComplianceType"] in wanted]
    limit = int(request.get("Limit") or 100)
    start = int(request.get("NextToken") or 0)
    page = {"EvaluationResults": results[start : start + limit]}
    if start + limit < len(results):
        page["NextToken"] = str(start + limit)
    return json_response(start_response, "200 OK", page, "application/x-amz-json-1.1")


# ---- patch 8: conformance packs ----
def page_of(action, items, request, default_limit):
    with lock:
        cap = state["page_sizes"].get(action)
    limit = int(request.get("Limit") or default_limit)
    if cap:
        limit = min(limit, int(cap))
    try:
        start = int(request.get("NextToken") or 0)
    except ValueError:
        return None, None
    page = items[start : start + limit]
    return page, (str(start + limit) if start + limit < len(items) else None)


def pack_arn(account, region, name):
    return f"arn:aws:config:{region}:{account}:conformance-pack/{name}/conformance-pack-{zlib.crc32(name.encode()) % 10**6:06d}"


def rule_evaluations(account, region, rule):
    with lock:
        results = list(state["evaluations"].get((account, region, rule), {}).values())
    results.sort(key=lambda r: (r["EvaluationResultIdentifier"]["EvaluationResultQualifier"]["ResourceType"], r["EvaluationResultIdentifier"]["EvaluationResultQualifier"]["ResourceId"]))
    return results


def rule_compliance(account, region, rule):
    kinds = {r["ComplianceType"] for r in rule_evaluations(account, region, rule)}
    if "NON_COMPLIANT" in kinds:
        return "NON_COMPLIANT"
    if "COMPLIANT" in kinds:
        return "COMPLIANT"
    return "INSUFFICIENT_DATA"


def conformance(start_response, account, region, action, request):
    if action == "DescribeConformancePacks":
        with lock:
            packs = sorted((name, pack) for (a, r, name), pack in state["packs"].items() if (a, r) == (account, region))
        wanted = request.get("ConformancePackNames") or []
        for name in wanted:
            if name not in dict(packs):
                return aws_json_error(start_response, "NoSuchConformancePackException", f"Conformance pack {name} does not exist.")
        if wanted:
            packs = [p for p in packs if p[0] in wanted]
        page, token = page_of(action, packs, request, 20)
        if page is None:
            return aws_json_error(start_response, "InvalidNextTokenException", "The specified next token is invalid.")
        details = [{"ConformancePackName": name, "ConformancePackArn": pack_arn(account, region, name),
                    "ConformancePackId": f"conformance-pack-{zlib.crc32(name.encode()) % 10**6:06d}",
                    "ConformancePackInputParameters": [], "LastUpdateRequestedTime": pack["created"]}
                   for name, pack in page]
        return json_response(start_response, "200 OK", {"ConformancePackDetails": details, **({"NextToken": token} if token else {})}, "application/x-amz-json-1.1")
    name = request.get("ConformancePackName", "")
    with lock:
        pack = state["packs"].get((account, region, name))
    if pack is None:
        return aws_json_error(start_response, "NoSuchConformancePackException", f"Conformance pack {name} does not exist.")
    filters = request.get("Filters") or {}
    rules = [r for r in pack["rules"] if not filters.get("ConfigRuleNames") or r["rule"] in filters["ConfigRuleNames"]]
    # DescribeConformancePackCompliance
    listed = [{"ConfigRuleName": r["rule"], "ComplianceType": rule_compliance(account, region, r["rule"]), "Controls": r.get("controls", [])} for r in rules]
    if filters.get("ComplianceType"):
        listed = [r for r in listed if r["ComplianceType"] == filters["ComplianceType"]]
    page, token = page_of(action, listed, request, 1000)
    if page is None:
        return aws_json_error(start_response, "InvalidNextTokenException", "The specified next token is invalid.")
    return json_response(start_response, "200 OK", {"ConformancePackName": name, "ConformancePackRuleComplianceList": page, **({"NextToken": token} if token else {})}, "application/x-amz-json-1.1")


# ---- patch 13: aggregators ----
def aggregate(start_response, account, region, action, request):
    from moto.config.models import config_backends

    name = request.get("ConfigurationAggregatorName", "")
    aggregator = config_backends[account][region].config_aggregators.get(name)
    if aggregator is None:
        return aws_json_error(start_response, "NoSuchConfigurationAggregatorException",
                              f"The configuration aggregator does not exist: {name}")
    sources = aggregator.account_aggregation_sources or []

    def covered(acct, reg):
        if aggregator.organization_aggregation_source is not None:
            source = aggregator.organization_aggregation_source
            return source.all_aws_regions or reg in (source.aws_regions or [])
        for s in sources:
            if acct in s.account_ids and (s.all_aws_regions or reg in (s.aws_regions or [])):
                return True
        return False

    with lock:
        keys = sorted(k for k in state["evaluations"] if covered(k[0], k[1]))
    if action == "DescribeAggregateComplianceByConfigRules":
        rows = []
        for acct, reg, rule in keys:
            results = rule_evaluations(acct, reg, rule)
            failing = sum(1 for r in results if r["ComplianceType"] == "NON_COMPLIANT")
            compliance = rule_compliance(acct, reg, rule)
            summary = {"ComplianceType": compliance}
            if failing:
                summary["ComplianceContributorCount"] = {"CappedCount": min(failing, 100), "CapExceeded": failing > 100}
            rows.append({"ConfigRuleName": rule, "Compliance": summary, "AccountId": acct, "AwsRegion": reg})
        page, token = page_of(action, rows, request, 1000)
        if page is None:
            return aws_json_error(start_response, "InvalidNextTokenException", "The specified next token is invalid.")
        return json_response(start_response, "200 OK", {"AggregateComplianceByConfigRules": page, **({"NextToken": token} if token else {})}, "application/x-amz-json-1.1")
    acct, reg, rule = request.get("AccountId", ""), request.get("AwsRegion", ""), request.get("ConfigRuleName", "")
    if (acct, reg, rule) not in keys:
        return aws_json_error(start_response, "NoSuchConfigRuleException", f"The ConfigRule '{rule}' provided in the request is invalid.")
    results = [dict(r, AccountId=acct, AwsRegion=reg) for r in rule_evaluations(acct, reg, rule)]
    if request.get("ComplianceType"):
        results = [r for r in results if r["ComplianceType"] == request["ComplianceType"]]
    page, token = page_of(action, results, request, 100)
    if page is None:
        return aws_json_error(start_response, "InvalidNextTokenException", "The specified next token is invalid.")
    return json_response(start_response, "200 OK", {"AggregateEvaluationResults": page, **({"NextToken": token} if token else {})}, "application/x-amz-json-1.1")


# ---- patch 10: refused roles ----
def refused_role(start_response, body):
    role = parse_qs(body.decode(errors="replace")).get("RoleArn", [""])[0]
    with lock:
        refused = role in state["refused_roles"]
    if not refused:
        return None
    message = f"User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: sts:AssumeRole on resource: {role}"
    body = (f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code>'
            f"<Message>{message}</Message></Error><RequestId>refused</RequestId></ErrorResponse>").encode()
    return respond(start_response, "403 Forbidden", [("Content-Type", "text/xml")], body)


# ---- patch 11: account:ListRegions ----
def list_regions(start_response, account, request):
    with lock:
        enabled = state["regions"].get(account)
    enabled = set(DEFAULT_REGIONS if enabled is None else enabled)
    regions = []
    for name in sorted(set(DEFAULT_REGIONS) | set(OPT_IN_REGIONS) | enabled):
        if name in enabled:
            status = "ENABLED_BY_DEFAULT" if name in DEFAULT_REGIONS else "ENABLED"
        else:
            status = "DISABLED"
        regions.append({"RegionName": name, "RegionOptStatus": status})
    wanted = request.get("RegionOptStatusContains") or []
    if wanted:
        regions = [r for r in regions if r["RegionOptStatus"] in wanted]
    page, token = page_of("ListRegions", regions, request, 20)
    if page is None:
        return json_response(start_response, "400 Bad Request", {"message": "invalid NextToken"})
    return json_response(start_response, "200 OK", {"Regions": page, **({"NextToken": token} if token else {})})


def make_app():
    inner = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ["REQUEST_METHOD"]
        if path.startswith("/_compliance/"):
            return control(environ, start_response, path, method)
        region, service = scope(environ)
        body = read_body(environ)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        query = environ.get("QUERY_STRING", "")
        params = parse_qs(body.decode(errors="replace")) if service in ("iam", "sts") else {}
        if path.startswith("/v20180820/"):
            # S3 Control, signed as s3: named by its API action.
            service = "s3control"
            resource = path.rstrip("/").split("/")[-1]
            verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "POST": "Create"}.get(method, method)
            action = verb + resource[:1].upper() + resource[1:]
        elif target:
            action = target.split(".")[-1]
        elif "Action" in params:
            action = params["Action"][0]
        else:
            sub = query.split("=")[0].split("&")[0]
            action = f"{method} {'bucket' if path.strip('/').count('/') == 0 else 'object'}{('?' + sub) if sub else ''}"
        with lock:
            key = f"{service}:{action}"
            state["calls"][key] = state["calls"].get(key, 0) + 1
        fault = injected_fault(start_response, service, action)
        if fault is not None:
            return fault

        account = account_of(environ)
        with lock:
            enabled = state["regions"].get(account)
        if enabled is not None and region not in enabled and service in ("config", "cloudtrail"):
            return aws_json_error(start_response, "UnrecognizedClientException", "The security token included in the request is invalid.")
        if service == "config" and action in ("DescribeConformancePacks", "DescribeConformancePackCompliance"):
            return conformance(start_response, account, region, action, json.loads(body or b"{}"))
        if service == "config" and action in ("DescribeAggregateComplianceByConfigRules", "GetAggregateComplianceDetailsByConfigRule"):
            return aggregate(start_response, account, region, action, json.loads(body or b"{}"))
        if service == "config" and action == "GetComplianceDetailsByConfigRule":
            return compliance_details(start_response, account, region, json.loads(body or b"{}"))
        if service == "sts" and action == "AssumeRole":
            refused = refused_role(start_response, body)
            if refused is not None:
                return refused
        if service == "account" and path.rstrip("/") == "/listRegions":
            return list_regions(start_response, account, json.loads(body or b"{}"))
        with lock:
            cap = state["page_sizes"].get(action)
        if cap and target and body:
            # Patch 9 for actions moto pages itself: a smaller MaxResults.
            request = json.loads(body)
            request["MaxResults"] = min(int(request.get("MaxResults") or cap), int(cap))
            body = json.dumps(request).encode()
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        if service == "config" and action == "PutEvaluations":
            request = json.loads(body or b"{}")
            if not request.get("TestMode"):
                rule = request.get("ResultToken", "")
                if not config_rule_exists(account, region, rule):
                    return aws_json_error(start_response, "InvalidResultTokenException", "The ResultToken does not name a rule.")
                store_evaluations(account, region, rule, request.get("Evaluations", []))
                return json_response(start_response, "200 OK", {"FailedEvaluations": []}, "application/x-amz-json-1.1")

        status, headers, out = call_inner(inner, environ)
        if not status.startswith("200"):
            return respond(start_response, status, headers, out)
        if service == "iam" and action == "ListUsers":
            out = page_list_users(params, out)
        elif service == "sts" and action == "AssumeRole":
            with lock:
                lifetime = state["lifetime"]
            if lifetime:
                expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + lifetime))
                out = re.sub(rb"<Expiration>[^<]*</Expiration>", f"<Expiration>{expires}</Expiration>".encode(), out)
        elif service == "iam" and action == "GetCredentialReport":
            out = patch_credential_report(out, account)
        elif service == "s3" and method == "GET" and query.split("&")[0] in ("versioning", "versioning="):
            out = out.replace(b"<GetBucketVersioningResponse", b"<VersioningConfiguration").replace(
                b"</GetBucketVersioningResponse>", b"</VersioningConfiguration>"
            )
        return respond(start_response, status, headers, out)

    def control(environ, start_response, path, method):
        body = read_body(environ)
        payload = json.loads(body) if body else {}
        if path == "/_compliance/health":
            return json_response(start_response, "200 OK", {"status": "ok"})
        if path == "/_compliance/calls" and method == "GET":
            with lock:
                return json_response(start_response, "200 OK", dict(state["calls"]))
        if path == "/_compliance/calls/reset":
            with lock:
                state["calls"] = {}
            return json_response(start_response, "200 OK", {"status": "ok"})
        if path == "/_compliance/reset":
            from moto.core.models import reset_model_data
            reset_model_data()
            reset_state()
            return json_response(start_response, "200 OK", {"status": "ok"})
        if path == "/_compliance/faults":
            with lock:
                if method == "POST":
                    state["faults"] = payload
                    state["seen"] = 0
                    state["injected"] = 0
                return json_response(start_response, "200 OK", {"injected": state["injected"], "seen": state["seen"]})
        if path == "/_compliance/credential-report":
            with lock:
                for name, fields in payload.get("users", {}).items():
                    state["report_users"].setdefault(name, {}).update(fields)
                state["report_root"].update(payload.get("root", {}))
            return json_response(start_response, "200 OK", {"status": "ok"})
        if path == "/_compliance/conformance-packs":
            region = payload.get("region", "us-east-1")
            account = payload.get("account", ACCOUNT)
            for r in payload.get("rules", []):
                if not config_rule_exists(account, region, r["rule"]):
                    return json_response(start_response, "400 Bad Request", {"error": f"no rule {r['rule']} in {account} {region}"})
            with lock:
                state["packs"][(account, region, payload["name"])] = {"rules": payload.get("rules", []), "created": time.time()}
            return json_response(start_response, "200 OK", {"status": "ok"})
        if path == "/_compliance/refuse-roles":
            with lock:
                state["refused_roles"].update(payload.get("roles", []))
            return json_response(start_response, "200 OK", {"status": "ok"})
        if path == "/_compliance/credential-lifetime":
            with lock:
                state["lifetime"] = payload.get("seconds")
            return json_response(start_response, "200 OK", {"status": "ok"})
        if path == "/_compliance/regions":
            with lock:
                state["regions"][payload.get("account", ACCOUNT)] = list(payload.get("enabled", []))
            return json_response(start_response, "200 OK", {"status": "ok"})
        if path == "/_compliance/page-sizes":
            with lock:
                state["page_sizes"].update(payload)
            return json_response(start_response, "200 OK", {"status": "ok"})
        if path == "/_compliance/config-evaluations":
            region = payload.get("region", "us-east-1")
            account = payload.get("account", ACCOUNT)
            if not config_rule_exists(account, region, payload["rule"]):
                return json_response(start_response, "400 Bad Request", {"error": f"no rule {payload['rule']} in {account} {region}"})
            store_evaluations(account, region, payload["rule"], payload.get("results", []))
            return json_response(start_response, "200 OK", {"status": "ok"})
        return json_response(start_response, "404 Not Found", {"error": f"unknown control path {path}"})

    return app


class QuietHandler(WSGIRequestHandler):
    """No line per request: tests and CI logs stay readable."""

    def log_request(self, code="-", size="-"):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    server = make_server(args.host, args.port, make_app(), threaded=True, request_handler=QuietHandler)
    print(f"patched moto listening on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
