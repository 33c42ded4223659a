//! The `nas` table as clients: `nasname` an address or CIDR network (host names, which
//! FreeRADIUS resolves at load time, are skipped here with a warning), `shortname` the
//! client's name (else `nasname`), `secret` its shared secret. Read at start and on SIGHUP.
//! A network the configuration's `[[clients]]` already name stays theirs.

use std::path::PathBuf;

use tracing::warn;

use super::store::NasRow;
use crate::cfg::{parse_client_net, SecretText};
use crate::clients::{ClientConfig, Transport};

/// The rows usable as UDP clients, not overlapping `configured` (nor each other: the first
/// row wins). Message-Authenticator is required of them, as of configured clients by
/// default (BlastRADIUS).
pub fn clients_from(rows: &[NasRow], configured: &[ClientConfig]) -> Vec<ClientConfig> {
    let mut out: Vec<ClientConfig> = Vec::new();
    for r in rows {
        let Ok(net) = parse_client_net(r.nasname.trim()) else {
            warn!(id = r.id, nasname = %r.nasname, "nas table: nasname is not an address or network (host names are not resolved): skipped");
            continue;
        };
        if r.secret.is_empty() {
            warn!(id = r.id, nasname = %r.nasname, "nas table: empty secret: skipped");
            continue;
        }
        let taken = configured
            .iter()
            .chain(out.iter())
            .any(|c| c.transport == Transport::Udp && c.networks.contains(&net));
        if taken {
            warn!(id = r.id, nasname = %r.nasname, "nas table: this network is already a client: skipped");
            continue;
        }
        let name = r
            .shortname
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(r.nasname.trim());
        out.push(ClientConfig {
            name: name.to_string(),
            networks: vec![net],
            secret: SecretText::new(r.secret.clone()),
            require_message_authenticator: true,
            limit_proxy_state: true,
            rate_limit: None,
            group: None,
            transport: Transport::Udp,
            fingerprints: Vec::new(),
            das: None,
            dynauth_upstream: false,
            file: PathBuf::from("sql:nas"),
            line: usize::try_from(r.id).unwrap_or(0),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i32, nasname: &str, short: Option<&str>, secret: &str) -> NasRow {
        NasRow {
            id,
            nasname: nasname.into(),
            shortname: short.map(Into::into),
            secret: secret.into(),
        }
    }

    #[test]
    fn nas_rows_become_clients() {
        let configured = crate::config::Config::from_str(
            "[[clients]]\nname = \"local\"\naddresses = [\"127.0.0.1\"]\nsecret = \"testing123\"\n",
            std::path::Path::new("t.toml"),
            None,
        )
        .unwrap()
        .clients;
        let got = clients_from(
            &[
                row(1, "10.0.0.1", Some("ap1"), "s3cret-s3cret-s3"),
                row(2, "10.1.0.0/16", None, "s3cret-s3cret-s3"),
                row(3, "127.0.0.1", Some("dup"), "x"),
                row(4, "nas.example.com", Some("dns"), "x"),
                row(5, "10.0.0.2", Some("nosecret"), ""),
                row(6, "10.0.0.1", Some("again"), "x"),
            ],
            &configured,
        );
        let names: Vec<&str> = got.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["ap1", "10.1.0.0/16"]);
        assert!(got[0].require_message_authenticator);
        assert!(!format!("{:?}", got[0]).contains("s3cret"));
    }
}
