//! The proxy's untrusted inputs: a home server's reply to a fixed forwarded request, both
//! as raw bytes and as attributes inside a correctly signed reply (so the relay is reached,
//! not just the authenticator check), the answer to a Status-Server check, a NAI for the
//! realm table, and a NAS request to forward. Nothing may panic; whatever verifies must
//! round-trip: the NAS's reply parses, verifies under the NAS's secret, carries the home
//! server's attributes in order without our Proxy-State, the NAS's Proxy-States in order,
//! and keys that decrypt to the same octets; a forwarded request verifies under the home
//! secret with the same password.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use radshard::proto::crypto::{mppe, tunnel_password};
use radshard::proto::{
    verify_request, verify_response, Code, Packet, PacketBuilder, Secret, Verified, MAX_PACKET_LEN,
    MESSAGE_AUTHENTICATOR, MICROSOFT, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY, PROXY_STATE,
    TUNNEL_PASSWORD, USER_NAME, VENDOR_SPECIFIC,
};
use radshard::proxy::forward::{
    forward_request, relay_reply, status_check, verify_reply, ForwardRules, Sent, Upstream,
};
use radshard::proxy::realm::{
    validate_realm, AcctTarget, AuthTarget, NaiForms, RealmForm, RealmRoute, RealmTable, StripRealm,
};

const NAS_AUTH: [u8; 16] = [0x11; 16];
const NAS_PROXY_STATES: [&[u8]; 2] = [b"nas-ps-1", b"nas-ps-2"];

struct Fixture {
    nas_secret: Secret,
    home_secret: Secret,
    nas_request: Vec<u8>,
    forwarded: Vec<u8>,
    sent: Sent,
    status_sent: Sent,
    table: RealmTable,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let nas_secret = Secret::new("nas-secret").expect("non-empty");
        let home_secret = Secret::new("home-secret").expect("non-empty");
        let mut buf = [0u8; MAX_PACKET_LEN];
        let mut b =
            PacketBuilder::request(&mut buf, Code::AccessRequest, 7, &NAS_AUTH).expect("fits");
        b.message_authenticator().expect("fits");
        b.attr(USER_NAME, b"bob@partner.edu").expect("fits");
        b.user_password(&nas_secret, b"correct horse")
            .expect("fits");
        for ps in NAS_PROXY_STATES {
            b.attr(PROXY_STATE, ps).expect("fits");
        }
        let nas_request = b.finish(&nas_secret).expect("fits").to_vec();
        let nas = verify_request(
            Packet::parse(&nas_request).expect("parses"),
            &nas_secret,
            true,
        )
        .expect("verifies");
        let up = Upstream {
            secret: &home_secret,
            identifier: 200,
            authenticator: [0x22; 16],
            proxy_state: *b"rs\x00\x01\x00\x07\x00\x2a",
        };
        let mut fb = [0u8; MAX_PACKET_LEN];
        let (fwd, sent) = forward_request(
            &nas,
            Some(b"bob"),
            &up,
            &ForwardRules::with_max_proxy_states(4),
            &mut fb,
        )
        .expect("forwards");
        let forwarded = fwd.to_vec();
        let mut sb = [0u8; MAX_PACKET_LEN];
        let (_, status_sent) = status_check(&up, &mut sb).expect("builds");

        let mut table = RealmTable::new(NaiForms {
            prefix_slash: true,
            nt_domain: true,
        });
        let route = |auth, strip| RealmRoute {
            auth,
            acct: AcctTarget::Local,
            strip,
        };
        table
            .add_exact(
                "partner.edu",
                route(AuthTarget::Pool("p".into()), StripRealm::KeepForEap),
            )
            .expect("ok");
        table
            .add_exact("EXAMPLE", route(AuthTarget::Local, StripRealm::Strip))
            .expect("ok");
        table
            .add_regex(
                r"\.ac\.uk$",
                route(AuthTarget::Pool("janet".into()), StripRealm::Keep),
            )
            .expect("ok");
        table.set_default(route(AuthTarget::Reject, StripRealm::Keep));
        table.set_no_realm(route(AuthTarget::Local, StripRealm::Keep));
        Fixture {
            nas_secret,
            home_secret,
            nas_request,
            forwarded,
            sent,
            status_sent,
            table,
        }
    })
}

fn nas(f: &Fixture) -> Verified<'_> {
    verify_request(
        Packet::parse(&f.nas_request).expect("parses"),
        &f.nas_secret,
        true,
    )
    .expect("verifies")
}

/// Attributes compared as they are: everything but the ones the relay rewrites.
fn plain_attrs<'a>(
    it: impl Iterator<Item = radshard::proto::Attribute<'a>>,
) -> Vec<(u8, &'a [u8])> {
    it.filter(|a| {
        let ms_vsa = a.typ == VENDOR_SPECIFIC && a.value.get(..4) == Some(&MICROSOFT.to_be_bytes());
        !matches!(a.typ, MESSAGE_AUTHENTICATOR | PROXY_STATE | TUNNEL_PASSWORD) && !ms_vsa
    })
    .map(|a| (a.typ, a.value))
    .collect()
}

fn tunnel_passwords<'a>(
    it: impl Iterator<Item = radshard::proto::Attribute<'a>>,
    s: &Secret,
    ra: &[u8; 16],
) -> Vec<(u8, Vec<u8>)> {
    it.filter(|a| a.typ == TUNNEL_PASSWORD)
        .filter_map(|a| {
            let mut out = [0u8; 240];
            tunnel_password::decrypt(s, ra, a.value, &mut out)
                .ok()
                .map(|(t, p)| (t, p.to_vec()))
        })
        .collect()
}

fn mppe_keys(p: &Packet<'_>, s: &Secret, ra: &[u8; 16]) -> Vec<(u8, Vec<u8>)> {
    p.vendor_attributes()
        .filter(|v| v.vendor == MICROSOFT)
        .flat_map(|v| v.sub_attributes())
        .filter(|sa| matches!(sa.vtype, MS_MPPE_SEND_KEY | MS_MPPE_RECV_KEY))
        .filter_map(|sa| {
            let mut out = [0u8; 240];
            mppe::decrypt(s, ra, sa.value, &mut out)
                .ok()
                .map(|k| (sa.vtype, k.to_vec()))
        })
        .collect()
}

/// Returns whether the reply verified.
fn check_reply(f: &Fixture, bytes: &[u8]) -> bool {
    let Ok(hr) = verify_reply(bytes, &f.sent, &f.home_secret, true) else {
        return false;
    };
    let nas = nas(f);
    let mut out = [0u8; MAX_PACKET_LEN];
    // A malformed hidden attribute, or a reply that no longer fits once the NAS's
    // Proxy-States are back, is refused: fine, as long as it is an error.
    let Ok(to_nas) = relay_reply(&hr, &f.sent, &f.home_secret, &nas, &mut out) else {
        return true;
    };
    let p = Packet::parse(to_nas).expect("our own reply parses");
    verify_response(&p, &NAS_AUTH, &f.nas_secret).expect("our own reply verifies");
    assert_eq!(p.code(), hr.code());
    assert_eq!(p.identifier(), 7);
    if matches!(
        p.code(),
        Code::AccessAccept | Code::AccessReject | Code::AccessChallenge
    ) {
        assert!(p.message_authenticator_offset().is_some());
    }
    assert_eq!(plain_attrs(p.attributes()), plain_attrs(hr.attributes()));
    let ps: Vec<&[u8]> = p
        .attributes()
        .filter(|a| a.typ == PROXY_STATE)
        .map(|a| a.value)
        .collect();
    assert_eq!(ps, NAS_PROXY_STATES);
    assert_eq!(
        tunnel_passwords(p.attributes(), &f.nas_secret, &NAS_AUTH),
        tunnel_passwords(hr.attributes(), &f.home_secret, &f.sent.authenticator)
    );
    assert_eq!(
        mppe_keys(&p, &f.nas_secret, &NAS_AUTH),
        mppe_keys(hr.packet(), &f.home_secret, &f.sent.authenticator)
    );
    true
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };

    // A NAI: never panics; a stripped name is the user part of the input.
    let route = f.table.route(rest, mode & 1 == 1);
    assert!(route.user_name.len() <= rest.len());
    if let Some(realm) = route.realm {
        if realm.form != RealmForm::NtDomain {
            assert!(
                validate_realm(realm.name).is_ok(),
                "a routed realm is valid"
            );
        }
    }

    // Raw bytes as a reply: almost never verify (that would be an MD5 forgery) but must
    // not panic on the way.
    check_reply(f, rest);
    // And as the answer to a Status-Server check.
    if let Ok(hr) = verify_reply(rest, &f.status_sent, &f.home_secret, true) {
        assert!(matches!(
            hr.code(),
            Code::AccessAccept | Code::AccountingResponse
        ));
    }

    // The bytes as attributes of a reply the home server signed properly.
    let code = match mode % 3 {
        0 => Code::AccessAccept,
        1 => Code::AccessReject,
        _ => Code::AccessChallenge,
    };
    let fwd = verify_request(
        Packet::parse(&f.forwarded).expect("parses"),
        &f.home_secret,
        true,
    )
    .expect("the home server verifies our request");
    let mut buf = [0u8; MAX_PACKET_LEN];
    if let Ok(mut b) = PacketBuilder::reply(&mut buf, code, &fwd) {
        if b.raw(rest).is_ok() {
            if let Ok(reply) = b.finish(&f.home_secret) {
                assert!(check_reply(f, reply), "a properly signed reply verifies");
            }
        }
    }

    // The bytes as a NAS request (no Message-Authenticator needed unless EAP): forwarded,
    // it verifies under the home secret and reveals the same password.
    if let Ok(p) = Packet::parse(rest) {
        if let Ok(req) = verify_request(p, &f.nas_secret, false) {
            let up = Upstream {
                secret: &f.home_secret,
                identifier: 9,
                authenticator: [0x33; 16],
                proxy_state: [0x44; 8],
            };
            let mut fb = [0u8; MAX_PACKET_LEN];
            if let Ok((fwd, _)) = forward_request(
                &req,
                Some(route.user_name),
                &up,
                &ForwardRules::with_max_proxy_states(4),
                &mut fb,
            ) {
                let fp = Packet::parse(fwd).expect("our own request parses");
                let fv =
                    verify_request(fp, &f.home_secret, true).expect("our own request verifies");
                let mut a = [0u8; 128];
                let mut b = [0u8; 128];
                assert_eq!(
                    fv.user_password(&mut a).ok(),
                    req.user_password(&mut b).ok(),
                    "the password survives re-hiding"
                );
            }
        }
    }
});
