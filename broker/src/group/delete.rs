//! DeleteGroups on the coordinator: a group is deleted only when it has no
//! members (Kafka's `Empty`), with its stored membership and every offset it
//! committed, durably ([`super::offset_store::OffsetStore::delete_group`]: one batch of
//! tombstones, so a restart does not bring any of it back).
//!
//! A group is taken out of the coordinator under its lock and the tombstones
//! are written after releasing it (durable writes never run under the lock).
//! A JoinGroup arriving meanwhile starts a new group of that name, which
//! the tombstones written just after may leave without its first stored
//! membership until its next rebalance; Kafka leaves this race to the
//! operator as well (delete a group nobody uses). When the tombstones cannot
//! be written, the group goes back (unless a new one took its name) and the
//! answer says the coordinator is not available, as for an offset commit
//! that could not be stored.
//!
//! Blocking: [`Coordinator::delete_groups`] may fsync; async callers use
//! `spawn_blocking`.

use super::coordinator::Coordinator;
use super::state::{Group, GroupState};
use kafka_protocol::error::ResponseError;

/// The answer to a group whose deletion could not be stored.
pub const DELETION_NOT_STORED: ResponseError = ResponseError::CoordinatorNotAvailable;

/// What the coordinator held of a group about to be deleted.
enum Deletable {
    /// A group with no members, taken out of the coordinator.
    Empty(Box<Group>),
    /// A group known only to the store (offsets committed without members).
    StoredOnly,
}

impl Coordinator {
    /// Deletes each group of `group_ids`: `None` when it is gone, else the
    /// error for it (NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND
    /// when neither the coordinator nor the store knows it, INVALID_GROUP_ID
    /// for an empty id).
    pub fn delete_groups(&self, group_ids: &[String]) -> Vec<Option<ResponseError>> {
        group_ids
            .iter()
            .map(|group_id| self.delete_group(group_id).err())
            .collect()
    }

    fn delete_group(&self, group_id: &str) -> Result<(), ResponseError> {
        let deletable = self.take_deletable(group_id)?;
        let last = match &deletable {
            Deletable::Empty(group) => Some(group.to_stored()),
            Deletable::StoredOnly => None,
        };
        match self.store.delete_group(group_id, last) {
            Ok(offsets) => {
                tracing::info!(group = %group_id, offsets_deleted = offsets, "group deleted");
                Ok(())
            }
            Err(error) => {
                tracing::error!(group = %group_id, %error, "could not store the deletion of a group; it is kept");
                if let Deletable::Empty(group) = deletable {
                    self.groups.lock().entry(group_id.to_owned()).or_insert(*group);
                }
                Err(DELETION_NOT_STORED)
            }
        }
    }

    /// Takes the group out of the coordinator when it may be deleted.
    fn take_deletable(&self, group_id: &str) -> Result<Deletable, ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let mut groups = self.groups.lock();
        if let Some(group) = groups.get_mut(group_id) {
            self.expire_due_now(group);
        }
        match groups.get(group_id) {
            Some(group) if group.state != GroupState::Empty || !group.members.is_empty() => {
                Err(ResponseError::NonEmptyGroup)
            }
            Some(_) => {
                let group = groups.remove(group_id).expect("present");
                Ok(Deletable::Empty(Box::new(group)))
            }
            None if self.store.knows_group(group_id) => Ok(Deletable::StoredOnly),
            None => Err(ResponseError::GroupIdNotFound),
        }
    }
}
