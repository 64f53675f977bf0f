//! `relay groups list|describe|delete|reset-offsets`. A loader's group is
//! kept from deletion and from offset resets: its position lives in its
//! warehouse, and the broker's copy feeds lag, status and retention protection.

use super::client::{connect, fail, parse_position, runtime, with_config};
use crate::cli::{GroupsArgs, GroupsCommand};
use crate::exit;
use relay_client::admin::{Admin, GroupDeletion, GroupMember};
use relay_client::ClientError;
use relay_proto::offset_metadata;

pub fn run(mut args: GroupsArgs) -> i32 {
    if let Err(code) = with_config("groups", &mut args.client, args.config.as_deref()) {
        return code;
    }
    let position = match &args.command {
        GroupsCommand::ResetOffsets { to, .. } => match parse_position(to) {
            Ok(position) => Some(position),
            Err(error) => {
                eprintln!("relay groups: --to {error}");
                return exit::USAGE;
            }
        },
        _ => None,
    };
    runtime().block_on(async move {
        let admin = match connect(&args.client, "relay-groups").await {
            Ok(cluster) => Admin::new(cluster),
            Err(error) => return fail("groups", &error),
        };
        let result: Result<(), ClientError> = match args.command {
            GroupsCommand::List => admin.list_groups().await.map(|groups| {
                println!("{:<40} {:<20} {:<10}", "GROUP", "STATE", "TYPE");
                for group in groups {
                    println!("{:<40} {:<20} {:<10}", group.group, group.state, group.protocol_type);
                }
            }),
            GroupsCommand::Describe { group } => match admin.group_exists(&group).await {
                Ok(false) => {
                    eprintln!("relay groups: no such group {group:?} (no members, no committed offsets); `relay groups list` shows the groups");
                    return exit::FAILURE;
                }
                Ok(true) => describe(&admin, &group).await,
                Err(error) => Err(error),
            },
            GroupsCommand::Delete { group, force } => {
                let force = if force { Force::Yes } else { Force::No };
                return delete(&admin, &group, force).await;
            }
            GroupsCommand::ResetOffsets { group, topic, .. } => {
                match admin.group_offsets_with_metadata(&group).await {
                    Ok(offsets) if offsets.iter().any(|(_, _, metadata)| offset_metadata::is_loader(metadata)) => {
                        eprintln!(
                            "relay groups: group {group:?} belongs to a relay loader, whose position lives in its warehouse \
                             (relay_offsets), so a broker-side reset would be ignored. Load again from a point with a new group \
                             (relay load --group {group}-replay --table ... --from time:RFC3339), or move this one in its warehouse: \
                             UPDATE relay_offsets SET next_offset = N WHERE group_id = '{group}' AND topic = '{topic}' AND partition = P \
                             (with its loaders stopped)"
                        );
                        return exit::USAGE;
                    }
                    Ok(_) => admin
                        .reset_offsets(&group, &topic, position.expect("parsed above"))
                        .await
                        .map(|offsets| {
                            for (tp, offset) in offsets {
                                println!("{group} {}/{} -> {offset}", tp.topic, tp.partition);
                            }
                        }),
                    Err(error) => Err(error),
                }
            }
        };
        match result {
            Ok(()) => exit::SUCCESS,
            Err(error) => fail("groups", &error),
        }
    })
}

/// Whether `relay groups delete` deletes a loader's group too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Force {
    Yes,
    No,
}

/// Deletes a group; a loader's group without `--force`, a group with
/// members or an unknown one exits 1 saying why and what to do.
async fn delete(admin: &Admin, group: &str, force: Force) -> i32 {
    let members = admin
        .describe_group(group)
        .await
        .map(|description| description.members)
        .unwrap_or_default();
    if force == Force::No {
        match loader_mark(admin, group, &members).await {
            Ok(Some(mark)) => {
                eprintln!("relay groups: {}", refusal_of_loader_group(group, &mark, &members));
                return exit::FAILURE;
            }
            Ok(None) => {}
            Err(error) => return fail("groups", &error),
        }
    }
    match admin.delete_group(group).await {
        Ok(GroupDeletion::Deleted) => {
            println!("deleted group {group} and its committed offsets");
            exit::SUCCESS
        }
        Ok(GroupDeletion::HasMembers) => {
            // Asked again: members may have joined since the first look.
            let members = match admin.describe_group(group).await {
                Ok(description) if !description.members.is_empty() => description.members,
                _ => members,
            };
            eprintln!(
                "relay groups: group {group:?} still has members, so the broker keeps it: {}. Stop them, then delete it",
                who(&members)
            );
            exit::FAILURE
        }
        Ok(GroupDeletion::Unknown) => {
            eprintln!(
                "relay groups: no such group {group:?} (no members, no committed offsets); \
                 `relay groups list` shows the groups"
            );
            exit::FAILURE
        }
        Err(error) => fail("groups", &error),
    }
}

/// Why `group` is a Relay loader's: its committed offsets carry the mark
/// loaders commit with (`proto-spec/LOADER.md`), or a loader is a member
/// (one that has committed nothing yet). `None`: nothing says so.
async fn loader_mark(admin: &Admin, group: &str, members: &[GroupMember]) -> Result<Option<String>, ClientError> {
    let offsets = admin.group_offsets_with_metadata(group).await?;
    if let Some((tp, _, _)) = offsets
        .iter()
        .find(|(_, _, metadata)| offset_metadata::is_loader(metadata))
    {
        return Ok(Some(format!(
            "its committed offsets ({}/{} and the rest) were committed by a relay loader",
            tp.topic, tp.partition
        )));
    }
    Ok(members
        .iter()
        .find(|member| LOADER_CLIENT_IDS.contains(&member.client_id.as_str()))
        .map(|member| format!("a relay loader is a member (client {})", member.client_id)))
}

/// The client ids `relay load` and `relay up` give their loaders' connections.
const LOADER_CLIENT_IDS: [&str; 2] = ["relay-load", "relay-up-load"];

/// What `relay groups delete` says when it keeps a loader's group.
fn refusal_of_loader_group(group: &str, mark: &str, members: &[GroupMember]) -> String {
    let running = if members.is_empty() {
        String::new()
    } else {
        format!(" It has members now: {}; stop them first.", who(members))
    };
    format!(
        "group {group:?} is a relay loader's group: {mark}. Its true position is in its warehouse \
         (relay_offsets), so deleting the group moves nothing; but the broker's copy of its offsets is what \
         `relay lag` and `relay status` show and what retention protection (protected_groups) keeps records for: \
         deleted under a running loader, its lag disappears and retention holds the partitions from their start \
         until the loader commits again.{running} Delete it when no loader uses it any more (a finished backfill): \
         relay groups delete {group} --force (its relay_offsets rows stay in the warehouse: \
         DELETE FROM relay_offsets WHERE group_id = '{group}' there removes them too)"
    )
}

/// The members, one after the other: id, client, host and partitions.
fn who(members: &[GroupMember]) -> String {
    if members.is_empty() {
        return "(the broker did not say who)".into();
    }
    members
        .iter()
        .map(|member| {
            let assigned = partitions(member, " ");
            format!(
                "member {} (client {}, host {}, partitions {})",
                member.member_id,
                member.client_id,
                member.client_host,
                if assigned.is_empty() { "none" } else { &assigned }
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A member's partitions as `topic/partition`, joined by `separator`.
fn partitions(member: &GroupMember, separator: &str) -> String {
    member
        .assigned
        .iter()
        .map(|tp| format!("{}/{}", tp.topic, tp.partition))
        .collect::<Vec<_>>()
        .join(separator)
}

async fn describe(admin: &Admin, group: &str) -> Result<(), ClientError> {
    let description = admin.describe_group(group).await?;
    println!(
        "group {group}: {} ({} members, protocol {:?})",
        description.state,
        description.members.len(),
        description.protocol
    );
    for member in &description.members {
        println!(
            "  member {} client {} host {}: {}",
            member.member_id,
            member.client_id,
            member.client_host,
            partitions(member, ", ")
        );
    }
    println!(
        "{:<30} {:>10} {:>14} {:>14} {:>10}",
        "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"
    );
    for lag in admin.lag(group).await? {
        println!(
            "{:<30} {:>10} {:>14} {:>14} {:>10}",
            lag.topic, lag.partition, lag.committed, lag.end_offset, lag.lag
        );
    }
    Ok(())
}
