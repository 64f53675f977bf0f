//! Path patterns: `*` (any run of characters but `/`) and `?` (one such
//! character) in the last path component, as in `./logs/*.jsonl`. The
//! directory part is taken literally, so a scan is one directory listing.

use crate::error::{Result, SenderError};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    dir: PathBuf,
    name: String,
}

impl PathPattern {
    pub fn parse(pattern: &str) -> Result<Self> {
        let path = Path::new(pattern);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| SenderError::Pattern {
                pattern: pattern.to_owned(),
                reason: "has no file name part",
            })?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if dir.to_string_lossy().contains(['*', '?']) {
            return Err(SenderError::Pattern {
                pattern: pattern.to_owned(),
                reason: "wildcards are only supported in the file name",
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            name: name.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Files in the pattern's directory whose names match, sorted, with
    /// symlinks to files when `follow_symlinks` (Kubernetes'
    /// `/var/log/containers/*.log` are all links; a dangling one is no file);
    /// the error when the directory cannot be listed (missing, not permitted).
    pub fn matching_files(&self, follow_symlinks: bool) -> std::io::Result<Vec<PathBuf>> {
        let entries = std::fs::read_dir(&self.dir)?;
        let is_file = |entry: &std::fs::DirEntry| match entry.file_type() {
            Ok(kind) if kind.is_symlink() => {
                follow_symlinks && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file())
            }
            Ok(kind) => kind.is_file(),
            Err(_) => false,
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .filter(is_file)
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| matches(self.name.as_bytes(), n.as_bytes()))
            })
            .map(|e| e.path())
            .collect();
        files.sort();
        Ok(files)
    }

    /// The pattern as written (directory and file name).
    pub fn display(&self) -> String {
        self.dir.join(&self.name).display().to_string()
    }
}

/// Wildcard match of `name` against `pattern` (`*` and `?`).
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let (mut star, mut star_n) = (None, 0);
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            star_n = n;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            star_n += 1;
            n = star_n;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_a_shell() {
        for (pattern, name, expected) in [
            ("*.jsonl", "app.jsonl", true),
            ("*.jsonl", "app.jsonl.1", false),
            ("app.jsonl*", "app.jsonl.1", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*", "anything", true),
            ("*x*y", "axbxy", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(
                matches(pattern.as_bytes(), name.as_bytes()),
                expected,
                "{pattern} vs {name}"
            );
        }
    }

    #[test]
    fn patterns_split_directory_and_name() {
        let pattern = PathPattern::parse("/var/log/app/*.jsonl").unwrap();
        assert_eq!(pattern.dir(), Path::new("/var/log/app"));
        assert_eq!(PathPattern::parse("*.log").unwrap().dir(), Path::new("."));
        assert!(PathPattern::parse("/var/*/app.log").is_err());
    }
}
