//! The Engine API over HTTP: routes → typed requests → [`Backend`] calls → responses.
//!
//! Versioned (`/v1.41/...`) and unversioned paths (the highest version) are served alike; the
//! version is checked against the served range ([`Versions`]) before routing, and what changed
//! between versions is decided from one table ([`compat::table`]) into typed options and
//! response shapes. Errors are `{"message": ...}` with the status chosen by
//! [`error::status_of`], in one place. Attach and exec start hijack the connection (`Upgrade: tcp`).

mod build;
pub mod compat;
mod containers;
mod df;
mod drain;
pub mod error;
mod exec;
mod hijack;
mod images;
mod networks;
mod normalize;
pub mod query;
mod registry;
pub mod resources;
pub mod serve;
mod swarm;
mod system;
pub mod transport;
pub mod version;
mod volumes;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

pub use backend::Backend;
pub use berth_services as backend;
pub use version::{ApiVersion, Versions};

pub type AppState = Arc<dyn Backend>;

/// The whole API as one service, versions handled.
pub fn router(backend: Arc<dyn Backend>) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/events", get(system::events))
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/update", post(resources::update))
        .route("/containers/{id}/stats", get(resources::stats))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/exec", post(exec::create))
        .route(
            "/containers/{id}",
            axum::routing::delete(containers::remove),
        )
        .route(
            "/containers/{parent}/{alias}",
            axum::routing::delete(containers::remove_nested),
        )
        .route(
            "/containers/{id}/archive",
            get(volumes::archive_get)
                .head(volumes::archive_head)
                .put(volumes::archive_put),
        )
        .route("/volumes", get(volumes::list))
        .route("/containers/prune", post(volumes::containers_prune))
        .route("/images/prune", post(volumes::images_prune))
        .route("/system/df", get(df::system_df))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect)
                .delete(volumes::remove)
                .put(swarm::volume_update),
        )
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/build", post(build::build))
        .route("/build/prune", post(build::prune))
        .route("/commit", post(build::commit))
        .route("/containers/{id}/changes", get(build::changes))
        .route("/containers/{id}/export", get(build::export))
        .route("/images/json", get(images::list))
        .route("/images/load", post(images::load))
        .route("/images/get", get(images::save_many))
        .route("/images/create", post(images::create))
        .route("/images/search", get(registry::search))
        .route("/auth", post(registry::auth))
        .route(
            "/images/{*rest}",
            get(images::get_dispatch)
                .post(images::post_dispatch)
                .delete(images::remove),
        )
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .merge(swarm::routes())
        .fallback(error::not_found_route)
        .method_not_allowed_fallback(error::not_found_route)
        .with_state(backend)
}

/// The whole API as one service for a connection: the router behind version handling, with
/// paths decoded as Go decodes them and every error answered as JSON.
pub fn app(backend: Arc<dyn Backend>, versions: Versions) -> Router {
    version::app(router(backend), versions)
        .layer(axum::middleware::from_fn(normalize::json_errors))
        .layer(axum::middleware::from_fn(normalize::lossy_path))
}

/// Serves the API with the API versions `versions` on a unix socket until `shutdown`
/// resolves; `conns` counts and limits the connections of all listeners.
pub async fn serve_unix(
    listener: tokio::net::UnixListener,
    backend: Arc<dyn Backend>,
    versions: Versions,
    conns: Arc<serve::Connections>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve::serve(listener, None, app(backend, versions), conns, shutdown).await
}
