//! Terraform source: a folder of `.tf` files is one module; expressions are
//! resolved where their value is known before planning.

use std::collections::{BTreeMap, HashMap};

use compliance_core::{Collection, Gap, GapKind, Scope};
use hcl_edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl_edit::repr::Span;
use hcl_edit::structure::{Block, Body};
use hcl_edit::template::{Element, Template};
use serde_json::{Map, Value, json};
use tracing::debug;

use super::{DeclaredBucket, Known, Unknown, judge};
use crate::s3::{Encryption, Logging, PublicAccessBlock, Versioning};

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

/// The byte offset of every line start of a text: a block's line is then a
/// binary search, not a rescan of the file for every bucket (which made a
/// module of many buckets quadratic).
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> Self {
        Self(std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect())
    }

    /// The 1-based line of a byte offset.
    fn line_of(&self, offset: usize) -> usize {
        self.0.partition_point(|&start| start <= offset).max(1)
    }
}

/// One parsed file of a module.
struct ParsedFile<'a> {
    name: &'a str,
    lines: LineIndex,
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
            Ok(body) => parsed.push(ParsedFile { name, lines: LineIndex::new(text), body }),
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
                line: block.span().map(|s| file.lines.line_of(s.start)),
                ..DeclaredBucket::default()
            };
            // Provider v3 inline blocks (still accepted by v4+, deprecated).
            if let Some(v) = first_block(b, "versioning") {
                declared.versioning = Some((|| {
                    let on = bool_attr(&v.body, "enabled", &ctx)?;
                    // `mfa_delete = true|false`, when written; unset means never enabled.
                    let mfa = match attr(&v.body, "mfa_delete", &ctx) {
                        Some(_) => Some(if bool_attr(&v.body, "mfa_delete", &ctx)? { "Enabled" } else { "Disabled" }),
                        None => None,
                    };
                    Ok(Versioning { status: on.then(|| "Enabled".to_owned()), mfa_delete: mfa.map(str::to_owned) })
                })());
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

#[cfg(test)]
mod tests {
    use super::LineIndex;

    #[test]
    fn lines_of_offsets() {
        let index = LineIndex::new("a\nbc\n\nd");
        let lines: Vec<usize> = (0..8).map(|o| index.line_of(o)).collect();
        assert_eq!(lines, [1, 1, 2, 2, 2, 3, 4, 4]);
    }
}
