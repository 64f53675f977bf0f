//! The stop signal: the one contract between the process that runs the roles
//! (the supervisor) and every long-running task of a role (the broker's
//! listener and connections, a sender and its tailers, a loader). One
//! [`StopSwitch`] turns it on, once; each task holds a [`Stop`] and asks
//! whether it is on, or waits for it (as mini-redis's `Shutdown`). A switch
//! dropped without being turned on counts as on: nobody is left to stop the
//! task, and the process is ending.

use tokio::sync::watch;

/// Turns the stop signal on for every [`Stop`] made from it.
#[derive(Debug)]
pub struct StopSwitch {
    sender: watch::Sender<bool>,
}

/// A task's view of the stop signal. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Stop {
    receiver: watch::Receiver<bool>,
}

/// A new signal, off.
pub fn stop_signal() -> (StopSwitch, Stop) {
    let (sender, receiver) = watch::channel(false);
    (StopSwitch { sender }, Stop { receiver })
}

impl StopSwitch {
    /// Turns the signal on (again is harmless).
    pub fn stop(&self) {
        self.sender.send_replace(true);
    }

    /// Another view of this signal.
    pub fn subscribe(&self) -> Stop {
        Stop {
            receiver: self.sender.subscribe(),
        }
    }
}

impl Stop {
    /// A signal nobody turns on (tests, one-shot tools that end by themselves).
    pub fn never() -> Self {
        let (switch, stop) = stop_signal();
        // Kept alive for the life of the process: a dropped switch would count as on.
        std::mem::forget(switch);
        stop
    }

    /// Whether the signal is on now.
    pub fn is_stopped(&self) -> bool {
        *self.receiver.borrow() || !self.has_switch()
    }

    /// Waits until the signal is on (at once if it is already).
    pub async fn stopped(&mut self) {
        // An error is a dropped switch: on, as documented above.
        let _ = self.receiver.wait_for(|on| *on).await;
    }

    fn has_switch(&self) -> bool {
        self.receiver.has_changed().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stop_is_seen_by_every_view_and_a_dropped_switch_counts_as_on() {
        let (switch, mut stop) = stop_signal();
        let mut other = switch.subscribe();
        assert!(!stop.is_stopped() && !other.is_stopped());
        switch.stop();
        stop.stopped().await;
        other.stopped().await;
        assert!(stop.is_stopped() && other.is_stopped());
        let (switch, mut orphan) = stop_signal();
        drop(switch);
        assert!(orphan.is_stopped());
        orphan.stopped().await;
        assert!(!Stop::never().is_stopped());
    }
}
