//! Who is calling and what they may do: passwords, sessions, permissions, the
//! authenticated actor and its tenant scope, and login rate limits.

pub mod access;
pub mod actor;
pub mod client_token;
pub mod cookies;
pub mod mfa;
pub mod password;
pub mod permissions;
pub mod session;

pub use access::Authority;
pub use actor::{Actor, Caller, Credential};
pub use permissions::Permission;
