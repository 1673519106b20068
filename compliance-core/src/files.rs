//! The one folder walk of every file-based source (Kubernetes manifests,
//! Terraform, Rego policies), with one set of limits.
//!
//! Paths named by the user are taken as given; folders are walked in name
//! order for the files a source wants. Hidden folders (`.git`, `.terraform`)
//! are not entered, a folder reached twice through links is walked once, and
//! nothing deeper than [`MAX_DEPTH`] is entered. A path that cannot be read
//! or listed is a [`Gap`] naming it; the walk goes on.
//!
//! ```
//! # fn main() -> std::io::Result<()> {
//! let dir = std::env::temp_dir().join(format!("walk-doc-{}", std::process::id()));
//! std::fs::create_dir_all(dir.join("apps/.git"))?;
//! std::fs::write(dir.join("apps/web.yaml"), "kind: Pod")?;
//! std::fs::write(dir.join("apps/.git/config.yaml"), "x: 1")?;
//! std::fs::write(dir.join("apps/notes.txt"), "")?;
//! let mut gaps = Vec::new();
//! let files = compliance_core::files::files_under(&[&dir], |p| p.extension().is_some_and(|e| e == "yaml"), &mut gaps);
//! assert_eq!(files, [dir.join("apps/web.yaml")]);
//! # std::fs::remove_dir_all(&dir) }
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::collector::{Gap, GapKind};

/// Folders deeper than this below a named path are not entered.
pub const MAX_DEPTH: usize = 32;

/// The files `paths` name: files as given, folders walked for the files
/// `wanted` accepts. Unreadable paths become gaps.
pub fn files_under<P: AsRef<Path>>(paths: &[P], wanted: fn(&Path) -> bool, gaps: &mut Vec<Gap>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        let path = path.as_ref();
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk(path, 0, wanted, &mut files, &mut seen, gaps),
            Ok(_) => files.push(path.to_path_buf()),
            Err(e) => {
                gaps.push(Gap::source(path.display().to_string(), GapKind::Unreadable, format!("cannot read: {e}")))
            }
        }
    }
    files
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn walk(
    dir: &Path,
    depth: usize,
    wanted: fn(&Path) -> bool,
    files: &mut Vec<PathBuf>,
    seen: &mut HashSet<PathBuf>,
    gaps: &mut Vec<Gap>,
) {
    // Links may lead back up the tree: each real folder is walked once.
    let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if depth > MAX_DEPTH || !seen.insert(key) {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            gaps.push(Gap::source(dir.display().to_string(), GapKind::Unreadable, format!("cannot list: {e}")));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            if !is_hidden(&path) {
                walk(&path, depth + 1, wanted, files, seen, gaps);
            }
        } else if wanted(&path) {
            files.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_paths_are_gaps_and_link_loops_end() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("walk-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a"))?;
        std::fs::write(dir.join("a/x.yaml"), "")?;
        #[cfg(unix)]
        std::os::unix::fs::symlink(&dir, dir.join("a/loop"))?;
        let mut gaps = Vec::new();
        let files = files_under(&[dir.clone(), dir.join("missing")], |_| true, &mut gaps);
        assert_eq!(files, [dir.join("a/x.yaml")]);
        assert_eq!(gaps.len(), 1);
        assert!(gaps[0].reason.starts_with("cannot read:"), "{}", gaps[0].reason);
        std::fs::remove_dir_all(&dir)
    }
}
