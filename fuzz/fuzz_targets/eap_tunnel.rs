//! Untrusted tunnel-method bytes: the same input as an EAP-TLS/TTLS/PEAP fragment header, as
//! EAP-MSCHAPv2 in a Request and in a Response, as TTLS's Diameter AVPs, as a PEAP Extensions
//! packet's TLVs and as a header-less PEAPv0 inner packet. Every parser must answer an error
//! instead of panicking, and whatever parses must write back to what was read.

#![no_main]

use libfuzzer_sys::fuzz_target;
use radshard::proto::eap::{mschapv2, peap, tls, ttls, EapCode, EapPacket, EapType};

fuzz_target!(|data: &[u8]| {
    let mut out = vec![0u8; data.len() + 64];

    if let Ok(f) = tls::TlsFragment::parse(data) {
        let n = tls::write_fragment(
            &mut out,
            EapCode::Request,
            1,
            EapType::Peap,
            f.flags,
            f.message_length,
            f.data,
        )
        .expect("a parsed fragment fits");
        assert_eq!(&out[5..n], data);
        std::hint::black_box((f.more(), f.start(), f.version(), f.is_ack()));
    }

    for code in [EapCode::Request, EapCode::Response] {
        let Ok(m) = mschapv2::parse(code, data) else {
            continue;
        };
        let n = match m {
            mschapv2::Message::Challenge(c) => {
                mschapv2::write_challenge(&mut out, 1, c.ms_id, c.challenge, c.name)
            }
            mschapv2::Message::Response(r) => {
                let n = mschapv2::write_response(
                    &mut out,
                    1,
                    r.ms_id,
                    r.peer_challenge,
                    r.nt_response,
                    r.name,
                )
                .expect("a parsed response fits");
                // Reserved octets and flags are written as zero: compare what was read.
                let Ok(mschapv2::Message::Response(b)) = mschapv2::parse(code, &out[5..n]) else {
                    panic!("a written response does not parse");
                };
                assert_eq!(
                    (b.ms_id, b.peer_challenge, b.nt_response, b.name),
                    (r.ms_id, r.peer_challenge, r.nt_response, r.name)
                );
                continue;
            }
            mschapv2::Message::Success { ms_id, message } => {
                mschapv2::write_success(&mut out, 1, ms_id, message)
            }
            mschapv2::Message::Failure { ms_id, message } => {
                mschapv2::write_failure(&mut out, 1, ms_id, message)
            }
            mschapv2::Message::SuccessAck => mschapv2::write_ack(&mut out, 1, mschapv2::OP_SUCCESS),
            mschapv2::Message::FailureAck => mschapv2::write_ack(&mut out, 1, mschapv2::OP_FAILURE),
            mschapv2::Message::ChangePassword { ms_id } => {
                assert_eq!(data.get(1), Some(&ms_id));
                continue;
            }
        };
        let n = n.expect("a parsed message fits");
        assert_eq!(&out[5..n], data);
        assert!(EapPacket::parse(&out[..n]).is_ok());
    }

    for avp in ttls::avps(data) {
        let Ok(a) = avp else { break };
        let n = ttls::write_avp(&mut out, a.code, a.vendor, a.mandatory, a.data)
            .expect("a parsed AVP fits");
        let b = ttls::avps(&out[..n])
            .next()
            .expect("one AVP")
            .expect("a written AVP parses");
        assert_eq!(
            (b.code, b.vendor, b.mandatory, b.data),
            (a.code, a.vendor, a.mandatory, a.data)
        );
        std::hint::black_box(ttls::password(a.data));
    }

    if let Ok(e) = peap::read_extensions(data) {
        assert_eq!(peap::read_result(data), Ok(e.result));
        let n = peap::write_result(&mut out, EapCode::Response, 1, e.result).expect("fits");
        assert_eq!(peap::read_result(&out[5..n]), Ok(e.result));
    }

    if let Some(n) = peap::with_header(&mut out, EapCode::Response, 1, data) {
        let p = EapPacket::parse(&out[..n]).expect("a rebuilt packet parses");
        assert_eq!(p.type_data(), &data[1..]);
        if data[0] != peap::TYPE_EXTENSIONS {
            assert_eq!(peap::without_header(&out[..n]), data);
        }
    }
    std::hint::black_box((peap::without_header(data), peap::is_extensions_packet(data)));
});
