//! Values that are valid by construction: parse input once, at the edge, into these.

mod email;

pub use email::Email;
