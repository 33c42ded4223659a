//! A trivial RADIUS responder, to measure the loader alone: it answers every Access-Request and
//! Status-Server with an Access-Accept and every Accounting-Request with an Accounting-Response,
//! checking nothing and doing only the crypto a reply needs (one HMAC-MD5 for the
//! Message-Authenticator, one MD5 for the Response Authenticator). Same batched I/O as the
//! server's shards. Runs until killed.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

use super::error::BenchError;
use crate::dataplane::batch::{RecvBatch, SendBatch};
use crate::proto::crypto::authenticator::{md5_authenticator, message_authenticator};
use crate::proto::{Secret, HEADER_LEN};

const BATCH: usize = 64;
/// Access-Accept carrying only a Message-Authenticator: header + 18.
const ACCEPT_LEN: usize = HEADER_LEN + 18;

pub fn run(addr: SocketAddr, secret: &str) -> Result<(), BenchError> {
    let secret = Secret::new(secret.as_bytes())?;
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(8 << 20);
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    let socket: std::net::UdpSocket = s.into();
    let fd = socket.as_raw_fd();
    eprintln!("responder listening on {}", socket.local_addr()?);
    let mut rx = RecvBatch::new(BATCH);
    let mut tx = SendBatch::new(BATCH);
    loop {
        let got = rx.recv(fd)?;
        if got == 0 {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd; blocking until readable.
            unsafe { libc::poll(&mut pfd, 1, -1) };
            continue;
        }
        for i in 0..got {
            let Some((req, from, _)) = rx.get(i) else {
                continue;
            };
            let Some(header) = req.get(..HEADER_LEN) else {
                continue;
            };
            let mut ra = [0u8; 16];
            ra.copy_from_slice(&header[4..]);
            let (code, len) = match header[0] {
                1 | 12 => (2u8, ACCEPT_LEN),
                4 => (5u8, HEADER_LEN),
                _ => continue,
            };
            let Some(slot) = tx.slot() else { break };
            let out = &mut slot[..len];
            out[0] = code;
            out[1] = header[1];
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            out[4..HEADER_LEN].copy_from_slice(&ra);
            if len == ACCEPT_LEN {
                out[HEADER_LEN] = 80;
                out[HEADER_LEN + 1] = 18;
                out[HEADER_LEN + 2..].fill(0);
                if let Some(mac) = message_authenticator(&secret, out, &ra, HEADER_LEN) {
                    out[HEADER_LEN + 2..].copy_from_slice(&mac);
                }
            }
            if let Some(auth) = md5_authenticator(&secret, out, &ra) {
                out[4..HEADER_LEN].copy_from_slice(&auth);
            }
            tx.commit(len, from);
        }
        // A full kernel buffer loses replies; the loader counts them as timeouts.
        let _ = tx.flush(fd);
    }
}
