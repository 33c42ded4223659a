//! Everything a shard reads but never writes: clients, users, dictionary, reply settings.
//! Built once from a [`Config`] (and again on reload); shared by all shards behind an `Arc`.

use std::path::PathBuf;
use std::time::Duration;

use super::clients::ClientTable;
use crate::auth::local::LocalUsers;
use crate::config::{Config, ConfigError};
use crate::dict::Dictionary;

pub struct Runtime {
    pub clients: ClientTable,
    pub users: LocalUsers,
    pub dict: Dictionary,
    pub reject_reply_message: Option<Vec<u8>>,
    pub accounting_dir: PathBuf,
    pub reply_cache_ttl: Duration,
    pub reply_cache_entries: usize,
}

impl Runtime {
    /// Builds the runtime tables, resolving dictionary names; everything `serve` needs to
    /// know is right is checked here, so `check-config` calls it too.
    pub fn build(config: &Config) -> Result<Runtime, ConfigError> {
        let mut dict = Dictionary::builtin();
        for d in &config.server.dictionaries {
            dict.load_file(&d.value).map_err(|e| {
                d.error(format!("cannot load dictionary {}: {e}", d.value.display()))
            })?;
        }
        let reject_reply_message = config
            .reject_reply_message
            .as_ref()
            .map(|m| m.as_bytes().to_vec());
        if reject_reply_message.as_ref().is_some_and(|m| m.len() > 253) {
            return Err(ConfigError::new(
                &config.path,
                0,
                "reject_reply_message is longer than 253 octets",
            ));
        }
        Ok(Runtime {
            clients: ClientTable::build(&config.clients)?,
            users: LocalUsers::build(&config.users, &dict)?,
            dict,
            reject_reply_message,
            accounting_dir: config.accounting.directory.clone(),
            reply_cache_ttl: config.server.reply_cache_ttl,
            reply_cache_entries: config.server.reply_cache_entries,
        })
    }
}
