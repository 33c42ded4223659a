//! Raw bindings to the part of Samba's libwbclient that MS-CHAP needs, loaded at run time.
//!
//! The facts come from `nsswitch/libwbclient/wbclient.h` (interface 0.15, Samba 4.17 and still
//! current) and `nsswitch/libwbclient/wbc_pam.c`. The library is opened with `dlopen` through
//! `libloading` rather than linked, so radshard builds and runs on machines without Samba and
//! needs `libwbclient.so.0` only when `[winbind]` is configured.
//!
//! Layouts are for the C ABI of the target (`#[repr(C)]` reproduces the C compiler's padding);
//! the tests below check every size and field offset against hand-derived x86_64 values and,
//! where the header is installed (`libwbclient-dev`), against what the C compiler reports.

use std::ffi::{c_char, c_int, c_void};

use libloading::Library;

/// The soname: the ABI major version 0 has been stable since Samba 3.2.
pub const LIBRARY: &str = "libwbclient.so.0";

/// `wbcErr` (`enum _wbcErrType`): a C enum, so an `int` on every ABI Samba supports.
pub type WbcErr = c_int;
pub const WBC_ERR_SUCCESS: WbcErr = 0;
pub const WBC_ERR_NOT_IMPLEMENTED: WbcErr = 1;
pub const WBC_ERR_UNKNOWN_FAILURE: WbcErr = 2;
pub const WBC_ERR_NO_MEMORY: WbcErr = 3;
pub const WBC_ERR_INVALID_SID: WbcErr = 4;
pub const WBC_ERR_INVALID_PARAM: WbcErr = 5;
pub const WBC_ERR_WINBIND_NOT_AVAILABLE: WbcErr = 6;
pub const WBC_ERR_DOMAIN_NOT_FOUND: WbcErr = 7;
pub const WBC_ERR_INVALID_RESPONSE: WbcErr = 8;
pub const WBC_ERR_NSS_ERROR: WbcErr = 9;
pub const WBC_ERR_AUTH_ERROR: WbcErr = 10;
pub const WBC_ERR_UNKNOWN_USER: WbcErr = 11;
pub const WBC_ERR_UNKNOWN_GROUP: WbcErr = 12;
pub const WBC_ERR_PWD_CHANGE_FAILED: WbcErr = 13;

/// The header's name for a `wbcErr`, for logs (no call into the library needed).
pub fn wbc_err_name(e: WbcErr) -> &'static str {
    match e {
        WBC_ERR_SUCCESS => "WBC_ERR_SUCCESS",
        WBC_ERR_NOT_IMPLEMENTED => "WBC_ERR_NOT_IMPLEMENTED",
        WBC_ERR_UNKNOWN_FAILURE => "WBC_ERR_UNKNOWN_FAILURE",
        WBC_ERR_NO_MEMORY => "WBC_ERR_NO_MEMORY",
        WBC_ERR_INVALID_SID => "WBC_ERR_INVALID_SID",
        WBC_ERR_INVALID_PARAM => "WBC_ERR_INVALID_PARAM",
        WBC_ERR_WINBIND_NOT_AVAILABLE => "WBC_ERR_WINBIND_NOT_AVAILABLE",
        WBC_ERR_DOMAIN_NOT_FOUND => "WBC_ERR_DOMAIN_NOT_FOUND",
        WBC_ERR_INVALID_RESPONSE => "WBC_ERR_INVALID_RESPONSE",
        WBC_ERR_NSS_ERROR => "WBC_ERR_NSS_ERROR",
        WBC_ERR_AUTH_ERROR => "WBC_ERR_AUTH_ERROR",
        WBC_ERR_UNKNOWN_USER => "WBC_ERR_UNKNOWN_USER",
        WBC_ERR_UNKNOWN_GROUP => "WBC_ERR_UNKNOWN_GROUP",
        WBC_ERR_PWD_CHANGE_FAILED => "WBC_ERR_PWD_CHANGE_FAILED",
        _ => "WBC_ERR_(unknown)",
    }
}

/// `enum wbcAuthUserLevel`: `WBC_AUTH_USER_LEVEL_RESPONSE` is a challenge and the client's
/// responses, sent to winbindd as `WINBINDD_PAM_AUTH_CRAP` over the privileged pipe.
pub const WBC_AUTH_USER_LEVEL_RESPONSE: c_int = 3;

// wbcAuthUserParams.parameter_control (MSV1_0 logon parameters, [MS-APDS] 3.1.5.2). ntlm_auth
// (source3/utils/ntlm_auth.c, contact_winbind_auth_crap) always ORs in the two trust-account
// bits, and ALLOW_MSVCHAPV2 with --allow-mschapv2; we send the same so that a DC that accepts
// FreeRADIUS' ntlm_auth accepts us.
pub const WBC_MSV1_0_ALLOW_SERVER_TRUST_ACCOUNT: u32 = 0x0000_0020;
pub const WBC_MSV1_0_ALLOW_WORKSTATION_TRUST_ACCOUNT: u32 = 0x0000_0800;
/// Without it a DC with `ntlm auth = mschapv2-and-ntlmv2-only` (the default's sibling that
/// MS-CHAPv2 needs) treats the response as plain NTLMv1 and refuses it.
pub const WBC_MSV1_0_ALLOW_MSVCHAPV2: u32 = 0x0001_0000;

/// `struct wbcBlob`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WbcBlob {
    pub data: *mut u8,
    pub length: usize,
}

/// `wbcAuthUserParams.password.hash`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WbcPasswordHash {
    pub nt_hash: [u8; 16],
    pub lm_hash: [u8; 16],
}

/// `wbcAuthUserParams.password.response`: note the padding after each `uint32_t` length
/// before the 8-aligned pointer that follows it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WbcPasswordResponse {
    pub challenge: [u8; 8],
    pub nt_length: u32,
    pub nt_data: *mut u8,
    pub lm_length: u32,
    pub lm_data: *mut u8,
}

/// The anonymous union `wbcAuthUserParams.password`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union WbcPassword {
    pub plaintext: *const c_char,
    pub hash: WbcPasswordHash,
    pub response: WbcPasswordResponse,
    pub pac: WbcBlob,
}

/// `struct wbcAuthUserParams`. `level` is a C enum: `int`-sized.
#[repr(C)]
pub struct WbcAuthUserParams {
    pub account_name: *const c_char,
    pub domain_name: *const c_char,
    pub workstation_name: *const c_char,
    pub flags: u32,
    pub parameter_control: u32,
    pub level: c_int,
    pub password: WbcPassword,
}

/// `struct wbcAuthUserInfo` (allocated by the library; freed with `wbcFreeMemory`). Only
/// `user_session_key` is read; the rest is laid out so that its offset is right.
#[repr(C)]
pub struct WbcAuthUserInfo {
    pub user_flags: u32,
    pub account_name: *mut c_char,
    pub user_principal: *mut c_char,
    pub full_name: *mut c_char,
    pub domain_name: *mut c_char,
    pub dns_domain_name: *mut c_char,
    pub acct_flags: u32,
    /// For an MS-CHAP logon: MD4(NT hash), the "NT key" that MS-CHAP2-Success and MPPE need.
    pub user_session_key: [u8; 16],
    pub lm_session_key: [u8; 8],
    pub logon_count: u16,
    pub bad_password_count: u16,
    pub logon_time: u64,
    pub logoff_time: u64,
    pub kickoff_time: u64,
    pub pass_last_set_time: u64,
    pub pass_can_change_time: u64,
    pub pass_must_change_time: u64,
    pub logon_server: *mut c_char,
    pub logon_script: *mut c_char,
    pub profile_path: *mut c_char,
    pub home_directory: *mut c_char,
    pub home_drive: *mut c_char,
    pub num_sids: u32,
    pub sids: *mut c_void,
}

/// `struct wbcAuthErrorInfo` (library-allocated). `authoritative` was added in interface 0.14
/// (Samba 4.7); it is the last field, so reading `nt_status` is safe on older libraries too.
#[repr(C)]
pub struct WbcAuthErrorInfo {
    pub nt_status: u32,
    pub nt_string: *mut c_char,
    pub pam_error: i32,
    pub display_string: *mut c_char,
    pub authoritative: u8,
}

/// `struct wbcInterfaceDetails` (library-allocated).
#[repr(C)]
pub struct WbcInterfaceDetails {
    pub interface_version: u32,
    pub winbind_version: *mut c_char,
    pub winbind_separator: c_char,
    pub netbios_name: *mut c_char,
    pub netbios_domain: *mut c_char,
    pub dns_domain: *mut c_char,
}

/// `struct wbcContext`: opaque.
#[repr(C)]
pub struct WbcContext {
    _private: [u8; 0],
}

pub type CtxCreateFn = unsafe extern "C" fn() -> *mut WbcContext;
pub type CtxFreeFn = unsafe extern "C" fn(*mut WbcContext);
pub type FreeMemoryFn = unsafe extern "C" fn(*mut c_void);
pub type CtxPingFn = unsafe extern "C" fn(*mut WbcContext) -> WbcErr;
pub type CtxInterfaceDetailsFn =
    unsafe extern "C" fn(*mut WbcContext, *mut *mut WbcInterfaceDetails) -> WbcErr;
pub type CtxAuthenticateUserExFn = unsafe extern "C" fn(
    *mut WbcContext,
    *const WbcAuthUserParams,
    *mut *mut WbcAuthUserInfo,
    *mut *mut WbcAuthErrorInfo,
) -> WbcErr;

/// The loaded library and the functions resolved from it. The function pointers are only
/// valid while `_lib` is loaded, which the struct guarantees by owning it.
pub struct Lib {
    pub ctx_create: CtxCreateFn,
    pub ctx_free: CtxFreeFn,
    pub free_memory: FreeMemoryFn,
    pub ctx_ping: CtxPingFn,
    pub ctx_interface_details: CtxInterfaceDetailsFn,
    pub ctx_authenticate_user_ex: CtxAuthenticateUserExFn,
    _lib: Library,
}

impl Lib {
    /// dlopens `name` and resolves the six functions; the `wbcCtx*` ones exist since
    /// interface 0.12 (Samba 4.4).
    pub fn open(name: &str) -> Result<Lib, libloading::Error> {
        // SAFETY: loading libwbclient runs no initialisers with preconditions; it is a plain
        // C library with no global constructors that depend on us.
        let lib = unsafe { Library::new(name)? };
        // SAFETY (each `get`): the type given is the C prototype from wbclient.h.
        unsafe {
            let ctx_create = *lib.get::<CtxCreateFn>(b"wbcCtxCreate\0")?;
            let ctx_free = *lib.get::<CtxFreeFn>(b"wbcCtxFree\0")?;
            let free_memory = *lib.get::<FreeMemoryFn>(b"wbcFreeMemory\0")?;
            let ctx_ping = *lib.get::<CtxPingFn>(b"wbcCtxPing\0")?;
            let ctx_interface_details =
                *lib.get::<CtxInterfaceDetailsFn>(b"wbcCtxInterfaceDetails\0")?;
            let ctx_authenticate_user_ex =
                *lib.get::<CtxAuthenticateUserExFn>(b"wbcCtxAuthenticateUserEx\0")?;
            Ok(Lib {
                ctx_create,
                ctx_free,
                free_memory,
                ctx_ping,
                ctx_interface_details,
                ctx_authenticate_user_ex,
                _lib: lib,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    /// Every size and offset the bindings depend on, as `(name, rust value)`, in the order
    /// the C probe below prints them.
    fn layout() -> Vec<(&'static str, usize)> {
        vec![
            ("params.size", size_of::<WbcAuthUserParams>()),
            ("params.align", align_of::<WbcAuthUserParams>()),
            (
                "params.account_name",
                offset_of!(WbcAuthUserParams, account_name),
            ),
            (
                "params.domain_name",
                offset_of!(WbcAuthUserParams, domain_name),
            ),
            (
                "params.workstation_name",
                offset_of!(WbcAuthUserParams, workstation_name),
            ),
            ("params.flags", offset_of!(WbcAuthUserParams, flags)),
            (
                "params.parameter_control",
                offset_of!(WbcAuthUserParams, parameter_control),
            ),
            ("params.level", offset_of!(WbcAuthUserParams, level)),
            ("params.password", offset_of!(WbcAuthUserParams, password)),
            ("password.size", size_of::<WbcPassword>()),
            (
                "response.challenge",
                offset_of!(WbcPasswordResponse, challenge),
            ),
            (
                "response.nt_length",
                offset_of!(WbcPasswordResponse, nt_length),
            ),
            ("response.nt_data", offset_of!(WbcPasswordResponse, nt_data)),
            (
                "response.lm_length",
                offset_of!(WbcPasswordResponse, lm_length),
            ),
            ("response.lm_data", offset_of!(WbcPasswordResponse, lm_data)),
            ("info.size", size_of::<WbcAuthUserInfo>()),
            ("info.acct_flags", offset_of!(WbcAuthUserInfo, acct_flags)),
            (
                "info.user_session_key",
                offset_of!(WbcAuthUserInfo, user_session_key),
            ),
            (
                "info.lm_session_key",
                offset_of!(WbcAuthUserInfo, lm_session_key),
            ),
            (
                "info.bad_password_count",
                offset_of!(WbcAuthUserInfo, bad_password_count),
            ),
            ("info.logon_time", offset_of!(WbcAuthUserInfo, logon_time)),
            (
                "info.pass_must_change_time",
                offset_of!(WbcAuthUserInfo, pass_must_change_time),
            ),
            (
                "info.logon_server",
                offset_of!(WbcAuthUserInfo, logon_server),
            ),
            ("info.num_sids", offset_of!(WbcAuthUserInfo, num_sids)),
            ("info.sids", offset_of!(WbcAuthUserInfo, sids)),
            ("error.size", size_of::<WbcAuthErrorInfo>()),
            ("error.nt_status", offset_of!(WbcAuthErrorInfo, nt_status)),
            ("error.nt_string", offset_of!(WbcAuthErrorInfo, nt_string)),
            ("error.pam_error", offset_of!(WbcAuthErrorInfo, pam_error)),
            (
                "error.display_string",
                offset_of!(WbcAuthErrorInfo, display_string),
            ),
            (
                "error.authoritative",
                offset_of!(WbcAuthErrorInfo, authoritative),
            ),
            ("details.size", size_of::<WbcInterfaceDetails>()),
            (
                "details.winbind_separator",
                offset_of!(WbcInterfaceDetails, winbind_separator),
            ),
            (
                "details.netbios_domain",
                offset_of!(WbcInterfaceDetails, netbios_domain),
            ),
            ("wbcErr.size", size_of::<WbcErr>()),
        ]
    }

    /// Derived by hand for x86_64 SysV (pointers and `size_t` 8 bytes and 8-aligned, `uint64_t`
    /// 8-aligned, C enums `int`): e.g. `level` ends at 36, so the union (8-aligned because of
    /// its pointers) starts at 40; `response` is challenge[8] @0, nt_length @8, 4 bytes of
    /// padding, nt_data @16, lm_length @24, padding, lm_data @32: 40 bytes, the largest member.
    /// In wbcAuthUserInfo `acct_flags` @48 is followed by the two keys (52, 68), two u16s
    /// (76, 78), and the six u64 times start 8-aligned at 80 without padding.
    #[cfg(target_arch = "x86_64")]
    const X86_64: &[(&str, usize)] = &[
        ("params.size", 80),
        ("params.align", 8),
        ("params.account_name", 0),
        ("params.domain_name", 8),
        ("params.workstation_name", 16),
        ("params.flags", 24),
        ("params.parameter_control", 28),
        ("params.level", 32),
        ("params.password", 40),
        ("password.size", 40),
        ("response.challenge", 0),
        ("response.nt_length", 8),
        ("response.nt_data", 16),
        ("response.lm_length", 24),
        ("response.lm_data", 32),
        ("info.size", 184),
        ("info.acct_flags", 48),
        ("info.user_session_key", 52),
        ("info.lm_session_key", 68),
        ("info.bad_password_count", 78),
        ("info.logon_time", 80),
        ("info.pass_must_change_time", 120),
        ("info.logon_server", 128),
        ("info.num_sids", 168),
        ("info.sids", 176),
        ("error.size", 40),
        ("error.nt_status", 0),
        ("error.nt_string", 8),
        ("error.pam_error", 16),
        ("error.display_string", 24),
        ("error.authoritative", 32),
        ("details.size", 48),
        ("details.winbind_separator", 16),
        ("details.netbios_domain", 32),
        ("wbcErr.size", 4),
    ];

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn layout_matches_hand_derived_x86_64() {
        let rust = layout();
        assert_eq!(rust.len(), X86_64.len());
        for ((name, got), (want_name, want)) in rust.iter().zip(X86_64) {
            assert_eq!(name, want_name);
            assert_eq!(got, want, "{name}");
        }
    }

    /// The C side of [`layout`]: the same names in the same order, computed by the C compiler
    /// (wbclient.h uses `bool` without including stdbool.h itself)
    /// from the installed header.
    const PROBE: &str = r#"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <wbclient.h>
#define P(name, v) printf("%s %zu\n", name, (size_t)(v))
int main(void) {
    P("params.size", sizeof(struct wbcAuthUserParams));
    P("params.align", _Alignof(struct wbcAuthUserParams));
    P("params.account_name", offsetof(struct wbcAuthUserParams, account_name));
    P("params.domain_name", offsetof(struct wbcAuthUserParams, domain_name));
    P("params.workstation_name", offsetof(struct wbcAuthUserParams, workstation_name));
    P("params.flags", offsetof(struct wbcAuthUserParams, flags));
    P("params.parameter_control", offsetof(struct wbcAuthUserParams, parameter_control));
    P("params.level", offsetof(struct wbcAuthUserParams, level));
    P("params.password", offsetof(struct wbcAuthUserParams, password));
    P("password.size", sizeof(((struct wbcAuthUserParams *)0)->password));
    P("response.challenge", offsetof(struct wbcAuthUserParams, password.response.challenge) - offsetof(struct wbcAuthUserParams, password));
    P("response.nt_length", offsetof(struct wbcAuthUserParams, password.response.nt_length) - offsetof(struct wbcAuthUserParams, password));
    P("response.nt_data", offsetof(struct wbcAuthUserParams, password.response.nt_data) - offsetof(struct wbcAuthUserParams, password));
    P("response.lm_length", offsetof(struct wbcAuthUserParams, password.response.lm_length) - offsetof(struct wbcAuthUserParams, password));
    P("response.lm_data", offsetof(struct wbcAuthUserParams, password.response.lm_data) - offsetof(struct wbcAuthUserParams, password));
    P("info.size", sizeof(struct wbcAuthUserInfo));
    P("info.acct_flags", offsetof(struct wbcAuthUserInfo, acct_flags));
    P("info.user_session_key", offsetof(struct wbcAuthUserInfo, user_session_key));
    P("info.lm_session_key", offsetof(struct wbcAuthUserInfo, lm_session_key));
    P("info.bad_password_count", offsetof(struct wbcAuthUserInfo, bad_password_count));
    P("info.logon_time", offsetof(struct wbcAuthUserInfo, logon_time));
    P("info.pass_must_change_time", offsetof(struct wbcAuthUserInfo, pass_must_change_time));
    P("info.logon_server", offsetof(struct wbcAuthUserInfo, logon_server));
    P("info.num_sids", offsetof(struct wbcAuthUserInfo, num_sids));
    P("info.sids", offsetof(struct wbcAuthUserInfo, sids));
    P("error.size", sizeof(struct wbcAuthErrorInfo));
    P("error.nt_status", offsetof(struct wbcAuthErrorInfo, nt_status));
    P("error.nt_string", offsetof(struct wbcAuthErrorInfo, nt_string));
    P("error.pam_error", offsetof(struct wbcAuthErrorInfo, pam_error));
    P("error.display_string", offsetof(struct wbcAuthErrorInfo, display_string));
    P("error.authoritative", offsetof(struct wbcAuthErrorInfo, authoritative));
    P("details.size", sizeof(struct wbcInterfaceDetails));
    P("details.winbind_separator", offsetof(struct wbcInterfaceDetails, winbind_separator));
    P("details.netbios_domain", offsetof(struct wbcInterfaceDetails, netbios_domain));
    P("wbcErr.size", sizeof(wbcErr));
    P("level.response", WBC_AUTH_USER_LEVEL_RESPONSE);
    P("msv1_0.allow_mschapv2", WBC_MSV1_0_ALLOW_MSVCHAPV2);
    P("msv1_0.allow_wks", WBC_MSV1_0_ALLOW_WORKSTATION_TRUST_ACCOUNT);
    P("msv1_0.allow_srv", WBC_MSV1_0_ALLOW_SERVER_TRUST_ACCOUNT);
    P("err.not_available", WBC_ERR_WINBIND_NOT_AVAILABLE);
    P("err.auth_error", WBC_ERR_AUTH_ERROR);
    return 0;
}
"#;

    /// Compiles [`PROBE`] against the system's wbclient.h and compares. Skipped (with a
    /// message) where the header or a C compiler is missing: `apt-get install libwbclient-dev`.
    #[test]
    fn layout_matches_system_header() {
        let include = std::path::Path::new("/usr/include/samba-4.0");
        if !include.join("wbclient.h").exists() {
            eprintln!(
                "SKIPPED: no /usr/include/samba-4.0/wbclient.h (apt-get install libwbclient-dev)"
            );
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("probe.c");
        let exe = dir.path().join("probe");
        std::fs::write(&src, PROBE).expect("write probe");
        let cc = std::process::Command::new("cc")
            .arg("-I")
            .arg(include)
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .output();
        let cc = match cc {
            Ok(out) if out.status.success() => out,
            Ok(out) => panic!("cc failed: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => {
                eprintln!("SKIPPED: no C compiler ({e})");
                return;
            }
        };
        drop(cc);
        let out = std::process::Command::new(&exe)
            .output()
            .expect("run probe");
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let c: Vec<(String, usize)> = text
            .lines()
            .filter_map(|l| {
                let (n, v) = l.split_once(' ')?;
                Some((n.to_string(), v.parse().ok()?))
            })
            .collect();
        let mut rust: Vec<(&str, usize)> = layout();
        rust.push(("level.response", WBC_AUTH_USER_LEVEL_RESPONSE as usize));
        rust.push(("msv1_0.allow_mschapv2", WBC_MSV1_0_ALLOW_MSVCHAPV2 as usize));
        rust.push((
            "msv1_0.allow_wks",
            WBC_MSV1_0_ALLOW_WORKSTATION_TRUST_ACCOUNT as usize,
        ));
        rust.push((
            "msv1_0.allow_srv",
            WBC_MSV1_0_ALLOW_SERVER_TRUST_ACCOUNT as usize,
        ));
        rust.push(("err.not_available", WBC_ERR_WINBIND_NOT_AVAILABLE as usize));
        rust.push(("err.auth_error", WBC_ERR_AUTH_ERROR as usize));
        assert_eq!(c.len(), rust.len(), "probe printed {text}");
        for ((cn, cv), (rn, rv)) in c.iter().zip(&rust) {
            assert_eq!(cn, rn);
            assert_eq!(cv, rv, "{cn}: C says {cv}, Rust {rv}");
        }
    }
}
