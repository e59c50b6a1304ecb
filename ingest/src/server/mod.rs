//! The HTTP server: the application on actix-http's HTTP/1.1 connections, the way actix-web's
//! `HttpServer` builds it, but over connections of our own type so that the refusals the HTTP
//! layer writes by itself get problem bodies too (see [`refusals`]).

mod refusals;

use std::net::TcpListener;
use std::time::Duration;

use actix_http::{HttpService, KeepAlive, Request, Response};
use actix_server::{GracefulShutdownSignal, Server, ServerBuilder};
use actix_service::{
    IntoServiceFactory, ServiceFactory, ServiceFactoryExt, fn_service, map_config,
};
use actix_web::body::MessageBody;
use actix_web::dev::AppConfig;
use tokio::net::TcpStream;

use self::refusals::RefusalIo;

/// How long a client may take to send a request head (then `408`).
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection is kept to let the client read a final answer before it is closed.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The server's shape.
pub struct ServerOptions {
    pub workers: usize,
    /// Connections held at once, all workers together; `None` leaves actix's default.
    pub max_connections: Option<usize>,
}

/// Serves the application `factory` builds (one per worker) on `listener` until stopped
/// (SIGTERM, SIGINT or the handle's `stop`). The signal resolves when a graceful stop begins,
/// for what must end for the stop to finish (endless responses).
pub fn run<F, I, S, B>(
    listener: TcpListener,
    options: &ServerOptions,
    factory: F,
) -> std::io::Result<(Server, GracefulShutdownSignal)>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    B: MessageBody + 'static,
{
    let workers = options.workers.max(1);
    let mut builder = ServerBuilder::default().workers(workers);
    if let Some(connections) = options.max_connections {
        builder = builder.max_concurrent_connections(connections.div_ceil(workers).max(1));
    }
    let shutdown = builder.graceful_shutdown_signal();
    let stopping = shutdown.clone();
    let local = listener.local_addr()?;
    let builder = builder.listen("ingest", listener, move || {
        let app = factory()
            .into_factory()
            .map_err(|err| err.into().error_response());
        let shutdown = shutdown.clone();
        let http = HttpService::build()
            .keep_alive(KeepAlive::default())
            .client_request_timeout(HEAD_TIMEOUT)
            .client_disconnect_timeout(DISCONNECT_TIMEOUT)
            .local_addr(local)
            // Idle keep-alive connections close at once when a graceful stop begins.
            .graceful_shutdown_signal(move || {
                let shutdown = shutdown.clone();
                async move { shutdown.notified().await }
            })
            .h1(map_config(app, |_| AppConfig::default()));
        fn_service(|stream: TcpStream| async move {
            let peer = stream.peer_addr().ok();
            Ok((RefusalIo::new(stream), peer))
        })
        .and_then(http)
    })?;
    Ok((builder.run(), stopping))
}
