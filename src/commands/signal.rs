//! Waiting for the signals that stop a long-running command: SIGTERM (from
//! systemd, `kill`, the test harness) and SIGINT (Ctrl-C).

pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
