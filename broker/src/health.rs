//! The broker's health, as a `/health` endpoint reports it: a broker is
//! healthy while every partition accepts writes. A partition stops accepting
//! them when an fsync fails (it is poisoned until the broker restarts and
//! rescans its tail; see [`crate::log::partition_log`]), so the health lists
//! the poisoned partitions.
//!
//! It only reads the topics' state; it never changes it and never logs.

use crate::topics::Topics;
use std::fmt;

/// A partition, named as Kafka tools and the data directory name it:
/// `<topic>-<partition>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionName {
    pub topic: String,
    pub partition: i32,
}

impl fmt::Display for PartitionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// What is wrong with a broker, if anything. Displays as the message a
/// health check reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Partitions that refuse writes after a failed fsync, in topic order,
    /// then partition order.
    pub poisoned_partitions: Vec<PartitionName>,
}

impl Health {
    /// The health of every partition of `topics`, as of now.
    pub fn of(topics: &Topics) -> Self {
        let mut poisoned_partitions = Vec::new();
        for topic in topics.list() {
            for (index, log) in topic.partitions.iter().enumerate() {
                if log.is_poisoned() {
                    poisoned_partitions.push(PartitionName {
                        topic: topic.name.clone(),
                        partition: index as i32,
                    });
                }
            }
        }
        Self { poisoned_partitions }
    }

    pub fn is_healthy(&self) -> bool {
        self.poisoned_partitions.is_empty()
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_healthy() {
            return f.write_str("every partition accepts writes");
        }
        f.write_str("partitions refuse writes after a failed fsync: ")?;
        for (index, partition) in self.poisoned_partitions.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{partition}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(topic: &str, partition: i32) -> PartitionName {
        PartitionName {
            topic: topic.into(),
            partition,
        }
    }

    #[test]
    fn poisoned_partitions_are_listed_by_name_in_the_message() {
        let health = Health {
            poisoned_partitions: vec![partition("a", 0), partition("b", 1)],
        };
        assert!(!health.is_healthy());
        assert_eq!(
            health.to_string(),
            "partitions refuse writes after a failed fsync: a-0, b-1"
        );
    }

    #[test]
    fn no_poisoned_partition_is_healthy() {
        let health = Health::default();
        assert!(health.is_healthy());
        assert_eq!(health.to_string(), "every partition accepts writes");
    }
}
