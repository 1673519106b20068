//! YAML documents to JSON values, read the way Kubernetes reads them.
//!
//! Kubernetes (sigs.k8s.io/yaml over go-yaml v2) resolves plain scalars by the
//! YAML 1.1 rules: `0400` is the octal number 256, `yes`/`on` are booleans.
//! A YAML 1.2 reader would take `defaultMode: 0400` as the decimal 400 (or a
//! string) and judge a secret volume wrongly, so this module resolves scalars
//! itself. Every document keeps the line it starts on, and a syntax error names
//! its line, so a scanner can point at `file:line`.

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::error::Error;

/// Alias expansion beyond this many nodes is refused ("billion laughs").
const MAX_ALIAS_NODES: usize = 1_000_000;

/// Alias expansion beyond this many bytes of text is refused: one large
/// anchor aliased many times is a bomb of few nodes.
const MAX_ALIAS_BYTES: usize = 64 * 1024 * 1024;

/// Collections nested deeper than this are refused: no Kubernetes object
/// comes near it, and deeper values overflow the stack of whatever walks
/// them recursively (dropping, converting, serialising).
pub const MAX_DEPTH: usize = 256;

/// One document of a YAML stream.
#[derive(Clone, Debug, PartialEq)]
pub struct YamlDocument {
    /// 0-based index of the document in its stream.
    pub index: usize,
    /// 1-based line where the document's content starts.
    pub line: usize,
    /// The content, as JSON.
    pub value: Value,
}

/// What a YAML stream held: the documents read, and the error that stopped
/// reading, if any. Documents before a syntax error are kept.
#[derive(Debug, Default)]
pub struct YamlStream {
    /// The documents read, in order. Empty documents are left out.
    pub documents: Vec<YamlDocument>,
    /// The error that ended the stream early, naming source and line.
    pub error: Option<Error>,
    /// Things that were read but deserve a look, with their line: a mapping
    /// key given twice (the last value is used, as Kubernetes does).
    pub warnings: Vec<String>,
}

/// Parses every document of `text`. `source_name` (a path, as the user gave
/// it) is used in error messages.
///
/// ```
/// use compliance_core::yaml::parse_documents;
/// let stream = parse_documents("a: 0400\nb: yes\n---\nc: '0400'\n", "demo.yaml");
/// assert!(stream.error.is_none());
/// assert_eq!(stream.documents[0].value["a"], 256); // octal, as Kubernetes reads it
/// assert_eq!(stream.documents[0].value["b"], true);
/// assert_eq!(stream.documents[1].value["c"], "0400"); // quoted: a string
/// assert_eq!(stream.documents[1].line, 4);
/// ```
pub fn parse_documents(text: &str, source_name: &str) -> YamlStream {
    let mut documents = Vec::new();
    let (error, warnings) = for_each_document(text, source_name, |doc| documents.push(doc));
    YamlStream { documents, error, warnings }
}

/// Like [`parse_documents`], but hands each document to `visit` as soon as
/// it is read, so that a large stream is never held whole in memory. Returns
/// the error that ended the stream early, if any, and the warnings.
///
/// ```
/// use compliance_core::yaml::for_each_document;
/// let mut kinds = Vec::new();
/// let (error, _) = for_each_document("kind: Pod\n---\nkind: Service\n", "s.yaml", |doc| {
///     kinds.push(doc.value["kind"].as_str().unwrap_or_default().to_owned());
/// });
/// assert!(error.is_none());
/// assert_eq!(kinds, ["Pod", "Service"]);
/// ```
pub fn for_each_document(
    text: &str,
    source_name: &str,
    visit: impl FnMut(YamlDocument),
) -> (Option<Error>, Vec<String>) {
    for_each_document_of(Piece { text, lines_before: 0 }, source_name, visit)
}

/// A part of a YAML stream made of whole documents (see [`split_stream`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece<'a> {
    /// Its text.
    pub text: &'a str,
    /// Lines of the stream before it: added to every line reported, so that
    /// lines are the stream's.
    pub lines_before: usize,
}

/// Splits a stream into pieces of about `target_bytes` each, cut only where
/// a line starts a new document (`---` at the start of a line), so that
/// each piece can be parsed on its own, on its own core: the YAML
/// specification lets no anchor, alias or tag reach across documents, and
/// forbids a document marker inside a scalar. A stream with directives
/// (`%YAML`, `%TAG` lines, which belong to the document after them) is one
/// piece.
///
/// Parsing the pieces in order with [`for_each_document_of`] reads the
/// same documents as [`for_each_document`] reads from the whole stream,
/// with the same lines; each piece counts its documents from 0.
///
/// ```
/// use compliance_core::yaml::{for_each_document_of, split_stream};
/// let text = "kind: Pod\n---\nkind: Service\n---\nkind: Job\n";
/// let pieces = split_stream(text, 10);
/// assert_eq!(pieces.len(), 3);
/// assert_eq!(pieces[2].lines_before, 3); // "kind: Job" is on line 5
/// let mut lines = Vec::new();
/// for piece in pieces {
///     for_each_document_of(piece, "s.yaml", |doc| lines.push(doc.line));
/// }
/// assert_eq!(lines, [1, 3, 5]);
/// ```
pub fn split_stream(text: &str, target_bytes: usize) -> Vec<Piece<'_>> {
    let bytes = text.as_bytes();
    let directive = bytes.first() == Some(&b'%') || line_starts(bytes).any(|start| bytes.get(start) == Some(&b'%'));
    if directive || text.len() <= target_bytes {
        return vec![Piece { text, lines_before: 0 }];
    }
    let mut pieces = Vec::new();
    let (mut start, mut lines_before, mut lines_seen, mut seen_at) = (0usize, 0usize, 0usize, 0usize);
    for line_start in line_starts(bytes) {
        if line_start - start < target_bytes || !starts_document(&bytes[line_start..]) {
            continue;
        }
        // Lines up to this cut, counted from the last one.
        lines_seen += memchr::memchr_iter(b'\n', &bytes[seen_at..line_start]).count();
        seen_at = line_start;
        pieces.push(Piece { text: &text[start..line_start], lines_before });
        lines_before = lines_seen;
        start = line_start;
    }
    pieces.push(Piece { text: &text[start..], lines_before });
    pieces
}

/// Where each line after the first starts.
fn line_starts(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'\n', bytes).map(|i| i + 1).filter(move |i| *i < bytes.len())
}

/// `---` followed by a space, a tab, a line end or the end of the text.
fn starts_document(line: &[u8]) -> bool {
    line.starts_with(b"---") && matches!(line.get(3), None | Some(b' ' | b'\t' | b'\r' | b'\n'))
}

/// [`for_each_document`] over one piece of a stream: lines are the
/// stream's, document indexes the piece's own.
pub fn for_each_document_of(
    piece: Piece<'_>,
    source_name: &str,
    mut visit: impl FnMut(YamlDocument),
) -> (Option<Error>, Vec<String>) {
    let mut parser = Parser::new_from_str(piece.text);
    let mut builder = Builder { lines_before: piece.lines_before, ..Builder::default() };
    let mut index = 0;
    let parse_error =
        |line, message| Some(Error::Parse { source_name: source_name.to_owned(), line: Some(line), message });
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(next) => next,
            Err(e) => {
                let line = e.marker().line() + piece.lines_before;
                let error = parse_error(line, format!("invalid YAML: {}", e.info()));
                return (error, builder.warnings);
            }
        };
        match builder.on_event(event, mark) {
            Ok(Step::Continue) => {}
            Ok(Step::Document(line, value)) => {
                if !value.is_null() {
                    visit(YamlDocument { index, line, value });
                    index += 1;
                }
            }
            Ok(Step::End) => return (None, builder.warnings),
            Err((line, message)) => return (parse_error(line, format!("invalid YAML: {message}")), builder.warnings),
        }
    }
}

enum Step {
    Continue,
    Document(usize, Value),
    End,
}

enum Frame {
    Seq { items: Vec<Value>, anchor: usize },
    Map { entries: Map<String, Value>, key: Option<(String, usize)>, merges: Vec<Value>, anchor: usize, line: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, (Value, Weight)>,
    alias_nodes: usize,
    alias_bytes: usize,
    doc_line: Option<usize>,
    root: Option<Value>,
    warnings: Vec<String>,
    /// Lines of the stream before the piece being read.
    lines_before: usize,
}

const MERGE_KEY: &str = "<<";

impl Builder {
    fn on_event(&mut self, event: Event, mark: Marker) -> Result<Step, (usize, String)> {
        let line = mark.line() + self.lines_before;
        match event {
            Event::StreamStart | Event::Nothing => Ok(Step::Continue),
            Event::StreamEnd => Ok(Step::End),
            Event::DocumentStart => {
                self.doc_line = None;
                self.root = None;
                Ok(Step::Continue)
            }
            Event::DocumentEnd => {
                self.anchors.clear();
                self.alias_nodes = 0;
                self.alias_bytes = 0;
                let value = self.root.take().unwrap_or(Value::Null);
                Ok(Step::Document(self.doc_line.take().unwrap_or(line), value))
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.note_line(line);
                let tag_suffix = tag.as_ref().map(|t| t.suffix.as_str());
                // A mapping waiting for a key takes the raw text, as go-yaml does.
                if let Some(Frame::Map { key: key @ None, .. }) = self.stack.last_mut() {
                    *key = Some((text, line));
                    return Ok(Step::Continue);
                }
                let value = resolve_scalar(&text, style, tag_suffix);
                if anchor > 0 {
                    self.anchors.insert(anchor, (value.clone(), weight(&value)));
                }
                self.push_value(value, line)
            }
            Event::SequenceStart(anchor, _) => {
                self.note_line(line);
                self.check_key_position(line)?;
                self.check_depth(line)?;
                self.stack.push(Frame::Seq { items: Vec::new(), anchor });
                Ok(Step::Continue)
            }
            Event::MappingStart(anchor, _) => {
                self.note_line(line);
                self.check_key_position(line)?;
                self.check_depth(line)?;
                self.stack.push(Frame::Map { entries: Map::new(), key: None, merges: Vec::new(), anchor, line });
                Ok(Step::Continue)
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq { items, anchor }) => {
                    let value = Value::Array(items);
                    self.remember(anchor, &value);
                    self.push_value(value, line)
                }
                _ => Err((line, "unbalanced sequence".into())),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map { mut entries, merges, anchor, line: start, .. }) => {
                    for merged in merges {
                        merge_into(&mut entries, merged, start)?;
                    }
                    let value = Value::Object(entries);
                    self.remember(anchor, &value);
                    self.push_value(value, line)
                }
                _ => Err((line, "unbalanced mapping".into())),
            },
            Event::Alias(id) => {
                self.note_line(line);
                let Some((value, weight)) = self.anchors.get(&id).cloned() else {
                    return Err((line, "alias to an unknown anchor".into()));
                };
                self.alias_nodes += weight.nodes;
                self.alias_bytes += weight.bytes;
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err((line, format!("aliases expand to more than {MAX_ALIAS_NODES} nodes")));
                }
                if self.alias_bytes > MAX_ALIAS_BYTES {
                    return Err((line, format!("aliases expand to more than {MAX_ALIAS_BYTES} bytes")));
                }
                if let Some(Frame::Map { key: key @ None, .. }) = self.stack.last_mut() {
                    let Value::String(text) = value else {
                        return Err((line, "an alias used as a mapping key must name a string".into()));
                    };
                    *key = Some((text, line));
                    return Ok(Step::Continue);
                }
                self.push_value(value, line)
            }
        }
    }

    fn note_line(&mut self, line: usize) {
        if self.doc_line.is_none() {
            self.doc_line = Some(line);
        }
    }

    fn check_key_position(&self, line: usize) -> Result<(), (usize, String)> {
        match self.stack.last() {
            Some(Frame::Map { key: None, .. }) => {
                Err((line, "a mapping or sequence used as a mapping key (a template placeholder such as {{ x }}?) cannot be read as JSON, nor by Kubernetes".into()))
            }
            _ => Ok(()),
        }
    }

    fn remember(&mut self, anchor: usize, value: &Value) {
        if anchor > 0 {
            self.anchors.insert(anchor, (value.clone(), weight(value)));
        }
    }

    fn check_depth(&self, line: usize) -> Result<(), (usize, String)> {
        if self.stack.len() >= MAX_DEPTH {
            return Err((line, format!("collections nested more than {MAX_DEPTH} levels deep")));
        }
        Ok(())
    }

    fn push_value(&mut self, value: Value, line: usize) -> Result<Step, (usize, String)> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(value);
                Ok(Step::Continue)
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(value);
                Ok(Step::Continue)
            }
            Some(Frame::Map { entries, key, merges, .. }) => {
                let Some((key, key_line)) = key.take() else {
                    return Err((line, "value without a key".into()));
                };
                if key == MERGE_KEY {
                    merges.push(value);
                } else if entries.insert(key.clone(), value).is_some() {
                    self.warnings.push(format!(
                        "line {key_line}: mapping key {key:?} is given more than once; the last value is used"
                    ));
                }
                Ok(Step::Continue)
            }
        }
    }
}

/// Applies a `<<` merge: keys already present win.
fn merge_into(entries: &mut Map<String, Value>, merged: Value, line: usize) -> Result<(), (usize, String)> {
    match merged {
        Value::Object(map) => {
            for (k, v) in map {
                entries.entry(k).or_insert(v);
            }
            Ok(())
        }
        Value::Array(items) => {
            for item in items {
                merge_into(entries, item, line)?;
            }
            Ok(())
        }
        _ => Err((line, "a merge key (<<) must name a mapping or a list of mappings".into())),
    }
}

/// What an alias to a value adds: its nodes and the bytes of its text.
#[derive(Clone, Copy, Debug, Default)]
struct Weight {
    nodes: usize,
    bytes: usize,
}

fn weight(value: &Value) -> Weight {
    // Depth is bounded by MAX_DEPTH, so this recursion is too.
    match value {
        Value::Array(items) => items.iter().map(weight).fold(Weight { nodes: 1, bytes: 0 }, add),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let w = weight(v);
                Weight { nodes: w.nodes, bytes: w.bytes + k.len() }
            })
            .fold(Weight { nodes: 1, bytes: 0 }, add),
        Value::String(text) => Weight { nodes: 1, bytes: text.len() },
        _ => Weight { nodes: 1, bytes: 8 },
    }
}

fn add(a: Weight, b: Weight) -> Weight {
    Weight { nodes: a.nodes + b.nodes, bytes: a.bytes + b.bytes }
}

/// Resolves one scalar by the YAML 1.1 rules go-yaml v2 applies.
fn resolve_scalar(text: &str, style: TScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("str") | Some("binary") => return Value::String(text.to_owned()),
        Some("null") => return Value::Null,
        _ => {}
    }
    if style != TScalarStyle::Plain {
        return Value::String(text.to_owned());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        _ => {}
    }
    if let Some(n) = parse_int(text) {
        return Value::Number(n.into());
    }
    if let Some(n) = parse_float(text) {
        return Value::Number(n);
    }
    Value::String(text.to_owned())
}

/// Go's `strconv.ParseInt(s, 0, 64)` after removing `_`: `0x` hex, `0o` or a
/// leading `0` octal, `0b` binary, else decimal.
fn parse_int(text: &str) -> Option<i64> {
    let first = text.as_bytes().first()?;
    if !(first.is_ascii_digit() || *first == b'-' || *first == b'+') {
        return None;
    }
    let plain: String = text.chars().filter(|c| *c != '_').collect();
    let (negative, digits) = match plain.as_bytes().first() {
        Some(b'-') => (true, &plain[1..]),
        Some(b'+') => (false, &plain[1..]),
        _ => (false, plain.as_str()),
    };
    let (radix, body) = if let Some(rest) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        (16, rest)
    } else if let Some(rest) = digits.strip_prefix("0o").or_else(|| digits.strip_prefix("0O")) {
        (8, rest)
    } else if let Some(rest) = digits.strip_prefix("0b").or_else(|| digits.strip_prefix("0B")) {
        (2, rest)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || body.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i64::from_str_radix(body, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

fn parse_float(text: &str) -> Option<Number> {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "-.inf" | ".nan" | ".NaN" | ".NAN" => {
            // JSON has no infinities or NaN; keep the text.
            return None;
        }
        _ => {}
    }
    let has_digit = text.bytes().any(|b| b.is_ascii_digit());
    let allowed = text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'));
    if !has_digit || !allowed {
        return None;
    }
    let plain: String = text.chars().filter(|c| *c != '_').collect();
    plain.parse::<f64>().ok().and_then(Number::from_f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Value {
        let stream = parse_documents(text, "t.yaml");
        assert!(stream.error.is_none(), "{:?}", stream.error);
        stream.documents.into_iter().next().map(|d| d.value).unwrap_or(Value::Null)
    }

    #[test]
    fn yaml_1_1_integers_as_kubernetes_reads_them() {
        let v = one("a: 0400\nb: 0o440\nc: 420\nd: 0x1A\ne: -0644\nf: 0\ng: 1_000\nh: 0b11\n");
        assert_eq!(v, json!({"a": 256, "b": 288, "c": 420, "d": 26, "e": -420, "f": 0, "g": 1000, "h": 3}));
    }

    #[test]
    fn quoted_and_tagged_scalars_stay_strings() {
        let v = one("a: '0400'\nb: \"yes\"\nc: !!str 12\nd: |\n  text\n");
        assert_eq!(v, json!({"a": "0400", "b": "yes", "c": "12", "d": "text\n"}));
    }

    #[test]
    fn booleans_nulls_floats() {
        let v = one("a: on\nb: No\nc: ~\nd:\ne: 1.5\nf: 1e3\ng: .inf\nh: 1.2.3\ni: 08\n");
        assert_eq!(
            v,
            json!({"a": true, "b": false, "c": null, "d": null, "e": 1.5, "f": 1000.0, "g": ".inf", "h": "1.2.3", "i": 8.0})
        );
    }

    #[test]
    fn keys_are_raw_text() {
        assert_eq!(one("80: http\ntrue: x\n"), json!({"80": "http", "true": "x"}));
    }

    #[test]
    fn documents_lines_and_empty_documents() {
        let stream = parse_documents("# c\na: 1\n---\n---\n\nb: 2\n...\n", "t.yaml");
        assert!(stream.error.is_none());
        let lines: Vec<(usize, usize)> = stream.documents.iter().map(|d| (d.index, d.line)).collect();
        assert_eq!(lines, [(0, 2), (1, 6)]);
    }

    #[test]
    fn syntax_error_names_line_and_keeps_earlier_documents() {
        let stream = parse_documents("a: 1\n---\nb: [1, 2\nc: 3\n", "bad.yaml");
        assert_eq!(stream.documents.len(), 1);
        let err = stream.error.map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("bad.yaml:"), "{err}");
        assert!(err.contains("invalid YAML"), "{err}");
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_and_warn() {
        let stream = parse_documents("a: 1\nb: 2\na: 3\n", "dup.yaml");
        assert!(stream.error.is_none());
        assert_eq!(stream.documents[0].value, json!({"a": 3, "b": 2}));
        assert_eq!(stream.warnings, ["line 3: mapping key \"a\" is given more than once; the last value is used"]);
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let v = one("base: &b {x: 1, y: 2}\ncopy: *b\nmerged:\n  <<: *b\n  y: 3\n");
        assert_eq!(v, json!({"base": {"x": 1, "y": 2}, "copy": {"x": 1, "y": 2}, "merged": {"x": 1, "y": 3}}));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let stream = parse_documents(&text, "bomb.yaml");
        assert!(stream.error.is_some());
    }

    #[test]
    fn one_large_anchor_aliased_many_times_is_refused_by_its_bytes() {
        let mut text = format!("big: &big \"{}\"\nrefs:\n", "x".repeat(100_000));
        for _ in 0..1_000 {
            text.push_str("- *big\n");
        }
        let stream = parse_documents(&text, "bytes.yaml");
        let error = stream.error.map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("aliases expand to more than"), "{error}");
    }

    #[test]
    fn deep_nesting_is_an_error_naming_its_line_not_a_crash() {
        // 40,000 nested block sequences, about 80 KB: this used to overflow the stack.
        let text = format!("{}x\n", "- ".repeat(40_000));
        let stream = parse_documents(&text, "deep.yaml");
        let error = stream.error.map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("nested more than 256 levels"), "{error}");
        let flow = format!("{}{}\n", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_documents(&flow, "flow.yaml").error.is_some());
        // As deep as a real object gets is fine.
        let ok = format!("{}x\n", "- ".repeat(100));
        assert!(parse_documents(&ok, "ok.yaml").error.is_none());
    }

    /// Everything `for_each_document` gives, piece by piece, with indexes
    /// made the stream's.
    fn by_pieces(text: &str, target: usize) -> (Vec<YamlDocument>, Option<String>, Vec<String>) {
        let (mut documents, mut warnings, mut before) = (Vec::new(), Vec::new(), 0);
        for piece in split_stream(text, target) {
            let mut local = Vec::new();
            let (error, w) = for_each_document_of(piece, "s.yaml", |doc| local.push(doc));
            warnings.extend(w);
            let count = local.len();
            documents.extend(local.into_iter().map(|d| YamlDocument { index: d.index + before, ..d }));
            before += count;
            if let Some(error) = error {
                return (documents, Some(error.to_string()), warnings);
            }
        }
        (documents, None, warnings)
    }

    #[test]
    fn pieces_read_what_the_whole_stream_reads() {
        let streams = [
            // Anchors, merge keys, empty documents, a duplicate key, comments, CRLF, a `...` end.
            "a: &x {k: 1}\nb: *x\n---\n---\nc: {<<: {m: 1}, n: 2}\nc: 3\n--- # comment\nd: 0400\r\n...\n---\ne: |\n  ---\n  text\n",
            // `----` and `---x` start no document; a later syntax error ends the stream.
            "a: 1\n----: 2\n---\nb: ---x\n---\nc: [1, 2\n---\nd: 4\n",
            // An alias to an anchor of an earlier document is an error in both.
            "a: &x 1\n---\nb: *x\n",
            // Directives keep the stream whole.
            "%YAML 1.1\n---\na: 1\n---\nb: 2\n",
        ];
        for text in streams {
            let mut whole = Vec::new();
            let (error, warnings) = for_each_document(text, "s.yaml", |doc| whole.push(doc));
            for target in [1, 5, 20, 1_000] {
                let (documents, piece_error, piece_warnings) = by_pieces(text, target);
                assert_eq!(documents, whole, "{text:?} in pieces of {target}");
                // The same error at the same line; an alias to another document's anchor is worded by
                // the parser in a piece, by the builder in the whole stream.
                let whole_error = error.as_ref().map(ToString::to_string);
                let place =
                    |e: &Option<String>| e.as_deref().map(|e| e.split(": invalid YAML").next().map(str::to_owned));
                assert_eq!(place(&piece_error), place(&whole_error), "{text:?} in pieces of {target}");
                if !text.contains("*x") {
                    assert_eq!(piece_error, whole_error, "{text:?} in pieces of {target}");
                }
                assert_eq!(piece_warnings, warnings, "{text:?} in pieces of {target}");
            }
        }
    }

    #[test]
    fn streams_are_cut_only_at_document_starts() {
        let text = "a: 1\n---\nb: 2\n----\n--- c\n---\td\n%x\n";
        // A directive-looking line (`%x` at the start of a line) keeps it whole.
        assert_eq!(split_stream(text, 1).len(), 1);
        let text = "a: 1\n---\nb: 2\n----\n--- c\n---\td\n";
        let starts: Vec<&str> = split_stream(text, 1).iter().map(|p| p.text).collect();
        assert_eq!(starts, ["a: 1\n", "---\nb: 2\n----\n", "--- c\n", "---\td\n"]);
        let lines: Vec<usize> = split_stream(text, 1).iter().map(|p| p.lines_before).collect();
        assert_eq!(lines, [0, 1, 4, 5]);
        assert_eq!(split_stream(text, 1_000).len(), 1);
    }
}
