//! `POST /containers/{id}/attach` and `/resize`: a client joined to the shim's stdio.

use std::sync::Arc;

use berth_services::{AttachOptions, BoxedIo, Session};
use futures_util::FutureExt;

use super::{not_running, PendingAttach};
use crate::{internal, lock, Daemon, Result};

impl Daemon {
    pub async fn container_attach(
        self: &Arc<Self>,
        key: &str,
        opts: AttachOptions,
    ) -> Result<Session> {
        let c = self.resolve_container(key)?;
        let tty = c.config.tty;
        crate::exec::parse_detach_keys(
            opts.detach_keys
                .as_deref()
                .unwrap_or(crate::exec::DEFAULT_DETACH_KEYS),
        )?;
        // `docker run` and `docker start -a` attach before they start: registered now, before
        // the client hears back, so the start it sends right after can never miss it.
        let pending = (opts.stream && !c.state.status.is_active()).then(|| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            lock(&self.pending_attach)
                .entry(c.id.clone())
                .or_default()
                .push(PendingAttach {
                    opts: opts.clone(),
                    io: rx,
                });
            tx
        });
        let this = self.clone();
        let id = c.id.clone();
        Ok(Session {
            tty,
            run: Box::new(move |io: BoxedIo| {
                async move {
                    let mut io = io;
                    if opts.logs {
                        let past = crate::logs::replay(
                            &this.runtime.log_path(&id),
                            opts.stdout,
                            opts.stderr,
                            tty,
                        );
                        if tokio::io::AsyncWriteExt::write_all(&mut io, &past)
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    if !opts.stream {
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut io).await;
                        return;
                    }
                    match pending {
                        // The start (or its failure) takes it from here.
                        Some(tx) => {
                            let _ = tx.send(io);
                        }
                        None => this.connect_attach(&id, tty, opts, io).await,
                    }
                }
                .boxed()
            }),
        })
    }

    /// Joins a client connection to the shim's attach stream.
    pub(super) async fn connect_attach(
        &self,
        id: &str,
        tty: bool,
        opts: AttachOptions,
        io: BoxedIo,
    ) {
        let client = self.runtime.client(id);
        match client.attach(opts.stdin, opts.stdout, opts.stderr).await {
            Ok(stream) => {
                self.emit_container_id(id, "attach", &[]);
                let keys = crate::exec::parse_detach_keys(
                    opts.detach_keys
                        .as_deref()
                        .unwrap_or(crate::exec::DEFAULT_DETACH_KEYS),
                )
                .ok();
                tokio::spawn(crate::exec::bridge(
                    stream,
                    io,
                    tty,
                    tty,
                    opts.stdin,
                    keys,
                    |_| {},
                ));
            }
            Err(e) => tracing::warn!(container = id, "attach: {e}"),
        }
    }

    pub async fn container_resize(&self, key: &str, h: u16, w: u16) -> Result<()> {
        let c = self.resolve_container(key)?;
        if !c.state.status.is_active() {
            return Err(not_running(&c.id));
        }
        self.runtime
            .client(&c.id)
            .resize(None, h, w)
            .await
            .map_err(internal)
    }
}
