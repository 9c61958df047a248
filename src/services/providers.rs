//! Providers: staff users with an NPI, an organisation role, and practice and
//! billing details.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    TransactionSession, TransactionTrait,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, Query},
};
use serde_json::json;
use uuid::Uuid;

use super::{
    audit::{self, AuditEntry, Changes},
    organizations, roles,
    users::{self, CreatedUser, Credentials, Secret, UserDetails},
};
use crate::db::{Page, PageRequest, escape_like, paginate};
use crate::{
    auth::{Actor, Permission, password::Hasher},
    domain::{Npi, Phone},
    error::{AppError, AppResult, OnConstraint, Validation},
};

/// Where a provider is in credentialing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialingStatus {
    Pending,
    InReview,
    Credentialed,
    Expired,
    Denied,
}

impl CredentialingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::InReview => "IN_REVIEW",
            Self::Credentialed => "CREDENTIALED",
            Self::Expired => "EXPIRED",
            Self::Denied => "DENIED",
        }
    }

    pub fn from_stored(stored: &str) -> Self {
        match stored {
            "IN_REVIEW" => Self::InReview,
            "CREDENTIALED" => Self::Credentialed,
            "EXPIRED" => Self::Expired,
            "DENIED" => Self::Denied,
            _ => Self::Pending,
        }
    }
}

/// The rules of a provider's practice fields, in one place for every door
/// (GraphQL and the import), as `users::field` holds a user's. Each takes a
/// value that is there (callers treat blank as absent) and the name its
/// errors give.
pub mod field {
    use crate::{domain::text, error::AppResult};

    pub fn organization_role(raw: &str, field: &str) -> AppResult<String> {
        text::required(raw, field, 100)
    }
    pub fn specialty(raw: &str, field: &str) -> AppResult<String> {
        text::required(raw, field, 200)
    }
    pub fn address_line(raw: &str, field: &str) -> AppResult<String> {
        text::required(raw, field, 200)
    }
    pub fn city(raw: &str, field: &str) -> AppResult<String> {
        text::required(raw, field, 100)
    }
    pub fn state(raw: &str, field: &str) -> AppResult<String> {
        text::required(raw, field, 100)
    }
    pub fn postal_code(raw: &str, field: &str) -> AppResult<String> {
        text::required(raw, field, 20)
    }
    pub fn billing_address(raw: &str, field: &str) -> AppResult<String> {
        text::required(raw, field, 500)
    }
}

/// A practice field as a door received it.
#[derive(Clone, Copy, Debug, Default)]
pub enum Given<'a> {
    /// Not given: left as it is.
    #[default]
    Absent,
    /// Given empty (GraphQL's `null`, or blank text): cleared.
    Clear,
    Value(&'a str),
}

impl<'a> Given<'a> {
    /// Text given blank clears, as `null` does.
    pub fn text(raw: Option<&'a str>) -> Self {
        match raw {
            None => Self::Absent,
            Some(raw) if raw.trim().is_empty() => Self::Clear,
            Some(raw) => Self::Value(raw),
        }
    }

    fn parse<T>(
        self,
        v: &mut Validation,
        field: &str,
        rule: impl FnOnce(&str, &str) -> AppResult<T>,
    ) -> Option<Option<T>> {
        match self {
            Self::Absent => None,
            Self::Clear => Some(None),
            Self::Value(raw) => v.check(rule(raw, field)).map(Some),
        }
    }
}

/// A provider's practice fields as a door received them, before any rule:
/// `createProvider` and `updateProvider` (where `null` clears) and a provider
/// import row (where a blank cell is absent) map onto this, and
/// [`RawPractice::parse`] holds each field to its rule in one place. The
/// location and the credentialing status arrive typed, and are set on the
/// details by the door.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawPractice<'a> {
    pub organization_role: Option<&'a str>,
    pub specialty: Given<'a>,
    pub address_line1: Given<'a>,
    pub address_line2: Given<'a>,
    pub city: Given<'a>,
    pub state: Given<'a>,
    pub postal_code: Given<'a>,
    pub phone: Given<'a>,
    pub billing_tax_id: Given<'a>,
    pub billing_address: Given<'a>,
}

impl RawPractice<'_> {
    /// Each given field held to its rule, every error to `v` under the
    /// clients' name of the field.
    pub fn parse(&self, v: &mut Validation) -> PracticeDetails {
        PracticeDetails {
            organization_role: self
                .organization_role
                .and_then(|r| v.check(field::organization_role(r, "organizationRole"))),
            specialty: self.specialty.parse(v, "specialty", field::specialty),
            address_line1: self
                .address_line1
                .parse(v, "addressLine1", field::address_line),
            address_line2: self
                .address_line2
                .parse(v, "addressLine2", field::address_line),
            city: self.city.parse(v, "city", field::city),
            state: self.state.parse(v, "state", field::state),
            postal_code: self.postal_code.parse(v, "postalCode", field::postal_code),
            phone: self.phone.parse(v, "phone", Phone::parse),
            billing_tax_id: self.billing_tax_id.parse(v, "billingTaxId", parse_tax_id),
            billing_address: self.billing_address.parse(
                v,
                "billingAddress",
                field::billing_address,
            ),
            credentialing_status: None,
            location_id: None,
        }
    }
}

/// A US employer identification number (EIN), stored as `12-3456789`.
pub fn parse_tax_id(raw: &str, field: &str) -> AppResult<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let only_separators = raw
        .chars()
        .all(|c| c.is_ascii_digit() || c == '-' || c.is_whitespace());
    if digits.len() != 9 || !only_separators {
        return Err(AppError::bad_input(
            field,
            "must be a 9-digit tax id (EIN), e.g. 12-3456789",
        ));
    }
    Ok(format!("{}-{}", &digits[..2], &digits[2..]))
}

/// A provider's practice and billing details, valid by construction.
#[derive(Clone, Debug, Default)]
pub struct PracticeDetails {
    pub organization_role: Option<String>,
    pub specialty: Option<Option<String>>,
    pub address_line1: Option<Option<String>>,
    pub address_line2: Option<Option<String>>,
    pub city: Option<Option<String>>,
    pub state: Option<Option<String>>,
    pub postal_code: Option<Option<String>>,
    pub phone: Option<Option<Phone>>,
    pub billing_tax_id: Option<Option<String>>,
    pub billing_address: Option<Option<String>>,
    pub credentialing_status: Option<CredentialingStatus>,
    /// The organisation's location the practice address is (`Some(None)` clears).
    pub location_id: Option<Option<Uuid>>,
}

impl PracticeDetails {
    /// The record of a new provider for `user_id` with these details: the one
    /// place a provider is built, for every door that makes one.
    pub fn new_provider(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        npi: &Npi,
        now: chrono::DateTime<Utc>,
    ) -> entity::provider::Model {
        let flat = |v: &Option<Option<String>>| v.clone().flatten();
        entity::provider::Model {
            id: Uuid::now_v7(),
            organization_id,
            user_id,
            npi: npi.as_str().to_owned(),
            organization_role: self
                .organization_role
                .clone()
                .unwrap_or_else(|| "Provider".to_owned()),
            specialty: flat(&self.specialty),
            address_line1: flat(&self.address_line1),
            address_line2: flat(&self.address_line2),
            city: flat(&self.city),
            state: flat(&self.state),
            postal_code: flat(&self.postal_code),
            phone: self.phone.clone().flatten().map(|p| p.as_str().to_owned()),
            billing_tax_id: flat(&self.billing_tax_id),
            billing_address: flat(&self.billing_address),
            credentialing_status: self
                .credentialing_status
                .unwrap_or(CredentialingStatus::Pending)
                .as_str()
                .to_owned(),
            created_at: now,
            updated_at: now,
            location_id: self.location_id.flatten(),
        }
    }

    /// Set on `active` each field these details (and `npi`) give a value other
    /// than `provider`'s: the one place a provider's fields change, for every
    /// door. What changed, under the clients' names, for the audit trail.
    pub fn apply(
        self,
        npi: Option<&Npi>,
        provider: &entity::provider::Model,
        active: &mut entity::provider::ActiveModel,
    ) -> Changes {
        let mut changed = Changes::default();
        let c = &mut changed;
        if let Some(npi) = npi {
            c.set_if_changed(
                "npi",
                &mut active.npi,
                &provider.npi,
                npi.as_str().to_owned(),
            );
        }
        if let Some(role) = self.organization_role {
            let current = &provider.organization_role;
            c.set_if_changed(
                "organizationRole",
                &mut active.organization_role,
                current,
                role,
            );
        }
        if let Some(status) = self.credentialing_status {
            let (column, current) = (
                &mut active.credentialing_status,
                &provider.credentialing_status,
            );
            c.set_if_changed(
                "credentialingStatus",
                column,
                current,
                status.as_str().to_owned(),
            );
        }
        if let Some(phone) = self.phone {
            let phone = phone.map(|p| p.as_str().to_owned());
            c.set_if_changed("phone", &mut active.phone, &provider.phone, phone);
        }
        if let Some(location) = self.location_id {
            c.set_if_changed(
                "locationId",
                &mut active.location_id,
                &provider.location_id,
                location,
            );
        }
        for (key, value, column, current) in [
            (
                "specialty",
                self.specialty,
                &mut active.specialty,
                &provider.specialty,
            ),
            (
                "addressLine1",
                self.address_line1,
                &mut active.address_line1,
                &provider.address_line1,
            ),
            (
                "addressLine2",
                self.address_line2,
                &mut active.address_line2,
                &provider.address_line2,
            ),
            ("city", self.city, &mut active.city, &provider.city),
            ("state", self.state, &mut active.state, &provider.state),
            (
                "postalCode",
                self.postal_code,
                &mut active.postal_code,
                &provider.postal_code,
            ),
            (
                "billingTaxId",
                self.billing_tax_id,
                &mut active.billing_tax_id,
                &provider.billing_tax_id,
            ),
            (
                "billingAddress",
                self.billing_address,
                &mut active.billing_address,
                &provider.billing_address,
            ),
        ] {
            if let Some(value) = value {
                c.set_if_changed(key, column, current, value);
            }
        }
        changed
    }
}

/// A location must be the actor's organisation's.
async fn ensure_location(
    db: &impl ConnectionTrait,
    actor: &Actor,
    location_id: Option<Option<Uuid>>,
) -> AppResult<()> {
    if let Some(Some(id)) = location_id
        && actor
            .scope::<entity::location::Entity>()
            .filter(entity::location::Column::Id.eq(id))
            .count(db)
            .await?
            == 0
    {
        return Err(AppError::bad_input("locationId", "no such location"));
    }
    Ok(())
}

/// A created provider with its user and the secret shown once.
pub struct CreatedProvider {
    pub provider: entity::provider::Model,
    pub user: CreatedUser,
}

/// Create a provider: the user (with the Provider role unless `role_ids` says
/// otherwise, which needs ROLES_MANAGE) and the provider record, in one transaction
/// (PROVIDERS_WRITE).
#[expect(
    clippy::too_many_arguments,
    reason = "each is a distinct part of the seed flow"
)]
pub async fn create(
    db: &(impl ConnectionTrait + TransactionTrait),
    hasher: &Hasher,
    actor: &Actor,
    details: UserDetails,
    npi: Npi,
    practice: PracticeDetails,
    role_ids: Option<&[Uuid]>,
    credentials: Credentials,
    public_url: &str,
) -> AppResult<CreatedProvider> {
    actor.require(Permission::ProvidersWrite)?;
    if role_ids.is_some() {
        actor.require(Permission::RolesManage)?;
    }
    let organization = organizations::find(db, actor, None).await?;
    ensure_npi_free(db, actor, &npi, None).await?;
    ensure_location(db, actor, practice.location_id).await?;
    let secret = Secret::prepare(hasher, &organization, &details.email, credentials).await?;
    let txn = crate::db::begin_write(db).await?;
    let authority = actor.authority();
    let roles = match role_ids {
        Some(ids) => {
            let roles = roles::resolve_ids(&txn, actor, ids, "roleIds").await?;
            roles::ensure_may_give(&txn, &authority, &roles, "roleIds").await?;
            roles
        }
        None => roles::default_provider_role(&txn, actor.organization_id, &authority)
            .await?
            .into_iter()
            .collect(),
    };
    let user = users::create_in(
        &txn,
        actor,
        &organization,
        &details,
        &roles,
        secret,
        public_url,
    )
    .await?;
    let provider = practice.new_provider(actor.organization_id, user.user.id, &npi, Utc::now());
    entity::provider::Entity::insert(entity::provider::ActiveModel::from(provider.clone()))
        .exec_without_returning(&txn)
        .await
        .on_unique_violation(|| npi_taken(&npi))?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "provider.create")
            .target("Provider", provider.id)
            .changes(json!({
                "userId": provider.user_id,
                "npi": provider.npi,
                "organizationRole": provider.organization_role,
            })),
    )
    .await?;
    txn.commit().await?;
    Ok(CreatedProvider { provider, user })
}

/// Change a provider's NPI and practice details (PROVIDERS_WRITE); only the given
/// fields change.
pub async fn update(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    id: Uuid,
    npi: Option<Npi>,
    practice: PracticeDetails,
) -> AppResult<entity::provider::Model> {
    actor.require(Permission::ProvidersWrite)?;
    let txn = crate::db::begin_write(db).await?;
    let provider = find_in_scope(&txn, actor, id).await?;
    if let Some(npi) = &npi
        && npi.as_str() != provider.npi
    {
        ensure_npi_free(&txn, actor, npi, Some(id)).await?;
    }
    ensure_location(&txn, actor, practice.location_id).await?;
    let mut active: entity::provider::ActiveModel = provider.clone().into();
    let changed = practice.apply(npi.as_ref(), &provider, &mut active);
    if changed.is_empty() {
        return Ok(provider);
    }
    active.updated_at = Set(Utc::now());
    let updated = active.update(&txn).await.on_unique_violation(|| {
        npi.as_ref().map_or_else(
            || AppError::Conflict("This change conflicts with another provider.".into()),
            npi_taken,
        )
    })?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "provider.update")
            .target("Provider", id)
            .changes(changed.into_json()),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// A provider of the actor's organisation (PROVIDERS_READ), or `None`.
pub async fn find(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> AppResult<Option<entity::provider::Model>> {
    actor.require(Permission::ProvidersRead)?;
    Ok(actor
        .scope::<entity::provider::Entity>()
        .filter(entity::provider::Column::Id.eq(id))
        .one(db)
        .await?)
}

/// What `providers` may be narrowed by.
#[derive(Clone, Debug, Default)]
pub struct ProviderFilter {
    /// Matched against the user's names and email and the NPI.
    pub search: Option<String>,
    pub organization_role: Option<String>,
    pub credentialing_status: Option<CredentialingStatus>,
}

pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    filter: ProviderFilter,
    page: PageRequest,
) -> AppResult<Page<entity::provider::Model>> {
    use entity::provider::Column;
    actor.require(Permission::ProvidersRead)?;
    let mut select = actor.scope::<entity::provider::Entity>();
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        use entity::user::Column as U;
        let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
        let like = || LikeExpr::new(&pattern).escape('\\');
        let matching_users = Query::select()
            .column(U::Id)
            .from(entity::user::Entity)
            .and_where(Expr::col(U::OrganizationId).eq(actor.organization_id))
            .cond_where(
                Condition::any()
                    .add(Expr::expr(Func::lower(Expr::col(U::FirstName))).like(like()))
                    .add(Expr::expr(Func::lower(Expr::col(U::LastName))).like(like()))
                    .add(Expr::col(U::Email).like(like())),
            )
            .to_owned();
        select = select.filter(
            Condition::any()
                .add(Column::UserId.in_subquery(matching_users))
                .add(Expr::col(Column::Npi).like(like())),
        );
    }
    if let Some(role) = filter.organization_role {
        select = select.filter(Column::OrganizationRole.eq(role));
    }
    if let Some(status) = filter.credentialing_status {
        select = select.filter(Column::CredentialingStatus.eq(status.as_str()));
    }
    paginate(db, select, Column::Id, page).await
}

async fn find_in_scope(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> AppResult<entity::provider::Model> {
    actor
        .scope::<entity::provider::Entity>()
        .filter(entity::provider::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("Provider"))
}

async fn ensure_npi_free(
    db: &impl ConnectionTrait,
    actor: &Actor,
    npi: &Npi,
    except: Option<Uuid>,
) -> AppResult<()> {
    let mut select = actor
        .scope::<entity::provider::Entity>()
        .filter(entity::provider::Column::Npi.eq(npi.as_str()));
    if let Some(id) = except {
        select = select.filter(entity::provider::Column::Id.ne(id));
    }
    if select.count(db).await? > 0 {
        return Err(npi_taken(npi));
    }
    Ok(())
}

fn npi_taken(npi: &Npi) -> AppError {
    AppError::Conflict(format!(
        "Another provider of this organisation already has the NPI {npi}."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_practice_field_absent_is_left_given_blank_is_cleared_and_each_is_held_to_its_rule() {
        let mut v = Validation::default();
        let practice = RawPractice {
            specialty: Given::text(Some("  ")),
            city: Given::text(Some("Springfield")),
            state: Given::Clear,
            billing_tax_id: Given::Value("12"),
            postal_code: Given::Value(&"9".repeat(21)),
            ..RawPractice::default()
        }
        .parse(&mut v);
        assert_eq!(practice.specialty, Some(None));
        assert_eq!(practice.city, Some(Some("Springfield".to_owned())));
        assert_eq!(practice.state, Some(None));
        assert_eq!(practice.address_line1, None);
        let fields: Vec<String> = v.into_errors().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["postalCode", "billingTaxId"]);
    }

    #[test]
    fn tax_ids_are_nine_digits_stored_with_a_dash() {
        assert_eq!(parse_tax_id("123456789", "t").expect("ok"), "12-3456789");
        assert_eq!(parse_tax_id("12-3456789", "t").expect("ok"), "12-3456789");
        for bad in ["1234", "12-345678A", "1234567890", "12/3456789"] {
            assert!(parse_tax_id(bad, "t").is_err(), "{bad}");
        }
    }
}
