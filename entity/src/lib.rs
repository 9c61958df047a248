//! sea-orm entities of Rollcall: the tables, and nothing of the API.
//!
//! The GraphQL layer never derives its types from these models; it maps them, so
//! a column added here does not become part of the public contract by accident.

pub mod access_review;
pub mod access_review_item;
pub mod api_client;
pub mod audit_chain;
pub mod audit_event;
pub mod audit_forwarded;
pub mod authenticator;
pub mod availability_slot;
pub mod break_glass_grant;
pub mod certification;
pub mod certification_reminder;
pub mod enrollment;
pub mod identity_provider;
pub mod import_feed;
pub mod import_file;
pub mod import_file_chunk;
pub mod import_job;
pub mod import_row;
pub mod invite;
pub mod lease;
pub mod location;
pub mod mapping_template;
pub mod organization;
pub mod outbox_message;
pub mod patient;
pub mod patient_assignment;
pub mod patient_link;
pub mod project;
pub mod provider;
pub mod recovery_code;
pub mod role;
pub mod role_permission;
pub mod sso_identity;
pub mod sso_login;
pub mod user;
pub mod user_role;
pub mod webauthn_ceremony;
pub mod webhook;

pub mod prelude {
    pub use super::api_client::Entity as ApiClient;
    pub use super::audit_event::Entity as AuditEvent;
    pub use super::authenticator::Entity as Authenticator;
    pub use super::availability_slot::Entity as AvailabilitySlot;
    pub use super::certification::Entity as Certification;
    pub use super::enrollment::Entity as Enrollment;
    pub use super::identity_provider::Entity as IdentityProvider;
    pub use super::import_file::Entity as ImportFile;
    pub use super::import_file_chunk::Entity as ImportFileChunk;
    pub use super::import_job::Entity as ImportJob;
    pub use super::import_row::Entity as ImportRow;
    pub use super::invite::Entity as Invite;
    pub use super::location::Entity as Location;
    pub use super::mapping_template::Entity as MappingTemplate;
    pub use super::organization::Entity as Organization;
    pub use super::outbox_message::Entity as OutboxMessage;
    pub use super::patient::Entity as Patient;
    pub use super::patient_assignment::Entity as PatientAssignment;
    pub use super::patient_link::Entity as PatientLink;
    pub use super::project::Entity as Project;
    pub use super::provider::Entity as Provider;
    pub use super::recovery_code::Entity as RecoveryCode;
    pub use super::role::Entity as Role;
    pub use super::role_permission::Entity as RolePermission;
    pub use super::sso_identity::Entity as SsoIdentity;
    pub use super::sso_login::Entity as SsoLogin;
    pub use super::user::Entity as User;
    pub use super::user_role::Entity as UserRole;
    pub use super::webauthn_ceremony::Entity as WebauthnCeremony;
}
