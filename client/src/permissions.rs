//! What the logged-in user may do, as the broker reports it: Kafka's
//! authorized-operations bit fields (KIP-430) from Metadata (topics, and the
//! cluster at v8-v10) and DescribeGroups (v3+). `relay status` shows them.
//! A broker that does not report them (no grants, or an older Kafka) gives
//! `None` where it says nothing.

use crate::cluster::Cluster;
use crate::error::{check, Result};
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, GroupId, MetadataRequest, MetadataResponse,
};
use kafka_protocol::protocol::StrBytes;

/// Kafka's "not asked for / not known" value of an authorized-operations field.
pub const UNKNOWN_OPERATIONS: i32 = i32::MIN;

/// Kafka `AclOperation` codes and the names Relay's grants use for them.
const OPERATION_NAMES: [(u32, &str); 12] = [
    (2, "all"),
    (3, "consume"),
    (4, "produce"),
    (5, "create"),
    (6, "delete"),
    (7, "alter"),
    (8, "describe"),
    (9, "cluster_action"),
    (10, "describe_configs"),
    (11, "alter_configs"),
    (12, "idempotent_write"),
    (13, "create_tokens"),
];

/// The operation names set in a bit field; `None` when the broker did not say.
pub fn operation_names(bits: i32) -> Option<Vec<&'static str>> {
    if bits == UNKNOWN_OPERATIONS {
        return None;
    }
    Some(
        OPERATION_NAMES
            .iter()
            .filter(|(code, _)| bits & (1 << code) != 0)
            .map(|(_, name)| *name)
            .collect(),
    )
}

#[derive(Debug, Clone, Default)]
pub struct Permissions {
    /// On the cluster; `None` when the broker did not say.
    pub cluster: Option<Vec<&'static str>>,
    /// Every topic the user may describe, with what it may do there.
    pub topics: Vec<(String, Option<Vec<&'static str>>)>,
    /// The groups asked about, with what the user may do there ("consume" is
    /// Kafka's READ: join and commit).
    pub groups: Vec<(String, Option<Vec<&'static str>>)>,
}

/// The user's permissions on the cluster, every topic it can see, and `groups`.
pub async fn permissions(cluster: &Cluster, groups: &[String]) -> Result<Permissions> {
    let connection = cluster.any_connection().await?;
    let negotiated = connection.version(ApiKey::Metadata)?;
    let mut permissions = Permissions::default();
    if negotiated >= 8 {
        // Cluster operations left Metadata at v11 (KIP-700): ask at most v10.
        let request = MetadataRequest::default()
            .with_topics(None)
            .with_allow_auto_topic_creation(false)
            .with_include_topic_authorized_operations(true)
            .with_include_cluster_authorized_operations(true);
        let response: MetadataResponse = connection
            .start(ApiKey::Metadata, negotiated.min(10), &request)
            .await?
            .response()
            .await?;
        permissions.cluster = operation_names(response.cluster_authorized_operations);
        permissions.topics = response
            .topics
            .iter()
            .filter(|t| t.error_code == 0)
            .filter_map(|t| {
                Some((
                    t.name.as_ref()?.to_string(),
                    operation_names(t.topic_authorized_operations),
                ))
            })
            .collect();
        permissions.topics.sort();
    }
    if !groups.is_empty() && connection.version(ApiKey::DescribeGroups)? >= 3 {
        let request = DescribeGroupsRequest::default()
            .with_groups(
                groups
                    .iter()
                    .map(|g| GroupId(StrBytes::from_string(g.clone())))
                    .collect(),
            )
            .with_include_authorized_operations(true);
        let response: DescribeGroupsResponse = connection.send(ApiKey::DescribeGroups, &request).await?;
        for group in response.groups {
            check(group.error_code, || {
                format!("describing group {}", group.group_id.as_str())
            })?;
            permissions
                .groups
                .push((group.group_id.to_string(), operation_names(group.authorized_operations)));
        }
    }
    Ok(permissions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_name_relay_operations() {
        assert_eq!(operation_names((1 << 4) | (1 << 8)).unwrap(), ["produce", "describe"]);
        assert_eq!(operation_names(UNKNOWN_OPERATIONS), None);
        assert_eq!(operation_names(0).unwrap(), Vec::<&str>::new());
    }
}
