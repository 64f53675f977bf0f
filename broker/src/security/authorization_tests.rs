use super::*;

fn users() -> BTreeSet<String> {
    ["app", "warehouse", "ops", "qa"].map(String::from).into()
}

fn grant(users: &[&str], role: Option<&str>, ops: &[&str], topics: &[&str], groups: &[&str]) -> GrantConfig {
    GrantConfig {
        users: users.iter().map(|s| s.to_string()).collect(),
        role: role.map(String::from),
        operations: ops.iter().map(|s| s.to_string()).collect(),
        topics: topics.iter().map(|s| s.to_string()).collect(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
        cluster: false,
    }
}

fn roles() -> Authorizer {
    Authorizer::new(
        &[
            grant(&["app"], Some("sender"), &[], &["events", "audit-*"], &[]),
            grant(&["warehouse"], Some("loader"), &[], &["events"], &["loader-*"]),
            grant(&["ops"], Some("admin"), &[], &[], &[]),
        ],
        &users(),
    )
    .unwrap()
}

#[test]
fn a_sender_produces_to_its_topics_and_nothing_else() {
    let a = roles();
    let app = Some("app");
    assert!(a.allows(app, Operation::Produce, Resource::Topic("events")));
    assert!(a.allows(app, Operation::Produce, Resource::Topic("audit-2026")));
    assert!(a.allows(app, Operation::Describe, Resource::Topic("events")));
    assert!(!a.allows(app, Operation::Produce, Resource::Topic("payments")));
    assert!(!a.allows(app, Operation::Consume, Resource::Topic("events")));
    assert!(!a.allows(app, Operation::Delete, Resource::Topic("events")));
    assert!(!a.allows(app, Operation::Create, Resource::Topic("events")));
    assert!(!a.allows(app, Operation::Group, Resource::Group("loader-1")));
    assert!(!a.allows(app, Operation::Describe, Resource::Cluster));
}

#[test]
fn a_loader_consumes_and_joins_its_groups_only() {
    let a = roles();
    let w = Some("warehouse");
    assert!(a.allows(w, Operation::Consume, Resource::Topic("events")));
    assert!(a.allows(w, Operation::Group, Resource::Group("loader-events")));
    assert!(a.allows(w, Operation::Describe, Resource::Group("loader-events")));
    assert!(!a.allows(w, Operation::Group, Resource::Group("other")));
    assert!(!a.allows(w, Operation::Produce, Resource::Topic("events")));
    assert!(!a.allows(w, Operation::Describe, Resource::Topic("audit-1")));
}

#[test]
fn admin_may_do_everything_and_strangers_nothing() {
    let a = roles();
    for op in Operation::ALL {
        assert!(a.allows(Some("ops"), op, Resource::Cluster), "{op}");
        assert!(!a.allows(Some("qa"), op, Resource::Topic("events")), "{op}");
    }
    assert!(a.allows(Some("ops"), Operation::Delete, Resource::Topic("anything")));
    assert!(
        !a.allows(None, Operation::Describe, Resource::Topic("events")),
        "no user, SASL on"
    );
    assert!(Authorizer::open().allows(None, Operation::Delete, Resource::Topic("events")));
}

#[test]
fn every_user_and_cluster_create() {
    let mut creators = grant(&["*"], None, &["create"], &[], &[]);
    creators.cluster = true;
    let a = Authorizer::new(&[creators], &users()).unwrap();
    assert!(a.allows(Some("qa"), Operation::Create, Resource::Topic("new")));
    // Create on the cluster is not describe of every topic.
    assert!(!a.allows(Some("qa"), Operation::Describe, Resource::Topic("new")));
}

#[test]
fn authorized_operations_are_kafka_bits() {
    let a = roles();
    let bits = a.authorized_operations(Some("app"), Resource::Topic("events"));
    assert_eq!(bits, (1 << 4) | (1 << 8), "WRITE and DESCRIBE");
    let open = Authorizer::open();
    assert_eq!(
        open.authorized_operations(None, Resource::Group("g")),
        (1 << 3) | (1 << 6) | (1 << 8),
        "READ, DELETE and DESCRIBE"
    );
    assert_eq!(
        open.authorized_operations(None, Resource::Cluster),
        (1 << 5) | (1 << 8),
        "CREATE and DESCRIBE"
    );
}

#[test]
fn deleting_a_group_needs_delete_on_it_which_implies_describing_it() {
    let u = users();
    let grants = [
        grant(&["app"], None, &["delete"], &[], &["old-*"]),
        grant(&["warehouse"], Some("loader"), &[], &["events"], &["loader-*"]),
    ];
    let a = Authorizer::new(&grants, &u).expect("delete on groups alone is a valid grant");
    assert!(a.allows(Some("app"), Operation::Delete, Resource::Group("old-1")));
    assert!(a.allows(Some("app"), Operation::Describe, Resource::Group("old-1")));
    assert!(!a.allows(Some("app"), Operation::Group, Resource::Group("old-1")));
    assert!(!a.allows(Some("app"), Operation::Delete, Resource::Group("new-1")));
    assert!(!a.allows(Some("app"), Operation::Delete, Resource::Topic("old-1")));
    assert!(!a.allows(Some("warehouse"), Operation::Delete, Resource::Group("loader-1")));
}

#[test]
fn mistakes_are_refused_naming_the_grant() {
    let u = users();
    let err = |grants: &[GrantConfig]| Authorizer::new(grants, &u).err().unwrap();
    assert!(err(&[]).contains("no [[broker.grants]]"));
    assert!(err(&[grant(&["nobody"], Some("sender"), &[], &["t"], &[])]).contains("\"nobody\" is not in"));
    assert!(err(&[grant(&["app"], Some("writer"), &[], &["t"], &[])]).contains("role \"writer\""));
    assert!(err(&[grant(&["app"], None, &["write"], &["t"], &[])]).contains("operation \"write\""));
    assert!(err(&[grant(&["app"], Some("sender"), &[], &[], &[])]).contains("no topics"));
    assert!(err(&[grant(&["app"], Some("loader"), &[], &["t"], &[])]).contains("no groups"));
    assert!(err(&[grant(&["app"], Some("sender"), &[], &["a*b"], &[])]).contains("may only end"));
    assert!(err(&[
        grant(&["app"], Some("sender"), &[], &["t"], &[]),
        grant(&[], Some("sender"), &[], &["t"], &[])
    ])
    .starts_with("broker.grants[1]"));
}
