//! Staff rows (USERS and PROVIDERS imports): parsed by the same domain rules as
//! the GraphQL mutations, checked against the organisation in batches, then
//! written with one statement per kind of change, not one per row.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet, HashMap},
};

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, QueryFilter};
use uuid::Uuid;

use super::{
    file::Row,
    mapping::Mapping,
    row::{Earlier, RowResult, RowStatus, mapped_cell, row_values},
    settings::ImportSettings,
    undo::{self, RecordChange, RolesChange, Undo},
};
use crate::db::{Scope, unscoped};
use crate::{
    auth::{Authority, Permission, access},
    db::bulk,
    domain::{Email, EmployeeStatus, Npi},
    error::{AppResult, FieldError, Validation},
    services::{
        invites,
        providers::{Given, PracticeDetails, RawPractice},
        roles,
        users::{self, RawUser, UserChanges, UserDetails, UserFields},
    },
};

/// Why a row's email cannot be used: another account holds it. The same words
/// whichever organisation that account is in.
pub const EMAIL_TAKEN: &str = "is already in use by another account";

/// The access rule applied to the rows of one batch: whom the import's starter
/// may change, which roles they may give, and the organisation's last
/// administrator, followed row by row as the batch would leave it.
struct RowRule<'a> {
    authority: &'a Authority,
    role_permissions: &'a BTreeMap<Uuid, BTreeSet<Permission>>,
    /// The permissions of the batch's existing users.
    held: BTreeMap<Uuid, BTreeSet<Permission>>,
    /// The organisation's administrators as the batch so far leaves them;
    /// read once a row first changes someone's roles.
    administrators: Option<BTreeSet<Uuid>>,
}

impl RowRule<'_> {
    fn permissions_of(&self, role_ids: &[Uuid]) -> BTreeSet<Permission> {
        access::union_of(role_ids, self.role_permissions)
    }

    fn may_give(&self, role: &entity::role::Model) -> Result<(), access::Refusal> {
        let held = self
            .role_permissions
            .get(&role.id)
            .cloned()
            .unwrap_or_default();
        self.authority.ensure_may_grant(&role.name, &held, "roles")
    }

    /// Roles named in a row: ROLES_MANAGE, and each within the starter's own.
    fn give(
        &self,
        roles: &HashMap<String, entity::role::Model>,
        role_ids: &[Uuid],
    ) -> Result<(), access::Refusal> {
        self.authority
            .require_for(Permission::RolesManage, "roles")?;
        for role in roles.values().filter(|r| role_ids.contains(&r.id)) {
            self.may_give(role)?;
        }
        Ok(())
    }

    /// A new user with `role_ids`, `named` by the row (the implicit Provider
    /// role was checked when it was chosen).
    fn give_new(
        &mut self,
        roles: &HashMap<String, entity::role::Model>,
        user: &entity::user::Model,
        role_ids: &[Uuid],
        named: bool,
    ) -> Result<(), access::Refusal> {
        if named {
            self.give(roles, role_ids)?;
        }
        let administrator = is_administrator(user, &self.permissions_of(role_ids));
        if let Some(administrators) = &mut self.administrators
            && administrator
        {
            administrators.insert(user.id);
        }
        Ok(())
    }

    /// A change to an existing user of the organisation: the starter must
    /// hold every permission the user holds, USERS_WRITE to change a
    /// provider's staff details, and the roles they give; and an administrator
    /// must remain.
    async fn change(
        &mut self,
        db: &impl ConnectionTrait,
        organization_id: Uuid,
        roles: &HashMap<String, entity::role::Model>,
        user: &entity::user::Model,
        staff_details: bool,
        new_roles: Option<&[Uuid]>,
    ) -> AppResult<Result<(), access::Refusal>> {
        let held = self.held.get(&user.id).cloned().unwrap_or_default();
        if let Err(refusal) = self.authority.ensure_may_manage(user, &held, "email") {
            return Ok(Err(refusal));
        }
        if staff_details
            && let Err(refusal) = self.authority.require_for(Permission::UsersWrite, "email")
        {
            return Ok(Err(refusal));
        }
        let Some(new_roles) = new_roles else {
            return Ok(Ok(()));
        };
        if let Err(refusal) = self.give(roles, new_roles) {
            return Ok(Err(refusal));
        }
        if self.administrators.is_none() {
            self.administrators = Some(roles::administrator_ids(db, organization_id).await?);
        }
        let after = self.permissions_of(new_roles);
        let administrators = self.administrators.get_or_insert_default();
        if is_administrator(user, &after) {
            administrators.insert(user.id);
        } else if administrators.contains(&user.id) {
            if administrators.len() == 1 {
                return Ok(Err(access::Refusal {
                    field: "roles",
                    message: roles::NO_ADMINISTRATOR_LEFT.to_owned(),
                }));
            }
            administrators.remove(&user.id);
        }
        self.held.insert(user.id, after);
        Ok(Ok(()))
    }
}

pub(super) fn is_administrator(
    user: &entity::user::Model,
    permissions: &BTreeSet<Permission>,
) -> bool {
    user.status == "ACTIVE"
        && (user.is_super_admin
            || (permissions.contains(&Permission::UsersWrite)
                && permissions.contains(&Permission::RolesManage)))
}

/// Everything a batch needs to know about its job.
pub struct StaffImport<'a> {
    pub organization: &'a entity::organization::Model,
    pub providers: bool,
    pub mapping: &'a Mapping,
    pub headers: &'a [String],
    pub settings: &'a ImportSettings,
    /// The organisation's roles by lower-case name.
    pub roles: HashMap<String, entity::role::Model>,
    /// The permissions of each of those roles, for the access rule.
    pub role_permissions: BTreeMap<Uuid, BTreeSet<Permission>>,
    /// Who started the import, for invites.
    pub started_by: Option<Uuid>,
    pub public_url: &'a str,
}

/// One parsed row: the mapped, non-blank values.
#[derive(Default)]
pub struct Parsed {
    user: UserFields,
    roles: Option<Vec<String>>,
    npi: Option<Npi>,
    practice: PracticeDetails,
}

impl Parsed {
    /// A new user's details from the row, with its address; a name the file
    /// does not give is blank.
    fn details(&self, email: &Email) -> UserDetails {
        let user = &self.user;
        UserDetails {
            title: user.title.clone(),
            employee_status: user.employee_status.unwrap_or(EmployeeStatus::Active),
            mobile_phone: user.mobile_phone.clone(),
            locale: user.locale.clone(),
            idle_timeout_minutes: user.idle_timeout_minutes,
            external_id: user.external_id.clone(),
            ..UserDetails::named(
                email.clone(),
                user.first_name.clone().unwrap_or_default(),
                user.last_name.clone().unwrap_or_default(),
            )
        }
    }

    /// A provider's details from the row: its mapped, non-blank cells.
    fn practice(&self) -> PracticeDetails {
        self.practice.clone()
    }

    /// What the row changes on a user who exists: its mapped, non-blank cells.
    /// A blank cell leaves a field as it is; an import never clears one.
    fn changes(&self) -> UserChanges {
        self.user.clone().changes()
    }
}

impl StaffImport<'_> {
    fn cell<'r>(&self, row: &'r Row, field: &str) -> Option<Cow<'r, str>> {
        mapped_cell(self.mapping, row, field)
    }

    /// The mapped cell of `field` parsed by `parse`; `None` when unmapped or blank.
    fn typed<T>(
        &self,
        row: &Row,
        field: &str,
        parse: impl FnOnce(&str, &str) -> AppResult<T>,
    ) -> AppResult<Option<T>> {
        self.cell(row, field).map(|c| parse(&c, field)).transpose()
    }

    /// The row's email: its identity, by which a repeat is found.
    fn email(&self, row: &Row) -> AppResult<Option<Email>> {
        self.typed(row, "email", Email::parse)
    }

    /// What the row's identity is whenever it has one: see [`Earlier`].
    pub fn repeat_key(&self, row: &Row) -> Option<String> {
        Some(self.email(row).ok()??.as_str().to_owned())
    }

    fn parse(&self, row: &Row, errors: &mut Vec<FieldError>) -> Parsed {
        let mut v = Validation::default();
        let cell = |field: &str| self.cell(row, field);
        let (email, first_name, last_name, title, employee_status) = (
            cell("email"),
            cell("firstName"),
            cell("lastName"),
            cell("title"),
            cell("employeeStatus"),
        );
        let (mobile_phone, locale, external_id, idle_timeout_minutes) = (
            cell("mobilePhone"),
            cell("locale"),
            cell("externalId"),
            cell("idleTimeoutMinutes"),
        );
        let mut parsed = Parsed {
            user: RawUser {
                email: email.as_deref(),
                first_name: first_name.as_deref(),
                last_name: last_name.as_deref(),
                title: title.as_deref(),
                employee_status: employee_status.as_deref(),
                mobile_phone: mobile_phone.as_deref(),
                locale: locale.as_deref(),
                idle_timeout_minutes: idle_timeout_minutes.as_deref(),
                external_id: external_id.as_deref(),
                ..RawUser::default()
            }
            .parse(&mut v, users::client_name),
            roles: cell("roles").map(|c| {
                c.split(';')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
            ..Parsed::default()
        };
        if self.providers {
            parsed.npi = v.check(self.typed(row, "npi", Npi::parse)).flatten();
            let (organization_role, specialty, address_line1, address_line2, city) = (
                cell("organizationRole"),
                cell("specialty"),
                cell("addressLine1"),
                cell("addressLine2"),
                cell("city"),
            );
            let (state, postal_code, phone, billing_tax_id) = (
                cell("state"),
                cell("postalCode"),
                cell("phone"),
                cell("billingTaxId"),
            );
            // A blank cell is no cell: an import never clears a field.
            fn given<'c>(cell: &'c Option<Cow<'_, str>>) -> Given<'c> {
                cell.as_deref().map_or(Given::Absent, Given::Value)
            }
            parsed.practice = RawPractice {
                organization_role: organization_role.as_deref(),
                specialty: given(&specialty),
                address_line1: given(&address_line1),
                address_line2: given(&address_line2),
                city: given(&city),
                state: given(&state),
                postal_code: given(&postal_code),
                phone: given(&phone),
                billing_tax_id: given(&billing_tax_id),
                ..RawPractice::default()
            }
            .parse(&mut v);
        }
        errors.extend(v.into_errors());
        for spec in super::fields::fields(if self.providers {
            super::fields::ImportKind::Providers
        } else {
            super::fields::ImportKind::Users
        }) {
            if spec.required
                && self.cell(row, spec.key).is_none()
                && !errors.iter().any(|e| e.field == spec.key)
            {
                errors.push(FieldError::new(spec.key, "is required"));
            }
        }
        parsed
    }

    /// Check a parsed batch against the organisation: each row's outcome,
    /// and what writing the batch writes ([`Self::write`]). Every row gets its
    /// outcome; a bad row never stops the others. Of the four steps, look up
    /// and plan (parse, [`Self::parse_batch`], comes before; write after).
    /// Nothing is written; the undo records are kept when `write`.
    pub(super) async fn check(
        &self,
        db: &impl ConnectionTrait,
        planned: Vec<ParsedRow>,
        write: bool,
        authority: &Authority,
    ) -> AppResult<(Vec<RowResult>, Writes)> {
        let (existing, held) = self.look_up(db, &planned).await?;
        let mut rule = RowRule {
            authority,
            role_permissions: &self.role_permissions,
            held,
            administrators: None,
        };
        self.plan(db, planned, &existing, &mut rule, write).await
    }

    /// Parse: each row's values by the field rules, its roles known to the
    /// organisation, and repeats of an earlier row's email or of an NPI of the
    /// batch. Nothing is read.
    pub(super) fn parse_batch(&self, rows: Vec<Row>, earlier: &mut Earlier) -> Vec<ParsedRow> {
        let mut planned = Vec::with_capacity(rows.len());
        for row in rows {
            let mut errors = Vec::new();
            if let Some(problem) = &row.problem {
                errors.push(FieldError::new("row", problem.clone()));
            }
            let parsed = if row.problem.is_none() {
                self.parse(&row, &mut errors)
            } else {
                Parsed::default()
            };
            if let Some(names) = &parsed.roles {
                let unknown: Vec<&str> = names
                    .iter()
                    .filter(|n| !self.roles.contains_key(&n.to_lowercase()))
                    .map(String::as_str)
                    .collect();
                if !unknown.is_empty() {
                    errors.push(FieldError::new(
                        "roles",
                        format!("no such role in this organisation: {}", unknown.join(", ")),
                    ));
                }
            }
            let values = row_values(self.headers, &row);
            planned.push((row.number, parsed, errors, values));
        }

        // Duplicates of an earlier row of the file, by email (then by NPI within
        // the batch).
        earlier.mark_repeats(
            planned
                .iter_mut()
                .filter_map(|(number, parsed, errors, _)| {
                    Some((*number, parsed.user.email.as_ref()?.as_str(), errors))
                })
                .collect(),
            |_, first| FieldError::new("email", format!("repeats the email of row {first}")),
        );
        let mut npi_seen: HashMap<String, usize> = HashMap::new();
        for (number, parsed, errors, _) in &mut planned {
            if let Some(npi) = &parsed.npi {
                match npi_seen.get(npi.as_str()) {
                    Some(first) => errors.push(FieldError::new(
                        "npi",
                        format!("repeats the NPI of row {first}"),
                    )),
                    None => {
                        npi_seen.insert(npi.as_str().to_owned(), *number);
                    }
                }
            }
        }
        planned
    }

    /// Look up: what exists already for the batch's rows, in a few statements,
    /// and the permissions the organisation's own users among them hold.
    async fn look_up(
        &self,
        db: &impl ConnectionTrait,
        planned: &[ParsedRow],
    ) -> AppResult<(Existing, BTreeMap<Uuid, BTreeSet<Permission>>)> {
        // What exists already: users by email (any organisation), their provider
        // records, and providers holding the batch's NPIs.
        let emails: Vec<String> = planned
            .iter()
            .filter(|(_, _, errors, _)| errors.is_empty())
            .filter_map(|(_, p, _, _)| p.user.email.as_ref().map(|e| e.as_str().to_owned()))
            .collect();
        let existing: HashMap<String, entity::user::Model> = if emails.is_empty() {
            HashMap::new()
        } else {
            // One array parameter instead of one per email: a batch's
            // thousand parameters cost more to bind and plan than the lookup.
            let among = crate::db::among(
                db.get_database_backend(),
                entity::user::Column::Email,
                emails,
            );
            // An address is one account's in every organisation: a row naming
            // another organisation's person is refused, so look everywhere.
            unscoped::find::<entity::user::Entity>()
                .filter(among)
                .all(db)
                .await?
                .into_iter()
                .map(|u| (u.email.clone(), u))
                .collect()
        };
        let (providers_by_user, providers_by_npi) = if self.providers {
            let user_ids: Vec<Uuid> = existing.values().map(|u| u.id).collect();
            let npis: BTreeSet<String> = planned
                .iter()
                .filter_map(|(_, p, _, _)| Some(p.npi.as_ref()?.as_str().to_owned()))
                .collect();
            let found = Scope::of(self.organization.id)
                .find::<entity::provider::Entity>()
                .filter(
                    sea_orm::Condition::any()
                        .add(crate::db::among(
                            db.get_database_backend(),
                            entity::provider::Column::UserId,
                            user_ids,
                        ))
                        .add(crate::db::among(
                            db.get_database_backend(),
                            entity::provider::Column::Npi,
                            npis,
                        )),
                )
                .all(db)
                .await?;
            let by_user: HashMap<Uuid, entity::provider::Model> =
                found.iter().map(|p| (p.user_id, p.clone())).collect();
            let by_npi: HashMap<String, entity::provider::Model> =
                found.into_iter().map(|p| (p.npi.clone(), p)).collect();
            (by_user, by_npi)
        } else {
            (HashMap::new(), HashMap::new())
        };
        let own_ids: Vec<Uuid> = existing
            .values()
            .filter(|u| u.organization_id == self.organization.id)
            .map(|u| u.id)
            .collect();
        let roles = if own_ids.is_empty() {
            Default::default()
        } else {
            roles::roles_by_user(db, Scope::of(self.organization.id), &own_ids).await?
        };
        let held =
            roles::permissions_by_user(db, Scope::of(self.organization.id), &own_ids).await?;
        let existing = Existing {
            users: existing,
            providers_by_user,
            providers_by_npi,
            roles,
        };
        Ok((existing, held))
    }

    /// Plan: each row's outcome under the access rule, and the records the
    /// batch will write. Reads only what the rule needs (the organisation's
    /// administrators, once a row changes someone's roles).
    async fn plan(
        &self,
        db: &impl ConnectionTrait,
        planned: Vec<ParsedRow>,
        existing: &Existing,
        rule: &mut RowRule<'_>,
        write: bool,
    ) -> AppResult<(Vec<RowResult>, Writes)> {
        let now = Utc::now();
        let mut results = Vec::with_capacity(planned.len());
        let mut writes = Writes::default();
        for (number, parsed, mut errors, values) in planned {
            let identity = parsed.user.email.as_ref().map(|e| e.as_str().to_owned());
            let existing_user = identity.as_ref().and_then(|e| existing.users.get(e));
            if let Some(user) = existing_user
                && user.organization_id != self.organization.id
            {
                // Emails are unique across Rollcall; say no more than a
                // mutation would about whose it is.
                errors.push(FieldError::new("email", EMAIL_TAKEN));
            }
            if let (Some(npi), true) = (&parsed.npi, errors.is_empty())
                && let Some(holder) = existing.providers_by_npi.get(npi.as_str())
                && Some(holder.user_id) != existing_user.map(|u| u.id)
            {
                errors.push(FieldError::new(
                    "npi",
                    "is already held by another provider of this organisation",
                ));
            }
            let role_ids: Option<Vec<Uuid>> = parsed.roles.as_ref().map(|names| {
                let set: BTreeSet<Uuid> = names
                    .iter()
                    .filter_map(|n| self.roles.get(&n.to_lowercase()).map(|r| r.id))
                    .collect();
                set.into_iter().collect()
            });
            if !errors.is_empty() {
                results.push(RowResult::failed(number, identity, errors, values));
                continue;
            }
            let Some(email) = parsed.user.email.clone() else {
                continue;
            };
            let (status, record_id, undo) = match existing_user {
                None => {
                    let user = parsed
                        .details(&email)
                        .new_user(self.organization.id, None, now);
                    let id = user.id;
                    let named = role_ids.is_some();
                    let role_ids = match role_ids {
                        Some(ids) => Some(ids),
                        // A new provider gets the Provider role when its
                        // starter may give it, as `createProvider` does.
                        None if self.providers => self
                            .roles
                            .get("provider")
                            .filter(|role| rule.may_give(role).is_ok())
                            .map(|role| vec![role.id]),
                        None => None,
                    };
                    if let Some(ids) = &role_ids
                        && let Err(refusal) = rule.give_new(&self.roles, &user, ids, named)
                    {
                        results.push(RowResult::refused(number, identity, refusal, values));
                        continue;
                    }
                    let mut undo = Undo {
                        user: Some(RecordChange {
                            id,
                            created: true,
                            fields: undo::user::snapshot(&user),
                        }),
                        roles: Some(RolesChange {
                            before: Vec::new(),
                            after: role_ids.clone().unwrap_or_default(),
                        }),
                        provider: None,
                    };
                    if self.providers
                        && let Some(provider) = self.new_provider(&parsed, id, now)
                    {
                        undo.provider = Some(RecordChange {
                            id: provider.id,
                            created: true,
                            fields: undo::provider::snapshot(&provider),
                        });
                        writes.new_providers.push(provider);
                    }
                    if let Some(role_ids) = role_ids {
                        writes.role_links.push((id, role_ids));
                    }
                    if self.settings.send_invites {
                        writes.invite_for.push(user.clone());
                    }
                    writes.new_users.push(user);
                    (RowStatus::Created, id, Some(undo))
                }
                Some(user) => {
                    let mut active: entity::user::ActiveModel = user.clone().into();
                    let mut changed = !parsed.changes().apply(user, &mut active).is_empty();
                    let held: BTreeSet<Uuid> = existing
                        .roles
                        .get(&user.id)
                        .map(|rs| rs.iter().map(|r| r.id).collect())
                        .unwrap_or_default();
                    let roles_change =
                        role_ids.filter(|ids| ids.iter().copied().collect::<BTreeSet<_>>() != held);
                    changed |= roles_change.is_some();
                    let provider_change = if self.providers {
                        match existing.providers_by_user.get(&user.id) {
                            Some(provider) => self.provider_changes(&parsed, provider, now),
                            None => self
                                .new_provider(&parsed, user.id, now)
                                .map(ProviderChange::Create),
                        }
                    } else {
                        None
                    };
                    changed |= provider_change.is_some();
                    if !changed || !self.settings.update_existing {
                        (RowStatus::Skipped, user.id, None)
                    } else if let Err(refusal) = rule
                        .change(
                            db,
                            self.organization.id,
                            &self.roles,
                            user,
                            active.is_changed() && self.providers,
                            roles_change.as_deref(),
                        )
                        .await?
                    {
                        results.push(RowResult::refused(number, identity, refusal, values));
                        continue;
                    } else {
                        let mut undo = Undo {
                            user: Some(RecordChange {
                                id: user.id,
                                created: false,
                                fields: undo::user::changes(user, &active),
                            }),
                            ..Undo::default()
                        };
                        if active.is_changed() {
                            active.updated_at = Set(now);
                            writes.user_updates.push(active);
                        }
                        match provider_change {
                            Some(ProviderChange::Create(p)) => {
                                undo.provider = Some(RecordChange {
                                    id: p.id,
                                    created: true,
                                    fields: undo::provider::snapshot(&p),
                                });
                                writes.new_providers.push(p);
                            }
                            Some(ProviderChange::Update(p)) => {
                                if let Some(before) = existing.providers_by_user.get(&user.id) {
                                    undo.provider = Some(RecordChange {
                                        id: before.id,
                                        created: false,
                                        fields: undo::provider::changes(before, &p),
                                    });
                                }
                                writes.provider_updates.push(p);
                            }
                            None => {}
                        }
                        if let Some(ids) = roles_change {
                            undo.roles = Some(RolesChange {
                                before: held.iter().copied().collect(),
                                after: ids.clone(),
                            });
                            writes.relinked.push(user.id);
                            writes.role_links.push((user.id, ids));
                        }
                        (RowStatus::Updated, user.id, Some(undo))
                    }
                }
            };
            results.push(RowResult {
                // Kept only for what is written.
                undo: undo.filter(|_| write).and_then(|u| u.to_json()),
                ..RowResult::done(number, status, identity, record_id, values)
            });
        }
        Ok((results, writes))
    }

    /// Write: the batch's records, in bulk, in the caller's transaction.
    pub(super) async fn write(&self, db: &impl ConnectionTrait, writes: Writes) -> AppResult<()> {
        if !writes.relinked.is_empty() {
            // Like `setUserRoles`: changes to who may administer the
            // organisation are serialised, and one always remains. New
            // people only add to who holds a role, so a batch of them
            // needs neither.
            roles::lock_organization(db, self.organization.id).await?;
        }
        bulk::update_changed(db, writes.user_updates).await?;
        bulk::update_changed(db, writes.provider_updates).await?;
        if !writes.relinked.is_empty() {
            Scope::of(self.organization.id)
                .delete_many::<entity::user_role::Entity>()
                .filter(entity::user_role::Column::UserId.is_in(writes.relinked.iter().copied()))
                .exec(db)
                .await?;
        }
        // Updates and deletes by id go on with plans made for this batch;
        // inserts check their foreign keys with cached ones.
        crate::db::plan_writes(db).await?;
        bulk::insert_all::<entity::user::ActiveModel>(db, writes.new_users).await?;
        bulk::insert_all::<entity::provider::ActiveModel>(db, writes.new_providers).await?;
        let links: Vec<entity::user_role::ActiveModel> = writes
            .role_links
            .iter()
            .flat_map(|(user_id, roles)| {
                roles.iter().map(|role_id| entity::user_role::ActiveModel {
                    user_id: Set(*user_id),
                    role_id: Set(*role_id),
                })
            })
            .collect();
        bulk::insert_all(db, links).await?;
        if !writes.relinked.is_empty() {
            roles::ensure_an_administrator_remains(db, self.organization.id).await?;
        }
        for user in &writes.invite_for {
            invites::issue(
                db,
                self.started_by,
                user,
                &self.organization.name,
                self.public_url,
            )
            .await?;
        }
        Ok(())
    }

    /// A new provider for `user_id` from the row; a providers row has its
    /// NPI (required) by the time one is built.
    fn new_provider(
        &self,
        p: &Parsed,
        user_id: Uuid,
        now: chrono::DateTime<Utc>,
    ) -> Option<entity::provider::Model> {
        let npi = p.npi.as_ref()?;
        Some(
            p.practice()
                .new_provider(self.organization.id, user_id, npi, now),
        )
    }

    /// The provider update a row asks for, if it changes anything.
    fn provider_changes(
        &self,
        p: &Parsed,
        provider: &entity::provider::Model,
        now: chrono::DateTime<Utc>,
    ) -> Option<ProviderChange> {
        let mut active: entity::provider::ActiveModel = provider.clone().into();
        let changed = !p
            .practice()
            .apply(p.npi.as_ref(), provider, &mut active)
            .is_empty();
        if changed {
            active.updated_at = Set(now);
            Some(ProviderChange::Update(active))
        } else {
            None
        }
    }
}

/// A row of a batch once parsed: its number, what it says, its errors so far
/// and its cells as uploaded.
pub type ParsedRow = (usize, Parsed, Vec<FieldError>, Vec<(String, String)>);

/// A parsed row failed as a whole with `error`, keeping its identity.
pub(super) fn fail_parsed((number, parsed, _, values): ParsedRow, error: FieldError) -> RowResult {
    let identity = parsed.user.email.as_ref().map(|e| e.as_str().to_owned());
    RowResult::failed(number, identity, vec![error], values)
}

/// What exists already for a batch's rows.
struct Existing {
    /// Users by email, in any organisation: an address is one account's.
    users: HashMap<String, entity::user::Model>,
    providers_by_user: HashMap<Uuid, entity::provider::Model>,
    providers_by_npi: HashMap<String, entity::provider::Model>,
    /// The roles of the organisation's own users among them.
    roles: BTreeMap<Uuid, Vec<entity::role::Model>>,
}

/// What a batch will write.
#[derive(Default)]
pub struct Writes {
    new_users: Vec<entity::user::Model>,
    new_providers: Vec<entity::provider::Model>,
    user_updates: Vec<entity::user::ActiveModel>,
    provider_updates: Vec<entity::provider::ActiveModel>,
    role_links: Vec<(Uuid, Vec<Uuid>)>,
    /// Users who held roles before this batch and hold others after it.
    relinked: Vec<Uuid>,
    invite_for: Vec<entity::user::Model>,
}

enum ProviderChange {
    Create(entity::provider::Model),
    Update(entity::provider::ActiveModel),
}

/// The organisation's roles by lower-case name, as rows name them.
pub async fn roles_by_name(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
) -> AppResult<HashMap<String, entity::role::Model>> {
    Ok(Scope::of(organization_id)
        .find::<entity::role::Entity>()
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.name.to_lowercase(), r))
        .collect())
}
