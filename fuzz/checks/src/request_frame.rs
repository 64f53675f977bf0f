//! Request frames through the broker's own request path: framing (length
//! prefix and limits), then `dispatch` (header by API version, the version
//! table, body decoding, and every API's handler) against a real broker
//! whose data lives in a scratch directory. Invariants: nothing panics or
//! aborts, and every answer is one well-formed frame carrying the request's
//! correlation id. The broker requires SASL and has grants, and each input's
//! frames go down four connections: three past authentication, as an admin
//! (every API allowed), as a user with a sender's and a loader's grants on
//! some names (allowed and refused side by side) and as a user with no
//! grants (every refusal path), and one that has not authenticated (the
//! SASL exchange and its refusals); a connection stops taking frames where
//! the broker would close it.

use bytes::Bytes;
use relay_broker::broker::Broker;
use relay_broker::config::BrokerConfig;
use relay_broker::context::Context;
use relay_broker::log::FsyncPolicy;
use relay_broker::security::authorization::GrantConfig;
use relay_broker::server::dispatch::{dispatch, Reply, Timing};
use relay_broker::server::frame::read_frame;
use relay_broker::server::session::Session;
use std::time::Duration;

/// The broker's users: an admin, one with some grants, one with none.
const USERS: [&str; 3] = ["fuzz", "partial", "stranger"];

/// Largest frame the target reads (the broker's limit is configurable).
const FRAME_BYTES_MAX: usize = 1 << 20;

struct Target {
    runtime: tokio::runtime::Runtime,
    context: Context,
    _broker: Broker,
    _dir: tempfile::TempDir,
}

thread_local! {
    static TARGET: Target = start();
}

fn start() -> Target {
    // Time is paused and jumps ahead when idle: long-poll fetches and group
    // waits end at once instead of stalling the fuzzer.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = tempfile::tempdir_in(base).expect("scratch directory");
    let mut config = BrokerConfig {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().join("data"),
        ..BrokerConfig::default()
    };
    config.log.fsync = FsyncPolicy::Never;
    let credential = relay_proto::sasl::Credential::derive(b"fuzz", b"fuzz-salt".to_vec(), 4096).expect("credential");
    config.sasl = Some(relay_broker::config::SaslConfig {
        mechanisms: vec!["SCRAM-SHA-256".into(), "PLAIN".into()],
        users: USERS
            .iter()
            .map(|user| (user.to_string(), credential.to_string()))
            .collect(),
        authentication_timeout_ms: 10_000,
    });
    let grant = |user: &str, role: &str, topics: &[&str], groups: &[&str]| GrantConfig {
        users: vec![user.into()],
        role: Some(role.into()),
        topics: topics.iter().map(|t| t.to_string()).collect(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..GrantConfig::default()
    };
    config.grants = vec![
        grant("fuzz", "admin", &[], &[]),
        grant("partial", "sender", &["a*", "t"], &[]),
        grant("partial", "loader", &["b*", "t"], &["g*"]),
    ];
    let broker = runtime.block_on(Broker::start(config)).expect("broker starts");
    let context = std::sync::Arc::clone(broker.context());
    Target {
        runtime,
        context,
        _broker: broker,
        _dir: dir,
    }
}

pub fn request_frame(data: &[u8]) {
    TARGET.with(|target| {
        target.runtime.block_on(async {
            let mut reader = data;
            let mut frames = Vec::new();
            while let Ok(Some(frame)) = read_frame(&mut reader, FRAME_BYTES_MAX).await {
                assert!(frame.len() <= FRAME_BYTES_MAX);
                frames.push(frame);
            }
            // Also the whole input as one frame, as if its prefix were right.
            frames.push(Bytes::copy_from_slice(data));
            let mut sessions = [
                Some(Session::Authenticated { user: "fuzz".into() }),
                Some(Session::Authenticated { user: "partial".into() }),
                Some(Session::Authenticated {
                    user: "stranger".into(),
                }),
                Some(Session::new(&target.context.security)),
            ];
            for frame in frames {
                for slot in sessions.iter_mut() {
                    if let Some(session) = slot {
                        if !handle(&target.context, session, frame.clone()).await {
                            *slot = None;
                        }
                    }
                }
            }
        })
    });
}

/// Handles one frame; false when the broker would close the connection.
async fn handle(context: &Context, session: &mut Session, frame: Bytes) -> bool {
    let correlation_id = (frame.len() >= 8).then(|| i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]));
    let peer = "127.0.0.1:1".parse().expect("address");
    let mut timing = Timing::read_now();
    let dispatched = dispatch(context, session, peer, frame, &mut timing);
    let reply = match tokio::time::timeout(Duration::from_secs(60), dispatched).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(_)) | Err(_) => return false,
    };
    let (bytes, open) = match reply {
        Reply::Nothing => return true,
        Reply::Ready(bytes) => (bytes, true),
        Reply::Last(bytes) => (bytes, false),
        Reply::Later(handle) => match handle.await.expect("a produce's answer does not panic") {
            Ok(late) => (late.frame, true),
            Err(_) => return false,
        },
    };
    assert!(bytes.len() >= 8, "an answer holds a length and a correlation id");
    let length = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    assert_eq!(length, bytes.len() - 4, "the length prefix is the frame's");
    let answered = i32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    assert_eq!(
        Some(answered),
        correlation_id,
        "the answer carries the request's correlation id"
    );
    open
}
