//! One home server's liveness, as a sans-IO state machine with FreeRADIUS's semantics.
//!
//! ```text
//!  Alive ──no reply at all within response_window of the oldest unanswered request──▶ Zombie
//!  Zombie ──any reply, or one good Status-Server reply──▶ Alive
//!  Zombie ──zombie_period without either──▶ Dead
//!  Dead ──num_answers_to_alive good Status-Server replies in a row (checks on)──▶ Alive
//!  Dead ──revive_interval (checks off)──▶ Alive
//!  Alive ──keepalive Status-Server unanswered within check_timeout──▶ Zombie
//! ```
//!
//! Over TCP and TLS (`keepalive`), an alive server whose connection has carried nothing for
//! check_interval is sent a Status-Server too: the application-layer watchdog RFC 6613
//! §2.6.2 and RFC 6614 ask for, since a connection whose peer vanished stays silent.
//!
//! The machine keeps no per-request state. It needs none for the zombie rule: any reply
//! received after a request was sent proves the server was answering after that request
//! left, so a reply clears the "unanswered since" mark, and the mark is set again by the
//! first request sent after it. A single lost request among answered ones therefore never
//! fails a server over; only a server that answers nothing at all does.
//!
//! The caller owns sockets and timers: it reports sends and replies, sends a Status-Server
//! when [`HomeServer::wants_status_check`] says so (then [`HomeServer::on_status_sent`]),
//! and calls [`HomeServer::handle_timeout`] at [`HomeServer::poll_timeout`].

use std::time::{Duration, Instant};

/// Liveness settings, FreeRADIUS's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HomeSettings {
    /// How long a request may go unanswered, with no other reply either, before the server
    /// is a zombie. Default 20 s.
    pub response_window: Duration,
    /// How long a zombie may stay silent before it is dead. Default 40 s.
    pub zombie_period: Duration,
    /// Without status checks: how long a dead server stays dead. Default 120 s.
    pub revive_interval: Duration,
    /// Whether zombies and dead servers are probed with Status-Server (RFC 5997). On by
    /// default: without it a dead server is retried blind after `revive_interval`, and
    /// eduroam's upper servers expect Status-Server.
    pub status_checks: bool,
    /// Time between two Status-Server checks. Default 30 s.
    pub check_interval: Duration,
    /// How long one Status-Server check waits for its answer. Default 4 s.
    pub check_timeout: Duration,
    /// Good Status-Server replies in a row that bring a dead server back. Default 3.
    pub num_answers_to_alive: u32,
    /// Whether an alive server idle for check_interval is sent a Status-Server as a
    /// watchdog (with checks on). Set for TCP and TLS home servers.
    pub keepalive: bool,
}

impl Default for HomeSettings {
    fn default() -> Self {
        HomeSettings {
            response_window: Duration::from_secs(20),
            zombie_period: Duration::from_secs(40),
            revive_interval: Duration::from_secs(120),
            status_checks: true,
            check_interval: Duration::from_secs(30),
            check_timeout: Duration::from_secs(4),
            num_answers_to_alive: 3,
            keepalive: false,
        }
    }
}

/// Why a [`HomeSettings`] is refused.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum HomeSettingsError {
    #[error("response_window, zombie_period, revive_interval, check_interval and check_timeout must be above zero")]
    ZeroDuration,
    #[error("num_answers_to_alive must be at least 1")]
    ZeroAnswers,
    /// A check must end before the next begins, or checks would overlap.
    #[error("check_timeout must be shorter than check_interval")]
    CheckTimeoutTooLong,
}

impl HomeSettings {
    pub fn validate(&self) -> Result<(), HomeSettingsError> {
        let durations = [
            self.response_window,
            self.zombie_period,
            self.revive_interval,
            self.check_interval,
            self.check_timeout,
        ];
        if durations.iter().any(Duration::is_zero) {
            return Err(HomeSettingsError::ZeroDuration);
        }
        if self.num_answers_to_alive == 0 {
            return Err(HomeSettingsError::ZeroAnswers);
        }
        if self.check_timeout >= self.check_interval {
            return Err(HomeSettingsError::CheckTimeoutTooLong);
        }
        Ok(())
    }
}

/// A home server's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HomeState {
    /// Answering: gets traffic.
    Alive,
    /// Stopped answering: gets traffic only when no server of its pool is alive, and is
    /// probed.
    Zombie,
    /// Gets no traffic until revived.
    Dead,
}

impl HomeState {
    /// Stable metrics label.
    pub const fn label(self) -> &'static str {
        match self {
            HomeState::Alive => "alive",
            HomeState::Zombie => "zombie",
            HomeState::Dead => "dead",
        }
    }
}

/// What caused a state change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// No reply at all within response_window of the oldest unanswered request.
    NoReplyInWindow,
    /// A reply to a proxied request arrived from a zombie.
    Reply,
    /// Good Status-Server replies (one for a zombie, `num_answers_to_alive` for the dead).
    StatusReplies,
    /// A zombie stayed silent for zombie_period.
    ZombiePeriodOver,
    /// A dead server (checks off) sat out revive_interval.
    ReviveIntervalOver,
    /// An alive server left a keepalive Status-Server unanswered for check_timeout.
    KeepaliveUnanswered,
}

/// A state change, for the caller's log and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: HomeState,
    pub to: HomeState,
    /// The cause of the last step (a late `handle_timeout` may take two steps at once).
    pub cause: Cause,
}

/// One home server's liveness.
#[derive(Clone, Debug)]
pub struct HomeServer {
    settings: HomeSettings,
    state: HomeState,
    /// When the current state began.
    since: Instant,
    /// The first request sent after the last reply, while alive.
    unanswered_since: Option<Instant>,
    last_reply: Option<Instant>,
    /// The Status-Server check in flight, if any: when it was sent.
    check_sent: Option<Instant>,
    /// When the next check is due (zombie and dead only).
    next_check: Instant,
    /// Good Status-Server replies in a row while dead.
    answers: u32,
    /// The last request or check sent, or reply received: what keepalive measures idleness
    /// from.
    last_activity: Instant,
}

impl HomeServer {
    /// A server starts alive, as FreeRADIUS's do: traffic is the first check.
    pub fn new(settings: HomeSettings, now: Instant) -> Self {
        HomeServer {
            settings,
            state: HomeState::Alive,
            since: now,
            unanswered_since: None,
            last_reply: None,
            check_sent: None,
            next_check: now,
            answers: 0,
            last_activity: now,
        }
    }

    pub fn settings(&self) -> &HomeSettings {
        &self.settings
    }

    pub fn state(&self) -> HomeState {
        self.state
    }

    /// When the current state began.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// When the last reply (of any kind) arrived.
    pub fn last_reply(&self) -> Option<Instant> {
        self.last_reply
    }

    /// A proxied request left for this server.
    pub fn on_sent(&mut self, now: Instant) {
        // Only an alive server's silence is measured this way; a zombie's is measured by
        // zombie_period, and a mark left over from then must not count once it is alive.
        if self.state == HomeState::Alive && self.unanswered_since.is_none() {
            self.unanswered_since = Some(now);
        }
        self.last_activity = now;
    }

    /// A verified reply to a proxied request arrived, however late: it proves the server
    /// answers now. It revives a zombie; a dead server must pass its Status-Server checks
    /// (or sit out revive_interval) whatever stray replies still arrive.
    pub fn on_reply(&mut self, now: Instant) -> Option<Transition> {
        self.last_reply = Some(now);
        self.last_activity = now;
        self.unanswered_since = None;
        match self.state {
            HomeState::Zombie => Some(self.enter(HomeState::Alive, now, Cause::Reply)),
            HomeState::Alive | HomeState::Dead => None,
        }
    }

    /// Whether a Status-Server check should be sent now: checks on, no check in flight, and
    /// either the server is not alive and check_interval passed since the last check, or
    /// (keepalive) it is alive and its connection was idle for check_interval.
    pub fn wants_status_check(&self, now: Instant) -> bool {
        self.settings.status_checks
            && self.check_sent.is_none()
            && self.check_due().is_some_and(|d| now >= d)
    }

    /// When the next check is due if none is in flight (`None`: alive without keepalive).
    fn check_due(&self) -> Option<Instant> {
        match self.state {
            HomeState::Alive if self.settings.keepalive => {
                Some(self.last_activity + self.settings.check_interval)
            }
            HomeState::Alive => None,
            HomeState::Zombie | HomeState::Dead => Some(self.next_check),
        }
    }

    /// A Status-Server check left for this server.
    pub fn on_status_sent(&mut self, now: Instant) {
        self.check_sent = Some(now);
        self.next_check = now + self.settings.check_interval;
        self.last_activity = now;
    }

    /// A verified reply to our Status-Server check arrived. Ignored when no check is in
    /// flight (it timed out already, or was never sent): only an answer within
    /// check_timeout is a good check.
    pub fn on_status_reply(&mut self, now: Instant) -> Option<Transition> {
        self.check_sent.take()?;
        self.last_reply = Some(now);
        self.last_activity = now;
        match self.state {
            HomeState::Alive => None,
            HomeState::Zombie => Some(self.enter(HomeState::Alive, now, Cause::StatusReplies)),
            HomeState::Dead => {
                self.answers = self.answers.saturating_add(1);
                (self.answers >= self.settings.num_answers_to_alive)
                    .then(|| self.enter(HomeState::Alive, now, Cause::StatusReplies))
            }
        }
    }

    /// The next instant [`Self::handle_timeout`] (or a check) has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let s = &self.settings;
        let state_deadline = match self.state {
            HomeState::Alive => self.unanswered_since.map(|t| t + s.response_window),
            HomeState::Zombie => Some(self.since + s.zombie_period),
            HomeState::Dead if !s.status_checks => Some(self.since + s.revive_interval),
            HomeState::Dead => None,
        };
        let check_deadline = match self.check_sent {
            Some(sent) => Some(sent + s.check_timeout),
            None if s.status_checks => self.check_due(),
            None => None,
        };
        match (state_deadline, check_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances the timers to `now`. Each step takes effect at its own deadline, so a late
    /// call gives the same result as a punctual one.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Transition> {
        let from = self.state;
        let mut cause = None;
        // At most one step per state (Alive → Zombie → Dead → Alive): bounded.
        for _ in 0..4 {
            let mut keepalive_failed = None;
            if let Some(sent) = self.check_sent {
                let d = sent + self.settings.check_timeout;
                if now >= d {
                    // A failed check; for the dead it breaks the run of good answers, and
                    // an alive server's unanswered watchdog makes it a zombie.
                    self.check_sent = None;
                    self.answers = 0;
                    keepalive_failed = (self.state == HomeState::Alive).then_some(d);
                }
            }
            let s = self.settings;
            let step = match self.state {
                HomeState::Alive => self
                    .unanswered_since
                    .map(|t| t + s.response_window)
                    .filter(|&d| now >= d)
                    .map(|d| (HomeState::Zombie, d, Cause::NoReplyInWindow))
                    .or(keepalive_failed
                        .map(|d| (HomeState::Zombie, d, Cause::KeepaliveUnanswered))),
                HomeState::Zombie => {
                    let d = self.since + s.zombie_period;
                    (now >= d).then_some((HomeState::Dead, d, Cause::ZombiePeriodOver))
                }
                HomeState::Dead if !s.status_checks => {
                    let d = self.since + s.revive_interval;
                    (now >= d).then_some((HomeState::Alive, d, Cause::ReviveIntervalOver))
                }
                HomeState::Dead => None,
            };
            let Some((to, at, c)) = step else { break };
            self.enter(to, at, c);
            cause = Some(c);
        }
        let cause = cause?;
        Some(Transition {
            from,
            to: self.state,
            cause,
        })
    }

    fn enter(&mut self, to: HomeState, at: Instant, cause: Cause) -> Transition {
        let from = self.state;
        self.state = to;
        self.since = at;
        self.unanswered_since = None;
        self.answers = 0;
        match to {
            // The first check goes out at once.
            HomeState::Zombie | HomeState::Dead => {
                if from == HomeState::Alive {
                    self.next_check = at;
                    self.check_sent = None;
                }
            }
            HomeState::Alive => self.check_sent = None,
        }
        Transition { from, to, cause }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// A fake clock: seconds since an arbitrary start.
    struct Clock(Instant);
    impl Clock {
        fn at(&self, secs: u64) -> Instant {
            self.0 + Duration::from_secs(secs)
        }
    }

    fn server(settings: HomeSettings) -> (Clock, HomeServer) {
        let c = Clock(Instant::now());
        let h = HomeServer::new(settings, c.at(0));
        (c, h)
    }

    /// Drives timers up to `t`, one deadline at a time, as a runtime would.
    fn run_to(h: &mut HomeServer, t: Instant) -> Vec<Transition> {
        let mut out = Vec::new();
        while let Some(d) = h.poll_timeout() {
            if d > t {
                break;
            }
            if let Some(tr) = h.handle_timeout(d) {
                out.push(tr);
            }
            if h.wants_status_check(d) {
                // The tests decide about checks explicitly; a check due here is left for them.
                break;
            }
        }
        if let Some(tr) = h.handle_timeout(t) {
            out.push(tr);
        }
        out
    }

    #[test]
    fn default_settings_are_freeradius_and_valid() {
        let s = HomeSettings::default();
        assert_eq!(s.response_window, 20 * S);
        assert_eq!(s.zombie_period, 40 * S);
        assert_eq!(s.revive_interval, 120 * S);
        assert_eq!(s.check_interval, 30 * S);
        assert_eq!(s.check_timeout, 4 * S);
        assert_eq!(s.num_answers_to_alive, 3);
        assert_eq!(s.validate(), Ok(()));
        let bad = HomeSettings {
            check_timeout: 30 * S,
            ..s
        };
        assert_eq!(bad.validate(), Err(HomeSettingsError::CheckTimeoutTooLong));
        let bad = HomeSettings {
            num_answers_to_alive: 0,
            ..s
        };
        assert_eq!(bad.validate(), Err(HomeSettingsError::ZeroAnswers));
        let bad = HomeSettings {
            response_window: Duration::ZERO,
            ..s
        };
        assert_eq!(bad.validate(), Err(HomeSettingsError::ZeroDuration));
    }

    #[test]
    fn keepalive_checks_an_idle_connection_and_an_unanswered_one_makes_a_zombie() {
        let settings = HomeSettings {
            keepalive: true,
            ..HomeSettings::default()
        };
        let (c, mut h) = server(settings);
        h.on_sent(c.at(0));
        assert_eq!(h.on_reply(c.at(1)), None);
        // Idle from 1 s: a check is due at 31 s, not before.
        assert_eq!(h.poll_timeout(), Some(c.at(31)));
        assert!(!h.wants_status_check(c.at(30)));
        assert!(h.wants_status_check(c.at(31)));
        // Traffic postpones it.
        h.on_sent(c.at(20));
        h.on_reply(c.at(21));
        assert!(!h.wants_status_check(c.at(31)));
        assert!(h.wants_status_check(c.at(51)));
        h.on_status_sent(c.at(51));
        assert!(!h.wants_status_check(c.at(52)), "one in flight");
        assert_eq!(h.on_status_reply(c.at(52)), None, "alive stays alive");
        assert_eq!(h.poll_timeout(), Some(c.at(82)));
        // Unanswered for check_timeout: a zombie, checked again at once.
        h.on_status_sent(c.at(82));
        assert_eq!(h.handle_timeout(c.at(85)), None);
        assert_eq!(
            h.handle_timeout(c.at(86)),
            Some(Transition {
                from: HomeState::Alive,
                to: HomeState::Zombie,
                cause: Cause::KeepaliveUnanswered,
            })
        );
        assert_eq!(h.since(), c.at(86));
        assert!(h.wants_status_check(c.at(86)));
        // And one good answer revives it, as for any zombie.
        h.on_status_sent(c.at(86));
        assert!(h.on_status_reply(c.at(87)).is_some());
        assert_eq!(h.state(), HomeState::Alive);
    }

    #[test]
    fn a_good_server_stays_alive() {
        let (c, mut h) = server(HomeSettings::default());
        assert_eq!(h.poll_timeout(), None);
        for t in 0..1000 {
            h.on_sent(c.at(t));
            assert!(run_to(&mut h, c.at(t) + S / 2).is_empty());
            assert_eq!(h.on_reply(c.at(t) + S / 2), None);
            assert!(!h.wants_status_check(c.at(t)));
        }
        assert_eq!(h.state(), HomeState::Alive);
        assert_eq!(h.poll_timeout(), None);
    }

    #[test]
    fn a_silent_server_turns_zombie_and_one_status_reply_revives_it() {
        let (c, mut h) = server(HomeSettings::default());
        h.on_sent(c.at(0));
        h.on_sent(c.at(5));
        assert_eq!(h.poll_timeout(), Some(c.at(20)));
        assert_eq!(h.handle_timeout(c.at(19)), None);
        assert_eq!(
            h.handle_timeout(c.at(20)),
            Some(Transition {
                from: HomeState::Alive,
                to: HomeState::Zombie,
                cause: Cause::NoReplyInWindow
            })
        );
        // The first check goes at once; none while it is in flight.
        assert!(h.wants_status_check(c.at(20)));
        h.on_status_sent(c.at(20));
        assert!(!h.wants_status_check(c.at(21)));
        assert_eq!(h.poll_timeout(), Some(c.at(24)));
        assert_eq!(
            h.on_status_reply(c.at(21)),
            Some(Transition {
                from: HomeState::Zombie,
                to: HomeState::Alive,
                cause: Cause::StatusReplies
            })
        );
        assert_eq!(h.state(), HomeState::Alive);
        assert_eq!(h.poll_timeout(), None);
        // A duplicate status reply is ignored.
        assert_eq!(h.on_status_reply(c.at(22)), None);
    }

    #[test]
    fn silent_through_zombie_period_is_dead_and_needs_n_answers_in_a_row() {
        let (c, mut h) = server(HomeSettings::default());
        h.on_sent(c.at(0));
        assert!(h.handle_timeout(c.at(20)).is_some());
        // Checks at 20 and 50 go unanswered.
        h.on_status_sent(c.at(20));
        assert_eq!(h.handle_timeout(c.at(24)), None);
        assert!(!h.wants_status_check(c.at(30)));
        assert_eq!(h.poll_timeout(), Some(c.at(50)));
        assert!(h.wants_status_check(c.at(50)));
        h.on_status_sent(c.at(50));
        assert_eq!(h.poll_timeout(), Some(c.at(54)));
        assert_eq!(h.handle_timeout(c.at(54)), None);
        assert_eq!(h.poll_timeout(), Some(c.at(60)));
        assert_eq!(
            h.handle_timeout(c.at(60)),
            Some(Transition {
                from: HomeState::Zombie,
                to: HomeState::Dead,
                cause: Cause::ZombiePeriodOver
            })
        );
        // Ordinary stray replies do not revive the dead.
        assert_eq!(h.on_reply(c.at(61)), None);
        assert_eq!(h.state(), HomeState::Dead);
        // Two good answers, a failed check (the run restarts), then three good ones.
        let mut t = 80;
        for _ in 0..2 {
            assert!(h.wants_status_check(c.at(t)));
            h.on_status_sent(c.at(t));
            assert_eq!(h.on_status_reply(c.at(t + 1)), None);
            t += 30;
        }
        h.on_status_sent(c.at(t));
        assert_eq!(h.handle_timeout(c.at(t + 4)), None);
        t += 30;
        for i in 0..3 {
            assert_eq!(h.state(), HomeState::Dead);
            assert!(h.wants_status_check(c.at(t)));
            h.on_status_sent(c.at(t));
            let tr = h.on_status_reply(c.at(t + 1));
            if i < 2 {
                assert_eq!(tr, None);
            } else {
                assert_eq!(
                    tr,
                    Some(Transition {
                        from: HomeState::Dead,
                        to: HomeState::Alive,
                        cause: Cause::StatusReplies
                    })
                );
            }
            t += 30;
        }
        assert_eq!(h.state(), HomeState::Alive);
        assert!(!h.wants_status_check(c.at(t)));
    }

    #[test]
    fn without_checks_a_dead_server_comes_back_after_revive_interval() {
        let (c, mut h) = server(HomeSettings {
            status_checks: false,
            ..HomeSettings::default()
        });
        h.on_sent(c.at(0));
        let trs = run_to(&mut h, c.at(59));
        assert_eq!(trs.len(), 1);
        assert_eq!(h.state(), HomeState::Zombie);
        assert!(!h.wants_status_check(c.at(59)));
        let trs = run_to(&mut h, c.at(60));
        assert_eq!(trs.len(), 1);
        assert_eq!(h.state(), HomeState::Dead);
        assert_eq!(h.poll_timeout(), Some(c.at(180)));
        assert_eq!(h.handle_timeout(c.at(179)), None);
        assert_eq!(
            h.handle_timeout(c.at(180)),
            Some(Transition {
                from: HomeState::Dead,
                to: HomeState::Alive,
                cause: Cause::ReviveIntervalOver
            })
        );
        assert_eq!(h.poll_timeout(), None);
    }

    #[test]
    fn a_late_timer_call_takes_every_step_at_its_own_deadline() {
        let (c, mut h) = server(HomeSettings {
            status_checks: false,
            ..HomeSettings::default()
        });
        h.on_sent(c.at(0));
        // Zombie at 20, dead at 60, alive at 180: one call at 200 sees it all.
        assert_eq!(
            h.handle_timeout(c.at(200)),
            Some(Transition {
                from: HomeState::Alive,
                to: HomeState::Alive,
                cause: Cause::ReviveIntervalOver
            })
        );
        assert_eq!(h.since(), c.at(180));
    }

    #[test]
    fn a_late_reply_is_alive_evidence() {
        let (c, mut h) = server(HomeSettings::default());
        // A's reply arrives after B was sent: A being lost later does not matter.
        h.on_sent(c.at(0));
        h.on_sent(c.at(5));
        assert_eq!(h.on_reply(c.at(10)), None);
        assert_eq!(h.poll_timeout(), None);
        assert!(run_to(&mut h, c.at(30)).is_empty());
        assert_eq!(h.state(), HomeState::Alive);
        // A reply 25 s after its request (past the window) revives the zombie it made.
        h.on_sent(c.at(30));
        assert_eq!(run_to(&mut h, c.at(50)).len(), 1);
        assert_eq!(h.state(), HomeState::Zombie);
        assert_eq!(
            h.on_reply(c.at(55)),
            Some(Transition {
                from: HomeState::Zombie,
                to: HomeState::Alive,
                cause: Cause::Reply
            })
        );
        assert_eq!(h.last_reply(), Some(c.at(55)));
        // A mark left from a send while zombie does not count once alive.
        assert_eq!(h.poll_timeout(), None);
    }

    #[test]
    fn one_lost_request_among_answered_ones_is_no_failover() {
        let (c, mut h) = server(HomeSettings::default());
        // One request a second, each answered within 2 s, except the one sent at 10.
        let mut pending: Vec<u64> = Vec::new();
        for t in 0..200u64 {
            for &sent in pending.iter().filter(|&&s| s + 2 == t) {
                if sent != 10 {
                    assert_eq!(h.on_reply(c.at(t)), None);
                }
            }
            pending.retain(|&s| s + 2 > t);
            h.on_sent(c.at(t));
            pending.push(t);
            assert!(run_to(&mut h, c.at(t)).is_empty(), "at {t}");
        }
        assert_eq!(h.state(), HomeState::Alive);
    }

    #[test]
    fn traffic_to_a_zombie_does_not_extend_its_life() {
        let (c, mut h) = server(HomeSettings::default());
        h.on_sent(c.at(0));
        assert!(h.handle_timeout(c.at(20)).is_some());
        // All servers of the pool are zombies: it still gets traffic, unanswered.
        for t in 20..60 {
            h.on_sent(c.at(t));
        }
        assert_eq!(
            h.handle_timeout(c.at(60)).map(|t| t.to),
            Some(HomeState::Dead)
        );
    }
}
