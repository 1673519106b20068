//! Terraform (feature `terraform`): the S3 bucket checks on Terraform
//! source (`.tf`) and on plans (`terraform show -json`), before anything is
//! applied. The same judges as the live S3 checks decide, so a bucket gets
//! the same check ids, and the same framework controls, from code review to
//! production.
//!
//! A folder of `.tf` files is one module: a bucket and the resources that
//! configure it may sit in different files. Both ways of configuring a
//! bucket are read: the AWS provider v4+ split resources
//! (`aws_s3_bucket_public_access_block`, `aws_s3_bucket_versioning`,
//! `aws_s3_bucket_server_side_encryption_configuration`,
//! `aws_s3_bucket_logging`, `aws_s3_bucket_policy`) linked by their `bucket`
//! argument, and the older inline blocks of `aws_s3_bucket`. Policies may be
//! heredoc JSON, `jsonencode(…)` or an `aws_iam_policy_document` data source.
//! A value Terraform only knows at plan time (a variable without default, a
//! module output) gives `error` evidence that says so, never a guess: scan
//! the plan for those.
//!
//! ```
//! use compliance_core::{Scope, Status};
//! use compliance_aws::terraform::scan_module_text;
//! let tf = r#"
//! resource "aws_s3_bucket" "logs" {
//!   bucket = "acme-logs"
//! }
//! resource "aws_s3_bucket_versioning" "logs" {
//!   bucket = aws_s3_bucket.logs.id
//!   versioning_configuration { status = "Enabled" }
//! }
//! "#;
//! let collection = scan_module_text(&[("main.tf", tf)], &Scope::only(["aws.s3.versioning"]));
//! let evidence = &collection.evidence[0];
//! assert_eq!(evidence.status, Status::Pass);
//! assert_eq!((evidence.resource.file.as_deref(), evidence.resource.line), (Some("main.tf"), Some(2)));
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use compliance_core::{
    Check, Collection, Collector, Error, Evidence, Gap, GapKind, ResourceRef, Scope, Status, Verdict,
};
use hcl_edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl_edit::repr::Span;
use hcl_edit::structure::{Block, Body};
use hcl_edit::template::{Element, Template};
use serde_json::{Map, Value, json};
use tracing::{debug, info};

use crate::s3::{
    Encryption, Logging, PublicAccessBlock, Versioning, checks, judge_encryption, judge_logging,
    judge_public_access_block, judge_ssl_only, judge_versioning,
};

/// A value known only when Terraform plans: its expression, as written.
#[derive(Clone, Debug, PartialEq)]
struct Unknown(String);

type Known<T> = Result<T, Unknown>;

/// What the configuration declares about one bucket.
#[derive(Clone, Debug, Default)]
struct DeclaredBucket {
    /// `aws_s3_bucket.logs` (with `module.x.` in plans).
    address: String,
    /// The bucket's name, when it is a literal.
    name: Option<String>,
    file: String,
    line: Option<usize>,
    public_access_block: Option<Known<PublicAccessBlock>>,
    encryption: Option<Known<Encryption>>,
    versioning: Option<Known<Versioning>>,
    logging: Option<Known<Logging>>,
    policy: Option<Known<String>>,
}

// ---- judging, whatever the source ----

fn unknown_verdict(what: &str, unknown: &Unknown) -> Verdict {
    Verdict::new(
        Status::Error,
        format!("{what} depends on `{}`, known only at plan time; scan the plan (terraform show -json)", unknown.0),
        json!({ "unknown": unknown.0 }),
    )
}

fn judge(bucket: &DeclaredBucket, scope: &Scope, collector: &str) -> Vec<Evidence> {
    let name = bucket.name.clone().unwrap_or_else(|| bucket.address.clone());
    let mut resource = ResourceRef::new("aws", "S3Bucket", format!("{}#{}", bucket.file, bucket.address), name.clone())
        .with_file(bucket.file.clone(), bucket.line);
    resource.labels.insert("terraform_address".into(), bucket.address.clone());
    let resource = Arc::new(resource);
    let now = chrono::Utc::now();
    let collector: Arc<str> = Arc::from(collector);
    checks()
        .iter()
        .filter(|c| scope.wants(&c.id))
        .map(|check| {
            let verdict = match check.id.as_str() {
                "aws.s3.public_access_block" => match &bucket.public_access_block {
                    Some(Err(u)) => unknown_verdict("the public access block", u),
                    Some(Ok(b)) => judge_public_access_block(Some(b)),
                    None => judge_public_access_block(None),
                },
                "aws.s3.default_encryption" => match &bucket.encryption {
                    Some(Err(u)) => unknown_verdict("default encryption", u),
                    Some(Ok(e)) => judge_encryption(Some(e)),
                    // What the live check will see once applied: S3 encrypts every new bucket by default.
                    None => Verdict::new(
                        Status::Pass,
                        "no default encryption is declared: S3 applies SSE-S3 (AES256) to every new bucket since January 2023",
                        json!({ "declared": null, "effective": "AES256" }),
                    ),
                },
                "aws.s3.versioning" => match &bucket.versioning {
                    Some(Err(u)) => unknown_verdict("versioning", u),
                    Some(Ok(v)) => judge_versioning(v),
                    None => judge_versioning(&Versioning::default()),
                },
                "aws.s3.access_logging" => match &bucket.logging {
                    Some(Err(u)) => unknown_verdict("access logging", u),
                    known => judge_logging(known.as_ref().and_then(|k| k.as_ref().ok())),
                },
                "aws.s3.ssl_only" => match &bucket.policy {
                    Some(Err(u)) => unknown_verdict("the bucket policy", u),
                    known => judge_ssl_only(known.as_ref().and_then(|k| k.as_deref().ok()), &name),
                },
                other => Verdict::new(Status::Error, format!("{other} is not judged on Terraform"), Value::Null),
            };
            let mut e = verdict.into_evidence(check, resource.clone(), now);
            e.collector = collector.clone();
            e
        })
        .collect()
}

// ---- HCL: expressions to JSON ----

/// What a module defines that expressions may refer to.
#[derive(Default)]
struct Context {
    /// `var.x` defaults.
    variables: HashMap<String, Value>,
    /// `aws_s3_bucket.<name>` → the bucket's name (literal or placeholder).
    bucket_names: HashMap<String, String>,
    /// `data.aws_iam_policy_document.<name>.json`.
    policy_documents: HashMap<String, Known<String>>,
    /// `local.x`.
    locals: HashMap<String, Value>,
}

fn unknown(expr: &Expression) -> Unknown {
    Unknown(expr.to_string().trim().to_owned())
}

fn traversal_path(expr: &Expression) -> Option<Vec<String>> {
    match expr {
        Expression::Variable(v) => Some(vec![v.as_str().to_owned()]),
        Expression::Traversal(t) => {
            let mut path = traversal_path(&t.expr)?;
            for op in &t.operators {
                match op.value() {
                    TraversalOperator::GetAttr(ident) => path.push(ident.as_str().to_owned()),
                    _ => return None,
                }
            }
            Some(path)
        }
        _ => None,
    }
}

fn resolve_reference(path: &[String], ctx: &Context) -> Option<Known<Value>> {
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["var", name] => ctx.variables.get(*name).cloned().map(Ok),
        ["local", name] => ctx.locals.get(*name).cloned().map(Ok),
        ["aws_s3_bucket", name, "id" | "bucket"] => ctx.bucket_names.get(*name).map(|n| Ok(json!(n))),
        ["aws_s3_bucket", name, "arn"] => ctx.bucket_names.get(*name).map(|n| Ok(json!(format!("arn:aws:s3:::{n}")))),
        ["data", "aws_iam_policy_document", name, "json"] => {
            ctx.policy_documents.get(*name).map(|d| d.clone().map(Value::String))
        }
        _ => None,
    }
}

fn template_text(template: &Template, ctx: &Context) -> Known<String> {
    let mut out = String::new();
    for element in template.iter() {
        match element {
            Element::Literal(text) => out.push_str(text),
            Element::Interpolation(i) => match evaluate(&i.expr, ctx)? {
                Value::String(s) => out.push_str(&s),
                other => out.push_str(&other.to_string()),
            },
            Element::Directive(_) => return Err(Unknown("a template directive".into())),
        }
    }
    Ok(out)
}

/// Evaluates what can be known from the source alone.
fn evaluate(expr: &Expression, ctx: &Context) -> Known<Value> {
    match expr {
        Expression::Null(_) => Ok(Value::Null),
        Expression::Bool(b) => Ok(json!(*b.value())),
        Expression::Number(n) => Ok(serde_json::from_str(&n.value().to_string()).unwrap_or(Value::Null)),
        Expression::String(s) => Ok(json!(s.value())),
        Expression::Array(items) => items.iter().map(|e| evaluate(e, ctx)).collect::<Known<Vec<_>>>().map(Value::Array),
        Expression::Object(object) => {
            let mut map = Map::new();
            for (key, value) in object.iter() {
                let key = match key {
                    ObjectKey::Ident(ident) => ident.as_str().to_owned(),
                    ObjectKey::Expression(e) => match evaluate(e, ctx)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    },
                };
                map.insert(key, evaluate(value.expr(), ctx)?);
            }
            Ok(Value::Object(map))
        }
        Expression::StringTemplate(t) => template_text(t, ctx).map(Value::String),
        Expression::HeredocTemplate(h) => template_text(&h.template, ctx).map(Value::String),
        Expression::Parenthesis(p) => evaluate(p.inner(), ctx),
        Expression::FuncCall(call) if call.name.name.as_str() == "jsonencode" && call.args.len() == 1 => {
            let arg = call.args.iter().next().ok_or_else(|| unknown(expr))?;
            Ok(Value::String(evaluate(arg, ctx)?.to_string()))
        }
        Expression::Variable(_) | Expression::Traversal(_) => {
            traversal_path(expr).and_then(|path| resolve_reference(&path, ctx)).unwrap_or_else(|| Err(unknown(expr)))
        }
        _ => Err(unknown(expr)),
    }
}

fn attr(body: &Body, key: &str, ctx: &Context) -> Option<Known<Value>> {
    body.get_attribute(key).map(|a| evaluate(&a.value, ctx))
}

fn bool_attr(body: &Body, key: &str, ctx: &Context) -> Known<bool> {
    match attr(body, key, ctx) {
        None => Ok(false),
        Some(Ok(v)) => Ok(v.as_bool().unwrap_or(false)),
        Some(Err(u)) => Err(u),
    }
}

fn string_attr(body: &Body, key: &str, ctx: &Context) -> Known<Option<String>> {
    match attr(body, key, ctx) {
        None => Ok(None),
        Some(Ok(Value::Null)) => Ok(None),
        Some(Ok(Value::String(s))) => Ok(Some(s)),
        Some(Ok(other)) => Ok(Some(other.to_string())),
        Some(Err(u)) => Err(u),
    }
}

fn first_block<'a>(body: &'a Body, ident: &'a str) -> Option<&'a Block> {
    body.get_blocks(ident).next()
}

fn labels(block: &Block) -> Vec<&str> {
    block.labels.iter().map(|l| l.as_str()).collect()
}

fn encryption_from_rule(rule: &Body, ctx: &Context) -> Option<Known<Encryption>> {
    let default = first_block(rule, "apply_server_side_encryption_by_default")?;
    let algorithm = match string_attr(&default.body, "sse_algorithm", ctx) {
        Ok(Some(a)) => a,
        Ok(None) => return None,
        Err(u) => return Some(Err(u)),
    };
    let kms_key_id = string_attr(&default.body, "kms_master_key_id", ctx).unwrap_or_else(|u| Some(u.0));
    let bucket_key_enabled = attr(rule, "bucket_key_enabled", ctx).and_then(|v| v.ok()).and_then(|v| v.as_bool());
    Some(Ok(Encryption { algorithm, kms_key_id, bucket_key_enabled }))
}

fn logging_from(body: &Body, ctx: &Context) -> Option<Known<Logging>> {
    let target = match string_attr(body, "target_bucket", ctx) {
        Ok(Some(t)) => t,
        Ok(None) => return None,
        Err(u) => return Some(Err(u)),
    };
    let prefix = string_attr(body, "target_prefix", ctx).ok().flatten().unwrap_or_default();
    Some(Ok(Logging { target_bucket: target, target_prefix: prefix }))
}

/// An `aws_iam_policy_document` as the JSON policy it renders.
fn policy_document(body: &Body, ctx: &Context) -> Known<String> {
    let list = |b: &Body, key: &str| -> Known<Option<Value>> { attr(b, key, ctx).transpose() };
    let mut statements = Vec::new();
    for statement in body.get_blocks("statement") {
        let b = &statement.body;
        let mut s = Map::new();
        if let Some(sid) = string_attr(b, "sid", ctx)? {
            s.insert("Sid".into(), json!(sid));
        }
        s.insert("Effect".into(), json!(string_attr(b, "effect", ctx)?.unwrap_or_else(|| "Allow".into())));
        for (key, field) in [("actions", "Action"), ("not_actions", "NotAction"), ("resources", "Resource")] {
            if let Some(v) = list(b, key)? {
                s.insert(field.into(), v);
            }
        }
        for (block, field) in [("principals", "Principal"), ("not_principals", "NotPrincipal")] {
            let mut principal = Map::new();
            let mut everyone = false;
            for p in b.get_blocks(block) {
                let kind = string_attr(&p.body, "type", ctx)?.unwrap_or_default();
                let ids = list(&p.body, "identifiers")?.unwrap_or(Value::Null);
                if kind == "*" {
                    everyone = true;
                } else {
                    principal.insert(kind, ids);
                }
            }
            if everyone {
                s.insert(field.into(), json!("*"));
            } else if !principal.is_empty() {
                s.insert(field.into(), Value::Object(principal));
            }
        }
        let mut condition: Map<String, Value> = Map::new();
        for c in b.get_blocks("condition") {
            let test = string_attr(&c.body, "test", ctx)?.unwrap_or_default();
            let variable = string_attr(&c.body, "variable", ctx)?.unwrap_or_default();
            let values = list(&c.body, "values")?.unwrap_or(Value::Null);
            if let Some(Value::Object(by_test)) =
                Some(condition.entry(test).or_insert_with(|| Value::Object(Map::new())))
            {
                by_test.insert(variable, values);
            }
        }
        if !condition.is_empty() {
            s.insert("Condition".into(), Value::Object(condition));
        }
        statements.push(Value::Object(s));
    }
    Ok(json!({ "Version": "2012-10-17", "Statement": statements }).to_string())
}

// ---- HCL: modules ----

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(1, |before| before.matches('\n').count() + 1)
}

/// One parsed file of a module.
struct ParsedFile<'a> {
    name: &'a str,
    text: &'a str,
    body: Body,
}

/// Judges one module given as `(file name, text)` pairs: the files of one
/// folder. A file that does not parse is a gap naming file and line; the
/// others are judged.
pub fn scan_module_text(files: &[(&str, &str)], scope: &Scope) -> Collection {
    let mut collection = Collection::default();
    let mut parsed = Vec::new();
    for (name, text) in files {
        match hcl_edit::parser::parse_body(text) {
            Ok(body) => parsed.push(ParsedFile { name, text, body }),
            Err(e) => {
                let at = e.location();
                collection.gaps.push(Gap::source(
                    format!("{name}:{}", at.line()),
                    GapKind::Unreadable,
                    format!("invalid HCL at line {}, column {}: {}", at.line(), at.column(), e.message()),
                ))
            }
        }
    }
    let mut ctx = Context::default();
    let top_blocks = || parsed.iter().flat_map(|f| f.body.blocks().map(move |b| (f, b)));
    for (_, block) in top_blocks() {
        match (block.ident.as_str(), labels(block).as_slice()) {
            ("variable", [name]) => {
                if let Some(Ok(v)) = attr(&block.body, "default", &Context::default()) {
                    ctx.variables.insert((*name).to_owned(), v);
                }
            }
            ("resource", ["aws_s3_bucket", name]) => {
                let literal = attr(&block.body, "bucket", &ctx).and_then(Result::ok);
                let bucket = literal
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("aws_s3_bucket.{name}"));
                ctx.bucket_names.insert((*name).to_owned(), bucket);
            }
            _ => {}
        }
    }
    // Locals and policy documents may use variables and bucket names.
    for (_, block) in top_blocks() {
        if block.ident.as_str() == "locals" {
            for a in block.body.attributes() {
                if let Ok(v) = evaluate(&a.value, &ctx) {
                    ctx.locals.insert(a.key.as_str().to_owned(), v);
                }
            }
        }
    }
    for (_, block) in top_blocks() {
        if let ("data", ["aws_iam_policy_document", name]) = (block.ident.as_str(), labels(block).as_slice()) {
            let document = policy_document(&block.body, &ctx);
            ctx.policy_documents.insert((*name).to_owned(), document);
        }
    }

    let mut buckets: BTreeMap<String, DeclaredBucket> = BTreeMap::new();
    for (file, block) in top_blocks() {
        if let ("resource", ["aws_s3_bucket", name]) = (block.ident.as_str(), labels(block).as_slice()) {
            let b = &block.body;
            let mut declared = DeclaredBucket {
                address: format!("aws_s3_bucket.{name}"),
                name: attr(b, "bucket", &ctx).and_then(Result::ok).and_then(|v| v.as_str().map(str::to_owned)),
                file: file.name.to_owned(),
                line: block.span().map(|s| line_of(file.text, s.start)),
                ..DeclaredBucket::default()
            };
            // Provider v3 inline blocks (still accepted by v4+, deprecated).
            if let Some(v) = first_block(b, "versioning") {
                declared.versioning = Some(
                    bool_attr(&v.body, "enabled", &ctx)
                        .map(|on| Versioning { status: on.then(|| "Enabled".to_owned()), mfa_delete: None }),
                );
            }
            if let Some(sse) = first_block(b, "server_side_encryption_configuration") {
                declared.encryption = first_block(&sse.body, "rule").and_then(|r| encryption_from_rule(&r.body, &ctx));
            }
            if let Some(l) = first_block(b, "logging") {
                declared.logging = logging_from(&l.body, &ctx);
            }
            if let Some(policy) = attr(b, "policy", &ctx) {
                declared.policy = Some(policy.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)));
            }
            buckets.insert((*name).to_owned(), declared);
        }
    }
    // Split resources (provider v4+), linked by their `bucket` argument.
    for (_, block) in top_blocks() {
        let block_labels = labels(block);
        let ("resource", [kind, _]) = (block.ident.as_str(), block_labels.as_slice()) else { continue };
        if !kind.starts_with("aws_s3_bucket_") {
            continue;
        }
        let Some(target) = block.body.get_attribute("bucket").and_then(|a| bucket_of(&a.value, &ctx)) else {
            debug!(kind, "a bucket setting for a bucket outside this module");
            continue;
        };
        let Some(declared) = buckets.get_mut(&target) else { continue };
        let b = &block.body;
        match *kind {
            "aws_s3_bucket_public_access_block" => {
                declared.public_access_block = Some((|| {
                    Ok(PublicAccessBlock {
                        block_public_acls: bool_attr(b, "block_public_acls", &ctx)?,
                        ignore_public_acls: bool_attr(b, "ignore_public_acls", &ctx)?,
                        block_public_policy: bool_attr(b, "block_public_policy", &ctx)?,
                        restrict_public_buckets: bool_attr(b, "restrict_public_buckets", &ctx)?,
                    })
                })());
            }
            "aws_s3_bucket_versioning" => {
                declared.versioning = first_block(b, "versioning_configuration").map(|v| {
                    Ok(Versioning {
                        status: string_attr(&v.body, "status", &ctx)?.filter(|s| s != "Disabled"),
                        mfa_delete: string_attr(&v.body, "mfa_delete", &ctx)?,
                    })
                });
            }
            "aws_s3_bucket_server_side_encryption_configuration" => {
                declared.encryption = first_block(b, "rule").and_then(|r| encryption_from_rule(&r.body, &ctx));
            }
            "aws_s3_bucket_logging" => declared.logging = logging_from(b, &ctx),
            "aws_s3_bucket_policy" => {
                declared.policy =
                    attr(b, "policy", &ctx).map(|p| p.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)));
            }
            _ => {}
        }
    }
    for declared in buckets.values() {
        collection.evidence.extend(judge(declared, scope, "terraform"));
    }
    collection
}

/// The module-local name of the `aws_s3_bucket` a `bucket` argument names.
fn bucket_of(expr: &Expression, ctx: &Context) -> Option<String> {
    if let Some(path) = traversal_path(expr)
        && let [kind, name, _] = path.as_slice()
        && kind == "aws_s3_bucket"
    {
        return Some(name.clone());
    }
    let literal = evaluate(expr, ctx).ok()?;
    let literal = literal.as_str()?;
    ctx.bucket_names.iter().find(|(_, bucket)| bucket.as_str() == literal).map(|(name, _)| name.clone())
}

// ---- plans (terraform show -json) ----

fn plan_resources<'a>(module: &'a Value, out: &mut Vec<&'a Value>) {
    out.extend(module["resources"].as_array().into_iter().flatten());
    for child in module["child_modules"].as_array().into_iter().flatten() {
        plan_resources(child, out);
    }
}

/// `(address → references of its bucket argument)`, from the plan's configuration.
fn bucket_references(module: &Value, prefix: &str, out: &mut HashMap<String, Vec<String>>) {
    for r in module["resources"].as_array().into_iter().flatten() {
        let (Some(address), Some(refs)) = (r["address"].as_str(), r["expressions"]["bucket"]["references"].as_array())
        else {
            continue;
        };
        let refs = refs.iter().filter_map(Value::as_str).map(|s| format!("{prefix}{s}")).collect();
        out.insert(format!("{prefix}{address}"), refs);
    }
    for (name, call) in module["module_calls"].as_object().into_iter().flatten() {
        bucket_references(&call["module"], &format!("{prefix}module.{name}."), out);
    }
}

fn first<'a>(value: &'a Value, key: &str) -> &'a Value {
    match &value[key] {
        Value::Array(items) => items.first().unwrap_or(&Value::Null),
        other => other,
    }
}

fn plan_encryption(rule: &Value) -> Option<Encryption> {
    let default = first(rule, "apply_server_side_encryption_by_default");
    Some(Encryption {
        algorithm: default["sse_algorithm"].as_str()?.to_owned(),
        kms_key_id: default["kms_master_key_id"].as_str().filter(|s| !s.is_empty()).map(str::to_owned),
        bucket_key_enabled: rule["bucket_key_enabled"].as_bool(),
    })
}

/// Judges a plan in Terraform's JSON format (`terraform show -json PLAN`):
/// the planned values, linked to their bucket through the configuration's
/// references when the bucket's name is only known after apply.
pub fn scan_plan_text(text: &str, source_name: &str, scope: &Scope) -> Collection {
    let mut collection = Collection::default();
    let plan: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            collection.gaps.push(Gap::source(
                format!("{source_name}:{}", e.line()),
                GapKind::Unreadable,
                format!("not a Terraform plan in JSON: {e}"),
            ));
            return collection;
        }
    };
    if plan["format_version"].as_str().is_none() || !plan["planned_values"].is_object() {
        collection.gaps.push(Gap::source(
            source_name,
            GapKind::Unreadable,
            "not a Terraform plan in JSON: no format_version or planned_values (use `terraform show -json PLAN`)",
        ));
        return collection;
    }
    let mut resources = Vec::new();
    plan_resources(&plan["planned_values"]["root_module"], &mut resources);
    let mut references = HashMap::new();
    bucket_references(&plan["configuration"]["root_module"], "", &mut references);

    let mut buckets: BTreeMap<String, DeclaredBucket> = BTreeMap::new();
    for r in resources.iter().filter(|r| r["type"] == "aws_s3_bucket") {
        let address = r["address"].as_str().unwrap_or_default().to_owned();
        let values = &r["values"];
        let mut declared = DeclaredBucket {
            address: address.clone(),
            name: values["bucket"].as_str().map(str::to_owned),
            file: source_name.to_owned(),
            ..DeclaredBucket::default()
        };
        if let Some(v) = values["versioning"].as_array().and_then(|v| v.first()) {
            let on = v["enabled"].as_bool() == Some(true);
            declared.versioning = Some(Ok(Versioning { status: on.then(|| "Enabled".into()), mfa_delete: None }));
        }
        let sse = first(values, "server_side_encryption_configuration");
        declared.encryption = plan_encryption(first(sse, "rule")).map(Ok);
        let logging = first(values, "logging");
        declared.logging = logging["target_bucket"].as_str().map(|t| {
            Ok(Logging {
                target_bucket: t.to_owned(),
                target_prefix: logging["target_prefix"].as_str().unwrap_or_default().to_owned(),
            })
        });
        declared.policy = values["policy"].as_str().filter(|p| !p.is_empty()).map(|p| Ok(p.to_owned()));
        buckets.insert(address, declared);
    }
    for r in resources.iter().filter(|r| r["type"].as_str().is_some_and(|t| t.starts_with("aws_s3_bucket_"))) {
        let address = r["address"].as_str().unwrap_or_default();
        let values = &r["values"];
        // Module-local references name `aws_s3_bucket.x` (or `.id`); the bucket's address carries the module prefix.
        let module_prefix = address.rfind("aws_s3_bucket_").map_or("", |i| &address[..i]);
        let by_reference = references.get(address).into_iter().flatten().find_map(|reference| {
            let base = reference.strip_suffix(".id").or_else(|| reference.strip_suffix(".bucket")).unwrap_or(reference);
            buckets.contains_key(base).then(|| base.to_owned())
        });
        let by_name = values["bucket"].as_str().and_then(|name| {
            buckets
                .iter()
                .find(|(a, b)| a.starts_with(module_prefix) && b.name.as_deref() == Some(name))
                .map(|(a, _)| a.clone())
        });
        let Some(declared) = by_reference.or(by_name).and_then(|a| buckets.get_mut(&a)) else { continue };
        match r["type"].as_str().unwrap_or_default() {
            "aws_s3_bucket_public_access_block" => {
                let on = |k: &str| values[k].as_bool() == Some(true);
                declared.public_access_block = Some(Ok(PublicAccessBlock {
                    block_public_acls: on("block_public_acls"),
                    ignore_public_acls: on("ignore_public_acls"),
                    block_public_policy: on("block_public_policy"),
                    restrict_public_buckets: on("restrict_public_buckets"),
                }));
            }
            "aws_s3_bucket_versioning" => {
                let v = first(values, "versioning_configuration");
                declared.versioning = Some(Ok(Versioning {
                    status: v["status"].as_str().filter(|s| *s != "Disabled").map(str::to_owned),
                    mfa_delete: v["mfa_delete"].as_str().map(str::to_owned),
                }));
            }
            "aws_s3_bucket_server_side_encryption_configuration" => {
                declared.encryption = plan_encryption(first(values, "rule")).map(Ok);
            }
            "aws_s3_bucket_logging" => {
                declared.logging = values["target_bucket"].as_str().map(|t| {
                    Ok(Logging {
                        target_bucket: t.to_owned(),
                        target_prefix: values["target_prefix"].as_str().unwrap_or_default().to_owned(),
                    })
                });
            }
            "aws_s3_bucket_policy" => {
                declared.policy = Some(
                    values["policy"].as_str().map(str::to_owned).ok_or_else(|| Unknown(format!("{address}.policy"))),
                );
            }
            _ => {}
        }
    }
    for declared in buckets.values() {
        collection.evidence.extend(judge(declared, scope, "terraform"));
    }
    collection
}

// ---- files and folders ----

/// Judges Terraform under `paths`: folders (each folder with `.tf` files is
/// a module; `.terraform/` is skipped), `.tf` files, and plans (`.json`).
pub fn scan_paths(paths: &[PathBuf], scope: &Scope) -> Collection {
    let mut modules: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    let mut plans = Vec::new();
    let mut collection = Collection::default();
    for path in paths {
        if path.is_dir() {
            walk(path, 0, &mut modules, &mut collection.gaps);
        } else if path.extension().is_some_and(|e| e == "json") {
            plans.push(path.clone());
        } else if path.exists() {
            modules.entry(path.parent().map(Path::to_path_buf).unwrap_or_default()).or_default().push(path.clone());
        } else {
            collection.gaps.push(Gap::source(
                path.display().to_string(),
                GapKind::Unreadable,
                "no such file or folder",
            ));
        }
    }
    for files in modules.values() {
        let mut texts = Vec::new();
        for file in files {
            let name = file.display().to_string();
            match std::fs::read_to_string(file) {
                Ok(text) => texts.push((name, text)),
                Err(e) => collection.gaps.push(Gap::source(name, GapKind::Unreadable, format!("cannot read: {e}"))),
            }
        }
        let pairs: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        collection.extend(scan_module_text(&pairs, scope));
    }
    for plan in plans {
        let name = plan.display().to_string();
        match std::fs::read_to_string(&plan) {
            Ok(text) => collection.extend(scan_plan_text(&text, &name, scope)),
            Err(e) => collection.gaps.push(Gap::source(name, GapKind::Unreadable, format!("cannot read: {e}"))),
        }
    }
    info!(evidence = collection.evidence.len(), gaps = collection.gaps.len(), "Terraform judged");
    collection
}

fn walk(dir: &Path, depth: usize, modules: &mut BTreeMap<PathBuf, Vec<PathBuf>>, gaps: &mut Vec<Gap>) {
    if depth > 32 {
        return;
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            gaps.push(Gap::source(dir.display().to_string(), GapKind::Unreadable, format!("cannot list: {e}")));
            return;
        }
    };
    entries.sort();
    for entry in entries {
        let hidden = entry.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if entry.is_dir() && !hidden && !entry.is_symlink() {
            walk(&entry, depth + 1, modules, gaps);
        } else if entry.extension().is_some_and(|e| e == "tf") {
            modules.entry(dir.to_path_buf()).or_default().push(entry);
        }
    }
}

/// Judges Terraform files, folders and plans as a collector
/// (`"terraform"`), with the S3 checks.
#[derive(Clone, Debug)]
pub struct TerraformCollector {
    paths: Vec<PathBuf>,
}

impl TerraformCollector {
    /// A collector over these paths.
    pub fn new<I: IntoIterator<Item = P>, P: Into<PathBuf>>(paths: I) -> Self {
        Self { paths: paths.into_iter().map(Into::into).collect() }
    }
}

#[async_trait]
impl Collector for TerraformCollector {
    fn name(&self) -> &str {
        "terraform"
    }

    fn checks(&self) -> Vec<Check> {
        checks()
    }

    async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
        let (paths, scope) = (self.paths.clone(), scope.clone());
        tokio::task::spawn_blocking(move || scan_paths(&paths, &scope))
            .await
            .map_err(|e| Error::Collect { collector: "terraform".into(), reason: e.to_string() })
    }
}
