//! `[winbind]`: MS-CHAP verification through Samba's winbindd.
//!
//! ```toml
//! [winbind]
//! smb_conf = "/etc/samba/smb.conf"   # relative: to this file's directory
//! domain = "EXAMPLE"                 # default: smb.conf's `workgroup`
//! threads = 8                        # winbind calls in flight (default 8)
//! timeout = "2s"                     # per check, queueing included (default 2s)
//! ```
//!
//! The smb.conf is read for two parameters only, `workgroup` and `winbindd socket directory`,
//! from `[global]`; `include =` and registry configuration are not followed.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::cfg::{ConfigError, DurationValue};

/// Where winbindd's socket is when smb.conf does not say: the compiled-in default of Debian's
/// and Ubuntu's (and Fedora's) Samba, as `testparm -s --parameter-name='winbindd socket
/// directory' /dev/null` prints it, and also what their libwbclient.so.0 has compiled in.
pub const DEFAULT_SOCKET_DIR: &str = "/run/samba/winbindd";

const DEFAULT_THREADS: usize = 8;
const MAX_THREADS: usize = 256;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// `[winbind]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWinbind {
    pub smb_conf: Spanned<PathBuf>,
    pub domain: Option<String>,
    pub threads: Option<Spanned<usize>>,
    pub timeout: Option<Spanned<DurationValue>>,
}

/// `[winbind]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinbindConfig {
    /// The smb.conf of the Samba whose winbindd answers (on a DC: the DC's own).
    pub smb_conf: PathBuf,
    /// `winbindd socket directory` from `smb_conf`.
    pub socket_dir: PathBuf,
    /// NetBIOS domain for a User-Name without `DOMAIN\`.
    pub domain: String,
    /// Worker threads, each with its own wbcContext: the winbind calls in flight.
    pub threads: usize,
    /// Longest a check may take, waiting for a free worker included.
    pub timeout: Duration,
}

/// The two parameters read from an smb.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmbConf {
    pub workgroup: Option<String>,
    pub socket_dir: Option<PathBuf>,
}

/// Samba matches parameter names ignoring case and white space ("winbindd socket directory"
/// = "WinbinddSocketDirectory").
fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Reads `workgroup` and `winbindd socket directory` from `[global]` (the parameters before
/// any section count as global too, as in Samba). Lines ending in `\` continue.
pub fn parse_smb_conf(text: &str) -> SmbConf {
    let mut out = SmbConf::default();
    let mut global = true;
    let mut logical = String::new();
    for raw in text.lines() {
        if let Some(head) = raw.strip_suffix('\\') {
            logical.push_str(head);
            continue;
        }
        logical.push_str(raw);
        let line = std::mem::take(&mut logical);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            let name = section.trim_end_matches(']').trim();
            global = normalise(name) == "global";
            continue;
        }
        if !global {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match normalise(key).as_str() {
            "workgroup" if !value.is_empty() => out.workgroup = Some(value.to_string()),
            "winbinddsocketdirectory" if !value.is_empty() => {
                out.socket_dir = Some(PathBuf::from(value))
            }
            _ => {}
        }
    }
    out
}

impl WinbindConfig {
    /// From an smb.conf alone, with the defaults for the rest (tools and tests).
    pub fn from_smb_conf(smb_conf: &Path) -> std::io::Result<WinbindConfig> {
        let conf = parse_smb_conf(&std::fs::read_to_string(smb_conf)?);
        Ok(WinbindConfig {
            smb_conf: smb_conf.to_path_buf(),
            socket_dir: conf
                .socket_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET_DIR)),
            domain: conf.workgroup.unwrap_or_default(),
            threads: DEFAULT_THREADS,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Validates `[winbind]` from `origin`; `at` maps a span to its line.
    pub fn from_raw(
        raw: RawWinbind,
        origin: &Path,
        at: &impl Fn(Range<usize>) -> usize,
    ) -> Result<WinbindConfig, ConfigError> {
        let smb_line = at(raw.smb_conf.span());
        let written = raw.smb_conf.into_inner();
        let smb_conf = if written.is_relative() {
            origin.parent().unwrap_or(Path::new("")).join(&written)
        } else {
            written
        };
        let text = std::fs::read_to_string(&smb_conf).map_err(|e| {
            ConfigError::new(
                origin,
                smb_line,
                format!("winbind.smb_conf {}: {e}", smb_conf.display()),
            )
        })?;
        let conf = parse_smb_conf(&text);
        let domain = match raw.domain.or(conf.workgroup) {
            Some(d) if !d.trim().is_empty() => d.trim().to_string(),
            _ => {
                return Err(ConfigError::new(
                    origin,
                    smb_line,
                    format!(
                        "winbind.domain is not set and {} has no workgroup",
                        smb_conf.display()
                    ),
                ))
            }
        };
        let threads = match raw.threads {
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > MAX_THREADS => {
                return Err(ConfigError::new(
                    origin,
                    at(n.span()),
                    format!("winbind.threads must be between 1 and {MAX_THREADS}"),
                ))
            }
            Some(n) => n.into_inner(),
            None => DEFAULT_THREADS,
        };
        let timeout = match raw.timeout {
            Some(t) if t.get_ref().0.is_zero() => {
                return Err(ConfigError::new(
                    origin,
                    at(t.span()),
                    "winbind.timeout must be positive",
                ))
            }
            Some(t) => t.into_inner().0,
            None => DEFAULT_TIMEOUT,
        };
        Ok(WinbindConfig {
            socket_dir: conf
                .socket_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET_DIR)),
            smb_conf,
            domain,
            threads,
            timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cfg::line_of;

    #[derive(Deserialize)]
    struct File {
        winbind: RawWinbind,
    }

    fn load(dir: &Path, toml_text: &str) -> Result<WinbindConfig, ConfigError> {
        let origin = dir.join("radshard.toml");
        let f: File = toml::from_str(toml_text).expect("toml");
        WinbindConfig::from_raw(f.winbind, &origin, &|r: Range<usize>| {
            line_of(toml_text, r.start)
        })
    }

    #[test]
    fn reads_workgroup_and_socket_dir_from_global_only() {
        let c = parse_smb_conf(
            "# c\n[global]\n\tWorkGroup = EXAMPLE\n\twinbindd socket \\\n directory = /x/wb\n\
             [homes]\n\tworkgroup = NOT\n",
        );
        assert_eq!(c.workgroup.as_deref(), Some("EXAMPLE"));
        assert_eq!(c.socket_dir, Some(PathBuf::from("/x/wb")));
        assert_eq!(
            parse_smb_conf("[global]\n; workgroup = X\n"),
            SmbConf::default()
        );
    }

    #[test]
    fn relative_smb_conf_defaults_and_errors_name_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("smb.conf"),
            "[global]\nworkgroup = EXAMPLE\n",
        )
        .expect("write");
        let c = load(dir.path(), "[winbind]\nsmb_conf = \"smb.conf\"\n").expect("valid");
        assert_eq!(c.smb_conf, dir.path().join("smb.conf"));
        assert_eq!(c.domain, "EXAMPLE");
        assert_eq!(c.socket_dir, PathBuf::from(DEFAULT_SOCKET_DIR));
        assert_eq!((c.threads, c.timeout), (8, Duration::from_secs(2)));

        let c = load(
            dir.path(),
            "[winbind]\nsmb_conf = \"smb.conf\"\ndomain = \"OTHER\"\nthreads = 3\ntimeout = \"500ms\"\n",
        )
        .expect("valid");
        assert_eq!((c.domain.as_str(), c.threads), ("OTHER", 3));
        assert_eq!(c.timeout, Duration::from_millis(500));

        let e = load(dir.path(), "[winbind]\n\nsmb_conf = \"missing.conf\"\n").unwrap_err();
        assert_eq!(
            (e.file.clone(), e.line),
            (dir.path().join("radshard.toml"), 3)
        );
        assert!(e.reason.contains("missing.conf"), "{e}");

        let e = load(
            dir.path(),
            "[winbind]\nsmb_conf = \"smb.conf\"\nthreads = 0\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        let e = load(
            dir.path(),
            "[winbind]\nsmb_conf = \"smb.conf\"\ntimeout = \"0s\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(toml::from_str::<File>("[winbind]\nsmb_conf = \"a\"\nbogus = 1\n").is_err());

        std::fs::write(dir.path().join("nowg.conf"), "[global]\n").expect("write");
        let e = load(dir.path(), "[winbind]\nsmb_conf = \"nowg.conf\"\n").unwrap_err();
        assert!(e.reason.contains("no workgroup"), "{e}");
    }
}
