use std::process::ExitCode;

use clap::Parser;
use mimalloc::MiMalloc;

use std::sync::Arc;

use radshard::admin::{AdminHandle, AdminMetrics, AdminState};
use radshard::cli::{CertsArgs, Cli, Command, ServeArgs};
use radshard::config::{Config, LogFormat};
use radshard::dataplane::{self, runtime::Runtime};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig(args) => check_config(args.config.as_deref()),
        Command::Serve(args) => serve(&args),
        Command::Bench(args) => radshard::bench::main(&args),
        Command::Certs(args) => certs(&args),
        Command::Sessions(args) => radshard::admin::client::sessions(&args),
        Command::Disconnect(args) => radshard::admin::client::disconnect(&args),
        Command::Coa(args) => radshard::admin::client::coa(&args),
    }
}

fn certs(args: &CertsArgs) -> ExitCode {
    match radshard::tls::pki::write_test_pki(&args.out, args.key, args.force) {
        Ok(files) => {
            for f in &files {
                println!("wrote {}", f.display());
            }
            println!(
                "This {} PKI is for tests only: the CA's private key ({}) is on disk, unprotected, so anyone who reads it can issue certificates this CA vouches for. Never trust this CA outside a test.",
                args.key,
                args.out.join("ca.key").display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: Option<&std::path::Path>) -> ExitCode {
    // Everything `serve` would check: the file, the dictionaries, every reply attribute, every
    // password hash, the EAP TLS files (loaded while the config is read).
    let result = Config::load(path).and_then(|c| Runtime::build(&c).map(|_| c));
    match result {
        Ok(config) => {
            for w in &config.warnings {
                eprintln!("warning: {w}");
            }
            let directory = config.ldap.as_ref().map_or(String::new(), |l| {
                format!(", ldap: {} server(s)", l.servers.len())
            });
            let sql = config.sql.as_ref().map_or(String::new(), |s| {
                format!(", sql: {}:{}/{}", s.server, s.port, s.database)
            });
            let eap = config.eap.as_ref().map_or(String::new(), |e| {
                let methods: Vec<&str> = e.methods.iter().map(|m| m.label()).collect();
                format!(", eap: {}", methods.join(", "))
            });
            let admin = config.admin.as_ref().map_or(String::new(), |a| {
                let scheme = if a.tls.is_some() { "https" } else { "http" };
                format!(", admin API: {scheme}://{}", a.listen)
            });
            println!(
                "{}: OK ({} clients, {} users, {} policies{directory}{sql}{eap}{admin})",
                config.path.display(),
                config.clients.len(),
                config.users.len(),
                config.policies.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: under systemd or in a file they are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    let mut config = match Config::load(args.config.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    config.apply(&args.overrides());
    init_logging(&config);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }

    // Block the signals we handle before any shard thread exists, so that every thread
    // inherits the mask and they are delivered only to sigwait below.
    let signals = signals::block(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP]);

    let server = match dataplane::start(&config) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The HTTP listeners run on the control runtime, apart from the shards.
    let state = AdminState {
        sessions: server.sessions.clone(),
        dispatcher: Some(server.dispatcher.clone()),
        runtime: server.cell.clone(),
        shards: server.metrics.clone(),
        metrics: Arc::new(AdminMetrics::default()),
    };
    if let Some(addr) = config.metrics.listen {
        match radshard::admin::serve_metrics(server.control.handle(), addr, state.clone()) {
            Ok(bound) => tracing::info!(%bound, "metrics at http://{bound}/metrics"),
            Err(e) => {
                eprintln!("error: cannot serve metrics: {e}");
                tracing::error!("cannot serve metrics: {e}");
                server.stop();
                return ExitCode::FAILURE;
            }
        }
    }
    let admin = match &config.admin {
        None => None,
        Some(a) => match radshard::admin::serve_admin(server.control.handle(), a, state) {
            Ok(h) => {
                let scheme = if a.tls.is_some() { "https" } else { "http" };
                tracing::info!(bound = %h.addr, tokens = a.tokens.len(), "admin API at {scheme}://{}/api/v1/", h.addr);
                Some(h)
            }
            Err(e) => {
                eprintln!("error: {e}");
                tracing::error!("{e}");
                server.stop();
                return ExitCode::FAILURE;
            }
        },
    };
    tracing::info!(
        shards = server.shards,
        auth = ?server.auth_addrs,
        acct = ?server.acct_addrs,
        config = %config.path.display(),
        "radshard listening"
    );
    loop {
        match signals::wait(&signals) {
            libc::SIGHUP => reload(&server, admin.as_ref(), &config, args),
            sig => {
                tracing::info!(
                    signal = sig,
                    "stopping: finishing in-flight work and flushing accounting"
                );
                server.stop();
                tracing::info!("stopped");
                return ExitCode::SUCCESS;
            }
        }
    }
}

/// SIGHUP: re-read the configuration; keep the running one if the new one is invalid.
fn reload(
    server: &dataplane::ServerHandle,
    admin: Option<&AdminHandle>,
    started: &Config,
    args: &ServeArgs,
) {
    let result = Config::load(args.config.config.as_deref()).and_then(|mut c| {
        c.apply(&args.overrides());
        server.reload(&c).map(|ignored| (c, ignored))
    });
    match result {
        Ok((c, ignored)) => {
            for w in &c.warnings {
                tracing::warn!("{w}");
            }
            for key in ignored {
                tracing::warn!("reload: {key} changed; it takes effect only after a restart");
            }
            reload_admin(admin, started, &c);
            tracing::info!(clients = c.clients.len(), users = c.users.len(), config = %c.path.display(), "configuration reloaded");
        }
        Err(e) => tracing::error!("reload refused, the running configuration stays: {e}"),
    }
}

/// The admin API takes a reloaded token file at once (a revoked token stops working); its
/// listener and TLS stay as started.
fn reload_admin(admin: Option<&AdminHandle>, started: &Config, new: &Config) {
    let listener = |c: &Config| {
        c.admin
            .as_ref()
            .map(|a| (a.listen, a.tls.as_ref().map(|t| t.settings.clone())))
    };
    if listener(started) != listener(new) {
        tracing::warn!(
            "reload: [admin] listen or TLS changed; it takes effect only after a restart"
        );
    }
    if let (Some(h), Some(a)) = (admin, &new.admin) {
        h.set_tokens(a.tokens.clone());
    }
}

mod signals {
    /// Blocks `sigs` in the calling thread (and threads it spawns later).
    pub fn block(sigs: &[libc::c_int]) -> libc::sigset_t {
        // SAFETY: sigset_t is initialised by sigemptyset before use; pthread_sigmask only
        // reads the set.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &s in sigs {
                libc::sigaddset(&mut set, s);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            set
        }
    }

    /// Waits for one of the blocked signals.
    pub fn wait(set: &libc::sigset_t) -> libc::c_int {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is a valid initialised sigset_t; `sig` is a valid out pointer.
        unsafe { libc::sigwait(set, &mut sig) };
        sig
    }
}
