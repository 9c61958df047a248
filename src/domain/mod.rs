//! Values that are valid by construction: parse input once, at the edge, into these.

mod date;
mod email;
mod employee_status;
mod locale;
mod npi;
mod phone;
pub mod text;

pub use date::{parse_date, parse_time_zone};
pub use email::Email;
pub use employee_status::EmployeeStatus;
pub use locale::Locale;
pub use npi::Npi;
pub use phone::Phone;
