//! [`Backoff`]: the one capped doubling delay between attempts, used by every
//! retry loop of the client, the sender and the loader. It only computes and
//! sleeps; deciding whether to try again belongs to the caller.

use std::time::Duration;

/// Delays that start at `min` and double after every attempt, up to `max`.
///
/// The first [`next`](Backoff::next) is `min` itself, even when `min` is
/// above `max` (a configured cap below the first pause bounds the pauses
/// after it, not the first one); from the second on each delay is the one
/// before it doubled, capped at `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff whose first delay is `min` and whose delays never pass
    /// `max` after the first.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self { min, max, next: min }
    }

    /// The delay to wait now; the one after it is doubled (capped at `max`).
    // Not an `Iterator`: the delays never end, and an `Option` would only
    // make every retry loop unwrap.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Duration {
        let delay = self.next;
        self.next = delay.saturating_mul(2).min(self.max);
        delay
    }

    /// Starts again from `min`: the trouble is over.
    pub fn reset(&mut self) {
        self.next = self.min;
    }

    /// Sleeps for [`next`](Backoff::next).
    pub async fn sleep(&mut self) {
        tokio::time::sleep(self.next()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[test]
    fn delays_double_from_the_minimum_up_to_the_maximum() {
        let mut backoff = Backoff::new(ms(100), ms(1_000));
        let delays: Vec<Duration> = (0..7).map(|_| backoff.next()).collect();
        assert_eq!(
            delays,
            [ms(100), ms(200), ms(400), ms(800), ms(1_000), ms(1_000), ms(1_000)]
        );
    }

    #[test]
    fn reset_starts_again_from_the_minimum() {
        let mut backoff = Backoff::new(ms(100), ms(1_000));
        for _ in 0..5 {
            backoff.next();
        }
        backoff.reset();
        assert_eq!(backoff.next(), ms(100));
        assert_eq!(backoff.next(), ms(200));
    }

    #[test]
    fn a_maximum_below_the_minimum_caps_every_delay_after_the_first() {
        let mut backoff = Backoff::new(ms(200), ms(50));
        assert_eq!(backoff.next(), ms(200));
        assert_eq!(backoff.next(), ms(50));
        assert_eq!(backoff.next(), ms(50));
    }

    #[test]
    fn a_huge_maximum_saturates_instead_of_overflowing() {
        let mut backoff = Backoff::new(Duration::MAX / 2 + ms(1), Duration::MAX);
        backoff.next();
        assert_eq!(backoff.next(), Duration::MAX);
        assert_eq!(backoff.next(), Duration::MAX);
    }

    #[tokio::test]
    async fn sleep_waits_the_next_delay_and_advances() {
        let mut backoff = Backoff::new(ms(10), ms(1_000));
        let started = std::time::Instant::now();
        backoff.sleep().await;
        backoff.sleep().await;
        assert!(started.elapsed() >= ms(30));
        assert_eq!(backoff.next(), ms(40));
    }
}
