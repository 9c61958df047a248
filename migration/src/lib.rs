//! Database migrations of Rollcall.
//!
//! One file per change, named `mYYYYMMDD_NNNNNN_verb_noun.rs`, never edited once
//! landed. The same migrations run on PostgreSQL and SQLite; every migration runs in
//! a transaction on both (SQLite does not by default), and foreign keys are declared
//! in `create_table` because SQLite cannot add them later.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_accounts;
mod m20261124_000001_create_staff;
mod m20261124_000002_create_imports;
mod m20261124_000003_create_projects;
mod m20261124_000004_create_patient_assignments;
mod m20261124_000005_create_locations;
mod m20261124_000006_create_profiles;
mod m20261124_000007_add_provider_location;
mod m20261201_000001_add_import_failed_attempts;
mod m20261202_000001_add_invite_purpose;
mod m20261202_000002_add_enrollment_pending_response;
mod m20261202_000003_create_authenticators;
mod m20261202_000004_add_passkeys;
mod m20261202_000005_create_identity_providers;
mod m20261202_000006_create_sso_identities;
mod m20261203_000001_create_api_clients;
mod m20261203_000002_add_scim_user_fields;
mod m20261203_000003_create_webhooks;
mod m20261203_000004_create_import_feeds;
mod m20261203_000005_make_audit_append_only;
mod m20261203_000006_chain_audit_events;
mod m20261203_000007_create_leases;
mod m20261203_000008_create_break_glass;
mod m20261203_000009_add_required_certifications;
mod m20261203_000010_add_dormancy;
mod m20261203_000011_create_access_reviews;
mod m20261203_000012_add_import_fixes;
mod m20261203_000013_index_failed_import_rows;
mod m20261203_000014_index_pages_by_organization;
mod m20261203_000015_store_import_files_in_chunks;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_accounts::Migration),
            Box::new(m20261124_000001_create_staff::Migration),
            Box::new(m20261124_000002_create_imports::Migration),
            Box::new(m20261124_000003_create_projects::Migration),
            Box::new(m20261124_000004_create_patient_assignments::Migration),
            Box::new(m20261124_000005_create_locations::Migration),
            Box::new(m20261124_000006_create_profiles::Migration),
            Box::new(m20261124_000007_add_provider_location::Migration),
            Box::new(m20261201_000001_add_import_failed_attempts::Migration),
            Box::new(m20261202_000001_add_invite_purpose::Migration),
            Box::new(m20261202_000002_add_enrollment_pending_response::Migration),
            Box::new(m20261202_000003_create_authenticators::Migration),
            Box::new(m20261202_000004_add_passkeys::Migration),
            Box::new(m20261202_000005_create_identity_providers::Migration),
            Box::new(m20261202_000006_create_sso_identities::Migration),
            Box::new(m20261203_000001_create_api_clients::Migration),
            Box::new(m20261203_000002_add_scim_user_fields::Migration),
            Box::new(m20261203_000003_create_webhooks::Migration),
            Box::new(m20261203_000004_create_import_feeds::Migration),
            Box::new(m20261203_000005_make_audit_append_only::Migration),
            Box::new(m20261203_000006_chain_audit_events::Migration),
            Box::new(m20261203_000007_create_leases::Migration),
            Box::new(m20261203_000008_create_break_glass::Migration),
            Box::new(m20261203_000009_add_required_certifications::Migration),
            Box::new(m20261203_000010_add_dormancy::Migration),
            Box::new(m20261203_000011_create_access_reviews::Migration),
            Box::new(m20261203_000012_add_import_fixes::Migration),
            Box::new(m20261203_000013_index_failed_import_rows::Migration),
            Box::new(m20261203_000014_index_pages_by_organization::Migration),
            Box::new(m20261203_000015_store_import_files_in_chunks::Migration),
        ]
    }
}
