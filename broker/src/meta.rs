//! Broker-wide facts kept in the data directory:
//!
//! - `meta.toml`: `cluster_id = "<id>"` and `format = 1`, written once, atomically.
//!   Clients can pin the cluster id, so a QA process pointed at production
//!   (or the reverse) fails loudly instead of mixing data.
//! - `producer-ids`: the next unallocated block of idempotent producer ids,
//!   so ids stay unique across restarts (Kafka's producer id blocks).

use crate::log::checkpoint::write_atomically;
use crate::log::error::{LogError, Result};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file that holds the cluster id; its absence means a new cluster.
pub const META_FILE: &str = "meta.toml";
const PRODUCER_IDS_FILE: &str = "producer-ids";
/// Producer ids handed out per durable write of `producer-ids`: one small
/// fsync per 1,000 producers, and at most 1,000 ids skipped by a crash.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

#[derive(Debug, Serialize, Deserialize)]
struct MetaFile {
    format: u32,
    cluster_id: String,
}

fn io(operation: &'static str, path: &Path, source: std::io::Error) -> LogError {
    LogError::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `data_dir` holds no cluster yet: the broker's first start on it
/// creates one (a new cluster id).
pub fn is_new_cluster(data_dir: &Path) -> bool {
    !data_dir.join(META_FILE).exists()
}

/// Reads the stored cluster id, or stores `wanted` (or a fresh one) on first start.
pub fn load_cluster_id(data_dir: &Path, wanted: Option<&str>) -> Result<String> {
    let path = data_dir.join(META_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let meta: MetaFile =
                toml::from_str(&text).map_err(|e| LogError::Config(format!("{}: {e}", path.display())))?;
            if let Some(wanted) = wanted {
                if wanted != meta.cluster_id {
                    return Err(LogError::Config(format!(
                        "data directory {} belongs to cluster {:?}, but the configuration says cluster_id = {wanted:?}; \
                         point the broker at the right data_dir or fix cluster_id",
                        data_dir.display(),
                        meta.cluster_id
                    )));
                }
            }
            Ok(meta.cluster_id)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let cluster_id = wanted.map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
            let meta = MetaFile {
                format: 1,
                cluster_id: cluster_id.clone(),
            };
            let text = toml::to_string(&meta).expect("meta serialises");
            write_atomically(data_dir, META_FILE, text.as_bytes())?;
            Ok(cluster_id)
        }
        Err(error) => Err(io("read", &path, error)),
    }
}

/// Allocates idempotent producer ids that are never reused.
pub struct ProducerIds {
    dir: PathBuf,
    /// (next id to hand out, end of the durably reserved block)
    range: Mutex<(i64, i64)>,
}

impl ProducerIds {
    pub fn open(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(PRODUCER_IDS_FILE);
        let next = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<i64>().map_err(|_| LogError::Corrupt {
                path: path.clone(),
                position: 0,
                reason: "not a number".into(),
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(error) => return Err(io("read", &path, error)),
        };
        Ok(Self {
            dir: data_dir.to_path_buf(),
            range: Mutex::new((next, next)),
        })
    }

    pub fn allocate(&self) -> Result<i64> {
        let mut range = self.range.lock();
        if range.0 == range.1 {
            let end = range.1 + PRODUCER_ID_BLOCK_SIZE;
            write_atomically(&self.dir, PRODUCER_IDS_FILE, format!("{end}\n").as_bytes())?;
            range.1 = end;
        }
        let id = range.0;
        range.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_id_is_generated_once_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let id = load_cluster_id(dir.path(), None).unwrap();
        assert_eq!(load_cluster_id(dir.path(), None).unwrap(), id);
        assert_eq!(load_cluster_id(dir.path(), Some(&id)).unwrap(), id);
        let error = load_cluster_id(dir.path(), Some("other")).unwrap_err().to_string();
        assert!(error.contains(&id) && error.contains("other"), "{error}");
    }

    #[test]
    fn producer_ids_are_unique_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ProducerIds::open(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| ids.allocate().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        drop(ids);
        let ids = ProducerIds::open(dir.path()).unwrap();
        assert_eq!(ids.allocate().unwrap(), PRODUCER_ID_BLOCK_SIZE);
    }
}
