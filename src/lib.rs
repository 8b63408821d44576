//! DeployStack's database backend as a library: `main.rs` only parses the command line,
//! and tests drive the same code through [`app::App`].

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod embedded_pg;
pub mod jobs;
pub mod lifecycle;
pub mod metrics;
pub mod net;
pub mod plugins;
pub mod services;
pub mod settings;
pub mod setup;
pub mod state;
pub mod telemetry;
