//! Byte layout of the broker's internal `__relay_offsets-0` log, which keeps
//! committed offsets and group membership durably (Kafka's
//! `__consumer_offsets`). Each entry is one record of an uncompressed batch;
//! the latest record for a key wins, a null value deletes the key.
//! `proto-spec/STORAGE.md`, "Group offsets log", has the same tables.
//!
//! ```text
//! str   = u16 length, UTF-8 bytes          bytes = u32 length, bytes
//! offset key:   u8 1, str group, str topic, i32 partition
//! offset value: u8 1 (version), i64 offset, i32 leader_epoch, i64 commit_timestamp_ms, str metadata
//! group key:    u8 2, str group
//! group value:  u8 1 (version), i32 generation, str protocol_type, str protocol_name, str leader,
//!               u32 member count, per member: str member_id, str group_instance_id ("" = none),
//!               str client_id, str client_host, i32 session_timeout_ms, i32 rebalance_timeout_ms,
//!               bytes subscription, bytes assignment
//! ```
//! Decoding is strict: any short or trailing byte makes the record an error.

use bytes::Bytes;

const KIND_OFFSET: u8 = 1;
const KIND_GROUP: u8 = 2;
const VALUE_VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OffsetKey {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub commit_timestamp_ms: i64,
    pub metadata: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    pub group: String,
    pub generation: i32,
    pub protocol_type: String,
    pub protocol_name: String,
    pub leader: String,
    pub members: Vec<StoredMember>,
}

/// One decoded record of the offsets log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Offset(OffsetKey, Option<CommittedOffset>),
    Group(String, Option<StoredGroup>),
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    let bytes = &text.as_bytes()[..text.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

pub fn offset_key(key: &OffsetKey) -> Vec<u8> {
    let mut out = vec![KIND_OFFSET];
    put_str(&mut out, &key.group);
    put_str(&mut out, &key.topic);
    out.extend_from_slice(&key.partition.to_be_bytes());
    out
}

pub fn offset_value(value: &CommittedOffset) -> Vec<u8> {
    let mut out = vec![VALUE_VERSION];
    out.extend_from_slice(&value.offset.to_be_bytes());
    out.extend_from_slice(&value.leader_epoch.to_be_bytes());
    out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
    put_str(&mut out, &value.metadata);
    out
}

pub fn group_key(group: &str) -> Vec<u8> {
    let mut out = vec![KIND_GROUP];
    put_str(&mut out, group);
    out
}

pub fn group_value(group: &StoredGroup) -> Vec<u8> {
    let mut out = vec![VALUE_VERSION];
    out.extend_from_slice(&group.generation.to_be_bytes());
    put_str(&mut out, &group.protocol_type);
    put_str(&mut out, &group.protocol_name);
    put_str(&mut out, &group.leader);
    out.extend_from_slice(&(group.members.len() as u32).to_be_bytes());
    for member in &group.members {
        put_str(&mut out, &member.member_id);
        put_str(&mut out, member.group_instance_id.as_deref().unwrap_or(""));
        put_str(&mut out, &member.client_id);
        put_str(&mut out, &member.client_host);
        out.extend_from_slice(&member.session_timeout_ms.to_be_bytes());
        out.extend_from_slice(&member.rebalance_timeout_ms.to_be_bytes());
        put_bytes(&mut out, &member.subscription);
        put_bytes(&mut out, &member.assignment);
    }
    out
}

/// A cursor that fails (returns `None`) on any short read.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4).map(|b| i32::from_be_bytes(b.try_into().expect("4")))
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8).map(|b| i64::from_be_bytes(b.try_into().expect("8")))
    }
    fn str(&mut self) -> Option<String> {
        let length = u16::from_be_bytes(self.take(2)?.try_into().expect("2")) as usize;
        String::from_utf8(self.take(length)?.to_vec()).ok()
    }
    fn bytes(&mut self) -> Option<Bytes> {
        let length = u32::from_be_bytes(self.take(4)?.try_into().expect("4")) as usize;
        Some(Bytes::copy_from_slice(self.take(length)?))
    }
    fn finished(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Decodes one record; `None` when the bytes are not a valid entry.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<Entry> {
    let mut reader = Reader { bytes: key };
    match reader.u8()? {
        KIND_OFFSET => {
            let key = OffsetKey {
                group: reader.str()?,
                topic: reader.str()?,
                partition: reader.i32()?,
            };
            if !reader.finished() {
                return None;
            }
            let value = match value {
                None => None,
                Some(bytes) => {
                    let mut reader = Reader { bytes };
                    if reader.u8()? != VALUE_VERSION {
                        return None;
                    }
                    let value = CommittedOffset {
                        offset: reader.i64()?,
                        leader_epoch: reader.i32()?,
                        commit_timestamp_ms: reader.i64()?,
                        metadata: reader.str()?,
                    };
                    reader.finished().then_some(value)?.into()
                }
            };
            Some(Entry::Offset(key, value))
        }
        KIND_GROUP => {
            let group = reader.str()?;
            if !reader.finished() {
                return None;
            }
            let value = match value {
                None => None,
                Some(bytes) => Some(decode_group(group.clone(), bytes)?),
            };
            Some(Entry::Group(group, value))
        }
        _ => None,
    }
}

fn decode_group(group: String, bytes: &[u8]) -> Option<StoredGroup> {
    let mut reader = Reader { bytes };
    if reader.u8()? != VALUE_VERSION {
        return None;
    }
    let generation = reader.i32()?;
    let protocol_type = reader.str()?;
    let protocol_name = reader.str()?;
    let leader = reader.str()?;
    let count = reader.i32()? as u32 as usize;
    let mut members = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let member_id = reader.str()?;
        let instance = reader.str()?;
        members.push(StoredMember {
            member_id,
            group_instance_id: (!instance.is_empty()).then_some(instance),
            client_id: reader.str()?,
            client_host: reader.str()?,
            session_timeout_ms: reader.i32()?,
            rebalance_timeout_ms: reader.i32()?,
            subscription: reader.bytes()?,
            assignment: reader.bytes()?,
        });
    }
    reader.finished().then_some(StoredGroup {
        group,
        generation,
        protocol_type,
        protocol_name,
        leader,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_truncations_fail() {
        let key = OffsetKey {
            group: "g".into(),
            topic: "events".into(),
            partition: 3,
        };
        let value = CommittedOffset {
            offset: 42,
            leader_epoch: -1,
            commit_timestamp_ms: 7,
            metadata: "m".into(),
        };
        let (k, v) = (offset_key(&key), offset_value(&value));
        assert_eq!(decode(&k, Some(&v)), Some(Entry::Offset(key.clone(), Some(value))));
        assert_eq!(decode(&k, None), Some(Entry::Offset(key, None)));
        for cut in 0..v.len() {
            assert_eq!(decode(&k, Some(&v[..cut])), None);
        }
        let group = StoredGroup {
            group: "g".into(),
            generation: 5,
            protocol_type: "consumer".into(),
            protocol_name: "range".into(),
            leader: "m1".into(),
            members: vec![StoredMember {
                member_id: "m1".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"assign"),
            }],
        };
        let (k, v) = (group_key("g"), group_value(&group));
        assert_eq!(decode(&k, Some(&v)), Some(Entry::Group("g".into(), Some(group))));
        for cut in 0..v.len() {
            assert_eq!(decode(&k, Some(&v[..cut])), None);
        }
        assert_eq!(decode(&[9], None), None);
    }
}
