"""Seeds a patched moto server (compliance-test-support/moto/patched_moto.py)
with an AWS Organization to try fleet scans on: the management account and
N-1 member accounts, each with IAM users, S3 buckets and an AWS Config rule
with results in each region given. Prints the account ids.

Run with the moto virtual environment's Python (boto3 comes with moto):
  ~/.cache/compliance-rs/moto-venv/bin/python scripts/moto-organization.py \
      --endpoint http://127.0.0.1:5000 --accounts 4 --regions eu-west-1,us-east-1
"""

import argparse
import json
import urllib.request

import boto3

ROLE = "ComplianceAudit"


def client(service, endpoint, region, credentials=None):
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    if credentials:
        keys = {"aws_access_key_id": credentials["AccessKeyId"], "aws_secret_access_key": credentials["SecretAccessKey"],
                "aws_session_token": credentials["SessionToken"]}
    return boto3.client(service, endpoint_url=endpoint, region_name=region, **keys)


def control(endpoint, path, payload):
    request = urllib.request.Request(endpoint + path, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="http://127.0.0.1:5000")
    parser.add_argument("--accounts", type=int, default=4, help="accounts in all, the management account included")
    parser.add_argument("--regions", default="eu-west-1,us-east-1")
    parser.add_argument("--users", type=int, default=3, help="IAM users per account")
    parser.add_argument("--buckets", type=int, default=2, help="S3 buckets per account")
    args = parser.parse_args()
    regions = [r for r in args.regions.split(",") if r]

    org = client("organizations", args.endpoint, "us-east-1")
    org.create_organization(FeatureSet="ALL")
    accounts = ["123456789012"]
    for n in range(1, args.accounts):
        created = org.create_account(AccountName=f"team-{n:02d}", Email=f"team-{n:02d}@example.com")
        accounts.append(created["CreateAccountStatus"]["AccountId"])

    sts = client("sts", args.endpoint, "us-east-1")
    for account in accounts:
        role = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}", RoleSessionName="seed")["Credentials"]
        iam = client("iam", args.endpoint, "us-east-1", role)
        for u in range(args.users):
            iam.create_user(UserName=f"user-{u:03d}")
        s3 = client("s3", args.endpoint, "us-east-1", role)
        for b in range(args.buckets):
            s3.create_bucket(Bucket=f"data-{account}-{b}")
        for region in regions:
            config = client("config", args.endpoint, region, role)
            config.put_config_rule(ConfigRule={"ConfigRuleName": "s3-bucket-versioning-enabled",
                                               "Source": {"Owner": "AWS", "SourceIdentifier": "S3_BUCKET_VERSIONING_ENABLED"}})
            results = [{"ResourceType": "AWS::S3::Bucket", "ResourceId": f"data-{account}-{b}",
                        "ComplianceType": "NON_COMPLIANT" if b == 0 else "COMPLIANT"} for b in range(args.buckets)]
            control(args.endpoint, "/_compliance/config-evaluations",
                    {"account": account, "region": region, "rule": "s3-bucket-versioning-enabled", "results": results})
    for account in accounts:
        print(account)


if __name__ == "__main__":
    main()
