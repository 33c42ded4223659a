//! How many MS-CHAPv2 logins per second winbindd verifies, three ways, and what each costs in
//! CPU (perf/winbind_ceiling.sh runs it against the recipe's DC):
//!
//! * `winbind`: [`Winbind::check`] from T threads (libwbclient in process, one context each);
//! * `helper`: T persistent `ntlm_auth --helper-protocol=ntlm-server-1 --allow-mschapv2`;
//! * `exec`: one `ntlm_auth --request-nt-key --allow-mschapv2` process per login, T in flight
//!   (what FreeRADIUS' mschap module does).
//!
//! Every answer is checked: an accept with the NT key MD4(MD4(UTF-16LE password)).
//!
//! ```sh
//! cargo run --release --example winbind_ceiling -- --smb-conf /tmp/dc/etc/smb.conf \
//!     --user alice --password alice-Pw1 --modes winbind,helper,exec --threads 1,2,4,8,16 --secs 5
//! ```
//!
//! CPU is user+system time: of this process (getrusage), of the helper or exec children
//! (/proc/PID/stat, RUSAGE_CHILDREN), and of every `samba`/`winbindd`/`smbd` process on the
//! machine (/proc/PID/stat before and after), divided by the logins done.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use radshard::backend::winbind::{MsChapCheck, Winbind, WinbindAnswer, WinbindConfig};
use radshard::proto::crypto::mschap;
use rand::RngCore;

struct Args {
    smb_conf: PathBuf,
    user: String,
    password: String,
    domain: Option<String>,
    modes: Vec<String>,
    threads: Vec<usize>,
    secs: f64,
    max: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: winbind_ceiling --smb-conf PATH [--user alice] [--password alice-Pw1] \
         [--domain EXAMPLE] [--modes winbind,helper,exec] [--threads 1,2,4,8,16] [--secs 5] \
         [--max 20000]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        smb_conf: PathBuf::new(),
        user: "alice".into(),
        password: "alice-Pw1".into(),
        domain: None,
        modes: vec!["winbind".into(), "helper".into(), "exec".into()],
        threads: vec![1, 2, 4, 8, 16],
        secs: 5.0,
        max: 20_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--smb-conf" => a.smb_conf = value().into(),
            "--user" => a.user = value(),
            "--password" => a.password = value(),
            "--domain" => a.domain = Some(value()),
            "--modes" => a.modes = value().split(',').map(str::to_string).collect(),
            "--threads" => {
                a.threads = value()
                    .split(',')
                    .map(|t| t.parse().unwrap_or_else(|_| usage()))
                    .collect()
            }
            "--secs" => a.secs = value().parse().unwrap_or_else(|_| usage()),
            "--max" => a.max = value().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if a.smb_conf.as_os_str().is_empty() {
        usage()
    }
    a
}

/// One precomputed MS-CHAPv2 login: the ChallengeHash winbind wants and the NT-Response.
#[derive(Clone, Copy)]
struct Login {
    challenge: [u8; 8],
    nt_response: [u8; 24],
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// User+system seconds from /proc/PID/stat fields 14 and 15 (clock ticks).
fn proc_cpu(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // comm may contain spaces: the fields start after the last ')'.
    let Some(rest) = stat.rsplit(')').next() else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // After ')': state is index 0, so utime (field 14) is index 11 and stime index 12.
    (ticks(11) + ticks(12)) / hz
}

/// CPU seconds of every Samba daemon process now (samba's tasks, winbindd, smbd).
fn samba_cpu() -> f64 {
    let mut total = 0.0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if matches!(comm.trim(), "samba" | "winbindd" | "smbd") {
            total += proc_cpu(pid);
        }
    }
    total
}

fn rusage(who: libc::c_int) -> f64 {
    // SAFETY: getrusage fills the zeroed struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

struct Run {
    done: usize,
    failed: usize,
    secs: f64,
    cpu_self: f64,
    cpu_helpers: f64,
    cpu_samba: f64,
}

/// Runs `work(thread, index)` from `threads` threads until `secs` or `max` logins.
fn drive<F>(threads: usize, secs: f64, max: usize, work: F) -> (usize, usize, f64)
where
    F: Fn(usize, usize) -> bool + Sync,
{
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (next, failed, stop, work) = (&next, &failed, &stop, &work);
            s.spawn(move || loop {
                if stop.load(Ordering::Relaxed) || Instant::now() >= end {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= max {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
                if !work(t, i) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let done = next.load(Ordering::Relaxed).min(max);
    (
        done,
        failed.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
    )
}

struct Helper {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn main() {
    let args = parse_args();
    let config = WinbindConfig::from_smb_conf(&args.smb_conf).unwrap_or_else(|e| {
        eprintln!("{}: {e}", args.smb_conf.display());
        std::process::exit(1)
    });
    let domain = args.domain.clone().unwrap_or_else(|| config.domain.clone());
    let Some(hash) = mschap::nt_password_hash(args.password.as_bytes()) else {
        eprintln!("password is not valid UTF-8 or too long");
        std::process::exit(2)
    };
    let want_key = mschap::nt_password_hash_hash(&hash);
    let mut rng = rand::thread_rng();
    let pool: Vec<Login> = (0..args.max.min(4096))
        .map(|_| {
            let mut auth = [0u8; 16];
            let mut peer = [0u8; 16];
            rng.fill_bytes(&mut auth);
            rng.fill_bytes(&mut peer);
            let challenge = mschap::challenge_hash(&peer, &auth, args.user.as_bytes());
            let nt_response =
                mschap::generate_nt_response(&auth, &peer, args.user.as_bytes(), &hash);
            Login {
                challenge,
                nt_response,
            }
        })
        .collect();
    let login = |i: usize| pool[i % pool.len()];

    println!(
        "# winbind_ceiling: user {} domain {domain}, {} s or {} logins per run; uptime: {}",
        args.user,
        args.secs,
        args.max,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!(
        "{:<8} {:>3} {:>7} {:>6} {:>9} {:>12} {:>12} {:>12} {:>6}",
        "mode", "T", "logins", "secs", "logins/s", "self_ms/l", "helper_ms/l", "samba_ms/l", "fail"
    );
    for mode in &args.modes {
        for &t in &args.threads {
            let run = match mode.as_str() {
                "winbind" => run_winbind(&config, &args, &domain, t, &login, &want_key),
                "helper" => run_helper(&args, &domain, t, &login, &want_key),
                "exec" => run_exec(&args, &domain, t, &login, &want_key),
                other => {
                    eprintln!("unknown mode {other}");
                    std::process::exit(2)
                }
            };
            let per = |cpu: f64| cpu * 1000.0 / run.done.max(1) as f64;
            println!(
                "{:<8} {:>3} {:>7} {:>6.2} {:>9.1} {:>12.3} {:>12.3} {:>12.3} {:>6}",
                mode,
                t,
                run.done,
                run.secs,
                run.done as f64 / run.secs,
                per(run.cpu_self),
                per(run.cpu_helpers),
                per(run.cpu_samba),
                run.failed
            );
        }
    }
}

fn run_winbind(
    config: &WinbindConfig,
    args: &Args,
    domain: &str,
    t: usize,
    login: &(dyn Fn(usize) -> Login + Sync),
    want_key: &[u8; 16],
) -> Run {
    let mut config = config.clone();
    config.threads = t;
    config.timeout = Duration::from_secs(10);
    let w = Winbind::open(config).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    // Warm every worker's connection (the first call per context opens the privileged pipe).
    let _ = drive(t, 1.0, t, |_, i| {
        check(&w, args, domain, login(i), want_key)
    });
    let (s0, b0) = (rusage(libc::RUSAGE_SELF), samba_cpu());
    let (done, failed, secs) = drive(t, args.secs, args.max, |_, i| {
        check(&w, args, domain, login(i), want_key)
    });
    Run {
        done,
        failed,
        secs,
        cpu_self: rusage(libc::RUSAGE_SELF) - s0,
        cpu_helpers: 0.0,
        cpu_samba: samba_cpu() - b0,
    }
}

fn check(w: &Winbind, args: &Args, domain: &str, l: Login, want_key: &[u8; 16]) -> bool {
    match w.check(&MsChapCheck {
        account: &args.user,
        domain,
        challenge: l.challenge,
        nt_response: l.nt_response,
        v2: true,
    }) {
        WinbindAnswer::Accepted { nt_key } => &nt_key.0 == want_key,
        _ => false,
    }
}

fn run_helper(
    args: &Args,
    domain: &str,
    t: usize,
    login: &(dyn Fn(usize) -> Login + Sync),
    want_key: &[u8; 16],
) -> Run {
    let helpers: Vec<std::sync::Mutex<Helper>> = (0..t)
        .map(|_| {
            let mut child = Command::new("ntlm_auth")
                .arg("--helper-protocol=ntlm-server-1")
                .arg("--allow-mschapv2")
                .arg(format!("--configfile={}", args.smb_conf.display()))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    eprintln!("ntlm_auth: {e}");
                    std::process::exit(1)
                });
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                eprintln!("ntlm_auth: no pipes");
                std::process::exit(1)
            };
            std::sync::Mutex::new(Helper {
                child,
                stdin,
                stdout: BufReader::new(stdout),
            })
        })
        .collect();
    let want = hex(want_key).to_uppercase();
    let ask = |h: &mut Helper, l: Login| -> bool {
        let req = format!(
            "LANMAN-Challenge: {}\nNT-Response: {}\nUsername: {}\nNT-Domain: {domain}\n\
             Request-User-Session-Key: Yes\n.\n",
            hex(&l.challenge),
            hex(&l.nt_response),
            args.user
        );
        if h.stdin.write_all(req.as_bytes()).is_err() || h.stdin.flush().is_err() {
            return false;
        }
        let (mut yes, mut key_ok) = (false, false);
        let mut line = String::new();
        loop {
            line.clear();
            match h.stdout.read_line(&mut line) {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
            let l = line.trim_end();
            if l == "." {
                break;
            }
            if l == "Authenticated: Yes" {
                yes = true;
            }
            if let Some(k) = l.strip_prefix("User-Session-Key: ") {
                key_ok = k.to_uppercase() == want;
            }
        }
        yes && key_ok
    };
    let pid_cpu = |hs: &[std::sync::Mutex<Helper>]| -> f64 {
        hs.iter()
            .map(|h| h.lock().map(|h| proc_cpu(h.child.id())).unwrap_or(0.0))
            .sum()
    };
    // Warm: each helper's first request loads its configuration and opens the pipe.
    for (i, h) in helpers.iter().enumerate() {
        if let Ok(mut h) = h.lock() {
            ask(&mut h, login(i));
        }
    }
    let (s0, h0, b0) = (rusage(libc::RUSAGE_SELF), pid_cpu(&helpers), samba_cpu());
    let (done, failed, secs) = drive(t, args.secs, args.max, |thread, i| {
        helpers[thread]
            .lock()
            .is_ok_and(|mut h| ask(&mut h, login(i)))
    });
    let run = Run {
        done,
        failed,
        secs,
        cpu_self: rusage(libc::RUSAGE_SELF) - s0,
        cpu_helpers: pid_cpu(&helpers) - h0,
        cpu_samba: samba_cpu() - b0,
    };
    for h in helpers {
        if let Ok(mut h) = h.into_inner() {
            drop(h.stdin);
            let _ = h.child.wait();
        }
    }
    run
}

fn run_exec(
    args: &Args,
    domain: &str,
    t: usize,
    login: &(dyn Fn(usize) -> Login + Sync),
    want_key: &[u8; 16],
) -> Run {
    let want = format!("NT_KEY: {}", hex(want_key).to_uppercase());
    let (s0, c0, b0) = (
        rusage(libc::RUSAGE_SELF),
        rusage(libc::RUSAGE_CHILDREN),
        samba_cpu(),
    );
    // Exec is slow (~25 ms of CPU each): a tenth of the count bound keeps a run short.
    let (done, failed, secs) = drive(t, args.secs, args.max.div_ceil(10), |_, i| {
        let l = login(i);
        Command::new("ntlm_auth")
            .arg(format!("--configfile={}", args.smb_conf.display()))
            .args(["--request-nt-key", "--allow-mschapv2"])
            .arg(format!("--username={}", args.user))
            .arg(format!("--domain={domain}"))
            .arg(format!("--challenge={}", hex(&l.challenge)))
            .arg(format!("--nt-response={}", hex(&l.nt_response)))
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == want)
    });
    Run {
        done,
        failed,
        secs,
        cpu_self: rusage(libc::RUSAGE_SELF) - s0,
        cpu_helpers: rusage(libc::RUSAGE_CHILDREN) - c0,
        cpu_samba: samba_cpu() - b0,
    }
}
