//! MS-CHAP v1 and v2 verified by Active Directory through Samba's winbindd, without a
//! process per login.
//!
//! FreeRADIUS forks `ntlm_auth` for every MS-CHAP login; each fork loads smb.conf and Samba's
//! libraries again (~25 ms of CPU). Here [`Winbind`] dlopens `libwbclient.so.0` once and
//! keeps `threads` worker threads, each with its **own** `wbcContext` (libwbclient's
//! connection state is not shareable between threads: one socket per context), which send
//! `wbcCtxAuthenticateUserEx` at `WBC_AUTH_USER_LEVEL_RESPONSE` — the `WINBINDD_PAM_AUTH_CRAP`
//! request `ntlm_auth --allow-mschapv2` sends — over winbindd's privileged pipe.
//!
//! [`Winbind::check`] is blocking: it queues the check for a worker and waits at most
//! `timeout`. The workers exist (instead of calling on the caller's thread with a
//! `thread_local!` context) because libwbclient has no timeout of its own worth the name: a
//! winbindd that accepts but does not answer keeps a call in `poll` for up to 300 s. A worker
//! stuck like that only takes itself out of the pool; the caller gets `Unavailable` at its
//! deadline.
//!
//! **Socket directory.** libwbclient (4.17 and current master, `nsswitch/wb_common.c`) always
//! connects to its compiled-in `WINBINDD_SOCKET_DIR`; the environment variable of that name was
//! renamed `SELFTEST_WINBINDD_SOCKET_DIR` and is honoured only when nss_wrapper is preloaded,
//! and a context has no setter. So the directory cannot be chosen per context or per process:
//! [`Winbind::open`] refuses an smb.conf whose `winbindd socket directory` is not the library's
//! default, instead of silently asking another winbindd. The privileged pipe's directory is
//! whatever winbindd itself reports (`WINBINDD_PRIV_PIPE_DIR`), so it follows the smb.conf.
//! The caller must be root or in the group that may open `winbindd_privileged`.
//!
//! Nothing secret is logged: [`NtKey`], [`MsChapCheck`] and the queued copy redact their
//! `Debug`, and the copies of challenge, response and key are wiped when dropped.

pub mod config;
pub mod ffi;
pub mod status;

use std::ffi::{CStr, CString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use tracing::warn;

use crate::proto::wipe;
use crate::vocab::RejectReason;

pub use config::{RawWinbind, WinbindConfig, DEFAULT_SOCKET_DIR};
pub use ffi::WbcErr;
pub use status::NtStatus;

/// winbindd copies names into 256-byte `fstring`s with `strncpy`: a longer name would be
/// truncated silently and checked as another account, so it is refused instead.
const MAX_NAME: usize = 255;

/// Checks queued per worker before `check` answers `Unavailable` at once.
const QUEUE_PER_THREAD: usize = 32;

/// One MS-CHAP response to verify.
pub struct MsChapCheck<'a> {
    /// The account without any `DOMAIN\` prefix.
    pub account: &'a str,
    /// NetBIOS domain.
    pub domain: &'a str,
    /// v2: the RFC 2759 ChallengeHash (8 octets of SHA-1 over both challenges and the name);
    /// v1: the MS-CHAP-Challenge.
    pub challenge: [u8; 8],
    pub nt_response: [u8; 24],
    pub v2: bool,
}

impl fmt::Debug for MsChapCheck<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsChapCheck")
            .field("account", &self.account)
            .field("domain", &self.domain)
            .field("challenge", &"<redacted>")
            .field("nt_response", &"<redacted>")
            .field("v2", &self.v2)
            .finish()
    }
}

/// The NT key (MD4 of the NT hash) winbindd returns for a good response: what the
/// MS-CHAP2-Success authenticator response and the MPPE keys are derived from.
#[derive(Clone, PartialEq, Eq)]
pub struct NtKey(pub [u8; 16]);

impl Drop for NtKey {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl fmt::Debug for NtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NtKey(<redacted>)")
    }
}

/// Why an answer is `Unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// winbindd answered with a status meaning the domain cannot answer now (in `status`).
    Domain,
    /// The library call failed without an NT status (winbindd not running, socket error,
    /// no privileged pipe access …).
    Wbc(WbcErr),
    /// No answer within `timeout`.
    Timeout,
    /// All workers busy and their queue full.
    Overloaded,
    /// A success without a user session key: MS-CHAP cannot complete without one.
    NoSessionKey,
    /// libwbclient could not allocate a context.
    NoContext,
}

/// What winbind said about one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WinbindAnswer {
    Accepted {
        nt_key: NtKey,
    },
    /// The domain refused. `status` is winbindd's, except for refusals made here before asking
    /// (an empty, over-long or NUL-containing name: `NO_SUCH_USER`; a guest logon:
    /// `LOGON_FAILURE`).
    Rejected {
        reason: RejectReason,
        status: NtStatus,
    },
    Unavailable {
        status: Option<NtStatus>,
        cause: Outage,
    },
}

impl WinbindAnswer {
    fn unavailable(cause: Outage) -> WinbindAnswer {
        WinbindAnswer::Unavailable {
            status: None,
            cause,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WinbindError {
    #[error("cannot load {library} (install Samba's libwbclient0): {source}")]
    Load {
        library: String,
        #[source]
        source: libloading::Error,
    },
    #[error(
        "{smb_conf}: winbindd socket directory is {configured}, but libwbclient only connects \
         to its compiled-in {compiled} (it has no per-context or environment setting); run \
         winbindd with the default directory"
    )]
    SocketDir {
        smb_conf: PathBuf,
        configured: PathBuf,
        compiled: &'static str,
    },
    #[error("winbindd: {call} failed: {}", ffi::wbc_err_name(*.err))]
    Wbc { call: &'static str, err: WbcErr },
    #[error("winbindd did not answer within {0:?}")]
    Timeout(Duration),
    #[error("all winbind workers are busy")]
    Overloaded,
    #[error("libwbclient could not allocate a context")]
    NoContext,
    #[error("cannot start a winbind worker thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// A check as queued for a worker: owned, NUL-terminated, wiped on drop.
struct Request {
    account: CString,
    domain: CString,
    challenge: [u8; 8],
    nt_response: [u8; 24],
    v2: bool,
}

impl Drop for Request {
    fn drop(&mut self) {
        wipe(&mut self.challenge);
        wipe(&mut self.nt_response);
    }
}

/// Where a worker sends a check's answer: a blocked thread, or an awaiting task.
enum Reply {
    Blocking(Sender<WinbindAnswer>),
    Async(futures_channel::oneshot::Sender<WinbindAnswer>),
}

impl Reply {
    fn send(self, answer: WinbindAnswer) {
        match self {
            Reply::Blocking(s) => drop(s.send(answer)),
            Reply::Async(s) => drop(s.send(answer)),
        }
    }
}

enum Job {
    Check {
        request: Request,
        deadline: Instant,
        reply: Reply,
    },
    Ping {
        deadline: Instant,
        reply: Sender<Result<String, WinbindError>>,
    },
}

/// MS-CHAP verification through winbindd: see the module docs.
pub struct Winbind {
    jobs: Sender<Job>,
    config: WinbindConfig,
}

impl fmt::Debug for Winbind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Winbind")
            .field("config", &self.config)
            .finish()
    }
}

/// `a` and `b` name the same directory (a `/var/run` → `/run` symlink, a trailing slash).
fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

impl Winbind {
    /// Loads libwbclient, resolves its functions and starts the workers. Does not need
    /// winbindd to be running (checks answer `Unavailable` until it is); see [`Winbind::ping`].
    pub fn open(config: WinbindConfig) -> Result<Winbind, WinbindError> {
        Winbind::open_library(config, ffi::LIBRARY)
    }

    /// [`Winbind::open`] with another library file (tests: a missing one).
    pub fn open_library(config: WinbindConfig, library: &str) -> Result<Winbind, WinbindError> {
        if !same_dir(&config.socket_dir, Path::new(DEFAULT_SOCKET_DIR)) {
            return Err(WinbindError::SocketDir {
                smb_conf: config.smb_conf.clone(),
                configured: config.socket_dir.clone(),
                compiled: DEFAULT_SOCKET_DIR,
            });
        }
        let lib = Arc::new(
            ffi::Lib::open(library).map_err(|source| WinbindError::Load {
                library: library.to_string(),
                source,
            })?,
        );
        let threads = config.threads.max(1);
        let (jobs, rx) = bounded(threads * QUEUE_PER_THREAD);
        for i in 0..threads {
            let lib = Arc::clone(&lib);
            let rx = rx.clone();
            // Detached: a worker stuck in libwbclient must not block dropping the Winbind.
            // Each owns an Arc of the library, so it stays loaded until the last one exits.
            std::thread::Builder::new()
                .name(format!("winbind-{i}"))
                .spawn(move || worker(&lib, &rx))
                .map_err(WinbindError::Spawn)?;
        }
        Ok(Winbind { jobs, config })
    }

    pub fn config(&self) -> &WinbindConfig {
        &self.config
    }

    /// Verifies one MS-CHAP response. Blocks the calling thread for at most `timeout`.
    pub fn check(&self, c: &MsChapCheck<'_>) -> WinbindAnswer {
        let deadline = Instant::now() + self.config.timeout;
        let (reply, answer) = bounded(1);
        if let Err(refused) = self.enqueue(c, deadline, Reply::Blocking(reply)) {
            return refused;
        }
        match answer.recv_deadline(deadline) {
            Ok(a) => a,
            Err(RecvTimeoutError::Timeout) => WinbindAnswer::unavailable(Outage::Timeout),
            Err(RecvTimeoutError::Disconnected) => WinbindAnswer::unavailable(Outage::NoContext),
        }
    }

    /// Queues one MS-CHAP response for a worker without blocking: the answer arrives on the
    /// receiver (an async caller awaits it, bounded by `timeout` itself: a dropped sender
    /// means the worker gave up or the pool stopped). `Err`: answered at once (refused name,
    /// workers overloaded).
    pub fn submit(
        &self,
        c: &MsChapCheck<'_>,
    ) -> Result<futures_channel::oneshot::Receiver<WinbindAnswer>, WinbindAnswer> {
        let (reply, answer) = futures_channel::oneshot::channel();
        let deadline = Instant::now() + self.config.timeout;
        self.enqueue(c, deadline, Reply::Async(reply))?;
        Ok(answer)
    }

    fn enqueue(
        &self,
        c: &MsChapCheck<'_>,
        deadline: Instant,
        reply: Reply,
    ) -> Result<(), WinbindAnswer> {
        let refused = WinbindAnswer::Rejected {
            reason: RejectReason::BadPassword,
            status: NtStatus::NO_SUCH_USER,
        };
        // An empty name would be an anonymous logon; see MAX_NAME for the length.
        let name_ok = |s: &str| !s.is_empty() && s.len() <= MAX_NAME;
        if !name_ok(c.account) || !name_ok(c.domain) {
            return Err(refused);
        }
        let (Ok(account), Ok(domain)) = (CString::new(c.account), CString::new(c.domain)) else {
            return Err(refused);
        };
        let job = Job::Check {
            request: Request {
                account,
                domain,
                challenge: c.challenge,
                nt_response: c.nt_response,
                v2: c.v2,
            },
            deadline,
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(WinbindAnswer::unavailable(Outage::Overloaded)),
            Err(TrySendError::Disconnected(_)) => {
                Err(WinbindAnswer::unavailable(Outage::NoContext))
            }
        }
    }

    /// The configured timeout of one check.
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    /// Asks winbindd (through a worker, bounded by `timeout`) whether it runs and answers.
    pub fn ping(&self) -> Result<(), WinbindError> {
        self.served_domain().map(drop)
    }

    /// The NetBIOS domain the reachable winbindd belongs to (`wbcCtxInterfaceDetails`): lets
    /// a caller confirm it reaches the winbindd of the smb.conf it configured.
    pub fn served_domain(&self) -> Result<String, WinbindError> {
        let deadline = Instant::now() + self.config.timeout;
        let (reply, answer) = bounded(1);
        self.jobs
            .try_send(Job::Ping { deadline, reply })
            .map_err(|_| WinbindError::Overloaded)?;
        match answer.recv_deadline(deadline) {
            Ok(r) => r,
            Err(_) => Err(WinbindError::Timeout(self.config.timeout)),
        }
    }
}

/// A wbcContext, freed when the worker exits.
struct Ctx<'l> {
    lib: &'l ffi::Lib,
    ptr: *mut ffi::WbcContext,
}

impl<'l> Ctx<'l> {
    fn new(lib: &'l ffi::Lib) -> Option<Ctx<'l>> {
        // SAFETY: wbcCtxCreate takes no arguments; NULL means out of memory.
        let ptr = unsafe { (lib.ctx_create)() };
        (!ptr.is_null()).then_some(Ctx { lib, ptr })
    }
}

impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from wbcCtxCreate and is freed once; it closes the sockets.
        unsafe { (self.lib.ctx_free)(self.ptr) };
    }
}

fn worker(lib: &ffi::Lib, jobs: &Receiver<Job>) {
    let mut ctx: Option<Ctx<'_>> = None;
    for job in jobs.iter() {
        if ctx.is_none() {
            ctx = Ctx::new(lib);
            if ctx.is_none() {
                warn!("winbind: wbcCtxCreate failed (out of memory)");
            }
        }
        match job {
            Job::Check {
                request,
                deadline,
                reply,
            } => {
                // The caller has given up: do not spend a DC round trip (or a bad-password
                // count) on it.
                if Instant::now() >= deadline {
                    continue;
                }
                let answer = match &ctx {
                    Some(ctx) => authenticate(ctx, &request),
                    None => WinbindAnswer::unavailable(Outage::NoContext),
                };
                reply.send(answer);
            }
            Job::Ping { deadline, reply } => {
                if Instant::now() >= deadline {
                    continue;
                }
                let r = match &ctx {
                    Some(ctx) => ping(ctx),
                    None => Err(WinbindError::NoContext),
                };
                let _ = reply.send(r);
            }
        }
    }
}

fn ping(ctx: &Ctx<'_>) -> Result<String, WinbindError> {
    // SAFETY: a live context.
    let rc = unsafe { (ctx.lib.ctx_ping)(ctx.ptr) };
    if rc != ffi::WBC_ERR_SUCCESS {
        return Err(WinbindError::Wbc {
            call: "wbcCtxPing",
            err: rc,
        });
    }
    let mut details: *mut ffi::WbcInterfaceDetails = ptr::null_mut();
    // SAFETY: a live context and an out-pointer the library fills with its own allocation.
    let rc = unsafe { (ctx.lib.ctx_interface_details)(ctx.ptr, &mut details) };
    if rc != ffi::WBC_ERR_SUCCESS || details.is_null() {
        return Err(WinbindError::Wbc {
            call: "wbcCtxInterfaceDetails",
            err: rc,
        });
    }
    // SAFETY: non-NULL, filled by the library; strings are NUL-terminated or NULL.
    let found = unsafe {
        let d = &*details;
        let s = if d.netbios_domain.is_null() {
            String::new()
        } else {
            CStr::from_ptr(d.netbios_domain)
                .to_string_lossy()
                .into_owned()
        };
        (ctx.lib.free_memory)(details.cast());
        s
    };
    Ok(found)
}

fn authenticate(ctx: &Ctx<'_>, r: &Request) -> WinbindAnswer {
    let mut nt = r.nt_response;
    let mut control = ffi::WBC_MSV1_0_ALLOW_WORKSTATION_TRUST_ACCOUNT
        | ffi::WBC_MSV1_0_ALLOW_SERVER_TRUST_ACCOUNT;
    if r.v2 {
        control |= ffi::WBC_MSV1_0_ALLOW_MSVCHAPV2;
    }
    let params = ffi::WbcAuthUserParams {
        account_name: r.account.as_ptr(),
        domain_name: r.domain.as_ptr(),
        // NULL: winbindd fills in its own NetBIOS name, as for ntlm_auth.
        workstation_name: ptr::null(),
        flags: 0,
        parameter_control: control,
        level: ffi::WBC_AUTH_USER_LEVEL_RESPONSE,
        password: ffi::WbcPassword {
            response: ffi::WbcPasswordResponse {
                challenge: r.challenge,
                nt_length: nt.len() as u32,
                nt_data: nt.as_mut_ptr(),
                lm_length: 0,
                lm_data: ptr::null_mut(),
            },
        },
    };
    let mut info: *mut ffi::WbcAuthUserInfo = ptr::null_mut();
    let mut error: *mut ffi::WbcAuthErrorInfo = ptr::null_mut();
    // SAFETY: a live context; `params` and the buffers it points to outlive the call; the
    // out-pointers receive library allocations that are freed below.
    let rc = unsafe { (ctx.lib.ctx_authenticate_user_ex)(ctx.ptr, &params, &mut info, &mut error) };
    wipe(&mut nt);
    // The params' copy of the challenge lives in a union: wipe it through a byte view.
    let mut params = params;
    // SAFETY: `response` is the member written above.
    unsafe { wipe(&mut params.password.response.challenge) };

    let mut status = None;
    if !error.is_null() {
        // SAFETY: non-NULL error info from the library, freed once.
        unsafe {
            status = Some(NtStatus((*error).nt_status));
            (ctx.lib.free_memory)(error.cast());
        }
    }
    let mut key = None;
    let mut guest = false;
    if !info.is_null() {
        // SAFETY: non-NULL user info from the library; its key is wiped in place before the
        // block is freed, so it does not linger in the heap.
        unsafe {
            let i = &mut *info;
            if rc == ffi::WBC_ERR_SUCCESS {
                key = Some(NtKey(i.user_session_key));
                guest = i.user_flags & WBC_AUTH_USER_INFO_GUEST != 0;
            }
            wipe(&mut i.user_session_key);
            wipe(&mut i.lm_session_key);
            (ctx.lib.free_memory)(info.cast());
        }
    }
    match (rc, status, key) {
        (ffi::WBC_ERR_SUCCESS, _, Some(_)) if guest => WinbindAnswer::Rejected {
            reason: RejectReason::BadPassword,
            status: NtStatus::LOGON_FAILURE,
        },
        (ffi::WBC_ERR_SUCCESS, _, Some(k)) if k.0 == [0; 16] => {
            WinbindAnswer::unavailable(Outage::NoSessionKey)
        }
        (ffi::WBC_ERR_SUCCESS, _, Some(nt_key)) => WinbindAnswer::Accepted { nt_key },
        (_, Some(s), _) if s != NtStatus::OK => match s.verdict() {
            Some(reason) => WinbindAnswer::Rejected { reason, status: s },
            None => WinbindAnswer::Unavailable {
                status: Some(s),
                cause: Outage::Domain,
            },
        },
        (ffi::WBC_ERR_SUCCESS, _, None) => WinbindAnswer::unavailable(Outage::NoSessionKey),
        (rc, _, _) => WinbindAnswer::unavailable(Outage::Wbc(rc)),
    }
}

/// `wbcAuthUserInfo.user_flags`: the DC logged the user on as Guest (never an accept here).
const WBC_AUTH_USER_INFO_GUEST: u32 = 0x0000_0001;

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> WinbindConfig {
        WinbindConfig {
            smb_conf: PathBuf::from("/nonexistent/smb.conf"),
            socket_dir: PathBuf::from(DEFAULT_SOCKET_DIR),
            domain: "EXAMPLE".into(),
            threads: 2,
            timeout: Duration::from_millis(300),
        }
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let secret = [0xAB; 24];
        let c = MsChapCheck {
            account: "alice",
            domain: "EXAMPLE",
            challenge: [0xCD; 8],
            nt_response: secret,
            v2: true,
        };
        let key = NtKey([0xEF; 16]);
        let answer = WinbindAnswer::Accepted {
            nt_key: key.clone(),
        };
        for text in [
            format!("{c:?}"),
            format!("{key:?}"),
            format!("{answer:?}"),
            format!("{c:#?}{answer:#?}"),
        ] {
            let lower = text.to_lowercase();
            for needle in ["ab", "cd", "ef", "171", "205", "239"] {
                assert!(
                    !lower.replace("redacted", "").contains(needle),
                    "{needle} in {text}"
                );
            }
            assert!(text.contains("redacted"), "{text}");
        }
        assert!(format!("{c:?}").contains("alice"));
    }

    #[test]
    fn refuses_a_socket_dir_libwbclient_cannot_reach() {
        let mut c = config();
        c.socket_dir = PathBuf::from("/tmp/elsewhere");
        let e = Winbind::open(c).unwrap_err();
        assert!(matches!(e, WinbindError::SocketDir { .. }), "{e}");
        assert!(e.to_string().contains("/tmp/elsewhere"), "{e}");
    }

    #[test]
    fn missing_library_is_an_error_not_a_crash() {
        let e = Winbind::open_library(config(), "libwbclient-does-not-exist.so.0").unwrap_err();
        assert!(matches!(e, WinbindError::Load { .. }), "{e}");
    }

    #[test]
    fn refuses_names_winbindd_would_truncate_or_read_as_anonymous() {
        // Needs no winbindd: these never reach the library. Skip where it is not installed.
        let Ok(w) = Winbind::open(config()) else {
            eprintln!("SKIPPED: libwbclient.so.0 not installed");
            return;
        };
        let long = "a".repeat(256);
        for (account, domain) in [("", "EXAMPLE"), ("a\0b", "EXAMPLE"), (&long[..], "EXAMPLE")] {
            let a = w.check(&MsChapCheck {
                account,
                domain,
                challenge: [0; 8],
                nt_response: [0; 24],
                v2: true,
            });
            assert_eq!(
                a,
                WinbindAnswer::Rejected {
                    reason: RejectReason::BadPassword,
                    status: NtStatus::NO_SUCH_USER
                }
            );
        }
    }
}
