//! The control plane's runtime: one tokio thread, apart from the shards, that runs what
//! operators and other servers talk to (the admin API, `/metrics`, the dynamic-authorization
//! sender and listener) and the session table's housekeeping. Nothing here ever runs on a
//! shard, so a slow API client or an unanswering DAS cannot delay a RADIUS reply.

use std::io;

/// Owns the control thread; dropping it shuts the runtime down.
pub struct ControlRuntime {
    rt: tokio::runtime::Runtime,
}

impl ControlRuntime {
    pub fn start() -> io::Result<ControlRuntime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("control")
            .enable_all()
            .build()?;
        Ok(ControlRuntime { rt })
    }

    /// Spawning through the handle works from any thread (a shard included) and never blocks.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.rt.handle()
    }
}
