//! Manifests: files and folders of YAML or JSON, multi-document, `List` kinds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use compliance_core::files::files_under;
use compliance_core::yaml::{Piece, YamlDocument, for_each_document_of, split_stream};
use compliance_core::{Check, Collection, Collector, Error, Evidence, Gap, GapKind, ResourceRef, Scope};
use rayon::prelude::*;
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::config::CheckConfig;
use crate::judge::{KubeObject, judge_object, judges_type};
use crate::rules::unreadable;

/// Judges workloads in manifest files.
///
/// Paths may be files or folders (read recursively, `.yaml`, `.yml` and
/// `.json`, in name order). A file that cannot be read or parsed is a gap
/// naming the file and line, and the others are still judged. An object that
/// is a workload but cannot be read (a field of the wrong type) gives `error`
/// evidence for each of its checks. Kinds without a pod template (Services,
/// ConfigMaps, Secrets, custom resources) produce no evidence, and no value of
/// theirs is ever copied anywhere.
///
/// ```no_run
/// use compliance_core::{Collector, Scope};
/// use compliance_k8s::ManifestCollector;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> compliance_core::Result<()> {
/// let collector = ManifestCollector::new(["deploy/"]);
/// let collection = collector.collect(&Scope::all()).await?;
/// println!("{} evidence, {} gaps", collection.evidence.len(), collection.gaps.len());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ManifestCollector {
    paths: Vec<PathBuf>,
    config: CheckConfig,
}

impl ManifestCollector {
    /// A collector over these files and folders.
    pub fn new<I: IntoIterator<Item = P>, P: Into<PathBuf>>(paths: I) -> Self {
        Self { paths: paths.into_iter().map(Into::into).collect(), config: CheckConfig::default() }
    }

    /// Sets the check settings.
    pub fn with_config(mut self, config: CheckConfig) -> Self {
        self.config = config;
        self
    }
}

#[async_trait]
impl Collector for ManifestCollector {
    fn name(&self) -> &str {
        "k8s-manifests"
    }

    fn checks(&self) -> Vec<Check> {
        self.config.checks()
    }

    async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
        let (paths, config, scope) = (self.paths.clone(), self.config.clone(), scope.clone());
        // File reading and parsing are blocking work: keep them off the runtime's threads.
        tokio::task::spawn_blocking(move || scan_paths(&paths, &config, &scope))
            .await
            .map_err(|e| Error::collect_from("k8s-manifests", e.to_string(), e))
    }
}

/// Judges every manifest under `paths`: files on every core, results in
/// file order.
pub fn scan_paths(paths: &[PathBuf], config: &CheckConfig, scope: &Scope) -> Collection {
    let mut collection = Collection::default();
    let files = files_under(paths, is_manifest, &mut collection.gaps);
    let per_file: Vec<Collection> = files
        .par_iter()
        .map(|file| {
            let name = file.display().to_string();
            match std::fs::read_to_string(file) {
                Ok(text) => scan_text(&text, &name, config, scope),
                Err(e) => Collection::new(
                    Vec::new(),
                    vec![Gap::source(name, GapKind::Unreadable, format!("cannot read: {e}"))],
                ),
            }
        })
        .collect();
    // Reserved once, so that moving every file's evidence in never holds two copies of the list.
    collection.evidence.reserve_exact(per_file.iter().map(|c| c.evidence.len()).sum());
    for one in per_file {
        collection.evidence.extend(one.evidence);
        collection.gaps.extend(one.gaps);
    }
    info!(files = files.len(), evidence = collection.evidence.len(), gaps = collection.gaps.len(), "manifests judged");
    collection
}

fn is_manifest(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

/// Judges the manifests in one text; `source_name` is the path shown in
/// evidence and gaps. JSON is read as JSON when the name ends in `.json`.
///
/// ```
/// use compliance_core::{Scope, Status};
/// use compliance_k8s::{CheckConfig, scan_text};
/// let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: web, image: nginx:1.27}]\n";
/// let c = scan_text(text, "pod.yaml", &CheckConfig::default(), &Scope::only(["k8s.container.memory_limit"]));
/// assert_eq!(c.evidence[0].status, Status::Fail);
/// assert_eq!(c.evidence[0].resource.file.as_deref(), Some("pod.yaml"));
/// assert_eq!(c.evidence[0].resource.line, Some(1));
/// ```
pub fn scan_text(text: &str, source_name: &str, config: &CheckConfig, scope: &Scope) -> Collection {
    let mut collection = Collection::default();
    scan_text_into(text, source_name, config, scope, &mut collection);
    collection
}

/// Objects left to judge in one file, and how many were left out.
struct Budget {
    left: usize,
    skipped: usize,
}

fn scan_text_into(text: &str, source_name: &str, config: &CheckConfig, scope: &Scope, out: &mut Collection) {
    let mut budget = Budget { left: config.max_objects_per_file.max(1), skipped: 0 };
    scan_text_within(text, source_name, config, scope, out, &mut budget);
    if budget.skipped > 0 {
        out.gaps.push(Gap::source(
            source_name.to_owned(),
            GapKind::Unreadable,
            format!(
                "{} objects judged, {} more left out: one file holds at most {} (split the file)",
                config.max_objects_per_file, budget.skipped, config.max_objects_per_file
            ),
        ));
    }
}

/// Bytes of YAML per piece parsed on one core: large enough that a piece
/// holds many documents, small enough that a 4 MB file keeps both cores busy.
const PIECE_BYTES: usize = 64 * 1024;

/// Pieces parsed, then judged, per round: the parsed documents of one round
/// are all that is held, so memory does not grow with the file.
const PIECES_PER_ROUND: usize = 16;

fn scan_text_within(
    text: &str,
    source_name: &str,
    config: &CheckConfig,
    scope: &Scope,
    out: &mut Collection,
    budget: &mut Budget,
) {
    let mut workloads = Vec::new();
    if source_name.ends_with(".json") {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => {
                select(value, source_name, &format!("{source_name}#0"), 1, config, out, budget, &mut workloads)
            }
            Err(e) => out.gaps.push(Gap::source(
                format!("{source_name}:{}", e.line()),
                GapKind::Unreadable,
                format!("invalid JSON at line {}, column {}: {}", e.line(), e.column(), redact_json_error(&e)),
            )),
        }
        judge_all(workloads, source_name, config, scope, out);
        return;
    }
    // Documents never share anchors or tags, so pieces of whole documents
    // are parsed on every core; they are then taken in order, so indexes,
    // the per-file budget and a syntax error (which ends the file) are
    // what one pass over the file gives.
    let pieces = split_stream(text, PIECE_BYTES);
    let mut documents_before = 0;
    for round in pieces.chunks(PIECES_PER_ROUND) {
        let parsed: Vec<ParsedPiece> = round.par_iter().map(|piece| parse_piece(*piece, source_name)).collect();
        let mut error = None;
        for piece in parsed {
            for warning in &piece.warnings {
                warn!(file = source_name, "{warning}");
            }
            for doc in piece.documents {
                let id = format!("{source_name}#{}", documents_before + doc.index);
                select(doc.value, source_name, &id, doc.line, config, out, budget, &mut workloads);
            }
            documents_before += piece.count;
            if piece.error.is_some() {
                error = piece.error;
                break;
            }
        }
        judge_all(std::mem::take(&mut workloads), source_name, config, scope, out);
        if let Some(error) = error {
            // The source already names file and line; the reason says what is wrong.
            let (source, reason) = match error {
                Error::Parse { line: Some(line), message, .. } => (format!("{source_name}:{line}"), message),
                other => (source_name.to_owned(), other.to_string()),
            };
            out.gaps.push(Gap::source(source, GapKind::Unreadable, reason));
            return;
        }
    }
}

/// The documents of one piece, parsed.
struct ParsedPiece {
    documents: Vec<YamlDocument>,
    count: usize,
    error: Option<Error>,
    warnings: Vec<String>,
}

fn parse_piece(piece: Piece<'_>, source_name: &str) -> ParsedPiece {
    let mut documents = Vec::new();
    let (error, warnings) = for_each_document_of(piece, source_name, |doc| documents.push(doc));
    ParsedPiece { count: documents.len(), documents, error, warnings }
}

/// A workload chosen for judging: its object, its id in the file, its line.
struct Workload {
    object: Value,
    id: String,
    line: usize,
}

/// Judges workloads on every core; evidence comes out in their order.
fn judge_all(workloads: Vec<Workload>, file: &str, config: &CheckConfig, scope: &Scope, out: &mut Collection) {
    let judged: Vec<Vec<Evidence>> = workloads.par_iter().map(|w| judge_workload(w, file, config, scope)).collect();
    drop(workloads);
    out.evidence.reserve(judged.iter().map(Vec::len).sum());
    for evidence in judged {
        out.evidence.extend(evidence);
    }
}

fn redact_json_error(e: &serde_json::Error) -> String {
    // serde_json's syntax messages carry no input values; keep only the category text.
    let text = e.to_string();
    text.split(" at line ").next().unwrap_or_default().to_owned()
}

/// Chooses the workloads of one document (the items of a `List`), within
/// the file's budget; a document that is not a mapping is a gap.
#[allow(clippy::too_many_arguments)] // one recursion over Lists; the arguments are the walk's state
fn select(
    value: Value,
    file: &str,
    id: &str,
    line: usize,
    config: &CheckConfig,
    out: &mut Collection,
    budget: &mut Budget,
    workloads: &mut Vec<Workload>,
) {
    let Value::Object(mut map) = value else {
        out.gaps.push(Gap::source(
            format!("{file}:{line}"),
            GapKind::Unreadable,
            "the document is not a Kubernetes object (not a mapping)",
        ));
        return;
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
    if kind.ends_with("List")
        && matches!(map.get("items"), Some(Value::Array(_)))
        && let Some(Value::Array(items)) = map.remove("items")
    {
        for (i, item) in items.into_iter().enumerate() {
            select(item, file, &format!("{id}/items[{i}]"), line, config, out, budget, workloads);
        }
        return;
    }
    let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    if !judges_type(config, api_version, &kind) {
        debug!(file, line, kind, "not a workload");
        return;
    }
    if budget.left == 0 {
        budget.skipped += 1;
        return;
    }
    budget.left -= 1;
    workloads.push(Workload { object: Value::Object(map), id: id.to_owned(), line });
}

/// The evidence of one workload.
fn judge_workload(workload: &Workload, file: &str, config: &CheckConfig, scope: &Scope) -> Vec<Evidence> {
    let Workload { object, id, line } = workload;
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    let meta = |key: &str| object.get("metadata").and_then(|m| m.get(key)).and_then(Value::as_str);
    let (name, namespace) = (meta("name").unwrap_or("<unnamed>"), meta("namespace"));
    let resource_id = match namespace {
        Some(ns) => format!("{id}/{ns}/{kind}/{name}"),
        None => format!("{id}/{kind}/{name}"),
    };
    let mut resource = ResourceRef::new("k8s", kind, resource_id, name).with_file(file, Some(*line));
    if let Some(ns) = namespace {
        resource = resource.with_namespace(ns);
    }
    let object = KubeObject::new(object, resource);
    let judged = judge_object(&object, config, scope);
    let mut evidence = judged.evidence;
    if let Some((kind, reason)) = judged.unreadable {
        evidence.extend(unreadable(kind, Arc::clone(object.resource()), &format!("{file}:{line}: {reason}"), scope));
    }
    evidence
}
