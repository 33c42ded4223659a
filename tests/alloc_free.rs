//! Asserts that the hot paths allocate nothing: a counting global allocator
//! counts allocations made by this thread while a thread-local flag is set.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use radshard::proto::{attr, verify_request, Code, Packet, PacketBuilder, Secret};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Only the measured section on the measuring thread counts, so the
    // test harness's own threads and output cannot cause false failures.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    // `try_with`: the TLS slot may be gone during thread teardown.
    if MEASURING.try_with(|m| m.get()).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` once to warm up, then again while counting allocations.
fn allocations_in(mut f: impl FnMut()) -> usize {
    f();
    ALLOCATIONS.store(0, Ordering::SeqCst);
    MEASURING.with(|m| m.set(true));
    f();
    MEASURING.with(|m| m.set(false));
    ALLOCATIONS.load(Ordering::SeqCst)
}

fn request_bytes(secret: &Secret) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut b =
        PacketBuilder::request(&mut buf, Code::AccessRequest, 1, &[0x42; 16]).expect("fits");
    b.message_authenticator().expect("fits");
    b.attr(attr::USER_NAME, b"alice").expect("fits");
    b.user_password(secret, b"correct horse battery staple")
        .expect("fits");
    b.attr(attr::NAS_IP_ADDRESS, &[10, 0, 0, 1]).expect("fits");
    b.attr(attr::PROXY_STATE, b"proxy-1").expect("fits");
    b.finish(secret).expect("signs").to_vec()
}

#[test]
fn parse_verify_unhide_and_build_sign_allocate_nothing() {
    let secret = Secret::new("alloc-free-secret").expect("non-empty");
    let req = request_bytes(&secret);

    // (a) parse + verify_request (MA) + unhide User-Password.
    let n = allocations_in(|| {
        let p = Packet::parse(&req).expect("valid");
        let v = verify_request(p, &secret, true).expect("verifies");
        let mut out = [0u8; 128];
        let pw = v.user_password(&mut out).expect("unhides");
        assert_eq!(pw, b"correct horse battery staple");
    });
    assert_eq!(n, 0, "decode+verify path allocated {n} times");

    // (b) build + finish an Access-Accept with five attributes, including the
    // automatic Message-Authenticator and the Proxy-State copy.
    let p = Packet::parse(&req).expect("valid");
    let v = verify_request(p, &secret, true).expect("verifies");
    let n = allocations_in(|| {
        let mut buf = [0u8; 512];
        let mut b = PacketBuilder::reply(&mut buf, Code::AccessAccept, &v).expect("fits");
        b.attr(attr::SERVICE_TYPE, &[0, 0, 0, 2]).expect("fits");
        b.attr(attr::SESSION_TIMEOUT, &[0, 0, 0x0e, 0x10])
            .expect("fits");
        b.attr(attr::REPLY_MESSAGE, b"welcome").expect("fits");
        let out = b.finish(&secret).expect("signs");
        assert_eq!(out[0], Code::AccessAccept as u8);
    });
    assert_eq!(n, 0, "build+sign path allocated {n} times");

    // Sanity: the counter does see allocations when they happen.
    let n = allocations_in(|| {
        std::hint::black_box(vec![1u8; 16]);
    });
    assert!(n >= 1, "allocation counter is not counting");
}
