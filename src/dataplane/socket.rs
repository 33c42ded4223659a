//! Listening sockets: one `SO_REUSEPORT` group per listen address, one socket per shard, and a
//! classic BPF program that picks the shard from the Request Authenticator.
//!
//! The kernel's default reuseport choice hashes the 4-tuple, so one busy NAS (one source port)
//! would load a single shard. Steering by the Request Authenticator spreads one NAS over every
//! shard, while a retransmission (same authenticator) still reaches the shard whose duplicate
//! cache knows it.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

/// What a listener serves: RFC 2865 authentication or RFC 2866 accounting, or (RadSec,
/// RFC 6614 §2.3) both on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Auth,
    Acct,
    Both,
}

/// The sockets of one listen address, in reuseport-group order: socket `k` belongs to shard `k`.
pub struct ListenerGroup {
    pub role: Role,
    /// The bound address (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    pub sockets: Vec<Socket>,
}

/// Kernel receive buffer we ask for: a burst of NAS traffic should queue, not drop, while a
/// shard is busy. Capped by net.core.rmem_max unless we may force it (root).
const RECV_BUFFER: usize = 8 << 20;
const SEND_BUFFER: usize = 4 << 20;

/// Binds `shards` sockets to `addr` in one reuseport group and attaches the steering program.
/// Sockets are bound here, in order, on one thread: the group's socket index is the order of
/// binding, and the BPF program's return value is that index.
pub fn bind_group(addr: SocketAddr, role: Role, shards: usize) -> io::Result<ListenerGroup> {
    let shards = shards.max(1);
    let mut sockets = Vec::with_capacity(shards);
    let mut bound = addr;
    for _ in 0..shards {
        let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            // Keep IPv4 on its own socket group: a dual-stack socket would hand us
            // IPv4-mapped addresses and split one client across two identities.
            s.set_only_v6(true)?;
        }
        s.set_reuse_port(true)?;
        s.set_nonblocking(true)?;
        set_buffer(&s, libc::SO_RCVBUFFORCE, RECV_BUFFER)
            .or_else(|_| s.set_recv_buffer_size(RECV_BUFFER))?;
        set_buffer(&s, libc::SO_SNDBUFFORCE, SEND_BUFFER)
            .or_else(|_| s.set_send_buffer_size(SEND_BUFFER))?;
        s.bind(&bound.into())?;
        if bound.port() == 0 {
            // An ephemeral port: the rest of the group must join the port the kernel chose.
            bound = s
                .local_addr()?
                .as_socket()
                .ok_or_else(|| io::Error::other("bound socket has no IP address"))?;
        }
        sockets.push(s);
    }
    if shards > 1 {
        attach_steering(&sockets[0], shards)?;
    }
    Ok(ListenerGroup {
        role,
        addr: bound,
        sockets,
    })
}

/// Binds `shards` listening TCP sockets to `addr` in one reuseport group (RadSec): the
/// kernel spreads new connections over them, and each belongs to its shard for life. With
/// port 0 the first socket's port is used for the rest. Returns the bound address.
pub fn bind_tcp_group(addr: SocketAddr, shards: usize) -> io::Result<(SocketAddr, Vec<Socket>)> {
    let mut bound = addr;
    let mut sockets = Vec::with_capacity(shards);
    for _ in 0..shards.max(1) {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        if addr.is_ipv6() {
            s.set_only_v6(true)?;
        }
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.set_nonblocking(true)?;
        s.bind(&bound.into())?;
        s.listen(1024)?;
        if bound.port() == 0 {
            bound = s
                .local_addr()?
                .as_socket()
                .ok_or_else(|| io::Error::other("not an IP socket"))?;
        }
        sockets.push(s);
    }
    Ok((bound, sockets))
}

fn set_buffer(s: &Socket, opt: libc::c_int, size: usize) -> io::Result<()> {
    let v: libc::c_int = size.try_into().unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a valid pointer to `v`.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Offset of the Request Authenticator in a RADIUS packet. For UDP the kernel runs the reuseport
/// program with the data pointer at the UDP payload, so this is the offset into the datagram.
const AUTHENTICATOR_OFFSET: u32 = 4;

/// The steering program: `A = first 32 bits of the authenticator; A %= shards; return A`.
/// A datagram too short to hold them aborts the load, which returns 0: shard 0 receives it and
/// drops it as malformed.
pub fn steering_program(shards: usize) -> [libc::sock_filter; 3] {
    let n = u32::try_from(shards).unwrap_or(u32::MAX);
    [
        bpf(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            AUTHENTICATOR_OFFSET,
        ),
        bpf(libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K, n),
        bpf(libc::BPF_RET | libc::BPF_A, 0),
    ]
}

fn bpf(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn attach_steering(s: &Socket, shards: usize) -> io::Result<()> {
    let mut prog = steering_program(shards);
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: the kernel copies the program during the call; `fprog` points at `prog`, which
    // outlives it.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn drain(s: &Socket) -> usize {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 64];
        let mut n = 0;
        while s.recv(&mut buf).is_ok() {
            n += 1;
        }
        n
    }

    /// One client socket, four shards: the authenticator, not the 4-tuple, picks the shard.
    #[test]
    fn one_source_spreads_over_all_shards() {
        let shards = 4;
        let group = bind_group("127.0.0.1:0".parse().unwrap(), Role::Auth, shards).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let total = 8000u32;
        let mut per_shard = vec![0usize; shards];
        // Send in bursts small enough for the receive buffers, draining between bursts.
        for burst in 0..(total / 500) {
            for i in 0..500u32 {
                let mut pkt = [0u8; 20];
                pkt[0] = 1;
                pkt[3] = 20;
                // A pseudo-random authenticator, as a NAS would generate.
                let x = (burst * 500 + i).wrapping_mul(2_654_435_761);
                pkt[4..8].copy_from_slice(&x.to_be_bytes());
                client.send_to(&pkt, group.addr).unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            for (k, s) in group.sockets.iter().enumerate() {
                per_shard[k] += drain(s);
            }
        }
        let got: usize = per_shard.iter().sum();
        assert_eq!(
            got, total as usize,
            "every datagram arrives once: {per_shard:?}"
        );
        let fair = total as f64 / shards as f64;
        for (k, n) in per_shard.iter().enumerate() {
            let dev = (*n as f64 - fair).abs() / fair;
            assert!(dev <= 0.15, "shard {k} got {n} of {total} ({per_shard:?})");
        }
    }

    /// The same authenticator always reaches the same shard: retransmissions stay core-local.
    #[test]
    fn retransmission_reaches_the_same_shard() {
        let group = bind_group("127.0.0.1:0".parse().unwrap(), Role::Acct, 3).unwrap();
        let mut pkt = [0u8; 20];
        pkt[0] = 4;
        pkt[3] = 20;
        pkt[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        let expect = (0xdead_beefu32 % 3) as usize;
        for _ in 0..5 {
            // A new source port each time, as a NAS with several sockets would use.
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client.send_to(&pkt, group.addr).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        let counts: Vec<usize> = group.sockets.iter().map(drain).collect();
        assert_eq!(counts[expect], 5, "{counts:?}");
    }

    #[test]
    fn ipv6_group_binds() {
        let group = bind_group("[::1]:0".parse().unwrap(), Role::Auth, 2).unwrap();
        assert_ne!(group.addr.port(), 0);
        assert_eq!(group.sockets.len(), 2);
    }
}
