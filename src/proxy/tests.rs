//! The pieces together, as the runtime will drive them, over a simulated network and a fake
//! clock: route, pick, allocate, forward, the home server answers (or not), verify, release,
//! relay; liveness and fail-over follow from replies and timeouts alone.

use std::time::{Duration, Instant};

use super::forward::{forward_request, relay_reply, verify_reply, ForwardRules, Sent, Upstream};
use super::home::{HomeServer, HomeSettings, HomeState};
use super::ids::{IdTable, Key};
use super::pool::{balance_key, Fallback, Member, Pick, Pool, PoolKind};
use super::realm::{
    AcctTarget, AuthAction, AuthTarget, NaiForms, RealmRoute, RealmTable, StripRealm,
};
use crate::proto::{
    verify_request, verify_response, Code, Packet, PacketBuilder, Secret, CALLING_STATION_ID,
    MAX_PACKET_LEN, USER_NAME,
};

struct Home {
    secret: Secret,
    live: HomeServer,
    ids: IdTable<Sent>,
    /// Whether the simulated server answers.
    up: bool,
}

struct Sim {
    t0: Instant,
    nas_secret: Secret,
    realms: RealmTable,
    pool: Pool,
    homes: Vec<Home>,
    counter: u64,
}

impl Sim {
    fn new() -> Self {
        let t0 = Instant::now();
        let mut realms = RealmTable::new(NaiForms::default());
        realms
            .add_exact(
                "partner.edu",
                RealmRoute {
                    auth: AuthTarget::Pool("partner".into()),
                    acct: AcctTarget::Local,
                    strip: StripRealm::Strip,
                },
            )
            .expect("ok");
        let homes = ["home-a", "home-b"]
            .iter()
            .map(|s| Home {
                secret: Secret::new(*s).expect("ok"),
                live: HomeServer::new(HomeSettings::default(), t0),
                ids: IdTable::new(2, 512).expect("ok"),
                up: true,
            })
            .collect();
        Sim {
            t0,
            nas_secret: Secret::new("nas").expect("ok"),
            realms,
            pool: Pool::new(PoolKind::FailOver, Fallback::Reject, 2).expect("ok"),
            homes,
            counter: 0,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn nas_request(&self, user: &[u8], id: u8) -> Vec<u8> {
        let mut buf = [0u8; MAX_PACKET_LEN];
        let auth = [id; 16];
        let mut b = PacketBuilder::request(&mut buf, Code::AccessRequest, id, &auth).expect("ok");
        b.message_authenticator().expect("ok");
        b.attr(USER_NAME, user).expect("ok");
        b.user_password(&self.nas_secret, b"pw").expect("ok");
        b.attr(CALLING_STATION_ID, b"02-00-00-00-00-01")
            .expect("ok");
        b.finish(&self.nas_secret).expect("ok").to_vec()
    }

    /// Drives every timer to `now`, sends due Status-Server checks (answered at once by a
    /// server that is up), and returns how many NAS requests expired unanswered.
    fn tick(&mut self, now: Instant) -> usize {
        let mut expired = 0;
        for h in &mut self.homes {
            expired += h.ids.expire(now).count();
            h.live.handle_timeout(now);
            if h.live.wants_status_check(now) {
                h.live.on_status_sent(now);
                if h.up {
                    h.live.on_status_reply(now + Duration::from_millis(5));
                }
            }
            h.live.handle_timeout(now);
        }
        expired
    }

    /// One Access-Request from the NAS at `now`; returns the home server that answered.
    fn request(&mut self, now: Instant, user: &[u8], id: u8) -> Option<usize> {
        let nas_bytes = self.nas_request(user, id);
        let nas = verify_request(
            Packet::parse(&nas_bytes).expect("ok"),
            &self.nas_secret,
            true,
        )
        .expect("ok");
        let route = self.realms.route(user, false);
        assert_eq!(route.auth, AuthAction::Pool("partner"));
        let members: Vec<Member> = self
            .homes
            .iter()
            .map(|h| Member {
                state: h.live.state(),
                outstanding: h.ids.outstanding() as u32,
                has_room: h.ids.has_room(),
            })
            .collect();
        let key = balance_key(nas.attr(CALLING_STATION_ID), nas.user_name());
        let Pick::Member(i) = self.pool.pick(&members, key) else {
            return None;
        };
        let home = self.homes.get_mut(i).expect("member");
        let deadline = now + home.live.settings().response_window;
        self.counter += 1;
        let mut up = Upstream {
            secret: &home.secret,
            identifier: 0,
            authenticator: self.counter.to_be_bytes().repeat(2).try_into().expect("16"),
            proxy_state: self.counter.to_be_bytes(),
        };
        let placeholder = Sent {
            code: Code::AccessRequest,
            identifier: 0,
            authenticator: up.authenticator,
            proxy_state: up.proxy_state,
        };
        let key: Key = home.ids.allocate(deadline, placeholder).expect("room");
        up.identifier = key.id;
        let mut buf = [0u8; MAX_PACKET_LEN];
        let (fwd, sent) = forward_request(
            &nas,
            Some(route.user_name),
            &up,
            &ForwardRules::default(),
            &mut buf,
        )
        .expect("forwarded");
        *home.ids.get_mut(key).expect("entry") = sent;
        home.live.on_sent(now);
        if !home.up {
            return None;
        }
        // The home server answers within 50 ms.
        let req = verify_request(Packet::parse(fwd).expect("ok"), &home.secret, true).expect("ok");
        assert_eq!(req.user_name(), Some(&b"bob"[..]));
        let mut rb = [0u8; MAX_PACKET_LEN];
        let reply = PacketBuilder::reply(&mut rb, Code::AccessAccept, &req)
            .expect("ok")
            .finish(&home.secret)
            .expect("ok")
            .to_vec();
        let when = now + Duration::from_millis(50);
        // The reply arrives on slot `key.slot` with its Identifier: find, verify, release.
        let reply_key = Key {
            slot: key.slot,
            id: Packet::parse(&reply).expect("ok").identifier(),
        };
        let sent = *home.ids.get(reply_key).expect("outstanding");
        let hr = verify_reply(&reply, &sent, &home.secret, true).expect("verifies");
        home.ids.release(reply_key).expect("released");
        home.live.on_reply(when);
        let mut out = [0u8; MAX_PACKET_LEN];
        let to_nas = relay_reply(&hr, &sent, &home.secret, &nas, &mut out).expect("relayed");
        let p = Packet::parse(to_nas).expect("ok");
        assert_eq!(
            verify_response(&p, nas.authenticator(), &self.nas_secret),
            Ok(())
        );
        Some(i)
    }
}

#[test]
fn fail_over_and_back_over_a_simulated_network() {
    let mut sim = Sim::new();
    let mut answered_by = Vec::new();
    let mut expired = 0;
    // One request a second for 200 s. Server A stops answering at 10 s and comes back at
    // 100 s; B answers throughout.
    for s in 0..200u64 {
        let now = sim.at(s * 1000);
        if s == 10 {
            sim.homes[0].up = false;
        }
        if s == 100 {
            sim.homes[0].up = true;
        }
        expired += sim.tick(now);
        answered_by.push(sim.request(now, b"bob@partner.edu", (s % 256) as u8));
    }
    expired += sim.tick(sim.at(250_000));
    // 0..10 on A; 10..=29 sent to A unanswered until A is a zombie at 30 (the oldest's
    // window), then B. A is checked at 30 and 60 (no answer), dead at 70, checked at 90
    // (still down), then answers the checks at 120, 150 and 180: alive again at 180.
    assert!(answered_by[..10].iter().all(|a| *a == Some(0)));
    assert!(answered_by[10..30].iter().all(|a| a.is_none()));
    assert_eq!(expired, 20, "the unanswered requests expire for the NAS");
    assert!(answered_by[30..180].iter().all(|a| *a == Some(1)));
    assert!(answered_by[180..].iter().all(|a| *a == Some(0)));
    assert_eq!(sim.homes[0].live.state(), HomeState::Alive);
    assert!(sim.homes.iter().all(|h| h.ids.outstanding() == 0));
}

/// The engine's Message-Authenticator rule for replies: `Auto` takes unsigned replies from a
/// home server until it has signed one, and never again after; `Require` never; `Optional`
/// always. A signed reply is verified under every rule.
#[test]
fn engine_reply_message_authenticator_rules() {
    use super::engine::{Engine, HomeId, HomeSpec, PoolId, PoolSpec, Received, Request};
    use super::forward::ReplyMaRule;
    use crate::proto::{attr::PROXY_STATE, crypto::authenticator::md5_authenticator};
    use std::sync::Arc;

    let t0 = Instant::now();
    let home_secret = Secret::new("home").expect("ok");
    let engine = |rule| {
        let home = HomeSpec {
            name: "h".into(),
            address: "127.0.0.1:18120".parse().expect("addr"),
            secret: Arc::new(home_secret.clone()),
            settings: HomeSettings::default(),
            max_outstanding: 16,
            reply_ma: rule,
            transport: super::engine::HomeTransport::Udp,
        };
        let pool = PoolSpec {
            name: "p".into(),
            pool: Pool::new(PoolKind::FailOver, Fallback::Reject, 1).expect("ok"),
            members: vec![HomeId(0)],
        };
        Engine::<u8>::new(vec![home], vec![pool], ForwardRules::default(), t0).expect("ok")
    };
    let sim = Sim::new();
    // One exchange: a NAS request forwarded, answered signed or not; what the engine made of it.
    let exchange = |e: &mut Engine<u8>, n: u8, signed: bool| -> Received<u8> {
        let nas = sim.nas_request(b"bob@partner.edu", n);
        let t = e
            .submit(
                Request {
                    pool: PoolId(0),
                    nas: verify_request(Packet::parse(&nas).expect("ok"), &sim.nas_secret, true)
                        .expect("verifies")
                        .to_owned_request(),
                    user_name: None,
                    key: 0,
                    deadline: t0 + Duration::from_secs(30),
                    waiter: n,
                },
                t0,
            )
            .expect("forwarded");
        let req =
            verify_request(Packet::parse(&t.bytes).expect("ok"), &home_secret, true).expect("ok");
        let mut rb = [0u8; MAX_PACKET_LEN];
        let reply = if signed {
            PacketBuilder::reply(&mut rb, Code::AccessAccept, &req)
                .expect("ok")
                .finish(&home_secret)
                .expect("ok")
                .to_vec()
        } else {
            // What FreeRADIUS before 3.2.5 sends: Proxy-State back, no Message-Authenticator.
            let mut p = vec![Code::AccessAccept as u8, req.identifier(), 0, 0];
            p.extend_from_slice(&[0; 16]);
            for ps in req.packet().attributes().filter(|a| a.typ == PROXY_STATE) {
                p.extend_from_slice(&[PROXY_STATE, ps.value.len() as u8 + 2]);
                p.extend_from_slice(ps.value);
            }
            let len = p.len() as u16;
            p[2..4].copy_from_slice(&len.to_be_bytes());
            let auth = md5_authenticator(&home_secret, &p, req.authenticator()).expect("fits");
            p[4..20].copy_from_slice(&auth);
            p
        };
        e.on_datagram(t.home, t.slot, &reply, t0)
    };
    let answered = |r: &Received<u8>| matches!(r, Received::Answered(_));
    let missing = |r: &Received<u8>| {
        matches!(
            r,
            Received::Refused(super::forward::ReplyError::MissingMessageAuthenticator)
        )
    };

    let mut auto = engine(ReplyMaRule::Auto);
    assert!(
        answered(&exchange(&mut auto, 1, false)),
        "unsigned, before it signs"
    );
    assert!(answered(&exchange(&mut auto, 2, true)));
    assert!(
        missing(&exchange(&mut auto, 3, false)),
        "unsigned, after it signed"
    );

    let mut require = engine(ReplyMaRule::Require);
    assert!(missing(&exchange(&mut require, 1, false)));
    assert!(answered(&exchange(&mut require, 2, true)));

    let mut optional = engine(ReplyMaRule::Optional);
    assert!(answered(&exchange(&mut optional, 1, true)));
    assert!(answered(&exchange(&mut optional, 2, false)));
}
