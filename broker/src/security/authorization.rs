//! What each SASL user may do: `[[broker.grants]]`, deny by default once
//! `[broker.sasl]` is on (a listener without SASL has no users and allows
//! everything). A grant gives some users some operations on topics and
//! groups (exact names, `prefix*`, or `*`) and, with `cluster = true`, on the
//! cluster. Ready-made roles expand to operations:
//!
//! | role | operations | on |
//! |---|---|---|
//! | `sender` | produce, describe | its `topics` |
//! | `loader` | consume, describe; group | its `topics`; its `groups` |
//! | `admin` | every operation | every topic, every group, the cluster |
//!
//! As in Kafka, any operation on a topic implies `describe` of it, and
//! `group` or `delete` on a group implies describing it. Which API needs what, and the
//! Kafka behaviours matched, is `proto-spec/PROTOCOL.md` ("Authorization").

pub use crate::config::GrantConfig;
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

/// How often one user's denial of one operation on one resource is logged.
pub const DENIAL_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Denials remembered for rate-limiting the log; beyond it every denial logs.
pub const DENIALS_REMEMBERED_MAX: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Produce to a topic (and InitProducerId, with produce on any topic).
    Produce,
    /// Fetch from a topic, list its offsets, commit offsets of it.
    Consume,
    /// See a topic in Metadata, its offsets; see a group; on the cluster:
    /// list every group, describe log dirs.
    Describe,
    /// Create a topic (CreateTopics, or Metadata's auto-creation).
    Create,
    /// Delete a topic, or a group (DeleteGroups).
    Delete,
    /// Join, sync, heartbeat, leave a group; commit and fetch its offsets.
    Group,
}

impl Operation {
    pub const ALL: [Operation; 6] = [
        Operation::Produce,
        Operation::Consume,
        Operation::Describe,
        Operation::Create,
        Operation::Delete,
        Operation::Group,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::Produce => "produce",
            Operation::Consume => "consume",
            Operation::Describe => "describe",
            Operation::Create => "create",
            Operation::Delete => "delete",
            Operation::Group => "group",
        }
    }

    fn parse(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Kafka's `AclOperation` code, for the authorized-operations bit fields.
    pub fn kafka_code(self) -> u32 {
        match self {
            Operation::Consume | Operation::Group => 3, // READ
            Operation::Produce => 4,                    // WRITE
            Operation::Create => 5,                     // CREATE
            Operation::Delete => 6,                     // DELETE
            Operation::Describe => 8,                   // DESCRIBE
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    Topic(&'a str),
    Group(&'a str),
    Cluster,
}

impl fmt::Display for Resource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Topic(name) => write!(f, "topic {name:?}"),
            Resource::Group(name) => write!(f, "group {name:?}"),
            Resource::Cluster => f.write_str("the cluster"),
        }
    }
}

/// A name, `prefix*` or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, String> {
        let (stem, prefix) = match text.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (text, false),
        };
        if stem.contains('*') {
            return Err(format!("{text:?}: '*' may only end a name (a prefix)"));
        }
        if stem.is_empty() && !prefix {
            return Err("an empty name".into());
        }
        Ok(if prefix {
            Pattern::Prefix(stem.into())
        } else {
            Pattern::Exact(stem.into())
        })
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Exact(exact) => exact == name,
            Pattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
        }
    }
}

#[derive(Debug)]
struct Grant {
    /// `None`: every user.
    users: Option<BTreeSet<String>>,
    operations: BTreeSet<Operation>,
    topics: Vec<Pattern>,
    groups: Vec<Pattern>,
    cluster: bool,
}

impl Grant {
    fn covers(&self, user: &str) -> bool {
        self.users.as_ref().is_none_or(|users| users.contains(user))
    }

    /// Does this grant allow `operation` on `resource` (implications included)?
    fn allows(&self, operation: Operation, resource: Resource<'_>) -> bool {
        let has = |op: Operation| self.operations.contains(&op);
        match resource {
            Resource::Topic(name) => {
                let topic_ops = [
                    Operation::Produce,
                    Operation::Consume,
                    Operation::Describe,
                    Operation::Create,
                    Operation::Delete,
                ];
                let on_topic = self.topics.iter().any(|p| p.matches(name));
                match operation {
                    Operation::Describe => on_topic && topic_ops.into_iter().any(has),
                    Operation::Create => {
                        (on_topic && has(Operation::Create)) || (self.cluster && has(Operation::Create))
                    }
                    Operation::Group => false,
                    op => on_topic && has(op),
                }
            }
            Resource::Group(name) => {
                self.groups.iter().any(|p| p.matches(name))
                    && match operation {
                        Operation::Group => has(Operation::Group),
                        Operation::Delete => has(Operation::Delete),
                        Operation::Describe => {
                            has(Operation::Group) || has(Operation::Delete) || has(Operation::Describe)
                        }
                        _ => false,
                    }
            }
            Resource::Cluster => self.cluster && has(operation),
        }
    }
}

impl Grant {
    /// One `[[broker.grants]]` entry checked, its role expanded and its
    /// names parsed; the error says what is wrong with it.
    fn compile(grant: &GrantConfig, users: &BTreeSet<String>) -> Result<Grant, String> {
        check_users(grant, users)?;
        let expanded = Expanded::of(grant)?;
        expanded.check_targets()?;
        let parse_all = |patterns: &[String]| -> Result<Vec<Pattern>, String> {
            patterns.iter().map(|p| Pattern::parse(p)).collect()
        };
        let everyone = grant.users.iter().any(|u| u == "*");
        Ok(Grant {
            users: (!everyone).then(|| grant.users.iter().cloned().collect()),
            topics: parse_all(&expanded.topics)?,
            groups: parse_all(&expanded.groups)?,
            operations: expanded.operations,
            cluster: expanded.cluster,
        })
    }
}

/// A grant names users, `"*"` or users of `[broker.sasl.users]`.
fn check_users(grant: &GrantConfig, users: &BTreeSet<String>) -> Result<(), String> {
    if grant.users.is_empty() {
        return Err("users is empty".into());
    }
    for user in &grant.users {
        if user != "*" && !users.contains(user) {
            return Err(format!("user {user:?} is not in [broker.sasl.users]"));
        }
    }
    Ok(())
}

/// A grant with its role expanded into operations and resources.
struct Expanded {
    operations: BTreeSet<Operation>,
    cluster: bool,
    topics: Vec<String>,
    groups: Vec<String>,
}

impl Expanded {
    fn of(grant: &GrantConfig) -> Result<Expanded, String> {
        let mut expanded = Expanded {
            operations: BTreeSet::new(),
            cluster: grant.cluster,
            topics: grant.topics.clone(),
            groups: grant.groups.clone(),
        };
        if let Some(name) = &grant.role {
            let (ops, whole) = role(name)?;
            expanded.operations.extend(ops);
            if whole {
                expanded.cluster = true;
                expanded.topics.push("*".into());
                expanded.groups.push("*".into());
            }
        }
        for name in &grant.operations {
            let op = Operation::parse(name).ok_or_else(|| {
                format!("operation {name:?} is not one of produce, consume, describe, create, delete, group")
            })?;
            expanded.operations.insert(op);
        }
        if expanded.operations.is_empty() {
            return Err("neither a role nor operations".into());
        }
        Ok(expanded)
    }

    /// Every operation granted has something to act on.
    fn check_targets(&self) -> Result<(), String> {
        let needs = |op: Operation, enough: bool, what: &str| -> Result<(), String> {
            if self.operations.contains(&op) && !enough {
                return Err(format!("{op} but no {what}"));
            }
            Ok(())
        };
        let (any_topic, any_group, cluster) = (!self.topics.is_empty(), !self.groups.is_empty(), self.cluster);
        needs(Operation::Produce, any_topic, "topics (name, prefix* or *)")?;
        needs(Operation::Consume, any_topic, "topics (name, prefix* or *)")?;
        needs(
            Operation::Delete,
            any_topic || any_group,
            "topics or groups (name, prefix* or *)",
        )?;
        needs(
            Operation::Create,
            any_topic || cluster,
            "topics (name, prefix* or *) and not cluster = true",
        )?;
        needs(
            Operation::Describe,
            any_topic || any_group || cluster,
            "topics, groups or cluster = true",
        )?;
        needs(Operation::Group, any_group, "groups (name, prefix* or *)")
    }
}

fn role(name: &str) -> Result<(Vec<Operation>, bool), String> {
    use Operation::*;
    match name {
        "sender" => Ok((vec![Produce, Describe], false)),
        "loader" => Ok((vec![Consume, Describe, Group], false)),
        "admin" => Ok((Operation::ALL.to_vec(), true)),
        other => Err(format!("role {other:?} is not one of sender, loader, admin")),
    }
}

/// The grants in force, and the denial log's memory.
pub struct Authorizer {
    /// `false` without SASL: there are no users to tell apart.
    enabled: bool,
    grants: Vec<Grant>,
    denials: Mutex<HashMap<(String, Operation, String), Instant>>,
}

impl Authorizer {
    /// Everything allowed: a listener without SASL.
    pub fn open() -> Authorizer {
        Authorizer {
            enabled: false,
            grants: Vec::new(),
            denials: Mutex::new(HashMap::new()),
        }
    }

    /// The grants of `[[broker.grants]]` for the users of `[broker.sasl.users]`;
    /// the error says which grant and what is wrong with it.
    pub fn new(grants: &[GrantConfig], users: &BTreeSet<String>) -> Result<Authorizer, String> {
        if grants.is_empty() {
            return Err(
                "SASL is on but there is no [[broker.grants]]: every user would be refused everything. \
                 Give each user a role (sender, loader or admin; see config.toml.example)"
                    .into(),
            );
        }
        let compiled = grants
            .iter()
            .enumerate()
            .map(|(index, grant)| {
                Grant::compile(grant, users).map_err(|reason| format!("broker.grants[{index}]: {reason}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Authorizer {
            enabled: true,
            grants: compiled,
            denials: Mutex::new(HashMap::new()),
        })
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Shows the denial counters at zero, so alerts see them before the first denial.
    pub fn publish_zero_counts(&self) {
        if self.enabled {
            crate::metric_names::authorization_denied_zero(&Operation::ALL.map(Operation::name));
        }
    }

    /// May `user` (`None`: no SASL) do `operation` on `resource`? Says nothing.
    pub fn allows(&self, user: Option<&str>, operation: Operation, resource: Resource<'_>) -> bool {
        if !self.enabled {
            return true;
        }
        let Some(user) = user else { return false };
        self.grants
            .iter()
            .any(|g| g.covers(user) && g.allows(operation, resource))
    }

    /// As [`Authorizer::allows`]; a denial is counted in
    /// `relay_broker_authorization_denied_total{operation}` and logged with
    /// user, operation and resource (once per `DENIAL_LOG_INTERVAL` each).
    pub fn check(&self, user: Option<&str>, operation: Operation, resource: Resource<'_>) -> bool {
        if self.allows(user, operation, resource) {
            return true;
        }
        self.denied(user, operation, resource.to_string());
        false
    }

    /// May `user` do `operation` on at least one topic (Kafka lets an
    /// idempotent producer in with WRITE on any topic)? Denials as `check`.
    pub fn check_any_topic(&self, user: Option<&str>, operation: Operation) -> bool {
        let allowed = !self.enabled
            || user.is_some_and(|user| {
                self.grants
                    .iter()
                    .any(|g| g.covers(user) && g.operations.contains(&operation) && (!g.topics.is_empty() || g.cluster))
            });
        if !allowed {
            self.denied(user, operation, "any topic".into());
        }
        allowed
    }

    fn denied(&self, user: Option<&str>, operation: Operation, resource: String) {
        crate::metric_names::authorization_denied(operation.name());
        let user = user.unwrap_or("");
        let key = (user.to_owned(), operation, resource.clone());
        let now = Instant::now();
        let mut denials = self.denials.lock();
        let log = match denials.get(&key) {
            Some(last) => now.duration_since(*last) >= DENIAL_LOG_INTERVAL,
            None => true,
        };
        if log {
            tracing::warn!(user, %operation, %resource, "not authorized");
            if denials.len() >= DENIALS_REMEMBERED_MAX {
                denials.clear();
            }
            denials.insert(key, now);
        }
    }

    /// Kafka's authorized-operations bit field of `resource` for `user`
    /// (bit n set: AclOperation n allowed), as Metadata and DescribeGroups
    /// report it when asked.
    pub fn authorized_operations(&self, user: Option<&str>, resource: Resource<'_>) -> i32 {
        // Only the operations that exist for the resource's kind, as Kafka reports them.
        let applicable: &[Operation] = match resource {
            Resource::Topic(_) => &[
                Operation::Produce,
                Operation::Consume,
                Operation::Describe,
                Operation::Create,
                Operation::Delete,
            ],
            Resource::Group(_) => &[Operation::Group, Operation::Describe, Operation::Delete],
            Resource::Cluster => &[Operation::Describe, Operation::Create],
        };
        applicable
            .iter()
            .copied()
            .filter(|op| self.allows(user, *op, resource))
            .fold(0, |bits, op| bits | (1 << op.kafka_code()))
    }
}

#[cfg(test)]
#[path = "authorization_tests.rs"]
mod tests;
