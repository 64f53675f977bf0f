//! A directory tree as plain values: read from a real directory before a
//! mount (all of it durable), written back to one after the plug is pulled.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    File {
        data: Vec<u8>,
        mode: u32,
    },
    Dir {
        mode: u32,
        entries: BTreeMap<OsString, Image>,
    },
}

impl Image {
    pub fn empty_dir() -> Image {
        Image::Dir {
            mode: 0o755,
            entries: BTreeMap::new(),
        }
    }

    /// Reads `dir` recursively (regular files and directories; anything else
    /// is an error naming it).
    pub fn read_dir(dir: &Path) -> io::Result<Image> {
        let meta = fs::metadata(dir)?;
        let mut entries = BTreeMap::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            let image = if kind.is_dir() {
                Image::read_dir(&path)?
            } else if kind.is_file() {
                let mode = entry.metadata()?.permissions().mode() & 0o7777;
                Image::File {
                    data: fs::read(&path)?,
                    mode,
                }
            } else {
                return Err(io::Error::other(format!(
                    "{}: only files and directories can be imaged",
                    path.display()
                )));
            };
            entries.insert(entry.file_name(), image);
        }
        Ok(Image::Dir {
            mode: meta.permissions().mode() & 0o7777,
            entries,
        })
    }

    /// Replaces the contents of the existing directory `dir` with this image.
    pub fn write_dir(&self, dir: &Path) -> io::Result<()> {
        let Image::Dir { entries, mode } = self else {
            return Err(io::Error::other("the root of an image is a directory"));
        };
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(entry.path())?;
            } else {
                fs::remove_file(entry.path())?;
            }
        }
        for (name, image) in entries {
            let path = dir.join(name);
            match image {
                Image::File { data, mode } => {
                    fs::write(&path, data)?;
                    fs::set_permissions(&path, fs::Permissions::from_mode(*mode))?;
                }
                Image::Dir { .. } => {
                    fs::create_dir(&path)?;
                    image.write_dir(&path)?;
                }
            }
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(*mode))
    }

    /// Bytes of file data in the whole tree.
    pub fn size_bytes(&self) -> u64 {
        match self {
            Image::File { data, .. } => data.len() as u64,
            Image::Dir { entries, .. } => entries.values().map(Image::size_bytes).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_survives_a_write_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/a"), b"alpha").unwrap();
        fs::write(dir.path().join("b"), b"").unwrap();
        let image = Image::read_dir(dir.path()).unwrap();
        let copy = tempfile::tempdir().unwrap();
        fs::write(copy.path().join("stale"), b"x").unwrap();
        image.write_dir(copy.path()).unwrap();
        assert_eq!(Image::read_dir(copy.path()).unwrap(), image);
        assert!(!copy.path().join("stale").exists());
        assert_eq!(image.size_bytes(), 5);
    }
}
