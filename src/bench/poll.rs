//! The loaders' idle wait: when there is nothing to send or read, sleep in `ppoll` until a
//! socket is readable or the next timer is due, so a waiting loader leaves the CPU to the
//! server when they share cores. Shared by the packet loader ([`super::loadgen`]) and the EAP
//! driver ([`super::eap`]).

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// The most sockets a loader opens: bounded so that the idle wait can poll every socket from
/// one stack array (512 × 256 identifiers: a window of 131,072, enough to hold 100k pushes
/// pending in perf/).
pub(crate) const MAX_SOCKETS: usize = 512;

/// The longest an idle loader sleeps with no timer due.
const IDLE_MAX: Duration = Duration::from_millis(100);

/// The timers an idle loader wakes for, besides a readable socket.
pub(crate) struct Timers {
    /// The next retransmission scan, while anything is in flight.
    pub next_scan: Option<Instant>,
    /// While still sending: when the next request (or login) may start.
    pub sending: Option<Sending>,
    /// The next progress line, when progress is shown.
    pub next_progress: Option<Instant>,
}

/// What decides when a loader that is still sending may start the next request.
pub(crate) struct Sending {
    /// Whether the window has room for another request (or login).
    pub room: bool,
    /// Open loop: requests per second (`None`: closed loop, start whenever there is room).
    pub rate: Option<f64>,
    /// How many have been started since `start`.
    pub issued: u64,
    pub start: Instant,
    /// The run's length, if it is bounded by time.
    pub duration: Option<Duration>,
}

impl Timers {
    /// When an idle loader should wake at the latest, seen at `now`; `None` when there is
    /// work to do at once (a closed loop with room in its window).
    pub(crate) fn until(&self, now: Instant) -> Option<Instant> {
        let mut until = now + IDLE_MAX;
        if let Some(scan) = self.next_scan {
            until = until.min(scan);
        }
        if let Some(s) = &self.sending {
            if let Some(r) = s.rate {
                if s.room {
                    until = until.min(s.start + Duration::from_secs_f64(s.issued as f64 / r));
                }
            } else if s.room {
                return None;
            }
            if let Some(d) = s.duration {
                until = until.min(s.start + d);
            }
        }
        if let Some(p) = self.next_progress {
            until = until.min(p);
        }
        Some(until)
    }
}

/// Sleeps in `ppoll` until one of `fds` (the first [`MAX_SOCKETS`]) is readable or `until`
/// has come; returns at once if it already has.
pub(crate) fn wait_readable(fds: impl IntoIterator<Item = RawFd>, until: Instant) {
    let wait = until.saturating_duration_since(Instant::now());
    if wait.is_zero() {
        return;
    }
    let mut pollfds = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; MAX_SOCKETS];
    let mut nfds = 0;
    for (p, fd) in pollfds.iter_mut().zip(fds) {
        p.fd = fd;
        nfds += 1;
    }
    let ts = libc::timespec {
        tv_sec: wait.as_secs() as libc::time_t,
        tv_nsec: wait.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `pollfds` holds `nfds` initialised pollfds; `ts` is a valid timespec; no sigmask.
    unsafe {
        libc::ppoll(
            pollfds.as_mut_ptr(),
            nfds as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Still sending, 10 started at `now`.
    fn sending(room: bool, rate: Option<f64>, now: Instant) -> Option<Sending> {
        Some(Sending {
            room,
            rate,
            issued: 10,
            start: now,
            duration: None,
        })
    }

    /// No scan or progress timer.
    fn only(sending: Option<Sending>) -> Timers {
        Timers {
            next_scan: None,
            sending,
            next_progress: None,
        }
    }

    #[test]
    fn closed_loop_with_room_does_not_wait() {
        let now = Instant::now();
        assert_eq!(only(sending(true, None, now)).until(now), None);
    }

    #[test]
    fn the_earliest_timer_wins() {
        let now = Instant::now();
        let full = only(sending(false, None, now));
        assert_eq!(full.until(now), Some(now + IDLE_MAX));
        // 10 started at 1000/s: the next is due 10 ms after the start.
        let paced = Timers {
            next_scan: Some(now + 50 * MS),
            sending: sending(true, Some(1000.0), now),
            next_progress: Some(now + 20 * MS),
        };
        assert_eq!(paced.until(now), Some(now + 10 * MS));
    }

    #[test]
    fn a_past_deadline_returns_at_once() {
        let t = Instant::now();
        wait_readable([], t);
        assert!(t.elapsed() < 50 * MS);
    }
}
