//! The organisation's staff as a spreadsheet in the import's own format: the
//! columns of the blank template of USERS or PROVIDERS, one row per person. An
//! admin exports, edits in a spreadsheet and uploads the file again; the columns
//! map themselves, and every row left as it was comes back SKIPPED.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;
use uuid::Uuid;

use crate::{
    auth::{Actor, Permission},
    domain::EmployeeStatus,
    error::{AppError, AppResult},
    import::fields::{ImportKind, fields},
    services::audit::{self, AuditEntry},
};

/// People read per statement.
const PAGE: u64 = 1000;

/// A table: the template's headers and one row of cells per person.
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Everyone of the organisation as a USERS file (USERS_READ), or everyone with
/// a provider record as a PROVIDERS file (PROVIDERS_READ), ordered by email.
/// The export is in the audit trail with its kind and size.
pub async fn staff(
    db: &(impl ConnectionTrait + sea_orm::TransactionTrait),
    actor: &Actor,
    kind: ImportKind,
) -> AppResult<Table> {
    match kind {
        ImportKind::Users => actor.require(Permission::UsersRead)?,
        ImportKind::Providers => actor.require(Permission::ProvidersRead)?,
        ImportKind::Patients | ImportKind::Locations => {
            return Err(AppError::bad_input(
                "kind",
                "only USERS and PROVIDERS can be exported",
            ));
        }
    }
    actor.require_recent_mfa()?;
    let specs = fields(kind);
    let headers = specs.iter().map(|f| f.label.to_owned()).collect();
    let mut rows = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut select = actor.scope::<entity::user::Entity>();
        if kind == ImportKind::Providers {
            select = select.filter(
                entity::user::Column::Id.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(entity::provider::Column::UserId)
                        .from(entity::provider::Entity)
                        .and_where(
                            entity::provider::Column::OrganizationId.eq(actor.organization_id),
                        )
                        .to_owned(),
                ),
            );
        }
        if let Some(email) = &after {
            select = select.filter(entity::user::Column::Email.gt(email.as_str()));
        }
        let users = select
            .order_by_asc(entity::user::Column::Email)
            .limit(PAGE)
            .all(db)
            .await?;
        let Some(last) = users.last() else { break };
        after = Some(last.email.clone());
        let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
        let roles = crate::services::roles::roles_by_user(db, actor.tenant(), &ids).await?;
        let providers = if kind == ImportKind::Providers {
            providers_of(db, actor, &ids).await?
        } else {
            HashMap::new()
        };
        rows.extend(users.iter().map(|user| {
            let person = Person {
                user,
                provider: providers.get(&user.id),
                roles: &roles,
            };
            specs.iter().map(|spec| person.cell(spec.key)).collect()
        }));
        if (users.len() as u64) < PAGE {
            break;
        }
    }
    audit::record(
        db,
        AuditEntry::by(actor, "staff.export").changes(json!({
            "kind": kind.as_str(),
            "rows": rows.len(),
        })),
    )
    .await?;
    Ok(Table { headers, rows })
}

/// The provider records of `user_ids`, by user.
async fn providers_of(
    db: &impl ConnectionTrait,
    actor: &Actor,
    user_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, entity::provider::Model>> {
    Ok(actor
        .scope::<entity::provider::Entity>()
        .filter(entity::provider::Column::UserId.is_in(user_ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.user_id, p))
        .collect())
}

/// One row's sources.
struct Person<'a> {
    user: &'a entity::user::Model,
    provider: Option<&'a entity::provider::Model>,
    roles: &'a BTreeMap<Uuid, Vec<entity::role::Model>>,
}

impl Person<'_> {
    /// The cell of import field `key`, written as the import reads it back.
    fn cell(&self, key: &str) -> String {
        let user = self.user;
        let provider = |pick: fn(&entity::provider::Model) -> Option<&String>| {
            self.provider.and_then(pick).cloned().unwrap_or_default()
        };
        match key {
            "email" => user.email.clone(),
            "firstName" => user.first_name.clone(),
            "lastName" => user.last_name.clone(),
            "title" => user.title.clone().unwrap_or_default(),
            "employeeStatus" => EmployeeStatus::from_stored(&user.employee_status)
                .label()
                .to_owned(),
            "mobilePhone" => user.mobile_phone.clone().unwrap_or_default(),
            "locale" => user.locale.clone().unwrap_or_default(),
            "roles" => self
                .roles
                .get(&user.id)
                .map(|roles| {
                    let mut names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
                    names.sort_unstable();
                    names.join("; ")
                })
                .unwrap_or_default(),
            "externalId" => user.external_id.clone().unwrap_or_default(),
            "idleTimeoutMinutes" => user
                .idle_timeout_minutes
                .map(|m| m.to_string())
                .unwrap_or_default(),
            "npi" => self.provider.map(|p| p.npi.clone()).unwrap_or_default(),
            "organizationRole" => self
                .provider
                .map(|p| p.organization_role.clone())
                .unwrap_or_default(),
            "specialty" => provider(|p| p.specialty.as_ref()),
            "addressLine1" => provider(|p| p.address_line1.as_ref()),
            "addressLine2" => provider(|p| p.address_line2.as_ref()),
            "city" => provider(|p| p.city.as_ref()),
            "state" => provider(|p| p.state.as_ref()),
            "postalCode" => provider(|p| p.postal_code.as_ref()),
            "phone" => provider(|p| p.phone.as_ref()),
            "billingTaxId" => provider(|p| p.billing_tax_id.as_ref()),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn every_field_of_both_kinds_has_its_cell() {
        let now = Utc::now();
        let user = entity::user::Model {
            id: Uuid::now_v7(),
            organization_id: Uuid::now_v7(),
            email: "ada@example.org".into(),
            password_hash: None,
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            title: Some("RN".into()),
            status: "ACTIVE".into(),
            employee_status: "LEAVE".into(),
            mobile_phone: Some("+12175550100".into()),
            locale: Some("en-US".into()),
            idle_timeout_minutes: Some(30),
            external_id: Some("EMP-1".into()),
            must_change_password: false,
            is_super_admin: false,
            last_login_at: None,
            created_at: now,
            updated_at: now,
            email_signature: None,
            preferences: None,
            service_account: false,
            user_name: None,
            employee_number: None,
            department: None,
            deprovisioned_at: None,
            reactivated_at: None,
            dormancy_warned_at: None,
        };
        let some = |text: &str| Some(text.to_owned());
        let provider = entity::provider::Model {
            id: Uuid::now_v7(),
            organization_id: user.organization_id,
            user_id: user.id,
            npi: "1234567893".into(),
            organization_role: "Provider".into(),
            specialty: some("Family Medicine"),
            address_line1: some("200 Oak Ave"),
            address_line2: some("Suite 4"),
            city: some("Springfield"),
            state: some("IL"),
            postal_code: some("62701"),
            phone: some("+12175550300"),
            billing_tax_id: some("12-3456789"),
            billing_address: None,
            credentialing_status: "PENDING".into(),
            created_at: now,
            updated_at: now,
            location_id: None,
        };
        let role = |name: &str| entity::role::Model {
            id: Uuid::now_v7(),
            organization_id: user.organization_id,
            name: name.into(),
            description: None,
            built_in: true,
            external_id: None,
            created_at: now,
            updated_at: now,
            required_certifications: None,
        };
        let roles = BTreeMap::from([(user.id, vec![role("Provider"), role("Billing")])]);
        let person = Person {
            user: &user,
            provider: Some(&provider),
            roles: &roles,
        };
        for kind in [ImportKind::Users, ImportKind::Providers] {
            for field in fields(kind) {
                assert!(!person.cell(field.key).is_empty(), "{kind:?} {}", field.key);
            }
        }
        assert_eq!(person.cell("roles"), "Billing; Provider");
        assert_eq!(person.cell("employeeStatus"), "Leave");
    }
}
