//! Rollcall: the GraphQL backend healthcare organisations use to run their people.
//!
//! - [`config`]: one typed configuration from flags and environment;
//! - [`app`]: builds the server (database, migrations, session store, routes);
//! - [`state`]: what every request shares;
//! - [`graphql`]: the schema, one file per area, translating to services;
//! - [`services`]: what the product does, over a connection and an actor;
//! - [`auth`]: passwords, sessions, permissions, the tenant scope;
//! - [`domain`]: values valid by construction;
//! - [`http`]: GraphQL over HTTP and websockets, health, metrics, GraphiQL,
//!   the invite page;
//! - [`scim`]: SCIM 2.0 provisioning, one more door onto the services;
//! - [`mail`]: outgoing email for the outbox;
//! - [`outbound`]: the HTTP client for organisation-chosen URLs, refusing
//!   private addresses;
//! - [`webhook`]: the outbox's webhook transport;
//! - [`error`]: the one error type and its mapping to `extensions.code`.

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod import;
pub mod mail;
pub mod outbound;
pub mod scim;
pub mod services;
pub mod siem;
pub mod sms;
pub mod state;
pub mod telemetry;
pub mod webhook;
