//! Organisations, users and roles as clients read them.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, Result};

use super::{
    Ctx,
    connection::{Conn, into_connection, page_request, parse_id},
    people::{Organization, PermissionInfo, Role, User, UserStatus},
};
use crate::{
    auth::Permission,
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

/// Whether a list of users is asked for its users' roles or permissions
/// (both read the roles), through its edges or its nodes.
fn selects_roles(ctx: &Context<'_>) -> bool {
    let ahead = ctx.look_ahead();
    [ahead.field("edges").field("node"), ahead.field("nodes")]
        .iter()
        .any(|user| user.field("roles").exists() || user.field("permissions").exists())
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
        let page = users::list(&state.db, actor, filter, page).await?;
        // Roles asked for come with the page, in one statement, rather than
        // through the loader a hundred keys at a time.
        let mut roles = if selects_roles(ctx) {
            let ids: Vec<_> = page.items.iter().map(|m| m.id).collect();
            Some(roles::roles_by_user(&state.db, actor.tenant(), &ids).await?)
        } else {
            None
        };
        Ok(into_connection(
            page,
            |m| m.id,
            |m| {
                let held = roles
                    .as_mut()
                    .map(|roles| roles.remove(&m.id).unwrap_or_default());
                User(Arc::new(m), held)
            },
        ))
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
            .map(Role)
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
