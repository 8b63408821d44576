//! The network edge: who a client is behind trusted proxies, which browser origins may call,
//! and the HTTP server that keeps slow or numerous clients from taking it.

mod client;
mod connections;
mod origins;
mod proxies;
mod server;

pub use client::{address_key, Client};
pub use connections::{raise_descriptor_limit, ConnectionCaps, Slot};
pub use origins::{
    normalize as normalize_origin, split_authority, AllowedOrigins, DEVELOPMENT_ORIGINS,
};
pub use proxies::TrustedProxies;
pub use server::{serve, ServeOptions};
