//! The one signal path of every long-running command: SIGTERM (systemd,
//! `kill`, the test harness) and SIGINT (Ctrl-C) both mean "stop cleanly".

/// Resolves at the first SIGTERM or SIGINT.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
