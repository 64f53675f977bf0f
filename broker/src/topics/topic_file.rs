//! `<data_dir>/topics/<name>.toml`: a topic's identity and settings.
//!
//! ```toml
//! name = "events"
//! id = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
//! [settings]
//! partitions = 3
//! retention_ms = 86400000
//! ```
//!
//! Written atomically before a created topic is visible to clients, removed
//! first when a topic is deleted: the file's existence is the topic's.

use super::{Result, TopicError};
use crate::config::TopicSettings;
use crate::log::checkpoint::{create_dir_all, sync_dir, write_atomically};
use crate::log::LogError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const TOPICS_DIR: &str = "topics";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicFile {
    pub name: String,
    pub id: uuid::Uuid,
    pub settings: TopicSettings,
}

fn topics_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(TOPICS_DIR)
}

fn io<'a>(operation: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> TopicError + 'a {
    move |source| {
        TopicError::Log(LogError::Io {
            operation,
            path: path.to_path_buf(),
            source,
        })
    }
}

pub fn read_all(data_dir: &Path) -> Result<Vec<TopicFile>> {
    let dir = topics_dir(data_dir);
    create_dir_all(&dir)?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(io("list", &dir))? {
        let path = entry.map_err(io("list", &dir))?.path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(io("read", &path))?;
        let file: TopicFile = toml::from_str(&text).map_err(|e| {
            TopicError::Log(LogError::Corrupt {
                path: path.clone(),
                position: 0,
                reason: e.to_string(),
            })
        })?;
        files.push(file);
    }
    // Trusted as listed from now on (a topic file renamed in just before a
    // process crash is still only in the page cache), and so is the data
    // directory that holds `topics/` and the partition directories.
    sync_dir(&dir)?;
    sync_dir(data_dir)?;
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

pub fn write(data_dir: &Path, file: &TopicFile) -> Result<()> {
    let dir = topics_dir(data_dir);
    create_dir_all(&dir)?;
    let text = toml::to_string(file).expect("topic file serialises");
    Ok(write_atomically(&dir, &format!("{}.toml", file.name), text.as_bytes())?)
}

pub fn remove(data_dir: &Path, name: &str) -> Result<()> {
    let dir = topics_dir(data_dir);
    let path = dir.join(format!("{name}.toml"));
    std::fs::remove_file(&path).map_err(io("remove", &path))?;
    Ok(sync_dir(&dir)?)
}
