//! Helpers for the client tests: an axum server on 127.0.0.1:0 and clients pointed at it.
#![allow(dead_code)]

use dbxport::client::{Client, Config, TransportOptions};
use std::time::Duration;

/// Serves `router` on an ephemeral loopback port until the test ends; returns its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

/// Options that keep retry tests fast.
pub fn fast() -> TransportOptions {
    TransportOptions {
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(40),
        retry_budget: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
        ..TransportOptions::default()
    }
}

/// A PAT config for `host`.
pub fn pat_config(host: &str, token: &str) -> Config {
    Config::pat(host, token.to_string().into()).unwrap()
}

/// A PAT client for `host` with `opts`.
pub fn client(host: &str, opts: TransportOptions) -> Client {
    Client::new(&pat_config(host, "dapi-test-token"), opts).unwrap()
}
