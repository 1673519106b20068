//! The one folder walk of every file-based source (Kubernetes manifests,
//! Terraform, Rego policies), with one set of limits.
//!
//! Paths named by the user are taken as given; folders are walked in name
//! order for the files a source wants. Hidden folders (`.git`, `.terraform`)
//! are not entered, a folder reached twice through links is walked once, and
//! nothing deeper than [`MAX_DEPTH`] is entered. Inside a folder only regular
//! files are taken, and none larger than [`MAX_FILE_BYTES`]: a FIFO or a
//! device there (a link to `/dev/zero`) would block or never end a read. A
//! path named on purpose is taken as it is (`<(kubectl get … -o yaml)` is a
//! pipe). A path that cannot be read, listed or used is a [`Gap`] naming it;
//! the walk goes on.
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

/// Files larger than this are not read (a gap says so).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// The file, if it is a regular file within the size limit; else a gap.
fn usable(path: &Path, meta: &std::fs::Metadata, gaps: &mut Vec<Gap>) -> bool {
    let problem = if !meta.is_file() {
        Some("not a regular file (a FIFO, a device or a socket): not read".to_owned())
    } else if meta.len() > MAX_FILE_BYTES {
        Some(format!("{} bytes, more than the {MAX_FILE_BYTES}-byte limit: not read", meta.len()))
    } else {
        None
    };
    match problem {
        Some(reason) => {
            gaps.push(Gap::source(path.display().to_string(), GapKind::Unreadable, reason));
            false
        }
        None => true,
    }
}

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
            continue;
        }
        if !wanted(&path) {
            continue;
        }
        // Links are followed: the metadata is the target's.
        match std::fs::metadata(&path) {
            Ok(meta) if usable(&path, &meta, gaps) => files.push(path),
            Ok(_) => {}
            Err(e) => {
                gaps.push(Gap::source(path.display().to_string(), GapKind::Unreadable, format!("cannot read: {e}")))
            }
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

    #[cfg(unix)]
    #[test]
    fn fifos_and_devices_are_gaps_and_never_read() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("walk-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("good.yaml"), "kind: Pod")?;
        let made = std::process::Command::new("mkfifo").arg(dir.join("x.yaml")).status()?;
        assert!(made.success());
        std::os::unix::fs::symlink("/dev/zero", dir.join("zero.yaml"))?;
        let mut gaps = Vec::new();
        let files = files_under(std::slice::from_ref(&dir), |p| p.extension().is_some_and(|e| e == "yaml"), &mut gaps);
        assert_eq!(files, [dir.join("good.yaml")]);
        let mut sources: Vec<String> = gaps.iter().filter_map(|g| g.source.clone()).collect();
        sources.sort();
        assert_eq!(sources, [dir.join("x.yaml").display().to_string(), dir.join("zero.yaml").display().to_string()]);
        assert!(gaps.iter().all(|g| g.reason.starts_with("not a regular file")));
        // Named on purpose (a pipe from process substitution is one), it is taken.
        let mut gaps = Vec::new();
        assert_eq!(files_under(&[dir.join("x.yaml")], |_| true, &mut gaps), [dir.join("x.yaml")]);
        assert!(gaps.is_empty());
        std::fs::remove_dir_all(&dir)
    }

    #[test]
    fn a_file_over_the_size_limit_is_a_gap_and_never_read() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("walk-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("small.yaml"), "kind: Pod")?;
        // Sparse: 300 MiB that take no disk space.
        std::fs::File::create(dir.join("huge.yaml"))?.set_len(MAX_FILE_BYTES + 1)?;
        let mut gaps = Vec::new();
        let files = files_under(std::slice::from_ref(&dir), |_| true, &mut gaps);
        assert_eq!(files, [dir.join("small.yaml")]);
        assert_eq!(gaps.len(), 1);
        assert!(gaps[0].reason.contains("-byte limit: not read"), "{}", gaps[0].reason);
        std::fs::remove_dir_all(&dir)
    }
}
