//! Kafka's consumer protocol as the group leader sees it: the subscription
//! and assignment messages (a big-endian i16 version, then the message),
//! and the range assignor that splits each topic's partitions into
//! contiguous ranges over the members subscribed to it.

use crate::error::{ClientError, Result};
use crate::types::TopicPartition;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::{Decodable, Encodable};
use std::collections::{BTreeMap, HashMap};

/// Kafka's consumer protocol: a big-endian i16 version, then the message.
pub fn encode_versioned<T: Encodable>(message: &T, version: i16) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(version);
    message
        .encode(&mut out, version)
        .expect("consumer protocol messages encode");
    out.freeze()
}

pub fn decode_assignment(bytes: &Bytes) -> Result<Vec<TopicPartition>> {
    if bytes.len() < 2 {
        return Ok(Vec::new());
    }
    let mut body = bytes.slice(2..);
    let version = i16::from_be_bytes([bytes[0], bytes[1]]).clamp(0, 3);
    let assignment = ConsumerProtocolAssignment::decode(&mut body, version)
        .map_err(|e| ClientError::Invalid(format!("undecodable group assignment: {e:#}")))?;
    let mut partitions: Vec<TopicPartition> = assignment
        .assigned_partitions
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| TopicPartition {
                topic: t.topic.to_string(),
                partition: *p,
            })
        })
        .collect();
    partitions.sort();
    Ok(partitions)
}

pub fn decode_subscription(bytes: &Bytes) -> Vec<String> {
    if bytes.len() < 2 {
        return Vec::new();
    }
    let mut body = bytes.slice(2..);
    let version = i16::from_be_bytes([bytes[0], bytes[1]]).clamp(0, 3);
    ConsumerProtocolSubscription::decode(&mut body, version)
        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

/// The range assignor: per topic, partitions in order are split into
/// contiguous ranges over the subscribed members sorted by id; the first
/// `partitions % members` members get one extra.
pub fn range_assign(
    members: &[(String, Vec<String>)],
    partition_counts: &HashMap<String, usize>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut assignment: BTreeMap<String, Vec<TopicPartition>> =
        members.iter().map(|(id, _)| (id.clone(), Vec::new())).collect();
    let mut topics: Vec<&String> = partition_counts.keys().collect();
    topics.sort();
    for topic in topics {
        let mut subscribed: Vec<&String> = members
            .iter()
            .filter(|(_, t)| t.contains(topic))
            .map(|(id, _)| id)
            .collect();
        subscribed.sort();
        if subscribed.is_empty() {
            continue;
        }
        let count = partition_counts[topic];
        let (each, extra) = (count / subscribed.len(), count % subscribed.len());
        let mut next = 0;
        for (index, member) in subscribed.iter().enumerate() {
            let take = each + usize::from(index < extra);
            let owned = assignment.get_mut(*member).expect("member listed");
            owned.extend((next..next + take).map(|p| TopicPartition {
                topic: topic.clone(),
                partition: p as i32,
            }));
            next += take;
        }
    }
    assignment
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;

    fn text(value: &str) -> StrBytes {
        StrBytes::from_string(value.to_owned())
    }

    #[test]
    fn range_assignor_splits_partitions_in_contiguous_ranges() {
        let members = vec![
            ("b".to_owned(), vec!["t".to_owned()]),
            ("a".to_owned(), vec!["t".to_owned(), "u".to_owned()]),
        ];
        let counts = HashMap::from([("t".to_owned(), 5), ("u".to_owned(), 2)]);
        let assignment = range_assign(&members, &counts);
        let show = |m: &str| {
            assignment[m]
                .iter()
                .map(|tp| format!("{}{}", tp.topic, tp.partition))
                .collect::<Vec<_>>()
        };
        assert_eq!(show("a"), vec!["t0", "t1", "t2", "u0", "u1"]);
        assert_eq!(show("b"), vec!["t3", "t4"]);
    }

    #[test]
    fn consumer_protocol_assignment_round_trips() {
        let assignment =
            ConsumerProtocolAssignment::default().with_assigned_partitions(vec![AssignedPartitions::default()
                .with_topic(TopicName(text("t")))
                .with_partitions(vec![2, 0])]);
        let decoded = decode_assignment(&encode_versioned(&assignment, 0)).unwrap();
        assert_eq!(
            decoded,
            vec![
                TopicPartition {
                    topic: "t".into(),
                    partition: 0
                },
                TopicPartition {
                    topic: "t".into(),
                    partition: 2
                }
            ]
        );
        assert!(decode_assignment(&Bytes::new()).unwrap().is_empty());
    }
}
