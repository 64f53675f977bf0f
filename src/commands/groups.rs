//! `relay groups list|describe|delete|reset-offsets`.

use super::client::{connect, fail, parse_position, runtime, with_config};
use crate::cli::{GroupsArgs, GroupsCommand};
use crate::exit;
use relay_client::admin::{Admin, GroupDeletion};
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
            GroupsCommand::Delete { group } => return delete(&admin, &group).await,
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

/// Deletes a group; a group with members or an unknown one exits 1 saying
/// what to do.
async fn delete(admin: &Admin, group: &str) -> i32 {
    match admin.delete_group(group).await {
        Ok(GroupDeletion::Deleted) => {
            println!("deleted group {group} and its committed offsets");
            exit::SUCCESS
        }
        Ok(GroupDeletion::HasMembers) => {
            eprintln!(
                "relay groups: group {group:?} still has members; stop its consumers, then delete it \
                 (`relay groups describe {group}` lists them)"
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

async fn describe(admin: &Admin, group: &str) -> Result<(), ClientError> {
    let description = admin.describe_group(group).await?;
    println!(
        "group {group}: {} ({} members, protocol {:?})",
        description.state,
        description.members.len(),
        description.protocol
    );
    for member in &description.members {
        let assigned: Vec<String> = member
            .assigned
            .iter()
            .map(|tp| format!("{}/{}", tp.topic, tp.partition))
            .collect();
        println!(
            "  member {} client {} host {}: {}",
            member.member_id,
            member.client_id,
            member.client_host,
            assigned.join(", ")
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
