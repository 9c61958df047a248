//! Organisations, users and roles as clients read them.

use std::sync::Arc;

use anyhow::anyhow;
use async_graphql::{Context, ID, InputObject, Object, Result};
use entity::user::Column;

use super::{
    Ctx,
    connection::{Conn, into_connection, page_request, parse_id},
    people::{FIELD_COLUMNS, Organization, PermissionInfo, Role, User, UserStatus},
};
use crate::{
    auth::Permission,
    error::AppError,
    services::{organizations, roles, users},
};

/// What `users` may be narrowed by.
#[derive(InputObject, Default)]
pub struct UserFilter {
    /// Part of a first name, last name or email, in any case.
    pub search: Option<String>,
    pub status: Option<UserStatus>,
    /// Only holders of this role.
    pub role_id: Option<ID>,
}

#[derive(Default)]
pub struct AccountQuery;

/// The roles of a page's users: the organisation's roles by id, for the ids
/// the page read, or each user's roles as read for the page.
enum Held {
    Known(Arc<roles::KnownRoles>),
    Read(std::collections::BTreeMap<uuid::Uuid, Vec<entity::role::Model>>),
}

/// What a list of users is asked of its users, through its edges or its
/// nodes: the columns of their records its fields read, and whether it reads
/// their roles (`roles` and `permissions` both do).
fn selected(ctx: &Context<'_>) -> (Vec<Column>, bool) {
    let ahead = ctx.look_ahead();
    let users = [ahead.field("edges").field("node"), ahead.field("nodes")];
    let asked = |field: &str| users.iter().any(|user| user.field(field).exists());
    let columns = FIELD_COLUMNS
        .iter()
        .filter(|(field, _)| asked(field))
        .map(|&(_, column)| column)
        .collect();
    (columns, asked("roles") || asked("permissions"))
}

#[Object]
impl AccountQuery {
    /// The logged-in user. Answers even while the password must be changed.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let actor = ctx.caller()?.actor_in_setup()?;
        Ok(User::from(actor.user.clone()))
    }

    /// The caller's organisation, or with `id` any organisation for a super admin.
    async fn organization(&self, ctx: &Context<'_>, id: Option<ID>) -> Result<Organization> {
        let actor = ctx.caller()?.actor()?;
        let id = id.as_ref().map(|id| parse_id(id, "id")).transpose()?;
        Ok(Organization(
            organizations::find(&ctx.state()?.db, actor, id).await?,
        ))
    }

    /// Every organisation (super admin).
    #[graphql(complexity = "super::connection::page_cost(first, child_complexity)")]
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<Organization>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let page = page_request(ctx, first, after.as_deref())?;
        let page = organizations::list(&state.db, actor, page).await?;
        Ok(into_connection(page, |m| m.id, Organization))
    }

    /// Staff users of the organisation (USERS_READ).
    #[graphql(complexity = "super::connection::page_cost(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<UserFilter>,
    ) -> Result<Conn<User>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let page = page_request(ctx, first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let filter = users::UserFilter {
            search: filter.search,
            status: filter.status.map(|s| match s {
                UserStatus::Active => "ACTIVE".to_owned(),
                UserStatus::Inactive => "INACTIVE".to_owned(),
            }),
            role_id: filter
                .role_id
                .as_ref()
                .map(|id| parse_id(id, "filter.roleId"))
                .transpose()?,
        };
        let (columns, with_roles) = selected(ctx);
        let page = users::list(&state.db, actor, filter, page, &columns, with_roles).await?;
        // Roles asked for come with the page: the ids each user holds read by
        // the page's own statement and the roles themselves from the
        // instance's catalog, or where the page could not read the ids
        // (SQLite), in one statement for the page rather than through the
        // loader a hundred keys at a time. Either way a role is the
        // organisation's or not shown.
        let mut held = if !with_roles {
            None
        } else if page.items.iter().all(|user| user.role_ids.is_some()) {
            let ids = page
                .items
                .iter()
                .flat_map(|user| user.role_ids.iter().flatten());
            let known = state.roles.roles(&state.db, actor, ids.copied()).await?;
            Some(Held::Known(known))
        } else {
            let ids: Vec<_> = page
                .items
                .iter()
                .filter_map(|user| user.record.get(Column::Id as u32).map(|m| m.id))
                .collect();
            let read = roles::roles_by_user(&state.db, actor.tenant(), &ids).await?;
            Some(Held::Read(read))
        };
        let page = page.try_map(|listed| {
            let mut user = User::listed(listed.record)
                .ok_or_else(|| AppError::from(anyhow!("a user read without its id")))?;
            match &mut held {
                None => {}
                Some(Held::Known(known)) => {
                    let mut roles: Vec<_> = listed
                        .role_ids
                        .iter()
                        .flatten()
                        .filter_map(|id| known.get(id).cloned())
                        .collect();
                    roles.sort_by(|a, b| a.name.cmp(&b.name));
                    user.held(roles);
                }
                Some(Held::Read(read)) => {
                    let roles = read.remove(&user.uuid()).unwrap_or_default();
                    user.held(roles.into_iter().map(Arc::new).collect());
                }
            }
            Ok::<_, AppError>(user)
        })?;
        Ok(into_connection(page, User::uuid, |user| user))
    }

    /// One user of the organisation; null for an unknown id or another organisation's.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        Ok(users::find(&ctx.state()?.db, actor, id)
            .await?
            .map(User::from))
    }

    /// The organisation's roles, by name.
    async fn roles(&self, ctx: &Context<'_>) -> Result<Vec<Role>> {
        let actor = ctx.caller()?.actor()?;
        Ok(roles::list(&ctx.state()?.db, actor)
            .await?
            .into_iter()
            .map(Role::from)
            .collect())
    }

    /// The permission catalogue, with what each permission allows.
    async fn permissions(&self, ctx: &Context<'_>) -> Result<Vec<PermissionInfo>> {
        ctx.caller()?.actor()?;
        Ok(Permission::ALL
            .into_iter()
            .map(|permission| PermissionInfo {
                permission,
                description: permission.description(),
            })
            .collect())
    }
}
