//! The session table itself: sans-IO, fed [`Update`]s and the time, nothing else.
//!
//! Bounds: at most `max_sessions` open sessions (a Start past it is not tracked, counted, and
//! its accounting is still recorded); at most [`STOPPED_MEMORY`] recently stopped ids are
//! remembered, so that an Interim-Update overtaken by its Stop (they may be committed by two
//! shards in either order) does not reopen the session.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use super::config::SessionsConfig;
use super::update::{Status, Update};
use super::{SessionView, UniqueId};

/// Recently stopped sessions remembered (FIFO).
pub const STOPPED_MEMORY: usize = 65_536;

/// What applying one record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Started,
    Updated,
    Stopped,
    /// Accounting-On/Off closed this many of the NAS's sessions.
    NasReset(usize),
    /// A new session past `max_sessions`.
    Untracked,
    /// A Start, Interim-Update or Stop without an Acct-Session-Id: nothing to key it by.
    Unkeyed,
    /// Nothing to do: an unknown Stop, a late update of a stopped session, another status.
    Ignored,
}

#[derive(Debug, Clone)]
struct Session {
    user: Box<str>,
    accounted_user: Option<Box<str>>,
    acct_session_id: Box<str>,
    client: Box<str>,
    nas_address: IpAddr,
    nas_ip_address: Option<Ipv4Addr>,
    nas_identifier: Option<Box<str>>,
    nas_port: Option<u32>,
    nas_port_id: Option<Box<str>>,
    framed_ip_address: Option<Ipv4Addr>,
    calling_station_id: Option<Box<str>>,
    called_station_id: Option<Box<str>>,
    acct_multi_session_id: Option<Box<str>>,
    chargeable_user_identity: Option<Box<str>>,
    started: i64,
    last_update: i64,
    session_time: Option<u32>,
    input_octets: u64,
    output_octets: u64,
    interim_interval: Option<u32>,
}

fn boxed(s: &Option<std::borrow::Cow<'_, str>>) -> Option<Box<str>> {
    s.as_deref().map(Box::from)
}

impl Session {
    fn new(u: &Update<'_>) -> Session {
        Session {
            user: u.user.as_ref().into(),
            accounted_user: boxed(&u.accounted_user),
            acct_session_id: u.acct_session_id.as_ref().into(),
            client: u.client.as_ref().into(),
            nas_address: u.nas_address,
            nas_ip_address: u.nas_ip_address,
            nas_identifier: boxed(&u.nas_identifier),
            nas_port: u.nas_port,
            nas_port_id: boxed(&u.nas_port_id),
            framed_ip_address: u.framed_ip_address,
            calling_station_id: boxed(&u.calling_station_id),
            called_station_id: boxed(&u.called_station_id),
            acct_multi_session_id: boxed(&u.acct_multi_session_id),
            chargeable_user_identity: boxed(&u.chargeable_user_identity),
            // A session first seen by an update started Acct-Session-Time ago.
            started: match u.status {
                Status::Start => u.time,
                _ => u.time - i64::from(u.session_time.unwrap_or(0)),
            },
            last_update: u.time,
            session_time: u.session_time,
            input_octets: u.input_octets,
            output_octets: u.output_octets,
            interim_interval: u.interim_interval,
        }
    }

    /// An Interim-Update (or a repeated Start): counters and what may have changed since.
    fn refresh(&mut self, u: &Update<'_>) {
        self.last_update = self.last_update.max(u.time);
        if u.session_time.is_some() {
            self.session_time = u.session_time;
        }
        // Counters only grow within a session; a reordered older update must not lower them.
        self.input_octets = self.input_octets.max(u.input_octets);
        self.output_octets = self.output_octets.max(u.output_octets);
        if u.framed_ip_address.is_some() {
            self.framed_ip_address = u.framed_ip_address;
        }
        if u.interim_interval.is_some() {
            self.interim_interval = u.interim_interval;
        }
    }

    fn view(&self, id: &UniqueId) -> SessionView {
        let s = |v: &Option<Box<str>>| v.as_deref().map(String::from);
        SessionView {
            id: id.to_string(),
            user: self.user.to_string(),
            accounted_user: s(&self.accounted_user),
            acct_session_id: self.acct_session_id.to_string(),
            client: self.client.to_string(),
            nas_address: self.nas_address,
            nas_ip_address: self.nas_ip_address,
            nas_identifier: s(&self.nas_identifier),
            nas_port: self.nas_port,
            nas_port_id: s(&self.nas_port_id),
            framed_ip_address: self.framed_ip_address,
            calling_station_id: s(&self.calling_station_id),
            called_station_id: s(&self.called_station_id),
            acct_multi_session_id: s(&self.acct_multi_session_id),
            chargeable_user_identity: s(&self.chargeable_user_identity),
            started: self.started,
            last_update: self.last_update,
            session_time: self.session_time,
            input_octets: self.input_octets,
            output_octets: self.output_octets,
        }
    }

    /// Whether an Accounting-On/Off from `u` speaks for this session's NAS.
    fn same_nas(&self, u: &Update<'_>) -> bool {
        *self.client == *u.client
            && u.nas_ip_address
                .map_or(true, |ip| self.nas_ip_address == Some(ip))
            && u.nas_identifier
                .as_deref()
                .map_or(true, |n| self.nas_identifier.as_deref() == Some(n))
    }
}

/// Sessions stored densely and found through an index of slot numbers: a hash table of 1 M
/// entries has 2 M buckets (load factor ≤ 7/8, powers of two), and buckets holding whole
/// sessions would be half empty.
#[derive(Default)]
struct Slab {
    slots: Vec<Option<(UniqueId, Session)>>,
    free: Vec<u32>,
    index: HashMap<UniqueId, u32, foldhash::fast::RandomState>,
}

impl Slab {
    fn len(&self) -> usize {
        self.index.len()
    }

    fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn get(&self, id: &UniqueId) -> Option<&Session> {
        let slot = *self.index.get(id)? as usize;
        self.slots.get(slot)?.as_ref().map(|(_, s)| s)
    }

    fn get_mut(&mut self, id: &UniqueId) -> Option<&mut Session> {
        let slot = *self.index.get(id)? as usize;
        self.slots.get_mut(slot)?.as_mut().map(|(_, s)| s)
    }

    fn insert(&mut self, id: UniqueId, s: Session) {
        let entry = Some((id, s));
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = entry;
                slot
            }
            None => {
                self.slots.push(entry);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(id, slot);
    }

    fn remove(&mut self, id: &UniqueId) -> Option<Session> {
        let slot = self.index.remove(id)?;
        let (_, s) = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some(s)
    }

    fn iter(&self) -> impl Iterator<Item = (&UniqueId, &Session)> {
        self.slots.iter().flatten().map(|(id, s)| (id, s))
    }
}

pub struct SessionTable {
    sessions: Slab,
    by_user: HashMap<Box<str>, Vec<UniqueId>, foldhash::fast::RandomState>,
    by_client: HashMap<Box<str>, usize, foldhash::fast::RandomState>,
    stopped: HashSet<UniqueId, foldhash::fast::RandomState>,
    stopped_order: VecDeque<UniqueId>,
    max: usize,
}

impl SessionTable {
    pub fn new(max_sessions: usize) -> SessionTable {
        SessionTable {
            sessions: Slab::default(),
            by_user: HashMap::default(),
            by_client: HashMap::default(),
            stopped: HashSet::default(),
            stopped_order: VecDeque::new(),
            max: max_sessions,
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn apply(&mut self, u: &Update<'_>) -> Applied {
        match (u.status, u.id) {
            (Status::AccountingOn | Status::AccountingOff, _) => self.reset_nas(u),
            (Status::Start | Status::InterimUpdate, Some(id)) => self.open_or_refresh(id, u),
            (Status::Stop, Some(id)) => self.stop(id),
            (Status::Start | Status::InterimUpdate | Status::Stop, None) => Applied::Unkeyed,
            (Status::Other, _) => Applied::Ignored,
        }
    }

    fn open_or_refresh(&mut self, id: UniqueId, u: &Update<'_>) -> Applied {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.refresh(u);
            return Applied::Updated;
        }
        if self.stopped.contains(&id) {
            return Applied::Ignored;
        }
        if self.sessions.len() >= self.max {
            return Applied::Untracked;
        }
        let s = Session::new(u);
        self.index(&id, &s);
        self.sessions.insert(id, s);
        Applied::Started
    }

    fn index(&mut self, id: &UniqueId, s: &Session) {
        match self.by_user.get_mut(&s.user) {
            Some(ids) => ids.push(*id),
            None => {
                self.by_user.insert(s.user.clone(), vec![*id]);
            }
        }
        match self.by_client.get_mut(&s.client) {
            Some(n) => *n += 1,
            None => {
                self.by_client.insert(s.client.clone(), 1);
            }
        }
    }

    fn remove(&mut self, id: &UniqueId) -> Option<Session> {
        let s = self.sessions.remove(id)?;
        if let Some(ids) = self.by_user.get_mut(&s.user) {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                self.by_user.remove(&s.user);
            }
        }
        if let Some(n) = self.by_client.get_mut(&s.client) {
            *n -= 1;
            if *n == 0 {
                self.by_client.remove(&s.client);
            }
        }
        self.remember_stopped(*id);
        Some(s)
    }

    fn remember_stopped(&mut self, id: UniqueId) {
        if !self.stopped.insert(id) {
            return;
        }
        self.stopped_order.push_back(id);
        if self.stopped_order.len() > STOPPED_MEMORY {
            if let Some(old) = self.stopped_order.pop_front() {
                self.stopped.remove(&old);
            }
        }
    }

    fn stop(&mut self, id: UniqueId) -> Applied {
        match self.remove(&id) {
            Some(_) => Applied::Stopped,
            None => {
                // A Stop overtaking its Start must not let the Start open it afterwards.
                self.remember_stopped(id);
                Applied::Ignored
            }
        }
    }

    fn reset_nas(&mut self, u: &Update<'_>) -> Applied {
        let gone: Vec<UniqueId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.same_nas(u))
            .map(|(id, _)| *id)
            .collect();
        for id in &gone {
            self.remove(id);
        }
        Applied::NasReset(gone.len())
    }

    pub fn count_user(&self, user: &str) -> usize {
        self.by_user.get(user).map_or(0, Vec::len)
    }

    /// The user's session that started first.
    pub fn oldest_of(&self, user: &str) -> Option<UniqueId> {
        let ids = self.by_user.get(user)?;
        ids.iter()
            .filter_map(|id| Some((self.sessions.get(id)?.started, *id)))
            .min()
            .map(|(_, id)| id)
    }

    pub fn view(&self, id: &UniqueId) -> Option<SessionView> {
        self.sessions.get(id).map(|s| s.view(id))
    }

    pub fn views(&self, keep: impl Fn(&SessionView) -> bool) -> Vec<SessionView> {
        self.sessions
            .iter()
            .map(|(id, s)| s.view(id))
            .filter(|v| keep(v))
            .collect()
    }

    /// The sessions of `user`, without scanning the table.
    pub fn views_of(&self, user: &str) -> Vec<SessionView> {
        self.by_user.get(user).map_or_else(Vec::new, |ids| {
            ids.iter().filter_map(|id| self.view(id)).collect()
        })
    }

    pub fn open_by_client(&self) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = self
            .by_client
            .iter()
            .map(|(c, n)| (c.to_string(), *n))
            .collect();
        v.sort();
        v
    }

    /// Closes every session silent for longer than its interim interval (or the configured
    /// one) times `stale_after`; returns what was closed.
    pub fn sweep(&mut self, now: i64, config: &SessionsConfig) -> Vec<SessionView> {
        if config.stale_after == 0 {
            return Vec::new();
        }
        let default = config.interim_interval.as_secs() as i64;
        let stale: Vec<UniqueId> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                let interval = s.interim_interval.map_or(default, i64::from).max(1);
                now - s.last_update > interval * i64::from(config.stale_after)
            })
            .map(|(id, _)| *id)
            .collect();
        stale
            .iter()
            .filter_map(|id| self.remove(id).map(|s| s.view(id)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use super::*;

    fn update(status: Status, n: u8, user: &'static str, time: i64) -> Update<'static> {
        Update {
            status,
            id: Some(UniqueId([n; 16])),
            user: Cow::Borrowed(user),
            accounted_user: Some(Cow::Borrowed("anonymous")),
            acct_session_id: Cow::Owned(format!("S{n}")),
            client: Cow::Borrowed("nas1"),
            nas_address: "127.0.0.1".parse().unwrap(),
            nas_ip_address: Some(Ipv4Addr::new(10, 0, 0, 1)),
            nas_identifier: Some(Cow::Borrowed("hapd1")),
            nas_port: Some(u32::from(n)),
            nas_port_id: None,
            framed_ip_address: None,
            calling_station_id: Some(Cow::Borrowed("02-00-00-00-00-01")),
            called_station_id: None,
            acct_multi_session_id: None,
            chargeable_user_identity: None,
            session_time: None,
            input_octets: 0,
            output_octets: 0,
            interim_interval: None,
            time,
        }
    }

    #[test]
    fn start_interim_stop() {
        let mut t = SessionTable::new(10);
        assert_eq!(
            t.apply(&update(Status::Start, 1, "alice", 100)),
            Applied::Started
        );
        let mut interim = update(Status::InterimUpdate, 1, "alice", 160);
        interim.input_octets = 5 << 32 | 7;
        interim.framed_ip_address = Some(Ipv4Addr::new(192, 0, 2, 9));
        interim.session_time = Some(60);
        assert_eq!(t.apply(&interim), Applied::Updated);
        let v = t.view(&UniqueId([1; 16])).unwrap();
        assert_eq!((v.started, v.last_update), (100, 160));
        assert_eq!(v.input_octets, (5 << 32) | 7);
        assert_eq!(v.framed_ip_address, Some(Ipv4Addr::new(192, 0, 2, 9)));
        assert_eq!(v.user, "alice");
        assert_eq!(v.accounted_user.as_deref(), Some("anonymous"));
        assert_eq!(t.count_user("alice"), 1);
        assert_eq!(
            t.apply(&update(Status::Stop, 1, "alice", 200)),
            Applied::Stopped
        );
        assert!(t.is_empty());
        assert_eq!(t.count_user("alice"), 0);
        assert!(t.open_by_client().is_empty());
        // An update overtaken by its Stop does not reopen the session.
        assert_eq!(t.apply(&interim), Applied::Ignored);
        // Nor does a Start whose Stop came first.
        assert_eq!(
            t.apply(&update(Status::Stop, 2, "bob", 200)),
            Applied::Ignored
        );
        assert_eq!(
            t.apply(&update(Status::Start, 2, "bob", 100)),
            Applied::Ignored
        );
        assert!(t.is_empty());
    }

    #[test]
    fn update_of_unknown_session_opens_it_back_dated() {
        let mut t = SessionTable::new(10);
        let mut u = update(Status::InterimUpdate, 3, "carol", 1000);
        u.session_time = Some(400);
        assert_eq!(t.apply(&u), Applied::Started);
        assert_eq!(t.view(&UniqueId([3; 16])).unwrap().started, 600);
        let mut none = update(Status::Start, 4, "dave", 1);
        none.id = None;
        assert_eq!(t.apply(&none), Applied::Unkeyed);
    }

    #[test]
    fn bounded_and_counted_per_user_and_client() {
        let mut t = SessionTable::new(2);
        assert_eq!(
            t.apply(&update(Status::Start, 1, "alice", 10)),
            Applied::Started
        );
        assert_eq!(
            t.apply(&update(Status::Start, 2, "alice", 5)),
            Applied::Started
        );
        assert_eq!(
            t.apply(&update(Status::Start, 3, "bob", 1)),
            Applied::Untracked
        );
        assert_eq!(t.len(), 2);
        assert_eq!(t.count_user("alice"), 2);
        assert_eq!(t.oldest_of("alice"), Some(UniqueId([2; 16])));
        assert_eq!(t.open_by_client(), vec![("nas1".to_string(), 2)]);
        // Updates of tracked sessions still apply at the bound.
        assert_eq!(
            t.apply(&update(Status::InterimUpdate, 1, "alice", 20)),
            Applied::Updated
        );
    }

    #[test]
    fn accounting_on_closes_only_that_nas() {
        let mut t = SessionTable::new(10);
        t.apply(&update(Status::Start, 1, "alice", 10));
        let mut other = update(Status::Start, 2, "bob", 10);
        other.nas_ip_address = Some(Ipv4Addr::new(10, 0, 0, 2));
        t.apply(&other);
        let mut on = update(Status::AccountingOn, 0, "", 20);
        on.id = None;
        assert_eq!(t.apply(&on), Applied::NasReset(1));
        assert_eq!(t.len(), 1);
        assert_eq!(t.count_user("bob"), 1);
    }

    #[test]
    fn sweep_closes_silent_sessions() {
        let config = SessionsConfig {
            interim_interval: Duration::from_secs(60),
            stale_after: 3,
            ..SessionsConfig::default()
        };
        let mut t = SessionTable::new(10);
        t.apply(&update(Status::Start, 1, "alice", 1000));
        let mut own = update(Status::Start, 2, "bob", 1000);
        own.interim_interval = Some(600);
        t.apply(&own);
        assert!(t.sweep(1180, &config).is_empty(), "3 × 60 s not yet passed");
        let closed = t.sweep(1181, &config);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].user, "alice");
        assert_eq!(t.len(), 1, "bob's own interval is 600 s");
        assert_eq!(t.sweep(2801, &config).len(), 1);
        let never = SessionsConfig {
            stale_after: 0,
            ..config
        };
        t.apply(&update(Status::Start, 3, "carol", 0));
        assert!(t.sweep(i64::MAX / 4, &never).is_empty());
    }
}
